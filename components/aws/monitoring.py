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
import pulumi_random as random

from components import catalog, notifications
from components.aws.gpu_pools import GPU_PRESENT_LABEL, GPU_TOLERATION
from components.aws.pod_network import MONITORING_NAMESPACE
from components.kubernetes import apply, chart_release, namespace_manifest
from components.platform import Manifest, Monitoring

RELEASE = "kube-prometheus-stack"
DCGM_RELEASE = "dcgm-exporter"
GRAFANA_SECRET = "grafana-admin"
GRAFANA_PASSWORD_LENGTH = 32
# Alertmanager's configuration when notifications are on: the chart then renders none of
# its own (alertmanagerSpec.useExistingSecret) and the operator reads this Secret
# (alertmanagerSpec.configSecret, key alertmanager.yaml: chart values.yaml; operator
# pkg/alertmanager/operator.go). Without it the chart's default config (a null receiver) stays.
ALERTMANAGER_SECRET = "alertmanager-serving-team"
# The grafana subchart's Service: <release>-grafana, port 80 (kube-prometheus-stack values.yaml).
GRAFANA_SERVICE = f"{RELEASE}-grafana"
DASHBOARD_LABEL = ("grafana_dashboard", "1")
# Series alerts and dashboards may use on this cluster: the fields dcgm-exporter watches
# (catalog.DCGM_COUNTERS, given to it below), and kube-state-metrics' node conditions and
# capacity (in the chart).
AVAILABLE_SERIES = frozenset(
    {field for field, _, _ in catalog.DCGM_COUNTERS} | {"kube_node_status_condition", "kube_node_status_capacity"}
)


def _resources(component: str) -> dict[str, dict[str, str]]:
    return {k: dict(v) for k, v in catalog.MONITORING_RESOURCES[component].items()}


def stack_values(storage_class: str, notifications: bool = False) -> dict[str, Any]:
    """kube-prometheus-stack values (keys from its values.yaml at the pinned chart)."""
    alertmanager_spec: dict[str, Any] = {"resources": _resources("alertmanager")}
    if notifications:
        alertmanager_spec |= {"useExistingSecret": True, "configSecret": ALERTMANAGER_SECRET}
    return {
        "prometheusOperator": {"resources": _resources("prometheus-operator")},
        "kube-state-metrics": {"resources": _resources("kube-state-metrics")},
        "prometheus-node-exporter": {"resources": _resources("node-exporter")},
        "prometheus": {
            "prometheusSpec": {
                "resources": _resources("prometheus"),
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
            "resources": _resources("grafana"),
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
        "alertmanager": {"enabled": True, "alertmanagerSpec": alertmanager_spec},
    }


def dcgm_counters_csv() -> str:
    """The field list dcgm-exporter reads (its default-counters.csv format: field, type, help)."""
    lines = ["# DCGM field, Prometheus metric type, help message (components/catalog/aws.py DCGM_COUNTERS)"]
    lines += [f"{field}, {kind}, {help_text}" for field, kind, help_text in catalog.DCGM_COUNTERS]
    return "\n".join(lines) + "\n"


def dcgm_values() -> dict[str, Any]:
    """dcgm-exporter values: only on GPU nodes, tolerating their taint; scraped by ServiceMonitor;
    watching our field list, which adds the ECC counters to the chart's."""
    return {
        "nodeSelector": {GPU_PRESENT_LABEL: "true"},
        "tolerations": [dict(GPU_TOLERATION)],
        "serviceMonitor": {"enabled": True},
        "customMetrics": dcgm_counters_csv(),
    }


def grafana_secret(password: pulumi.Input[str]) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": GRAFANA_SECRET, "namespace": MONITORING_NAMESPACE},
        "type": "Opaque",
        "stringData": {"admin-user": "admin", "admin-password": password},
    }


def alertmanager_secret(config_yaml: pulumi.Input[str]) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": ALERTMANAGER_SECRET, "namespace": MONITORING_NAMESPACE},
        "type": "Opaque",
        "stringData": {notifications.CONFIG_KEY: config_yaml},
    }


@dataclass(frozen=True)
class EksMonitoringArgs:
    cluster: str
    storage_class: str
    # alertmanager.yaml (components/notifications.py), a Pulumi secret; None: no notifications.
    alertmanager_config: pulumi.Output[str] | None = None


class EksMonitoring(pulumi.ComponentResource):
    """kube-prometheus-stack and dcgm-exporter; ``monitoring`` is what the serving layer sees."""

    monitoring: Monitoring
    outputs: dict[str, pulumi.Input[Any]]

    def __init__(self, name: str, args: EksMonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llm-serving:aws:Monitoring", name, None, opts)
        here = pulumi.ResourceOptions(parent=self)
        namespace = apply(
            f"{name}-namespace",
            namespace_manifest(MONITORING_NAMESPACE),
            here,
        )
        in_namespace = pulumi.ResourceOptions(parent=self, depends_on=[namespace])
        password = random.RandomPassword(
            f"{name}-grafana-admin", length=GRAFANA_PASSWORD_LENGTH, special=False, opts=here
        ).result
        secret = apply(f"{name}-grafana-admin", grafana_secret(password), in_namespace)
        secrets = [secret]
        if args.alertmanager_config is not None:
            secrets.append(apply(f"{name}-alertmanager", alertmanager_secret(args.alertmanager_config), in_namespace))
        stack = chart_release(
            f"{name}-{RELEASE}",
            catalog.KUBE_PROMETHEUS_STACK_CHART,
            pulumi.ResourceOptions(parent=self, depends_on=secrets),
            name=RELEASE,
            namespace=MONITORING_NAMESPACE,
            values=stack_values(args.storage_class, notifications=args.alertmanager_config is not None),
        )
        dcgm = chart_release(
            f"{name}-{DCGM_RELEASE}",
            catalog.DCGM_EXPORTER_CHART,
            # Its ServiceMonitor needs the operator's CRDs.
            pulumi.ResourceOptions(parent=self, depends_on=[stack]),
            name=DCGM_RELEASE,
            namespace=MONITORING_NAMESPACE,
            values=dcgm_values(),
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
