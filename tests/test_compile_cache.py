"""Compile and JIT caches: where they live, how they are keyed, restored and uploaded.

Manifests come from the serving layer on fake platforms (tests/fake_platforms.py); the
restore, pack and upload scripts run for real under the stub CLIs (tests/scripts_harness.py):
first start with nothing in the bucket, restore on a fresh node, and a key change.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal

import pulumi
import pytest

from components.config import CompileCacheConfig
from components.platform import COMPILE_CACHE_SERVICE_ACCOUNT, GpuNodes, ModelStore
from components.workloads import compile_cache
from components.workloads.compile_cache import CompileCachePlan, plan_compile_cache
from components.workloads.engines import rayservice
from conftest import assert_valid, stack_run
from fake_platforms import EKS_G5, GKE_A4, run_serving, stack_config
from scripts_harness import Sandbox, env_of
from tools.offline import StackRun

# Every variable the caches are redirected with, and where the pinned software reads it
# (compile_cache.py's docstring has the files).
REDIRECTS = {
    "VLLM_CACHE_ROOT",  # vLLM 0.33.0 envs.py
    "DG_JIT_CACHE_DIR",  # vLLM 0.33.0 utils/deep_gemm.py
    "FLASHINFER_WORKSPACE_BASE",  # flashinfer/jit/env.py
    "TRITON_CACHE_DIR",  # triton knobs.py
    "TRITON_HOME",  # triton knobs.py
    "TORCHINDUCTOR_CACHE_DIR",  # torch _inductor/runtime/cache_dir_utils.py
    "TORCH_EXTENSIONS_DIR",  # torch utils/cpp_extension.py
    "CUDA_CACHE_PATH",  # CUDA environment variables
    "XDG_CACHE_HOME",  # torch _appdirs.py, vLLM envs.py
}
KEY_INPUTS = compile_cache.key_inputs("vllm/vllm-openai:v0.33.0", "org/Model-8B", "B200", "vllm", "TP8", ["--a"])


def container(manifest: dict[str, Any], name: str) -> dict[str, Any]:
    spec = manifest["spec"]["template"]["spec"]
    return next(c for c in [*spec.get("initContainers", []), *spec["containers"]] if c["name"] == name)


@pytest.fixture(scope="module")
def a4() -> StackRun:
    return run_serving("a4high")


# --- the key ----------------------------------------------------------------------------------


def test_the_key_changes_with_image_model_gpu_engine_layout_and_flags() -> None:
    key = compile_cache.cache_key(KEY_INPUTS)
    assert key.startswith("model-8b-") and key == compile_cache.cache_key(dict(KEY_INPUTS))
    for field, other in [
        ("image", "vllm/vllm-openai:v0.34.0"),
        ("model", "org/Other"),
        ("gpu", "H100"),
        ("engine", "vllm-lws"),
        ("layout", "TP4 x DP2"),
        ("flags", ["--b"]),
    ]:
        assert compile_cache.cache_key({**KEY_INPUTS, field: other}) != key, field


def test_the_config_says_whether_caches_are_restored() -> None:
    """``StackConfig.compile_cache_store``: what the cold-start model reads."""
    assert stack_config("a4high").compile_cache_store == "bucket"
    assert stack_config("a4high", {"serving": {"compileCache": {"store": "node"}}}).compile_cache_store == "node"
    assert stack_config("a4high", {"serving": {"compileCache": {"enabled": False}}}).compile_cache_store == "none"
    no_bucket = {
        "platform": {"modelStore": {"kind": "none", "keepOnDestroy": None, "backupRetentionDays": None}},
        "serving": {"openWebui": {"backup": {"enabled": False}}},
        "modelCache": {"enabled": False},
    }
    assert stack_config("a4high", no_bucket).compile_cache_store == "node"


def test_api_server_flags_stay_out_of_the_key() -> None:
    flags = ["--host", "0.0.0.0", "--served-model-name=r1", "--enable-auto-tool-choice", "--max-model-len", "4096"]
    assert compile_cache.engine_flags(flags) == ["--max-model-len", "4096"]
    renamed = run_serving("a4high", {"serving": {"servedModelName": "r1-prod"}}).outputs["compile_cache"]["key"]
    assert renamed == run_serving("a4high").outputs["compile_cache"]["key"]


# --- manifests ---------------------------------------------------------------------------------


def test_vllm_on_a4_keeps_caches_on_local_ssd_and_in_the_bucket(a4: StackRun) -> None:
    deployment = a4.kubernetes_object("Deployment", "vllm")
    engine = container(deployment, "vllm")
    env = env_of(engine)
    summary = a4.outputs["compile_cache"]
    key = summary["key"]
    assert summary["store"] == "bucket" and summary["url"] == f"gs://test-bucket/compile-cache/{key}"
    assert env.keys() >= REDIRECTS
    assert all(env[name].startswith(f"/scratch/compile-cache/{key}/") for name in REDIRECTS)
    spec = deployment["spec"]["template"]["spec"]
    scratch = next(v for v in spec["volumes"] if v["name"] == "scratch")
    assert scratch["hostPath"]["path"] == f"{GKE_A4.scratch_host_path}/llm-serving"
    names = [c["name"] for c in spec["initContainers"]]
    assert names[:3] == ["gpu-check", "compile-cache-fetch", "compile-cache-unpack"]
    # The restore reads as the engine's own (read-only) account, in the CLI image.
    assert spec["serviceAccountName"] == "model-reader"
    assert (
        container(deployment, "compile-cache-fetch")["image"]
        == ModelStore("gs", pulumi.Output.from_input("b"), "r", "w").cli_image
    )
    assert container(deployment, "compile-cache-unpack")["image"] == engine["image"]
    # The packer waits for the engine's own /health, then exec's vLLM as before.
    script = engine["command"][2]
    assert 'COMPILE_CACHE_HEALTH_URL="http://127.0.0.1:8000/health"' in script
    assert script.index("COMPILE_CACHE_HEALTH_URL") < script.index("exec vllm serve")


def test_the_uploader_is_a_daemonset_as_the_create_only_account(a4: StackRun) -> None:
    uploader = a4.kubernetes_object("DaemonSet", compile_cache.NAME)
    assert_valid([uploader])
    spec = uploader["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == COMPILE_CACHE_SERVICE_ACCOUNT
    assert spec["nodeSelector"] == GKE_A4.node_selector
    assert spec["automountServiceAccountToken"] is False
    (upload,) = spec["containers"]
    assert upload["securityContext"]["readOnlyRootFilesystem"] is True
    assert env_of(upload)["CACHE_URL"] == "gs://test-bucket/compile-cache"
    # It sees the node's outbox only, never the caches the engine executes.
    outbox = next(v for v in spec["volumes"] if v["name"] == "outbox")
    assert outbox["hostPath"]["path"] == f"{GKE_A4.scratch_host_path}/llm-serving/compile-cache-outbox"
    # Its NetworkPolicy comes from its declared needs: egress to the bucket's API.
    policies = {o["metadata"]["name"] for o in a4.kubernetes_objects() if o["kind"] == "NetworkPolicy"}
    assert any(compile_cache.NAME in name for name in policies), policies


def test_node_only_when_asked_or_without_node_scratch_or_bucket() -> None:
    run = run_serving("a4high", {"serving": {"compileCache": {"store": "node"}}})
    assert run.outputs["compile_cache"]["store"] == "node"
    assert not [o for o in run.kubernetes_objects() if o["kind"] == "DaemonSet"]
    deployment = run.kubernetes_object("Deployment", "vllm")
    assert "compile-cache-fetch" not in [c["name"] for c in deployment["spec"]["template"]["spec"]["initContainers"]]
    assert env_of(container(deployment, "vllm")).keys() >= REDIRECTS

    # A pool without node-local scratch (the fake g5): caches stay in the pod, and the output says why.
    eks = run_serving("eks", {"serving": {"engine": "vllm"}})
    summary = eks.outputs["compile_cache"]
    assert summary["store"] == "node" and "no node-local scratch" in summary["where"]
    assert not [o for o in eks.kubernetes_objects() if o["kind"] == "DaemonSet"]


def test_eks_p5_keeps_the_caches_on_instance_store_nvme_and_in_the_bucket() -> None:
    """The real EKS platform (eks-p5: two p5.48xlarge) hands over its instance-store RAID0
    as the pool's scratch, so `store: auto` gives the caches their bucket copy there too."""
    run = stack_run("eks-p5")
    assert run.outputs["compile_cache"]["store"] == "bucket"
    uploader = run.kubernetes_object("DaemonSet", "compile-cache-upload")
    outbox = next(v for v in uploader["spec"]["template"]["spec"]["volumes"] if v["name"] == "outbox")
    assert outbox["hostPath"]["path"] == "/mnt/k8s-disks/0/llm-serving/compile-cache-outbox"
    template = run.kubernetes_object("LeaderWorkerSet", "vllm-group")["spec"]["leaderWorkerTemplate"]
    for spec in (template["leaderTemplate"]["spec"], template["workerTemplate"]["spec"]):
        assert {"compile-cache-fetch", "compile-cache-unpack"} <= {c["name"] for c in spec["initContainers"]}
        scratch = next(v for v in spec["volumes"] if v["name"] == "scratch")
        assert scratch["hostPath"]["path"] == "/mnt/k8s-disks/0/llm-serving"
    assert_valid([uploader])


