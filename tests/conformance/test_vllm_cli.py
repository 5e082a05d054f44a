"""Every rendered `vllm serve` / `vllm bench serve` and every VLLM_* variable, against the
pinned vLLM's own parser, validate() and registries (checks/vllm_cli.py, vLLM venv).

One checker run covers all stacks and variants plus the broken inputs below, each of which
must be refused: they show the check can fail."""

from __future__ import annotations

import functools
from typing import Any

import pytest
from harness import rendered, run_checker
from render import names

from components.catalog import MODELS, VLLM_IMAGE

pytestmark = pytest.mark.conformance


def _replace(argv: list[str], flag: str, value: str) -> list[str]:
    out = list(argv)
    out[out.index(flag) + 1] = value
    return out


def _without(argv: list[str], *flags: str) -> list[str]:
    out, skip = [], False
    for token in argv:
        if skip:
            skip = False
            continue
        if token in flags:
            skip = token != "--enable-auto-tool-choice"
            continue
        out.append(token)
    return out


BROKEN = (
    "unknown flag",
    "removed flag",
    "bad value",
    "auto tool choice without parser",
    "unknown tool parser",
    "unknown reasoning parser",
    "Run:ai extra config key",
    "bench unknown flag",
)


def _broken() -> dict[str, tuple[list[str], str]]:
    """Broken command lines derived from rendered ones, with the error vLLM must give."""
    runs = rendered()
    serve = runs["a4high"].vllm_serve[0]
    tools = runs["a4high-r1-0528-tools"].vllm_serve[0]
    runai = runs["a4high-runai-streamer"].vllm_serve[0]
    bench = runs["a4high-gcsfuse-benchmark"].vllm_bench[0]
    return {
        "unknown flag": ([*serve, "--tensor-paralel-size", "8"], "unrecognized arguments"),
        "removed flag": ([*serve, "--enable-reasoning"], "unrecognized arguments"),
        "bad value": (_replace(serve, "--tensor-parallel-size", "eight"), "invalid"),
        "auto tool choice without parser": (_without(tools, "--tool-call-parser"), "requires --tool-call-parser"),
        "unknown tool parser": (_replace(tools, "--tool-call-parser", "deepseek_r9"), "deepseek_r9"),
        "unknown reasoning parser": (_replace(serve, "--reasoning-parser", "deepseek_r9"), "deepseek_r9"),
        "Run:ai extra config key": (
            _replace(runai, "--model-loader-extra-config", '{"concurency": 16}'),
            "Unexpected extra config keys",
        ),
        "bench unknown flag": ([*bench, "--random-input-length", "8"], "unrecognized arguments"),
    }


BROKEN_ENV = "VLLM_ENGINE_READY_TIMEOUT"  # the real name ends in _S


@functools.cache
def report() -> dict[str, Any]:
    runs = rendered()
    serve = [a for r in runs.values() for a in r.vllm_serve]
    bench = [a for r in runs.values() for a in r.vllm_bench]
    env = sorted({n for r in runs.values() for n in r.vllm_env} | {BROKEN_ENV})
    broken = [argv for argv, _ in _broken().values()]
    result: dict[str, Any] = run_checker("vllm", "vllm_cli.py", {"serve": serve + broken, "bench": bench, "env": env})
    result["by_argv"] = {tuple(r["argv"]): r for r in result["serve"] + result["bench"]}
    return result


def test_the_pinned_vllm_ran() -> None:
    assert f"v{report()['vllm_version']}" == VLLM_IMAGE.tag


@pytest.mark.parametrize("name", names())
def test_rendered_command_lines_parse_and_validate(name: str) -> None:
    run = rendered()[name]
    if run.engine != "vllm":
        assert not run.vllm_serve, "only the vllm engine runs `vllm serve`"
        return
    # One command line per engine pod template: the leader's and the workers' of a group.
    assert len(run.vllm_serve) == (2 if run.nodes_per_replica > 1 else 1)
    for argv in [*run.vllm_serve, *run.vllm_bench]:
        result = report()["by_argv"][tuple(argv)]
        assert result["ok"], f"{name}: vLLM refused {argv}:\n{result['error']}"


@pytest.mark.parametrize("name", names())
def test_serve_values_are_the_intended_ones(name: str) -> None:
    run = rendered()[name]
    if run.engine != "vllm":
        return
    # The API server's command line (a group's leader: the one without --headless).
    leader = next(argv for argv in run.vllm_serve if "--headless" not in argv)
    values = report()["by_argv"][tuple(leader)]["values"]
    model = MODELS[next(m for m in MODELS if m == values["model_tag"] or values["model_tag"].endswith(m))]
    assert values["served_model_name"] == [run.served_name]
    assert values["reasoning_parser"] == (model.reasoning_parser or "")
    # Tool calling exactly where the catalog gives the model a parser (issue #9 item 5).
    assert values["tool_call_parser"] == model.tool_call_parser
    assert values["enable_auto_tool_choice"] is (model.tool_call_parser is not None)
    if run.nodes_per_replica > 1:
        # The leader serves the API; the worker runs the same engine headless.
        (worker_argv,) = [argv for argv in run.vllm_serve if "--headless" in argv]
        worker = report()["by_argv"][tuple(worker_argv)]["values"]
        assert (values["headless"], worker["headless"]) == (False, True)
        for key in ("tensor_parallel_size", "pipeline_parallel_size", "data_parallel_size", "nnodes"):
            assert values[key] == worker[key], key
    if "runai" in name:
        assert values["load_format"] == "runai_streamer"
        assert isinstance(values["model_loader_extra_config"], dict)
    # Each loader's own flags (components/vllm_cli.py loader_args, issue #14 item 1).
    if "gcsfuse" in name:
        assert values["safetensors_load_strategy"] == "prefetch"
        assert values["model_tag"].startswith("/bucket/models/")
    if "node-cache" in name:
        assert values["model_tag"].startswith("/scratch/models/")
        assert values["load_format"] == "auto" and values["safetensors_load_strategy"] is None


def test_rendered_benchmark_variants_have_bench_commands() -> None:
    assert rendered()["a4high-gcsfuse-benchmark"].vllm_bench
    assert rendered()["eks-vllm-runai-benchmark"].vllm_bench


def test_every_vllm_env_var_exists() -> None:
    env = report()["env"]
    unknown = [n for n, known in env.items() if not known and n != BROKEN_ENV]
    assert not unknown, f"vllm.envs of the pinned vLLM has no {unknown}"


def test_a_wrong_env_var_name_is_caught() -> None:
    assert report()["env"][BROKEN_ENV] is False


@pytest.mark.parametrize("case", BROKEN)
def test_a_broken_command_line_is_refused(case: str) -> None:
    argv, expected = _broken()[case]
    result = report()["by_argv"][tuple(argv)]
    assert not result["ok"], f"vLLM accepted a broken command line ({case}): {argv}"
    assert expected in result["error"], result["error"]
