"""The stack's model bucket and who may use it.

Regional (the cluster's region, so GCS FUSE reads stay in-region, gcp-a4high.md §7.10),
uniform bucket-level access (required for Workload Identity read-write mounts, GCS FUSE
CSI driver docs/authentication.md) and public access prevention enforced.

What keeps the data (``modelStore`` in components/config/base.py):

* a kept bucket (``keepOnDestroy``, the default) is ``protect``-ed: an ``up`` that would
  replace it (a ``clusterName`` change renames the derived bucket; a ``region`` change
  moves it) or delete it fails with Pulumi's "protected" error before anything happens,
  instead of orphaning or emptying it. It is also ``retain_on_delete``: once unprotected
  (``pulumi state unprotect``) a destroy drops it from the state and leaves it in Google
  Cloud. ``pulumi destroy --exclude-protected`` tears down everything else and keeps the
  bucket in the state, so the next ``up`` uses it again.
* an unkept bucket has ``force_destroy``: destroy deletes it with every object.
* ``adopt`` imports an existing bucket by name (Pulumi's ``import`` resource option; on
  later ``up``s the option matches the state and does nothing).

Pods get roles as Workload Identity principals of their Kubernetes service accounts;
no Google service account, no keys. The roles are the two the GCS FUSE CSI driver
documents for its mounts (GoogleCloudPlatform/gcs-fuse-csi-driver docs/authentication.md):

* readers: ``roles/storage.objectViewer`` (objects get and list), enough for a
  read-only FUSE mount and for streaming weights;
* writers: ``roles/storage.objectUser`` (objects create, get, list, update, delete;
  no IAM or bucket settings), enough for a read-write mount and for
  ``gcloud storage cp`` to create and overwrite objects.
* prefix writers (``components.platform.PREFIX_WRITERS``: the chat backup account under
  ``backups/``, the compile-cache uploader under ``compile-cache/``):
  ``roles/storage.objectCreator`` (create only: it can neither read, list, overwrite nor
  delete) under an IAM condition limiting it to objects whose name starts with its
  prefix (Cloud Storage IAM Conditions on ``resource.name``,
  https://cloud.google.com/storage/docs/access-control/iam#conditions; they need the
  uniform bucket-level access set here).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from components.config import GcpPlatformConfig
from components.gcp.identity import workload_identity_principal
from components.gcp.options import child_options
from components.platform import BACKUP_PREFIX, PrefixWriter

READER_ROLE = "roles/storage.objectViewer"
WRITER_ROLE = "roles/storage.objectUser"
PREFIX_WRITER_ROLE = "roles/storage.objectCreator"


def prefix_condition(bucket: str, prefix: str) -> str:
    """CEL expression true only for objects of ``bucket`` under ``prefix``."""
    return f'resource.name.startsWith("projects/_/buckets/{bucket}/objects/{prefix}")'


def bucket_name(config: GcpPlatformConfig) -> str:
    """The configured name, else one globally unique because project ids are, with the
    cluster name telling stacks apart (a rename changes it: see protect above)."""
    store = config.bucket_store
    assert store is not None, "only called for a stack with a cloud bucket"
    return store.name or f"{config.cluster_name}-{config.project}-models"


@dataclass(frozen=True)
class BucketBindingsArgs:
    """Who may use a bucket: the workloads' Kubernetes service accounts, as Workload
    Identity principals of ``project``'s pool."""

    bucket: pulumi.Input[str]  # the bucket's name
    project: str  # the GKE cluster's project (its pool, PROJECT.svc.id.goog)
    namespace: str
    reader_service_account: str
    writer_service_account: str
    prefix_writers: Sequence[PrefixWriter] = ()
    # The project's number, if known; else looked up (organizations.get_project).
    project_number: str | None = None


