"""Karpenter GPU capacity: one EC2NodeClass, one NodePool per configured pool, the device plugin.

Builders are pure functions returning plain manifests (validated against the Karpenter
v1.14.1 CRD schemas in the tests). The labels, taints and tolerations they use are the
constants below, and ``gpu_nodes`` hands the same constants to workloads: a pod built
from ``GpuNodes`` tolerates exactly the taint its NodePool sets and selects a label its
nodes carry (aws-eks-karpenter.md §8, first row).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import catalog
from components.aws import efa
from components.aws.cluster import AL2023_ROOT_DEVICE
from components.aws.network import KARPENTER_DISCOVERY_TAG
from components.config import AwsGpuNodePoolConfig
from components.kubernetes import apply, chart_release
from components.platform import GpuNodes, Manifest

NODE_CLASS = "gpu"
# Extended resource the NVIDIA device plugin advertises, and the taint that keeps other
# pods off GPU nodes (aws-eks-karpenter.md §2.4, §3).
GPU_RESOURCE = "nvidia.com/gpu"
GPU_TAINT: Manifest = {"key": GPU_RESOURCE, "effect": "NoSchedule"}
GPU_TOLERATION: Manifest = {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}
# The device plugin DaemonSet's default affinity needs this label (or NFD/GFD labels,
# which are not installed): NVIDIA/k8s-device-plugin values.yaml @v0.20.0, §3.
GPU_PRESENT_LABEL = "nvidia.com/gpu.present"
# Karpenter labels every node with its NodePool (KP v1.14 concepts/scheduling.md).
NODEPOOL_LABEL = "karpenter.sh/nodepool"
# Requirement keys (KP v1.14 scheduling.md well-known labels; §2.2). Note the domain:
# node.kubernetes.io/instance-family would be a silently ignored custom label.
INSTANCE_FAMILY = "karpenter.k8s.aws/instance-family"
INSTANCE_SIZE = "karpenter.k8s.aws/instance-size"
CAPACITY_TYPE = "karpenter.sh/capacity-type"
ZONE = "topology.kubernetes.io/zone"
ARCH = "kubernetes.io/arch"
OS = "kubernetes.io/os"
DEVICE_PLUGIN_RELEASE = "nvidia-device-plugin"
DEVICE_PLUGIN_NAMESPACE = "kube-system"


def node_class_name(pool: AwsGpuNodePoolConfig) -> str:
    """EFA pools have their own EC2NodeClass (one zone, EFA security group, placement
    group); the others share ``NODE_CLASS``."""
    return pool.name if pool.efa else NODE_CLASS


def ec2_node_class(
    *,
    cluster: str,
    role: pulumi.Input[str],
    volume_gib: int,
    capacity_reservation_ids: Sequence[str] = (),
    tags: Mapping[str, str] | None = None,
    efa_pool: AwsGpuNodePoolConfig | None = None,
) -> Manifest:
    """The EC2NodeClass all GPU pools share, or an EFA pool's own (KP v1.14 concepts/nodeclasses.md).

    The AL2023 alias picks the NVIDIA AMI variant for GPU instance types by itself
    (§2.7); it is pinned to a dated release so new AMIs do not drift the nodes. An EFA
    pool's class takes the private subnet of its one zone, adds the EFA security group,
    selects its placement group and never asks for public addresses (components/aws/efa.py).
    """
    discovered = {"tags": {KARPENTER_DISCOVERY_TAG: cluster}}
    subnets: list[Manifest] = [discovered]
    security_groups: list[Manifest] = [discovered]
    if efa_pool is not None and efa_pool.efa is not None:
        # Tags, not ids: the subnet's Name carries its zone (network.py), and the group's Name is ours.
        subnets = [{"tags": {**discovered["tags"], "Name": efa.zone_subnet_name(cluster, efa_pool.efa.zone)}}]
        security_groups = [discovered, {"tags": {"Name": efa.security_group_name(cluster)}}]
    spec: dict[str, Any] = {
        "role": role,  # the role *name*; Karpenter makes the instance profile (§1.2)
        "amiSelectorTerms": [{"alias": catalog.GPU_NODE_AMI.alias}],
        "subnetSelectorTerms": subnets,
        "securityGroupSelectorTerms": security_groups,
        "metadataOptions": {
            "httpEndpoint": "enabled",
            "httpProtocolIPv6": "disabled",
            "httpTokens": "required",  # IMDSv2 only
            "httpPutResponseHopLimit": catalog.IMDS_HOP_LIMIT_GPU_NODES,
        },
        # Local NVMe (every allowed GPU family has it) as one RAID0 array that becomes the
        # node's ephemeral storage: on AL2023 Karpenter's NodeConfig has nodeadm build
        # /dev/md/0, mount it at /mnt/k8s-disks/0 and put containerd's and kubelet's data
        # there, so images, container layers, emptyDirs and pod logs use NVMe instead of a
        # gp3 root volume at 125 MiB/s (KP v1.14 concepts/nodeclasses.md
        # spec.instanceStorePolicy; audit/aws.md F5). The EBS root volume below then holds
        # the OS and system logs only, hence the smaller default (config gpuNodeVolumeGib).
        "instanceStorePolicy": "RAID0",
        "blockDeviceMappings": [
            {
                "deviceName": AL2023_ROOT_DEVICE,
                "ebs": {
                    "volumeSize": f"{volume_gib}Gi",
                    "volumeType": "gp3",
                    "encrypted": True,
                    "deleteOnTermination": True,
                },
            }
        ],
    }
    if capacity_reservation_ids:
        spec["capacityReservationSelectorTerms"] = [{"id": i} for i in capacity_reservation_ids]
    if tags:
        spec["tags"] = dict(tags)  # the stack's cost-allocation tags on the GPU instances too
    if efa_pool is not None and efa_pool.efa is not None:
        spec["associatePublicIPAddress"] = False  # several EFA interfaces cannot launch with true
        if efa_pool.efa.placement_group == "cluster":
            spec["placementGroupSelector"] = {"name": efa.placement_group_name(cluster, efa_pool.name)}
    return {
        "apiVersion": "karpenter.k8s.aws/v1",
        "kind": "EC2NodeClass",
        "metadata": {"name": node_class_name(efa_pool) if efa_pool else NODE_CLASS},
        "spec": spec,
    }


def node_pool(pool: AwsGpuNodePoolConfig) -> Manifest:
    """One NodePool of NVIDIA GPU instances (KP v1.14 concepts/nodepools.md, disruption.md).

    Disruption is tuned for pods that take minutes to load a model: only empty nodes are
    consolidated, after ``consolidateAfter``, within the configured budgets (the default
    would replace underutilized nodes immediately, §2.6).
    """
    requirements: list[Manifest] = [
        {"key": INSTANCE_FAMILY, "operator": "In", "values": list(pool.instance_families)},
        {"key": CAPACITY_TYPE, "operator": "In", "values": list(pool.capacity_types)},
        {"key": ARCH, "operator": "In", "values": ["amd64"]},
        {"key": OS, "operator": "In", "values": ["linux"]},
    ]
    if pool.instance_sizes:
        requirements.insert(1, {"key": INSTANCE_SIZE, "operator": "In", "values": list(pool.instance_sizes)})
    labels = {GPU_PRESENT_LABEL: "true"}
    if pool.efa:
        # The zone for the scheduler as well as the node class's subnets: pods see where
        # the pool's nodes will be before any exists.
        requirements.append({"key": ZONE, "operator": "In", "values": [pool.efa.zone]})
        labels[efa.EFA_PRESENT_LABEL] = "true"  # where the EFA device plugin runs
    return {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": pool.name},
        "spec": {
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "nodeClassRef": {
                        "group": "karpenter.k8s.aws",
                        "kind": "EC2NodeClass",
                        "name": node_class_name(pool),
                    },
                    "requirements": requirements,
                    "taints": [dict(GPU_TAINT)],
                    "expireAfter": pool.expire_after,
                    # Bounds draining: serving pods are do-not-disrupt (config docstring).
                    "terminationGracePeriod": pool.termination_grace_period,
                },
            },
            "limits": {GPU_RESOURCE: pool.gpu_limit},
            "disruption": {
                "consolidationPolicy": "WhenEmpty",
                "consolidateAfter": pool.consolidate_after,
                "budgets": [b.model_dump(by_alias=True, exclude_none=True) for b in pool.budgets],
            },
        },
    }


def device_plugin_values() -> dict[str, Any]:
    """NVIDIA device plugin values: run only on GPU nodes, tolerate their taint.

    Feature discovery (GFD/NFD) stays off: the NodePool label replaces it (§3).
    """
    return {
        "nodeSelector": {GPU_PRESENT_LABEL: "true"},
        "tolerations": [dict(GPU_TOLERATION), {"key": "CriticalAddonsOnly", "operator": "Exists"}],
        "gfd": {"enabled": False},
        "nfd": {"enabled": False},
    }


def gpu_nodes(pool: AwsGpuNodePoolConfig) -> GpuNodes:
    """How a workload lands on this pool's nodes (the Platform contract)."""
    nodes = GpuNodes(
        pool=pool.name,
        gpu=pool.gpu.name,
        gpus_per_node=pool.max_gpus_per_node,
        node_selector={NODEPOOL_LABEL: pool.name},
        tolerations=[dict(GPU_TOLERATION)],
        resource_name=GPU_RESOURCE,
        # Any machine of the pool may host the pod: the smallest one's share.
        shm_gib=min(m.shm_gib for m in pool.machines),
        # The instance-store RAID0 (ec2_node_class instanceStorePolicy), as GKE's local SSD:
        # workloads keep their folders under it (engine.py scratch_volume: .../llm-serving).
        # Only where every instance type has NVMe: elsewhere the path is on the root volume.
        scratch_host_path=catalog.INSTANCE_STORE_MOUNT if pool.instance_store else None,
    )
    if pool.efa is None:
        return nodes
    wiring = efa.pod_wiring(pool)
    return dataclasses.replace(
        nodes,
        # A pod takes every EFA interface of its node, so it takes the node.
        whole_node=True,
        fabric=pool.fabric,
        pod_resources=wiring.pod_resources,
        env=wiring.env,
        shell_prelude=wiring.shell_prelude,
        capabilities=wiring.capabilities,
    )


