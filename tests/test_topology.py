"""Serving topologies: profiles resolve to layouts, bad layouts are refused with numbers,
the rendered vLLM flags follow the profile, and extraArgs cannot repeat an owned flag."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from test_config import only_problem, problems, raw
from test_serving import container, env_of, flag, vllm_serve_argv

from components.catalog import PROFILES
from components.config import ServingConfig, parse
from components.platform import LoadBalancing
from components.vllm_cli import canonical_flag, owned_flags
from components.workloads import serving as serving_module
from components.workloads.engine import EngineSettings
from components.workloads.engines import ENGINES, Endpoint, Engine, EngineContext, EngineObject, EngineOutputs
from components.workloads.needs import Peer, WorkloadNeeds
from components.workloads.weights import WeightsPlan
from fake_platforms import EKS_G5, GKE_A4, run_serving

EKS_P5: dict[str, dict[str, Any]] = {
    "platform": {"gpuNodePools": [{"name": "p5", "instanceFamilies": ["p5"], "gpuLimit": 16}]},
    "serving": {"engine": "vllm", "model": "deepseek-ai/DeepSeek-R1", "tensorParallelSize": 8, "maxModelLen": 16384},
}


def topology(stack: str, changes: dict[str, Any] | None = None) -> Any:
    return parse(raw(stack, changes)).topology


# --- profiles resolve to layouts ----------------------------------------------------------


def test_balanced_is_tp8_with_expert_parallel_and_fp8_kv() -> None:
    topo = topology("a4high", {"serving": {"profile": "balanced"}})
    layout = topo.layout
    assert (layout.tensor, layout.pipeline, layout.data, layout.expert) == (8, 1, 1, True)
    assert (topo.kv_cache_dtype, topo.performance_mode, topo.mtp_speculative_tokens) == ("fp8", "balanced", 0)


def test_throughput_is_dp8_with_expert_parallel() -> None:
    topo = topology("a4high", {"serving": {"profile": "throughput"}})
    assert (topo.layout.tensor, topo.layout.data, topo.layout.expert) == (1, 8, True)
    assert topo.gpu_memory_utilization == 0.95
    assert topo.ep_weight_filter and topo.kv_cache_dtype == "fp8"


def test_interactivity_is_tp8_with_mtp() -> None:
    topo = topology("a4high", {"serving": {"profile": "interactivity"}})
    assert (topo.layout.tensor, topo.layout.data, topo.layout.expert) == (8, 1, False)
    assert topo.mtp_speculative_tokens == 1 and topo.performance_mode == "interactivity"


def test_dense_model_gets_no_moe_or_mtp_choices() -> None:
    """The eks model (Llama 8B, dense, no MTP weights) under every profile: TP on one GPU,
    no EP, no MTP, and its KV cache stays at the model dtype (fp8 not validated for it)."""
    for profile in PROFILES:
        topo = topology("eks", {"serving": {"engine": "vllm", "profile": profile}})
        assert (topo.layout.tensor, topo.layout.data, topo.layout.expert) == (1, 1, False)
        assert topo.mtp_speculative_tokens == 0 and topo.kv_cache_dtype == "auto"


def test_explicit_keys_override_the_profile() -> None:
    topo = topology("a4high", {"serving": {"profile": "throughput", "tensorParallelSize": 8, "kvCacheDtype": "auto"}})
    assert (topo.layout.tensor, topo.layout.data, topo.kv_cache_dtype) == (8, 1, "auto")


def test_existing_keys_keep_working() -> None:
    topo = topology("a4high", {"serving": {"tensorParallelSize": 4, "pipelineParallelSize": 2}})
    assert (topo.layout.tensor, topo.layout.pipeline) == (4, 2)


# --- refusals, with numbers ----------------------------------------------------------------


def test_layout_gpus_must_match_the_replica() -> None:
    message = only_problem("a4high", {"serving": {"dataParallelSize": 4}})
    assert message.startswith("llm-serving:serving.dataParallelSize = 4: the layout (TP 1 x PP 1 x DP 4 = 4 GPUs)")
    assert "must use the 1 x 8 GPUs" in message


def test_a_replica_over_nodes_needs_the_pool_to_hold_them() -> None:
    """Multi-node replicas are built (tests/test_vllm_lws.py); one node in the pool is too few."""
    found = problems("a4high", {"serving": {"nodesPerReplica": 2}})
    assert found[0].startswith(
        "llm-serving:serving.replicas = 1: 1 replica(s) x 2 nodes per replica (nodesPerReplica) need 2 node(s)"
    )


def test_expert_parallel_only_for_moe_models() -> None:
    found = problems("eks", {"serving": {"engine": "vllm", "expertParallel": True}})
    assert any(
        p.startswith("llm-serving:serving.expertParallel = true: deepseek-ai/DeepSeek-R1-Distill-Llama-8B is a dense")
        for p in found
    ), found


def test_mtp_only_for_models_with_mtp_weights() -> None:
    message = only_problem("eks", {"serving": {"engine": "vllm", "mtpSpeculativeTokens": 2}})
    assert message.startswith("llm-serving:serving.mtpSpeculativeTokens = 2: deepseek-ai/DeepSeek-R1-Distill-Llama-8B")
    assert "no multi-token-prediction weights" in message


def test_decode_context_must_divide_tensor_parallel() -> None:
    message = only_problem("a4high", {"serving": {"decodeContextParallelSize": 3}})
    assert message.startswith("llm-serving:serving.decodeContextParallelSize = 3: must divide tensorParallelSize (8)")


def test_rayservice_runs_tp_and_pp_only() -> None:
    message = only_problem("eks", {"serving": {"model": "deepseek-ai/DeepSeek-R1", "mtpSpeculativeTokens": 1}})
    assert message.startswith("llm-serving:serving.engine = 'rayservice': the rayservice engine runs TP x PP only")


def test_r1_fp8_does_not_fit_one_h100_node() -> None:
    """8 x H100 (79.18 GiB) at 0.90: 71.26 GiB per GPU, less than R1's 79.74 GiB at TP 8."""
    message = only_problem("eks", EKS_P5)
    assert message.startswith("llm-serving:serving.tensorParallelSize = 8: the weights of deepseek-ai/DeepSeek-R1")
    assert "79.74 GiB per GPU" in message and "71.26 GiB" in message


