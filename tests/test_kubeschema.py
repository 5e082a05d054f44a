"""The schema checker itself refuses what the API server would refuse."""

from __future__ import annotations

import copy
from typing import Any

import kubernetes_validate

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


def test_core_kinds_get_the_answer_kubernetes_validate_gives() -> None:
    """The validator is built once per kind (the library re-reads 1.8 MB of definitions on
    every call), and still reports what ``kubernetes_validate.validate`` reports: its first
    error, also when an object has several."""
    two_errors = copy.deepcopy(DEPLOYMENT)
    two_errors["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    two_errors["spec"]["replicas"] = "one"
    two_errors["extra"] = 1
    role: dict[str, Any] = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole"}
    bad_role = {**role, "metadata": {"name": "r"}, "rules": [{"verbs": "get"}], "bogus": 1}
    for obj, valid in ((DEPLOYMENT, True), (two_errors, False), (bad_role, False)):
        expected: list[str] = []
        try:
            kubernetes_validate.validate(obj, kubeschema.KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = f"{obj['kind']}/{obj['metadata']['name']}"
            expected = [f"{where}: {'/'.join(map(str, error.path)) or '(root)'}: {error.message}"]
        assert kubeschema.validate(obj) == expected
        assert not expected if valid else expected
    before = kubeschema._core_validator.cache_info()
    kubeschema.validate(copy.deepcopy(DEPLOYMENT))
    after = kubeschema._core_validator.cache_info()
    assert (after.hits, after.misses) == (before.hits + 1, before.misses)
