"""The optional notification channel: Alertmanager's configuration from config and a secret URL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import yaml

from components import notifications
from components.aws.monitoring import ALERTMANAGER_SECRET
from components.config.monitoring import NotificationsConfig
from conftest import assert_valid
from tools.offline import SECRET_PLACEHOLDER, StackRun

URL = {"llm-serving:alertWebhookUrl": {"secure": "AAABAHdlYmhvb2s="}}
SLACK = {"llm-serving:monitoring": {"notifications": {"receiver": "slack", "slackChannel": "#llm-alerts"}}}
WEBHOOK = {"llm-serving:monitoring": {"notifications": {"receiver": "webhook", "sendResolved": False}}}


def _secret(run: StackRun, name: str, namespace: str) -> tuple[dict[str, Any], set[str]]:
    for r in run.of_type("kubernetes:core/v1:Secret"):
        if r.inputs["metadata"]["name"] == name and r.inputs["metadata"]["namespace"] == namespace:
            return r.inputs, r.secret_paths
    raise AssertionError(f"no Secret {namespace}/{name}")


def _stack_values(run: StackRun) -> dict[str, Any]:
    release = next(
        r for r in run.of_type("kubernetes:helm.sh/v3:Release") if r.inputs["chart"] == "kube-prometheus-stack"
    )
    values: dict[str, Any] = release.inputs["values"]
    return values


def test_eks_slack_receiver_from_a_secret_url(run_with: Callable[..., StackRun]) -> None:
    run = run_with("eks", {**SLACK, **URL})
    assert run.error is None, run.error
    inputs, secret_paths = _secret(run, ALERTMANAGER_SECRET, "monitoring")
    assert_valid([{"apiVersion": "v1", "kind": "Secret", **inputs}])
    # The rendered file, URL inside, is a Pulumi secret: encrypted in the state.
    assert "stringData" in secret_paths  # the typed Secret marks the whole map secret
    config = yaml.safe_load(inputs["stringData"]["alertmanager.yaml"])
    assert config["route"]["receiver"] == "serving-team"
    (receiver,) = config["receivers"]
    assert receiver["slack_configs"] == [
        {"api_url": SECRET_PLACEHOLDER, "send_resolved": True, "channel": "#llm-alerts"}
    ]
    spec = _stack_values(run)["alertmanager"]["alertmanagerSpec"]
    assert spec["useExistingSecret"] is True
    assert spec["configSecret"] == ALERTMANAGER_SECRET


def test_eks_without_notifications_keeps_the_charts_config(eks: StackRun) -> None:
    spec = _stack_values(eks)["alertmanager"]["alertmanagerSpec"]
    assert "useExistingSecret" not in spec and "configSecret" not in spec
    assert not [o for o in eks.kubernetes_objects() if o["metadata"].get("name") == ALERTMANAGER_SECRET]


def test_gke_managed_alertmanager_reads_the_gmp_public_secret(run_with: Callable[..., StackRun]) -> None:
    run = run_with("a4high", {**WEBHOOK, **URL})
    assert run.error is None, run.error
    inputs, secret_paths = _secret(run, "alertmanager", "gmp-public")
    assert_valid([{"apiVersion": "v1", "kind": "Secret", **inputs}])
    assert "stringData" in secret_paths  # the typed Secret marks the whole map secret
    config = yaml.safe_load(inputs["stringData"]["alertmanager.yaml"])
    (receiver,) = config["receivers"]
    assert receiver == {
        "name": "serving-team",
        "webhook_configs": [{"url": SECRET_PLACEHOLDER, "send_resolved": False}],
    }


def test_gke_without_notifications_has_no_alertmanager_secret(a4high: StackRun) -> None:
    assert not [o for o in a4high.kubernetes_objects() if o["metadata"].get("namespace") == "gmp-public"]


def test_config_routes_every_alert_to_the_receiver() -> None:
    config = notifications.alertmanager_config(NotificationsConfig(receiver="webhook"), "https://hooks.example/x")
    assert config["route"]["receiver"] == config["receivers"][0]["name"]
    assert set(config["route"]) == {"receiver", "group_by", "group_wait", "group_interval", "repeat_interval"}


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        pytest.param(SLACK, "llm-serving:monitoring.notifications: receiver 'slack' needs its URL", id="no-url"),
        pytest.param(URL, "llm-serving:alertWebhookUrl: is set but nothing sends to it", id="url-unused"),
        pytest.param(
            {**SLACK, "llm-serving:alertWebhookUrl": "https://hooks.slack.com/x"},
            "llm-serving:alertWebhookUrl: is stored in plain text",
            id="url-plain",
        ),
        pytest.param(
            {"llm-serving:monitoring": {"notifications": {"receiver": "webhook", "slackChannel": "#x"}}, **URL},
            "slackChannel applies to receiver 'slack' only",
            id="channel-without-slack",
        ),
        pytest.param(
            {"llm-serving:monitoring": {"enabled": False, "notifications": {"receiver": "webhook"}}, **URL},
            "notifications need monitoring.enabled",
            id="monitoring-off",
        ),
        pytest.param(
            {"llm-serving:monitoring": {"notifications": {"receiver": "slack", "slackChannel": "alerts"}}, **URL},
            "llm-serving:monitoring.notifications.slackChannel",
            id="channel-pattern",
        ),
        pytest.param(
            {"llm-serving:monitoring": {"notifications": {"receiver": "email"}}, **URL},
            "llm-serving:monitoring.notifications.receiver",
            id="receiver-unknown",
        ),
    ],
)
def test_bad_notification_config_is_refused_before_any_resource(
    run_with: Callable[..., StackRun], changes: dict[str, Any], says: str
) -> None:
    run = run_with("eks", changes)
    assert run.error is not None
    assert says in str(run.error)
    assert not [r for r in run.resources if r.type.startswith("kubernetes:")]
