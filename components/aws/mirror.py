"""A pull-through mirror of Docker Hub in the account's private ECR registry.

An ECR pull-through cache rule (https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-through-cache.html)
maps a repository prefix to an upstream registry: a node pulling
``ACCOUNT.dkr.ecr.REGION.amazonaws.com/PREFIX/vllm/vllm-openai:v0.33.0`` makes ECR fetch
``vllm/vllm-openai:v0.33.0`` from Docker Hub, create the repository ``PREFIX/vllm/vllm-openai``
and keep the image there; later pulls are served from the region.

Docker Hub as an upstream needs a Docker Hub account: ECR reads it from a Secrets Manager
secret whose name starts with ``ecr-pullthroughcache/`` (keys ``username`` and
``accessToken``). The user creates that secret; this program only names it, so no token
is ever in the Pulumi state.

The nodes pull through their instance roles: besides the pull permissions of
``AmazonEC2ContainerRegistryPullOnly`` (iam.NODE_POLICIES), the first pull of an image
needs ``ecr:BatchImportUpstreamImage`` and, while the repository does not exist yet,
``ecr:CreateRepository`` (https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-through-cache-iam.html),
granted here on the prefix's repositories only.

Repositories ECR creates this way are not Pulumi's: ``pulumi destroy`` removes the rule
and leaves the cached images (delete the ``PREFIX/`` repositories by hand if you mean to).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws import iam

# ECR's name for Docker Hub as an upstream (pull-through-cache-creating-rule.html, "Docker Hub").
DOCKER_HUB_UPSTREAM = "registry-1.docker.io"
PULL_THROUGH_ACTIONS = ("ecr:BatchImportUpstreamImage", "ecr:CreateRepository")
# On later pulls of a cached tag ECR checks Docker Hub for a newer image under that tag and
# updates its copy at least once every 24 hours (pull-through-cache.html), so the
# repositories must allow moving tags; the images a moved tag leaves behind expire after
# this many days. A template applies when ECR creates a repository, never afterwards.
UNTAGGED_EXPIRY_DAYS = 7


def cache_lifecycle_policy(days: int = UNTAGGED_EXPIRY_DAYS) -> str:
    """An ECR lifecycle policy expiring untagged images ``days`` after they were pushed
    (ECR user guide, "Lifecycle policy parameters")."""
    rule = {
        "rulePriority": 1,
        "description": f"expire untagged images after {days} days",
        "selection": {
            "tagStatus": "untagged",
            "countType": "sinceImagePushed",
            "countUnit": "days",
            "countNumber": days,
        },
        "action": {"type": "expire"},
    }
    return json.dumps({"rules": [rule]}, separators=(",", ":"))


def pull_through_policy(repositories_arn: pulumi.Input[str]) -> pulumi.Output[str]:
    """A node role's inline policy: import from upstream into the mirror's repositories."""
    return iam.document(
        [
            {
                "Sid": "PullThroughDockerHub",
                "Effect": "Allow",
                "Action": list(PULL_THROUGH_ACTIONS),
                "Resource": repositories_arn,
            }
        ]
    )


@dataclass(frozen=True)
class DockerHubMirrorArgs:
    account: iam.Account
    prefix: str  # ECR repository prefix (config: registry.name, else CLUSTER-docker-hub)
    credentials_secret: str  # a Secrets Manager secret's ARN, or its name (ecr-pullthroughcache/...)
    node_roles: Mapping[str, pulumi.Input[str]]  # label -> name of every node role that pulls workload images


class DockerHubMirror(pulumi.ComponentResource):
    """The pull-through cache rule and the node roles' permission to use it; ``url``
    replaces ``docker.io`` in image names."""

    url: pulumi.Output[str]
    ready: list[pulumi.Resource]

    def __init__(self, name: str, args: DockerHubMirrorArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llm-serving:aws:DockerHubMirror", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        account = args.account
        secret = args.credentials_secret
        credential_arn: pulumi.Input[str] = (
            secret
            if secret.startswith("arn:")
            else aws.secretsmanager.get_secret_output(name=secret, opts=pulumi.InvokeOutputOptions(parent=self)).arn
        )
        # How ECR makes the repositories of the first pulls: encrypted, tags movable by the
        # daily re-check, leftovers expiring. It must exist before the first pull.
        template = aws.ecr.RepositoryCreationTemplate(
            name,
            prefix=args.prefix,
            applied_fors=["PULL_THROUGH_CACHE"],
            description="Docker Hub images pulled through by llm-serving",
            image_tag_mutability="MUTABLE",
            encryption_configurations=[
                aws.ecr.RepositoryCreationTemplateEncryptionConfigurationArgs(encryption_type="AES256")
            ],
            lifecycle_policy=cache_lifecycle_policy(),
            opts=child,
        )
        rule = aws.ecr.PullThroughCacheRule(
            name,
            ecr_repository_prefix=args.prefix,
            upstream_registry_url=DOCKER_HUB_UPSTREAM,
            credential_arn=credential_arn,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[template]),
        )
        repositories = pulumi.Output.concat(
            "arn:",
            account.partition,
            ":ecr:",
            account.region,
            ":",
            account.account_id,
            ":repository/",
            args.prefix,
            "/*",
        )
        policies = [
            aws.iam.RolePolicy(f"{name}-{label}", role=role, policy=pull_through_policy(repositories), opts=child)
            for label, role in args.node_roles.items()
        ]
        self.url = pulumi.Output.concat(
            account.account_id, ".dkr.ecr.", account.region, ".", account.dns_suffix, "/", args.prefix
        )
        self.ready = [template, rule, *policies]
        self.register_outputs({"url": self.url})
