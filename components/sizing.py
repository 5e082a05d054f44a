"""Will this model, at this context length, start on these GPUs? Pure functions.

The memory model follows how vLLM carves up each GPU (vllm-serving.md §3.3)::

    budget    = total_memory x gpu_memory_utilization          (per GPU)
    kv_budget = budget - weights - activation_peak - non_torch - cudagraphs
    tokens    = kv_budget // kv_bytes_per_token_on_this_gpu
    start-up fails unless tokens >= max_model_len

Weights and activations are split over the tensor-parallel group; the KV cache per
token depends on the layers one GPU holds (its pipeline stage) and, for DeepSeek's MLA,
is *not* divided by TP: the latent cache is replicated on every rank (§3.2).

Calibration: the published vLLM 0.7 log of R1-Distill-Llama-8B on an A10G at
utilization 0.90 (weights 14.99 GiB, activation 0.85 GiB, KV 4.17 GiB) is reproduced
within 0.3 GiB (tests/test_sizing.py). Overheads other than weights are estimates
with the sources named next to them; the MoE activation peak is unmeasured (§7), so
treat R1 KV numbers as +/- 10 GiB per GPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from components.catalog import (
    BUCKET_STREAM_BYTES_PER_S,
    BUCKET_UPLOAD_BYTES_PER_S,
    ENGINE_INIT_SECONDS,
    GIB,
    HF_DOWNLOAD_BYTES_PER_S,
    VLLM_MEMORY_MODEL,
    EngineMemoryModel,
    GpuSpec,
    ModelSpec,
)

KvCacheDtype = Literal["auto", "bfloat16", "fp8", "fp8_e4m3", "fp8_e5m2"]

# Context lengths we suggest are rounded down to this many tokens (a multiple of every
# vLLM KV block size: 16 for GQA, 64/128 for MLA backends; §3.6).
CONTEXT_GRANULE = 1024


@dataclass(frozen=True)
class SizingRequest:
    model: ModelSpec
    gpu: GpuSpec
    tensor_parallel: int = 1
    pipeline_parallel: int = 1
    gpu_memory_utilization: float = 0.90
    max_model_len: int | None = None  # None: the largest context that fits
    kv_cache_dtype: KvCacheDtype = "auto"
    max_num_batched_tokens: int | None = None  # None: the engine's default for this GPU
    max_num_seqs: int | None = None  # None: the engine's default for this GPU
    engine: EngineMemoryModel = VLLM_MEMORY_MODEL


@dataclass(frozen=True)
class SizingProblem:
    """A reason the engine cannot start; ``setting`` is the ServingConfig field to change."""

    setting: Literal["model", "tensorParallelSize", "maxModelLen", "gpuMemoryUtilization"]
    message: str


@dataclass(frozen=True)
class SizingReport:
    request: SizingRequest
    budget_gib: float
    weights_gib: float
    activation_gib: float
    non_torch_gib: float
    cudagraph_gib: float
    kv_gib: float
    kv_bytes_per_token: int
    tokens_fit: int
    max_model_len: int  # the requested length, or the resolved one when none was asked for
    problems: tuple[SizingProblem, ...] = field(default=())

    @property
    def fits(self) -> bool:
        return not self.problems

    @property
    def concurrency(self) -> float:
        """Full-length sequences the KV cache holds at once (vLLM's "Maximum concurrency")."""
        return self.tokens_fit / self.max_model_len if self.max_model_len else 0.0


def kv_dtype_bytes(model: ModelSpec, kv_cache_dtype: KvCacheDtype) -> int:
    """``auto`` keeps the model's activation dtype (bf16 even for R1's FP8 weights)."""
    if kv_cache_dtype == "auto":
        return model.activation_dtype_bytes
    return 2 if kv_cache_dtype == "bfloat16" else 1


def layers_per_gpu(model: ModelSpec, pipeline_parallel: int) -> int:
    """Layers on the busiest pipeline stage: vLLM gives the remainder to the first stages
    (61 layers at PP 2 -> [31, 30]; vllm-serving.md §1.1 get_pp_indices)."""
    return math.ceil(model.layers / pipeline_parallel)


def kv_bytes_per_token(request: SizingRequest) -> int:
    """KV bytes one token costs on the GPU that holds the most layers."""
    per_layer = request.model.kv_bytes_per_token_per_layer(
        kv_dtype_bytes(request.model, request.kv_cache_dtype), request.tensor_parallel
    )
    return per_layer * layers_per_gpu(request.model, request.pipeline_parallel)


def activation_peak_bytes(request: SizingRequest, batched_tokens: int, max_num_seqs: int) -> int:
    """Peak activation of vLLM's profiling forward pass on one GPU [estimate].

    Per batched token: the widest MLP input pair (split over TP) plus about four
    hidden-size buffers that stay whole, in bf16; MoE adds top-k copies of the hidden
    state for the fused-expert intermediates. The sampler's fp32 logits for
    ``max_num_seqs`` sequences come on top. Calibrated on the A10G log (0.85 GiB
    measured at 8192 tokens, 0.69 GiB here); the R1 MoE peak is unmeasured (§7).
    """
    model = request.model
    act = model.activation_dtype_bytes
    per_token = (2 * model.intermediate_size // request.tensor_parallel + 4 * model.hidden_size) * act
    per_token += model.moe_top_k * model.hidden_size * act * 2
    sampler = max_num_seqs * model.vocab_size * 4
    return batched_tokens * per_token + sampler


def non_torch_gib(tensor_parallel: int) -> float:
    """CUDA context and NCCL buffers outside PyTorch's allocator [estimate]: 0.15 GiB on
    one GPU, 0.6 GiB for small TP groups (llm-d-planner constants, vllm-serving.md §3.6),
    1.5 GiB for TP 8 NCCL (§3.5)."""
    if tensor_parallel == 1:
        return 0.15
    return 0.6 if tensor_parallel <= 4 else 1.5


def cudagraph_gib(engine: EngineMemoryModel, weights_gib: float) -> float:
    """CUDA-graph memory subtracted from the KV budget since vLLM 0.20 [estimate]: about
    3 % of the weights (0.45 GiB for 14.99 GiB on H100, 2.37 GiB for 74.28 GiB on H200;
    vllm-serving.md §3.3), at least 0.3 GiB."""
    if not engine.subtracts_cudagraphs:
        return 0.0
    return max(0.3, 0.03 * weights_gib)


def size(request: SizingRequest) -> SizingReport:
    """The memory plan of one GPU of the engine, and every reason it cannot start."""
    model, gpu = request.model, request.gpu
    gpus = request.tensor_parallel * request.pipeline_parallel
    batched = request.max_num_batched_tokens or request.engine.default_max_num_batched_tokens(gpu)
    seqs = request.max_num_seqs or request.engine.default_max_num_seqs(gpu)

    budget = gpu.memory_gib * request.gpu_memory_utilization
    weights = model.weight_bytes / gpus / GIB
    activation = activation_peak_bytes(request, batched, seqs) / GIB
    non_torch = non_torch_gib(request.tensor_parallel)
    graphs = cudagraph_gib(request.engine, weights)
    kv = budget - weights - activation - non_torch - graphs
    per_token = kv_bytes_per_token(request)
    tokens = max(0, int(kv * GIB) // per_token)
    fitting = (min(tokens, model.max_context) // CONTEXT_GRANULE) * CONTEXT_GRANULE
    max_model_len = request.max_model_len or fitting

    problems: list[SizingProblem] = []
    where = f"{gpus} x {gpu.name} ({gpu.memory_gib:.2f} GiB each)"
    if weights >= budget:
        problems.append(
            SizingProblem(
                "tensorParallelSize",
                f"the weights of {model.hf_id} need {weights:.2f} GiB per GPU on {where}, more than the "
                f"{budget:.2f} GiB vLLM may use at gpu_memory_utilization {request.gpu_memory_utilization}; "
                "use more GPUs per engine (tensor/pipeline parallel) or a larger GPU",
            )
        )
    elif kv <= 0:
        problems.append(
            SizingProblem(
                "gpuMemoryUtilization",
                f"after weights ({weights:.2f} GiB), activations ({activation:.2f} GiB) and runtime "
                f"overhead ({non_torch + graphs:.2f} GiB) nothing is left for the KV cache on {where}",
            )
        )
    if request.max_model_len is not None and request.max_model_len > model.max_context:
        problems.append(
            SizingProblem(
                "maxModelLen",
                f"{model.hf_id} supports at most {model.max_context} tokens of context",
            )
        )
    elif kv > 0 and weights < budget and tokens < max_model_len:
        needed = max_model_len * per_token / GIB
        problems.append(
            SizingProblem(
                "maxModelLen",
                f"one {max_model_len}-token sequence needs {needed:.2f} GiB of KV cache per GPU, but only "
                f"{kv:.2f} GiB fit on {where} ({tokens} tokens); at most {fitting} fits, or use fp8 KV "
                "cache or more GPUs",
            )
        )
    elif kv > 0 and weights < budget and fitting == 0:
        problems.append(
            SizingProblem(
                "gpuMemoryUtilization",
                f"only {tokens} tokens of KV cache fit on {where}; raise gpu_memory_utilization or use more GPUs",
            )
        )

    return SizingReport(
        request=request,
        budget_gib=budget,
        weights_gib=weights,
        activation_gib=activation,
        non_torch_gib=non_torch,
        cudagraph_gib=graphs,
        kv_gib=kv,
        kv_bytes_per_token=per_token,
        tokens_fit=tokens,
        max_model_len=max_model_len,
        problems=tuple(problems),
    )


def format_report(report: SizingReport) -> str:
    """A short human-readable memory plan, as the offline plan prints it."""
    r = report.request
    lines = [
        f"model {r.model.hf_id} on {r.tensor_parallel * r.pipeline_parallel} x {r.gpu.name} "
        f"(TP {r.tensor_parallel}, PP {r.pipeline_parallel}), KV cache dtype {r.kv_cache_dtype}",
        f"  budget per GPU     {report.budget_gib:8.2f} GiB  ({r.gpu.memory_gib:.2f} GiB x {r.gpu_memory_utilization})",
        f"  weights            {report.weights_gib:8.2f} GiB",
        f"  activation peak    {report.activation_gib:8.2f} GiB  (estimate)",
        f"  runtime overhead   {report.non_torch_gib + report.cudagraph_gib:8.2f} GiB  (CUDA context, NCCL, graphs)",
        f"  KV cache           {report.kv_gib:8.2f} GiB  = {report.tokens_fit:,} tokens "
        f"at {report.kv_bytes_per_token:,} B/token",
        f"  max_model_len      {report.max_model_len:8d}      -> {report.concurrency:.1f} full-length sequences fit",
    ]
    lines += [f"  DOES NOT FIT: {p.message}" for p in report.problems]
    return "\n".join(lines)


def startup_budget_seconds(model: ModelSpec, from_bucket: bool) -> int:
    """How long the first start of the engine may take before Kubernetes gives up on it.

    Download (Hugging Face at ~300 MB/s, or streaming from the stack's bucket at
    ~860 MiB/s; vllm-serving.md §4.2) plus engine initialisation, with 50 % headroom,
    and never less than 20 minutes. DeepSeek R1 from Hugging Face gets ~80 minutes,
    matching the 30-50 minute loads users report.
    """
    rate = BUCKET_STREAM_BYTES_PER_S if from_bucket else HF_DOWNLOAD_BYTES_PER_S
    seconds = 1.5 * (model.checkpoint_bytes / rate + ENGINE_INIT_SECONDS)
    return max(20 * 60, math.ceil(seconds / 60.0) * 60)


def cache_job_deadline_seconds(model: ModelSpec) -> int:
    """Deadline of the Job that copies a model into the bucket: download plus upload,
    doubled, plus half an hour (DeepSeek R1's ~688 GB: about 4 hours)."""
    seconds = 2 * (
        model.checkpoint_bytes / HF_DOWNLOAD_BYTES_PER_S + model.checkpoint_bytes / BUCKET_UPLOAD_BYTES_PER_S
    )
    return int(seconds) + 30 * 60
