"""What every config model shares: strictness, camelCase keys, and how rules report."""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Callable, Collection
from ipaddress import IPv4Network
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import InitErrorDetails, PydanticCustomError

from components.catalog import regions

NAMESPACE = "llm-serving"
SECRET_KEYS = (
    "hfToken",
    "alertWebhookUrl",
    "kubeconfig",  # an existing cluster's kubeconfig content (platform.kubeconfig kind 'secret')
    # An S3-compatible model store's static keys, per account (S3CompatibleStore, s3_key_names).
    *(f"modelStore{role}{part}" for role in ("", "Reader", "Backup") for part in ("AccessKeyId", "SecretAccessKey")),
)
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
# new variant of the same section, not a new section; an unknown kind is refused with
# the kinds there are. components/stores.py builds the kinds that need no cloud
# (s3Compatible, volume) for every platform.

# Bucket names both clouds accept: 3-63 lowercase letters, digits and hyphens, starting and
# ending with a letter or digit (S3: docs.aws.amazon.com/AmazonS3/latest/userguide/
# bucketnamingrules.html; GCS: cloud.google.com/storage/docs/buckets#naming). Dots are
# left out: they break virtual-host TLS on S3 and need domain verification on GCS.
BUCKET_NAME = r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$"
# Names both an Artifact Registry repository id and an ECR repository accept.
REPOSITORY_NAME = r"^[a-z][a-z0-9-]{0,61}[a-z0-9]$"
REFUSED_TAG = "refused"  # the variant that reports an unknown or missing kind
REGISTRY_KINDS = "kind 'repository' (the stack's own), 'mirror' (a pull-through mirror of Docker Hub) or 'none'"


def _named(pattern: str, what: str) -> Any:
    def check(value: str | None) -> str | None:
        if value is not None and not re.fullmatch(pattern, value):
            raise ValueError(what)
        return value

    return AfterValidator(check)


# A registry's repository id (Artifact Registry, ECR), set or left to the cluster's name.
RepositoryName = Annotated[
    str | None,
    _named(
        REPOSITORY_NAME,
        "2 to 63 lowercase letters, digits and hyphens, starting with a letter and ending with a letter or digit",
    ),
]


class CloudBucket(Strict):
    """The cloud's own object store: a GCS bucket on gcp, an S3 bucket on aws, reached by
    pods through Workload Identity / Pod Identity (no keys). On cloud 'existing': a bucket
    the user already has, with platform.identity naming the GKE or EKS cluster (existing.py)."""

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


# Stack keys (Pulumi secrets) holding an S3-compatible store's static keys, per account:
# the writer's pair (the model cache and benchmark Jobs; also every other account's when
# no pair of its own is given), the readers' (engines) and the chat backups'.
S3_KEY_ROLES = ("", "Reader", "Backup")
S3_KEY_PAIR = ("AccessKeyId", "SecretAccessKey")


def s3_key_names(role: str) -> tuple[str, str]:
    """The two secret stack keys of one account's pair, e.g. modelStoreReaderAccessKeyId."""
    return f"modelStore{role}{S3_KEY_PAIR[0]}", f"modelStore{role}{S3_KEY_PAIR[1]}"


