"""The GCP platform of the a4high stack, as the mock engine records it.

Every test runs the real ``Pulumi.a4high.yaml`` through ``__main__.py`` (fixture
``a4high``, or ``run_with`` for a variant) and asserts on the recorded resources and
stack outputs, never inside an ``apply``. Facts checked here are the ones the code cites
(docs/reference/gcp-a4high.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from components import catalog
from components.gcp.cluster import master_version
from components.platform import READER_SERVICE_ACCOUNT, WRITER_SERVICE_ACCOUNT, Platform
from conftest import assert_valid
from tools.offline import FAKE_PROJECT_NUMBER, Recorded, StackRun, run_stack

RunWith = Callable[[str, dict[str, Any]], StackRun]

PROJECT, REGION, ZONE, CLUSTER = "my-gcp-project", "us-central1", "us-central1-b", "llm-a4high"
NAMESPACE = "llm"

NETWORK = "gcp:compute/network:Network"
SUBNETWORK = "gcp:compute/subnetwork:Subnetwork"
FIREWALL = "gcp:compute/firewall:Firewall"
CLUSTER_TYPE = "gcp:container/cluster:Cluster"
NODE_POOL = "gcp:container/nodePool:NodePool"
BUCKET = "gcp:storage/bucket:Bucket"
BUCKET_MEMBER = "gcp:storage/bucketIAMMember:BucketIAMMember"
REPOSITORY = "gcp:artifactregistry/repository:Repository"
PROJECT_MEMBER = "gcp:projects/iAMMember:IAMMember"
GCP_PROVIDER = "pulumi:providers:gcp"
K8S_PROVIDER = "pulumi:providers:kubernetes"

RDMA_NETWORKS = [f"rdma-{i}" for i in range(8)]
RDMA_CIDRS = [f"192.168.{128 + 8 * i}.0/21" for i in range(8)]


def by_name(run: StackRun, type_: str) -> dict[str, Recorded]:
    """Resources of a type by their physical name (the ``name`` input, or ``namePrefix``)."""
    return {str(r.inputs.get("name", r.inputs.get("namePrefix"))): r for r in run.of_type(type_)}


def gpu_pool(run: StackRun) -> dict[str, Any]:
    return by_name(run, NODE_POOL)["a4high"].inputs


def parent_type(run: StackRun, resource: Recorded) -> str:
    parent = run.by_urn(resource.parent)
    return parent.type if parent else "pulumi:pulumi:Stack"


def platform_of(run: StackRun) -> Platform:
    platform = run.program_globals["platform"]
    assert isinstance(platform, Platform)
    return platform


def pool_variant(run_with: RunWith, **gpu_pool: Any) -> StackRun:
    run = run_with("a4high", {"llm-serving:platform": {"gpuPool": gpu_pool}})
    assert run.error is None, run.error
    return run


# --- networks ------------------------------------------------------------------------------


def test_three_vpcs_share_the_configured_mtu(a4high: StackRun) -> None:
    networks = by_name(a4high, NETWORK)
    assert sorted(networks) == [f"{CLUSTER}-net-0", f"{CLUSTER}-net-1", f"{CLUSTER}-rdma-net"]
    for network in networks.values():
        assert network.inputs["mtu"] == 8896
        assert network.inputs["autoCreateSubnetworks"] is False
        assert network.inputs["routingMode"] == "REGIONAL"


def test_rdma_vpc_uses_the_zonal_roce_profile(a4high: StackRun) -> None:
    networks = by_name(a4high, NETWORK)
    profile = f"projects/{PROJECT}/global/networkProfiles/{ZONE}-vpc-roce"
    assert networks[f"{CLUSTER}-rdma-net"].inputs["networkProfile"] == profile
    assert "networkProfile" not in networks[f"{CLUSTER}-net-0"].inputs
    assert "networkProfile" not in networks[f"{CLUSTER}-net-1"].inputs


def test_ten_subnets_with_the_blueprint_ranges(a4high: StackRun) -> None:
    subnets = {name: (r.inputs["network"], r.inputs["ipCidrRange"]) for name, r in by_name(a4high, SUBNETWORK).items()}
    expected = {
        f"{CLUSTER}-sub-0": (f"{CLUSTER}-net-0", "192.168.0.0/18"),
        f"{CLUSTER}-sub-1": (f"{CLUSTER}-net-1", "192.168.64.0/18"),
        **{f"{CLUSTER}-rdma-sub-{i}": (f"{CLUSTER}-rdma-net", cidr) for i, cidr in enumerate(RDMA_CIDRS)},
    }
    assert subnets == expected
    assert {r.inputs["region"] for r in a4high.of_type(SUBNETWORK)} == {REGION}


def test_cluster_subnet_has_pod_and_service_ranges_and_private_google_access(a4high: StackRun) -> None:
    sub0 = by_name(a4high, SUBNETWORK)[f"{CLUSTER}-sub-0"].inputs
    assert sub0["secondaryIpRanges"] == [
        {"rangeName": "pods", "ipCidrRange": "10.4.0.0/14"},
        {"rangeName": "services", "ipCidrRange": "10.0.32.0/20"},
    ]
    assert sub0["privateIpGoogleAccess"] is True


def test_no_firewall_rule_on_the_rdma_vpc(a4high: StackRun) -> None:
    firewalls = by_name(a4high, FIREWALL)
    assert {r.inputs["network"] for r in firewalls.values()} == {f"{CLUSTER}-net-0", f"{CLUSTER}-net-1"}
    internal0 = firewalls[f"{CLUSTER}-internal-0"].inputs
    assert internal0["direction"] == "INGRESS"
    assert internal0["sourceRanges"] == ["192.168.0.0/18", "10.4.0.0/14"]
    assert [a["protocol"] for a in internal0["allows"]] == ["tcp", "udp", "icmp"]
    assert firewalls[f"{CLUSTER}-internal-1"].inputs["sourceRanges"] == ["192.168.64.0/18"]


def test_private_nodes_reach_the_internet_through_cloud_nat(a4high: StackRun) -> None:
    router = a4high.one("gcp:compute/router:Router").inputs
    nat = a4high.one("gcp:compute/routerNat:RouterNat").inputs
    assert (router["network"], router["region"]) == (f"{CLUSTER}-net-0", REGION)
    assert nat["router"] == router["name"]
    assert nat["sourceSubnetworkIpRangesToNat"] == "ALL_SUBNETWORKS_ALL_IP_RANGES"


# --- cluster -------------------------------------------------------------------------------


def test_cluster_networking(a4high: StackRun) -> None:
    cluster = a4high.one(CLUSTER_TYPE).inputs
    assert (cluster["name"], cluster["location"]) == (CLUSTER, REGION)
    assert (cluster["network"], cluster["subnetwork"]) == (f"{CLUSTER}-net-0", f"{CLUSTER}-sub-0")
    assert cluster["datapathProvider"] == "ADVANCED_DATAPATH"
    assert cluster["enableMultiNetworking"] is True
    assert cluster["networkingMode"] == "VPC_NATIVE"
    assert cluster["ipAllocationPolicy"] == {
        "clusterSecondaryRangeName": "pods",
        "servicesSecondaryRangeName": "services",
    }


def test_cluster_identity_storage_and_monitoring(a4high: StackRun) -> None:
    cluster = a4high.one(CLUSTER_TYPE).inputs
    assert cluster["workloadIdentityConfig"] == {"workloadPool": f"{PROJECT}.svc.id.goog"}
    assert cluster["addonsConfig"]["gcsFuseCsiDriverConfig"] == {"enabled": True}
    assert cluster["addonsConfig"]["gcePersistentDiskCsiDriverConfig"] == {"enabled": True}
    assert "DCGM" in cluster["monitoringConfig"]["enableComponents"]
    assert cluster["monitoringConfig"]["managedPrometheus"] == {"enabled": True}


def test_control_plane_is_reachable_only_from_the_authorized_networks(a4high: StackRun) -> None:
    cluster = a4high.one(CLUSTER_TYPE).inputs
    assert cluster["privateClusterConfig"] == {
        "enablePrivateNodes": True,
        "enablePrivateEndpoint": False,
        "masterIpv4CidrBlock": "172.16.0.32/28",
    }
    assert cluster["masterAuthorizedNetworksConfig"] == {
        "cidrBlocks": [{"cidrBlock": "203.0.113.0/24", "displayName": "deployer"}],
        "gcpPublicCidrsAccessEnabled": False,
    }


def test_cluster_versions_default_pool_and_deletion_protection(a4high: StackRun) -> None:
    cluster = a4high.one(CLUSTER_TYPE).inputs
    assert cluster["releaseChannel"] == {"channel": "REGULAR"}
    assert cluster["minMasterVersion"] == "1.35.8-gke.1036000"  # resolved from the prefix (fake GKE answer)
    assert cluster["removeDefaultNodePool"] is True
    assert cluster["deletionProtection"] is False


def test_deletion_protection_follows_the_config(run_with: RunWith) -> None:
    run = run_with("a4high", {"llm-serving:platform": {"deletionProtection": True}})
    assert run.one(CLUSTER_TYPE).inputs["deletionProtection"] is True


def test_nodes_run_as_a_dedicated_account_with_minimal_roles(a4high: StackRun) -> None:
    account = a4high.one("gcp:serviceaccount/account:Account")
    assert account.inputs["accountId"] == f"{CLUSTER}-nodes"
    members = a4high.of_type(PROJECT_MEMBER)
    assert sorted(m.inputs["role"] for m in members) == [
        "roles/artifactregistry.reader",
        "roles/logging.logWriter",
        "roles/monitoring.metricWriter",
        "roles/monitoring.viewer",
        "roles/stackdriver.resourceMetadata.writer",
    ]
    email = f"{CLUSTER}-nodes@project.iam.gserviceaccount.com"  # the fake engine's address
    assert {m.inputs["member"] for m in members} == {f"serviceAccount:{email}"}
    assert {m.inputs["project"] for m in members} == {PROJECT}
    pools = by_name(a4high, NODE_POOL)
    assert {p.inputs["nodeConfig"]["serviceAccount"] for p in pools.values()} == {email}
    assert a4high.one(CLUSTER_TYPE).inputs["nodeConfig"]["serviceAccount"] == email
    # Nodes boot only once their roles exist.
    roles = {m.urn for m in members}
    assert roles <= set(a4high.one(CLUSTER_TYPE).depends_on)
    assert all(roles <= set(p.depends_on) for p in pools.values())


def test_system_pool(a4high: StackRun) -> None:
    system = by_name(a4high, NODE_POOL)["system-"].inputs
    assert (system["cluster"], system["location"], system["nodeCount"]) == (CLUSTER, REGION, 1)
    assert system["nodeConfig"]["machineType"] == "e2-standard-8"
    assert system["nodeConfig"]["diskSizeGb"] == 200
    assert system["nodeConfig"]["workloadMetadataConfig"] == {"mode": "GKE_METADATA"}
    assert "taints" not in system["nodeConfig"]


# --- the A4 High pool ----------------------------------------------------------------------


def test_gpu_pool_machine_accelerators_and_driver(a4high: StackRun) -> None:
    pool = gpu_pool(a4high)
    node = pool["nodeConfig"]
    assert (pool["cluster"], pool["location"], pool["nodeLocations"]) == (CLUSTER, REGION, [ZONE])
    assert node["machineType"] == "a4-highgpu-8g"
    assert node["guestAccelerators"] == [
        {"type": "nvidia-b200", "count": 8, "gpuDriverInstallationConfig": {"gpuDriverVersion": "LATEST"}}
    ]
    assert node["imageType"] == "COS_CONTAINERD"
    assert node["gvnic"] == {"enabled": True}


def test_gpu_pool_disks(a4high: StackRun) -> None:
    node = gpu_pool(a4high)["nodeConfig"]
    assert (node["diskType"], node["diskSizeGb"]) == ("hyperdisk-balanced", 200)
    assert node["ephemeralStorageLocalSsdConfig"] == {"localSsdCount": 32}


def test_gpu_pool_taint_and_workload_identity(a4high: StackRun) -> None:
    node = gpu_pool(a4high)["nodeConfig"]
    assert node["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}]
    assert node["workloadMetadataConfig"] == {"mode": "GKE_METADATA"}


def test_gpu_pool_has_nine_additional_nics_in_order(a4high: StackRun) -> None:
    nics = gpu_pool(a4high)["networkConfig"]["additionalNodeNetworkConfigs"]
    assert nics == [
        {"network": f"{CLUSTER}-net-1", "subnetwork": f"{CLUSTER}-sub-1"},
        *({"network": f"{CLUSTER}-rdma-net", "subnetwork": f"{CLUSTER}-rdma-sub-{i}"} for i in range(8)),
    ]


def test_reservation_mode_consumes_the_specific_reservation(a4high: StackRun) -> None:
    pool = gpu_pool(a4high)
    node = pool["nodeConfig"]
    assert node["reservationAffinity"] == {
        "consumeReservationType": "SPECIFIC_RESERVATION",
        "key": "compute.googleapis.com/reservation-name",
        "values": [f"projects/{PROJECT}/reservations/my-a4-reservation"],
    }
    assert pool["nodeCount"] == 1
    assert pool["management"] == {"autoRepair": True, "autoUpgrade": True}
    assert pool["upgradeSettings"] == {"strategy": "SURGE", "maxSurge": 0, "maxUnavailable": 1}
    assert not {"spot", "flexStart"} & set(node)
    assert not {"autoscaling", "placementPolicy", "queuedProvisioning"} & set(pool)


def test_reservation_block_and_compact_placement(run_with: RunWith) -> None:
    pool = gpu_pool(pool_variant(run_with, reservationBlock="block-1", compactPlacement=True))
    assert pool["nodeConfig"]["reservationAffinity"]["values"] == [
        f"projects/{PROJECT}/reservations/my-a4-reservation/reservationBlocks/block-1"
    ]
    assert pool["placementPolicy"] == {"type": "COMPACT"}


@pytest.mark.parametrize(
    ("mode", "node_fields", "pool_fields"),
    [
        ("spot", {"spot": True}, {"nodeCount": 1, "management": {"autoRepair": True, "autoUpgrade": True}}),
        (
            "flex-start",
            {"flexStart": True},
            {
                "autoscaling": {"totalMinNodeCount": 0, "totalMaxNodeCount": 2, "locationPolicy": "ANY"},
                "management": {"autoRepair": False, "autoUpgrade": True},
            },
        ),
        ("on-demand", {}, {"nodeCount": 2, "management": {"autoRepair": True, "autoUpgrade": True}}),
    ],
)
def test_provisioning_modes_without_a_reservation(
    run_with: RunWith, mode: str, node_fields: dict[str, Any], pool_fields: dict[str, Any]
) -> None:
    count = 1 if mode == "spot" else 2
    run = pool_variant(run_with, provisioning=mode, reservation=None, nodeCount=count)
    pool = gpu_pool(run)
    node = pool["nodeConfig"]
    assert node["reservationAffinity"] == {"consumeReservationType": "NO_RESERVATION"}
    assert {k: node.get(k) for k in ("spot", "flexStart")} == {"spot": None, "flexStart": None, **node_fields}
    assert {k: pool[k] for k in pool_fields} == pool_fields
    # Spot, flex-start and reservation affinity are force-new: replaced delete-first.
    assert by_name(run, NODE_POOL)["a4high"].delete_before_replace is True
    if mode == "flex-start":
        assert "nodeCount" not in pool  # the autoscaler owns the count
    assert "queuedProvisioning" not in pool  # a serving Deployment never creates ProvisioningRequests


def test_compact_placement_with_flex_start(run_with: RunWith) -> None:
    pool = gpu_pool(pool_variant(run_with, provisioning="flex-start", reservation=None, compactPlacement=True))
    assert pool["placementPolicy"] == {"type": "COMPACT"}


# --- bucket and registry -------------------------------------------------------------------


def test_bucket_is_private_regional_and_kept_on_destroy(a4high: StackRun) -> None:
    bucket = a4high.one(BUCKET)
    assert bucket.inputs["name"] == f"{CLUSTER}-{PROJECT}-models"
    assert bucket.inputs["location"].lower() == REGION
    assert bucket.inputs["uniformBucketLevelAccess"] is True
    assert bucket.inputs["publicAccessPrevention"] == "enforced"
    assert bucket.retain_on_delete is True
    # A clusterName or region change would replace it: protect makes that `up` fail instead
    # of orphaning 688 GB of weights (or deleting them when not kept).
    assert bucket.protect is True
    assert bucket.inputs["forceDestroy"] is False
    assert not bucket.import_id


def test_bucket_not_kept_is_deleted_with_its_objects(run_with: RunWith) -> None:
    run = run_with("a4high", {"llm-serving:platform": {"modelStore": {"keepOnDestroy": False}}})
    bucket = run.one(BUCKET)
    assert bucket.retain_on_delete is False and bucket.protect is False
    assert bucket.inputs["forceDestroy"] is True


def test_compile_cache_writer_may_only_create_under_its_prefix(a4high: StackRun) -> None:
    """The engine keeps its read-only identity; the uploader's grant is create-only under
    compile-cache/ (an IAM condition, as for chat backups), so it reads no weights and
    overwrites no archive."""
    (binding,) = [r for r in a4high.of_type(BUCKET_MEMBER) if r.inputs["member"].endswith("/sa/compile-cache")]
    assert binding.inputs["role"] == "roles/storage.objectCreator"
    bucket = a4high.outputs["bucket"].removeprefix("gs://")
    assert binding.inputs["condition"] == {
        "title": "compile-cache-only",
        "description": "create objects under compile-cache/ only",
        "expression": f'resource.name.startsWith("projects/_/buckets/{bucket}/objects/compile-cache/")',
    }
    # The chat backup grant kept its title (a changed condition would replace the binding).
    (backup,) = [r for r in a4high.of_type(BUCKET_MEMBER) if r.inputs["member"].endswith("/sa/chat-backup")]
    assert backup.inputs["condition"]["title"] == "chat-backups-only"


def test_bucket_roles_go_to_workload_identity_principals(a4high: StackRun) -> None:
    pool = f"projects/{FAKE_PROJECT_NUMBER}/locations/global/workloadIdentityPools/{PROJECT}.svc.id.goog"
    members = {m.inputs["member"].rsplit("/", 1)[-1]: m for m in a4high.of_type(BUCKET_MEMBER)}
    assert {account: m.inputs["role"] for account, m in members.items()} == {
        "model-reader": "roles/storage.objectViewer",
        "model-writer": "roles/storage.objectUser",
        # create-only, each under its prefix (the conditions: the tests below and tests/test_chat_data.py)
        "chat-backup": "roles/storage.objectCreator",
        "compile-cache": "roles/storage.objectCreator",
    }
    assert all(
        m.inputs["member"] == f"principal://iam.googleapis.com/{pool}/subject/ns/{NAMESPACE}/sa/{account}"
        for account, m in members.items()
    )
    assert {m.inputs["bucket"] for m in members.values()} == {f"{CLUSTER}-{PROJECT}-models"}
    # The cluster creates the project's Workload Identity pool the principals live in.
    cluster = a4high.one(CLUSTER_TYPE).urn
    assert all(cluster in m.depends_on for m in members.values())
    # The project number comes from the explicit provider, not a default one.
    lookup = next(i for i in a4high.invokes if i.token == "gcp:organizations/getProject:getProject")
    assert lookup.args == {"projectId": PROJECT}
    assert lookup.provider.startswith(a4high.one(GCP_PROVIDER).urn)


def test_no_service_account_keys(a4high: StackRun) -> None:
    assert not a4high.of_type("gcp:serviceaccount/key:Key")
    assert not [r for r in a4high.of_type(PROJECT_MEMBER) if "storage" in r.inputs["role"]]


def test_registry_is_a_regional_docker_repository(a4high: StackRun) -> None:
    repository = a4high.one(REPOSITORY).inputs
    assert (repository["format"], repository["location"], repository["repositoryId"]) == (
        "DOCKER",
        REGION,
        CLUSTER,  # named after the cluster: two stacks in one project never share one
    )


def test_bucket_and_registry_are_optional(run_with: RunWith) -> None:
    run = run_with(
        "a4high",
        {
            "llm-serving:platform": {
                "modelStore": {"kind": "none", "keepOnDestroy": None, "backupRetentionDays": None},
                "registry": {"kind": "none"},
            },
            "llm-serving:modelCache": {"enabled": False},
            "llm-serving:serving": {"openWebui": {"backup": {"enabled": False}}},
        },
    )
    assert run.error is None, run.error
    assert not run.of_type(BUCKET) and not run.of_type(BUCKET_MEMBER) and not run.of_type(REPOSITORY)
    assert "bucket" not in run.outputs and "registry_url" not in run.outputs
    platform = platform_of(run)
    assert platform.model_store is None and platform.registry_url is None
    # The service accounts exist either way: workloads name them.
    assert {o["metadata"]["name"] for o in run.kubernetes_objects() if o["kind"] == "ServiceAccount"} == {
        READER_SERVICE_ACCOUNT,
        WRITER_SERVICE_ACCOUNT,
        "chat-backup",
        "compile-cache",
    }


# --- Kubernetes objects --------------------------------------------------------------------


def test_platform_kubernetes_objects_are_schema_valid(a4high: StackRun) -> None:
    kinds = {"Namespace", "ServiceAccount", "GKENetworkParamSet", "Network", "DaemonSet"}
    objects = [o for o in a4high.kubernetes_objects() if o["kind"] in kinds]
    # namespace, service accounts, 9 networks, the RDMA installer and the compile-cache uploader
    assert len(objects) == 1 + 4 + 9 * 2 + 1 + 1
    assert_valid(objects)


def test_network_objects_for_gvnic_1_and_rdma_0_to_7(a4high: StackRun) -> None:
    objects = a4high.kubernetes_objects()
    param_sets = {o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "GKENetworkParamSet"}
    assert param_sets == {
        "gvnic-1": {"vpc": f"{CLUSTER}-net-1", "vpcSubnet": f"{CLUSTER}-sub-1", "deviceMode": "NetDevice"},
        **{
            f"rdma-{i}": {"vpc": f"{CLUSTER}-rdma-net", "vpcSubnet": f"{CLUSTER}-rdma-sub-{i}", "deviceMode": "RDMA"}
            for i in range(8)
        },
    }
    networks = {o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "Network"}
    assert networks == {
        name: {
            "type": "Device",
            "parametersRef": {"group": "networking.gke.io", "kind": "GKENetworkParamSet", "name": name},
        }
        for name in ["gvnic-1", *RDMA_NETWORKS]
    }
    # They name subnets that exist in the stack.
    subnets = by_name(a4high, SUBNETWORK)
    assert all(spec["vpcSubnet"] in subnets for spec in param_sets.values())


def test_gib_installer_daemonset(a4high: StackRun) -> None:
    daemonset = a4high.kubernetes_object("DaemonSet", "nccl-rdma-installer")
    assert daemonset["metadata"]["namespace"] == "kube-system"
    pod = daemonset["spec"]["template"]["spec"]
    (installer,) = pod["initContainers"]
    assert installer["image"] == "us-docker.pkg.dev/gce-ai-infra/gpudirect-gib/nccl-plugin-gib:v1.1.1"
    assert installer["securityContext"] == {"privileged": True}
    script = installer["args"][0]
    assert "/scripts/container_entry.sh install\n" in script and "--install-nccl" not in script
    assert {v["hostPath"]["path"] for v in pod["volumes"]} == {
        "/home/kubernetes/bin/nvidia/lib64",
        "/home/kubernetes/bin/gib",
    }
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [
        {"matchExpressions": [{"key": "cloud.google.com/gke-accelerator", "operator": "In", "values": ["nvidia-b200"]}]}
    ]
    assert pod["tolerations"] == [{"operator": "Exists"}]
    assert pod["containers"][0]["image"].startswith("gke.gcr.io/pause:3.8@sha256:")


def test_gib_version_follows_the_config(run_with: RunWith) -> None:
    run = run_with("a4high", {"llm-serving:platform": {"gibVersion": "v1.0.6"}})
    daemonset = run.kubernetes_object("DaemonSet", "nccl-rdma-installer")
    assert daemonset["spec"]["template"]["spec"]["initContainers"][0]["image"].endswith("nccl-plugin-gib:v1.0.6")


def test_installer_and_network_objects_wait_for_the_gpu_pool_and_vpcs(a4high: StackRun) -> None:
    pool = by_name(a4high, NODE_POOL)["a4high"].urn
    subnets = {r.urn for r in a4high.of_type(SUBNETWORK)}
    component = a4high.one("llm-serving:gcp:RdmaNetworking").urn
    rdma = [r for r in a4high.resources if r.parent == component and r.kubernetes_object]
    assert len(rdma) == 19
    for resource in rdma:
        assert pool in resource.depends_on, resource.name
        assert subnets <= set(resource.depends_on), resource.name


def test_workload_namespace_and_service_accounts(a4high: StackRun) -> None:
    assert a4high.kubernetes_object("Namespace", NAMESPACE)
    for account in (READER_SERVICE_ACCOUNT, WRITER_SERVICE_ACCOUNT):
        obj = a4high.kubernetes_object("ServiceAccount", account)
        assert obj["metadata"]["namespace"] == NAMESPACE
        assert obj["automountServiceAccountToken"] is False
        assert "annotations" not in obj["metadata"]  # principals, not Google service accounts


# --- providers and component tree ----------------------------------------------------------


def test_every_resource_uses_an_explicit_provider(a4high: StackRun) -> None:
    google = a4high.one(GCP_PROVIDER)
    assert (google.inputs["project"], google.inputs["region"]) == (PROJECT, REGION)
    kubernetes = a4high.one(K8S_PROVIDER)
    for resource in a4high.resources:
        if resource.type.startswith("gcp:"):
            assert resource.provider.startswith(google.urn + "::"), resource.name
        elif resource.custom and resource.type.startswith("kubernetes:"):
            assert resource.provider.startswith(kubernetes.urn + "::"), resource.name


def test_every_child_has_its_component_as_parent(a4high: StackRun) -> None:
    platform = "llm-serving:gcp:Platform"
    expected = {
        "llm-serving:gcp:Networks": platform,
        "llm-serving:gcp:ProjectServices": platform,
        "gcp:projects/service:Service": "llm-serving:gcp:ProjectServices",
        "llm-serving:gcp:NodeIdentity": platform,
        "llm-serving:gcp:Cluster": platform,
        "llm-serving:gcp:GpuNodePool": platform,
        "llm-serving:gcp:ModelBucket": platform,
        "llm-serving:gcp:ContainerRegistry": platform,
        "llm-serving:gcp:WorkloadNamespace": platform,
        "llm-serving:gcp:RdmaNetworking": platform,
        GCP_PROVIDER: platform,
        K8S_PROVIDER: platform,
        NETWORK: "llm-serving:gcp:Networks",
        SUBNETWORK: "llm-serving:gcp:Networks",
        FIREWALL: "llm-serving:gcp:Networks",
        "gcp:compute/router:Router": "llm-serving:gcp:Networks",
        "gcp:compute/routerNat:RouterNat": "llm-serving:gcp:Networks",
        "gcp:serviceaccount/account:Account": "llm-serving:gcp:NodeIdentity",
        PROJECT_MEMBER: "llm-serving:gcp:NodeIdentity",
        CLUSTER_TYPE: "llm-serving:gcp:Cluster",
        BUCKET: "llm-serving:gcp:ModelBucket",
        BUCKET_MEMBER: "llm-serving:gcp:ModelBucket",
        REPOSITORY: "llm-serving:gcp:ContainerRegistry",
        # Published by the serving layer through Monitoring.publish_dashboard, owned by the platform.
        "gcp:monitoring/dashboard:Dashboard": "llm-serving:gcp:Platform",
        "kubernetes:core/v1:Namespace": "llm-serving:gcp:WorkloadNamespace",
        "kubernetes:core/v1:ServiceAccount": "llm-serving:gcp:WorkloadNamespace",
        "kubernetes:networking.gke.io/v1:GKENetworkParamSet": "llm-serving:gcp:RdmaNetworking",
        "kubernetes:networking.gke.io/v1:Network": "llm-serving:gcp:RdmaNetworking",
        "kubernetes:apps/v1:DaemonSet": "llm-serving:gcp:RdmaNetworking",
    }
    platform_tree = [r for r in a4high.resources if r.type.startswith(("gcp:", "llm-serving:gcp:", "pulumi:providers"))]
    platform_tree += [r for r in a4high.resources if parent_type(a4high, r) == "llm-serving:gcp:RdmaNetworking"]
    for resource in platform_tree:
        if resource.type == NODE_POOL:
            in_pool = resource.inputs.get("name") == "a4high"
            want = "llm-serving:gcp:GpuNodePool" if in_pool else "llm-serving:gcp:Cluster"
        elif resource.type == platform:
            want = "pulumi:pulumi:Stack"
        else:
            want = expected[resource.type]
        assert parent_type(a4high, resource) == want, resource.name


def test_apis_are_enabled_before_any_google_cloud_resource(a4high: StackRun) -> None:
    services = a4high.of_type("gcp:projects/service:Service")
    assert {r.inputs["service"] for r in services} >= {
        "container.googleapis.com",
        "compute.googleapis.com",
        "storage.googleapis.com",
        "artifactregistry.googleapis.com",
        "iam.googleapis.com",
    }
    assert all(r.inputs["project"] == PROJECT and r.inputs["disableOnDestroy"] is False for r in services)
    urns = {r.urn for r in services}
    others = [r for r in a4high.resources if r.custom and r.type.startswith("gcp:") and r not in services]
    assert others
    for resource in others:
        assert urns <= set(resource.depends_on), resource.name


# --- what workloads get --------------------------------------------------------------------


def test_stack_outputs(a4high: StackRun) -> None:
    outputs = a4high.outputs
    assert {k: outputs[k] for k in ("cluster_name", "cluster_location", "credentials_command", "bucket")} == {
        "cluster_name": CLUSTER,
        "cluster_location": REGION,
        "credentials_command": f"gcloud container clusters get-credentials {CLUSTER} --region {REGION} "
        f"--project {PROJECT}",
        "bucket": f"gs://{CLUSTER}-{PROJECT}-models",
    }
    # The repository is created in the configured project, so its URI names it.
    assert outputs["registry_url"] == f"{REGION}-docker.pkg.dev/{PROJECT}/{CLUSTER}"
    assert "kubeconfig" in a4high.secret_outputs


def test_kubeconfig_authenticates_with_the_gcloud_plugin(a4high: StackRun) -> None:
    kubeconfig = json.loads(a4high.outputs["kubeconfig"])
    (cluster,) = kubeconfig["clusters"]
    assert cluster["cluster"] == {"server": "https://203.0.113.10", "certificate-authority-data": "RkFLRS1DQQ=="}
    (user,) = kubeconfig["users"]
    assert user["user"]["exec"]["command"] == "gke-gcloud-auth-plugin"
    assert "token" not in json.dumps(kubeconfig)
    provider = a4high.one(K8S_PROVIDER)
    assert provider.inputs["kubeconfig"] == a4high.outputs["kubeconfig"]
    assert "kubeconfig" in provider.secret_paths


def test_gpu_nodes_tell_pods_how_to_use_the_a4_high_pool(a4high: StackRun) -> None:
    nodes = platform_of(a4high).gpu_pool("a4high")
    assert (nodes.gpu, nodes.gpus_per_node, nodes.resource_name, nodes.whole_node) == (
        "B200",
        8,
        "nvidia.com/gpu",
        True,
    )
    assert nodes.node_selector == {"cloud.google.com/gke-nodepool": "a4high"}
    assert list(nodes.tolerations) == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "cloud.google.com/impending-node-termination", "operator": "Exists"},
    ]
    assert nodes.shm_gib == 250
    assert nodes.scratch_host_path == "/mnt/stateful_partition/kube-ephemeral-ssd"
    assert {v["name"]: v["hostPath"]["path"] for v in nodes.volumes} == {
        "host-nvidia": "/home/kubernetes/bin/nvidia",
        "host-gib": "/home/kubernetes/bin/gib",
    }
    assert {m["name"]: m["mountPath"] for m in nodes.volume_mounts} == {
        "host-nvidia": "/usr/local/nvidia",
        "host-gib": "/usr/local/gib",
    }
    assert {e["name"]: e["value"] for e in nodes.env} == {"LD_LIBRARY_PATH": "/usr/local/nvidia/lib64"}
    # gIB's settings, then gpu-recipes' A4 overrides after them (a later export wins).
    assert nodes.shell_prelude.rstrip().endswith(
        ". /usr/local/gib/scripts/set_nccl_env.sh\n"
        "export NCCL_SOCKET_IFNAME=eth0,eth1\n"
        "export NCCL_TUNER_CONFIG_PATH=/usr/local/gib/configs/tuner_config_a4.txtpb"
    )
    assert nodes.fabric == "rdma"
    assert dict(nodes.pod_resources) == {}  # the RDMA NICs come with the node's annotations
    # A node without gIB after the wait fails the container instead of serving without RDMA.
    assert 'echo "gIB is not installed on this node" >&2; exit 1' in nodes.shell_prelude


def test_a_pod_built_from_the_gpu_nodes_is_schema_valid(a4high: StackRun) -> None:
    nodes = platform_of(a4high).gpu_pool()
    container = {
        "name": "engine",
        "image": "vllm/vllm-openai",
        "command": ["/bin/sh", "-c", nodes.shell_prelude + "exec vllm serve"],
        "env": list(nodes.env),
        "volumeMounts": list(nodes.volume_mounts),
        "resources": {"limits": {nodes.resource_name: nodes.gpus_per_node}},
    }
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "engine", "annotations": dict(nodes.pod_annotations)},
        "spec": {
            "nodeSelector": dict(nodes.node_selector),
            "tolerations": list(nodes.tolerations),
            "volumes": list(nodes.volumes),
            "containers": [container],
        },
    }
    assert_valid([pod])


def test_pods_get_one_interface_per_network(a4high: StackRun) -> None:
    annotations = platform_of(a4high).gpu_pool().pod_annotations
    assert annotations["networking.gke.io/default-interface"] == "eth0"
    interfaces = json.loads(annotations["networking.gke.io/interfaces"])
    assert interfaces == [
        {"interfaceName": f"eth{i}", "network": network}
        for i, network in enumerate(["default", "gvnic-1", *RDMA_NETWORKS])
    ]
    # Every network a pod asks for exists (GKE creates "default").
    declared = {o["metadata"]["name"] for o in a4high.kubernetes_objects() if o["kind"] == "Network"}
    assert {i["network"] for i in interfaces} - declared == {"default"}


def test_platform_contract(a4high: StackRun) -> None:
    platform = platform_of(a4high)
    assert (platform.cloud, platform.cluster_name, platform.location, platform.namespace) == (
        "gcp",
        CLUSTER,
        REGION,
        NAMESPACE,
    )
    store = platform.model_store
    assert store is not None
    assert (store.scheme, store.fuse_csi_driver) == ("gs", "gcsfuse.csi.storage.gke.io")
    assert (store.reader_service_account, store.writer_service_account) == (
        READER_SERVICE_ACCOUNT,
        WRITER_SERVICE_ACCOUNT,
    )
    assert platform.load_balancing.annotations(internal=True) == {"networking.gke.io/load-balancer-type": "Internal"}
    assert platform.load_balancing.annotations(internal=False) == {}
    assert platform.storage_class == "standard-rwo"
    retained = platform.retained_storage_class
    assert retained is not None and retained["reclaimPolicy"] == "Retain"
    assert (retained["provisioner"], retained["parameters"]) == ("pd.csi.storage.gke.io", {"type": "pd-balanced"})
    assert platform.registry_url is not None
    ready = sorted(r.pulumi_resource_type for r in platform.ready)
    assert ready == sorted(
        [
            "kubernetes:core/v1:Namespace",
            *["kubernetes:core/v1:ServiceAccount"] * 4,  # reader, writer, chat backup, compile cache
            *[BUCKET_MEMBER] * 4,
            *["kubernetes:networking.gke.io/v1:GKENetworkParamSet", "kubernetes:networking.gke.io/v1:Network"] * 9,
            "kubernetes:apps/v1:DaemonSet",
        ]
    )


# --- bad input: a clear error and nothing created ------------------------------------------


@pytest.mark.parametrize(
    ("changes", "key", "says"),
    [
        ({"llm-serving:platform": {"zone": "europe-west4-b"}}, "platform.zone", "must be a zone of region"),
        (
            {"llm-serving:platform": {"gpuPool": {"reservation": None}}},
            "platform.gpuPool.reservation",
            "needs the name of a specific reservation",
        ),
        (
            {"llm-serving:platform": {"gpuPool": {"provisioning": "spot"}}},
            "platform.gpuPool.reservation",
            "provisioning 'spot' cannot consume a reservation",
        ),
        (
            {"llm-serving:platform": {"gpuPool": {"provisioning": "flex-start"}}},
            "platform.gpuPool.reservation",
            "provisioning 'flex-start' cannot consume a reservation",
        ),
        ({"llm-serving:platform": {"clusterName": "LLM_Serving"}}, "platform.clusterName", "must be lowercase letters"),
        (
            {"llm-serving:platform": {"clusterName": "a-name-that-is-too-long"}},
            "platform.clusterName",
            "at most 15 characters",
        ),
        ({"llm-serving:serving": {"tensorParallelSize": 3}}, "serving.tensorParallelSize", "must divide the 8 GPUs"),
        (
            {"llm-serving:platform": {"minMasterVersion": "1.32.4-gke.1236000"}},
            "platform.minMasterVersion",
            "replaced by platform.versionPrefix: give a GKE minor such as '1.32.'",
        ),
        (
            {"llm-serving:platform": {"versionPrefix": "1.31."}},
            "platform.versionPrefix",
            "older than GKE 1.32.4-gke.1236000, the first version with B200 and GPUDirect RDMA",
        ),
        ({"llm-serving:platform": {"versionPrefix": 1.35}}, "platform.versionPrefix", "in quotes followed by a dot"),
        ({"llm-serving:platform": {"versionPrefix": "1.35"}}, "platform.versionPrefix", "in quotes followed by a dot"),
        (
            {"llm-serving:platform": {"gpuPool": {"driverVersion": "DEFAULT"}}},
            "platform.gpuPool.driverVersion",
            "needs NVIDIA driver >= 580.65.06, but no record says which driver GKE 1.35 installs as DEFAULT",
        ),
        (
            {"llm-serving:platform": {"versionPrefix": "1.33."}},
            "platform.gpuPool.driverVersion",
            "the driver recorded for LATEST on GKE 1.32 and later is 570.133.20",
        ),
        (
            {"llm-serving:platform": {"maintenance": {"windowEnd": "2026-01-03T04:00:00Z"}}},
            "platform.maintenance.windowEnd",
            "must be 4 to 24 hours after windowStart",
        ),
        (
            {"llm-serving:platform": {"maintenance": {"recurrence": "FREQ=WEEKLY;BYDAY=SU"}}},
            "platform.maintenance.recurrence",
            "windows of 8 hours give 32 hours in some 32 days; GKE needs at least 48",
        ),
        (
            {"llm-serving:platform": {"maintenance": {"recurrence": "FREQ=MONTHLY"}}},
            "platform.maintenance.recurrence",
            "must be FREQ=DAILY or FREQ=WEEKLY;BYDAY=",
        ),
        (
            {"llm-serving:platform": {"maintenance": {"windowStart": "2026-01-03 02:00"}}},
            "platform.maintenance.windowStart",
            "a UTC time in RFC 3339 form",
        ),
    ],
)
def test_bad_input_is_a_config_error_and_creates_nothing(
    run_with: RunWith, changes: dict[str, Any], key: str, says: str
) -> None:
    run = run_with("a4high", changes)
    assert run.error is not None
    message = str(run.error)
    assert "invalid stack configuration" in message
    assert f"llm-serving:{key} = " in message and says in message
    assert run.resources == []


# --- GKE version: a minor prefix resolved at deploy time, a floor, no drift ----------------

ENGINE_VERSIONS = "gcp:container/getEngineVersions:getEngineVersions"


def test_version_prefix_is_resolved_through_gke_and_later_drift_ignored(a4high: StackRun) -> None:
    (lookup,) = [i for i in a4high.invokes if i.token == ENGINE_VERSIONS]
    # The region's versions (a regional cluster), the stack's project, through its provider.
    assert lookup.args == {"location": REGION, "project": PROJECT, "versionPrefix": "1.35."}
    assert lookup.provider.startswith(a4high.one(GCP_PROVIDER).urn)
    cluster = a4high.one(CLUSTER_TYPE)
    assert cluster.inputs["minMasterVersion"] == "1.35.8-gke.1036000"
    # A newer patch offered later (or GKE's own upgrade) is not a diff.
    assert "minMasterVersion" in cluster.ignore_changes


def test_a_newer_prefix_follows_the_config(run_with: RunWith) -> None:
    run = run_with("a4high", {"llm-serving:platform": {"versionPrefix": "1.36."}})
    assert run.error is None, run.error
    assert run.one(CLUSTER_TYPE).inputs["minMasterVersion"] == "1.36.8-gke.1036000"


def test_master_version_takes_the_channel_newest_and_refuses_below_the_floor() -> None:
    latest = {"REGULAR": "1.35.8-gke.1036000", "RAPID": "1.35.9-gke.100"}
    assert master_version("1.35.", "REGULAR", latest) == "1.35.8-gke.1036000"
    assert master_version("1.35.", "RAPID", latest) == "1.35.9-gke.100"
    with pytest.raises(ValueError, match=r"older than 1\.32\.4-gke\.1236000"):
        master_version("1.32.", "REGULAR", {"REGULAR": "1.32.1-gke.1420000"})
    # A channel without the minor: GKE would refuse any version outside the channel.
    with pytest.raises(ValueError, match=r"GKE offers no 1\.37\.x version in the STABLE channel"):
        master_version("1.37.", "STABLE", latest)


# --- the driver GKE installs against the image's CUDA --------------------------------------


def test_default_driver_latest_on_1_35_runs_the_cuda_13_image(a4high: StackRun) -> None:
    assert catalog.VLLM_IMAGE.cuda is not None and catalog.VLLM_IMAGE.cuda.cuda == "13.0"
    assert gpu_pool(a4high)["nodeConfig"]["guestAccelerators"][0]["gpuDriverInstallationConfig"] == {
        "gpuDriverVersion": "LATEST"
    }
    record = catalog.b200_driver(35, "LATEST")
    assert record is not None
    assert catalog.version_tuple(record.driver) >= catalog.version_tuple(catalog.VLLM_IMAGE.cuda.min_driver)


def test_a_custom_image_is_left_to_the_engine_start_check(run_with: RunWith) -> None:
    run = run_with(
        "a4high",
        {
            "llm-serving:platform": {"gpuPool": {"driverVersion": "DEFAULT"}},
            "llm-serving:serving": {"image": "vllm/vllm-openai:v0.33.0-cu129"},
        },
    )
    assert run.error is None, run.error
    pool = gpu_pool(run)
    assert pool["nodeConfig"]["guestAccelerators"][0]["gpuDriverInstallationConfig"] == {"gpuDriverVersion": "DEFAULT"}
    # The driver config is force-new (gcp-a4high.md §7.5): the pool is replaced delete-first.
    assert by_name(run, NODE_POOL)["a4high"].delete_before_replace is True


# --- maintenance ---------------------------------------------------------------------------


def test_weekend_window_and_no_automatic_minor_or_node_upgrades(a4high: StackRun) -> None:
    policy = a4high.one(CLUSTER_TYPE).inputs["maintenancePolicy"]
    assert policy["recurringWindow"] == {
        "startTime": "2026-01-03T02:00:00Z",
        "endTime": "2026-01-03T10:00:00Z",
        "recurrence": "FREQ=WEEKLY;BYDAY=SA,SU",
    }
    assert policy["maintenanceExclusions"] == [
        {
            "exclusionName": "no-minor-or-node-upgrades",
            "startTime": "2026-01-01T00:00:00Z",
            "exclusionOptions": {"scope": "NO_MINOR_OR_NODE_UPGRADES", "endTimeBehavior": "UNTIL_END_OF_SUPPORT"},
        }
    ]


def test_maintenance_is_configurable(run_with: RunWith) -> None:
    maintenance = {
        "windowStart": "2026-02-02T22:00:00Z",
        "windowEnd": "2026-02-03T02:00:00Z",
        "recurrence": "FREQ=DAILY",
        "holdMinorAndNodeUpgrades": False,
    }
    run = run_with("a4high", {"llm-serving:platform": {"maintenance": maintenance}})
    assert run.error is None, run.error
    policy = run.one(CLUSTER_TYPE).inputs["maintenancePolicy"]
    assert policy["recurringWindow"]["recurrence"] == "FREQ=DAILY"
    assert "maintenanceExclusions" not in policy


# --- smaller GKE items ---------------------------------------------------------------------


def test_local_ssd_drift_does_not_replace_the_gpu_pool(a4high: StackRun) -> None:
    pool = by_name(a4high, NODE_POOL)["a4high"]
    assert pool.ignore_changes == ["nodeConfig.ephemeralStorageLocalSsdConfig"]
    assert pool.inputs["nodeConfig"]["ephemeralStorageLocalSsdConfig"] == {"localSsdCount": 32}


def test_cloud_nat_allocates_ports_dynamically(a4high: StackRun) -> None:
    nat = a4high.one("gcp:compute/routerNat:RouterNat").inputs
    assert (nat["enableDynamicPortAllocation"], nat["minPortsPerVm"], nat["maxPortsPerVm"]) == (True, 1024, 65536)
    # The API's rules: powers of two, 32 <= min < max <= 65536.
    assert nat["minPortsPerVm"] >= 32 and nat["maxPortsPerVm"] <= 65536
    assert all(v & (v - 1) == 0 for v in (nat["minPortsPerVm"], nat["maxPortsPerVm"]))


def test_engine_pods_tolerate_impending_termination_and_get_the_machine_shm(a4high: StackRun) -> None:
    pod = a4high.kubernetes_object("Deployment", "vllm")["spec"]["template"]["spec"]
    assert {"key": "cloud.google.com/impending-node-termination", "operator": "Exists"} in pod["tolerations"]
    dshm = next(v for v in pod["volumes"] if v["name"] == "dshm")
    assert dshm["emptyDir"] == {"medium": "Memory", "sizeLimit": "250Gi"}  # every A4 reference


def test_one_gpu_aws_nodes_get_a_small_shm(eks: StackRun) -> None:
    # The eks stack's g5 pool starts at g5.2xlarge (32 GiB): an eighth, not 16 GiB per GPU.
    (service,) = [o for o in eks.kubernetes_objects() if o["kind"] == "RayService"]
    (workers,) = service["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    dshm = next(v for v in workers["template"]["spec"]["volumes"] if v["name"] == "dshm")
    assert dshm["emptyDir"]["sizeLimit"] == "4Gi"


def test_every_machine_has_a_shm_size_within_its_memory() -> None:
    for machine in catalog.MACHINES.values():
        assert 1 <= machine.shm_gib <= 250, machine.name
        if machine.memory_gib:
            assert machine.shm_gib <= machine.memory_gib // 4, machine.name
    assert catalog.MACHINES["a4-highgpu-8g"].shm_gib == catalog.MACHINES["a3-ultragpu-8g"].shm_gib == 250


# --- fixed names: a force-new change deletes before it creates -----------------------------


def test_fixed_name_resources_are_replaced_delete_first(a4high: StackRun) -> None:
    fixed = [
        *a4high.of_type(NETWORK),
        *a4high.of_type(SUBNETWORK),
        *a4high.of_type(FIREWALL),
        a4high.one("gcp:compute/router:Router"),
        a4high.one("gcp:compute/routerNat:RouterNat"),
        a4high.one(CLUSTER_TYPE),
        by_name(a4high, NODE_POOL)["a4high"],
    ]
    assert len(fixed) == 3 + 10 + 2 + 2 + 2
    assert all(r.delete_before_replace for r in fixed), [r.name for r in fixed if not r.delete_before_replace]


def test_system_pool_gets_a_unique_name_so_it_is_replaced_create_first(a4high: StackRun) -> None:
    system = by_name(a4high, NODE_POOL)["system-"]
    assert "name" not in system.inputs and system.inputs["namePrefix"] == "system-"
    assert system.delete_before_replace is False


def test_a_machine_type_change_replaces_the_gpu_pool_delete_first(run_with: RunWith) -> None:
    run = pool_variant(run_with, machineType="a3-ultragpu-8g")  # node_config.machine_type is force-new
    pool = by_name(run, NODE_POOL)["a4high"]
    assert pool.inputs["nodeConfig"]["machineType"] == "a3-ultragpu-8g"
    assert pool.delete_before_replace is True
    assert pool.inputs["name"] == "a4high"  # still the fixed name workloads select


def test_each_force_new_network_change_replaces_delete_first(run_with: RunWith) -> None:
    changes = {
        "zone": "us-central1-c",  # the RDMA VPC's network_profile is create-only
        "network": {
            "rdma": "192.168.192.0/18",  # subnet ranges that do not contain the old ones
            "secondarySubnet": "192.168.96.0/19",
            "pods": "10.8.0.0/14",  # secondary ranges
            "controlPlane": "172.16.0.48/28",  # the cluster's master range
        },
    }
    run = run_with("a4high", {"llm-serving:platform": changes})
    assert run.error is None, run.error
    networks, subnets = by_name(run, NETWORK), by_name(run, SUBNETWORK)
    assert networks[f"{CLUSTER}-rdma-net"].inputs["networkProfile"].endswith("us-central1-c-vpc-roce")
    assert subnets[f"{CLUSTER}-rdma-sub-0"].inputs["ipCidrRange"] == "192.168.192.0/21"
    changed = [
        networks[f"{CLUSTER}-rdma-net"],
        subnets[f"{CLUSTER}-rdma-sub-0"],
        subnets[f"{CLUSTER}-sub-1"],
        subnets[f"{CLUSTER}-sub-0"],
        run.one(CLUSTER_TYPE),
    ]
    assert all(r.delete_before_replace for r in changed)


# --- Docker Hub mirror (registry kind mirror) -------------------------------------------------

MIRROR_SECRET = "projects/secrets-project/secrets/docker-hub/versions/3"
MIRROR_CONFIG = {
    "llm-serving:platform": {
        "registry": {"kind": "mirror", "credentials": {"username": "mydockerid", "secret": MIRROR_SECRET}}
    }
}
MIRROR_URL = f"{REGION}-docker.pkg.dev/{PROJECT}/{CLUSTER}-docker-hub"


@pytest.fixture(scope="module")
def mirrored_run() -> StackRun:
    return run_stack("a4high", MIRROR_CONFIG)


def test_mirror_is_a_remote_repository_of_docker_hub(mirrored_run: StackRun) -> None:
    (repository,) = mirrored_run.of_type(REPOSITORY)  # instead of the stack's own repository
    assert repository.inputs["mode"] == "REMOTE_REPOSITORY" and repository.inputs["format"] == "DOCKER"
    assert repository.inputs["location"] == REGION and repository.inputs["repositoryId"] == f"{CLUSTER}-docker-hub"
    remote = repository.inputs["remoteRepositoryConfig"]
    assert remote["dockerRepository"] == {"publicRepository": "DOCKER_HUB"}
    assert remote["upstreamCredentials"] == {
        "usernamePasswordCredentials": {"username": "mydockerid", "passwordSecretVersion": MIRROR_SECRET}
    }
    assert mirrored_run.outputs["image_mirror"] == MIRROR_URL and "registry_url" not in mirrored_run.outputs


def test_only_artifact_registry_reads_the_docker_hub_token(mirrored_run: StackRun) -> None:
    (member,) = mirrored_run.of_type("gcp:secretmanager/secretIamMember:SecretIamMember")
    assert member.inputs == {
        "project": "secrets-project",
        "secretId": "docker-hub",
        "role": "roles/secretmanager.secretAccessor",
        "member": f"serviceAccount:service-{FAKE_PROJECT_NUMBER}@gcp-sa-artifactregistry.iam.gserviceaccount.com",
    }
    (repository,) = mirrored_run.of_type(REPOSITORY)
    assert member.urn in repository.depends_on  # the agent can read the token before validation


def test_anonymous_mirror_grants_nothing_on_secrets(run_with: RunWith) -> None:
    run = run_with("a4high", {"llm-serving:platform": {"registry": {"kind": "mirror"}}})
    (repository,) = run.of_type(REPOSITORY)
    assert "upstreamCredentials" not in repository.inputs["remoteRepositoryConfig"]
    assert not run.of_type("gcp:secretmanager/secretIamMember:SecretIamMember")


def test_gpu_pool_streams_images_from_the_mirror(mirrored_run: StackRun, a4high: StackRun) -> None:
    assert gpu_pool(mirrored_run)["nodeConfig"]["gcfsConfig"] == {"enabled": True}
    assert gpu_pool(mirrored_run)["nodeConfig"]["imageType"] == "COS_CONTAINERD"  # streaming needs it
    system = [r for r in mirrored_run.of_type(NODE_POOL) if r.inputs.get("name") != "a4high"]
    assert system and all("gcfsConfig" not in r.inputs.get("nodeConfig", {}) for r in system)
    assert "gcfsConfig" not in gpu_pool(a4high)["nodeConfig"]  # without the mirror, nothing changes
    services = {r.inputs["service"] for r in mirrored_run.of_type("gcp:projects/service:Service")}
    assert "containerfilesystem.googleapis.com" in services
    roles = {r.inputs["role"] for r in mirrored_run.of_type(PROJECT_MEMBER)}
    assert {"roles/serviceusage.serviceUsageConsumer", "roles/artifactregistry.reader"} <= roles


def test_docker_hub_images_are_pulled_through_the_mirror(mirrored_run: StackRun) -> None:
    objects = mirrored_run.kubernetes_objects()
    assert_valid(objects)

    def images(kind: str, name: str) -> set[str]:
        text = json.dumps(mirrored_run.kubernetes_object(kind, name))
        return {part.split('"')[0] for part in text.split('"image": "')[1:]}

    vllm = f"{MIRROR_URL}/{catalog.VLLM_IMAGE.repository}:{catalog.VLLM_IMAGE.tag}"
    assert vllm in images("Deployment", "vllm") and vllm in images("Job", "model-cache")
    assert catalog.VLLM_IMAGE.ref not in images("Deployment", "vllm")
    assert images("Deployment", "open-webui") == {catalog.OPEN_WEBUI_IMAGE.ref}  # ghcr.io: left as it is
    assert catalog.GCLOUD_CLI_IMAGE.ref in images("Job", "model-cache")  # gcr.io: left as it is
    assert mirrored_run.outputs["engine"]["image"] == vllm
    mirror = platform_of(mirrored_run).image_mirror
    assert mirror is not None and (mirror.prefix, mirror.streaming) == (MIRROR_URL, True)
