"""The multi-node vLLM engine (a LeaderWorkerSet group per replica) on the recorded
resources of the a4high-2node stack and its variants: strict LWS validity, consistent
ranks, sizes and addresses between the leader's and the workers' command lines, whole-node
pods with their RDMA wiring, the leader-only Service and probes, the config rules and the
sizing across nodes."""

from __future__ import annotations

import shlex
from dataclasses import replace
from typing import Any

import pytest
from test_config import only_problem, problems, raw
from test_topology import EKS_P5

from components.catalog import GPUS, LWS_CHART, MODELS
from components.config import parse
from components.platform import LoadBalancing
from components.sizing import SizingRequest, size
from components.workloads.engine import EngineSettings
from components.workloads.engines import ENGINES, EngineContext
from components.workloads.engines.vllm_lws import leader_worker_set
from components.workloads.needs import Peer
from components.workloads.weights import WeightsPlan
from conftest import assert_valid, stack_run
from fake_platforms import GKE_A4
from tools.offline import StackRun, run_stack

STACK = "a4high-2node"
GIB = 1024**3
R1 = MODELS["deepseek-ai/DeepSeek-R1"]
LEADER_IP = "10.8.0.5"  # what the leader's pod IP / the worker's DNS lookup would give
# TP 8 inside each node, PP 2 across the two: the seeds' layout, vLLM's multi-node default.
PP_SHAPE = {"serving": {"profile": "balanced"}}


@pytest.fixture(scope="module")
def run() -> StackRun:
    return stack_run(STACK)


@pytest.fixture(scope="module")
def pp_run() -> StackRun:
    return run_stack(STACK, {"llm-serving:serving": PP_SHAPE["serving"]})


def lws(run: StackRun) -> dict[str, Any]:
    manifest: dict[str, Any] = run.kubernetes_object("LeaderWorkerSet", "vllm-group")
    return manifest


def templates(run: StackRun) -> dict[str, dict[str, Any]]:
    group = lws(run)["spec"]["leaderWorkerTemplate"]
    return {"leader": group["leaderTemplate"], "worker": group["workerTemplate"]}


def engine_container(template: dict[str, Any]) -> dict[str, Any]:
    found: list[dict[str, Any]] = [c for c in template["spec"]["containers"] if c["name"] == "vllm"]
    assert len(found) == 1
    return found[0]


def argv(template: dict[str, Any], worker_index: int) -> list[str]:
    """The pod's ``vllm serve`` argv as bash would run it in the pod with LWS's
    ``LWS_WORKER_INDEX``: the script's variables evaluated the way it sets them."""
    script = engine_container(template)["command"][2]
    shell = {"LEADER_IP": LEADER_IP, "NODE_RANK": str(worker_index)}
    for line in script.splitlines():
        if line.startswith("DP_START_RANK=$((LWS_WORKER_INDEX * "):
            shell["DP_START_RANK"] = str(worker_index * int(line.split("* ")[1].rstrip(")")))
    exec_line = next(line for line in script.splitlines() if line.startswith("exec vllm serve "))
    words = shlex.split(exec_line)[3:]  # after `exec vllm serve`
    return [shell.get(w[1:], w) if w.startswith("$") else w for w in words]


def value(words: list[str], flag: str) -> str:
    return words[words.index(flag) + 1]


# --- the LeaderWorkerSet and its operator ---------------------------------------------------


def test_leader_worker_set_is_strictly_valid(run: StackRun, pp_run: StackRun) -> None:
    assert_valid([lws(run), lws(pp_run)])


def test_one_group_per_replica_one_pod_per_node(run: StackRun) -> None:
    spec = lws(run)["spec"]
    assert spec["replicas"] == 1
    assert spec["leaderWorkerTemplate"]["size"] == 2  # nodesPerReplica
    # A failed pod or container recreates the whole group: no vLLM rank can rejoin.
    assert spec["leaderWorkerTemplate"]["restartPolicy"] == "RecreateGroupOnPodRestart"
    # Workers start with the leader (LeaderReady would deadlock: the leader's /health needs them).
    assert spec["startupPolicy"] == "LeaderCreated"
    # Replaced in place, one group at a time: no spare nodes.
    assert spec["rolloutStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdateConfiguration": {"maxSurge": 0, "maxUnavailable": 1},
    }


