"""Google Cloud platform: GKE with an A4 High node pool on RoCE networking (see platform.py)."""

from components.gcp.platform import GcpPlatform, GcpPlatformArgs

__all__ = ["GcpPlatform", "GcpPlatformArgs"]
