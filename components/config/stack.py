"""The whole stack: the platform union, rules across sections, derived views."""

from __future__ import annotations

from functools import cached_property
from typing import Annotated

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_core import InitErrorDetails

from components import catalog
from components.config.aws import AwsPlatformConfig
from components.config.base import Strict, raise_problems, rule
from components.config.gcp import GcpPlatformConfig
from components.config.serving import BenchmarkConfig, ModelCacheConfig, ServingConfig
from components.sizing import SizingReport, SizingRequest, size

PlatformConfig = Annotated[GcpPlatformConfig | AwsPlatformConfig, Field(discriminator="cloud")]


def gpu_pool_names(platform: GcpPlatformConfig | AwsPlatformConfig) -> list[str]:
    if isinstance(platform, GcpPlatformConfig):
        return [platform.gpu_pool.name]
    return [p.name for p in platform.gpu_node_pools]


def pool_shape(platform: GcpPlatformConfig | AwsPlatformConfig, pool: str) -> tuple[catalog.GpuSpec, int, bool]:
    """(GPU, GPUs per node, whether a pod must take the whole node) of a GPU pool."""
    if isinstance(platform, GcpPlatformConfig):
        machine = platform.gpu_pool.machine
        return catalog.GPUS[machine.gpu], machine.gpus, machine.rdma_nics > 0
    aws_pool = next(p for p in platform.gpu_node_pools if p.name == pool)
    return aws_pool.gpu, aws_pool.max_gpus_per_node, False


def sizing_request(platform: GcpPlatformConfig | AwsPlatformConfig, serving: ServingConfig) -> SizingRequest:
    pool = serving.gpu_pool or gpu_pool_names(platform)[0]
    gpu, _, _ = pool_shape(platform, pool)
    return SizingRequest(
        model=serving.model_spec,
        gpu=gpu,
        tensor_parallel=serving.tensor_parallel_size,
        pipeline_parallel=serving.pipeline_parallel_size,
        gpu_memory_utilization=serving.gpu_memory_utilization,
        max_model_len=serving.max_model_len,
        kv_cache_dtype=serving.kv_cache_dtype,
        max_num_batched_tokens=serving.max_num_batched_tokens,
        max_num_seqs=serving.max_num_seqs,
    )


