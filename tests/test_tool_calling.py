"""Issue #9 items 5 and 12 on the rendered resources: tool calling per model, and Open WebUI
0.12's environment (the conformance tier runs the same manifests against the real software)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from components.catalog import MODELS
from tools.offline import StackRun


def _webui_env(run: StackRun) -> dict[str, Any]:
    container = run.kubernetes_object("Deployment", "open-webui")["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value") for e in container["env"]}


def _serve_script(run: StackRun) -> str:
    container = run.kubernetes_object("Deployment", "vllm")["spec"]["template"]["spec"]["containers"][0]
    return str(container["command"][-1])


def test_only_models_with_a_parser_get_tool_calling() -> None:
    with_parser = {m for m, spec in MODELS.items() if spec.tool_call_parser}
    assert with_parser == {
        "deepseek-ai/DeepSeek-R1-0528",
        "meta-llama/Llama-3.1-8B-Instruct",
        "meta-llama/Llama-3.1-70B-Instruct",
    }
    assert all(spec.tool_call_source for spec in MODELS.values())


def test_r1_engine_has_no_tool_flags_and_the_ui_sends_no_tools(a4high: StackRun) -> None:
    assert "--enable-auto-tool-choice" not in _serve_script(a4high)
    assert json.loads(_webui_env(a4high)["DEFAULT_MODEL_PARAMS"]) == {"function_calling": "legacy"}


def test_a_model_with_a_parser_gets_tool_calling_and_native_tools(run_with: Callable[..., StackRun]) -> None:
    run = run_with("a4high", {"llm-serving:serving": {"model": "deepseek-ai/DeepSeek-R1-0528"}})
    assert "--enable-auto-tool-choice --tool-call-parser deepseek_v3" in _serve_script(run)
    assert "DEFAULT_MODEL_PARAMS" not in _webui_env(run)


def test_ray_engine_never_gets_native_tools(run_with: Callable[..., StackRun]) -> None:
    # The RayService renders no tool flags, so even a model with a parser must not get tools.
    run = run_with("eks", {"llm-serving:serving": {"model": "meta-llama/Llama-3.1-8B-Instruct"}})
    assert json.loads(_webui_env(run)["DEFAULT_MODEL_PARAMS"]) == {"function_calling": "legacy"}


def test_open_webui_is_pinned_offline_and_without_arena_models(a4high: StackRun, eks: StackRun) -> None:
    for run in (a4high, eks):
        container = run.kubernetes_object("Deployment", "open-webui")["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == "ghcr.io/open-webui/open-webui:v0.12.4"
        env = _webui_env(run)
        assert env["ENABLE_EVALUATION_ARENA_MODELS"] == "False"
        assert env["OFFLINE_MODE"] == "True"


def test_outputs_say_the_admin_password_is_the_initial_one(a4high: StackRun) -> None:
    assert "initial password only" in a4high.outputs["open_webui_admin_password_note"]
