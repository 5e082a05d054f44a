"""Check rendered RayService serve configs with the pinned Ray Serve LLM and the vLLM that
the rayproject/ray-llm image ships.

Runs inside the tier's Ray virtualenv: ``python ray_serve.py IN.json`` where IN.json is
``{"configs": [serveConfigV2 as data, ...]}``. For each application: the import path is Ray's
OpenAI app builder; ``args`` validate as ``LLMServingArgs`` (which validates each
``LLMConfig``); then each config's ``get_engine_config()`` splits ``engine_kwargs`` over
vLLM's ``FrontendArgs`` and ``AsyncEngineArgs`` fields exactly as a replica does at start,
raising "Unknown engine argument" for anything else (Ray 2.52.0
``ray/llm/_internal/serve/engines/vllm/vllm_models.py``). Prints one JSON report.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import Any

BUILDER = "ray.serve.llm:build_openai_app"


def check_app(app: dict[str, Any]) -> dict[str, Any]:
    from ray.llm._internal.serve.core.ingress.builder import LLMServingArgs
    from vllm.engine.arg_utils import AsyncEngineArgs

    result: dict[str, Any] = {"name": app.get("name"), "ok": False}
    try:
        if app.get("import_path") != BUILDER:
            raise ValueError(f"import_path {app.get('import_path')!r} is not {BUILDER}")
        args = LLMServingArgs.model_validate(app["args"])
        engine_fields = {f.name for f in dataclasses.fields(AsyncEngineArgs)}
        result["llm_configs"] = []
        for config in args.llm_configs:
            engine = config.get_engine_config()  # raises on an engine_kwargs key vLLM does not have
            result["llm_configs"].append(
                {
                    # How a replica is placed: its bundles and strategy, and whether Ray treats
                    # its accelerator as a GPU (vllm_models.py VLLMEngineConfig).
                    "placement_strategy": engine.placement_strategy,
                    "placement_bundles": engine.placement_bundles,
                    "use_gpu": engine.use_gpu,
                    "model_id": config.model_id,
                    "accelerator_type": config.accelerator_type,
                    "engine_kwargs": config.engine_kwargs,
                    "engine_args_keys": sorted(set(config.engine_kwargs) & engine_fields),
                }
            )
        result["ok"] = True
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
    return result


def main() -> None:
    with open(sys.argv[1]) as f:
        request = json.load(f)
    import ray
    import vllm
    import vllm.envs

    report = {
        "ray_version": ray.__version__,
        "vllm_version": vllm.__version__,
        "configs": [[check_app(app) for app in config["applications"]] for config in request["configs"]],
        "env": {name: name in vllm.envs.environment_variables for name in request.get("env", [])},
    }
    print(json.dumps(report, default=str))


if __name__ == "__main__":
    main()
