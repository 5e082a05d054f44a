"""Stack configuration: strict pydantic models, every default, every cross-field rule.

The stack file (``Pulumi.<stack>.yaml``) carries four structured keys under the
``llm-serving`` namespace (``platform``, ``serving``, ``modelCache``, ``benchmark``)
and one secret (``hfToken``). ``load_config`` reads them from ``pulumi.Config``,
validates everything before a single resource is declared, and raises ``ConfigError``
listing *all* problems, each as ``llm-serving:<key path> = <value>: <what is allowed>``.
The sizing gate (components/sizing.py) is one of those rules: a configuration that
cannot start on its GPUs is refused with the numbers.
"""

from __future__ import annotations

import difflib
import json
import re
import types
from collections.abc import Mapping, Sequence
from functools import cached_property
from ipaddress import IPv4Network
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import pulumi
from pulumi.runtime import config as runtime_config
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import InitErrorDetails, PydanticCustomError

from components import catalog
from components.sizing import KvCacheDtype, SizingReport, SizingRequest, size

NAMESPACE = "llm-serving"
SECRET_KEYS = ("hfToken",)

_K8S_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"  # RFC 1123 label
_GCE_NAME = r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"  # Compute Engine resource name (RFC 1035)
_DURATION = r"^([0-9]+(s|m|h))+$"  # Karpenter durations such as 30m, 720h


class _Strict(BaseModel):
    """Base of every config model: unknown keys are errors, keys are camelCase."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, frozen=True, validate_default=True)


def _rule(loc: tuple[str | int, ...], value: Any, message: str) -> InitErrorDetails:
    """One cross-field problem, reported at the key the user has to change."""
    return InitErrorDetails(type=PydanticCustomError("rule", "{message}", {"message": message}), loc=loc, input=value)


def _raise(title: str, problems: list[InitErrorDetails]) -> None:
    if problems:
        raise ValidationError.from_exception_data(title, problems)


def _deployer_reachable(cidrs: list[Any], what: str) -> list[Any]:
    """A Kubernetes API open to nobody would lock out Pulumi itself; open to everybody is
    not a default we make. So the list of allowed networks is required."""
    if not cidrs:
        raise ValueError(
            f"list at least one CIDR (your deployment machine): the {what} is only reachable "
            "from these networks and Pulumi applies Kubernetes objects through it"
        )
    return cidrs


# --------------------------------------------------------------------------------------
# Shared pieces
# --------------------------------------------------------------------------------------


class BucketConfig(_Strict):
    """The stack's bucket for model weights and benchmark results."""

    create: bool = True
    # Buckets hold data: `pulumi destroy` leaves them (and their contents) in place
    # unless this is false, in which case they are deleted with everything in them.
    keep_on_destroy: bool = True


class RegistryConfig(_Strict):
    """A container registry for your own serving images (nodes may pull from it)."""

    create: bool = True
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-_/]{1,62}$")] = "llm-serving"


# --------------------------------------------------------------------------------------
# Platform: Google Cloud (GKE with an A4 High node pool on RoCE)
# --------------------------------------------------------------------------------------


class AuthorizedNetwork(_Strict):
    cidr: IPv4Network
    name: str = "deployer"


