"""The Alertmanager configuration that sends the serving team's alerts to one receiver.

Both clusters run an Alertmanager that reads an ``alertmanager.yaml`` from a Secret (EKS:
the prometheus-operator's, GKE: Managed Service for Prometheus's managed Alertmanager);
this module renders that file. The receiver's URL is a credential: it arrives as a Pulumi
secret and the rendered file stays one (``Output.apply`` keeps secretness), so neither the
URL nor the file is ever in the state in plain text.

Keys from Alertmanager's configuration reference
(https://prometheus.io/docs/alerting/latest/configuration/: ``route``, ``receivers``,
``slack_configs`` with ``api_url``/``channel``/``send_resolved``, ``webhook_configs`` with
``url``/``send_resolved``).
"""

from __future__ import annotations

from typing import Any

import pulumi
import yaml

from components.config.monitoring import NotificationsConfig

RECEIVER = "serving-team"
CONFIG_KEY = "alertmanager.yaml"  # the key both operators read
# Grouping and pacing (our choice): one message per alert and namespace, the first after
# 30 s so related alerts arrive together, a reminder every 4 h while it keeps firing.
ROUTE_TIMING = {"group_wait": "30s", "group_interval": "5m", "repeat_interval": "4h"}


def alertmanager_config(notifications: NotificationsConfig, url: str) -> dict[str, Any]:
    """The configuration as a dict: every alert goes to the one receiver."""
    if notifications.receiver == "slack":
        slack: dict[str, Any] = {"api_url": url, "send_resolved": notifications.send_resolved}
        if notifications.slack_channel is not None:
            slack["channel"] = notifications.slack_channel
        receiver: dict[str, Any] = {"name": RECEIVER, "slack_configs": [slack]}
    else:
        receiver = {"name": RECEIVER, "webhook_configs": [{"url": url, "send_resolved": notifications.send_resolved}]}
    return {
        "route": {"receiver": RECEIVER, "group_by": ["alertname", "namespace"], **ROUTE_TIMING},
        "receivers": [receiver],
    }


def rendered(notifications: NotificationsConfig, url: pulumi.Output[str]) -> pulumi.Output[str]:
    """``alertmanager.yaml`` for ``url``, as a Pulumi secret."""
    return url.apply(
        lambda plain: pulumi.Output.secret(yaml.safe_dump(alertmanager_config(notifications, plain), sort_keys=False))
    )
