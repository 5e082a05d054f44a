"""Serving config: the engine, Open WebUI, exposure, the model cache and the benchmark."""

from __future__ import annotations

from ipaddress import IPv4Network
from typing import Annotated, Literal

from pydantic import Field, StrictBool, ValidationInfo, field_validator

from components import catalog
from components.catalog import Profile, limits
from components.config.base import K8S_NAME, Strict, internet_ranges, raise_problems
from components.sizing import KvCacheDtype
from components.topology import Explicit


class ServiceExposure(Strict):
    """How one Service is reached. ClusterIP (port-forward) unless asked otherwise."""

    type: Literal["ClusterIP", "LoadBalancer"] = "ClusterIP"
    internal: bool = False  # an internal (VPC-only) load balancer
    # Opt-in for a range wider than a /8 (0.0.0.0/0) in allowedSourceRanges.
    allow_internet: bool = False
    allowed_source_ranges: list[IPv4Network] = []

    @field_validator("allowed_source_ranges")
    @classmethod
    def _ranges_match_type(cls, ranges: list[IPv4Network], info: ValidationInfo) -> list[IPv4Network]:
        kind = info.data.get("type")
        if kind == "LoadBalancer" and not ranges:
            raise ValueError("a LoadBalancer needs the CIDRs allowed to reach it (there is no open default)")
        if kind == "ClusterIP" and (ranges or info.data.get("internal")):
            raise ValueError("internal and allowedSourceRanges need type LoadBalancer")
        raise_problems(
            "allowedSourceRanges", internet_ranges(ranges, bool(info.data.get("allow_internet")), "allowInternet")
        )
        return ranges


class ExposureConfig(Strict):
    engine: ServiceExposure = ServiceExposure()
    open_webui: ServiceExposure = ServiceExposure()


# An image reference: no spaces, not empty (the registry refuses both at pull time, after
# `pulumi up` has created everything else).
IMAGE_REF = r"^\S+$"


class ChatBackupConfig(Strict):
    """Scheduled copies of Open WebUI's database and uploads to the model bucket
    (components/workloads/backup.py)."""

    enabled: StrictBool = True
    # Five-field cron, in UTC (CronJob timeZone). Default: daily at 03:17.
    schedule: Annotated[str, Field(pattern=r"^\S+ \S+ \S+ \S+ \S+$")] = "17 3 * * *"


class OpenWebuiConfig(Strict):
    enabled: bool = True
    image: Annotated[str, Field(pattern=IMAGE_REF)] = catalog.OPEN_WEBUI_IMAGE.ref
    storage_gib: Annotated[int, Field(ge=1)] = 10
    admin_email: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")] = "admin@example.com"
    # A kept PersistentVolume to bind the chat volume to (README "Bind a kept chat volume
    # again"); unset: a new volume is provisioned on first start.
    volume_name: Annotated[str, Field(pattern=K8S_NAME)] | None = None
    backup: ChatBackupConfig = ChatBackupConfig()


# vLLM flags that no longer exist in the pinned release (vllm-serving.md §1.2, §6).
REMOVED_VLLM_FLAGS = {
    "--enable-reasoning": "removed in vLLM 0.10; --reasoning-parser is enough",
    "--disable-log-requests": "removed in vLLM 0.17; request logging is off by default",
}


class CompileCacheConfig(Strict):
    """The engine's compile and JIT caches (torch.compile/Inductor, Triton, DeepGEMM,
    FlashInfer) kept on the GPU node and in the stack's bucket, restored at engine start
    and keyed by image, model and topology (components/workloads/compile_cache.py). A
    first start on A4 High spends ~12 minutes in DeepGEMM/FlashInfer JIT
    (shared/reference/audit/performance.md, engine init); a restored cache skips it."""

    enabled: StrictBool = True
    # auto: the bucket too when the stack has one (and the GPU pool has node-local scratch
    # to upload from), else the node only; bucket: the same, but a stack without a bucket
    # is an error; node: never the bucket.
    store: Literal["auto", "bucket", "node"] = "auto"


Engine = Literal["vllm", "rayservice", "none"]
# Namespaces that exist already or belong to operators this program installs.
RESERVED_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease", "kuberay-system")