class S3CompatibleStore(Strict):
    """An S3-compatible object store the stack does not own (MinIO, Ceph RGW, ...), reached
    with static keys: such stores have no Workload or Pod Identity, so this is the one
    place keys are accepted. They come from secret stack values (``s3_key_names``) into a
    Kubernetes Secret of the workload namespace, never plain text in the state."""

    kind: Literal["s3Compatible"]
    # Where the S3 API answers: https://host[:port], no path.
    endpoint: StrictStr
    bucket: Annotated[
        StrictStr,
        _named(
            BUCKET_NAME, "3 to 63 lowercase letters, digits and hyphens, starting and ending with a letter or digit"
        ),
    ]
    # The region requests are signed for; unset: us-east-1, the default region of MinIO
    # (MINIO_REGION) and what Ceph RGW accepts for its default zonegroup.
    region: Annotated[StrictStr | None, Field(pattern=r"^[a-z0-9-]{1,32}$")] = None
    # Path-style addressing (https://host/bucket/key) rather than virtual-hosted
    # (https://bucket.host/key), which needs wildcard DNS and certificates that MinIO and
    # Ceph RGW deployments rarely have; false for stores that only take virtual-hosted.
    path_style: StrictBool = True
    # Plain http:// sends every object (and request, though signed) unencrypted: only on
    # purpose, e.g. a MinIO inside the cluster network.
    allow_plain_http: StrictBool = False
    # Addresses the endpoint resolves to, for the NetworkPolicies (they cannot name hosts).
    # Unset: an IP address in `endpoint` is used; a host name is reached at any address
    # outside the cluster on the endpoint's port. A store inside the cluster's own ranges
    # must be listed here.
    endpoint_cidrs: list[IPv4Network] = []

    @field_validator("endpoint_cidrs")
    @classmethod
    def _own_addresses(cls, cidrs: list[IPv4Network]) -> list[IPv4Network]:
        problems = [
            rule(
                (i,),
                str(cidr),
                "covers the internet; list the store's own addresses, or leave endpointCidrs empty to "
                "allow any address outside the cluster on the endpoint's port",
            )
            for i, cidr in enumerate(cidrs)
            if cidr.prefixlen < INTERNET_PREFIX
        ]
        raise_problems("endpointCidrs", problems)
        return cidrs

    @model_validator(mode="after")
    def _endpoint(self) -> S3CompatibleStore:
        parts = urlsplit(self.endpoint)
        problem = None
        if parts.scheme not in ("https", "http") or not parts.hostname:
            problem = "write the S3 API's URL as https://host or https://host:port"
        elif parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
            problem = "only scheme, host and port: the bucket goes in modelStore.bucket, keys in secret stack values"
        elif parts.scheme == "http" and not self.allow_plain_http:
            problem = (
                "plain http sends the model files unencrypted; use https, or set "
                "modelStore.allowPlainHttp: true for a store inside your own network"
            )
        else:
            try:
                parts.port  # noqa: B018  (raises on a port out of range)
            except ValueError:
                problem = "the port must be 1-65535"
        raise_problems("modelStore", [rule(("endpoint",), self.endpoint, problem)] if problem else [])
        return self

    @property
    def port(self) -> int:
        parts = urlsplit(self.endpoint)
        return parts.port or (443 if parts.scheme == "https" else 80)

    @property
    def host(self) -> str:
        return urlsplit(self.endpoint).hostname or ""

    @property
    def signing_region(self) -> str:
        return self.region or "us-east-1"


READ_WRITE_MANY = "ReadWriteMany"


def _read_write_many(value: str) -> str:
    if value != READ_WRITE_MANY:
        raise ValueError(
            f"a model store is written by the cache Job and read by every engine pod, on several nodes at "
            f"once: only {READ_WRITE_MANY} (NFS, CephFS, EFS, Filestore, Azure Files) serves that"
        )
    return value


class VolumeStore(Strict):
    """A ReadWriteMany PersistentVolumeClaim in the workload namespace (NFS, CephFS, EFS,
    Filestore): an existing claim by name, or one the stack creates from a storage class.
    Models are files under models/ on it; engines mount it read-only."""

    kind: Literal["volume"]
    # An existing claim in the workload namespace (never deleted nor changed by the stack).
    claim_name: Annotated[StrictStr | None, Field(pattern=K8S_NAME, max_length=63)] = None
    # Or: the stack creates the claim with this storage class and size.
    storage_class: Annotated[StrictStr | None, Field(pattern=K8S_NAME, max_length=63)] = None
    size_gib: Annotated[StrictInt | None, Field(ge=1, le=1_000_000)] = None
    # The claim's access mode; written here so a stack file says it, and refused unless RWX.
    access_mode: Annotated[StrictStr, AfterValidator(_read_write_many)] = READ_WRITE_MANY
    # A created claim is protected (an `up` that would replace or delete it fails) and
    # `pulumi destroy` leaves it (and so its volume) in the cluster. False: destroy deletes
    # the claim; whether the data goes too is the storage class's reclaimPolicy.
    keep_on_destroy: StrictBool = True

    @model_validator(mode="after")
    def _one_source(self) -> VolumeStore:
        problems = []
        if self.claim_name is not None:
            for key, value in (("storageClass", self.storage_class), ("sizeGib", self.size_gib)):
                if value is not None:
                    problems.append(rule((key,), value, "an existing claim (claimName) already has its class and size"))
            if not self.keep_on_destroy:
                problems.append(
                    rule(
                        ("keepOnDestroy",),
                        False,
                        "an existing claim holds data this stack did not write and is never deleted by it",
                    )
                )
        elif self.storage_class is None or self.size_gib is None:
            missing = [k for k, v in (("storageClass", self.storage_class), ("sizeGib", self.size_gib)) if v is None]
            problems.append(
                rule(
                    (missing[0],),
                    None,
                    "name an existing claim (claimName), or a ReadWriteMany storage class and a size "
                    "(storageClass and sizeGib) for the stack to create one",
                )
            )
        raise_problems("modelStore", problems)
        return self


class NoRegistry(Strict):
    kind: Literal["none"]


