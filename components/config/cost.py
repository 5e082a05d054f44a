"""``llm-serving:cost``: prices the catalog does not have, or that you pay instead of list price."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from components.config.base import Strict

# A node-hour above this is a typo (the dearest 8-GPU machines list near $120/h).
MAX_NODE_HOURLY_USD = 10_000


class CostConfig(Strict):
    """``nodeHourlyUsd``: USD per node-hour by machine type, e.g. ``{a4-highgpu-8g: 80.0}``:
    what a reservation, committed-use discount, Savings Plan or negotiated rate makes a node
    cost, or a list price the catalog does not record (components/catalog/prices.py). It
    overrides the catalog for every capacity type of that machine."""

    node_hourly_usd: dict[str, Annotated[float, Field(gt=0, le=MAX_NODE_HOURLY_USD)]] = {}