def test_caches_off_leaves_the_engine_environment_alone() -> None:
    run = run_serving("a4high", {"serving": {"compileCache": {"enabled": False}}})
    assert run.outputs["compile_cache"]["store"] == "none"
    env = env_of(container(run.kubernetes_object("Deployment", "vllm"), "vllm"))
    assert not REDIRECTS & env.keys()


def test_ray_workers_carry_the_caches() -> None:
    gpu = dataclasses.replace(EKS_G5, scratch_host_path="/mnt/nvme")
    store = ModelStore(
        "s3", pulumi.Output.from_input("b"), "r", "w", compile_cache_service_account=COMPILE_CACHE_SERVICE_ACCOUNT
    )
    plan = plan_compile_cache(CompileCacheConfig(), gpu, store, "b", KEY_INPUTS)
    assert plan is not None and plan.store == "bucket"
    run = run_serving("eks")  # rayservice; the fake g5 pool has no hostPath: node only
    manifest = run.kubernetes_object("RayService", rayservice.NAME)
    worker = manifest["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["template"]["spec"]
    (ray_worker,) = worker["containers"]
    assert env_of(ray_worker).keys() >= REDIRECTS
    assert {"name": "scratch", "mountPath": "/scratch"} in ray_worker["volumeMounts"]
    script = rayservice.worker_script("", plan.after_ready("http://ray-llm-serve-svc:8000/v1/models"))
    assert script.splitlines()[-1] == "exec $KUBERAY_GEN_RAY_START_CMD"


def test_lws_workers_wait_for_their_leader_before_packing() -> None:
    run = run_serving("a4high-2node")
    lws = run.kubernetes_object("LeaderWorkerSet", "vllm-group")
    template = lws["spec"]["leaderWorkerTemplate"]
    leader = template["leaderTemplate"]["spec"]["containers"][0]["command"][2]
    worker = template["workerTemplate"]["spec"]["containers"][0]["command"][2]
    assert 'COMPILE_CACHE_HEALTH_URL="http://127.0.0.1:8000/health"' in leader
    assert 'COMPILE_CACHE_HEALTH_URL="http://$LWS_LEADER_ADDRESS:8000/health"' in worker
    names = [c["name"] for c in template["workerTemplate"]["spec"]["initContainers"]]
    assert "compile-cache-unpack" in names


def _pod_specs(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    spec = manifest["spec"]
    if manifest["kind"] == "LeaderWorkerSet":
        template = spec["leaderWorkerTemplate"]
        return [template["leaderTemplate"]["spec"], template["workerTemplate"]["spec"]]
    if manifest["kind"] == "RayService":
        return [g["template"]["spec"] for g in spec["rayClusterConfig"]["workerGroupSpecs"]]
    return [spec["template"]["spec"]]


@pytest.mark.parametrize(
    ("stack", "changes", "kind", "name"),
    [
        ("a4high", {}, "Deployment", "vllm"),
        ("a4high-2node", {}, "LeaderWorkerSet", "vllm-group"),
        ("a4high", {"serving": {"engine": "rayservice"}}, "RayService", rayservice.NAME),
    ],
)
def test_every_mount_of_an_engine_pod_names_one_of_its_volumes(
    stack: str, changes: dict[str, Any], kind: str, name: str
) -> None:
    """The restore steps run on a read-only root with $HOME on the pod's /tmp volume."""
    manifest = run_serving(stack, changes).kubernetes_object(kind, name)
    for spec in _pod_specs(manifest):
        volumes = {v["name"] for v in spec["volumes"]}
        assert "compile-cache-fetch" in [c["name"] for c in spec["initContainers"]]
        for c in [*spec["initContainers"], *spec["containers"]]:
            missing = {m["name"] for m in c.get("volumeMounts", [])} - volumes
            assert not missing, (c["name"], missing)


# --- the scripts, run for real -------------------------------------------------------------------


def _pod(plan: CompileCachePlan, gpu: GpuNodes, ready: Path, engine_image: str = "engine") -> dict[str, Any]:
    """The engine pod's restore steps, then a stand-in engine: it writes a kernel into the
    cache and runs the real background packer (``ready`` stands for the health URL)."""
    engine_script = (
        "set -e\n"
        'mkdir -p "$VLLM_CACHE_ROOT"\n'
        '[ -e "$VLLM_CACHE_ROOT/kernel" ] || echo "compiled by $(hostname)" > "$VLLM_CACHE_ROOT/kernel"\n'
        + plan.after_ready(f"file://{ready}")
        + "wait\n"
    )
    scratch = {"name": "scratch", "hostPath": {"path": f"{gpu.scratch_host_path}/llm-serving"}}
    return {
        "initContainers": plan.restore_containers(engine_image),
        "containers": [
            {
                "name": "engine",
                "command": ["/bin/bash", "-c", engine_script],
                "env": plan.env,
                "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
            }
        ],
        "volumes": [scratch, {"name": "tmp", "emptyDir": {}}],
    }


def _uploader(gpu: GpuNodes, store: ModelStore) -> dict[str, Any]:
    spec: dict[str, Any] = compile_cache.uploader_daemonset("llm", gpu, store, "b")["spec"]["template"]["spec"]
    (upload,) = spec["containers"]
    upload["env"].append({"name": "UPLOAD_ONCE", "value": "1"})
    upload["env"] = [
        e if e["name"] != "CACHE_URL" else {**e, "value": f"{store.scheme}://b/compile-cache"} for e in upload["env"]
    ]
    return spec


@pytest.mark.parametrize("scheme", ["gs", "s3"])
def test_first_start_uploads_then_a_fresh_node_restores_and_a_new_key_starts_over(
    tmp_path: Path, scheme: Literal["gs", "s3"]
) -> None:
    box = Sandbox(tmp_path)
    gpu = dataclasses.replace(GKE_A4, scratch_host_path="/mnt/ssd")
    store = ModelStore(
        scheme,
        pulumi.Output.from_input("b"),
        "r",
        "w",
        compile_cache_service_account=COMPILE_CACHE_SERVICE_ACCOUNT,
    )
    ready = tmp_path / "healthy"
    ready.write_text("ok")
    plan = plan_compile_cache(CompileCacheConfig(), gpu, store, "b", KEY_INPUTS)
    assert plan is not None and plan.store == "bucket"
    plan = dataclasses.replace(plan, url=f"{scheme}://b/compile-cache/{plan.key}")
    node_cache = box.host_path("/mnt/ssd/llm-serving/compile-cache") / plan.key

    # First start: nothing in the bucket, the engine compiles and packs; the uploader sends it.
    first = box.run_pod(_pod(plan, gpu, ready))
    assert first.ok, first.logs
    assert "0 archive(s)" in first.log("compile-cache-fetch")
    assert (node_cache / "vllm" / "kernel").is_file() and (node_cache / ".packed").exists()
    upload = box.run_pod(_uploader(gpu, store))
    assert upload.ok, upload.logs
    (archive,) = box.bucket_files("b", f"compile-cache/{plan.key}")
    assert archive.endswith(".tar")
    assert not list(box.host_path("/mnt/ssd/llm-serving/compile-cache-outbox").rglob("*.tar"))

    # A restart on the same node: kept there, nothing read, nothing packed again.
    again = box.run_pod(_pod(plan, gpu, ready))
    assert again.ok and "kept on this node" in again.log("compile-cache-fetch")
    assert not list(box.host_path("/mnt/ssd/llm-serving/compile-cache-outbox").rglob("*.tar"))

    # A fresh node (its scratch empty): restored from the bucket, and not uploaded again.
    kernel = (node_cache / "vllm" / "kernel").read_text()
    for path in sorted(box.host_path("/mnt/ssd").rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    fresh = box.run_pod(_pod(plan, gpu, ready))
    assert fresh.ok, fresh.logs
    assert "1 archive(s)" in fresh.log("compile-cache-fetch")
    assert (node_cache / "vllm" / "kernel").read_text() == kernel  # the first node's, not recompiled
    assert (node_cache / ".restored").exists() and not (node_cache / ".packed").exists()
    assert not list(box.host_path("/mnt/ssd/llm-serving/compile-cache-outbox").rglob("*.tar"))

    # A new image: a new key, nothing to restore, its own archive.
    other = plan_compile_cache(CompileCacheConfig(), gpu, store, "b", {**KEY_INPUTS, "image": "vllm:next"})
    assert other is not None and other.key != plan.key
    other = dataclasses.replace(other, url=f"{scheme}://b/compile-cache/{other.key}")
    new = box.run_pod(_pod(other, gpu, ready))
    assert new.ok and "0 archive(s)" in new.log("compile-cache-fetch")
    assert box.run_pod(_uploader(gpu, store)).ok
    assert len(box.bucket_files("b", f"compile-cache/{other.key}")) == 1
    assert len(box.bucket_files("b", f"compile-cache/{plan.key}")) == 1


def test_an_unreadable_bucket_never_stops_the_engine(tmp_path: Path) -> None:
    box = Sandbox(tmp_path)
    gpu = dataclasses.replace(GKE_A4, scratch_host_path="/mnt/ssd")
    store = ModelStore("gs", pulumi.Output.from_input("b"), "r", "w", compile_cache_service_account="c")
    plan = plan_compile_cache(CompileCacheConfig(), gpu, store, "b", KEY_INPUTS)
    assert plan is not None
    plan = dataclasses.replace(plan, url=f"gs://b/compile-cache/{plan.key}")
    box.put_object("b", f"compile-cache/{plan.key}/damaged.tar", "not a tar archive")
    box.fail("gcloud", "ls")
    ready = tmp_path / "healthy"
    ready.write_text("ok")
    run = box.run_pod(_pod(plan, gpu, ready))
    assert run.ok, run.logs
    assert "0 archive(s)" in run.log("compile-cache-fetch")
    box.clear_faults()
    # A damaged archive is skipped and the node compiles for itself.
    for path in sorted(box.host_path("/mnt/ssd").rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    run = box.run_pod(_pod(plan, gpu, ready))
    assert run.ok, run.logs
    assert "damaged; skipped" in run.log("compile-cache-unpack")


def test_the_uploader_keeps_an_archive_it_could_not_send(tmp_path: Path) -> None:
    box = Sandbox(tmp_path)
    gpu = dataclasses.replace(GKE_A4, scratch_host_path="/mnt/ssd")
    store = ModelStore("s3", pulumi.Output.from_input("b"), "r", "w", compile_cache_service_account="c")
    outbox = box.host_path("/mnt/ssd/llm-serving/compile-cache-outbox") / "key"
    outbox.mkdir(parents=True)
    (outbox / "20261129T000000Z-pod.tar").write_text("archive")
    (outbox / ".20261129T000001Z-pod.tar.part").write_text("half")
    box.fail("aws", "s3 cp")
    run = box.run_pod(_uploader(gpu, store))
    assert run.ok and "retrying later" in run.log("upload")
    assert (outbox / "20261129T000000Z-pod.tar").exists()
    box.clear_faults()
    assert box.run_pod(_uploader(gpu, store)).ok
    # The whole archive went up; the one still being written did not.
    assert box.bucket_files("b", "compile-cache") == {"key/20261129T000000Z-pod.tar"}
