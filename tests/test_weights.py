"""Weights loaders (components/workloads/weights.py): the flags each cloud and engine gets,
the node copy's init container, volumes and environment, its script against stub CLIs, and
the timeouts derived from the cold-start model."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shlex
import time
from pathlib import Path
from typing import Any

import pytest

from components import catalog
from components.cold_start import ColdStartInputs, estimate
from components.config import ConfigError, ModelCacheConfig, S3CompatibleStore, VolumeStore
from components.sizing import cache_job_deadline_seconds
from components.stores import s3_compatible_store, volume_store
from components.workloads.engine import IMAGE_PULL_SECONDS
from components.workloads.weights import (
    MARKER,
    NODE_FILL_LOCK_STALE_S,
    NODE_FILL_S3_CONCURRENCY,
    NODE_MARKER,
    choose_loader,
)
from conftest import assert_valid, stack_run
from fake_platforms import GKE_A4, run_serving, stack_config
from scripts_harness import Sandbox
from tools.offline import StackRun

R1 = catalog.MODELS["deepseek-ai/DeepSeek-R1"]
R1_URL = f"gs://test-bucket/models/{R1.hf_id}"
NODE_COPY = f"/scratch/models/{R1.hf_id}"


def pod_spec(run: StackRun) -> dict[str, Any]:
    spec: dict[str, Any] = run.kubernetes_object("Deployment", "vllm")["spec"]["template"]["spec"]
    return spec


def named(items: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(i for i in items if i["name"] == name)


def serve_argv(run: StackRun) -> list[str]:
    script = named(pod_spec(run)["containers"], "vllm")["command"][2]
    return shlex.split(next(line for line in script.splitlines() if line.startswith("exec ")))[1:]


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


@pytest.fixture(scope="module")
def a4() -> StackRun:
    return run_serving("a4high")


# --- which loader, which flags ---------------------------------------------------------------

CACHE = {"enabled": True}
RUNAI_GS = {"concurrency": 16, "distributed": True}


@pytest.mark.parametrize(
    ("stack", "changes", "loader", "model_arg", "flags"),
    [
        # GKE A4 High: local SSD, so `auto` keeps a copy on the node; vLLM reads it with its defaults.
        ("a4high", {}, "node-cache", NODE_COPY, []),
        (
            "a4high",
            {"modelCache": {**CACHE, "loader": "gcsfuse"}},
            "gcsfuse",
            f"/bucket/models/{R1.hf_id}",
            ["--safetensors-load-strategy", "prefetch"],
        ),
        (
            "a4high",
            {"modelCache": {**CACHE, "loader": "runai-streamer"}},
            "runai-streamer",
            R1_URL,
            ["--load-format", "runai_streamer", "--model-loader-extra-config", json.dumps(RUNAI_GS)],
        ),
        ("a4high", {"modelCache": {"enabled": False}}, "huggingface", R1.hf_id, ["--download-dir", "/scratch/hf/hub"]),
        # EKS: no local-SSD hostPath and no FUSE driver: the streamer from s3://.
        (
            "eks",
            {"serving": {"engine": "vllm"}, "modelCache": CACHE},
            "runai-streamer",
            "s3://test-bucket/models/deepseek-ai/DeepSeek-R1-Distill-Llama-8B",
            ["--load-format", "runai_streamer", "--model-loader-extra-config", json.dumps({"concurrency": 16})],
        ),
    ],
)
def test_loader_and_flags_per_cloud(
    stack: str, changes: dict[str, Any], loader: str, model_arg: str, flags: list[str]
) -> None:
    run = run_serving(stack, changes)
    argv = serve_argv(run)
    assert run.outputs["model_weights"]["loader"] == loader
    assert run.outputs["cold_start"]["loader"] == loader
    assert argv[2] == model_arg
    loader_flags = ("--load-format", "--model-loader-extra-config", "--safetensors-load-strategy", "--download-dir")
    rendered = [w for i, w in enumerate(argv) if w in loader_flags or (i and argv[i - 1] in loader_flags)]
    assert rendered == flags


def test_ray_engine_loads_through_its_mirror() -> None:
    run = run_serving("eks", {"modelCache": CACHE})
    assert run.outputs["model_weights"]["loader"] == "ray-mirror"
    assert run.outputs["cold_start"]["loader"] == "ray-mirror"


# --- the node copy ---------------------------------------------------------------------------


def test_node_copy_is_filled_by_an_init_container_after_the_cache_marker(a4: StackRun) -> None:
    spec = pod_spec(a4)
    names = [c["name"] for c in spec["initContainers"]]
    assert names[-2:] == ["wait-for-model-cache", "fill-node-cache"]
    fill = named(spec["initContainers"], "fill-node-cache")
    assert fill["image"] == catalog.GCLOUD_CLI_IMAGE.ref
    assert fill["volumeMounts"] == [{"name": "scratch", "mountPath": "/scratch"}]
    environment = env_of(fill)
    assert environment["MODEL_URL"] == R1_URL
    assert environment["CLOUDSDK_STORAGE_PROCESS_COUNT"] == "32"
    assert environment["CLOUDSDK_STORAGE_THREAD_COUNT"] == "4"
    assert environment["CLOUDSDK_STORAGE_SLICED_OBJECT_DOWNLOAD_MAX_COMPONENTS"] == "8"
    assert fill["resources"]["requests"] == {"cpu": "32", "memory": "32Gi"}
    # The copy lives on the node's local SSD, so the next pod there finds it.
    scratch = named(spec["volumes"], "scratch")
    assert scratch["hostPath"]["path"] == f"{GKE_A4.scratch_host_path}/llm-serving"
    # No FUSE mount and no sidecar for this loader.
    assert not any("csi" in v for v in spec["volumes"])
    annotations = a4.kubernetes_object("Deployment", "vllm")["spec"]["template"]["metadata"]["annotations"]
    assert "gke-gcsfuse/volumes" not in annotations


def fill_pod(run: StackRun) -> dict[str, Any]:
    spec = pod_spec(run)
    return {
        "volumes": [named(spec["volumes"], "scratch")],
        "containers": [named(spec["initContainers"], "fill-node-cache")],
    }


def test_node_copy_script_fills_once_and_reuses_it(a4: StackRun, tmp_path: Path) -> None:
    box = Sandbox(tmp_path)
    prefix = f"models/{R1.hf_id}"
    box.put_object("test-bucket", f"{prefix}/config.json", "{}")
    box.put_object("test-bucket", f"{prefix}/model-00001-of-00002.safetensors", "w1")
    box.put_object("test-bucket", f"{prefix}/model-00002-of-00002.safetensors", "w2")
    box.put_object("test-bucket", f"{prefix}/{MARKER}", '{"copy": 1}')
    node = box.host_path(f"{GKE_A4.scratch_host_path}/llm-serving")
    (node / "models" / "other" / "model").mkdir(parents=True)  # an earlier model on this node
    (node / "models" / "deepseek-ai" / "DeepSeek-V3").mkdir(parents=True)
    copy = node / "models" / R1.hf_id

    first = box.run_pod(fill_pod(a4))
    assert first.ok, first.logs
    assert (copy / "model-00002-of-00002.safetensors").read_text() == "w2"
    assert (copy / NODE_MARKER).read_text() == '{"copy": 1}'
    # One checkpoint per node: other models' folders (and emptied org folders) are gone.
    assert not (node / "models" / "other").exists()
    assert not (node / "models" / "deepseek-ai" / "DeepSeek-V3").exists()
    assert len(box.calls("gcloud")) == 2  # the marker, then the copy

    second = box.run_pod(fill_pod(a4))  # a pod re-created on the same node
    assert second.ok and "node copy current" in second.logs
    assert [c.argv[:2] for c in box.calls("gcloud")[2:]] == [["storage", "cat"]]  # no download

    # The model re-cached into the bucket (a new marker): the copy is brought up to date.
    box.put_object("test-bucket", f"{prefix}/model-00002-of-00002.safetensors", "w2-new")
    box.put_object("test-bucket", f"{prefix}/{MARKER}", '{"copy": 2}')
    third = box.run_pod(fill_pod(a4))
    assert third.ok, third.logs
    assert (copy / "model-00002-of-00002.safetensors").read_text() == "w2-new"
    assert (copy / NODE_MARKER).read_text() == '{"copy": 2}'


def test_interrupted_fill_leaves_no_marker_and_resumes(a4: StackRun, tmp_path: Path) -> None:
    box = Sandbox(tmp_path)
    prefix = f"models/{R1.hf_id}"
    for i in range(3):
        box.put_object("test-bucket", f"{prefix}/model-{i}.safetensors", f"w{i}")
    box.put_object("test-bucket", f"{prefix}/{MARKER}", "m")
    box.fail("gcloud", "rsync", after_files=1)
    broken = box.run_pod(fill_pod(a4))
    assert not broken.ok
    copy = box.host_path(f"{GKE_A4.scratch_host_path}/llm-serving") / "models" / R1.hf_id
    assert not (copy / NODE_MARKER).exists()  # a half copy is never taken for a whole one
    box.clear_faults()
    again = box.run_pod(fill_pod(a4))
    assert again.ok, again.logs
    assert (copy / NODE_MARKER).read_text() == "m"
    assert {p.name for p in copy.iterdir()} == {
        "model-0.safetensors",
        "model-1.safetensors",
        "model-2.safetensors",
        MARKER,
        NODE_MARKER,
    }


def test_fill_script_takes_the_lock_before_reading_or_writing(a4: StackRun) -> None:
    script = named(pod_spec(a4)["initContainers"], "fill-node-cache")["command"][2]
    lock, copy = script.index("flock 9"), script.index("gcloud storage rsync")
    assert "exec 9>/scratch/models/.deepseek-ai--DeepSeek-R1.lock" in script
    assert lock < script.index("gcloud storage cat") < copy
    assert f"--delete-unmatched-destination-objects $MODEL_URL {NODE_COPY}" in script
    assert script.index(f"> {NODE_COPY}/{NODE_MARKER}") > copy  # the marker last


# --- EKS: the node copy on instance-store NVMe -----------------------------------------------

P5_BUCKET = "llm-eks-p5-123456789012-us-west-2"  # the mock engine's account and region


@pytest.fixture(scope="module")
def p5() -> StackRun:
    return stack_run("eks-p5")


def lws_pods(run: StackRun) -> list[dict[str, Any]]:
    template = run.kubernetes_object("LeaderWorkerSet", "vllm-group")["spec"]["leaderWorkerTemplate"]
    return [template["leaderTemplate"]["spec"], template["workerTemplate"]["spec"]]


def test_eks_p5_keeps_the_node_copy_on_instance_store_nvme(p5: StackRun) -> None:
    """p5.48xlarge has 8 x 3.8 TB of instance store, RAID0 at /mnt/k8s-disks/0: `auto` picks
    the node copy for vLLM on EKS as on A4 High, and both ranks' pods fill it."""
    assert p5.outputs["model_weights"] == {"loader": "node-cache", "source": NODE_COPY}
    assert p5.outputs["cold_start"]["loader"] == "node-cache"
    assert_valid([p5.kubernetes_object("LeaderWorkerSet", "vllm-group")])
    for spec in lws_pods(p5):
        assert named(spec["volumes"], "scratch")["hostPath"] == {
            "path": "/mnt/k8s-disks/0/llm-serving",
            "type": "DirectoryOrCreate",
        }
        inits = [c["name"] for c in spec["initContainers"]]
        assert inits.index("wait-for-model-cache") < inits.index("fill-node-cache")
        fill = named(spec["initContainers"], "fill-node-cache")
        assert fill["image"] == catalog.AWS_CLI_IMAGE.ref
        assert env_of(fill)["MODEL_URL"] == f"s3://{P5_BUCKET}/models/{R1.hf_id}"
        assert not any(k.startswith("CLOUDSDK_") for k in env_of(fill))  # gcloud's settings stay on GKE
        script = named(spec["containers"], "vllm")["command"][2]
        assert NODE_COPY in shlex.split(next(line for line in script.splitlines() if line.startswith("exec ")))