class GcpNetworkConfig(_Strict):
    """Address plan of the three VPCs; defaults from Google's A4 blueprint (gcp-a4high.md §1)."""

    primary_subnet: IPv4Network = IPv4Network("192.168.0.0/18")  # net-0, the cluster's subnet
    pods: IPv4Network = IPv4Network("10.4.0.0/14")  # net-0 secondary range "pods"
    services: IPv4Network = IPv4Network("10.0.32.0/20")  # net-0 secondary range "services"
    secondary_subnet: IPv4Network = IPv4Network("192.168.64.0/18")  # net-1, second gVNIC
    rdma: IPv4Network = IPv4Network("192.168.128.0/18")  # split into 8 subnets, one per GPU NIC
    control_plane: IPv4Network = IPv4Network("172.16.0.32/28")  # GKE master range
    mtu: Annotated[int, Field(ge=1300, le=8896)] = 8896

    @field_validator("pods", "services", "secondary_subnet", "rdma", "control_plane")
    @classmethod
    def _no_overlap(cls, cidr: IPv4Network, info: ValidationInfo) -> IPv4Network:
        for name, other in info.data.items():
            if isinstance(other, IPv4Network) and cidr.overlaps(other):
                raise ValueError(f"overlaps {to_camel(name)} ({other})")
        if info.field_name == "rdma" and cidr.prefixlen > 29:
            raise ValueError("must be /29 or larger to split into 8 subnets")
        return cidr

    @field_validator("control_plane")
    @classmethod
    def _control_plane_is_a_slash_28(cls, cidr: IPv4Network) -> IPv4Network:
        # ClusterPrivateClusterConfigArgs.master_ipv4_cidr_block: "it must be a /28 subnet"
        # (pulumi_gcp container/_inputs.py; GKE private cluster requirements).
        if cidr.prefixlen != 28:
            raise ValueError("GKE needs exactly a /28 for the control plane's private range")
        return cidr

    @property
    def rdma_subnets(self) -> list[IPv4Network]:
        """Eight equal subnets of the RDMA range (the toolkit's cidrsubnet(range, 3, i))."""
        return list(self.rdma.subnets(prefixlen_diff=3))


class GcpSystemPoolConfig(_Strict):
    """Small CPU pool for system pods, KubeRay, Open WebUI and the jobs."""

    machine_type: str = "e2-standard-8"
    nodes_per_zone: Annotated[int, Field(ge=1, le=10)] = 1
    disk_size_gb: Annotated[int, Field(ge=50)] = 200


GcpProvisioning = Literal["reservation", "spot", "flex-start", "on-demand"]


class GcpGpuPoolConfig(_Strict):
    """The A4 High node pool. Provisioning modes follow gcp-a4high.md §3 and §7.4."""

    name: Annotated[str, Field(pattern=_K8S_NAME, max_length=40)] = "a4high"
    machine_type: str = "a4-highgpu-8g"
    provisioning: GcpProvisioning = "on-demand"
    # Nodes of the pool; with flex-start the most the autoscaler may create (it starts at 0).
    node_count: Annotated[int, Field(ge=0, le=64)] = 1
    reservation: str | None = None  # name of a specific reservation, same zone
    reservation_block: str | None = None
    compact_placement: bool = False
    # GKE 1.32 only ships a B200-capable driver (>= 570) as LATEST (gcp-a4high.md §2).
    driver_version: Literal["LATEST", "DEFAULT"] = "LATEST"
    boot_disk_gb: Annotated[int, Field(ge=100)] = 200

    @field_validator("machine_type")
    @classmethod
    def _rdma_machine(cls, machine_type: str) -> str:
        machine = catalog.MACHINES.get(machine_type)
        if machine is None or machine.cloud != "gcp" or not machine.rdma_nics:
            rdma = sorted(m.name for m in catalog.MACHINES.values() if m.cloud == "gcp" and m.rdma_nics)
            raise ValueError(f"this platform wires GPUDirect RDMA over RoCE; allowed: {', '.join(rdma)}")
        return machine_type

    @field_validator("node_count")
    @classmethod
    def _flex_start_can_scale_up(cls, count: int, info: ValidationInfo) -> int:
        if count == 0 and info.data.get("provisioning") == "flex-start":
            raise ValueError("flex-start scales the pool from 0 up to nodeCount nodes; set it to at least 1")
        return count

    @field_validator("reservation", "reservation_block")
    @classmethod
    def _reservation_is_a_name(cls, name: str | None) -> str | None:
        # The node pool addresses it as projects/<project>/reservations/<name>[/reservationBlocks/<block>].
        if name is not None and not re.fullmatch(_GCE_NAME, name):
            raise ValueError("must be the name of a reservation (block) in `project`, not a path or URL")
        return name

    @field_validator("reservation")
    @classmethod
    def _reservation_matches_mode(cls, reservation: str | None, info: ValidationInfo) -> str | None:
        mode = info.data.get("provisioning")
        if mode == "reservation" and not reservation:
            raise ValueError("provisioning 'reservation' needs the name of a specific reservation")
        if mode not in (None, "reservation") and reservation:
            raise ValueError(
                f"provisioning '{mode}' cannot consume a reservation; remove it or use provisioning 'reservation'"
            )
        return reservation

    @field_validator("reservation_block")
    @classmethod
    def _block_needs_reservation(cls, block: str | None, info: ValidationInfo) -> str | None:
        if block and not info.data.get("reservation"):
            raise ValueError("a reservation block needs a reservation")
        return block

    @field_validator("compact_placement")
    @classmethod
    def _compact_not_spot(cls, compact: bool, info: ValidationInfo) -> bool:
        if compact and info.data.get("provisioning") == "spot":
            raise ValueError("COMPACT placement is not offered for spot pools")
        return compact

    @property
    def machine(self) -> catalog.MachineSpec:
        return catalog.MACHINES[self.machine_type]


