"""Scrape objects and alert rules for the serving workloads (pure builders: plain dicts).

What is scraped comes from each workload's declaration (``WorkloadNeeds.metrics``: a
named container port and a path), never from a list kept here; how it is addressed comes
from the platform (``Monitoring.kind``): PodMonitoring and Rules for Google Cloud Managed
Service for Prometheus, PodMonitor and PrometheusRule for the Prometheus operator. The
engine's metric names come from ``catalog.ENGINE_METRICS`` (vLLM's own, or Ray Serve LLM's
re-exported ones), so one set of rules serves either engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from components.catalog.metrics import EngineMetrics
from components.config.monitoring import AlertsConfig
from components.platform import Manifest, Monitoring
from components.workloads.needs import WorkloadNeeds

GMP_API = "monitoring.googleapis.com/v1"
OPERATOR_API = "monitoring.coreos.com/v1"
# Prometheus's rule evaluation interval for the group; rate windows below cover 5 of it.
RULE_INTERVAL = "1m"
RATE_WINDOW = "5m"
# A queue that is non-empty and still rising over this window is growing, not a burst.
QUEUE_TREND_WINDOW = "15m"


def _meta(name: str, namespace: str, monitoring: Monitoring) -> Manifest:
    meta: Manifest = {"name": name, "namespace": namespace}
    if monitoring.object_labels:
        meta["labels"] = dict(monitoring.object_labels)
    return meta


def scrape_object(needs: WorkloadNeeds, namespace: str, monitoring: Monitoring, interval: str) -> Manifest | None:
    """A PodMonitoring or PodMonitor for one workload's pods, or None if it declares no metrics."""
    if needs.metrics is None:
        return None
    endpoint = {"port": needs.metrics.port_name, "path": needs.metrics.path, "interval": interval}
    selector = {"matchLabels": dict(needs.selector)}
    name = f"{needs.name}-metrics"
    if monitoring.kind == "gmp":
        return {
            "apiVersion": GMP_API,
            "kind": "PodMonitoring",
            "metadata": _meta(name, namespace, monitoring),
            "spec": {"selector": selector, "endpoints": [endpoint]},
        }
    return {
        "apiVersion": OPERATOR_API,
        "kind": "PodMonitor",
        "metadata": _meta(name, namespace, monitoring),
        "spec": {"selector": selector, "podMetricsEndpoints": [endpoint]},
    }


def scrape_job(needs: WorkloadNeeds, namespace: str, monitoring: Monitoring) -> str:
    """The ``job`` label the scraped series carry: GMP uses the PodMonitoring's name, the
    operator ``<namespace>/<PodMonitor name>`` (its default jobLabel)."""
    name = f"{needs.name}-metrics"
    return name if monitoring.kind == "gmp" else f"{namespace}/{name}"


@dataclass(frozen=True)
class AlertRule:
    name: str
    expr: str
    for_duration: str
    severity: str
    summary: str

    def manifest(self) -> Manifest:
        return {
            "alert": self.name,
            "expr": self.expr,
            "for": self.for_duration,
            "labels": {"severity": self.severity},
            "annotations": {"summary": self.summary},
        }


