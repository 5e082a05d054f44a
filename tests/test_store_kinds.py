"""The model store kinds that need no cloud bucket: an S3-compatible endpoint and a
ReadWriteMany volume (components/stores.py), on every consumer.

The stores come from the real builder (``s3_compatible_store``, ``volume_store``) given
validated config; the scripts of the cache Job, the wait-for-cache init container, the
benchmark uploads and the chat backup upload run under the stub CLIs
(tests/scripts_harness.py): the stub ``aws`` keeps an endpoint's buckets apart from AWS's
and refuses to run without keys, a claim is a folder that outlives each pod.
"""

from __future__ import annotations

import json
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import pytest

from components import catalog
from components.config import BenchmarkConfig, ChatBackupConfig, ModelCacheConfig, S3CompatibleStore, VolumeStore
from components.platform import (
    BACKUP_PREFIX,
    BACKUP_SERVICE_ACCOUNT,
    READER_SERVICE_ACCOUNT,
    STORE_MOUNT,
    WRITER_SERVICE_ACCOUNT,
    ClusterNetwork,
    ModelStore,
)
from components.stores import preflight_commands, s3_compatible_store, secret_name, volume_store
from components.workloads import backup, benchmark, model_cache
from components.workloads.needs import WorkloadNeeds
from components.workloads.network_policy import network_policies
from components.workloads.weights import MARKER, choose_loader, plan_weights, weights_key
from conftest import assert_valid
from fake_platforms import EKS_G5, GKE_A4
from scripts_harness import Sandbox, env_of

MODEL = catalog.MODELS["deepseek-ai/DeepSeek-R1"]
FILES = {"config.json": "{}", "model-00001-of-00001.safetensors": "weights", "original/x.pth": "skipped"}
SHARDS = {"config.json", "model-00001-of-00001.safetensors"}
ENDPOINT = "minio.storage.svc:9000"
S3 = S3CompatibleStore.model_validate(
    {"kind": "s3Compatible", "endpoint": f"https://{ENDPOINT}", "bucket": "llm-models"}
)
S3_VIRTUAL = S3.model_copy(update={"path_style": False})
CLAIM = "shared-models"
CACHE_ON = ModelCacheConfig.model_validate({"enabled": True})
VOLUME = VolumeStore.model_validate({"kind": "volume", "claimName": CLAIM})


def s3_store(roles: tuple[str, ...] = ("",), config: S3CompatibleStore = S3) -> ModelStore:
    return s3_compatible_store(config, list(roles))


def vol_store() -> ModelStore:
    return volume_store(VOLUME, "llm")


STORES = {"s3Compatible": s3_store, "volume": vol_store}


def stored(box: Sandbox, kind: str, prefix: str) -> set[str]:
    """Files the store holds under ``prefix``, whatever its kind."""
    if kind == "volume":
        return box.claim_files(CLAIM, prefix)
    return box.endpoint_files(ENDPOINT, S3.bucket, prefix)


def cache_pod(store: ModelStore, gpu: Any = EKS_G5) -> dict[str, Any]:
    job = model_cache.model_cache_job("llm", MODEL, store, S3.bucket, gpu, WRITER_SERVICE_ACCOUNT, False)
    assert_valid([job])
    spec: dict[str, Any] = job["spec"]["template"]["spec"]
    return spec


@pytest.fixture
def box(tmp_path: Path) -> Sandbox:
    sandbox = Sandbox(tmp_path)
    sandbox.hub_repo(MODEL.hf_id, FILES)
    return sandbox


# --- the model cache Job ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(STORES))
@pytest.mark.parametrize("gpu", [EKS_G5, GKE_A4], ids=["ephemeral-scratch", "node-ssd"])
def test_cache_job_fills_each_store_kind_marker_last_and_reruns_as_a_no_op(box: Sandbox, kind: str, gpu: Any) -> None:
    spec = cache_pod(STORES[kind](), gpu)
    run = box.run_pod(spec)
    assert run.ok, run.logs
    assert stored(box, kind, weights_key(MODEL)) == {*SHARDS, MARKER}
    again = box.run_pod(spec)
    assert again.ok and "already cached" in again.log("check"), again.logs


def test_cache_job_reaches_the_s3_compatible_endpoint_with_the_writers_keys(box: Sandbox) -> None:
    spec = cache_pod(s3_store(("", "Reader")))
    assert box.run_pod(spec).ok
    calls = box.calls("aws")
    assert calls and all(c.argv[:2] == ["--endpoint-url", f"https://{ENDPOINT}"] for c in calls)
    assert {c.env["AWS_ACCESS_KEY_ID"] for c in calls} == {f"secret:{secret_name('')}/AWS_ACCESS_KEY_ID"}
    assert not box.bucket_files(S3.bucket), "nothing may go to AWS's S3 of the same name"


def test_without_keys_the_s3_compatible_upload_fails_and_writes_no_marker(box: Sandbox) -> None:
    spec = cache_pod(s3_store())
    for container in [*spec["initContainers"], *spec["containers"]]:
        container["env"] = [e for e in container.get("env", []) if "valueFrom" not in e]
    run = box.run_pod(spec)
    assert not run.ok and "Unable to locate credentials" in run.logs
    assert MARKER not in stored(box, "s3Compatible", weights_key(MODEL))


