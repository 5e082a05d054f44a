"""The sizing model against published numbers (docs/reference/vllm-serving.md §3)."""

from __future__ import annotations

import pytest

from components.catalog import GPUS, MACHINES, MODELS, VLLM_MEMORY_MODEL, VLLM_V0_MEMORY_MODEL
from components.sizing import SizingRequest, format_report, kv_bytes_per_token, size, startup_budget_seconds

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
    assert report.weights_gib == pytest.approx(79.41, abs=0.01)
    # §3.5 predicts 68-76 GiB of KV per GPU and ~1.04-1.16 M bf16 tokens.
    assert 60 < report.kv_gib < 80
    assert 900_000 < report.tokens_fit < 1_250_000
    assert report.concurrency > 25


def test_deepseek_r1_does_not_fit_on_eight_a10g() -> None:
    report = size(SizingRequest(R1, GPUS["A10G"], tensor_parallel=8, max_model_len=8192))
    assert not report.fits
    assert report.problems[0].setting == "tensorParallelSize"
    assert "79.41 GiB per GPU" in report.problems[0].message


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
