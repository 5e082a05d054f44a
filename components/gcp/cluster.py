"""The GKE Standard cluster and its small system pool (gcp-a4high.md §2).

Settings that cannot change after creation are fixed here rather than configurable:
Dataplane V2 and multi-networking (the RDMA NICs need both, §7.6), VPC-native
addressing from net-0's named ranges, and Workload Identity. The control plane has a
public endpoint that only ``masterAuthorizedNetworks`` may reach (no open default);
nodes have no public addresses.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from components import catalog
from components.config import GcpMaintenanceConfig, GcpPlatformConfig
from components.gcp.identity import NODE_OAUTH_SCOPES, workload_pool
from components.gcp.network import POD_RANGE, SERVICE_RANGE
from components.gcp.options import child_options

SYSTEM_POOL = "system"
NODE_IMAGE = "COS_CONTAINERD"  # COS is the only image with gVNIC + GPUDirect RDMA (gcp-a4high.md §7.8)
# On every node: the GKE metadata server, so pods authenticate as their Kubernetes service
# account (Workload Identity, gcp-a4high.md §2), and Shielded VM secure boot with
# integrity monitoring (§3, "misc").
NODE_WORKLOAD_METADATA = gcp.container.NodePoolNodeConfigWorkloadMetadataConfigArgs(mode="GKE_METADATA")
NODE_SHIELDED_INSTANCE = gcp.container.NodePoolNodeConfigShieldedInstanceConfigArgs(
    enable_secure_boot=True, enable_integrity_monitoring=True
)

# kubectl (and the Pulumi Kubernetes provider) authenticate through gcloud's credential
# plugin, so no token lands in the kubeconfig or the state. Same exec entry as
# `gcloud container clusters get-credentials` writes:
# https://cloud.google.com/kubernetes-engine/docs/how-to/cluster-access-for-kubectl#install_plugin
AUTH_PLUGIN = "gke-gcloud-auth-plugin"
AUTH_PLUGIN_API = "client.authentication.k8s.io/v1beta1"


def kubeconfig(context: str, endpoint: str, ca_certificate: str) -> str:
    """A kubeconfig (JSON) for the cluster's public endpoint, authenticating with
    ``gke-gcloud-auth-plugin``. ``ca_certificate`` is base64, as GKE returns it."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": context,
            "clusters": [
                {
                    "name": context,
                    "cluster": {"server": f"https://{endpoint}", "certificate-authority-data": ca_certificate},
                }
            ],
            "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
            "users": [
                {
                    "name": context,
                    "user": {
                        "exec": {
                            "apiVersion": AUTH_PLUGIN_API,
                            "command": AUTH_PLUGIN,
                            "provideClusterInfo": True,
                            "installHint": "Install gke-gcloud-auth-plugin: https://cloud.google.com/kubernetes-engine"
                            "/docs/how-to/cluster-access-for-kubectl#install_plugin",
                        }
                    },
                }
            ],
        }
    )


def context_name(project: str, location: str, cluster: str) -> str:
    """The context name `gcloud container clusters get-credentials` uses, so the two merge."""
    return f"gke_{project}_{location}_{cluster}"


def master_version(prefix: str, channel: str, channel_latest: Mapping[str, str] | None) -> str:
    """The version a new cluster is created with: the newest version of ``prefix`` that
    the release channel offers. The provider fills ``release_channel_latest_version``
    with, per channel, the first of its valid versions that starts with the prefix
    (terraform-provider-google data_source_google_container_engine_versions.go), as
    cluster-toolkit modules/scheduler/gke-cluster/main.tf @1047080 uses it. The toolkit
    falls back to the location's newest version when the channel has none; GKE refuses a
    version outside the cluster's channel, so this says so instead. Refused below the
    B200 + GPUDirect RDMA floor."""
    version = (channel_latest or {}).get(channel)
    if not version or not version.startswith(prefix):
        raise ValueError(
            f"GKE offers no {prefix}x version in the {channel} channel here; set platform.versionPrefix to a "
            "minor the channel offers (`gcloud container get-server-config --region <region>`)"
        )
    floor = catalog.GKE_B200_RDMA_FLOOR
    if catalog.version_tuple(version) < catalog.version_tuple(floor):
        raise ValueError(
            f"GKE {version} (newest of {prefix}x in {channel}) is older than {floor}, the first version with B200 "
            "and GPUDirect RDMA; set platform.versionPrefix to a newer minor"
        )
    return version


