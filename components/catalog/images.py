"""Pinned images and Helm charts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class CudaBuild:
    """The CUDA an image is built with and the oldest NVIDIA driver that runs it.

    NVIDIA's CUDA Toolkit release notes, "CUDA Toolkit and Corresponding Driver Versions":
    CUDA 12.8 GA needs Linux driver >= 570.26, CUDA 13.0 GA >= 580.65.06.
    """

    cuda: str
    min_driver: str  # dotted NVIDIA driver version
    source: str


CUDA_12_8 = CudaBuild("12.8", "570.26", "NVIDIA CUDA 12.8 release notes, Table 3 (toolkit driver versions)")
CUDA_13_0 = CudaBuild(
    "13.0",
    "580.65.06",
    "NVIDIA CUDA 13.0 release notes, Table 3; the v0.33.0 wheel links libcudart.so.13 and sets "
    "VLLM_MAIN_CUDA_VERSION=13.0 (shared/reference/audit/settled.md; vllm-project/vllm#39878)",
)


@dataclass(frozen=True)
class Image:
    repository: str
    tag: str
    source: str
    cuda: CudaBuild | None = None  # GPU images: which driver the node must have

    @property
    def ref(self) -> str:
        return f"{self.repository}:{self.tag}"


@dataclass(frozen=True)
class Chart:
    name: str
    version: str
    repo: str  # https Helm repository, or "" when ``name`` is an oci:// reference
    source: str


VLLM_IMAGE = Image(
    "vllm/vllm-openai",
    "v0.33.0",
    "vllm-serving.md §0: newest vLLM 0.33.0 (2026-11); flags in §1.1 are read from that wheel",
    cuda=CUDA_13_0,  # the suffix-less tag is the CUDA 13.0 build; -cu129 is the 12.9 variant
)
# Ray Serve LLM image; rayClusterConfig.rayVersion must equal RAY_VERSION.
RAY_VERSION = "2.52.0"
RAY_LLM_IMAGE = Image(
    "rayproject/ray-llm",
    f"{RAY_VERSION}-py311-cu128",
    "aws-eks-karpenter.md §0, §4.4 (KubeRay samples ray-service.llm-serve.yaml, ray-service.deepseek.yaml); "
    "CUDA 12.8 build, so the AL2023 NVIDIA driver suffices (the cu130 builds need driver >= 580, §2.7)",
    cuda=CUDA_12_8,
)
OPEN_WEBUI_IMAGE = Image(
    "ghcr.io/open-webui/open-webui",
    "v0.12.4",
    "newest release (PyPI open-webui 0.12.4, 2026-10-25; its CHANGELOG lists security fixes after 0.7.2); "
    "shared/reference/audit/workloads.md finding 4. tests/conformance runs this version from PyPI",
)
# Open WebUI's requests and limit (our sizing: one replica on a system node; the EKS
# system-node rule, components/system_nodes.py, counts the requests).
OPEN_WEBUI_RESOURCES: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "4Gi"}}
)

# Official cloud CLI images for copying to and checking the stack's bucket from Jobs
# (pinned tags seen in public deployments; search index find_string on the image names).
GCLOUD_CLI_IMAGE = Image(
    "gcr.io/google.com/cloudsdktool/google-cloud-cli",
    "562.0.0-slim",
    "Google's Cloud SDK image (gcloud storage); slim variant",
)
AWS_CLI_IMAGE = Image(
    "public.ecr.aws/aws-cli/aws-cli",
    "2.35.5",
    "AWS CLI v2 image on ECR Public",
)
# NCCL gIB plugin for GPUDirect RDMA over RoCE; the tag is the stack's `gibVersion`.
# gcp-a4high.md §4.2 (GoogleCloudPlatform/container-engine-accelerators gpudirect-rdma/nccl-rdma-installer.yaml).
GIB_INSTALLER_REPOSITORY = "us-docker.pkg.dev/gce-ai-infra/gpudirect-gib/nccl-plugin-gib"
GKE_PAUSE_IMAGE = Image(
    "gke.gcr.io/pause",
    "3.8@sha256:880e63f94b145e46f1b1082bb71b85e21f16b99b180b9996407d61240ceb9830",
    "GoogleCloudPlatform/container-engine-accelerators gpudirect-rdma/nccl-rdma-installer.yaml "
    "(the installer DaemonSet's main container, pinned by digest)",
)

KUBERAY_OPERATOR_CHART = Chart(
    "kuberay-operator",
    "1.7.0",
    "https://ray-project.github.io/kuberay-helm/",
    "aws-eks-karpenter.md §0, §4.3 (KubeRay v1.7.0, 2026-08-19); CRD schemas in shared/schemas are v1.7.0",
)

# LeaderWorkerSet (kubernetes-sigs/lws): the controller and CRD for multi-node engine
# replicas. Published as an OCI chart (charts/lws/README.md "From the OCI registry";
# https://lws.sigs.k8s.io/docs/installation/#install-by-helm); chart versions follow the
# release tags without the "v". v0.10.0 is the release whose CRD schema is vendored in
# tests/schemas/crds (tests/schemas/SOURCES.md).
LWS_CHART = Chart(
    "oci://registry.k8s.io/lws/charts/lws",
    "0.10.0",
    "",
    "kubernetes-sigs/lws v0.10.0: charts/lws, published at oci://registry.k8s.io/lws/charts/lws; "
    "CRD schema vendored from config/crd/bases at the same tag",
)
