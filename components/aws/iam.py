"""IAM policy documents as typed data, and the trust policies every role here uses.

Documents are ``TypedDict``s in IAM's own JSON grammar, rendered with
``pulumi.Output.json_dumps``. Why not the alternatives:

* ``aws.iam.get_policy_document_output`` is a provider invoke: under the mock engine it
  returns whatever the fake says, so a test would check the fake instead of the policy,
  and AWS's 6,144-character limit could not be tested on the real document.
* pulumi-aws's own typed ``aws.iam.PolicyDocumentArgs`` cannot be serialized by the
  Python SDK (its ``Union[str, Sequence[...]]`` fields fail the SDK's type check when the
  resource registers; tried with pulumi 3.272 / pulumi-aws 7.51).

Rendering here gives the exact JSON AWS receives, in the resource's recorded inputs,
and mypy checks the keys. Separators are compact: IAM does not count whitespace towards
the size limit, and compact JSON is what the size tests measure.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, NotRequired, TypedDict

import pulumi
import pulumi_aws as aws

POLICY_VERSION = "2012-10-17"
# AWS's size limits, in characters without whitespace
# (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html): a customer
# managed policy, all inline policies of a role together (aws-eks-karpenter.md §1.4), and
# a role's trust policy (the default quota).
MANAGED_POLICY_MAX_CHARS = 6144
INLINE_ROLE_POLICIES_MAX_CHARS = 10240
TRUST_POLICY_MAX_CHARS = 2048

# Service principals (https://docs.aws.amazon.com/eks/latest/userguide/pod-id-role.html for
# Pod Identity: it needs sts:AssumeRole and sts:TagSession).
POD_IDENTITY_SERVICE = "pods.eks.amazonaws.com"
POD_IDENTITY_ACTIONS = ("sts:AssumeRole", "sts:TagSession")

Strings = pulumi.Input[str] | Sequence[pulumi.Input[str]]
# operator -> condition key -> value(s), e.g. {"StringEquals": {"aws:RequestedRegion": "us-west-2"}}
Conditions = Mapping[str, Mapping[str, pulumi.Input[str] | Sequence[str] | bool]]


class Principal(TypedDict, total=False):
    Service: Strings
    AWS: Strings


class Statement(TypedDict):
    """One IAM statement (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements.html)."""

    Sid: NotRequired[str]
    Effect: Literal["Allow", "Deny"]
    Principal: NotRequired[Principal | Literal["*"]]
    Action: str | Sequence[str]
    Resource: NotRequired[Strings]
    Condition: NotRequired[Conditions]


_COMPACT = (",", ":")


def _body(statements: Sequence[Statement], doc_id: str | None) -> dict[str, object]:
    body: dict[str, object] = {"Version": POLICY_VERSION}
    if doc_id:
        body["Id"] = doc_id
    body["Statement"] = list(statements)
    return body


def document(statements: Sequence[Statement], *, doc_id: str | None = None) -> pulumi.Output[str]:
    """The policy document AWS receives, as compact JSON (values may be Outputs)."""
    return pulumi.Output.json_dumps(_body(statements, doc_id), separators=_COMPACT)


def render(statements: Sequence[Statement], *, doc_id: str | None = None) -> str:
    """``document`` for statements made of plain strings."""
    return json.dumps(_body(statements, doc_id), separators=_COMPACT)


def trust_policy(service: pulumi.Input[str], actions: Sequence[str] = ("sts:AssumeRole",)) -> pulumi.Output[str]:
    """A role trust policy letting one AWS service assume the role."""
    return document([{"Effect": "Allow", "Principal": {"Service": service}, "Action": list(actions)}])


def pod_identity_trust_policy(cluster: str, namespace: str, service_account: str) -> pulumi.Output[str]:
    """Trust for EKS Pod Identity, for one service account of one cluster only.

    Pod Identity tags every session it asks for with the pod's cluster, namespace and
    service account; conditioning the trust on those tags means nobody who may create a
    Pod Identity association (and pass the role) elsewhere can obtain this role
    (https://docs.aws.amazon.com/eks/latest/userguide/pod-id-role.html "Setting Conditions";
    the tags: pod-id-abac.html; audit/aws.md F9).
    """
    return document(
        [
            {
                "Effect": "Allow",
                "Principal": {"Service": POD_IDENTITY_SERVICE},
                "Action": list(POD_IDENTITY_ACTIONS),
                "Condition": {
                    "StringEquals": {
                        "aws:RequestTag/eks-cluster-name": cluster,
                        "aws:RequestTag/kubernetes-namespace": namespace,
                        "aws:RequestTag/kubernetes-service-account": service_account,
                    }
                },
            }
        ]
    )


def aws_managed_policy_arn(partition: pulumi.Input[str], name: str) -> pulumi.Output[str]:
    """``arn:<partition>:iam::aws:policy/<name>`` (``name`` may carry a path, e.g. ``service-role/X``)."""
    return pulumi.Output.concat("arn:", partition, ":iam::aws:policy/", name)


# AWS managed policies by name (https://docs.aws.amazon.com/aws-managed-policy/latest/reference/).
# Nodes: the set Karpenter's CloudFormation template attaches to its node role, with ECR
# pull-only rather than read-only (aws-eks-karpenter.md §1.1).
NODE_POLICIES = (
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryPullOnly",
    "AmazonSSMManagedInstanceCore",
)
EBS_CSI_DRIVER_POLICY = "service-role/AmazonEBSCSIDriverPolicy"  # aws-eks-karpenter.md §6 "PVC on EKS"


@dataclass(frozen=True)
class Account:
    """What ARNs and service principals are built from: region, partition, account id."""

    region: str
    partition: pulumi.Output[str]  # aws, aws-cn, aws-us-gov
    dns_suffix: pulumi.Output[str]  # amazonaws.com (amazonaws.com.cn in China): service principals
    account_id: pulumi.Output[str]

    @staticmethod
    def lookup(region: str, provider: aws.Provider, parent: pulumi.Resource) -> Account:
        opts = pulumi.InvokeOutputOptions(provider=provider, parent=parent)
        partition = aws.get_partition_output(opts=opts)
        return Account(
            region=region,
            partition=partition.partition,
            dns_suffix=partition.dns_suffix,
            account_id=aws.get_caller_identity_output(opts=opts).account_id,
        )

    def service(self, name: str) -> pulumi.Output[str]:
        """A service principal such as ``ec2.amazonaws.com``."""
        return pulumi.Output.concat(name, ".", self.dns_suffix)

    def managed_policy(self, name: str) -> pulumi.Output[str]:
        return aws_managed_policy_arn(self.partition, name)


def node_role(
    name: str, description: str, account: Account, parent: pulumi.Resource
) -> tuple[aws.iam.Role, list[aws.iam.RolePolicyAttachment]]:
    """An EC2 instance role for EKS nodes with ``NODE_POLICIES`` attached; depend on the
    attachments before handing the role to EKS, or nodes start without permissions."""
    child = pulumi.ResourceOptions(parent=parent)
    role = aws.iam.Role(
        name, assume_role_policy=trust_policy(account.service("ec2")), description=description, opts=child
    )
    attachments = [
        aws.iam.RolePolicyAttachment(
            f"{name}-{policy}", role=role.name, policy_arn=account.managed_policy(policy), opts=child
        )
        for policy in NODE_POLICIES
    ]
    return role, attachments
