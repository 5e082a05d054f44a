"""Sizing pinned exactly where ±3 % tests cannot reach: R1's weights by part, the cache
Job's deadline, the KV boundary at 0 < kv < 1 GiB and the printed report.

Each figure is derived by hand from DeepSeek-V3's config.json (hidden 7168, q_lora_rank
1536, kv_lora_rank 512, qk_rope 64, qk_nope 128, v_head 128, 128 heads, 256 routed
experts of width 2048, dense MLP 18432, vocab 129280); FP8 linear weights carry one fp32
scale per 128 x 128 block, i.e. 4 / 16384 bytes per weight. These pin the terms that a
mutation test found unguarded (a small attention term, the block-scale size, a sign).
"""

from __future__ import annotations

from components import catalog
from components.sizing import (
    SizingRequest,
    cache_job_deadline_seconds,
    format_report,
    moe_weights,
    size,
)

R1 = catalog.MODELS["deepseek-ai/DeepSeek-R1"]
LLAMA_8B = catalog.MODELS["deepseek-ai/DeepSeek-R1-Distill-Llama-8B"]


def fp8(params: int) -> float:
    return params + params * 4 / (128 * 128)


def test_r1_weights_by_part_from_its_dimensions() -> None:
    parts = moe_weights(R1)
    assert parts.embedding == 129280 * 7168 * 2 == 1_853_358_080  # bf16
    # q_a (7168 x 1536) and kv_a (7168 x (512 + 64)): 15,138,816 weights, + 3,696 B of scales
    assert parts.attention_replicated == fp8(7168 * 1536 + 7168 * 576) == 15_142_512
    # q_b (1536 x 128 x 192) + kv_b (512 x 128 x 256) + o (128 x 128 x 7168) = 171,966,464 weights
    assert parts.attention_split == fp8(37_748_736 + 16_777_216 + 117_440_512) == 172_008_448
    assert parts.attention_absorbed == 16_777_216 * 2  # kv_b again, in bf16
    assert parts.dense_mlp == fp8(3 * 7168 * 18432) == 396_458_496
    assert parts.expert == fp8(3 * 7168 * 2048) == 44_050_944
    assert parts.router == 256 * 7168 * 2 == 3_670_016


def test_cache_job_deadline_is_twice_the_copy_plus_half_an_hour() -> None:
    # 688 GB at 300 MB/s down (2,293.3 s) and 200 MB/s up (3,440 s), doubled, + 1,800 s
    assert cache_job_deadline_seconds(R1) == int(2 * (688e9 / 300e6 + 688e9 / 200e6)) + 1800 == 13266


def test_less_than_a_gib_of_kv_is_a_context_problem_not_a_memory_one() -> None:
    # 22.30 GiB x 0.751 leaves ~0.9 GiB after the 8B model's weights and overheads: some KV,
    # too little for 8,192 tokens. The problem is maxModelLen, with the numbers.
    report = size(SizingRequest(LLAMA_8B, catalog.GPUS["A10G"], gpu_memory_utilization=0.751, max_model_len=8192))
    assert 0 < report.kv_gib < 1
    assert [p.setting for p in report.problems] == ["maxModelLen"]


def test_mtp_is_off_unless_asked() -> None:
    assert SizingRequest(R1, catalog.GPUS["B200"]).mtp_speculative_tokens == 0


def test_report_of_a_pipeline_across_two_h100_nodes() -> None:
    report = size(SizingRequest(R1, catalog.GPUS["H100"], tensor_parallel=8, pipeline_parallel=2, max_model_len=32768))
    assert format_report(report).splitlines() == [
        "model deepseek-ai/DeepSeek-R1 on 16 x H100: TP 8 x PP 2 x DP 1; KV cache dtype auto",
        "  budget per GPU        71.26 GiB  (79.18 GiB x 0.9)",
        "  weights               41.11 GiB",
        "  activation peak        2.75 GiB  (estimate)",
        "  runtime overhead       3.76 GiB  (CUDA context, NCCL, graphs)",
        "  KV cache              23.64 GiB  = 734,514 tokens at 34,560 B/token",
        "  PP stage 0          31 layers, weights 38.63 GiB, KV 26.19 GiB = 787,398 tokens",
        "  PP stage 1          30 layers, weights 41.11 GiB, KV 23.64 GiB = 734,514 tokens  <- binding",
        "  KV tokens          734,514 per engine (DP rank); 734,514 per replica (1 DP rank(s), "
        "MLA cache copied on every TP rank)",
        "  max_model_len         32768      -> 22.4 full-length sequences per engine, 22.4 per replica",
    ]


def test_report_names_expert_parallelism_fp8_kv_and_mtp() -> None:
    request = SizingRequest(
        R1,
        catalog.GPUS["B200"],
        tensor_parallel=8,
        expert_parallel=True,
        kv_cache_dtype="fp8",
        mtp_speculative_tokens=1,
        max_model_len=32768,
    )
    lines = format_report(size(request)).splitlines()
    assert lines[0] == (
        "model deepseek-ai/DeepSeek-R1 on 8 x B200: TP 8 x PP 1 x DP 1, EP 8; KV cache dtype fp8, "
        "MTP 1 speculative token(s)"
    )
    assert lines[5] == "  KV cache              70.47 GiB  = 2,118,803 tokens at 35,712 B/token"
    assert not any("PP stage" in line for line in lines)  # one stage: no per-stage lines
