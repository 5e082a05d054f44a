"""The AWS platform on the mock engine: what `pulumi up --stack eks` would declare.

Every assertion reads the *recorded* resources of a real run of ``__main__.py`` with
``Pulumi.eks.yaml`` (or a variant of it), never only values inside an ``apply``. The
remote components (``eks.Cluster``, ``eks.ManagedNodeGroup``) are opaque under mocks,
so for them the inputs we hand over are what is tested. Pure builders and policy
documents are also tested directly where a property (a size limit, a name length)
must hold for every configuration, not just the stack file's.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
from collections.abc import Callable, Iterator
from ipaddress import IPv4Network
from typing import Any

import pulumi
import pytest
from test_config import only_problem, raw

import components.config.stack
import components.sizing
import components.workloads
from components import catalog
from components.aws import admins, gpu_pools, iam, karpenter, network
from components.aws.karpenter import CONTROLLER_POLICIES, INTERRUPTION_RULES, ControllerScope, controller_policies
from components.config import AwsGpuNodePoolConfig, AwsPlatformConfig, parse
from components.platform import (
    BACKUP_SERVICE_ACCOUNT,
    COMPILE_CACHE_SERVICE_ACCOUNT,
    READER_SERVICE_ACCOUNT,
    WRITER_SERVICE_ACCOUNT,
    Platform,
)
from components.workloads import Serving, ServingArgs
from conftest import assert_valid
from tools import kubeschema, offline
from tools.offline import Recorded, StackRun, run_stack

PLATFORM = "llm-serving:platform"
CLUSTER = "llm-eks"
# Not auto-named: a second `up` after a destroy that kept it must fail, not start empty.
BUCKET = f"{CLUSTER}-123456789012-us-west-2"
ROLE = "aws:iam/role:Role"
POLICY = "aws:iam/policy:Policy"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
RELEASE = "kubernetes:helm.sh/v3:Release"
PIA = "aws:eks/podIdentityAssociation:PodIdentityAssociation"
NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"

# A cluster name at the config's 38-character limit: every derived name must still fit.
LONG_NAME = "a-cluster-name-of-the-longest-length-x"
VARIANT = {
    PLATFORM: {
        "clusterName": LONG_NAME,
        "availabilityZones": ["us-west-2a", "us-west-2b", "us-west-2c"],
        "natGateways": "single",
        "modelStore": {"kind": "bucket", "keepOnDestroy": False},
        "registry": {"kind": "none"},
        "capacityReservationIds": ["cr-0123456789abcdef0"],
        "gpuNodePools": [
            {"name": "g5", "instanceFamilies": ["g5"], "instanceSizes": ["2xlarge", "4xlarge"], "gpuLimit": 4},
            {
                "name": "p5",
                "instanceFamilies": ["p5"],
                "capacityTypes": ["reserved", "on-demand"],
                "gpuLimit": 16,
                "terminationGracePeriod": "2h",
                "budgets": [{"nodes": "0", "schedule": "0 9 * * 1-5", "duration": "8h"}],
            },
        ],
    }
}


@pytest.fixture(scope="module")
def variant() -> StackRun:
    run = run_stack("eks", VARIANT)
    assert run.error is None, run.error
    return run


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def parent_type(run: StackRun, resource: Recorded) -> str:
    parent = run.by_urn(resource.parent)
    assert parent is not None, f"{resource.type} {resource.name} has no recorded parent"
    return parent.type


def named(run: StackRun, type_: str, suffix: str) -> Recorded:
    found = [r for r in run.of_type(type_) if r.name.endswith(suffix)]
    assert len(found) == 1, [r.name for r in run.of_type(type_)]
    return found[0]


def document(resource: Recorded, key: str = "policy") -> Any:
    return json.loads(resource.inputs[key])


def statements(resource: Recorded, key: str = "policy") -> list[dict[str, Any]]:
    return list(document(resource, key)["Statement"])


def attached(run: StackRun, role: Recorded) -> list[str]:
    """Policy ARNs attached to a role (attachments name the role by its recorded name)."""
    return [
        a.inputs["policyArn"] for a in run.of_type(ATTACHMENT) if a.inputs["role"] == role.inputs.get("name", role.name)
    ]


def depends_on(resource: Recorded, other: Recorded) -> bool:
    return other.urn in resource.depends_on


def pool_config(**fields: Any) -> AwsGpuNodePoolConfig:
    """A GPU pool as the stack file spells it (camelCase keys)."""
    return AwsGpuNodePoolConfig.model_validate(fields)


def tolerates(toleration: dict[str, str], taint: dict[str, str]) -> bool:
    """Kubernetes toleration matching (operator Exists ignores the value)."""
    if toleration.get("key") != taint["key"] or toleration.get("effect", taint["effect"]) != taint["effect"]:
        return False
    return toleration.get("operator") == "Exists" or toleration.get("value") == taint.get("value")


# --------------------------------------------------------------------------------------
# structure: components, parents, providers
# --------------------------------------------------------------------------------------

EXPECTED_PARENT = {
    "aws:ec2/vpc:Vpc": "llm-serving:aws:Network",
    "aws:ec2/subnet:Subnet": "llm-serving:aws:Network",
    "aws:ec2/internetGateway:InternetGateway": "llm-serving:aws:Network",
    "aws:ec2/eip:Eip": "llm-serving:aws:Network",
    "aws:ec2/natGateway:NatGateway": "llm-serving:aws:Network",
    "aws:ec2/routeTable:RouteTable": "llm-serving:aws:Network",
    "aws:ec2/routeTableAssociation:RouteTableAssociation": "llm-serving:aws:Network",
    "aws:ec2/vpcEndpoint:VpcEndpoint": "llm-serving:aws:Network",
    "eks:index:Cluster": "llm-serving:aws:Cluster",
    "eks:index:ManagedNodeGroup": "llm-serving:aws:Cluster",
    "aws:ec2/launchTemplate:LaunchTemplate": "llm-serving:aws:Cluster",
    "aws:ec2/tag:Tag": "llm-serving:aws:Cluster",
    "aws:eks/addon:Addon": "llm-serving:aws:Cluster",
    "pulumi:providers:kubernetes": "llm-serving:aws:Cluster",
    "kubernetes:storage.k8s.io/v1:StorageClass": "llm-serving:aws:Cluster",
    "aws:sqs/queue:Queue": "llm-serving:aws:Karpenter",
    "aws:sqs/queuePolicy:QueuePolicy": "llm-serving:aws:Karpenter",
    "aws:cloudwatch/eventRule:EventRule": "llm-serving:aws:Karpenter",
    "aws:cloudwatch/eventTarget:EventTarget": "llm-serving:aws:Karpenter",
    POLICY: "llm-serving:aws:Karpenter",
    "aws:eks/accessEntry:AccessEntry": "llm-serving:aws:Karpenter",
    NODE_CLASS: "llm-serving:aws:GpuPools",
    NODE_POOL: "llm-serving:aws:GpuPools",
    "aws:ecr/repository:Repository": "llm-serving:aws:Storage",
    "aws:s3/bucket:Bucket": "llm-serving:aws:Storage",
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": "llm-serving:aws:Storage",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": "llm-serving:aws:Storage",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": (
        "llm-serving:aws:Storage"
    ),
    "aws:s3/bucketPolicy:BucketPolicy": "llm-serving:aws:Storage",
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": "llm-serving:aws:Storage",
    "aws:iam/rolePolicy:RolePolicy": "llm-serving:aws:Storage",
    "pulumi:providers:aws": "llm-serving:aws:Platform",
    "kubernetes:core/v1:ServiceAccount": "llm-serving:aws:Platform",
    "llm-serving:aws:Network": "llm-serving:aws:Platform",
    "llm-serving:aws:Cluster": "llm-serving:aws:Platform",
    "llm-serving:aws:Karpenter": "llm-serving:aws:Platform",
    "llm-serving:aws:GpuPools": "llm-serving:aws:Platform",
    "llm-serving:aws:Storage": "llm-serving:aws:Platform",
    "llm-serving:aws:Monitoring": "llm-serving:aws:Platform",
    "kubernetes:core/v1:Secret": "llm-serving:aws:Monitoring",
    "random:index/randomPassword:RandomPassword": "llm-serving:aws:Monitoring",
    "llm-serving:aws:ClusterCreator": "llm-serving:aws:Cluster",
    "random:index/randomId:RandomId": "llm-serving:aws:ClusterCreator",
}
# Types that more than one component creates: the component is told by the name.
EXPECTED_PARENT_BY_NAME = {
    (ROLE, "-system-node"): "llm-serving:aws:Cluster",
    (ROLE, "-ebs-csi"): "llm-serving:aws:Cluster",
    (ROLE, "-karpenter"): "llm-serving:aws:Karpenter",
    (ROLE, "-karpenter-node"): "llm-serving:aws:Karpenter",
    (ROLE, "-model-reader"): "llm-serving:aws:Storage",
    (ROLE, "-model-writer"): "llm-serving:aws:Storage",
    (ROLE, "-chat-backup"): "llm-serving:aws:Storage",
    (ROLE, "-compile-cache"): "llm-serving:aws:Storage",
    (PIA, "-karpenter"): "llm-serving:aws:Karpenter",
    (PIA, "-model-reader"): "llm-serving:aws:Storage",
    (PIA, "-model-writer"): "llm-serving:aws:Storage",
    (PIA, "-chat-backup"): "llm-serving:aws:Storage",
    (PIA, "-compile-cache"): "llm-serving:aws:Storage",
    (RELEASE, "-karpenter"): "llm-serving:aws:Karpenter",
    (RELEASE, "-karpenter-crd"): "llm-serving:aws:Karpenter",
    (RELEASE, "-nvidia-device-plugin"): "llm-serving:aws:GpuPools",
    (RELEASE, "-monitoring-kube-prometheus-stack"): "llm-serving:aws:Monitoring",
    (RELEASE, "-monitoring-dcgm-exporter"): "llm-serving:aws:Monitoring",
    ("kubernetes:core/v1:Namespace", "-llm"): "llm-serving:aws:Platform",
    ("kubernetes:core/v1:Namespace", "-monitoring-namespace"): "llm-serving:aws:Monitoring",
}


def test_every_resource_has_the_right_parent_component(eks: StackRun) -> None:
    platform = eks.one("llm-serving:aws:Platform")
    assert platform.parent.endswith("pulumi:pulumi:Stack::llm-serving-eks")
    roles = {r.name: r for r in eks.of_type(ROLE)}
    serving = eks.one("llm-serving:workloads:Serving")
    platform_resources = [r for r in eks.resources if r is not serving and r.parent != serving.urn]
    checked = 0
    for resource in platform_resources:
        if resource.type == "llm-serving:aws:Platform":
            continue
        if resource.type == ATTACHMENT:  # belongs where the role it attaches to belongs
            expected = parent_type(eks, roles[resource.inputs["role"]])
        elif resource.type in EXPECTED_PARENT:
            expected = EXPECTED_PARENT[resource.type]
        else:
            expected = EXPECTED_PARENT_BY_NAME[(resource.type, resource.name.removeprefix(CLUSTER))]
        assert parent_type(eks, resource) == expected, f"{resource.type} {resource.name}"
        checked += 1
    assert checked == len(platform_resources) - 1


def test_every_aws_resource_goes_through_the_explicit_regional_provider(eks: StackRun) -> None:
    provider = eks.one("pulumi:providers:aws")
    assert provider.inputs["region"] == "us-west-2"
    # Provider inputs travel as strings; structured ones as JSON.
    assert json.loads(provider.inputs["defaultTags"]) == {
        "tags": {"llm-serving:stack": "eks", "llm-serving:cluster": CLUSTER}
    }
    ref = f"{provider.urn}::{provider.name}-id"
    aws_resources = [r for r in eks.resources if r.custom and r.type.startswith("aws:")]
    assert aws_resources and all(r.provider == ref for r in aws_resources)
    for remote in (eks.one("eks:index:Cluster"), eks.one("eks:index:ManagedNodeGroup")):
        assert remote.providers == {"aws": ref}
    assert {i.token for i in eks.invokes} == {
        "aws:index/getPartition:getPartition",
        "aws:index/getCallerIdentity:getCallerIdentity",
        "aws:iam/getSessionContext:getSessionContext",
    }
    assert all(i.provider == ref for i in eks.invokes)


def test_kubernetes_objects_use_the_cluster_provider_and_are_schema_valid(eks: StackRun) -> None:
    k8s_provider = eks.one("pulumi:providers:kubernetes")
    assert k8s_provider.secret_paths == {"kubeconfig"}
    ref = f"{k8s_provider.urn}::{k8s_provider.name}-id"
    kube = [r for r in eks.resources if r.type.startswith("kubernetes:")]
    assert {r.type for r in kube} >= {RELEASE, NODE_POOL, NODE_CLASS, "kubernetes:core/v1:Namespace"}
    assert all(r.provider == ref for r in kube)
    assert_valid(eks.kubernetes_objects())


# --------------------------------------------------------------------------------------
# network
# --------------------------------------------------------------------------------------


def test_subnet_plan_gives_each_zone_a_large_private_and_a_small_public_subnet() -> None:
    vpc = IPv4Network("10.0.0.0/16")
    two = network.subnet_plan(vpc, ["a", "b"])
    assert [(str(z.private), str(z.public)) for z in two] == [
        ("10.0.0.0/18", "10.0.128.0/19"),
        ("10.0.64.0/18", "10.0.160.0/19"),
    ]
    for zones in (["a", "b"], ["a", "b", "c"], ["a", "b", "c", "d"], list("abcdef")):
        for small in (vpc, IPv4Network("10.0.0.0/20")):
            plan = network.subnet_plan(small, zones)
            cidrs = [c for z in plan for c in (z.private, z.public)]
            assert all(c.subnet_of(small) for c in cidrs)
            assert all(not a.overlaps(b) for i, a in enumerate(cidrs) for b in cidrs[i + 1 :])
            assert all(z.private.prefixlen < z.public.prefixlen for z in plan)
            assert all(c.prefixlen <= 28 for c in cidrs)  # the smallest subnet AWS allows


def test_vpc_and_subnets_are_tagged_for_load_balancers_and_karpenter(eks: StackRun) -> None:
    vpc = eks.one("aws:ec2/vpc:Vpc")
    assert vpc.inputs["cidrBlock"] == "10.0.0.0/16"
    assert vpc.inputs["enableDnsHostnames"] is True and vpc.inputs["enableDnsSupport"] is True
    subnets = eks.of_type("aws:ec2/subnet:Subnet")
    public = [s for s in subnets if "-public-" in s.name]
    private = [s for s in subnets if "-private-" in s.name]
    assert sorted(s.inputs["availabilityZone"] for s in public) == ["us-west-2a", "us-west-2b"]
    assert sorted(s.inputs["availabilityZone"] for s in private) == ["us-west-2a", "us-west-2b"]
    for subnet in public:
        assert subnet.inputs["tags"]["kubernetes.io/role/elb"] == "1"
        assert "karpenter.sh/discovery" not in subnet.inputs["tags"]
        assert subnet.inputs["mapPublicIpOnLaunch"] is False
    for subnet in private:
        assert subnet.inputs["tags"]["kubernetes.io/role/internal-elb"] == "1"
        assert subnet.inputs["tags"]["karpenter.sh/discovery"] == CLUSTER
    assert {s.inputs["cidrBlock"] for s in private} == {"10.0.0.0/18", "10.0.64.0/18"}


def test_one_nat_gateway_per_zone_by_default(eks: StackRun) -> None:
    nats = eks.of_type("aws:ec2/natGateway:NatGateway")
    public_ids = {f"{s.name}-id" for s in eks.of_type("aws:ec2/subnet:Subnet") if "-public-" in s.name}
    assert len(nats) == 2 and {n.inputs["subnetId"] for n in nats} == public_ids
    private_tables = [t for t in eks.of_type("aws:ec2/routeTable:RouteTable") if "-private-" in t.name]
    targets = [t.inputs["routes"][0]["natGatewayId"] for t in private_tables]
    assert sorted(targets) == sorted(f"{n.name}-id" for n in nats)  # each zone its own NAT
    public_table = named(eks, "aws:ec2/routeTable:RouteTable", "-public")
    assert public_table.inputs["routes"] == [{"cidrBlock": "0.0.0.0/0", "gatewayId": f"{CLUSTER}-igw-id"}]
    endpoint = eks.one("aws:ec2/vpcEndpoint:VpcEndpoint")
    assert endpoint.inputs["serviceName"] == "com.amazonaws.us-west-2.s3"
    assert endpoint.inputs["vpcEndpointType"] == "Gateway"
    assert sorted(endpoint.inputs["routeTableIds"]) == sorted(f"{t.name}-id" for t in private_tables)


def test_single_nat_gateway_serves_every_zone(variant: StackRun) -> None:
    (nat,) = variant.of_type("aws:ec2/natGateway:NatGateway")
    private_tables = [t for t in variant.of_type("aws:ec2/routeTable:RouteTable") if "-private-" in t.name]
    assert len(private_tables) == 3
    assert {t.inputs["routes"][0]["natGatewayId"] for t in private_tables} == {f"{nat.name}-id"}


# --------------------------------------------------------------------------------------
# EKS
# --------------------------------------------------------------------------------------


def test_eks_cluster_arguments(eks: StackRun) -> None:
    cluster = eks.one("eks:index:Cluster")
    inputs = cluster.inputs
    assert inputs["name"] == CLUSTER  # explicit: IAM conditions interpolate it
    assert inputs["version"] == catalog.EKS_KUBERNETES_VERSION == "1.36"
    assert inputs["upgradePolicy"] == {"supportType": "STANDARD"}
    assert inputs["authenticationMode"] == "API"
    assert inputs["skipDefaultNodeGroup"] is True
    assert inputs["skipDefaultSecurityGroups"] is True
    assert inputs["endpointPrivateAccess"] is True and inputs["endpointPublicAccess"] is True
    assert inputs["publicAccessCidrs"] == ["203.0.113.0/24"]
    assert inputs["createOidcProvider"] is False
    assert inputs["corednsAddonOptions"]["enabled"] is False  # added after the node group instead
    assert inputs["deletionProtection"] is False
    assert inputs["vpcId"] == f"{CLUSTER}-vpc-id"
    # Only private subnets reach vpcConfig.subnetIds, where the control plane's ENIs go.
    assert sorted(inputs["privateSubnetIds"]) == sorted(
        f"{s.name}-id" for s in eks.of_type("aws:ec2/subnet:Subnet") if "-private-" in s.name
    )
    assert "publicSubnetIds" not in inputs and "subnetIds" not in inputs
    # The offline caller (user/offline) is not a listed admin: the admin gets an entry.
    assert inputs["accessEntries"] == {
        "admin-123456789012-role-Admin": {
            "principalArn": "arn:aws:iam::123456789012:role/Admin",
            "type": "STANDARD",
            "accessPolicies": {
                "cluster-admin": {
                    "policyArn": "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy",
                    "accessScope": {"type": "cluster"},
                }
            },
        }
    }


def test_system_node_group_spans_the_private_subnets_of_every_zone(eks: StackRun) -> None:
    group = eks.one("eks:index:ManagedNodeGroup")
    cluster = eks.one("eks:index:Cluster")
    assert group.inputs["cluster"] == cluster.urn
    assert group.inputs["scalingConfig"] == {"desiredSize": 2, "minSize": 2, "maxSize": 2}
    assert group.inputs["instanceTypes"] == ["m6i.2xlarge"]
    assert group.inputs["capacityType"] == "ON_DEMAND"
    assert group.inputs["operatingSystem"] == "AL2023"
    private = {
        f"{s.name}-id": s.inputs["availabilityZone"]
        for s in eks.of_type("aws:ec2/subnet:Subnet")
        if "-private-" in s.name
    }
    assert set(group.inputs["subnetIds"]) == set(private)
    assert len({private[s] for s in group.inputs["subnetIds"]}) >= 2
    role = named(eks, ROLE, "-system-node")
    assert group.inputs["nodeRoleArn"] == f"arn:aws:iam::123456789012:role/{role.name}"
    assert all(depends_on(group, a) for a in eks.of_type(ATTACHMENT) if a.name.startswith(role.name + "-"))
    template = eks.one("aws:ec2/launchTemplate:LaunchTemplate")
    assert group.inputs["launchTemplate"] == {"id": f"{template.name}-id", "version": "1"}
    assert template.inputs["blockDeviceMappings"] == [
        {
            "deviceName": "/dev/xvda",
            "ebs": {"volumeSize": 100, "volumeType": "gp3", "encrypted": "true", "deleteOnTermination": "true"},
        }
    ]
    assert template.inputs["metadataOptions"]["httpTokens"] == "required"
    assert "vpcSecurityGroupIds" not in template.inputs  # EKS then attaches the cluster security group
    # With a launch template pulumi-eks does not copy the cluster version: we pass it.
    assert group.inputs["version"] == cluster.inputs["version"] == "1.36"


def test_system_node_group_follows_the_kubernetes_version(run_with: Callable[..., StackRun]) -> None:
    run = run_with("eks", {PLATFORM: {"kubernetesVersion": "1.35", "supportType": "EXTENDED"}})
    assert run.error is None, run.error
    assert run.one("eks:index:ManagedNodeGroup").inputs["version"] == "1.35"
    cluster = run.one("eks:index:Cluster").inputs
    assert (cluster["version"], cluster["upgradePolicy"]) == ("1.35", {"supportType": "EXTENDED"})


def test_node_roles_carry_the_node_policies(eks: StackRun) -> None:
    for suffix in ("-system-node", "-karpenter-node"):
        role = named(eks, ROLE, suffix)
        (statement,) = statements(role, "assumeRolePolicy")
        assert statement == {
            "Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": ["sts:AssumeRole"],
        }
        assert sorted(attached(eks, role)) == sorted(
            f"arn:aws:iam::aws:policy/{p}"
            for p in (
                "AmazonEKSWorkerNodePolicy",
                "AmazonEKS_CNI_Policy",
                "AmazonEC2ContainerRegistryPullOnly",
                "AmazonSSMManagedInstanceCore",
            )
        )


def test_add_ons_come_after_the_system_nodes(eks: StackRun) -> None:
    group = eks.one("eks:index:ManagedNodeGroup")
    cluster = eks.one("eks:index:Cluster")
    addons = {a.inputs["addonName"]: a for a in eks.of_type("aws:eks/addon:Addon")}
    assert set(addons) == {"eks-pod-identity-agent", "coredns", "aws-ebs-csi-driver"}
    for addon in addons.values():
        assert addon.inputs["clusterName"] == CLUSTER
        assert depends_on(addon, group) and depends_on(addon, cluster)
    ebs = addons["aws-ebs-csi-driver"]
    assert depends_on(ebs, addons["eks-pod-identity-agent"])
    role = named(eks, ROLE, "-ebs-csi")
    assert ebs.inputs["podIdentityAssociations"] == [
        {"serviceAccount": "ebs-csi-controller-sa", "roleArn": f"arn:aws:iam::123456789012:role/{role.name}"}
    ]
    assert attached(eks, role) == ["arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"]
    assert statements(role, "assumeRolePolicy")[0]["Principal"] == {"Service": "pods.eks.amazonaws.com"}


def test_cluster_security_group_carries_the_karpenter_discovery_tag(eks: StackRun) -> None:
    tag = eks.one("aws:ec2/tag:Tag")
    # The fake engine's clusterSecurityGroupId: with skipDefaultSecurityGroups this is the
    # EKS-created group every node uses.
    assert tag.inputs == {"resourceId": "sg-0cluster0000000000", "key": "karpenter.sh/discovery", "value": CLUSTER}


def test_gp3_is_the_default_storage_class(eks: StackRun) -> None:
    storage_class = eks.kubernetes_object("StorageClass", "gp3")
    assert storage_class["provisioner"] == "ebs.csi.aws.com"
    assert storage_class["metadata"]["annotations"] == {"storageclass.kubernetes.io/is-default-class": "true"}
    assert storage_class["parameters"] == {"type": "gp3", "encrypted": "true"}
    assert storage_class["volumeBindingMode"] == "WaitForFirstConsumer"
    resource = named(eks, "kubernetes:storage.k8s.io/v1:StorageClass", "-gp3")
    assert depends_on(resource, named(eks, "aws:eks/addon:Addon", "-aws-ebs-csi-driver"))


# --------------------------------------------------------------------------------------
# Karpenter: IAM, interruption queue, charts
# --------------------------------------------------------------------------------------


def test_karpenter_node_role_has_an_ec2_linux_access_entry(eks: StackRun) -> None:
    role = named(eks, ROLE, "-karpenter-node")
    entry = eks.one("aws:eks/accessEntry:AccessEntry")
    assert entry.inputs == {
        "clusterName": CLUSTER,
        "principalArn": f"arn:aws:iam::123456789012:role/{role.name}",
        "type": "EC2_LINUX",
    }
    assert depends_on(entry, eks.one("eks:index:Cluster"))


def test_karpenter_controller_role_is_assumed_through_pod_identity(eks: StackRun) -> None:
    role = named(eks, ROLE, "-karpenter")
    assert statements(role, "assumeRolePolicy") == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "pods.eks.amazonaws.com"},
            "Action": ["sts:AssumeRole", "sts:TagSession"],
            "Condition": {
                "StringEquals": {
                    "aws:RequestTag/eks-cluster-name": CLUSTER,
                    "aws:RequestTag/kubernetes-namespace": "kube-system",
                    "aws:RequestTag/kubernetes-service-account": "karpenter",
                }
            },
        }
    ]
    association = named(eks, PIA, "-karpenter")
    assert association.inputs == {
        "clusterName": CLUSTER,
        "namespace": "kube-system",
        "serviceAccount": "karpenter",
        "roleArn": f"arn:aws:iam::123456789012:role/{role.name}",
    }
    policies = {p.name.removeprefix(f"{CLUSTER}-karpenter-"): p for p in eks.of_type(POLICY)}
    assert set(policies) == set(CONTROLLER_POLICIES)
    assert sorted(attached(eks, role)) == sorted(
        f"arn:aws:iam::123456789012:policy/{p.name}" for p in policies.values()
    )


def test_controller_permissions_are_the_templates(eks: StackRun) -> None:
    """Statement ids of Karpenter v1.14's CloudFormation template, minus ZonalShiftPolicy."""
    sids = {key: [s["Sid"] for s in statements(named(eks, POLICY, f"-karpenter-{key}"))] for key in CONTROLLER_POLICIES}
    assert sids == {
        "node-lifecycle": [
            "AllowScopedEC2InstanceAccessActions",
            "AllowScopedEC2LaunchTemplateAccessActions",
            "AllowScopedEC2InstanceActionsWithTags",
            "AllowScopedResourceCreationTagging",
            "AllowScopedResourceTagging",
            "AllowScopedDeletion",
        ],
        "iam-integration": [
            "AllowPassingInstanceRole",
            "AllowScopedInstanceProfileCreationActions",
            "AllowScopedInstanceProfileTagActions",
            "AllowScopedInstanceProfileActions",
        ],
        "eks-integration": ["AllowAPIServerEndpointDiscovery"],
        "interruption": ["AllowInterruptionQueueActions"],
        "resource-discovery": [
            "AllowRegionalReadActions",
            "AllowSSMReadActions",
            "AllowPricingReadActions",
            "AllowUnscopedInstanceProfileListAction",
            "AllowInstanceProfileReadActions",
        ],
    }
    node_role = named(eks, ROLE, "-karpenter-node")
    pass_role = statements(named(eks, POLICY, "-karpenter-iam-integration"))[0]
    assert pass_role["Resource"] == f"arn:aws:iam::123456789012:role/{node_role.name}"  # only its own nodes' role
    launch = statements(named(eks, POLICY, "-karpenter-node-lifecycle"))[2]
    assert launch["Condition"]["StringEquals"] == {
        f"aws:RequestTag/kubernetes.io/cluster/{CLUSTER}": "owned",
        "aws:RequestTag/eks:eks-cluster-name": CLUSTER,
    }
    queue = eks.one("aws:sqs/queue:Queue")
    (interruption,) = statements(named(eks, POLICY, "-karpenter-interruption"))
    assert interruption["Resource"] == f"arn:aws:sqs:region:123456789012:{queue.inputs['name']}"


