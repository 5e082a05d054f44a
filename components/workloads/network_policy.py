"""NetworkPolicies derived from the workloads' declared needs (components/workloads/needs.py).

The workload namespace denies all ingress and egress by default; each workload then gets
one policy that opens exactly what it and the others declared:

* ingress on each served port from its declared clients (pods of the namespace, pods of
  another namespace such as the KubeRay operator, or a load balancer's source ranges);
* ingress on the metrics port from the platform's Prometheus collectors;
* ingress and egress among its own pods on its peer ports (or any port);
* egress to every port another workload serves to it (derived from that workload's
  clients, so a served port and its callers never drift apart);
* DNS to kube-dns, the cloud identity endpoint on the node when it uses one, and HTTPS
  to addresses outside the cluster when it reaches out (a NetworkPolicy cannot name hosts;
  the cluster's own ranges and link-local addresses stay excluded);
* for workloads that use the model store (``cloud_identity``), the store's endpoints when
  it is reached over the network on its own terms (an S3-compatible endpoint: its port,
  at its listed addresses or any address outside the cluster); nothing for a volume.

Enforcement: GKE Dataplane V2 enforces NetworkPolicy natively (Cilium; "network policy
enforcement is built into GKE Dataplane V2",
https://cloud.google.com/kubernetes-engine/docs/concepts/dataplane-v2); on EKS the VPC CNI
add-on enforces it once its network policy agent is on (components/aws/cluster.py).
Semantics: https://kubernetes.io/docs/concepts/services-networking/network-policies/
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from components.platform import ClusterNetwork, Manifest, ModelStore
from components.workloads.common import metadata
from components.workloads.needs import Peer, WorkloadNeeds

API_VERSION = "networking.k8s.io/v1"
DEFAULT_DENY = "default-deny"
COMPONENT = "network-policy"
HTTPS_PORT = 443
ANYWHERE = "0.0.0.0/0"
LINK_LOCAL = "169.254.0.0/16"  # node-local metadata endpoints: only via identity_endpoints
# Set by the API server on every namespace (Kubernetes >= 1.22), so a policy can select a
# namespace by name: https://kubernetes.io/docs/reference/labels-annotations-taints/#kubernetes-io-metadata-name
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def policy_name(needs: WorkloadNeeds) -> str:
    return f"{needs.name}-network"


def default_deny(namespace: str) -> Manifest:
    """Every pod of the namespace: nothing in, nothing out, unless a policy allows it."""
    return {
        "apiVersion": API_VERSION,
        "kind": "NetworkPolicy",
        "metadata": metadata(DEFAULT_DENY, namespace, COMPONENT),
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }


def _namespace_selector(name: str) -> Manifest:
    return {"matchLabels": {NAMESPACE_NAME_LABEL: name}}


def peers(peer: Peer) -> list[Manifest]:
    """A NetworkPolicyPeer list for one declared peer."""
    if peer.ip_blocks:
        return [{"ipBlock": {"cidr": cidr}} for cidr in peer.ip_blocks]
    entry: Manifest = {}
    if peer.namespace is not None:
        entry["namespaceSelector"] = _namespace_selector(peer.namespace)
    if peer.pod_labels or peer.namespace is None:
        entry["podSelector"] = {"matchLabels": dict(peer.pod_labels)}
    return [entry]


def _selects(peer: Peer, namespace: str, pod_labels: Mapping[str, str]) -> bool:
    """Whether ``peer`` names the pods selected by ``pod_labels`` in ``namespace``."""
    if peer.ip_blocks or (peer.namespace or namespace) != namespace:
        return False
    return all(pod_labels.get(k) == v for k, v in peer.pod_labels.items())


def _port(port: int | str, protocol: str = "TCP") -> Manifest:
    return {"protocol": protocol, "port": port}


def _own_pods(needs: WorkloadNeeds) -> list[Manifest]:
    return [{"podSelector": {"matchLabels": dict(needs.selector)}}]


def _ingress(needs: WorkloadNeeds, network: ClusterNetwork) -> list[Manifest]:
    rules: list[Manifest] = []
    for served in needs.serves:
        sources = [p for client in served.clients for p in peers(client)]
        if sources:
            rules.append({"from": sources, "ports": [_port(served.port, served.protocol)]})
    if needs.metrics is not None and network.metrics_scraper_namespaces:
        scrapers = [{"namespaceSelector": _namespace_selector(ns)} for ns in network.metrics_scraper_namespaces]
        rules.append({"from": scrapers, "ports": [_port(needs.metrics.port_name)]})
    if needs.peer_any_port:
        rules.append({"from": _own_pods(needs)})
    elif needs.peer_ports:
        rules.append({"from": _own_pods(needs), "ports": [_port(p) for p in needs.peer_ports]})
    return rules


def _egress(
    needs: WorkloadNeeds,
    namespace: str,
    network: ClusterNetwork,
    workloads: Sequence[WorkloadNeeds],
    store: ModelStore | None = None,
) -> list[Manifest]:
    dns = {
        "namespaceSelector": _namespace_selector(network.dns_namespace),
        "podSelector": {"matchLabels": dict(network.dns_pod_labels)},
    }
    rules: list[Manifest] = [{"to": [dns], "ports": [_port(network.dns_port, "UDP"), _port(network.dns_port, "TCP")]}]
    for server in workloads:
        if server.name == needs.name:
            continue
        ports = [
            _port(served.port, served.protocol)
            for served in server.serves
            if any(_selects(client, namespace, needs.selector) for client in served.clients)
        ]
        if ports:
            rules.append({"to": _own_pods(server), "ports": ports})
    if needs.peer_any_port:
        rules.append({"to": _own_pods(needs)})
    elif needs.peer_ports:
        rules.append({"to": _own_pods(needs), "ports": [_port(p) for p in needs.peer_ports]})
    if needs.cloud_identity:
        for endpoint in network.identity_endpoints:
            rules.append(
                {"to": [{"ipBlock": {"cidr": endpoint.cidr}}], "ports": [_port(endpoint.port, endpoint.protocol)]}
            )
    outside: Manifest = {"ipBlock": {"cidr": ANYWHERE, "except": sorted({*network.internal_cidrs, LINK_LOCAL})}}
    if needs.cloud_identity and store is not None:
        for reach in store.endpoints:
            to = [{"ipBlock": {"cidr": cidr}} for cidr in reach.cidrs] or [outside]
            rules.append({"to": to, "ports": [_port(reach.port)]})
    if needs.internet_egress:
        rules.append({"to": [outside], "ports": [_port(HTTPS_PORT)]})
    return rules


def workload_policy(
    needs: WorkloadNeeds,
    namespace: str,
    network: ClusterNetwork,
    workloads: Sequence[WorkloadNeeds],
    store: ModelStore | None = None,
) -> Manifest:
    """The policy of one workload; ``workloads`` are all workloads of the namespace (their
    served ports decide where this one may connect); ``store`` the platform's model store."""
    return {
        "apiVersion": API_VERSION,
        "kind": "NetworkPolicy",
        "metadata": metadata(policy_name(needs), namespace, COMPONENT),
        "spec": {
            "podSelector": {"matchLabels": dict(needs.selector)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": _ingress(needs, network),
            "egress": _egress(needs, namespace, network, workloads, store),
        },
    }


def network_policies(
    namespace: str, network: ClusterNetwork, workloads: Sequence[WorkloadNeeds], store: ModelStore | None = None
) -> list[Manifest]:
    """Default deny plus one policy per workload, in a stable order."""
    names = [w.name for w in workloads]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"two workloads declare the same name: {', '.join(duplicates)}")
    return [default_deny(namespace), *(workload_policy(w, namespace, network, workloads, store) for w in workloads)]
