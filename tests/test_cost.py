"""Cost: the price catalog is pinned, the estimate counts the right nodes, and the stack exports it.

Pure tests on parsed stack files (tests/test_config.py ``raw``), plus one recorded run.
"""

from __future__ import annotations

import pytest
from test_config import only_problem, raw

from components.catalog.prices import CLUSTER_FEES, NODE_PRICES, node_price
from components.config import parse
from components.cost import estimate
from tools.offline import StackRun


def test_recorded_prices_are_pinned_with_source_and_date() -> None:
    assert {k: p.usd_per_hour for k, p in NODE_PRICES.items()} == {
        ("g5.xlarge", "us-east-1", "on-demand"): 1.006,
        ("p4d.24xlarge", "us-east-1", "on-demand"): 21.957642,
        ("p4de.24xlarge", "us-east-1", "on-demand"): 27.44705,
        ("p5.48xlarge", "us-east-1", "on-demand"): 55.04,
    }
    assert {k: f.usd_per_hour for k, f in CLUSTER_FEES.items()} == {
        "gke": 0.10,
        "eks-standard": 0.10,
        "eks-extended": 0.60,
    }
    sourced = [(p.source, p.as_of) for p in NODE_PRICES.values()] + [(f.source, f.as_of) for f in CLUSTER_FEES.values()]
    for source, as_of in sourced:
        assert source.startswith("https://") and len(as_of) == 10


def test_no_price_is_invented_for_a_region_or_capacity_not_recorded() -> None:
    assert node_price("p5.48xlarge", "us-west-2", "on-demand") is None
    assert node_price("p5.48xlarge", "us-east-1", "spot") is None  # a market price, never a catalog figure


def test_gke_reservation_is_unpriced_until_config_gives_its_rate() -> None:
    unpriced = estimate(parse(raw("a4high")))
    assert unpriced.low is None and unpriced.high is None
    assert "set llm-serving:cost.nodeHourlyUsd" in unpriced.summary()

    priced = estimate(parse(raw("a4high", {"cost": {"nodeHourlyUsd": {"a4-highgpu-8g": 80.0}}})))
    assert (priced.low, priced.high) == (80.1, 80.1)  # one node + the GKE fee
    assert priced.summary().startswith("$80.10/h: 1 GPU node(s)")


def test_gke_flex_start_counts_the_most_nodes_it_may_add() -> None:
    config = parse(
        raw(
            "a4high",
            {
                "platform": {"gpuPool": {"provisioning": "flex-start", "reservation": None, "nodeCount": 2}},
                "cost": {"nodeHourlyUsd": {"a4-highgpu-8g": 50.0}},
            },
        )
    )
    found = estimate(config)
    assert found.nodes == 2 and found.high == 100.1
    assert "the most flex-start may add" in found.summary()


def test_eks_range_runs_from_the_cheapest_to_the_dearest_eligible_type() -> None:
    prices = {"g5.2xlarge": 1.2, "g5.4xlarge": 1.6, "g5.8xlarge": 2.4}
    found = estimate(parse(raw("eks", {"cost": {"nodeHourlyUsd": prices}})))
    assert (found.low, found.high) == (1.3, 2.5)
    assert found.summary().startswith("$1.30..$2.50/h")
    assert found.output()["unpriced"] == []


def test_eks_names_what_is_unpriced_and_ranges_over_the_rest() -> None:
    found = estimate(parse(raw("eks", {"cost": {"nodeHourlyUsd": {"g5.4xlarge": 1.6}}})))
    assert (found.low, found.high) == (1.7, 1.7)
    assert found.output()["unpriced"] == ["g5.2xlarge on-demand", "g5.8xlarge on-demand"]


def test_eks_catalog_price_is_used_in_its_region() -> None:
    config = parse(
        raw(
            "eks",
            {
                "platform": {
                    "region": "us-east-1",
                    "availabilityZones": ["us-east-1a", "us-east-1b"],
                    "gpuNodePools": [{"name": "g5", "instanceFamilies": ["g5"], "instanceSizes": ["xlarge"]}],
                },
            },
        )
    )
    found = estimate(config)
    assert found.options[0].usd_per_hour == 1.006 and found.high == 1.106


def test_price_for_a_machine_the_stack_does_not_run_is_refused() -> None:
    message = only_problem("a4high", {"cost": {"nodeHourlyUsd": {"p5.48xlarge": 55.0}}})
    assert "llm-serving:cost.nodeHourlyUsd.p5.48xlarge" in message
    assert "prices may be given for a4-highgpu-8g" in message


@pytest.mark.parametrize("price", [0, -1.0, 1e6, "80"])
def test_price_must_be_a_positive_plausible_number(price: object) -> None:
    message = only_problem("a4high", {"cost": {"nodeHourlyUsd": {"a4-highgpu-8g": price}}})
    assert "llm-serving:cost.nodeHourlyUsd.a4-highgpu-8g" in message


def test_stack_exports_its_cost(eks: StackRun) -> None:
    output = eks.outputs["gpu_cost_per_hour"]
    assert output["usd_per_hour_low"] is None and "g5.2xlarge on-demand" in output["unpriced"]


def test_no_engine_on_eks_costs_the_cluster_fee_only() -> None:
    found = estimate(parse(raw("eks", {"serving": {"engine": "none"}})))
    assert (found.nodes, found.low, found.high) == (0, 0.1, 0.1)
