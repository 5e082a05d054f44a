"""Stack config: the stack files validate, and every bad-input rule names its key.

Pure tests: configs are the real stack files with one change merged in, validated by
``components.config.parse`` without running the program.
"""

from __future__ import annotations

from typing import Any

import pytest

from components.config import NAMESPACE, ConfigError, StackConfig, parse
from tools.offline import load_stack_config, merge


def raw(stack: str, changes: dict[str, Any] | None = None) -> dict[str, Any]:
    """The stack file's structured config (keys without namespace), with changes merged in."""
    config = {k.split(":", 1)[1]: v for k, v in load_stack_config(stack).items() if k.startswith(f"{NAMESPACE}:")}
    return merge(config, changes or {})


def problems(stack: str, changes: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse(raw(stack, changes))
    return err.value.problems


def only_problem(stack: str, changes: dict[str, Any]) -> str:
    found = problems(stack, changes)
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize("stack", ["a4high", "a4high-2node", "eks", "eks-p5"])
def test_stack_files_validate(stack: str) -> None:
    config = parse(raw(stack))
    assert isinstance(config, StackConfig)
    assert config.sizing is not None and config.sizing.fits


def test_a4high_defaults_come_from_the_models() -> None:
    config = parse(raw("a4high"))
    assert config.platform.cloud == "gcp"
    assert config.platform.network.mtu == 8896
    assert [str(n) for n in config.platform.network.rdma_subnets][:2] == ["192.168.128.0/21", "192.168.136.0/21"]
    assert len(config.platform.network.rdma_subnets) == 8
    assert config.serving.served_name == "deepseek-r1"
    assert config.max_model_len == 32768


# --- keys and structure ----------------------------------------------------------------


def test_misspelled_key_names_the_nearest_valid_key() -> None:
    message = only_problem("a4high", {"serving": {"maxModelLn": 4096}})
    assert message.startswith("llm-serving:serving.maxModelLn: unknown key; did you mean 'maxModelLen'?")


def test_misspelled_top_level_key_is_reported() -> None:
    message = only_problem("eks", {"benchmak": {"enabled": True}})
    assert "llm-serving:benchmak: unknown key; did you mean 'benchmark'?" in message


def test_misspelled_key_inside_the_cloud_union_names_the_cloud_model_keys() -> None:
    message = only_problem("a4high", {"platform": {"gpuPool": {"reservaton": "x"}}})
    assert message.startswith("llm-serving:platform.gpuPool.reservaton: unknown key; did you mean 'reservation'?")


def test_platform_is_required() -> None:
    assert only_problem("eks", {"platform": None}) == "llm-serving:platform: is required"


def test_unknown_cloud_lists_the_clouds() -> None:
    message = only_problem("eks", {"platform": {"cloud": "onprem"}})
    assert message.startswith("llm-serving:platform")
    assert message == (
        "llm-serving:platform.cloud = 'onprem': not a supported cloud; allowed: "
        "'gcp' (GKE, components/config/gcp.py), 'aws' (EKS, components/config/aws.py) or "
        "'existing' (a cluster you already have, components/config/existing.py)"
    )


def test_all_problems_are_reported_at_once() -> None:
    found = problems(
        "a4high",
        {
            "platform": {"zone": "us-east1-b", "gpuPool": {"provisioning": "spot"}},
            "serving": {"maxModelLn": 1},
            "benchmak": {},
        },
    )
    keys = [p.split(" ", 1)[0].rstrip(":") for p in found]
    assert keys == [
        "llm-serving:platform.zone",
        "llm-serving:platform.gpuPool.reservation",
        "llm-serving:serving.maxModelLn",
        "llm-serving:benchmak",
    ]


def test_error_message_names_key_value_and_what_is_allowed() -> None:
    message = only_problem("a4high", {"serving": {"kvCacheDtype": "fp4"}})
    assert message.startswith("llm-serving:serving.kvCacheDtype = 'fp4': must be 'auto', 'bfloat16'")
    error = ConfigError([message])
    assert str(error).startswith("invalid stack configuration (1 problem); nothing was created:")


# --- GCP platform ------------------------------------------------------------------------


def test_zone_outside_region() -> None:
    message = only_problem("a4high", {"platform": {"zone": "europe-west4-b"}})
    assert message.startswith("llm-serving:platform.zone = 'europe-west4-b': must be a zone of region 'us-central1'")


def test_reservation_mode_needs_a_reservation() -> None:
    message = only_problem("a4high", {"platform": {"gpuPool": {"reservation": None}}})
    assert message.startswith("llm-serving:platform.gpuPool.reservation = null: provisioning 'reservation' needs")


@pytest.mark.parametrize("mode", ["spot", "flex-start", "on-demand"])
def test_other_modes_cannot_consume_a_reservation(mode: str) -> None:
    message = only_problem("a4high", {"platform": {"gpuPool": {"provisioning": mode}}})
    assert message.startswith(
        f"llm-serving:platform.gpuPool.reservation = 'my-a4-reservation': provisioning '{mode}' cannot consume"
    )


def test_reservation_block_needs_a_reservation() -> None:
    message = only_problem(
        "a4high", {"platform": {"gpuPool": {"provisioning": "spot", "reservation": None, "reservationBlock": "b1"}}}
    )
    assert message.startswith("llm-serving:platform.gpuPool.reservationBlock = 'b1': a reservation block needs")


def test_flex_start_needs_room_to_scale_up() -> None:
    message = only_problem(
        "a4high", {"platform": {"gpuPool": {"provisioning": "flex-start", "reservation": None, "nodeCount": 0}}}
    )
    assert message.startswith("llm-serving:platform.gpuPool.nodeCount = 0: flex-start scales the pool from 0 up")


@pytest.mark.parametrize(
    ("key", "value"),
    [("reservation", "projects/p/reservations/r"), ("reservationBlock", "Block_1")],
)
def test_reservation_and_block_are_names(key: str, value: str) -> None:
    message = only_problem("a4high", {"platform": {"gpuPool": {key: value}}})
    assert message.startswith(f"llm-serving:platform.gpuPool.{key} = '{value}': must be the name of a reservation")


def test_control_plane_range_is_a_slash_28() -> None:
    message = only_problem("a4high", {"platform": {"network": {"controlPlane": "172.16.0.0/24"}}})
    assert message.startswith("llm-serving:platform.network.controlPlane = ")
    assert "GKE needs exactly a /28" in message


def test_compact_placement_is_not_for_spot() -> None:
    message = only_problem(
        "a4high", {"platform": {"gpuPool": {"provisioning": "spot", "reservation": None, "compactPlacement": True}}}
    )
    assert message.startswith("llm-serving:platform.gpuPool.compactPlacement = true: COMPACT placement")


@pytest.mark.parametrize("name", ["LLM-Serving", "1cluster", "cluster-", "a-name-longer-than-15"])
def test_cluster_name_gke_would_reject(name: str) -> None:
    message = only_problem("a4high", {"platform": {"clusterName": name}})
    assert message.startswith(f"llm-serving:platform.clusterName = '{name}':")


def test_gpu_machine_must_have_rdma_nics() -> None:
    message = only_problem("a4high", {"platform": {"gpuPool": {"machineType": "a3-megagpu-8g"}}})
    assert "GPUDirect RDMA over RoCE; allowed: a3-ultragpu-8g, a4-highgpu-8g" in message


def test_control_plane_needs_authorized_networks() -> None:
    message = only_problem("a4high", {"platform": {"masterAuthorizedNetworks": []}})
    assert message.startswith("llm-serving:platform.masterAuthorizedNetworks = []: list at least one CIDR")


def test_overlapping_ranges() -> None:
    message = only_problem("a4high", {"platform": {"network": {"pods": "192.168.0.0/16"}}})
    assert message.startswith("llm-serving:platform.network.pods = ")
    assert "overlaps primarySubnet (192.168.0.0/18)" in message


def test_rdma_range_too_small_for_eight_subnets() -> None:
    message = only_problem("a4high", {"platform": {"network": {"rdma": "192.168.128.0/30"}}})
    assert "must be /29 or larger to split into 8 subnets" in message


def test_invalid_project_id() -> None:
    assert only_problem("a4high", {"platform": {"project": "My_Project"}}).startswith(
        "llm-serving:platform.project = 'My_Project': must be a project id: 6 to 30 lowercase letters"
    )


def test_tensor_parallel_must_divide_the_gpus_of_a_node() -> None:
    message = only_problem("a4high", {"serving": {"tensorParallelSize": 3}})
    assert message.startswith("llm-serving:serving.tensorParallelSize = 3: must divide the 8 GPUs per node")


def test_rdma_pods_take_the_whole_node() -> None:
    message = only_problem("a4high", {"serving": {"tensorParallelSize": 4}})
    assert "the layout (TP 4 x PP 1 x DP 1 = 4 GPUs) must use the 1 x 8 GPUs of the replica's whole node" in message


# --- AWS platform ------------------------------------------------------------------------


def test_instance_family_without_nvidia_gpus() -> None:
    message = only_problem("eks", {"platform": {"gpuNodePools": [{"name": "cpu", "instanceFamilies": ["m5"]}]}})
    assert message.startswith("llm-serving:platform.gpuNodePools[0].instanceFamilies[0] = 'm5': not an NVIDIA GPU")


def test_fewer_than_two_availability_zones() -> None:
    message = only_problem("eks", {"platform": {"availabilityZones": ["us-west-2a"]}})
    assert message.startswith('llm-serving:platform.availabilityZones = ["us-west-2a"]: List should have at least 2')


def test_availability_zone_outside_region() -> None:
    message = only_problem("eks", {"platform": {"availabilityZones": ["us-west-2a", "us-east-1b"]}})
    assert message.startswith("llm-serving:platform.availabilityZones[1] = 'us-east-1b': must be a zone of region")


def test_availability_zones_must_be_distinct() -> None:
    assert "zones must be distinct" in only_problem(
        "eks", {"platform": {"availabilityZones": ["us-west-2a", "us-west-2a"]}}
    )


def test_gpu_limit_below_one_node() -> None:
    message = only_problem(
        "eks",
        {
            "platform": {
                "gpuNodePools": [
                    {"name": "g5", "instanceFamilies": ["g5"], "instanceSizes": ["12xlarge"], "gpuLimit": 2}
                ]
            },
        },
    )
    assert message.startswith("llm-serving:platform.gpuNodePools[0].gpuLimit = 2: below the 4 GPUs")


def test_families_with_different_gpus_cannot_share_a_pool() -> None:
    message = only_problem("eks", {"platform": {"gpuNodePools": [{"name": "g5", "instanceFamilies": ["g5", "g6e"]}]}})
    assert "families with different GPUs (A10G, L40S) cannot share a pool" in message


def test_sizes_that_no_family_has() -> None:
    message = only_problem("eks", {"platform": {"gpuNodePools": [{"name": "g5", "instanceSizes": ["metal"]}]}})
    assert message.startswith('llm-serving:platform.gpuNodePools[0].instanceSizes = ["metal"]: no instance type')


def test_pool_names_must_be_unique() -> None:
    message = only_problem("eks", {"platform": {"gpuNodePools": [{"name": "g5"}, {"name": "g5"}]}})
    assert message.startswith("llm-serving:platform.gpuNodePools[1].name = 'g5': pool names must be unique")


def test_api_endpoint_needs_allowed_cidrs() -> None:
    message = only_problem("eks", {"platform": {"endpointPublicAccessCidrs": []}})
    assert message.startswith("llm-serving:platform.endpointPublicAccessCidrs = []: list at least one CIDR")


def test_vpc_too_small() -> None:
    assert "must be /20 or larger" in only_problem("eks", {"platform": {"vpcCidr": "10.0.0.0/24"}})


def test_kubernetes_version_outside_karpenter_support() -> None:
    message = only_problem("eks", {"platform": {"kubernetesVersion": "1.29"}})
    assert message.startswith("llm-serving:platform.kubernetesVersion = '1.29': Karpenter 1.14.1")
    assert "supports Kubernetes 1.30, 1.31" in message


def test_reserved_capacity_needs_reservation_ids() -> None:
    message = only_problem(
        "eks",
        {"platform": {"gpuNodePools": [{"name": "p5", "instanceFamilies": ["p5"], "capacityTypes": ["reserved"]}]}},
    )
    assert message.startswith("llm-serving:platform.capacityReservationIds = []: GPU pool(s) p5 use capacity type")


def test_capacity_reservation_id_format() -> None:
    message = only_problem("eks", {"platform": {"capacityReservationIds": ["odcr-1"]}})
    assert message.startswith(
        "llm-serving:platform.capacityReservationIds[0] = 'odcr-1': must be a capacity reservation id"
    )


def test_nat_gateway_layout_is_per_zone_or_single() -> None:
    assert parse(raw("eks")).platform.nat_gateways == "per-zone"  # type: ignore[union-attr]
    message = only_problem("eks", {"platform": {"natGateways": "none"}})
    assert message.startswith("llm-serving:platform.natGateways = 'none': must be 'per-zone' or 'single'")


def test_disruption_budget_schedule_needs_a_duration() -> None:
    budget = {"nodes": "0", "schedule": "0 9 * * 1-5"}
    message = only_problem("eks", {"platform": {"gpuNodePools": [{"name": "g5", "budgets": [budget]}]}})
    assert message.startswith("llm-serving:platform.gpuNodePools[0].budgets[0].duration = null: schedule and duration")


def test_disruption_budget_duration_in_hours_and_minutes() -> None:
    budget = {"nodes": "0", "schedule": "@daily", "duration": "90s"}
    message = only_problem("eks", {"platform": {"gpuNodePools": [{"name": "g5", "budgets": [budget]}]}})
    assert message.startswith(
        "llm-serving:platform.gpuNodePools[0].budgets[0].duration = '90s': must be hours and/or minutes"
    )


def test_replicas_beyond_the_pool_gpu_limit() -> None:
    message = only_problem("eks", {"serving": {"replicas": 5}})
    assert message.startswith("llm-serving:serving.replicas = 5: 5 replica(s) x 1 GPUs exceed pool 'g5''s gpuLimit")


def test_model_that_does_not_fit_the_instance() -> None:
    message = only_problem(
        "eks",
        {
            # (BF16 KV: an A10G cannot hold R1's MLA cache in FP8, a problem of its own.)
            "serving": {
                "model": "deepseek-ai/DeepSeek-R1",
                "tensorParallelSize": 8,
                "replicas": 1,
                "kvCacheDtype": "auto",
            },
            "platform": {"gpuNodePools": [{"name": "g5", "gpuLimit": 8}]},
        },
    )
    assert message.startswith("llm-serving:serving.tensorParallelSize = 8: the weights of deepseek-ai/DeepSeek-R1")
    assert "79.74 GiB per GPU on 8 x A10G" in message


def test_unknown_gpu_pool() -> None:
    message = only_problem("eks", {"serving": {"gpuPool": "p5"}})
    assert message == "llm-serving:serving.gpuPool = 'p5': no such GPU pool; allowed: g5"


# --- serving -----------------------------------------------------------------------------


def test_context_that_does_not_fit_the_gpu() -> None:
    message = only_problem("eks", {"serving": {"maxModelLen": 131072}})
    assert message.startswith("llm-serving:serving.maxModelLen = 131072: one 131072-token sequence needs 16.00 GiB")
    assert "at most 33792 fits" in message


def test_context_beyond_the_model() -> None:
    message = only_problem("a4high", {"serving": {"maxModelLen": 200000}})
    assert message == (
        "llm-serving:serving.maxModelLen = 200000: deepseek-ai/DeepSeek-R1 supports at most 163840 tokens of context"
    )


def test_unknown_model_lists_the_sized_models() -> None:
    message = only_problem("eks", {"serving": {"model": "org/unknown"}})
    assert message.startswith("llm-serving:serving.model = 'org/unknown': unknown model; sized models are:")


@pytest.mark.parametrize("flag", ["--enable-reasoning", "--disable-log-requests"])
def test_removed_vllm_flags_are_refused(flag: str) -> None:
    message = only_problem("a4high", {"serving": {"extraArgs": [flag]}})
    assert f"{flag} is removed in vLLM" in message


@pytest.mark.parametrize("namespace", ["kube-system", "default"])
def test_workload_namespace_is_our_own(namespace: str) -> None:
    message = only_problem("eks", {"serving": {"namespace": namespace}})
    assert message.startswith(f"llm-serving:serving.namespace = '{namespace}': the platform creates this namespace")


def test_gpu_memory_utilization_range() -> None:
    assert "less than or equal to 0.98" in only_problem("a4high", {"serving": {"gpuMemoryUtilization": 0.99}})


def test_pipeline_beyond_one_node() -> None:
    message = only_problem(
        "eks",
        {
            "serving": {"pipelineParallelSize": 2},
            "platform": {"gpuNodePools": [{"name": "g5", "instanceSizes": ["2xlarge"], "gpuLimit": 4}]},
        },
    )
    assert message.startswith("llm-serving:serving.pipelineParallelSize = 2:")
    assert "exceeds the 1 GPUs of one node" in message


def test_load_balancer_needs_allowed_ranges() -> None:
    message = only_problem("a4high", {"serving": {"exposure": {"openWebui": {"type": "LoadBalancer"}}}})
    assert message.startswith("llm-serving:serving.exposure.openWebui.allowedSourceRanges = []: a LoadBalancer needs")


def test_cluster_ip_with_source_ranges_is_a_mistake() -> None:
    message = only_problem("a4high", {"serving": {"exposure": {"engine": {"allowedSourceRanges": ["10.0.0.0/8"]}}}})
    assert "internal and allowedSourceRanges need type LoadBalancer" in message


def test_ray_engine_is_never_exposed_without_a_key() -> None:
    message = only_problem(
        "eks", {"serving": {"exposure": {"engine": {"type": "LoadBalancer", "allowedSourceRanges": ["10.0.0.0/8"]}}}}
    )
    assert message.startswith("llm-serving:serving.exposure.engine.type = 'LoadBalancer': Ray Serve has no API key")


# --- across sections ---------------------------------------------------------------------


def test_cache_needs_a_bucket() -> None:
    no_store = {"modelStore": {"kind": "none", "keepOnDestroy": None, "backupRetentionDays": None}}
    message = only_problem("a4high", {"platform": no_store, "serving": {"openWebui": {"backup": {"enabled": False}}}})
    assert message.startswith("llm-serving:modelCache.enabled = true: the model cache needs a model store")


def test_benchmark_needs_an_engine() -> None:
    message = only_problem("eks", {"serving": {"engine": "none"}, "benchmark": {"enabled": True}})
    assert message.startswith("llm-serving:benchmark.enabled = true: a benchmark needs an engine")


def test_platform_only_stack_is_valid() -> None:
    config = parse(raw("eks", {"serving": {"engine": "none"}}))
    assert config.sizing is None


# --- benchmark ----------------------------------------------------------------------------


def test_benchmark_prompts_scale_with_concurrency() -> None:
    config = parse(raw("a4high", {"benchmark": {"enabled": True, "maxConcurrency": [1, 16, 256]}})).benchmark
    assert [config.prompts(c) for c in (1, 16, 256)] == [100, 160, 2560]
    assert config.prompts(None) == 1100  # unbounded: the seeds' count


def test_benchmark_num_prompts_fixes_every_point() -> None:
    config = parse(raw("a4high", {"benchmark": {"numPrompts": 1100, "maxConcurrency": [1, 64]}})).benchmark
    assert [config.prompts(c) for c in (1, 64)] == [1100, 1100]


def test_benchmark_num_prompts_and_scaling_are_exclusive() -> None:
    message = only_problem("a4high", {"benchmark": {"numPrompts": 500, "minPrompts": 50}})
    assert message.startswith("llm-serving:benchmark.minPrompts = 50: numPrompts fixes the prompt count")


def test_benchmark_concurrency_points_are_distinct() -> None:
    message = only_problem("a4high", {"benchmark": {"maxConcurrency": [1, 16, 16]}})
    assert message.startswith("llm-serving:benchmark.maxConcurrency")
    assert "repeated: [16]" in message
