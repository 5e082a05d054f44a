"""Workloads: what runs on a Platform (engines, Open WebUI, jobs). No cloud SDK here."""

from components.workloads.serving import Serving, ServingArgs

__all__ = ["Serving", "ServingArgs"]
