"""Models: the architecture numbers that decide memory, from each model's config.json."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from components.catalog.units import GB, GIB, Attention


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
    # Only for architectures vLLM does not implement itself: it runs the repository's code.
    trust_remote_code: bool = False
    # vLLM --tool-call-parser (a name registered in vllm/tool_parsers/__init__.py of the
    # pinned vLLM) for a model trained to call tools; None: the model has no tool calling, so
    # the engine runs without it and Open WebUI must not send `tools` (vLLM answers 400).
    tool_call_parser: str | None = None
    tool_call_source: str = ""
    # MoE (DeepSeek V3/R1): the first ``dense_layers`` layers have a dense MLP of
    # ``intermediate_size``; the others ``experts`` routed plus ``shared_experts`` shared
    # experts of ``moe_intermediate_size`` each.
    experts: int = 0
    shared_experts: int = 0
    moe_intermediate_size: int = 0
    dense_layers: int = 0
    # MLA projections (weights per layer): q_lora_rank, heads x (nope + rope) query heads,
    # heads x v_head_dim values.
    q_lora_rank: int = 0
    attention_heads: int = 0
    qk_nope_head_dim: int = 0
    v_head_dim: int = 0
    # Bytes per weight of the quantized linear layers (FP8 block-scaled: 1, plus one fp32
    # scale per 128 x 128 block); embeddings, LM head, norms and the router stay bf16.
    linear_weight_bytes: int = 2
    # Multi-token-prediction layers shipped with the weights (config.json
    # num_nextn_predict_layers); vLLM's --speculative-config method "mtp" needs them.
    mtp_layers: int = 0
    # fp8 KV cache is validated for this model by its publishers or serving recipes.
    fp8_kv_cache: bool = False
    # A measured weight load (GiB per GPU at a TP degree, CUDA) that the dimension-derived
    # weights are calibrated to; None: weight_bytes / GPUs as before.
    measured_weights: tuple[int, float] | None = None

    @property
    def is_moe(self) -> bool:
        return self.experts > 0

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


# Tool calling (vLLM 0.33.0 vllm/tool_parsers/__init__.py registers deepseek_v3 and llama3_json;
# vLLM docs/features/tool_calling.md lists the models each parser is for).
_NO_TOOLS_R1 = (
    "DeepSeek-R1 model card: no function calling (added in R1-0528); its chat template and the "
    "distills' have no tool format, so no vLLM parser applies"
)
_R1_0528_TOOLS = (
    "DeepSeek-R1-0528 model card (function calling support; its chat template emits the V3 "
    "<｜tool▁calls▁begin｜> format); vLLM tool_calling.md: deepseek_v3 parser for DeepSeek-R1-0528"
)
_LLAMA31_TOOLS = (
    "Llama 3.1 model card (JSON tool calling in its chat template); vLLM tool_calling.md: "
    "llama3_json parser for meta-llama/Llama-3.1-*-Instruct"
)


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
    tool_call_parser: str | None = None,
    tool_call_source: str = _NO_TOOLS_R1,
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
        tool_call_parser=tool_call_parser,
        tool_call_source=tool_call_source,
    )


_R1_SOURCE = (
    "vllm-serving.md §0, §3.1: deepseek-ai/DeepSeek-V3 config_671B.json (61 layers, first 3 dense, "
    "256 routed + 1 shared experts of moe_inter 2048, 8 active, dense inter 18432, hidden 7168, MLA: 128 "
    "heads, q_lora_rank 1536, kv_lora_rank 512, qk_nope 128, qk_rope 64, v_head 128, vocab 129280, 163840 "
    "positions, num_nextn_predict_layers 1: the 14B MTP module of the 685B HF repo, README L73-74); 163 FP8 "
    "shards ~688 GB on disk (vllm-project/aibrix#834); weights measured on CUDA at TP 8: 79.74 GiB per GPU "
    "(vLLM 0.11.2 log of R1-0528 on 8 x H200, audit/performance.md §1; the Gaudi log's 79.41 in "
    "HabanaAI/vllm-fork#809 is not CUDA); fp8 KV: TensorRT-LLM 'Best perf practice on DeepSeek-R1' "
    "('no obvious accuracy drop', +18.6 % throughput), vllm-project/recipes DeepSeek-R1 NVFP4 uses it"
)
R1_WEIGHTS_GIB_PER_GPU_TP8 = 79.74  # see _R1_SOURCE


def _deepseek_r1(hf_id: str, tool_call_parser: str | None, tool_call_source: str) -> ModelSpec:
    return ModelSpec(
        hf_id=hf_id,
        params=671e9,
        layers=61,
        attention="mla",
        hidden_size=7168,
        intermediate_size=18432,
        vocab_size=129280,
        max_context=163840,
        weight_bytes=int(8 * R1_WEIGHTS_GIB_PER_GPU_TP8 * GIB),
        checkpoint_bytes=688 * GB,
        source=_R1_SOURCE,
        kv_lora_rank=512,
        qk_rope_head_dim=64,
        moe_top_k=8,
        reasoning_parser="deepseek_r1",
        # vLLM 0.33 implements DeepseekV3ForCausalLM natively (model_executor/models/registry.py
        # L94) and transformers >= 5.16 (its pinned range) has DeepseekV3Config, so the
        # repository's own modeling code is never needed: no --trust-remote-code.
        trust_remote_code=False,
        tool_call_parser=tool_call_parser,
        tool_call_source=tool_call_source,
        experts=256,
        shared_experts=1,
        moe_intermediate_size=2048,
        dense_layers=3,
        q_lora_rank=1536,
        attention_heads=128,
        qk_nope_head_dim=128,
        v_head_dim=128,
        linear_weight_bytes=1,
        mtp_layers=1,
        fp8_kv_cache=True,
        measured_weights=(8, R1_WEIGHTS_GIB_PER_GPU_TP8),
    )


_HF = "huggingface.co/{}/blob/main/config.json"
_MODELS = (
    _deepseek_r1("deepseek-ai/DeepSeek-R1", None, _NO_TOOLS_R1),
    _deepseek_r1("deepseek-ai/DeepSeek-R1-0528", "deepseek_v3", _R1_0528_TOOLS),
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
        tool_call_parser="llama3_json",
        tool_call_source=_LLAMA31_TOOLS,
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
        tool_call_parser="llama3_json",
        tool_call_source=_LLAMA31_TOOLS,
    ),
)
MODELS: Mapping[str, ModelSpec] = MappingProxyType({m.hf_id: m for m in _MODELS})
