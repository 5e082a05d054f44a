"""The schema checker itself refuses what the API server would refuse."""

from __future__ import annotations

import copy
from typing import Any

from tools import kubeschema

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "x"},
    "spec": {
        "selector": {"matchLabels": {"a": "b"}},
        "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}},
    },
}

NETWORK: dict[str, Any] = {
    "apiVersion": "networking.gke.io/v1",
    "kind": "Network",
    "metadata": {"name": "rdma-0"},
    "spec": {
        "type": "Device",
        "parametersRef": {"group": "networking.gke.io", "kind": "GKENetworkParamSet", "name": "rdma-0"},
    },
}


def test_valid_objects_pass() -> None:
    assert kubeschema.validate(DEPLOYMENT) == []
    assert kubeschema.validate(NETWORK) == []


def test_unknown_field_in_a_core_kind_fails() -> None:
    bad = copy.deepcopy(DEPLOYMENT)
    bad["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    (problem,) = kubeschema.validate(bad)
    assert problem.startswith("Deployment/x: spec/template/spec/containers/0:")
    assert "imagePullPolicyy" in problem


def test_wrong_type_in_a_core_kind_fails() -> None:
    bad = copy.deepcopy(DEPLOYMENT)
    bad["spec"]["replicas"] = "one"
    assert kubeschema.validate(bad)


def test_unknown_field_in_a_custom_resource_fails() -> None:
    bad = copy.deepcopy(NETWORK)
    bad["spec"]["parametersRef"]["namespaec"] = "default"
    problems = kubeschema.validate(bad)
    assert problems and "namespaec" in problems[0]
    assert problems[0].startswith("Network/rdma-0: spec/parametersRef:")


def test_unknown_top_level_field_in_a_custom_resource_fails() -> None:
    bad = {**NETWORK, "status": {"x": 1}, "specs": {}}
    assert any("specs" in p for p in kubeschema.validate(bad))


def test_enum_of_a_custom_resource_is_checked() -> None:
    bad = copy.deepcopy(NETWORK)
    bad["spec"]["type"] = "Cable"
    assert kubeschema.validate(bad)


def test_unknown_kind_is_reported_not_ignored() -> None:
    problems = kubeschema.validate({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})
    assert problems == ["Widget/w: no schema for example.com/v1 Widget (neither core nor in crds/)"]
