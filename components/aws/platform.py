"""AwsPlatform: EKS with Karpenter GPU NodePools, ECR and S3, returned as a ``Platform``.

Order of construction (aws-eks-karpenter.md §9): network, cluster with its system
node group and add-ons, Karpenter, GPU pools, registry and bucket, and the workload
namespace with the service accounts bound to the bucket.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.aws import iam
from components.aws.cluster import STORAGE_CLASS, Cluster, ClusterArgs, gp3_storage_class
from components.aws.gpu_pools import GpuPools, GpuPoolsArgs
from components.aws.karpenter import Karpenter, KarpenterArgs
from components.aws.mirror import DockerHubMirror, DockerHubMirrorArgs
from components.aws.monitoring import EksMonitoring, EksMonitoringArgs
from components.aws.network import Network, NetworkArgs
from components.aws.pod_network import cluster_network
from components.aws.storage import ServiceAccountAccess, Storage, StorageArgs
from components.config import AwsPlatformConfig
from components.kubernetes import apply, namespace_manifest, service_account_manifest
from components.platform import (
    BACKUP_SERVICE_ACCOUNT,
    COMPILE_CACHE_SERVICE_ACCOUNT,
    PREFIX_WRITERS,
    READER_SERVICE_ACCOUNT,
    WRITER_SERVICE_ACCOUNT,
    ImageMirror,
    LoadBalancing,
    ModelStore,
    Platform,
    retaining_storage_class,
)
from components.stores import ExternalModelStore, ExternalModelStoreArgs, KeyPair, is_external

# Service annotations for a Network Load Balancer from the AWS cloud provider that EKS
# runs for every cluster, so no load balancer controller has to be installed. Source:
# kubernetes/cloud-provider-aws pkg/providers/v1/aws.go (ServiceAnnotationLoadBalancerType,
# whose only accepted value is "nlb", and ServiceAnnotationLoadBalancerInternal); the
# subnets come from the role tags the network sets (TagNameSubnetPublicELB/InternalELB).
# Without a LoadBalancerClass the in-tree controller reconciles such Services
# (https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/guide/service/nlb/),
# and for an NLB it admits Service.spec.loadBalancerSourceRanges in the cluster-tagged
# node security group, the EKS cluster security group here (aws.go EnsureLoadBalancer ->
# updateInstanceSecurityGroupsForNLB).
NLB_TYPE = "service.beta.kubernetes.io/aws-load-balancer-type"
NLB_INTERNAL = "service.beta.kubernetes.io/aws-load-balancer-internal"
LOAD_BALANCING = LoadBalancing(
    external_annotations={NLB_TYPE: "nlb"},
    internal_annotations={NLB_TYPE: "nlb", NLB_INTERNAL: "true"},
)
# AWS SDKs read AWS_REGION; boto3 (the Run:ai streamer, huggingface tooling) reads
# AWS_DEFAULT_REGION (https://docs.aws.amazon.com/sdkref/latest/guide/feature-region.html;
# https://boto3.amazonaws.com/v1/documentation/api/latest/guide/configuration.html).
REGION_ENV = ("AWS_REGION", "AWS_DEFAULT_REGION")
# Service accounts bound to the bucket, and whether they may write to it.
BUCKET_USERS = (
    ServiceAccountAccess(READER_SERVICE_ACCOUNT, write=False),
    ServiceAccountAccess(WRITER_SERVICE_ACCOUNT, write=True),
    *(ServiceAccountAccess(w.service_account, write=True, create_only_prefix=w.prefix) for w in PREFIX_WRITERS),
)
# The gp3 class's provisioner and parameters, with volumes retained (chat history).
GP3 = gp3_storage_class()
RETAINED_GP3 = retaining_storage_class(GP3["provisioner"], GP3["parameters"])


def s3_model_store(bucket: pulumi.Input[str], region: str) -> ModelStore:
    """An S3 bucket reached through Pod Identity by the platform's service accounts."""
    return ModelStore(
        scheme="s3",
        bucket=pulumi.Output.from_input(bucket),
        reader_service_account=READER_SERVICE_ACCOUNT,
        writer_service_account=WRITER_SERVICE_ACCOUNT,
        backup_service_account=BACKUP_SERVICE_ACCOUNT,
        compile_cache_service_account=COMPILE_CACHE_SERVICE_ACCOUNT,
        env=dict.fromkeys(REGION_ENV, region),
    )


