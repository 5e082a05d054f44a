"""Every stack file, end to end on the mock engine: config -> platform -> serving -> outputs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from conftest import assert_valid, stack_run
from tools.offline import SECRET_PLACEHOLDER, StackRun, all_stacks, secret_values

STACKS = ["a4high", "a4high-2node", "eks", "eks-p5", "onprem"]
COMPONENT_TYPES = {
    "a4high": "llm-serving:gcp:",
    "a4high-2node": "llm-serving:gcp:",
    "eks": "llm-serving:aws:",
    "eks-p5": "llm-serving:aws:",
    "onprem": "llm-serving:existing:",
}


# Stack files whose engine is not in main yet, with what they wait for; their platform side
# and config are tested where named until they join STACKS.
PENDING: dict[str, str] = {}


def test_every_stack_file_is_tested() -> None:
    assert all_stacks() == sorted([*STACKS, *PENDING])


@pytest.mark.parametrize("stack", STACKS)
def test_stack_declares_platform_and_serving(stack: str) -> None:
    run = stack_run(stack)
    # A cloud stack builds its cluster; an existing cluster's stack only what runs in it.
    assert len(run.resources) > (15 if stack == "onprem" else 30)
    components = {r.type for r in run.resources if not r.custom}
    assert "llm-serving:workloads:Serving" in components
    assert any(t.startswith(COMPONENT_TYPES[stack]) for t in components)


@pytest.mark.parametrize("stack", STACKS)
def test_every_kubernetes_object_passes_strict_validation(stack: str) -> None:
    assert_valid(stack_run(stack).kubernetes_objects())


@pytest.mark.parametrize("stack", STACKS)
def test_every_resource_belongs_to_a_component(stack: str) -> None:
    """Nothing is declared loose at the top of the program: each resource is a child of
    one of our components (whose type token is llm-serving:<area>:<Name>)."""
    run = stack_run(stack)
    top = [r for r in run.resources if run.by_urn(r.parent) is None]
    assert top, "no top-level components"
    assert all(r.type.startswith("llm-serving:") for r in top), [(r.type, r.name) for r in top]


@pytest.mark.parametrize("stack", STACKS)
def test_kubernetes_objects_use_the_cluster_provider(stack: str) -> None:
    """No Kubernetes resource may fall back to the ambient kubeconfig."""
    run = stack_run(stack)
    kube = [r for r in run.resources if r.custom and r.type.startswith("kubernetes:")]
    assert kube
    # A provider reference is "<provider URN>::<id>"; the URN's third part is its type.
    assert all(r.provider.split("::")[2].endswith("pulumi:providers:kubernetes") for r in kube), [
        (r.type, r.name, r.provider) for r in kube
    ]


@pytest.mark.parametrize("stack", STACKS)
def test_no_secret_value_outside_secrets(stack: str) -> None:
    run = stack_run(stack)
    secrets = set(secret_values(run)) - {SECRET_PLACEHOLDER}
    assert secrets
    for r in run.resources:
        if r.type in ("kubernetes:core/v1:Secret", "random:index/randomPassword:RandomPassword"):
            continue
        text = repr(r.inputs)
        assert not [s for s in secrets if s in text], f"{r.type} {r.name} carries a secret value"


@pytest.mark.parametrize("stack", STACKS)
def test_outputs_say_where_everything_is(stack: str) -> None:
    run = stack_run(stack)
    keys = [
        "cluster_name",
        "cluster_location",
        "openai_base_url",
        "local_base_url",
        "served_model_name",
        "port_forward",
        "open_webui_admin_password",
    ]
    # A cluster the stack built: how to reach it, and its bucket and registry. An existing
    # cluster: how the stack reaches it, and what to check on it first.
    cloud = stack != "onprem"
    keys += ["credentials_command", "kubeconfig", "bucket"] if cloud else ["kubeconfig_source", "preflight"]
    # where images come from: the stack's own repository, or its Docker Hub mirror (a4high-2node)
    keys += ["image_mirror" if stack == "a4high-2node" else "registry_url"] if cloud else []
    for key in keys:
        assert key in run.outputs, key
    assert ({"kubeconfig"} if cloud else set()) | {"open_webui_admin_password"} <= run.secret_outputs
    assert run.outputs["port_forward"]["open_webui"].endswith("port-forward svc/open-webui 8080:80")


def test_a4high_outputs(a4high: StackRun) -> None:
    assert a4high.outputs["credentials_command"].startswith("gcloud container clusters get-credentials llm-a4high")
    assert a4high.outputs["bucket"].startswith("gs://")
    assert a4high.outputs["registry_url"].startswith("us-central1-docker.pkg.dev/my-gcp-project/")
    assert "api_key" in a4high.secret_outputs
    assert a4high.outputs["served_model_name"] == "deepseek-r1"


def test_eks_outputs(eks: StackRun) -> None:
    assert eks.outputs["credentials_command"] == "aws eks update-kubeconfig --region us-west-2 --name llm-eks"
    assert eks.outputs["bucket"].startswith("s3://")
    assert "ray_dashboard" in eks.outputs["port_forward"]
    assert "api_key" not in eks.outputs  # Ray Serve has no key; the engine stays in-cluster


# --- bad input: a clear error naming the key, and nothing declared -------------------------


BAD_INPUTS: list[tuple[str, dict[str, Any], str]] = [
    ("a4high", {"llm-serving:platform": {"zone": "europe-west4-b"}}, "llm-serving:platform.zone"),
    (
        "a4high",
        {"llm-serving:platform": {"gpuPool": {"reservation": None}}},
        "llm-serving:platform.gpuPool.reservation",
    ),
    (
        "a4high",
        {"llm-serving:platform": {"gpuPool": {"provisioning": "spot"}}},
        "llm-serving:platform.gpuPool.reservation",
    ),
    (
        "a4high",
        {"llm-serving:platform": {"gpuPool": {"provisioning": "flex-start"}}},
        "llm-serving:platform.gpuPool.reservation",
    ),
    ("a4high", {"llm-serving:platform": {"clusterName": "LLM_Cluster"}}, "llm-serving:platform.clusterName"),
    ("a4high", {"llm-serving:serving": {"tensorParallelSize": 3}}, "llm-serving:serving.tensorParallelSize"),
    ("a4high", {"llm-serving:serving": {"engine": "rayservice", "nodesPerReplica": 2}}, "llm-serving:serving.replicas"),
    ("a4high", {"llm-serving:serving": {"maxModelLn": 4096}}, "llm-serving:serving.maxModelLn"),
    (
        "a4high",
        {"llm-serving:serving": {"exposure": {"engine": {"type": "LoadBalancer"}}}},
        "llm-serving:serving.exposure.engine.allowedSourceRanges",
    ),
    (
        "eks",
        {"llm-serving:platform": {"gpuNodePools": [{"name": "cpu", "instanceFamilies": ["m5"]}]}},
        "llm-serving:platform.gpuNodePools[0].instanceFamilies[0]",
    ),
    ("eks", {"llm-serving:platform": {"availabilityZones": ["us-west-2a"]}}, "llm-serving:platform.availabilityZones"),
    (
        "eks",
        {"llm-serving:platform": {"gpuNodePools": [{"name": "g5", "instanceSizes": ["12xlarge"], "gpuLimit": 2}]}},
        "llm-serving:platform.gpuNodePools[0].gpuLimit",
    ),
    ("eks", {"llm-serving:serving": {"maxModelLen": 131072}}, "llm-serving:serving.maxModelLen"),
    (
        "eks",
        {"llm-serving:serving": {"model": "deepseek-ai/DeepSeek-R1", "tensorParallelSize": 8}},
        "llm-serving:serving.tensorParallelSize",
    ),
    (
        "eks",
        {
            "llm-serving:modelCache": {"enabled": True},
            "llm-serving:platform": {
                "modelStore": {"kind": "none", "keepOnDestroy": None, "backupRetentionDays": None}
            },
        },
        "llm-serving:modelCache.enabled",
    ),
    (
        "eks",
        {"llm-serving:serving": {"engine": "none"}, "llm-serving:benchmark": {"enabled": True}},
        "llm-serving:benchmark.enabled",
    ),
]


@pytest.mark.parametrize(("stack", "changes", "key"), BAD_INPUTS, ids=[k for _, _, k in BAD_INPUTS])
def test_bad_input_is_refused_before_anything_is_declared(
    stack: str, changes: dict[str, Any], key: str, run_with: Callable[..., StackRun]
) -> None:
    run = run_with(stack, changes)
    assert run.error is not None
    message = str(run.error)
    assert message.startswith("invalid stack configuration"), message
    assert f"  - {key}" in message, message
    assert run.resources == []


def test_hf_token_in_plain_text_is_refused(run_with: Callable[..., StackRun]) -> None:
    run = run_with("a4high", {"llm-serving:hfToken": "hf_plaintext"})
    assert run.error is not None
    assert "llm-serving:hfToken: is stored in plain text; set it with `pulumi config set --secret" in str(run.error)
    assert run.resources == []


def test_hf_token_secret_reaches_a_kubernetes_secret_only(run_with: Callable[..., StackRun]) -> None:
    run = run_with("a4high", {"llm-serving:hfToken": {"secure": "v1:encrypted"}})
    assert run.error is None, run.error
    (token,) = [r for r in run.of_type("kubernetes:core/v1:Secret") if r.name == "hf-token"]
    assert token.inputs["stringData"] == {"HF_TOKEN": SECRET_PLACEHOLDER}
    assert token.secret_paths == {"stringData"}
    for r in run.resources:
        if r is not token:
            assert SECRET_PLACEHOLDER not in repr(r.inputs), (r.type, r.name)
