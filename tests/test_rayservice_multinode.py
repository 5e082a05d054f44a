"""The Ray engine across nodes, on both clouds (issue 13 item 2).

One Ray worker pod per node takes all its GPUs; Ray Serve LLM packs each replica's TP x PP
one-GPU bundles over them (TP inside a node, a pipeline stage per node, as the on-prem
and RunPod seeds run R1); on GKE the workers carry the RDMA wiring and source gIB's NCCL
environment before `ray start`. Assertions read the recorded resources.
"""

from __future__ import annotations

import math
import os
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_config import only_problem, raw

from components.config import parse
from components.workloads.engines.rayservice import (
    ENGINE_START_TIMEOUT_ENV,
    GENERATED_START_CMD_ENV,
    OVERWRITE_CMD_ANNOTATION,
)
from conftest import assert_valid
from fake_platforms import GKE_A4, run_serving
from tools.offline import StackRun, run_stack

# Two A4 High nodes (16 x B200) serving R1 through Ray: TP 8 x PP 2 by default.
A4_RAY: dict[str, dict[str, Any]] = {
    "platform": {"gpuPool": {"nodeCount": 2, "compactPlacement": True}},  # required across nodes
    "serving": {"engine": "rayservice", "nodesPerReplica": 2},
}
# The seeds' layout on EKS: R1 FP8 over 2 x p5.48xlarge (8 x H100 each), TP 8 x PP 2.
EKS_P5_RAY: dict[str, dict[str, Any]] = {
    "platform": {"gpuNodePools": [{"name": "p5", "instanceFamilies": ["p5"], "gpuLimit": 16}]},
    "serving": {
        "engine": "rayservice",
        "model": "deepseek-ai/DeepSeek-R1",
        "servedModelName": "deepseek-r1",
        "tensorParallelSize": 8,
        "pipelineParallelSize": 2,
        "nodesPerReplica": 2,
        "maxModelLen": 16384,
        # This pool has no EFA section (Ray on the EFA pool: Pulumi.eks-p5.yaml's tests).
        "allowTcpInterconnect": True,
    },
}


def rayservice(run: StackRun) -> dict[str, Any]:
    service: dict[str, Any] = run.kubernetes_object("RayService", "ray-llm")
    return service