@dataclass(frozen=True)
class GpuPoolsArgs:
    cluster: str
    vpc_id: pulumi.Input[str]  # for the EFA security group
    pools: Sequence[AwsGpuNodePoolConfig]
    node_role_name: pulumi.Input[str]
    volume_gib: int
    capacity_reservation_ids: Sequence[str]
    tags: Mapping[str, str]
    karpenter_ready: Sequence[pulumi.Resource]  # the CRD and controller releases


class GpuPools(pulumi.ComponentResource):
    """The EC2NodeClass, the NodePools and the NVIDIA device plugin."""

    node_pools: dict[str, pulumi.CustomResource]
    device_plugin: k8s.helm.v3.Release
    efa_device_plugin: k8s.helm.v3.Release | None
    gpu_nodes: dict[str, GpuNodes]

    def __init__(self, name: str, args: GpuPoolsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llm-serving:aws:GpuPools", name, None, opts)
        cluster = args.cluster
        # The CRDs must be served before these objects are applied, and the controller
        # must outlive them on destroy to drain and terminate their nodes
        # (pulumi-kubernetes#3188; aws-eks-karpenter.md §1.9).
        after_karpenter = pulumi.ResourceOptions(parent=self, depends_on=list(args.karpenter_ready))
        node_classes: dict[str, pulumi.CustomResource] = {}
        if any(p.efa is None for p in args.pools):  # the class the pools without EFA share
            node_classes[NODE_CLASS] = apply(
                f"{cluster}-{NODE_CLASS}",
                ec2_node_class(
                    cluster=cluster,
                    role=args.node_role_name,
                    volume_gib=args.volume_gib,
                    capacity_reservation_ids=args.capacity_reservation_ids,
                    tags=args.tags,
                ),
                after_karpenter,
            )
        efa_pools = tuple(p for p in args.pools if p.efa is not None)
        self.efa_device_plugin = None
        if efa_pools:
            fabric = efa.EfaFabric(
                cluster, efa.EfaFabricArgs(cluster, args.vpc_id, efa_pools), pulumi.ResourceOptions(parent=self)
            )
            for pool in efa_pools:
                node_classes[pool.name] = apply(
                    f"{cluster}-{pool.name}-class",
                    ec2_node_class(
                        cluster=cluster,
                        role=args.node_role_name,
                        volume_gib=args.volume_gib,
                        capacity_reservation_ids=args.capacity_reservation_ids,
                        tags=args.tags,
                        efa_pool=pool,
                    ),
                    # The groups it selects exist first and go last.
                    pulumi.ResourceOptions(parent=self, depends_on=[*args.karpenter_ready, *fabric.ready]),
                )
            self.efa_device_plugin = chart_release(
                f"{cluster}-{efa.DEVICE_PLUGIN_RELEASE}",
                catalog.EFA_DEVICE_PLUGIN_CHART,
                pulumi.ResourceOptions(parent=self),
                name=efa.DEVICE_PLUGIN_RELEASE,
                namespace=efa.DEVICE_PLUGIN_NAMESPACE,
                values=efa.device_plugin_values(GPU_TOLERATION),
            )
        self.node_pools = {
            pool.name: apply(
                f"{cluster}-{pool.name}",
                node_pool(pool),
                pulumi.ResourceOptions(
                    parent=self, depends_on=[node_classes[node_class_name(pool)], *args.karpenter_ready]
                ),
            )
            for pool in args.pools
        }
        self.device_plugin = chart_release(
            f"{cluster}-{DEVICE_PLUGIN_RELEASE}",
            catalog.NVIDIA_DEVICE_PLUGIN_CHART,
            pulumi.ResourceOptions(parent=self),
            name=DEVICE_PLUGIN_RELEASE,
            namespace=DEVICE_PLUGIN_NAMESPACE,
            values=device_plugin_values(),
        )
        self.gpu_nodes = {pool.name: gpu_nodes(pool) for pool in args.pools}
        self.register_outputs({"node_pools": list(self.node_pools), "node_class": NODE_CLASS})
