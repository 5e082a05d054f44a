"""Ask the installed vLLM how it would run DeepSeek-R1's block-FP8 checkpoint on an A100
(compute capability 8.0, no FP8 tensor cores), for the claim in Pulumi.onprem.yaml.

Runs inside a tier virtualenv (``python ampere_fp8.py IN.json``, IN.json ``{"capabilities":
[[8, 0], [9, 0]]}``) and prints one JSON report per capability. These venvs have no GPU: the
compiled CUDA extensions cannot load (they need libcuda), so the module that only registers
them is replaced by an empty one, and the modules whose decisions we ask for are imported on
the CPU platform. Each decision is then made by vLLM's own Python (its CUDA platform class with
only the device capability given, its kernel classes, its backend priority lists) with that
capability; the compiled kernels are never called. Two vLLM generations are covered: 0.33 (the
pinned engine image) and 0.11 (the one in rayproject/ray-llm:2.52.0, requirements-ray.txt).
"""

from __future__ import annotations

import json
import sys
import types
from typing import Any

# R1's checkpoint: FP8 weights in 128 x 128 blocks, dynamic activation scales
# (deepseek-ai/DeepSeek-R1 config.json quantization_config.weight_block_size).
R1_BLOCK = (128, 128)
MLA_HEAD_SIZE = 576  # R1's MLA: kv_lora_rank 512 + qk_rope_head_dim 64


def _cpu_platform_without_compiled_ops() -> None:
    for name in ("vllm._C", "vllm._C_stable_libtorch"):
        sys.modules.setdefault(name, types.ModuleType(name))
    from vllm import platforms
    from vllm.platforms.interface import PlatformEnum

    if platforms.current_platform._enum == PlatformEnum.UNSPECIFIED:  # no GPU: parse on CPU
        from vllm.platforms.cpu import CpuPlatform

        platforms.current_platform = CpuPlatform()


def _fake_gpu(capability: tuple[int, int]) -> Any:
    """vLLM's own CUDA platform with only the device capability answered by us."""
    from vllm.platforms.cuda import CudaPlatformBase
    from vllm.platforms.interface import DeviceCapability

    class Gpu(CudaPlatformBase):  # type: ignore[misc]
        @classmethod
        def get_device_capability(cls, device_id: int = 0) -> DeviceCapability:
            return DeviceCapability(*capability)

        @classmethod
        def get_device_name(cls, device_id: int = 0) -> str:
            return "fake GPU"

    return Gpu()


def _patched(modules: list[Any], gpu: Any) -> list[tuple[Any, Any]]:
    saved = [(m, m.current_platform) for m in modules]
    for m in modules:
        m.current_platform = gpu
    return saved


def _restore(saved: list[tuple[Any, Any]]) -> None:
    for m, platform in saved:
        m.current_platform = platform


def _v033_linear(gpu: Any, cc: int) -> dict[str, Any]:
    """Dense layers: the block-FP8 kernels in priority order (kernels/linear/__init__.py),
    what each one ranked ahead of Marlin answers, and Marlin's own support test."""
    from vllm.model_executor.kernels import linear
    from vllm.model_executor.kernels.linear.scaled_mm import marlin
    from vllm.model_executor.layers.quantization.utils import marlin_utils_fp8
    from vllm.model_executor.layers.quantization.utils.quant_utils import (
        GroupShape,
        create_fp8_quant_key,
        kFp8Static128BlockSym,
    )
    from vllm.platforms.interface import PlatformEnum

    kernels = linear._POSSIBLE_FP8_BLOCK_KERNELS[PlatformEnum.CUDA]
    report: dict[str, Any] = {"linear_block_kernels": [k.__name__ for k in kernels], "linear_ahead_of_marlin": {}}
    for kernel in kernels[: kernels.index(marlin.MarlinFP8ScaledMMLinearKernel)]:
        module = sys.modules[kernel.__module__]
        saved = _patched([module], gpu) if hasattr(module, "current_platform") else []
        try:
            report["linear_ahead_of_marlin"][kernel.__name__] = list(kernel.is_supported(cc))
        except Exception as exc:
            report["linear_ahead_of_marlin"][kernel.__name__] = f"{type(exc).__name__}: {exc}"
        finally:
            _restore(saved)
    saved = _patched([marlin, marlin_utils_fp8], gpu)
    try:
        report["linear_marlin_supported"] = list(marlin.MarlinFP8ScaledMMLinearKernel.is_supported(cc))
    finally:
        _restore(saved)
    # The weight key Fp8LinearMethod builds for R1's blocks (quantization/fp8.py) is the
    # one Marlin treats as block-quantized and the MoE checks below use.
    weight_key = create_fp8_quant_key(static=True, group_shape=GroupShape(*R1_BLOCK))
    report["block_weight_key_is_static_128_block"] = weight_key == kFp8Static128BlockSym
    return report