def bind_bucket(
    name: str,
    args: BucketBindingsArgs,
    parent: pulumi.Resource,
    opts: pulumi.ResourceOptions | None,
    depends_on: Sequence[pulumi.Resource] = (),
) -> list[gcp.storage.BucketIAMMember]:
    """The reader, writer and prefix-writer grants on a bucket, as children of ``parent``
    named ``{name}-{account}``: the stack's own bucket (``ModelBucket``) and a bucket the
    user already has (``BucketAccess``) are bound the same way."""
    bucket = pulumi.Output.from_input(args.bucket)
    number: pulumi.Output[str] = (
        pulumi.Output.from_input(args.project_number)
        if args.project_number
        else gcp.organizations.get_project_output(
            project_id=args.project, opts=pulumi.InvokeOutputOptions(parent=parent)
        ).number
    )

    def principal(account: str) -> pulumi.Output[str]:
        return number.apply(lambda n: workload_identity_principal(n, args.project, args.namespace, account))

    after = list(depends_on)
    bindings = [
        gcp.storage.BucketIAMMember(
            f"{name}-{account}",
            bucket=bucket,
            role=role,
            member=principal(account),
            opts=child_options(parent, opts, depends_on=after),
        )
        for account, role in (
            (args.reader_service_account, READER_ROLE),
            (args.writer_service_account, WRITER_ROLE),
        )
    ]
    for writer in args.prefix_writers:
        bindings.append(
            gcp.storage.BucketIAMMember(
                f"{name}-{writer.service_account}",
                bucket=bucket,
                role=PREFIX_WRITER_ROLE,
                member=principal(writer.service_account),
                condition=gcp.storage.BucketIAMMemberConditionArgs(
                    title=writer.title,
                    description=f"create objects under {writer.prefix} only",
                    expression=bucket.apply(functools.partial(prefix_condition, prefix=writer.prefix)),
                ),
                opts=child_options(parent, opts, depends_on=after),
            )
        )
    return bindings


class BucketAccess(pulumi.ComponentResource):
    """The workloads' grants on a bucket the user already has (an existing GKE cluster's
    ``modelStore: {kind: bucket, name}``). Only IAM members are declared: the bucket is
    never imported, changed or deleted, and a destroy removes just these grants."""

    bindings: list[gcp.storage.BucketIAMMember]

    def __init__(self, name: str, args: BucketBindingsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llm-serving:gcp:BucketAccess", name, None, opts)
        self.bindings = bind_bucket(name, args, self, opts)
        self.register_outputs({"bucket": args.bucket})


@dataclass(frozen=True)
class ModelBucketArgs:
    config: GcpPlatformConfig
    namespace: str
    reader_service_account: str
    writer_service_account: str
    # The first cluster with Workload Identity creates the project's pool; IAM refuses
    # principals of a pool that does not exist yet.
    workload_pool_owner: pulumi.Resource
    # Accounts that may only create objects under their prefix (chat backups, compile caches).
    prefix_writers: Sequence[PrefixWriter] = ()


class ModelBucket(pulumi.ComponentResource):
    """A bucket for weights and benchmark results, bound to the workloads' service accounts."""

    name: pulumi.Output[str]
    url: pulumi.Output[str]  # gs://name
    bindings: list[gcp.storage.BucketIAMMember]

    def __init__(self, name: str, args: ModelBucketArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llm-serving:gcp:ModelBucket", name, None, opts)
        config = args.config
        store = config.bucket_store
        assert store is not None, "only built for a stack with a cloud bucket"
        keep = store.keep_on_destroy
        bucket = gcp.storage.Bucket(
            name,
            name=bucket_name(config),
            location=config.region.upper(),  # GCS reports locations in upper case
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            # Kept: `pulumi destroy` leaves bucket and data. Not kept: deleted with its objects.
            force_destroy=not keep,
            lifecycle_rules=[
                gcp.storage.BucketLifecycleRuleArgs(
                    action=gcp.storage.BucketLifecycleRuleActionArgs(type="Delete"),
                    condition=gcp.storage.BucketLifecycleRuleConditionArgs(
                        age=store.backup_retention_days, matches_prefixes=[BACKUP_PREFIX]
                    ),
                )
            ]
            if store.backup_retention_days
            else None,
            opts=child_options(
                self,
                opts,
                protect=keep,
                retain_on_delete=keep,
                import_=bucket_name(config) if store.adopt else None,
            ),
        )
        self.bindings = bind_bucket(
            name,
            BucketBindingsArgs(
                bucket.name,
                config.project,
                args.namespace,
                args.reader_service_account,
                args.writer_service_account,
                args.prefix_writers,
            ),
            self,
            opts,
            depends_on=[args.workload_pool_owner],
        )
        self.name, self.url = bucket.name, bucket.url
        self.register_outputs({"name": self.name, "url": self.url})
