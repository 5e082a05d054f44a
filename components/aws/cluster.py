"""The EKS cluster: control plane, system node group, add-ons, default storage class.

pulumi-eks's ``eks.Cluster`` creates the control plane with its VPC CNI and kube-proxy
add-ons. Everything that needs running nodes (CoreDNS, the EBS CSI driver) is added
here after the system node group, because an add-on whose pods cannot schedule stays
DEGRADED and fails the deployment (pulumi/pulumi-eks#1819). The system node group runs
what must not run on Karpenter's own nodes: Karpenter itself, CoreDNS, operators.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_eks as eks
import pulumi_kubernetes as k8s

from components import catalog
from components.aws import admins, iam
from components.aws.network import KARPENTER_DISCOVERY_TAG
from components.config import AwsPlatformConfig
from components.kubernetes import apply
from components.platform import Manifest

# Access policy for config.adminPrincipals
# (https://docs.aws.amazon.com/eks/latest/userguide/access-policy-permissions.html).
CLUSTER_ADMIN_ACCESS_POLICY = "AmazonEKSClusterAdminPolicy"
# Control-plane logs worth their CloudWatch cost: who did what, and who authenticated
# (https://docs.aws.amazon.com/eks/latest/userguide/control-plane-logs.html).
CONTROL_PLANE_LOGS = ("audit", "authenticator")
# Add-ons pulumi-eks does not install (aws-eks-karpenter.md §7): the Pod Identity agent
# (Karpenter, the EBS CSI driver and the model-store roles authenticate through it) and
# the EBS CSI driver with its controller's service account
# (https://docs.aws.amazon.com/eks/latest/userguide/ebs-csi.html).
POD_IDENTITY_AGENT_ADDON = "eks-pod-identity-agent"
COREDNS_ADDON = "coredns"
EBS_CSI_ADDON = "aws-ebs-csi-driver"
EBS_CSI_SERVICE_ACCOUNT = "ebs-csi-controller-sa"
# Root volume of AL2023 instances (KP pkg/providers/amifamily/al2023.go; aws-eks-karpenter.md §2.8).
AL2023_ROOT_DEVICE = "/dev/xvda"
STORAGE_CLASS = "gp3"


def gp3_storage_class() -> Manifest:
    """The cluster's default StorageClass: encrypted gp3 through the EBS CSI driver.

    EKS no longer ships a default class, and pulumi-eks's ``storage_classes`` use the
    in-tree provisioner (aws-eks-karpenter.md §6). EBS volumes are zonal, so binding
    waits for the pod's node. Parameters: kubernetes-sigs/aws-ebs-csi-driver
    docs/parameters.md; default-class annotation: Kubernetes docs "Change the default
    StorageClass".
    """
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": STORAGE_CLASS,
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": "ebs.csi.aws.com",
        "parameters": {"type": "gp3", "encrypted": "true"},
        "volumeBindingMode": "WaitForFirstConsumer",
        "allowVolumeExpansion": True,
        "reclaimPolicy": "Delete",
    }


def after(resource: pulumi.Resource, value: str) -> pulumi.Output[str]:
    """``value`` as an Output that depends on ``resource``: whatever takes it waits for it."""
    return resource.urn.apply(lambda _: value)


@dataclass(frozen=True)
class ClusterArgs:
    config: AwsPlatformConfig
    account: iam.Account
    provider: aws.Provider  # the stack's AWS provider, for looking up who deploys
    vpc_id: pulumi.Input[str]
    private_subnet_ids: Sequence[pulumi.Input[str]]


class Cluster(pulumi.ComponentResource):
    """EKS (API authentication), a managed system node group, add-ons, gp3 StorageClass."""

    name: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    security_group_id: pulumi.Output[str]
    creator: pulumi.Output[str]  # the principal EKS made admin at creation (admins.py)
    system_node_role_name: pulumi.Output[str]  # the system node group's instance role
    provider: k8s.Provider
    # What a cluster add-on such as Karpenter needs before its pods can run: nodes outside
    # Karpenter, DNS, and the Pod Identity agent that hands out its credentials.
    scheduling_ready: list[pulumi.Resource]
    storage_class: pulumi.CustomResource

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llm-serving:aws:Cluster", name, None, opts)
        config, account = args.config, args.account
        cluster = config.cluster_name
        child = pulumi.ResourceOptions(parent=self)

        system_role, system_policies = iam.node_role(
            f"{cluster}-system-node", f"EKS {cluster}: system managed node group", account, self
        )

        admin_policy_arn = pulumi.Output.concat(
            "arn:", account.partition, ":eks::aws:cluster-access-policy/", CLUSTER_ADMIN_ACCESS_POLICY
        )
        # The creator already has EKS's bootstrap admin entry: no entry of ours for it
        # (components/aws/admins.py explains how it stays the same on every `up`).
        creator = config.cluster_creator or admins.deploying_principal(args.provider, self)
        record = admins.CreatorRecord(f"{cluster}-creator", creator, child)
        configured = config.cluster_creator is not None
        verified_creator = record.principal.apply(
            lambda recorded: admins.check_creator(recorded, creator, configured=configured)
        )
        eks_cluster = eks.Cluster(
            cluster,
            # Explicit: Karpenter's IAM conditions, discovery tags and queue settings
            # interpolate it; left out, pulumi-eks adds a random suffix (§1.4).
            name=cluster,
            version=config.kubernetes_version,
            # STANDARD: EKS upgrades the control plane itself when the version's standard
            # support ends, instead of billing extended support (config supportType).
            upgrade_policy=aws.eks.ClusterUpgradePolicyArgs(support_type=config.support_type),
            vpc_id=args.vpc_id,
            # Private subnets only: pulumi-eks puts public + private subnet ids together
            # into vpcConfig.subnetIds, where EKS places the control plane's network
            # interfaces (nodejs/eks/cluster/cluster.ts, clusterSubnetIds). Load balancers
            # find the public subnets by their kubernetes.io/role/elb tag (network.py).
            private_subnet_ids=list(args.private_subnet_ids),
            endpoint_private_access=True,  # nodes reach the API inside the VPC
            endpoint_public_access=True,  # Pulumi and admins, from these CIDRs only
            public_access_cidrs=[str(c) for c in config.endpoint_public_access_cidrs],
            authentication_mode=eks.AuthenticationMode.API,
            access_entries={
                admins.entry_key(principal): eks.AccessEntryArgs(
                    # Waits for the creator check, so a mismatch stops before entries change.
                    principal_arn=admins.after(verified_creator, principal),
                    type=eks.AccessEntryType.STANDARD,
                    access_policies={
                        "cluster-admin": eks.AccessPolicyAssociationArgs(
                            policy_arn=admin_policy_arn,
                            access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
                        )
                    },
                )
                for principal in admins.admin_principals(config.admin_principals, creator)
            },
            # The system node group below replaces pulumi-eks's self-managed default group.
            skip_default_node_group=True,
            # No pulumi-made security groups: every node (managed group and Karpenter alike)
            # then uses the EKS cluster security group, which Karpenter discovers by tag and
            # whose nodes can reach each other (CoreDNS, NCCL); cluster_security_group_id
            # is then the EKS-created group (aws-eks-karpenter.md §1.6, §7).
            skip_default_security_groups=True,
            # CoreDNS is added after the node group (module docstring); pulumi-eks would not
            # create it without a default node group anyway (nodejs/eks/cluster/cluster.ts).
            coredns_addon_options=eks.CoreDnsAddonOptionsArgs(enabled=False),
            # The VPC CNI add-on enforces NetworkPolicy only with its network policy agent on:
            # pulumi-eks writes `enableNetworkPolicy: "true"` into the add-on's configuration
            # values (nodejs/eks/addons/cni-addon.ts mergeConfigurationValues;
            # https://docs.aws.amazon.com/eks/latest/userguide/cni-network-policy-configure.html).
            vpc_cni_options=eks.VpcCniOptionsArgs(enable_network_policy=True),
            create_oidc_provider=False,  # Pod Identity, not IRSA
            enabled_cluster_log_types=list(CONTROL_PLANE_LOGS),
            deletion_protection=config.deletion_protection,
            opts=child,
        )
        # The name as an Output that waits for the cluster, for everything that needs the
        # cluster to exist (add-ons, access entries, Pod Identity associations). The
        # component's eks_cluster.name would too, but it comes through a resource reference
        # that the mock engine cannot fake; the name itself is ours (above).
        cluster_name = after(eks_cluster, cluster)

        # Karpenter selects security groups by its discovery tag (§1.6).
        aws.ec2.Tag(
            f"{cluster}-karpenter-discovery",
            resource_id=eks_cluster.cluster_security_group_id,
            key=KARPENTER_DISCOVERY_TAG,
            value=cluster,
            opts=child,
        )

        group = config.system_node_group
        # Own launch template: encrypted gp3 root volume and IMDSv2. No security groups in
        # it, so EKS attaches the cluster security group (pulumi/pulumi-eks#1275).
        launch_template = aws.ec2.LaunchTemplate(
            f"{cluster}-system",
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name=AL2023_ROOT_DEVICE,
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        volume_size=group.disk_size_gib,
                        volume_type="gp3",
                        encrypted="true",
                        delete_on_termination="true",
                    ),
                )
            ],
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled",
                http_tokens="required",
                http_put_response_hop_limit=catalog.IMDS_HOP_LIMIT_SYSTEM_NODES,
            ),
            opts=child,
        )
        node_group = eks.ManagedNodeGroup(
            f"{cluster}-system",
            cluster=eks_cluster,
            node_role_arn=system_role.arn,
            operating_system=eks.OperatingSystem.AL2023,
            instance_types=list(group.instance_types),
            capacity_type="ON_DEMAND",
            # Fixed size, across the private subnets of every zone: Karpenter's two
            # replicas spread over zones and hosts and avoid Karpenter's own nodes (§1.8).
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                desired_size=group.size, min_size=group.size, max_size=group.size
            ),
            subnet_ids=list(args.private_subnet_ids),
            # With a launch template pulumi-eks does not copy the cluster's version to the
            # group (nodejs/eks/nodes/nodegroup.ts), so the nodes would stay behind when
            # kubernetesVersion moves; the template names no AMI, so EKS picks its own
            # AL2023 image for this version.
            version=config.kubernetes_version,
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=launch_template.id, version=launch_template.latest_version.apply(str)
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=system_policies),
        )

        pod_identity_agent = aws.eks.Addon(
            f"{cluster}-{POD_IDENTITY_AGENT_ADDON}",
            cluster_name=cluster_name,
            addon_name=POD_IDENTITY_AGENT_ADDON,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[node_group]),
        )
        coredns = aws.eks.Addon(
            f"{cluster}-{COREDNS_ADDON}",
            cluster_name=cluster_name,
            addon_name=COREDNS_ADDON,
            resolve_conflicts_on_create="OVERWRITE",  # adopts the self-managed CoreDNS EKS bootstraps
            opts=pulumi.ResourceOptions(parent=self, depends_on=[node_group]),
        )
        ebs_csi_role = aws.iam.Role(
            f"{cluster}-ebs-csi",
            assume_role_policy=iam.pod_identity_trust_policy(cluster, "kube-system", EBS_CSI_SERVICE_ACCOUNT),
            description=f"EKS {cluster}: EBS CSI controller (Pod Identity)",
            opts=child,
        )
        ebs_csi_policy = aws.iam.RolePolicyAttachment(
            f"{cluster}-ebs-csi",
            role=ebs_csi_role.name,
            policy_arn=account.managed_policy(iam.EBS_CSI_DRIVER_POLICY),
            opts=child,
        )
        ebs_csi = aws.eks.Addon(
            f"{cluster}-{EBS_CSI_ADDON}",
            cluster_name=cluster_name,
            addon_name=EBS_CSI_ADDON,
            pod_identity_associations=[
                aws.eks.AddonPodIdentityAssociationArgs(
                    role_arn=ebs_csi_role.arn, service_account=EBS_CSI_SERVICE_ACCOUNT
                )
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[node_group, pod_identity_agent, ebs_csi_policy]),
        )

        if config.node_repair:
            # Reports GPU, kernel, disk and network faults as node conditions for
            # Karpenter's node repair (config nodeRepair). Its node agent tolerates every
            # taint; the chart's separate DCGM server DaemonSet has no tolerations
            # (aws/eks-node-monitoring-agent charts/eks-node-monitoring-agent/values.yaml),
            # and whether the add-on's schema accepts dcgmAgent.tolerations is unverified,
            # so none are passed: DCGM-based GPU checks may not run on the GPU nodes
            # (tainted nvidia.com/gpu) until that is settled (README, known gaps).
            aws.eks.Addon(
                f"{cluster}-{catalog.NODE_MONITORING_AGENT_ADDON}",
                cluster_name=cluster_name,
                addon_name=catalog.NODE_MONITORING_AGENT_ADDON,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[node_group]),
            )

        self.name = cluster_name
        self.system_node_role_name = system_role.name
        # The stack output names the creator without the check: an `up` with no entries
        # to protect must not fail over it.
        self.creator = pulumi.Output.from_input(creator) if configured else record.principal
        self.kubeconfig = pulumi.Output.secret(eks_cluster.kubeconfig_json)
        self.security_group_id = eks_cluster.cluster_security_group_id
        self.provider = k8s.Provider(f"{cluster}-k8s", kubeconfig=self.kubeconfig, opts=child)
        self.storage_class = apply(
            f"{cluster}-{STORAGE_CLASS}",
            gp3_storage_class(),
            pulumi.ResourceOptions(parent=self, provider=self.provider, depends_on=[ebs_csi]),
        )
        self.scheduling_ready = [node_group, coredns, pod_identity_agent]
        self.register_outputs(
            {
                "name": self.name,
                "kubeconfig": self.kubeconfig,
                "security_group_id": self.security_group_id,
                "creator": self.creator,
                "storage_class": STORAGE_CLASS,
            }
        )
