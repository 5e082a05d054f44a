"""Platform config: AWS (EKS with Karpenter GPU NodePools)."""

from __future__ import annotations

import re
from ipaddress import IPv4Network
from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from components import catalog
from components.catalog import regions
from components.config.base import (
    DURATION,
    K8S_NAME,
    StoreSections,
    Strict,
    deployer_reachable,
    internet_ranges,
    known_region,
    raise_problems,
    rule,
)

AWS_ACCOUNT_ID_LENGTH = 12


def derived_bucket_name(cluster_name: str, account_id: str, region: str) -> str:
    """The model bucket's name unless the stack sets one: fixed, not auto-named, so a second
    `up` after a `destroy` that kept the bucket fails on the name instead of quietly making
    a new empty bucket; the account and region keep it unique (S3 names are global)."""
    return f"{cluster_name.lower()}-{account_id}-{region}"


CapacityType = Literal["on-demand", "spot", "reserved"]
PRINCIPAL_ARN = r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/.+$"


class DisruptionBudget(Strict):
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


class AwsEfaConfig(Strict):
    """EFA for a pool whose replicas span nodes (P instances: p4d, p4de, p5, p5e, p5en, p6-b200).

    The pool gets its own EC2NodeClass: subnets of one zone, a security group that allows
    all traffic to and from itself (EFA's requirement), and optionally a cluster placement
    group. Pods on it take whole nodes and request every EFA interface of the node, which
    makes Karpenter attach one per network card (components/aws/efa.py).
    """

    # The pool's one zone, one of the stack's availabilityZones: EFA traffic does not cross
    # zones, and a cluster placement group lives in a single zone (KP v1.14
    # concepts/nodeclasses.md placementGroupSelector).
    zone: str
    # "cluster": the program creates a cluster placement group and Karpenter launches the
    # pool's instances into it. "none": for Capacity Blocks, whose instances EC2 already
    # co-locates in an UltraCluster and which EC2 will not launch into a placement group.
    placement_group: Literal["cluster", "none"] = "cluster"


