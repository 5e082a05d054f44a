"""Where images and weights live: an ECR repository and an S3 bucket, and who may use the bucket.

Pods reach the bucket as Kubernetes service accounts bound to IAM roles through EKS
Pod Identity: the reader role may list and get, the writer role may also put and
delete. No access keys exist anywhere (docs/DESIGN.md, secure defaults).

What keeps the data (``modelStore`` in components/config/base.py):

* the bucket has a fixed name (``modelStore.name``, else cluster-ACCOUNT-REGION), never
  Pulumi's random auto-name: after a ``destroy`` that kept it, a second ``up`` fails on
  "BucketAlreadyOwnedByYou" instead of quietly starting over with an empty bucket; the
  README's "Keeping data" says how to adopt it.
* a kept bucket (``keepOnDestroy``, the default) and its settings are ``protect``-ed, so
  an ``up`` that would replace or delete them fails before anything happens, and
  ``retain_on_delete``: once unprotected, a destroy leaves them in AWS.
  ``pulumi destroy --exclude-protected`` keeps them in the state for the next ``up``.
* ``adopt`` imports the bucket by name (Pulumi's ``import`` resource option).
* the ECR repository is named after the cluster unless ``registry.name`` is set, so two
  stacks in one account and region never share it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws import iam
from components.config import CloudBucket, CloudRepository
from components.config.aws import derived_bucket_name
from components.platform import BACKUP_PREFIX

# S3 actions (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html):
# reading a prefix needs ListBucket on the bucket and GetObject on the objects; writing
# large weights uses multipart uploads, which a writer must be able to abort and list.
READ_BUCKET_ACTIONS = ("s3:ListBucket", "s3:GetBucketLocation")
READ_OBJECT_ACTIONS = ("s3:GetObject",)
WRITE_BUCKET_ACTIONS = ("s3:ListBucketMultipartUploads",)
WRITE_OBJECT_ACTIONS = ("s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts")
# Logical name of the bucket and its settings (README "Keeping data": `pulumi import`).
BUCKET_RESOURCE = "models"


def bucket_access(bucket_arn: pulumi.Input[str], *, write: bool) -> pulumi.Output[str]:
    """The inline policy of the reader (``write=False``) or writer role."""
    objects = pulumi.Output.concat(bucket_arn, "/*")
    bucket_actions = [*READ_BUCKET_ACTIONS, *(WRITE_BUCKET_ACTIONS if write else ())]
    object_actions = [*READ_OBJECT_ACTIONS, *(WRITE_OBJECT_ACTIONS if write else ())]
    return iam.document(
        [
            {"Sid": "Bucket", "Effect": "Allow", "Action": bucket_actions, "Resource": bucket_arn},
            {"Sid": "Objects", "Effect": "Allow", "Action": object_actions, "Resource": objects},
        ]
    )


def create_only_under(bucket_arn: pulumi.Input[str], prefix: str) -> pulumi.Output[str]:
    """The inline policy of an account that may only add objects under ``prefix``: no
    list, no get, no delete (multipart uploads of large files are covered by PutObject;
    AbortMultipartUpload lets a failed one clean up after itself)."""
    return iam.document(
        [
            {
                "Sid": "CreateUnderPrefix",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:AbortMultipartUpload"],
                "Resource": pulumi.Output.concat(bucket_arn, f"/{prefix}*"),
            }
        ]
    )


def tls_only(bucket_arn: pulumi.Input[str]) -> pulumi.Output[str]:
    """Bucket policy refusing plain HTTP (S3 security best practices:
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/security-best-practices.html)."""
    return iam.document(
        [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [bucket_arn, pulumi.Output.concat(bucket_arn, "/*")],
                "Condition": {"Bool": {"aws:SecureTransport": False}},
            }
        ]
    )


@dataclass(frozen=True)
class ServiceAccountAccess:
    """A Kubernetes service account that may use the bucket, and how."""

    name: str
    write: bool
    # Set: the account may only create objects under this prefix (chat backups), nothing else.
    create_only_prefix: str | None = None


def access_words(account: ServiceAccountAccess) -> str:
    if account.create_only_prefix:
        return f"adds objects under {account.create_only_prefix} of"
    return "reads and writes" if account.write else "reads"


@dataclass(frozen=True)
class PodIdentityAccessArgs:
    """Which service accounts of which EKS cluster may use a bucket, and how."""

    cluster: str  # the EKS cluster's name, as Pod Identity tags sessions with it
    cluster_name: pulumi.Input[str]  # the same, as the associations take it (after the cluster exists)
    namespace: str
    bucket_arn: pulumi.Input[str]
    service_accounts: Sequence[ServiceAccountAccess]


def pod_identity_access(
    name: str, args: PodIdentityAccessArgs, parent: pulumi.Resource
) -> list[aws.eks.PodIdentityAssociation]:
    """Per service account: an IAM role only that account of that cluster may assume, its
    policy on the bucket, and the Pod Identity association, children of ``parent`` named
    ``{name}-{account}``. The stack's own bucket (``Storage``) and a bucket the user
    already has (``BucketAccess``) are bound the same way."""
    associations = []
    for account in args.service_accounts:
        role = aws.iam.Role(
            f"{name}-{account.name}",
            assume_role_policy=iam.pod_identity_trust_policy(args.cluster, args.namespace, account.name),
            description=f"EKS {args.cluster}: {args.namespace}/{account.name} "
            f"{access_words(account)} the model bucket (Pod Identity)",
            opts=pulumi.ResourceOptions(parent=parent),
        )
        access = aws.iam.RolePolicy(
            f"{name}-{account.name}",
            role=role.id,
            policy=create_only_under(args.bucket_arn, account.create_only_prefix)
            if account.create_only_prefix
            else bucket_access(args.bucket_arn, write=account.write),
            opts=pulumi.ResourceOptions(parent=parent),
        )
        # After the policy: a pod that waits for the association has its permissions.
        associations.append(
            aws.eks.PodIdentityAssociation(
                f"{name}-{account.name}",
                cluster_name=args.cluster_name,
                namespace=args.namespace,
                service_account=account.name,
                role_arn=role.arn,
                opts=pulumi.ResourceOptions(parent=parent, depends_on=[access]),
            )
        )
    return associations


class BucketAccess(pulumi.ComponentResource):
    """Pod Identity roles on a bucket the user already has (an existing EKS cluster's
    ``modelStore: {kind: bucket, name}``). Only IAM roles, their policies and the
    associations are declared: the bucket is never imported, changed or deleted."""

    associations: list[aws.eks.PodIdentityAssociation]

    def __init__(self, name: str, args: PodIdentityAccessArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llm-serving:aws:BucketAccess", name, None, opts)
        self.associations = pod_identity_access(name, args, self)
        self.register_outputs({"bucket_arn": args.bucket_arn})


@dataclass(frozen=True)
class StorageArgs:
    cluster: str
    cluster_name: pulumi.Output[str]  # depends on the cluster: associations need it
    region: str
    account_id: pulumi.Input[str]  # the derived bucket name carries it (S3 names are global)
    bucket: CloudBucket | None
    registry: CloudRepository | None
    namespace: str
    service_accounts: Sequence[ServiceAccountAccess]


class Storage(pulumi.ComponentResource):
    """ECR repository, S3 bucket, and Pod Identity roles for the bucket's service accounts."""

    registry_url: pulumi.Output[str] | None
    bucket_name: pulumi.Output[str] | None
    associations: list[aws.eks.PodIdentityAssociation]

    def __init__(self, name: str, args: StorageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llm-serving:aws:Storage", name, None, opts)
        cluster = args.cluster
        child = pulumi.ResourceOptions(parent=self)

        self.registry_url = None
        if args.registry is not None:
            repository = aws.ecr.Repository(
                f"{cluster}-registry",
                name=args.registry.name or cluster.lower(),
                # Serving images are deployed by tag: a tag that cannot move is a deployment
                # that cannot change underneath you.
                image_tag_mutability="IMMUTABLE",
                image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
                encryption_configurations=[aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="AES256")],
                # Images are rebuilt from source; `pulumi destroy` removes them (DESIGN.md).
                force_delete=True,
                opts=child,
            )
            self.registry_url = repository.repository_url

        self.bucket_name = None
        self.associations = []
        if args.bucket is not None:
            store = args.bucket
            keep = store.keep_on_destroy
            bucket_name: pulumi.Input[str] = store.name or pulumi.Output.from_input(args.account_id).apply(
                lambda account_id: derived_bucket_name(cluster, account_id, args.region)
            )
            # A kept bucket keeps its protections too: deleting these settings on destroy
            # would leave it without its public-access block and TLS-only policy.
            # Logical names without the cluster name, so a clusterName change with
            # modelStore.name set keeps the same resources; the aliases carry stacks made
            # when the names had it.
            settings = pulumi.ResourceOptions(
                parent=self,
                protect=keep,
                retain_on_delete=keep,
                aliases=[pulumi.Alias(name=f"{cluster}-models")],
            )
            bucket = aws.s3.Bucket(
                BUCKET_RESOURCE,
                bucket=bucket_name,
                force_destroy=not keep,
                opts=pulumi.ResourceOptions.merge(
                    settings,
                    pulumi.ResourceOptions(
                        aliases=[pulumi.Alias(name=f"{cluster.lower()}-models")],
                        import_=store.name if store.adopt else None,
                    ),
                ),
            )
            aws.s3.BucketPublicAccessBlock(
                BUCKET_RESOURCE,
                bucket=bucket.id,
                block_public_acls=True,
                block_public_policy=True,
                ignore_public_acls=True,
                restrict_public_buckets=True,
                opts=settings,
            )
            aws.s3.BucketOwnershipControls(
                BUCKET_RESOURCE,
                bucket=bucket.id,
                rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),  # no ACLs
                opts=settings,
            )
            aws.s3.BucketServerSideEncryptionConfiguration(
                BUCKET_RESOURCE,
                bucket=bucket.id,
                rules=[
                    aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                        apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                            sse_algorithm="AES256"
                        )
                    )
                ],
                opts=settings,
            )
            aws.s3.BucketPolicy(BUCKET_RESOURCE, bucket=bucket.id, policy=tls_only(bucket.arn), opts=settings)
            if store.backup_retention_days:
                # The backup account cannot delete: old backups expire by this rule.
                aws.s3.BucketLifecycleConfiguration(
                    BUCKET_RESOURCE,
                    bucket=bucket.id,
                    rules=[
                        aws.s3.BucketLifecycleConfigurationRuleArgs(
                            id="expire-backups",
                            status="Enabled",
                            filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=BACKUP_PREFIX),
                            expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                                days=store.backup_retention_days
                            ),
                        )
                    ],
                    opts=settings,
                )

            self.associations = pod_identity_access(
                cluster,
                PodIdentityAccessArgs(cluster, args.cluster_name, args.namespace, bucket.arn, args.service_accounts),
                self,
            )
            self.bucket_name = bucket.bucket

        self.register_outputs({"registry_url": self.registry_url, "bucket": self.bucket_name})
