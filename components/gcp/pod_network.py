"""What NetworkPolicies must know about a GKE cluster's network (``ClusterNetwork``).

Enforcement: the cluster runs GKE Dataplane V2 (cluster.py ``ADVANCED_DATAPATH``), which
enforces Kubernetes NetworkPolicy itself; no Calico add-on is needed or allowed
(https://cloud.google.com/kubernetes-engine/docs/concepts/dataplane-v2; gcp-a4high.md §1
"Calico network policy must be OFF with DPv2").
"""

from __future__ import annotations

from components.config import GcpPlatformConfig
from components.platform import ClusterNetwork, NodeEndpoint

# The GKE metadata server that Workload Identity Federation uses. GKE's instructions for
# clusters with network policies: allow egress to 169.254.169.254/32 port 80 on Dataplane
# V2, and to 169.254.169.252/32 port 988 otherwise
# (https://cloud.google.com/kubernetes-engine/docs/how-to/workload-identity, "Limitations").
# Both are the node's own metadata server; allowing both keeps a node version that answers
# on either working.
GKE_METADATA_SERVER = (NodeEndpoint("169.254.169.254/32", 80), NodeEndpoint("169.254.169.252/32", 988))
# Google Cloud Managed Service for Prometheus runs its collectors in this namespace
# (https://cloud.google.com/stackdriver/docs/managed-prometheus/setup-managed; the cluster
# turns managed collection on in cluster.py).
GMP_NAMESPACE = "gmp-system"


def cluster_network(config: GcpPlatformConfig) -> ClusterNetwork:
    ranges = config.network
    return ClusterNetwork(
        # Pods, Services, nodes (both gVNICs), the RDMA subnets and the control plane.
        internal_cidrs=tuple(
            str(r)
            for r in (
                ranges.pods,
                ranges.services,
                ranges.primary_subnet,
                ranges.secondary_subnet,
                ranges.rdma,
                ranges.control_plane,
            )
        ),
        node_cidrs=(str(ranges.primary_subnet),),
        identity_endpoints=GKE_METADATA_SERVER,
        metrics_scraper_namespaces=(GMP_NAMESPACE,),
    )