def maintenance_policy(config: GcpMaintenanceConfig) -> gcp.container.ClusterMaintenancePolicyArgs:
    """A recurring window, and (by default) no automatic minor or node upgrades until the
    minor's end of support: the toolkit's A4 exclusion (cluster-toolkit
    examples/gke-a4/gke-a4.yaml @1047080; GKE maintenance-windows-and-exclusions)."""
    exclusions = (
        [
            gcp.container.ClusterMaintenancePolicyMaintenanceExclusionArgs(
                exclusion_name="no-minor-or-node-upgrades",
                start_time=config.hold_since,
                exclusion_options=gcp.container.ClusterMaintenancePolicyMaintenanceExclusionExclusionOptionsArgs(
                    scope=catalog.GKE_EXCLUSION_SCOPE, end_time_behavior=catalog.GKE_EXCLUSION_END
                ),
            )
        ]
        if config.hold_minor_and_node_upgrades
        else None
    )
    return gcp.container.ClusterMaintenancePolicyArgs(
        recurring_window=gcp.container.ClusterMaintenancePolicyRecurringWindowArgs(
            start_time=config.window_start, end_time=config.window_end, recurrence=config.recurrence
        ),
        maintenance_exclusions=exclusions,
    )


@dataclass(frozen=True)
class GkeClusterArgs:
    config: GcpPlatformConfig
    network: pulumi.Input[str]  # net-0
    subnetwork: pulumi.Input[str]
    node_service_account: pulumi.Input[str]