def s3_fill_pod(run: StackRun) -> dict[str, Any]:
    spec = lws_pods(run)[1]
    return {
        "volumes": [named(spec["volumes"], "scratch")],
        "containers": [named(spec["initContainers"], "fill-node-cache")],
    }


def test_s3_node_copy_script_fills_once_syncs_fast_and_reuses_it(p5: StackRun, tmp_path: Path) -> None:
    box = Sandbox(tmp_path)
    prefix = f"models/{R1.hf_id}"
    box.put_object(P5_BUCKET, f"{prefix}/model-00001-of-00002.safetensors", "w1")
    box.put_object(P5_BUCKET, f"{prefix}/model-00002-of-00002.safetensors", "w2")
    box.put_object(P5_BUCKET, f"{prefix}/{MARKER}", "copy-1")
    node = box.host_path("/mnt/k8s-disks/0/llm-serving")
    (node / "models" / "other" / "model").mkdir(parents=True)  # an earlier model on this node
    copy = node / "models" / R1.hf_id

    first = box.run_pod(s3_fill_pod(p5))
    assert first.ok, first.logs
    assert (copy / "model-00001-of-00002.safetensors").read_text() == "w1"
    assert (copy / NODE_MARKER).read_text() == "copy-1"
    assert not (node / "models" / "other").exists()
    # The CLI's concurrency is raised before the sync (AWS CLI topic s3-config).
    calls = box.calls("aws")
    assert calls[0].argv[:2] == ["s3", "cp"]  # the bucket marker, under the lock
    assert calls[1].argv == ["configure", "set", "default.s3.max_concurrent_requests", str(NODE_FILL_S3_CONCURRENCY)]
    assert calls[2].argv == ["s3", "sync", "--no-progress", "--delete", f"s3://{P5_BUCKET}/{prefix}", str(copy)]
    assert len(calls) == 3
    assert not list((node / "models").glob(".*.lock.d"))  # the lock is released

    second = box.run_pod(s3_fill_pod(p5))  # the pod re-created on the same node
    assert second.ok and "node copy current" in second.logs
    assert [c.argv[:2] for c in box.calls("aws")[3:]] == [["s3", "cp"]]  # the marker only

    # A file left behind by a re-cached model goes with the next sync (--delete).
    (copy / "stale.safetensors").write_text("old")
    box.put_object(P5_BUCKET, f"{prefix}/{MARKER}", "copy-2")
    third = box.run_pod(s3_fill_pod(p5))
    assert third.ok, third.logs
    assert not (copy / "stale.safetensors").exists()
    assert (copy / NODE_MARKER).read_text() == "copy-2"


