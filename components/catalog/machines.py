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
