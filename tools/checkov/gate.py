"""checkov on every rendered manifest set, against the reviewed exceptions.

    venv/bin/python -m tools.checkov.gate --checkov "$(tools/checkov/setup.sh)"

Renders the manifests of each variant below the way ``tools/plan.py`` does (the stack
files as they are, and with the benchmark and model cache on, and the other engine) into
``build/checkov/<variant>/``, runs checkov's Kubernetes checks on each, and compares every
failed (check, resource) with ``tools/checkov/accepted.yaml``, where each remaining check is
listed once with the resources it may fail on and the reason. Exit 1 on a failure that is
not accepted, and on an accepted one that no longer fails (the file must stay true).
checkov runs offline (``--skip-download``) and is never a dependency of the program.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tools.offline import ROOT, run_stack
from tools.plan import write_manifests

ACCEPTED = Path(__file__).with_name("accepted.yaml")
ALL_JOBS = {"llm-serving:benchmark": {"enabled": True}, "llm-serving:modelCache": {"enabled": True}}
# variant -> (stack, config changes)
VARIANTS: Mapping[str, tuple[str, Mapping[str, Any]]] = {
    "a4high": ("a4high", {}),
    "a4high-jobs": ("a4high", ALL_JOBS),
    "a4high-2node": ("a4high-2node", {}),  # the LeaderWorkerSet engine (RDMA)
    "eks-p5": ("eks-p5", {}),  # the LeaderWorkerSet engine (EFA)
    "eks": ("eks", {}),
    "eks-jobs": ("eks", ALL_JOBS),
    "eks-vllm-jobs": ("eks", {**ALL_JOBS, "llm-serving:serving": {"engine": "vllm"}}),
    "onprem": ("onprem", {}),  # an existing cluster: RayService over RDMA nodes, hostPath scratch
}

Finding = tuple[str, str]  # (check id, resource such as "Deployment.llm.vllm")


@dataclass(frozen=True)
class Accepted:
    check: str
    resources: frozenset[str]
    reason: str


def load_accepted(path: Path = ACCEPTED) -> dict[str, Accepted]:
    """The reviewed exceptions; each check once, each with resources and a reason."""
    entries = yaml.safe_load(path.read_text()) or []
    accepted: dict[str, Accepted] = {}
    for entry in entries:
        check, reason, resources = entry.get("check"), entry.get("reason"), entry.get("resources")
        if not check or not isinstance(reason, str) or not reason.strip() or not resources:
            raise ValueError(f"{path.name}: every entry needs check, resources and a reason: {entry}")
        if check in accepted:
            raise ValueError(f"{path.name}: {check} is listed twice; list each check once")
        accepted[check] = Accepted(check, frozenset(resources), reason.strip())
    return accepted


def findings(report: Any) -> set[Finding]:
    """Failed checks of checkov's JSON report (one framework: an object; several: a list)."""
    reports = report if isinstance(report, list) else [report]
    return {
        (failed["check_id"], failed["resource"])
        for r in reports
        if isinstance(r, dict) and "results" in r
        for failed in r["results"].get("failed_checks", [])
    }


def compare(found: Iterable[Finding], accepted: Mapping[str, Accepted]) -> tuple[list[Finding], list[Finding]]:
    """(failures nobody accepted, accepted failures that no longer occur)."""
    found = set(found)
    new = sorted(f for f in found if f[1] not in (accepted[f[0]].resources if f[0] in accepted else ()))
    stale = sorted((a.check, r) for a in accepted.values() for r in a.resources if (a.check, r) not in found)
    return new, stale


def render(out: Path) -> list[Path]:
    dirs = []
    for variant, (stack, changes) in VARIANTS.items():
        run = run_stack(stack, changes)
        if run.error is not None:
            raise SystemExit(f"{variant}: the program failed on the mock engine: {run.error}")
        write_manifests(run, out / variant)
        dirs.append(out / variant)
    return dirs


def run_checkov(checkov: str, directory: Path) -> set[Finding]:
    command = [checkov, "-d", str(directory), "--framework", "kubernetes", "-o", "json", "--quiet", "--compact"]
    result = subprocess.run(
        [*command, "--skip-download"],
        capture_output=True,
        text=True,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
        check=False,
    )
    if result.returncode not in (0, 1) or not result.stdout.strip():
        raise SystemExit(f"checkov failed on {directory} (exit {result.returncode}):\n{result.stderr[-2000:]}")
    return findings(json.loads(result.stdout))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkov", default=os.environ.get("CHECKOV", "checkov"), help="the checkov executable")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "checkov", help="where manifests are rendered")
    args = parser.parse_args(argv)
    accepted = load_accepted()
    found: set[Finding] = set()
    for directory in render(args.out):
        variant_findings = run_checkov(args.checkov, directory)
        print(f"{directory.name}: {len(variant_findings)} failed checks")
        found |= variant_findings
    new, stale = compare(found, accepted)
    for check, resource in new:
        print(f"NEW      {check} {resource}: fix it, or add it to {ACCEPTED.name} with a reason", file=sys.stderr)
    for check, resource in stale:
        print(f"FIXED    {check} {resource}: no longer fails; remove it from {ACCEPTED.name}", file=sys.stderr)
    if new or stale:
        return 1
    print(f"checkov: {len(found)} failures across {len(VARIANTS)} variants, all reviewed in {ACCEPTED.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
