"""What every config model shares: strictness, camelCase keys, and how rules report."""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Callable, Collection
from ipaddress import IPv4Network
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictInt,
    Tag,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import InitErrorDetails, PydanticCustomError

from components.catalog import regions

NAMESPACE = "llm-serving"
SECRET_KEYS = ("hfToken", "alertWebhookUrl", "kubeconfig")
# Other namespaces a stack file may carry: the Pulumi engine's own (``pulumi:tags``,
# ``pulumi:disable-default-providers``) and those of the providers this program uses
# (requirements.txt), whose default providers read e.g. ``gcp:project``, ``aws:region``,
# ``kubernetes:context``. A key under any other namespace (another project's) is a mistake
# the engine would silently ignore.
PROVIDER_NAMESPACES = ("pulumi", "gcp", "aws", "eks", "kubernetes", "random")

K8S_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"  # RFC 1123 label
GCE_NAME = r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"  # Compute Engine resource name (RFC 1035)
DURATION = r"^([0-9]+(s|m|h))+$"  # Karpenter durations such as 30m, 720h


# A range wider than this (a /7, ..., 0.0.0.0/0) is "the internet" for the opt-in rules below.
INTERNET_PREFIX = 8


class Strict(BaseModel):
    """Base of every config model: unknown keys are errors, keys are camelCase, and no
    value is coerced (``"off"`` is not false, ``"8"`` is not 8): a coerced boolean can
    turn on force-destroy of a bucket. The one conversion kept is text to IPv4Network
    (a stack file has no other way to write a network), for every field that holds one."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, frozen=True, validate_default=True, strict=True)

    @model_validator(mode="before")
    @classmethod
    def _networks_from_text(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        converted = dict(data)
        for name, info in cls.model_fields.items():
            key = info.alias or name
            if key in converted and _holds_network(info.annotation):
                value = converted[key]
                converted[key] = [_network(v) for v in value] if isinstance(value, list) else _network(value)
        return converted


def _network(value: Any) -> Any:
    """Text to IPv4Network; anything else as it is, for strict validation to report."""
    try:
        return IPv4Network(value) if isinstance(value, str) else value
    except ValueError:
        return value


def _holds_network(annotation: Any) -> bool:
    if annotation is IPv4Network:
        return True
    origin = get_origin(annotation)
    if origin in (Annotated, Union, types.UnionType, list):
        return any(_holds_network(arg) for arg in get_args(annotation))
    return False


def rule(loc: tuple[str | int, ...], value: Any, message: str) -> InitErrorDetails:
    """One cross-field problem, reported at the key the user has to change."""
    return InitErrorDetails(type=PydanticCustomError("rule", "{message}", {"message": message}), loc=loc, input=value)


def raise_problems(title: str, problems: list[InitErrorDetails]) -> None:
    if problems:
        raise ValidationError.from_exception_data(title, problems)


def deployer_reachable(cidrs: list[Any], what: str) -> list[Any]:
    """A Kubernetes API open to nobody would lock out Pulumi itself; open to everybody is
    not a default we make. So the list of allowed networks is required."""
    if not cidrs:
        raise ValueError(
            f"list at least one CIDR (your deployment machine): the {what} is only reachable "
            "from these networks and Pulumi applies Kubernetes objects through it"
        )
    return cidrs


def internet_ranges(cidrs: list[Any], allowed: bool, opt_in: str) -> list[InitErrorDetails]:
    """Ranges that open a door to the whole internet, unless the stack opts in by name."""
    if allowed:
        return []
    return [
        rule(
            (i,),
            str(cidr),
            f"covers {cidr.num_addresses:,} addresses, i.e. the internet; list your own ranges, "
            f"or set {opt_in}: true to open it on purpose",
        )
        for i, cidr in enumerate(cidrs)
        if cidr.prefixlen < INTERNET_PREFIX
    ]


def known_region(region: str, known: Collection[str], cloud: str, info: ValidationInfo) -> str:
    """``region`` if components/catalog/regions.py lists it for ``cloud`` or the stack allows
    unlisted regions (``allowUnlistedRegion``, validated before ``region``); else refused."""
    if region in known or info.data.get("allow_unlisted_region"):
        return region
    near = difflib.get_close_matches(region, sorted(known), n=1)
    hint = f"did you mean '{near[0]}'? " if near else ""
    raise ValueError(
        f"not a region of {cloud} as of {regions.REGIONS_AS_OF}; {hint}for a region opened since, "
        "set platform.allowUnlistedRegion: true"
    )


# --------------------------------------------------------------------------------------
# Shared pieces
# --------------------------------------------------------------------------------------


# Model stores and registries: one schema for every platform. Each section is a union on
# `kind`, so a new kind of store (an S3-compatible endpoint with static keys, a
# ReadWriteMany volume: issue #16) or registry (a pull-through mirror: issue #14) is a
# new variant of the same section, not a new section. Kinds listed in PLANNED_* are
# known but not built yet and are refused by name.

# Bucket names both clouds accept: 3-63 lowercase letters, digits and hyphens, starting and
# ending with a letter or digit (S3: docs.aws.amazon.com/AmazonS3/latest/userguide/
# bucketnamingrules.html; GCS: cloud.google.com/storage/docs/buckets#naming). Dots are
# left out: they break virtual-host TLS on S3 and need domain verification on GCS.
BUCKET_NAME = r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$"
# Names both an Artifact Registry repository id and an ECR repository accept.
REPOSITORY_NAME = r"^[a-z][a-z0-9-]{0,61}[a-z0-9]$"
PLANNED_STORES = {
    "s3Compatible": "an S3-compatible endpoint with static credentials (issue #16)",
    "volume": "a ReadWriteMany volume such as NFS or CephFS (issue #16)",
}
REFUSED_TAG = "refused"  # the variant that reports a kind not built yet
PLANNED_REGISTRIES = {"mirror": "a pull-through mirror of a public registry (issue #14)"}


def _named(pattern: str, what: str) -> Any:
    def check(value: str | None) -> str | None:
        if value is not None and not re.fullmatch(pattern, value):
            raise ValueError(what)
        return value

    return AfterValidator(check)


class CloudBucket(Strict):
    """The cloud's own object store: a GCS bucket on gcp, an S3 bucket on aws, reached by
    pods through Workload Identity / Pod Identity (no keys)."""

    kind: Literal["bucket"]
    # The bucket's name. Unset: derived from the cluster name (GCP: CLUSTER-PROJECT-models;
    # AWS: cluster-ACCOUNT-REGION). Set it to keep the bucket through a clusterName change.
    name: Annotated[
        str | None,
        _named(
            BUCKET_NAME, "3 to 63 lowercase letters, digits and hyphens, starting and ending with a letter or digit"
        ),
    ] = None
    # The bucket exists already (kept by an earlier `pulumi destroy`, or made by hand):
    # the next `up` imports it into the stack (Pulumi's `import` resource option) instead
    # of creating it. Needs `name`.
    adopt: StrictBool = False
    # True: the bucket is protected (an `up` that would replace or delete it fails) and
    # `pulumi destroy` leaves it and its data in place. False: deleted with its contents.
    keep_on_destroy: StrictBool = True
    # Objects under backups/ (chat backups) expire after this many days by a lifecycle
    # rule of the bucket (the backup account itself cannot delete); 0 keeps them forever.
    backup_retention_days: Annotated[StrictInt, Field(ge=0, le=3650)] = 30

    @model_validator(mode="after")
    def _adoption(self) -> CloudBucket:
        problems = []
        if self.adopt and self.name is None:
            problems.append(rule(("adopt",), True, "adopting a bucket needs its name: set modelStore.name"))
        if self.adopt and not self.keep_on_destroy:
            problems.append(
                rule(
                    ("keepOnDestroy",),
                    False,
                    "an adopted bucket holds data this stack did not write and is always kept on destroy; "
                    "delete it yourself if you mean to",
                )
            )
        raise_problems("modelStore", problems)
        return self


class NoStore(Strict):
    """No model store: engines download from Hugging Face, nothing is cached or backed up."""

    kind: Literal["none"]


class NoRegistry(Strict):
    kind: Literal["none"]


class CloudRepository(Strict):
    """A Docker repository of the cloud's registry (Artifact Registry on gcp, ECR on aws)
    for the stack's own serving images."""

    kind: Literal["repository"]
    # Unset: the cluster name, so two stacks in one project or account never share one.
    name: Annotated[
        str | None,
        _named(
            REPOSITORY_NAME,
            "2 to 63 lowercase letters, digits and hyphens, starting with a letter and ending with a letter or digit",
        ),
    ] = None


