"""What NetworkPolicies must know about an EKS cluster's network (``ClusterNetwork``).

Enforcement: the VPC CNI add-on's network policy agent, switched on in cluster.py
(https://docs.aws.amazon.com/eks/latest/userguide/cni-network-policy-configure.html).
"""

from __future__ import annotations

from components.config import AwsPlatformConfig
from components.platform import ClusterNetwork, NodeEndpoint

# The EKS Pod Identity agent serves credentials on every node at 169.254.170.23, port 80
# (AWS_CONTAINER_CREDENTIALS_FULL_URI=http://169.254.170.23/v1/credentials;
# https://docs.aws.amazon.com/eks/latest/userguide/pod-id-how-it-works.html).
POD_IDENTITY_AGENT = NodeEndpoint("169.254.170.23/32", 80)
# Without kubernetesNetworkConfig.serviceIpv4Cidr (cluster.py sets none) EKS assigns Service
# addresses from 10.100.0.0/16 or 172.20.0.0/16, whichever does not overlap the VPC
# (https://docs.aws.amazon.com/eks/latest/APIReference/API_KubernetesNetworkConfigRequest.html).
EKS_DEFAULT_SERVICE_CIDRS = ("10.100.0.0/16", "172.20.0.0/16")
# Where this project expects an in-cluster Prometheus (kube-prometheus-stack's usual home).
MONITORING_NAMESPACE = "monitoring"


def cluster_network(config: AwsPlatformConfig) -> ClusterNetwork:
    vpc = str(config.vpc_cidr)  # the VPC CNI gives pods addresses of the VPC's subnets
    return ClusterNetwork(
        internal_cidrs=(vpc, *EKS_DEFAULT_SERVICE_CIDRS),
        node_cidrs=(vpc,),
        identity_endpoints=(POD_IDENTITY_AGENT,),
        metrics_scraper_namespaces=(MONITORING_NAMESPACE,),
    )