def _v033_experts(gpu: Any) -> dict[str, Any]:
    """Experts: which of Triton (W8A8, ranked ahead of Marlin by fused_moe/oracle/fp8.py)
    and Marlin (W8A16) accept R1's scheme (128-block weights, dynamic 128-group activations)."""
    from vllm.model_executor.layers.fused_moe.experts import marlin_moe, triton_moe
    from vllm.model_executor.layers.quantization.utils.quant_utils import kFp8Dynamic128Sym, kFp8Static128BlockSym

    scheme = (kFp8Static128BlockSym, kFp8Dynamic128Sym)
    saved = _patched([triton_moe, marlin_moe], gpu)
    try:
        return {
            "moe_triton_accepts_block_fp8": bool(triton_moe.TritonExperts._supports_quant_scheme(*scheme)),
            "moe_marlin_device": bool(marlin_moe.MarlinExperts._supports_current_device()),
            "moe_marlin_accepts_block_fp8": bool(marlin_moe.MarlinExperts._supports_quant_scheme(*scheme)),
        }
    finally:
        _restore(saved)


def _v033_mla(capability: tuple[int, int]) -> dict[str, Any]:
    """MLA: the CUDA platform's backend priorities for this capability (platforms/cuda.py),
    each backend's own capability test, and Triton MLA's verdict on the stack's BF16 KV cache
    as CudaPlatform.get_valid_backends asks it (an empty list: valid)."""
    from vllm.platforms import cuda
    from vllm.platforms.interface import DeviceCapability
    from vllm.utils.torch_utils import STR_DTYPE_TO_TORCH_DTYPE
    from vllm.v1.attention.backends import fa_utils
    from vllm.v1.attention.backends.registry import AttentionBackendEnum
    from vllm.v1.attention.selector import AttentionSelectorConfig

    # fa_utils binds its FlashAttention functions only on CUDA; the names the FlashAttention
    # MLA module imports are set so that module can be imported and asked.
    for name in ("flash_attn_varlen_func", "get_scheduler_metadata"):
        if not hasattr(fa_utils, name):
            setattr(fa_utils, name, None)
    cap = DeviceCapability(*capability)
    priorities = []
    for backend in cuda._get_backend_priorities(True, cap, None, "auto"):
        entry: dict[str, Any] = {"name": backend.name}
        try:
            entry["supports_capability"] = bool(backend.get_class().supports_compute_capability(cap))
        except (ImportError, OSError) as exc:
            entry["import_error"] = f"{type(exc).__name__}: {exc}"
        priorities.append(entry)
    selector = AttentionSelectorConfig(
        head_size=MLA_HEAD_SIZE,
        dtype=STR_DTYPE_TO_TORCH_DTYPE["bfloat16"],  # R1 runs in BF16 (torch via vLLM: no stubs)
        kv_cache_dtype="auto",
        block_size=None,
        use_mla=True,
    )
    triton = AttentionBackendEnum.TRITON_MLA.get_class()
    return {
        "mla_priorities": priorities,
        "triton_mla_refusals_bf16": triton.validate_configuration(device_capability=cap, **selector._asdict()),
    }


