"""The sizing model against published numbers (docs/reference/vllm-serving.md §3)."""

from __future__ import annotations

import pytest

from components.catalog import GPUS, MACHINES, MODELS, VLLM_MEMORY_MODEL, VLLM_V0_MEMORY_MODEL
from components.sizing import (
    SizingRequest,
    format_report,
    kv_bytes_per_token,
    non_torch_gib,
    pipeline_partition,
    size,
    startup_budget_seconds,
)

R1 = MODELS["deepseek-ai/DeepSeek-R1"]
LLAMA_8B = MODELS["deepseek-ai/DeepSeek-R1-Distill-Llama-8B"]


def test_reproduces_the_published_a10g_log() -> None:
    """vLLM 0.7 on g5 (data-on-eks): 22.30 GiB x 0.90; weights 14.99 GiB, activation
    0.85 GiB, KV cache 4.17 GiB, "4 requests for 8192 tokens"."""
    report = size(
        SizingRequest(
            LLAMA_8B,
            GPUS["A10G"],
            gpu_memory_utilization=0.90,
            max_model_len=8192,
            max_num_batched_tokens=8192,
            max_num_seqs=4,
            engine=VLLM_V0_MEMORY_MODEL,
        )
    )
    assert report.budget_gib == pytest.approx(20.07, abs=0.01)
    assert report.weights_gib == pytest.approx(14.99, abs=0.3)
    assert report.activation_gib == pytest.approx(0.85, abs=0.3)
    assert report.kv_gib == pytest.approx(4.17, abs=0.3)
    assert int(report.concurrency) == 4
    assert report.fits


def test_llama_kv_bytes_per_token() -> None:
    # 2 x 32 layers x 8 KV heads x 128 x 2 bytes = 131,072 B (vllm-serving.md §3.2)
    assert kv_bytes_per_token(SizingRequest(LLAMA_8B, GPUS["A10G"])) == 131_072
    assert kv_bytes_per_token(SizingRequest(LLAMA_8B, GPUS["A10G"], kv_cache_dtype="fp8")) == 65_536


def test_gqa_kv_is_split_over_tensor_parallel_ranks() -> None:
    tp1 = kv_bytes_per_token(SizingRequest(LLAMA_8B, GPUS["H100"], tensor_parallel=1))
    tp8 = kv_bytes_per_token(SizingRequest(LLAMA_8B, GPUS["H100"], tensor_parallel=8))
    assert tp8 == tp1 // 8


def test_mla_kv_is_not_divided_by_tensor_parallel() -> None:
    """DeepSeek's latent cache is replicated on every TP rank: 61 x 576 x 2 B at any TP."""
    for tp in (1, 2, 8):
        assert kv_bytes_per_token(SizingRequest(R1, GPUS["B200"], tensor_parallel=tp)) == 70_272
    assert kv_bytes_per_token(SizingRequest(R1, GPUS["B200"], tensor_parallel=8, kv_cache_dtype="fp8")) == 35_136


def test_pipeline_stages_hold_the_larger_half_of_the_layers() -> None:
    # 61 layers at PP 2 -> [31, 30]: the first stage holds 31 x 576 x 2 B per token
    assert kv_bytes_per_token(SizingRequest(R1, GPUS["H100"], tensor_parallel=8, pipeline_parallel=2)) == 35_712


def test_deepseek_r1_fits_on_eight_b200_at_tp8() -> None:
    a4 = MACHINES["a4-highgpu-8g"]
    report = size(SizingRequest(R1, GPUS[a4.gpu], tensor_parallel=a4.gpus, max_model_len=32768))
    assert report.fits, format_report(report)
    assert report.weights_gib == pytest.approx(79.74, abs=0.01)  # CUDA, vLLM 0.11.2 on H200
    # §3.5 predicts 68-76 GiB of KV per GPU and ~1.04-1.16 M bf16 tokens.
    assert 60 < report.kv_gib < 80
    assert 900_000 < report.tokens_fit < 1_250_000
    assert report.concurrency > 25


def test_deepseek_r1_does_not_fit_on_eight_a10g() -> None:
    report = size(SizingRequest(R1, GPUS["A10G"], tensor_parallel=8, max_model_len=8192))
    assert not report.fits
    assert report.problems[0].setting == "tensorParallelSize"
    assert "79.74 GiB per GPU" in report.problems[0].message


