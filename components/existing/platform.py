"""ExistingPlatform: a Kubernetes cluster you already have, returned as a ``Platform``.

Nothing outside the cluster is created. In it: the workload namespace and its service
accounts, and, only where the stack asks (``platform.install``), the NVIDIA device plugin;
the engines' operators (KubeRay, LeaderWorkerSet) are installed by the engines themselves
(components/workloads/engines) unless the cluster already runs them
(``Platform.preinstalled_operators``).

The Kubernetes provider (``platform.kubeconfig``):

* ``secret``: the kubeconfig's content from the stack secret ``llm-serving:kubeconfig``,
  handed to the provider as a Pulumi secret (encrypted in config and in state);
* ``file``: the path of a kubeconfig on the deploying machine; the provider reads it at
  each operation, and only the path is in the state;
* ``ambient``: ``$KUBECONFIG`` or ``~/.kube/config`` (or in-cluster credentials), as kubectl.

``clusterIdentifier`` is the stack's cluster name, so rotated credentials or a moved file
update the provider instead of replacing every object in the cluster (pulumi-kubernetes
Provider reference: "clusterIdentifier").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import catalog
from components.config import StackConfig
from components.config.existing import (
    ExistingPlatformConfig,
    KubeconfigFile,
    KubeconfigSecret,
    PrometheusOperatorConfig,
)
from components.existing.buckets import ExistingBucket, ExistingBucketArgs, identity_endpoints
from components.existing.gpu_pools import (
    DEVICE_PLUGIN_NAMESPACE,
    DEVICE_PLUGIN_RELEASE,
    device_plugin_values,
    gpu_nodes,
)
from components.existing.preflight import preflight_commands
from components.kubernetes import apply, chart_release, namespace_manifest, service_account_manifest
from components.platform import (
    KUBE_DNS_LABELS,
    SERVICE_ACCOUNTS,
    ClusterNetwork,
    ImageMirror,
    IngressRoute,
    LoadBalancing,
    Monitoring,
    Platform,
    retaining_storage_class,
)
from components.stores import ExternalModelStore, ExternalModelStoreArgs, KeyPair, is_external


def cluster_network(config: ExistingPlatformConfig, monitoring: PrometheusOperatorConfig | None) -> ClusterNetwork:
    """The address ranges the stack names, and the managed cluster's identity endpoints
    when pods reach a cloud bucket through them."""
    net = config.network
    return ClusterNetwork(
        internal_cidrs=tuple(str(c) for c in (*net.pod_cidrs, *net.service_cidrs, *net.node_cidrs)),
        node_cidrs=tuple(str(c) for c in net.node_cidrs),
        metrics_scraper_namespaces=(monitoring.namespace,) if monitoring else (),
        dns_namespace=net.dns_namespace,
        dns_pod_labels=dict(KUBE_DNS_LABELS),
        identity_endpoints=identity_endpoints(config),
    )


def preinstalled_operators(config: ExistingPlatformConfig) -> frozenset[str]:
    """The operator charts the engines would install that the stack did not ask for: the
    cluster runs its own (the preflight output checks their CRDs)."""
    names = set()
    if not config.install.kuberay:
        names.add(catalog.KUBERAY_OPERATOR_CHART.name)
    if not config.install.leader_worker_set:
        names.add(catalog.LWS_CHART.name)
    return frozenset(names)


def ingress_route(config: ExistingPlatformConfig) -> IngressRoute | None:
    ingress = config.exposure.ingress
    if ingress is None:
        return None
    return IngressRoute(
        class_name=ingress.class_name,
        host=ingress.host,
        controller_namespace=ingress.controller_namespace,
        tls_secret=ingress.tls_secret_name,
        annotations=dict(ingress.annotations),
    )


def kubeconfig_source(config: ExistingPlatformConfig) -> str:
    """How the stack reaches the cluster, for the outputs (never the credentials)."""
    source = config.kubeconfig
    where = {
        "secret": "the stack secret llm-serving:kubeconfig",
        "file": f"the file {getattr(source, 'path', '')}",
        "ambient": "$KUBECONFIG or ~/.kube/config of the deploying shell",
    }[source.kind]
    return where + (f", context {source.context}" if source.context else ", its current context")


@dataclass(frozen=True)
class ExistingPlatformArgs:
    config: StackConfig  # the whole stack: preflight commands read the serving section too
    namespace: str
    kubeconfig: pulumi.Output[str] | None = None  # the secret's content (kind 'secret')
    # An S3-compatible model store's key pairs (StackSecrets.store_keys).
    store_keys: Mapping[str, KeyPair] = field(default_factory=dict)


class ExistingPlatform(pulumi.ComponentResource):
    """The cluster as the serving layer sees it; ``platform`` is what it consumes."""

    platform: Platform

    def __init__(self, name: str, args: ExistingPlatformArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llm-serving:existing:Platform", name, None, opts)
        config = args.config.platform
        assert isinstance(config, ExistingPlatformConfig)
        source = config.kubeconfig
        kubeconfig: pulumi.Input[str] | None = None
        if isinstance(source, KubeconfigSecret):
            assert args.kubeconfig is not None, "load_config refuses kind 'secret' without the secret"
            kubeconfig = pulumi.Output.secret(args.kubeconfig)
        elif isinstance(source, KubeconfigFile):
            kubeconfig = str(Path(source.path).expanduser())
        provider = k8s.Provider(
            f"{name}-kubernetes",
            k8s.ProviderArgs(kubeconfig=kubeconfig, context=source.context, cluster_identifier=config.cluster_name),
            pulumi.ResourceOptions(parent=self),
        )
        in_cluster = pulumi.ResourceOptions(parent=self, provider=provider)

        workload_namespace = apply(f"{name}-{args.namespace}", namespace_manifest(args.namespace), in_cluster)
        accounts = [
            apply(
                f"{name}-{account}",
                service_account_manifest(account, args.namespace),
                pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[workload_namespace]),
            )
            for account in SERVICE_ACCOUNTS
        ]
        ready: list[pulumi.Resource] = [workload_namespace, *accounts]
        if config.install.nvidia_device_plugin:
            ready.append(
                chart_release(
                    f"{name}-{DEVICE_PLUGIN_RELEASE}",
                    catalog.NVIDIA_DEVICE_PLUGIN_CHART,  # the pin the EKS platform installs
                    in_cluster,
                    name=DEVICE_PLUGIN_RELEASE,
                    namespace=DEVICE_PLUGIN_NAMESPACE,
                    values=device_plugin_values(config.gpu_pools),
                )
            )

        watch = config.monitoring if isinstance(config.monitoring, PrometheusOperatorConfig) else None
        monitoring = None
        if watch is not None:
            monitoring = Monitoring(
                kind="prometheus-operator",
                namespace=watch.namespace,
                object_labels=dict(watch.object_labels),
                dashboard_labels=dict(watch.dashboard_labels),
                how_to_view=f"the cluster's own Prometheus (prometheus-operator in namespace {watch.namespace})",
            )
        storage = config.storage
        retained = (
            retaining_storage_class(storage.retain_provisioner, storage.retain_parameters)
            if storage.retain_provisioner
            else None
        )
        outputs: dict[str, Any] = {
            "cluster_name": config.cluster_name,
            "cluster_location": "existing",
            "kubeconfig_source": kubeconfig_source(config),
            "preflight": preflight_commands(args.config, args.namespace),
        }
        model_store = None
        if is_external(config.model_store):  # S3-compatible or a ReadWriteMany volume (components/stores.py)
            external = ExternalModelStore(
                f"{name}-store",
                ExternalModelStoreArgs(
                    config.model_store, args.namespace, provider, args.store_keys, [workload_namespace]
                ),
                pulumi.ResourceOptions(parent=self),
            )
            model_store = external.model_store
            ready += external.ready
            outputs.update(external.outputs)
        elif config.bucket_store is not None:  # a bucket the user has, through the cluster's identity
            bucket = ExistingBucket(
                f"{name}-bucket", ExistingBucketArgs(config, args.namespace), pulumi.ResourceOptions(parent=self)
            )
            model_store = bucket.model_store
            ready += bucket.ready
            outputs["bucket"] = model_store.url()
        self.platform = Platform(
            cloud="existing",
            cluster_name=config.cluster_name,
            location="existing",
            provider=provider,
            namespace=args.namespace,
            gpu_pools={pool.name: gpu_nodes(pool) for pool in config.gpu_pools},
            load_balancing=LoadBalancing(
                external_annotations=dict(config.exposure.annotations),
                internal_annotations=dict(config.exposure.annotations),
                load_balancer_class=config.exposure.load_balancer_class,
            ),
            model_store=model_store,
            storage_class=storage.class_name,
            retained_storage_class=retained,
            ready=ready,
            outputs=outputs,
            network=cluster_network(config, watch),
            monitoring=monitoring,
            ingress=ingress_route(config),
            preinstalled_operators=preinstalled_operators(config),
            # The same rewrite the clouds' pull-through mirrors get (components/workloads/images.py).
            image_mirror=ImageMirror(upstream="docker.io", prefix=config.image_mirror) if config.image_mirror else None,
        )
        self.register_outputs(outputs)
