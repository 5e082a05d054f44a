"""A bucket the user already has, on an existing GKE or EKS cluster (issue #16 item 2).

The onprem stack with ``modelStore: {kind: bucket, name}`` and an ``identity`` naming a
GKE or an EKS cluster, run on the mock engine: the grants are the ones the cloud stacks
give their own buckets, declared by the same code (components/gcp/storage.py
``bind_bucket``, components/aws/storage.py ``pod_identity_access``), and no bucket is
created, imported or deleted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from test_config import only_problem, problems, raw
from test_existing_platform import VOLUME_KEYS

from components.config import ExistingPlatformConfig, parse
from components.platform import (
    BACKUP_SERVICE_ACCOUNT,
    COMPILE_CACHE_SERVICE_ACCOUNT,
    READER_SERVICE_ACCOUNT,
    WRITER_SERVICE_ACCOUNT,
)
from conftest import assert_valid
from tools.offline import FAKE_PROJECT_NUMBER, StackRun, run_stack

PLATFORM = "llm-serving:platform"
BUCKET = "team-models"
PROJECT = "ml-platform-prod"
GKE = {"kind": "gke", "project": PROJECT, "location": "us-central1", "cluster": "shared-gpu"}
EKS = {"kind": "eks", "clusterName": "shared-gpu", "region": "us-west-2"}
STORE = {**VOLUME_KEYS, "kind": "bucket", "name": BUCKET}
MEMBER = "gcp:storage/bucketIAMMember:BucketIAMMember"
ROLE = "aws:iam/role:Role"
POLICY = "aws:iam/rolePolicy:RolePolicy"
PIA = "aws:eks/podIdentityAssociation:PodIdentityAssociation"
NAMESPACE = "llm"


def bucket_stack(identity: dict[str, Any], **store: Any) -> dict[str, Any]:
    return {PLATFORM: {"modelStore": {**STORE, **store}, "identity": identity}}


@pytest.fixture(scope="module")
def on_gke() -> StackRun:
    run = run_stack("onprem", bucket_stack({**GKE, "gcsFuse": True}))
    assert run.error is None, run.error
    return run


@pytest.fixture(scope="module")
def on_eks() -> StackRun:
    run = run_stack("onprem", bucket_stack(EKS))
    assert run.error is None, run.error
    return run


# --- GKE: Workload Identity ----------------------------------------------------------------


def test_gke_grants_the_cloud_stacks_roles_on_the_named_bucket(on_gke: StackRun) -> None:
    pool = f"projects/{FAKE_PROJECT_NUMBER}/locations/global/workloadIdentityPools/{PROJECT}.svc.id.goog"
    members = {m.inputs["member"].rsplit("/", 1)[-1]: m for m in on_gke.of_type(MEMBER)}
    assert {account: m.inputs["role"] for account, m in members.items()} == {
        READER_SERVICE_ACCOUNT: "roles/storage.objectViewer",
        WRITER_SERVICE_ACCOUNT: "roles/storage.objectUser",
        BACKUP_SERVICE_ACCOUNT: "roles/storage.objectCreator",
        COMPILE_CACHE_SERVICE_ACCOUNT: "roles/storage.objectCreator",
    }
    for account, member in members.items():
        assert member.inputs["bucket"] == BUCKET
        assert member.inputs["member"] == f"principal://iam.googleapis.com/{pool}/subject/ns/{NAMESPACE}/sa/{account}"
    assert members[BACKUP_SERVICE_ACCOUNT].inputs["condition"] == {
        "title": "chat-backups-only",
        "description": "create objects under backups/ only",
        "expression": f'resource.name.startsWith("projects/_/buckets/{BUCKET}/objects/backups/")',
    }


def test_gke_bucket_is_never_created_imported_or_deleted(on_gke: StackRun) -> None:
    assert not on_gke.of_type("gcp:storage/bucket:Bucket")
    # Only grants, through a Google provider of the cluster's project (ambient credentials).
    google = on_gke.one("pulumi:providers:gcp")
    assert google.inputs["project"] == PROJECT
    assert all(m.provider.startswith(google.urn) for m in on_gke.of_type(MEMBER))
    assert on_gke.outputs["bucket"] == f"gs://{BUCKET}"


def test_gke_project_number_from_config_skips_the_lookup(run_with: Callable[..., StackRun]) -> None:
    run = run_with("onprem", bucket_stack({**GKE, "projectNumber": "998877665544"}))
    assert run.error is None, run.error
    assert not [i for i in run.invokes if i.token == "gcp:organizations/getProject:getProject"]
    assert all("/projects/998877665544/" in m.inputs["member"] for m in run.of_type(MEMBER))


def test_gke_pods_reach_the_metadata_server_and_mount_with_gcs_fuse(on_gke: StackRun) -> None:
    objects = on_gke.kubernetes_objects()
    assert_valid(objects)
    cache = on_gke.kubernetes_object("NetworkPolicy", "model-cache-network")
    cidrs = {to["ipBlock"]["cidr"] for rule in cache["spec"]["egress"] for to in rule.get("to", []) if "ipBlock" in to}
    assert {"169.254.169.254/32", "169.254.169.252/32"} <= cidrs
    config = parse(raw("onprem", {"platform": bucket_stack({**GKE, "gcsFuse": True})[PLATFORM]}))
    assert isinstance(config.platform, ExistingPlatformConfig)
    assert "gcsfuse" in config.platform.loaders
    preflight = on_gke.outputs["preflight"]
    assert f"expect {PROJECT}.svc.id.goog" in preflight["workload_identity"]
    assert "GKE_METADATA" in preflight["gke_metadata_server"]
    assert "gcsFuseCsiDriverConfig" in preflight["gcs_fuse_csi_driver"]
    assert preflight["bucket_access_control"].startswith(f"gcloud storage buckets describe gs://{BUCKET} ")


def test_gcs_fuse_only_where_the_cluster_has_the_add_on() -> None:
    config = parse(raw("onprem", {"platform": bucket_stack(GKE)[PLATFORM]}))
    assert isinstance(config.platform, ExistingPlatformConfig)
    assert config.platform.loaders == frozenset({"runai-streamer"})
    message = only_problem("onprem", {"platform": bucket_stack(GKE)[PLATFORM], "modelCache": {"loader": "gcsfuse"}})
    assert message.startswith("llm-serving:modelCache.loader = 'gcsfuse': not available on cloud 'existing'")


# --- EKS: Pod Identity ---------------------------------------------------------------------


def test_eks_roles_are_scoped_to_the_bucket_and_associated_per_account(on_eks: StackRun) -> None:
    accounts = (READER_SERVICE_ACCOUNT, WRITER_SERVICE_ACCOUNT, BACKUP_SERVICE_ACCOUNT, COMPILE_CACHE_SERVICE_ACCOUNT)
    associations = {a.inputs["serviceAccount"]: a for a in on_eks.of_type(PIA)}
    assert set(associations) == set(accounts)
    for account, association in associations.items():
        assert (association.inputs["clusterName"], association.inputs["namespace"]) == ("shared-gpu", NAMESPACE)
        (role,) = [r for r in on_eks.of_type(ROLE) if r.name.endswith(f"-{account}")]
        (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
        assert trust["Condition"]["StringEquals"] == {
            "aws:RequestTag/eks-cluster-name": "shared-gpu",
            "aws:RequestTag/kubernetes-namespace": NAMESPACE,
            "aws:RequestTag/kubernetes-service-account": account,
        }
    policies = {p.name.rsplit("-", 2)[-2] + "-" + p.name.rsplit("-", 1)[-1]: p for p in on_eks.of_type(POLICY)}
    resources = {
        name: [s["Resource"] for s in json.loads(p.inputs["policy"])["Statement"]] for name, p in policies.items()
    }
    assert resources[READER_SERVICE_ACCOUNT] == [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"]
    assert resources[BACKUP_SERVICE_ACCOUNT] == [f"arn:aws:s3:::{BUCKET}/backups/*"]
    assert resources[COMPILE_CACHE_SERVICE_ACCOUNT] == [f"arn:aws:s3:::{BUCKET}/compile-cache/*"]


def test_eks_bucket_is_never_created_and_pods_reach_the_agent(on_eks: StackRun) -> None:
    assert not [r for r in on_eks.resources if r.type.startswith("aws:s3")]
    assert on_eks.one("pulumi:providers:aws").inputs["region"] == "us-west-2"
    assert on_eks.outputs["bucket"] == f"s3://{BUCKET}"
    assert_valid(on_eks.kubernetes_objects())
    cache = on_eks.kubernetes_object("NetworkPolicy", "model-cache-network")
    cidrs = {to["ipBlock"]["cidr"] for rule in cache["spec"]["egress"] for to in rule.get("to", []) if "ipBlock" in to}
    assert "169.254.170.23/32" in cidrs
    assert "eks-pod-identity-agent" in on_eks.outputs["preflight"]["pod_identity_agent"]
    assert "expect us-west-2" in on_eks.outputs["preflight"]["bucket_region"]


# --- config rules: one bad input each -------------------------------------------------------


def test_a_bucket_needs_its_name() -> None:
    store = {**STORE, "name": None}
    message = only_problem("onprem", {"platform": {"modelStore": store, "identity": GKE}})
    assert message.startswith("llm-serving:platform.modelStore.name = null: name the bucket you already have")


def test_a_bucket_needs_the_clusters_identity() -> None:
    message = only_problem("onprem", {"platform": {"modelStore": STORE}})
    assert message.startswith("llm-serving:platform.identity = null: a bucket on an existing cluster is reached")


def test_an_identity_without_a_bucket_is_refused() -> None:
    message = only_problem("onprem", {"platform": {"identity": EKS}})
    assert message.startswith("llm-serving:platform.identity = 'eks': identity is for a model store of kind 'bucket'")


def test_an_identity_of_no_known_cloud_is_refused() -> None:
    found = problems("onprem", {"platform": {"modelStore": STORE, "identity": {**GKE, "kind": "aks"}}})
    assert found == ["llm-serving:platform.identity.kind = 'aks': allowed: 'gke', 'eks'"], found


def test_the_users_bucket_is_never_adopted() -> None:
    message = only_problem("onprem", {"platform": bucket_stack(GKE, adopt=True)[PLATFORM]})
    assert message.startswith("llm-serving:platform.modelStore.adopt = true: a bucket on an existing cluster is never")


def test_the_users_bucket_is_never_deleted() -> None:
    message = only_problem("onprem", {"platform": bucket_stack(EKS, keepOnDestroy=False)[PLATFORM]})
    assert message.startswith("llm-serving:platform.modelStore.keepOnDestroy = false: a bucket on an existing")


def test_the_users_bucket_gets_no_lifecycle_rule() -> None:
    message = only_problem("onprem", {"platform": bucket_stack(EKS, backupRetentionDays=7)[PLATFORM]})
    assert message.startswith("llm-serving:platform.modelStore.backupRetentionDays = 7: this stack sets no lifecycle")


# --- the serving layer, unchanged, on the user's bucket ------------------------------------


def test_jobs_use_the_bucket_as_their_service_accounts_once_granted(on_gke: StackRun, on_eks: StackRun) -> None:
    for run, scheme, grant in ((on_gke, "gs", MEMBER), (on_eks, "s3", PIA)):
        job = run.kubernetes_object("Job", "model-cache")
        spec = job["spec"]["template"]["spec"]
        assert spec["serviceAccountName"] == WRITER_SERVICE_ACCOUNT
        env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
        assert env["MODEL_URL"].startswith(f"{scheme}://{BUCKET}/models/")
        # The Job starts after every grant exists (Platform.ready), not before.
        (resource,) = [r for r in run.resources if r.kubernetes_object == job]
        grants = {r.urn for r in run.of_type(grant)}
        assert grants and grants <= set(resource.depends_on)


def test_a_gcs_fuse_loader_mounts_the_bucket_on_gke(run_with: Callable[..., StackRun]) -> None:
    serving = {
        "engine": "vllm",
        "model": "deepseek-ai/DeepSeek-R1-Distill-Llama-70B",
        "servedModelName": "r1-distill-70b",
        "tensorParallelSize": 8,
        "pipelineParallelSize": 1,
        "nodesPerReplica": 1,
        "replicas": 1,
        "expertParallel": None,
    }
    changes = {**bucket_stack({**GKE, "gcsFuse": True}), "llm-serving:serving": serving}
    run = run_with("onprem", {**changes, "llm-serving:modelCache": {"loader": "gcsfuse"}})
    assert run.error is None, run.error
    objects = run.kubernetes_objects()
    assert_valid(objects)
    drivers = [
        v["csi"]["driver"]
        for o in objects
        for v in (o.get("spec", {}).get("template", {}).get("spec", {}).get("volumes") or [])
        if "csi" in v
    ]
    assert "gcsfuse.csi.storage.gke.io" in drivers


# --- the cloud stacks' own grants kept their names ------------------------------------------


def test_cloud_stacks_grants_keep_their_urns(a4high: StackRun, eks: StackRun) -> None:
    """Splitting the grants out of bucket creation moved no resource: a changed URN would make
    `pulumi up` delete and recreate every grant of a deployed stack (checked before and after
    the split with tools/offline.py)."""
    accounts = (READER_SERVICE_ACCOUNT, WRITER_SERVICE_ACCOUNT, BACKUP_SERVICE_ACCOUNT, COMPILE_CACHE_SERVICE_ACCOUNT)
    gcp = "urn:pulumi:a4high::llm-serving::llm-serving:gcp:ModelBucket$gcp:storage/bucketIAMMember:BucketIAMMember::"
    assert {r.urn for r in a4high.of_type(MEMBER)} == {f"{gcp}gcp-models-{a}" for a in accounts}
    aws = "urn:pulumi:eks::llm-serving::llm-serving:aws:Storage$"
    for type_ in (PIA, POLICY):
        assert {r.urn for r in eks.of_type(type_) if r.name.startswith("llm-eks-")} >= {
            f"{aws}{type_}::llm-eks-{a}" for a in accounts
        }
