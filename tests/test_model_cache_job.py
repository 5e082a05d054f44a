"""The model cache Job's scripts, run for real against stub CLIs (tests/scripts_harness.py).

The pod specs come from the pure builder with the test platforms' GPU pools: GKE A4
(scratch is a hostPath that outlives the Job) and EKS (an emptyDir per pod).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pulumi
import pytest

from components import catalog
from components.platform import READER_SERVICE_ACCOUNT, WRITER_SERVICE_ACCOUNT, GpuNodes, ModelStore
from components.sizing import cache_job_deadline_seconds
from components.workloads import model_cache
from components.workloads.weights import MARKER, weights_key
from fake_platforms import EKS_G5, GKE_A4
from scripts_harness import Sandbox, env_of

BUCKET = "test-bucket"
R1 = catalog.MODELS["deepseek-ai/DeepSeek-R1"]
R1_0528 = catalog.MODELS["deepseek-ai/DeepSeek-R1-0528"]
STORES = {
    "gs": ModelStore("gs", pulumi.Output.from_input(BUCKET), READER_SERVICE_ACCOUNT, WRITER_SERVICE_ACCOUNT),
    "s3": ModelStore(
        "s3", pulumi.Output.from_input(BUCKET), READER_SERVICE_ACCOUNT, WRITER_SERVICE_ACCOUNT, env={"AWS_REGION": "x"}
    ),
}
PLATFORMS = {"gke": ("gs", GKE_A4), "eks": ("s3", EKS_G5)}
FILES = {
    "config.json": "{}",
    "model-00001-of-00002.safetensors": "shard 1",
    "model-00002-of-00002.safetensors": "shard 2",
    "original/consolidated.00.pth": "not for engines",
}


def pod(model: catalog.ModelSpec, platform: str = "gke") -> dict[str, Any]:
    scheme, gpu = PLATFORMS[platform]
    job = model_cache.model_cache_job("llm", model, STORES[scheme], BUCKET, gpu, WRITER_SERVICE_ACCOUNT, True)
    spec: dict[str, Any] = job["spec"]["template"]["spec"]
    return spec


def node_folder(box: Sandbox, gpu: GpuNodes = GKE_A4) -> set[str]:
    """Everything left in the Job's hostPath on the node."""
    root = box.host_path(f"{gpu.scratch_host_path}/model-cache")
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture
def box(tmp_path: Any) -> Sandbox:
    sandbox = Sandbox(tmp_path)
    sandbox.hub_repo(R1.hf_id, FILES)
    sandbox.hub_repo(R1_0528.hf_id, {"config.json": "{}", "model.safetensors": "0528 weights"})
    return sandbox


def cached(box: Sandbox, model: catalog.ModelSpec) -> set[str]:
    return box.bucket_files(BUCKET, weights_key(model))


