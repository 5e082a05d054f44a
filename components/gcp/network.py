"""The three VPCs an A4 High node is wired to.

Google's A4 blueprint (gcp-a4high.md §1) gives each GPU node ten NICs on three VPCs:

* ``net-0``: the cluster's own network (nodes, pods and services; eth0). Private nodes
  reach the internet through Cloud NAT and Google APIs through Private Google Access.
* ``net-1``: a second gVNIC network (eth1).
* one RDMA VPC created with the zonal RoCE network profile, holding one subnet per GPU
  NIC (eth2..eth9). It takes no VPC firewall rules (§1.2, §7.1).

``plan_networks`` derives every name and range from the stack config, as plain values,
so the node pool, the GKE network objects and the tests agree on them without Pulumi.
Names start with the cluster name so two stacks can share a project.

Every network resource keeps that fixed name, so each is replaced delete-first: created
first, the replacement would collide with its predecessor's name (GCP answers 409
"already exists"; audit reliability.md finding 3). Their dependants (subnets, the
cluster, the node pools) are replaced with them, so nothing is left pointing at a
deleted network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_gcp as gcp

from components import catalog
from components.config import GcpPlatformConfig
from components.gcp.options import child_options

# Secondary ranges of net-0 that GKE allocates pod and service IPs from (gcp-a4high.md §1.3).
POD_RANGE = "pods"
SERVICE_RANGE = "services"

# VPCs with an RDMA network profile keep the routing of the A4 blueprint (gcp-a4high.md §1.2).
ROUTING_MODE = "REGIONAL"

# gVNIC firewall: allow all internal TCP, UDP and ICMP (gcp-a4high.md §1.3, "<dep>-internal-N").
INTERNAL_PROTOCOLS = ("tcp", "udp", "icmp")


def roce_network_profile(project: str, zone: str) -> str:
    """The zonal RoCE profile an RDMA VPC is created with (gcp-a4high.md §1.2:
    ``projects/P/global/networkProfiles/ZONE-vpc-roce``; create-only)."""
    return f"projects/{project}/global/networkProfiles/{zone}-vpc-roce"


@dataclass(frozen=True)
class Subnet:
    network: str  # VPC name
    name: str
    cidr: str


@dataclass(frozen=True)
class NodeNic:
    """An additional NIC of a GPU node and the GKE network object that hands it to pods.

    GKE ``Network``/``GKENetworkParamSet`` names are what pods list in their
    ``networking.gke.io/interfaces`` annotation: ``gvnic-1`` and ``rdma-0..7`` are the
    names Google's charts expect (gcp-a4high.md §4.1, §7.7).
    """

    k8s_network: str
    device_mode: Literal["NetDevice", "RDMA"]  # RDMA networks must not copy NetDevice (§7.7)
    subnet: Subnet


@dataclass(frozen=True)
class NetworkPlan:
    """Names and ranges of the three VPCs, in the order the node's NICs use them."""

    primary: Subnet  # net-0, the cluster's network
    secondary: Subnet  # net-1
    rdma_network: str
    rdma: tuple[Subnet, ...]  # one per GPU NIC
    router: str
    nat: str
    internal_firewalls: tuple[str, str]  # on net-0 and net-1

    @property
    def node_nics(self) -> tuple[NodeNic, ...]:
        """The node's NICs after eth0, in order: net-1, then the RDMA subnets."""
        rdma = tuple(NodeNic(f"rdma-{i}", "RDMA", subnet) for i, subnet in enumerate(self.rdma))
        return (NodeNic("gvnic-1", "NetDevice", self.secondary), *rdma)


def plan_networks(config: GcpPlatformConfig) -> NetworkPlan:
    """Every network name and range of the stack (toolkit naming, gcp-a4high.md §1.2-§1.3)."""
    prefix, ranges = config.cluster_name, config.network
    rdma_network = f"{prefix}-rdma-net"
    return NetworkPlan(
        primary=Subnet(f"{prefix}-net-0", f"{prefix}-sub-0", str(ranges.primary_subnet)),
        secondary=Subnet(f"{prefix}-net-1", f"{prefix}-sub-1", str(ranges.secondary_subnet)),
        rdma_network=rdma_network,
        rdma=tuple(
            Subnet(rdma_network, f"{prefix}-rdma-sub-{i}", str(cidr)) for i, cidr in enumerate(ranges.rdma_subnets)
        ),
        router=f"{prefix}-router",
        nat=f"{prefix}-nat",
        internal_firewalls=(f"{prefix}-internal-0", f"{prefix}-internal-1"),
    )


@dataclass(frozen=True)
class AttachedNic:
    """A created network and subnetwork, by name, as a node pool attaches them."""

    network: pulumi.Output[str]
    subnetwork: pulumi.Output[str]


@dataclass(frozen=True)
class NetworksArgs:
    config: GcpPlatformConfig
    plan: NetworkPlan


