"""A small NetworkPolicy evaluator: can this endpoint reach that one on a port?

It follows the semantics of networking.k8s.io/v1 NetworkPolicy
(https://kubernetes.io/docs/concepts/services-networking/network-policies/): a pod that no
policy selects for a direction is open in that direction; a selected pod allows only what
some rule of a selecting policy allows (rules are additive); a connection needs both the
source's egress and the destination's ingress. Peers: ``podSelector`` and
``namespaceSelector`` (``matchLabels`` only; the builders use nothing else), ``ipBlock``
with ``except`` for addresses. Ports: number, named container port of the destination,
``endPort``, protocol (TCP by default). Enough to test the rendered policies, not a CNI.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Json = dict[str, Any]


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str
    labels: Mapping[str, str]
    ports: Mapping[str, int] = field(default_factory=dict)  # named container ports


@dataclass(frozen=True)
class Address:
    """An address that is not a pod: the internet, a metadata server, a node."""

    ip: str


Endpoint = Pod | Address


def _matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    selector = selector or {}
    assert set(selector) <= {"matchLabels"}, f"evaluator supports matchLabels only: {selector}"
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


def _namespace_labels(namespace: str) -> dict[str, str]:
    return {"kubernetes.io/metadata.name": namespace}


def _peer_matches(peer: Json, policy_namespace: str, other: Endpoint) -> bool:
    if "ipBlock" in peer:
        if not isinstance(other, Address):
            return False
        ip = ipaddress.ip_address(other.ip)
        block = peer["ipBlock"]
        if ip not in ipaddress.ip_network(block["cidr"]):
            return False
        return not any(ip in ipaddress.ip_network(e) for e in block.get("except", []))
    if not isinstance(other, Pod):
        return False
    if "namespaceSelector" in peer:
        if not _matches(peer["namespaceSelector"], _namespace_labels(other.namespace)):
            return False
    elif other.namespace != policy_namespace:
        return False
    return _matches(peer.get("podSelector"), other.labels)


def _port_matches(ports: list[Json] | None, port: int, protocol: str, target: Endpoint) -> bool:
    if not ports:
        return True
    for entry in ports:
        if entry.get("protocol", "TCP") != protocol:
            continue
        value: int | str | None = entry.get("port")
        if value is None:
            return True
        if isinstance(value, str):
            if isinstance(target, Pod) and target.ports.get(value) == port:
                return True
            continue
        end: int = entry.get("endPort", value)
        if value <= port <= end:
            return True
    return False


def _selecting(policies: Iterable[Json], pod: Pod, direction: str) -> list[Json]:
    return [
        p
        for p in policies
        if p["metadata"]["namespace"] == pod.namespace
        and direction in p["spec"].get("policyTypes", ["Ingress"])
        and _matches(p["spec"]["podSelector"], pod.labels)
    ]


def allowed(policies: list[Json], src: Endpoint, dst: Endpoint, port: int, protocol: str = "TCP") -> bool:
    """Whether a connection from ``src`` to ``dst`` on ``port`` is allowed."""
    if isinstance(src, Pod):
        selecting = _selecting(policies, src, "Egress")
        if selecting and not any(
            _port_matches(rule.get("ports"), port, protocol, dst)
            and (not rule.get("to") or any(_peer_matches(peer, src.namespace, dst) for peer in rule["to"]))
            for policy in selecting
            for rule in policy["spec"].get("egress", [])
        ):
            return False
    if isinstance(dst, Pod):
        selecting = _selecting(policies, dst, "Ingress")
        if selecting and not any(
            _port_matches(rule.get("ports"), port, protocol, dst)
            and (not rule.get("from") or any(_peer_matches(peer, dst.namespace, src) for peer in rule["from"]))
            for policy in selecting
            for rule in policy["spec"].get("ingress", [])
        ):
            return False
    return True