# --- extraArgs may not repeat a flag the config owns -------------------------------------


@pytest.mark.parametrize(
    "arg",
    [
        "--tensor-parallel-size=16",
        "-tp",
        "--tensor_parallel_size",
        "--kv-cache-dtype",
        "--device-memory-utilization=0.99",
        "--enable-expert-parallel",
        "--no-enable-expert-parallel",
        "--data-parallel-size",
        "--speculative-config",
        "--performance-mode",
        "--api-key",
        "--download-dir",
        "--load-format",
    ],
)
def test_extra_args_cannot_repeat_an_owned_flag(arg: str) -> None:
    message = only_problem("a4high", {"serving": {"extraArgs": [arg, "8"]}})
    assert message.startswith(f"llm-serving:serving.extraArgs[0] = '{arg}': {canonical_flag(arg)} is set by the stack")


def test_extra_args_may_add_other_flags() -> None:
    config = parse(raw("a4high", {"serving": {"extraArgs": ["--enable-dbo", "--max-log-len", "100"]}}))
    assert config.serving.extra_args == ["--enable-dbo", "--max-log-len", "100"]


def test_owned_flags_come_from_the_rendered_command_line() -> None:
    config = parse(raw("a4high"))
    owned = owned_flags(config.serve_options)
    assert {"--tensor-parallel-size", "--max-model-len", "--reasoning-parser", "--api-key"} <= owned
    assert "--trust-remote-code" not in owned  # R1 is native in vLLM 0.33: the flag is not rendered


# --- the a4high stack renders its profile --------------------------------------------------


def test_a4high_renders_the_balanced_profile() -> None:
    argv = vllm_serve_argv(run_serving("a4high", hf_token=True))
    assert flag(argv, "--tensor-parallel-size") == "8"
    assert flag(argv, "--pipeline-parallel-size") == "1"
    assert "--enable-expert-parallel" in argv
    assert flag(argv, "--kv-cache-dtype") == "fp8"
    assert flag(argv, "--performance-mode") == "balanced"
    assert flag(argv, "--gpu-memory-utilization") == "0.9"
    for absent in ("--data-parallel-size", "--speculative-config", "--trust-remote-code", "--api-key"):
        assert absent not in argv