def test_virtual_hosted_stores_configure_the_cli_first(box: Sandbox) -> None:
    spec = cache_pod(s3_store(config=S3_VIRTUAL))
    assert box.run_pod(spec).ok
    assert any(c.argv == ["configure", "set", "default.s3.addressing_style", "virtual"] for c in box.calls("aws"))
    virtual, path = s3_store(config=S3_VIRTUAL).env, s3_store().env
    assert "RUNAI_STREAMER_S3_USE_VIRTUAL_ADDRESSING" not in virtual and virtual["AWS_S3_ADDRESSING_STYLE"] == "virtual"
    assert path["RUNAI_STREAMER_S3_USE_VIRTUAL_ADDRESSING"] == "0" and "AWS_S3_ADDRESSING_STYLE" not in path


def test_the_volume_cache_job_mounts_the_claim_read_write_and_never_copies_hub_metadata(box: Sandbox) -> None:
    spec = cache_pod(vol_store())
    claim = {"name": "model-store", "persistentVolumeClaim": {"claimName": CLAIM, "readOnly": False}}
    assert claim in spec["volumes"]
    assert box.run_pod(spec).ok
    assert not any(f.startswith(".cache") for f in box.claim_files(CLAIM, weights_key(MODEL)))


# --- the engines' loaders and the wait for the cache ----------------------------------------------


def test_engines_read_a_volume_store_from_the_read_only_mount(box: Sandbox) -> None:
    store = vol_store()
    loader = choose_loader(CACHE_ON, store)
    plan = plan_weights(MODEL, loader, store, CLAIM, tensor_parallel=8)
    assert loader == "runai-streamer" and plan.model_arg == f"{STORE_MOUNT}/{weights_key(MODEL)}"
    assert plan.mounts == ({"name": "model-store", "mountPath": STORE_MOUNT, "readOnly": True},)
    assert plan.volumes == ({"name": "model-store", "persistentVolumeClaim": {"claimName": CLAIM, "readOnly": True}},)
    assert plan.wait_for_cache is not None
    pod = {
        "initContainers": [plan.wait_for_cache],
        "containers": [],
        "volumes": [*plan.volumes, {"name": "tmp", "emptyDir": {}}],
    }
    box.run_pod(cache_pod(store))  # the marker is there: the wait ends at once
    assert box.run_pod(pod).ok


def test_ray_mirrors_an_s3_compatible_store_through_its_s3_endpoint_variable() -> None:
    """Ray 2.52's mirror reads AWS_ENDPOINT_URL_S3 only (cloud_utils.py get_fs_and_path)."""
    store = s3_store(("", "Reader"))
    plan = plan_weights(MODEL, choose_loader(CACHE_ON, store, "ray-mirror"), store, S3.bucket, 8)
    environment: dict[str, Any] = {e["name"]: e.get("value", e.get("valueFrom")) for e in plan.env}
    assert plan.model_arg == f"s3://{S3.bucket}/{weights_key(MODEL)}" and not plan.mounted
    assert environment["AWS_ENDPOINT_URL_S3"] == S3.endpoint
    assert environment["AWS_SECRET_ACCESS_KEY"]["secretKeyRef"]["name"] == secret_name("Reader")


def test_ray_reads_a_volume_store_from_the_mount_instead_of_mirroring() -> None:
    store = vol_store()
    plan = plan_weights(MODEL, choose_loader(CACHE_ON, store, "ray-mirror"), store, CLAIM, 8)
    assert plan.mounted and plan.model_arg == f"{STORE_MOUNT}/{weights_key(MODEL)}"


def test_engines_stream_from_the_s3_compatible_endpoint_with_the_readers_keys() -> None:
    store = s3_store(("", "Reader"))
    plan = plan_weights(MODEL, "runai-streamer", store, S3.bucket, 8)
    assert plan.model_arg == f"s3://{S3.bucket}/{weights_key(MODEL)}"
    environment = {e["name"]: e.get("value", e.get("valueFrom")) for e in plan.env}
    endpoints = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "RUNAI_STREAMER_S3_ENDPOINT")
    assert {environment[name] for name in endpoints} == {S3.endpoint}
    assert environment["AWS_ACCESS_KEY_ID"] == {
        "secretKeyRef": {"name": secret_name("Reader"), "key": "AWS_ACCESS_KEY_ID"}
    }
    assert plan.wait_for_cache is not None
    assert env_of(plan.wait_for_cache)["AWS_SECRET_ACCESS_KEY"]["secretKeyRef"]["name"] == secret_name("Reader")


def test_each_account_gets_its_own_pair_else_the_writers() -> None:
    only_writer = s3_store(("",))
    assert set(only_writer.credentials.values()) == {secret_name("")}
    split = s3_store(("", "Reader", "Backup"))
    assert split.credentials == {
        WRITER_SERVICE_ACCOUNT: secret_name(""),
        READER_SERVICE_ACCOUNT: secret_name("Reader"),
        BACKUP_SERVICE_ACCOUNT: secret_name("Backup"),
    }


