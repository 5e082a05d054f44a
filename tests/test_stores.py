"""Model stores and registries: one schema (``platform.modelStore``, ``platform.registry``)
on every cloud, and what each setting does to the data.

Config rules are checked with ``parse`` on the real stack files; what reaches the cloud
is checked on the resources the program registers on the mock engine.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_config import only_problem, problems, raw
from test_plan import write_stack

from components.config import CloudBucket, CloudRepository, NoStore, parse
from conftest import assert_valid
from tools import plan
from tools.offline import ROOT, SECRET_PLACEHOLDER, StackRun

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


# --- stores without the stack's own bucket (s3Compatible, volume; components/stores.py) ----------

CLEAR = {"keepOnDestroy": None, "backupRetentionDays": None}  # drop the stack file's bucket keys
S3_STORE = {"kind": "s3Compatible", "endpoint": "https://minio.example.com:9000", "bucket": "llm-models", **CLEAR}
NEW_CLAIM = {"kind": "volume", "storageClass": "nfs-rwx", "sizeGib": 2000, **CLEAR}
OLD_CLAIM = {"kind": "volume", "claimName": "shared-models", **CLEAR}
KEYS = {
    "llm-serving:modelStoreAccessKeyId": {"secure": "v1:id"},
    "llm-serving:modelStoreSecretAccessKey": {"secure": "v1:secret"},
}
SECRET_TYPE = "kubernetes:core/v1:Secret"
CACHE_ON = {"llm-serving:modelCache": {"enabled": True}}
CLAIM_TYPE = "kubernetes:core/v1:PersistentVolumeClaim"


def store_problem(store: dict[str, Any], stack: str = "a4high") -> str:
    return only_problem(stack, {"platform": {"modelStore": store}})


@pytest.mark.parametrize("stack", ["a4high", "eks"])
@pytest.mark.parametrize("store", [S3_STORE, NEW_CLAIM, OLD_CLAIM], ids=["s3Compatible", "new-claim", "old-claim"])
def test_both_clouds_accept_every_store_kind(stack: str, store: dict[str, Any]) -> None:
    config = parse(raw(stack, {"platform": {"modelStore": store}}))
    assert config.platform.model_store.kind == store["kind"] and config.platform.bucket_store is None
    assert config.platform.has_store


@pytest.mark.parametrize(
    ("endpoint", "words"),
    [
        ("minio.example.com", "https://host or https://host:port"),
        ("ftp://minio.example.com", "https://host or https://host:port"),
        ("https://minio.example.com/llm-models", "only scheme, host and port"),
        ("https://key:secret@minio.example.com", "only scheme, host and port"),
        ("http://minio.example.com", "plain http sends the model files unencrypted"),
        ("https://minio.example.com:99999", "the port must be 1-65535"),
    ],
)
def test_s3_compatible_endpoint_must_be_an_https_url_of_host_and_port(endpoint: str, words: str) -> None:
    message = store_problem({**S3_STORE, "endpoint": endpoint})
    assert message.startswith(f"llm-serving:platform.modelStore.endpoint = '{endpoint}'") and words in message


def test_plain_http_is_allowed_on_purpose() -> None:
    store = {**S3_STORE, "endpoint": "http://10.0.0.5:9000", "allowPlainHttp": True}
    assert parse(raw("a4high", {"platform": {"modelStore": store}})).platform.model_store.kind == "s3Compatible"


def test_s3_compatible_bucket_name_follows_the_bucket_rules() -> None:
    assert "lowercase letters" in store_problem({**S3_STORE, "bucket": "LLM_Models"})


def test_s3_compatible_store_needs_a_bucket() -> None:
    store = {k: v for k, v in S3_STORE.items() if k != "bucket"}
    assert store_problem(store).startswith("llm-serving:platform.modelStore.bucket")


@pytest.mark.parametrize("mode", ["ReadWriteOnce", "ReadOnlyMany", "ReadWriteOncePod"])
def test_a_volume_store_must_be_read_write_many(mode: str) -> None:
    message = store_problem({**NEW_CLAIM, "accessMode": mode})
    assert message.startswith(f"llm-serving:platform.modelStore.accessMode = '{mode}'") and "ReadWriteMany" in message


def test_an_existing_claim_takes_no_class_or_size() -> None:
    found = problems("a4high", {"platform": {"modelStore": {**OLD_CLAIM, "storageClass": "x", "sizeGib": 10}}})
    assert [p.split(" = ")[0] for p in found] == [
        "llm-serving:platform.modelStore.storageClass",
        "llm-serving:platform.modelStore.sizeGib",
    ]


def test_an_existing_claim_is_never_deleted_by_the_stack() -> None:
    message = store_problem({**OLD_CLAIM, "keepOnDestroy": False})
    assert message.startswith("llm-serving:platform.modelStore.keepOnDestroy = false") and "never deleted" in message


def test_a_new_claim_needs_its_class_and_size() -> None:
    message = store_problem({"kind": "volume", "storageClass": "nfs-rwx", **CLEAR})
    assert message.startswith("llm-serving:platform.modelStore.sizeGib") and "claimName" in message


def test_gcs_fuse_needs_the_stacks_gcs_bucket() -> None:
    message = only_problem("a4high", {"platform": {"modelStore": S3_STORE}, "modelCache": {"loader": "gcsfuse"}})
    assert (
        message.startswith("llm-serving:modelCache.loader = 'gcsfuse'") and "modelStore kind 's3Compatible'" in message
    )


# --- the keys of an S3-compatible store: secret stack values only --------------------------------


def error_of(run: StackRun) -> str:
    assert run.error is not None and run.resources == [], "refused before any resource"
    return str(run.error)


def test_s3_compatible_store_without_keys_is_refused(run_with: RunWith) -> None:
    message = error_of(run_with("a4high", {PLATFORM: {"modelStore": S3_STORE}}))
    assert "llm-serving:modelStoreAccessKeyId: an s3Compatible model store needs its keys" in message


def test_s3_compatible_keys_in_plain_text_are_refused(run_with: RunWith) -> None:
    keys = {**KEYS, "llm-serving:modelStoreSecretAccessKey": "plain"}
    message = error_of(run_with("a4high", {PLATFORM: {"modelStore": S3_STORE}, **keys}))
    assert "llm-serving:modelStoreSecretAccessKey: is stored in plain text" in message


def test_half_a_key_pair_is_refused(run_with: RunWith) -> None:
    keys = {**KEYS, "llm-serving:modelStoreReaderAccessKeyId": {"secure": "v1:r"}}
    message = error_of(run_with("a4high", {PLATFORM: {"modelStore": S3_STORE}, **keys}))
    assert "llm-serving:modelStoreReaderSecretAccessKey: modelStoreReaderAccessKeyId is set without it" in message


def test_keys_without_an_s3_compatible_store_are_refused(run_with: RunWith) -> None:
    message = error_of(run_with("eks", KEYS))
    assert "llm-serving:modelStoreAccessKeyId: is set but platform.modelStore.kind is not 's3Compatible'" in message


@pytest.mark.parametrize("stack", ["a4high", "eks"])
def test_s3_compatible_keys_reach_one_kubernetes_secret_per_pair_and_nothing_else(
    run_with: RunWith, stack: str
) -> None:
    keys = {
        **KEYS,
        "llm-serving:modelStoreReaderAccessKeyId": {"secure": "v1:r"},
        "llm-serving:modelStoreReaderSecretAccessKey": {"secure": "v1:rs"},
    }
    run = run_with(stack, {PLATFORM: {"modelStore": S3_STORE}, **CACHE_ON, **keys})
    assert run.error is None, run.error
    secrets = {r.name.split("-store-", 1)[1]: r for r in run.of_type(SECRET_TYPE) if "-store-model-store" in r.name}
    assert sorted(secrets) == ["model-store-keys", "model-store-reader-keys"]
    for secret in secrets.values():
        assert "stringData" in secret.secret_paths and set(secret.inputs["stringData"]) == {
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
        }
    assert not run.of_type(GCS_BUCKET) and not run.of_type(S3_BUCKET), "no cloud bucket for this kind"
    assert_valid(run.kubernetes_objects())
    others = [o for o in run.kubernetes_objects() if o["kind"] != "Secret"]
    assert not [o["metadata"]["name"] for o in others if SECRET_PLACEHOLDER in json.dumps(o)], "keys only in Secrets"
    cache = run.kubernetes_object("Job", "model-cache")["spec"]["template"]["spec"]
    upload = cache["containers"][0]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in upload["env"] if "valueFrom" in e}
    assert refs == {"AWS_ACCESS_KEY_ID": "model-store-keys", "AWS_SECRET_ACCESS_KEY": "model-store-keys"}
    policy = run.kubernetes_object("NetworkPolicy", "model-cache-network")
    assert any(rule["ports"] == [{"protocol": "TCP", "port": 9000}] for rule in policy["spec"]["egress"])
    assert run.outputs["model_store"] == "s3://llm-models" and run.outputs["model_store_preflight"]


@pytest.mark.parametrize("stack", ["a4high", "eks"])
def test_a_created_claim_is_read_write_many_kept_and_mounted_by_every_store_user(run_with: RunWith, stack: str) -> None:
    run = run_with(stack, {PLATFORM: {"modelStore": NEW_CLAIM}, **CACHE_ON})
    assert run.error is None, run.error
    claim = next(r for r in run.of_type(CLAIM_TYPE) if r.name.endswith("-store-claim"))
    assert claim.inputs["spec"]["accessModes"] == ["ReadWriteMany"]
    assert claim.inputs["spec"]["storageClassName"] == "nfs-rwx"
    assert claim.protect and claim.retain_on_delete
    assert_valid(run.kubernetes_objects())
    users = [o for o in run.kubernetes_objects() if "model-store" in json.dumps(o.get("spec", {}))]
    assert {o["metadata"]["name"] for o in users} >= {"model-cache", "chat-backup"}
    assert run.outputs["model_store"] == "pvc://model-store"
    assert any("ReadWriteMany" in line for line in run.outputs["model_store_preflight"])


def test_an_unkept_claim_goes_with_the_stack(run_with: RunWith) -> None:
    run = run_with("eks", {PLATFORM: {"modelStore": {**NEW_CLAIM, "keepOnDestroy": False}}})
    claim = next(r for r in run.of_type(CLAIM_TYPE) if r.name.endswith("-store-claim"))
    assert not claim.protect and not claim.retain_on_delete


def test_an_existing_claim_is_used_not_declared(run_with: RunWith) -> None:
    run = run_with("a4high", {PLATFORM: {"modelStore": OLD_CLAIM}})
    assert run.error is None, run.error
    assert not any(r.name.endswith("-store-claim") for r in run.of_type(CLAIM_TYPE))
    cache = run.kubernetes_object("Job", "model-cache")["spec"]["template"]["spec"]
    assert {"name": "model-store", "persistentVolumeClaim": {"claimName": "shared-models", "readOnly": False}} in (
        cache["volumes"]
    )


def test_s3_compatible_region_is_a_region_name() -> None:
    assert store_problem({**S3_STORE, "region": "US East"}).startswith("llm-serving:platform.modelStore.region")


def test_s3_compatible_endpoint_cidrs_are_the_stores_own_not_the_internet() -> None:
    message = store_problem({**S3_STORE, "endpointCidrs": ["10.20.0.0/24", "0.0.0.0/0"]})
    assert (
        message.startswith("llm-serving:platform.modelStore.endpointCidrs[1] = '0.0.0.0/0'") and "internet" in message
    )


def test_ray_loads_a_volume_store_from_the_mounted_claim(run_with: RunWith) -> None:
    run = run_with("eks", {PLATFORM: {"modelStore": OLD_CLAIM}, **CACHE_ON})
    assert run.error is None, run.error
    assert_valid(run.kubernetes_objects())
    service = run.kubernetes_object("RayService", "ray-llm")
    llm = yaml.safe_load(service["spec"]["serveConfigV2"])["applications"][0]["args"]["llm_configs"][0]
    assert llm["model_loading_config"]["model_source"] == "/model-store/models/deepseek-ai/DeepSeek-R1-Distill-Llama-8B"
    worker = service["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["template"]["spec"]
    claim = {"name": "model-store", "persistentVolumeClaim": {"claimName": "shared-models", "readOnly": True}}
    assert claim in worker["volumes"]
    engine = worker["containers"][0]
    assert {"name": "model-store", "mountPath": "/model-store", "readOnly": True} in engine["volumeMounts"]