def test_s3_node_copy_takes_over_a_stale_lock_only(p5: StackRun, tmp_path: Path) -> None:
    """The mkdir lock needs only coreutils (the AWS CLI image's flock is not verified): a lock
    whose holder was killed (no heartbeat for NODE_FILL_LOCK_STALE_S) is taken over."""
    box = Sandbox(tmp_path)
    box.put_object(P5_BUCKET, f"models/{R1.hf_id}/model.safetensors", "w")
    box.put_object(P5_BUCKET, f"models/{R1.hf_id}/{MARKER}", "m")
    lock = box.host_path("/mnt/k8s-disks/0/llm-serving") / "models" / ".deepseek-ai--DeepSeek-R1.lock.d"
    lock.mkdir(parents=True)
    stale = time.time() - NODE_FILL_LOCK_STALE_S - 60
    os.utime(lock, (stale, stale))
    run = box.run_pod(s3_fill_pod(p5))
    assert run.ok, run.logs
    assert "taking over a stale lock" in run.logs
    assert not lock.exists()
    script = s3_fill_pod(p5)["containers"][0]["command"][2]
    assert "flock" not in script
    assert script.index("until mkdir") < script.index("aws s3 cp") < script.index("aws s3 sync")


def test_s3_fill_that_fails_releases_the_lock_and_leaves_no_marker(p5: StackRun, tmp_path: Path) -> None:
    box = Sandbox(tmp_path)
    for i in range(3):
        box.put_object(P5_BUCKET, f"models/{R1.hf_id}/model-{i}.safetensors", f"w{i}")
    box.put_object(P5_BUCKET, f"models/{R1.hf_id}/{MARKER}", "m")
    box.fail("aws", "s3 sync", after_files=1)
    broken = box.run_pod(s3_fill_pod(p5))
    assert not broken.ok
    models = box.host_path("/mnt/k8s-disks/0/llm-serving") / "models"
    assert not (models / R1.hf_id / NODE_MARKER).exists()
    assert not list(models.glob(".*.lock.d"))  # the next pod does not wait for a dead holder
    box.clear_faults()
    again = box.run_pod(s3_fill_pod(p5))
    assert again.ok, again.logs
    assert (models / R1.hf_id / NODE_MARKER).read_text() == "m"