# --- benchmark results and chat backups -----------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(STORES))
def test_benchmark_results_land_in_each_store_kind(box: Sandbox, kind: str) -> None:
    job = benchmark.benchmark_job(
        "llm",
        BenchmarkConfig.model_validate({"enabled": True, "maxConcurrency": [1, 4]}),
        "http://vllm:8000",
        "m",
        MODEL,
        "onprem",
        STORES[kind](),
        S3.bucket,
        WRITER_SERVICE_ACCOUNT,
        api_key=False,
        hf_token=False,
        engine_wait_seconds=60,
    )
    assert_valid([job])
    run = box.run_pod(job["spec"]["template"]["spec"])
    assert run.ok, run.logs
    files = stored(box, kind, benchmark.results_key("onprem"))
    assert {f.split("/", 1)[1] for f in files} == {"concurrency-1.json", "concurrency-4.json"}


@pytest.mark.parametrize("kind", sorted(STORES))
def test_chat_backups_land_under_the_backup_prefix_of_each_store_kind(box: Sandbox, tmp_path: Path, kind: str) -> None:
    store = s3_store(("", "Backup")) if kind == "s3Compatible" else vol_store()
    cron = backup.backup_cronjob("llm", ChatBackupConfig(), "open-webui:pinned", store, S3.bucket)
    assert_valid([cron])
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    upload = pod["containers"][0]
    snapshot = tmp_path / "snapshot"
    (snapshot / "20261129T000000Z").mkdir(parents=True)
    (snapshot / "STAMP").write_text("20261129T000000Z")
    for name in ("webui.db", "uploads.tar.gz", "manifest.json"):
        (snapshot / "20261129T000000Z" / name).write_text(name)
    volumes = {"snapshot": snapshot, "tmp": tmp_path / "tmp", "model-store": box.root / "claims" / CLAIM}
    (tmp_path / "tmp").mkdir()
    result = box.run_container(upload, volumes)
    assert result.exit_code == 0, result.output
    assert stored(box, kind, f"{backup.PREFIX}/20261129T000000Z") == {"webui.db", "uploads.tar.gz", "manifest.json"}
    if kind == "volume":  # the container sees the backups folder only, as the bucket grants only that prefix
        mount = next(m for m in upload["volumeMounts"] if m["name"] == "model-store")
        assert mount["subPath"] == BACKUP_PREFIX.strip("/") and not mount["readOnly"]
    else:
        assert env_of(upload)["AWS_ACCESS_KEY_ID"]["secretKeyRef"]["name"] == secret_name("Backup")


# --- NetworkPolicies ------------------------------------------------------------------------------


def egress_ports(store: ModelStore | None, cloud_identity: bool = True) -> list[Any]:
    needs = WorkloadNeeds(name="model-cache", selector={"app": "c"}, cloud_identity=cloud_identity)
    network = ClusterNetwork(internal_cidrs=("10.0.0.0/8",))
    (_, policy) = network_policies("llm", network, [needs], store)
    return [rule for rule in policy["spec"]["egress"] if rule["ports"][0]["port"] != 53]


def test_store_users_may_reach_the_s3_compatible_endpoints_port_only() -> None:
    rules = egress_ports(s3_store())
    assert rules == [
        {
            "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8", "169.254.0.0/16"]}}],
            "ports": [{"protocol": "TCP", "port": 9000}],
        }
    ]
    listed = S3.model_copy(update={"endpoint_cidrs": [IPv4Network("10.20.0.0/24")]})
    assert egress_ports(s3_store(config=listed))[0]["to"] == [{"ipBlock": {"cidr": "10.20.0.0/24"}}]
    assert egress_ports(s3_store(), cloud_identity=False) == []


def test_a_volume_store_opens_no_network_path() -> None:
    assert egress_ports(vol_store()) == []


# --- what only the live cluster can answer --------------------------------------------------------


def test_s3_compatible_preflight_runs_a_pod_with_the_secret_never_the_keys() -> None:
    (command,) = preflight_commands(S3, "llm")
    overrides = json.loads(command.split("--overrides='", 1)[1].split("'", 1)[0])
    (container,) = overrides["spec"]["containers"]
    assert overrides["apiVersion"] == "v1" and container["envFrom"] == [{"secretRef": {"name": secret_name("")}}]
    assert container["args"] == ["--endpoint-url", S3.endpoint, "s3", "ls", f"s3://{S3.bucket}/"]
    assert "--labels=app.kubernetes.io/name=model-cache" in command  # its NetworkPolicy lets it out


def test_volume_preflight_checks_the_class_only_for_a_claim_the_stack_creates() -> None:
    created = VolumeStore.model_validate({"kind": "volume", "storageClass": "nfs-rwx", "sizeGib": 10})
    assert preflight_commands(created, "llm")[0].startswith("kubectl get storageclass nfs-rwx")
    assert not any("storageclass" in line for line in preflight_commands(VOLUME, "llm"))
    assert any(f"get pvc {CLAIM}" in line for line in preflight_commands(VOLUME, "llm"))
