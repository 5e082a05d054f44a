"""Metric names the engines export, from the pinned sources, and how Ray Serve LLM renames them.

vLLM 0.33.0 (wheel ``vllm-0.33.0``): ``vllm/v1/metrics/loggers.py`` PrometheusStatLogger
(gauges ``vllm:num_requests_running`` L528, ``vllm:num_requests_waiting`` L538,
``vllm:kv_cache_usage_perc`` L620; counters ``vllm:prefix_cache_queries`` L662,
``vllm:prefix_cache_hits`` L673, ``vllm:num_preemptions`` L739, ``vllm:generation_tokens``
L799; histograms ``vllm:time_to_first_token_seconds`` L931,
``vllm:inter_token_latency_seconds`` L941, ``vllm:request_time_per_output_token_seconds`` L951,
``vllm:e2e_request_latency_seconds`` L961, ``vllm:request_queue_time_seconds`` L971) and
``vllm/v1/spec_decode/metrics.py`` (counters ``vllm:spec_decode_num_draft_tokens`` L230,
``vllm:spec_decode_num_accepted_tokens`` L231). prometheus_client exposes a counter ``X`` as
``X_total`` and a histogram as ``X_bucket``/``_sum``/``_count``.

Ray Serve LLM (Ray 2.52, ``ray/llm/_internal/serve/engines/vllm/vllm_engine.py`` L324-329)
runs vLLM with ``vllm.v1.metrics.ray_wrappers.RayPrometheusStatLogger``, which records the
same metrics through ``ray.util.metrics`` under a sanitised name (every character outside
``[a-zA-Z0-9_]`` becomes ``_``: ``_get_sanitized_opentelemetry_name``, ray_wrappers.py
L71-81), and Ray's metrics agent exports them with the ``ray`` namespace prefix
(``ray/dashboard/modules/reporter/reporter_agent.py`` L450, ``ray/_private/metrics_agent.py``
L373): ``vllm:kv_cache_usage_perc`` becomes ``ray_vllm_kv_cache_usage_perc``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from types import MappingProxyType


@dataclass(frozen=True)
class EngineMetrics:
    """The series dashboards and alerts use, as the engine's scrape endpoint names them.

    Counters carry their exported ``_total`` suffix; histograms are base names (append
    ``_bucket``, ``_sum``, ``_count``).
    """

    running: str
    waiting: str
    kv_cache_usage: str  # 0..1
    ttft: str  # histogram, seconds
    inter_token_latency: str  # histogram, seconds
    time_per_output_token: str  # histogram, seconds (TPOT per request)
    e2e_latency: str  # histogram, seconds
    queue_time: str  # histogram, seconds
    generation_tokens: str  # counter
    preemptions: str  # counter
    prefix_cache_queries: str  # counter (tokens)
    prefix_cache_hits: str  # counter (tokens)
    spec_decode_draft_tokens: str  # counter
    spec_decode_accepted_tokens: str  # counter


VLLM_METRICS = EngineMetrics(
    running="vllm:num_requests_running",
    waiting="vllm:num_requests_waiting",
    kv_cache_usage="vllm:kv_cache_usage_perc",
    ttft="vllm:time_to_first_token_seconds",
    inter_token_latency="vllm:inter_token_latency_seconds",
    time_per_output_token="vllm:request_time_per_output_token_seconds",
    e2e_latency="vllm:e2e_request_latency_seconds",
    queue_time="vllm:request_queue_time_seconds",
    generation_tokens="vllm:generation_tokens_total",
    preemptions="vllm:num_preemptions_total",
    prefix_cache_queries="vllm:prefix_cache_queries_total",
    prefix_cache_hits="vllm:prefix_cache_hits_total",
    spec_decode_draft_tokens="vllm:spec_decode_num_draft_tokens_total",
    spec_decode_accepted_tokens="vllm:spec_decode_num_accepted_tokens_total",
)


def ray_name(vllm_name: str) -> str:
    """The name Ray's metrics agent exports a vLLM metric under."""
    return "ray_" + re.sub(r"[^a-zA-Z0-9_]", "_", vllm_name)


RAY_LLM_METRICS = replace(
    VLLM_METRICS, **{f.name: ray_name(getattr(VLLM_METRICS, f.name)) for f in fields(VLLM_METRICS)}
)

# By ``serving.engine``.
ENGINE_METRICS: Mapping[str, EngineMetrics] = MappingProxyType({"vllm": VLLM_METRICS, "rayservice": RAY_LLM_METRICS})
