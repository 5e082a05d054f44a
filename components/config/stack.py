"""The whole stack: the platform union, rules across sections, derived views."""

from __future__ import annotations

from dataclasses import replace
from functools import cached_property
from typing import Annotated, Literal, cast

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_core import InitErrorDetails

from components import catalog, system_nodes
from components.config.aws import AwsPlatformConfig
from components.config.base import Strict, raise_problems, rule
from components.config.cost import CostConfig
from components.config.existing import ExistingPlatformConfig
from components.config.gcp import GcpPlatformConfig
from components.config.monitoring import MonitoringConfig
from components.config.serving import BenchmarkConfig, ModelCacheConfig, ServingConfig
from components.sizing import KvCacheDtype, SizingReport, SizingRequest, size
from components.topology import Topology, resolve
from components.vllm_cli import ServeOptions, owned_flags, repeated_flags

PlatformConfig = Annotated[GcpPlatformConfig | AwsPlatformConfig | ExistingPlatformConfig, Field(discriminator="cloud")]
AnyPlatform = GcpPlatformConfig | AwsPlatformConfig | ExistingPlatformConfig


def gpu_pool_names(platform: AnyPlatform) -> list[str]:
    if isinstance(platform, GcpPlatformConfig):
        return [platform.gpu_pool.name]
    if isinstance(platform, ExistingPlatformConfig):
        return [p.name for p in platform.gpu_pools]
    return [p.name for p in platform.gpu_node_pools]


def pool_shape(platform: AnyPlatform, pool: str) -> tuple[catalog.GpuSpec, int, bool]:
    """(GPU, GPUs per node, whether a pod must take the whole node) of a GPU pool."""
    if isinstance(platform, GcpPlatformConfig):
        machine = platform.gpu_pool.machine
        return catalog.GPUS[machine.gpu], machine.gpus, machine.rdma_nics > 0
    if isinstance(platform, ExistingPlatformConfig):
        existing = platform.pool(pool)
        return existing.spec, existing.gpus_per_node, existing.takes_whole_node
    aws_pool = next(p for p in platform.gpu_node_pools if p.name == pool)
    return aws_pool.gpu, aws_pool.max_gpus_per_node, aws_pool.efa is not None  # EFA pods take whole nodes


def pool_fabric(platform: AnyPlatform, pool: str) -> str:
    """The inter-node GPU network of a pool (``GpuNodes.fabric`` on the platform side):
    GKE's A4/A3 Ultra pools are wired for GPUDirect RDMA over RoCE; an EKS pool has EFA
    when it has an ``efa`` section."""
    if isinstance(platform, GcpPlatformConfig):
        return "rdma" if platform.gpu_pool.machine.rdma_nics > 0 else "none"
    if isinstance(platform, ExistingPlatformConfig):
        return platform.pool(pool).fabric
    return next(p for p in platform.gpu_node_pools if p.name == pool).fabric


def pool_scratch(platform: AnyPlatform, pool: str) -> bool:
    """Whether the pool's nodes have node-local scratch (``GpuNodes.scratch_host_path`` on
    the platform side): GKE machines with local SSD, EKS pools whose every instance type
    has instance-store NVMe, an existing pool with a ``scratchHostPath``."""
    if isinstance(platform, GcpPlatformConfig):
        return platform.gpu_pool.machine.local_ssds > 0
    if isinstance(platform, ExistingPlatformConfig):
        return platform.pool(pool).scratch_host_path is not None
    return next(p for p in platform.gpu_node_pools if p.name == pool).instance_store


def replica_pool(platform: AnyPlatform, serving: ServingConfig) -> str:
    return serving.gpu_pool or gpu_pool_names(platform)[0]


def topology(platform: AnyPlatform, serving: ServingConfig) -> Topology:
    """The profile and explicit keys resolved against the replica's pool (unchecked)."""
    _, gpus_per_node, _ = pool_shape(platform, replica_pool(platform, serving))
    explicit = serving.explicit_layout
    if (
        serving.engine == "rayservice"
        and explicit.nodes > 1
        and explicit.tensor is None
        and explicit.data is None
        and "pipeline_parallel_size" not in serving.model_fields_set
    ):
        # Ray spans nodes with pipeline stages only: unset, a replica over N nodes is
        # TP = GPUs per node x PP = N, the seeds' TP 8 x PP 2 (aws-eks-karpenter.md §5).
        explicit = replace(explicit, pipeline=explicit.nodes)
    return resolve(serving.profile, serving.model_spec, gpus_per_node, explicit)