class CloudRepository(Strict):
    """A Docker repository of the cloud's registry (Artifact Registry on gcp, ECR on aws)
    for the stack's own serving images."""

    kind: Literal["repository"]
    # Unset: the cluster name, so two stacks in one project or account never share one.
    name: RepositoryName = None


class MirrorCredentials(Strict):
    """The Docker Hub account a mirror pulls as: Docker Hub limits anonymous pulls per
    address, authenticated ones per account (https://docs.docker.com/docker-hub/usage/).
    The token itself never enters the stack: the user stores it in the cloud's secret
    store and names the secret here."""

    # gcp: the Docker Hub user name (Artifact Registry takes the user and a Secret Manager
    # version holding the token). aws: not used; the secret holds both (ECR reads the JSON
    # keys `username` and `accessToken`). A Docker ID is 4 to 30 lowercase letters and
    # digits (https://docs.docker.com/accounts/create-account/).
    username: Annotated[str, Field(pattern=r"^[a-z0-9]{4,30}$")] | None = None
    # gcp: projects/PROJECT/secrets/NAME/versions/VERSION (Secret Manager).
    # aws: the ARN or the name of a Secrets Manager secret whose name starts with
    # `ecr-pullthroughcache/`, the prefix ECR requires.
    secret: Annotated[str, Field(min_length=1)]


class RegistryMirror(Strict):
    """A pull-through mirror of Docker Hub in the cloud's own registry: an Artifact
    Registry remote repository on gcp, an ECR pull-through cache rule on aws. Every
    workload image from Docker Hub (vLLM, Ray) is pulled through it under the same path,
    tag and digest; the first pull of an image fills the mirror, later pulls (other
    nodes, new nodes) are served from the cloud's region."""

    kind: Literal["mirror"]
    # gcp: the remote repository's id; aws: the ECR repository prefix the cached images
    # go under (2 to 30 characters there). Unset: CLUSTER-docker-hub (lowercase).
    name: RepositoryName = None
    # Required on aws (ECR's Docker Hub upstream needs credentials); optional on gcp,
    # where the remote repository otherwise pulls anonymously.
    credentials: MirrorCredentials | None = None

    def repository(self, cluster_name: str) -> str:
        """The remote repository id (gcp) or repository prefix (aws)."""
        return self.name or f"{cluster_name.lower()}-docker-hub"


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


STORE_KINDS = "'bucket' (the cloud's object store), 's3Compatible', 'volume' (ReadWriteMany) or 'none'"


def _store_refusal(value: Any) -> str:
    kind = value.get("kind") if isinstance(value, dict) else None
    if kind is None:
        return f"say which kind of model store: kind {STORE_KINDS}"
    return f"unknown kind {kind!r}: use {STORE_KINDS}"


def _registry_refusal(value: Any) -> str:
    kind = value.get("kind") if isinstance(value, dict) else None
    if kind is None:
        old = value.get("create") if isinstance(value, dict) else None
        moved = " (the old 'create: false' is now kind 'none')" if old is False else ""
        return f"say which kind of registry: {REGISTRY_KINDS}{moved}"
    return f"unknown kind {kind!r}: use {REGISTRY_KINDS}"


def _store_tag(value: Any) -> str:
    kind = _kind(value)
    return kind if kind in ("bucket", "s3Compatible", "volume", "none") else REFUSED_TAG


def _registry_tag(value: Any) -> str:
    kind = _kind(value)
    return kind if kind in ("repository", "mirror", "none") else REFUSED_TAG


ModelStoreConfig = Annotated[
    Annotated[CloudBucket, Tag("bucket")]
    | Annotated[S3CompatibleStore, Tag("s3Compatible")]
    | Annotated[VolumeStore, Tag("volume")]
    | Annotated[NoStore, Tag("none")]
    | Annotated[_Refused, _refuse(_store_refusal), Tag(REFUSED_TAG)],
    Discriminator(_store_tag),
]
RegistryConfig = Annotated[
    Annotated[CloudRepository, Tag("repository")]
    | Annotated[RegistryMirror, Tag("mirror")]
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
    def has_store(self) -> bool:
        """Whether the stack has a model store of any kind (not ``none``)."""
        return not isinstance(self.model_store, NoStore)

    @property
    def repository(self) -> CloudRepository | None:
        return self.registry if isinstance(self.registry, CloudRepository) else None

    @property
    def mirror(self) -> RegistryMirror | None:
        """The Docker Hub mirror workload images are pulled through, if the stack has one."""
        return self.registry if isinstance(self.registry, RegistryMirror) else None

    @property
    def image_streaming(self) -> bool:
        """Whether GPU nodes stream images instead of downloading them first (GKE image
        streaming; gcp.py). No other platform streams."""
        return False
