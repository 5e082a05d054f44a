"""GPUs: memory as CUDA reports it (what vLLM multiplies by --gpu-memory-utilization)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


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

# CUDA compute capability (major, minor) of each GPU above: what vLLM's kernels and
# attention backends are chosen by. NVIDIA, "CUDA GPUs - Compute Capability"
# (https://developer.nvidia.com/cuda-gpus): A10 and A10G 8.6, L4 8.9, L40S 8.9, A100 8.0,
# H100 and H200 9.0, B200 10.0.
COMPUTE_CAPABILITY: Mapping[str, tuple[int, int]] = MappingProxyType(
    {
        "A10G": (8, 6),
        "L4": (8, 9),
        "L40S": (8, 9),
        "A100-40G": (8, 0),
        "A100-80G": (8, 0),
        "H100": (9, 0),
        "H100-NVL": (9, 0),
        "H200": (9, 0),
        "B200": (10, 0),
    }
)
# Native FP8 (e4m3) arithmetic starts with Ada (8.9): below it vLLM runs FP8 weights
# weight-only through Marlin, and its Triton MLA backend (the only MLA backend below 9.0)
# refuses an FP8 KV cache (vLLM 0.33 v1/attention/backends/mla/triton_mla.py).
FP8_MIN_CAPABILITY = (8, 9)