def sizing_request(platform: AnyPlatform, serving: ServingConfig) -> SizingRequest:
    gpu, _, _ = pool_shape(platform, replica_pool(platform, serving))
    topo = topology(platform, serving)
    layout = topo.layout
    return SizingRequest(
        model=serving.model_spec,
        gpu=gpu,
        tensor_parallel=layout.tensor,
        pipeline_parallel=layout.pipeline,
        data_parallel=layout.data,
        expert_parallel=layout.expert,
        decode_context_parallel=layout.decode_context,
        mtp_speculative_tokens=topo.mtp_speculative_tokens,
        gpu_memory_utilization=topo.gpu_memory_utilization,
        max_model_len=serving.max_model_len,
        kv_cache_dtype=cast(KvCacheDtype, topo.kv_cache_dtype),
        max_num_batched_tokens=serving.max_num_batched_tokens,
        max_num_seqs=serving.max_num_seqs,
    )


def serve_options(platform: AnyPlatform, serving: ServingConfig) -> ServeOptions:
    """What the vLLM command line is rendered from (components/vllm_cli.py)."""
    return ServeOptions(
        model=serving.model_spec,
        served_name=serving.served_name,
        topology=topology(platform, serving),
        max_model_len=size(sizing_request(platform, serving)).max_model_len,
        max_num_seqs=serving.max_num_seqs,
        max_num_batched_tokens=serving.max_num_batched_tokens,
    )


def _layout_problems(platform: AnyPlatform, serving: ServingConfig, pool: str) -> list[InitErrorDetails]:
    """Is the replica's layout one this pool, this model and this release can run?"""
    _, gpus_per_node, whole_node = pool_shape(platform, pool)
    model = serving.model_spec
    topo = topology(platform, serving)
    layout = topo.layout
    tp, pp, dp, nodes = layout.tensor, layout.pipeline, layout.data, layout.nodes
    shape = f"TP {tp} x PP {pp} x DP {dp} = {layout.gpus} GPUs"
    problems: list[InitErrorDetails] = []
    if nodes > 1 and serving.engine == "rayservice" and (gpus_per_node % tp or layout.gpus != nodes * gpus_per_node):
        # Ray Serve LLM across nodes: one worker pod per node takes all of its GPUs, and a
        # replica's TP x PP ranks fill them, TP inside a node (aws-eks-karpenter.md §5).
        problems.append(
            rule(
                (_layout_key(serving),),
                _layout_value(serving),
                f"the layout ({shape}) must fill the replica's {nodes} nodes of pool '{pool}' "
                f"({nodes} x {gpus_per_node} GPUs, one Ray worker pod per node) with tensor parallelism "
                f"inside a node (TP dividing {gpus_per_node}) and pipeline stages across them, e.g. "
                f"tensorParallelSize {gpus_per_node}, pipelineParallelSize {nodes}",
            )
        )
    elif gpus_per_node % tp:
        problems.append(
            rule(("tensorParallelSize",), tp, f"must divide the {gpus_per_node} GPUs per node of pool '{pool}'")
        )
    elif (whole_node or nodes > 1) and layout.gpus != nodes * gpus_per_node:
        fabric = pool_fabric(platform, pool)
        why = (
            (
                f"pods on its {fabric.upper()} fabric take the whole node"
                if fabric != "none"
                else "pods take whole nodes"
            )
            if whole_node
            else "a replica that spans nodes takes whole nodes"
        )
        problems.append(
            rule(
                (_layout_key(serving),),
                _layout_value(serving),
                f"the layout ({shape}) must use the {nodes} x {gpus_per_node} GPUs of the replica's whole "
                f"node(s) in pool '{pool}': {why}",
            )
        )
    elif layout.gpus > nodes * gpus_per_node:
        problems.append(
            rule(
                (_layout_key(serving),),
                _layout_value(serving),
                f"the layout ({shape}) exceeds the {gpus_per_node} GPUs of one node in pool '{pool}'",
            )
        )
    if nodes > 1:
        problems += _spanning_problems(platform, serving, pool, shape)
    if layout.expert and not model.is_moe:
        problems.append(
            rule(
                ("expertParallel",),
                True,
                f"{model.hf_id} is a dense model (no experts); expert parallelism is for MoE models",
            )
        )
    if layout.expert and layout.expert_ranks == 1:
        problems.append(rule(("expertParallel",), True, f"needs more than one rank to divide experts over ({shape})"))
    if topo.mtp_speculative_tokens and not model.mtp_layers:
        problems.append(
            rule(
                ("mtpSpeculativeTokens",),
                topo.mtp_speculative_tokens,
                f"{model.hf_id} ships no multi-token-prediction weights (num_nextn_predict_layers 0); "
                "use 0 or a model with MTP layers such as deepseek-ai/DeepSeek-R1",
            )
        )
    if tp % layout.decode_context:
        problems.append(
            rule(
                ("decodeContextParallelSize",),
                layout.decode_context,
                f"must divide tensorParallelSize ({tp}): DCP shards the KV cache over TP ranks "
                "(vLLM 0.33 config/parallel.py)",
            )
        )
    if serving.engine == "rayservice" and (dp > 1 or layout.decode_context > 1 or topo.mtp_speculative_tokens):
        problems.append(
            rule(
                ("engine",),
                "rayservice",
                f"the rayservice engine runs TP x PP only ({shape}"
                f"{', DCP' if layout.decode_context > 1 else ''}{', MTP' if topo.mtp_speculative_tokens else ''}); "
                "use the vllm engine for data parallelism, DCP or MTP",
            )
        )
    return problems


