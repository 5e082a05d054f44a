"""Pod hardening on the rendered manifests: every workload container drops all
capabilities, cannot escalate, runs under RuntimeDefault seccomp and carries no API token;
the Jobs run non-root on a read-only root file system; Google's gIB installer is the only
privileged pod."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from components.workloads.common import NON_ROOT_UID
from fake_platforms import run_serving
from tools.offline import StackRun

ALL_ON = {"benchmark": {"enabled": True}, "modelCache": {"enabled": True}}


def pod_specs(run: StackRun, namespace: str | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """(name, pod spec) of every pod template the run declares (in ``namespace``)."""
    for obj in run.kubernetes_objects():
        if namespace is not None and obj["metadata"].get("namespace") != namespace:
            continue
        name, kind = obj["metadata"].get("name", ""), obj["kind"]
        if kind in ("Deployment", "Job", "DaemonSet", "StatefulSet"):
            yield name, obj["spec"]["template"]["spec"]
        elif kind == "RayService":
            cluster = obj["spec"]["rayClusterConfig"]
            yield f"{name}-head", cluster["headGroupSpec"]["template"]["spec"]
            for group in cluster["workerGroupSpecs"]:
                yield f"{name}-{group['groupName']}", group["template"]["spec"]


def containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec["containers"]]


@pytest.fixture(scope="module", params=["a4high", "eks"])
def serving(request: pytest.FixtureRequest) -> StackRun:
    return run_serving(request.param, ALL_ON, hf_token=True)


def test_every_workload_container_is_locked_down(serving: StackRun) -> None:
    specs = dict(pod_specs(serving))
    assert {"vllm", "open-webui", "model-cache", "benchmark"} <= set(specs) or "ray-llm-head" in specs
    for name, spec in specs.items():
        assert spec["automountServiceAccountToken"] is False, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for c in containers(spec):
            context = c["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, (name, c["name"])
            assert context["capabilities"]["drop"] == ["ALL"], (name, c["name"])
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}, (name, c["name"])
            assert "privileged" not in context, (name, c["name"])


def test_only_the_rdma_engine_keeps_a_capability(a4high: StackRun) -> None:
    gke, eks = a4high, run_serving("eks", {"serving": {"engine": "vllm"}})
    (engine,) = gke.kubernetes_object("Deployment", "vllm")["spec"]["template"]["spec"]["containers"]
    assert engine["securityContext"]["capabilities"]["add"] == ["IPC_LOCK"]  # GPUDirect RDMA pins memory
    (engine,) = eks.kubernetes_object("Deployment", "vllm")["spec"]["template"]["spec"]["containers"]
    assert "add" not in engine["securityContext"]["capabilities"]  # g5 has no RDMA fabric
    for name, spec in pod_specs(gke, "llm"):
        for c in containers(spec):
            if name != "vllm":
                assert "add" not in c["securityContext"]["capabilities"], (name, c["name"])


def test_jobs_run_non_root_on_a_read_only_root(serving: StackRun) -> None:
    for job in ("benchmark", "model-cache"):
        spec = serving.kubernetes_object("Job", job)["spec"]["template"]["spec"]
        on_host_path = any("hostPath" in v for v in spec["volumes"])
        if not on_host_path:
            assert spec["securityContext"]["runAsNonRoot"] is True, job
            assert spec["securityContext"]["runAsUser"] == NON_ROOT_UID, job
            assert spec["securityContext"]["fsGroup"] == NON_ROOT_UID, job
        volumes = {v["name"] for v in spec["volumes"]}
        assert "tmp" in volumes, job
        for c in containers(spec):
            assert c["securityContext"]["readOnlyRootFilesystem"] is True, (job, c["name"])
            mounts = {m["mountPath"] for m in c["volumeMounts"]}
            assert "/tmp" in mounts, (job, c["name"])
            assert {"name": "HOME", "value": "/tmp"} in c["env"], (job, c["name"])


def test_cache_job_on_the_gpu_nodes_local_ssd_stays_root() -> None:
    """fsGroup does not reach a hostPath: on A4 High the cache Job keeps the images' root
    user (capabilities still dropped, root file system still read-only)."""
    spec = run_serving("a4high", ALL_ON).kubernetes_object("Job", "model-cache")["spec"]["template"]["spec"]
    assert any("hostPath" in v for v in spec["volumes"])
    assert "runAsUser" not in spec["securityContext"]


def test_host_library_mounts_are_read_only(a4high: StackRun) -> None:
    spec = a4high.kubernetes_object("Deployment", "vllm")["spec"]["template"]["spec"]
    host = {
        v["name"] for v in spec["volumes"] if "hostPath" in v and v["hostPath"]["path"].startswith("/home/kubernetes")
    }
    assert host == {"host-nvidia", "host-gib"}
    (engine,) = spec["containers"]
    mounts = {m["name"]: m for m in engine["volumeMounts"]}
    assert all(mounts[name].get("readOnly") is True for name in host)


def test_the_gib_installer_is_the_only_privileged_pod(a4high: StackRun, eks: StackRun) -> None:
    privileged = [
        (name, c["name"])
        for run in (a4high, eks)
        for name, spec in pod_specs(run)
        for c in containers(spec)
        if (c.get("securityContext") or {}).get("privileged")
    ]
    assert {name for name, _ in privileged} == {"nccl-rdma-installer"}


def test_workload_service_accounts_carry_no_api_token(a4high: StackRun, eks: StackRun) -> None:
    """Neither Workload Identity nor Pod Identity needs the Kubernetes API token."""
    for run in (a4high, eks):
        accounts = [o for o in run.kubernetes_objects() if o["kind"] == "ServiceAccount"]
        names = {a["metadata"]["name"] for a in accounts}
        assert names == {"model-reader", "model-writer", "chat-backup", "compile-cache"}
        assert all(a["automountServiceAccountToken"] is False for a in accounts)
