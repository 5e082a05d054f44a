"""Model stores and registries: one schema (``platform.modelStore``, ``platform.registry``)
on every cloud, and what each setting does to the data.

Config rules are checked with ``parse`` on the real stack files; what reaches the cloud
is checked on the resources the program registers on the mock engine.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_config import only_problem, problems, raw
from test_plan import write_stack

from components.config import CloudBucket, CloudRepository, NoStore, parse
from tools import plan
from tools.offline import ROOT, StackRun

RunWith = Callable[[str, dict[str, Any]], StackRun]
GCS_BUCKET = "gcp:storage/bucket:Bucket"
S3_BUCKET = "aws:s3/bucket:Bucket"
PLATFORM = "llm-serving:platform"
NO_STORE = {"modelStore": {"kind": "none", "keepOnDestroy": None, "backupRetentionDays": None}}
NO_BACKUP = {"openWebui": {"backup": {"enabled": False}}}


# --- the schema -----------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["a4high", "eks"])
def test_stack_files_use_a_kept_cloud_bucket_and_their_own_repository(stack: str) -> None:
    platform = parse(raw(stack)).platform
    store = platform.model_store
    assert isinstance(store, CloudBucket) and (store.name, store.adopt, store.keep_on_destroy) == (None, False, True)
    assert platform.registry == CloudRepository(kind="repository")


def test_no_store_is_a_kind_not_a_flag() -> None:
    changes = {"platform": NO_STORE, "modelCache": {"enabled": False}, "serving": NO_BACKUP}
    config = parse(raw("a4high", changes))
    assert config.platform.model_store == NoStore(kind="none") and config.platform.bucket_store is None


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ({"create": False}, "modelStore: {kind: none}"),
        ({"create": True, "keepOnDestroy": False}, "modelStore: {kind: bucket, keepOnDestroy: false}"),
        ({"keepOnDestroy": True}, "modelStore: {kind: bucket, keepOnDestroy: true}"),
    ],
)
def test_the_old_bucket_section_says_where_it_moved(old: dict[str, Any], new: str) -> None:
    message = only_problem("a4high", {"platform": {"bucket": old}, "modelCache": {"enabled": False}})
    assert message.startswith("llm-serving:platform.bucket = ") and f"write `{new}`" in message


def test_the_old_registry_section_asks_for_a_kind() -> None:
    message = only_problem("eks", {"platform": {"registry": {"kind": None, "create": False, "name": "x"}}})
    assert message.startswith("llm-serving:platform.registry = ")
    assert "kind 'repository'" in message and "'create: false' is now kind 'none'" in message


@pytest.mark.parametrize(
    ("section", "kind", "issue"),
    [("modelStore", "s3Compatible", "#16"), ("modelStore", "volume", "#16")],
)
def test_planned_kinds_are_refused_as_not_built_yet(section: str, kind: str, issue: str) -> None:
    message = only_problem(
        "a4high", {"platform": {section: {"kind": kind, "keepOnDestroy": None, "backupRetentionDays": None}}}
    )
    assert message.startswith(f"llm-serving:platform.{section} = ")
    assert f"kind '{kind}'" in message and "is not built yet" in message and issue in message


def test_unknown_kind_says_what_is_allowed() -> None:
    message = only_problem(
        "a4high", {"platform": {"modelStore": {"kind": "nfs", "keepOnDestroy": None, "backupRetentionDays": None}}}
    )
    assert "unknown kind 'nfs': use 'bucket'" in message and "'none'" in message


def test_adopting_needs_a_name() -> None:
    message = only_problem("a4high", {"platform": {"modelStore": {"adopt": True}}})
    assert message == (
        "llm-serving:platform.modelStore.adopt = true: adopting a bucket needs its name: set modelStore.name"
    )


def test_an_adopted_bucket_is_never_deleted_by_the_stack() -> None:
    store = {"name": "acme-weights", "adopt": True, "keepOnDestroy": False}
    message = only_problem("a4high", {"platform": {"modelStore": store}})
    assert message.startswith("llm-serving:platform.modelStore.keepOnDestroy = false: an adopted bucket")


@pytest.mark.parametrize("name", ["Acme_Weights", "ab", "-weights", "weights.example.com", "x" * 64])
def test_bucket_names_both_clouds_accept(name: str) -> None:
    message = only_problem("eks", {"platform": {"modelStore": {"name": name}}})
    assert message.startswith("llm-serving:platform.modelStore.name = ")
    assert "3 to 63 lowercase letters, digits and hyphens" in message


@pytest.mark.parametrize("value", ["off", 0, "false", "yes"])
def test_keep_on_destroy_is_a_real_boolean(value: Any) -> None:
    # "off" or 0 used to become False and turn on force-destroy of the bucket.
    message = only_problem("a4high", {"platform": {"modelStore": {"keepOnDestroy": value}}})
    assert message.startswith("llm-serving:platform.modelStore.keepOnDestroy = ")


def test_registry_name_must_suit_both_registries() -> None:
    message = only_problem("a4high", {"platform": {"registry": {"name": "Images/x"}}})
    assert message.startswith("llm-serving:platform.registry.name = 'Images/x': 2 to 63 lowercase letters")


def test_aws_bucket_name_derived_too_long_asks_for_a_name() -> None:
    sydney = {"region": "ap-southeast-2", "availabilityZones": ["ap-southeast-2a", "ap-southeast-2b"]}
    found = problems("eks", {"platform": {**sydney, "clusterName": "x" * 38}})
    assert found == [
        "llm-serving:platform.modelStore.name = null: the bucket name derived from clusterName and region would be "
        "66 characters (S3 allows 63): set modelStore.name"
    ]
    named = {**sydney, "clusterName": "x" * 38, "modelStore": {"name": "acme-weights"}}
    assert parse(raw("eks", {"platform": named})).platform.bucket_store == CloudBucket.model_validate(
        {"kind": "bucket", "name": "acme-weights"}
    )


# --- what reaches the cloud -------------------------------------------------------------------


def test_gcs_bucket_keeps_its_name_through_a_cluster_rename(run_with: RunWith) -> None:
    # Renaming the cluster used to rename the derived bucket: a new empty one, the old one
    # orphaned (kept) or deleted with 688 GB of weights (not kept). A set name stays.
    run = run_with("a4high", {PLATFORM: {"clusterName": "llm-renamed", "modelStore": {"name": "acme-weights"}}})
    bucket = run.one(GCS_BUCKET)
    assert bucket.inputs["name"] == "acme-weights" and bucket.protect and not bucket.import_id
    assert run.outputs["bucket"] == "gs://acme-weights"


@pytest.mark.parametrize(("stack", "type_", "key"), [("a4high", GCS_BUCKET, "name"), ("eks", S3_BUCKET, "bucket")])
def test_adopting_imports_the_named_bucket(run_with: RunWith, stack: str, type_: str, key: str) -> None:
    run = run_with(stack, {PLATFORM: {"modelStore": {"name": "acme-weights", "adopt": True}}})
    bucket = run.one(type_)
    assert bucket.import_id == "acme-weights" and bucket.inputs[key] == "acme-weights"
    assert bucket.protect and bucket.retain_on_delete and bucket.inputs["forceDestroy"] is False


def test_s3_bucket_has_a_fixed_name_not_an_auto_name(eks: StackRun) -> None:
    # Auto-named, a second `up` after a destroy that kept the bucket made a new empty one.
    assert eks.one(S3_BUCKET).inputs["bucket"] == "llm-eks-123456789012-us-west-2"


def test_s3_bucket_resources_keep_their_identity_through_a_cluster_rename(run_with: RunWith) -> None:
    # Logical names used to carry the cluster name: a rename deleted the bucket's resources
    # and created new ones even with the bucket's name unchanged.
    before = {r.urn for r in run_with("eks", {}).resources if r.type.startswith("aws:s3/")}
    changes = {PLATFORM: {"clusterName": "llm-renamed", "modelStore": {"name": "llm-eks-123456789012-us-west-2"}}}
    after = run_with("eks", changes)
    assert {r.urn for r in after.resources if r.type.startswith("aws:s3/")} == before and len(before) == 6
    assert after.one(S3_BUCKET).inputs["bucket"] == "llm-eks-123456789012-us-west-2"


@pytest.mark.parametrize(
    ("stack", "type_", "key"),
    [
        ("a4high", "gcp:artifactregistry/repository:Repository", "repositoryId"),
        ("eks", "aws:ecr/repository:Repository", "name"),
    ],
)
def test_registry_name_is_the_cluster_unless_set(run_with: RunWith, stack: str, type_: str, key: str) -> None:
    derived = run_with(stack, {PLATFORM: {"clusterName": "team-b"}}).one(type_)
    assert derived.inputs[key] == "team-b"
    named = run_with(stack, {PLATFORM: {"registry": {"name": "shared-images"}}}).one(type_)
    assert named.inputs[key] == "shared-images"


def test_plan_shows_the_bucket_protected_and_adopted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (ROOT / "Pulumi.eks.yaml").read_text()
    text = text.replace("      # name: my-models-bucket", "      name: acme-weights").replace(
        "      # adopt: true", "      adopt: true"
    )
    path = write_stack(tmp_path, "adopt", text)
    assert plan.main(["--stack-file", str(path), "--out", str(tmp_path)]) == 0
    (line,) = [line for line in capsys.readouterr().out.splitlines() if "aws:s3/bucket:Bucket" in line]
    assert "retained on destroy  protected  adopted (imports acme-weights)" in line
