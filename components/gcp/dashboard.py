"""A Cloud Monitoring dashboard from generic PromQL panels (the Platform's ``publish_dashboard``).

GKE users find their cluster's metrics in Cloud Monitoring, where Managed Service for
Prometheus stores them and GKE's own DCGM and workload dashboards already live, so the
serving dashboard goes there rather than into a Grafana the project would have to run,
secure and upgrade. Charts query with PromQL (``timeSeriesQuery.prometheusQuery``); the
panels come from the serving layer, which knows the engine, so this module never does.
Dashboard JSON: https://cloud.google.com/monitoring/api/ref_v3/rest/v1/projects.dashboards
(MosaicLayout, XyChart, TimeSeriesQuery.prometheusQuery).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import pulumi
import pulumi_gcp as gcp

from components.platform import DashboardPanel

COLUMNS = 48  # the mosaic grid's width
TILE_WIDTH, TILE_HEIGHT = 24, 16


def dashboard_json(title: str, panels: Sequence[DashboardPanel]) -> dict[str, Any]:
    tiles = []
    for i, panel in enumerate(panels):
        tiles.append(
            {
                "xPos": (i % 2) * TILE_WIDTH,
                "yPos": (i // 2) * TILE_HEIGHT,
                "width": TILE_WIDTH,
                "height": TILE_HEIGHT,
                "widget": {
                    "title": panel.title,
                    "xyChart": {
                        "dataSets": [
                            {"timeSeriesQuery": {"prometheusQuery": expr}, "plotType": "LINE", "legendTemplate": legend}
                            for legend, expr in panel.queries
                        ],
                    },
                },
            }
        )
    return {"displayName": title, "mosaicLayout": {"columns": COLUMNS, "tiles": tiles}}


def publisher(
    project: str, opts: pulumi.ResourceOptions
) -> Callable[[str, str, Sequence[DashboardPanel]], pulumi.Resource]:
    """``Monitoring.publish_dashboard`` for this project."""

    def publish(name: str, title: str, panels: Sequence[DashboardPanel]) -> pulumi.Resource:
        return gcp.monitoring.Dashboard(
            name,
            gcp.monitoring.DashboardArgs(project=project, dashboard_json=json.dumps(dashboard_json(title, panels))),
            opts,
        )

    return publish
