"""Machine types with NVIDIA GPUs, on Google Cloud and AWS."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from components.catalog.units import Cloud


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
    # Memory-backed /dev/shm for a pod on this machine (NCCL's shared-memory transport
    # and the engine's worker processes use it; it counts against the node's memory):
    # a published size, or ``shm_rule(memory_gib)``. Every machine has one.
    shm_gib: int = 0

    def __post_init__(self) -> None:
        if self.shm_gib < 1:
            raise ValueError(f"{self.name}: no /dev/shm size (publish one or use shm_rule)")

    @property
    def family(self) -> str:
        return self.name.split(".")[0] if self.cloud == "aws" else self.name.rsplit("-", 1)[0]


# Every Google A4 and A3 Ultra reference gives an 8-GPU pod 250Gi of /dev/shm
# (container-engine-accelerators gpudirect-rdma/nccl-test-a4.yaml; cluster-toolkit
# examples/gke-a4/nccl-jobset-example.yaml and examples/gke-a3-ultragpu/nccl-jobset-example.yaml
# @1047080; gpu-recipes serving-launcher.yaml). It is also the most any machine gets.
SHM_GIB_MAX = 250
SHM_MEMORY_FRACTION = 8  # rule: an eighth of the machine's memory, up to SHM_GIB_MAX


def shm_rule(memory_gib: int) -> int:
    """/dev/shm where no reference publishes a size: an eighth of the machine's memory,
    at most SHM_GIB_MAX, at least 1 GiB: our rule, so that a one-GPU g5.xlarge (16 GiB)
    gets 2 GiB rather than most of its memory, and a p5.48xlarge (2 TiB) the 250 GiB cap."""
    return max(1, min(SHM_GIB_MAX, memory_gib // SHM_MEMORY_FRACTION))


def _aws(family: str, gpu: str, shapes: tuple[tuple[str, int, int, int], ...], source: str) -> tuple[MachineSpec, ...]:
    return tuple(
        MachineSpec(f"{family}.{size}", "aws", gpu, gpus, vcpus, mem, source, shm_gib=shm_rule(mem))
        for size, gpus, vcpus, mem in shapes
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
        shm_gib=SHM_GIB_MAX,  # the A4 references above
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
        shm_gib=SHM_GIB_MAX,  # cluster-toolkit examples/gke-a3-ultragpu/nccl-jobset-example.yaml
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
        # Google's A3 Mega NCCL test gives its pods 1Gi (cluster-toolkit
        # examples/gke-a3-megagpu/nccl-test-latest.yaml @1047080); memory not recorded here.
        shm_gib=1,
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