def test_pulumi_waits_for_the_group_to_be_available(run: StackRun) -> None:
    recorded = run.one("kubernetes:leaderworkerset.x-k8s.io/v1:LeaderWorkerSet", "vllm-group")
    assert recorded.custom_timeouts.get("create", "").endswith("m")
    assert lws(run)["metadata"]["annotations"]["pulumi.com/waitFor"] == "condition=Available"
    assert "every rank on every node" in run.outputs["engine"]["ready_when"]


def test_the_lws_chart_is_installed_pinned_from_its_oci_registry(run: StackRun) -> None:
    release = run.one("kubernetes:helm.sh/v3:Release", "lws")
    assert release.inputs["chart"] == "oci://registry.k8s.io/lws/charts/lws" == LWS_CHART.name
    assert release.inputs["version"] == "0.10.0"
    assert release.inputs["namespace"] == "lws-system"
    assert not release.inputs.get("repositoryOpts")  # the registry is in the chart reference
    assert LWS_CHART.source


def test_single_node_stacks_install_no_lws() -> None:
    assert not [r for r in stack_run("a4high").resources if r.name == "lws"]
    assert ENGINES["vllm-lws"].operators()[0].chart == LWS_CHART


# --- the Service and probes point at the leader ------------------------------------------


def test_service_selects_the_group_leaders_only(run: StackRun) -> None:
    svc = run.kubernetes_object("Service", "vllm")
    assert svc["spec"]["selector"] == {
        "app.kubernetes.io/name": "vllm",
        "leaderworkerset.sigs.k8s.io/worker-index": "0",
    }
    # Clients use the same Service as on one node; LWS's own headless Service is "vllm-group".
    assert run.outputs["openai_base_url"] == "http://vllm.llm.svc.cluster.local:8000/v1"


def test_only_the_leader_serves_http_and_is_probed(run: StackRun) -> None:
    leader, worker = (engine_container(t) for t in templates(run).values())
    assert leader["ports"] == [{"name": "http", "containerPort": 8000}]
    assert leader["readinessProbe"]["httpGet"] == {"path": "/health", "port": 8000}
    assert leader["startupProbe"]["failureThreshold"] * leader["startupProbe"]["periodSeconds"] >= 40 * 60
    assert not {"ports", "startupProbe", "readinessProbe", "livenessProbe"} & set(worker)


# --- consistent ranks, sizes and addresses -----------------------------------------------


def test_wide_ep_leader_and_worker_agree(run: StackRun) -> None:
    """DP 16 + EP 16 over 2 x 8 GPUs: each node holds 8 DP ranks; the worker's start at
    1 x 8; both meet at the leader's address and the same RPC port; only the worker is
    headless; everything before the rendezvous is identical."""
    t = templates(run)
    leader, worker = argv(t["leader"], 0), argv(t["worker"], 1)
    assert value(leader, "--data-parallel-size") == value(worker, "--data-parallel-size") == "16"
    assert value(leader, "--tensor-parallel-size") == value(worker, "--tensor-parallel-size") == "1"
    assert "--enable-expert-parallel" in leader and "--enable-expert-parallel" in worker
    local = int(value(leader, "--data-parallel-size-local"))
    assert local == int(value(worker, "--data-parallel-size-local")) == 8
    assert local * lws(run)["spec"]["leaderWorkerTemplate"]["size"] == 16
    assert value(leader, "--data-parallel-address") == value(worker, "--data-parallel-address") == LEADER_IP
    assert value(leader, "--data-parallel-rpc-port") == value(worker, "--data-parallel-rpc-port") == "29550"
    assert "--data-parallel-start-rank" not in leader  # would make the leader hybrid-LB
    assert value(worker, "--data-parallel-start-rank") == "8"
    assert "--headless" in worker and "--headless" not in leader
    assert not {"--nnodes", "--node-rank", "--master-addr"} & set(leader + worker)
    common = leader.index("--data-parallel-size-local")
    assert leader[:common] == worker[:common]


def test_a_third_node_would_start_at_rank_16(run: StackRun) -> None:
    assert value(argv(templates(run)["worker"], 2), "--data-parallel-start-rank") == "16"


