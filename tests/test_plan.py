"""tools/plan.py: the offline plan a reviewer reads, and the manifests it writes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conftest import assert_valid
from tools import plan
from tools.offline import ROOT


@pytest.mark.parametrize("stack", ["a4high", "eks"])
def test_plan_prints_sizing_tree_and_outputs(stack: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert plan.main(["--stack", stack, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "-- topology and sizing (per GPU, per engine, per replica) --" in out and "KV cache" in out
    assert "per replica" in out and "profile " in out
    assert "llm-serving:workloads:Serving  serving" in out
    assert "-- stack outputs --" in out
    assert "kubeconfig: <redacted: Pulumi secret>" in out
    assert "all" in out and "pass strict schema validation" in out


def test_plan_prints_the_modelled_cold_start(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue #14: the plan shows the cold start per state, from cited rates (a4high: the node
    copy and compile caches kept on the node and in the bucket: at most 5 minutes on a warm
    node, 10 on a fresh one; only the very first start compiles)."""
    assert plan.main(["--stack", "a4high", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "-- modelled cold start (components/cold_start.py; rates in components/catalog/cold_start.py) --" in out
    assert "loader node-cache; image pulled from its registry; compile/JIT cache: bucket" in out
    assert "  first-ever      2.0    1.4    1.2   14.9   19.5" in out
    assert "  fresh-node      2.0    1.4    1.2    3.4    8.0" in out
    assert "  warm-node       0.0    0.0    1.2    2.9    4.1" in out
    assert "cold_start: {" in out  # and the stack output


@pytest.mark.parametrize("stack", ["a4high", "eks"])
def test_plan_writes_the_manifests_the_tests_validate(stack: str, tmp_path: Path) -> None:
    assert plan.main(["--stack", stack, "--out", str(tmp_path)]) == 0
    files = sorted((tmp_path / stack).glob("[0-9][0-9]-*.yaml"))
    objects = [yaml.safe_load(f.read_text()) for f in files]
    assert {o["kind"] for o in objects} >= {"Deployment", "Service", "Secret", "PersistentVolumeClaim"}
    assert_valid(objects)
    for obj in objects:  # no secret values on disk
        if obj["kind"] == "Secret":
            assert set(obj["stringData"].values()) == {plan.REDACTED}


def test_plan_output_is_the_same_on_every_run(tmp_path: Path) -> None:
    """The mock engine registers resources and hands over maps in no fixed order; the
    written plan must not depend on that, so a reviewer can diff two plans."""
    first, second = tmp_path / "first", tmp_path / "second"
    assert plan.main(["--stack", "eks", "--out", str(first)]) == 0
    assert plan.main(["--stack", "eks", "--out", str(second)]) == 0
    files = sorted(p.name for p in (first / "eks").iterdir())
    assert files == sorted(p.name for p in (second / "eks").iterdir())
    for name in files:
        assert (first / "eks" / name).read_text() == (second / "eks" / name).read_text(), name


def test_plan_lists_the_helm_releases(tmp_path: Path) -> None:
    assert plan.main(["--stack", "eks", "--out", str(tmp_path)]) == 0
    releases = yaml.safe_load((tmp_path / "eks" / "helm-releases.yaml").read_text())
    assert {r["chart"] for r in releases} >= {"kuberay-operator"}
    assert all(r["version"] for r in releases)


def write_stack(tmp_path: Path, stack: str, text: str) -> Path:
    path = tmp_path / f"Pulumi.{stack}.yaml"
    path.write_text(text)
    return path


def test_plan_refuses_a_typo_naming_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (ROOT / "Pulumi.eks.yaml").read_text().replace("    maxModelLen: 8192", "    maxModelLenght: 8192")
    path = write_stack(tmp_path, "typo", text)
    assert plan.main(["--stack-file", str(path), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "llm-serving:serving.maxModelLenght: unknown key; did you mean 'maxModelLen'?" in err
    assert not (tmp_path / "typo").exists()


def test_plan_refuses_an_impossible_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (ROOT / "Pulumi.eks.yaml").read_text().replace("    maxModelLen: 8192", "    maxModelLen: 131072")
    path = write_stack(tmp_path, "toolong", text)
    assert plan.main(["--stack-file", str(path), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "llm-serving:serving.maxModelLen = 131072: one 131072-token sequence needs 16.00 GiB" in err


def test_plan_without_a_stack_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert plan.main(["--stack", "nope", "--out", str(tmp_path)]) == 2
    assert "no stack file" in capsys.readouterr().err
