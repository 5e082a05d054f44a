"""Model stores that need no cloud: an S3-compatible endpoint and a ReadWriteMany volume.

Any platform (GCP, AWS, an existing cluster) calls ``ExternalModelStore`` with the
stack's ``platform.modelStore`` when it is ``s3Compatible`` or ``volume`` and gets the
``ModelStore`` its workloads use, the Kubernetes objects they must wait for, and stack
outputs (what only the live cluster can tell, as preflight commands). The cloud buckets
(``bucket``) stay with their clouds (components/gcp/storage.py, components/aws/storage.py),
which bind them to service accounts through Workload Identity / Pod Identity; an existing
GKE or EKS cluster's bucket is bound by the same code (components/existing/buckets.py).

* ``s3Compatible`` (MinIO, Ceph RGW, ...): no workload identity exists for such stores,
  so static keys are the one option. They come from secret stack values
  (``modelStore[Reader|Backup]AccessKeyId`` / ``...SecretAccessKey``, checked in
  components/config/loading.py) into one Opaque Secret per key pair in the workload
  namespace; pods get them as ``secretKeyRef`` environment, never in a manifest's text,
  and the state holds them as Pulumi secrets. The writer's pair is required and serves
  every account without a pair of its own; a read-only pair for the engines and a
  create-only pair for chat backups keep each to what it needs (least privilege).
* ``volume``: an existing ReadWriteMany claim, used as it is (never changed or deleted),
  or one created from a storage class. A created claim is ``protect``-ed and
  ``retain_on_delete`` unless ``keepOnDestroy: false``: no ``up`` replaces it and
  ``destroy`` leaves it (and the data) in the cluster.

Pure builders (``credentials_secret``, ``store_claim``, ``s3_compatible_store``,
``volume_store``, ``preflight_commands``) return plain data for tests; the component
only declares what they return.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeGuard

import pulumi
import pulumi_kubernetes as k8s

from components import catalog
from components.config import S3CompatibleStore, VolumeStore, s3_key_names
from components.config.base import READ_WRITE_MANY, S3_KEY_ROLES
from components.kubernetes import apply, skip_await
from components.platform import (
    ACCESS_KEY_ID_KEY,
    BACKUP_SERVICE_ACCOUNT,
    READER_SERVICE_ACCOUNT,
    SECRET_ACCESS_KEY_KEY,
    WRITER_SERVICE_ACCOUNT,
    Manifest,
    ModelStore,
    StoreEndpoint,
)

NON_ROOT_UID = 10001  # as the Jobs run (components/workloads/common.py NON_ROOT_UID)
# The model cache Job's pod name label (components/workloads/model_cache.py NAME): the
# preflight check of an S3-compatible store borrows its NetworkPolicy.
CACHE_JOB_NAME = "model-cache"
# The claim the stack creates for a volume store (an existing one keeps its own name).
CLAIM_NAME = "model-store"
LABELS = {"app.kubernetes.io/part-of": "llm-serving", "app.kubernetes.io/component": "model-store"}
# Which service account each key pair of the stack (components/config/base.py
# S3_KEY_ROLES) is for: "" the writer's, which also serves accounts without a pair.
ROLE_ACCOUNTS = {"": WRITER_SERVICE_ACCOUNT, "Reader": READER_SERVICE_ACCOUNT, "Backup": BACKUP_SERVICE_ACCOUNT}
assert set(ROLE_ACCOUNTS) == set(S3_KEY_ROLES)
KeyPair = tuple[pulumi.Input[str], pulumi.Input[str]]


def secret_name(role: str) -> str:
    """``model-store-keys`` (the writer's pair), ``model-store-reader-keys``, ..."""
    return f"model-store-{role.lower()}-keys" if role else "model-store-keys"


def credentials_secret(role: str, namespace: str, key_id: pulumi.Input[str], key: pulumi.Input[str]) -> Manifest:
    """One key pair as an Opaque Secret, under the names the AWS CLI and SDKs read."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": secret_name(role), "namespace": namespace, "labels": dict(LABELS)},
        "type": "Opaque",
        "stringData": {ACCESS_KEY_ID_KEY: key_id, SECRET_ACCESS_KEY_KEY: key},
    }


def s3_environment(config: S3CompatibleStore) -> dict[str, str]:
    """What the AWS CLI, the Run:ai Model Streamer and Ray's mirror need to reach the store.

    * ``AWS_ENDPOINT_URL``: the endpoint for the AWS CLI and SDKs (AWS SDKs and Tools
      reference guide, "Service-specific endpoints"); vLLM 0.33 hands it to the streamer
      as ``RUNAI_STREAMER_S3_ENDPOINT`` when that is unset (``runai_streamer_loader.py``
      L176-179; docs/reference/vllm-serving.md §1.3), set here too for the streamer itself
      (run-ai/runai-model-streamer's S3 client reads that name).
    * ``AWS_ENDPOINT_URL_S3``: the S3-only form of the same; Ray 2.52's model mirror reads
      only this one (``ray/llm/_internal/common/utils/cloud_utils.py``
      ``CloudFileSystem.get_fs_and_path``: pyarrow ``S3FileSystem(endpoint_override=...)``).
    * Addressing: ``RUNAI_STREAMER_S3_USE_VIRTUAL_ADDRESSING=0`` for path-style (vLLM docs,
      Run:ai Model Streamer page, S3-compatible example; vllm-serving.md §4.2); Ray's
      mirror addresses virtual-hosted only with ``AWS_S3_ADDRESSING_STYLE=virtual`` (same
      Ray function, ``force_virtual_addressing``); the AWS CLI: ``ModelStore._aws``.
    * ``AWS_EC2_METADATA_DISABLED``: no instance metadata lookups for credentials or region
      off AWS (the streamer's note: aws/aws-sdk-cpp#1410); the NetworkPolicies block it anyway.
    * ``AWS_REGION`` / ``AWS_DEFAULT_REGION``: the region requests are signed for.
    """
    environment = {
        "AWS_ENDPOINT_URL": config.endpoint,
        "AWS_ENDPOINT_URL_S3": config.endpoint,
        "RUNAI_STREAMER_S3_ENDPOINT": config.endpoint,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_REGION": config.signing_region,
        "AWS_DEFAULT_REGION": config.signing_region,
    }
    if config.path_style:
        environment["RUNAI_STREAMER_S3_USE_VIRTUAL_ADDRESSING"] = "0"
    else:
        environment["AWS_S3_ADDRESSING_STYLE"] = "virtual"
    return environment


def endpoint_egress(config: S3CompatibleStore) -> StoreEndpoint:
    """Where the NetworkPolicies let store users through: the listed CIDRs, the address in
    the URL, or (a host name) any address outside the cluster, on the endpoint's port."""
    cidrs = [str(c) for c in config.endpoint_cidrs]
    if not cidrs:
        try:
            cidrs = [f"{ipaddress.IPv4Address(config.host)}/32"]
        except ValueError:
            cidrs = []
    return StoreEndpoint(port=config.port, cidrs=tuple(cidrs))


def s3_compatible_store(config: S3CompatibleStore, roles: Sequence[str]) -> ModelStore:
    """The store, with each account's Secret: its own pair's (``roles`` given), else the writer's."""
    credentials = {account: secret_name(role if role in roles else "") for role, account in ROLE_ACCOUNTS.items()}
    return ModelStore(
        scheme="s3",
        bucket=pulumi.Output.from_input(config.bucket),
        reader_service_account=READER_SERVICE_ACCOUNT,
        writer_service_account=WRITER_SERVICE_ACCOUNT,
        backup_service_account=BACKUP_SERVICE_ACCOUNT,
        env=s3_environment(config),
        endpoint_url=config.endpoint,
        virtual_hosted=not config.path_style,
        credentials=credentials,
        endpoints=(endpoint_egress(config),),
    )


def store_claim(config: VolumeStore, namespace: str) -> Manifest:
    """The ReadWriteMany claim the stack creates (``storageClass`` and ``sizeGib`` set)."""
    assert config.storage_class is not None and config.size_gib is not None, "an existing claim is not created"
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": CLAIM_NAME, "namespace": namespace, "labels": dict(LABELS)},
        "spec": {
            "accessModes": [READ_WRITE_MANY],
            "storageClassName": config.storage_class,
            "resources": {"requests": {"storage": f"{config.size_gib}Gi"}},
        },
    }


def claim_name(config: VolumeStore) -> str:
    return config.claim_name or CLAIM_NAME


def volume_store(config: VolumeStore, namespace: str) -> ModelStore:
    return ModelStore(
        scheme="file",
        bucket=pulumi.Output.from_input(claim_name(config)),
        reader_service_account=READER_SERVICE_ACCOUNT,
        writer_service_account=WRITER_SERVICE_ACCOUNT,
        backup_service_account=BACKUP_SERVICE_ACCOUNT,
        claim_name=claim_name(config),
        preflight=tuple(preflight_commands(config, namespace)),
    )


def preflight_commands(config: S3CompatibleStore | VolumeStore, namespace: str) -> list[str]:
    """What the config cannot know, as commands to run against the live cluster."""
    if isinstance(config, S3CompatibleStore):
        # A pod with the model cache's labels (its NetworkPolicy lets it reach the store) and
        # the writer's Secret as environment: keys never appear on a command line.
        container = {
            "name": "store-check",
            "image": catalog.AWS_CLI_IMAGE.ref,
            "args": ["--endpoint-url", config.endpoint, "s3", "ls", f"s3://{config.bucket}/"],
            "envFrom": [{"secretRef": {"name": secret_name("")}}],
            "env": [{"name": "AWS_REGION", "value": config.signing_region}, {"name": "HOME", "value": "/tmp"}],
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": NON_ROOT_UID,
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
            },
        }
        # kubectl run --overrides needs the object's apiVersion (kubectl run --help).
        overrides = json.dumps({"apiVersion": "v1", "spec": {"containers": [container]}}, separators=(",", ":"))
        return [
            f"kubectl -n {namespace} run store-check --rm -i --restart=Never --image={catalog.AWS_CLI_IMAGE.ref} "
            f"--labels=app.kubernetes.io/name={CACHE_JOB_NAME} --overrides='{overrides}'"
            "  # the endpoint answers from inside the cluster, the bucket exists and the writer's keys may list it",
        ]
    claim = claim_name(config)
    checks = [
        f"kubectl -n {namespace} get pvc {claim} -o jsonpath='{{.spec.accessModes}} {{.status.phase}}'"
        f"  # lists {READ_WRITE_MANY} and is Bound",
        "# the volume must be writable by UID/GID 10001 (the Jobs' user): fsGroup is not applied to NFS "
        "and most RWX file systems, so export or chown the directory for it",
    ]
    if config.claim_name is None:
        checks.insert(
            0,
            f"kubectl get storageclass {config.storage_class} -o jsonpath='{{.provisioner}}'"
            f"  # exists, and its provisioner offers {READ_WRITE_MANY} (NFS, CephFS, EFS, Filestore CSI)",
        )
    return checks


@dataclass(frozen=True)
class ExternalModelStoreArgs:
    config: S3CompatibleStore | VolumeStore
    namespace: str
    provider: k8s.Provider
    # StackSecrets.store_keys: key role -> (access key id, secret access key).
    keys: Mapping[str, KeyPair] = field(default_factory=dict)
    # What the store's objects must wait for (the workload namespace).
    depends_on: Sequence[pulumi.Resource] = ()


class ExternalModelStore(pulumi.ComponentResource):
    """The Kubernetes side of an S3-compatible or volume model store."""

    model_store: ModelStore
    ready: list[pulumi.Resource]
    outputs: dict[str, pulumi.Input[object]]

    def __init__(self, name: str, args: ExternalModelStoreArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llm-serving:stores:ExternalModelStore", name, None, opts)
        config = args.config
        child = pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=list(args.depends_on))
        self.ready = []
        if isinstance(config, S3CompatibleStore):
            if "" not in args.keys:
                raise ValueError(f"an s3Compatible store needs the writer's keys ({', '.join(s3_key_names(''))})")
            for role, (key_id, key) in args.keys.items():
                manifest = credentials_secret(role, args.namespace, key_id, key)
                self.ready.append(apply(f"{name}-{secret_name(role)}", manifest, child))
            self.model_store = s3_compatible_store(config, list(args.keys))
        else:
            if config.claim_name is None:
                keep = config.keep_on_destroy
                # The claim binds when its first pod needs it (WaitForFirstConsumer classes), so
                # Pulumi does not wait for Bound: the pods that mount it depend on it.
                claim = apply(
                    f"{name}-claim",
                    skip_await(store_claim(config, args.namespace)),
                    pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(protect=keep, retain_on_delete=keep)),
                )
                self.ready.append(claim)
            self.model_store = volume_store(config, args.namespace)
        self.outputs = {
            "model_store": self.model_store.url(),
            "model_store_preflight": preflight_commands(config, args.namespace),
        }
        self.register_outputs(dict(self.outputs))


def is_external(config: object) -> TypeGuard[S3CompatibleStore | VolumeStore]:
    """Whether a stack's ``platform.modelStore`` is a kind this module builds."""
    return isinstance(config, S3CompatibleStore | VolumeStore)
