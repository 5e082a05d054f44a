"""GKE with an A4 High node pool on RoCE, as a ``components.platform.Platform``.

Composition only; each part lives in its own module:

    services.py   the Google Cloud APIs, enabled first
    network.py    the three VPCs (net-0 with Cloud NAT, net-1, the RoCE VPC)
    identity.py   the nodes' service account; Workload Identity principals
    cluster.py    the GKE cluster and its system pool; the kubeconfig
    gpu_pool.py   the A4 High node pool and how pods land on it
    storage.py    the model bucket and its bindings
    registry.py   the Artifact Registry repository
    namespace.py  the workload namespace and service accounts
    rdma.py       GKE network objects, the gIB installer, the pods' RDMA wiring

Every Google Cloud resource uses one explicit provider built from the stack config
(there is no ``gcp:project`` in the stack file); every Kubernetes object uses a provider
for the new cluster.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s

from components.config import GcpPlatformConfig
from components.gcp.alerting import managed_alertmanager_secret
from components.gcp.cluster import GkeCluster, GkeClusterArgs
from components.gcp.dashboard import publisher
from components.gcp.gpu_pool import GpuNodePool, GpuNodePoolArgs, gpu_nodes
from components.gcp.identity import IMAGE_STREAMING_ROLES, NodeIdentity, NodeIdentityArgs
from components.gcp.namespace import WorkloadNamespace, WorkloadNamespaceArgs
from components.gcp.network import Networks, NetworksArgs, plan_networks
from components.gcp.node_alerts import NODE_NOT_READY, node_alerts_object
from components.gcp.pod_network import GMP_NAMESPACE, cluster_network
from components.gcp.rdma import RdmaNetworking, RdmaNetworkingArgs, pod_wiring
from components.gcp.registry import (
    ContainerRegistry,
    ContainerRegistryArgs,
    DockerHubMirror,
    DockerHubMirrorArgs,
    registry_name,
)
from components.gcp.services import IMAGE_STREAMING_SERVICES, ProjectServices, ProjectServicesArgs
from components.gcp.storage import ModelBucket, ModelBucketArgs
from components.kubernetes import apply
from components.platform import (
    BACKUP_SERVICE_ACCOUNT,
    COMPILE_CACHE_SERVICE_ACCOUNT,
    PREFIX_WRITERS,
    READER_SERVICE_ACCOUNT,
    SERVICE_ACCOUNTS,
    WRITER_SERVICE_ACCOUNT,
    ImageMirror,
    LoadBalancing,
    ModelStore,
    Monitoring,
    Platform,
    retaining_storage_class,
)
from components.stores import ExternalModelStore, ExternalModelStoreArgs, KeyPair, is_external

# CSI driver of the GKE Cloud Storage FUSE add-on (gcp-a4high.md §5.1;
# https://cloud.google.com/kubernetes-engine/docs/how-to/persistent-volumes/cloud-storage-fuse-csi-driver).
GCS_FUSE_CSI_DRIVER = "gcsfuse.csi.storage.gke.io"
# Without `gke-gcsfuse/volumes` no sidecar is injected and mounts fail with a misleading
# PermissionDenied (gcp-a4high.md §7.10); "0" lifts the sidecar's resource limits, which
# would otherwise throttle a pod streaming hundreds of GB (same GKE page, "Configure
# resources for the sidecar container").
# A pod volume with this name becomes the sidecar's file cache (an emptyDir is on the
# node's ephemeral storage: local SSD on A4 High). https://cloud.google.com/kubernetes-engine/docs/how-to/persistent-volumes/cloud-storage-fuse-csi-driver-perf
GCS_FUSE_CACHE_VOLUME = "gke-gcsfuse-cache"
GCS_FUSE_POD_ANNOTATIONS = {
    "gke-gcsfuse/volumes": "true",
    "gke-gcsfuse/cpu-limit": "0",
    "gke-gcsfuse/memory-limit": "0",
    "gke-gcsfuse/ephemeral-storage-limit": "0",
}


def gcs_model_store(bucket: pulumi.Input[str], fuse: bool = True) -> ModelStore:
    """A GCS bucket reached through Workload Identity by the platform's service accounts;
    mounted with GCS FUSE where the cluster has the add-on (``fuse``)."""
    return ModelStore(
        scheme="gs",
        bucket=pulumi.Output.from_input(bucket),
        reader_service_account=READER_SERVICE_ACCOUNT,
        writer_service_account=WRITER_SERVICE_ACCOUNT,
        backup_service_account=BACKUP_SERVICE_ACCOUNT,
        compile_cache_service_account=COMPILE_CACHE_SERVICE_ACCOUNT,
        fuse_csi_driver=GCS_FUSE_CSI_DRIVER if fuse else None,
        fuse_pod_annotations=GCS_FUSE_POD_ANNOTATIONS if fuse else {},
        fuse_cache_volume=GCS_FUSE_CACHE_VOLUME if fuse else None,
    )


# GKE's StorageClass for Persistent Disk (pd-balanced) through the PD CSI driver; PVCs
# bind on the system pool, whose machines take PD (A4 nodes take Hyperdisk only, §7.9).
# https://cloud.google.com/kubernetes-engine/docs/how-to/persistent-volumes/gce-pd-csi-driver
PD_STORAGE_CLASS = "standard-rwo"
# Same provisioner and disk type as standard-rwo, but volumes are retained (chat history).
PD_PROVISIONER, PD_PARAMETERS = "pd.csi.storage.gke.io", {"type": "pd-balanced"}
# Service annotation for an internal passthrough Network Load Balancer; without it GKE
# makes an external one. https://cloud.google.com/kubernetes-engine/docs/how-to/internal-load-balancing
INTERNAL_LB_ANNOTATIONS = {"networking.gke.io/load-balancer-type": "Internal"}
STACK_LABEL = "llm-serving-stack"


def label_value(value: str) -> str:
    """A Google Cloud label value: lowercase letters, digits, _ and -, at most 63 characters."""
    return re.sub(r"[^a-z0-9_-]", "-", value.lower())[:63]


def credentials_command(cluster: str, region: str, project: str) -> str:
    return f"gcloud container clusters get-credentials {cluster} --region {region} --project {project}"


@dataclass(frozen=True)
class GcpPlatformArgs:
    config: GcpPlatformConfig
    namespace: str  # the workload namespace
    stack: str
    # Alertmanager's configuration (components/notifications.py), a secret; None: no notifications.
    alertmanager_config: pulumi.Output[str] | None = None
    # An S3-compatible model store's key pairs (StackSecrets.store_keys).
    store_keys: Mapping[str, KeyPair] = field(default_factory=dict)
    # Alert when a node is not Ready (node_alerts.py): monitoring and its alerts are on.
    node_alerts: bool = False


class GcpPlatform(pulumi.ComponentResource):
    """Everything workloads need on Google Cloud; ``platform`` is the contract they use."""

    platform: Platform

    def __init__(self, name: str, args: GcpPlatformArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llm-serving:gcp:Platform", name, None, opts)
        config = args.config
        google = gcp.Provider(
            f"{name}-google",
            project=config.project,
            region=config.region,
            default_labels={STACK_LABEL: label_value(args.stack)},
            opts=pulumi.ResourceOptions(parent=self),
        )
        on_google = pulumi.ResourceOptions(parent=self, providers=[google])
        streaming = config.image_streaming
        services = ProjectServices(
            f"{name}-services",
            ProjectServicesArgs(config.project, extra=IMAGE_STREAMING_SERVICES if streaming else ()),
            on_google,
        )
        # Everything else on Google Cloud waits for its API.
        on_google = pulumi.ResourceOptions.merge(on_google, pulumi.ResourceOptions(depends_on=[services]))

        plan = plan_networks(config)
        networks = Networks(f"{name}-networks", NetworksArgs(config, plan), on_google)
        identity = NodeIdentity(
            f"{name}-nodes",
            NodeIdentityArgs(
                config.project,
                f"{config.cluster_name}-nodes",
                extra_roles=IMAGE_STREAMING_ROLES if streaming else (),
            ),
            on_google,
        )
        # Nodes boot with their roles in place (logging, metrics, image pulls).
        after_identity = pulumi.ResourceOptions.merge(on_google, pulumi.ResourceOptions(depends_on=[identity]))
        cluster = GkeCluster(
            f"{name}-cluster",
            GkeClusterArgs(config, networks.network, networks.subnetwork, identity.email),
            after_identity,
        )
        gpu_pool = GpuNodePool(
            f"{name}-{config.gpu_pool.name}",
            GpuNodePoolArgs(config, cluster.name, identity.email, networks.node_nics),
            after_identity,
        )
        bucket = (
            ModelBucket(
                f"{name}-models",
                ModelBucketArgs(
                    config,
                    args.namespace,
                    READER_SERVICE_ACCOUNT,
                    WRITER_SERVICE_ACCOUNT,
                    cluster.cluster,
                    prefix_writers=PREFIX_WRITERS,
                ),
                on_google,
            )
            if config.bucket_store
            else None
        )
        registry = (
            ContainerRegistry(
                f"{name}-registry",
                ContainerRegistryArgs(
                    config.project,
                    registry_name(config.registry, config.cluster_name),
                    config.region,
                    f"Serving images of llm-serving stack {args.stack}",
                ),
                on_google,
            )
            if config.repository
            else None
        )
        mirror = (
            DockerHubMirror(
                f"{name}-docker-hub",
                DockerHubMirrorArgs(
                    config.project,
                    config.mirror.repository(config.cluster_name),
                    config.region,
                    f"Docker Hub images of llm-serving stack {args.stack}",
                    credentials=config.mirror.credentials,
                ),
                on_google,
            )
            if config.mirror
            else None
        )

        kubernetes = k8s.Provider(
            f"{name}-kubernetes", kubeconfig=cluster.kubeconfig, opts=pulumi.ResourceOptions(parent=self)
        )
        on_kubernetes = pulumi.ResourceOptions(parent=self, providers=[kubernetes])
        if args.alertmanager_config is not None:
            apply(f"{name}-alertmanager", managed_alertmanager_secret(args.alertmanager_config), on_kubernetes)
        if args.node_alerts:
            rules = node_alerts_object("llm-serving-nodes", config.project, config.cluster_name)
            apply(f"{name}-node-alerts", rules, on_kubernetes)
        workloads = WorkloadNamespace(
            f"{name}-workloads",
            WorkloadNamespaceArgs(args.namespace, SERVICE_ACCOUNTS),
            on_kubernetes,
        )
        # After the VPCs the objects name, and after the GPU pool: the installer then runs
        # on its first nodes before any workload is declared.
        rdma = RdmaNetworking(
            f"{name}-rdma",
            RdmaNetworkingArgs(plan, config.gib_version, config.gpu_pool.machine),
            pulumi.ResourceOptions.merge(on_kubernetes, pulumi.ResourceOptions(depends_on=[networks, gpu_pool])),
        )

        external = (
            ExternalModelStore(
                f"{name}-store",
                ExternalModelStoreArgs(
                    config.model_store, args.namespace, kubernetes, args.store_keys, [workloads.namespace]
                ),
                pulumi.ResourceOptions(parent=self),
            )
            if is_external(config.model_store)
            else None
        )
        model_store = gcs_model_store(bucket.name) if bucket else external.model_store if external else None
        outputs: dict[str, pulumi.Input[object]] = {
            "cluster_name": cluster.name,
            "cluster_location": cluster.location,
            "credentials_command": pulumi.Output.all(cluster.name, cluster.location).apply(
                lambda values: credentials_command(str(values[0]), str(values[1]), config.project)
            ),
            "kubeconfig": cluster.kubeconfig,
        }
        if bucket:
            outputs["bucket"] = bucket.url
        if external:
            outputs.update(external.outputs)
        if registry:
            outputs["registry_url"] = registry.url
        if mirror:
            outputs["image_mirror"] = mirror.url

        self.platform = Platform(
            cloud="gcp",
            cluster_name=config.cluster_name,
            location=config.region,
            provider=kubernetes,
            namespace=args.namespace,
            gpu_pools={config.gpu_pool.name: gpu_nodes(config.gpu_pool, pod_wiring(plan))},
            load_balancing=LoadBalancing(internal_annotations=INTERNAL_LB_ANNOTATIONS),
            model_store=model_store,
            storage_class=PD_STORAGE_CLASS,
            retained_storage_class=retaining_storage_class(PD_PROVISIONER, PD_PARAMETERS),
            registry_url=registry.url if registry else None,
            image_mirror=ImageMirror(upstream="docker.io", prefix=mirror.url, streaming=streaming) if mirror else None,
            # Workloads start once they can run as their accounts, read the bucket, and
            # attach the RDMA NICs with gIB installed.
            ready=[
                workloads.namespace,
                *workloads.service_accounts,
                *(bucket.bindings if bucket else []),
                *(external.ready if external else []),
                *rdma.ready,
                *(mirror.ready if mirror else []),
            ],
            outputs=outputs,
            network=cluster_network(config),
            # Managed collection is on (cluster.py): PodMonitoring and Rules reach it.
            monitoring=Monitoring(
                kind="gmp",
                # No GPU-health or node series declared, so the serving layer adds no XID,
                # ECC or node rules: GKE's kube-state package has no node conditions
                # (enable_components: STORAGE, HPA, POD, DAEMONSET, DEPLOYMENT, STATEFULSET,
                # JOBSET; pulumi-gcp ClusterMonitoringConfigArgs), and the managed DCGM set is
                # fixed (other fields need a self-managed exporter: GKE "Collect and view DCGM
                # metrics") with no XID or ECC field confirmed from Google's docs. Nodes not
                # Ready are alerted above from GKE's own node metric (node_alerts.py); GKE's
                # GPU health check watches XID 48 and node auto-repair (gpu_pool.py, off for
                # flex-start) replaces the node ("About GPUs in GKE").
                namespace=GMP_NAMESPACE,
                how_to_view=(
                    "Cloud Monitoring: the 'LLM serving' dashboard at "
                    f"https://console.cloud.google.com/monitoring/dashboards?project={config.project}; "
                    "any query in Metrics Explorer's PromQL tab"
                ),
                publish_dashboard=publisher(config.project, on_google),
                platform_alerts=[NODE_NOT_READY] if args.node_alerts else [],
            ),
        )
        self.register_outputs(dict(outputs))
