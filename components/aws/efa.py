"""EFA (Elastic Fabric Adapter) for GPU pools whose replicas span nodes.

What an EFA pool needs besides its NodePool (aws-eks-karpenter.md §5 "EFA on p5/p4d";
shared/reference/audit/settled.md "Karpenter, EFA and placement groups"):

* nothing in the EC2NodeClass for the interfaces themselves: when a pod requests
  ``vpc.amazonaws.com/efa``, Karpenter attaches one EFA interface per network card
  (KP @v1.14.1 pkg/providers/instance/instance.go getEFACountForInstance,
  pkg/providers/launchtemplate/launchtemplate.go generateNetworkInterfaces). So no
  ``spec.networkInterfaces``: it fixes one card layout per node class (p5 has 32 cards,
  p5en 16, p6-b200 8) and would attach the interfaces to every node, EFA pod or not; its
  gain, ``efa-only`` interfaces that take no VPC address, is 31 addresses per p5 node
  in a /18 private subnet;
* a security group that allows all traffic to and from itself, in and out: EFA's
  requirement (https://docs.aws.amazon.com/pcs/latest/userguide/working-with_networking_efa_create-sg.html).
  It is our own group, added to the EKS cluster security group the nodes already carry,
  so EFA does not depend on which rules EKS gave that group (its documentation now lists a
  self egress rule "for EFA traffic": https://docs.aws.amazon.com/eks/latest/userguide/sec-group-reqs.html),
  and a rule of ours cannot collide with one of EKS's;
* subnets of one zone, and optionally a cluster placement group (``placementGroupSelector``,
  KP v1.11+; the controller's ec2:DescribePlacementGroups and placement-group ARN are in
  components/aws/karpenter.py since the template has them);
* no public addresses: several EFA interfaces fail to launch with
  ``associatePublicIPAddress: true`` (KP v1.14 concepts/nodeclasses.md);
* AWS's EFA device plugin, which advertises ``vpc.amazonaws.com/efa`` on those nodes;
* in the pod: every EFA interface of the node requested, libfabric's EFA provider and
  GPUDirect RDMA switched on, ``IPC_LOCK``, and the image's EFA userspace on the library
  path (``pod_wiring``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components import catalog
from components.config import AwsGpuNodePoolConfig
from components.platform import Manifest

# The node label the EFA device plugin DaemonSet selects (the convention of
# terraform-aws-eks's EFA examples and ai-on-eks' P-instance pools).
EFA_PRESENT_LABEL = "vpc.amazonaws.com/efa.present"
DEVICE_PLUGIN_RELEASE = "aws-efa-k8s-device-plugin"
DEVICE_PLUGIN_NAMESPACE = "kube-system"
# Capability for memory registration (pinning) by libfabric and NCCL; ai-on-eks' LWS
# example and vLLM's multi-node guide add it (vllm-serving.md §1.1).
CAPABILITIES = ("IPC_LOCK",)


def security_group_name(cluster: str) -> str:
    """The EFA security group's Name tag, which the EFA node classes select it by."""
    return f"{cluster}-efa"


def placement_group_name(cluster: str, pool: str) -> str:
    """Placement group names are unique per account and region; so are EKS cluster names."""
    return f"{cluster}-{pool}"


def zone_subnet_name(cluster: str, zone: str) -> str:
    """The Name tag of a zone's private subnet (components/aws/network.py)."""
    return f"{cluster}-private-{zone}"


def device_plugin_values(gpu_toleration: Manifest) -> dict[str, Any]:
    """Values of the aws-efa-k8s-device-plugin chart (stable/aws-efa-k8s-device-plugin/values.yaml).

    Only on EFA pool nodes (the chart's own affinity already limits it to EFA-capable
    instance types), tolerating the GPU taint; the chart adds CriticalAddonsOnly itself.
    """
    return {"nodeSelector": {EFA_PRESENT_LABEL: "true"}, "tolerations": [dict(gpu_toleration)]}


