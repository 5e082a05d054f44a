"""NetworkPolicies of the rendered stacks, checked with a small evaluator (policy_eval.py):
who can reach whom on which port, on GKE and EKS, with every workload switched on."""

from __future__ import annotations

from typing import Any

import pytest
from policy_eval import Address, Pod, allowed

from components.platform import ClusterNetwork
from components.workloads.needs import Peer, ServedPort, WorkloadNeeds
from components.workloads.network_policy import network_policies
from conftest import assert_valid
from fake_platforms import run_serving
from tools.offline import StackRun

NS = "llm"
ALL_ON = {"benchmark": {"enabled": True}, "modelCache": {"enabled": True}}

INTERNET = Address("104.16.0.1")  # a public address (Hugging Face's CDN range)
GKE_METADATA = Address("169.254.169.254")
EKS_POD_IDENTITY = Address("169.254.170.23")
EKS_IMDS = Address("169.254.169.254")


def pods_of(run: StackRun) -> dict[str, Pod]:
    """Each workload's pod as its template renders it (labels, named ports); Ray pods also
    get the `metrics` port KubeRay adds."""
    pods: dict[str, Pod] = {}

    def add(name: str, template: dict[str, Any], extra_ports: dict[str, int] | None = None) -> None:
        containers = template["spec"]["containers"]
        ports = {p["name"]: p["containerPort"] for c in containers for p in c.get("ports", []) if "name" in p}
        pods[name] = Pod(name, NS, template["metadata"]["labels"], {**ports, **(extra_ports or {})})

    for obj in run.kubernetes_objects():
        if obj["metadata"].get("namespace") != NS:
            continue
        if obj["kind"] in ("Deployment", "Job"):
            add(obj["metadata"]["name"], obj["spec"]["template"])
        elif obj["kind"] == "RayService":
            cluster = obj["spec"]["rayClusterConfig"]
            add("ray-head", cluster["headGroupSpec"]["template"], {"metrics": 8080})
            for group in cluster["workerGroupSpecs"]:
                add(f"ray-{group['groupName']}", group["template"], {"metrics": 8080})
    return pods


def policies_of(run: StackRun) -> list[dict[str, Any]]:
    return [o for o in run.kubernetes_objects() if o["kind"] == "NetworkPolicy"]


INTRUDER = Pod("intruder", NS, {"app": "intruder"})  # any other pod of the namespace
ELSEWHERE = Pod("elsewhere", "default", {"app.kubernetes.io/name": "open-webui"})  # same labels, other namespace
KUBE_DNS = Pod("coredns", "kube-system", {"k8s-app": "kube-dns"})
OPERATOR = Pod("kuberay-operator", "kuberay-system", {"app.kubernetes.io/name": "kuberay-operator"})


# The serving layer of each stack file with every workload on, on a platform that carries
# the real platform's network facts (tests/fake_platforms.py).
@pytest.fixture(scope="module")
def gke() -> StackRun:
    return run_serving("a4high", ALL_ON)


@pytest.fixture(scope="module")
def eks_ray() -> StackRun:
    return run_serving("eks", ALL_ON)


def test_real_platforms_hand_over_their_network_facts(a4high: StackRun, eks: StackRun) -> None:
    """The stacks' own platforms: policies exist and name each cloud's identity endpoint."""
    for run, endpoint in ((a4high, "169.254.169.254/32"), (eks, "169.254.170.23/32")):
        policies = policies_of(run)
        assert_valid(policies)
        egress = [peer for p in policies for rule in p["spec"].get("egress", []) for peer in rule.get("to", [])]
        assert {"ipBlock": {"cidr": endpoint}} in egress


def test_namespace_denies_everything_by_default(gke: StackRun, eks_ray: StackRun) -> None:
    for run in (gke, eks_ray):
        deny = run.kubernetes_object("NetworkPolicy", "default-deny")
        assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
        policies = policies_of(run)
        assert_valid(policies)
        # Every workload pod is selected by a policy of its own besides the default deny.
        for pod in pods_of(run).values():
            own = [p for p in policies if p["spec"]["podSelector"].get("matchLabels")]
            assert any(
                all(pod.labels.get(k) == v for k, v in p["spec"]["podSelector"]["matchLabels"].items()) for p in own
            ), pod.name
        assert not allowed(policies, INTRUDER, INTERNET, 443)
        assert not allowed(policies, INTRUDER, KUBE_DNS, 53, "UDP")


def test_gke_engine_is_reached_only_by_the_ui_the_benchmark_and_the_collectors(gke: StackRun) -> None:
    policies, pods = policies_of(gke), pods_of(gke)
    vllm, ui, bench, cache = pods["vllm"], pods["open-webui"], pods["benchmark"], pods["model-cache"]
    assert allowed(policies, ui, vllm, 8000)
    assert allowed(policies, bench, vllm, 8000)
    assert not allowed(policies, INTRUDER, vllm, 8000)
    assert not allowed(policies, cache, vllm, 8000)
    assert not allowed(policies, ELSEWHERE, vllm, 8000)  # labels alone are not enough
    # /metrics is unauthenticated: only Managed Prometheus's collectors (gmp-system).
    assert allowed(policies, Pod("collector", "gmp-system", {"app": "collector"}), vllm, 8000)
    assert not allowed(policies, Pod("prometheus", "monitoring", {}), vllm, 8000)
    assert not allowed(policies, ui, vllm, 8080)  # only the served port
    assert not allowed(policies, vllm, ui, 8080)  # the engine never calls the UI