def test_node_copy_needs_the_serving_pool_to_have_scratch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every AWS GPU type in the catalog has instance store today; a serving pool with one
    type without it has no node-local scratch, and config says so before any resource."""
    without = {k: v for k, v in catalog.INSTANCE_LOCAL_NVME_GB.items() if k != "g5.2xlarge"}
    monkeypatch.setattr(catalog, "INSTANCE_LOCAL_NVME_GB", without)
    nvme_pool = {"name": "g6e", "instanceFamilies": ["g6e"], "gpuLimit": 8}
    g5 = stack_config("eks").platform.model_dump(by_alias=True, exclude_none=True)["gpuNodePools"]
    with pytest.raises(ConfigError) as err:
        stack_config(
            "eks",
            {
                "platform": {"gpuNodePools": [*g5, nvme_pool]},
                "serving": {"engine": "vllm", "gpuPool": "g5"},
                "modelCache": {"enabled": True, "loader": "node-cache"},
            },
        )
    assert "llm-serving:modelCache.loader = 'node-cache': the serving GPU pool 'g5' has no node-local scratch" in str(
        err.value
    )
    # The same stack serving from the pool with NVMe is fine.
    config = stack_config(
        "eks",
        {
            "platform": {"gpuNodePools": [*g5, nvme_pool]},
            "serving": {"engine": "vllm", "gpuPool": "g6e"},
            "modelCache": {"enabled": True, "loader": "node-cache"},
        },
    )
    assert config.model_cache.loader == "node-cache"


# --- timeouts from the cold-start model --------------------------------------------------------


def test_engine_timeouts_derive_from_the_model(a4: StackRun) -> None:
    # a4high keeps the compile caches on the node and in the bucket (serving.compileCache).
    cold = estimate(
        ColdStartInputs(model=R1, loader="node-cache", bucket_scheme="gs", node_scratch=True, compile_cache="bucket")
    )
    vllm = named(pod_spec(a4)["containers"], "vllm")
    assert int(env_of(vllm)["VLLM_ENGINE_READY_TIMEOUT_S"]) == cold.engine_timeout_seconds == 42 * 60
    probe = vllm["startupProbe"]
    assert probe["periodSeconds"] * probe["failureThreshold"] == cold.engine_timeout_seconds
    # Pulumi waits for: the image, the node copy's fill (init container), the engine, and
    # the cache Job before them.
    wait = cold.engine_timeout_seconds + IMAGE_PULL_SECONDS + cold.fill_timeout_seconds + cache_job_deadline_seconds(R1)
    timeouts = a4.one("kubernetes:apps/v1:Deployment", "vllm").custom_timeouts
    assert timeouts == {"create": f"{math.ceil(wait / 60)}m", "update": f"{math.ceil(wait / 60)}m"}
    assert a4.outputs["cold_start"] == {
        "loader": "node-cache",
        "image_streaming": False,
        "compile_cache": "bucket",
        # issue #14 "Done when": at most 5 minutes on a warm node, 10 on a fresh one
        "modeled_minutes": {"first-ever": 19.5, "fresh-node": 8.0, "warm-node": 4.1, "pod-restart": 4.1},
        "engine_timeout_minutes": 42,
        "safety_factor": 2.0,
    }


def test_node_cache_needs_a_gpu_machine_with_local_ssd(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every GKE RDMA machine in the catalog has local SSD today; one without would have no
    hostPath scratch to keep a copy in, and config says so before any resource."""
    machine = catalog.MACHINES["a4-highgpu-8g"]
    without_ssd = {**catalog.MACHINES, "a4-highgpu-8g": dataclasses.replace(machine, local_ssds=0)}
    monkeypatch.setattr(catalog, "MACHINES", without_ssd)
    with pytest.raises(ConfigError) as err:
        stack_config("a4high", {"modelCache": {"enabled": True, "loader": "node-cache"}})
    assert "llm-serving:modelCache.loader = 'node-cache': not available on cloud 'gcp'" in str(err.value)
    assert "allowed: auto, gcsfuse, runai-streamer" in str(err.value)