def test_every_policy_document_fits_its_aws_size_limit(eks: StackRun, variant: StackRun) -> None:
    for run in (eks, variant):
        policies = run.of_type(POLICY)
        assert len(policies) == 5
        for policy in policies:
            text = json.dumps(document(policy), separators=(",", ":"))
            assert len(text) <= iam.MANAGED_POLICY_MAX_CHARS, (policy.name, len(text))
        for inline in run.of_type("aws:iam/rolePolicy:RolePolicy"):  # one per role
            assert len(inline.inputs["policy"]) <= iam.INLINE_ROLE_POLICIES_MAX_CHARS
        for role in run.of_type(ROLE):
            assert len(role.inputs["assumeRolePolicy"]) <= iam.TRUST_POLICY_MAX_CHARS


def test_controller_policies_fit_even_at_the_longest_names() -> None:
    """The combined document would not fit; each of the template's parts does, with room."""
    scope = ControllerScope(
        cluster=LONG_NAME,
        region="ap-southeast-7",
        partition="aws-us-gov",
        account_id="123456789012",
        node_role_arn=f"arn:aws-us-gov:iam::123456789012:role/{LONG_NAME}-karpenter-node-1234567",
        queue_arn=f"arn:aws-us-gov:sqs:ap-southeast-7:123456789012:Karpenter-{LONG_NAME}",
    )
    sizes = karpenter.policy_sizes(scope)
    assert max(sizes.values()) <= iam.MANAGED_POLICY_MAX_CHARS * 0.75, sizes
    combined = iam.render([s for part in controller_policies(scope).values() for s in part])
    assert len(combined) > iam.MANAGED_POLICY_MAX_CHARS  # why the split exists


