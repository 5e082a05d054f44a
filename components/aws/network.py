"""The VPC: a public and a private subnet per zone, NAT, and the tags EKS and Karpenter read.

Nodes (system and GPU) live in the private subnets and reach the internet through NAT;
the public subnets hold only NAT gateways and internet-facing load balancers. Subnet
tags tell the in-tree AWS cloud provider where to put load balancers and tell
Karpenter where to launch nodes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network
from typing import Literal

import pulumi
import pulumi_aws as aws

# Subnet roles for Service load balancers: kubernetes/cloud-provider-aws
# pkg/providers/v1/aws.go TagNameSubnetPublicELB / TagNameSubnetInternalELB;
# https://docs.aws.amazon.com/eks/latest/userguide/network-load-balancing.html (subnet tagging).
PUBLIC_ELB_TAG = "kubernetes.io/role/elb"
INTERNAL_ELB_TAG = "kubernetes.io/role/internal-elb"
# Karpenter's subnet and security-group discovery tag (aws-eks-karpenter.md §1.6).
KARPENTER_DISCOVERY_TAG = "karpenter.sh/discovery"

_ANYWHERE = "0.0.0.0/0"


@dataclass(frozen=True)
class ZoneSubnets:
    zone: str
    public: IPv4Network
    private: IPv4Network


def subnet_plan(vpc: IPv4Network, zones: Sequence[str]) -> list[ZoneSubnets]:
    """Address plan: equal large private subnets, small public ones.

    The VPC is cut into the fewest equal blocks that leave one spare: each zone's
    private subnet takes a block (with the VPC CNI every pod takes a VPC address, so
    private subnets need the room), and the spare block is cut again into the public
    subnets, which only hold NAT gateways and load balancer interfaces.
    For 10.0.0.0/16 over two zones: private /18s 10.0.0.0 and 10.0.64.0, public /19s
    10.0.128.0 and 10.0.160.0.
    """
    blocks = list(vpc.subnets(prefixlen_diff=len(zones).bit_length()))  # >= zones + 1 blocks
    public = list(blocks[len(zones)].subnets(prefixlen_diff=(len(zones) - 1).bit_length()))
    return [ZoneSubnets(zone, public[i], blocks[i]) for i, zone in enumerate(zones)]


@dataclass(frozen=True)
class NetworkArgs:
    cidr: IPv4Network
    zones: Sequence[str]
    region: str
    cluster_name: str  # for the Karpenter discovery tag and resource names
    nat_gateways: Literal["per-zone", "single"] = "per-zone"


class Network(pulumi.ComponentResource):
    """VPC, subnets, internet and NAT gateways, routes, and an S3 gateway endpoint."""

    vpc_id: pulumi.Output[str]
    public_subnet_ids: list[pulumi.Output[str]]
    private_subnet_ids: list[pulumi.Output[str]]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llm-serving:aws:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        cluster = args.cluster_name

        # EKS needs DNS hostnames and resolution in the VPC
        # (https://docs.aws.amazon.com/eks/latest/userguide/network-reqs.html).
        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=str(args.cidr),
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={"Name": cluster},
            opts=child,
        )
        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags={"Name": cluster}, opts=child)
        public_routes = aws.ec2.RouteTable(
            f"{name}-public",
            vpc_id=vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block=_ANYWHERE, gateway_id=igw.id)],
            tags={"Name": f"{cluster}-public"},
            opts=child,
        )

        public_subnets: list[aws.ec2.Subnet] = []
        private_subnets: list[aws.ec2.Subnet] = []
        private_route_tables: list[aws.ec2.RouteTable] = []
        nat_ids: list[pulumi.Output[str]] = []
        for plan in subnet_plan(args.cidr, args.zones):
            zone = plan.zone
            public = aws.ec2.Subnet(
                f"{name}-public-{zone}",
                vpc_id=vpc.id,
                availability_zone=zone,
                cidr_block=str(plan.public),
                map_public_ip_on_launch=False,  # nothing here needs a public address but NAT and LBs
                tags={"Name": f"{cluster}-public-{zone}", PUBLIC_ELB_TAG: "1"},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{zone}", subnet_id=public.id, route_table_id=public_routes.id, opts=child
            )
            public_subnets.append(public)

            if args.nat_gateways == "per-zone" or not nat_ids:
                eip = aws.ec2.Eip(
                    f"{name}-nat-{zone}", domain="vpc", tags={"Name": f"{cluster}-nat-{zone}"}, opts=child
                )
                nat = aws.ec2.NatGateway(
                    f"{name}-nat-{zone}",
                    allocation_id=eip.allocation_id,
                    subnet_id=public.id,
                    tags={"Name": f"{cluster}-nat-{zone}"},
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
                )
                nat_ids.append(nat.id)

            private = aws.ec2.Subnet(
                f"{name}-private-{zone}",
                vpc_id=vpc.id,
                availability_zone=zone,
                cidr_block=str(plan.private),
                tags={
                    "Name": f"{cluster}-private-{zone}",
                    INTERNAL_ELB_TAG: "1",
                    KARPENTER_DISCOVERY_TAG: cluster,
                },
                opts=child,
            )
            routes = aws.ec2.RouteTable(
                f"{name}-private-{zone}",
                vpc_id=vpc.id,
                # Each zone egresses through its own NAT gateway (or the one shared gateway).
                routes=[aws.ec2.RouteTableRouteArgs(cidr_block=_ANYWHERE, nat_gateway_id=nat_ids[-1])],
                tags={"Name": f"{cluster}-private-{zone}"},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{zone}", subnet_id=private.id, route_table_id=routes.id, opts=child
            )
            private_subnets.append(private)
            private_route_tables.append(routes)

        # Model weights come from S3: a gateway endpoint keeps that traffic off NAT, whose
        # per-GB processing charge would otherwise apply to every node's download; gateway
        # endpoints are free (https://docs.aws.amazon.com/vpc/latest/privatelink/vpc-endpoints-s3.html).
        aws.ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{args.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[t.id for t in private_route_tables],
            tags={"Name": f"{cluster}-s3"},
            opts=child,
        )

        self.vpc_id = vpc.id
        self.public_subnet_ids = [s.id for s in public_subnets]
        self.private_subnet_ids = [s.id for s in private_subnets]
        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "public_subnet_ids": self.public_subnet_ids,
                "private_subnet_ids": self.private_subnet_ids,
            }
        )
