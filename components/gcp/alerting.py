"""Notifications on GKE: the managed Alertmanager of Managed Service for Prometheus.

Managed collection runs the rule evaluator (which evaluates the serving layer's Rules) and
an Alertmanager in ``gmp-system``; the operator copies that Alertmanager's configuration
from the Secret ``alertmanager``, key ``alertmanager.yaml``, in the public namespace
``gmp-public``, and runs a no-op configuration while there is none (GKE docs "Configure a
managed AlertManager"; GoogleCloudPlatform/prometheus-engine pkg/operator/operator_config.go
AlertmanagerPublicSecretName, AlertmanagerPublicSecretKey, ensureAlertmanagerConfigSecret).
The default names need no OperatorConfig.
"""

from __future__ import annotations

import pulumi

from components import notifications
from components.platform import Manifest

GMP_PUBLIC_NAMESPACE = "gmp-public"
MANAGED_ALERTMANAGER_SECRET = "alertmanager"


def managed_alertmanager_secret(config_yaml: pulumi.Input[str]) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": MANAGED_ALERTMANAGER_SECRET, "namespace": GMP_PUBLIC_NAMESPACE},
        "type": "Opaque",
        "stringData": {notifications.CONFIG_KEY: config_yaml},
    }