def test_interruption_queue_and_its_five_rules(eks: StackRun) -> None:
    queue = eks.one("aws:sqs/queue:Queue")
    assert queue.inputs == {
        "name": f"Karpenter-{CLUSTER}",
        "messageRetentionSeconds": catalog.KARPENTER_INTERRUPTION_QUEUE_RETENTION_S,
        "sqsManagedSseEnabled": True,
    }
    queue_arn = f"arn:aws:sqs:region:123456789012:Karpenter-{CLUSTER}"
    policy = eks.one("aws:sqs/queuePolicy:QueuePolicy")
    allow, deny = statements(policy)
    assert allow["Principal"] == {"Service": ["events.amazonaws.com", "sqs.amazonaws.com"]}
    assert (allow["Effect"], allow["Action"], allow["Resource"]) == ("Allow", "sqs:SendMessage", queue_arn)
    assert deny == {
        "Sid": "DenyHTTP",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "sqs:*",
        "Resource": queue_arn,
        "Condition": {"Bool": {"aws:SecureTransport": False}},
    }
    rules = eks.of_type("aws:cloudwatch/eventRule:EventRule")
    patterns = sorted((p["source"], p["detail-type"]) for p in (json.loads(r.inputs["eventPattern"]) for r in rules))
    assert patterns == sorted(
        [
            (["aws.health"], ["AWS Health Event"]),
            (["aws.ec2"], ["EC2 Spot Instance Interruption Warning"]),
            (["aws.ec2"], ["EC2 Instance Rebalance Recommendation"]),
            (["aws.ec2"], ["EC2 Instance State-change Notification"]),
            (["aws.ec2"], ["EC2 Capacity Reservation Instance Interruption Warning"]),
        ]
    )
    targets = eks.of_type("aws:cloudwatch/eventTarget:EventTarget")
    assert sorted(t.inputs["rule"] for t in targets) == sorted(r.name for r in rules)
    assert all(t.inputs["arn"] == queue_arn for t in targets)
    assert all(t.inputs["targetId"] == "KarpenterInterruptionQueueTarget" for t in targets)
    assert len(INTERRUPTION_RULES) == 5


