"""A node of the cluster not Ready, alerted through Managed Service for Prometheus.

GKE offers no kube-state-metrics node series (its managed kube-state package covers
workloads, storage and HPA only), but it writes the system metric
``kubernetes.io/node/status_condition`` (GKE 1.32.1-gke.1357001 and later; the cluster's
floor is above it) for every node: a BOOL gauge on the ``k8s_node`` resource with labels
``condition`` and ``status`` (True, False or Unknown). Sources: "About GPUs in GKE", Node
health metrics (cloud.google.com/kubernetes-engine/docs/concepts/gpus, updated 2026-06-10);
Cloud Monitoring's Kubernetes metric list (cloud.google.com/monitoring/api/metrics_kubernetes,
node/status_condition).

The managed rule evaluator queries Cloud Monitoring metrics only from a GlobalRules object
(Rules and ClusterRules add project, cluster and namespace matchers a ``k8s_node`` series
does not carry), so this is one, scoped to this project and cluster by hand
(cloud.google.com/stackdriver/docs/managed-prometheus/rules-managed). In PromQL the metric
is ``kubernetes_io:node_status_condition`` (Cloud Monitoring's name mapping:
cloud.google.com/stackdriver/docs/managed-prometheus/promql). Its alerts go to the same
managed Alertmanager (and notification channel) as the serving layer's.

Every node counts, not only GPU nodes: ``k8s_node`` carries no node-pool label to narrow
it by, and the system nodes run Open WebUI and the operators the engine depends on.
Firing alerts name the node; a GPU node's name contains its pool's name.
"""

from __future__ import annotations

from components.platform import Manifest

GMP_API = "monitoring.googleapis.com/v1"
NODE_STATUS_METRIC = "kubernetes_io:node_status_condition"
# The metric is sampled every 60 s and visible up to 120 s later; a node being created or
# upgraded is NotReady for about a minute. Five minutes separates a fault from those.
NOT_READY_FOR = "5m"
RULE_INTERVAL = "1m"
NODE_NOT_READY = "NodeNotReady"


def node_not_ready_expr(project: str, cluster: str) -> str:
    where = f'monitored_resource="k8s_node", project_id="{project}", cluster_name="{cluster}"'
    return f'max by (node_name) ({NODE_STATUS_METRIC}{{{where}, condition="Ready", status!="True"}}) == 1'


def node_alerts_object(name: str, project: str, cluster: str) -> Manifest:
    """A GlobalRules object (cluster-scoped) alerting on any node of this cluster not Ready."""
    rule = {
        "alert": NODE_NOT_READY,
        "expr": node_not_ready_expr(project, cluster),
        "for": NOT_READY_FOR,
        "labels": {"severity": "critical"},
        "annotations": {
            # Prometheus alert templating: the firing series' node.
            "summary": f"Node {{{{ $labels.node_name }}}} of cluster {cluster} is not Ready: its pods are not served."
        },
    }
    return {
        "apiVersion": GMP_API,
        "kind": "GlobalRules",
        "metadata": {"name": name},
        "spec": {"groups": [{"name": name, "interval": RULE_INTERVAL, "rules": [rule]}]},
    }
