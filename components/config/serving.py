"""Serving config: the engine, Open WebUI, exposure, the model cache and the benchmark."""

from __future__ import annotations

from ipaddress import IPv4Network
from typing import Annotated, Literal

from pydantic import Field, StrictBool, ValidationInfo, field_validator

from components import catalog
from components.config.base import K8S_NAME, Strict
from components.sizing import KvCacheDtype


class ServiceExposure(Strict):
    """How one Service is reached. ClusterIP (port-forward) unless asked otherwise."""

    type: Literal["ClusterIP", "LoadBalancer"] = "ClusterIP"
    internal: bool = False  # an internal (VPC-only) load balancer
    allowed_source_ranges: list[IPv4Network] = []

    @field_validator("allowed_source_ranges")
    @classmethod
    def _ranges_match_type(cls, ranges: list[IPv4Network], info: ValidationInfo) -> list[IPv4Network]:
        kind = info.data.get("type")
        if kind == "LoadBalancer" and not ranges:
            raise ValueError("a LoadBalancer needs the CIDRs allowed to reach it (there is no open default)")
        if kind == "ClusterIP" and (ranges or info.data.get("internal")):
            raise ValueError("internal and allowedSourceRanges need type LoadBalancer")
        return ranges


class ExposureConfig(Strict):
    engine: ServiceExposure = ServiceExposure()
    open_webui: ServiceExposure = ServiceExposure()


class ChatBackupConfig(Strict):
    """Scheduled copies of Open WebUI's database and uploads to the model bucket
    (components/workloads/backup.py)."""

    enabled: StrictBool = True
    # Five-field cron, in UTC (CronJob timeZone). Default: daily at 03:17.
    schedule: Annotated[str, Field(pattern=r"^\S+ \S+ \S+ \S+ \S+$")] = "17 3 * * *"


class OpenWebuiConfig(Strict):
    enabled: bool = True
    image: str = catalog.OPEN_WEBUI_IMAGE.ref
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

Engine = Literal["vllm", "rayservice", "none"]
# Namespaces that exist already or belong to operators this program installs.
RESERVED_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease", "kuberay-system")


class ServingConfig(Strict):
    engine: Engine = "vllm"
    model: str = "deepseek-ai/DeepSeek-R1"
    served_model_name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")] | None = None
    tensor_parallel_size: Annotated[int, Field(ge=1, le=64)] = 1
    pipeline_parallel_size: Annotated[int, Field(ge=1, le=16)] = 1
    max_model_len: Annotated[int, Field(ge=256)] | None = None  # None: the largest that fits
    gpu_memory_utilization: Annotated[float, Field(gt=0.5, le=0.98)] = 0.90
    kv_cache_dtype: KvCacheDtype = "auto"
    max_num_seqs: Annotated[int, Field(ge=1)] | None = None
    max_num_batched_tokens: Annotated[int, Field(ge=256)] | None = None
    image: str | None = None  # None: the pinned image of the engine (components/catalog/)
    replicas: Annotated[int, Field(ge=1, le=64)] = 1
    namespace: Annotated[str, Field(pattern=K8S_NAME, max_length=63)] = "llm"
    gpu_pool: str | None = None  # None: the platform's first GPU pool
    extra_args: list[str] = []  # more `vllm serve` flags, appended verbatim
    # `pulumi up` waits until the engine serves (timeouts sized from the model load);
    # false: it returns once the objects exist (see components/workloads/serving.py).
    wait_for_ready: bool = True
    open_webui: OpenWebuiConfig = OpenWebuiConfig()
    exposure: ExposureConfig = ExposureConfig()

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

    @property
    def model_spec(self) -> catalog.ModelSpec:
        return catalog.MODELS[self.model]

    @property
    def served_name(self) -> str:
        return self.served_model_name or self.model.rsplit("/", 1)[-1].lower()

    @property
    def engine_image(self) -> str:
        default = catalog.RAY_LLM_IMAGE if self.engine == "rayservice" else catalog.VLLM_IMAGE
        return self.image or default.ref

    @property
    def gpus_per_replica(self) -> int:
        return self.tensor_parallel_size * self.pipeline_parallel_size


class ModelCacheConfig(Strict):
    """Copy the model from Hugging Face into the stack's bucket once; engines load from there."""

    enabled: bool = False
    # auto: for vLLM, GCS FUSE with a local-SSD file cache on GKE and the Run:ai Model
    # Streamer from s3:// on AWS; the rayservice engine always uses Ray's bucket mirror.
    loader: Literal["auto", "runai-streamer", "gcsfuse"] = "auto"


class BenchmarkConfig(Strict):
    """`vllm bench serve` as a Job, defaults from the seed recipes."""

    enabled: bool = False
    num_prompts: Annotated[int, Field(ge=1)] = 1100
    input_len: Annotated[int, Field(ge=1)] = 1000
    output_len: Annotated[int, Field(ge=1)] = 1000
    max_concurrency: list[Annotated[int, Field(ge=1)]] = []  # a sweep; empty = unbounded
    # How long to wait for the engine to answer; None: the engine's own start-up budget.
    ready_timeout_seconds: Annotated[int, Field(ge=60)] | None = None
