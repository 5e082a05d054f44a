"""Room on the system node group: what its pods request against what its nodes offer.

Everything outside Karpenter's GPU pools lands on the system nodes: Karpenter's two
replicas, the KubeRay operator, Open WebUI and, with monitoring on, Prometheus,
Alertmanager, Grafana, kube-state-metrics and the Prometheus operator. The sum of their
requests (plus an allowance for EKS's own add-on pods on each node) must fit the group's
allocatable with one node to spare, so a node replacement or a rolling update of the group
never leaves a controller pending. ``tests/test_system_nodes.py`` checks the default group
against the requests the stack really records.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from components import catalog

_CPU = re.compile(r"^(\d+)(m?)$")
_MEMORY = re.compile(r"^(\d+)(Mi|Gi)$")


@dataclass(frozen=True)
class Resources:
    """CPU in millicores and memory in MiB."""

    cpu_m: int
    memory_mib: int

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.cpu_m + other.cpu_m, self.memory_mib + other.memory_mib)

    def times(self, n: int) -> Resources:
        return Resources(self.cpu_m * n, self.memory_mib * n)

    def fits(self, room: Resources) -> bool:
        return self.cpu_m <= room.cpu_m and self.memory_mib <= room.memory_mib


def requests(values: Mapping[str, str]) -> Resources:
    """The ``cpu`` / ``memory`` of a Kubernetes requests map (the quantity forms we write)."""
    cpu = _CPU.match(values.get("cpu", "0"))
    memory = _MEMORY.match(values.get("memory", "0Mi"))
    if cpu is None or memory is None:
        raise ValueError(f"unsupported quantity in {dict(values)}")
    cpu_m = int(cpu.group(1)) * (1 if cpu.group(2) else 1000)
    memory_mib = int(memory.group(1)) * (1024 if memory.group(2) == "Gi" else 1)
    return Resources(cpu_m, memory_mib)


def total(parts: Iterable[Resources]) -> Resources:
    out = Resources(0, 0)
    for part in parts:
        out = out + part
    return out


def allocatable(shape: catalog.NodeShape) -> Resources:
    """A node's allocatable under the EKS AMI's kubelet reservation (nodeadm's formulas)."""
    millicores = shape.vcpus * 1000
    reserved_cpu, start = 0, 0
    for end, per_10000 in catalog.KUBELET_CPU_RESERVE_STEPS:
        reserved_cpu += max(0, min(millicores, end) - start) * per_10000 // 10000
        start = end
    reserved_memory = (
        catalog.KUBELET_MEMORY_RESERVE_MIB_PER_POD * shape.max_pods
        + catalog.KUBELET_MEMORY_RESERVE_MIB_BASE
        + catalog.KUBELET_EVICTION_HARD_MIB
    )
    return Resources(millicores - reserved_cpu, shape.memory_gib * 1024 - reserved_memory)


def monitoring_requests() -> dict[str, Resources]:
    """Requests of the monitoring stack's pods on the system nodes (per node for node-exporter)."""
    return {name: requests(spec["requests"]) for name, spec in catalog.MONITORING_RESOURCES.items()}