class AwsGpuNodePoolConfig(Strict):
    """One Karpenter NodePool of NVIDIA GPU instances."""

    name: Annotated[str, Field(pattern=K8S_NAME, max_length=63)]
    instance_families: Annotated[list[str], Field(min_length=1)] = ["g5"]
    instance_sizes: list[str] | None = None  # restrict sizes, e.g. [2xlarge, 4xlarge]
    # On-demand by default: with several types allowed Karpenter prefers spot (KP v1.14
    # concepts/nodepools.md), and a reclaim costs a model reload. Spot with one serving
    # replica needs singleReplicaOnSpot (components/config/stack.py).
    capacity_types: Annotated[list[CapacityType], Field(min_length=1)] = ["on-demand"]
    single_replica_on_spot: bool = False
    gpu_limit: Annotated[int, Field(ge=1)] = 8  # total GPUs this pool may run
    # Loaded models are expensive to move: consolidate only empty nodes, after a delay,
    # one node at a time (aws-eks-karpenter.md §2.6).
    consolidate_after: Annotated[str, Field(pattern=DURATION)] = "30m"
    expire_after: Annotated[str, Field(pattern=DURATION)] = "720h"
    # How long a node being disrupted (expired, drifted) may take to drain before Karpenter
    # deletes its remaining pods. Serving pods carry karpenter.sh/do-not-disrupt, so
    # without it an expired node would stay half-drained forever (KP v1.14
    # concepts/disruption.md "TerminationGracePeriod"; audit/aws.md F3). A node lives at
    # most expireAfter + terminationGracePeriod.
    termination_grace_period: Annotated[str, Field(pattern=DURATION)] = "24h"
    budgets: list[DisruptionBudget] = [DisruptionBudget()]
    # EFA across nodes for multi-node replicas (None: no inter-node fabric).
    efa: AwsEfaConfig | None = None

    @field_validator("instance_families")
    @classmethod
    def _gpu_families(cls, families: list[str]) -> list[str]:
        problems = [
            rule((i,), family, f"not an NVIDIA GPU instance family; allowed: {', '.join(catalog.AWS_GPU_FAMILIES)}")
            for i, family in enumerate(families)
            if family not in catalog.AWS_GPU_FAMILIES
        ]
        raise_problems("instanceFamilies", problems)
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

    @field_validator("efa")
    @classmethod
    def _efa_instances(cls, efa: AwsEfaConfig | None, info: ValidationInfo) -> AwsEfaConfig | None:
        families = info.data.get("instance_families")
        if efa is None or not families:
            return efa
        machines = _pool_machines(families, info.data.get("instance_sizes"))
        without = [m.name for m in machines if m.name not in catalog.EFA_INTERFACES]
        if without:
            raise ValueError(
                f"{', '.join(without)} have no EFA; EFA pools take instance families with EFA interfaces: "
                f"{', '.join(sorted({n.split('.')[0] for n in catalog.EFA_INTERFACES}))}"
            )
        counts = {catalog.EFA_INTERFACES[m.name] for m in machines}
        if len(counts) > 1:
            per_type = ", ".join(f"{m.name} {catalog.EFA_INTERFACES[m.name]}" for m in machines)
            raise ValueError(
                f"the pool's instance types have different EFA interface counts ({per_type}); a whole-node pod "
                "requests all of them, so an EFA pool takes types with one count: split it into pools"
            )
        capacity = info.data.get("capacity_types") or []
        if efa.placement_group == "cluster" and "reserved" in capacity:
            raise ValueError(
                "placementGroup 'cluster' with capacity type 'reserved': EC2 places Capacity Block instances "
                "in an UltraCluster itself, and a placement group can keep a launch from using the reservation "
                "(aws-parallelcluster refuses the pair, aws/aws-parallelcluster#6311; eksctl-io/eksctl#7949); "
                "an On-Demand Capacity Reservation is not reserved in the group this program creates either; "
                "set efa.placementGroup: none"
            )
        return efa

    @property
    def machines(self) -> tuple[catalog.MachineSpec, ...]:
        return _pool_machines(self.instance_families, self.instance_sizes)

    @property
    def instance_store(self) -> bool:
        """Every instance type of the pool has local NVMe, so each node has the RAID0 array
        at ``catalog.INSTANCE_STORE_MOUNT`` (the pool's scratch hostPath, gpu_pools.py)."""
        return all(catalog.INSTANCE_LOCAL_NVME_GB.get(m.name, 0) > 0 for m in self.machines)

    @property
    def fabric(self) -> Literal["none", "efa"]:
        """The pool's inter-node GPU network (``GpuNodes.fabric``)."""
        return "efa" if self.efa else "none"

    @property
    def efa_interfaces(self) -> int:
        """EFA interfaces of each node of the pool (0 without EFA; one count per pool)."""
        return catalog.EFA_INTERFACES[self.machines[0].name] if self.efa else 0

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


class AwsSystemNodeGroupConfig(Strict):
    """The managed node group outside Karpenter: Karpenter's own two replicas run here."""

    instance_types: Annotated[list[str], Field(min_length=1)] = ["m6i.2xlarge"]
    size: Annotated[int, Field(ge=2, le=20)] = 2
    disk_size_gib: Annotated[int, Field(ge=20)] = 100


# ECR pull-through cache rules: the repository prefix is 2 to 30 characters, and the
# upstream credentials live in a Secrets Manager secret named ecr-pullthroughcache/...
# (ECR API reference CreatePullThroughCacheRule; ECR user guide, "Creating a pull through
# cache rule": https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-through-cache-creating-rule.html).
ECR_PREFIX_MAX = 30
# Regions where ECR offers no pull-through cache rules ("Considerations for using pull
# through cache rules", https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-through-cache.html).
PULL_THROUGH_UNSUPPORTED_REGIONS = ("cn-north-1", "cn-northwest-1")
PULL_THROUGH_SECRET = (
    r"^(arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:)?ecr-pullthroughcache/[A-Za-z0-9/_+=.@-]+$"
)


