"""The Docker Hub mirror (``platform.registry: {kind: mirror}``): its config rules, and how
workload image references are rewritten through it (components/workloads/images.py).

What each cloud creates for it is tested with the rest of the platform on recorded
resources (tests/test_gcp_platform.py, tests/test_aws_platform.py).
"""

from __future__ import annotations

from typing import Any

import pulumi
import pytest
from test_config import only_problem, problems, raw

from components import catalog
from components.config import MirrorCredentials, RegistryMirror, parse
from components.platform import ImageMirror
from components.workloads.images import docker_hub_path, mirrored, through_mirror

GCP_SECRET = "projects/my-gcp-project/secrets/docker-hub/versions/1"
AWS_SECRET = "ecr-pullthroughcache/docker-hub"
AWS_SECRET_ARN = "arn:aws:secretsmanager:us-west-2:123456789012:secret:ecr-pullthroughcache/docker-hub-AbCdEf"
MIRROR = ImageMirror(upstream="docker.io", prefix="europe-west4-docker.pkg.dev/p/hub")


def registry(value: dict[str, Any]) -> dict[str, Any]:
    return {"platform": {"registry": value}}


# --- config -----------------------------------------------------------------------------------


def test_mirror_is_a_registry_kind_with_a_derived_name() -> None:
    platform = parse(raw("a4high", registry({"kind": "mirror"}))).platform
    assert platform.mirror == RegistryMirror(kind="mirror") and platform.repository is None
    assert platform.mirror.repository(platform.cluster_name) == "llm-a4high-docker-hub"
    assert platform.image_streaming  # GKE streams what comes through the mirror


def test_gcp_mirror_takes_a_user_and_a_secret_version() -> None:
    credentials = {"username": "mydockerid", "secret": GCP_SECRET}
    platform = parse(raw("a4high", registry({"kind": "mirror", "name": "hub", "credentials": credentials}))).platform
    assert platform.mirror == RegistryMirror(kind="mirror", name="hub", credentials=MirrorCredentials(**credentials))


def test_eks_mirror_takes_a_secret_by_name_or_arn_and_does_not_stream() -> None:
    for secret in (AWS_SECRET, AWS_SECRET_ARN):
        platform = parse(raw("eks", registry({"kind": "mirror", "credentials": {"secret": secret}}))).platform
        assert platform.mirror is not None and platform.mirror.credentials == MirrorCredentials(secret=secret)
        assert not platform.image_streaming


def test_the_default_stacks_keep_their_own_repository() -> None:
    for stack in ("a4high", "eks"):
        platform = parse(raw(stack)).platform
        assert platform.mirror is None and not platform.image_streaming


def test_gcp_secret_must_be_a_secret_manager_version() -> None:
    message = only_problem(
        "a4high", registry({"kind": "mirror", "credentials": {"username": "mydockerid", "secret": "docker-hub"}})
    )
    assert message.startswith("llm-serving:platform.registry.credentials.secret = 'docker-hub': ")
    assert "projects/PROJECT/secrets/NAME/versions/NUMBER" in message
    latest = GCP_SECRET.replace("/versions/1", "/versions/latest")
    message = only_problem(
        "a4high", registry({"kind": "mirror", "credentials": {"username": "mydockerid", "secret": latest}})
    )
    assert message.startswith(f"llm-serving:platform.registry.credentials.secret = '{latest}': ")


def test_gcp_credentials_need_the_docker_hub_user() -> None:
    message = only_problem("a4high", registry({"kind": "mirror", "credentials": {"secret": GCP_SECRET}}))
    assert message.startswith("llm-serving:platform.registry.credentials.username = null: ")
    assert "Docker Hub user name" in message


def test_docker_hub_user_is_a_docker_id() -> None:
    message = only_problem(
        "a4high", registry({"kind": "mirror", "credentials": {"username": "My User", "secret": GCP_SECRET}})
    )
    assert message.startswith("llm-serving:platform.registry.credentials.username = 'My User': ")


def test_eks_mirror_needs_credentials() -> None:
    message = only_problem("eks", registry({"kind": "mirror"}))
    assert message.startswith("llm-serving:platform.registry.credentials = null: ")
    assert "ecr-pullthroughcache/" in message and "accessToken" in message


def test_eks_secret_must_carry_the_pull_through_prefix() -> None:
    message = only_problem("eks", registry({"kind": "mirror", "credentials": {"secret": "docker-hub"}}))
    assert message.startswith("llm-serving:platform.registry.credentials.secret = 'docker-hub': ")
    assert "ecr-pullthroughcache/" in message


def test_eks_refuses_a_user_name_beside_the_secret() -> None:
    message = only_problem(
        "eks", registry({"kind": "mirror", "credentials": {"username": "mydockerid", "secret": AWS_SECRET}})
    )
    assert message.startswith("llm-serving:platform.registry.credentials.username = 'mydockerid': not used on aws")


