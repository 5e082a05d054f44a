"""Platform config: Google Cloud (GKE with an A4 High node pool on RoCE)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from ipaddress import IPv4Network
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator
from pydantic.alias_generators import to_camel

from components import catalog
from components.catalog import regions
from components.config.base import (
    GCE_NAME,
    K8S_NAME,
    RegistryConfig,
    RegistryMirror,
    StoreSections,
    Strict,
    deployer_reachable,
    internet_ranges,
    known_region,
    raise_problems,
    rule,
)


class AuthorizedNetwork(Strict):
    cidr: IPv4Network
    name: str = "deployer"


class GcpNetworkConfig(Strict):
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


class GcpSystemPoolConfig(Strict):
    """Small CPU pool for system pods, KubeRay, Open WebUI and the jobs."""

    machine_type: str = "e2-standard-8"
    nodes_per_zone: Annotated[int, Field(ge=1, le=10)] = 1
    disk_size_gb: Annotated[int, Field(ge=50)] = 200


GcpProvisioning = Literal["reservation", "spot", "flex-start", "on-demand"]


class GcpGpuPoolConfig(Strict):
    """The A4 High node pool. Provisioning modes follow gcp-a4high.md §3 and §7.4."""

    name: Annotated[str, Field(pattern=K8S_NAME, max_length=40)] = "a4high"
    machine_type: str = "a4-highgpu-8g"
    provisioning: GcpProvisioning = "on-demand"
    # Nodes of the pool; with flex-start the most the autoscaler may create (it starts at 0).
    node_count: Annotated[int, Field(ge=0, le=64)] = 1
    reservation: str | None = None  # name of a specific reservation, same zone
    reservation_block: str | None = None
    compact_placement: bool = False
    # Which NVIDIA driver GKE installs; it moves with the GKE version. The stack checks it
    # against the serving image's CUDA build (components/catalog/gke.py GKE_B200_DRIVERS).
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
        if name is not None and not re.fullmatch(GCE_NAME, name):
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


ZULU_TIME = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"  # RFC 3339 in UTC, as GKE returns it
RECURRENCE = r"^FREQ=(DAILY|WEEKLY;BYDAY=(MO|TU|WE|TH|FR|SA|SU)(,(MO|TU|WE|TH|FR|SA|SU))*)$"


def _hours(start: str, end: str) -> float:
    def parse(value: str) -> datetime:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")

    return (parse(end) - parse(start)) / timedelta(hours=1)


class GcpMaintenanceConfig(Strict):
    """When GKE may upgrade the cluster by itself.

    A recurring window (UTC; GKE returns times in UTC, so other offsets would diff
    forever) in which GKE does the maintenance the exclusion still allows, and, by
    default, an exclusion of minor and node upgrades until the minor's end of support:
    the only A4 node is then never drained, re-pulled and re-loaded (688 GB) by an
    automatic upgrade, while control-plane patches still arrive in the window. Minor and
    node upgrades are done by hand (README, "Upgrading GKE"). Same exclusion as Google's
    A4 blueprint (cluster-toolkit examples/gke-a4/gke-a4.yaml @1047080).
    """

    # The first window; its weekday(s) and hours repeat by `recurrence`.
    window_start: Annotated[str, Field(pattern=ZULU_TIME)] = "2026-01-03T02:00:00Z"  # a Saturday
    window_end: Annotated[str, Field(pattern=ZULU_TIME)] = "2026-01-03T10:00:00Z"
    recurrence: Annotated[str, Field(pattern=RECURRENCE)] = "FREQ=WEEKLY;BYDAY=SA,SU"
    hold_minor_and_node_upgrades: bool = True
    hold_since: Annotated[str, Field(pattern=ZULU_TIME)] = "2026-01-01T00:00:00Z"

    @field_validator("window_end")
    @classmethod
    def _window_long_enough(cls, end: str, info: ValidationInfo) -> str:
        start = info.data.get("window_start")
        hours = _hours(start, end) if start else None
        if hours is not None and not catalog.GKE_MAINTENANCE_MIN_WINDOW_HOURS <= hours <= 24:
            raise ValueError(
                f"must be {catalog.GKE_MAINTENANCE_MIN_WINDOW_HOURS} to 24 hours after windowStart ({start}): GKE "
                f"counts only windows of at least {catalog.GKE_MAINTENANCE_MIN_WINDOW_HOURS} hours"
            )
        return end

    @field_validator("recurrence", mode="before")
    @classmethod
    def _recurrence_in_words(cls, recurrence: Any) -> Any:
        if isinstance(recurrence, str) and not re.fullmatch(RECURRENCE, recurrence):
            raise ValueError(
                "must be FREQ=DAILY or FREQ=WEEKLY;BYDAY= followed by days (MO,TU,WE,TH,FR,SA,SU), "
                "for example FREQ=WEEKLY;BYDAY=SA,SU"
            )
        return recurrence

    @field_validator("recurrence")
    @classmethod
    def _enough_maintenance_time(cls, recurrence: str, info: ValidationInfo) -> str:
        start, end = info.data.get("window_start"), info.data.get("window_end")
        if not (start and end):
            return recurrence
        hours = _hours(start, end)
        # Fewest occurrences in any 32 days: 32 daily, or 4 full weeks of the listed days.
        days = 32 if recurrence == "FREQ=DAILY" else 4 * len(recurrence.rsplit("=", maxsplit=1)[-1].split(","))
        if days * hours < catalog.GKE_MAINTENANCE_MIN_HOURS_PER_32_DAYS:
            raise ValueError(
                f"windows of {hours:g} hours give {days * hours:g} hours in some 32 days; GKE needs at least "
                f"{catalog.GKE_MAINTENANCE_MIN_HOURS_PER_32_DAYS}: lengthen the window or add days"
            )
        return recurrence


# What Artifact Registry takes as a remote repository's password: a Secret Manager
# version (pulumi-gcp artifactregistry RepositoryRemoteRepositoryConfigUpstreamCredentials
# UsernamePasswordCredentialsArgs.password_secret_version).
# A version number, not the `latest` alias: the repository pins what it signs in with.
SECRET_VERSION = r"^projects/[^/]+/secrets/[A-Za-z0-9_-]+/versions/[0-9]+$"


class GcpPlatformConfig(StoreSections):  # modelStore, registry: base.py
    cloud: Literal["gcp"]
    # A region opened after components/catalog/regions.py was compiled.
    allow_unlisted_region: bool = False
    project: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")]
    region: Annotated[str, Field(pattern=r"^[a-z]+-[a-z]+[0-9]+$")]
    zone: Annotated[str, Field(pattern=r"^[a-z]+-[a-z]+[0-9]+-[a-z]$")]
    # GKE names: lowercase letters, digits and hyphens, starting with a letter; kept under
    # 16 characters as the A4 environment guide asks, so derived names (service account
    # ids of at most 30 characters, subnet names) stay valid (gcp-a4high.md §2).
    cluster_name: Annotated[str, Field(pattern=r"^[a-z]([-a-z0-9]*[a-z0-9])?$", max_length=15)] = "llm-serving"
    release_channel: Literal["RAPID", "REGULAR", "STABLE"] = "REGULAR"
    # A GKE minor ("1.35."): at deploy time the cluster gets the newest patch of it that
    # the release channel offers; later upgrades are GKE's (maintenance) or yours.
    version_prefix: str = catalog.GKE_VERSION_PREFIX
    min_master_version: Any = None  # moved to versionPrefix; kept only to say so
    maintenance: GcpMaintenanceConfig = GcpMaintenanceConfig()
    # Opt-in for a masterAuthorizedNetworks range wider than a /8 (0.0.0.0/0).
    api_allow_internet: bool = False
    master_authorized_networks: list[AuthorizedNetwork] = []
    deletion_protection: bool = False
    network: GcpNetworkConfig = GcpNetworkConfig()
    system_pool: GcpSystemPoolConfig = GcpSystemPoolConfig()
    gpu_pool: GcpGpuPoolConfig = GcpGpuPoolConfig()
    gib_version: Annotated[str, Field(pattern=r"^v\d+\.\d+\.\d+$")] = "v1.1.1"

    @field_validator("region")
    @classmethod
    def _known_region(cls, region: str, info: ValidationInfo) -> str:
        return known_region(region, regions.GCP_REGIONS, "Google Cloud", info)

    @field_validator("min_master_version")
    @classmethod
    def _min_master_version_moved(cls, pinned: Any) -> None:
        # An exact patch is refused by GKE once the channel stops offering it
        # (hashicorp/terraform-provider-google#2149), so the key is gone, with a pointer.
        if pinned is not None:
            minor = ".".join(str(pinned).split(".")[:2]) + "."
            raise ValueError(
                f"replaced by platform.versionPrefix: give a GKE minor such as {minor!r} (default "
                f"{catalog.GKE_VERSION_PREFIX!r}); the newest patch the release channel offers is used, and an "
                "existing cluster keeps its version"
            )

    @field_validator("version_prefix", mode="before")
    @classmethod
    def _version_prefix_is_a_supported_minor(cls, prefix: Any) -> Any:
        if not isinstance(prefix, str) or not re.fullmatch(r"1\.\d+\.", prefix):
            raise ValueError(
                "must be a GKE minor version in quotes followed by a dot, for example "
                f"{catalog.GKE_VERSION_PREFIX!r} (without the dot '1.3' would also match 1.30-1.39)"
            )
        floor = catalog.GKE_B200_RDMA_FLOOR
        if catalog.gke_minor(prefix) < catalog.gke_minor(floor):
            raise ValueError(
                f"is older than GKE {floor}, the first version with B200 and GPUDirect RDMA; use "
                f"{'.'.join(floor.split('.')[:2])}. or later (default {catalog.GKE_VERSION_PREFIX!r})"
            )
        return prefix

    @field_validator("zone")
    @classmethod
    def _zone_in_region(cls, zone: str, info: ValidationInfo) -> str:
        region = info.data.get("region")
        if region and not zone.startswith(region + "-"):
            raise ValueError(
                f"must be a zone of region '{region}' (for example {region}-b): the RoCE network profile, "
                "the GPU node pool and any reservation share that zone"
            )
        zones = regions.gcp_zones(region or "")
        if zones and zone not in zones:
            raise ValueError(f"region '{region}' has the zones {', '.join(zones)} (as of {regions.REGIONS_AS_OF})")
        return zone

    @field_validator("master_authorized_networks")
    @classmethod
    def _some_authorized_network(
        cls, networks: list[AuthorizedNetwork], info: ValidationInfo
    ) -> list[AuthorizedNetwork]:
        problems = internet_ranges(
            [n.cidr for n in networks], bool(info.data.get("api_allow_internet")), "apiAllowInternet"
        )
        raise_problems("masterAuthorizedNetworks", [{**p, "loc": (*p["loc"], "cidr")} for p in problems])
        return deployer_reachable(networks, "control plane")

    @field_validator("registry")
    @classmethod
    def _mirror_credentials(cls, registry: RegistryConfig) -> RegistryConfig:
        credentials = registry.credentials if isinstance(registry, RegistryMirror) else None
        if credentials is None:
            return registry
        problems = []
        if not re.fullmatch(SECRET_VERSION, credentials.secret):
            problems.append(
                rule(
                    ("credentials", "secret"),
                    credentials.secret,
                    "a Secret Manager secret version, projects/PROJECT/secrets/NAME/versions/NUMBER, holding "
                    "the Docker Hub access token",
                )
            )
        if credentials.username is None:
            problems.append(
                rule(
                    ("credentials", "username"),
                    None,
                    "Artifact Registry signs in to Docker Hub with a user name and the token in the secret: "
                    "set the Docker Hub user name",
                )
            )
        raise_problems("registry", problems)
        return registry

    @property
    def image_streaming(self) -> bool:
        """GKE image streaming on the GPU pool, for images pulled through the mirror (an
        Artifact Registry remote repository is an eligible source: GKE docs, "Use Image
        streaming to pull container images", Requirements)."""
        return self.mirror is not None

    def driver_problem(self, image: catalog.Image) -> str | None:
        """Why the driver GKE installs on the GPU pool cannot run ``image``, or None."""
        if image.cuda is None:
            return None
        label, minor = self.gpu_pool.driver_version, catalog.gke_minor(self.version_prefix)
        record = catalog.b200_driver(minor, label)
        need = image.cuda.min_driver
        if record is not None and record.driver and catalog.version_tuple(record.driver) >= catalog.version_tuple(need):
            return None
        if record is None:
            known = f"no record says which driver GKE 1.{minor} installs as {label}"
        elif not record.driver:
            known = f"GKE 1.{minor} has no B200 driver as {label}"
        else:
            known = f"the driver recorded for {label} on GKE 1.{record.since_minor} and later is {record.driver}"
        fixes = ["driverVersion LATEST" if label == "DEFAULT" else "", "a newer versionPrefix"]
        return (
            f"{image.ref} is built for CUDA {image.cuda.cuda} and needs NVIDIA driver >= {need}, but {known} "
            f"(components/catalog/gke.py); use {' or '.join(f for f in fixes if f)}, or an image built for an "
            "older CUDA (serving.image)"
        )

    @property
    def engines(self) -> frozenset[str]:
        # Both engines' GPU pods carry the RDMA wiring (GpuNodes: NIC annotations, gIB,
        # IPC_LOCK); the KubeRay operator is installed by the rayservice engine itself.
        return frozenset({"vllm", "rayservice"})

    @property
    def loaders(self) -> frozenset[str]:
        # GKE runs the GCS FUSE CSI driver (for the stack's GCS bucket only); the Run:ai
        # streamer reads gs://, s3:// endpoints and mounted volumes.
        return frozenset({"gcsfuse", "runai-streamer"} if self.bucket_store else {"runai-streamer"})
