"""Secrets of the serving layer: generated keys and the Hugging Face token.

Values exist only as Pulumi secrets (encrypted in state) and Kubernetes Secrets;
manifests reference them by name and key, never by value.
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_random as random

from components.platform import Manifest
from components.workloads.common import metadata

API_KEY_LENGTH = 48  # letters and digits only: safe in HTTP headers and shell words
WEBUI_SECRET_KEY_LENGTH = 64
ADMIN_PASSWORD_LENGTH = 24


def secret(name: str, namespace: str, component: str, data: Mapping[str, pulumi.Input[str]]) -> Manifest:
    """An Opaque Secret whose values are given as strings (``stringData``)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(name, namespace, component),
        "type": "Opaque",
        "stringData": dict(data),
    }


def generated_password(name: str, length: int, parent: pulumi.Resource, special: bool = False) -> pulumi.Output[str]:
    """A random value generated once and kept in state (stable across updates)."""
    password = random.RandomPassword(name, length=length, special=special, opts=pulumi.ResourceOptions(parent=parent))
    return password.result