def test_deepseek_r1_does_not_fit_on_one_h100_node_but_fits_on_two() -> None:
    one = size(SizingRequest(R1, GPUS["H100"], tensor_parallel=8, gpu_memory_utilization=0.92, max_model_len=16384))
    two = size(
        SizingRequest(
            R1, GPUS["H100"], tensor_parallel=8, pipeline_parallel=2, gpu_memory_utilization=0.92, max_model_len=16384
        )
    )
    assert not one.fits
    assert two.fits
    assert 20 < two.kv_gib < 32  # §3.5: ~23-26 GiB per GPU


def test_full_context_of_the_8b_model_does_not_fit_an_a10g() -> None:
    report = size(SizingRequest(LLAMA_8B, GPUS["A10G"], max_model_len=131072))
    assert [p.setting for p in report.problems] == ["maxModelLen"]
    assert "needs 16.00 GiB of KV cache per GPU" in report.problems[0].message


def test_fp8_kv_cache_doubles_the_tokens() -> None:
    auto = size(SizingRequest(LLAMA_8B, GPUS["A10G"], max_model_len=8192))
    fp8 = size(SizingRequest(LLAMA_8B, GPUS["A10G"], max_model_len=8192, kv_cache_dtype="fp8"))
    assert fp8.tokens_fit == pytest.approx(2 * auto.tokens_fit, rel=0.001)


def test_unset_context_resolves_to_the_largest_that_fits() -> None:
    report = size(SizingRequest(LLAMA_8B, GPUS["A10G"]))
    assert report.fits
    assert report.max_model_len % 1024 == 0
    assert report.max_model_len <= report.tokens_fit < report.max_model_len + 1024
    capped = size(SizingRequest(R1, GPUS["B200"], tensor_parallel=8))
    assert capped.max_model_len == R1.max_context


def test_context_beyond_the_model_maximum_is_refused() -> None:
    report = size(SizingRequest(R1, GPUS["B200"], tensor_parallel=8, max_model_len=R1.max_context + 1))
    assert [p.setting for p in report.problems] == ["maxModelLen"]


def test_no_room_for_kv_after_overheads() -> None:
    report = size(SizingRequest(LLAMA_8B, GPUS["A10G"], gpu_memory_utilization=0.70, max_model_len=4096))
    assert [p.setting for p in report.problems] == ["gpuMemoryUtilization"]


def test_engine_defaults_by_gpu_memory() -> None:
    """vLLM 0.33 batch defaults (vllm-serving.md §1.1): tiers by GPU memory."""
    engine = VLLM_MEMORY_MODEL
    assert engine.default_max_num_batched_tokens(GPUS["B200"]) == 16384
    assert engine.default_max_num_batched_tokens(GPUS["H100"]) == 8192
    assert engine.default_max_num_batched_tokens(GPUS["A100-80G"]) == 2048
    assert engine.default_max_num_seqs(GPUS["A10G"]) == 256
    assert engine.default_max_num_seqs(GPUS["H200"]) == 1024


def test_report_shows_the_numbers() -> None:
    text = format_report(size(SizingRequest(LLAMA_8B, GPUS["A10G"], max_model_len=131072)))
    assert "KV cache" in text and "DOES NOT FIT" in text and "131072" in text


def test_startup_budget_covers_a_671b_download() -> None:
    """R1 from Hugging Face loads in 30-50 minutes (§4.2); the budget must exceed that."""
    assert startup_budget_seconds(R1, from_bucket=False) >= 60 * 60
    assert startup_budget_seconds(R1, from_bucket=True) < startup_budget_seconds(R1, from_bucket=False)
    assert startup_budget_seconds(LLAMA_8B, from_bucket=False) >= 20 * 60


def test_catalog_facts_carry_sources() -> None:
    sources = [g.source for g in GPUS.values()] + [m.source for m in MACHINES.values()]
    sources += [m.source for m in MODELS.values()]
    assert all(sources)
    assert GPUS["B200"].memory_gib == 178.35  # not the 192 GB chip figure
    assert all(MACHINES[m].gpus == 8 for m in ("a4-highgpu-8g", "p5.48xlarge", "p6-b200.48xlarge"))


