"""AWS platform facts: Karpenter, the GPU node image, the NVIDIA device plugin, IMDS."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from components.catalog.images import Chart, CudaBuild

KARPENTER_VERSION = "1.14.1"
_KP = "aws/karpenter-provider-aws @v1.14.1 (bde00654)"
# The CRDs ship as their own chart: Helm never upgrades CRDs inside a chart, so the
# main chart is installed with skipCrds (aws-eks-karpenter.md §1.8).
KARPENTER_CRD_CHART = Chart(
    "oci://public.ecr.aws/karpenter/karpenter-crd",
    KARPENTER_VERSION,
    "",
    f"aws-eks-karpenter.md §0, §1.8; {_KP} charts/karpenter-crd/Chart.yaml",
)
KARPENTER_CHART = Chart(
    "oci://public.ecr.aws/karpenter/karpenter",
    KARPENTER_VERSION,
    "",
    f"aws-eks-karpenter.md §0, §1.8; {_KP} charts/karpenter/Chart.yaml (image public.ecr.aws/karpenter/controller)",
)
# Requests = limits, as in the getting-started install (1 CPU, 1 GiB).
KARPENTER_CONTROLLER_RESOURCES: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
)
KARPENTER_CONTROLLER_RESOURCES_SOURCE = (
    f"{_KP} website/content/en/v1.14/getting-started/getting-started-with-karpenter/scripts/step08-apply-helm-chart.sh"
)
KARPENTER_REPLICAS = 2  # the chart's default, kept (KP v1.14.1 charts/karpenter/values.yaml `replicas`)
# Kubernetes minor versions Karpenter 1.14 supports (compatibility matrix: 1.30 needs
# >= 0.37 ... 1.36 needs >= 1.13).
KARPENTER_KUBERNETES_VERSIONS: tuple[str, ...] = ("1.30", "1.31", "1.32", "1.33", "1.34", "1.35", "1.36")
KARPENTER_KUBERNETES_VERSIONS_SOURCE = f"{_KP} website/content/en/v1.14/upgrading/compatibility.md"
# SQS retention of interruption messages: Karpenter acts within minutes or not at all.
KARPENTER_INTERRUPTION_QUEUE_RETENTION_S = 300  # KP v1.14 cloudformation.yaml MessageRetentionPeriod


@dataclass(frozen=True)
class AmiAlias:
    """A pinned EKS-optimized AMI release, as a Karpenter ``amiSelectorTerms`` alias.

    ``al2023@latest`` would drift (replace) every GPU node whenever AWS publishes an AMI,
    evicting loaded models; a dated release changes only when this pin does.
    """

    alias: str
    kubernetes_versions: tuple[str, ...]  # versions the release was published for
    nvidia_driver: str  # the NVIDIA kernel driver of its NVIDIA variant (dotted version)
    source: str

    def runs(self, cuda: CudaBuild) -> bool:
        """Whether this AMI's driver is new enough for an image built with ``cuda``."""
        return _version(self.nvidia_driver) >= _version(cuda.min_driver)


def _version(dotted: str) -> tuple[int, ...]:
    return tuple(int(part) for part in dotted.split("."))


GPU_NODE_AMI = AmiAlias(
    "al2023@v20260714",
    ("1.30", "1.31", "1.32", "1.33", "1.34", "1.35", "1.36"),
    "580.159.03",
    "awslabs/amazon-eks-ami CHANGELOG.md 'AMI Release v20260714' (tag v20260714, commit b4fffb70): "
    "amazon-eks-node-al2023-x86_64-nvidia-<1.30..1.36>-v20260714, kmod-nvidia-latest-dkms 580.159.03, "
    "nvidia-container-toolkit 1.19.1; alias format and the advice to pin: aws-eks-karpenter.md §2.6, §2.7 "
    "(KP v1.14 nodeclasses.md, tasks/managing-amis.md)",
)