def test_karpenter_charts_crds_first_then_the_controller(eks: StackRun) -> None:
    crds = named(eks, RELEASE, "-karpenter-crd")
    controller = named(eks, RELEASE, "-karpenter")
    assert crds.inputs["chart"] == "oci://public.ecr.aws/karpenter/karpenter-crd"
    assert controller.inputs["chart"] == "oci://public.ecr.aws/karpenter/karpenter"
    assert crds.inputs["version"] == controller.inputs["version"] == catalog.KARPENTER_VERSION == "1.14.1"
    assert crds.inputs["namespace"] == controller.inputs["namespace"] == "kube-system"
    assert (crds.inputs["name"], controller.inputs["name"]) == ("karpenter-crd", "karpenter")  # no random suffix
    assert controller.inputs["skipCrds"] is True
    assert "skipCrds" not in crds.inputs
    values = controller.inputs["values"]
    assert values["settings"] == {
        "clusterName": CLUSTER,
        "interruptionQueue": f"Karpenter-{CLUSTER}",
        "featureGates": {"nodeRepair": False},
    }
    # The region from config, not from IMDS through a second metadata hop.
    assert values["controller"]["env"] == [{"name": "AWS_REGION", "value": "us-west-2"}]
    association = named(eks, PIA, "-karpenter")
    assert values["serviceAccount"]["name"] == association.inputs["serviceAccount"]
    assert values["controller"]["resources"] == {
        "requests": {"cpu": "1", "memory": "1Gi"},
        "limits": {"cpu": "1", "memory": "1Gi"},
    }
    assert depends_on(controller, crds)
    assert depends_on(controller, association)
    assert depends_on(controller, eks.one("aws:eks/accessEntry:AccessEntry"))
    for key in CONTROLLER_POLICIES:
        assert depends_on(controller, named(eks, ATTACHMENT, f"-karpenter-{key}"))
    for addon in ("-coredns", "-eks-pod-identity-agent"):
        assert depends_on(controller, named(eks, "aws:eks/addon:Addon", addon))
    assert depends_on(controller, eks.one("eks:index:ManagedNodeGroup"))


# --------------------------------------------------------------------------------------
# GPU pools
# --------------------------------------------------------------------------------------


def test_node_class_and_pools_wait_for_the_crds_and_the_controller(eks: StackRun, variant: StackRun) -> None:
    for run in (eks, variant):
        crds = named(run, RELEASE, "-karpenter-crd")
        controller = named(run, RELEASE, "-karpenter")
        node_class = run.one(NODE_CLASS)
        for resource in (node_class, *run.of_type(NODE_POOL)):
            assert depends_on(resource, crds) and depends_on(resource, controller), resource.name
        assert all(depends_on(pool, node_class) for pool in run.of_type(NODE_POOL))


def test_ec2_node_class(eks: StackRun) -> None:
    node_class = eks.kubernetes_object("EC2NodeClass", "gpu")
    spec = node_class["spec"]
    assert spec["amiSelectorTerms"] == [{"alias": "al2023@v20260714"}]
    assert "latest" not in catalog.GPU_NODE_AMI.alias
    assert spec["role"] == named(eks, ROLE, "-karpenter-node").name  # the name, not the ARN
    discovery = [{"tags": {"karpenter.sh/discovery": CLUSTER}}]
    assert spec["subnetSelectorTerms"] == discovery
    assert spec["securityGroupSelectorTerms"] == discovery
    assert spec["metadataOptions"]["httpTokens"] == "required"
    assert spec["metadataOptions"]["httpPutResponseHopLimit"] == 1
    # Local NVMe as RAID0 for containerd and kubelet; the EBS root only for the OS.
    assert spec["instanceStorePolicy"] == "RAID0"
    assert spec["blockDeviceMappings"] == [
        {
            "deviceName": "/dev/xvda",
            "ebs": {"volumeSize": "80Gi", "volumeType": "gp3", "encrypted": True, "deleteOnTermination": True},
        }
    ]
    assert spec["tags"] == {"llm-serving:stack": "eks", "llm-serving:cluster": CLUSTER}
    assert "capacityReservationSelectorTerms" not in spec
    assert_valid([node_class])