def engine_alerts(
    engine: WorkloadNeeds, metrics: EngineMetrics, namespace: str, monitoring: Monitoring, alerts: AlertsConfig
) -> list[AlertRule]:
    """What a serving team must be told: the engine is gone, its KV cache is full, its queue
    keeps growing, its first tokens are slow; and GPU faults where the exporter reports them."""
    where = f'namespace="{namespace}"'
    job = scrape_job(engine, namespace, monitoring)
    waiting = f"sum({metrics.waiting}{{{where}}})"
    ttft_p95 = f"histogram_quantile(0.95, sum by (le) (rate({metrics.ttft}_bucket{{{where}}}[{RATE_WINDOW}])))"
    rules = [
        AlertRule(
            "EngineDown",
            f'absent(up{{{where}, job="{job}"}} == 1)',
            "5m",
            "critical",
            f"No {engine.name} pod answers its metrics endpoint in {namespace}: the model is not being served.",
        ),
        AlertRule(
            "KvCacheNearlyFull",
            f"max({metrics.kv_cache_usage}{{{where}}}) > {alerts.kv_cache_usage:g}",
            alerts.for_duration,
            "warning",
            f"KV cache above {alerts.kv_cache_usage:.0%}: requests queue or are preempted; add replicas or "
            "lower max concurrency.",
        ),
        AlertRule(
            "RequestQueueGrowing",
            f"{waiting} > 0 and deriv({waiting}[{QUEUE_TREND_WINDOW}:{RULE_INTERVAL}]) > 0",
            alerts.for_duration,
            "warning",
            "Waiting requests keep growing: demand exceeds what the engine can batch.",
        ),
        AlertRule(
            "SlowTimeToFirstToken",
            f"{ttft_p95} > {alerts.ttft_p95_seconds:g}",
            alerts.for_duration,
            "warning",
            f"Time to first token p95 above {alerts.ttft_p95_seconds:g} s.",
        ),
    ]
    if "DCGM_EXP_XID_ERRORS_COUNT" in monitoring.available_series:
        # dcgm-exporter's own count of each XID seen in its last window (5 min by default),
        # labelled `xid`: the alert names the code and resolves when the XIDs stop
        # (NVIDIA/dcgm-exporter 4.5.3-4.8.2 internal/pkg/collector/xid_collector.go;
        # pkg/cmd/app.go --xid-count-window-size). The last-XID gauge below never returns to 0.
        rules.append(
            AlertRule(
                "GpuXidError",
                "max by (Hostname, gpu, xid) (DCGM_EXP_XID_ERRORS_COUNT) > 0",
                "0m",
                "critical",
                "GPU {{ $labels.gpu }} on {{ $labels.Hostname }} reported XID {{ $labels.xid }}; look the code up "
                "in NVIDIA's XID catalog and drain the node if it is a hardware fault or repeats.",
            )
        )
    elif "DCGM_FI_DEV_XID_ERRORS" in monitoring.available_series:
        rules.append(
            AlertRule(
                "GpuXidError",
                "max by (Hostname, gpu) (DCGM_FI_DEV_XID_ERRORS) > 0",
                "0m",
                "critical",
                "A GPU reported an XID error (value: the last XID); check the node and drain it if it repeats.",
            )
        )
    if "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL" in monitoring.available_series:
        rules.append(
            AlertRule(
                "GpuUncorrectableEcc",
                f"increase(DCGM_FI_DEV_ECC_DBE_VOL_TOTAL[{RATE_WINDOW}]) > 0",
                "0m",
                "critical",
                "A GPU had uncorrectable (double-bit) ECC errors.",
            )
        )
    if "DCGM_FI_DEV_ROW_REMAP_FAILURE" in monitoring.available_series:
        # Since Ampere a GPU retires a failing memory row by remapping it to a spare; this
        # gauge says a remapping failed (DCGM field DCGM_FI_DEV_ROW_REMAP_FAILURE, in the
        # exporter's default list), so the memory error stays: the GPU needs service.
        rules.append(
            AlertRule(
                "GpuRowRemapFailure",
                "max by (Hostname, gpu) (DCGM_FI_DEV_ROW_REMAP_FAILURE) > 0",
                "0m",
                "critical",
                "A GPU could not remap a failing memory row: drain the node and have the GPU replaced.",
            )
        )
    if {"kube_node_status_condition", "kube_node_status_capacity"} <= monitoring.available_series:
        rules.append(
            AlertRule(
                "GpuNodeNotReady",
                'kube_node_status_condition{condition="Ready", status!="true"} == 1 '
                'and on (node) kube_node_status_capacity{resource="nvidia_com_gpu"} > 0',
                "5m",
                "critical",
                "A GPU node is not Ready.",
            )
        )
    return rules


def rules_object(name: str, namespace: str, monitoring: Monitoring, rules: Sequence[AlertRule]) -> Manifest:
    """A Rules (GMP) or PrometheusRule (operator) object holding one group of alerts."""
    group = {"name": name, "interval": RULE_INTERVAL, "rules": [r.manifest() for r in rules]}
    if monitoring.kind == "gmp":
        return {
            "apiVersion": GMP_API,
            "kind": "Rules",
            "metadata": _meta(name, namespace, monitoring),
            "spec": {"groups": [group]},
        }
    return {
        "apiVersion": OPERATOR_API,
        "kind": "PrometheusRule",
        "metadata": _meta(name, namespace, monitoring),
        "spec": {"groups": [group]},
    }
