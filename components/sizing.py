"""Will this model, at this context length and layout, start on these GPUs? Pure functions.

The memory model follows how vLLM carves up each GPU (vllm-serving.md §3.3)::

    budget    = total_memory x gpu_memory_utilization          (per GPU)
    kv_budget = budget - weights - activation_peak - non_torch - cudagraphs
    tokens    = kv_budget // kv_bytes_per_token_on_this_gpu
    start-up fails unless tokens >= max_model_len

Per topology (components/topology.py; audit/performance.md §1):

* Weights. Dense models: split over TP x PP. DeepSeek-style MoE models are counted from
  their dimensions (``moe_weights``), then scaled to one CUDA measurement (R1 at TP 8:
  79.74 GiB): TP splits attention heads, dense MLPs, experts, embeddings and LM head;
  DP attention (TP 1 per rank) keeps a whole copy of attention, dense layers,
  embeddings and LM head on every rank and divides only the routed experts by EP.
* Pipeline stages hold vLLM's layer split (61 layers at PP 2 -> 31 + 30; the first stage
  holds the embeddings, the last the LM head) and are sized separately; vLLM uses the
  smallest KV capacity across workers.
* KV cache. DeepSeek's MLA keeps one latent "head" replicated on every TP rank (TP does
  not shrink it, §3.2); GQA heads split over TP. Decode context parallelism shards it by
  sequence over its ranks; each DP rank has a private cache, so a replica holds
  DP x the tokens of one rank. fp8 KV is one byte per element.
* MTP adds one MoE layer of weights and its KV cache (the draft shares the target's
  embeddings: 0.33.0 v1/spec_decode/llm_base_proposer.py ``_maybe_share_embeddings``).

Calibration (tests/test_sizing.py): the A10G vLLM 0.7 log (weights 14.99, activation
0.85, KV 4.17 GiB) within 0.3 GiB; R1 on 8 x H200 (0.11.2 log: KV 41.60 GiB = 635,648
tokens) within 2 %; R1 TP 8 x PP 2 against vllm-project/vllm#13074 (39.66 GiB weights,
2.53 GiB non-torch). Other overheads are estimates with their sources named next to them.
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
from components.topology import Layout

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
    data_parallel: int = 1
    expert_parallel: bool = False
    decode_context_parallel: int = 1
    mtp_speculative_tokens: int = 0
    gpu_memory_utilization: float = 0.90
    max_model_len: int | None = None  # None: the largest context that fits
    kv_cache_dtype: KvCacheDtype = "auto"
    max_num_batched_tokens: int | None = None  # None: the engine's default for this GPU
    max_num_seqs: int | None = None  # None: the engine's default for this GPU
    engine: EngineMemoryModel = VLLM_MEMORY_MODEL

    @property
    def layout(self) -> Layout:
        return Layout(
            self.tensor_parallel,
            self.pipeline_parallel,
            self.data_parallel,
            self.expert_parallel,
            self.decode_context_parallel,
        )


@dataclass(frozen=True)
class StagePlan:
    """One pipeline stage: what each of its GPUs holds."""

    stage: int
    layers: int
    weights_gib: float
    kv_gib: float
    kv_bytes_per_token: int
    tokens_fit: int


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
    tokens_fit: int  # tokens one engine (one DP rank) holds: the smallest over its stages
    max_model_len: int  # the requested length, or the resolved one when none was asked for
    problems: tuple[SizingProblem, ...] = field(default=())
    stages: tuple[StagePlan, ...] = field(default=())

    @property
    def fits(self) -> bool:
        return not self.problems

    @property
    def replica_tokens(self) -> int:
        """Tokens the whole replica holds: every DP rank has its own cache."""
        return self.tokens_fit * self.request.data_parallel

    @property
    def concurrency(self) -> float:
        """Full-length sequences the KV cache holds at once (vLLM's "Maximum concurrency")."""
        return self.tokens_fit / self.max_model_len if self.max_model_len else 0.0


def kv_dtype_bytes(model: ModelSpec, kv_cache_dtype: KvCacheDtype) -> int:
    """``auto`` keeps the model's activation dtype (bf16 even for R1's FP8 weights)."""
    if kv_cache_dtype == "auto":
        return model.activation_dtype_bytes
    return 2 if kv_cache_dtype == "bfloat16" else 1


def pipeline_partition(layers: int, pipeline_parallel: int) -> list[int]:
    """Layers per pipeline stage as vLLM splits them (0.33.0 vllm/distributed/utils.py
    get_pp_indices): even shares, the remainder to the stages before the last (61 layers
    at PP 2 -> [31, 30])."""
    partitions = [layers // pipeline_parallel] * pipeline_parallel
    for i in range(2, layers % pipeline_parallel + 2):
        partitions[-i] += 1
    return partitions


def layers_per_gpu(model: ModelSpec, pipeline_parallel: int) -> int:
    """Layers on the busiest pipeline stage."""
    return max(pipeline_partition(model.layers, pipeline_parallel))


def _kv_bytes_per_layer(request: SizingRequest) -> int:
    per_layer = request.model.kv_bytes_per_token_per_layer(
        kv_dtype_bytes(request.model, request.kv_cache_dtype), request.tensor_parallel
    )
    return per_layer // request.decode_context_parallel  # DCP shards each token's cache


def _stage_layers(request: SizingRequest) -> list[int]:
    """Attention layers (with a KV cache) per stage; MTP's layer sits on the last."""
    layers = pipeline_partition(request.model.layers, request.pipeline_parallel)
    if request.mtp_speculative_tokens:
        layers[-1] += request.model.mtp_layers
    return layers


def kv_bytes_per_token(request: SizingRequest) -> int:
    """KV bytes one token costs on the GPU that holds the most layers."""
    return _kv_bytes_per_layer(request) * max(_stage_layers(request))


def _fp8_block_scaled(params: int, weight_bytes: int) -> float:
    """Bytes of quantized linear weights: FP8 carries one fp32 scale per 128 x 128 block
    (DeepSeek-V3 README, "FP8 weights ... weight_scale_inv")."""
    return params * (weight_bytes + (4 / (128 * 128) if weight_bytes == 1 else 0))


@dataclass(frozen=True)
class MoeWeights:
    """Bytes of each part of a DeepSeek-style MoE model, whole (not yet split)."""

    embedding: float  # token embeddings; the LM head is the same size
    attention_replicated: float  # per layer: q_a and kv_a projections (vLLM replicates them)
    attention_split: float  # per layer: q_b, kv_b and o projections (split over TP heads)
    attention_absorbed: float  # per layer: bf16 W_UK/W_UV copies MLA derives from kv_b (split over TP)
    dense_mlp: float  # per dense layer
    expert: float  # one routed or shared expert
    router: float  # per MoE layer (replicated)


def moe_weights(model: ModelSpec) -> MoeWeights:
    """Weight bytes by part from the model's dimensions [computed]. Quantized linear layers
    at ``linear_weight_bytes``; embeddings, LM head and router in bf16 (activation dtype);
    MLA's absorbed kv_b copies in bf16 (vLLM MLACommonImpl.process_weights_after_loading)."""
    act, lin, hidden = model.activation_dtype_bytes, model.linear_weight_bytes, model.hidden_size
    heads, nope, rope, v = model.attention_heads, model.qk_nope_head_dim, model.qk_rope_head_dim, model.v_head_dim
    kv_b = model.kv_lora_rank * heads * (nope + v)
    return MoeWeights(
        embedding=model.vocab_size * hidden * act,
        attention_replicated=_fp8_block_scaled(hidden * model.q_lora_rank + hidden * (model.kv_lora_rank + rope), lin),
        attention_split=_fp8_block_scaled(model.q_lora_rank * heads * (nope + rope) + kv_b + heads * v * hidden, lin),
        attention_absorbed=kv_b * act,
        dense_mlp=_fp8_block_scaled(3 * hidden * model.intermediate_size, lin),
        expert=_fp8_block_scaled(3 * hidden * model.moe_intermediate_size, lin),
        router=model.experts * hidden * act,
    )


def _moe_stage_bytes(model: ModelSpec, layout: Layout, stage: int, mtp_layers: int) -> float:
    """Weight bytes on one GPU of ``stage`` [computed, before calibration]."""
    parts = moe_weights(model)
    tp = layout.tensor
    partition = pipeline_partition(model.layers, layout.pipeline)
    first = sum(partition[:stage])
    indices = range(first, first + partition[stage])
    dense = sum(1 for i in indices if i < model.dense_layers)
    moe = len(indices) - dense
    if stage == layout.pipeline - 1:
        moe += mtp_layers  # the MTP module is one more MoE layer, run after the last stage
    attention = parts.attention_replicated + (parts.attention_split + parts.attention_absorbed) / tp
    routed = model.experts * parts.expert / (layout.expert_ranks if layout.expert else tp)
    moe_layer = routed + model.shared_experts * parts.expert / tp + parts.router
    total = (dense + moe) * attention + dense * parts.dense_mlp / tp + moe * moe_layer
    if stage == 0:
        total += parts.embedding / tp
    if stage == layout.pipeline - 1:
        total += parts.embedding / tp  # LM head, as large as the embeddings
    return total


def _derived_weights(model: ModelSpec) -> bool:
    return model.is_moe and model.attention == "mla"


def weights_gib_per_stage(request: SizingRequest) -> list[float]:
    """GiB of weights on one GPU of each pipeline stage."""
    model, layout = request.model, request.layout
    mtp = model.mtp_layers if request.mtp_speculative_tokens else 0
    if not _derived_weights(model):
        return [model.weight_bytes / (layout.tensor * layout.pipeline) / GIB] * layout.pipeline
    scale = 1.0
    if model.measured_weights is not None:
        tp, gib = model.measured_weights
        scale = gib * GIB / _moe_stage_bytes(model, Layout(tensor=tp), 0, 0)
    return [_moe_stage_bytes(model, layout, s, mtp) * scale / GIB for s in range(layout.pipeline)]


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


# Extra NCCL memory of a pipeline-parallel engine: vllm-project/vllm#13074 measured 2.53 GiB
# non-torch on R1 at TP 8 x PP 2, against the 1.5 GiB of TP 8 alone.
PIPELINE_NON_TORCH_GIB = 2.53 - 1.5


def non_torch_gib(tensor_parallel: int, pipeline_parallel: int = 1) -> float:
    """CUDA context and NCCL buffers outside PyTorch's allocator [estimate], by the size of
    the largest communicator a GPU joins (TP, or the DP x TP expert group): 0.15 GiB on
    one GPU, 0.6 GiB for small groups (llm-d-planner constants, vllm-serving.md §3.6),
    1.5 GiB for 8 ranks (§3.5), plus the pipeline's own communicators."""
    base = 0.15 if tensor_parallel == 1 else 0.6 if tensor_parallel <= 4 else 1.5
    return base + (PIPELINE_NON_TORCH_GIB if pipeline_parallel > 1 else 0.0)


def cudagraph_gib(engine: EngineMemoryModel, weights_gib: float) -> float:
    """CUDA-graph memory subtracted from the KV budget since vLLM 0.20 [estimate]: about
    3 % of the weights (0.45 GiB for 14.99 GiB on H100, 2.37 GiB for 74.28 GiB on H200;
    vllm-serving.md §3.3), at least 0.3 GiB."""
    if not engine.subtracts_cudagraphs:
        return 0.0
    return max(0.3, 0.03 * weights_gib)


def size(request: SizingRequest) -> SizingReport:
    """The memory plan of the engine's GPUs, and every reason it cannot start. Figures are
    those of the binding pipeline stage (the one with the fewest KV tokens)."""
    model, gpu, layout = request.model, request.gpu, request.layout
    gpus = layout.gpus
    batched = request.max_num_batched_tokens or request.engine.default_max_num_batched_tokens(gpu)
    seqs = request.max_num_seqs or request.engine.default_max_num_seqs(gpu)

    budget = gpu.memory_gib * request.gpu_memory_utilization
    activation = activation_peak_bytes(request, batched, seqs) / GIB
    group = layout.expert_ranks if layout.expert else layout.tensor
    non_torch = non_torch_gib(group, layout.pipeline)
    per_layer = _kv_bytes_per_layer(request)
    stages = []
    for stage, (weights_gib, layers) in enumerate(
        zip(weights_gib_per_stage(request), _stage_layers(request), strict=True)
    ):
        stage_kv = budget - weights_gib - activation - non_torch - cudagraph_gib(request.engine, weights_gib)
        stage_per_token = per_layer * layers
        stages.append(
            StagePlan(
                stage, layers, weights_gib, stage_kv, stage_per_token, max(0, int(stage_kv * GIB) // stage_per_token)
            )
        )
    binding = min(stages, key=lambda s: (s.tokens_fit, s.kv_gib))
    weights = max(s.weights_gib for s in stages)
    graphs = cudagraph_gib(request.engine, binding.weights_gib)
    kv = binding.kv_gib
    per_token = binding.kv_bytes_per_token
    tokens = binding.tokens_fit
    fitting = (min(tokens, model.max_context) // CONTEXT_GRANULE) * CONTEXT_GRANULE
    max_model_len = request.max_model_len or fitting

    problems: list[SizingProblem] = []
    where = f"{gpus} x {gpu.name} ({gpu.memory_gib:.2f} GiB each, {layout.describe().split(' = ')[0]})"
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
        weights_gib=binding.weights_gib,
        activation_gib=activation,
        non_torch_gib=non_torch,
        cudagraph_gib=graphs,
        kv_gib=kv,
        kv_bytes_per_token=per_token,
        tokens_fit=tokens,
        max_model_len=max_model_len,
        problems=tuple(problems),
        stages=tuple(stages),
    )


def format_report(report: SizingReport) -> str:
    """A short human-readable memory plan, as the offline plan prints it."""
    r = report.request
    layout = r.layout
    extras = [f"KV cache dtype {r.kv_cache_dtype}"]
    if r.mtp_speculative_tokens:
        extras.append(f"MTP {r.mtp_speculative_tokens} speculative token(s)")
    lines = [
        f"model {r.model.hf_id} on {layout.gpus} x {r.gpu.name}: {layout.describe().split(' = ')[0]}; "
        + ", ".join(extras),
        f"  budget per GPU     {report.budget_gib:8.2f} GiB  ({r.gpu.memory_gib:.2f} GiB x {r.gpu_memory_utilization})",
        f"  weights            {report.weights_gib:8.2f} GiB",
        f"  activation peak    {report.activation_gib:8.2f} GiB  (estimate)",
        f"  runtime overhead   {report.non_torch_gib + report.cudagraph_gib:8.2f} GiB  (CUDA context, NCCL, graphs)",
        f"  KV cache           {report.kv_gib:8.2f} GiB  = {report.tokens_fit:,} tokens "
        f"at {report.kv_bytes_per_token:,} B/token",
    ]
    copies = layout.tensor > layout.decode_context
    if len(report.stages) > 1:
        lines += [
            f"  PP stage {s.stage}         {s.layers:3d} layers, weights {s.weights_gib:.2f} GiB, "
            f"KV {s.kv_gib:.2f} GiB = {s.tokens_fit:,} tokens"
            + ("  <- binding" if s.tokens_fit == report.tokens_fit else "")
            for s in report.stages
        ]
    lines += [
        f"  KV tokens          {report.tokens_fit:,} per engine (DP rank); {report.replica_tokens:,} per replica "
        f"({layout.data} DP rank(s)"
        + (f", DCP {layout.decode_context} shards each token" if layout.decode_context > 1 else "")
        + (", MLA cache copied on every TP rank" if r.model.attention == "mla" and copies else "")
        + ")",
        f"  max_model_len      {report.max_model_len:8d}      -> {report.concurrency:.1f} full-length sequences "
        f"per engine, {report.concurrency * layout.data:.1f} per replica",
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


# The model cache Job's deadline is a limit, not a forecast: the modeled copy with this
# headroom, plus slack for scheduling, pulling its images and a retry's restart [estimate].
CACHE_JOB_SAFETY_FACTOR = 2
CACHE_JOB_SLACK_SECONDS = 30 * 60


def cache_job_copy_seconds(model: ModelSpec) -> float:
    """Modeled time of the model cache Job's copy: the download from Hugging Face, then the
    upload to the bucket, at the catalog's rates (components/catalog/engines.py)."""
    return model.checkpoint_bytes / HF_DOWNLOAD_BYTES_PER_S + model.checkpoint_bytes / BUCKET_UPLOAD_BYTES_PER_S


def cache_job_deadline_seconds(model: ModelSpec) -> int:
    """Deadline of the Job that copies a model into the bucket: the modeled copy, doubled,
    plus half an hour (DeepSeek R1's ~688 GB: about 3.7 hours)."""
    return int(CACHE_JOB_SAFETY_FACTOR * cache_job_copy_seconds(model)) + CACHE_JOB_SLACK_SECONDS
