"""The default system node group has room for every pod that lands on it, and the config
refuses a group that has not (components/system_nodes.py).

The requests are read from the recorded stack (Helm values, Deployments), not restated,
so raising one of them without resizing the group fails here, and the config rule's own
figures are checked against them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from test_config import only_problem, raw

from components import catalog, system_nodes
from components.config import parse
from components.system_nodes import Resources, allocatable, requests, total
from tools.offline import StackRun


def _release(run: StackRun, chart: str) -> dict[str, Any] | None:
    for release in run.of_type("kubernetes:helm.sh/v3:Release"):
        if release.inputs["chart"].rsplit("/", 1)[-1] == chart:
            values: dict[str, Any] = release.inputs.get("values", {})
            return values
    return None


def _system_pods(run: StackRun) -> dict[str, Resources]:
    """Requests of every pod the stack places on the system nodes, by component."""
    karpenter = _release(run, "karpenter")
    assert karpenter is not None
    pods = {
        "karpenter": requests(karpenter["controller"]["resources"]["requests"]).times(catalog.KARPENTER_REPLICAS),
        # The operator's chart sets limits only; Kubernetes copies them into requests.
        "kuberay-operator": requests(catalog.KUBERAY_OPERATOR_REQUESTS),
    }
    for obj in run.kubernetes_objects():
        if obj["kind"] == "Deployment" and obj["metadata"]["name"] == "open-webui":
            containers = obj["spec"]["template"]["spec"]["containers"]
            one = total(requests(c["resources"]["requests"]) for c in containers)
            pods["open-webui"] = one.times(obj["spec"].get("replicas", 1))
    stack = _release(run, "kube-prometheus-stack")
    if stack is not None:
        recorded = {
            "prometheus": stack["prometheus"]["prometheusSpec"]["resources"],
            "alertmanager": stack["alertmanager"]["alertmanagerSpec"]["resources"],
            "grafana": stack["grafana"]["resources"],
            "kube-state-metrics": stack["kube-state-metrics"]["resources"],
            "prometheus-operator": stack["prometheusOperator"]["resources"],
        }
        pods.update({name: requests(r["requests"]) for name, r in recorded.items()})
    return pods


def _per_node(run: StackRun) -> Resources:
    """What every system node carries whatever is scheduled: EKS add-ons, node-exporter."""
    allowance = requests(catalog.SYSTEM_ADDON_ALLOWANCE)
    stack = _release(run, "kube-prometheus-stack")
    if stack is None:
        return allowance
    return allowance + requests(stack["prometheus-node-exporter"]["resources"]["requests"])


def _group(run: StackRun) -> tuple[Resources, int]:
    group = run.one("eks:index:ManagedNodeGroup")
    (instance_type,) = group.inputs["instanceTypes"]
    return allocatable(catalog.SYSTEM_NODE_SHAPES[instance_type]), group.inputs["scalingConfig"]["minSize"]


def test_allocatable_follows_the_eks_ami_reservation() -> None:
    # m6i.2xlarge: 8 vCPU, 32 GiB, 58 pods. CPU 60 + 10 + 10 + 10 m reserved; memory
    # 11 * 58 + 255 MiB reserved and 100 MiB eviction threshold.
    assert catalog.SYSTEM_NODE_SHAPES["m6i.2xlarge"].max_pods == 58
    assert allocatable(catalog.SYSTEM_NODE_SHAPES["m6i.2xlarge"]) == Resources(7910, 32768 - 893 - 100)
    assert allocatable(catalog.SYSTEM_NODE_SHAPES["m6i.xlarge"]) == Resources(3920, 16384 - 893 - 100)


def test_every_monitoring_component_has_requests_and_a_memory_limit(eks: StackRun) -> None:
    pods = _system_pods(eks)
    assert set(system_nodes.monitoring_requests()) - {"node-exporter"} <= set(pods)
    for name, spec in catalog.MONITORING_RESOURCES.items():
        assert requests(spec["requests"]).cpu_m > 0, name
        assert requests(spec["limits"]).memory_mib >= requests(spec["requests"]).memory_mib, name


@pytest.mark.parametrize("monitoring", [True, False])
def test_default_system_group_fits_its_pods_with_a_node_to_spare(
    run_with: Callable[..., StackRun], eks: StackRun, monitoring: bool
) -> None:
    run = eks if monitoring else run_with("eks", {"llm-serving:monitoring": {"enabled": False}})
    pods = _system_pods(run)
    assert {"karpenter", "kuberay-operator", "open-webui"} <= set(pods)
    assert ("prometheus" in pods) is monitoring
    node, size = _group(run)
    # Every system node carries the per-node pods; the rest must fit on size - 1 nodes, so
    # losing or replacing one node leaves nothing pending. Karpenter's replicas refuse to
    # share a node, so one of them always has the spare node to itself.
    room = (node.times(size - 1)) if size > 1 else node
    spread = total(pods.values())
    assert (spread + _per_node(run).times(size - 1)).fits(room), (spread, room)
    # And the largest pod fits one node beside that node's fixed share.
    largest = max(pods.values(), key=lambda r: r.memory_mib)
    assert (largest + _per_node(run)).fits(node)


def test_the_check_fails_when_the_group_is_too_small(run_with: Callable[..., StackRun], eks: StackRun) -> None:
    # The same pods on two m6i.xlarge leave no node to spare: the sum the test above makes
    # is a real constraint, not one any shape passes; the program now refuses that group
    # before creating anything.
    run = run_with("eks", {"llm-serving:platform": {"systemNodeGroup": {"instanceTypes": ["m6i.xlarge"]}}})
    assert run.error is not None and run.resources == []
    assert "llm-serving:platform.systemNodeGroup.instanceTypes" in str(run.error)
    node = allocatable(catalog.SYSTEM_NODE_SHAPES["m6i.xlarge"])
    assert not (total(_system_pods(eks).values()) + _per_node(eks)).fits(node)


@pytest.mark.parametrize("monitoring", [True, False])
def test_the_config_rule_counts_what_the_stack_records(
    run_with: Callable[..., StackRun], eks: StackRun, monitoring: bool
) -> None:
    """The rule's load (from catalog figures) is the recorded one, pod for pod: the eks
    stack serves through Ray, so the KubeRay operator is on the system nodes."""
    run = eks if monitoring else run_with("eks", {"llm-serving:monitoring": {"enabled": False}})
    load = system_nodes.system_load(open_webui=True, kuberay=True, monitoring=monitoring)
    assert dict(load.spread) == _system_pods(run)
    assert load.per_node == _per_node(run)


def test_config_refuses_a_system_group_too_small_for_its_pods() -> None:
    message = only_problem("eks", {"platform": {"systemNodeGroup": {"instanceTypes": ["m6i.xlarge"]}}})
    assert message.startswith('llm-serving:platform.systemNodeGroup.instanceTypes = ["m6i.xlarge"]: ')
    # The numbers: what must fit on the one node left when the other is replaced, and what it offers.
    assert "1 x m6i.xlarge must hold 4100 m CPU and 7744 MiB" in message
    assert "offer 3920 m CPU and 15391 MiB allocatable" in message
    assert "platform.systemNodeGroup.size" in message


@pytest.mark.parametrize(
    "change",
    [
        {"platform": {"systemNodeGroup": {"instanceTypes": ["m6i.xlarge"], "size": 3}}},  # two nodes beside the spare
        {"platform": {"systemNodeGroup": {"instanceTypes": ["m6i.xlarge"]}}, "monitoring": {"enabled": False}},
        {"platform": {"systemNodeGroup": {"instanceTypes": ["c7i.large"]}}},  # a shape the catalog lacks: unchecked
    ],
    ids=["three-small-nodes", "small-without-monitoring", "unknown-shape"],
)
def test_groups_that_hold_their_pods_are_accepted(change: dict[str, Any]) -> None:
    parse(raw("eks", change))


def test_a_group_of_several_types_is_judged_by_its_smallest() -> None:
    change = {"platform": {"systemNodeGroup": {"instanceTypes": ["m6i.4xlarge", "m6i.xlarge"]}}}
    assert "1 x m6i.xlarge" in only_problem("eks", change)


def test_the_largest_pod_must_fit_one_node_beside_its_share() -> None:
    tiny = catalog.NodeShape(vcpus=2, memory_gib=4, enis=3, ipv4_per_eni=10, source="test")
    load = system_nodes.system_load(open_webui=False, kuberay=False, monitoring=True)
    problem = system_nodes.fit_problem(load, "tiny", tiny, size=20)
    assert problem is not None and problem.startswith("karpenter requests 2000 m CPU")
