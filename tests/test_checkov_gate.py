"""The checkov gate's own logic and its reviewed exceptions file (checkov itself runs in
CI from its own virtualenv: .ci/run, tools/checkov/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.checkov.gate import ACCEPTED, Accepted, compare, findings, load_accepted


def test_the_reviewed_file_lists_each_check_once_with_a_reason() -> None:
    accepted = load_accepted()
    assert accepted, "the file is empty"
    for entry in accepted.values():
        assert entry.check.startswith("CKV"), entry.check
        assert len(entry.reason) > 20, entry.check
    # The NetworkPolicy check passes since the namespace has policies: never accept it again.
    assert "CKV2_K8S_6" not in accepted
    # Only the gIB installer may run privileged or on the host's namespaces.
    for check in ("CKV_K8S_16", "CKV_K8S_17", "CKV_K8S_19", "CKV_K8S_20"):
        assert accepted[check].resources == {"DaemonSet.kube-system.nccl-rdma-installer"}, check


def test_a_check_listed_twice_or_without_a_reason_is_refused(tmp_path: Path) -> None:
    twice = tmp_path / "twice.yaml"
    twice.write_text("- {check: CKV_K8S_11, resources: [a], reason: one reason that is long}\n" * 2)
    with pytest.raises(ValueError, match="listed twice"):
        load_accepted(twice)
    bare = tmp_path / "bare.yaml"
    bare.write_text("- {check: CKV_K8S_11, resources: [a]}\n")
    with pytest.raises(ValueError, match="reason"):
        load_accepted(bare)


def test_new_failures_and_fixed_ones_both_fail_the_gate() -> None:
    accepted = {"CKV_K8S_11": Accepted("CKV_K8S_11", frozenset({"Deployment.llm.vllm", "Job.llm.benchmark"}), "r")}
    found = {("CKV_K8S_11", "Deployment.llm.vllm"), ("CKV_K8S_11", "Deployment.llm.new"), ("CKV_K8S_99", "X.y.z")}
    new, stale = compare(found, accepted)
    assert new == [("CKV_K8S_11", "Deployment.llm.new"), ("CKV_K8S_99", "X.y.z")]
    assert stale == [("CKV_K8S_11", "Job.llm.benchmark")]
    assert compare({("CKV_K8S_11", "Deployment.llm.vllm"), ("CKV_K8S_11", "Job.llm.benchmark")}, accepted) == ([], [])


def test_findings_read_checkov_json_for_one_or_several_frameworks() -> None:
    report = {"check_type": "kubernetes", "results": {"failed_checks": [{"check_id": "C", "resource": "R"}]}}
    assert findings(report) == {("C", "R")}
    assert findings([report, {"check_type": "other", "results": {"failed_checks": []}}]) == {("C", "R")}
    assert ACCEPTED.exists()
