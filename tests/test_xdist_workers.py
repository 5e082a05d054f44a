"""How many pytest-xdist workers ``-n auto`` starts (tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from conftest import pytest_xdist_auto_num_workers

ROOT = Path(__file__).resolve().parents[1]


def _config(args: list[str], markexpr: str = "not conformance") -> pytest.Config:
    fake = SimpleNamespace(
        args=args,
        invocation_params=SimpleNamespace(dir=ROOT),
        getoption=lambda name: {"markexpr": markexpr}[name],
    )
    return cast(pytest.Config, fake)


@pytest.mark.parametrize("args", [["tests"], [str(ROOT / "tests")], ["tests", "tools"]])
def test_the_suite_or_a_folder_gets_xdists_own_count(args: list[str]) -> None:
    assert pytest_xdist_auto_num_workers(_config(args)) is None


@pytest.mark.parametrize(
    "args", [["tests/test_sizing.py"], ["tests/test_sizing.py::test_x"], ["tests", "tests/test_cost.py"]]
)
def test_named_test_files_run_in_this_process(args: list[str]) -> None:
    assert pytest_xdist_auto_num_workers(_config(args)) == 0


@pytest.mark.parametrize("markexpr", ["conformance", "conformance and not slow"])
def test_the_conformance_tier_runs_in_this_process(markexpr: str) -> None:
    assert pytest_xdist_auto_num_workers(_config(["tests/conformance"], markexpr)) == 0
    assert pytest_xdist_auto_num_workers(_config(["tests"], markexpr)) == 0
