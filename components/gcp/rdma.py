"""GPUDirect RDMA on GKE, the Kubernetes side (gcp-a4high.md §4).

* One ``GKENetworkParamSet`` + ``Network`` pair per additional node NIC: ``gvnic-1``
  (NetDevice) and ``rdma-0`` .. ``rdma-7`` (RDMA). GKE creates the ``default`` pair itself.
* The NCCL gIB installer DaemonSet, which copies Google's NCCL RDMA plugin and its
  ``set_nccl_env.sh`` onto every GPU node.
* ``pod_wiring``: what an RDMA pod adds to its spec to use both: one interface per
  network, the host's driver and gIB directories, and the NCCL environment.

Builders return plain manifests; ``RdmaNetworking`` applies them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi

from components import catalog
from components.gcp.network import NetworkPlan, NodeNic
from components.gcp.options import child_options
from components.kubernetes import apply
from components.platform import Manifest

NETWORKING_API = "networking.gke.io/v1"
NETWORKING_GROUP = "networking.gke.io"
DEFAULT_NETWORK = "default"  # the pod network, created by GKE with multi-networking on (§4.1)

# Pod annotations of GKE multi-networking (gcp-a4high.md §4.3).
DEFAULT_INTERFACE_ANNOTATION = "networking.gke.io/default-interface"
INTERFACES_ANNOTATION = "networking.gke.io/interfaces"

# Where GKE installs the NVIDIA driver and the installer puts gIB on the node, and where
# pods mount them (gcp-a4high.md §4.2-§4.3).
HOST_NVIDIA_DIR = "/home/kubernetes/bin/nvidia"
HOST_GIB_DIR = "/home/kubernetes/bin/gib"
NVIDIA_DIR = "/usr/local/nvidia"
GIB_DIR = "/usr/local/gib"
NCCL_ENV_SCRIPT = f"{GIB_DIR}/scripts/set_nccl_env.sh"
# Exported after sourcing the gIB script, as gpu-recipes' A4 charts do (gcp-a4high.md §4,
# AI-Hypercomputer/gpu-recipes src/helm-charts/a4/job/templates/workload-job.yaml;
# audit/gcp.md finding 4): NCCL's bootstrap and socket fallback stay on the pod network
# and the gVNIC (eth0, eth1), never on the RDMA NICs, and NCCL uses Google's A4 tuner
# table. Inert on one node (NVLink); they matter once a replica spans nodes.
NCCL_SOCKET_IFNAME = "eth0,eth1"
NCCL_TUNER_CONFIG_PATH = f"{GIB_DIR}/configs/tuner_config_a4.txtpb"

# A pod can start on a new node (autoscaled, repaired) before the installer has run there:
# wait up to GIB_WAIT_STEPS x GIB_WAIT_SECONDS (5 minutes) for gIB, then fail loudly rather
# than run without it (§7.11). The mounts create the host directory, so the installer's
# files appear in it once copied.
GIB_WAIT_STEPS = 60
GIB_WAIT_SECONDS = 5

INSTALLER = "nccl-rdma-installer"
INSTALLER_NAMESPACE = "kube-system"
ACCELERATOR_LABEL = "cloud.google.com/gke-accelerator"  # set by GKE on GPU nodes (§3)
# Inside the gIB image: the plugin tree, and where the installer mounts the host paths
# (GoogleCloudPlatform/container-engine-accelerators gpudirect-rdma/nccl-rdma-installer.yaml).
IMAGE_GIB_TREE = "/var/lib/gib"
INSTALLER_MOUNT_ROOT = "/usr/local"


def interface_name(index: int) -> str:
    return f"eth{index}"


def network_objects(plan: NetworkPlan) -> list[Manifest]:
    """A GKENetworkParamSet and a Network for every additional node NIC."""
    objects: list[Manifest] = []
    for nic in plan.node_nics:
        objects += [param_set(nic), network(nic)]
    return objects


def param_set(nic: NodeNic) -> Manifest:
    return {
        "apiVersion": NETWORKING_API,
        "kind": "GKENetworkParamSet",
        "metadata": {"name": nic.k8s_network},
        "spec": {"vpc": nic.subnet.network, "vpcSubnet": nic.subnet.name, "deviceMode": nic.device_mode},
    }


def network(nic: NodeNic) -> Manifest:
    return {
        "apiVersion": NETWORKING_API,
        "kind": "Network",
        "metadata": {"name": nic.k8s_network},
        "spec": {
            "type": "Device",
            "parametersRef": {"group": NETWORKING_GROUP, "kind": "GKENetworkParamSet", "name": nic.k8s_network},
        },
    }


def pod_annotations(plan: NetworkPlan) -> dict[str, str]:
    """eth0 on the pod network, then one interface per node NIC in node order:
    eth1 = gvnic-1, eth2..eth9 = rdma-0..7 (gcp-a4high.md §4.3)."""
    networks = [DEFAULT_NETWORK, *(nic.k8s_network for nic in plan.node_nics)]
    interfaces = [{"interfaceName": interface_name(i), "network": name} for i, name in enumerate(networks)]
    return {
        DEFAULT_INTERFACE_ANNOTATION: interface_name(0),
        INTERFACES_ANNOTATION: json.dumps(interfaces, separators=(",", ":")),
    }


@dataclass(frozen=True)
class PodWiring:
    """What an RDMA pod adds to its spec (see ``components.platform.GpuNodes``)."""

    annotations: Mapping[str, str]
    volumes: tuple[Manifest, ...]
    volume_mounts: tuple[Manifest, ...]
    env: tuple[Manifest, ...]
    shell_prelude: str


def pod_wiring(plan: NetworkPlan) -> PodWiring:
    host_dirs = (("host-nvidia", HOST_NVIDIA_DIR, NVIDIA_DIR), ("host-gib", HOST_GIB_DIR, GIB_DIR))
    prelude = (
        f'i=0; while [ ! -f {NCCL_ENV_SCRIPT} ] && [ "$i" -lt {GIB_WAIT_STEPS} ]; do\n'
        f'  echo "waiting for the gIB plugin ({INSTALLER} DaemonSet)"; i=$((i + 1)); sleep {GIB_WAIT_SECONDS}\n'
        "done\n"
        f'if [ ! -f {NCCL_ENV_SCRIPT} ]; then echo "gIB is not installed on this node" >&2; exit 1; fi\n'
        f". {NCCL_ENV_SCRIPT}\n"
        f"export NCCL_SOCKET_IFNAME={NCCL_SOCKET_IFNAME}\n"
        f"export NCCL_TUNER_CONFIG_PATH={NCCL_TUNER_CONFIG_PATH}\n"
    )
    return PodWiring(
        annotations=pod_annotations(plan),
        volumes=tuple(
            {"name": name, "hostPath": {"path": host, "type": "DirectoryOrCreate"}} for name, host, _ in host_dirs
        ),
        # Read-only: the engine only loads the driver's and gIB's libraries; the installer
        # DaemonSet is what writes them.
        volume_mounts=tuple({"name": name, "mountPath": path, "readOnly": True} for name, _, path in host_dirs),
        env=({"name": "LD_LIBRARY_PATH", "value": f"{NVIDIA_DIR}/lib64"},),
        # `.` rather than `source`: the engine's shell may be POSIX sh.
        shell_prelude=prelude,
    )


def installer_daemonset(gib_version: str, accelerators: Sequence[str], rdma_nics: int) -> Manifest:
    """Google's NCCL gIB installer (gcp-a4high.md §4.2), restated: a privileged init
    container installs gIB into the host's driver and gIB directories, then a pause
    container keeps the pod (and so the DaemonSet's readiness) alive.

    No ``--install-nccl``: current upstream installs only the network plugin and lets the
    container's own NCCL be used (container-engine-accelerators commit 2da1c92, §4.2).
    """
    labels = {"k8s-app": INSTALLER}
    nvidia_lib = f"{HOST_NVIDIA_DIR}/lib64"
    mounts = [("nvidia-lib64", nvidia_lib), ("gib", HOST_GIB_DIR)]
    nics = " ".join(str(i) for i in range(rdma_nics))  # host RDMA netdevs are gpu<i>rdma0 (§1.1)
    script = "\n".join(
        [
            "set -ex",
            "/scripts/container_entry.sh install",
            f"cp -r {IMAGE_GIB_TREE}/lib64/. {INSTALLER_MOUNT_ROOT}{nvidia_lib}",
            f"cp -r {IMAGE_GIB_TREE}/. {INSTALLER_MOUNT_ROOT}{HOST_GIB_DIR}",
            # RDMA NICs log every martian packet; the toolkit's installer silences them (§4.2).
            f"for i in {nics}; do f=/proc/sys/net/ipv4/conf/gpu${{i}}rdma0/log_martians; "
            'if [ -w "$f" ]; then echo 0 > "$f"; fi; done',
        ]
    )
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": INSTALLER, "namespace": INSTALLER_NAMESPACE, "labels": labels},
        "spec": {
            "selector": {"matchLabels": labels},
            "updateStrategy": {"type": "RollingUpdate"},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "priorityClassName": "system-node-critical",
                    "affinity": {
                        "nodeAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": {
                                "nodeSelectorTerms": [
                                    {
                                        "matchExpressions": [
                                            {"key": ACCELERATOR_LABEL, "operator": "In", "values": list(accelerators)}
                                        ]
                                    }
                                ]
                            }
                        }
                    },
                    "tolerations": [{"operator": "Exists"}],
                    "hostNetwork": True,
                    "hostPID": True,
                    "volumes": [
                        {"name": name, "hostPath": {"path": path, "type": "DirectoryOrCreate"}} for name, path in mounts
                    ],
                    "initContainers": [
                        {
                            "name": INSTALLER,
                            "image": f"{catalog.GIB_INSTALLER_REPOSITORY}:{gib_version}",
                            "command": ["/bin/sh", "-c"],
                            "args": [script],
                            "securityContext": {"privileged": True},
                            "resources": {"requests": {"cpu": "150m"}},
                            "volumeMounts": [
                                {"name": name, "mountPath": f"{INSTALLER_MOUNT_ROOT}{path}"} for name, path in mounts
                            ],
                        }
                    ],
                    "containers": [{"name": "pause", "image": catalog.GKE_PAUSE_IMAGE.ref}],
                },
            },
        },
    }


@dataclass(frozen=True)
class RdmaNetworkingArgs:
    plan: NetworkPlan
    gib_version: str
    machine: catalog.MachineSpec


class RdmaNetworking(pulumi.ComponentResource):
    """The network objects and the gIB installer; ``ready`` is what RDMA pods wait for."""

    ready: list[pulumi.Resource]

    def __init__(self, name: str, args: RdmaNetworkingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llm-serving:gcp:RdmaNetworking", name, None, opts)
        self.ready = []
        for nic in args.plan.node_nics:
            params = apply(f"{name}-{nic.k8s_network}-params", param_set(nic), child_options(self, opts))
            self.ready += [
                params,
                apply(
                    f"{name}-{nic.k8s_network}",
                    network(nic),
                    child_options(self, opts, depends_on=[params]),
                ),
            ]
        accelerator = args.machine.gke_accelerator
        assert accelerator is not None  # RDMA machines are GKE accelerators (catalog)
        self.ready.append(
            apply(
                f"{name}-installer",
                installer_daemonset(args.gib_version, [accelerator], args.machine.rdma_nics),
                child_options(self, opts),
            )
        )
        self.register_outputs({"networks": [nic.k8s_network for nic in args.plan.node_nics]})
