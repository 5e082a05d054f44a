"""The A4 High node pool, and how workloads land on it (gcp-a4high.md §3, §7).

One zone (the RoCE profile's, which is also the reservation's), COS with gVNIC, GPU
driver installed by GKE at a pinned version, Hyperdisk boot disk, the local SSDs as
ephemeral storage, and nine additional NICs: net-1, then the eight RDMA subnets.

How the pool gets its machines is the stack's ``provisioning``:

* ``reservation``: consume exactly the named (specific) reservation, or one of its blocks.
* ``spot``: Spot VMs, never a reservation.
* ``flex-start``: Dynamic Workload Scheduler VMs; the autoscaler adds nodes (from 0 up to
  ``nodeCount``) when a GPU pod is pending, and a VM runs at most seven days
  (https://cloud.google.com/kubernetes-engine/docs/concepts/dws). Without queued
  provisioning: that mode only serves ProvisioningRequests (Kueue), which a serving
  Deployment never creates; Google points single-node workloads to plain flex-start
  (https://cloud.google.com/kubernetes-engine/docs/how-to/provisioningrequest).
* ``on-demand``: ordinary VMs; no reservation is consumed, so none is used up by surprise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from components.config import GcpGpuPoolConfig, GcpPlatformConfig
from components.gcp.cluster import NODE_IMAGE, NODE_SHIELDED_INSTANCE, NODE_WORKLOAD_METADATA
from components.gcp.identity import NODE_OAUTH_SCOPES
from components.gcp.network import AttachedNic
from components.gcp.options import child_options
from components.gcp.rdma import PodWiring
from components.platform import GpuNodes, Manifest

# Every GPU pool is tainted so only pods that tolerate it land there (gcp-a4high.md §3).
GPU_TAINT_KEY = "nvidia.com/gpu"
GPU_TAINT_VALUE = "present"
GPU_RESOURCE = "nvidia.com/gpu"
# GKE labels every node with its pool's name
# (https://cloud.google.com/kubernetes-engine/docs/concepts/node-pools).
NODE_POOL_LABEL = "cloud.google.com/gke-nodepool"
# Where GKE mounts the local-SSD RAID that backs ephemeral storage on COS (gcp-a4high.md §5.1).
LOCAL_SSD_EPHEMERAL_PATH = "/mnt/stateful_partition/kube-ephemeral-ssd"
# A specific reservation is selected by name under this key (gcp-a4high.md §3).
RESERVATION_KEY = "compute.googleapis.com/reservation-name"
# GKE taints a node with this key when its VM is about to be stopped for host
# maintenance or preemption; a GPU pod tolerates it so that it can still be (re)scheduled
# during the notice window (gpu-recipes src/helm-charts/a4/inference-templates/deployment
# serving-launcher.yaml; audit gcp.md finding 6).
IMPENDING_TERMINATION_TAINT = "cloud.google.com/impending-node-termination"
# The autoscaler may take flex-start capacity from any zone of node_locations rather than
# balancing between them (cluster-toolkit modules/compute/gke-node-pool/main.tf @1047080
# sets it on every autoscaled pool).
AUTOSCALED_LOCATION_POLICY = "ANY"


def reservation_path(project: str, reservation: str, block: str | None = None) -> str:
    """``projects/P/reservations/NAME[/reservationBlocks/BLOCK]`` (gcp-a4high.md §3, §7.3)."""
    path = f"projects/{project}/reservations/{reservation}"
    return f"{path}/reservationBlocks/{block}" if block else path


def reservation_affinity(
    pool: GcpGpuPoolConfig, project: str
) -> gcp.container.NodePoolNodeConfigReservationAffinityArgs:
    if pool.provisioning == "reservation":
        assert pool.reservation is not None  # a config rule
        return gcp.container.NodePoolNodeConfigReservationAffinityArgs(
            consume_reservation_type="SPECIFIC_RESERVATION",
            key=RESERVATION_KEY,
            values=[reservation_path(project, pool.reservation, pool.reservation_block)],
        )
    # Spot and flex-start require NO_RESERVATION (gcp-a4high.md §7.4); on-demand chooses it.
    return gcp.container.NodePoolNodeConfigReservationAffinityArgs(consume_reservation_type="NO_RESERVATION")


def gpu_tolerations() -> list[Manifest]:
    return [
        {"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"},
        {"key": IMPENDING_TERMINATION_TAINT, "operator": "Exists"},
    ]


def gpu_nodes(pool: GcpGpuPoolConfig, wiring: PodWiring) -> GpuNodes:
    """How a pod lands on this pool and uses its GPUs and RDMA NICs."""
    machine = pool.machine
    return GpuNodes(
        pool=pool.name,
        gpu=machine.gpu,
        gpus_per_node=machine.gpus,
        node_selector={NODE_POOL_LABEL: pool.name},
        tolerations=gpu_tolerations(),
        resource_name=GPU_RESOURCE,
        # The RDMA NICs cannot be shared between pods on a node (gcp-a4high.md §4.3).
        whole_node=machine.rdma_nics > 0,
        pod_annotations=wiring.annotations,
        volumes=wiring.volumes,
        volume_mounts=wiring.volume_mounts,
        env=wiring.env,
        shell_prelude=wiring.shell_prelude,
        scratch_host_path=LOCAL_SSD_EPHEMERAL_PATH if machine.local_ssds else None,
        shm_gib=machine.shm_gib,
        # NCCL registers (pins) GPU buffers with the RDMA NICs; vLLM's multi-node guide
        # adds IPC_LOCK for GPUDirect RDMA (vllm-serving.md §1.1), the one capability kept.
        capabilities=("IPC_LOCK",) if machine.rdma_nics > 0 else (),
        fabric="rdma" if machine.rdma_nics > 0 else "none",
    )


@dataclass(frozen=True)
class GpuNodePoolArgs:
    config: GcpPlatformConfig
    cluster: pulumi.Input[str]
    node_service_account: pulumi.Input[str]
    node_nics: Sequence[AttachedNic]  # net-1, then the RDMA subnets


class GpuNodePool(pulumi.ComponentResource):
    """The RDMA GPU node pool of the stack."""

    node_pool: gcp.container.NodePool

    def __init__(self, name: str, args: GpuNodePoolArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llm-serving:gcp:GpuNodePool", name, None, opts)
        config, pool = args.config, args.config.gpu_pool
        machine = pool.machine
        assert machine.gke_accelerator is not None  # the config admits only GKE RDMA machines
        flex_start = pool.provisioning == "flex-start"

        self.node_pool = gcp.container.NodePool(
            name,
            name=pool.name,
            cluster=args.cluster,
            location=config.region,
            # The RoCE profile, the reservation and the nodes share one zone (gcp-a4high.md §7.2).
            node_locations=[config.zone],
            # Flex-start nodes come and go with pending pods; the others are a fixed count.
            node_count=None if flex_start else pool.node_count,
            autoscaling=gcp.container.NodePoolAutoscalingArgs(
                total_min_node_count=0,
                total_max_node_count=pool.node_count,
                location_policy=AUTOSCALED_LOCATION_POLICY,
            )
            if flex_start
            else None,
            management=gcp.container.NodePoolManagementArgs(
                # Flex-start VMs are not repaired in place (gcp-a4high.md §7.4). Auto-upgrade
                # cannot be turned off in a release channel
                # (https://cloud.google.com/kubernetes-engine/docs/how-to/node-auto-upgrades).
                auto_repair=not flex_start,
                auto_upgrade=True,
            ),
            # A reservation has no spare machine to surge onto: replace nodes one at a time.
            upgrade_settings=gcp.container.NodePoolUpgradeSettingsArgs(
                strategy="SURGE", max_surge=0, max_unavailable=1
            ),
            placement_policy=gcp.container.NodePoolPlacementPolicyArgs(type="COMPACT")
            if pool.compact_placement
            else None,
            network_config=gcp.container.NodePoolNetworkConfigArgs(
                additional_node_network_configs=[
                    gcp.container.NodePoolNetworkConfigAdditionalNodeNetworkConfigArgs(
                        network=nic.network, subnetwork=nic.subnetwork
                    )
                    for nic in args.node_nics
                ],
            ),
            node_config=gcp.container.NodePoolNodeConfigArgs(
                machine_type=machine.name,
                guest_accelerators=[
                    gcp.container.NodePoolNodeConfigGuestAcceleratorArgs(
                        type=machine.gke_accelerator,
                        count=machine.gpus,
                        # Pinned: LATEST is the only B200 driver on GKE 1.32, and changing it
                        # later replaces the pool (gcp-a4high.md §7.5).
                        gpu_driver_installation_config=gcp.container.NodePoolNodeConfigGuestAcceleratorGpuDriverInstallationConfigArgs(
                            gpu_driver_version=pool.driver_version
                        ),
                    )
                ],
                image_type=NODE_IMAGE,
                # Image streaming: containers start while their image is still arriving, and
                # the whole image is cached on the node meanwhile. It needs COS with containerd
                # (NODE_IMAGE), images in Artifact Registry (standard or remote repositories) or
                # public on Docker Hub, the Container File System API, Private Google Access for
                # private nodes (network.py) and, for a node service account of our own,
                # Service Usage Consumer (services.py, identity.py; GKE docs,
                # "Use Image streaming to pull container images", Requirements). On when the
                # stack pulls through its mirror (config GcpPlatformConfig.image_streaming).
                # Turning it on later updates the pool in place (GoogleCloudPlatform/magic-modules#11717).
                gcfs_config=gcp.container.NodePoolNodeConfigGcfsConfigArgs(enabled=True)
                if config.image_streaming
                else None,
                gvnic=gcp.container.NodePoolNodeConfigGvnicArgs(enabled=True),
                disk_type=machine.boot_disk_type,
                disk_size_gb=pool.boot_disk_gb,
                ephemeral_storage_local_ssd_config=gcp.container.NodePoolNodeConfigEphemeralStorageLocalSsdConfigArgs(
                    local_ssd_count=machine.local_ssds
                )
                if machine.local_ssds
                else None,
                reservation_affinity=reservation_affinity(pool, config.project),
                spot=True if pool.provisioning == "spot" else None,
                flex_start=True if flex_start else None,
                taints=[
                    gcp.container.NodePoolNodeConfigTaintArgs(
                        key=GPU_TAINT_KEY, value=GPU_TAINT_VALUE, effect="NO_SCHEDULE"
                    )
                ],
                service_account=args.node_service_account,
                oauth_scopes=NODE_OAUTH_SCOPES,
                workload_metadata_config=NODE_WORKLOAD_METADATA,
                shielded_instance_config=NODE_SHIELDED_INSTANCE,
            ),
            # The pool keeps its name (pods select it by name, and a reservation holds no
            # spare machine for a second pool): a force-new change (machine type,
            # provisioning mode, reservation, driver) deletes it first, else GKE answers
            # 409 "already exists" (audit reliability.md finding 3). The local-SSD count
            # is tied to the machine type and read back differently at times: ignoring it
            # avoids replacing the pool over nothing (cluster-toolkit gke-node-pool
            # main.tf lifecycle @1047080). A replacement keeps the old count too, which is
            # right while every RDMA machine in the catalog has 32 local SSDs.
            opts=child_options(
                self,
                opts,
                delete_before_replace=True,
                ignore_changes=["nodeConfig.ephemeralStorageLocalSsdConfig"],
            ),
        )
        self.register_outputs({"name": self.node_pool.name})
