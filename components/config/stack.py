"""The whole stack: the platform union, rules across sections, derived views."""

from __future__ import annotations

from functools import cached_property
from typing import Annotated

from pydantic import Field, ValidationInfo, field_validator
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
        if cache.enabled and platform is not None and platform.bucket_store is None:
            raise_problems(
                "modelCache",
                [
                    rule(
                        ("enabled",),
                        True,
                        "the model cache needs a bucket (platform.modelStore.kind is 'none')",
                    )
                ],
            )
        return cache

    @field_validator("serving")
    @classmethod
    def _backups_need_bucket(cls, serving: ServingConfig, info: ValidationInfo) -> ServingConfig:
        platform = info.data.get("platform")
        ui = serving.open_webui
        if ui.enabled and ui.backup.enabled and platform is not None and platform.bucket_store is None:
            raise_problems(
                "serving",
                [
                    rule(
                        ("openWebui", "backup", "enabled"),
                        True,
                        "chat backups go to the model bucket and platform.modelStore.kind is 'none': "
                        "set serving.openWebui.backup.enabled to false, or give the stack a bucket",
                    )
                ],
            )
        return serving

    @field_validator("benchmark")
    @classmethod
    def _benchmark_needs_engine(cls, benchmark: BenchmarkConfig, info: ValidationInfo) -> BenchmarkConfig:
        serving = info.data.get("serving")
        if benchmark.enabled and serving is not None and serving.engine == "none":
            raise_problems(
                "benchmark", [rule(("enabled",), True, "a benchmark needs an engine (serving.engine is 'none')")]
            )
        return benchmark

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