# The default Kubernetes minor of new EKS clusters: the newest that Karpenter and the
# pinned AMI both support. EKS gives a minor 14 months of standard support, then 12 of
# paid extended support, and extended is the default upgrade policy
# (https://docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html); 1.33 left
# standard support on 2026-07-29 (endoflife.date/amazon-eks; audit/aws.md F2).
EKS_KUBERNETES_VERSION = max(
    (v for v in KARPENTER_KUBERNETES_VERSIONS if v in GPU_NODE_AMI.kubernetes_versions), key=_version
)
# EKS add-on that reports GPU, kernel, disk and network faults as node conditions, which
# Karpenter's node repair acts on (KP v1.14 concepts/disruption.md "Node Auto Repair";
# https://docs.aws.amazon.com/eks/latest/userguide/node-health.html).
NODE_MONITORING_AGENT_ADDON = "eks-node-monitoring-agent"

# AL2023 NVIDIA AMIs ship the driver but not the Kubernetes device plugin (§2.7, §3).
NVIDIA_DEVICE_PLUGIN_CHART = Chart(
    "nvidia-device-plugin",
    "0.20.0",
    "https://nvidia.github.io/k8s-device-plugin",
    "aws-eks-karpenter.md §0, §3; NVIDIA/k8s-device-plugin @v0.20.0 (1b826acc) "
    "deployments/helm/nvidia-device-plugin/Chart.yaml",
)

# Instance metadata: IMDSv2 only. GPU nodes keep the hop limit at 1 so pods cannot borrow
# the node role (they use Pod Identity); system nodes allow 2 as EKS's own
# managed-node-group template does, for add-on pods that still ask IMDS (Karpenter no
# longer needs it: karpenter.py sets AWS_REGION).
IMDS_HOP_LIMIT_GPU_NODES = 1  # KP v1.14 nodeclasses.md metadataOptions default
IMDS_HOP_LIMIT_SYSTEM_NODES = 2  # pulumi-eks nodejs/eks/nodes/nodegroup.ts createMNGCustomLaunchTemplate