def test_gke_egress_follows_the_declared_needs(gke: StackRun) -> None:
    policies, pods = policies_of(gke), pods_of(gke)
    vllm, ui, bench, cache = pods["vllm"], pods["open-webui"], pods["benchmark"], pods["model-cache"]
    for pod in pods.values():
        assert allowed(policies, pod, KUBE_DNS, 53, "UDP") and allowed(policies, pod, KUBE_DNS, 53, "TCP"), pod.name
    # Weights and tokenizers over HTTPS; Workload Identity's metadata server (Dataplane V2: port 80).
    for pod in (vllm, bench, cache):
        assert allowed(policies, pod, INTERNET, 443), pod.name
        assert allowed(policies, pod, GKE_METADATA, 80), pod.name
        assert not allowed(policies, pod, INTERNET, 80), pod.name
        assert not allowed(policies, pod, Address("10.4.0.17"), 443), pod.name  # a pod address: not "internet"
        assert not allowed(policies, pod, Address("192.168.0.5"), 443), pod.name  # a node
        assert not allowed(policies, pod, Address("169.254.169.254"), 443), pod.name  # link-local only on 80
    # The UI reaches the engine and nothing else: no internet, no cloud identity.
    assert not allowed(policies, ui, INTERNET, 443)
    assert not allowed(policies, ui, GKE_METADATA, 80)
    assert not allowed(policies, ui, cache, 8000)


def test_eks_ray_dashboard_and_gcs_are_only_for_ray_and_its_operator(eks_ray: StackRun) -> None:
    policies, pods = policies_of(eks_ray), pods_of(eks_ray)
    head, worker, ui, bench = pods["ray-head"], pods["ray-gpu"], pods["open-webui"], pods["benchmark"]
    for client in (ui, bench):
        assert allowed(policies, client, head, 8000)
        assert allowed(policies, client, worker, 8000)  # Serve proxies run on every node
        for port in (8265, 10001, 6379, 52365):  # dashboard and Jobs API, client, GCS, agent
            assert not allowed(policies, client, head, port), port
    for port in (8265, 10001, 6379, 8000):
        assert not allowed(policies, INTRUDER, head, port), port
    # KubeRay drives Serve through the dashboard API and probes each proxy.
    assert allowed(policies, OPERATOR, head, 8265)
    assert allowed(policies, OPERATOR, head, 8000)
    assert not allowed(policies, OPERATOR, head, 6379)
    assert not allowed(policies, OPERATOR, head, 10001)
    # Ray's own pods talk on any port (GCS, raylets, object managers, NCCL bootstrap).
    for port in (6379, 8265, 10001, 41234):
        assert allowed(policies, worker, head, port), port
        assert allowed(policies, head, worker, port), port


def test_eks_identity_goes_to_the_pod_identity_agent_only(eks_ray: StackRun) -> None:
    policies, pods = policies_of(eks_ray), pods_of(eks_ray)
    for name in ("ray-head", "ray-gpu", "benchmark", "model-cache"):
        assert allowed(policies, pods[name], EKS_POD_IDENTITY, 80), name
        assert not allowed(policies, pods[name], EKS_IMDS, 80), name  # never the node's own role
        assert not allowed(policies, pods[name], Address("10.0.12.34"), 443), name  # the VPC: pods and nodes
        assert allowed(policies, pods[name], INTERNET, 443), name
    assert not allowed(policies, pods["open-webui"], EKS_POD_IDENTITY, 80)
    assert not allowed(policies, pods["open-webui"], INTERNET, 443)
    assert allowed(policies, Pod("prometheus", "monitoring", {}), pods["ray-gpu"], 8080)


def test_a_load_balancer_reaches_the_ui_only_from_its_allowed_ranges() -> None:
    exposure = {"openWebui": {"type": "LoadBalancer", "allowedSourceRanges": ["198.51.100.0/24"]}}
    run = run_serving("a4high", {"serving": {"exposure": exposure}})
    policies, pods = policies_of(run), pods_of(run)
    ui = pods["open-webui"]
    assert allowed(policies, Address("198.51.100.7"), ui, 8080)
    assert allowed(policies, Address("192.168.0.5"), ui, 8080)  # forwarded by a node
    assert not allowed(policies, Address("203.0.113.9"), ui, 8080)
    assert not allowed(policies, Address("198.51.100.7"), pods["vllm"], 8000)  # the engine stays internal


def test_eks_turns_on_network_policy_enforcement(eks: StackRun) -> None:
    (cluster,) = eks.of_type("eks:index:Cluster")
    assert cluster.inputs["vpcCniOptions"]["enableNetworkPolicy"] is True


def test_a_client_gets_egress_from_the_servers_declaration() -> None:
    """The builder alone: egress is derived from the other workload's served ports."""
    server = WorkloadNeeds("api", {"app": "api"}, serves=(ServedPort("http", 9000, (Peer({"app": "web"}),)),))
    web = WorkloadNeeds("web", {"app": "web"})
    policies = network_policies(NS, ClusterNetwork(), [server, web])
    api_pod, web_pod = Pod("api", NS, {"app": "api"}), Pod("web", NS, {"app": "web"})
    assert allowed(policies, web_pod, api_pod, 9000)
    assert not allowed(policies, api_pod, web_pod, 9000)
    with pytest.raises(ValueError, match="same name"):
        network_policies(NS, ClusterNetwork(), [web, web])
