"""Serving profiles: which vLLM 0.33 flags suit a goal, named after vLLM's performance modes.

vLLM 0.33 already defaults to async scheduling, chunked prefill, prefix caching, full
CUDA graphs and DeepGEMM (audit/performance.md §2), so a profile only sets what differs
by goal. ``--performance-mode {balanced,interactivity,throughput}`` is VllmConfig's own
switch (0.33.0: vllm/config/vllm.py L147, L441-446; arg_utils.py L1913): interactivity
captures CUDA graphs at every batch size 1-32 (vllm.py L2573-2577), throughput doubles
the batching defaults (arg_utils.py L3184).

Model-dependent parts apply only where the model has them: expert parallelism and the
DP-attention shape for MoE models, MTP for models that ship MTP weights, fp8 KV where
the model is validated with it (``ModelSpec.fp8_kv_cache``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

Profile = Literal["interactivity", "balanced", "throughput"]


@dataclass(frozen=True)
class ProfileSpec:
    name: Profile
    performance_mode: Profile  # vLLM --performance-mode
    # MoE models: data-parallel attention (DP = the replica's GPUs, TP 1) instead of TP.
    data_parallel_attention: bool
    expert_parallel: bool  # MoE models: --enable-expert-parallel
    ep_weight_filter: bool  # with EP: --enable-ep-weight-filter (each rank reads its experts only)
    fp8_kv_cache: bool  # where the model is validated with it
    gpu_memory_utilization: float
    mtp_speculative_tokens: int  # where the model ships MTP weights; 0: off
    source: str


_PROFILES = (
    ProfileSpec(
        "balanced",
        "balanced",
        data_parallel_attention=False,
        expert_parallel=True,
        ep_weight_filter=False,
        fp8_kv_cache=True,
        gpu_memory_utilization=0.90,
        mtp_speculative_tokens=0,
        source=(
            "vllm-project/recipes DeepSeek-R1: TP 8 + EP ('--tensor-parallel-size 8 --enable-expert-parallel'); "
            "fp8 KV doubles R1's cache (70,272 -> 35,136 B/token, audit/performance.md §1) at no obvious "
            "accuracy cost (TensorRT-LLM R1 blog); 0.90 leaves room for 0.33's CUDA-graph estimate"
        ),
    ),
    ProfileSpec(
        "throughput",
        "throughput",
        data_parallel_attention=True,
        expert_parallel=True,
        ep_weight_filter=True,
        fp8_kv_cache=True,
        gpu_memory_utilization=0.95,
        mtp_speculative_tokens=0,
        source=(
            "vllm-project/recipes single_node_dep ('best throughput for MoE models on 8-GPU single nodes': "
            "--data-parallel-size 8 --enable-expert-parallel); vLLM blog 2025-12-17 (wide-EP); every "
            "TensorRT-LLM max-throughput R1 record uses attention DP + EP 8; fp8 KV +18.6 % (TensorRT-LLM R1 "
            "blog); 0.95 as the recipes; --enable-ep-weight-filter: 0.33.0 config/parallel.py L199 (each "
            "rank reads only its experts); caveat vllm#23752: DP 8 has ~3x worse TPOT below concurrency 8"
        ),
    ),
    ProfileSpec(
        "interactivity",
        "interactivity",
        data_parallel_attention=False,
        expert_parallel=False,
        ep_weight_filter=False,
        fp8_kv_cache=True,
        gpu_memory_utilization=0.90,
        mtp_speculative_tokens=1,
        source=(
            "vLLM MTP PR #12755: k=1 accepts 81-82 % and gives 1.63x TPOT at 1 QPS, shrinking with load "
            "(InferenceX: +75 % at concurrency 1, -37 % at 32; audit/performance.md §2); "
            "--speculative-config method 'mtp' (0.33.0 config/speculative.py L38-57); TP 8 without EP is "
            "the latency layout (EP optional per the issue); --performance-mode interactivity"
        ),
    ),
)
PROFILES: Mapping[str, ProfileSpec] = MappingProxyType({p.name: p for p in _PROFILES})
