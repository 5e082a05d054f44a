"""The compile-cache redirects (components/workloads/compile_cache.py) name variables the
pinned software really reads. ``VLLM_*`` names are checked against ``vllm.envs`` by
test_vllm_cli.py; the others are looked up in the installed sources of the vLLM venv
(vLLM 0.33.0 and the torch and Triton it pins)."""

from __future__ import annotations

import pytest
from harness import run_checker

from components.workloads.compile_cache import cache_env

pytestmark = pytest.mark.conformance

# Name -> the installed file that reads it.
READ_BY = {
    "DG_JIT_CACHE_DIR": "vllm/utils/deep_gemm.py",
    "TRITON_CACHE_DIR": "triton/knobs.py",
    "TRITON_HOME": "triton/knobs.py",
    "TORCHINDUCTOR_CACHE_DIR": "torch/_inductor/runtime/cache_dir_utils.py",
    "TORCH_EXTENSIONS_DIR": "torch/utils/cpp_extension.py",
    "XDG_CACHE_HOME": "torch/_appdirs.py",
}
# Read by software the CPU venv does not install: FlashInfer's JIT (flashinfer/jit/env.py,
# a dependency of the vLLM GPU wheel) and the NVIDIA driver (CUDA C++ Programming Guide,
# CUDA environment variables).
NOT_INSTALLED = {"FLASHINFER_WORKSPACE_BASE", "CUDA_CACHE_PATH"}


def test_every_redirect_has_a_reader() -> None:
    names = {e["name"] for e in cache_env("/c")}
    assert names == {n for n in names if n.startswith("VLLM_")} | READ_BY.keys() | NOT_INSTALLED


def test_the_pinned_software_reads_each_redirect() -> None:
    report = run_checker("vllm", "cache_env.py", {"files": READ_BY})
    assert all(r["exists"] for r in report.values()), report
    missing = [name for name, r in report.items() if not r["read"]]
    assert not missing, f"not read where we say: {missing} ({report})"