def test_tp_x_pp_leader_and_worker_agree(pp_run: StackRun) -> None:
    """TP 8 inside each node x PP 2 across: the same --nnodes and master address and port
    on both; node ranks 0 and LWS_WORKER_INDEX; the worker headless."""
    t = templates(pp_run)
    leader, worker = argv(t["leader"], 0), argv(t["worker"], 1)
    for words in (leader, worker):
        assert value(words, "--tensor-parallel-size") == "8"
        assert value(words, "--pipeline-parallel-size") == "2"
        assert value(words, "--nnodes") == "2"
        assert value(words, "--master-addr") == LEADER_IP
        assert value(words, "--master-port") == "29501"
        assert "--data-parallel-size" not in words
    assert (value(leader, "--node-rank"), value(worker, "--node-rank")) == ("0", "1")
    assert "--headless" in worker and "--headless" not in leader
    common = leader.index("--nnodes")
    assert leader[:common] == worker[:common]


def test_leader_binds_its_own_ip_and_workers_resolve_the_leader(run: StackRun) -> None:
    leader, worker = (engine_container(t) for t in templates(run).values())
    leader_env = {e["name"]: e.get("valueFrom") for e in leader["env"]}
    assert leader_env["POD_IP"] == leader_env["VLLM_HOST_IP"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert 'LEADER_IP="$POD_IP"' in leader["command"][2]
    worker_env = {e["name"]: e.get("valueFrom") for e in worker["env"]}
    assert worker_env["VLLM_HOST_IP"] == {"fieldRef": {"fieldPath": "status.podIP"}}  # a distinct IP per node
    assert 'getent hosts "$LWS_LEADER_ADDRESS"' in worker["command"][2]
    assert 'NODE_RANK="$LWS_WORKER_INDEX"' in worker["command"][2]


# --- every pod takes a whole node of the pool, with its RDMA wiring -----------------------


def test_every_pod_takes_a_whole_a4_node_with_rdma(run: StackRun) -> None:
    for role, template in templates(run).items():
        spec, container = template["spec"], engine_container(template)
        assert container["resources"]["requests"]["nvidia.com/gpu"] == "8", role
        assert container["resources"]["limits"]["nvidia.com/gpu"] == "8", role
        assert spec["nodeSelector"] == {"cloud.google.com/gke-nodepool": "a4high"}, role
        annotations = template["metadata"]["annotations"]
        assert '"network":"rdma-7"' in annotations["networking.gke.io/interfaces"], role
        assert {m["mountPath"] for m in container["volumeMounts"]} >= {"/usr/local/gib", "/usr/local/nvidia"}
        assert container["securityContext"]["capabilities"]["add"] == ["IPC_LOCK"], role
        script = container["command"][2]
        assert ". /usr/local/gib/scripts/set_nccl_env.sh\n" in script, role
        assert "export NCCL_SOCKET_IFNAME=eth0,eth1\n" in script, role
        assert "export NCCL_TUNER_CONFIG_PATH=/usr/local/gib/configs/tuner_config_a4.txtpb\n" in script, role
        # The GPU check counts the node's GPUs, not the replica's.
        assert any("8" in str(c.get("command")) for c in spec["initContainers"] if c["name"] == "gpu-check")


def test_pool_resources_are_requested_by_every_pod() -> None:
    """A pool's extra devices (EFA interfaces on EKS) are requested and limited next to the GPUs."""
    config = parse(raw(STACK))
    efa = replace(GKE_A4, pod_resources={"vpc.amazonaws.com/efa": "32"})
    ctx = EngineContext(
        namespace="llm",
        settings=EngineSettings.from_config(config, from_bucket=False),
        gpu=efa,
        weights=WeightsPlan(loader="huggingface", model_arg=config.serving.model),
        service_account="model-reader",
        hf_token=False,
        exposure=config.serving.exposure.engine,
        load_balancing=LoadBalancing(),
        clients=(Peer({"app.kubernetes.io/name": "open-webui"}),),
    )
    group = leader_worker_set(ctx)["spec"]["leaderWorkerTemplate"]
    for template in (group["leaderTemplate"], group["workerTemplate"]):
        resources = engine_container(template)["resources"]
        assert resources["requests"]["vpc.amazonaws.com/efa"] == resources["limits"]["vpc.amazonaws.com/efa"] == "32"


def test_group_pods_reach_each_other_on_any_port(run: StackRun) -> None:
    needs = ENGINES["vllm-lws"]
    assert needs.kind == "vllm-lws"
    policy = run.kubernetes_object("NetworkPolicy", "vllm-network")
    own = {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "vllm"}}}
    peer_rules = [r for r in policy["spec"]["ingress"] if r.get("from") == [own] and "ports" not in r]
    assert peer_rules, policy["spec"]["ingress"]


