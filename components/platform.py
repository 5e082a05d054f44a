"""The contract between a cloud platform and the workloads that run on it.

Every cloud component (``components/gcp``, ``components/aws``, later ``existing``)
returns one ``Platform``; every workload (``components/workloads``) takes one. It says,
in Kubernetes terms only, where to run and what a pod needs there, so workloads never
import a cloud SDK and clouds never know about vLLM.

Values that only exist after deployment (bucket names, registry URLs) are Pulumi
``Output``s; everything a manifest builder must branch on is a plain value.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s

from components import catalog

Manifest = dict[str, Any]  # a Kubernetes object or fragment as plain JSON-like data

# Kubernetes service accounts every platform creates in the workload namespace and binds
# to the bucket: serving pods read weights, the cache and benchmark jobs write.
READER_SERVICE_ACCOUNT = "model-reader"
WRITER_SERVICE_ACCOUNT = "model-writer"
# The chat backup CronJob's account may only create objects under BACKUP_PREFIX: it can
# neither read nor overwrite weights, nor delete earlier backups.
BACKUP_SERVICE_ACCOUNT = "chat-backup"
BACKUP_PREFIX = "backups/"
# The compile-cache uploader's account may only create objects under COMPILE_CACHE_PREFIX:
# the engine keeps its read-only identity, and the uploader can neither read weights nor
# overwrite an archive another node wrote (components/workloads/compile_cache.py).
COMPILE_CACHE_SERVICE_ACCOUNT = "compile-cache"
COMPILE_CACHE_PREFIX = "compile-cache/"


@dataclass(frozen=True)
class PrefixWriter:
    """A service account that may only create objects under one prefix of the bucket: no
    list, no read, no overwrite, no delete. Every cloud binds each of ``PREFIX_WRITERS``
    the same way (GKE: an IAM condition on the object name; EKS: a policy on ``prefix*``)."""

    service_account: str
    prefix: str
    title: str  # names the grant (GCS IAM condition title: letters, digits, dashes)


PREFIX_WRITERS = (
    PrefixWriter(BACKUP_SERVICE_ACCOUNT, BACKUP_PREFIX, "chat-backups-only"),
    PrefixWriter(COMPILE_CACHE_SERVICE_ACCOUNT, COMPILE_CACHE_PREFIX, "compile-cache-only"),
)
SERVICE_ACCOUNTS = (READER_SERVICE_ACCOUNT, WRITER_SERVICE_ACCOUNT, *(w.service_account for w in PREFIX_WRITERS))
# Name of the retaining StorageClass every platform provides (Platform.retained_storage_class).
RETAINED_STORAGE_CLASS = "llm-serving-retain"


def retaining_storage_class(provisioner: str, parameters: Mapping[str, str]) -> Manifest:
    """A StorageClass whose volumes outlive their claims (``reclaimPolicy: Retain``): a
    claim deleted by ``pulumi destroy``, a namespace change or a cluster replacement
    leaves its PersistentVolume Released and the disk in the cloud, to be bound again
    (README "Bind a kept chat volume again"). Binding waits for the pod's node, as zonal
    disks must (Kubernetes docs, Storage Classes: reclaimPolicy, volumeBindingMode)."""
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": RETAINED_STORAGE_CLASS, "labels": {"app.kubernetes.io/part-of": "llm-serving"}},
        "provisioner": provisioner,
        "parameters": dict(parameters),
        "reclaimPolicy": "Retain",
        "volumeBindingMode": "WaitForFirstConsumer",
        "allowVolumeExpansion": True,
    }


@dataclass(frozen=True)
class GpuNodes:
    """How a pod lands on, and uses, the nodes of one GPU pool."""

    pool: str
    gpu: str  # components.catalog.GPUS key, e.g. "B200"; Ray's accelerator type derives from it
    gpus_per_node: int
    node_selector: Mapping[str, str]
    tolerations: Sequence[Manifest]
    # Memory-backed /dev/shm a pod on this pool may use (catalog MachineSpec.shm_gib; the
    # smallest machine's where a pool has several).
    shm_gib: int
    resource_name: str = "nvidia.com/gpu"
    # A pod must request every GPU of its node (GPUDirect RDMA NICs cannot be shared).
    whole_node: bool = False
    # Added to the pod's annotations (GKE multi-networking: which NIC is which network).
    pod_annotations: Mapping[str, str] = field(default_factory=dict)
    # Host libraries and devices the engine container needs, and their environment.
    volumes: Sequence[Manifest] = ()
    volume_mounts: Sequence[Manifest] = ()
    env: Sequence[Manifest] = ()
    # Shell run before the engine starts, e.g. sourcing the NCCL settings of the gIB plugin.
    shell_prelude: str = ""
    # Fast node-local disk for downloads and caches (a hostPath), or None for ephemeral storage.
    scratch_host_path: str | None = None
    # Linux capabilities a pod using this pool's fabric needs, e.g. IPC_LOCK to pin memory for
    # GPUDirect RDMA or EFA (vllm-serving.md §1.1 multi-node; aws-eks-karpenter.md §5).
    capabilities: Sequence[str] = ()
    # Inter-node GPU network of the pool: "rdma" (GPUDirect RDMA over RoCE/InfiniBand), "efa"
    # (AWS Elastic Fabric Adapter), or "none" (TCP sockets only, too slow for a replica
    # that spans nodes; config refuses one there unless the stack opts in).
    fabric: Literal["none", "rdma", "efa"] = "none"
    # Extra extended resources a whole-node pod requests, e.g. {"vpc.amazonaws.com/efa": "32"}.
    pod_resources: Mapping[str, str] = field(default_factory=dict)


# Where a volume store (a ReadWriteMany claim) is mounted in every pod that uses it; its
# files sit under the same keys as a bucket's objects (models/<org>/<name>/...).
STORE_VOLUME = "model-store"
STORE_MOUNT = "/model-store"
# The Kubernetes Secret keys holding an S3-compatible store's static keys, named as the AWS
# CLI and SDKs read them from the environment.
ACCESS_KEY_ID_KEY = "AWS_ACCESS_KEY_ID"
SECRET_ACCESS_KEY_KEY = "AWS_SECRET_ACCESS_KEY"


@dataclass(frozen=True)
class StoreEndpoint:
    """Where pods reach an object store over the network (not through an identity
    endpoint): ``cidrs`` on ``port``; empty ``cidrs``: any address outside the cluster."""

    port: int
    cidrs: Sequence[str] = ()


@dataclass(frozen=True)
class ModelStore:
    """Where models (and benchmark results, chat backups) are kept, and who may use it.

    Three kinds behind one interface, so workloads never branch on the cloud:

    * ``gs`` / ``s3``: the cloud's bucket. Pods authenticate as Kubernetes service
      accounts the platform bound to it (Workload Identity on GKE, Pod Identity on EKS);
      no keys are involved.
    * ``s3`` with ``endpoint_url``: an S3-compatible store (MinIO, Ceph RGW). Pods get
      static keys from Kubernetes Secrets, per service account (``credentials``), as
      environment (``env_for``).
    * ``file``: a ReadWriteMany volume (``claim_name``) mounted at ``STORE_MOUNT``
      (``pod_volumes``, ``mounts``); the "CLI" is the shell's own file tools.

    Builders address objects with ``address(bucket, key)`` and run ``exists_command``,
    ``upload_command`` and ``write_command`` in ``cli_image`` with ``env_for(account)``
    and ``mounts(...)``; the pod carries ``pod_volumes(...)``.
    """

    scheme: Literal["gs", "s3", "file"]
    bucket: pulumi.Output[str]  # the bucket's name; for a volume store, the claim's
    reader_service_account: str  # may read weights
    writer_service_account: str  # may write weights and benchmark results
    # may only create objects under BACKUP_PREFIX (chat backups); None: no backups here
    backup_service_account: str | None = None
    # may only create objects under COMPILE_CACHE_PREFIX; None: compile caches stay on the node
    compile_cache_service_account: str | None = None
    # Environment a loader needs to reach the bucket (region, S3 endpoint for GCS, ...).
    env: Mapping[str, str] = field(default_factory=dict)
    # CSI driver that mounts the bucket as a volume, if the cluster has one (GCS FUSE);
    # the pod annotations it needs to attach its sidecar; the name of the pod volume the
    # sidecar uses for its file cache, if it takes one.
    fuse_csi_driver: str | None = None
    fuse_pod_annotations: Mapping[str, str] = field(default_factory=dict)
    fuse_cache_volume: str | None = None
    # S3-compatible stores: the API's URL, whether it takes virtual-hosted addressing
    # only, and per service account the Secret (ACCESS_KEY_ID_KEY, SECRET_ACCESS_KEY_KEY)
    # with its keys.
    endpoint_url: str | None = None
    virtual_hosted: bool = False
    credentials: Mapping[str, str] = field(default_factory=dict)
    # Where pods must be let through to reach the store (NetworkPolicy egress).
    endpoints: Sequence[StoreEndpoint] = ()
    # Volume stores: the ReadWriteMany claim in the workload namespace.
    claim_name: str | None = None
    # Checks only the live cluster can answer (RWX support, reachability), as commands.
    preflight: Sequence[str] = ()

    def url(self, *path: str) -> pulumi.Output[str]:
        """``gs://bucket/a/b``, ``s3://bucket/a/b``; for a volume ``pvc://claim/a/b``
        (a stack output to read, not an address a tool takes)."""
        suffix = "".join(f"/{p.strip('/')}" for p in path)
        scheme = "pvc" if self.scheme == "file" else self.scheme
        return self.bucket.apply(lambda name: f"{scheme}://{name}{suffix}")

    def address(self, bucket: pulumi.Input[str], *path: str) -> pulumi.Input[str]:
        """What pods use for ``path`` in the store: the object URL, or the mounted file's
        path. ``bucket``: the bucket's name (plain text in tests, an Output when deployed)."""
        suffix = "".join(f"/{p.strip('/')}" for p in path)
        if self.scheme == "file":
            return f"{STORE_MOUNT}{suffix}"
        if isinstance(bucket, str):
            return f"{self.scheme}://{bucket}{suffix}"
        return pulumi.Output.concat(f"{self.scheme}://", bucket, suffix)

    # Shell for Jobs and init containers that run ``cli_image``. Arguments are shell
    # words already quoted by the caller; the bucket is substituted at deploy time.

    @property
    def cli_image(self) -> str:
        """An image with this store's tools: gcloud storage, the AWS CLI; for a volume
        only a POSIX shell and coreutils, which the AWS CLI image (Amazon Linux) has."""
        return (catalog.GCLOUD_CLI_IMAGE if self.scheme == "gs" else catalog.AWS_CLI_IMAGE).ref

    @property
    def _aws(self) -> str:
        """The AWS CLI, aimed at the S3-compatible endpoint when there is one. With an
        endpoint URL the CLI addresses path-style unless ``s3.addressing_style`` is
        ``virtual`` (botocore ``args.py`` ``compute_endpoint_resolver_builtin_defaults``:
        ``force_path_style = addressing_style != 'virtual'`` for a custom endpoint), so a
        store that takes only virtual-hosted names gets that setting written to the CLI's
        config in ``$HOME/.aws`` first (``aws configure set``)."""
        if self.endpoint_url is None:
            return "aws"
        style = "aws configure set default.s3.addressing_style virtual && " if self.virtual_hosted else ""
        return f"{style}aws --endpoint-url {self.endpoint_url}"

    def exists_command(self, url: str) -> str:
        """Exit status 0 if the object at ``url`` (``$BUCKET_URL/...``) exists."""
        if self.scheme == "gs":
            return f"gcloud storage objects describe {url} >/dev/null 2>&1"
        if self.scheme == "file":
            return f"test -e {url}"
        return f"{self._aws} s3 ls {url} >/dev/null 2>&1"

    def upload_command(self, local_dir: str, url: str, exclude_dir: str | None = None) -> str:
        """Copy a local directory to ``url``, skipping files already there (and, with
        ``exclude_dir``, that top-level folder: gcloud takes a Python regex on the relative
        path, the AWS CLI a glob; gcloud storage rsync and aws s3 sync reference pages).
        A volume: every top-level entry but ``exclude_dir`` copied with ``cp -R`` (files
        already there are overwritten; nothing reads them before the cache's marker)."""
        if self.scheme == "gs":
            skip = f" --exclude '^{re.escape(exclude_dir)}/'" if exclude_dir else ""
            return f"gcloud storage rsync --recursive{skip} {local_dir} {url}"
        if self.scheme == "file":
            keep = f' && [ "${{entry##*/}}" != {shlex.quote(exclude_dir)} ]' if exclude_dir else ""
            return (
                f"mkdir -p {url} && for entry in {local_dir}/* {local_dir}/.[!.]*; do "
                f'if [ -e "$entry" ]{keep}; then cp -R "$entry" {url}/ || exit 1; fi; done'
            )
        skip = f" --exclude '{exclude_dir}/*'" if exclude_dir else ""
        return f"{self._aws} s3 sync --no-progress{skip} {local_dir} {url}"

    @property
    def uploader_env(self) -> dict[str, str]:
        """Environment of containers that upload with ``cli_image``. gcloud: no parallel
        composite uploads; they call ``storage.buckets.get``, which the writers' objectUser
        role lacks, and composite objects carry no MD5 (shared/reference/audit/settled.md,
        google-cloud-cli ``parallel_composite_upload_util.py``)."""
        if self.scheme == "gs":
            return {"CLOUDSDK_STORAGE_PARALLEL_COMPOSITE_UPLOAD_ENABLED": "False"}
        return {}

    def cat_command(self, url: str) -> str:
        """Print a (small) object to stdout."""
        if self.scheme == "gs":
            return f"gcloud storage cat {url}"
        if self.scheme == "file":
            return f"cat {url}"
        return f"{self._aws} s3 cp --no-progress {url} -"

    def download_command(self, url: str, local_dir: str) -> str:
        """Make ``local_dir`` a copy of the prefix ``url``: files already there and unchanged
        are skipped, files the prefix no longer has are deleted (gcloud storage rsync /
        aws s3 sync reference pages). A volume's folder is copied over with ``cp -R``."""
        if self.scheme == "gs":
            return f"gcloud storage rsync --recursive --delete-unmatched-destination-objects {url} {local_dir}"
        if self.scheme == "file":
            return f"mkdir -p {local_dir} && cp -R {url}/. {local_dir}/"
        return f"{self._aws} s3 sync --no-progress --delete {url} {local_dir}"

    def write_command(self, local_file: str, url: str) -> str:
        """Upload one file."""
        if self.scheme == "gs":
            return f"gcloud storage cp {local_file} {url}"
        if self.scheme == "file":
            return f'mkdir -p "$(dirname {url})" && cp {local_file} {url}'
        return f"{self._aws} s3 cp --no-progress {local_file} {url}"

    def read_command(self, url: str, local_file: str) -> str:
        """Download one object."""
        if self.scheme == "gs":
            return f"gcloud storage cp {url} {local_file}"
        if self.scheme == "file":
            return f"cp {url} {local_file}"
        return f"{self._aws} s3 cp --no-progress {url} {local_file}"

    def list_command(self, prefix_url: str, suffix: str) -> str:
        """Print the URL of every object right under ``prefix_url`` (ending in ``/``)
        whose name ends in ``suffix``, one a line; nothing, with status 0, when there is
        none or the listing fails (gcloud storage ls exits 1 on no match; aws s3 ls prints
        ``date time size name`` per object and ``PRE name/`` per folder: gcloud storage ls
        and aws s3 ls reference pages)."""
        if self.scheme == "gs":
            return f"{{ gcloud storage ls {prefix_url}'*{suffix}' 2>/dev/null || true; }}"
        if self.scheme == "file":
            return (
                f"{{ ls -1 {prefix_url} 2>/dev/null || true; }} | grep '{re.escape(suffix)}$' "
                f'| sed "s|^|{prefix_url.strip(chr(34))}|"'
            )
        return (
            f"{{ {self._aws} s3 ls {prefix_url} 2>/dev/null || true; }} "
            f"| awk '{{print $4}}' | grep '{re.escape(suffix)}$' "
            f'| sed "s|^|{prefix_url.strip(chr(34))}|"'
        )

    def env_for(self, account: str | None = None) -> list[Manifest]:
        """Environment of a container that reaches the store as ``account`` (default: the
        readers'): ``env``, plus the account's keys from its Secret for S3-compatible stores."""
        entries: list[Manifest] = [{"name": k, "value": v} for k, v in self.env.items()]
        secret = self.credentials.get(account or self.reader_service_account)
        if secret is not None:
            entries += [
                {"name": key, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
                for key in (ACCESS_KEY_ID_KEY, SECRET_ACCESS_KEY_KEY)
            ]
        return entries

    def pod_volumes(self, read_only: bool = True) -> list[Manifest]:
        """The pod volume a volume store needs (none for buckets)."""
        if self.claim_name is None:
            return []
        return [{"name": STORE_VOLUME, "persistentVolumeClaim": {"claimName": self.claim_name, "readOnly": read_only}}]

    def mounts(self, read_only: bool = True, sub_path: str | None = None) -> list[Manifest]:
        """Where a container sees a volume store (none for buckets); ``sub_path`` mounts
        only that folder of it, at the same place (``STORE_MOUNT/sub_path``), so the
        container can reach nothing else."""
        if self.claim_name is None:
            return []
        mount: Manifest = {"name": STORE_VOLUME, "mountPath": STORE_MOUNT, "readOnly": read_only}
        if sub_path:
            mount.update(mountPath=f"{STORE_MOUNT}/{sub_path.strip('/')}", subPath=sub_path.strip("/"))
        return [mount]


@dataclass(frozen=True)
class ImageMirror:
    """A pull-through mirror of a public registry in the cloud's own registry.

    An image of ``upstream`` is pulled as ``prefix/PATH:TAG`` (or ``@DIGEST``): the same
    path, tag and digest under the mirror (components/workloads/images.py rewrites them).
    ``streaming``: the GPU nodes stream such images instead of downloading them first.
    """

    upstream: Literal["docker.io"]
    prefix: pulumi.Input[str]  # e.g. REGION-docker.pkg.dev/PROJECT/REPO, ACCOUNT.dkr.ecr.REGION.amazonaws.com/PREFIX
    streaming: bool = False


@dataclass(frozen=True)
class LoadBalancing:
    """Service annotations that ask this cloud for an external or internal load balancer."""

    external_annotations: Mapping[str, str] = field(default_factory=dict)
    internal_annotations: Mapping[str, str] = field(default_factory=dict)
    # Service.spec.loadBalancerClass: which implementation takes the Service (an existing
    # cluster's MetalLB started with --lb-class, kube-vip); None: the cluster's default.
    load_balancer_class: str | None = None

    def annotations(self, internal: bool) -> dict[str, str]:
        return dict(self.internal_annotations if internal else self.external_annotations)


@dataclass(frozen=True)
class IngressRoute:
    """An Ingress controller the cluster already runs, through which Open WebUI is
    published (an existing cluster without a cloud load balancer)."""

    class_name: str  # Ingress.spec.ingressClassName
    host: str
    controller_namespace: str  # where the controller's pods run: they connect to the UI's pods
    tls_secret: str | None = None  # a kubernetes.io/tls Secret in the workload namespace
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls_secret else 'http'}://{self.host}"


