"""An Artifact Registry Docker repository for the stack's own serving images.

In the cluster's region, so nodes pull in-region through Private Google Access; the
nodes' service account may read it (``identity.NODE_ROLES``).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from components.config import CloudRepository, RegistryConfig
from components.gcp.options import child_options


def registry_name(config: RegistryConfig, cluster_name: str) -> str:
    """The configured repository id, else the cluster name: two stacks in one project
    then never share (or fight over) one repository id."""
    assert isinstance(config, CloudRepository), "only called for a stack with its own registry"
    return config.name or cluster_name


@dataclass(frozen=True)
class ContainerRegistryArgs:
    project: str
    repository_id: str
    region: str
    description: str


class ContainerRegistry(pulumi.ComponentResource):
    """A Docker repository; ``url`` is the ``REGION-docker.pkg.dev/PROJECT/REPO`` prefix of image names."""

    url: pulumi.Output[str]

    def __init__(self, name: str, args: ContainerRegistryArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llm-serving:gcp:ContainerRegistry", name, None, opts)
        repository = gcp.artifactregistry.Repository(
            name,
            project=args.project,
            repository_id=args.repository_id,
            format="DOCKER",
            location=args.region,
            description=args.description,
            opts=child_options(self, opts),
        )
        self.url = repository.registry_uri
        self.register_outputs({"url": self.url})