def _kind(value: Any) -> str | None:
    if isinstance(value, dict):
        kind = value.get("kind", "missing")
        return kind if isinstance(kind, str) else "missing"
    return getattr(value, "kind", None)


class _Refused(BaseModel):
    """A variant that only exists to say why its input is refused."""

    model_config = ConfigDict(extra="allow", frozen=True)
    kind: str = ""


def _refuse(message: Callable[[Any], str]) -> Any:
    def check(value: Any) -> Any:
        raise ValueError(message(value))

    return BeforeValidator(check)


def _store_refusal(value: Any) -> str:
    kind = value.get("kind") if isinstance(value, dict) else None
    if kind in PLANNED_STORES:
        return f"kind '{kind}', {PLANNED_STORES[kind]}, is not built yet; use kind 'bucket' or 'none'"
    if kind is None:
        return "say which kind of model store: kind 'bucket' (the cloud's object store) or 'none'"
    return f"unknown kind {kind!r}: use 'bucket' (the cloud's object store) or 'none'"


def _registry_refusal(value: Any) -> str:
    kind = value.get("kind") if isinstance(value, dict) else None
    if kind in PLANNED_REGISTRIES:
        return f"kind '{kind}', {PLANNED_REGISTRIES[kind]}, is not built yet; use kind 'repository' or 'none'"
    if kind is None:
        old = value.get("create") if isinstance(value, dict) else None
        moved = " (the old 'create: false' is now kind 'none')" if old is False else ""
        return f"say which kind of registry: kind 'repository' (the stack's own) or 'none'{moved}"
    return f"unknown kind {kind!r}: use 'repository' (the stack's own) or 'none'"