@dataclass(frozen=True)
class NodeEndpoint:
    """An address served on every node that pods must reach, e.g. a metadata server."""

    cidr: str
    port: int
    protocol: str = "TCP"


# CoreDNS / kube-dns carries this label on GKE and EKS alike (GKE: kube-system/kube-dns
# Deployment; EKS: the coredns add-on keeps the upstream `k8s-app: kube-dns` label).
KUBE_DNS_NAMESPACE = "kube-system"
KUBE_DNS_LABELS: Mapping[str, str] = {"k8s-app": "kube-dns"}


@dataclass(frozen=True)
class ClusterNetwork:
    """What NetworkPolicies must know about the cluster's network (Kubernetes terms only).

    ``internal_cidrs``: pod, Service and node ranges, never "the internet" (a policy that
    allows HTTPS to the internet excepts them). ``identity_endpoints``: where pods exchange
    their service account for cloud credentials (GKE metadata server, EKS Pod Identity
    agent). ``metrics_scraper_namespaces``: where the platform's Prometheus collectors run.
    """

    internal_cidrs: Sequence[str] = ()
    # Where nodes' own addresses come from: a load balancer that forwards through a node
    # (externalTrafficPolicy Cluster) shows the node as the source.
    node_cidrs: Sequence[str] = ()
    identity_endpoints: Sequence[NodeEndpoint] = ()
    metrics_scraper_namespaces: Sequence[str] = ()
    dns_namespace: str = KUBE_DNS_NAMESPACE
    dns_pod_labels: Mapping[str, str] = field(default_factory=lambda: dict(KUBE_DNS_LABELS))
    dns_port: int = 53


