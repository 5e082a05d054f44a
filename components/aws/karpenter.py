"""Karpenter v1, self-managed: its IAM, its interruption queue, its two Helm charts.

Everything here follows Karpenter's own getting-started CloudFormation template for the
pinned release (aws/karpenter-provider-aws @v1.14.1,
website/content/en/v1.14/getting-started/getting-started-with-karpenter/cloudformation.yaml,
"the template" below) and docs/reference/aws-eks-karpenter.md §1:

* a node role (what Karpenter's EC2 instances run as) with an ``EC2_LINUX`` access entry;
* a controller role for the ``kube-system/karpenter`` service account through Pod
  Identity, with the controller permissions split into managed policies the way the
  template splits them, so that none exceeds AWS's 6,144-character limit;
* the SQS interruption queue and the five EventBridge rules that feed it;
* the ``karpenter-crd`` chart, then the ``karpenter`` chart with ``skipCrds``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components import catalog
from components.aws import iam
from components.kubernetes import chart_release

NAMESPACE = "kube-system"  # aws-eks-karpenter.md §1.7 (docs and TF-EKS default)
SERVICE_ACCOUNT = "karpenter"  # the Pod Identity association and the chart must agree on it
RELEASE = "karpenter"  # fixed Helm release names: the chart derives object names from them
CRD_RELEASE = "karpenter-crd"
# Tags Karpenter puts on what it launches, which its permissions are scoped to (the template).
OWNED = "owned"


@dataclass(frozen=True)
class InterruptionRule:
    """An EventBridge rule that forwards one kind of EC2 event to the interruption queue."""

    key: str
    source: str
    detail_type: str

    def event_pattern(self) -> str:
        return json.dumps({"source": [self.source], "detail-type": [self.detail_type]})


# The template's five rules. The fifth (capacity-reservation interruptions) arrived with
# interruptible ODCR support in v1.10; the v1.0 template had four (aws-eks-karpenter.md §1.5).
# Keys are short: rule names are "<cluster>-<key>-<random>" and EventBridge allows 64 characters.
INTERRUPTION_RULES: tuple[InterruptionRule, ...] = (
    InterruptionRule("scheduled-change", "aws.health", "AWS Health Event"),
    InterruptionRule("spot-interruption", "aws.ec2", "EC2 Spot Instance Interruption Warning"),
    InterruptionRule("rebalance", "aws.ec2", "EC2 Instance Rebalance Recommendation"),
    InterruptionRule("state-change", "aws.ec2", "EC2 Instance State-change Notification"),
    InterruptionRule("odcr-interruption", "aws.ec2", "EC2 Capacity Reservation Instance Interruption Warning"),
)
QUEUE_TARGET_ID = "KarpenterInterruptionQueueTarget"  # the template's target id


@dataclass(frozen=True)
class ControllerScope:
    """What the controller's permissions are scoped to."""

    cluster: str
    region: str
    partition: str
    account_id: str
    node_role_arn: str
    queue_arn: str

    def ec2(self, resource: str, account: str = "*") -> str:
        return f"arn:{self.partition}:ec2:{self.region}:{account}:{resource}"

    @property
    def instance_profiles(self) -> str:
        return f"arn:{self.partition}:iam::{self.account_id}:instance-profile/*"

    @property
    def cluster_arn(self) -> str:
        return f"arn:{self.partition}:eks:{self.region}:{self.account_id}:cluster/{self.cluster}"


# The template's managed policies (minus ZonalShiftPolicy, see controller_policies).
CONTROLLER_POLICIES = ("node-lifecycle", "iam-integration", "eks-integration", "interruption", "resource-discovery")