class ServingConfig(Strict):
    engine: Engine = "vllm"
    model: str = "deepseek-ai/DeepSeek-R1"
    served_model_name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")] | None = None
    # What the engine is tuned for (components/catalog/profiles.py): the layout of a
    # replica, KV cache dtype, memory utilization, MTP and vLLM's --performance-mode.
    # Every key below that is left unset comes from the profile and the model.
    profile: Profile = "balanced"
    # The parallel layout of one replica (components/topology.py). Unset TP and DP: the
    # replica takes nodesPerReplica whole nodes, as DP (MoE under "throughput") or TP; the
    # rayservice engine over several nodes as TP per node x PP across them (config/stack.py).
    tensor_parallel_size: Annotated[int, Field(ge=1, le=64)] | None = None
    pipeline_parallel_size: Annotated[int, Field(ge=1, le=16)] = 1
    data_parallel_size: Annotated[int, Field(ge=1, le=64)] | None = None
    expert_parallel: bool | None = None  # MoE only: experts divided over the DP x TP ranks
    decode_context_parallel_size: Annotated[int, Field(ge=1, le=64)] = 1  # divides TP; shards the KV cache
    # > 1: a replica spans whole nodes; the vllm engine then runs as a LeaderWorkerSet
    # (components/workloads/engines/vllm_lws.py), one pod per node.
    nodes_per_replica: Annotated[int, Field(ge=1, le=64)] = 1
    # A replica may span nodes of a pool without an RDMA/EFA fabric (NCCL over TCP
    # sockets: an order of magnitude slower between nodes; for tests, not for serving).
    allow_tcp_interconnect: bool = False
    mtp_speculative_tokens: Annotated[int, Field(ge=0, le=8)] | None = None  # 0: off; needs MTP weights
    max_model_len: Annotated[int, Field(ge=256)] | None = None  # None: the largest that fits
    gpu_memory_utilization: Annotated[float, Field(gt=0.5, le=0.98)] | None = None
    kv_cache_dtype: KvCacheDtype | None = None
    max_num_seqs: Annotated[int, Field(ge=1)] | None = None
    max_num_batched_tokens: Annotated[int, Field(ge=256)] | None = None
    image: Annotated[str, Field(pattern=IMAGE_REF)] | None = (
        None  # None: the pinned image of the engine (components/catalog/)
    )
    replicas: Annotated[int, Field(ge=1, le=64)] = 1
    namespace: Annotated[str, Field(pattern=K8S_NAME, max_length=63)] = "llm"
    gpu_pool: str | None = None  # None: the platform's first GPU pool
    extra_args: list[str] = []  # more `vllm serve` flags, appended verbatim
    # `pulumi up` waits until the engine serves (timeouts sized from the model load);
    # false: it returns once the objects exist (see components/workloads/serving.py).
    wait_for_ready: bool = True
    open_webui: OpenWebuiConfig = OpenWebuiConfig()
    exposure: ExposureConfig = ExposureConfig()
    compile_cache: CompileCacheConfig = CompileCacheConfig()

    @field_validator("namespace")
    @classmethod
    def _own_namespace(cls, namespace: str) -> str:
        if namespace in RESERVED_NAMESPACES:
            raise ValueError(
                f"the platform creates this namespace for the workloads; not one of {', '.join(RESERVED_NAMESPACES)}"
            )
        return namespace

    @field_validator("model")
    @classmethod
    def _known_model(cls, model: str) -> str:
        if model not in catalog.MODELS:
            raise ValueError(f"unknown model; sized models are: {', '.join(catalog.MODELS)}")
        return model

    @field_validator("extra_args")
    @classmethod
    def _no_removed_flags(cls, args: list[str]) -> list[str]:
        for arg in args:
            flag = arg.split("=", 1)[0]
            if flag in REMOVED_VLLM_FLAGS:
                raise ValueError(f"{flag} is {REMOVED_VLLM_FLAGS[flag]}")
        return args

    @field_validator("extra_args")
    @classmethod
    def _extra_args_reach_the_engine(cls, args: list[str], info: ValidationInfo) -> list[str]:
        engine = info.data.get("engine")
        if args and engine == "rayservice":
            raise ValueError(
                "the rayservice engine takes no vllm serve flags (Ray Serve LLM builds its own engine "
                "arguments); remove them or use engine vllm"
            )
        if args and engine == "none":
            raise ValueError("there is no engine to pass them to (engine is 'none')")
        return args

    @field_validator("extra_args")
    @classmethod
    def _extra_args_fit_a_command_line(cls, args: list[str]) -> list[str]:
        # The engine runs as `bash -c <script>`: one argv string, limited by the kernel
        # (components/catalog/limits.py).
        size = sum(len(arg.encode()) + 1 for arg in args)
        if len(args) > limits.EXTRA_ARGS_MAX_COUNT or size > limits.EXTRA_ARGS_MAX_BYTES:
            raise ValueError(
                f"{len(args)} arguments of {size:,} bytes; at most {limits.EXTRA_ARGS_MAX_COUNT} arguments and "
                f"{limits.EXTRA_ARGS_MAX_BYTES:,} bytes in all (the engine's command line must stay under the "
                f"kernel's {limits.KERNEL_MAX_ARG_STRLEN:,}-byte limit for one argument)"
            )
        return args

    @property
    def model_spec(self) -> catalog.ModelSpec:
        return catalog.MODELS[self.model]

    @property
    def served_name(self) -> str:
        return self.served_model_name or self.model.rsplit("/", 1)[-1].lower()

    @property
    def engine_kind(self) -> str:
        """The engine module that runs this stack (components/workloads/engines/): ``vllm``
        over more than one node per replica is the LeaderWorkerSet engine ``vllm-lws``."""
        if self.engine == "vllm" and self.nodes_per_replica > 1:
            return "vllm-lws"
        return self.engine

    @property
    def engine_image(self) -> str:
        default = catalog.RAY_LLM_IMAGE if self.engine == "rayservice" else catalog.VLLM_IMAGE
        return self.image or default.ref

    @property
    def explicit_layout(self) -> Explicit:
        """The layout keys this stack set itself; the profile fills the rest."""
        return Explicit(
            tensor=self.tensor_parallel_size,
            pipeline=self.pipeline_parallel_size,
            data=self.data_parallel_size,
            expert=self.expert_parallel,
            decode_context=self.decode_context_parallel_size,
            nodes=self.nodes_per_replica,
            kv_cache_dtype=self.kv_cache_dtype,
            gpu_memory_utilization=self.gpu_memory_utilization,
            mtp_speculative_tokens=self.mtp_speculative_tokens,
        )