@dataclass(frozen=True)
class DashboardPanel:
    """One chart of a dashboard, in PromQL: what a platform's dashboard service renders."""

    title: str
    unit: str  # Grafana unit id: short, s, percent, percentunit, decmbytes
    queries: Sequence[tuple[str, str]]  # (legend, PromQL)


@dataclass(frozen=True)
class Monitoring:
    """The cluster's Prometheus, as the serving layer must address it.

    ``kind``: "gmp" (Google Cloud Managed Service for Prometheus: PodMonitoring and Rules,
    monitoring.googleapis.com/v1) or "prometheus-operator" (PodMonitor and PrometheusRule,
    monitoring.coreos.com/v1). ``namespace``: where its collectors run (the same namespace
    ``ClusterNetwork.metrics_scraper_namespaces`` lets into the workloads). ``object_labels``:
    labels the operator's Prometheus selects monitors and rules by (kube-prometheus-stack:
    its release label). ``available_series``: GPU and node series the cluster is known to
    export (DCGM fields, kube-state-metrics), so alerts only use series that exist. ``how_to_view``: a sentence for the
    stack outputs saying where the metrics and dashboards are.
    """

    kind: Literal["gmp", "prometheus-operator"]
    namespace: str
    object_labels: Mapping[str, str] = field(default_factory=dict)
    available_series: frozenset[str] = frozenset()
    how_to_view: str = ""
    # Labels that make the cluster's Grafana load a dashboard ConfigMap (its sidecar's);
    # empty: the platform has no Grafana that loads them.
    dashboard_labels: Mapping[str, str] = field(default_factory=dict)
    # The platform's own dashboard service, if it has one (GKE: Cloud Monitoring): called
    # with a resource name, a title and the panels; creates the dashboard there.
    publish_dashboard: Callable[[str, str, Sequence[DashboardPanel]], pulumi.Resource] | None = None
    # What scrape objects and rules must wait for (the operator's CRDs, when the platform installs them).
    ready: Sequence[pulumi.Resource] = ()
    # Alerts the platform defines itself (GKE: nodes not Ready), listed in the stack output.
    platform_alerts: Sequence[str] = ()