def _spanning_problems(platform: AnyPlatform, serving: ServingConfig, pool: str, shape: str) -> list[InitErrorDetails]:
    """A replica over several nodes (the vllm engine as a LeaderWorkerSet, or Ray across
    nodes): one of the two shapes the multi-node vLLM engine starts
    (components/workloads/engines/vllm_lws.py), and a fabric between the nodes."""
    layout = topology(platform, serving).layout
    problems = []
    # (The rayservice engine refuses data parallelism altogether, in _layout_problems.)
    if layout.data > 1 and layout.pipeline > 1 and serving.engine == "vllm":
        problems.append(
            rule(
                (_layout_key(serving),),
                _layout_value(serving),
                f"a replica over {layout.nodes} nodes runs TP inside each node with either PP across the nodes "
                f"(DP 1) or DP (+ EP) across them (PP 1), not both ({shape})",
            )
        )
    fabric = pool_fabric(platform, pool)
    if fabric == "none" and not serving.allow_tcp_interconnect:
        problems.append(
            rule(
                ("nodesPerReplica",),
                layout.nodes,
                f"pool '{pool}' has no inter-node GPU fabric (GPUDirect RDMA or EFA), so the replica's "
                "nodes would exchange activations over TCP sockets, an order of magnitude slower; use a pool "
                "with a fabric, or accept it with serving.allowTcpInterconnect: true",
            )
        )
    return problems


def _layout_key(serving: ServingConfig) -> str:
    """The key a layout problem is reported at: the one the stack set, else the profile."""
    if serving.pipeline_parallel_size > 1:
        return "pipelineParallelSize"
    if serving.data_parallel_size is not None:
        return "dataParallelSize"
    return "tensorParallelSize" if serving.tensor_parallel_size is not None else "profile"


def _layout_value(serving: ServingConfig) -> object:
    key = _layout_key(serving)
    return {
        "tensorParallelSize": serving.tensor_parallel_size,
        "dataParallelSize": serving.data_parallel_size,
        "pipelineParallelSize": serving.pipeline_parallel_size,
    }.get(key, serving.profile)


def _extra_args_problems(platform: AnyPlatform, serving: ServingConfig) -> list[InitErrorDetails]:
    """``extraArgs`` may add flags, never repeat one the config renders (last flag wins)."""
    if serving.engine != "vllm" or not serving.extra_args:
        return []
    owned = owned_flags(serve_options(platform, serving))
    return [
        rule(
            ("extraArgs", i),
            arg,
            f"{flag} is set by the stack config; use its serving key (see components/config/serving.py) "
            "instead of repeating it: vLLM keeps the last value, which would override the sized one",
        )
        for i, arg, flag in repeated_flags(serving.extra_args, owned)
    ]