def controller_policies(scope: ControllerScope) -> dict[str, list[iam.Statement]]:
    """The controller's permissions, one managed policy per key, as in the template.

    The template's sixth policy (ZonalShiftPolicy) is left out: it only serves
    ``settings.enableZonalShift``, which stays off (§1.4).
    """
    cluster_tag = f"kubernetes.io/cluster/{scope.cluster}"
    request_tags_owned = {
        f"aws:RequestTag/{cluster_tag}": OWNED,
        "aws:RequestTag/eks:eks-cluster-name": scope.cluster,
    }
    nodepool_resource = {"aws:ResourceTag/karpenter.sh/nodepool": "*"}
    nodepool_request = {"aws:RequestTag/karpenter.sh/nodepool": "*"}
    launched = [
        scope.ec2(r)
        for r in (
            "fleet/*",
            "instance/*",
            "volume/*",
            "network-interface/*",
            "launch-template/*",
            "spot-instances-request/*",
        )
    ]
    profile_resource_tags = {
        f"aws:ResourceTag/{cluster_tag}": OWNED,
        "aws:ResourceTag/topology.kubernetes.io/region": scope.region,
    }
    profile_request_tags = {**request_tags_owned, "aws:RequestTag/topology.kubernetes.io/region": scope.region}
    return {
        "node-lifecycle": [
            {
                "Sid": "AllowScopedEC2InstanceAccessActions",
                "Effect": "Allow",
                "Resource": [
                    scope.ec2("image/*", account=""),
                    scope.ec2("snapshot/*", account=""),
                    scope.ec2("security-group/*"),
                    scope.ec2("subnet/*"),
                    scope.ec2("capacity-reservation/*"),
                    scope.ec2("placement-group/*"),
                ],
                "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
            },
            {
                "Sid": "AllowScopedEC2LaunchTemplateAccessActions",
                "Effect": "Allow",
                "Resource": scope.ec2("launch-template/*"),
                "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
                "Condition": {
                    "StringEquals": {f"aws:ResourceTag/{cluster_tag}": OWNED},
                    "StringLike": nodepool_resource,
                },
            },
            {
                "Sid": "AllowScopedEC2InstanceActionsWithTags",
                "Effect": "Allow",
                "Resource": launched,
                "Action": ["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"],
                "Condition": {"StringEquals": request_tags_owned, "StringLike": nodepool_request},
            },
            {
                "Sid": "AllowScopedResourceCreationTagging",
                "Effect": "Allow",
                "Resource": launched,
                "Action": "ec2:CreateTags",
                "Condition": {
                    "StringEquals": {
                        **request_tags_owned,
                        "ec2:CreateAction": ["RunInstances", "CreateFleet", "CreateLaunchTemplate"],
                    },
                    "StringLike": nodepool_request,
                },
            },
            {
                "Sid": "AllowScopedResourceTagging",
                "Effect": "Allow",
                "Resource": scope.ec2("instance/*"),
                "Action": "ec2:CreateTags",
                "Condition": {
                    "StringEquals": {f"aws:ResourceTag/{cluster_tag}": OWNED},
                    "StringLike": nodepool_resource,
                    "StringEqualsIfExists": {"aws:RequestTag/eks:eks-cluster-name": scope.cluster},
                    "ForAllValues:StringEquals": {
                        "aws:TagKeys": ["eks:eks-cluster-name", "karpenter.sh/nodeclaim", "Name"]
                    },
                },
            },
            {
                "Sid": "AllowScopedDeletion",
                "Effect": "Allow",
                "Resource": [scope.ec2("instance/*"), scope.ec2("launch-template/*")],
                "Action": ["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
                "Condition": {
                    "StringEquals": {f"aws:ResourceTag/{cluster_tag}": OWNED},
                    "StringLike": nodepool_resource,
                },
            },
        ],
        "iam-integration": [
            {
                "Sid": "AllowPassingInstanceRole",
                "Effect": "Allow",
                "Resource": scope.node_role_arn,
                "Action": "iam:PassRole",
                "Condition": {"StringEquals": {"iam:PassedToService": ["ec2.amazonaws.com", "ec2.amazonaws.com.cn"]}},
            },
            {
                "Sid": "AllowScopedInstanceProfileCreationActions",
                "Effect": "Allow",
                "Resource": scope.instance_profiles,
                "Action": ["iam:CreateInstanceProfile"],
                "Condition": {
                    "StringEquals": profile_request_tags,
                    "StringLike": {"aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*"},
                },
            },
            {
                "Sid": "AllowScopedInstanceProfileTagActions",
                "Effect": "Allow",
                "Resource": scope.instance_profiles,
                "Action": ["iam:TagInstanceProfile"],
                "Condition": {
                    "StringEquals": {**profile_resource_tags, **profile_request_tags},
                    "StringLike": {
                        "aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*",
                        "aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*",
                    },
                },
            },
            {
                "Sid": "AllowScopedInstanceProfileActions",
                "Effect": "Allow",
                "Resource": scope.instance_profiles,
                "Action": [
                    "iam:AddRoleToInstanceProfile",
                    "iam:RemoveRoleFromInstanceProfile",
                    "iam:DeleteInstanceProfile",
                ],
                "Condition": {
                    "StringEquals": profile_resource_tags,
                    "StringLike": {"aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*"},
                },
            },
        ],
        "eks-integration": [
            {
                "Sid": "AllowAPIServerEndpointDiscovery",
                "Effect": "Allow",
                "Resource": scope.cluster_arn,
                "Action": "eks:DescribeCluster",
            }
        ],
        "interruption": [
            {
                "Sid": "AllowInterruptionQueueActions",
                "Effect": "Allow",
                "Resource": scope.queue_arn,
                "Action": ["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"],
            }
        ],
        "resource-discovery": [
            {
                "Sid": "AllowRegionalReadActions",
                "Effect": "Allow",
                "Resource": "*",
                "Action": [
                    "ec2:DescribeCapacityReservations",
                    "ec2:DescribeImages",
                    "ec2:DescribeInstances",
                    "ec2:DescribeInstanceStatus",
                    "ec2:DescribeInstanceTypeOfferings",
                    "ec2:DescribeInstanceTypes",
                    "ec2:DescribeLaunchTemplates",
                    "ec2:DescribePlacementGroups",
                    "ec2:DescribeSecurityGroups",
                    "ec2:DescribeSpotPriceHistory",
                    "ec2:DescribeSubnets",
                ],
                "Condition": {"StringEquals": {"aws:RequestedRegion": scope.region}},
            },
            {
                "Sid": "AllowSSMReadActions",
                "Effect": "Allow",
                "Resource": f"arn:{scope.partition}:ssm:{scope.region}::parameter/aws/service/*",
                "Action": "ssm:GetParameter",
            },
            {"Sid": "AllowPricingReadActions", "Effect": "Allow", "Resource": "*", "Action": "pricing:GetProducts"},
            {
                "Sid": "AllowUnscopedInstanceProfileListAction",
                "Effect": "Allow",
                "Resource": "*",
                "Action": "iam:ListInstanceProfiles",
            },
            {
                "Sid": "AllowInstanceProfileReadActions",
                "Effect": "Allow",
                "Resource": scope.instance_profiles,
                "Action": "iam:GetInstanceProfile",
            },
        ],
    }


def queue_policy(queue_arn: pulumi.Input[str]) -> pulumi.Output[str]:
    """EventBridge (and SQS) may send; nobody may use the queue without TLS (the template)."""
    return iam.document(
        [
            {
                "Effect": "Allow",
                "Principal": {"Service": ["events.amazonaws.com", "sqs.amazonaws.com"]},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
            },
            {
                "Sid": "DenyHTTP",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "sqs:*",
                "Resource": queue_arn,
                "Condition": {"Bool": {"aws:SecureTransport": False}},
            },
        ],
        doc_id="EC2InterruptionPolicy",
    )


def chart_values(cluster: str, queue_name: pulumi.Input[str], region: str, *, node_repair: bool) -> dict[str, Any]:
    """Values of the ``karpenter`` chart (KP charts/karpenter/values.yaml @v1.14.1).

    ``replicas`` keeps its default of 2 with required anti-affinity away from Karpenter's
    own nodes: the system node group has at least two nodes for them (§1.8).
    ``settings.clusterEndpoint`` stays empty: Karpenter looks it up with DescribeCluster.
    ``AWS_REGION``: without it the controller asks IMDS for its region (KP
    pkg/operator/operator.go), which only works while the system nodes allow a second
    metadata hop; the chart's ``controller.env`` documents exactly this variable.
    ``featureGates.nodeRepair`` (alpha, default false) replaces nodes whose conditions
    from the node monitoring agent stay unhealthy (concepts/disruption.md "Node Auto Repair").
    """
    return {
        "settings": {
            "clusterName": cluster,
            "interruptionQueue": queue_name,  # the queue's name, not its ARN or URL (§1.5)
            "featureGates": {"nodeRepair": node_repair},
        },
        "serviceAccount": {"name": SERVICE_ACCOUNT},
        "controller": {
            "env": [{"name": "AWS_REGION", "value": region}],
            "resources": {k: dict(v) for k, v in catalog.KARPENTER_CONTROLLER_RESOURCES.items()},
        },
    }


@dataclass(frozen=True)
class KarpenterArgs:
    cluster: str  # the EKS cluster's name, for IAM conditions and chart settings
    cluster_name: pulumi.Output[str]  # the same, depending on the cluster (Cluster.name)
    account: iam.Account
    node_repair: bool  # the nodeRepair feature gate (config.nodeRepair)
    spot_service_linked_role: bool  # create AWSServiceRoleForEC2Spot (config.createSpotServiceLinkedRole)
    # Nodes, DNS and the Pod Identity agent the controller needs before it can start.
    scheduling_ready: Sequence[pulumi.Resource]


class Karpenter(pulumi.ComponentResource):
    """Karpenter's node role, controller role, interruption handling and charts."""

    node_role_name: pulumi.Output[str]
    queue_name: pulumi.Output[str]
    crds: k8s.helm.v3.Release
    controller: k8s.helm.v3.Release
    # NodePools and EC2NodeClasses may be applied once these exist (pulumi-kubernetes#3188).
    ready: list[pulumi.Resource]

    def __init__(self, name: str, args: KarpenterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llm-serving:aws:Karpenter", name, None, opts)
        account, cluster = args.account, args.cluster
        child = pulumi.ResourceOptions(parent=self)

        # --- the nodes' role and their way into the cluster ---------------------------
        node_role, node_policies = iam.node_role(
            f"{cluster}-karpenter-node", f"EKS {cluster}: nodes launched by Karpenter", account, self
        )
        # EC2_LINUX, not STANDARD with system: groups, which EKS rejects (§1.3). Without
        # it (API authentication mode) Karpenter's nodes never join.
        node_access = aws.eks.AccessEntry(
            f"{cluster}-karpenter-node",
            cluster_name=args.cluster_name,
            principal_arn=node_role.arn,
            type="EC2_LINUX",
            opts=pulumi.ResourceOptions(parent=self, depends_on=node_policies),
        )

        # --- interruption handling ------------------------------------------------------
        queue = aws.sqs.Queue(
            f"{cluster}-karpenter",
            name=f"Karpenter-{cluster}",  # TF-EKS's name; the chart takes it (§1.5)
            message_retention_seconds=catalog.KARPENTER_INTERRUPTION_QUEUE_RETENTION_S,
            sqs_managed_sse_enabled=True,
            opts=child,
        )
        queue_access = aws.sqs.QueuePolicy(
            f"{cluster}-karpenter", queue_url=queue.url, policy=queue_policy(queue.arn), opts=child
        )
        targets = []
        for rule in INTERRUPTION_RULES:
            event_rule = aws.cloudwatch.EventRule(
                f"{cluster}-{rule.key}",
                description=f"Karpenter ({cluster}): {rule.detail_type}",
                event_pattern=rule.event_pattern(),
                opts=child,
            )
            targets.append(
                aws.cloudwatch.EventTarget(
                    f"{cluster}-{rule.key}",
                    rule=event_rule.name,
                    arn=queue.arn,
                    target_id=QUEUE_TARGET_ID,
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[queue_access]),
                )
            )

        # --- spot ---------------------------------------------------------------------
        if args.spot_service_linked_role:
            # The account's role for spot requests; Karpenter's CloudFormation leaves it to
            # `aws iam create-service-linked-role` (getting-started step06-add-spot-role.sh).
            # Kept on destroy: it is account-wide, and other stacks' spot launches need it.
            aws.iam.ServiceLinkedRole(
                f"{cluster}-spot",
                aws_service_name="spot.amazonaws.com",
                opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
            )

        # --- the controller's role, through Pod Identity ----------------------------------
        controller_role = aws.iam.Role(
            f"{cluster}-karpenter",
            assume_role_policy=iam.pod_identity_trust_policy(cluster, NAMESPACE, SERVICE_ACCOUNT),
            description=f"EKS {cluster}: Karpenter controller ({NAMESPACE}/{SERVICE_ACCOUNT}, Pod Identity)",
            opts=child,
        )
        documents: pulumi.Output[dict[str, str]] = pulumi.Output.all(
            account.partition, account.account_id, node_role.arn, queue.arn
        ).apply(
            lambda v: {
                key: iam.render(statements)
                for key, statements in controller_policies(
                    ControllerScope(cluster, account.region, v[0], v[1], v[2], v[3])
                ).items()
            }
        )
        controller_policy_attachments = []
        for key in CONTROLLER_POLICIES:
            policy = aws.iam.Policy(
                f"{cluster}-karpenter-{key}",
                description=f"Karpenter controller ({cluster}): {key.replace('-', ' ')}",
                policy=documents[key],
                opts=child,
            )
            controller_policy_attachments.append(
                aws.iam.RolePolicyAttachment(
                    f"{cluster}-karpenter-{key}", role=controller_role.name, policy_arn=policy.arn, opts=child
                )
            )
        association = aws.eks.PodIdentityAssociation(
            f"{cluster}-karpenter",
            cluster_name=args.cluster_name,
            namespace=NAMESPACE,
            service_account=SERVICE_ACCOUNT,
            role_arn=controller_role.arn,
            opts=child,
        )

        # --- the charts -------------------------------------------------------------------
        # CRDs first, from their own chart; the controller chart then skips its copies.
        # Karpenter's OCI charts are public: no repository credentials (a stale
        # `helm registry login public.ecr.aws` on the deploying machine gives 403, §1.8).
        self.crds = chart_release(
            f"{cluster}-{CRD_RELEASE}",
            catalog.KARPENTER_CRD_CHART,
            pulumi.ResourceOptions(parent=self, depends_on=list(args.scheduling_ready)),
            name=CRD_RELEASE,
            namespace=NAMESPACE,
        )
        self.controller = chart_release(
            f"{cluster}-{RELEASE}",
            catalog.KARPENTER_CHART,
            pulumi.ResourceOptions(
                parent=self,
                depends_on=[
                    self.crds,
                    association,
                    *controller_policy_attachments,
                    node_access,
                    *targets,
                    *args.scheduling_ready,
                ],
            ),
            name=RELEASE,
            namespace=NAMESPACE,
            skip_crds=True,
            values=chart_values(cluster, queue.name, account.region, node_repair=args.node_repair),
        )

        self.node_role_name = node_role.name
        self.queue_name = queue.name
        self.ready = [self.crds, self.controller]
        self.register_outputs(
            {
                "node_role_name": self.node_role_name,
                "node_role_arn": node_role.arn,
                "controller_role_arn": controller_role.arn,
                "queue_name": self.queue_name,
            }
        )


def policy_sizes(scope: ControllerScope) -> Mapping[str, int]:
    """Characters of each rendered controller policy (what AWS's 6,144 limit counts)."""
    return {key: len(iam.render(statements)) for key, statements in controller_policies(scope).items()}
