"""The claim Pulumi.onprem.yaml rests on: DeepSeek-R1's block-FP8 checkpoint runs on A100s
(compute capability 8.0, no FP8 tensor cores) weight-only through Marlin, with Triton as the
MLA backend, in the pinned vLLM 0.33 and in the vLLM 0.11 the rayproject/ray-llm image ships
(which also refuses Marlin experts under expert parallelism, hence the stack's
``expertParallel: false``). checks/ampere_fp8.py asks the installed code for each decision
at the A100's capability and, for contrast, at the first native-FP8 capability and at H100's,
so an upgrade that drops the Ampere path, or moves the FP8 line, fails here."""

from __future__ import annotations

import functools
from typing import Any

import pytest
from harness import rendered, run_checker

from components.catalog import COMPUTE_CAPABILITY, FP8_MIN_CAPABILITY

pytestmark = pytest.mark.conformance

STACK = "onprem"
# Backends ranked ahead of Triton MLA on 8.0 that cannot be imported in the CPU venv, and why
# they would refuse an A100 anyway. FlashInfer is a dependency of the GPU wheel only; vLLM
# 0.33 v1/attention/backends/mla/flashinfer_mla.py: supports_compute_capability is major == 10.
UNIMPORTABLE_AHEAD_OF_TRITON = {"FLASHINFER_MLA"}


def _llm_config() -> dict[str, Any]:
    """The stack's one LLMConfig in its RayService serve config."""
    (config,) = rendered()[STACK].ray_serve_configs
    (llm,) = config["applications"][0]["args"]["llm_configs"]
    return llm  # type: ignore[no-any-return]


def _gpu() -> str:
    return str(_llm_config()["accelerator_type"])


def _key(capability: tuple[int, int]) -> str:
    return f"{capability[0]}.{capability[1]}"


AMPERE = _key(COMPUTE_CAPABILITY["A100-40G"])
NATIVE_FP8 = _key(FP8_MIN_CAPABILITY)
HOPPER = _key(COMPUTE_CAPABILITY["H100"])


@functools.cache
def report(venv: str) -> dict[str, Any]:
    capabilities = [COMPUTE_CAPABILITY[_gpu()], FP8_MIN_CAPABILITY, COMPUTE_CAPABILITY["H100"]]
    result: dict[str, Any] = run_checker(venv, "ampere_fp8.py", {"capabilities": capabilities})
    return result["by_capability"]  # type: ignore[no-any-return]


def test_the_stack_runs_on_an_ampere_gpu() -> None:
    assert _key(COMPUTE_CAPABILITY[_gpu()]) == AMPERE
    assert COMPUTE_CAPABILITY[_gpu()] < FP8_MIN_CAPABILITY


@pytest.mark.parametrize("venv", ["vllm", "ray"])
def test_fp8_checkpoints_load_on_ampere(venv: str) -> None:
    """Fp8Config's minimum capability: 75 in 0.33, 80 in 0.11 (the A100 exactly)."""
    major, minor = COMPUTE_CAPABILITY[_gpu()]
    assert report(venv)[AMPERE]["fp8_min_capability"] <= major * 10 + minor


def test_dense_layers_run_weight_only_through_marlin() -> None:
    """vLLM 0.33 picks the first block-FP8 kernel that supports the device
    (kernels/linear/__init__.py choose_scaled_mm_linear_kernel): Marlin must support 8.0 and
    every kernel ranked ahead of it refuse. Without a GPU some of those refuse for want of
    their optional packages (DeepGEMM, FlashInfer) rather than the capability, so this half
    catches a new kernel put ahead of Marlin, not a changed capability of an old one."""
    ampere = report("vllm")[AMPERE]
    assert "MarlinFP8ScaledMMLinearKernel" in ampere["linear_block_kernels"]
    assert ampere["linear_marlin_supported"] == [True, None]
    assert ampere["block_weight_key_is_static_128_block"]
    refused = {name: r for name, r in ampere["linear_ahead_of_marlin"].items() if r[0] is not False}
    assert not refused, f"a block-FP8 kernel ahead of Marlin accepts compute capability {AMPERE}: {refused}"


