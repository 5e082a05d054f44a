"""Platform config: a Kubernetes cluster you already have (on-prem, or a managed cluster).

Nothing here creates a cluster, nodes or a network: the stack describes what the cluster
already has (its GPU nodes, storage class, address ranges, Prometheus) and says which of
the pieces it may lack the program should install (the NVIDIA device plugin, the
LeaderWorkerSet and KubeRay operators). What config cannot know (the CNI enforcing
NetworkPolicies, the GPU driver against the images' CUDA) becomes ``kubectl`` preflight
commands in the stack outputs (components/existing/preflight.py).
"""

from __future__ import annotations

from ipaddress import IPv4Network
from typing import Annotated, Literal

from pydantic import Field, StrictBool, StrictInt, field_validator, model_validator
from pydantic_core import InitErrorDetails

from components import catalog
from components.config.base import (
    K8S_NAME,
    CloudBucket,
    CloudRepository,
    ModelStoreConfig,
    NoRegistry,
    NoStore,
    RegistryConfig,
    StoreSections,
    Strict,
    raise_problems,
    rule,
)

# A label or annotation key: an optional DNS-subdomain prefix and a name (Kubernetes docs,
# "Labels and Selectors: Syntax and character set").
LABEL_KEY = r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
# An extended resource name (a domain-prefixed name such as nvidia.com/gpu or rdma/ib).
RESOURCE_NAME = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
ABSOLUTE_PATH = r"^/[^\s]*$"
DNS_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$"  # a host name with a domain
COUNT = r"^[1-9][0-9]*$"  # an extended resource quantity, as text (a pod requests whole units)
# An image reference prefix: a registry host (with an optional port) and optional path,
# no tag (e.g. harbor.example.internal/dockerhub).
IMAGE_PREFIX = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:[0-9]+)?(/[a-z0-9]([-a-z0-9._]*[a-z0-9])?)*$"
SECRET_KUBECONFIG = "kubeconfig"  # the stack secret holding a kubeconfig's content


class KubeconfigSecret(Strict):
    """The kubeconfig's content is the stack secret ``llm-serving:kubeconfig``
    (``pulumi config set --secret kubeconfig < file``): the stack deploys from any machine
    and the content is only ever a Pulumi secret, encrypted in config and state."""

    kind: Literal["secret"]
    context: Annotated[str, Field(min_length=1)] | None = None  # unset: the file's current-context


class KubeconfigFile(Strict):
    """A kubeconfig file on the deploying machine. The provider is given the path, not the
    content, so no credential enters the state; a missing file is refused before any resource."""

    kind: Literal["file"]
    path: Annotated[str, Field(min_length=1)]
    context: Annotated[str, Field(min_length=1)] | None = None


class KubeconfigAmbient(Strict):
    """Whatever the deploying shell uses: ``$KUBECONFIG`` or ``~/.kube/config`` (or the
    in-cluster service account when Pulumi runs in a pod). Name the context, so a
    ``kubectl config use-context`` elsewhere cannot point the stack at another cluster."""

    kind: Literal["ambient"]
    context: Annotated[str, Field(min_length=1)] | None = None


KubeconfigConfig = Annotated[KubeconfigSecret | KubeconfigFile | KubeconfigAmbient, Field(discriminator="kind")]


class Toleration(Strict):
    """A pod toleration of a GPU node taint (core/v1 Toleration)."""

    key: Annotated[str, Field(pattern=LABEL_KEY)]
    operator: Literal["Exists", "Equal"] = "Exists"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None

    @model_validator(mode="after")
    def _value_with_equal(self) -> Toleration:
        if (self.operator == "Equal") != (self.value is not None):
            raise ValueError("operator Equal takes a value; operator Exists takes none")
        return self


class RdmaConfig(Strict):
    """The pool's GPUDirect RDMA (InfiniBand or RoCE), as the cluster exposes it: the
    extended resources a pod requests for the NICs (e.g. ``rdma/ib`` from the RDMA shared
    device plugin, ``nvidia.com/hostdev`` from the Network Operator) and the pod
    annotations that attach them (e.g. Multus ``k8s.v1.cni.cncf.io/networks``). Pods on
    such a pool take whole nodes and get ``IPC_LOCK`` to pin memory for RDMA."""

    resources: dict[Annotated[str, Field(pattern=RESOURCE_NAME)], Annotated[str, Field(pattern=COUNT)]] = {}
    pod_annotations: dict[Annotated[str, Field(pattern=LABEL_KEY)], str] = {}

    @model_validator(mode="after")
    def _something(self) -> RdmaConfig:
        if not self.resources and not self.pod_annotations:
            raise ValueError(
                "name the extended resources (resources) or the pod annotations (podAnnotations) "
                "that give a pod the node's RDMA NICs"
            )
        return self


