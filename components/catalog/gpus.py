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