# --- per-topology figures, derived by hand from R1's dimensions ---------------------------
#
# DeepSeek R1 (config_671B.json; vllm-serving.md §3.1): hidden H = 7168, vocab V = 129,280,
# 61 layers (3 dense, 58 MoE), 256 routed + 1 shared experts of width 2,048, dense MLP 18,432,
# MLA with 128 heads, q_lora 1,536, kv_lora 512, qk_nope 128, qk_rope 64, v_head 128.
# Linear weights are FP8 (1 byte; the fp32 block scales add 0.02 %, left out here);
# embeddings, LM head and router are bf16; vLLM keeps bf16 copies of kv_b for MLA.
#
#   one expert        3 x 7168 x 2048                                  =    44,040,192 B
#   router            256 x 7168 x 2                                   =     3,670,016 B
#   attention, kept whole on every rank (q_a, kv_a): 7168 x 1536 + 7168 x 576
#                                                                     =    15,138,816 B
#   attention, split over TP (q_b, kv_b, o): 1536 x 128 x 192 + 512 x 128 x 256 + 128 x 128 x 7168
#                                                                     =   171,966,464 B
#   MLA's bf16 kv_b copies: 512 x 128 x 256 x 2                        =    33,554,432 B (split over TP)
#   dense MLP         3 x 7168 x 18432                                 =   396,361,728 B
#   embeddings = LM head: 129280 x 7168 x 2                            = 1,853,358,080 B
GIB = 1024**3
MOE_LAYER_TP8 = 257 * 44_040_192 / 8 + 3_670_016  # = 1,418,461,184 B
ATTENTION_TP8 = 15_138_816 + (171_966_464 + 33_554_432) / 8  # = 40,828,928 B
DENSE_TP8 = 396_361_728 / 8  # = 49,545,216 B
HEAD_TP8 = 1_853_358_080 / 8  # = 231,669,760 B
# TP 8, every GPU: 61 attention + 3 dense + 58 MoE layers + embeddings + LM head
R1_TP8_DERIVED = (61 * ATTENTION_TP8 + 3 * DENSE_TP8 + 58 * MOE_LAYER_TP8 + 2 * HEAD_TP8) / GIB  # = 79.51 GiB
CALIBRATION = 79.74 / R1_TP8_DERIVED  # the CUDA measurement over the derivation: 1.0029


def test_r1_tp8_weights_match_the_cuda_measurement() -> None:
    """The derivation lands within 0.3 % of the CUDA log (79.74 GiB, vLLM 0.11.2 on H200);
    the catalog's figure is that measurement, not the Gaudi log's 79.41."""
    assert pytest.approx(79.51, abs=0.01) == R1_TP8_DERIVED
    assert R1.measured_weights == (8, 79.74)
    assert size(SizingRequest(R1, GPUS["B200"], tensor_parallel=8)).weights_gib == pytest.approx(79.74, abs=0.01)


def test_r1_dep8_replicates_attention_and_divides_experts() -> None:
    """DP 8 + EP 8 (TP 1 per rank): attention whole, dense MLPs, embeddings and LM head whole,
    routed experts / 8, shared expert whole:
      attention 61 x (15,138,816 + 171,966,464 + 33,554,432) = 13,460,242,432
      dense      3 x 396,361,728                             =  1,189,085,184
      MoE       58 x (256 x 44,040,192 / 8 + 44,040,192 + 3,670,016) = 84,505,788,416
      embeddings + LM head 2 x 1,853,358,080                 =  3,706,716,160
      total 102,861,832,192 B = 95.80 GiB (against 79.51 at TP 8)."""
    derived = (13_460_242_432 + 1_189_085_184 + 84_505_788_416 + 3_706_716_160) / GIB
    assert derived == pytest.approx(95.80, abs=0.01)
    report = size(SizingRequest(R1, GPUS["B200"], data_parallel=8, expert_parallel=True))
    assert report.weights_gib == pytest.approx(derived * CALIBRATION, rel=0.03)
    assert report.weights_gib > 95.0  # well above TP 8's 79.74


def test_r1_pp2_stages_are_sized_separately() -> None:
    """TP 8 x PP 2: 61 layers split [31, 30] (vLLM get_pp_indices).
      stage 0: embeddings + 31 attention + 3 dense + 28 MoE = 41,362,915,328 B = 38.52 GiB
      stage 1: 30 attention + 30 MoE + LM head               = 44,010,373,120 B = 40.99 GiB
    Their mean (39.76) sits within 0.3 % of vllm#13074's 39.66 GiB per GPU."""
    stage0 = (HEAD_TP8 + 31 * ATTENTION_TP8 + 3 * DENSE_TP8 + 28 * MOE_LAYER_TP8) / GIB
    stage1 = (30 * ATTENTION_TP8 + 30 * MOE_LAYER_TP8 + HEAD_TP8) / GIB
    assert stage0 == pytest.approx(38.52, abs=0.01)
    assert stage1 == pytest.approx(40.99, abs=0.01)
    report = size(SizingRequest(R1, GPUS["H100"], tensor_parallel=8, pipeline_parallel=2, gpu_memory_utilization=0.92))
    s0, s1 = report.stages
    assert (s0.layers, s1.layers) == (31, 30)
    assert s0.weights_gib == pytest.approx(stage0 * CALIBRATION, rel=0.03)
    assert s1.weights_gib == pytest.approx(stage1 * CALIBRATION, rel=0.03)
    assert (s0.weights_gib + s1.weights_gib) / 2 == pytest.approx(39.66, rel=0.03)
    # vLLM keeps the smaller capacity: stage 1 (heavier weights) binds despite fewer layers.
    assert report.tokens_fit == min(s0.tokens_fit, s1.tokens_fit) == s1.tokens_fit
    # non-torch memory of a pipelined engine as vllm#13074 measured it
    assert report.non_torch_gib == pytest.approx(2.53, abs=0.001)


