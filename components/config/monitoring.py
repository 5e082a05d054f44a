"""``llm-serving:monitoring``: engine scraping and the serving team's alerts, on or off with one key."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from components.config.base import Strict

PROM_DURATION = r"^[1-9][0-9]*(s|m|h)$"  # one Prometheus duration unit: 30s, 5m, 1h


class AlertsConfig(Strict):
    """Thresholds of the alert rules (components/workloads/monitoring.py)."""

    enabled: bool = True
    # Time to first token p95 (seconds) above which the endpoint is slow. A reasoning model's
    # first token comes after prefill only, so this is mostly queueing plus prefill.
    ttft_p95_seconds: Annotated[float, Field(gt=0, le=600)] = 10.0
    # Fraction of the KV cache in use above which requests start to queue or be preempted.
    kv_cache_usage: Annotated[float, Field(gt=0.5, le=1.0)] = 0.9
    # How long a condition must hold before it fires.
    for_duration: Annotated[str, Field(pattern=PROM_DURATION)] = "10m"


class MonitoringConfig(Strict):
    """``enabled: false`` turns off every scrape object and alert rule the stack creates."""

    enabled: bool = True
    scrape_interval: Annotated[str, Field(pattern=PROM_DURATION)] = "30s"
    alerts: AlertsConfig = AlertsConfig()
