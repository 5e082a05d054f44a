"""Shared fixtures: stack runs on the mock engine (cached per stack) and schema checks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from tools import kubeschema
from tools.offline import StackRun, run_stack

_RUNS: dict[str, StackRun] = {}


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """How many pytest-xdist workers ``-n auto`` (pyproject addopts) starts.

    None, xdist's own answer (one per core, or PYTEST_XDIST_AUTO_NUM_WORKERS), for the suite
    or a folder of it. 0, the tests in this process, when test files or node IDs are named
    (a worker's start imports the Pulumi SDKs again, seconds; ``-n 2`` still spreads them)
    and for the conformance tier (``-m conformance``), whose checks start the real vLLM, Ray
    and Open WebUI and share one artefact directory.
    """
    markexpr = str(config.getoption("markexpr") or "")
    if "conformance" in markexpr.replace("not conformance", ""):
        return 0
    named = [config.invocation_params.dir / arg.split("::")[0] for arg in config.args]
    return 0 if any(path.is_file() for path in named) else None


def stack_run(stack: str) -> StackRun:
    """The stack file's run, as-is. Cached: a run takes a few seconds and tests only read it."""
    if stack not in _RUNS:
        run = run_stack(stack)
        if run.error is not None:
            raise AssertionError(f"stack {stack} failed on the mock engine: {run.error}") from run.error
        _RUNS[stack] = run
    return _RUNS[stack]


@pytest.fixture
def a4high() -> StackRun:
    return stack_run("a4high")


@pytest.fixture
def eks() -> StackRun:
    return stack_run("eks")


@pytest.fixture
def onprem() -> StackRun:
    return stack_run("onprem")


@pytest.fixture
def run_with() -> Callable[..., StackRun]:
    """Run a stack with changes merged into its config (not cached)."""

    def _run(stack: str, changes: Mapping[str, Any]) -> StackRun:
        return run_stack(stack, changes)

    return _run


def assert_valid(objects: list[dict[str, Any]]) -> None:
    """Every manifest passes strict schema validation (and there is at least one)."""
    assert objects, "no Kubernetes objects to validate"
    problems = [p for obj in objects for p in kubeschema.validate(obj)]
    assert not problems, "\n".join(problems)
