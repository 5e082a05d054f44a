"""The Google Cloud APIs the platform uses, enabled in the project before anything else.

A new project has most of them off, and the first resource of a disabled API fails with
"API has not been used in project". The list is the one Google's A4 environment guide
asks for (gcp-a4high.md §2, "Required APIs"), plus Compute Engine for the networks and
IAM for the node service account. Destroying the stack leaves them on: other workloads
in the project may use them, and disabling an API can cascade to their resources.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from components.gcp.options import child_options

SERVICES = (
    "cloudresourcemanager.googleapis.com",
    "serviceusage.googleapis.com",
    "compute.googleapis.com",
    "iam.googleapis.com",
    "container.googleapis.com",
    "storage.googleapis.com",
    "artifactregistry.googleapis.com",
    "monitoring.googleapis.com",
    "logging.googleapis.com",
)

# GKE image streaming reads images through the Container File System API (GKE docs, "Use
# Image streaming to pull container images", Requirements).
IMAGE_STREAMING_SERVICES = ("containerfilesystem.googleapis.com",)


@dataclass(frozen=True)
class ProjectServicesArgs:
    project: str
    extra: tuple[str, ...] = ()  # beyond SERVICES, e.g. IMAGE_STREAMING_SERVICES


class ProjectServices(pulumi.ComponentResource):
    """One ``google_project_service`` per API; depend on this component to wait for all."""

    def __init__(self, name: str, args: ProjectServicesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llm-serving:gcp:ProjectServices", name, None, opts)
        self.services = [
            gcp.projects.Service(
                f"{name}-{service.split('.')[0]}",
                project=args.project,
                service=service,
                disable_on_destroy=False,
                disable_dependent_services=False,
                opts=child_options(self, opts),
            )
            for service in (*SERVICES, *args.extra)
        ]
        self.register_outputs({"services": [s.service for s in self.services]})