def _store_tag(value: Any) -> str:
    kind = _kind(value)
    return kind if kind in ("bucket", "none") else REFUSED_TAG


def _registry_tag(value: Any) -> str:
    kind = _kind(value)
    return kind if kind in ("repository", "none") else REFUSED_TAG


ModelStoreConfig = Annotated[
    Annotated[CloudBucket, Tag("bucket")]
    | Annotated[NoStore, Tag("none")]
    | Annotated[_Refused, _refuse(_store_refusal), Tag(REFUSED_TAG)],
    Discriminator(_store_tag),
]
RegistryConfig = Annotated[
    Annotated[CloudRepository, Tag("repository")]
    | Annotated[NoRegistry, Tag("none")]
    | Annotated[_Refused, _refuse(_registry_refusal), Tag(REFUSED_TAG)],
    Discriminator(_registry_tag),
]


def _moved_bucket(value: Any) -> None:
    """The old ``platform.bucket`` section, refused with where its keys went."""
    if value is None:
        return None
    old = value if isinstance(value, dict) else {}
    if old.get("create") is False:
        new = "modelStore: {kind: none}"
    else:
        keep = old.get("keepOnDestroy", True)
        new = f"modelStore: {{kind: bucket, keepOnDestroy: {str(keep).lower()}}}"
    raise ValueError(f"moved: write `{new}` under llm-serving:platform instead of `bucket`")


class StoreSections(Strict):
    """The platform keys for where models and images live, the same on every cloud."""

    model_store: ModelStoreConfig = CloudBucket(kind="bucket")
    registry: RegistryConfig = CloudRepository(kind="repository")
    # Refused with where its keys moved (modelStore); never read.
    bucket: Annotated[Any, AfterValidator(_moved_bucket), Field(exclude=True)] = None

    @property
    def bucket_store(self) -> CloudBucket | None:
        """The cloud bucket this stack uses, if its model store is one."""
        return self.model_store if isinstance(self.model_store, CloudBucket) else None

    @property
    def repository(self) -> CloudRepository | None:
        return self.registry if isinstance(self.registry, CloudRepository) else None
