"""The benchmark Job's scripts, run for real against stub CLIs (tests/scripts_harness.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
import pytest

from components import catalog
from components.config import BenchmarkConfig
from components.platform import READER_SERVICE_ACCOUNT, WRITER_SERVICE_ACCOUNT, ModelStore
from components.workloads import benchmark
from scripts_harness import Sandbox
from tools import bench_report

BUCKET = "test-bucket"
BASE_URL = "http://vllm.llm.svc.cluster.local:8000"
MODEL = catalog.MODELS["deepseek-ai/DeepSeek-R1-Distill-Llama-8B"]
GCS = ModelStore("gs", pulumi.Output.from_input(BUCKET), READER_SERVICE_ACCOUNT, WRITER_SERVICE_ACCOUNT)
S3 = ModelStore("s3", pulumi.Output.from_input(BUCKET), READER_SERVICE_ACCOUNT, WRITER_SERVICE_ACCOUNT)
# A slice of vLLM 0.33.0's /metrics; `{calls}` counts curl calls, so counters grow.
METRICS = """# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.5
# TYPE vllm:num_preemptions_total counter
vllm:num_preemptions_total{engine="0",model_name="m"} {calls}.0
# TYPE vllm:prefix_cache_queries_total counter
vllm:prefix_cache_queries_total{engine="0",model_name="m"} {calls}00.0
# TYPE vllm:prefix_cache_hits_total counter
vllm:prefix_cache_hits_total{engine="0",model_name="m"} {calls}0.0
"""


def pod(points: list[int], store: ModelStore | None = GCS, metrics: bool = True, **config: Any) -> dict[str, Any]:
    job = benchmark.benchmark_job(
        "llm",
        BenchmarkConfig.model_validate({"enabled": True, "maxConcurrency": points, **config}),
        BASE_URL,
        "m",
        MODEL,
        "eks",
        store,
        BUCKET,
        WRITER_SERVICE_ACCOUNT,
        api_key=metrics,
        hf_token=False,
        engine_wait_seconds=600,
        engine_metrics=metrics,
    )
    spec: dict[str, Any] = job["spec"]["template"]["spec"]
    return spec


@pytest.fixture
def box(tmp_path: Path) -> Sandbox:
    sandbox = Sandbox(tmp_path)
    sandbox.metrics(METRICS)
    return sandbox


def results(box: Sandbox) -> dict[str, set[str]]:
    """Uploaded runs: {timestamp: files}."""
    root = box.buckets / BUCKET / benchmark.results_key("eks")
    return {run.name: box.bucket_files(BUCKET, f"{benchmark.results_key('eks')}/{run.name}") for run in root.iterdir()}


def test_sweep_uploads_each_point_as_it_completes(box: Sandbox) -> None:
    run = box.run_pod(pod([1, 16, 64]))
    assert run.ok, run.logs
    assert run.ran == [
        *("bench-c1", "upload-c1", "bench-c16", "upload-c16", "bench-c64", "upload-c64"),
        "report",
    ]
    assert "concurrency-1.json" in run.log("upload-c1")  # uploaded before c16 started
    assert "concurrency-16.json" in run.log("upload-c16") and "concurrency-1.json" not in run.log("upload-c16")
    ((timestamp, files),) = results(box).items()
    assert {f"concurrency-{c}.json" for c in (1, 16, 64)} <= files
    assert "all 3 points completed" in run.log("report") and timestamp in run.log("report")
    prompts = [
        json.loads((box.buckets / BUCKET / "benchmarks/eks" / timestamp / f"concurrency-{c}.json").read_text())[
            "num_prompts"
        ]
        for c in (1, 16, 64)
    ]
    assert prompts == [100, 160, 640]


def test_a_failed_point_keeps_the_others_and_fails_the_job(box: Sandbox) -> None:
    box.fail("vllm", "--max-concurrency 16")
    run = box.run_pod(pod([1, 16, 64]))
    assert not run.ok and run.failed == "report"  # every point ran; only the verdict fails
    assert "bench-c64" in run.ran
    ((_, files),) = results(box).items()
    assert {"concurrency-1.json", "concurrency-64.json"} <= files
    assert "concurrency-16.json" not in files
    assert "failed points: c16" in run.log("report")


def test_sweep_on_s3_uploads_with_the_aws_cli(box: Sandbox) -> None:
    run = box.run_pod(pod([4], store=S3))
    assert run.ok, run.logs
    assert [c.argv[:2] for c in box.calls("aws")] == [["s3", "sync"]]
    ((_, files),) = results(box).items()
    assert "concurrency-4.json" in files


def test_without_a_bucket_results_go_to_the_log_and_failures_still_fail(box: Sandbox) -> None:
    box.fail("vllm", "--max-concurrency 2")
    run = box.run_pod(pod([1, 2], store=None))
    assert run.ran == ["bench-c1", "bench-c2", "report"]
    assert not run.ok and '"max_concurrency": 1' in run.log("report")
    assert "failed points: c2" in run.log("report")


def test_engine_metrics_are_saved_before_and_after_each_point(box: Sandbox) -> None:
    assert box.run_pod(pod([1, 16])).ok
    ((timestamp, files),) = results(box).items()
    for point in ("c1", "c16"):
        assert {f"metrics-{point}-before.prom", f"metrics-{point}-after.prom"} <= files
    before = (box.buckets / BUCKET / "benchmarks/eks" / timestamp / "metrics-c1-before.prom").read_text()
    assert "vllm:num_preemptions_total" in before and "vllm:prefix_cache_hits_total" in before
    urls = {c.argv[-1] for c in box.calls("curl")}
    assert urls == {f"{BASE_URL}/health", f"{BASE_URL}/metrics"}


def test_a_metrics_failure_does_not_fail_the_point(box: Sandbox) -> None:
    box.fail("curl", "/metrics")
    run = box.run_pod(pod([1]))
    assert run.ok, run.logs
    assert "no metrics snapshot (before)" in run.log("bench-c1")


def test_ray_runs_take_no_metrics_snapshot(box: Sandbox) -> None:
    assert box.run_pod(pod([1], metrics=False)).ok
    assert box.calls("curl") == []
    ((_, files),) = results(box).items()
    assert files == {"concurrency-1.json"}


def test_num_prompts_fixes_every_point(box: Sandbox) -> None:
    assert box.run_pod(pod([1, 8], numPrompts=1100)).ok
    prompts = [c.argv[c.argv.index("--num-prompts") + 1] for c in box.calls("vllm")]
    assert prompts == ["1100", "1100"]


# --- bench_report reads what the Job uploaded -----------------------------------------------


DURING = """vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.42
vllm:num_requests_running{engine="0",model_name="m"} 16
vllm:num_requests_waiting{engine="0",model_name="m"} 3
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.93
vllm:num_requests_running{engine="0",model_name="m"} 16
vllm:num_requests_waiting{engine="0",model_name="m"} 7
"""


def uploaded_run(box: Sandbox) -> Path:
    (run,) = (box.buckets / BUCKET / "benchmarks" / "eks").iterdir()
    return run


def test_report_shows_each_points_engine_figures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    box = Sandbox(tmp_path)
    box.metrics(METRICS)
    assert box.run_pod(pod([1, 16])).ok
    run = uploaded_run(box)
    (run / "metrics-c16-during.prom").write_text(DURING)  # what the sampler appends on a long point
    assert bench_report.main([str(run)]) == 0
    out = capsys.readouterr().out
    table = out[out.index("engine metrics") :].splitlines()
    assert table[1].split() == ["point", "KV", "peak", "%", "waiting", "peak", "preemptions", "prefix", "hit", "%"]
    # Counters: after minus before (one scrape apart in the stub); hits / queries = 10 %.
    assert table[2].split() == ["c1", "50.0", "-", "1", "10.0"]
    assert table[3].split() == ["c16", "93.0", "7", "1", "10.0"]


def test_results_without_snapshots_print_no_engine_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    box = Sandbox(tmp_path)
    assert box.run_pod(pod([1], metrics=False)).ok  # the Ray engine
    assert bench_report.main([str(uploaded_run(box))]) == 0
    assert "engine metrics" not in capsys.readouterr().out


def test_scrapes_are_split_and_series_summed() -> None:
    text = 'a{engine="0"} 1\na{engine="1"} 2\n# HELP a x\na{engine="0"} 5\na{engine="1"} 5\n'
    assert bench_report.prometheus_scrapes(text) == [{"a": 3.0}, {"a": 10.0}]


def test_an_engine_that_never_gets_ready_fails_the_point_without_a_second_wait(box: Sandbox) -> None:
    """The health wait before the first snapshot replaces `vllm bench`'s own ready wait."""
    box.fail("curl", "/health")
    command = benchmark.bench_command(BenchmarkConfig(), BASE_URL, "m", MODEL, "eks", 4, ready_timeout=0)
    script = benchmark.point_script("c4", command, f"{BASE_URL}/metrics", f"{BASE_URL}/health", ready_timeout=0)
    results = box.root / "results"
    results.mkdir()
    container = {
        "name": "bench-c4",
        "command": ["/bin/bash", "-c", script],
        "volumeMounts": [{"name": "results", "mountPath": benchmark.RESULTS}],
    }
    run = box.run_container(container, {"results": results})
    assert run.exit_code == 0  # the sweep goes on
    assert "the engine was not ready" in run.output
    assert (results / "failed").read_text().split() == ["c4"]
    assert box.calls("vllm") == []
