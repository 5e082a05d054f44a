"""Artifact Registry Docker repositories: the stack's own, or a mirror of Docker Hub.

In the cluster's region, so nodes pull in-region through Private Google Access; the
nodes' service account may read every repository of the project
(``roles/artifactregistry.reader`` in ``identity.NODE_ROLES``), the mirror included.

The mirror is a remote repository (https://cloud.google.com/artifact-registry/docs/repositories/remote-repo):
the first pull of an image fetches it from Docker Hub and caches it, later pulls of the
same tag or digest are served from the cache. With credentials it signs in to Docker
Hub as the user's account; the token stays in Secret Manager, read by Artifact
Registry's service agent (https://cloud.google.com/artifact-registry/docs/repositories/configure-remote-auth-dockerhub).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from components.config import CloudRepository, MirrorCredentials, RegistryConfig
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


# The Docker Hub preset of a Docker remote repository (pulumi-gcp artifactregistry
# RepositoryRemoteRepositoryConfigDockerRepositoryArgs.public_repository).
DOCKER_HUB = "DOCKER_HUB"
SECRET_ACCESSOR = "roles/secretmanager.secretAccessor"


def docker_registry_url(region: str, project: str, repository_id: str) -> str:
    """``REGION-docker.pkg.dev/PROJECT/REPO``: how images of a repository are named
    (https://cloud.google.com/artifact-registry/docs/docker/names)."""
    return f"{region}-docker.pkg.dev/{project}/{repository_id}"


def artifact_registry_agent(project_number: str) -> str:
    """Artifact Registry's service agent, which reads upstream credentials for remote
    repositories (configure-remote-auth-dockerhub, "Grant the service account access")."""
    return f"serviceAccount:service-{project_number}@gcp-sa-artifactregistry.iam.gserviceaccount.com"


@dataclass(frozen=True)
class DockerHubMirrorArgs:
    project: str
    repository_id: str
    region: str
    description: str
    credentials: MirrorCredentials | None = None  # config-validated: username and a secret version


class DockerHubMirror(pulumi.ComponentResource):
    """A remote repository in front of Docker Hub; ``url`` replaces ``docker.io`` in image names."""

    url: str
    ready: list[pulumi.Resource]

    def __init__(self, name: str, args: DockerHubMirrorArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llm-serving:gcp:DockerHubMirror", name, None, opts)
        credentials = args.credentials
        waits: list[pulumi.Resource] = []
        if credentials is not None:
            # projects/P/secrets/S/versions/V -> the secret projects/P/secrets/S
            secret_project, secret = credentials.secret.split("/")[1], credentials.secret.split("/")[3]
            number = gcp.organizations.get_project_output(
                project_id=args.project, opts=pulumi.InvokeOutputOptions(parent=self)
            ).number
            waits.append(
                gcp.secretmanager.SecretIamMember(
                    f"{name}-token-reader",
                    project=secret_project,
                    secret_id=secret,
                    role=SECRET_ACCESSOR,
                    member=number.apply(artifact_registry_agent),
                    opts=child_options(self, opts),
                )
            )
        repository = gcp.artifactregistry.Repository(
            name,
            project=args.project,
            repository_id=args.repository_id,
            format="DOCKER",
            mode="REMOTE_REPOSITORY",
            location=args.region,
            description=args.description,
            remote_repository_config=gcp.artifactregistry.RepositoryRemoteRepositoryConfigArgs(
                description="Docker Hub",
                docker_repository=gcp.artifactregistry.RepositoryRemoteRepositoryConfigDockerRepositoryArgs(
                    public_repository=DOCKER_HUB
                ),
                upstream_credentials=gcp.artifactregistry.RepositoryRemoteRepositoryConfigUpstreamCredentialsArgs(
                    username_password_credentials=gcp.artifactregistry.RepositoryRemoteRepositoryConfigUpstreamCredentialsUsernamePasswordCredentialsArgs(
                        username=credentials.username, password_secret_version=credentials.secret
                    )
                )
                if credentials
                else None,
            ),
            # The agent must be able to read the token before the repository validates it.
            opts=child_options(self, opts, depends_on=waits),
        )
        self.url = docker_registry_url(args.region, args.project, args.repository_id)
        self.ready = [repository, *waits]
        self.register_outputs({"url": repository.registry_uri})
