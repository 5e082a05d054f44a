"""Facts the program relies on, each with its source.

Nothing else in the code base carries a hardware size, a model dimension, an image tag
or a chart version: they are read from here. Reference tags such as ``vllm-serving.md
§3.4`` point at ``docs/reference/``, which records the original source (wheel file and
line, repository path, log excerpt, URL) of each fact.
Numbers marked *computed* are our arithmetic on sourced numbers, not published values.

One module per kind of fact: ``gpus``, ``machines``, ``models``, ``engines`` (vLLM
behaviour and load-speed anchors), ``images`` (pinned images and charts), ``aws``
(Karpenter, AMI), ``gke`` (versions, drivers, maintenance, NAT), ``profiles`` (serving
profiles); this package re-exports every name, so code reads ``catalog.GPUS``.
"""

from components.catalog.aws import (
    EKS_KUBERNETES_VERSION,
    GPU_NODE_AMI,
    IMDS_HOP_LIMIT_GPU_NODES,
    IMDS_HOP_LIMIT_SYSTEM_NODES,
    KARPENTER_CHART,
    KARPENTER_CONTROLLER_RESOURCES,
    KARPENTER_CONTROLLER_RESOURCES_SOURCE,
    KARPENTER_CRD_CHART,
    KARPENTER_INTERRUPTION_QUEUE_RETENTION_S,
    KARPENTER_KUBERNETES_VERSIONS,
    KARPENTER_KUBERNETES_VERSIONS_SOURCE,
    KARPENTER_VERSION,
    NODE_MONITORING_AGENT_ADDON,
    NVIDIA_DEVICE_PLUGIN_CHART,
    AmiAlias,
)
from components.catalog.engines import (
    BUCKET_STREAM_BYTES_PER_S,
    BUCKET_UPLOAD_BYTES_PER_S,
    ENGINE_INIT_SECONDS,
    HF_DOWNLOAD_BYTES_PER_S,
    VLLM_ENGINE_READY_TIMEOUT_DEFAULT_S,
    VLLM_MEMORY_MODEL,
    VLLM_V0_MEMORY_MODEL,
    EngineMemoryModel,
)
from components.catalog.gke import (
    GKE_B200_DRIVERS,
    GKE_B200_RDMA_FLOOR,
    GKE_EXCLUSION_END,
    GKE_EXCLUSION_SCOPE,
    GKE_MAINTENANCE_MIN_HOURS_PER_32_DAYS,
    GKE_MAINTENANCE_MIN_WINDOW_HOURS,
    GKE_VERSION_PREFIX,
    GKE_VERSION_PREFIX_DATE,
    NAT_MAX_PORTS_PER_VM,
    NAT_MIN_PORTS_PER_VM,
    GkeGpuDriver,
    b200_driver,
    gke_minor,
    version_tuple,
)
from components.catalog.gpus import GPUS, GpuSpec
from components.catalog.images import (
    AWS_CLI_IMAGE,
    CUDA_12_8,
    CUDA_13_0,
    GCLOUD_CLI_IMAGE,
    GIB_INSTALLER_REPOSITORY,
    GKE_PAUSE_IMAGE,
    KUBERAY_OPERATOR_CHART,
    LWS_CHART,
    OPEN_WEBUI_IMAGE,
    RAY_LLM_IMAGE,
    RAY_VERSION,
    VLLM_IMAGE,
    Chart,
    CudaBuild,
    Image,
)
from components.catalog.machines import AWS_GPU_FAMILIES, MACHINES, MachineSpec, aws_family_machines
from components.catalog.models import MODELS, ModelSpec
from components.catalog.profiles import PROFILES, Profile, ProfileSpec
from components.catalog.units import GB, GIB, Attention, Cloud

__all__ = [
    "AWS_CLI_IMAGE",
    "AWS_GPU_FAMILIES",
    "BUCKET_STREAM_BYTES_PER_S",
    "BUCKET_UPLOAD_BYTES_PER_S",
    "CUDA_12_8",
    "CUDA_13_0",
    "EKS_KUBERNETES_VERSION",
    "ENGINE_INIT_SECONDS",
    "GB",
    "GCLOUD_CLI_IMAGE",
    "GIB",
    "GIB_INSTALLER_REPOSITORY",
    "GKE_B200_DRIVERS",
    "GKE_B200_RDMA_FLOOR",
    "GKE_EXCLUSION_END",
    "GKE_EXCLUSION_SCOPE",
    "GKE_MAINTENANCE_MIN_HOURS_PER_32_DAYS",
    "GKE_MAINTENANCE_MIN_WINDOW_HOURS",
    "GKE_PAUSE_IMAGE",
    "GKE_VERSION_PREFIX",
    "GKE_VERSION_PREFIX_DATE",
    "GPUS",
    "GPU_NODE_AMI",
    "HF_DOWNLOAD_BYTES_PER_S",
    "IMDS_HOP_LIMIT_GPU_NODES",
    "IMDS_HOP_LIMIT_SYSTEM_NODES",
    "KARPENTER_CHART",
    "KARPENTER_CONTROLLER_RESOURCES",
    "KARPENTER_CONTROLLER_RESOURCES_SOURCE",
    "KARPENTER_CRD_CHART",
    "KARPENTER_INTERRUPTION_QUEUE_RETENTION_S",
    "KARPENTER_KUBERNETES_VERSIONS",
    "KARPENTER_KUBERNETES_VERSIONS_SOURCE",
    "KARPENTER_VERSION",
    "KUBERAY_OPERATOR_CHART",
    "LWS_CHART",
    "MACHINES",
    "MODELS",
    "NAT_MAX_PORTS_PER_VM",
    "NAT_MIN_PORTS_PER_VM",
    "NODE_MONITORING_AGENT_ADDON",
    "NVIDIA_DEVICE_PLUGIN_CHART",
    "OPEN_WEBUI_IMAGE",
    "PROFILES",
    "RAY_LLM_IMAGE",
    "RAY_VERSION",
    "VLLM_ENGINE_READY_TIMEOUT_DEFAULT_S",
    "VLLM_IMAGE",
    "VLLM_MEMORY_MODEL",
    "VLLM_V0_MEMORY_MODEL",
    "AmiAlias",
    "Attention",
    "Chart",
    "Cloud",
    "CudaBuild",
    "EngineMemoryModel",
    "GkeGpuDriver",
    "GpuSpec",
    "Image",
    "MachineSpec",
    "ModelSpec",
    "Profile",
    "ProfileSpec",
    "aws_family_machines",
    "b200_driver",
    "gke_minor",
    "version_tuple",
]