class GkeCluster(pulumi.ComponentResource):
    """A regional GKE Standard cluster for RDMA node pools, with a CPU system pool."""

    cluster: gcp.container.Cluster
    name: pulumi.Output[str]
    location: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]  # secret

    def __init__(self, name: str, args: GkeClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llm-serving:gcp:Cluster", name, None, opts)
        config = args.config
        child = child_options(self, opts)

        # Resolved at deploy time from what GKE offers now (an exact patch would be
        # withdrawn by GKE within months; gcp-a4high.md §2, audit gcp.md finding 1).
        offered = gcp.container.get_engine_versions_output(
            location=config.region,  # regional cluster: the region's versions, not a zone's
            project=config.project,
            version_prefix=config.version_prefix,
            opts=pulumi.InvokeOutputOptions(parent=self),
        )
        version = offered.release_channel_latest_version.apply(
            lambda latest: master_version(config.version_prefix, config.release_channel, latest)
        )

        self.cluster = gcp.container.Cluster(
            name,
            name=config.cluster_name,
            location=config.region,  # regional control plane; the GPU pool pins one zone
            network=args.network,
            subnetwork=args.subnetwork,
            networking_mode="VPC_NATIVE",
            ip_allocation_policy=gcp.container.ClusterIpAllocationPolicyArgs(
                cluster_secondary_range_name=POD_RANGE,
                services_secondary_range_name=SERVICE_RANGE,
            ),
            # Immutable, and required by multi-networking (gcp-a4high.md §2, §7.6).
            datapath_provider="ADVANCED_DATAPATH",
            enable_multi_networking=True,
            workload_identity_config=gcp.container.ClusterWorkloadIdentityConfigArgs(
                workload_pool=workload_pool(config.project)
            ),
            addons_config=gcp.container.ClusterAddonsConfigArgs(
                # Pods mount the model bucket (gcp-a4high.md §2, §7.10).
                gcs_fuse_csi_driver_config=gcp.container.ClusterAddonsConfigGcsFuseCsiDriverConfigArgs(enabled=True),
                # Backs the `standard-rwo` StorageClass of PersistentVolumeClaims.
                gce_persistent_disk_csi_driver_config=gcp.container.ClusterAddonsConfigGcePersistentDiskCsiDriverConfigArgs(
                    enabled=True
                ),
            ),
            # GPU metrics from DCGM into Managed Service for Prometheus (gcp-a4high.md §2).
            monitoring_config=gcp.container.ClusterMonitoringConfigArgs(
                enable_components=["SYSTEM_COMPONENTS", "DCGM"],
                managed_prometheus=gcp.container.ClusterMonitoringConfigManagedPrometheusArgs(enabled=True),
            ),
            private_cluster_config=gcp.container.ClusterPrivateClusterConfigArgs(
                enable_private_nodes=True,
                # Pulumi applies Kubernetes objects from outside the VPC, through the public
                # endpoint that the authorized networks guard (gcp-a4high.md §2, §7.13).
                enable_private_endpoint=False,
                master_ipv4_cidr_block=str(config.network.control_plane),
            ),
            master_authorized_networks_config=gcp.container.ClusterMasterAuthorizedNetworksConfigArgs(
                cidr_blocks=[
                    gcp.container.ClusterMasterAuthorizedNetworksConfigCidrBlockArgs(
                        cidr_block=str(network.cidr), display_name=network.name
                    )
                    for network in config.master_authorized_networks
                ],
                # Only the listed ranges; not every Google Cloud address (Cloud Shell, other projects' VMs).
                gcp_public_cidrs_access_enabled=False,
            ),
            release_channel=gcp.container.ClusterReleaseChannelArgs(channel=config.release_channel),
            min_master_version=version,
            maintenance_policy=maintenance_policy(config.maintenance),
            # The default pool cannot be configured like ours; GKE needs it to exist for a
            # moment, so it boots with our node account rather than the Compute default.
            remove_default_node_pool=True,
            initial_node_count=1,
            node_config=gcp.container.ClusterNodeConfigArgs(
                service_account=args.node_service_account, oauth_scopes=NODE_OAUTH_SCOPES
            ),
            deletion_protection=config.deletion_protection,
            # node_config describes only that short-lived default pool: never diff on it
            # (a change to it would replace the cluster). min_master_version is where the
            # cluster started: GKE (maintenance) or you upgrade it from there, and a newer
            # patch offered later must not show as a change (toolkit gke-cluster main.tf).
            # A force-new change replaces the cluster under its fixed name: delete first,
            # or GKE answers 409 "already exists" (audit reliability.md finding 3).
            opts=child_options(
                self, opts, ignore_changes=["nodeConfig", "minMasterVersion"], delete_before_replace=True
            ),
        )

        system = config.system_pool
        self.system_pool = gcp.container.NodePool(
            f"{name}-{SYSTEM_POOL}",
            # A generated name (prefix + unique suffix): a force-new change (machine type,
            # disk) then creates the new pool before deleting the old one, so system pods,
            # KubeRay and Open WebUI move over instead of waiting for an empty cluster. No
            # workload selects this pool by name.
            name_prefix=f"{SYSTEM_POOL}-",
            cluster=self.cluster.name,
            location=config.region,
            node_count=system.nodes_per_zone,  # in each of the region's default zones
            management=gcp.container.NodePoolManagementArgs(auto_repair=True, auto_upgrade=True),
            node_config=gcp.container.NodePoolNodeConfigArgs(
                machine_type=system.machine_type,
                disk_size_gb=system.disk_size_gb,
                image_type=NODE_IMAGE,
                service_account=args.node_service_account,
                oauth_scopes=NODE_OAUTH_SCOPES,
                workload_metadata_config=NODE_WORKLOAD_METADATA,
                shielded_instance_config=NODE_SHIELDED_INSTANCE,
            ),
            opts=child,
        )

        self.name = self.cluster.name
        self.location = self.cluster.location
        context = context_name(config.project, config.region, config.cluster_name)
        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(self.cluster.endpoint, self.cluster.master_auth.cluster_ca_certificate).apply(
                lambda values: kubeconfig(context, str(values[0]), str(values[1]))
            )
        )
        self.register_outputs(
            {
                "name": self.name,
                "location": self.location,
                "endpoint": self.cluster.endpoint,
                "kubeconfig": self.kubeconfig,
            }
        )
