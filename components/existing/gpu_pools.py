"""The GPU pools an existing cluster already has, as the Platform contract describes them,
and the NVIDIA device plugin when the stack asks the program to install it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from components.config.existing import ExistingGpuPoolConfig
from components.platform import GpuNodes, Manifest

# RDMA: pinning memory for GPUDirect needs IPC_LOCK (vllm-serving.md §1.1 multi-node).
RDMA_CAPABILITIES = ("IPC_LOCK",)
DEVICE_PLUGIN_RELEASE = "nvidia-device-plugin"
DEVICE_PLUGIN_NAMESPACE = "kube-system"


def gpu_nodes(pool: ExistingGpuPoolConfig) -> GpuNodes:
    """How a pod lands on, and uses, one pool (the Platform contract)."""
    rdma = pool.rdma
    return GpuNodes(
        pool=pool.name,
        gpu=pool.gpu,
        gpus_per_node=pool.gpus_per_node,
        node_selector=dict(pool.node_selector),
        tolerations=[toleration(t.model_dump(exclude_none=True)) for t in pool.tolerations],
        shm_gib=pool.shm_gib,
        resource_name=pool.resource_name,
        whole_node=pool.takes_whole_node,
        pod_annotations=dict(rdma.pod_annotations) if rdma else {},
        scratch_host_path=pool.scratch_host_path,
        capabilities=RDMA_CAPABILITIES if rdma else (),
        fabric=pool.fabric,
        pod_resources=dict(rdma.resources) if rdma else {},
    )


def toleration(fields: dict[str, Any]) -> Manifest:
    return {k: fields[k] for k in ("key", "operator", "value", "effect") if k in fields}


def device_plugin_values(pools: Sequence[ExistingGpuPoolConfig]) -> dict[str, Any]:
    """nvidia-device-plugin chart values (NVIDIA/k8s-device-plugin v0.20.0
    deployments/helm/nvidia-device-plugin/values.yaml: affinity, tolerations, gfd, nfd):
    run on the nodes of every pool (one node-affinity term per pool's selector; terms are
    ORed) and tolerate their taints. Feature discovery stays off: the pools' own labels
    place the pods."""
    terms = [
        {"matchExpressions": [{"key": k, "operator": "In", "values": [v]} for k, v in p.node_selector.items()]}
        for p in pools
    ]
    tolerations: list[Manifest] = []
    for pool in pools:
        for t in pool.tolerations:
            item = toleration(t.model_dump(exclude_none=True))
            if item not in tolerations:
                tolerations.append(item)
    return {
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}},
        "tolerations": tolerations,
        "gfd": {"enabled": False},
        "nfd": {"enabled": False},
    }