def _serving_problems(platform: AnyPlatform, serving: ServingConfig) -> list[InitErrorDetails]:
    """Can this engine run on this platform: engine kind, pool, layout, then memory."""
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
    pool = replica_pool(platform, serving)
    if pool not in names:
        return [*problems, rule(("gpuPool",), pool, f"no such GPU pool; allowed: {', '.join(names)}")]
    layout = _layout_problems(platform, serving, pool)
    problems += layout
    engine_gpus = topology(platform, serving).layout.gpus
    if isinstance(platform, GcpPlatformConfig) and not layout:
        problems += _gke_capacity_problems(platform, serving, pool, engine_gpus)
    if isinstance(platform, ExistingPlatformConfig) and not layout:
        problems += _existing_capacity_problems(platform, serving, pool, engine_gpus)
    if isinstance(platform, AwsPlatformConfig):
        problems += _aws_serving_problems(platform, serving, pool)
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
    topo = topology(platform, serving)
    problems = [_sizing_rule(serving, topo, p.setting, p.message) for p in report.problems]
    problems += _kv_cache_problems(platform, serving, pool)
    return problems or _extra_args_problems(platform, serving)


def _kv_cache_problems(platform: AnyPlatform, serving: ServingConfig, pool: str) -> list[InitErrorDetails]:
    """A KV cache dtype the GPU's attention backends can hold (reported with the sizing gate)."""
    model, topo = serving.model_spec, topology(platform, serving)
    problems: list[InitErrorDetails] = []
    gpu, _, _ = pool_shape(platform, pool)
    capability = catalog.COMPUTE_CAPABILITY[gpu.name]
    if topo.kv_cache_dtype.startswith("fp8") and model.attention == "mla" and capability < catalog.FP8_MIN_CAPABILITY:
        major, minor = capability
        problems.append(
            rule(
                ("kvCacheDtype",) if serving.kv_cache_dtype else ("profile",),
                serving.kv_cache_dtype or serving.profile,
                f"{'its ' if not serving.kv_cache_dtype else ''}FP8 KV cache with {model.hf_id}'s MLA attention "
                f"needs compute capability 8.9 or newer; {gpu.name} is {major}.{minor}, where vLLM's only MLA "
                "backend (Triton MLA) refuses it: set serving.kvCacheDtype: auto (BF16)",
            )
        )
    return problems


def _sizing_rule(serving: ServingConfig, topo: Topology, setting: str, message: str) -> InitErrorDetails:
    """A sizing problem at the key to change: the one the stack set, else ``profile`` for a
    layout the profile chose; a utilization the profile chose is shown resolved."""
    value = getattr(serving, _SNAKE[setting])
    if value is None and setting == "tensorParallelSize":
        return rule(("profile",), serving.profile, f"its layout ({topo.layout.describe()}): {message}")
    if value is None and setting == "gpuMemoryUtilization":
        value = topo.gpu_memory_utilization
    return rule((setting,), value, message)