def test_rendered_rendezvous_flags_cannot_be_repeated_in_extra_args() -> None:
    found = problems(STACK, {"serving": {"extraArgs": ["--nnodes=3", "--headless", "--data-parallel-rpc-port=1"]}})
    assert len(found) == 3
    assert all("is set by the stack config" in p for p in found)


# --- config ---------------------------------------------------------------------------------


def test_nodes_per_replica_picks_the_lws_engine() -> None:
    assert parse(raw(STACK)).serving.engine_kind == "vllm-lws"
    assert parse(raw("a4high")).serving.engine_kind == "vllm"


def test_balanced_over_two_nodes_is_tp8_inside_pp2_across() -> None:
    layout = parse(raw(STACK, PP_SHAPE)).topology.layout
    assert (layout.tensor, layout.pipeline, layout.data, layout.nodes) == (8, 2, 1, 2)


def test_throughput_over_two_nodes_is_dep16() -> None:
    layout = parse(raw(STACK)).topology.layout
    assert (layout.tensor, layout.pipeline, layout.data, layout.expert_ranks, layout.nodes) == (1, 1, 16, 16, 2)


def test_a_spanning_replica_takes_whole_nodes() -> None:
    message = only_problem(STACK, {"serving": {"tensorParallelSize": 8}})
    assert message.startswith("llm-serving:serving.tensorParallelSize = 8: the layout (TP 8 x PP 1 x DP 1 = 8 GPUs)")
    assert "must use the 2 x 8 GPUs" in message


def test_tp_must_stay_inside_a_node() -> None:
    message = only_problem(STACK, {"serving": {"tensorParallelSize": 16}})
    assert message == ("llm-serving:serving.tensorParallelSize = 16: must divide the 8 GPUs per node of pool 'a4high'")


def test_dp_and_pp_across_nodes_together_are_refused() -> None:
    found = problems(STACK, {"serving": {"tensorParallelSize": 4, "pipelineParallelSize": 2, "dataParallelSize": 2}})
    assert any("either PP across the nodes (DP 1) or DP (+ EP) across them (PP 1), not both" in p for p in found)


def test_the_gke_pool_must_hold_every_node_of_every_replica() -> None:
    message = only_problem(STACK, {"serving": {"replicas": 2}})
    assert message.startswith(
        "llm-serving:serving.replicas = 2: 2 replica(s) x 2 nodes per replica (nodesPerReplica) need 4 node(s) of "
        "pool 'a4high', which has platform.gpuPool.nodeCount = 2"
    )
    assert "a reservation must hold that many machines" in message


def test_compact_placement_is_required_across_nodes() -> None:
    message = only_problem(STACK, {"platform": {"gpuPool": {"compactPlacement": False}}})
    assert message.startswith("llm-serving:serving.nodesPerReplica = 2: a replica that spans nodes needs them close")
    assert "platform.gpuPool.compactPlacement: true" in message


def test_a_pool_without_fabric_is_refused_unless_the_stack_opts_in() -> None:
    two_p5 = {**EKS_P5, "serving": {**EKS_P5["serving"], "pipelineParallelSize": 2, "nodesPerReplica": 2}}
    message = only_problem("eks", two_p5)
    assert message.startswith("llm-serving:serving.nodesPerReplica = 2: pool 'p5' has no inter-node GPU fabric")
    assert "serving.allowTcpInterconnect: true" in message
    opted_in = {**two_p5, "serving": {**two_p5["serving"], "allowTcpInterconnect": True}}
    layout = parse(raw("eks", opted_in)).topology.layout
    assert (layout.tensor, layout.pipeline, layout.nodes) == (8, 2, 2)


