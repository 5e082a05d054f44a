"""The monitoring stack an EKS cluster lacks (audit/aws.md F6): kube-prometheus-stack on the
system nodes and NVIDIA's dcgm-exporter on the GPU nodes.

Prometheus keeps ``PROMETHEUS_RETENTION`` of history on a gp3 volume and selects every
PodMonitor, ServiceMonitor and PrometheusRule in the cluster (the serving layer's among
them, without a release label to match). Grafana's admin password is generated here and
only ever leaves as a Pulumi secret; anonymous access stays off; its dashboard sidecar
loads every ConfigMap labelled ``grafana_dashboard: "1"``. Nothing here tolerates the GPU
taint except the two exporters (dcgm-exporter and node-exporter, whose chart tolerates
every NoSchedule taint), so the rest lands on the system node group.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components import catalog
from components.aws.gpu_pools import GPU_PRESENT_LABEL, GPU_TOLERATION
from components.aws.pod_network import MONITORING_NAMESPACE
from components.kubernetes import apply
from components.platform import Manifest, Monitoring

RELEASE = "kube-prometheus-stack"
DCGM_RELEASE = "dcgm-exporter"
GRAFANA_SECRET = "grafana-admin"
GRAFANA_PASSWORD_LENGTH = 32
# The grafana subchart's Service: <release>-grafana, port 80 (kube-prometheus-stack values.yaml).
GRAFANA_SERVICE = f"{RELEASE}-grafana"
DASHBOARD_LABEL = ("grafana_dashboard", "1")
# Series alerts and dashboards may use on this cluster: dcgm-exporter's default counters
# include XID errors, GPU utilisation and framebuffer use (etc/default-counters.csv at the
# pinned tag); kube-state-metrics (in the chart) reports node conditions and capacity.
AVAILABLE_SERIES = frozenset(
    {"DCGM_FI_DEV_XID_ERRORS", "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "kube_node_status_condition"}
)


def stack_values(storage_class: str) -> dict[str, Any]:
    """kube-prometheus-stack values (keys from its values.yaml at the pinned chart)."""
    return {
        "prometheus": {
            "prometheusSpec": {
                "retention": catalog.PROMETHEUS_RETENTION,
                "storageSpec": {
                    "volumeClaimTemplate": {
                        "spec": {
                            "storageClassName": storage_class,
                            "accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": f"{catalog.PROMETHEUS_VOLUME_GIB}Gi"}},
                        }
                    }
                },
                # Select monitors and rules from every namespace, not only this release's.
                "podMonitorSelectorNilUsesHelmValues": False,
                "serviceMonitorSelectorNilUsesHelmValues": False,
                "ruleSelectorNilUsesHelmValues": False,
            }
        },
        "grafana": {
            "admin": {"existingSecret": GRAFANA_SECRET, "userKey": "admin-user", "passwordKey": "admin-password"},
            "grafana.ini": {"auth.anonymous": {"enabled": False}},
            "sidecar": {
                "dashboards": {
                    "enabled": True,
                    "label": DASHBOARD_LABEL[0],
                    "labelValue": DASHBOARD_LABEL[1],
                    "searchNamespace": "ALL",
                }
            },
        },
        "alertmanager": {"enabled": True},
    }


def dcgm_values() -> dict[str, Any]:
    """dcgm-exporter values: only on GPU nodes, tolerating their taint; scraped by ServiceMonitor."""
    return {
        "nodeSelector": {GPU_PRESENT_LABEL: "true"},
        "tolerations": [dict(GPU_TOLERATION)],
        "serviceMonitor": {"enabled": True},
    }


def grafana_secret(password: pulumi.Input[str]) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": GRAFANA_SECRET, "namespace": MONITORING_NAMESPACE},
        "type": "Opaque",
        "stringData": {"admin-user": "admin", "admin-password": password},
    }


@dataclass(frozen=True)
class EksMonitoringArgs:
    cluster: str
    storage_class: str


class EksMonitoring(pulumi.ComponentResource):
    """kube-prometheus-stack and dcgm-exporter; ``monitoring`` is what the serving layer sees."""

    monitoring: Monitoring
    outputs: dict[str, pulumi.Input[Any]]

    def __init__(self, name: str, args: EksMonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llm-serving:aws:Monitoring", name, None, opts)
        here = pulumi.ResourceOptions(parent=self)
        namespace = apply(
            f"{name}-namespace",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": MONITORING_NAMESPACE}},
            here,
        )
        in_namespace = pulumi.ResourceOptions(parent=self, depends_on=[namespace])
        password = random.RandomPassword(
            f"{name}-grafana-admin", length=GRAFANA_PASSWORD_LENGTH, special=False, opts=here
        ).result
        secret = apply(f"{name}-grafana-admin", grafana_secret(password), in_namespace)
        chart = catalog.KUBE_PROMETHEUS_STACK_CHART
        stack = k8s.helm.v3.Release(
            f"{name}-{RELEASE}",
            name=RELEASE,
            chart=chart.name,
            version=chart.version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=chart.repo),
            namespace=MONITORING_NAMESPACE,
            values=stack_values(args.storage_class),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[secret]),
        )
        dcgm_chart = catalog.DCGM_EXPORTER_CHART
        dcgm = k8s.helm.v3.Release(
            f"{name}-{DCGM_RELEASE}",
            name=DCGM_RELEASE,
            chart=dcgm_chart.name,
            version=dcgm_chart.version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=dcgm_chart.repo),
            namespace=MONITORING_NAMESPACE,
            values=dcgm_values(),
            # Its ServiceMonitor needs the operator's CRDs.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[stack]),
        )
        forward = f"kubectl -n {MONITORING_NAMESPACE} port-forward svc/{GRAFANA_SERVICE} 3000:80"
        self.monitoring = Monitoring(
            kind="prometheus-operator",
            namespace=MONITORING_NAMESPACE,
            available_series=AVAILABLE_SERIES,
            dashboard_labels=dict([DASHBOARD_LABEL]),
            how_to_view=f"Grafana: {forward}, then http://localhost:3000 as admin (grafana_admin_password)",
            ready=(stack, dcgm),
        )
        self.outputs = {"grafana_admin_password": pulumi.Output.secret(password), "grafana": forward}
        self.register_outputs(self.outputs)