def _serving_problems(
    platform: GcpPlatformConfig | AwsPlatformConfig, serving: ServingConfig
) -> list[InitErrorDetails]:
    """Can this engine run on this platform: engine kind, pool, shape, then memory."""
    allowed = platform.engines | {"none"}
    if serving.engine not in allowed:
        return [
            rule(
                ("engine",),
                serving.engine,
                f"not available on cloud '{platform.cloud}'; allowed: {', '.join(sorted(allowed))}",
            )
        ]
    problems = []
    if serving.engine == "rayservice" and serving.exposure.engine.type == "LoadBalancer":
        problems.append(
            rule(
                ("exposure", "engine", "type"),
                "LoadBalancer",
                "Ray Serve has no API key, so the rayservice engine stays ClusterIP; "
                "expose Open WebUI (which logs users in) instead",
            )
        )
    if serving.engine == "none":
        return problems
    names = gpu_pool_names(platform)
    pool = serving.gpu_pool or names[0]
    if pool not in names:
        return [*problems, rule(("gpuPool",), pool, f"no such GPU pool; allowed: {', '.join(names)}")]
    _, gpus_per_node, whole_node = pool_shape(platform, pool)
    tp, pp, engine_gpus = serving.tensor_parallel_size, serving.pipeline_parallel_size, serving.gpus_per_replica
    if gpus_per_node % tp:
        problems.append(
            rule(
                ("tensorParallelSize",),
                tp,
                f"must divide the {gpus_per_node} GPUs per node of pool '{pool}'",
            )
        )
    elif whole_node and engine_gpus != gpus_per_node:
        problems.append(
            rule(
                ("tensorParallelSize",),
                tp,
                f"tensorParallelSize x pipelineParallelSize ({tp} x {pp}) must equal the {gpus_per_node} GPUs "
                "of one node: RDMA pods take the whole node",
            )
        )
    elif engine_gpus > gpus_per_node:
        problems.append(
            rule(
                ("pipelineParallelSize",),
                pp,
                f"tensorParallelSize x pipelineParallelSize = {engine_gpus} exceeds the {gpus_per_node} GPUs "
                "of one node (multi-node engines are not supported yet)",
            )
        )
    if isinstance(platform, GcpPlatformConfig):
        # GKE's pool has a fixed size (or, with flex-start, a maximum): a replica without a
        # node stays Pending and `pulumi up` waits for it until its timeout.
        per_node = 1 if whole_node else max(1, gpus_per_node // engine_gpus)
        nodes = -(-serving.replicas // per_node)
        count = platform.gpu_pool.node_count
        if nodes > count:
            problems.append(
                rule(
                    ("replicas",),
                    serving.replicas,
                    f"{serving.replicas} replica(s) need {nodes} node(s) of pool '{pool}', which has "
                    f"platform.gpuPool.nodeCount = {count}: raise nodeCount (or use provisioning flex-start, "
                    "which scales up to it) or lower replicas",
                )
            )
    if isinstance(platform, AwsPlatformConfig):
        limit = next(p.gpu_limit for p in platform.gpu_node_pools if p.name == pool)
        if limit < engine_gpus * serving.replicas:
            problems.append(
                rule(
                    ("replicas",),
                    serving.replicas,
                    f"{serving.replicas} replica(s) x {engine_gpus} GPUs exceed pool '{pool}''s gpuLimit of {limit} "
                    f"(platform.gpuNodePools[{names.index(pool)}].gpuLimit)",
                )
            )
    if problems:
        return problems
    report = size(sizing_request(platform, serving))
    return [rule((p.setting,), getattr(serving, _SNAKE[p.setting]), p.message) for p in report.problems]


_SNAKE = {
    "model": "model",
    "tensorParallelSize": "tensor_parallel_size",
    "maxModelLen": "max_model_len",
    "gpuMemoryUtilization": "gpu_memory_utilization",
}


class StackConfig(Strict):
    platform: PlatformConfig
    serving: ServingConfig = ServingConfig()
    model_cache: ModelCacheConfig = ModelCacheConfig()
    benchmark: BenchmarkConfig = BenchmarkConfig()

    # Rules across sections are field validators on the later section, so they run (and
    # report) even when an unrelated section has problems of its own.

    @field_validator("serving")
    @classmethod
    def _serving_fits_platform(cls, serving: ServingConfig, info: ValidationInfo) -> ServingConfig:
        platform = info.data.get("platform")
        if platform is not None:
            raise_problems("serving", _serving_problems(platform, serving))
        return serving

    @field_validator("model_cache")
    @classmethod
    def _cache_needs_bucket(cls, cache: ModelCacheConfig, info: ValidationInfo) -> ModelCacheConfig:
        platform = info.data.get("platform")
        if cache.enabled and platform is not None and not platform.bucket.create:
            raise_problems(
                "modelCache",
                [
                    rule(
                        ("enabled",),
                        True,
                        "the model cache needs the stack's bucket (platform.bucket.create is false)",
                    )
                ],
            )
        return cache

    @field_validator("model_cache")
    @classmethod
    def _loader_exists(cls, cache: ModelCacheConfig, info: ValidationInfo) -> ModelCacheConfig:
        """The cloud decides which loaders exist (components/workloads/weights.py), and the
        Ray engine always loads through its own bucket mirror: checked here, before any
        resource, rather than by the serving layer after the platform exists."""
        platform, serving = info.data.get("platform"), info.data.get("serving")
        if not cache.enabled or cache.loader == "auto" or platform is None:
            return cache
        if cache.loader not in platform.loaders:
            message = f"not available on cloud '{platform.cloud}'; allowed: auto, {', '.join(sorted(platform.loaders))}"
        elif serving is not None and serving.engine == "rayservice":
            message = "the rayservice engine loads through Ray's bucket mirror; leave loader 'auto'"
        else:
            return cache
        raise_problems("modelCache", [rule(("loader",), cache.loader, message)])
        return cache

    @field_validator("benchmark")
    @classmethod
    def _benchmark_needs_engine(cls, benchmark: BenchmarkConfig, info: ValidationInfo) -> BenchmarkConfig:
        serving = info.data.get("serving")
        if benchmark.enabled and serving is not None and serving.engine == "none":
            raise_problems(
                "benchmark", [rule(("enabled",), True, "a benchmark needs an engine (serving.engine is 'none')")]
            )
        return benchmark

    @model_validator(mode="after")
    def _gke_driver_runs_the_image(self) -> StackConfig:
        # GKE installs the driver; a pinned image knows its CUDA (a custom image does not:
        # the engine's own driver check at start-up covers it).
        platform, serving = self.platform, self.serving
        if isinstance(platform, GcpPlatformConfig) and serving.engine != "none":
            pinned = catalog.RAY_LLM_IMAGE if serving.engine == "rayservice" else catalog.VLLM_IMAGE
            if serving.engine_image == pinned.ref:
                problem = platform.driver_problem(pinned)
                if problem:
                    key = ("platform", "gpuPool", "driverVersion")
                    raise_problems("platform", [rule(key, platform.gpu_pool.driver_version, problem)])
        return self

    # --- derived views the program uses -----------------------------------------------

    @property
    def gpu_pool_name(self) -> str:
        return self.serving.gpu_pool or gpu_pool_names(self.platform)[0]

    @property
    def gpu(self) -> catalog.GpuSpec:
        return pool_shape(self.platform, self.gpu_pool_name)[0]

    @cached_property
    def sizing(self) -> SizingReport | None:
        """The memory plan of one engine GPU; None when there is no engine."""
        if self.serving.engine == "none":
            return None
        return size(sizing_request(self.platform, self.serving))

    @property
    def max_model_len(self) -> int:
        """The context length the engine is started with (asked for, or the largest that fits)."""
        report = self.sizing
        assert report is not None, "no engine"
        return report.max_model_len
