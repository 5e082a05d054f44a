"""A bucket the user already has, on a managed cluster the stack did not build.

``modelStore: {kind: bucket, name}`` with ``identity`` naming the cluster: pods reach the
bucket as their Kubernetes service accounts, exactly as on the stacks that build their
own cluster, and with the same grants, declared by the same code:

* GKE (``identity.kind: gke``): Workload Identity Federation principals of the project's
  pool get the reader, writer and prefix-writer roles on the bucket
  (components/gcp/storage.py ``bind_bucket``, as ``ModelBucket`` binds the stack's own);
* EKS (``identity.kind: eks``): an IAM role per service account, trusted by that account
  of that cluster only, with its policy on the bucket and a Pod Identity association
  (components/aws/storage.py ``pod_identity_access``, as ``Storage`` binds its own).

Only grants are declared: the bucket is never imported, changed or deleted (config
refuses ``adopt``, ``keepOnDestroy: false`` and ``backupRetentionDays`` here). The
Google Cloud and AWS providers take the deploying shell's credentials (gcloud ADC, the
AWS credential chain), with the project or region from ``identity``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_gcp as gcp

from components.aws import storage as aws_storage
from components.aws.platform import BUCKET_USERS, s3_model_store
from components.aws.pod_network import POD_IDENTITY_AGENT
from components.config.existing import ExistingPlatformConfig
from components.gcp import storage as gcp_storage
from components.gcp.platform import gcs_model_store
from components.gcp.pod_network import GKE_METADATA_SERVER
from components.platform import (
    PREFIX_WRITERS,
    READER_SERVICE_ACCOUNT,
    WRITER_SERVICE_ACCOUNT,
    ModelStore,
    NodeEndpoint,
)


def identity_endpoints(config: ExistingPlatformConfig) -> tuple[NodeEndpoint, ...]:
    """Where pods exchange their service account for cloud credentials (NetworkPolicy
    egress): the GKE metadata server or the EKS Pod Identity agent, as on those platforms."""
    if config.gke is not None:
        return tuple(GKE_METADATA_SERVER)
    if config.eks is not None:
        return (POD_IDENTITY_AGENT,)
    return ()


@dataclass(frozen=True)
class ExistingBucketArgs:
    config: ExistingPlatformConfig
    namespace: str


class ExistingBucket(pulumi.ComponentResource):
    """The workloads' grants on the user's bucket, through the managed cluster's identity."""

    model_store: ModelStore
    ready: list[pulumi.Resource]

    def __init__(self, name: str, args: ExistingBucketArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llm-serving:existing:Bucket", name, None, opts)
        config = args.config
        store = config.bucket_store
        assert store is not None and store.name is not None, "config requires a named bucket here"
        if config.gke is not None:
            identity = config.gke
            google = gcp.Provider(
                f"{name}-google", gcp.ProviderArgs(project=identity.project), pulumi.ResourceOptions(parent=self)
            )
            access = gcp_storage.BucketAccess(
                f"{name}-access",
                gcp_storage.BucketBindingsArgs(
                    store.name,
                    identity.project,
                    args.namespace,
                    READER_SERVICE_ACCOUNT,
                    WRITER_SERVICE_ACCOUNT,
                    PREFIX_WRITERS,
                    identity.project_number,
                ),
                pulumi.ResourceOptions(parent=self, providers=[google]),
            )
            self.ready = list(access.bindings)
            self.model_store = gcs_model_store(store.name, fuse=identity.gcs_fuse)
        else:
            assert config.eks is not None, "config requires an identity with a bucket"
            eks = config.eks
            provider = aws.Provider(
                f"{name}-aws", aws.ProviderArgs(region=eks.region), pulumi.ResourceOptions(parent=self)
            )
            partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=self, provider=provider))
            bucket_name = store.name
            arn = partition.partition.apply(lambda p: f"arn:{p}:s3:::{bucket_name}")
            access_args = aws_storage.PodIdentityAccessArgs(
                eks.cluster_name, eks.cluster_name, args.namespace, arn, BUCKET_USERS
            )
            bound = aws_storage.BucketAccess(
                f"{name}-access",
                access_args,
                pulumi.ResourceOptions(parent=self, providers=[provider]),
            )
            self.ready = list(bound.associations)
            self.model_store = s3_model_store(store.name, eks.region)
        self.register_outputs({"bucket": self.model_store.url()})