def test_experts_fall_through_triton_to_marlin_below_native_fp8() -> None:
    """The MoE oracle (fused_moe/oracle/fp8.py) ranks Triton W8A8 ahead of Marlin; Triton
    takes block FP8 only where the platform supports FP8 (experts/triton_moe.py), which is
    where the catalog's FP8_MIN_CAPABILITY says it starts."""
    by_capability = report("vllm")
    assert by_capability[AMPERE]["moe_triton_accepts_block_fp8"] is False
    assert by_capability[NATIVE_FP8]["moe_triton_accepts_block_fp8"] is True
    assert by_capability[HOPPER]["moe_triton_accepts_block_fp8"] is True
    assert by_capability[AMPERE]["moe_marlin_device"] is True
    assert by_capability[AMPERE]["moe_marlin_accepts_block_fp8"] is True


def _first_capable(priorities: list[dict[str, Any]]) -> tuple[str, list[str]]:
    """The first backend in priority order that supports the capability, and the backends
    ahead of it that could not be asked."""
    unasked = []
    for entry in priorities:
        if "import_error" in entry:
            unasked.append(entry["name"])
        elif entry["supports_capability"]:
            return entry["name"], unasked
    raise AssertionError(f"no MLA backend supports the capability: {priorities}")


def test_mla_runs_on_triton_on_ampere() -> None:
    """platforms/cuda.py _get_backend_priorities for MLA, each backend's own capability test."""
    by_capability = report("vllm")
    backend, unasked = _first_capable(by_capability[AMPERE]["mla_priorities"])
    assert backend == "TRITON_MLA"
    assert set(unasked) <= UNIMPORTABLE_AHEAD_OF_TRITON, unasked
    assert by_capability[AMPERE]["triton_mla_refusals_bf16"] == []  # the stack's kvCacheDtype auto
    # Hopper is given a faster backend: the check tells the capabilities apart.
    assert _first_capable(by_capability[HOPPER]["mla_priorities"])[0] != "TRITON_MLA"


def test_triton_mla_refuses_an_fp8_kv_cache_below_native_fp8() -> None:
    """The rule components/config/stack.py applies with the catalog's FP8_MIN_CAPABILITY (and
    the reason the stack keeps kvCacheDtype auto): vLLM 0.33 TritonMLAImpl refuses FP8 KV
    below it and lets it through from it."""
    by_capability = report("vllm")
    assert by_capability[AMPERE]["triton_mla_fp8_kv_cache"].startswith("refused: FP8 KV cache is not supported")
    for capability in (NATIVE_FP8, HOPPER):
        assert by_capability[capability]["triton_mla_fp8_kv_cache"].startswith("past the capability checks")
    assert _llm_config()["engine_kwargs"]["kv_cache_dtype"] == "auto"


def test_the_ray_images_vllm_uses_marlin_on_ampere_only() -> None:
    """vLLM 0.11 quantization/fp8.py: Marlin for linear layers and experts below 8.9."""
    by_capability = report("ray")
    assert (by_capability[AMPERE]["linear_use_marlin"], by_capability[AMPERE]["moe_use_marlin"]) == (True, True)
    for capability in (NATIVE_FP8, HOPPER):
        assert (by_capability[capability]["linear_use_marlin"], by_capability[capability]["moe_use_marlin"]) == (
            False,
            False,
        )


def test_expert_parallel_stays_off_where_marlin_refuses_all2all() -> None:
    """vLLM 0.11's Fp8MoEMethod.select_gemm_impl (the all2all path of expert parallelism)
    asserts Marlin is not in use; the rendered serve config must leave EP off."""
    assert report("ray")[AMPERE]["moe_all2all"].startswith("AssertionError: Marlin")
    assert report("ray")[HOPPER]["moe_all2all"].startswith("past the Marlin check")
    assert not _llm_config()["engine_kwargs"].get("enable_expert_parallel", False)