def test_eks_prefix_fits_a_pull_through_rule() -> None:
    name = "a" * 31
    message = only_problem("eks", registry({"kind": "mirror", "name": name, "credentials": {"secret": AWS_SECRET}}))
    assert message.startswith(f"llm-serving:platform.registry.name = '{name}': ")
    assert "at most 30" in message


def test_all_mirror_problems_at_once() -> None:
    found = problems("eks", registry({"kind": "mirror", "credentials": {"username": "x y", "secret": "s"}}))
    assert len(found) == 1  # the field rule (Docker ID) reports before the cross-field ones run
    found = problems("eks", registry({"kind": "mirror", "credentials": {"username": "mydockerid", "secret": "s"}}))
    assert [p.split(" = ")[0] for p in found] == [
        "llm-serving:platform.registry.credentials.secret",
        "llm-serving:platform.registry.credentials.username",
    ]


def test_unknown_registry_kind_names_the_mirror() -> None:
    message = only_problem("a4high", registry({"kind": "proxy"}))
    assert "unknown kind 'proxy'" in message and "'mirror'" in message


# --- image references -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "path"),
    [
        (catalog.VLLM_IMAGE.ref, "vllm/vllm-openai:v0.33.0"),
        (catalog.RAY_LLM_IMAGE.ref, f"rayproject/ray-llm:{catalog.RAY_LLM_IMAGE.tag}"),
        ("busybox:1.37", "library/busybox:1.37"),
        ("docker.io/library/busybox@sha256:" + "a" * 64, "library/busybox@sha256:" + "a" * 64),
        ("index.docker.io/vllm/vllm-openai:v1@sha256:" + "b" * 64, "vllm/vllm-openai:v1@sha256:" + "b" * 64),
        (catalog.OPEN_WEBUI_IMAGE.ref, None),  # ghcr.io
        (catalog.GCLOUD_CLI_IMAGE.ref, None),  # gcr.io
        (catalog.AWS_CLI_IMAGE.ref, None),  # public.ecr.aws
        ("localhost:5000/vllm:mine", None),
        ("localhost/vllm:mine", None),
    ],
)
def test_docker_hub_references(ref: str, path: str | None) -> None:
    assert docker_hub_path(ref) == path


def test_tags_and_digests_stay_identical_through_the_mirror() -> None:
    digest = "sha256:" + "c" * 64
    assert mirrored(f"vllm/vllm-openai:v0.33.0@{digest}", MIRROR) == (
        f"europe-west4-docker.pkg.dev/p/hub/vllm/vllm-openai:v0.33.0@{digest}"
    )
    assert mirrored(catalog.OPEN_WEBUI_IMAGE.ref, MIRROR) == catalog.OPEN_WEBUI_IMAGE.ref
    assert mirrored(catalog.VLLM_IMAGE.ref, None) == catalog.VLLM_IMAGE.ref


def test_a_prefix_known_only_at_deploy_time_gives_an_output() -> None:
    later = ImageMirror(upstream="docker.io", prefix=pulumi.Output.from_input("123.dkr.ecr.r.amazonaws.com/hub"))
    assert isinstance(mirrored(catalog.VLLM_IMAGE.ref, later), pulumi.Output)


def test_every_container_of_every_pod_template_is_rewritten() -> None:
    def pod(*images: str) -> dict[str, Any]:
        return {
            "initContainers": [{"name": "init", "image": images[0]}],
            "containers": [{"name": f"c{i}", "image": image} for i, image in enumerate(images)],
        }

    worker_spec = pod("rayproject/ray:1")
    manifest: dict[str, Any] = {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": {"name": "x", "annotations": {"image": "vllm/vllm-openai:v1"}},
        "spec": {
            "rayClusterConfig": {
                "headGroupSpec": {"template": {"spec": pod("rayproject/ray:1", "ghcr.io/o/i:1")}},
                "workerGroupSpecs": [{"template": {"spec": worker_spec}}],
            }
        },
    }
    out = through_mirror(manifest, MIRROR)
    head = out["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]
    worker = out["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["template"]["spec"]
    prefix = "europe-west4-docker.pkg.dev/p/hub"
    assert [c["image"] for c in head["containers"]] == [f"{prefix}/rayproject/ray:1", "ghcr.io/o/i:1"]
    assert head["initContainers"][0]["image"] == worker["containers"][0]["image"] == f"{prefix}/rayproject/ray:1"
    # Only container images: other fields that happen to hold a reference stay, and the input is untouched.
    assert out["metadata"] == manifest["metadata"]
    assert worker_spec["containers"][0]["image"] == "rayproject/ray:1"
    assert through_mirror(manifest, None) is manifest


def test_eks_mirror_is_refused_where_ecr_has_no_pull_through_cache() -> None:
    china = {
        "region": "cn-north-1",
        "allowUnlistedRegion": True,
        "availabilityZones": ["cn-north-1a", "cn-north-1b"],
        "registry": {"kind": "mirror", "credentials": {"secret": AWS_SECRET}},
    }
    found = problems("eks", {"platform": china})
    assert any(
        p.startswith("llm-serving:platform.registry.kind = 'mirror': ECR has no pull-through cache in cn-north-1")
        for p in found
    ), found
