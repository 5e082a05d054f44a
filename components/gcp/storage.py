"""The stack's model bucket and who may use it.

Regional (the cluster's region, so GCS FUSE reads stay in-region, gcp-a4high.md §7.10),
uniform bucket-level access (required for Workload Identity read-write mounts, GCS FUSE
CSI driver docs/authentication.md) and public access prevention enforced.

Pods get roles as Workload Identity principals of their Kubernetes service accounts;
no Google service account, no keys. The roles are the two the GCS FUSE CSI driver
documents for its mounts (GoogleCloudPlatform/gcs-fuse-csi-driver docs/authentication.md):

* readers: ``roles/storage.objectViewer`` (objects get and list), enough for a
  read-only FUSE mount and for streaming weights;
* writers: ``roles/storage.objectUser`` (objects create, get, list, update, delete;
  no IAM or bucket settings), enough for a read-write mount and for
  ``gcloud storage cp`` to create and overwrite objects.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from components.config import GcpPlatformConfig
from components.gcp.identity import workload_identity_principal
from components.gcp.options import child_options

READER_ROLE = "roles/storage.objectViewer"
WRITER_ROLE = "roles/storage.objectUser"


def bucket_name(config: GcpPlatformConfig) -> str:
    """Globally unique because project ids are; the cluster name tells stacks apart."""
    return f"{config.cluster_name}-{config.project}-models"


@dataclass(frozen=True)
class ModelBucketArgs:
    config: GcpPlatformConfig
    namespace: str
    reader_service_account: str
    writer_service_account: str
    # The first cluster with Workload Identity creates the project's pool; IAM refuses
    # principals of a pool that does not exist yet.
    workload_pool_owner: pulumi.Resource


class ModelBucket(pulumi.ComponentResource):
    """A bucket for weights and benchmark results, bound to the workloads' service accounts."""

    name: pulumi.Output[str]
    url: pulumi.Output[str]  # gs://name
    bindings: list[gcp.storage.BucketIAMMember]

    def __init__(self, name: str, args: ModelBucketArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llm-serving:gcp:ModelBucket", name, None, opts)
        config = args.config
        keep = config.bucket.keep_on_destroy
        bucket = gcp.storage.Bucket(
            name,
            name=bucket_name(config),
            location=config.region.upper(),  # GCS reports locations in upper case
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            # Kept: `pulumi destroy` leaves bucket and data. Not kept: deleted with its objects.
            force_destroy=not keep,
            opts=child_options(self, opts, retain_on_delete=keep),
        )
        project = gcp.organizations.get_project_output(
            project_id=config.project, opts=pulumi.InvokeOutputOptions(parent=self)
        )

        def principal(account: str) -> pulumi.Output[str]:
            return project.number.apply(
                lambda number: workload_identity_principal(number, config.project, args.namespace, account)
            )

        self.bindings = [
            gcp.storage.BucketIAMMember(
                f"{name}-{account}",
                bucket=bucket.name,
                role=role,
                member=principal(account),
                opts=child_options(self, opts, depends_on=[args.workload_pool_owner]),
            )
            for account, role in (
                (args.reader_service_account, READER_ROLE),
                (args.writer_service_account, WRITER_ROLE),
            )
        ]
        self.name, self.url = bucket.name, bucket.url
        self.register_outputs({"name": self.name, "url": self.url})