class Networks(pulumi.ComponentResource):
    """net-0 with Cloud NAT, net-1, and the RoCE VPC with one subnet per GPU NIC."""

    network: pulumi.Output[str]  # net-0, for the cluster
    subnetwork: pulumi.Output[str]
    node_nics: list[AttachedNic]  # in the order of NetworkPlan.node_nics

    def __init__(self, name: str, args: NetworksArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llm-serving:gcp:Networks", name, None, opts)
        config, plan = args.config, args.plan
        child = child_options(self, opts, delete_before_replace=True)

        # net-0: the cluster's network. The secondary ranges are what VPC-native GKE uses.
        net0 = self._vpc(f"{name}-net-0", plan.primary.network, config.network.mtu, child)
        sub0 = gcp.compute.Subnetwork(
            f"{name}-sub-0",
            name=plan.primary.name,
            network=net0.name,
            region=config.region,
            ip_cidr_range=plan.primary.cidr,
            secondary_ip_ranges=[
                gcp.compute.SubnetworkSecondaryIpRangeArgs(
                    range_name=POD_RANGE, ip_cidr_range=str(config.network.pods)
                ),
                gcp.compute.SubnetworkSecondaryIpRangeArgs(
                    range_name=SERVICE_RANGE, ip_cidr_range=str(config.network.services)
                ),
            ],
            # Nodes are private: Google APIs (GCS weights, Artifact Registry) bypass the NAT.
            private_ip_google_access=True,
            opts=child,
        )
        self._internal_firewall(
            f"{name}-internal-0",
            plan.internal_firewalls[0],
            net0,
            [plan.primary.cidr, str(config.network.pods)],
            child,
        )
        # Private nodes pull images and Hugging Face weights through Cloud NAT (gcp-a4high.md §1.3).
        router = gcp.compute.Router(
            f"{name}-router", name=plan.router, network=net0.name, region=config.region, opts=child
        )
        gcp.compute.RouterNat(
            f"{name}-nat",
            name=plan.nat,
            router=router.name,
            region=config.region,
            nat_ip_allocate_option="AUTO_ONLY",
            source_subnetwork_ip_ranges_to_nat="ALL_SUBNETWORKS_ALL_IP_RANGES",
            # Ports grow per VM with its connections, instead of a fixed 64 that a node
            # pulling images and weights over many connections runs out of (audit gcp.md
            # finding 7; sizes in components/catalog/gke.py).
            enable_dynamic_port_allocation=True,
            min_ports_per_vm=catalog.NAT_MIN_PORTS_PER_VM,
            max_ports_per_vm=catalog.NAT_MAX_PORTS_PER_VM,
            log_config=gcp.compute.RouterNatLogConfigArgs(enable=True, filter="ERRORS_ONLY"),
            opts=child,
        )

        # net-1: the second gVNIC.
        net1 = self._vpc(f"{name}-net-1", plan.secondary.network, config.network.mtu, child)
        sub1 = gcp.compute.Subnetwork(
            f"{name}-sub-1",
            name=plan.secondary.name,
            network=net1.name,
            region=config.region,
            ip_cidr_range=plan.secondary.cidr,
            private_ip_google_access=True,
            opts=child,
        )
        self._internal_firewall(f"{name}-internal-1", plan.internal_firewalls[1], net1, [plan.secondary.cidr], child)

        # The RDMA VPC. No firewall rules: RoCE VPCs reject them, and their implied rules
        # already allow ingress and egress (gcp-a4high.md §1.2, §7.1).
        rdma = self._vpc(
            f"{name}-rdma-net",
            plan.rdma_network,
            config.network.mtu,
            child,
            network_profile=roce_network_profile(config.project, config.zone),
        )
        rdma_subnets = [
            gcp.compute.Subnetwork(
                f"{name}-rdma-sub-{i}",
                name=subnet.name,
                network=rdma.name,
                region=config.region,
                ip_cidr_range=subnet.cidr,
                opts=child,
            )
            for i, subnet in enumerate(plan.rdma)
        ]

        self.network, self.subnetwork = net0.name, sub0.name
        self.node_nics = [
            AttachedNic(net1.name, sub1.name),
            *(AttachedNic(rdma.name, subnet.name) for subnet in rdma_subnets),
        ]
        self.register_outputs(
            {
                "network": self.network,
                "subnetwork": self.subnetwork,
                "node_nics": [{"network": nic.network, "subnetwork": nic.subnetwork} for nic in self.node_nics],
            }
        )

    @staticmethod
    def _vpc(
        resource_name: str,
        name: str,
        mtu: int,
        opts: pulumi.ResourceOptions,
        network_profile: str | None = None,
    ) -> gcp.compute.Network:
        # The same MTU on all three VPCs (8896 by default, gcp-a4high.md §1.2-§1.3).
        return gcp.compute.Network(
            resource_name,
            name=name,
            auto_create_subnetworks=False,
            routing_mode=ROUTING_MODE,
            mtu=mtu,
            network_profile=network_profile,
            opts=opts,
        )

    @staticmethod
    def _internal_firewall(
        resource_name: str,
        name: str,
        network: gcp.compute.Network,
        source_ranges: Sequence[str],
        opts: pulumi.ResourceOptions,
    ) -> gcp.compute.Firewall:
        return gcp.compute.Firewall(
            resource_name,
            name=name,
            network=network.name,
            direction="INGRESS",
            source_ranges=list(source_ranges),
            allows=[gcp.compute.FirewallAllowArgs(protocol=protocol) for protocol in INTERNAL_PROTOCOLS],
            opts=opts,
        )