@dataclass(frozen=True)
class PodWiring:
    """What a pod on an EFA pool adds to its spec (see ``components.platform.GpuNodes``)."""

    pod_resources: Mapping[str, str]
    env: tuple[Manifest, ...]
    shell_prelude: str
    capabilities: tuple[str, ...]


def pod_wiring(pool: AwsGpuNodePoolConfig) -> PodWiring:
    """Every EFA interface of the node (a whole-node pod), libfabric's EFA provider, and the
    image's EFA userspace on the library path.

    The image's own entrypoint would set the library path (vLLM's efa-entrypoint.sh), but
    the engine's ``command`` replaces the entrypoint, so the prelude does it, and stops
    with a clear message where the image has no EFA userspace: NCCL would otherwise fall
    back to TCP sockets without a word.
    """
    dirs = catalog.EFA_IMAGE_LIBRARY_DIRS
    checks = "".join(
        f'if [ ! -d {d} ]; then echo "EFA: {d} is not in this image; use an image with the AWS EFA '
        'userspace (libfabric, aws-ofi-nccl)" >&2; exit 1; fi\n'
        for d in dirs
    )
    library_path = ":".join(dirs)
    prelude = checks + f'export LD_LIBRARY_PATH="{library_path}${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}"\n'
    return PodWiring(
        pod_resources={catalog.EFA_RESOURCE: str(pool.efa_interfaces)},
        env=tuple({"name": k, "value": v} for k, v in catalog.EFA_ENV.items()),
        shell_prelude=prelude,
        capabilities=CAPABILITIES,
    )


@dataclass(frozen=True)
class EfaFabricArgs:
    cluster: str
    vpc_id: pulumi.Input[str]
    pools: tuple[AwsGpuNodePoolConfig, ...]  # the EFA pools


class EfaFabric(pulumi.ComponentResource):
    """The EFA security group with its self rules, and a placement group per EFA pool that wants one."""

    security_group: aws.ec2.SecurityGroup
    placement_groups: dict[str, aws.ec2.PlacementGroup]
    # What an EFA node class must wait for (and outlive on destroy).
    ready: list[pulumi.Resource]

    def __init__(self, name: str, args: EfaFabricArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llm-serving:aws:EfaFabric", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        cluster = args.cluster
        # No inline rules: the provider then drops EC2's default allow-all egress, and the
        # group allows exactly EFA's self traffic. General egress comes from the cluster
        # security group on the same interfaces.
        self.security_group = aws.ec2.SecurityGroup(
            f"{cluster}-efa",
            vpc_id=args.vpc_id,
            description=f"EKS {cluster}: EFA traffic between the nodes of EFA GPU pools",
            tags={"Name": security_group_name(cluster)},
            opts=child,
        )
        everything = "-1"  # all protocols and ports
        ingress = aws.vpc.SecurityGroupIngressRule(
            f"{cluster}-efa-from-self",
            security_group_id=self.security_group.id,
            referenced_security_group_id=self.security_group.id,
            ip_protocol=everything,
            description="EFA: all traffic from members of this group",
            opts=child,
        )
        egress = aws.vpc.SecurityGroupEgressRule(
            f"{cluster}-efa-to-self",
            security_group_id=self.security_group.id,
            referenced_security_group_id=self.security_group.id,
            ip_protocol=everything,
            description="EFA: all traffic to members of this group",
            opts=child,
        )
        self.placement_groups = {
            pool.name: aws.ec2.PlacementGroup(
                f"{cluster}-{pool.name}",
                name=placement_group_name(cluster, pool.name),
                strategy="cluster",
                # A fixed name: a replacement must delete the old group first.
                opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
            )
            for pool in args.pools
            if pool.efa is not None and pool.efa.placement_group == "cluster"
        }
        self.ready = [self.security_group, ingress, egress, *self.placement_groups.values()]
        self.register_outputs(
            {
                "security_group_id": self.security_group.id,
                "placement_groups": {k: v.name for k, v in self.placement_groups.items()},
            }
        )
