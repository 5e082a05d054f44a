"""Platform config: Google Cloud (GKE with an A4 High node pool on RoCE)."""

from __future__ import annotations

import re
from ipaddress import IPv4Network
from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator
from pydantic.alias_generators import to_camel

from components import catalog
from components.config.base import GCE_NAME, K8S_NAME, StoreSections, Strict, deployer_reachable


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


class GcpPlatformConfig(StoreSections):  # modelStore, registry: base.py
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
        return deployer_reachable(networks, "control plane")

    @property
    def engines(self) -> frozenset[str]:
        # A4 High serves one model per node with single-node TP 8 vLLM; the RayService
        # engine is not wired for the RDMA multi-network pods.
        return frozenset({"vllm"})
