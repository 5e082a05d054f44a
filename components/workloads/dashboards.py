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

from components.catalog.metrics import EngineMetrics
from components.platform import Manifest, Monitoring

DASHBOARD_UID = "llm-serving"
WINDOW = "$__rate_interval"
GPU_SERIES = ("DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED")
PANEL_WIDTH, PANEL_HEIGHT = 12, 8


def _quantiles(histogram: str, where: str) -> list[tuple[str, str]]:
    return [
        (
            f"p{q}",
            f"histogram_quantile(0.{q}, sum by (le) (rate({histogram}_bucket{{{where}}}[{WINDOW}])))",
        )
        for q in (50, 95, 99)
    ]


def _ratio(numerator: str, denominator: str, where: str) -> str:
    return f"sum(rate({numerator}{{{where}}}[{WINDOW}])) / sum(rate({denominator}{{{where}}}[{WINDOW}]))"


def panels(metrics: EngineMetrics, namespace: str, gpu: bool) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(title, unit, [(legend, expr)]) per panel."""
    where = f'namespace="{namespace}"'
    found = [
        (
            "Requests running and waiting",
            "short",
            [("running", f"sum({metrics.running}{{{where}}})"), ("waiting", f"sum({metrics.waiting}{{{where}}})")],
        ),
        ("KV cache usage", "percentunit", [("max over engines", f"max({metrics.kv_cache_usage}{{{where}}})")]),
        ("Time to first token", "s", _quantiles(metrics.ttft, where)),
        ("Inter-token latency", "s", _quantiles(metrics.inter_token_latency, where)),
        ("Time per output token (per request)", "s", _quantiles(metrics.time_per_output_token, where)),
        ("End-to-end request latency", "s", _quantiles(metrics.e2e_latency, where)),
        ("Queue time", "s", _quantiles(metrics.queue_time, where)),
        (
            "Generated tokens per second",
            "short",
            [("tokens/s", f"sum(rate({metrics.generation_tokens}{{{where}}}[{WINDOW}]))")],
        ),
        (
            "Preemptions per second",
            "short",
            [("preemptions/s", f"sum(rate({metrics.preemptions}{{{where}}}[{WINDOW}]))")],
        ),
        (
            "Prefix cache hit rate",
            "percentunit",
            [("hits / queries", _ratio(metrics.prefix_cache_hits, metrics.prefix_cache_queries, where))],
        ),
        (
            "Speculative decoding acceptance",
            "percentunit",
            [
                (
                    "accepted / draft tokens",
                    _ratio(metrics.spec_decode_accepted_tokens, metrics.spec_decode_draft_tokens, where),
                )
            ],
        ),
    ]
    if gpu:
        found += [
            ("GPU utilisation", "percent", [("{{Hostname}} GPU {{gpu}}", "DCGM_FI_DEV_GPU_UTIL")]),
            ("GPU memory used", "decmbytes", [("{{Hostname}} GPU {{gpu}}", "DCGM_FI_DEV_FB_USED")]),
        ]
    return found


def serving_dashboard(metrics: EngineMetrics, namespace: str, gpu: bool) -> dict[str, Any]:
    """A Grafana dashboard (schema of Grafana's dashboard JSON model) over a Prometheus datasource."""
    datasource = {"type": "prometheus", "uid": "${datasource}"}
    built = []
    for i, (title, unit, targets) in enumerate(panels(metrics, namespace, gpu)):
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