def test_a4high_throughput_renders_dep8() -> None:
    argv = vllm_serve_argv(run_serving("a4high", {"serving": {"profile": "throughput"}}))
    assert flag(argv, "--data-parallel-size") == "8"
    assert flag(argv, "--tensor-parallel-size") == "1"
    assert {"--enable-expert-parallel", "--enable-ep-weight-filter"} <= set(argv)
    assert flag(argv, "--performance-mode") == "throughput"
    assert flag(argv, "--gpu-memory-utilization") == "0.95"


def test_a4high_interactivity_renders_mtp() -> None:
    argv = vllm_serve_argv(run_serving("a4high", {"serving": {"profile": "interactivity"}}))
    assert json.loads(flag(argv, "--speculative-config")) == {"method": "mtp", "num_speculative_tokens": 1}
    assert flag(argv, "--performance-mode") == "interactivity"
    assert "--enable-expert-parallel" not in argv


def test_api_key_reaches_vllm_only_through_the_environment() -> None:
    run = run_serving("a4high", hf_token=True)
    vllm = container(run.kubernetes_object("Deployment", "vllm"), "vllm")
    assert "VLLM_API_KEY" in env_of(vllm)
    assert "--api-key" not in vllm["command"][2] and "$VLLM_API_KEY" not in vllm["command"][2]


def test_ray_engine_gets_the_reasoning_parser() -> None:
    ray = run_serving("eks", hf_token=True).kubernetes_object("RayService", "ray-llm")
    kwargs = yaml.safe_load(ray["spec"]["serveConfigV2"])["applications"][0]["args"]["llm_configs"][0]["engine_kwargs"]
    assert kwargs["reasoning_parser"] == "deepseek_r1"
    assert "trust_remote_code" not in kwargs


# --- engines behind one interface ----------------------------------------------------------


def test_registry_covers_every_configurable_engine() -> None:
    configurable = set(ServingConfig.model_fields["engine"].annotation.__args__) - {"none"}  # type: ignore[union-attr]
    # vllm over several nodes per replica is its own engine module (ServingConfig.engine_kind).
    assert set(ENGINES) == configurable | {"vllm-lws"}


def context(stack: str) -> EngineContext:
    config = parse(raw(stack))
    clients = (Peer({"app.kubernetes.io/name": "open-webui"}),)
    return EngineContext(
        namespace="llm",
        settings=EngineSettings.from_config(config, from_bucket=False),
        gpu=GKE_A4 if stack == "a4high" else EKS_G5,
        weights=WeightsPlan(loader="huggingface", model_arg=config.serving.model),
        service_account="model-reader",
        hf_token=False,
        exposure=config.serving.exposure.engine,
        load_balancing=LoadBalancing(),
        clients=clients,
    )


def pod_labels(manifest: dict[str, Any]) -> list[dict[str, str]]:
    if manifest["kind"] == "Deployment":
        return [manifest["spec"]["template"]["metadata"]["labels"]]
    if manifest["kind"] == "RayService":
        cluster = manifest["spec"]["rayClusterConfig"]
        groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
        return [g["template"]["metadata"]["labels"] for g in groups]
    return []


@pytest.mark.parametrize(("kind", "stack"), [("vllm", "a4high"), ("rayservice", "eks")])
def test_engine_needs_select_its_pods_and_serve_its_clients(kind: str, stack: str) -> None:
    engine, ctx = ENGINES[kind], context(stack)
    needs = engine.needs(ctx)
    pods = [labels for obj in engine.objects(ctx) for labels in pod_labels(obj.manifest)]
    assert pods and all(needs.selector.items() <= labels.items() for labels in pods)
    api = next(p for p in needs.serves if p.port == engine.endpoint().port)
    assert all(c in api.clients for c in ctx.clients)  # the KubeRay operator also probes the Serve proxy
    assert needs.metrics is not None
    assert sum(obj.awaited for obj in engine.objects(ctx)) <= 1