# The monitoring stack an EKS cluster lacks (audit/aws.md F6): Prometheus operator,
# Prometheus, Alertmanager, Grafana, kube-state-metrics, node-exporter in one chart; its
# operator v0.93.1 serves the monitoring.coreos.com/v1 CRDs vendored in the tests (v0.93.0).
KUBE_PROMETHEUS_STACK_CHART = Chart(
    "kube-prometheus-stack",
    "88.5.3",
    "https://prometheus-community.github.io/helm-charts",
    "prometheus-community/helm-charts @cf408a29 (2026-08-22) charts/kube-prometheus-stack/Chart.yaml "
    "(version 88.5.3, appVersion v0.93.1, grafana 12.11.1 from grafana-community); values.yaml blob 958534f2",
)
# NVIDIA's exporter of DCGM fields for GPU nodes. At this tag its GPU series carry the
# node as `Hostname` (renamed `hostname` only after it, in d5e5f51 "Rename Hostname label").
_DCGM_TAG = "NVIDIA/dcgm-exporter @691c9276 (tag 4.5.3-4.8.2)"
DCGM_EXPORTER_CHART = Chart(
    "dcgm-exporter",
    "4.8.2",
    "https://nvidia.github.io/dcgm-exporter/helm-charts",
    f"{_DCGM_TAG} deployment/Chart.yaml (version 4.8.2), deployment/values.yaml "
    "(image nvcr.io/nvidia/k8s/dcgm-exporter:4.5.3-4.8.2-distroless, serviceMonitor.enabled, customMetrics)",
)
# The fields dcgm-exporter watches (its chart's `customMetrics`: the whole list, not an
# addition; rendered into the ConfigMap it reads as default-counters.csv). The chart's own
# list (deployment/templates/metrics-configmap.yaml) has XID and row remapping but leaves
# the ECC counters commented out; ours keeps its serving-relevant fields, drops the video
# encoder/decoder and vGPU licence, and adds the volatile ECC totals the GPU alerts need.
# Format per line: field, Prometheus type, help (etc/default-counters.csv at the tag).
DCGM_COUNTERS: tuple[tuple[str, str, str], ...] = (
    ("DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock frequency (in MHz)."),
    ("DCGM_FI_DEV_MEM_CLOCK", "gauge", "Memory clock frequency (in MHz)."),
    ("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C)."),
    ("DCGM_FI_DEV_MEMORY_TEMP", "gauge", "Memory temperature (in C)."),
    ("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W)."),
    ("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "counter", "Energy used since boot (in mJ)."),
    ("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilisation (in %)."),
    ("DCGM_FI_DEV_MEM_COPY_UTIL", "gauge", "Memory utilisation (in %)."),
    ("DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB)."),
    ("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB)."),
    ("DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "counter", "PCIe retries."),
    ("DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL", "counter", "NVLink bandwidth counters, all lanes."),
    ("DCGM_FI_DEV_XID_ERRORS", "gauge", "Value of the last XID error."),
    # Not a DCGM field: the exporter counts each XID over its window (commented out in its list).
    ("DCGM_EXP_XID_ERRORS_COUNT", "counter", "XIDs reported during the last window, by XID."),
    ("DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", "counter", "Single-bit (corrected) ECC errors since the driver loaded."),
    ("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "counter", "Double-bit (uncorrectable) ECC errors since the driver loaded."),
    ("DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", "counter", "Rows remapped for uncorrectable errors."),
    ("DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", "counter", "Rows remapped for correctable errors."),
    ("DCGM_FI_DEV_ROW_REMAP_FAILURE", "gauge", "Whether remapping of rows has failed."),
    ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "gauge", "Ratio of time the graphics engine is active."),
    ("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "gauge", "Ratio of cycles the tensor pipe is active."),
    ("DCGM_FI_PROF_DRAM_ACTIVE", "gauge", "Ratio of cycles the device memory interface is active."),
)
DCGM_COUNTERS_SOURCE = (
    f"{_DCGM_TAG} deployment/templates/metrics-configmap.yaml, deployment/values.yaml `customMetrics` "
    "(complete list, not additive), etc/default-counters.csv (ECC and DCGM_EXP_XID_ERRORS_COUNT lines commented "
    "out); every DCGM_FI_ field is a name in NVIDIA/go-dcgm @ec245c09 pkg/dcgm/const_fields.go, the go-dcgm "
    "the exporter's go.mod pins"
)
# Prometheus keeps this much history on a volume of this size (our choice: two weeks of an
# engine's series at a 30 s interval fit with ample room).
PROMETHEUS_RETENTION = "15d"
PROMETHEUS_VOLUME_GIB = 50
# Requests and limits of the monitoring stack on the system nodes (the chart sets none: its
# values.yaml leaves every `resources: {}`, with commented examples of 200-400 Mi). Our
# sizing for one serving cluster: Prometheus holds the engines', GPUs' and Kubernetes'
# series (tens of thousands, a few KiB each in its head block) with room for queries;
# the rest are small controllers. Memory limits stop a runaway pod from starving
# Karpenter on the same node; CPU is left unlimited (no throttling on bursts).
MONITORING_RESOURCES: Mapping[str, Mapping[str, Mapping[str, str]]] = MappingProxyType(
    {
        "prometheus": {"requests": {"cpu": "500m", "memory": "2Gi"}, "limits": {"memory": "4Gi"}},
        "alertmanager": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
        "grafana": {"requests": {"cpu": "200m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}},
        "kube-state-metrics": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
        "prometheus-operator": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
        # A DaemonSet: one per node, GPU nodes included.
        "node-exporter": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
    }
)
MONITORING_RESOURCES_SOURCE = (
    "our sizing; keys from prometheus-community/helm-charts @cf408a29 charts/kube-prometheus-stack/values.yaml "
    "(prometheus.prometheusSpec.resources, alertmanager.alertmanagerSpec.resources, prometheusOperator.resources, "
    "grafana.resources, kube-state-metrics.resources, prometheus-node-exporter.resources)"
)
# The KubeRay operator's chart sets limits only (100m, 512Mi), so Kubernetes makes its
# requests equal to them (ray-project/kuberay v1.7.0 @59d663ae helm-chart/kuberay-operator/values.yaml).
KUBERAY_OPERATOR_REQUESTS: Mapping[str, str] = MappingProxyType({"cpu": "100m", "memory": "512Mi"})


@dataclass(frozen=True)
class NodeShape:
    """What a system node offers before the kubelet's reservation (nodeadm computes that)."""

    vcpus: int
    memory_gib: int
    # The VPC CNI's pod limit: enis * (ipv4_per_eni - 1) + 2 (nodeadm eni_max_pods.go).
    enis: int
    ipv4_per_eni: int
    source: str

    @property
    def max_pods(self) -> int:
        return self.enis * (self.ipv4_per_eni - 1) + 2


_EKS_AMI_INFO = "awslabs/amazon-eks-ami @81fec2e nodeadm/internal/kubelet/instance-info.jsonl"
_EC2_GENERAL = "https://docs.aws.amazon.com/ec2/latest/instancetypes/gp.html"
SYSTEM_NODE_SHAPES: Mapping[str, NodeShape] = MappingProxyType(
    {
        "m6i.xlarge": NodeShape(4, 16, 4, 15, f"{_EC2_GENERAL}; {_EKS_AMI_INFO}"),
        "m6i.2xlarge": NodeShape(8, 32, 4, 15, f"{_EC2_GENERAL}; {_EKS_AMI_INFO}"),
        "m6i.4xlarge": NodeShape(16, 64, 8, 30, f"{_EC2_GENERAL}; {_EKS_AMI_INFO}"),
    }
)
# What the kubelet on an EKS AL2023 node keeps back: CPU 6 % of the first core, 1 % of
# the second, 0.5 % of the next two, 0.25 % of the rest; memory 11 MiB per pod + 255 MiB;
# and 100 MiB hard eviction threshold (awslabs/amazon-eks-ami @81fec2e
# nodeadm/internal/kubelet/config.go getCPUMillicoresToReserve, getMemoryMebibytesToReserve,
# EvictionHard).
KUBELET_CPU_RESERVE_STEPS: tuple[tuple[int, int], ...] = ((1000, 600), (2000, 100), (4000, 50), (1 << 30, 25))
KUBELET_MEMORY_RESERVE_MIB_PER_POD = 11
KUBELET_MEMORY_RESERVE_MIB_BASE = 255
KUBELET_EVICTION_HARD_MIB = 100
# Per-node allowance for EKS's own pods on every system node (VPC CNI, kube-proxy, EBS
# CSI node, Pod Identity agent, CoreDNS, the node monitoring agent): our estimate, not a
# published figure; add-ons mostly request 10-100m and tens of MiB each.
SYSTEM_ADDON_ALLOWANCE: Mapping[str, str] = MappingProxyType({"cpu": "500m", "memory": "1Gi"})
# --- instance-store NVMe ----------------------------------------------------------------
# Local NVMe of the GPU instance types the catalog knows, in GB: Karpenter's
# `karpenter.k8s.aws/instance-local-nvme` label per type (KP instance-types.md @1d927085d).
# Every one has some: with ``instanceStorePolicy: RAID0`` it is the node's ephemeral storage.
INSTANCE_LOCAL_NVME_GB: Mapping[str, int] = MappingProxyType(
    {
        "g5.xlarge": 250,
        "g5.2xlarge": 450,
        "g5.4xlarge": 600,
        "g5.8xlarge": 900,
        "g5.16xlarge": 1900,
        "g5.12xlarge": 3800,
        "g5.24xlarge": 3800,
        "g5.48xlarge": 7600,
        "g6.xlarge": 250,
        "g6.2xlarge": 450,
        "g6.4xlarge": 600,
        "g6.8xlarge": 900,
        "g6.16xlarge": 1880,
        "g6.12xlarge": 3760,
        "g6.24xlarge": 3760,
        "g6.48xlarge": 7520,
        "g6e.xlarge": 250,
        "g6e.2xlarge": 450,
        "g6e.4xlarge": 600,
        "g6e.8xlarge": 900,
        "g6e.16xlarge": 1900,
        "g6e.12xlarge": 3800,
        "g6e.24xlarge": 3800,
        "g6e.48xlarge": 7600,
        "p4d.24xlarge": 8000,
        "p4de.24xlarge": 8000,
        "p5.48xlarge": 30400,
        "p5e.48xlarge": 30400,
        "p5en.48xlarge": 30400,
        "p6-b200.48xlarge": 30400,
    }
)
INSTANCE_LOCAL_NVME_SOURCE = (
    "aws/karpenter-provider-aws @1d927085d website/content/en/docs/reference/instance-types.md "
    "(karpenter.k8s.aws/instance-local-nvme)"
)
# Where the RAID0 array of those disks is mounted on an AL2023 node: Karpenter's NodeConfig
# has nodeadm build /dev/md/0, mount it here and bind-mount /var/lib/kubelet,
# /var/lib/containerd and /var/log/pods onto it (KP v1.14 concepts/nodeclasses.md
# spec.instanceStorePolicy "AL2023"; awslabs/amazon-eks-ami templates/shared/runtime/bin/
# setup-local-disks maybe_raid0). A node with no instance store has nothing mounted here.
INSTANCE_STORE_MOUNT = "/mnt/k8s-disks/0"

# --- EFA (Elastic Fabric Adapter) for multi-node GPU pools ----------------------------
_KP_TYPES = f"{_KP} website/content/en/docs/reference/instance-types.md"
# EFA interfaces per instance type: one per network card, advertised by Karpenter as
# `vpc.amazonaws.com/efa` capacity and attached (InterfaceType efa, one per card) when a
# pod requests that resource (KP pkg/providers/instance/instance.go getEFACountForInstance,
# pkg/providers/launchtemplate/launchtemplate.go generateNetworkInterfaces).
EFA_INTERFACES: Mapping[str, int] = MappingProxyType(
    {
        "p4d.24xlarge": 4,
        "p4de.24xlarge": 4,
        "p5.48xlarge": 32,
        "p5e.48xlarge": 32,
        "p5en.48xlarge": 16,
        "p6-b200.48xlarge": 8,
    }
)
EFA_INTERFACES_SOURCE = f"{_KP_TYPES} (`vpc.amazonaws.com/efa` per type)"
# The extended resource the EFA device plugin advertises and pods request (KP
# pkg/apis/v1/labels.go ResourceEFA; aws-eks-karpenter.md §3).
EFA_RESOURCE = "vpc.amazonaws.com/efa"
# AWS's EFA device plugin from the eks-charts repository: the chart version carries a `v`
# (aws/eks-charts gh-pages index.yaml @c7f9ea5: aws-efa-k8s-device-plugin v0.5.30,
# appVersion v0.5.20; stable/aws-efa-k8s-device-plugin/Chart.yaml @5239609). ai-on-eks
# pins v0.5.13 through aws-ia/eks-data-addons (audit/settled.md).
EFA_DEVICE_PLUGIN_CHART = Chart(
    "aws-efa-k8s-device-plugin",
    "v0.5.30",
    "https://aws.github.io/eks-charts",
    "aws/eks-charts gh-pages index.yaml (c7f9ea5, 2026-08-03) and stable/aws-efa-k8s-device-plugin/Chart.yaml "
    "@5239609 (appVersion v0.5.20)",
)
# libfabric's provider and GPUDirect RDMA over EFA, as ai-on-eks' LWS vLLM example sets
# them (aws-eks-karpenter.md §5 "EFA on p5/p4d"; audit/settled.md).
EFA_ENV: Mapping[str, str] = MappingProxyType({"FI_PROVIDER": "efa", "FI_EFA_USE_DEVICE_RDMA": "1"})
# Where the EFA userspace (libfabric with the efa provider, and the aws-ofi-nccl NCCL
# plugin) lives inside an image built with AWS's EFA installer. vLLM's own Dockerfile
# unpacks it there and its entrypoint docker/entrypoints/efa-entrypoint.sh prepends these
# to LD_LIBRARY_PATH when an EFA device is visible (vllm-project/vllm @c648b8bc
# docker/Dockerfile "Install the AWS EFA userspace", EFA_INSTALLER_VERSION=1.50.0). The
# AL2023 NVIDIA AMI installs EFA with `efa_installer.sh --minimal` (awslabs/amazon-eks-ami
# @81fec2e templates/al2023/provisioners/install-efa.sh): the kernel driver, not these
# libraries, so there is nothing on the host to mount.
EFA_IMAGE_LIBRARY_DIRS: tuple[str, ...] = ("/opt/amazon/efa/lib", "/opt/amazon/ofi-nccl/lib")
