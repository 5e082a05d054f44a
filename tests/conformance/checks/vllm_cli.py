"""Check rendered vLLM command lines and environment with the pinned vLLM itself.

Runs inside the tier's vLLM virtualenv (never the program's): ``python vllm_cli.py IN.json``
where IN.json is ``{"serve": [argv...], "bench": [argv...], "env": [names...]}``, each argv
as rendered after ``vllm`` (``["serve", MODEL, ...]``, ``["bench", "serve", ...]``). Prints
one JSON report: per command line ``ok`` or the error vLLM gave, with the parsed values a
test may assert on; per env name whether ``vllm.envs`` knows it.

The parser is built as ``vllm/entrypoints/cli/main.py`` builds it (vLLM 0.33.0): the CPU
platform when none is detected (no GPU: parsing only), ``FlexibleArgumentParser``, each CLI
module's ``cmd_init()`` then ``subparser_init()``, ``parse_args``, then the subcommand's own
``validate()``. Beyond what ``validate()`` checks, the names a server resolves at start
(tool and reasoning parsers) and the Run:ai loader's extra config go through the same
registries and loader class the server uses.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from typing import Any


def _platform() -> None:
    from vllm import platforms

    if platforms.current_platform.is_unspecified():
        from vllm.platforms.cpu import CpuPlatform

        platforms.current_platform = CpuPlatform()


_PARSERS: dict[str, tuple[Any, dict[str, Any]]] = {}


def _parser(argv: list[str]) -> tuple[Any, dict[str, Any]]:
    """Built once per subcommand (building takes seconds); sys.argv first, as main.py sees it."""
    if argv[0] in _PARSERS:
        return _PARSERS[argv[0]]
    sys.argv = ["vllm", *argv]
    import vllm.entrypoints.cli.benchmark.main as bench
    from vllm.entrypoints.cli import serve
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = FlexibleArgumentParser(description="vLLM CLI")
    subparsers = parser.add_subparsers(required=False, dest="subparser")
    cmds: dict[str, Any] = {}
    for module in (serve, bench):
        for cmd in module.cmd_init():
            cmd.subparser_init(subparsers).set_defaults(dispatch_function=cmd.cmd)
            cmds[cmd.name] = cmd
    _PARSERS[argv[0]] = parser, cmds
    return parser, cmds


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


def _server_names(args: argparse.Namespace) -> None:
    """What `vllm serve` resolves at start: the tool and reasoning parsers by name, and the
    Run:ai streamer's extra config through the loader class itself."""
    if getattr(args, "tool_call_parser", None):
        from vllm.tool_parsers import ToolParserManager

        ToolParserManager.get_tool_parser(args.tool_call_parser)
    if getattr(args, "reasoning_parser", None):
        from vllm.reasoning import ReasoningParserManager

        ReasoningParserManager.get_reasoning_parser(args.reasoning_parser)
    if getattr(args, "load_format", None) == "runai_streamer":
        from vllm.config.load import LoadConfig
        from vllm.model_executor.model_loader.runai_streamer_loader import RunaiModelStreamerLoader

        RunaiModelStreamerLoader(
            LoadConfig(load_format="runai_streamer", model_loader_extra_config=args.model_loader_extra_config or {})
        )


def check_argv(argv: list[str]) -> dict[str, Any]:
    err = io.StringIO()
    try:
        parser, cmds = _parser(argv)
        with contextlib.redirect_stderr(err):
            args = parser.parse_args(argv)
        cmds[args.subparser].validate(args)
        if args.subparser == "serve":
            _server_names(args)
    except SystemExit as exc:  # argparse's way of refusing
        return {"argv": argv, "ok": False, "error": err.getvalue().strip() or f"exit {exc.code}"}
    except Exception as exc:
        return {"argv": argv, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
    values = {k: _jsonable(v) for k, v in vars(args).items() if k != "dispatch_function"}
    return {"argv": argv, "ok": True, "values": values}


def main() -> None:
    with open(sys.argv[1]) as f:
        request = json.load(f)
    _platform()
    import vllm
    import vllm.envs

    known = set(vllm.envs.environment_variables)
    report = {
        "vllm_version": vllm.__version__,
        "serve": [check_argv(a) for a in request.get("serve", [])],
        "bench": [check_argv(a) for a in request.get("bench", [])],
        "env": {name: name in known for name in request.get("env", [])},
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
