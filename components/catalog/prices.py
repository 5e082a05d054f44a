"""List prices of GPU machines and Kubernetes control planes, each with its source and date.

A price is recorded only where a public figure with a date was found; anything else is
left out on purpose, not guessed: the cost estimate then names the machine as unpriced
and asks for its price in config (``llm-serving:cost.nodeHourlyUsd``), which is also how
reservations, committed-use discounts, Savings Plans and negotiated rates are given.

Not recorded, and why:
- Google Cloud a4-highgpu-8g, a3-ultragpu-8g, a3-megagpu-8g (on-demand, Spot, flex-start):
  no dated public figure was found in this project's sources (searched again 2026-11-29).
  Google bills these machines as the sum of their GPUs, vCPUs, memory and bundled Local
  SSD (https://cloud.google.com/compute/docs/accelerator-optimized-machines, "Pricing and
  consumption options"); the Spot page (https://cloud.google.com/spot-vms/pricing) lists
  A3 High/Mega vCPU and memory Spot rates but the GPU and Local SSD parts were not found
  with them, and says Spot rates may change daily; the only whole-machine figure found,
  a3-megagpu-8g in europe-west4 in a third-party calculator's tests
  (Cyclenerd/google-cloud-pricing-cost-calculator t/test.sh), is from 2024-08-17 and
  marked there as not in Google's public price list. Google publishes the components
  on https://cloud.google.com/compute/gpus-pricing and
  https://cloud.google.com/compute/vm-instance-pricing.
- AWS Spot: a market price per Availability Zone that changes continuously
  (https://aws.amazon.com/ec2/spot/pricing/); a fixed catalog figure would be wrong.
- AWS g5 sizes other than xlarge, g6, g6e, p5e, p5en, p6-b200: no dated figure found
  (searched again 2026-11-29). Capacity Blocks and Savings Plans rates are not list
  prices either: give them in config.
Prices are USD per node-hour, Linux, shared tenancy, before tax.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

Capacity = Literal["on-demand", "spot", "flex-start"]


@dataclass(frozen=True)
class NodePrice:
    machine: str  # components.catalog.MACHINES key
    region: str
    capacity: Capacity
    usd_per_hour: float
    source: str
    as_of: str  # the date the figure was read (ISO 8601)


@dataclass(frozen=True)
class ClusterFee:
    usd_per_hour: float
    source: str
    as_of: str


_AWS_HYPERSCALERS = (
    "https://aws.amazon.com/ec2/pricing/on-demand/ as transcribed in datareceipts/data-receipts "
    "109-gpu-pricing/hyperscalers.json (retrieved 2026-11-09)"
)
_AWS_G5 = (
    "https://aws.amazon.com/ec2/pricing/on-demand/ as quoted in factualminds.com "
    "'Amazon EC2 On-Demand Pricing ... (2026)', us-east-1, June 2026"
)

_NODE_PRICES = (
    NodePrice("g5.xlarge", "us-east-1", "on-demand", 1.006, _AWS_G5, "2026-06-17"),
    NodePrice("p4d.24xlarge", "us-east-1", "on-demand", 21.957642, _AWS_HYPERSCALERS, "2026-11-09"),
    NodePrice("p4de.24xlarge", "us-east-1", "on-demand", 27.44705, _AWS_HYPERSCALERS, "2026-11-09"),
    NodePrice("p5.48xlarge", "us-east-1", "on-demand", 55.04, _AWS_HYPERSCALERS, "2026-11-09"),
)
NODE_PRICES: Mapping[tuple[str, str, str], NodePrice] = MappingProxyType(
    {(p.machine, p.region, p.capacity): p for p in _NODE_PRICES}
)


def node_price(machine: str, region: str, capacity: str) -> NodePrice | None:
    """The recorded list price of one node, or None where none is recorded."""
    return NODE_PRICES.get((machine, region, capacity))


# Control-plane fees per cluster-hour (the GKE free-tier credit is ignored: it is per billing
# account, not per stack, and never applies to regional clusters).
_GKE_FEE = (
    "https://cloud.google.com/kubernetes-engine/pricing ('Cluster management fee and free tier': $0.10 per "
    "cluster per hour, any mode, size or topology; a $74.40 monthly credit per billing account covers one zonal "
    "or Autopilot cluster)"
)
_EKS_FEE = (
    "https://aws.amazon.com/blogs/containers/amazon-eks-extended-support-for-kubernetes-versions-pricing/ "
    "($0.10 per cluster per hour in standard support, $0.60 in extended support from April 2024); "
    "cloudburn.io 'Amazon EKS Pricing' (official EKS pricing page rates as of March 2026)"
)
CLUSTER_FEES: Mapping[str, ClusterFee] = MappingProxyType(
    {
        "gke": ClusterFee(0.10, _GKE_FEE, "2026-03-13"),
        "eks-standard": ClusterFee(0.10, _EKS_FEE, "2026-03-13"),
        "eks-extended": ClusterFee(0.60, _EKS_FEE, "2026-03-13"),
    }
)