class ExistingGpuPoolConfig(Strict):
    """GPU nodes the cluster already has, and how a pod lands on them."""

    name: Annotated[str, Field(pattern=K8S_NAME, max_length=63)]
    gpu: str  # a components/catalog/gpus.py key, e.g. A100-40G: what the engine is sized for
    gpus_per_node: Annotated[StrictInt, Field(ge=1, le=16)]
    node_count: Annotated[StrictInt, Field(ge=1, le=1024)]  # nodes a replica may use (capacity rule)
    node_selector: Annotated[dict[Annotated[str, Field(pattern=LABEL_KEY)], str], Field(min_length=1)]
    tolerations: list[Toleration] = []
    resource_name: Annotated[str, Field(pattern=RESOURCE_NAME)] = "nvidia.com/gpu"
    # A pod must take every GPU of its node (nodes shared with nobody). RDMA pools always do.
    whole_node: StrictBool = False
    rdma: RdmaConfig | None = None
    # A fast node-local disk (hostPath) for downloads and caches, in subdirectories the
    # workloads name (llm-serving/, model-cache/); unset: ephemeral storage.
    scratch_host_path: Annotated[str, Field(pattern=ABSOLUTE_PATH)] | None = None
    # Memory-backed /dev/shm for a pod (NCCL, the engine's workers); the clouds use an eighth
    # of the machine's memory where no reference publishes a size (catalog.shm_rule).
    shm_gib: Annotated[StrictInt, Field(ge=1, le=2048)] = 64

    @field_validator("gpu")
    @classmethod
    def _known_gpu(cls, gpu: str) -> str:
        if gpu not in catalog.GPUS:
            raise ValueError(
                f"not a GPU of components/catalog/gpus.py; known: {', '.join(catalog.GPUS)} "
                "(add one there, with its CUDA-reported memory and a source)"
            )
        return gpu

    @property
    def spec(self) -> catalog.GpuSpec:
        return catalog.GPUS[self.gpu]

    @property
    def fabric(self) -> Literal["none", "rdma"]:
        return "rdma" if self.rdma else "none"

    @property
    def takes_whole_node(self) -> bool:
        return self.whole_node or self.rdma is not None


class ExistingInstallConfig(Strict):
    """Pieces the cluster may lack, installed by this stack only when asked (pinned official
    charts, the same the clouds install). False: the cluster already has it (a preflight
    output checks)."""

    nvidia_device_plugin: StrictBool = False
    leader_worker_set: StrictBool = False  # the vllm engine's multi-node replicas
    kuberay: StrictBool = False  # the rayservice engine


class ExistingStorageConfig(Strict):
    """PersistentVolumeClaims (Open WebUI's chats): the class to use, and optionally the
    provisioner of a class the stack creates with ``reclaimPolicy: Retain``, so chats
    outlive the stack (Platform.retained_storage_class)."""

    class_name: Annotated[str, Field(pattern=K8S_NAME)] | None = None  # unset: the cluster default
    retain_provisioner: Annotated[str, Field(min_length=1)] | None = None  # e.g. rook-ceph.rbd.csi.ceph.com
    retain_parameters: dict[str, str] = {}

    @model_validator(mode="after")
    def _parameters_need_provisioner(self) -> ExistingStorageConfig:
        if self.retain_parameters and self.retain_provisioner is None:
            raise ValueError("retainParameters go with retainProvisioner")
        return self


class ExistingIngressConfig(Strict):
    """Open WebUI through the cluster's Ingress controller (ingress-nginx, Traefik, ...)."""

    class_name: Annotated[str, Field(pattern=K8S_NAME)]  # its IngressClass
    host: Annotated[str, Field(pattern=DNS_NAME)]  # e.g. chat.example.internal
    # Where the controller's pods run: the UI's NetworkPolicy admits that namespace.
    controller_namespace: Annotated[str, Field(pattern=K8S_NAME)]
    # A kubernetes.io/tls Secret in the workload namespace (e.g. from cert-manager); unset: plain HTTP.
    tls_secret_name: Annotated[str, Field(pattern=K8S_NAME)] | None = None
    annotations: dict[Annotated[str, Field(pattern=LABEL_KEY)], str] = {}