def _gke_capacity_problems(
    platform: GcpPlatformConfig, serving: ServingConfig, pool: str, engine_gpus: int
) -> list[InitErrorDetails]:
    """GKE's pool has a fixed size (or, with flex-start, a maximum): a replica without a
    node stays Pending and `pulumi up` waits for it until its timeout."""
    # Every GKE GPU pool here is of RDMA machines, whose pods take whole nodes
    # (GcpGpuPoolConfig allows only those): a replica needs whole nodes of its own.
    _, gpus_per_node, _ = pool_shape(platform, pool)
    per_replica = max(topology(platform, serving).layout.nodes, -(-engine_gpus // gpus_per_node))
    nodes = serving.replicas * per_replica
    gpu_pool = platform.gpu_pool
    problems = []
    if nodes > gpu_pool.node_count:
        spans = f" x {per_replica} nodes per replica (nodesPerReplica)" if per_replica > 1 else ""
        # Config sees only nodeCount: whether the reservation really holds that many
        # machines is known to GCP alone (README, Multi-node replicas).
        problems.append(
            rule(
                ("replicas",),
                serving.replicas,
                f"{serving.replicas} replica(s){spans} need {nodes} node(s) of pool '{pool}', which has "
                f"platform.gpuPool.nodeCount = {gpu_pool.node_count}: raise nodeCount (or use provisioning "
                "flex-start, which scales up to it; a reservation must hold that many machines) or lower replicas",
            )
        )
    if per_replica > 1 and not gpu_pool.compact_placement:
        # The nodes of one replica exchange every layer's activations (PP) or every MoE
        # dispatch (EP) over RoCE: a COMPACT placement policy puts them close in the data
        # centre's network (gcp-a4high.md §3 "placement", XPK sets it for non-flex pools).
        problems.append(
            rule(
                ("nodesPerReplica",),
                per_replica,
                "a replica that spans nodes needs them close together: set platform.gpuPool.compactPlacement: "
                "true (COMPACT placement; not offered for spot pools)",
            )
        )
    return problems


def _existing_capacity_problems(
    platform: ExistingPlatformConfig, serving: ServingConfig, pool: str, engine_gpus: int
) -> list[InitErrorDetails]:
    """The cluster's pool has the nodes the stack says: replicas beyond them stay Pending."""
    gpu_pool = platform.pool(pool)
    layout = topology(platform, serving).layout
    index = gpu_pool_names(platform).index(pool)
    if gpu_pool.takes_whole_node or layout.nodes > 1:
        # Whole nodes per replica (RDMA pools, replicas that span nodes).
        per_replica = max(layout.nodes, -(-engine_gpus // gpu_pool.gpus_per_node))
        need, have, unit = serving.replicas * per_replica, gpu_pool.node_count, "node(s)"
    else:
        need, have, unit = serving.replicas * engine_gpus, gpu_pool.node_count * gpu_pool.gpus_per_node, "GPUs"
    if need <= have:
        return []
    return [
        rule(
            ("replicas",),
            serving.replicas,
            f"{serving.replicas} replica(s) need {need} {unit} of pool '{pool}', which has {have} "
            f"(platform.gpuPools[{index}].nodeCount = {gpu_pool.node_count} x {gpu_pool.gpus_per_node} GPUs): "
            "lower replicas or describe more nodes",
        )
    ]


def _aws_serving_problems(platform: AwsPlatformConfig, serving: ServingConfig, pool: str) -> list[InitErrorDetails]:
    """The engine's pool on EKS: spot for a lone replica, and the GPU driver for the image."""
    problems = []
    index, node_pool = next((i, p) for i, p in enumerate(platform.gpu_node_pools) if p.name == pool)
    key = f"platform.gpuNodePools[{index}]"
    if serving.replicas == 1 and "spot" in node_pool.capacity_types and not node_pool.single_replica_on_spot:
        problems.append(
            rule(
                ("replicas",),
                1,
                f"the only replica would run on spot: pool '{pool}' allows spot ({key}.capacityTypes) and "
                "Karpenter prefers spot over on-demand, so a reclaim (two minutes' notice) stops the service "
                "for a full model reload; run 2 or more replicas, drop spot from the pool, or accept the "
                f"outages with {key}.singleReplicaOnSpot: true",
            )
        )
    image = catalog.RAY_LLM_IMAGE if serving.engine == "rayservice" else catalog.VLLM_IMAGE
    if serving.image is None and image.cuda is not None and not catalog.GPU_NODE_AMI.runs(image.cuda):
        # A catalog mismatch, not a user error, but caught before anything is created.
        problems.append(
            rule(
                ("engine",),
                serving.engine,
                f"its image {image.ref} is built for CUDA {image.cuda.cuda} (NVIDIA driver >= "
                f"{image.cuda.min_driver}), but the GPU nodes' AMI {catalog.GPU_NODE_AMI.alias} has driver "
                f"{catalog.GPU_NODE_AMI.nvidia_driver}; set serving.image to a build for an older CUDA "
                "(e.g. a -cu129 tag)",
            )
        )
    return problems


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
    cost: CostConfig = CostConfig()
    monitoring: MonitoringConfig = MonitoringConfig()

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
        if cache.enabled and platform is not None and not platform.has_store:
            raise_problems(
                "modelCache",
                [
                    rule(
                        ("enabled",),
                        True,
                        "the model cache needs a model store (platform.modelStore.kind is 'none')",
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
            store = "" if platform.bucket_store else f" with modelStore kind '{platform.model_store.kind}'"
            allowed = ", ".join(sorted(platform.loaders))
            message = f"not available on cloud '{platform.cloud}'{store}; allowed: auto, {allowed}"
        elif serving is not None and serving.engine == "rayservice":
            message = "the rayservice engine loads through Ray's bucket mirror; leave loader 'auto'"
        elif (
            cache.loader == "node-cache"
            and serving is not None
            and (pool := replica_pool(platform, serving)) in gpu_pool_names(platform)
            and not pool_scratch(platform, pool)
        ):
            message = (
                f"the serving GPU pool '{pool}' has no node-local scratch to hold the node copy (a machine "
                "type without local SSD or instance-store NVMe); choose a pool whose every machine type has "
                "one, or loader auto"
            )
        else:
            return cache
        raise_problems("modelCache", [rule(("loader",), cache.loader, message)])
        return cache

    @field_validator("serving")
    @classmethod
    def _backups_need_bucket(cls, serving: ServingConfig, info: ValidationInfo) -> ServingConfig:
        platform = info.data.get("platform")
        ui = serving.open_webui
        if ui.enabled and ui.backup.enabled and platform is not None and not platform.has_store:
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

    @field_validator("serving")
    @classmethod
    def _ingress_needs_open_webui(cls, serving: ServingConfig, info: ValidationInfo) -> ServingConfig:
        platform = info.data.get("platform")
        if (
            isinstance(platform, ExistingPlatformConfig)
            and platform.exposure.ingress
            and not serving.open_webui.enabled
        ):
            key = ("openWebui", "enabled")
            message = "platform.exposure.ingress publishes Open WebUI: enable it, or remove the ingress"
            raise_problems("serving", [rule(key, False, message)])
        return serving

    @field_validator("serving")
    @classmethod
    def _compile_cache_bucket_needs_bucket(cls, serving: ServingConfig, info: ValidationInfo) -> ServingConfig:
        platform = info.data.get("platform")
        cache = serving.compile_cache
        if cache.enabled and cache.store == "bucket" and platform is not None and platform.bucket_store is None:
            raise_problems(
                "serving",
                [
                    rule(
                        ("compileCache", "store"),
                        "bucket",
                        "the compile cache's bucket copy needs a bucket and platform.modelStore.kind is 'none': "
                        "set it to 'node' (or 'auto'), or give the stack a bucket",
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

    @model_validator(mode="after")
    def _system_nodes_hold_what_runs_there(self) -> StackConfig:
        # EKS only: GKE's system pool runs Google's managed collectors, not a stack of ours.
        platform, serving = self.platform, self.serving
        if not isinstance(platform, AwsPlatformConfig):
            return self
        group = platform.system_node_group
        smallest = system_nodes.smallest_shape(group.instance_types)
        if smallest is None:  # no shape the catalog knows: nothing to compute with
            return self
        load = system_nodes.system_load(
            open_webui=serving.open_webui.enabled,
            kuberay=serving.engine == "rayservice",
            monitoring=self.monitoring.enabled,
        )
        problem = system_nodes.fit_problem(load, *smallest, group.size)
        if problem:
            key = ("platform", "systemNodeGroup", "instanceTypes")
            raise_problems("platform", [rule(key, group.instance_types, problem)])
        return self

    @field_validator("cost")
    @classmethod
    def _prices_name_this_stacks_machines(cls, cost: CostConfig, info: ValidationInfo) -> CostConfig:
        platform = info.data.get("platform")
        if platform is None:
            return cost
        if isinstance(platform, GcpPlatformConfig):
            machines = [platform.gpu_pool.machine_type]
        elif isinstance(platform, ExistingPlatformConfig):
            machines = [p.name for p in platform.gpu_pools]  # your own nodes: priced per pool
        else:
            machines = list(dict.fromkeys(m.name for p in platform.gpu_node_pools for m in p.machines))
        problems = [
            rule(
                ("nodeHourlyUsd", name),
                price,
                f"not a GPU machine type of this stack's pools; prices may be given for {', '.join(machines)}",
            )
            for name, price in cost.node_hourly_usd.items()
            if name not in machines
        ]
        raise_problems("cost", problems)
        return cost

    # --- derived views the program uses -----------------------------------------------

    @property
    def gpu_pool_name(self) -> str:
        return replica_pool(self.platform, self.serving)

    @cached_property
    def topology(self) -> Topology:
        """The resolved layout and flags of one replica (profile + explicit keys)."""
        return topology(self.platform, self.serving)

    @property
    def serve_options(self) -> ServeOptions:
        """What the vLLM command line is rendered from."""
        return serve_options(self.platform, self.serving)

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
    def compile_cache_store(self) -> Literal["none", "node", "bucket"]:
        """Where the engine's compile/JIT caches are kept (components/workloads/compile_cache.py),
        for the cold-start model: "none", every start compiles; "node", a restart on the same
        node skips compilation; "bucket", a fresh node restores the caches too, once a first
        start has uploaded them. The serving layer keeps "bucket" caches on the node only where
        the GPU pool has no node-local scratch (EKS pools today); its ``compile_cache`` output
        says which applies."""
        cache = self.serving.compile_cache
        if self.serving.engine == "none" or not cache.enabled:
            return "none"
        if cache.store == "node" or self.platform.bucket_store is None:
            return "node"
        return "bucket"

    @property
    def max_model_len(self) -> int:
        """The context length the engine is started with (asked for, or the largest that fits)."""
        report = self.sizing
        assert report is not None, "no engine"
        return report.max_model_len