class ModelCacheConfig(Strict):
    """Copy the model from Hugging Face into the stack's bucket once; engines load from there."""

    enabled: bool = False
    # auto (components/workloads/weights.py choose_loader): for vLLM, node-cache where the
    # GPU pool has node-local disk (GKE A4 High's local SSD, EKS instance-store NVMe: a copy
    # on the node that later pods reuse), else GCS FUSE on GKE, and the Run:ai Model
    # Streamer from s3:// elsewhere; the rayservice
    # engine always uses Ray's bucket mirror.
    loader: Literal["auto", "runai-streamer", "gcsfuse", "node-cache"] = "auto"


class BenchmarkConfig(Strict):
    """`vllm bench serve` as a Job, defaults from the seed recipes.

    Prompts per point scale with its concurrency (``promptsPerConcurrency`` x concurrency,
    at least ``minPrompts``), so a concurrency-1 point on a small GPU takes minutes, not
    the hours the seeds' fixed 1,100 prompts took; ``numPrompts`` fixes the count for every
    point instead. An unbounded run (no ``maxConcurrency``) sends the seeds' 1,100.
    """

    enabled: bool = False
    num_prompts: Annotated[int, Field(ge=1)] | None = None
    prompts_per_concurrency: Annotated[int, Field(ge=1)] = 10
    min_prompts: Annotated[int, Field(ge=1)] = 100
    input_len: Annotated[int, Field(ge=1)] = 1000
    output_len: Annotated[int, Field(ge=1)] = 1000
    max_concurrency: list[Annotated[int, Field(ge=1)]] = []  # a sweep; empty = unbounded
    # How long to wait for the engine to answer; None: the engine's own start-up budget.
    ready_timeout_seconds: Annotated[int, Field(ge=60)] | None = None

    @field_validator("max_concurrency")
    @classmethod
    def _distinct_points(cls, points: list[int]) -> list[int]:
        repeated = sorted({p for p in points if points.count(p) > 1})
        if repeated:
            raise ValueError(f"each concurrency once (one result file per point); repeated: {repeated}")
        return points

    @field_validator("prompts_per_concurrency", "min_prompts")
    @classmethod
    def _scaling_or_fixed(cls, value: int, info: ValidationInfo) -> int:
        default = cls.model_fields[info.field_name or ""].default
        if info.data.get("num_prompts") is not None and value != default:
            raise ValueError("numPrompts fixes the prompt count of every point; set one or the other, not both")
        return value

    def prompts(self, concurrency: int | None) -> int:
        """Prompts for one point of the sweep (``None``: unbounded concurrency)."""
        if self.num_prompts is not None:
            return self.num_prompts
        if concurrency is None:
            return SEED_PROMPTS
        return max(self.min_prompts, self.prompts_per_concurrency * concurrency)


SEED_PROMPTS = 1100  # shared/seeds 001: `vllm bench serve --num-prompts 1100`
