"""What the stack's GPU nodes and control plane cost per hour (pure: config and catalog in, figures out).

The plan prints it and the stack exports it (``gpu_cost_per_hour``). Where Karpenter may pick
among several instance types and capacity types, the estimate is the range from the
cheapest to the dearest eligible choice. A node type with neither a catalog list price nor a
price in ``llm-serving:cost.nodeHourlyUsd`` is named as unpriced rather than guessed.
Storage, load balancers, NAT and network egress are not included.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from components import catalog
from components.catalog.prices import CLUSTER_FEES, ClusterFee, node_price
from components.config import AwsPlatformConfig, ExistingPlatformConfig, GcpPlatformConfig
from components.config.stack import StackConfig

COST_KEY = "llm-serving:cost.nodeHourlyUsd"


@dataclass(frozen=True)
class NodeOption:
    """One machine and capacity type a GPU node of the stack may be."""

    machine: str
    capacity: str  # on-demand, spot, flex-start, reservation (GKE), reserved (EKS)
    usd_per_hour: float | None
    source: str  # where the price came from, or why there is none


@dataclass(frozen=True)
class CostEstimate:
    nodes: int  # GPU nodes the stack runs (with flex-start: at most)
    options: tuple[NodeOption, ...]  # what each of them may be
    cluster_fee: ClusterFee
    cluster_fee_name: str
    nodes_note: str  # how the node count was found

    @property
    def priced(self) -> tuple[NodeOption, ...]:
        return tuple(o for o in self.options if o.usd_per_hour is not None)

    @property
    def unpriced(self) -> tuple[NodeOption, ...]:
        return tuple(o for o in self.options if o.usd_per_hour is None)

    def _total(self, pick: Callable[[list[float]], float]) -> float | None:
        """Nodes at the price ``pick`` chooses, plus the fee; None when no option is priced."""
        prices = [o.usd_per_hour for o in self.priced if o.usd_per_hour is not None]
        if not self.nodes:
            return self.cluster_fee.usd_per_hour
        if not prices:
            return None
        return round(self.nodes * pick(prices) + self.cluster_fee.usd_per_hour, 4)

    @property
    def low(self) -> float | None:
        """USD per hour with the cheapest eligible node type; None when no option is priced."""
        return self._total(min)

    @property
    def high(self) -> float | None:
        """USD per hour with the dearest eligible node type."""
        return self._total(max)

    def summary(self) -> str:
        """One line: the figure or range, what it covers, and what is missing."""
        if self.low is None or self.high is None:
            figure = "unknown"
        elif self.low == self.high:
            figure = f"${self.low:,.2f}/h"
        else:
            figure = f"${self.low:,.2f}..${self.high:,.2f}/h"
        what = f"{self.nodes} GPU node(s) ({self.nodes_note}) + {self.cluster_fee_name} cluster fee"
        missing = ""
        if self.unpriced and self.nodes:
            names = ", ".join(sorted({o.machine for o in self.unpriced}))
            missing = f"; no price for {names} ({self.unpriced[0].source}): set {COST_KEY}"
        return f"{figure}: {what}{missing}"

    def lines(self) -> list[str]:
        """The plan's cost section: each option with its price and source, then the summary."""
        lines = []
        for o in self.options:
            price = "unpriced" if o.usd_per_hour is None else f"${o.usd_per_hour:,.4f}/node-hour"
            lines.append(f"  {o.machine} {o.capacity}: {price}  [{o.source}]")
        fee = self.cluster_fee
        lines.append(f"  {self.cluster_fee_name} cluster fee: ${fee.usd_per_hour:.2f}/h  [{fee.source}, {fee.as_of}]")
        lines.append(f"  total: {self.summary()}")
        return lines

    def output(self) -> dict[str, Any]:
        """The ``gpu_cost_per_hour`` stack output."""
        return {
            "usd_per_hour_low": self.low,
            "usd_per_hour_high": self.high,
            "summary": self.summary(),
            "unpriced": sorted({f"{o.machine} {o.capacity}" for o in self.unpriced}),
        }


def _option(config: StackConfig, machine: str, region: str, capacity: str) -> NodeOption:
    given = config.cost.node_hourly_usd.get(machine)
    if given is not None:
        return NodeOption(machine, capacity, given, f"{COST_KEY}.{machine}")
    listed = node_price(machine, region, capacity)
    if listed is not None:
        return NodeOption(machine, capacity, listed.usd_per_hour, f"{listed.source}, {listed.as_of}")
    why = (
        "a reservation's price is not a list price"
        if capacity in ("reservation", "reserved")
        else f"no list price recorded for {region}"
    )
    return NodeOption(machine, capacity, None, why)


def estimate(config: StackConfig) -> CostEstimate:
    platform = config.platform
    if isinstance(platform, GcpPlatformConfig):
        pool = platform.gpu_pool
        capacity = pool.provisioning
        note = f"pool {pool.name}" + (", the most flex-start may add" if capacity == "flex-start" else "")
        return CostEstimate(
            nodes=pool.node_count,
            options=(_option(config, pool.machine_type, platform.region, capacity),),
            cluster_fee=CLUSTER_FEES["gke"],
            cluster_fee_name="GKE",
            nodes_note=note,
        )
    if isinstance(platform, ExistingPlatformConfig):
        return _existing_estimate(config, platform)
    return _aws_estimate(config, platform)


# Your own cluster: no cluster fee, and no list price for your nodes (cost.nodeHourlyUsd
# takes one per GPU pool, e.g. amortised hardware, power and space).
OWN_CLUSTER_FEE = ClusterFee(0.0, "a cluster you already run: no managed control plane fee", "n/a")


def _existing_estimate(config: StackConfig, platform: ExistingPlatformConfig) -> CostEstimate:
    if config.serving.engine == "none":
        return CostEstimate(0, (), OWN_CLUSTER_FEE, "own", "no engine")
    pool = platform.pool(config.gpu_pool_name)
    given = config.cost.node_hourly_usd.get(pool.name)
    source = f"{COST_KEY}.{pool.name}" if given is not None else "your own nodes have no list price"
    option = NodeOption(pool.name, "owned", given, source)
    layout = config.topology.layout
    gpus = config.serving.replicas * layout.gpus
    nodes = max(config.serving.replicas * layout.nodes, -(-gpus // pool.gpus_per_node))
    note = f"{config.serving.replicas} replica(s) x {layout.gpus} GPUs in pool {pool.name}"
    return CostEstimate(nodes, (option,), OWN_CLUSTER_FEE, "own", note)


def _aws_estimate(config: StackConfig, platform: AwsPlatformConfig) -> CostEstimate:
    # Karpenter launches GPU nodes for pending pods only: the serving replicas' nodes.
    fee = CLUSTER_FEES["eks-standard"]
    if config.serving.engine == "none":
        return CostEstimate(0, (), fee, "EKS", "no engine: Karpenter launches none")
    layout = config.topology.layout
    pool = next(p for p in platform.gpu_node_pools if p.name == config.gpu_pool_name)
    per_node = -(-layout.gpus // layout.nodes)
    machines: list[catalog.MachineSpec] = [m for m in pool.machines if m.gpus >= per_node]
    options = tuple(
        _option(config, m.name, platform.region, capacity) for m in machines for capacity in pool.capacity_types
    )
    replicas = config.serving.replicas
    note = f"{replicas} replica(s) x {layout.nodes} node(s) in pool {pool.name}"
    return CostEstimate(replicas * layout.nodes, options, fee, "EKS", note)
