"""Who things run as: the nodes' own service account, and pods' Workload Identity.

Nodes get a dedicated service account with the minimal roles GKE documents for nodes,
plus pulling from Artifact Registry; never the Compute Engine default account, which
holds Editor in most projects. Pods never use the node's identity: with the GKE
metadata server on every pool, a pod is its Kubernetes service account, which IAM
names as a Workload Identity Federation principal (no Google service account, no keys).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from components.gcp.options import child_options

# GKE hardening guide, "Use least privilege IAM service accounts"
# (https://cloud.google.com/kubernetes-engine/docs/how-to/hardening-your-cluster#use_least_privilege_sa),
# the node roles of Google's A4 blueprint without its storage.objectAdmin (gcp-a4high.md §2),
# and artifactregistry.reader so nodes can pull the stack's own images.
NODE_ROLES = (
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
    "roles/monitoring.viewer",
    "roles/stackdriver.resourceMetadata.writer",
    "roles/artifactregistry.reader",
)

# GKE image streaming with a node service account of our own: the account must be a
# Service Usage Consumer in the project that holds the images (GKE docs, "Use Image
# streaming to pull container images", Requirements).
IMAGE_STREAMING_ROLES = ("roles/serviceusage.serviceUsageConsumer",)

# IAM scopes are what limit the node account; the OAuth scope is the full one GKE recommends
# with a custom service account (same hardening guide).
NODE_OAUTH_SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]


def workload_pool(project: str) -> str:
    """The project's Workload Identity pool of GKE (gcp-a4high.md §2)."""
    return f"{project}.svc.id.goog"


def workload_identity_principal(project_number: str, project: str, namespace: str, service_account: str) -> str:
    """The IAM principal of a Kubernetes service account (gcp-a4high.md §2; GCS FUSE CSI
    driver docs/authentication.md binds bucket roles to exactly this form)."""
    return (
        f"principal://iam.googleapis.com/projects/{project_number}/locations/global/"
        f"workloadIdentityPools/{workload_pool(project)}/subject/ns/{namespace}/sa/{service_account}"
    )


@dataclass(frozen=True)
class NodeIdentityArgs:
    project: str
    account_id: str  # 6-30 characters, RFC 1035
    extra_roles: tuple[str, ...] = ()  # beyond NODE_ROLES, e.g. IMAGE_STREAMING_ROLES


class NodeIdentity(pulumi.ComponentResource):
    """A service account for GKE nodes with the roles a node needs and nothing else."""

    email: pulumi.Output[str]

    def __init__(self, name: str, args: NodeIdentityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llm-serving:gcp:NodeIdentity", name, None, opts)
        child = child_options(self, opts)
        account = gcp.serviceaccount.Account(
            name,
            account_id=args.account_id,
            display_name="GKE nodes of llm-serving",
            opts=child,
        )
        self.roles = [
            gcp.projects.IAMMember(
                f"{name}-{role.removeprefix('roles/').replace('.', '-').lower()}",
                project=args.project,
                role=role,
                member=account.member,
                opts=child,
            )
            for role in (*NODE_ROLES, *args.extra_roles)
        ]
        self.email = account.email
        self.register_outputs({"email": self.email})
