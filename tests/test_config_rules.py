"""Boundaries and defaults of the config rules, one test each: the mutants that used to
survive the whole suite (issue #11.13) change exactly these, so each is pinned here."""

from __future__ import annotations

import re
import types
from typing import Any, Union, get_args, get_origin

import pytest
from pydantic import BaseModel, ValidationError

from components import catalog
from components.config import (
    AwsPlatformConfig,
    ConfigError,
    GcpPlatformConfig,
    ServingConfig,
    StackConfig,
    parse,
)
from components.config.base import DURATION
from components.config.loading import PATTERN_WORDS
from tools.offline import load_stack_config, merge


def raw(stack: str, changes: dict[str, Any] | None = None) -> dict[str, Any]:
    config = {k.split(":", 1)[1]: v for k, v in load_stack_config(stack).items() if k.startswith("llm-serving:")}
    return merge(config, changes or {})


def problems(stack: str, changes: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse(raw(stack, changes))
    return err.value.problems


def accepted(stack: str, changes: dict[str, Any]) -> StackConfig:
    try:
        return parse(raw(stack, changes))
    except ConfigError as err:
        pytest.fail(str(err))


# --- defaults that guard data or capacity ---------------------------------------------


def test_buckets_are_kept_on_destroy_by_default() -> None:
    config = accepted("eks", {"platform": {"modelStore": {"keepOnDestroy": None}}})
    store = config.platform.bucket_store
    assert store is not None
    assert store.keep_on_destroy is True
    assert store.adopt is False


def test_public_access_and_unlisted_regions_are_off_by_default() -> None:
    config = accepted("eks", {})
    assert isinstance(config.platform, AwsPlatformConfig)
    assert config.platform.api_allow_internet is False
    assert config.platform.allow_unlisted_region is False
    assert config.serving.exposure.open_webui.allow_internet is False


def test_serving_defaults() -> None:
    serving = ServingConfig()
    # TP is unset: the profile and the node decide it (components/topology.py)
    assert (serving.replicas, serving.tensor_parallel_size, serving.pipeline_parallel_size) == (1, None, 1)
    assert serving.gpu_memory_utilization is None  # from the profile (components/catalog/profiles.py)
    assert serving.profile == "balanced"
    assert serving.wait_for_ready is True
    assert serving.extra_args == []
    assert serving.engine == "vllm"


# --- boundaries: the last value allowed and the first refused --------------------------


@pytest.mark.parametrize(
    ("stack", "section", "key", "ok", "refused"),
    [
        ("eks", "serving", "replicas", 1, 0),
        ("eks", "serving", "maxModelLen", 256, 255),
        ("eks", "serving", "gpuMemoryUtilization", 0.98, 0.981),
        ("eks", "serving", "maxNumBatchedTokens", 256, 255),
        ("eks", "serving", "maxNumSeqs", 1, 0),
        ("eks", "benchmark", "numPrompts", 1, 0),
        ("eks", "benchmark", "readyTimeoutSeconds", 60, 59),
    ],
)
def test_number_boundaries(stack: str, section: str, key: str, ok: Any, refused: Any) -> None:
    accepted(stack, {section: {key: ok}})
    (message,) = problems(stack, {section: {key: refused}})
    assert message.startswith(f"llm-serving:{section}.{key} = {refused!r}: ")


def test_gpu_memory_utilization_is_above_a_half() -> None:
    assert ServingConfig.model_validate({"gpuMemoryUtilization": 0.51}).gpu_memory_utilization == 0.51
    (message,) = problems("eks", {"serving": {"gpuMemoryUtilization": 0.5}})
    assert message.startswith("llm-serving:serving.gpuMemoryUtilization = 0.5: ")


@pytest.mark.parametrize(
    ("stack", "path", "ok", "refused"),
    [
        ("a4high", ("network", "mtu"), 8896, 8897),
        ("a4high", ("network", "mtu"), 1300, 1299),
        ("a4high", ("systemPool", "nodesPerZone"), 1, 0),
        ("a4high", ("systemPool", "nodesPerZone"), 10, 11),
        ("eks", ("systemNodeGroup", "size"), 2, 1),
        ("eks", ("systemNodeGroup", "size"), 20, 21),
        ("eks", ("gpuNodeVolumeGib",), 20, 19),
        ("a4high", ("gpuPool", "bootDiskGb"), 100, 99),
    ],
)
def test_platform_boundaries(stack: str, path: tuple[str, ...], ok: int, refused: int) -> None:
    def nest(value: int) -> dict[str, Any]:
        out: Any = value
        for part in reversed(path):
            out = {part: out}
        return {"platform": out}

    accepted(stack, nest(ok))
    (message,) = problems(stack, nest(refused))
    assert message.startswith(f"llm-serving:platform.{'.'.join(path)} = {refused}: ")


def test_gke_replicas_up_to_the_pool_size() -> None:
    accepted("a4high", {"platform": {"gpuPool": {"nodeCount": 3}}, "serving": {"replicas": 3}})
    (message,) = problems("a4high", {"platform": {"gpuPool": {"nodeCount": 3}}, "serving": {"replicas": 4}})
    assert "4 replica(s) need 4 node(s) of pool 'a4high'" in message


def test_internet_is_wider_than_a_slash_8() -> None:
    exposure = {"type": "LoadBalancer", "allowedSourceRanges": ["10.0.0.0/8"]}
    accepted("a4high", {"serving": {"exposure": {"openWebui": exposure}}})
    (message,) = problems(
        "a4high", {"serving": {"exposure": {"openWebui": {**exposure, "allowedSourceRanges": ["10.0.0.0/7"]}}}}
    )
    assert "covers 33,554,432 addresses" in message


def test_extra_args_size_boundary() -> None:
    # 256 arguments are allowed, and 32,768 bytes including one separator each.
    accepted("a4high", {"serving": {"extraArgs": ["--x"] * 256}})
    accepted("a4high", {"serving": {"extraArgs": ["x" * 32_767]}})
    (message,) = problems("a4high", {"serving": {"extraArgs": ["x" * 32_768]}})
    assert "1 arguments of 32,769 bytes" in message


@pytest.mark.parametrize("duration", ["30m", "720h", "90s", "1h30m"])
def test_durations_allowed(duration: str) -> None:
    assert re.fullmatch(DURATION, duration)
    accepted("eks", {"platform": {"gpuNodePools": [{"name": "g5", "consolidateAfter": duration}]}})


@pytest.mark.parametrize("duration", ["30", "m", "30 m", "1d", "30m5", "-5m"])
def test_durations_refused(duration: str) -> None:
    (message,) = problems("eks", {"platform": {"gpuNodePools": [{"name": "g5", "expireAfter": duration}]}})
    assert message.startswith(f"llm-serving:platform.gpuNodePools[0].expireAfter = '{duration}': must be a duration")


@pytest.mark.parametrize("flag", ["--enable-reasoning", "--enable-reasoning=true", "--disable-log-requests=1"])
def test_removed_flags_with_or_without_a_value(flag: str) -> None:
    (message,) = problems("eks", {"serving": {"engine": "vllm", "extraArgs": ["--seed=1", flag]}})
    assert message.startswith("llm-serving:serving.extraArgs = ")
    assert f"{flag.split('=', maxsplit=1)[0]} is removed in vLLM" in message


@pytest.mark.parametrize(
    ("key", "ok", "refused"),
    [
        ("project", "my-project-123", "my-project-"),
        ("project", "abcdef", "abcde"),
        ("region", "us-central1", "us-central"),
        ("versionPrefix", "1.36.", "1.36"),
        ("gibVersion", "v1.10.2", "v1.10"),
    ],
)
def test_gcp_patterns(key: str, ok: str, refused: str) -> None:
    accepted("a4high", {"platform": {key: ok}})
    found = problems("a4high", {"platform": {key: refused}})
    assert any(p.startswith(f"llm-serving:platform.{key} = {refused!r}: ") for p in found), found


def test_aws_zone_must_be_region_plus_a_letter() -> None:
    (message,) = problems("eks", {"platform": {"availabilityZones": ["us-west-2a", "us-west-2-b"]}})
    assert (
        message == "llm-serving:platform.availabilityZones[1] = 'us-west-2-b': "
        "must be a zone of region 'us-west-2' (e.g. us-west-2a)"
    )


# --- all problems at once ---------------------------------------------------------------


def test_every_problem_of_one_section_is_reported() -> None:
    found = problems(
        "eks",
        {
            "serving": {"replicas": 0, "maxModelLen": 1, "namespace": "kube-system", "waitForReady": "no"},
            "platform": {"deletionProtection": "yes", "natGateways": "none", "vpcCidr": "10.0.0.0/24"},
        },
    )
    keys = sorted(p.split(" ")[0].rstrip(":") for p in found)
    assert keys == [
        "llm-serving:platform.deletionProtection",
        "llm-serving:platform.natGateways",
        "llm-serving:platform.vpcCidr",
        "llm-serving:serving.maxModelLen",
        "llm-serving:serving.namespace",
        "llm-serving:serving.replicas",
        "llm-serving:serving.waitForReady",
    ]


def test_every_bad_zone_is_reported() -> None:
    found = problems("eks", {"platform": {"availabilityZones": ["us-west-2y", "us-west-2z", "us-east-1a"]}})
    assert sorted(p.split(" ")[0] for p in found) == [f"llm-serving:platform.availabilityZones[{i}]" for i in range(3)]


# --- every pattern is said in words -----------------------------------------------------


def _patterns(model: type[BaseModel], seen: set[type[BaseModel]]) -> set[str]:
    if model in seen:
        return set()
    seen.add(model)
    found: set[str] = set()

    def walk(annotation: Any, metadata: list[Any]) -> None:
        for item in metadata:
            pattern = getattr(item, "pattern", None)
            if isinstance(pattern, str):
                found.add(pattern)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found.update(_patterns(annotation, seen))
        origin = get_origin(annotation)
        if origin in (Union, types.UnionType, list, dict) or str(origin).endswith("Annotated"):
            for arg in get_args(annotation):
                walk(arg, list(getattr(arg, "__metadata__", ())))
        for arg in getattr(annotation, "__metadata__", ()):
            walk(None, [arg])

    for field in model.model_fields.values():
        walk(field.annotation, list(field.metadata))
    return found


def test_every_pattern_has_words() -> None:
    patterns: set[str] = set()
    for model in (StackConfig, GcpPlatformConfig, AwsPlatformConfig):
        patterns |= _patterns(model, set())
    assert len(patterns) >= 15
    missing = sorted(patterns - set(PATTERN_WORDS))
    assert not missing, f"add these to components/config/loading.py PATTERN_WORDS: {missing}"


def test_engine_image_is_the_pinned_one_of_the_engine_unless_set() -> None:
    assert ServingConfig.model_validate({"engine": "vllm"}).engine_image == catalog.VLLM_IMAGE.ref
    assert ServingConfig.model_validate({"engine": "rayservice"}).engine_image == catalog.RAY_LLM_IMAGE.ref
    assert ServingConfig.model_validate({"image": "registry.example/vllm:mine"}).engine_image == (
        "registry.example/vllm:mine"
    )


def test_pipeline_parallel_size_bounds() -> None:
    assert ServingConfig.model_validate({"pipelineParallelSize": 16}).pipeline_parallel_size == 16
    with pytest.raises(ValidationError):
        ServingConfig.model_validate({"pipelineParallelSize": 17})
    with pytest.raises(ValidationError):
        ServingConfig.model_validate({"pipelineParallelSize": 0})


def test_defaults_of_a_minimal_aws_platform() -> None:
    platform = AwsPlatformConfig.model_validate(
        {
            "cloud": "aws",
            "region": "us-west-2",
            "availabilityZones": ["us-west-2a", "us-west-2b"],
            "endpointPublicAccessCidrs": ["203.0.113.0/24"],
        }
    )
    assert platform.kubernetes_version in catalog.KARPENTER_KUBERNETES_VERSIONS
    assert platform.capacity_reservation_ids == []
    assert platform.system_node_group.size == 2
    assert str(platform.vpc_cidr) == "10.0.0.0/16"
    assert platform.nat_gateways == "per-zone"


def test_defaults_of_a_minimal_gcp_platform() -> None:
    platform = GcpPlatformConfig.model_validate(
        {
            "cloud": "gcp",
            "project": "my-project",
            "region": "us-central1",
            "zone": "us-central1-b",
            "masterAuthorizedNetworks": [{"cidr": "203.0.113.0/24"}],
        }
    )
    assert platform.release_channel == "REGULAR"
    assert platform.deletion_protection is False
    assert platform.gpu_pool.provisioning == "on-demand"


def test_vpc_needs_a_slash_20() -> None:
    accepted("eks", {"platform": {"vpcCidr": "10.0.0.0/20"}})
    (message,) = problems("eks", {"platform": {"vpcCidr": "10.0.0.0/21"}})
    assert message.startswith("llm-serving:platform.vpcCidr = '10.0.0.0/21': must be /20 or larger")


def test_gke_control_plane_open_on_purpose() -> None:
    config = accepted(
        "a4high", {"platform": {"apiAllowInternet": True, "masterAuthorizedNetworks": [{"cidr": "0.0.0.0/0"}]}}
    )
    assert isinstance(config.platform, GcpPlatformConfig)
    assert [str(n.cidr) for n in config.platform.master_authorized_networks] == ["0.0.0.0/0"]


def test_instance_sizes_pick_the_machines() -> None:
    config = accepted("eks", {"platform": {"gpuNodePools": [{"name": "g5", "instanceSizes": ["2xlarge"]}]}})
    assert isinstance(config.platform, AwsPlatformConfig)
    assert [m.name for m in config.platform.gpu_node_pools[0].machines] == ["g5.2xlarge"]


def test_layout_sizes_start_at_one() -> None:
    # One data-parallel rank is the plain layout, not a refusal.
    config = accepted("a4high", {"serving": {"dataParallelSize": 1, "tensorParallelSize": 8}})
    assert config.topology.layout.data == 1


def test_benchmark_defaults_are_the_seed_recipes_workload() -> None:
    # shared/seeds: random dataset, 1000 input and 1000 output tokens
    benchmark = accepted("eks", {}).benchmark
    assert (benchmark.input_len, benchmark.output_len) == (1000, 1000)


def test_served_name_defaults_to_the_model_name_in_lowercase() -> None:
    serving = accepted("a4high", {"serving": {"servedModelName": None}}).serving
    assert serving.served_name == "deepseek-r1"  # deepseek-ai/DeepSeek-R1
