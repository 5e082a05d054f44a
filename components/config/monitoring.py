"""``llm-serving:monitoring``: engine scraping and the serving team's alerts, on or off with one key."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from components.config.base import Strict

PROM_DURATION = r"^[1-9][0-9]*(s|m|h)$"  # one Prometheus duration unit: 30s, 5m, 1h
SLACK_CHANNEL = r"^[#@][a-z0-9._-]{1,80}$"  # Slack's channel names: lowercase, at most 80


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


class NotificationsConfig(Strict):
    """Where the cluster's Alertmanager sends the alerts: one receiver for the serving team.

    The address (a Slack incoming-webhook URL, or any URL that takes Alertmanager's webhook
    JSON) is a credential, so it is not here but in the secret ``llm-serving:alertWebhookUrl``.
    """

    receiver: Literal["slack", "webhook"]
    # Slack only: the channel to post to (an incoming webhook posts to its own by default).
    slack_channel: Annotated[str, Field(pattern=SLACK_CHANNEL)] | None = None
    # Also tell the receiver when an alert stops firing.
    send_resolved: bool = True

    @model_validator(mode="after")
    def _channel_only_for_slack(self) -> NotificationsConfig:
        if self.slack_channel is not None and self.receiver != "slack":
            raise ValueError(f"slackChannel applies to receiver 'slack' only, not {self.receiver!r}")
        return self


class MonitoringConfig(Strict):
    """``enabled: false`` turns off every scrape object and alert rule the stack creates."""

    enabled: bool = True
    scrape_interval: Annotated[str, Field(pattern=PROM_DURATION)] = "30s"
    alerts: AlertsConfig = AlertsConfig()
    # Optional: without it alerts show in Alertmanager (and Cloud Monitoring on GKE) only.
    notifications: NotificationsConfig | None = None

    @model_validator(mode="after")
    def _notifications_need_alerts(self) -> MonitoringConfig:
        if self.notifications is not None and not (self.enabled and self.alerts.enabled):
            raise ValueError("notifications need monitoring.enabled and monitoring.alerts.enabled to be true")
        return self
