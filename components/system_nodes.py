"""Room on the EKS system node group: what its pods request against what its nodes offer.

Everything outside Karpenter's GPU pools lands on the system nodes: Karpenter's two
replicas, the KubeRay operator (Ray engine), Open WebUI and, with monitoring on,
Prometheus, Alertmanager, Grafana, kube-state-metrics and the Prometheus operator. The sum
of their requests (plus what every node carries: EKS's own add-on pods and node-exporter)
must fit the group's allocatable with one node to spare, so a node replacement or a rolling
update of the group never leaves a controller pending; and the largest pod must fit one
node beside that node's own share. The config refuses a group that fails either
(``fit_problem``, called from components/config/stack.py before any resource);
``tests/test_system_nodes.py`` checks these figures against the requests the stack
really records. Pure arithmetic over catalog facts, so the config layer can use it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
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


def smallest_shape(instance_types: Sequence[str]) -> tuple[str, catalog.NodeShape] | None:
    """The instance type with the least allocatable memory among those the catalog knows
    (a group of several types may get any of them); None if it knows none of them."""
    known = [(t, catalog.SYSTEM_NODE_SHAPES[t]) for t in instance_types if t in catalog.SYSTEM_NODE_SHAPES]
    if not known:
        return None
    return min(known, key=lambda item: (allocatable(item[1]).memory_mib, allocatable(item[1]).cpu_m))


@dataclass(frozen=True)
class SystemLoad:
    """What the stack schedules on the system nodes."""

    spread: Mapping[str, Resources]  # pods the scheduler may place on any node, by component
    per_node: Resources  # what every node carries whatever is scheduled


def system_load(*, open_webui: bool, kuberay: bool, monitoring: bool) -> SystemLoad:
    karpenter = requests(catalog.KARPENTER_CONTROLLER_RESOURCES["requests"])
    spread = {"karpenter": karpenter.times(catalog.KARPENTER_REPLICAS)}
    if kuberay:
        # The operator's chart sets limits only; Kubernetes copies them into requests.
        spread["kuberay-operator"] = requests(catalog.KUBERAY_OPERATOR_REQUESTS)
    if open_webui:
        spread["open-webui"] = requests(catalog.OPEN_WEBUI_RESOURCES["requests"])
    per_node = requests(catalog.SYSTEM_ADDON_ALLOWANCE)
    if monitoring:
        for name, resources in monitoring_requests().items():
            if name == "node-exporter":  # a DaemonSet: one on every node
                per_node = per_node + resources
            else:
                spread[name] = resources
    return SystemLoad(spread, per_node)


def _say(r: Resources) -> str:
    return f"{r.cpu_m} m CPU and {r.memory_mib} MiB"


def fit_problem(load: SystemLoad, instance_type: str, shape: catalog.NodeShape, size: int) -> str | None:
    """Why ``size`` nodes of ``shape`` cannot hold ``load`` with a node to spare, or None."""
    node = allocatable(shape)
    spare = size - 1  # size >= 2 (config)
    need = total(load.spread.values()) + load.per_node.times(spare)
    room = node.times(spare)
    if not need.fits(room):
        parts = ", ".join(f"{name} {_say(r)}" for name, r in load.spread.items())
        return (
            f"with one node kept spare for replacements, {spare} x {instance_type} must hold {_say(need)} of "
            f"requests ({parts}; plus {_say(load.per_node)} per node for EKS add-ons and exporters) but offer "
            f"{_say(room)} allocatable: choose a larger instance type or raise platform.systemNodeGroup.size"
        )
    name, largest = max(load.spread.items(), key=lambda item: (item[1].memory_mib, item[1].cpu_m))
    if not (largest + load.per_node).fits(node):
        return (
            f"{name} requests {_say(largest)}, more than one {instance_type} offers beside its own share "
            f"({_say(node)} allocatable, {_say(load.per_node)} of it for add-ons and exporters): choose a "
            "larger instance type"
        )
    return None