def test_r1_pp2_kv_per_stage() -> None:
    """Stage 0 holds 31 layers x 576 x 2 B = 35,712 B per token, stage 1 30 x 1,152 = 34,560."""
    report = size(SizingRequest(R1, GPUS["H100"], tensor_parallel=8, pipeline_parallel=2))
    assert [s.kv_bytes_per_token for s in report.stages] == [35_712, 34_560]


def test_fp8_kv_halves_r1_bytes_per_token() -> None:
    """61 x 576 x 1 B = 35,136 against 61 x 576 x 2 B = 70,272 (the H200 log: 41.60 GiB /
    635,648 tokens = 70,271 B); the tokens double at the same memory."""
    bf16 = size(SizingRequest(R1, GPUS["B200"], tensor_parallel=8))
    fp8 = size(SizingRequest(R1, GPUS["B200"], tensor_parallel=8, kv_cache_dtype="fp8"))
    assert (bf16.kv_bytes_per_token, fp8.kv_bytes_per_token) == (70_272, 35_136)
    assert fp8.tokens_fit == pytest.approx(2 * bf16.tokens_fit, abs=2)


def test_r1_tp8_on_b200_by_hand() -> None:
    """8 x B200 at 0.90, TP 8, bf16 KV, 16,384 batched tokens, 1,024 sequences:
    budget     178.35 x 0.90                                   = 160.515 GiB
    weights                                                    =  79.74
    activation 16384 x [(2 x 18432 / 8 + 4 x 7168) x 2 + 8 x 7168 x 2 x 2] B
               + 1024 x 129280 x 4 B (sampler logits)           =   5.009
    non-torch (8-rank NCCL)                                     =   1.5
    CUDA graphs 3 % of weights                                  =   2.392
    KV = 71.874 GiB / 70,272 B = 1,098,2xx tokens (audit: 1.10 M +/- 40K)."""
    activation = (16384 * ((2 * 18432 // 8 + 4 * 7168) * 2 + 8 * 7168 * 2 * 2) + 1024 * 129280 * 4) / GIB
    assert activation == pytest.approx(5.009, abs=0.001)
    kv = 178.35 * 0.90 - 79.74 - activation - 1.5 - 0.03 * 79.74
    report = size(SizingRequest(R1, GPUS["B200"], tensor_parallel=8))
    assert report.activation_gib == pytest.approx(activation, rel=0.03)
    assert report.non_torch_gib == 1.5
    assert report.kv_gib == pytest.approx(kv, rel=0.03)
    assert report.tokens_fit == pytest.approx(kv * GIB / 70_272, rel=0.03)
    assert 1_060_000 < report.tokens_fit < 1_140_000


def test_r1_calibrates_against_the_h200_log() -> None:
    """vLLM 0.11.2, R1-0528 TP 8 on 8 x H200 at 0.90, 8,192 batched tokens, graphs not yet
    subtracted: KV 41.60 GiB = 635,648 tokens."""
    report = size(
        SizingRequest(R1, GPUS["H200"], tensor_parallel=8, max_num_batched_tokens=8192, engine=VLLM_V0_MEMORY_MODEL)
    )
    assert report.kv_gib == pytest.approx(41.60, rel=0.02)
    assert report.tokens_fit == pytest.approx(635_648, rel=0.02)


def test_r1_dep8_fp8_kv_per_rank_and_per_replica() -> None:
    """DP 8 + EP 8, fp8 KV, 0.95 on B200, per rank (TP 1, so the dense MLP term is whole):
    budget     178.35 x 0.95                                   = 169.433 GiB
    weights    95.80 x 1.0029                                  =  96.08
    activation 16384 x [(2 x 18432 + 4 x 7168) x 2 + 8 x 7168 x 4] B + sampler 0.493
                                                               =   5.993
    non-torch (8-rank expert group) 1.5; graphs 3 % of weights =   2.882
    KV = 62.98 GiB / 35,136 B = 1.92 M tokens per rank; each of the 8 DP ranks has its own:
    15.4 M per replica (audit: ~1.93 M, ~15 M)."""
    weights = 95.80 * CALIBRATION
    activation = (16384 * ((2 * 18432 + 4 * 7168) * 2 + 8 * 7168 * 4) + 1024 * 129280 * 4) / GIB
    kv = 178.35 * 0.95 - weights - activation - 1.5 - 0.03 * weights
    per_rank = kv * GIB / 35_136
    report = size(
        SizingRequest(
            R1, GPUS["B200"], data_parallel=8, expert_parallel=True, kv_cache_dtype="fp8", gpu_memory_utilization=0.95
        )
    )
    assert report.tokens_fit == pytest.approx(per_rank, rel=0.03)
    assert report.replica_tokens == 8 * report.tokens_fit
    assert report.replica_tokens == pytest.approx(8 * per_rank, rel=0.03)
    assert 1_850_000 < report.tokens_fit < 2_000_000


def test_tp_replicates_the_mla_cache() -> None:
    """TP 8 holds the same tokens per replica as one engine holds: every rank keeps the
    whole latent cache, so a replica's tokens are not 8 x a GPU's."""
    report = size(SizingRequest(R1, GPUS["B200"], tensor_parallel=8))
    assert report.replica_tokens == report.tokens_fit


def test_mtp_adds_one_moe_layer() -> None:
    """MTP's module is one more MoE layer with its attention: at TP 8
    (1,418,461,184 + 40,828,928) B = 1.359 GiB more per GPU (audit: ~1.35), and one more
    layer of KV: 62 x 576 x 1 B = 35,712 B per token at fp8."""
    extra = (MOE_LAYER_TP8 + ATTENTION_TP8) / GIB
    assert extra == pytest.approx(1.359, abs=0.001)
    base = size(SizingRequest(R1, GPUS["B200"], tensor_parallel=8, kv_cache_dtype="fp8"))
    mtp = size(SizingRequest(R1, GPUS["B200"], tensor_parallel=8, kv_cache_dtype="fp8", mtp_speculative_tokens=1))
    assert mtp.weights_gib - base.weights_gib == pytest.approx(extra * CALIBRATION, rel=0.03)
    assert mtp.kv_bytes_per_token == 35_712


def test_dcp_splits_the_mla_cache_over_its_ranks() -> None:
    """--decode-context-parallel-size 8 at TP 8: each rank keeps 1/8 of every token's
    latent: 70,272 / 8 = 8,784 B, so 8 x the tokens at the same memory."""
    tp8 = size(SizingRequest(R1, GPUS["B200"], tensor_parallel=8))
    dcp = size(SizingRequest(R1, GPUS["B200"], tensor_parallel=8, decode_context_parallel=8))
    assert dcp.kv_bytes_per_token == 8_784
    assert dcp.tokens_fit == pytest.approx(8 * tp8.tokens_fit, rel=0.001)


def test_bf16_kv_is_two_bytes_per_element() -> None:
    request = SizingRequest(LLAMA_8B, GPUS["A10G"], kv_cache_dtype="bfloat16")
    assert kv_bytes_per_token(request) == 2 * 32 * 8 * 128 * 2


def test_exact_fit_boundary() -> None:
    """A context of exactly the tokens that fit starts; one token more does not."""
    tokens = size(SizingRequest(LLAMA_8B, GPUS["A10G"])).tokens_fit
    assert size(SizingRequest(LLAMA_8B, GPUS["A10G"], max_model_len=tokens)).fits
    over = size(SizingRequest(LLAMA_8B, GPUS["A10G"], max_model_len=tokens + 1))
    assert [p.setting for p in over.problems] == ["maxModelLen"]


def test_non_torch_memory_by_group_size() -> None:
    assert [non_torch_gib(n) for n in (1, 2, 4, 8)] == [0.15, 0.6, 0.6, 1.5]
    assert non_torch_gib(8, pipeline_parallel=2) == pytest.approx(2.53)


def test_pipeline_partition_follows_vllm() -> None:
    assert pipeline_partition(61, 2) == [31, 30]
    assert pipeline_partition(61, 4) == [15, 15, 16, 15]  # remainder to the stage before the last
    assert pipeline_partition(32, 4) == [8, 8, 8, 8]


def test_report_prints_topology_and_aggregate_tokens() -> None:
    report = size(SizingRequest(R1, GPUS["B200"], data_parallel=8, expert_parallel=True, kv_cache_dtype="fp8"))
    text = format_report(report)
    assert "TP 1 x PP 1 x DP 8, EP 8" in text
    assert f"{report.tokens_fit:,} per engine (DP rank); {report.replica_tokens:,} per replica" in text
