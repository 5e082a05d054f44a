"""Google Cloud platform: GKE with an A4 High node pool on RoCE networking."""