class GcpPlatformConfig(_Strict):
    cloud: Literal["gcp"]
    project: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")]
    region: Annotated[str, Field(pattern=r"^[a-z]+-[a-z]+[0-9]+$")]
    zone: Annotated[str, Field(pattern=r"^[a-z]+-[a-z]+[0-9]+-[a-z]$")]
    # GKE names: lowercase letters, digits and hyphens, starting with a letter; kept under
    # 16 characters as the A4 environment guide asks, so derived names (service account
    # ids of at most 30 characters, subnet names) stay valid (gcp-a4high.md §2).
    cluster_name: Annotated[str, Field(pattern=r"^[a-z]([-a-z0-9]*[a-z0-9])?$", max_length=15)] = "llm-serving"
    release_channel: Literal["RAPID", "REGULAR", "STABLE"] = "REGULAR"
    # First version with B200 + GPUDirect RDMA per the A4 guide (gcp-a4high.md §2).
    min_master_version: Annotated[str, Field(pattern=r"^1\.\d+(\.\d+(-gke\.\d+)?)?$")] = "1.32.4-gke.1236000"
    master_authorized_networks: list[AuthorizedNetwork] = []
    deletion_protection: bool = False
    network: GcpNetworkConfig = GcpNetworkConfig()
    system_pool: GcpSystemPoolConfig = GcpSystemPoolConfig()
    gpu_pool: GcpGpuPoolConfig = GcpGpuPoolConfig()
    bucket: BucketConfig = BucketConfig()
    registry: RegistryConfig = RegistryConfig()
    gib_version: Annotated[str, Field(pattern=r"^v\d+\.\d+\.\d+$")] = "v1.1.1"

    @field_validator("zone")
    @classmethod
    def _zone_in_region(cls, zone: str, info: ValidationInfo) -> str:
        region = info.data.get("region")
        if region and not zone.startswith(region + "-"):
            raise ValueError(
                f"must be a zone of region '{region}' (for example {region}-b): the RoCE network profile, "
                "the GPU node pool and any reservation share that zone"
            )
        return zone

    @field_validator("master_authorized_networks")
    @classmethod
    def _some_authorized_network(cls, networks: list[AuthorizedNetwork]) -> list[AuthorizedNetwork]:
        return _deployer_reachable(networks, "control plane")

    @property
    def engines(self) -> frozenset[str]:
        # A4 High serves one model per node with single-node TP 8 vLLM; the RayService
        # engine is not wired for the RDMA multi-network pods.
        return frozenset({"vllm"})


# --------------------------------------------------------------------------------------
# Platform: AWS (EKS with Karpenter GPU NodePools)
# --------------------------------------------------------------------------------------

CapacityType = Literal["on-demand", "spot", "reserved"]


