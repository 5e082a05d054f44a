"""How the pinned engines behave where sizing and start-up timing depend on it."""

from __future__ import annotations

from dataclasses import dataclass

from components.catalog.gpus import GpuSpec


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


# Model load speed anchors used to size start-up probes and timeouts (vllm-serving.md §4.2).
HF_DOWNLOAD_BYTES_PER_S = 300 * 1000**2  # "HF download at 300 MB/s -> 38 min" for R1 [computed there]
BUCKET_STREAM_BYTES_PER_S = 860 * 1024**2  # Run:ai streamer from S3: 15 GiB in 17.8 s at 860 MiB/s
ENGINE_INIT_SECONDS = 15 * 60  # profile, torch.compile, CUDA graphs for a cold 671B start [estimate]
BUCKET_UPLOAD_BYTES_PER_S = 200 * 1000**2  # one `gcloud storage rsync`/`aws s3 sync` from one node [estimate]

# vLLM engine start timeout default (vllm-serving.md §1.3: VLLM_ENGINE_READY_TIMEOUT_S = 600).
VLLM_ENGINE_READY_TIMEOUT_DEFAULT_S = 600
