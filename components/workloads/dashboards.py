"""The serving dashboard as code: Grafana JSON built from the engine's metric names.

Panels follow what an R1 endpoint's operators watch (vLLM's examples/observability
dashboard covers the same ground; this one is our own, smaller, and engine-neutral): load
(running, waiting), KV cache, latency quantiles (TTFT, inter-token, TPOT, end to end),
throughput, preemptions, prefix-cache and speculative-decoding hit rates, and, where the
cluster exports DCGM fields, GPU utilisation and memory. Every query is PromQL over
``catalog.EngineMetrics`` names, so the same dashboard serves vLLM and Ray Serve LLM.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi

from components.catalog.metrics import EngineMetrics
from components.platform import DashboardPanel, Manifest, Monitoring

DASHBOARD_UID = "llm-serving"
WINDOW = "$__rate_interval"  # Grafana picks it from the scrape interval
FIXED_WINDOW = "5m"  # for dashboard services without Grafana's variables
GPU_SERIES = ("DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED")
PANEL_WIDTH, PANEL_HEIGHT = 12, 8


def panels(metrics: EngineMetrics, namespace: str, gpu: bool, window: str = WINDOW) -> list[DashboardPanel]:
    """The serving dashboard's charts, rates over ``window``."""
    where = f'namespace="{namespace}"'

    def _quantiles(histogram: str) -> list[tuple[str, str]]:
        return [
            (f"p{q}", f"histogram_quantile(0.{q}, sum by (le) (rate({histogram}_bucket{{{where}}}[{window}])))")
            for q in (50, 95, 99)
        ]

    def _ratio(numerator: str, denominator: str) -> str:
        return f"sum(rate({numerator}{{{where}}}[{window}])) / sum(rate({denominator}{{{where}}}[{window}]))"

    charts: list[tuple[str, str, list[tuple[str, str]]]] = [
        (
            "Requests running and waiting",
            "short",
            [("running", f"sum({metrics.running}{{{where}}})"), ("waiting", f"sum({metrics.waiting}{{{where}}})")],
        ),
        ("KV cache usage", "percentunit", [("max over engines", f"max({metrics.kv_cache_usage}{{{where}}})")]),
        ("Time to first token", "s", _quantiles(metrics.ttft)),
        ("Inter-token latency", "s", _quantiles(metrics.inter_token_latency)),
        ("Time per output token (per request)", "s", _quantiles(metrics.time_per_output_token)),
        ("End-to-end request latency", "s", _quantiles(metrics.e2e_latency)),
        ("Queue time", "s", _quantiles(metrics.queue_time)),
        (
            "Generated tokens per second",
            "short",
            [("tokens/s", f"sum(rate({metrics.generation_tokens}{{{where}}}[{window}]))")],
        ),
        (
            "Preemptions per second",
            "short",
            [("preemptions/s", f"sum(rate({metrics.preemptions}{{{where}}}[{window}]))")],
        ),
        (
            "Prefix cache hit rate",
            "percentunit",
            [("hits / queries", _ratio(metrics.prefix_cache_hits, metrics.prefix_cache_queries))],
        ),
        (
            "Speculative decoding acceptance",
            "percentunit",
            [
                (
                    "accepted / draft tokens",
                    _ratio(metrics.spec_decode_accepted_tokens, metrics.spec_decode_draft_tokens),
                )
            ],
        ),
    ]
    if gpu:
        charts += [
            ("GPU utilisation", "percent", [("{{Hostname}} GPU {{gpu}}", "DCGM_FI_DEV_GPU_UTIL")]),
            ("GPU memory used", "decmbytes", [("{{Hostname}} GPU {{gpu}}", "DCGM_FI_DEV_FB_USED")]),
        ]
    return [DashboardPanel(title, unit, tuple(queries)) for title, unit, queries in charts]


def serving_dashboard(metrics: EngineMetrics, namespace: str, gpu: bool) -> dict[str, Any]:
    """A Grafana dashboard (schema of Grafana's dashboard JSON model) over a Prometheus datasource."""
    datasource = {"type": "prometheus", "uid": "${datasource}"}
    built = []
    for i, panel in enumerate(panels(metrics, namespace, gpu)):
        title, unit, targets = panel.title, panel.unit, panel.queries
        built.append(
            {
                "id": i + 1,
                "type": "timeseries",
                "title": title,
                "datasource": datasource,
                "gridPos": {
                    "x": (i % 2) * PANEL_WIDTH,
                    "y": (i // 2) * PANEL_HEIGHT,
                    "w": PANEL_WIDTH,
                    "h": PANEL_HEIGHT,
                },
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "targets": [
                    {"refId": chr(ord("A") + j), "expr": expr, "legendFormat": legend, "datasource": datasource}
                    for j, (legend, expr) in enumerate(targets)
                ],
            }
        )
    return {
        "uid": DASHBOARD_UID,
        "title": f"LLM serving ({namespace})",
        "tags": ["llm-serving", "vllm"],
        "schemaVersion": 39,
        "time": {"from": "now-3h", "to": "now"},
        "refresh": "30s",
        "templating": {
            "list": [{"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus"}]
        },
        "panels": built,
    }


def dashboard_config_map(metrics: EngineMetrics, namespace: str, monitoring: Monitoring) -> Manifest | None:
    """The dashboard as a ConfigMap Grafana's sidecar loads, where the platform has one."""
    if not monitoring.dashboard_labels:
        return None
    gpu = all(series in monitoring.available_series for series in GPU_SERIES)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "llm-serving-dashboard",
            "namespace": namespace,
            "labels": dict(monitoring.dashboard_labels),
        },
        "data": {"llm-serving.json": json.dumps(serving_dashboard(metrics, namespace, gpu), indent=1)},
    }


def publish(metrics: EngineMetrics, namespace: str, monitoring: Monitoring) -> pulumi.Resource | None:
    """The dashboard in the platform's own dashboard service, where it has one."""
    if monitoring.publish_dashboard is None:
        return None
    gpu = all(series in monitoring.available_series for series in GPU_SERIES)
    return monitoring.publish_dashboard(
        "dashboard-serving", f"LLM serving ({namespace})", panels(metrics, namespace, gpu, FIXED_WINDOW)
    )
