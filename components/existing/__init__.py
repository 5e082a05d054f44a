"""The existing-cluster platform: a Kubernetes cluster you already have (see platform.py)."""

from components.existing.platform import ExistingPlatform, ExistingPlatformArgs

__all__ = ["ExistingPlatform", "ExistingPlatformArgs"]