# --- sizing across nodes ----------------------------------------------------------------


def test_dep16_weights_by_hand() -> None:
    """DP 16 + EP 16 on 2 x 8 B200 (TP 1 per rank), from R1's dimensions (tests/test_sizing.py):
    attention 61 x (15,138,816 + 171,966,464 + 33,554,432)        = 13,460,242,432
    dense      3 x 396,361,728                                    =  1,189,085,184
    MoE       58 x (256 x 44,040,192 / 16 + 44,040,192 + 3,670,016) = 43,636,490,240
    embeddings + LM head 2 x 1,853,358,080                        =  3,706,716,160
    total 61,992,534,016 B = 57.73 GiB (DEP 8: 95.80; the routed experts halve)."""
    moe = 58 * (256 * 44_040_192 // 16 + 44_040_192 + 3_670_016)
    assert moe == 43_636_490_240
    derived = (13_460_242_432 + 1_189_085_184 + moe + 3_706_716_160) / GIB
    assert derived == pytest.approx(57.73, abs=0.01)
    calibration = 79.74 / 79.51  # the CUDA measurement over the TP 8 derivation (test_sizing.py)
    report = parse(raw(STACK)).sizing
    assert report is not None
    assert report.weights_gib == pytest.approx(derived * calibration, rel=0.03)


def test_dep16_kv_per_rank_and_per_replica_by_hand() -> None:
    """fp8 KV at 0.95 on B200, per rank:
    budget 178.35 x 0.95 = 169.433; weights 57.73 x 1.0029 = 57.90
    activation (as DEP 8: TP 1, 16,384 batched tokens, 1,024 sequences) = 5.993
    non-torch (16-rank expert group) 1.5; graphs 3 % of weights = 1.737
    KV = 102.30 GiB / 35,136 B = 3.126 M tokens per rank; 16 ranks: 50.0 M per replica."""
    weights = 57.73 * 79.74 / 79.51
    activation = (16384 * ((2 * 18432 + 4 * 7168) * 2 + 8 * 7168 * 4) + 1024 * 129280 * 4) / GIB
    kv = 178.35 * 0.95 - weights - activation - 1.5 - 0.03 * weights
    assert kv == pytest.approx(102.30, abs=0.05)
    per_rank = kv * GIB / 35_136
    report = parse(raw(STACK)).sizing
    assert report is not None
    assert report.kv_bytes_per_token == 35_136
    assert report.tokens_fit == pytest.approx(per_rank, rel=0.03)
    assert report.replica_tokens == 16 * report.tokens_fit
    assert report.replica_tokens == pytest.approx(16 * per_rank, rel=0.03)


def test_tp8_pp2_on_two_b200_nodes_sizes_each_stage() -> None:
    """The PP shape on 2 x 8 B200: stage weights 38.52 / 40.99 GiB x 1.0029 (test_sizing.py),
    the heavier stage 1 binds, and its KV holds 30 layers x 576 B (fp8: one byte per element)."""
    report = parse(raw(STACK, PP_SHAPE)).sizing
    assert report is not None
    s0, s1 = report.stages
    assert s0.weights_gib == pytest.approx(38.52 * 79.74 / 79.51, rel=0.03)
    assert s1.weights_gib == pytest.approx(40.99 * 79.74 / 79.51, rel=0.03)
    assert (s0.kv_bytes_per_token, s1.kv_bytes_per_token) == (31 * 576, 30 * 576)
    assert report.tokens_fit == min(s0.tokens_fit, s1.tokens_fit)
    direct = size(SizingRequest(R1, GPUS["B200"], tensor_parallel=8, pipeline_parallel=2, kv_cache_dtype="fp8"))
    assert direct.weights_gib == report.weights_gib


def test_the_plan_prints_the_multi_node_sizing(run: StackRun) -> None:
    assert run.outputs["engine"]["layout"] == "TP 1 x PP 1 x DP 16, EP 16 = 16 GPUs on 2 nodes"
    assert run.outputs["engine"]["gpus_per_replica"] == 16
    assert (
        run.outputs["engine"]["kv_cache_tokens_per_replica_estimate"]
        == 16 * (run.outputs["engine"]["kv_cache_tokens_estimate"])
    )
