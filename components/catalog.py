"""Facts the program relies on, each with its source.

Nothing else in the code base carries a hardware size, a model dimension, an image tag
or a chart version: they are read from here. Reference tags such as ``vllm-serving.md
§3.4`` point at ``docs/reference/``, which records the original source (wheel file and
line, repository path, log excerpt, URL) of each fact.
Numbers marked *computed* are our arithmetic on sourced numbers, not published values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

GIB = 1024**3
GB = 1000**3

Cloud = Literal["gcp", "aws"]
Attention = Literal["mla", "gqa"]


# --------------------------------------------------------------------------------------
# GPUs
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GpuSpec:
    """One GPU model.

    ``memory_gib`` is the *total* memory CUDA reports (what vLLM multiplies by
    ``--gpu-memory-utilization``), not the marketing number.
    """

    name: str
    memory_gib: float
    ray_accelerator_type: str  # ray.util.accelerators name, used by Ray Serve LLM
    source: str


_GPUS = (
    GpuSpec(
        "A10G",
        22.30,
        "A10G",
        "vllm-serving.md §3.3: vLLM 0.7 log on g5 'total GPU memory (22.30 GiB)' "
        "(awslabs/data-on-eks ray-vllm-deepseek.md L371-376)",
    ),
    GpuSpec(
        "L4",
        22.03,
        "L4",
        "torch-reported total 'NVIDIA L4, 22.03 GiB' in several public run logs "
        "(search index: find_string 'NVIDIA L4, 22.'); vllm-serving.md §3.4 lists it as not found",
    ),
    GpuSpec(
        "L40S",
        44.39,
        "L40S",
        "torch-reported total 'NVIDIA L40S, 44.39 GiB' in public run logs (search index: find_string 'L40S, 44.')",
    ),
    GpuSpec(
        "A100-40G",
        39.39,
        "A100-40G",
        "vllm-serving.md §3.4: 40,339 MiB for A100-PCIE-40GB",
    ),
    GpuSpec(
        "A100-80G",
        79.15,
        "A100-80G",
        "vLLM start-up errors 'Free memory on device (.../79.15 GiB)' on A100-80GB "
        "(search index: find_string '/79.15 GiB')",
    ),
    GpuSpec(
        "H100",
        79.18,
        "H100",
        "vllm-serving.md §3.4: llm-d empirical-vllm-memory-results.md (H100 80GB)",
    ),
    GpuSpec(
        "H100-NVL",
        93.09,
        "H100",
        "torch-reported 'NVIDIA H100 NVL, 93.09 GiB' in public run logs (search index: find_string 'H100 NVL, 93.')",
    ),
    GpuSpec(
        "H200",
        139.81,
        "H200",
        "vllm-serving.md §3.3: vLLM 0.11 log 'Free memory on device (139.21/139.81 GiB)'",
    ),
    GpuSpec(
        "B200",
        178.35,
        "B200",
        "vllm-serving.md §3.4: real B200 vLLM log '(41.24/178.35 GiB)'; not the 192 GB chip figure",
    ),
)
GPUS: Mapping[str, GpuSpec] = MappingProxyType({g.name: g for g in _GPUS})


# --------------------------------------------------------------------------------------
# Machine types
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MachineSpec:
    """A VM shape with NVIDIA GPUs.

    ``rdma_nics`` counts GPUDirect RDMA NICs. Pods that use them must take the whole
    node, because those NICs cannot be shared between pods on one node
    (gcp-a4high.md §4.3).
    """

    name: str
    cloud: Cloud
    gpu: str  # key into GPUS
    gpus: int
    vcpus: int | None
    memory_gib: int | None
    source: str
    rdma_nics: int = 0
    gke_accelerator: str | None = None  # guest accelerator type on GKE
    local_ssds: int = 0  # local NVMe SSDs that come with the machine (GKE: ephemeral storage)
    boot_disk_type: str | None = None  # the disk type the machine must boot from, if it has no choice

    @property
    def family(self) -> str:
        return self.name.split(".")[0] if self.cloud == "aws" else self.name.rsplit("-", 1)[0]


def _aws(family: str, gpu: str, shapes: tuple[tuple[str, int, int, int], ...], source: str) -> tuple[MachineSpec, ...]:
    return tuple(
        MachineSpec(f"{family}.{size}", "aws", gpu, gpus, vcpus, mem, source) for size, gpus, vcpus, mem in shapes
    )


# (size, GPUs, vCPUs, memory GiB): g5 and g6 share their shapes; g6e doubles the memory.
_G5_G6_SHAPES = (
    ("xlarge", 1, 4, 16),
    ("2xlarge", 1, 8, 32),
    ("4xlarge", 1, 16, 64),
    ("8xlarge", 1, 32, 128),
    ("16xlarge", 1, 64, 256),
    ("12xlarge", 4, 48, 192),
    ("24xlarge", 4, 96, 384),
    ("48xlarge", 8, 192, 768),
)
_AWS_G5 = "https://aws.amazon.com/ec2/instance-types/g5/ (A10G 24 GB per GPU)"
_AWS_G6 = "https://aws.amazon.com/ec2/instance-types/g6/ (L4 24 GB per GPU)"
_AWS_G6E = "https://aws.amazon.com/ec2/instance-types/g6e/ (L40S 48 GB per GPU)"
_AWS_P = "https://aws.amazon.com/ec2/instance-types/p5/ and /p4/ and /p6/; aws-eks-karpenter.md §2.7"

_MACHINES = (
    MachineSpec(
        "a4-highgpu-8g",
        "gcp",
        "B200",
        8,
        None,
        None,
        "gcp-a4high.md §1.1, §3 (8x B200, 2 gVNIC + 8 MRDMA NICs; accelerator nvidia-b200; 32 local SSDs "
        "as ephemeral storage per cluster-toolkit gke-node-pool disk_definitions.tf and xpk; Hyperdisk only, "
        "no pd-* disks, per §3 and §7.9)",
        rdma_nics=8,
        gke_accelerator="nvidia-b200",
        local_ssds=32,
        boot_disk_type="hyperdisk-balanced",
    ),
    MachineSpec(
        "a3-ultragpu-8g",
        "gcp",
        "H200",
        8,
        None,
        None,
        "gcp-a4high.md §1.1 (MRDMA NICs exist on A3 Ultra, A4, A4X); accelerator nvidia-h200-141gb (§4.2); "
        "32 local SSDs as ephemeral storage (GoogleCloudPlatform/cluster-toolkit "
        "modules/compute/gke-node-pool/disk_definitions.tf @128bf7e); hyperdisk-balanced boot disk "
        "(Vertex AI DiskSpec reference: the default for A3 Ultra)",
        rdma_nics=8,
        gke_accelerator="nvidia-h200-141gb",
        local_ssds=32,
        boot_disk_type="hyperdisk-balanced",
    ),
    MachineSpec(
        "a3-megagpu-8g",
        "gcp",
        "H100",
        8,
        None,
        None,
        "vllm-serving.md §1.1 (GKE A3 Mega recipe, 8x H100, GPUDirect-TCPXO not RDMA)",
        gke_accelerator="nvidia-h100-mega-80gb",
    ),
    *_aws(
        "g5",
        "A10G",
        _G5_G6_SHAPES,
        _AWS_G5,
    ),
    *_aws(
        "g6",
        "L4",
        _G5_G6_SHAPES,
        _AWS_G6,
    ),
    *_aws(
        "g6e",
        "L40S",
        (
            ("xlarge", 1, 4, 32),
            ("2xlarge", 1, 8, 64),
            ("4xlarge", 1, 16, 128),
            ("8xlarge", 1, 32, 256),
            ("16xlarge", 1, 64, 512),
            ("12xlarge", 4, 48, 384),
            ("24xlarge", 4, 96, 768),
            ("48xlarge", 8, 192, 1536),
        ),
        _AWS_G6E,
    ),
    *_aws("p4d", "A100-40G", (("24xlarge", 8, 96, 1152),), _AWS_P),
    *_aws("p4de", "A100-80G", (("24xlarge", 8, 96, 1152),), _AWS_P),
    *_aws("p5", "H100", (("48xlarge", 8, 192, 2048),), _AWS_P),
    *_aws("p5e", "H200", (("48xlarge", 8, 192, 2048),), _AWS_P),
    *_aws("p5en", "H200", (("48xlarge", 8, 192, 2048),), _AWS_P),
    *_aws("p6-b200", "B200", (("48xlarge", 8, 192, 2048),), _AWS_P),
)
MACHINES: Mapping[str, MachineSpec] = MappingProxyType({m.name: m for m in _MACHINES})


def aws_family_machines(family: str) -> tuple[MachineSpec, ...]:
    """All known instance types of an AWS family (``g5`` -> g5.xlarge ... g5.48xlarge)."""
    return tuple(m for m in _MACHINES if m.cloud == "aws" and m.family == family)


AWS_GPU_FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(m.family for m in _MACHINES if m.cloud == "aws"))


# --------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSpec:
    """Architecture numbers that decide memory, from the model's config.json.

    ``weight_bytes`` is what the serving GPUs hold in total (split over TP x PP);
    ``checkpoint_bytes`` is what sits on disk or in the bucket.
    """

    hf_id: str
    params: float  # total parameters
    layers: int
    attention: Attention
    hidden_size: int
    intermediate_size: int  # widest MLP (dense layers; MoE: max(dense, top_k x expert))
    vocab_size: int
    max_context: int
    weight_bytes: int
    checkpoint_bytes: int
    source: str
    # GQA
    kv_heads: int = 0
    head_dim: int = 0
    # MLA (DeepSeek V3/R1): the cached latent is kv_lora_rank + qk_rope_head_dim wide
    kv_lora_rank: int = 0
    qk_rope_head_dim: int = 0
    activation_dtype_bytes: int = 2  # bf16 activations; also the KV dtype under "auto"
    moe_top_k: int = 0  # routed experts per token (MoE only)
    reasoning_parser: str | None = None  # vLLM --reasoning-parser
    trust_remote_code: bool = False

    def kv_bytes_per_token_per_layer(self, kv_dtype_bytes: int, tp: int) -> int:
        """Bytes one token adds to the KV cache of *one GPU* for one layer it holds.

        MLA keeps a single latent "head" that is replicated on every TP rank, so TP does
        not shrink it (vllm-serving.md §3.2). GQA splits KV heads over TP until there is
        one head per rank; beyond that heads are duplicated.
        """
        if self.attention == "mla":
            return (self.kv_lora_rank + self.qk_rope_head_dim) * kv_dtype_bytes
        heads_per_rank = max(1, self.kv_heads // tp)
        return 2 * heads_per_rank * self.head_dim * kv_dtype_bytes


def _bf16_dense(
    hf_id: str,
    params: float,
    layers: int,
    hidden: int,
    intermediate: int,
    kv_heads: int,
    vocab: int,
    source: str,
    reasoning_parser: str | None = "deepseek_r1",
) -> ModelSpec:
    weight_bytes = int(params * 2)  # BF16 checkpoint: 2 bytes per parameter [computed]
    return ModelSpec(
        hf_id=hf_id,
        params=params,
        layers=layers,
        attention="gqa",
        hidden_size=hidden,
        intermediate_size=intermediate,
        vocab_size=vocab,
        max_context=131072,
        weight_bytes=weight_bytes,
        checkpoint_bytes=weight_bytes,
        source=source,
        kv_heads=kv_heads,
        head_dim=128,
        reasoning_parser=reasoning_parser,
    )


_R1_SOURCE = (
    "vllm-serving.md §0, §3.1: deepseek-ai/DeepSeek-V3 config_671B.json (61 layers, kv_lora_rank 512, "
    "qk_rope_head_dim 64, hidden 7168, moe_inter 2048 x 8 active, dense inter 18432, vocab 129280, "
    "163840 positions); 163 FP8 shards ~688 GB on disk (vllm-project/aibrix#834); 79.41 GiB loaded per "
    "GPU at TP8 (HabanaAI/vllm-fork#809), so 8 x 79.41 GiB across the TP group [computed]"
)


def _deepseek_r1(hf_id: str) -> ModelSpec:
    return ModelSpec(
        hf_id=hf_id,
        params=671e9,
        layers=61,
        attention="mla",
        hidden_size=7168,
        intermediate_size=18432,
        vocab_size=129280,
        max_context=163840,
        weight_bytes=int(8 * 79.41 * GIB),
        checkpoint_bytes=688 * GB,
        source=_R1_SOURCE,
        kv_lora_rank=512,
        qk_rope_head_dim=64,
        moe_top_k=8,
        reasoning_parser="deepseek_r1",
        trust_remote_code=True,
    )


_HF = "huggingface.co/{}/blob/main/config.json"
_MODELS = (
    _deepseek_r1("deepseek-ai/DeepSeek-R1"),
    _deepseek_r1("deepseek-ai/DeepSeek-R1-0528"),
    _bf16_dense(
        "deepseek-ai/DeepSeek-R1-Distill-Llama-8B",
        8.03e9,
        32,
        4096,
        14336,
        8,
        128256,
        "vllm-serving.md §3.1 (Llama-3.1-8B architecture: 8.03B params, 32 layers, 8 KV heads, "
        "head_dim 128, 131072 ctx; 14.99 GiB weights in the A10G log)",
    ),
    _bf16_dense(
        "deepseek-ai/DeepSeek-R1-Distill-Llama-70B",
        70.55e9,
        80,
        8192,
        28672,
        8,
        128256,
        _HF.format("deepseek-ai/DeepSeek-R1-Distill-Llama-70B") + " (Llama-3.3-70B architecture)",
    ),
    _bf16_dense(
        "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
        1.78e9,
        28,
        1536,
        8960,
        2,
        151936,
        _HF.format("deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B") + " (copies seen in the docs index)",
    ),
    _bf16_dense(
        "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
        7.62e9,
        28,
        3584,
        18944,
        4,
        152064,
        _HF.format("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B") + " (copies seen in the docs index)",
    ),
    _bf16_dense(
        "deepseek-ai/DeepSeek-R1-Distill-Qwen-14B",
        14.77e9,
        48,
        5120,
        13824,
        8,
        152064,
        _HF.format("deepseek-ai/DeepSeek-R1-Distill-Qwen-14B") + " (Qwen2.5-14B architecture)",
    ),
    _bf16_dense(
        "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B",
        32.76e9,
        64,
        5120,
        27648,
        8,
        152064,
        _HF.format("deepseek-ai/DeepSeek-R1-Distill-Qwen-32B") + " (copies seen in the docs index)",
    ),
    _bf16_dense(
        "meta-llama/Llama-3.1-8B-Instruct",
        8.03e9,
        32,
        4096,
        14336,
        8,
        128256,
        "vllm-serving.md §3.1 (Llama-3.1-8B HF config)",
        reasoning_parser=None,
    ),
    _bf16_dense(
        "meta-llama/Llama-3.1-70B-Instruct",
        70.55e9,
        80,
        8192,
        28672,
        8,
        128256,
        _HF.format("meta-llama/Llama-3.1-70B-Instruct"),
        reasoning_parser=None,
    ),
)
MODELS: Mapping[str, ModelSpec] = MappingProxyType({m.hf_id: m for m in _MODELS})


# --------------------------------------------------------------------------------------
# vLLM behaviour that sizing depends on
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EngineMemoryModel:
    """How one vLLM release carves up GPU memory (vllm-serving.md §3.3).

    ``subtracts_cudagraphs``: since 0.20 the KV budget excludes the estimated CUDA-graph
    memory (VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS=1 by default).
    """

    name: str
    subtracts_cudagraphs: bool
    source: str

    def default_max_num_batched_tokens(self, gpu: GpuSpec) -> int:
        # arg_utils.get_batch_defaults (0.33.0): >=160 GiB 16384, >=70 GiB (not A100) 8192, else 2048
        if gpu.memory_gib >= 160:
            return 16384
        if gpu.memory_gib >= 70 and not gpu.name.startswith("A100"):
            return 8192
        return 2048

    def default_max_num_seqs(self, gpu: GpuSpec) -> int:
        # arg_utils.get_batch_defaults (0.33.0): 1024 on >=70 GiB non-A100 GPUs, else 256
        if gpu.memory_gib >= 70 and not gpu.name.startswith("A100"):
            return 1024
        return 256


VLLM_MEMORY_MODEL = EngineMemoryModel(
    "vLLM >= 0.20", True, "vllm-serving.md §1.1, §1.2 (0.33.0 arg_utils.py, gpu_worker.py)"
)
# The V0 engine of the published A10G log the sizing is calibrated on (vllm-serving.md §3.3).
VLLM_V0_MEMORY_MODEL = EngineMemoryModel(
    "vLLM 0.7 (V0)", False, "vllm-serving.md §1.2 (CUDA-graph memory not in the KV budget before 0.20)"
)


# --------------------------------------------------------------------------------------
# Images and charts (pinned)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Image:
    repository: str
    tag: str
    source: str

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
)
# Ray Serve LLM image; rayClusterConfig.rayVersion must equal RAY_VERSION.
RAY_VERSION = "2.52.0"
RAY_LLM_IMAGE = Image(
    "rayproject/ray-llm",
    f"{RAY_VERSION}-py311-cu128",
    "aws-eks-karpenter.md §0, §4.4 (KubeRay samples ray-service.llm-serve.yaml, ray-service.deepseek.yaml); "
    "CUDA 12.8 build, so the AL2023 NVIDIA driver suffices (the cu130 builds need driver >= 580, §2.7)",
)
OPEN_WEBUI_IMAGE = Image(
    "ghcr.io/open-webui/open-webui",
    "v0.7.2",
    "aws-eks-karpenter.md §0, §6 (Helm chart 10.2.1, appVersion 0.7.2; pin instead of :main)",
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

# --------------------------------------------------------------------------------------
# AWS platform: Karpenter, the GPU node image, the NVIDIA device plugin
# --------------------------------------------------------------------------------------

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
    source: str


GPU_NODE_AMI = AmiAlias(
    "al2023@v20260714",
    ("1.30", "1.31", "1.32", "1.33", "1.34", "1.35", "1.36"),
    "awslabs/amazon-eks-ami CHANGELOG.md 'AMI Release v20260714' (tag v20260714, commit b4fffb70): "
    "amazon-eks-node-al2023-x86_64-nvidia-<1.30..1.36>-v20260714, kmod-nvidia-latest-dkms 580.159.03, "
    "nvidia-container-toolkit 1.19.1; alias format and the advice to pin: aws-eks-karpenter.md §2.6, §2.7 "
    "(KP v1.14 nodeclasses.md, tasks/managing-amis.md)",
)

# AL2023 NVIDIA AMIs ship the driver but not the Kubernetes device plugin (§2.7, §3).
NVIDIA_DEVICE_PLUGIN_CHART = Chart(
    "nvidia-device-plugin",
    "0.20.0",
    "https://nvidia.github.io/k8s-device-plugin",
    "aws-eks-karpenter.md §0, §3; NVIDIA/k8s-device-plugin @v0.20.0 (1b826acc) "
    "deployments/helm/nvidia-device-plugin/Chart.yaml",
)

# Instance metadata: IMDSv2 only. GPU nodes keep the hop limit at 1 so pods cannot borrow
# the node role (they use Pod Identity); system nodes allow 2 because Karpenter's
# controller finds its region through IMDS from inside its pod (the chart sets no
# AWS_REGION) and EKS's own managed-node-group template uses 2.
IMDS_HOP_LIMIT_GPU_NODES = 1  # KP v1.14 nodeclasses.md metadataOptions default
IMDS_HOP_LIMIT_SYSTEM_NODES = 2  # pulumi-eks nodejs/eks/nodes/nodegroup.ts createMNGCustomLaunchTemplate

# Model load speed anchors used to size start-up probes and timeouts (vllm-serving.md §4.2).
HF_DOWNLOAD_BYTES_PER_S = 300 * 1000**2  # "HF download at 300 MB/s -> 38 min" for R1 [computed there]
BUCKET_STREAM_BYTES_PER_S = 860 * 1024**2  # Run:ai streamer from S3: 15 GiB in 17.8 s at 860 MiB/s
ENGINE_INIT_SECONDS = 15 * 60  # profile, torch.compile, CUDA graphs for a cold 671B start [estimate]
BUCKET_UPLOAD_BYTES_PER_S = 200 * 1000**2  # one `gcloud storage rsync`/`aws s3 sync` from one node [estimate]

# vLLM engine start timeout default (vllm-serving.md §1.3: VLLM_ENGINE_READY_TIMEOUT_S = 600).
VLLM_ENGINE_READY_TIMEOUT_DEFAULT_S = 600

__all__ = [
    "AWS_CLI_IMAGE",
    "AWS_GPU_FAMILIES",
    "BUCKET_STREAM_BYTES_PER_S",
    "BUCKET_UPLOAD_BYTES_PER_S",
    "ENGINE_INIT_SECONDS",
    "GB",
    "GCLOUD_CLI_IMAGE",
    "GIB",
    "GIB_INSTALLER_REPOSITORY",
    "GKE_PAUSE_IMAGE",
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
    "MACHINES",
    "MODELS",
    "NVIDIA_DEVICE_PLUGIN_CHART",
    "OPEN_WEBUI_IMAGE",
    "RAY_LLM_IMAGE",
    "RAY_VERSION",
    "VLLM_ENGINE_READY_TIMEOUT_DEFAULT_S",
    "VLLM_IMAGE",
    "VLLM_MEMORY_MODEL",
    "VLLM_V0_MEMORY_MODEL",
    "AmiAlias",
    "Chart",
    "EngineMemoryModel",
    "GpuSpec",
    "Image",
    "MachineSpec",
    "ModelSpec",
    "aws_family_machines",
]
