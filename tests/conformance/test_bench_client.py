"""The tools against real client output: the rendered `vllm bench serve` command run by the
pinned vLLM's own client at the fake engine (small numbers, a toy local tokenizer), then
tools/bench_report.py on the result file vLLM itself wrote; tools/chat.py against the fake
engine's vLLM 0.33 stream."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fake_openai import ANSWER, REASONING, Engine, FakeEngine
from harness import ARTEFACTS, ROOT, rendered, venv_bin

pytestmark = pytest.mark.conformance

KEY = "conformance-key"
# The rendered command with only the sizes, the target and the output folder replaced.
SMALL = {"--num-prompts": "8", "--random-input-len": "16", "--random-output-len": "8", "--max-concurrency": "4"}
# What the serving nodes cost per hour, as a user passes it (any positive figure will do).
USD_PER_HOUR = 100.0


def _bench_argv(base_url: str, tokenizer: Path, results: Path) -> list[str]:
    argv = list(rendered()["a4high-gcsfuse-benchmark"].vllm_bench[0])
    for flag, value in {
        **SMALL,
        "--base-url": base_url,
        "--tokenizer": str(tokenizer),
        "--result-dir": str(results),
    }.items():
        argv[argv.index(flag) + 1] = value
    argv[argv.index("--result-filename") + 1] = "concurrency-4.json"
    return argv


def test_vllm_bench_serve_runs_and_bench_report_reads_its_result(tmp_path: Path) -> None:
    tokenizer, results = tmp_path / "tokenizer", tmp_path / "results"
    subprocess.run(
        [str(venv_bin("vllm")), str(Path(__file__).parent / "checks" / "toy_tokenizer.py"), str(tokenizer)],
        check=True,
        capture_output=True,
    )
    engine = Engine(model=rendered()["a4high-gcsfuse-benchmark"].served_name, api_key=KEY, delay=0.0)
    with FakeEngine(engine) as fake:
        argv = _bench_argv(fake.base_url.removesuffix("/v1"), tokenizer, results)
        env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
        proc = subprocess.run(
            [str(venv_bin("vllm", "vllm")), *argv],
            env={**env, "OPENAI_API_KEY": KEY, "HF_HUB_OFFLINE": "1"},
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    (ARTEFACTS / "vllm-bench-serve.log").write_text(proc.stdout + proc.stderr)
    assert proc.returncode == 0, proc.stderr[-3000:]
    completions = [r for r in engine.requests if r["path"] == "/v1/completions"]
    assert completions and all(r["headers"].get("Authorization") == f"Bearer {KEY}" for r in completions)
    result = json.loads((results / "concurrency-4.json").read_text())
    assert result["completed"] == 8 and result["max_concurrency"] == 4
    assert result["stack"] == "a4high"  # --metadata keys become top-level
    report = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "bench_report.py"),
            str(results),
            "--plot",
            str(ARTEFACTS / "bench.png"),
            "--usd-per-hour",
            f"{USD_PER_HOUR:g}",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    (ARTEFACTS / "bench-report.txt").write_text(report.stdout + report.stderr)
    assert report.returncode == 0, report.stderr
    assert "error:" not in report.stderr, report.stderr  # the file vLLM wrote is read as a result
    assert "Successful requests" in report.stdout and "8" in report.stdout, report.stdout
    assert (ARTEFACTS / "bench.png").exists()
    # $ per million tokens from the throughput vLLM itself measured and wrote.
    for label, throughput in (
        ("$ per million output tokens:", result["output_throughput"]),
        ("$ per million total tokens:", result["total_token_throughput"]),
    ):
        expected = USD_PER_HOUR / (throughput * 3600) * 1_000_000
        (line,) = [line for line in report.stdout.splitlines() if line.startswith(label)]
        assert line.split()[-1] == f"{expected:.2f}", (line, throughput)


def test_chat_tool_streams_reasoning_then_answer() -> None:
    engine = Engine(model="deepseek-r1", api_key=KEY)
    with FakeEngine(engine) as fake:
        proc = subprocess.run(
            [
                sys.executable,
                str(ROOT / "tools" / "chat.py"),
                "--base-url",
                fake.base_url,
                "--api-key",
                KEY,
                "--model",
                "deepseek-r1",
                "Hello",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=ROOT,
        )
    assert proc.returncode == 0, proc.stderr
    assert "".join(REASONING) in proc.stdout
    assert proc.stdout.rstrip().endswith("".join(ANSWER).rstrip())