def _v033_fp8_kv_cache(gpu: Any) -> str:
    """Triton MLA's own refusal of an FP8 KV cache (TritonMLAImpl.__init__), the rule
    components/config/stack.py applies at FP8_MIN_CAPABILITY. The common MLA constructor it
    calls first builds the model's projections, so it is replaced by one that keeps only the
    KV cache dtype; the checks after it are Triton MLA's. Past them, the constructor asks
    the CUDA runtime for the SM count, which a CPU venv does not have."""
    from vllm.v1.attention.backends.mla import triton_mla

    common_init = triton_mla.MLACommonImpl.__init__

    def keep_dtype(self: Any, *args: Any, **kwargs: Any) -> None:
        self.kv_cache_dtype = args[6]  # (num_heads, head_size, scale, num_kv_heads, alibi, window, dtype)

    saved = _patched([triton_mla], gpu)
    triton_mla.MLACommonImpl.__init__ = keep_dtype
    try:
        triton_mla.TritonMLAImpl(128, MLA_HEAD_SIZE, 1.0, 1, None, None, "fp8", None, "decoder", None)
        return "accepted"
    except ValueError as exc:
        return f"refused: {exc}"
    except Exception as exc:
        return f"past the capability checks: {type(exc).__name__}: {exc}"
    finally:
        triton_mla.MLACommonImpl.__init__ = common_init
        _restore(saved)


def _v033(capability: tuple[int, int]) -> dict[str, Any]:
    from vllm.model_executor.layers.quantization.fp8 import Fp8Config

    gpu = _fake_gpu(capability)
    return {
        "fp8_min_capability": Fp8Config.get_min_capability(),
        **_v033_linear(gpu, capability[0] * 10 + capability[1]),
        **_v033_experts(gpu),
        **_v033_mla(capability),
        "triton_mla_fp8_kv_cache": _v033_fp8_kv_cache(gpu),
    }


def _v011(capability: tuple[int, int]) -> dict[str, Any]:
    from vllm.model_executor.layers.quantization import fp8

    gpu = _fake_gpu(capability)
    report: dict[str, Any] = {"fp8_min_capability": fp8.Fp8Config.get_min_capability()}
    config = fp8.Fp8Config(
        is_checkpoint_fp8_serialized=True, activation_scheme="dynamic", weight_block_size=list(R1_BLOCK)
    )
    saved = _patched([fp8], gpu)
    try:
        report["linear_use_marlin"] = bool(fp8.Fp8LinearMethod(config).use_marlin)
        # The experts: the same Marlin decision, and what an all2all (expert parallel)
        # kernel then meets. The layer is a stand-in: the constructor keeps its MoE config.
        layer = types.SimpleNamespace(moe_config=types.SimpleNamespace())
        # select_gemm_impl imports two Triton kernel classes first, which the package
        # defines only where Triton has a GPU; the Marlin assertion comes next.
        from vllm.model_executor.layers import fused_moe

        for name in ("BatchedTritonOrDeepGemmExperts", "TritonOrDeepGemmExperts"):
            if not hasattr(fused_moe, name):
                setattr(fused_moe, name, None)
        try:
            moe = fp8.Fp8MoEMethod(config, layer)
            report["moe_use_marlin"] = bool(moe.use_marlin)
            try:
                moe.select_gemm_impl(None, layer)
                report["moe_all2all"] = "accepted"
            except AssertionError as exc:
                report["moe_all2all"] = f"AssertionError: {exc}"
            except Exception as exc:  # got past the Marlin assertion
                report["moe_all2all"] = f"past the Marlin check: {type(exc).__name__}: {exc}"
        except Exception as exc:
            report["moe_error"] = f"{type(exc).__name__}: {exc}"
    finally:
        _restore(saved)
    return report


def main() -> None:
    with open(sys.argv[1]) as f:
        request = json.load(f)
    _cpu_platform_without_compiled_ops()
    import vllm

    check = _v011 if vllm.__version__.startswith("0.11.") else _v033
    print(
        json.dumps(
            {
                "vllm_version": vllm.__version__,
                "by_capability": {f"{a}.{b}": check((a, b)) for a, b in request["capabilities"]},
            },
            default=str,
        )
    )


if __name__ == "__main__":
    main()