def test_ray_pods_reach_each_other_and_only_the_operator_reaches_the_dashboard() -> None:
    # Raylets, object managers, workers and NCCL's bootstrap use random ports: any port among Ray pods.
    needs = ENGINES["rayservice"].needs(context("eks"))
    assert needs.peer_any_port
    dashboard = next(p for p in needs.serves if p.port == 8265)
    assert all(c.namespace == "kuberay-system" for c in dashboard.clients)


def test_only_vllm_needs_an_api_key() -> None:
    assert ENGINES["vllm"].endpoint().api_key
    assert not ENGINES["rayservice"].endpoint().api_key
    assert ENGINES["rayservice"].bucket_loader == "ray-mirror"


class _GroupEngine(Engine):
    """A stand-in for part 2's multi-node engine: its own objects, endpoint and outputs."""

    kind = "vllm"
    ready_when = "the group's leader answers /health"

    def endpoint(self) -> Endpoint:
        return Endpoint(service="group-leader", port=8000, api_key=True)

    def objects(self, ctx: EngineContext) -> list[EngineObject]:
        group = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "group", "namespace": ctx.namespace}}
        svc = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "group-leader", "namespace": ctx.namespace},
            "spec": {"ports": [{"port": 8000}], "selector": {"role": "leader"}},
        }
        return [EngineObject("group", group, awaited=True), EngineObject("group-leader", svc)]

    def needs(self, ctx: EngineContext) -> WorkloadNeeds:
        return WorkloadNeeds(name="group", selector={"role": "leader"}, peer_ports=(29501,), capabilities=("IPC_LOCK",))

    def outputs(self, ctx: EngineContext) -> EngineOutputs:
        return EngineOutputs(port_forward={"engine": "kubectl port-forward svc/group-leader 8000:8000"})


def test_a_new_engine_is_a_module_not_a_branch(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Serving component applies whatever a registered engine declares: its objects
    (the awaited one with the start-up timeout), its endpoint for Open WebUI, its outputs."""
    monkeypatch.setattr(serving_module, "ENGINES", {"vllm": _GroupEngine()})
    run = run_serving("a4high")
    group = run.one("kubernetes:core/v1:ConfigMap", "group")
    assert group.custom_timeouts and group.custom_timeouts.get("create", "").endswith("m")
    assert run.outputs["openai_base_url"] == "http://group-leader.llm.svc.cluster.local:8000/v1"
    assert run.outputs["port_forward"]["engine"] == "kubectl port-forward svc/group-leader 8000:8000"
    assert run.outputs["engine"]["ready_when"] == "the group's leader answers /health"
    ui = container(run.kubernetes_object("Deployment", "open-webui"), "open-webui")
    assert env_of(ui)["OPENAI_API_BASE_URLS"] == "http://group-leader.llm.svc.cluster.local:8000/v1"


def pod_templates(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    if manifest["kind"] == "Deployment":
        return [manifest["spec"]["template"]]
    if manifest["kind"] == "RayService":
        cluster = manifest["spec"]["rayClusterConfig"]
        return [g["template"] for g in [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]]
    return []


@pytest.mark.parametrize(("kind", "stack"), [("vllm", "a4high"), ("rayservice", "eks")])
def test_metrics_port_is_a_named_port_of_every_engine_pod(kind: str, stack: str) -> None:
    engine, ctx = ENGINES[kind], context(stack)
    metrics = engine.needs(ctx).metrics
    assert metrics is not None
    templates = [t for obj in engine.objects(ctx) for t in pod_templates(obj.manifest)]
    assert templates
    for template in templates:
        names = {p["name"] for c in template["spec"]["containers"] for p in c.get("ports", [])}
        assert metrics.port_name in names


def test_sizing_refusal_of_a_profile_layout_names_the_profile() -> None:
    """Without explicit TP the profile chose the layout, so the problem is reported there."""
    changes = {**EKS_P5, "serving": {**EKS_P5["serving"], "tensorParallelSize": None}}
    message = only_problem("eks", changes)
    assert message.startswith("llm-serving:serving.profile = 'balanced': its layout (TP 8 x PP 1 x DP 1, EP 8")
    assert "79.74 GiB per GPU" in message
