"""Shared pieces of the conformance tier: where the virtualenvs are, how a checker runs in
one, and the rendered stacks (rendered once per session; plain functions rather than
fixtures so the tier needs no conftest of its own)."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
from render import Rendered, names, render

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
VENVS = Path(os.environ.get("CONFORMANCE_HOME", ROOT / ".conformance"))
ARTEFACTS = ROOT / "build" / "conformance"  # screenshots, reports, rendered inputs
CHECK_TIMEOUT = 900


def venv_bin(venv: str, program: str = "python") -> Path:
    """A program of one of the tier's virtualenvs; a missing venv fails the test (the tier
    never passes by skipping what it was asked to check)."""
    path = VENVS / venv / "bin" / program
    if not path.exists():
        pytest.fail(f"{path} is missing: run tests/conformance/setup.sh first")
    return path


def run_checker(venv: str, script: str, request: Any) -> Any:
    """Run ``checks/<script>`` with ``request`` (JSON) in a tier venv; its stdout's last line is
    the JSON report."""
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".json", dir=ARTEFACTS, prefix=f"{script}-", delete=False) as f:
        json.dump(request, f, indent=1)
    proc = subprocess.run(
        [str(venv_bin(venv)), str(HERE / "checks" / script), f.name],
        capture_output=True,
        text=True,
        timeout=CHECK_TIMEOUT,
        cwd=ROOT,
        check=False,
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        pytest.fail(f"{script} in the {venv} venv exited {proc.returncode}:\n{proc.stderr[-4000:]}")
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    (ARTEFACTS / f"{Path(f.name).stem}.report.json").write_text(json.dumps(report, indent=1))
    return report


@functools.cache
def rendered() -> dict[str, Rendered]:
    """Every stack file and variant, rendered by the program on the mock engine."""
    out = {name: render(name) for name in names()}
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    (ARTEFACTS / "rendered.json").write_text(json.dumps({k: v.as_json() for k, v in out.items()}, indent=1))
    return out