# e.g. "12:01:02 downloaded 120.4 GB of ~688 GB (17%), 1432 MB/s, ~7 min left"
PROGRESS_LINE = r"\d\d:\d\d:\d\d downloaded \d+\.\d GB of ~688 GB \(\d+%\), \d+ MB/s, (~\d+ min left|no progress)"
SHARDS = {"config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}


@pytest.mark.parametrize("platform", ["gke", "eks"])
def test_first_run_copies_the_model_writes_the_marker_and_leaves_nothing_on_the_node(
    box: Sandbox, platform: str
) -> None:
    run = box.run_pod(pod(R1, platform))
    assert run.ok, run.logs
    assert cached(box, R1) == {*SHARDS, MARKER}  # no original/, no .cache/
    assert R1.hf_id in (box.buckets / BUCKET / weights_key(R1) / MARKER).read_text()
    assert node_folder(box) == set() or platform == "eks"  # the staging copy is gone after the marker
    if platform == "eks":
        assert {c.command for c in box.calls()} >= {"aws", "hf"}


def test_first_run_uploads_the_marker_last_without_composite_uploads_and_downloads_fast(box: Sandbox) -> None:
    run = box.run_pod(pod(R1))
    assert run.ok, run.logs
    uploads = [c for c in box.calls("gcloud") if c.argv[1] in ("rsync", "cp")]
    assert [c.argv[1] for c in uploads] == ["rsync", "cp"]
    assert uploads[-1].argv[-1].endswith(f"/{MARKER}")
    # objectUser lacks storage.buckets.get, which composite uploads call (settled.md).
    assert all(c.env.get("CLOUDSDK_STORAGE_PARALLEL_COMPOSITE_UPLOAD_ENABLED") == "False" for c in uploads)
    (download,) = box.calls("hf")
    assert download.argv[download.argv.index("--max-workers") + 1] == str(model_cache.DOWNLOAD_WORKERS)
    assert download.env["HF_XET_HIGH_PERFORMANCE"] == "1"  # on the GPU node's RAM
    assert download.env["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"
    eks_download = next(c for c in pod(R1, "eks")["initContainers"] if c["name"] == "download")
    assert "HF_XET_HIGH_PERFORMANCE" not in env_of(eks_download)  # a small node: the default mode
    # Progress: a line per minute while it runs (none in a run this short), and one at the end.
    assert "downloaded " in run.log("download")
    assert f"while sleep {model_cache.PROGRESS_SECONDS}" in eks_download["command"][2]


def test_download_logs_its_settings_then_share_rate_and_time_left(
    box: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(model_cache, "PROGRESS_SECONDS", 1)
    box.slow(1.3)  # three files: about four seconds, so about three progress lines
    run = box.run_pod(pod(R1))
    assert run.ok, run.logs
    log = run.log("download").splitlines()
    deadline = math.ceil(cache_job_deadline_seconds(R1) / 60)
    assert log[0] == (
        f"downloading {R1.hf_id} (~688 GB): {model_cache.DOWNLOAD_WORKERS} files at a time, Xet high-performance "
        f"mode 1; modeled ~39 min at 300 MB/s, the Job's deadline (download and upload) {deadline} min"
    )
    ticks = [line for line in log if re.fullmatch(PROGRESS_LINE, line)]
    assert len(ticks) >= 2, log
    assert any(line.endswith("min left") for line in ticks)  # files arrived during an interval
    assert re.fullmatch(r"downloaded \d+\.\d GB in 0 min \d+ s, \d+ MB/s on average", log[-1]), log


def test_repeat_run_is_skipped(box: Sandbox) -> None:
    assert box.run_pod(pod(R1)).ok
    calls_before = len(box.calls())
    run = box.run_pod(pod(R1))
    assert run.ok, run.logs
    assert "already cached" in run.log("check")
    new_calls = box.calls()[calls_before:]
    assert [c.command for c in new_calls] == ["gcloud"]  # only the marker lookup: no download, no upload
    assert node_folder(box) == set()


def test_a_second_model_is_copied_not_skipped(box: Sandbox) -> None:
    """The old Job left /work/already-cached behind; the next model's Job skipped every
    step, exited 0, and its engine waited for a marker forever."""
    assert box.run_pod(pod(R1)).ok
    run = box.run_pod(pod(R1_0528))
    assert run.ok, run.logs
    assert cached(box, R1_0528) == {"config.json", "model.safetensors", MARKER}
    assert cached(box, R1) == {*SHARDS, MARKER}


def test_a_second_model_never_gets_the_first_ones_files(box: Sandbox) -> None:
    """A failed R1 run leaves its download on the node; R1-0528's upload must not carry it."""
    box.fail("gcloud", "rsync")
    assert not box.run_pod(pod(R1)).ok
    assert any("model-00001" in p for p in node_folder(box))
    box.clear_faults()
    run = box.run_pod(pod(R1_0528))
    assert run.ok, run.logs
    assert cached(box, R1_0528) == {"config.json", "model.safetensors", MARKER}
    assert node_folder(box) == set()  # R1's leftovers were removed, not piled up
    assert "left by an earlier run" in run.log("check")


def test_a_failed_upload_writes_no_marker_and_fails_the_pod(box: Sandbox) -> None:
    box.fail("gcloud", "rsync", after_files=1)  # one shard made it, then the network went
    run = box.run_pod(pod(R1))
    assert not run.ok and run.failed == "upload"
    assert MARKER not in cached(box, R1)
    assert len(cached(box, R1)) == 1
    # The download and the Hub's metadata stay for the retry, which resumes.
    left = node_folder(box)
    assert any(p.endswith("model/.cache/huggingface") for p in left)
    box.clear_faults()
    retry = box.run_pod(pod(R1))
    assert retry.ok, retry.logs
    assert cached(box, R1) == {*SHARDS, MARKER}
    assert node_folder(box) == set()


def test_a_failed_download_writes_nothing(box: Sandbox) -> None:
    box.fail("hf", "download")
    run = box.run_pod(pod(R1))
    assert not run.ok and run.failed == "download"
    assert run.ran == ["check", "download"]
    assert cached(box, R1) == set()


def test_a_stale_flag_from_an_earlier_run_is_cleared(box: Sandbox) -> None:
    """State on the node proves nothing: only the marker in the bucket counts."""
    assert box.run_pod(pod(R1)).ok
    (box.buckets / BUCKET / weights_key(R1) / MARKER).unlink()  # e.g. a user deleted the model
    run = box.run_pod(pod(R1))
    assert run.ok, run.logs
    assert "not cached yet" in run.log("check")
    assert MARKER in cached(box, R1)
    assert [c.argv[0] for c in box.calls("hf")] == ["download", "download"]


def test_eks_stack_file_names_the_loader_its_engine_uses() -> None:
    """The eks stack runs the Ray engine, which loads through Ray's bucket mirror
    (components/workloads/weights.py choose_loader), not vLLM's Run:ai streamer."""
    text = Path("Pulumi.eks.yaml").read_text()
    assert "engine: rayservice" in text
    section = text.split("llm-serving:modelCache:", 1)[1].split("llm-serving:benchmark:", 1)[0]
    assert "Run:ai" not in section and "Ray mirrors" in section
