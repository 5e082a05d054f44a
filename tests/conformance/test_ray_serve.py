"""The RayService's serveConfigV2 against Ray 2.52.0's own LLMServingArgs / LLMConfig and the
engine-argument split a replica makes with the vLLM the ray-llm image ships
(checks/ray_serve.py, Ray venv). Broken configs must be refused."""

from __future__ import annotations

import copy
import functools
import re
from typing import Any

import pytest
from harness import HERE, rendered, run_checker

from components.catalog import RAY_VERSION

pytestmark = pytest.mark.conformance

# The vLLM inside rayproject/ray-llm:2.52.0 (requirements-ray.txt says how it was found).
RAY_LLM_VLLM = re.findall(r"^vllm==(\S+)", (HERE / "requirements-ray.txt").read_text(), re.MULTILINE)[0]
RAY_STACKS = (
    "eks",
    "eks-ray-mirror",
    "eks-ray-volume",
    "eks-ray-s3-compatible",
    "a4high-ray-two-nodes",
    "eks-ray-p5-tp8-pp2",
    "onprem",
)
# Multi-node replicas: the GPU type Ray detects, and TP x PP.
MULTI_NODE = {
    "a4high-ray-two-nodes": ("B200", 8, 2),
    "eks-ray-p5-tp8-pp2": ("H100", 8, 2),
    "onprem": ("A100-40G", 8, 4),
}


def _llm_config(config: dict[str, Any]) -> dict[str, Any]:
    return config["applications"][0]["args"]["llm_configs"][0]  # type: ignore[no-any-return]


def _broken() -> dict[str, dict[str, Any]]:
    base = rendered()["eks"].ray_serve_configs[0]
    cases: dict[str, dict[str, Any]] = {}
    for case in BROKEN:
        config = copy.deepcopy(base)
        llm = _llm_config(config)
        if case == "unknown engine_kwargs key":
            llm["engine_kwargs"]["tensor_paralel_size"] = 1
        elif case == "unknown accelerator type":
            llm["accelerator_type"] = "A10X"
        elif case == "bad bucket_uri":
            llm["model_loading_config"]["model_source"] = {"bucket_uri": "https://example.invalid/model"}
        elif case == "wrong builder":
            config["applications"][0]["import_path"] = "ray.serve.llm:build_llm_app"
        cases[case] = config
    return cases


BROKEN = ("unknown engine_kwargs key", "unknown accelerator type", "bad bucket_uri", "wrong builder")


@functools.cache
def report() -> dict[str, Any]:
    runs = rendered()
    configs = [c for name in RAY_STACKS for c in runs[name].ray_serve_configs]
    env = sorted({n for name in RAY_STACKS for n in runs[name].ray_vllm_env})
    result: dict[str, Any] = run_checker(
        "ray", "ray_serve.py", {"configs": configs + list(_broken().values()), "env": env}
    )
    return result


def test_every_rayservice_stack_and_variant_is_checked() -> None:
    """A stack file or variant on the rayservice engine that is missing above goes unchecked."""
    assert {name for name, run in rendered().items() if run.engine == "rayservice"} == set(RAY_STACKS)


def test_the_pinned_ray_and_its_vllm_ran() -> None:
    assert report()["ray_version"] == RAY_VERSION
    assert report()["vllm_version"] == RAY_LLM_VLLM


@pytest.mark.parametrize("index", range(len(RAY_STACKS)))
def test_rendered_serve_config_validates(index: int) -> None:
    name = RAY_STACKS[index]
    assert len(rendered()[name].ray_serve_configs) == 1, name
    for app in report()["configs"][index]:
        assert app["ok"], f"{name}: Ray refused the serve config: {app.get('error')}"
        for llm in app["llm_configs"]:
            assert llm["model_id"] == rendered()[name].served_name


@pytest.mark.parametrize("name", sorted(MULTI_NODE))
def test_a_multi_node_replica_packs_one_bundle_per_gpu(name: str) -> None:
    """Ray's own reading of the rendered placement: TP x PP one-GPU bundles (16 for
    TP 8 x PP 2 on two nodes, 32 for the on-prem TP 8 x PP 4 on four) packed over the
    nodes, tagged with the GPU type Ray detects on them, and a GPU engine (the B200 is
    missing from the list Ray 2.52 falls back on without explicit bundles)."""
    gpu, tp, pp = MULTI_NODE[name]
    (app,) = report()["configs"][RAY_STACKS.index(name)]
    (llm,) = app["llm_configs"]
    assert llm["placement_strategy"] == "PACK"
    assert llm["placement_bundles"] == [{"CPU": 0.0, "GPU": 1.0, f"accelerator_type:{gpu}": 0.001}] * (tp * pp)
    assert llm["use_gpu"] is True
    kwargs = llm["engine_kwargs"]
    assert (kwargs["tensor_parallel_size"], kwargs["pipeline_parallel_size"]) == (tp, pp)
    assert {"distributed_executor_backend", "pipeline_parallel_size"} <= set(llm["engine_args_keys"])


def test_every_vllm_env_var_on_ray_pods_exists() -> None:
    assert all(report()["env"].values()), report()["env"]


@pytest.mark.parametrize("case", BROKEN)
def test_a_broken_serve_config_is_refused(case: str) -> None:
    apps = report()["configs"][len(RAY_STACKS) + BROKEN.index(case)]
    assert not apps[0]["ok"], f"Ray accepted a broken serve config ({case})"