class DisruptionBudget(_Strict):
    nodes: Annotated[str, Field(pattern=r"^(\d+%?)$")] = "1"
    schedule: str | None = None  # cron, with duration
    # Hours and minutes only: the NodePool CRD refuses seconds here (cron has no seconds).
    duration: Annotated[str, Field(pattern=r"^([0-9]+h)?([0-9]+m)?$", min_length=2)] | None = None
    reasons: list[Literal["Drifted", "Underutilized", "Empty"]] | None = None

    @field_validator("duration")
    @classmethod
    def _duration_with_schedule(cls, duration: str | None, info: ValidationInfo) -> str | None:
        # The CRD's rule: a schedule needs a duration and a duration needs a schedule.
        if (duration is None) != (info.data.get("schedule") is None):
            raise ValueError("schedule and duration go together: a budget active from a cron time, for a while")
        return duration


class AwsGpuNodePoolConfig(_Strict):
    """One Karpenter NodePool of NVIDIA GPU instances."""

    name: Annotated[str, Field(pattern=_K8S_NAME, max_length=63)]
    instance_families: Annotated[list[str], Field(min_length=1)] = ["g5"]
    instance_sizes: list[str] | None = None  # restrict sizes, e.g. [2xlarge, 4xlarge]
    capacity_types: Annotated[list[CapacityType], Field(min_length=1)] = ["on-demand", "spot"]
    gpu_limit: Annotated[int, Field(ge=1)] = 8  # total GPUs this pool may run
    # Loaded models are expensive to move: consolidate only empty nodes, after a delay,
    # one node at a time (aws-eks-karpenter.md §2.6).
    consolidate_after: Annotated[str, Field(pattern=_DURATION)] = "30m"
    expire_after: Annotated[str, Field(pattern=_DURATION)] = "720h"
    budgets: list[DisruptionBudget] = [DisruptionBudget()]

    @field_validator("instance_families")
    @classmethod
    def _gpu_families(cls, families: list[str]) -> list[str]:
        problems = [
            _rule((i,), family, f"not an NVIDIA GPU instance family; allowed: {', '.join(catalog.AWS_GPU_FAMILIES)}")
            for i, family in enumerate(families)
            if family not in catalog.AWS_GPU_FAMILIES
        ]
        _raise("instanceFamilies", problems)
        kinds = {catalog.aws_family_machines(f)[0].gpu for f in families}
        if len(kinds) > 1:
            raise ValueError(
                f"families with different GPUs ({', '.join(sorted(kinds))}) cannot share a pool: "
                "the engine is sized for one GPU model"
            )
        return families

    @field_validator("instance_sizes")
    @classmethod
    def _sizes_exist(cls, sizes: list[str] | None, info: ValidationInfo) -> list[str] | None:
        families = info.data.get("instance_families")
        if sizes is not None and families and not _pool_machines(families, sizes):
            raise ValueError(f"no instance type of {', '.join(families)} has these sizes")
        return sizes

    @field_validator("gpu_limit")
    @classmethod
    def _limit_fits_a_node(cls, limit: int, info: ValidationInfo) -> int:
        families = info.data.get("instance_families")
        machines = _pool_machines(families, info.data.get("instance_sizes")) if families else ()
        if machines and limit < min(m.gpus for m in machines):
            raise ValueError(
                f"below the {min(m.gpus for m in machines)} GPUs of the smallest allowed instance; "
                "Karpenter could never launch a node"
            )
        return limit

    @property
    def machines(self) -> tuple[catalog.MachineSpec, ...]:
        return _pool_machines(self.instance_families, self.instance_sizes)

    @property
    def gpu(self) -> catalog.GpuSpec:
        return catalog.GPUS[self.machines[0].gpu]

    @property
    def max_gpus_per_node(self) -> int:
        return max(m.gpus for m in self.machines)


def _pool_machines(families: list[str], sizes: list[str] | None) -> tuple[catalog.MachineSpec, ...]:
    return tuple(
        m
        for family in families
        for m in catalog.aws_family_machines(family)
        if sizes is None or m.name.split(".", 1)[1] in sizes
    )