class ExistingExposureConfig(Strict):
    """How a Service the stack asks to be a LoadBalancer gets an address without a cloud:
    ``loadBalancerClass`` names the implementation (MetalLB started with ``--lb-class``,
    kube-vip, ...); unset, the cluster's default implementation takes it. ClusterIP with
    ``kubectl port-forward`` remains the default of every Service (serving.exposure)."""

    load_balancer_class: Annotated[str, Field(pattern=RESOURCE_NAME)] | None = None
    # Service annotations that choose an address pool etc. (MetalLB: metallb.io/address-pool).
    annotations: dict[Annotated[str, Field(pattern=LABEL_KEY)], str] = {}
    # Open WebUI also (or only) through an Ingress; the engine stays in-cluster.
    ingress: ExistingIngressConfig | None = None


class ExistingNetworkConfig(Strict):
    """The cluster's address ranges, for NetworkPolicies (components/platform.ClusterNetwork):
    HTTPS egress to "the internet" excepts them; a load balancer's node sources are admitted."""

    pod_cidrs: Annotated[list[IPv4Network], Field(min_length=1)]
    service_cidrs: Annotated[list[IPv4Network], Field(min_length=1)]
    node_cidrs: list[IPv4Network] = []
    dns_namespace: Annotated[str, Field(pattern=K8S_NAME)] = "kube-system"


class PrometheusOperatorConfig(Strict):
    """A prometheus-operator the cluster already runs (kube-prometheus-stack or similar)."""

    kind: Literal["prometheusOperator"]
    namespace: Annotated[str, Field(pattern=K8S_NAME)] = "monitoring"
    # Labels its Prometheus selects PodMonitors and PrometheusRules by (kube-prometheus-stack:
    # release: <release name>, unless its *SelectorNilUsesHelmValues are false).
    object_labels: dict[Annotated[str, Field(pattern=LABEL_KEY)], str] = {}
    # Labels its Grafana's sidecar loads dashboard ConfigMaps by (kube-prometheus-stack: grafana_dashboard: "1").
    dashboard_labels: dict[Annotated[str, Field(pattern=LABEL_KEY)], str] = {}


class NoMonitoring(Strict):
    kind: Literal["none"]


ExistingMonitoringConfig = Annotated[PrometheusOperatorConfig | NoMonitoring, Field(discriminator="kind")]


class GkeIdentity(Strict):
    """The GKE cluster this is, so pods reach a bucket the user already has through
    Workload Identity Federation: IAM names a Kubernetes service account as a principal
    of the project's pool PROJECT.svc.id.goog (components/gcp/identity.py). Google Cloud
    calls use the deploying shell's credentials (gcloud auth application-default login)."""

    kind: Literal["gke"]
    project: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")]  # the cluster's project
    location: Annotated[str, Field(pattern=r"^[a-z]+-[a-z]+[0-9]+(-[a-z])?$")]  # region or zone
    cluster: Annotated[str, Field(pattern=K8S_NAME, max_length=40)]
    # Principals name the project by number; unset: looked up (organizations.get_project).
    project_number: Annotated[str, Field(pattern=r"^[1-9][0-9]{5,19}$")] | None = None
    # The cluster runs the Cloud Storage FUSE CSI add-on: loaders may mount the bucket.
    gcs_fuse: StrictBool = False