def test_node_pool_from_the_stack_file(eks: StackRun) -> None:
    pool = eks.kubernetes_object("NodePool", "g5")
    template = pool["spec"]["template"]
    assert template["metadata"]["labels"] == {"nvidia.com/gpu.present": "true"}
    assert template["spec"]["nodeClassRef"] == {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "gpu"}
    assert template["spec"]["requirements"] == [
        {"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": ["g5"]},
        {"key": "karpenter.k8s.aws/instance-size", "operator": "In", "values": ["2xlarge", "4xlarge", "8xlarge"]},
        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]},
        {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
        {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
    ]
    assert template["spec"]["taints"] == [{"key": "nvidia.com/gpu", "effect": "NoSchedule"}]
    assert template["spec"]["expireAfter"] == "720h"
    # Serving pods are do-not-disrupt: without it an expired node never finishes draining.
    assert template["spec"]["terminationGracePeriod"] == "24h"
    assert pool["spec"]["limits"] == {"nvidia.com/gpu": 4}
    assert pool["spec"]["disruption"] == {
        "consolidationPolicy": "WhenEmpty",
        "consolidateAfter": "30m",
        "budgets": [{"nodes": "1"}],
    }
    assert_valid([pool])


def test_more_pools_reserved_capacity_and_budgets(variant: StackRun) -> None:
    pools = {p["metadata"]["name"]: p for p in variant.kubernetes_objects() if p["kind"] == "NodePool"}
    assert set(pools) == {"g5", "p5"}
    p5 = pools["p5"]["spec"]
    assert p5["limits"] == {"nvidia.com/gpu": 16}
    assert {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["reserved", "on-demand"]} in p5[
        "template"
    ]["spec"]["requirements"]
    assert not any(r["key"] == "karpenter.k8s.aws/instance-size" for r in p5["template"]["spec"]["requirements"])
    assert p5["disruption"]["budgets"] == [{"nodes": "0", "schedule": "0 9 * * 1-5", "duration": "8h"}]
    assert p5["template"]["spec"]["terminationGracePeriod"] == "2h"
    assert pools["g5"]["spec"]["template"]["spec"]["terminationGracePeriod"] == "24h"  # the default
    node_class = variant.kubernetes_object("EC2NodeClass", "gpu")
    assert node_class["spec"]["capacityReservationSelectorTerms"] == [{"id": "cr-0123456789abcdef0"}]
    assert node_class["spec"]["subnetSelectorTerms"] == [{"tags": {"karpenter.sh/discovery": LONG_NAME}}]
    assert_valid([*pools.values(), node_class])


def test_device_plugin_runs_on_every_gpu_node_despite_the_taint(eks: StackRun) -> None:
    release = named(eks, RELEASE, "-nvidia-device-plugin")
    chart = catalog.NVIDIA_DEVICE_PLUGIN_CHART
    assert (release.inputs["chart"], release.inputs["version"]) == ("nvidia-device-plugin", "0.20.0")
    assert (
        release.inputs["repositoryOpts"]
        == {"repo": "https://nvidia.github.io/k8s-device-plugin"}
        == {"repo": chart.repo}
    )
    values = release.inputs["values"]
    for pool in (o for o in eks.kubernetes_objects() if o["kind"] == "NodePool"):
        labels = pool["spec"]["template"]["metadata"]["labels"]
        assert all(labels.get(k) == v for k, v in values["nodeSelector"].items())
        for taint in pool["spec"]["template"]["spec"]["taints"]:
            assert any(tolerates(t, taint) for t in values["tolerations"])
    assert values["gfd"] == {"enabled": False} and values["nfd"] == {"enabled": False}


def test_gpu_nodes_contract_matches_the_node_pool() -> None:
    g5 = pool_config(name="g5", instanceFamilies=["g5"], instanceSizes=["2xlarge", "12xlarge"], gpuLimit=8)
    p5 = pool_config(name="p5", instanceFamilies=["p5"], gpuLimit=16)
    for config in (g5, p5):
        nodes = gpu_pools.gpu_nodes(config)
        pool = gpu_pools.node_pool(config)
        assert nodes.node_selector == {"karpenter.sh/nodepool": config.name}  # Karpenter's own node label
        assert all(
            any(tolerates(t, taint) for t in nodes.tolerations) for taint in pool["spec"]["template"]["spec"]["taints"]
        )
        assert nodes.resource_name in pool["spec"]["limits"]
    assert gpu_pools.gpu_nodes(g5).gpus_per_node == 4  # the largest allowed instance, g5.12xlarge
    assert (gpu_pools.gpu_nodes(p5).gpu, gpu_pools.gpu_nodes(p5).gpus_per_node) == ("H100", 8)


def test_instance_store_nvme_is_the_pools_scratch(monkeypatch: pytest.MonkeyPatch) -> None:
    """The RAID0 array Karpenter's NodeConfig mounts at /mnt/k8s-disks/0 is the pool's scratch
    hostPath, as GKE's local SSD; only where every instance type of the pool has local NVMe,
    since on a node without it the path would sit on the EBS root volume."""
    p5 = pool_config(name="p5", instanceFamilies=["p5"], instanceSizes=["48xlarge"], gpuLimit=16)
    g6e = pool_config(name="g6e", instanceFamilies=["g6e"], gpuLimit=8)
    assert all(catalog.INSTANCE_LOCAL_NVME_GB[m.name] > 0 for m in (*p5.machines, *g6e.machines))
    assert gpu_pools.gpu_nodes(p5).scratch_host_path == "/mnt/k8s-disks/0"
    assert gpu_pools.gpu_nodes(g6e).scratch_host_path == "/mnt/k8s-disks/0"
    assert gpu_pools.ec2_node_class(cluster="c", role="r", volume_gib=80)["spec"]["instanceStorePolicy"] == "RAID0"
    # One instance type of the pool without local NVMe: no scratch for the whole pool.
    without = {k: v for k, v in catalog.INSTANCE_LOCAL_NVME_GB.items() if k != "g6e.xlarge"}
    monkeypatch.setattr(catalog, "INSTANCE_LOCAL_NVME_GB", without)
    assert gpu_pools.gpu_nodes(g6e).scratch_host_path is None
    assert gpu_pools.gpu_nodes(p5).scratch_host_path == "/mnt/k8s-disks/0"


# --------------------------------------------------------------------------------------
# registry, bucket, Pod Identity for the serving service accounts
# --------------------------------------------------------------------------------------


def test_registry(eks: StackRun, variant: StackRun) -> None:
    repository = eks.one("aws:ecr/repository:Repository")
    assert repository.inputs["name"] == CLUSTER  # named after the cluster: two stacks never share one
    assert repository.inputs["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repository.inputs["imageTagMutability"] == "IMMUTABLE"
    assert eks.outputs["registry_url"] == f"123456789012.dkr.ecr.region.amazonaws.com/{CLUSTER}"
    assert variant.of_type("aws:ecr/repository:Repository") == []
    assert "registry_url" not in variant.outputs


def test_bucket_is_private_encrypted_and_kept_on_destroy(eks: StackRun) -> None:
    bucket = eks.one("aws:s3/bucket:Bucket")
    assert bucket.inputs["forceDestroy"] is False
    settings = [r for r in eks.resources if r.type.startswith("aws:s3/")]
    # The bucket, its protections and lifecycle: an `up` that would replace or delete them fails
    # (protect), and once unprotected a destroy leaves them in AWS (retain_on_delete).
    assert len(settings) == 6 and all(r.retain_on_delete and r.protect for r in settings)
    assert not bucket.import_id
    block = eks.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert all(
        block.inputs[k] is True
        for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    )
    assert eks.one("aws:s3/bucketOwnershipControls:BucketOwnershipControls").inputs["rule"] == {
        "objectOwnership": "BucketOwnerEnforced"
    }
    encryption = eks.one("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    assert encryption.inputs["rules"] == [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]
    (deny,) = statements(eks.one("aws:s3/bucketPolicy:BucketPolicy"))
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": False}}


def test_bucket_is_deleted_with_the_stack_when_asked(variant: StackRun) -> None:
    bucket = variant.one("aws:s3/bucket:Bucket")
    assert bucket.inputs["forceDestroy"] is True
    assert not any(r.retain_on_delete or r.protect for r in variant.resources if r.type.startswith("aws:"))


def test_serving_service_accounts_reach_the_bucket_through_pod_identity(eks: StackRun) -> None:
    bucket_arn = f"arn:aws:s3:::{BUCKET}"
    for account, writes in ((READER_SERVICE_ACCOUNT, False), (WRITER_SERVICE_ACCOUNT, True)):
        role = named(eks, ROLE, f"-{account}")
        assert statements(role, "assumeRolePolicy")[0]["Action"] == ["sts:AssumeRole", "sts:TagSession"]
        inline = named(eks, "aws:iam/rolePolicy:RolePolicy", f"-{account}")
        assert inline.inputs["role"] == f"{role.name}-id"
        on_bucket, on_objects = statements(inline)
        assert on_bucket["Resource"] == bucket_arn and on_objects["Resource"] == f"{bucket_arn}/*"
        assert "s3:GetObject" in on_objects["Action"]
        assert ("s3:PutObject" in on_objects["Action"]) is writes
        assert not any("*" in action for action in on_bucket["Action"] + on_objects["Action"])
        association = named(eks, PIA, f"-{account}")
        assert association.inputs == {
            "clusterName": CLUSTER,
            "namespace": "llm",
            "serviceAccount": account,
            "roleArn": f"arn:aws:iam::123456789012:role/{role.name}",
        }
        assert depends_on(association, inline)
        service_account = eks.kubernetes_object("ServiceAccount", account)
        assert service_account["metadata"] == {"name": account, "namespace": "llm"}
    assert eks.kubernetes_object("Namespace", "llm")["metadata"] == {"name": "llm"}


def test_without_a_bucket_there_is_no_model_store(run_with: Callable[..., StackRun]) -> None:
    no_backup = {"openWebui": {"backup": {"enabled": False}}}
    run = run_with(
        "eks",
        {
            PLATFORM: {"modelStore": {"kind": "none", "keepOnDestroy": None, "backupRetentionDays": None}},
            "llm-serving:serving": no_backup,
        },
    )
    assert run.error is None, run.error
    assert not [r for r in run.resources if r.type.startswith("aws:s3/")]
    assert [r.name for r in run.of_type(PIA)] == [f"{CLUSTER}-karpenter"]
    assert "bucket" not in run.outputs
    # The service accounts exist anyway: workloads reference them.
    assert {o["metadata"]["name"] for o in run.kubernetes_objects() if o["kind"] == "ServiceAccount"} == {
        READER_SERVICE_ACCOUNT,
        WRITER_SERVICE_ACCOUNT,
        BACKUP_SERVICE_ACCOUNT,
        COMPILE_CACHE_SERVICE_ACCOUNT,
    }


# --------------------------------------------------------------------------------------
# names that AWS limits
# --------------------------------------------------------------------------------------

# Physical names are "<logical name>-<7 random characters>" unless set explicitly.
NAME_LIMITS = {ROLE: 64, POLICY: 128, "aws:cloudwatch/eventRule:EventRule": 64}


def test_derived_names_fit_aws_limits_at_the_longest_cluster_name(variant: StackRun) -> None:
    for type_, limit in NAME_LIMITS.items():
        resources = variant.of_type(type_)
        assert resources
        for resource in resources:
            assert "name" not in resource.inputs and "bucket" not in resource.inputs  # auto-named
            assert len(resource.name) + 8 <= limit, (type_, resource.name)
    assert len(variant.one("aws:sqs/queue:Queue").inputs["name"]) <= 80
    bucket = variant.one("aws:s3/bucket:Bucket").inputs["bucket"]
    assert bucket == f"{LONG_NAME}-123456789012-us-west-2" and len(bucket) <= 63  # lower case, as S3 requires


# --------------------------------------------------------------------------------------
# the Platform contract and the stack outputs
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def captured() -> Iterator[dict[str, Any]]:
    """The Platform the real program hands to the serving layer, and the URNs in its ``ready``."""
    seen: dict[str, Any] = {}

    class Capture(Serving):
        def __init__(self, name: str, args: ServingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
            super().__init__(name, args, opts)
            seen["platform"] = args.platform
            pulumi.Output.all(*(r.urn for r in args.platform.ready)).apply(lambda urns: seen.update(ready=urns))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(components.workloads, "Serving", Capture)
        run = run_stack("eks")
    assert run.error is None, run.error
    seen["run"] = run
    yield seen


def test_platform_tells_workloads_how_to_use_the_gpu_pools(captured: dict[str, Any]) -> None:
    platform: Platform = captured["platform"]
    assert (platform.cloud, platform.cluster_name, platform.location) == ("aws", CLUSTER, "us-west-2")
    assert platform.namespace == "llm"
    (name,) = platform.gpu_pools
    nodes = platform.gpu_pool()
    assert (name, nodes.pool, nodes.gpu, nodes.gpus_per_node) == ("g5", "g5", "A10G", 1)
    assert nodes.node_selector == {"karpenter.sh/nodepool": "g5"}
    assert nodes.resource_name == "nvidia.com/gpu"
    pool = captured["run"].kubernetes_object("NodePool", "g5")
    assert all(
        any(tolerates(t, taint) for t in nodes.tolerations) for taint in pool["spec"]["template"]["spec"]["taints"]
    )
    assert platform.storage_class == "gp3"
    retained = platform.retained_storage_class
    assert retained is not None and retained["reclaimPolicy"] == "Retain"
    assert (retained["provisioner"], retained["parameters"]) == (
        "ebs.csi.aws.com",
        {"type": "gp3", "encrypted": "true"},
    )


def test_platform_model_store_and_load_balancers(captured: dict[str, Any]) -> None:
    platform: Platform = captured["platform"]
    store = platform.model_store
    assert store is not None and store.scheme == "s3"
    assert (store.reader_service_account, store.writer_service_account) == (
        READER_SERVICE_ACCOUNT,
        WRITER_SERVICE_ACCOUNT,
    )
    assert store.env == {"AWS_REGION": "us-west-2", "AWS_DEFAULT_REGION": "us-west-2"}
    assert platform.load_balancing.annotations(internal=False) == {
        "service.beta.kubernetes.io/aws-load-balancer-type": "nlb"
    }
    assert platform.load_balancing.annotations(internal=True) == {
        "service.beta.kubernetes.io/aws-load-balancer-type": "nlb",
        "service.beta.kubernetes.io/aws-load-balancer-internal": "true",
    }


def test_platform_ready_is_what_workloads_must_wait_for(captured: dict[str, Any]) -> None:
    run: StackRun = captured["run"]
    resources = {r.urn: f"{r.type} {r.name}" for r in run.resources}
    ready = {resources[urn] for urn in captured["ready"]}
    assert ready == {
        f"kubernetes:core/v1:Namespace {CLUSTER}-llm",
        f"kubernetes:core/v1:ServiceAccount {CLUSTER}-{READER_SERVICE_ACCOUNT}",
        f"kubernetes:core/v1:ServiceAccount {CLUSTER}-{WRITER_SERVICE_ACCOUNT}",
        f"{PIA} {CLUSTER}-{READER_SERVICE_ACCOUNT}",
        f"{PIA} {CLUSTER}-{WRITER_SERVICE_ACCOUNT}",
        f"kubernetes:core/v1:ServiceAccount {CLUSTER}-{BACKUP_SERVICE_ACCOUNT}",
        f"{PIA} {CLUSTER}-{BACKUP_SERVICE_ACCOUNT}",
        f"kubernetes:core/v1:ServiceAccount {CLUSTER}-{COMPILE_CACHE_SERVICE_ACCOUNT}",
        f"{PIA} {CLUSTER}-{COMPILE_CACHE_SERVICE_ACCOUNT}",
        f"{NODE_POOL} {CLUSTER}-g5",
        f"{RELEASE} {CLUSTER}-nvidia-device-plugin",
        f"kubernetes:storage.k8s.io/v1:StorageClass {CLUSTER}-gp3",
    }


def test_stack_outputs(eks: StackRun) -> None:
    assert set(eks.outputs) >= {
        "cluster_name",
        "cluster_location",
        "credentials_command",
        "kubeconfig",
        "bucket",
        "registry_url",
    }
    assert eks.outputs["cluster_name"] == CLUSTER
    assert eks.outputs["cluster_location"] == "us-west-2"
    assert eks.outputs["credentials_command"] == f"aws eks update-kubeconfig --region us-west-2 --name {CLUSTER}"
    assert eks.outputs["bucket"] == f"s3://{BUCKET}"
    assert json.loads(eks.outputs["kubeconfig"])["kind"] == "Config"
    assert "kubeconfig" in eks.secret_outputs


# --------------------------------------------------------------------------------------
# bad input: a clear error naming the key, and nothing declared
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        (
            {PLATFORM: {"gpuNodePools": [{"name": "cpu", "instanceFamilies": ["m5"]}]}},
            "llm-serving:platform.gpuNodePools[0].instanceFamilies[0] = 'm5': not an NVIDIA GPU instance family",
        ),
        (
            {PLATFORM: {"availabilityZones": ["us-west-2a"]}},
            'llm-serving:platform.availabilityZones = ["us-west-2a"]: List should have at least 2 items',
        ),
        (
            {PLATFORM: {"gpuNodePools": [{"name": "g5", "instanceSizes": ["12xlarge"], "gpuLimit": 2}]}},
            "llm-serving:platform.gpuNodePools[0].gpuLimit = 2: below the 4 GPUs of the smallest allowed instance",
        ),
        (
            {"llm-serving:serving": {"model": "deepseek-ai/DeepSeek-R1-Distill-Llama-70B"}},
            "llm-serving:serving.tensorParallelSize = 1: the weights of deepseek-ai/DeepSeek-R1-Distill-Llama-70B",
        ),
    ],
    ids=["not-a-gpu-family", "one-zone", "gpu-limit-below-a-node", "model-does-not-fit"],
)
def test_bad_input_is_refused_before_any_resource(
    run_with: Callable[..., StackRun], changes: dict[str, Any], key: str
) -> None:
    run = run_with("eks", changes)
    assert run.error is not None
    assert "invalid stack configuration" in str(run.error)
    assert key in str(run.error)
    assert run.resources == []


# --------------------------------------------------------------------------------------
# Kubernetes version, GPU driver
# --------------------------------------------------------------------------------------


def test_default_kubernetes_version_is_the_newest_karpenter_and_the_ami_support() -> None:
    both = set(catalog.KARPENTER_KUBERNETES_VERSIONS) & set(catalog.GPU_NODE_AMI.kubernetes_versions)
    newest = max(both, key=lambda v: tuple(map(int, v.split("."))))
    assert catalog.EKS_KUBERNETES_VERSION == newest == "1.36"
    assert AwsPlatformConfig.model_fields["kubernetes_version"].default == newest
    # Strict manifest validation uses the same version.
    assert newest == kubeschema.KUBERNETES_VERSION


def test_gpu_node_ami_driver_runs_every_image_the_eks_stack_pins() -> None:
    ami = catalog.GPU_NODE_AMI
    assert ami.nvidia_driver == "580.159.03" and ami.nvidia_driver in ami.source
    for image in (catalog.VLLM_IMAGE, catalog.RAY_LLM_IMAGE):
        assert image.cuda is not None
        assert ami.runs(image.cuda), (image.ref, image.cuda.min_driver)
    # Compared as numbers, not strings ("580.65.06" < "580.159.03").
    assert ami.runs(catalog.CudaBuild("13.0", "580.65.06", ""))
    assert not ami.runs(catalog.CudaBuild("13.x", "580.160", ""))


def test_an_ami_too_old_for_the_engine_image_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    old = dataclasses.replace(catalog.GPU_NODE_AMI, nvidia_driver="570.172.08")
    monkeypatch.setattr(catalog, "GPU_NODE_AMI", old)
    message = only_problem("eks", {"serving": {"engine": "vllm"}})
    assert message.startswith("llm-serving:serving.engine = 'vllm': its image vllm/vllm-openai:v0.33.0")
    assert "driver >= 580.65.06" in message and "570.172.08" in message
    parse(raw("eks"))  # ray-llm is the CUDA 12.8 build: 570 suffices


# --------------------------------------------------------------------------------------
# cluster admins and the creator's bootstrap entry
# --------------------------------------------------------------------------------------

ADMIN = "arn:aws:iam::123456789012:role/Admin"
OPS = "arn:aws:iam::123456789012:role/platform/Ops"


def caller(monkeypatch: pytest.MonkeyPatch, arn: str) -> None:
    """Who runs the offline `up` (what aws.get_caller_identity answers)."""
    monkeypatch.setitem(
        offline.FAKE_INVOKES,
        "aws:index/getCallerIdentity:getCallerIdentity",
        lambda a: {"accountId": "123456789012", "arn": arn, "userId": "AROAOFFLINE:me"},
    )


def entries(run: StackRun) -> dict[str, str]:
    return {k: v["principalArn"] for k, v in run.one("eks:index:Cluster").inputs["accessEntries"].items()}


def test_first_up_by_a_listed_admin_skips_its_own_entry(
    monkeypatch: pytest.MonkeyPatch, run_with: Callable[..., StackRun]
) -> None:
    """EKS already made the creator admin (bootstrapClusterCreatorAdminPermissions):
    a second entry would be refused with 409 (pulumi/pulumi-eks#2373)."""
    caller(monkeypatch, "arn:aws:sts::123456789012:assumed-role/Admin/alice")  # a session of role Admin
    run = run_with("eks", {PLATFORM: {"adminPrincipals": [ADMIN, OPS]}})
    assert run.error is None, run.error
    assert entries(run) == {"admin-123456789012-role-Ops": OPS}
    # The creator is recorded once in the stack's state, and later changes are ignored.
    record = run.one("random:index/randomId:RandomId", f"{CLUSTER}-creator")
    assert record.inputs["keepers"] == {"principalArn": ADMIN}
    assert record.ignore_changes == ["keepers"]
    assert run.outputs["cluster_creator"] == ADMIN
    session = next(i for i in run.invokes if i.token == "aws:iam/getSessionContext:getSessionContext")
    assert session.args["arn"] == "arn:aws:sts::123456789012:assumed-role/Admin/alice"


def test_later_up_by_another_admin_keeps_the_creator_skipped(
    monkeypatch: pytest.MonkeyPatch, run_with: Callable[..., StackRun]
) -> None:
    """With clusterCreator set after the first `up`, every admin computes the same entries:
    the creator's bootstrap entry is left to EKS and the others' entries stay."""
    caller(monkeypatch, "arn:aws:sts::123456789012:assumed-role/Ops/bob")
    run = run_with("eks", {PLATFORM: {"adminPrincipals": [ADMIN, OPS], "clusterCreator": ADMIN}})
    assert run.error is None, run.error
    assert entries(run) == {"admin-123456789012-role-Ops": OPS}  # same as the first up's
    assert not [i for i in run.invokes if i.token == "aws:iam/getSessionContext:getSessionContext"]
    assert run.outputs["cluster_creator"] == ADMIN


def test_later_up_by_another_admin_without_cluster_creator_stops_with_the_fix() -> None:
    """The state's record says who created the cluster; another caller without config
    would move the skipped entry (409 for the creator): stop and name the config key."""
    assert admins.check_creator(ADMIN, ADMIN, configured=False) == ADMIN
    assert admins.check_creator(ADMIN, OPS, configured=True) == OPS  # config wins
    with pytest.raises(pulumi.RunError) as err:
        admins.check_creator(ADMIN, OPS, configured=False)
    assert f"created by {ADMIN}" in str(err.value)
    assert f"pulumi config set --path 'llm-serving:platform.clusterCreator' '{ADMIN}'" in str(err.value)


def test_admin_entry_keys_do_not_depend_on_list_order() -> None:
    assert admins.entry_key(OPS) == "admin-123456789012-role-Ops"
    assert admins.entry_key("arn:aws:iam::210987654321:user/alice") == "admin-210987654321-user-alice"
    assert admins.admin_principals([OPS, ADMIN, OPS], ADMIN) == [OPS]


# --------------------------------------------------------------------------------------
# Pod Identity trust, spot, node repair
# --------------------------------------------------------------------------------------


def test_compile_cache_writer_role_may_only_create_under_its_prefix(eks: StackRun) -> None:
    """The uploader's role: PutObject under compile-cache/ and nothing else (no list, get
    or delete); the engine's reader role is unchanged."""
    policy = named(eks, "aws:iam/rolePolicy:RolePolicy", f"-{COMPILE_CACHE_SERVICE_ACCOUNT}")
    (statement,) = statements(policy, "policy")
    bucket = eks.outputs["bucket"].removeprefix("s3://")
    assert statement == {
        "Sid": "CreateUnderPrefix",
        "Effect": "Allow",
        "Action": ["s3:PutObject", "s3:AbortMultipartUpload"],
        "Resource": f"arn:aws:s3:::{bucket}/compile-cache/*",
    }


def test_pod_identity_roles_trust_one_service_account_of_this_cluster(eks: StackRun) -> None:
    expected = {
        "-karpenter": ("kube-system", "karpenter"),
        "-ebs-csi": ("kube-system", "ebs-csi-controller-sa"),
        f"-{READER_SERVICE_ACCOUNT}": ("llm", READER_SERVICE_ACCOUNT),
        f"-{WRITER_SERVICE_ACCOUNT}": ("llm", WRITER_SERVICE_ACCOUNT),
        f"-{BACKUP_SERVICE_ACCOUNT}": ("llm", BACKUP_SERVICE_ACCOUNT),
        f"-{COMPILE_CACHE_SERVICE_ACCOUNT}": ("llm", COMPILE_CACHE_SERVICE_ACCOUNT),
    }
    pod_roles = [r for r in eks.of_type(ROLE) if "pods.eks.amazonaws.com" in r.inputs["assumeRolePolicy"]]
    assert len(pod_roles) == len(expected)
    for suffix, (namespace, account) in expected.items():
        (statement,) = statements(named(eks, ROLE, suffix), "assumeRolePolicy")
        assert statement["Condition"] == {
            "StringEquals": {
                "aws:RequestTag/eks-cluster-name": CLUSTER,
                "aws:RequestTag/kubernetes-namespace": namespace,
                "aws:RequestTag/kubernetes-service-account": account,
            }
        }, suffix


SPOT_POOL = {"name": "g5", "instanceFamilies": ["g5"], "capacityTypes": ["on-demand", "spot"], "gpuLimit": 4}


def test_spot_with_a_single_replica_is_refused_unless_opted_in() -> None:
    message = only_problem("eks", {"platform": {"gpuNodePools": [SPOT_POOL]}})
    assert message.startswith("llm-serving:serving.replicas = 1: the only replica would run on spot")
    assert "platform.gpuNodePools[0].singleReplicaOnSpot: true" in message
    parse(raw("eks", {"platform": {"gpuNodePools": [{**SPOT_POOL, "singleReplicaOnSpot": True}]}}))
    parse(raw("eks", {"platform": {"gpuNodePools": [SPOT_POOL]}, "serving": {"replicas": 2}}))
    # The stack file and the model default are on-demand.
    assert AwsGpuNodePoolConfig(name="x").capacity_types == ["on-demand"]


def test_node_repair_and_spot_role_are_off_by_default(eks: StackRun) -> None:
    assert not eks.of_type("aws:iam/serviceLinkedRole:ServiceLinkedRole")
    assert "eks-node-monitoring-agent" not in {a.inputs["addonName"] for a in eks.of_type("aws:eks/addon:Addon")}


def test_node_repair_and_spot_role_when_enabled(run_with: Callable[..., StackRun]) -> None:
    run = run_with("eks", {PLATFORM: {"nodeRepair": True, "createSpotServiceLinkedRole": True}})
    assert run.error is None, run.error
    agent = named(run, "aws:eks/addon:Addon", "-eks-node-monitoring-agent")
    assert agent.inputs == {"clusterName": CLUSTER, "addonName": "eks-node-monitoring-agent"}
    assert depends_on(agent, run.one("eks:index:ManagedNodeGroup"))
    values = named(run, RELEASE, "-karpenter").inputs["values"]
    assert values["settings"]["featureGates"] == {"nodeRepair": True}
    role = run.one("aws:iam/serviceLinkedRole:ServiceLinkedRole")
    assert role.inputs["awsServiceName"] == "spot.amazonaws.com"
    assert role.retain_on_delete  # account-wide: other stacks' spot launches need it


# --------------------------------------------------------------------------------------
# EFA pools (issue 13 item 1, EKS side): P instances whose replicas span nodes
# --------------------------------------------------------------------------------------

EFA_VARIANT = {
    PLATFORM: {
        "capacityReservationIds": ["cr-0123456789abcdef0"],
        "gpuNodePools": [
            {"name": "g5", "instanceFamilies": ["g5"], "instanceSizes": ["2xlarge", "4xlarge"], "gpuLimit": 4},
            # On-demand in a cluster placement group ...
            {"name": "p5", "instanceFamilies": ["p5"], "gpuLimit": 16, "efa": {"zone": "us-west-2a"}},
            # ... and a Capacity Block, which EC2 places itself.
            {
                "name": "p5e",
                "instanceFamilies": ["p5e"],
                "capacityTypes": ["reserved"],
                "gpuLimit": 16,
                "efa": {"zone": "us-west-2b", "placementGroup": "none"},
            },
        ],
    }
}
PLACEMENT_GROUP = "aws:ec2/placementGroup:PlacementGroup"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"


@pytest.fixture(scope="module")
def efa_run() -> StackRun:
    run = run_stack("eks", EFA_VARIANT)
    assert run.error is None, run.error
    return run


def test_efa_pools_get_their_own_node_class_and_strictly_valid_objects(efa_run: StackRun) -> None:
    pools = {p: efa_run.kubernetes_object("NodePool", p) for p in ("g5", "p5", "p5e")}
    classes = {c: efa_run.kubernetes_object("EC2NodeClass", c) for c in ("gpu", "p5", "p5e")}
    assert_valid([*pools.values(), *classes.values()])  # tests/schemas/crds, Karpenter v1.14.1
    for name in ("p5", "p5e"):
        template = pools[name]["spec"]["template"]
        assert template["spec"]["nodeClassRef"]["name"] == name
        assert template["metadata"]["labels"]["vpc.amazonaws.com/efa.present"] == "true"
        spec = classes[name]["spec"]
        assert spec["associatePublicIPAddress"] is False  # several EFA interfaces refuse true
        assert "networkInterfaces" not in spec  # Karpenter attaches one per card for EFA pods
        assert spec["securityGroupSelectorTerms"] == [
            {"tags": {"karpenter.sh/discovery": CLUSTER}},
            {"tags": {"Name": f"{CLUSTER}-efa"}},
        ]
    assert pools["g5"]["spec"]["template"]["spec"]["nodeClassRef"]["name"] == "gpu"
    assert "vpc.amazonaws.com/efa.present" not in pools["g5"]["spec"]["template"]["metadata"]["labels"]
    assert "placementGroupSelector" not in classes["gpu"]["spec"]


def test_an_efa_pool_lives_in_one_zone(efa_run: StackRun) -> None:
    for pool, zone in (("p5", "us-west-2a"), ("p5e", "us-west-2b")):
        requirements = efa_run.kubernetes_object("NodePool", pool)["spec"]["template"]["spec"]["requirements"]
        assert {"key": "topology.kubernetes.io/zone", "operator": "In", "values": [zone]} in requirements
        terms = efa_run.kubernetes_object("EC2NodeClass", pool)["spec"]["subnetSelectorTerms"]
        (subnet,) = [
            s
            for s in efa_run.of_type("aws:ec2/subnet:Subnet")
            if s.inputs["tags"] == {**s.inputs["tags"], **terms[0]["tags"]}
        ]
        assert subnet.inputs["availabilityZone"] == zone
        assert subnet.inputs.get("mapPublicIpOnLaunch", False) is False  # private: no public addresses
        assert len(terms) == 1


def test_placement_group_for_the_on_demand_pool_only(efa_run: StackRun, eks: StackRun) -> None:
    group = efa_run.one(PLACEMENT_GROUP)
    assert group.inputs == {"name": f"{CLUSTER}-p5", "strategy": "cluster"}
    assert group.delete_before_replace  # a fixed name
    assert parent_type(efa_run, group) == "llm-serving:aws:EfaFabric"
    selector = efa_run.kubernetes_object("EC2NodeClass", "p5")["spec"]["placementGroupSelector"]
    assert selector == {"name": group.inputs["name"]}
    assert "placementGroupSelector" not in efa_run.kubernetes_object("EC2NodeClass", "p5e")["spec"]
    node_class = efa_run.one(NODE_CLASS, f"{CLUSTER}-p5-class")
    assert depends_on(node_class, group)
    assert not eks.of_type(PLACEMENT_GROUP) and not eks.of_type(SECURITY_GROUP)  # only with EFA pools


def test_efa_security_group_allows_all_traffic_to_and_from_itself(efa_run: StackRun) -> None:
    group = efa_run.one(SECURITY_GROUP)
    vpc = efa_run.one("aws:ec2/vpc:Vpc")
    assert group.inputs["vpcId"] == f"{vpc.name}-id"
    assert group.inputs["tags"] == {"Name": f"{CLUSTER}-efa"}  # what the node classes select
    assert "ingress" not in group.inputs and "egress" not in group.inputs  # only the rules below
    group_id = f"{group.name}-id"
    for type_ in (
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
    ):
        rule = efa_run.one(type_)
        assert (rule.inputs["securityGroupId"], rule.inputs["referencedSecurityGroupId"]) == (group_id, group_id)
        assert rule.inputs["ipProtocol"] == "-1"  # every protocol and port
        assert "cidrIpv4" not in rule.inputs
        for name in ("p5", "p5e"):
            assert depends_on(efa_run.one(NODE_CLASS, f"{CLUSTER}-{name}-class"), rule)


def test_efa_device_plugin_release_on_efa_nodes_only(efa_run: StackRun, eks: StackRun) -> None:
    release = named(efa_run, RELEASE, "-aws-efa-k8s-device-plugin")
    chart = catalog.EFA_DEVICE_PLUGIN_CHART
    assert (release.inputs["chart"], release.inputs["version"]) == ("aws-efa-k8s-device-plugin", "v0.5.30")
    assert release.inputs["repositoryOpts"] == {"repo": "https://aws.github.io/eks-charts"} == {"repo": chart.repo}
    assert (release.inputs["namespace"], release.inputs["name"]) == ("kube-system", "aws-efa-k8s-device-plugin")
    assert parent_type(efa_run, release) == "llm-serving:aws:GpuPools"
    values = release.inputs["values"]
    for name in ("g5", "p5", "p5e"):
        pool = efa_run.kubernetes_object("NodePool", name)
        labels = pool["spec"]["template"]["metadata"]["labels"]
        selected = all(labels.get(k) == v for k, v in values["nodeSelector"].items())
        assert selected == (name != "g5")
        for taint in pool["spec"]["template"]["spec"]["taints"]:
            assert any(tolerates(t, taint) for t in values["tolerations"])
    # Workloads wait for it as they wait for the NVIDIA plugin (Platform.ready).
    nvidia = named(efa_run, RELEASE, "-nvidia-device-plugin")
    waiting = [r for r in efa_run.resources if nvidia.urn in r.depends_on]
    assert waiting and all(release.urn in r.depends_on for r in waiting)
    platform = efa_run.program_globals["platform"]
    assert isinstance(platform, Platform) and platform.gpu_pools["p5"].fabric == "efa"
    assert not [r for r in eks.of_type(RELEASE) if r.name.endswith("-aws-efa-k8s-device-plugin")]


def test_controller_may_describe_and_launch_into_placement_groups(eks: StackRun) -> None:
    """KP v1.14 nodeclasses.md: placementGroupSelector needs ec2:DescribePlacementGroups and
    RunInstances/CreateFleet on the group; the template's policies have both, within size."""
    discovery = statements(named(eks, POLICY, "-karpenter-resource-discovery"))
    assert "ec2:DescribePlacementGroups" in discovery[0]["Action"]
    launch = statements(named(eks, POLICY, "-karpenter-node-lifecycle"))[0]
    assert set(launch["Action"]) == {"ec2:RunInstances", "ec2:CreateFleet"}
    assert "arn:aws:ec2:us-west-2:*:placement-group/*" in launch["Resource"]
    for policy in eks.of_type(POLICY):
        assert len(json.dumps(document(policy), separators=(",", ":"))) <= iam.MANAGED_POLICY_MAX_CHARS


@pytest.mark.parametrize(("family", "interfaces"), [("p5", 32), ("p5e", 32), ("p5en", 16), ("p6-b200", 8)])
def test_gpu_nodes_of_an_efa_pool(family: str, interfaces: int) -> None:
    config = pool_config(name="efa", instanceFamilies=[family], gpuLimit=16, efa={"zone": "us-west-2a"})
    nodes = gpu_pools.gpu_nodes(config)
    assert (nodes.fabric, nodes.whole_node, nodes.gpus_per_node) == ("efa", True, 8)
    assert nodes.pod_resources == {"vpc.amazonaws.com/efa": str(interfaces)}
    assert {e["name"]: e["value"] for e in nodes.env} == {"FI_PROVIDER": "efa", "FI_EFA_USE_DEVICE_RDMA": "1"}
    assert list(nodes.capabilities) == ["IPC_LOCK"]
    assert 'export LD_LIBRARY_PATH="/opt/amazon/efa/lib:/opt/amazon/ofi-nccl/lib' in nodes.shell_prelude
    # The engine's container asks for the interfaces with its GPUs (extended resources: request == limit).
    resources = components.workloads.common.gpu_resources(nodes, 8, "8", "64Gi")
    assert resources["requests"]["vpc.amazonaws.com/efa"] == resources["limits"]["vpc.amazonaws.com/efa"]
    assert resources["limits"] == {"nvidia.com/gpu": "8", "vpc.amazonaws.com/efa": str(interfaces)}
    plain = gpu_pools.gpu_nodes(pool_config(name="p5", instanceFamilies=["p5"], gpuLimit=16))
    assert (plain.fabric, plain.pod_resources, plain.whole_node) == ("none", {}, False)
    assert (config.fabric, pool_config(name="p5", instanceFamilies=["p5"]).fabric) == ("efa", "none")


def test_efa_prelude_stops_without_the_image_libraries(tmp_path: Any) -> None:
    """The prelude runs in bash: with the libraries it exports the path, without them it fails loudly."""
    nodes = gpu_pools.gpu_nodes(
        pool_config(name="efa", instanceFamilies=["p5"], gpuLimit=16, efa={"zone": "us-west-2a"})
    )
    missing = subprocess.run(
        ["bash", "-c", nodes.shell_prelude + "echo started"], check=False, capture_output=True, text=True
    )
    assert missing.returncode == 1 and "started" not in missing.stdout
    assert "/opt/amazon/efa/lib is not in this image" in missing.stderr
    rooted = nodes.shell_prelude.replace("/opt/amazon", str(tmp_path))
    for d in ("efa/lib", "ofi-nccl/lib"):
        (tmp_path / d).mkdir(parents=True)
    ok = subprocess.run(
        ["bash", "-c", rooted + 'echo "$LD_LIBRARY_PATH"'],
        check=False,
        capture_output=True,
        text=True,
        env={"LD_LIBRARY_PATH": "/x"},
    )
    assert ok.stdout.strip() == f"{tmp_path}/efa/lib:{tmp_path}/ofi-nccl/lib:/x"


def test_efa_interface_counts_have_a_source() -> None:
    assert catalog.EFA_INTERFACES_SOURCE.startswith("aws/karpenter-provider-aws @v1.14.1")
    for name in catalog.EFA_INTERFACES:
        assert name in catalog.MACHINES and catalog.MACHINES[name].gpus == 8


# --- bad input: one test per rule ------------------------------------------------------


def _efa_pool(**fields: Any) -> dict[str, Any]:
    return {"gpuNodePools": [{"name": "g5", "instanceFamilies": ["g5"]}, {"name": "p5", **fields}]}


def test_refuses_efa_on_a_family_without_efa() -> None:
    problem = only_problem("eks", {"platform": _efa_pool(instanceFamilies=["g6e"], efa={"zone": "us-west-2a"})})
    assert "platform.gpuNodePools[1].efa =" in problem and "g6e.xlarge" in problem and "have no EFA" in problem


def test_refuses_efa_types_with_different_interface_counts() -> None:
    problem = only_problem("eks", {"platform": _efa_pool(instanceFamilies=["p5e", "p5en"], efa={"zone": "us-west-2a"})})
    assert "different EFA interface counts (p5e.48xlarge 32, p5en.48xlarge 16)" in problem


def test_refuses_a_placement_group_with_reserved_capacity() -> None:
    pool = _efa_pool(instanceFamilies=["p5"], capacityTypes=["reserved"], efa={"zone": "us-west-2a"})
    problem = only_problem("eks", {"platform": {**pool, "capacityReservationIds": ["cr-0123456789abcdef0"]}})
    assert "placementGroup 'cluster' with capacity type 'reserved'" in problem and "placementGroup: none" in problem


def test_refuses_an_efa_zone_outside_the_stack() -> None:
    problem = only_problem("eks", {"platform": _efa_pool(instanceFamilies=["p5"], efa={"zone": "us-west-2c"})})
    assert "platform.gpuNodePools[1].efa.zone =" in problem and "us-west-2a, us-west-2b" in problem


def test_refuses_an_efa_zone_that_is_not_a_zone() -> None:
    problem = only_problem("eks", {"platform": _efa_pool(instanceFamilies=["p5"], efa={"zone": "us-west-2"})})
    assert "platform.gpuNodePools[1].efa.zone = 'us-west-2': not one of the stack's availabilityZones" in problem


def test_refuses_unknown_efa_keys() -> None:
    problem = only_problem(
        "eks", {"platform": _efa_pool(instanceFamilies=["p5"], efa={"zone": "us-west-2a", "interfaces": 4})}
    )
    assert "platform.gpuNodePools[1].efa.interfaces: unknown key" in problem


def test_refuses_more_whole_nodes_than_the_efa_pool_may_launch() -> None:
    changes = {
        "platform": _efa_pool(instanceFamilies=["p5"], gpuLimit=16, efa={"zone": "us-west-2a"}),
        "serving": {"gpuPool": "p5", "tensorParallelSize": 8, "replicas": 3},
    }
    # Whole-node layouts use nodes x GPUs per node, so the pool-wide limit rule counts whole nodes.
    problem = only_problem("eks", changes)
    assert "serving.replicas = 3" in problem and "3 replica(s) x 8 GPUs exceed pool 'p5''s gpuLimit of 16" in problem


def test_refuses_a_layout_that_leaves_part_of_an_efa_node() -> None:
    changes = {
        "platform": _efa_pool(instanceFamilies=["p5"], gpuLimit=16, efa={"zone": "us-west-2a"}),
        "serving": {"gpuPool": "p5", "tensorParallelSize": 4},
    }
    problem = only_problem("eks", changes)
    assert "serving.tensorParallelSize = 4" in problem and "whole node(s) in pool 'p5'" in problem


# --------------------------------------------------------------------------------------
# Pulumi.eks-p5.yaml (issue 13 item 3, EKS): 2 x p5.48xlarge, R1 FP8 at TP 8 x PP 2
# --------------------------------------------------------------------------------------


def test_eks_p5_stack_validates_with_the_multi_node_engine() -> None:
    """The whole stack validates now that the LeaderWorkerSet engine exists; it runs as one
    group over both nodes, over EFA (its plan and objects: tests/test_stacks.py)."""
    config = components.config.parse(raw("eks-p5"))
    assert config.serving.engine_kind == "vllm-lws"
    assert components.config.stack.pool_fabric(config.platform, config.gpu_pool_name) == "efa"


def test_eks_p5_layout_fills_both_nodes_and_fits() -> None:
    config = raw("eks-p5")
    platform = AwsPlatformConfig.model_validate(config["platform"])
    serving = components.config.ServingConfig.model_validate(config["serving"])
    layout = components.config.stack.topology(platform, serving).layout
    assert (layout.tensor, layout.pipeline, layout.nodes, layout.gpus) == (8, 2, 2, 16)
    report = components.sizing.size(components.config.stack.sizing_request(platform, serving))
    assert report.fits and report.max_model_len == 32768
    (pool,) = platform.gpu_node_pools
    assert pool.gpu_limit == serving.replicas * layout.nodes * pool.max_gpus_per_node
    assert pool.efa is not None and pool.efa.placement_group == "none"  # a Capacity Block
    assert pool.capacity_types == ["reserved"] and platform.capacity_reservation_ids


def test_eks_p5_platform_side_plans() -> None:
    """The platform of the stack file on the mock engine (the engine itself waits for lws)."""
    run = run_stack("eks-p5", {"llm-serving:serving": {"engine": "none"}})
    assert run.error is None, run.error
    node_class = run.kubernetes_object("EC2NodeClass", "p5")
    pool = run.kubernetes_object("NodePool", "p5")
    assert_valid([node_class, pool])
    assert [o["metadata"]["name"] for o in run.kubernetes_objects() if o["kind"] == "EC2NodeClass"] == ["p5"]
    assert "placementGroupSelector" not in node_class["spec"] and not run.of_type(PLACEMENT_GROUP)
    assert node_class["spec"]["capacityReservationSelectorTerms"] == [{"id": "cr-0123456789abcdef0"}]
    requirements = {r["key"]: r["values"] for r in pool["spec"]["template"]["spec"]["requirements"]}
    assert requirements["karpenter.sh/capacity-type"] == ["reserved"]
    assert requirements["topology.kubernetes.io/zone"] == ["us-west-2a"]
    assert pool["spec"]["limits"] == {"nvidia.com/gpu": 16}
    assert named(run, RELEASE, "-aws-efa-k8s-device-plugin").inputs["version"] == "v0.5.30"
    nodes = run.program_globals["platform"].gpu_pools["p5"]
    assert (nodes.fabric, dict(nodes.pod_resources)) == ("efa", {"vpc.amazonaws.com/efa": "32"})


# --------------------------------------------------------------------------------------
# Docker Hub mirror (registry kind mirror): an ECR pull-through cache rule
# --------------------------------------------------------------------------------------

PULL_THROUGH_RULE = "aws:ecr/pullThroughCacheRule:PullThroughCacheRule"
MIRROR_SECRET = "ecr-pullthroughcache/docker-hub"
MIRROR_PREFIX = f"{CLUSTER}-docker-hub"
MIRROR_URL = f"123456789012.dkr.ecr.us-west-2.amazonaws.com/{MIRROR_PREFIX}"


def mirror_run(secret: str = MIRROR_SECRET) -> StackRun:
    registry = {"kind": "mirror", "credentials": {"secret": secret}}
    return run_stack("eks", {PLATFORM: {"registry": registry}})


@pytest.fixture(scope="module")
def mirrored() -> StackRun:
    return mirror_run()


def test_mirror_is_a_pull_through_cache_rule_for_docker_hub(mirrored: StackRun) -> None:
    rule = mirrored.one(PULL_THROUGH_RULE)
    assert rule.inputs == {
        "ecrRepositoryPrefix": MIRROR_PREFIX,
        "upstreamRegistryUrl": "registry-1.docker.io",
        # The name was looked up; the token itself never passes through the program.
        "credentialArn": f"arn:aws:secretsmanager:region:123456789012:secret:{MIRROR_SECRET}-AbCdEf",
    }
    assert mirrored.of_type("aws:ecr/repository:Repository") == []  # instead of the stack's own repository
    assert mirrored.outputs["image_mirror"] == MIRROR_URL and "registry_url" not in mirrored.outputs


def test_repositories_of_first_pulls_are_encrypted_and_expire_what_moved_tags_leave(mirrored: StackRun) -> None:
    template = mirrored.one("aws:ecr/repositoryCreationTemplate:RepositoryCreationTemplate")
    assert template.inputs["prefix"] == MIRROR_PREFIX and template.inputs["appliedFors"] == ["PULL_THROUGH_CACHE"]
    assert template.inputs["imageTagMutability"] == "MUTABLE"  # ECR moves a cached tag when Docker Hub's moves
    assert template.inputs["encryptionConfigurations"] == [{"encryptionType": "AES256"}]
    (rule,) = json.loads(template.inputs["lifecyclePolicy"])["rules"]
    assert rule["selection"]["tagStatus"] == "untagged" and rule["action"] == {"type": "expire"}
    assert template.urn in mirrored.one(PULL_THROUGH_RULE).depends_on  # in place before the first pull


def test_mirror_takes_a_secret_arn_as_it_is() -> None:
    arn = f"arn:aws:secretsmanager:us-west-2:123456789012:secret:{MIRROR_SECRET}-XyZ123"
    assert mirror_run(arn).one(PULL_THROUGH_RULE).inputs["credentialArn"] == arn


def test_node_roles_may_pull_through_into_the_prefix_only(mirrored: StackRun) -> None:
    policies = {
        r.inputs["role"]: json.loads(r.inputs["policy"])
        for r in mirrored.of_type("aws:iam/rolePolicy:RolePolicy")
        if "PullThroughDockerHub" in r.inputs["policy"]
    }
    assert set(policies) == {f"{CLUSTER}-karpenter-node", f"{CLUSTER}-system-node"}
    for document in policies.values():
        (statement,) = document["Statement"]
        assert statement["Action"] == ["ecr:BatchImportUpstreamImage", "ecr:CreateRepository"]
        assert statement["Resource"] == f"arn:aws:ecr:us-west-2:123456789012:repository/{MIRROR_PREFIX}/*"


def test_docker_hub_images_are_pulled_through_ecr(mirrored: StackRun) -> None:
    objects = mirrored.kubernetes_objects()
    assert_valid(objects)
    ray = f"{MIRROR_URL}/{catalog.RAY_LLM_IMAGE.repository}:{catalog.RAY_LLM_IMAGE.tag}"
    text = json.dumps(mirrored.kubernetes_object("RayService", "ray-llm"))
    assert f'"image": "{ray}"' in text and f'"image": "{catalog.RAY_LLM_IMAGE.ref}"' not in text
    ui = json.dumps(mirrored.kubernetes_object("Deployment", "open-webui"))
    assert f'"image": "{catalog.OPEN_WEBUI_IMAGE.ref}"' in ui  # ghcr.io: left as it is
    assert mirrored.outputs["engine"]["image"] == ray
    platform = mirrored.program_globals["platform"]
    assert isinstance(platform, Platform) and platform.image_mirror is not None
    assert not platform.image_mirror.streaming