class AwsPlatformConfig(StoreSections):  # modelStore, registry: base.py
    cloud: Literal["aws"]
    # A region opened after components/catalog/regions.py was compiled.
    allow_unlisted_region: bool = False
    region: Annotated[str, Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")]
    availability_zones: Annotated[list[str], Field(min_length=2)]
    cluster_name: Annotated[str, Field(pattern=r"^[a-zA-Z][a-zA-Z0-9-]*$", max_length=38)] = "llm-serving"
    kubernetes_version: Annotated[str, Field(pattern=r"^1\.\d{2}$")] = catalog.EKS_KUBERNETES_VERSION
    # STANDARD: when the version's standard support ends, EKS upgrades the control plane
    # to the next minor itself; EXTENDED keeps it for up to 12 more months at an extra
    # hourly charge (https://docs.aws.amazon.com/eks/latest/userguide/view-upgrade-policy.html).
    support_type: Literal["STANDARD", "EXTENDED"] = "STANDARD"
    # `pulumi destroy` deletes the cluster unless this is true (then delete it by hand or flip it).
    deletion_protection: bool = False
    vpc_cidr: IPv4Network = IPv4Network("10.0.0.0/16")
    # One NAT gateway per zone keeps nodes in the other zones online when a zone fails
    # (GPU nodes pull images and weights, Karpenter calls EC2 and SQS); "single" saves
    # the hourly charge of the others at the price of that zone being a single point of failure.
    nat_gateways: Literal["per-zone", "single"] = "per-zone"
    admin_principals: list[Annotated[str, Field(pattern=PRINCIPAL_ARN)]] = []
    # The IAM role or user that created the cluster, when that was not this stack's first
    # `up` (see components/aws/admins.py): EKS gave it admin itself, so no entry is made.
    cluster_creator: Annotated[str, Field(pattern=PRINCIPAL_ARN)] | None = None
    # Opt-in for an endpointPublicAccessCidrs range wider than a /8 (0.0.0.0/0).
    api_allow_internet: bool = False
    endpoint_public_access_cidrs: list[IPv4Network] = []
    system_node_group: AwsSystemNodeGroupConfig = AwsSystemNodeGroupConfig()
    gpu_node_pools: Annotated[list[AwsGpuNodePoolConfig], Field(min_length=1)] = [AwsGpuNodePoolConfig(name="gpu")]
    # EBS root volume of GPU nodes: OS and logs. Images, emptyDirs and container layers go
    # to the instance-store NVMe RAID0 that every allowed GPU family has (gpu_pools.py).
    gpu_node_volume_gib: Annotated[int, Field(ge=20)] = 80
    # On-Demand Capacity Reservations or Capacity Blocks the GPU pools may use (capacity
    # type "reserved"). Karpenter never matches open reservations: each must be listed
    # (aws-eks-karpenter.md §2.10).
    capacity_reservation_ids: list[Annotated[str, Field(pattern=r"^cr-[0-9a-f]+$")]] = []
    # Node auto repair: the eks-node-monitoring-agent add-on reports GPU (XID), kernel,
    # disk and network faults as node conditions, and Karpenter replaces nodes that keep
    # one (KP v1.14 concepts/disruption.md "Node Auto Repair"). Off by default: the
    # feature gate is alpha, and a repair terminates the node without draining it.
    node_repair: bool = False
    # Spot needs the account's AWSServiceRoleForEC2Spot; without it Karpenter treats spot
    # as unavailable (KP v1.14 troubleshooting.md). Off by default: the role exists once
    # per account, and creating it fails if it is already there.
    create_spot_service_linked_role: bool = False

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

    @field_validator("region")
    @classmethod
    def _known_region(cls, region: str, info: ValidationInfo) -> str:
        return known_region(region, regions.AWS_REGIONS, "AWS", info)

    @field_validator("availability_zones")
    @classmethod
    def _zones_in_region(cls, zones: list[str], info: ValidationInfo) -> list[str]:
        region = info.data.get("region")
        listed = regions.aws_zones(region or "")
        problems = [
            rule((i,), zone, f"must be a zone of region '{region}' (e.g. {region}a)")
            for i, zone in enumerate(zones)
            if region and not re.fullmatch(re.escape(region) + r"[a-z]", zone)
        ]
        problems += [
            rule((i,), zone, f"region '{region}' has the zones {', '.join(listed)} (as of {regions.REGIONS_AS_OF})")
            for i, zone in enumerate(zones)
            if listed and zone not in listed and region and re.fullmatch(re.escape(region) + r"[a-z]", zone)
        ]
        raise_problems("availabilityZones", problems)
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
    def _some_endpoint_cidr(cls, cidrs: list[IPv4Network], info: ValidationInfo) -> list[IPv4Network]:
        raise_problems(
            "endpointPublicAccessCidrs",
            internet_ranges(cidrs, bool(info.data.get("api_allow_internet")), "apiAllowInternet"),
        )
        return deployer_reachable(cidrs, "API endpoint")

    @field_validator("gpu_node_pools")
    @classmethod
    def _unique_pools(cls, pools: list[AwsGpuNodePoolConfig]) -> list[AwsGpuNodePoolConfig]:
        names = [p.name for p in pools]
        raise_problems(
            "gpuNodePools",
            [
                rule((i, "name"), name, "pool names must be unique")
                for i, name in enumerate(names)
                if names.index(name) != i
            ],
        )
        return pools

    @field_validator("gpu_node_pools")
    @classmethod
    def _efa_zone_is_a_stack_zone(
        cls, pools: list[AwsGpuNodePoolConfig], info: ValidationInfo
    ) -> list[AwsGpuNodePoolConfig]:
        zones = info.data.get("availability_zones") or []
        raise_problems(
            "gpuNodePools",
            [
                rule(
                    (i, "efa", "zone"),
                    pool.efa.zone,
                    f"not one of the stack's availabilityZones ({', '.join(zones)}): the EFA pool's nodes "
                    "launch into that zone's private subnet",
                )
                for i, pool in enumerate(pools)
                if pool.efa is not None and zones and pool.efa.zone not in zones
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

    @model_validator(mode="after")
    def _bucket_name_fits(self) -> AwsPlatformConfig:
        store = self.bucket_store
        if store is not None and store.name is None:
            length = len(derived_bucket_name(self.cluster_name, "0" * AWS_ACCOUNT_ID_LENGTH, self.region))
            if length > 63:
                raise_problems(
                    "modelStore",
                    [
                        rule(
                            ("modelStore", "name"),
                            None,
                            f"the bucket name derived from clusterName and region would be {length} characters "
                            "(S3 allows 63): set modelStore.name",
                        )
                    ],
                )
        return self

    @model_validator(mode="after")
    def _mirror_fits_ecr(self) -> AwsPlatformConfig:
        mirror = self.mirror
        if mirror is None:
            return self
        problems = []
        prefix = mirror.repository(self.cluster_name)
        if len(prefix) > ECR_PREFIX_MAX:
            where = ("registry", "name")
            problems.append(
                rule(
                    where,
                    mirror.name,
                    f"the ECR repository prefix '{prefix}' is {len(prefix)} characters; a pull-through cache "
                    f"rule takes at most {ECR_PREFIX_MAX}: set a shorter registry.name",
                )
            )
        if self.region in PULL_THROUGH_UNSUPPORTED_REGIONS:
            problems.append(
                rule(
                    ("registry", "kind"),
                    "mirror",
                    f"ECR has no pull-through cache in {self.region}: use kind 'repository' or 'none'",
                )
            )
        credentials = mirror.credentials
        if credentials is None:
            problems.append(
                rule(
                    ("registry", "credentials"),
                    None,
                    "ECR pulls through from Docker Hub only with a Docker Hub account: create a Secrets Manager "
                    'secret named ecr-pullthroughcache/<name> holding {"username": ..., "accessToken": ...} '
                    "and set registry.credentials.secret to its ARN or name",
                )
            )
        else:
            if not re.fullmatch(PULL_THROUGH_SECRET, credentials.secret):
                problems.append(
                    rule(
                        ("registry", "credentials", "secret"),
                        credentials.secret,
                        "the ARN or the name of a Secrets Manager secret whose name starts with "
                        "ecr-pullthroughcache/ (the prefix ECR requires)",
                    )
                )
            if credentials.username is not None:
                problems.append(
                    rule(
                        ("registry", "credentials", "username"),
                        credentials.username,
                        "not used on aws: the secret holds the user name (key 'username') with the token",
                    )
                )
        raise_problems("registry", problems)
        return self

    @property
    def engines(self) -> frozenset[str]:
        return frozenset({"vllm", "rayservice"})

    @property
    def loaders(self) -> frozenset[str]:
        # No GCS FUSE CSI driver on EKS: vLLM streams from s3:// (vllm-serving.md §4.2). A
        # node copy needs the stack's bucket and a pool with instance-store NVMe (the stack
        # rule checks the serving pool: StackConfig._loader_exists).
        local = {"node-cache"} if self.bucket_store and any(p.instance_store for p in self.gpu_node_pools) else set()
        return frozenset({"runai-streamer", *local})