def test_auto_keeps_a_node_copy_of_the_clouds_own_bucket_only() -> None:
    """An S3-compatible endpoint or a ReadWriteMany volume is not copied to the node by
    `auto`, even where the GPU pool has local SSD: the streamer reads them as before."""
    cache = ModelCacheConfig.model_validate({"enabled": True})
    s3 = s3_compatible_store(
        S3CompatibleStore.model_validate(
            {"kind": "s3Compatible", "endpoint": "https://minio:9000", "bucket": "models"}
        ),
        [""],
    )
    volume = volume_store(VolumeStore.model_validate({"kind": "volume", "claimName": "shared"}), "llm")
    assert choose_loader(cache, s3, node_scratch=True) == "runai-streamer"
    assert choose_loader(cache, volume, node_scratch=True) == "runai-streamer"
    run = run_serving("a4high", {"modelCache": CACHE})
    assert run.outputs["model_weights"]["loader"] == "node-cache"  # the stack's GCS bucket


def test_image_streaming_comes_from_the_platforms_mirror(run_with: Any) -> None:
    """GKE with the registry mirror streams the engine image (GpuNodes get image streaming):
    the modelled pull drops from 2 minutes to the streaming estimate."""
    run = run_with("a4high", {"llm-serving:platform": {"registry": {"kind": "mirror"}}})
    cold = run.outputs["cold_start"]
    assert cold["image_streaming"] is True
    # 30 s + fill 84.8 s + load 72 s + init 172 s + compile cache restore 30 s
    assert cold["modeled_minutes"]["fresh-node"] == 6.5
    assert cold["modeled_minutes"]["warm-node"] == 4.1  # the node has the image either way