def stack_tags(stack: str, cluster: str) -> dict[str, str]:
    """Tags on every AWS resource of the stack, for cost allocation and ownership."""
    return {"llm-serving:stack": stack, "llm-serving:cluster": cluster}


@dataclass(frozen=True)
class AwsPlatformArgs:
    config: AwsPlatformConfig
    namespace: str  # where workloads go; created here with their service accounts
    stack: str
    monitoring: bool = True  # install Prometheus, Grafana and dcgm-exporter (llm-serving:monitoring.enabled)
    # Alertmanager's configuration (components/notifications.py), a secret; None: no notifications.
    alertmanager_config: pulumi.Output[str] | None = None
    # An S3-compatible model store's key pairs (StackSecrets.store_keys).
    store_keys: Mapping[str, KeyPair] = field(default_factory=dict)


class AwsPlatform(pulumi.ComponentResource):
    """The whole AWS platform; ``platform`` is what the serving layer consumes."""

    platform: Platform

    def __init__(self, name: str, args: AwsPlatformArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llm-serving:aws:Platform", name, None, opts)
        config = args.config
        cluster_name = config.cluster_name
        tags = stack_tags(args.stack, cluster_name)

        # Every AWS resource goes through this provider: the region is the stack's, never
        # whatever the deploying shell has configured.
        provider = aws.Provider(
            f"{name}-aws",
            region=config.region,
            default_tags=aws.ProviderDefaultTagsArgs(tags=tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        account = iam.Account.lookup(config.region, provider, self)
        on_aws = pulumi.ResourceOptions(parent=self, providers=[provider])

        network = Network(
            cluster_name,
            NetworkArgs(
                cidr=config.vpc_cidr,
                zones=config.availability_zones,
                region=config.region,
                cluster_name=cluster_name,
                nat_gateways=config.nat_gateways,
            ),
            on_aws,
        )
        cluster = Cluster(
            cluster_name,
            ClusterArgs(
                config=config,
                account=account,
                provider=provider,
                vpc_id=network.vpc_id,
                private_subnet_ids=network.private_subnet_ids,
            ),
            on_aws,
        )
        on_cluster = pulumi.ResourceOptions(parent=self, providers=[provider, cluster.provider])
        karpenter = Karpenter(
            cluster_name,
            KarpenterArgs(
                cluster=cluster_name,
                cluster_name=cluster.name,
                account=account,
                scheduling_ready=cluster.scheduling_ready,
                node_repair=config.node_repair,
                spot_service_linked_role=config.create_spot_service_linked_role,
            ),
            on_cluster,
        )
        gpu_pools = GpuPools(
            cluster_name,
            GpuPoolsArgs(
                cluster=cluster_name,
                vpc_id=network.vpc_id,
                pools=config.gpu_node_pools,
                node_role_name=karpenter.node_role_name,
                volume_gib=config.gpu_node_volume_gib,
                capacity_reservation_ids=config.capacity_reservation_ids,
                tags=tags,
                karpenter_ready=karpenter.ready,
            ),
            on_cluster,
        )
        storage = Storage(
            cluster_name,
            StorageArgs(
                cluster=cluster_name,
                cluster_name=cluster.name,
                region=config.region,
                account_id=account.account_id,
                bucket=config.bucket_store,
                registry=config.repository,
                namespace=args.namespace,
                service_accounts=BUCKET_USERS,
            ),
            on_aws,
        )

        mirror = None
        if config.mirror is not None:
            assert config.mirror.credentials is not None  # required on aws (config/aws.py)
            mirror = DockerHubMirror(
                f"{cluster_name}-docker-hub",
                DockerHubMirrorArgs(
                    account=account,
                    prefix=config.mirror.repository(cluster_name),
                    credentials_secret=config.mirror.credentials.secret,
                    # GPU pods pull the engine image; Jobs (cache, benchmark) may run on system nodes.
                    node_roles={"gpu-nodes": karpenter.node_role_name, "system-nodes": cluster.system_node_role_name},
                ),
                on_aws,
            )

        in_cluster = pulumi.ResourceOptions(parent=self, provider=cluster.provider)
        workload_namespace = apply(f"{cluster_name}-{args.namespace}", namespace_manifest(args.namespace), in_cluster)
        accounts = [
            apply(
                f"{cluster_name}-{user.name}",
                service_account_manifest(user.name, args.namespace),
                pulumi.ResourceOptions(parent=self, provider=cluster.provider, depends_on=[workload_namespace]),
            )
            for user in BUCKET_USERS
        ]

        model_store = None
        external = (
            ExternalModelStore(
                f"{cluster_name}-store",
                ExternalModelStoreArgs(
                    config.model_store, args.namespace, cluster.provider, args.store_keys, [workload_namespace]
                ),
                pulumi.ResourceOptions(parent=self),
            )
            if is_external(config.model_store)
            else None
        )
        outputs: dict[str, pulumi.Input[object]] = {
            "cluster_name": cluster.name,
            "cluster_location": config.region,
            "credentials_command": pulumi.Output.concat(
                "aws eks update-kubeconfig --region ", config.region, " --name ", cluster.name
            ),
            "kubeconfig": cluster.kubeconfig,
            # Who has EKS's bootstrap admin entry: set it as platform.clusterCreator.
            "cluster_creator": cluster.creator,
        }
        if storage.bucket_name is not None:
            model_store = s3_model_store(storage.bucket_name, config.region)
            outputs["bucket"] = model_store.url()
        if external:
            model_store = external.model_store
            outputs.update(external.outputs)
        if storage.registry_url is not None:
            outputs["registry_url"] = storage.registry_url
        if mirror is not None:
            outputs["image_mirror"] = mirror.url

        watch = None
        if args.monitoring:
            stack_monitoring = EksMonitoring(
                f"{cluster_name}-monitoring",
                EksMonitoringArgs(
                    cluster=cluster_name, storage_class=STORAGE_CLASS, alertmanager_config=args.alertmanager_config
                ),
                pulumi.ResourceOptions(parent=self, providers=[cluster.provider], depends_on=[cluster.storage_class]),
            )
            watch = stack_monitoring.monitoring
            outputs.update(stack_monitoring.outputs)

        self.platform = Platform(
            cloud="aws",
            cluster_name=cluster_name,
            location=config.region,
            provider=cluster.provider,
            namespace=args.namespace,
            gpu_pools=gpu_pools.gpu_nodes,
            load_balancing=LOAD_BALANCING,
            model_store=model_store,
            storage_class=STORAGE_CLASS,
            retained_storage_class=RETAINED_GP3,
            registry_url=storage.registry_url,
            image_mirror=ImageMirror(upstream="docker.io", prefix=mirror.url) if mirror else None,
            ready=[
                workload_namespace,
                *accounts,
                *storage.associations,
                *(external.ready if external else []),
                *gpu_pools.node_pools.values(),
                gpu_pools.device_plugin,
                *filter(None, [gpu_pools.efa_device_plugin]),
                cluster.storage_class,
                *(mirror.ready if mirror else []),
            ],
            outputs=outputs,
            network=cluster_network(config),
            monitoring=watch,
        )
        self.register_outputs(outputs)