@dataclass(frozen=True)
class Platform:
    """A Kubernetes cluster with GPU pools, ready for workloads."""

    cloud: str
    cluster_name: str
    location: str
    provider: k8s.Provider
    namespace: str  # where workloads go; created by the platform with its service accounts
    gpu_pools: Mapping[str, GpuNodes]
    load_balancing: LoadBalancing
    model_store: ModelStore | None = None
    storage_class: str | None = None  # for PersistentVolumeClaims; None = the cluster default
    # A StorageClass (retaining_storage_class) for volumes whose data must outlive the
    # stack, such as Open WebUI's chats; the serving layer applies it. None: the platform
    # cannot keep volumes, and claims use ``storage_class``.
    retained_storage_class: Manifest | None = None
    registry_url: pulumi.Output[str] | None = None
    # Where workload images from Docker Hub are pulled through; None: straight from Docker Hub.
    image_mirror: ImageMirror | None = None
    # Resources workloads must wait for (CRDs, device plugins, network objects, namespace).
    ready: Sequence[pulumi.Resource] = ()
    # Stack outputs that describe the platform (credentials command, kubeconfig, ...).
    outputs: Mapping[str, pulumi.Input[Any]] = field(default_factory=dict)
    # Address ranges, node endpoints and scrapers the workloads' NetworkPolicies name.
    network: ClusterNetwork = field(default_factory=ClusterNetwork)
    # The cluster's Prometheus; None: none that the serving layer may address.
    monitoring: Monitoring | None = None
    # The cluster's Ingress controller Open WebUI is published through; None: no Ingress.
    ingress: IngressRoute | None = None
    # Operator charts (catalog ``Chart.name``) the cluster already runs: the serving layer
    # does not install them (an existing cluster that has KubeRay or LeaderWorkerSet).
    preinstalled_operators: frozenset[str] = frozenset()

    def gpu_pool(self, name: str | None = None) -> GpuNodes:
        """The named GPU pool, or the first one."""
        return self.gpu_pools[name] if name else next(iter(self.gpu_pools.values()))

    def resource_options(self, **kwargs: Any) -> pulumi.ResourceOptions:
        """Options for a Kubernetes resource on this platform: its provider, after ``ready``."""
        depends_on = [*self.ready, *kwargs.pop("depends_on", [])]
        return pulumi.ResourceOptions(provider=self.provider, depends_on=depends_on, **kwargs)
