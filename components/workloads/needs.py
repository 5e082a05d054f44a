"""What a workload's pods need from the cluster, declared by the workload itself.

Every workload (an engine, Open WebUI, a Job) says which ports it serves and to whom,
which ports its own pods use among themselves (Ray, LeaderWorkerSet, NCCL bootstrap),
where it must reach out to, which Linux capabilities its containers need, and where
its metrics are. NetworkPolicies, pod hardening and metrics scraping are derived from
these declarations, never from a hand-kept list, so a workload that gains a port or a
peer gets its policy with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Peer:
    """Pods allowed to connect: by labels in the workload namespace, or every pod of
    another namespace (``namespace`` set, ``pod_labels`` empty) such as a metrics scraper's,
    or addresses outside the cluster (``ip_blocks``: a load balancer's allowed sources)."""

    pod_labels: Mapping[str, str] = field(default_factory=dict)
    namespace: str | None = None  # None: the workload namespace
    ip_blocks: tuple[str, ...] = ()  # CIDRs; when set, the labels and namespace are unused


@dataclass(frozen=True)
class ServedPort:
    """A port the workload's pods accept connections on, and who may connect."""

    name: str
    port: int
    clients: tuple[Peer, ...] = ()
    protocol: str = "TCP"


@dataclass(frozen=True)
class MetricsEndpoint:
    """Where Prometheus scrapes the workload's pods (a named container port and a path)."""

    port_name: str
    path: str = "/metrics"


@dataclass(frozen=True)
class WorkloadNeeds:
    """One workload's declaration.

    ``selector`` picks its pods. ``peer_ports`` are open between its own pods in both
    directions (empty for a single-pod workload). ``internet_egress``: HTTPS to addresses
    outside the cluster (Hugging Face, the bucket's API, image pulls by the process itself;
    a NetworkPolicy cannot name hosts). ``cloud_identity``: the pod exchanges its service
    account for cloud credentials (Workload Identity / Pod Identity endpoints on the node).
    ``capabilities`` are added to the containers' otherwise empty set (RDMA and EFA
    engines need ``IPC_LOCK``). ``peer_any_port``: the workload's pods reach each other on
    any port (Ray's raylet, object manager and workers, and NCCL's bootstrap pick ports at
    random), which ``peer_ports`` cannot list.
    """

    name: str
    selector: Mapping[str, str]
    serves: tuple[ServedPort, ...] = ()
    peer_ports: tuple[int, ...] = ()
    # Inclusive port ranges open among the workload's own pods (NetworkPolicy ``endPort``),
    # for runtimes that pick ports from a range (Ray's worker processes).
    internet_egress: bool = False
    cloud_identity: bool = False
    capabilities: tuple[str, ...] = ()
    metrics: MetricsEndpoint | None = None
    peer_any_port: bool = False