def workers(service: dict[str, Any]) -> dict[str, Any]:
    (group,) = service["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    return group  # type: ignore[no-any-return]


def llm_config(service: dict[str, Any]) -> dict[str, Any]:
    (app,) = yaml.safe_load(service["spec"]["serveConfigV2"])["applications"]
    (llm,) = app["args"]["llm_configs"]
    return llm  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def a4_ray() -> StackRun:
    return run_serving("a4high", A4_RAY, hf_token=True)


@pytest.fixture(scope="module")
def p5_ray() -> StackRun:
    """The whole eks program (its real Karpenter p5 pool) with the seeds' layout."""
    run = run_stack("eks", {f"llm-serving:{k}": v for k, v in EKS_P5_RAY.items()})
    assert run.error is None, run.error
    return run


# --- config ------------------------------------------------------------------------------


def test_ray_on_gke_is_offered() -> None:
    config = parse(raw("a4high", {"serving": {"engine": "rayservice"}}))
    assert config.serving.engine == "rayservice"
    assert (config.topology.layout.tensor, config.topology.layout.nodes) == (8, 1)


def test_ray_over_two_nodes_defaults_to_tp_per_node_and_pp_across() -> None:
    layout = parse(raw("a4high", A4_RAY)).topology.layout
    assert (layout.tensor, layout.pipeline, layout.data, layout.nodes) == (8, 2, 1, 2)


def test_r1_fp8_fits_two_h100_nodes_as_tp8_pp2() -> None:
    """The seeds' reason for two nodes: R1 FP8 does not fit 8 x H100 (test_topology), it
    fits 16 with the layers split over two pipeline stages."""
    config = parse(raw("eks", EKS_P5_RAY))
    assert config.topology.layout.describe().startswith("TP 8 x PP 2 x DP 1")
    assert config.max_model_len == 16384


def test_tensor_parallel_across_nodes_is_refused() -> None:
    message = only_problem(
        "a4high", {**A4_RAY, "serving": {**A4_RAY["serving"], "tensorParallelSize": 16, "pipelineParallelSize": 1}}
    )
    assert message.startswith("llm-serving:serving.tensorParallelSize = 16: the layout (TP 16 x PP 1 x DP 1 = 16 GPUs)")
    assert "tensor parallelism inside a node (TP dividing 8)" in message
    assert "e.g. tensorParallelSize 8, pipelineParallelSize 2" in message


def test_a_layout_that_leaves_gpus_of_its_nodes_idle_is_refused() -> None:
    changes = {**A4_RAY, "serving": {**A4_RAY["serving"], "tensorParallelSize": 4, "pipelineParallelSize": 2}}
    message = only_problem("a4high", changes)
    assert message.startswith("llm-serving:serving.pipelineParallelSize = 2: the layout (TP 4 x PP 2 x DP 1 = 8 GPUs)")
    assert "must fill the replica's 2 nodes of pool 'a4high' (2 x 8 GPUs, one Ray worker pod per node)" in message


def test_the_gke_pool_must_hold_every_node_of_every_replica() -> None:
    message = only_problem(
        "a4high",
        {
            **A4_RAY,
            "platform": {"gpuPool": {"nodeCount": 3, "compactPlacement": True}},
            "serving": {**A4_RAY["serving"], "replicas": 2},
        },
    )
    assert message.startswith(
        "llm-serving:serving.replicas = 2: 2 replica(s) x 2 nodes per replica (nodesPerReplica) need 4 node(s) "
        "of pool 'a4high'"
    )


def test_the_eks_pool_limit_must_hold_every_gpu_of_every_replica() -> None:
    pool = {**EKS_P5_RAY["platform"]["gpuNodePools"][0], "gpuLimit": 8}
    message = only_problem("eks", {**EKS_P5_RAY, "platform": {"gpuNodePools": [pool]}})
    assert message.startswith("llm-serving:serving.replicas = 1: 1 replica(s) x 16 GPUs exceed pool 'p5''s gpuLimit")


def test_ray_across_nodes_still_runs_tp_x_pp_only() -> None:
    message = only_problem("a4high", {**A4_RAY, "serving": {**A4_RAY["serving"], "profile": "throughput"}})
    assert message.startswith("llm-serving:serving.engine = 'rayservice': the rayservice engine runs TP x PP only")


# --- the RayService spans nodes ------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["a4_ray", "p5_ray"])
def test_multi_node_rayservice_passes_strict_validation(fixture: str, request: pytest.FixtureRequest) -> None:
    run: StackRun = request.getfixturevalue(fixture)
    assert_valid(run.kubernetes_objects())


@pytest.mark.parametrize(
    ("fixture", "gpu", "pool"), [("a4_ray", "nvidia.com/gpu", "a4high"), ("p5_ray", "nvidia.com/gpu", "p5")]
)
def test_one_worker_pod_per_node_takes_all_its_gpus(
    fixture: str, gpu: str, pool: str, request: pytest.FixtureRequest
) -> None:
    service = rayservice(request.getfixturevalue(fixture))
    group = workers(service)
    assert group["replicas"] == group["minReplicas"] == group["maxReplicas"] == 2  # 1 replica x 2 nodes
    pod = group["template"]["spec"]
    (container,) = pod["containers"]
    assert container["resources"]["limits"] == {gpu: "8"}
    assert container["resources"]["requests"][gpu] == "8"
    assert any(pool in v for v in pod["nodeSelector"].values())
    (check,) = [c for c in pod["initContainers"] if c["name"] == "gpu-check"]
    assert check["resources"]["limits"] == {gpu: "8"}
    # The workers of a replica stay in one zone (pipeline traffic every step).
    (term,) = pod["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "topology.kubernetes.io/zone"
    assert term["labelSelector"]["matchLabels"]["ray.io/group"] == group["groupName"]


@pytest.mark.parametrize("fixture", ["a4_ray", "p5_ray"])
def test_placement_packs_tp_x_pp_bundles_over_the_nodes(fixture: str, request: pytest.FixtureRequest) -> None:
    llm = llm_config(rayservice(request.getfixturevalue(fixture)))
    kwargs = llm["engine_kwargs"]
    assert (kwargs["tensor_parallel_size"], kwargs["pipeline_parallel_size"]) == (8, 2)
    assert kwargs["distributed_executor_backend"] == "ray"
    # PACK, not STRICT_PACK (one node) nor STRICT_SPREAD (one bundle per node).
    assert llm["placement_group_config"] == {"bundles": [{"GPU": 1}] * 16, "strategy": "PACK"}
    assert llm["deployment_config"]["autoscaling_config"] == {"min_replicas": 1, "max_replicas": 1}


def test_a_single_node_replica_is_strictly_packed() -> None:
    llm = llm_config(rayservice(run_serving("eks")))
    assert llm["placement_group_config"] == {"bundles": [{"GPU": 1}], "strategy": "STRICT_PACK"}
    worker = workers(rayservice(run_serving("eks")))
    assert worker["replicas"] == 1 and "affinity" not in worker["template"]["spec"]


@pytest.mark.parametrize("fixture", ["a4_ray", "p5_ray"])
def test_head_stays_cpu_only_and_workers_keep_do_not_disrupt(fixture: str, request: pytest.FixtureRequest) -> None:
    service = rayservice(request.getfixturevalue(fixture))
    head = service["spec"]["rayClusterConfig"]["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0" and head["rayStartParams"]["num-gpus"] == "0"
    assert "nodeSelector" not in head["template"]["spec"]
    assert not any("nvidia.com/gpu" in str(c.get("resources")) for c in head["template"]["spec"]["containers"])
    assert workers(service)["template"]["metadata"]["annotations"]["karpenter.sh/do-not-disrupt"] == "true"


@pytest.mark.parametrize("fixture", ["a4_ray", "p5_ray"])
def test_pulumi_waits_for_the_serve_application(fixture: str, request: pytest.FixtureRequest) -> None:
    """Ready only once every bundle of the placement group is placed and the engine loaded."""
    run: StackRun = request.getfixturevalue(fixture)
    assert rayservice(run)["metadata"]["annotations"] == {"pulumi.com/waitFor": "condition=Ready"}
    assert run.outputs["engine"]["pulumi_waits_minutes"] > run.outputs["engine"]["startup_budget_minutes"]
    assert "placement group" in run.outputs["engine"]["ready_when"]


@pytest.mark.parametrize("fixture", ["a4_ray", "p5_ray"])
def test_ray_gives_the_engine_the_stacks_start_up_budget(fixture: str, request: pytest.FixtureRequest) -> None:
    """Ray Serve LLM kills a replica whose engine has not started within
    RAYLLM_ENGINE_START_TIMEOUT_S (3600 s by default): R1 from the Hub can take longer."""
    run: StackRun = request.getfixturevalue(fixture)
    (container,) = workers(rayservice(run))["template"]["spec"]["containers"]
    budget = {e["name"]: e.get("value") for e in container["env"]}[ENGINE_START_TIMEOUT_ENV]
    assert math.ceil(int(budget) / 60) == run.outputs["engine"]["startup_budget_minutes"]
    if fixture == "p5_ray":  # R1 from the Hub: about 80 minutes, past Ray's default hour
        assert int(budget) > 3600


def test_wait_for_ready_false_skips_the_wait() -> None:
    run = run_serving("eks", {"serving": {"waitForReady": False}})
    annotations = rayservice(run)["metadata"]["annotations"]
    assert annotations["pulumi.com/skipAwait"] == "true"  # takes precedence over waitFor
    assert "pulumi_waits_minutes" not in run.outputs["engine"]


# --- RDMA wiring on GKE ----------------------------------------------------------------------


def test_gke_workers_carry_the_rdma_wiring(a4_ray: StackRun) -> None:
    template = workers(rayservice(a4_ray))["template"]
    for key, value in GKE_A4.pod_annotations.items():
        assert template["metadata"]["annotations"][key] == value
    pod = template["spec"]
    (container,) = pod["containers"]
    assert container["securityContext"]["capabilities"]["add"] == ["IPC_LOCK"]
    assert {m["mountPath"] for m in GKE_A4.volume_mounts} <= {m["mountPath"] for m in container["volumeMounts"]}
    assert {v["name"] for v in GKE_A4.volumes} <= {v["name"] for v in pod["volumes"]}
    assert {e["name"]: e["value"] for e in GKE_A4.env}.items() <= {
        e["name"]: e.get("value") for e in container["env"]
    }.items()


def test_gke_workers_source_the_nccl_prelude_before_ray_start(a4_ray: StackRun) -> None:
    template = workers(rayservice(a4_ray))["template"]
    assert template["metadata"]["annotations"][OVERWRITE_CMD_ANNOTATION] == "true"
    (container,) = template["spec"]["containers"]
    shell, flag, script = container["command"]
    assert (shell, flag) == ("/bin/bash", "-c")
    lines = script.splitlines()
    assert lines[0] == GKE_A4.shell_prelude
    assert lines[-1] == f"exec ${GENERATED_START_CMD_ENV}"
    assert lines.index(GKE_A4.shell_prelude) < lines.index("ulimit -n ${RAY_START_ULIMIT_OPEN_FILES:-65536}")
    shlex.split(script)  # well-formed shell words


def test_eks_workers_run_kuberays_command_after_the_cache_restore(p5_ray: StackRun) -> None:
    """p5 has instance-store NVMe (the pool's scratch), so the compile caches get their
    bucket copy and the workers wrap KubeRay's generated `ray start` (no EFA prelude here)."""
    template = workers(rayservice(p5_ray))["template"]
    assert template["metadata"]["annotations"][OVERWRITE_CMD_ANNOTATION] == "true"
    script = template["spec"]["containers"][0]["command"][2]
    assert script.splitlines()[-1] == "exec $KUBERAY_GEN_RAY_START_CMD"
    assert p5_ray.outputs["compile_cache"]["store"] == "bucket"


def test_the_real_gke_platform_wires_ray_workers(run_with: Callable[..., StackRun], tmp_path: Path) -> None:
    """The whole a4high program (real GKE platform on the mock engine): the workers get its
    gIB prelude, which waits for the installer and sources set_nccl_env.sh, and the
    KubeRay operator is installed."""
    changes = {f"llm-serving:{k}": v for k, v in A4_RAY.items()}
    run = run_with("a4high", changes)
    assert run.error is None, run.error
    service = rayservice(run)
    template = workers(service)["template"]
    script = template["spec"]["containers"][0]["command"][2]
    assert ". /usr/local/gib/scripts/set_nccl_env.sh" in script
    assert script.index("set_nccl_env.sh\n") < script.index("exec $KUBERAY_GEN_RAY_START_CMD")
    assert "networking.gke.io/interfaces" in template["metadata"]["annotations"]
    assert run.one("kubernetes:helm.sh/v3:Release", "kuberay-operator")
    assert_valid([service])
    # Run it in bash, gIB's script and KubeRay's command stubbed: what the script exports
    # reaches the process that replaces the shell (the raylet, and so every vLLM rank).
    gib = tmp_path / "gib"
    (gib / "scripts").mkdir(parents=True)
    (gib / "scripts" / "set_nccl_env.sh").write_text("export NCCL_NET=gIB\n")
    env = {"PATH": os.environ["PATH"], GENERATED_START_CMD_ENV: "printenv NCCL_NET"}
    done = subprocess.run(
        ["bash", "-c", script.replace("/usr/local/gib", str(gib))],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (done.returncode, done.stdout) == (0, "gIB\n"), done.stderr
    missing = subprocess.run(
        ["bash", "-c", script.replace("/usr/local/gib", str(tmp_path / "none")).replace("sleep 5", "sleep 0")],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert missing.returncode == 1 and "gIB is not installed on this node" in missing.stderr


def test_ray_on_the_efa_stack_carries_the_efa_wiring() -> None:
    """Pulumi.eks-p5.yaml (2 x p5.48xlarge, EFA pool) with the Ray engine: each worker takes
    its node's GPUs and EFA interfaces, keeps IPC_LOCK, gets the libfabric environment, and
    runs the pool's prelude (the EFA userspace check) before KubeRay's `ray start`."""
    run = run_stack("eks-p5", {"llm-serving:serving": {"engine": "rayservice"}})
    assert run.error is None, run.error
    service = rayservice(run)
    assert_valid([service])
    group = workers(service)
    assert group["replicas"] == 2
    template = group["template"]
    (container,) = template["spec"]["containers"]
    assert container["resources"]["limits"] == {"nvidia.com/gpu": "8", "vpc.amazonaws.com/efa": "32"}
    assert container["securityContext"]["capabilities"]["add"] == ["IPC_LOCK"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["FI_PROVIDER"] == "efa" and env["FI_EFA_USE_DEVICE_RDMA"] == "1"
    script = container["command"][2]
    assert script.index("/opt/amazon/efa") < script.index(f"exec ${GENERATED_START_CMD_ENV}")
    assert template["metadata"]["annotations"][OVERWRITE_CMD_ANNOTATION] == "true"
    llm = llm_config(service)
    assert llm["placement_group_config"]["strategy"] == "PACK" and llm["accelerator_type"] == "H100"
