"""The parallel layout of one engine replica, and the profile it was resolved from. Pure.

A replica is one model instance behind one endpoint: ``tensor x pipeline x data`` GPUs
(vLLM's world size), on ``nodes`` nodes. Expert parallelism and decode context
parallelism reuse those ranks instead of adding GPUs (0.33.0: config/parallel.py
L389-392 "DCP does not expand the process world size"; L596-600 "tp_size must be
divisible by dcp_size"). Config (components/config/stack.py) resolves the layout from
the stack's profile and explicit keys; sizing and the engines read it from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.catalog import PROFILES, ModelSpec, Profile


@dataclass(frozen=True)
class Layout:
    tensor: int = 1
    pipeline: int = 1
    data: int = 1
    expert: bool = False  # MoE layers over expert-parallel ranks (DP x TP of them)
    decode_context: int = 1  # ranks of the TP group that shard the KV cache by sequence
    nodes: int = 1

    @property
    def gpus(self) -> int:
        return self.tensor * self.pipeline * self.data

    @property
    def expert_ranks(self) -> int:
        """How many ranks the routed experts are divided over (1 without EP): vLLM's EP
        group is DP x TP (0.33.0: config/parallel.py, enable_expert_parallel)."""
        return self.data * self.tensor if self.expert else 1

    def describe(self) -> str:
        parts = [f"TP {self.tensor}", f"PP {self.pipeline}", f"DP {self.data}"]
        if self.expert:
            parts.append(f"EP {self.expert_ranks}")
        if self.decode_context > 1:
            parts.append(f"DCP {self.decode_context}")
        nodes = f"{self.nodes} node" + ("s" if self.nodes > 1 else "")
        return f"{' x '.join(parts[:3])}{''.join(', ' + p for p in parts[3:])} = {self.gpus} GPUs on {nodes}"


@dataclass(frozen=True)
class Topology:
    """Everything the profile and the explicit keys decided for one replica."""

    profile: Profile
    layout: Layout
    kv_cache_dtype: str
    gpu_memory_utilization: float
    performance_mode: Profile
    mtp_speculative_tokens: int  # 0: no speculative decoding
    ep_weight_filter: bool


@dataclass(frozen=True)
class Explicit:
    """The layout keys a stack set itself (None: the profile decides)."""

    tensor: int | None = None
    pipeline: int = 1
    data: int | None = None
    expert: bool | None = None
    decode_context: int = 1
    nodes: int = 1
    kv_cache_dtype: str | None = None
    gpu_memory_utilization: float | None = None
    mtp_speculative_tokens: int | None = None


def resolve(profile: Profile, model: ModelSpec, gpus_per_node: int, explicit: Explicit) -> Topology:
    """The profile's choices, overridden by whatever the stack set explicitly.

    Without explicit TP/DP the replica takes ``nodes x gpus_per_node`` GPUs: MoE models
    under a data-parallel-attention profile spread them as DP (TP 1), everything else as
    TP, each divided by PP. A replica over several nodes without an explicit PP keeps TP
    inside the node and runs one pipeline stage per node (vLLM's recommended multi-node
    default, vllm-project/recipes strategies/multi_node_tp_pp.yaml; vllm-serving.md §1.1).
    Validation (config) checks the result; this only decides.
    """
    spec = PROFILES[profile]
    pipeline = explicit.pipeline
    if explicit.tensor is None and explicit.data is None:
        dp_attention = spec.data_parallel_attention and model.is_moe
        if explicit.nodes > 1 and pipeline == 1 and not dp_attention:
            pipeline = explicit.nodes
        ranks = max(1, explicit.nodes * gpus_per_node // pipeline)
        if dp_attention:
            tensor, data = 1, ranks
        else:
            tensor, data = ranks, 1
    else:
        tensor, data = explicit.tensor or 1, explicit.data or 1
    expert = explicit.expert
    if expert is None:
        expert = spec.expert_parallel and model.is_moe and tensor * data > 1
    kv = explicit.kv_cache_dtype or ("fp8" if spec.fp8_kv_cache and model.fp8_kv_cache else "auto")
    mtp = explicit.mtp_speculative_tokens
    if mtp is None:
        mtp = spec.mtp_speculative_tokens if model.mtp_layers else 0
    return Topology(
        profile=profile,
        layout=Layout(tensor, pipeline, data, expert, explicit.decode_context, explicit.nodes),
        kv_cache_dtype=kv,
        gpu_memory_utilization=explicit.gpu_memory_utilization or spec.gpu_memory_utilization,
        performance_mode=spec.performance_mode,
        mtp_speculative_tokens=mtp,
        ep_weight_filter=spec.ep_weight_filter and expert,
    )