class AwsSystemNodeGroupConfig(_Strict):
    """The managed node group outside Karpenter: Karpenter's own two replicas run here."""

    instance_types: Annotated[list[str], Field(min_length=1)] = ["m6i.2xlarge"]
    size: Annotated[int, Field(ge=2, le=20)] = 2
    disk_size_gib: Annotated[int, Field(ge=20)] = 100


class AwsPlatformConfig(_Strict):
    cloud: Literal["aws"]
    region: Annotated[str, Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")]
    availability_zones: Annotated[list[str], Field(min_length=2)]
    cluster_name: Annotated[str, Field(pattern=r"^[a-zA-Z][a-zA-Z0-9-]*$", max_length=38)] = "llm-serving"
    kubernetes_version: Annotated[str, Field(pattern=r"^1\.\d{2}$")] = "1.33"
    # `pulumi destroy` deletes the cluster unless this is true (then delete it by hand or flip it).
    deletion_protection: bool = False
    vpc_cidr: IPv4Network = IPv4Network("10.0.0.0/16")
    # One NAT gateway per zone keeps nodes in the other zones online when a zone fails
    # (GPU nodes pull images and weights, Karpenter calls EC2 and SQS); "single" saves
    # the hourly charge of the others at the price of that zone being a single point of failure.
    nat_gateways: Literal["per-zone", "single"] = "per-zone"
    admin_principals: list[Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/.+$")]] = []
    endpoint_public_access_cidrs: list[IPv4Network] = []
    system_node_group: AwsSystemNodeGroupConfig = AwsSystemNodeGroupConfig()
    gpu_node_pools: Annotated[list[AwsGpuNodePoolConfig], Field(min_length=1)] = [AwsGpuNodePoolConfig(name="gpu")]
    gpu_node_volume_gib: Annotated[int, Field(ge=100)] = 300
    # On-Demand Capacity Reservations or Capacity Blocks the GPU pools may use (capacity
    # type "reserved"). Karpenter never matches open reservations: each must be listed
    # (aws-eks-karpenter.md §2.10).
    capacity_reservation_ids: list[Annotated[str, Field(pattern=r"^cr-[0-9a-f]+$")]] = []
    bucket: BucketConfig = BucketConfig()
    registry: RegistryConfig = RegistryConfig()

    @field_validator("kubernetes_version")
    @classmethod
    def _karpenter_supports_version(cls, version: str) -> str:
        supported = [v for v in catalog.KARPENTER_KUBERNETES_VERSIONS if v in catalog.GPU_NODE_AMI.kubernetes_versions]
        if version not in supported:
            raise ValueError(
                f"Karpenter {catalog.KARPENTER_VERSION} with the pinned GPU node image "
                f"{catalog.GPU_NODE_AMI.alias} supports Kubernetes {', '.join(supported)}"
            )
        return version

    @field_validator("availability_zones")
    @classmethod
    def _zones_in_region(cls, zones: list[str], info: ValidationInfo) -> list[str]:
        region = info.data.get("region")
        problems = [
            _rule((i,), zone, f"must be a zone of region '{region}' (e.g. {region}a)")
            for i, zone in enumerate(zones)
            if region and not re.fullmatch(re.escape(region) + r"[a-z]", zone)
        ]
        _raise("availabilityZones", problems)
        if len(set(zones)) != len(zones):
            raise ValueError("zones must be distinct")
        return zones

    @field_validator("vpc_cidr")
    @classmethod
    def _room_for_subnets(cls, cidr: IPv4Network) -> IPv4Network:
        if cidr.prefixlen > 20:
            raise ValueError("must be /20 or larger to hold a public and a private subnet per zone")
        return cidr

    @field_validator("endpoint_public_access_cidrs")
    @classmethod
    def _some_endpoint_cidr(cls, cidrs: list[IPv4Network]) -> list[IPv4Network]:
        return _deployer_reachable(cidrs, "API endpoint")

    @field_validator("gpu_node_pools")
    @classmethod
    def _unique_pools(cls, pools: list[AwsGpuNodePoolConfig]) -> list[AwsGpuNodePoolConfig]:
        names = [p.name for p in pools]
        _raise(
            "gpuNodePools",
            [
                _rule((i, "name"), name, "pool names must be unique")
                for i, name in enumerate(names)
                if names.index(name) != i
            ],
        )
        return pools

    @field_validator("capacity_reservation_ids")
    @classmethod
    def _reserved_needs_reservations(cls, ids: list[str], info: ValidationInfo) -> list[str]:
        pools = info.data.get("gpu_node_pools") or []
        reserved = [p.name for p in pools if "reserved" in p.capacity_types]
        if reserved and not ids:
            raise ValueError(
                f"GPU pool(s) {', '.join(reserved)} use capacity type 'reserved': list the reservation ids "
                "(cr-...) here, Karpenter only launches into reservations it is given"
            )
        return ids

    @property
    def engines(self) -> frozenset[str]:
        return frozenset({"vllm", "rayservice"})


PlatformConfig = Annotated[GcpPlatformConfig | AwsPlatformConfig, Field(discriminator="cloud")]


# --------------------------------------------------------------------------------------
# Serving
# --------------------------------------------------------------------------------------


class ServiceExposure(_Strict):
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


class ExposureConfig(_Strict):
    engine: ServiceExposure = ServiceExposure()
    open_webui: ServiceExposure = ServiceExposure()


class OpenWebuiConfig(_Strict):
    enabled: bool = True
    image: str = catalog.OPEN_WEBUI_IMAGE.ref
    storage_gib: Annotated[int, Field(ge=1)] = 10
    admin_email: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")] = "admin@example.com"


# vLLM flags that no longer exist in the pinned release (vllm-serving.md §1.2, §6).
REMOVED_VLLM_FLAGS = {
    "--enable-reasoning": "removed in vLLM 0.10; --reasoning-parser is enough",
    "--disable-log-requests": "removed in vLLM 0.17; request logging is off by default",
}

Engine = Literal["vllm", "rayservice", "none"]
# Namespaces that exist already or belong to operators this program installs.
RESERVED_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease", "kuberay-system")


class ServingConfig(_Strict):
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
    image: str | None = None  # None: the pinned image of the engine (components/catalog.py)
    replicas: Annotated[int, Field(ge=1, le=64)] = 1
    namespace: Annotated[str, Field(pattern=_K8S_NAME, max_length=63)] = "llm"
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


class ModelCacheConfig(_Strict):
    """Copy the model from Hugging Face into the stack's bucket once; engines load from there."""

    enabled: bool = False
    # auto: for vLLM, GCS FUSE with a local-SSD file cache on GKE and the Run:ai Model
    # Streamer from s3:// on AWS; the rayservice engine always uses Ray's bucket mirror.
    loader: Literal["auto", "runai-streamer", "gcsfuse"] = "auto"


class BenchmarkConfig(_Strict):
    """`vllm bench serve` as a Job, defaults from the seed recipes."""

    enabled: bool = False
    num_prompts: Annotated[int, Field(ge=1)] = 1100
    input_len: Annotated[int, Field(ge=1)] = 1000
    output_len: Annotated[int, Field(ge=1)] = 1000
    max_concurrency: list[Annotated[int, Field(ge=1)]] = []  # a sweep; empty = unbounded
    # How long to wait for the engine to answer; None: the engine's own start-up budget.
    ready_timeout_seconds: Annotated[int, Field(ge=60)] | None = None


# --------------------------------------------------------------------------------------
# The whole stack
# --------------------------------------------------------------------------------------


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
            _rule(
                ("engine",),
                serving.engine,
                f"not available on cloud '{platform.cloud}'; allowed: {', '.join(sorted(allowed))}",
            )
        ]
    problems = []
    if serving.engine == "rayservice" and serving.exposure.engine.type == "LoadBalancer":
        problems.append(
            _rule(
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
        return [*problems, _rule(("gpuPool",), pool, f"no such GPU pool; allowed: {', '.join(names)}")]
    _, gpus_per_node, whole_node = pool_shape(platform, pool)
    tp, pp, engine_gpus = serving.tensor_parallel_size, serving.pipeline_parallel_size, serving.gpus_per_replica
    if gpus_per_node % tp:
        problems.append(
            _rule(
                ("tensorParallelSize",),
                tp,
                f"must divide the {gpus_per_node} GPUs per node of pool '{pool}'",
            )
        )
    elif whole_node and engine_gpus != gpus_per_node:
        problems.append(
            _rule(
                ("tensorParallelSize",),
                tp,
                f"tensorParallelSize x pipelineParallelSize ({tp} x {pp}) must equal the {gpus_per_node} GPUs "
                "of one node: RDMA pods take the whole node",
            )
        )
    elif engine_gpus > gpus_per_node:
        problems.append(
            _rule(
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
                _rule(
                    ("replicas",),
                    serving.replicas,
                    f"{serving.replicas} replica(s) x {engine_gpus} GPUs exceed pool '{pool}''s gpuLimit of {limit} "
                    f"(platform.gpuNodePools[{names.index(pool)}].gpuLimit)",
                )
            )
    if problems:
        return problems
    report = size(sizing_request(platform, serving))
    return [_rule((p.setting,), getattr(serving, _SNAKE[p.setting]), p.message) for p in report.problems]


_SNAKE = {
    "model": "model",
    "tensorParallelSize": "tensor_parallel_size",
    "maxModelLen": "max_model_len",
    "gpuMemoryUtilization": "gpu_memory_utilization",
}


class StackConfig(_Strict):
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
            _raise("serving", _serving_problems(platform, serving))
        return serving

    @field_validator("model_cache")
    @classmethod
    def _cache_needs_bucket(cls, cache: ModelCacheConfig, info: ValidationInfo) -> ModelCacheConfig:
        platform = info.data.get("platform")
        if cache.enabled and platform is not None and not platform.bucket.create:
            _raise(
                "modelCache",
                [
                    _rule(
                        ("enabled",),
                        True,
                        "the model cache needs the stack's bucket (platform.bucket.create is false)",
                    )
                ],
            )
        return cache

    @field_validator("benchmark")
    @classmethod
    def _benchmark_needs_engine(cls, benchmark: BenchmarkConfig, info: ValidationInfo) -> BenchmarkConfig:
        serving = info.data.get("serving")
        if benchmark.enabled and serving is not None and serving.engine == "none":
            _raise("benchmark", [_rule(("enabled",), True, "a benchmark needs an engine (serving.engine is 'none')")])
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


# --------------------------------------------------------------------------------------
# Reading the stack and reporting problems
# --------------------------------------------------------------------------------------


class ConfigError(Exception):
    """Every problem of a stack's configuration, one line each."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        count = f"{len(self.problems)} problem{'s' if len(self.problems) != 1 else ''}"
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid stack configuration ({count}); nothing was created:\n{lines}")


def _full_key(path: Sequence[str | int]) -> str:
    key = f"{NAMESPACE}:"
    for i, part in enumerate(path):
        key += f"[{part}]" if isinstance(part, int) else (part if i == 0 else f".{part}")
    return key


def _camel(part: str | int) -> str | int:
    # Defaults are validated too, and pydantic locates their errors by field name.
    return to_camel(part) if isinstance(part, str) else part


def _show(value: Any) -> str:
    if isinstance(value, Mapping | list):
        text = json.dumps(value, default=str)
        return text if len(text) <= 60 else text[:57] + "..."
    return repr(value)


def _unwrap(annotation: Any) -> list[Any]:
    """The types an annotation may hold, looking through Optional, Annotated, list and dict."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _unwrap(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return [t for arg in get_args(annotation) for t in _unwrap(arg)]
    if origin in (list, dict, tuple):
        return [t for arg in get_args(annotation) for t in _unwrap(arg)]
    return [annotation]


def _model_at(loc: Sequence[str | int]) -> tuple[type[BaseModel] | None, list[str | int]]:
    """The model class that owns the last key of ``loc``, and ``loc`` as the user sees it.

    Discriminated unions put the tag (``gcp``) into pydantic's location; it is not a key
    in the stack file, so it is dropped from the displayed path.
    """
    current: type[BaseModel] | None = StackConfig
    shown: list[str | int] = []
    pending: list[type[BaseModel]] = []
    loc = [_camel(part) for part in loc]
    for part in loc[:-1]:
        if isinstance(part, int):
            shown.append(part)
            continue
        if pending:
            tagged = [m for m in pending if get_args(m.model_fields["cloud"].annotation) == (part,)]
            if tagged:
                current, pending = tagged[0], []
                continue
        shown.append(part)
        field = _field_by_alias(current, part) if current else None
        if field is None:
            current = None
            continue
        models = [t for t in _unwrap(field.annotation) if isinstance(t, type) and issubclass(t, BaseModel)]
        current = models[0] if len(models) == 1 else None
        pending = models if len(models) > 1 else []
    shown.append(loc[-1])
    return current, shown


def _field_by_alias(model: type[BaseModel], alias: str) -> Any:
    for name, info in model.model_fields.items():
        if (info.alias or name) == alias:
            return info
    return None


def _describe(error: Mapping[str, Any]) -> str:
    owner, path = _model_at(error["loc"])
    key = _full_key(path)
    if error["type"] == "extra_forbidden":
        valid = [info.alias or name for name, info in owner.model_fields.items()] if owner else []
        near = difflib.get_close_matches(str(path[-1]), valid, n=1, cutoff=0.6)
        hint = f"did you mean '{near[0]}'? " if near else ""
        return f"{key}: unknown key; {hint}allowed keys: {', '.join(valid)}"
    if error["type"] == "missing":
        return f"{key}: is required"
    message = error["msg"].removeprefix("Value error, ")
    return f"{key} = {_show(error['input'])}: {message}"


def parse(raw: Mapping[str, Any]) -> StackConfig:
    """Validate the stack's structured config (keys without the namespace)."""
    try:
        return StackConfig.model_validate(dict(raw))
    except ValidationError as err:
        raise ConfigError([_describe(e) for e in err.errors()]) from None


def read_raw_config() -> dict[str, Any]:
    """Every ``llm-serving:*`` key the engine passes to the program, parsed from JSON.

    Listing the keys (rather than asking for known ones) is what lets a misspelled
    top-level key be reported instead of silently ignored.
    """
    keys = set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())
    config = pulumi.Config(NAMESPACE)
    raw: dict[str, Any] = {}
    for full_key in sorted(keys):
        namespace, _, key = full_key.partition(":")
        if namespace != NAMESPACE or key in SECRET_KEYS:
            continue
        value = config.get(key)
        try:
            raw[key] = json.loads(value) if value is not None else None
        except json.JSONDecodeError:
            raw[key] = value
    return raw


def load_config() -> tuple[StackConfig, pulumi.Output[str] | None]:
    """The validated stack configuration and the Hugging Face token (a secret), if set."""
    problems: list[str] = []
    token: pulumi.Output[str] | None = None
    config = pulumi.Config(NAMESPACE)
    if config.get("hfToken") is not None:
        if not pulumi.runtime.is_config_secret(f"{NAMESPACE}:hfToken"):
            problems.append(
                f"{NAMESPACE}:hfToken: is stored in plain text; set it with "
                f"`pulumi config set --secret hfToken <token>`"
            )
        token = config.require_secret("hfToken")
    try:
        stack = parse(read_raw_config())
    except ConfigError as err:
        raise ConfigError(problems + err.problems) from None
    if problems:
        raise ConfigError(problems)
    return stack, token