class EksIdentity(Strict):
    """The EKS cluster this is, so pods reach a bucket the user already has through EKS Pod
    Identity (an IAM role per service account, associated with it in this cluster). AWS
    calls use the deploying shell's credentials."""

    kind: Literal["eks"]
    cluster_name: Annotated[str, Field(pattern=r"^[a-zA-Z][a-zA-Z0-9-]*$", max_length=100)]
    region: Annotated[str, Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")]


ClusterIdentityConfig = Annotated[GkeIdentity | EksIdentity, Field(discriminator="kind")]


class ExistingPlatformConfig(StoreSections):  # modelStore, registry: base.py
    cloud: Literal["existing"]
    # A name for outputs and resource names (the cluster's own name, if it has one).
    cluster_name: Annotated[str, Field(pattern=K8S_NAME, max_length=40)] = "llm-serving"
    kubeconfig: KubeconfigConfig
    gpu_pools: Annotated[list[ExistingGpuPoolConfig], Field(min_length=1)]
    network: ExistingNetworkConfig
    storage: ExistingStorageConfig = ExistingStorageConfig()
    exposure: ExistingExposureConfig = ExistingExposureConfig()
    install: ExistingInstallConfig = ExistingInstallConfig()
    monitoring: ExistingMonitoringConfig = NoMonitoring(kind="none")
    # A registry that mirrors Docker Hub, for sites without it: every Docker Hub image of
    # the serving layer is pulled as <imageMirror>/<path>:<tag>, e.g.
    # harbor.example.internal/dockerhub/vllm/vllm-openai:v0.33.0 (a Harbor proxy-cache
    # project, a registry:2 pull-through mirror); the clouds' `registry: {kind: mirror}`
    # is the same rewrite (components/workloads/images.py). Other registries' images
    # (ghcr.io, public.ecr.aws) and the operator charts' images are pulled as they are.
    image_mirror: Annotated[str, Field(pattern=IMAGE_PREFIX)] | None = None
    # No cloud bucket or registry here: the default store and registry are none.
    model_store: ModelStoreConfig = NoStore(kind="none")
    registry: RegistryConfig = NoRegistry(kind="none")
    # The managed cluster this is (GKE or EKS), for a model store of kind 'bucket': a
    # bucket the user already has, reached through Workload Identity or Pod Identity.
    identity: ClusterIdentityConfig | None = None

    @field_validator("gpu_pools")
    @classmethod
    def _unique_pools(cls, pools: list[ExistingGpuPoolConfig]) -> list[ExistingGpuPoolConfig]:
        names = [p.name for p in pools]
        raise_problems(
            "gpuPools",
            [rule((i, "name"), n, "pool names must be unique") for i, n in enumerate(names) if names.index(n) != i],
        )
        return pools

    @model_validator(mode="after")
    def _no_cloud_store(self) -> ExistingPlatformConfig:
        problems = self._bucket_problems()
        if isinstance(self.registry, CloudRepository):
            problems.append(
                rule(
                    ("registry", "kind"),
                    "repository",
                    "cloud 'existing' creates no registry; use kind 'none', and platform.imageMirror for a "
                    "site registry that mirrors the public ones",
                )
            )
        raise_problems("platform", problems)
        return self

    def _bucket_problems(self) -> list[InitErrorDetails]:
        """A bucket here is one the user already has: named, reached through the identity
        of the managed cluster, never created, imported, changed or deleted."""
        store = self.model_store
        if not isinstance(store, CloudBucket):
            if self.identity is not None:
                return [
                    rule(
                        ("identity",),
                        self.identity.kind,
                        "identity is for a model store of kind 'bucket' (a bucket you already have); "
                        f"this stack's modelStore is kind '{store.kind}': remove identity",
                    )
                ]
            return []
        problems = []
        if self.identity is None:
            problems.append(
                rule(
                    ("identity",),
                    None,
                    "a bucket on an existing cluster is reached through the cluster's workload identity: name "
                    "the cluster, identity: {kind: gke, project, location, cluster} (Workload Identity) or "
                    "{kind: eks, clusterName, region} (Pod Identity); an on-prem cluster uses kind "
                    "'s3Compatible' or 'volume'",
                )
            )
        if store.name is None:
            problems.append(
                rule(("modelStore", "name"), None, "name the bucket you already have: this stack creates none")
            )
        # The bucket is the user's: nothing of it is adopted, deleted or given lifecycle rules.
        if store.adopt:
            problems.append(
                rule(
                    ("modelStore", "adopt"),
                    True,
                    "a bucket on an existing cluster is never imported into the stack; remove adopt",
                )
            )
        if not store.keep_on_destroy:
            problems.append(
                rule(
                    ("modelStore", "keepOnDestroy"),
                    False,
                    "a bucket on an existing cluster is yours and is never deleted by this stack; remove keepOnDestroy",
                )
            )
        if "backup_retention_days" in store.model_fields_set:
            problems.append(
                rule(
                    ("modelStore", "backupRetentionDays"),
                    store.backup_retention_days,
                    "this stack sets no lifecycle rule on a bucket it does not own; expire backups/ with the "
                    "bucket's own lifecycle rules and remove backupRetentionDays",
                )
            )
        return problems

    @property
    def gke(self) -> GkeIdentity | None:
        """The GKE cluster's identity, when the store is a bucket reached through it."""
        return self.identity if isinstance(self.identity, GkeIdentity) and self.bucket_store else None

    @property
    def eks(self) -> EksIdentity | None:
        return self.identity if isinstance(self.identity, EksIdentity) and self.bucket_store else None

    def pool(self, name: str) -> ExistingGpuPoolConfig:
        return next(p for p in self.gpu_pools if p.name == name)

    @property
    def engines(self) -> frozenset[str]:
        return frozenset({"vllm", "rayservice"})

    @property
    def loaders(self) -> frozenset[str]:
        # The Run:ai streamer reads gs://, s3:// and mounted volumes; GCS FUSE only where the
        # GKE cluster has the add-on (identity.gcsFuse).
        if self.gke is not None and self.gke.gcs_fuse:
            return frozenset({"gcsfuse", "runai-streamer"})
        return frozenset({"runai-streamer"} if self.has_store else set())
