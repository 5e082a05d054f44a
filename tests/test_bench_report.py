"""tools/bench_report.py on result files shaped like `vllm bench serve --save-result` writes them.

The files carry the fields docs/reference/vllm-serving.md §2.1 lists for 0.33 (without the
per-request arrays, which only --save-detailed keeps), with numbers of the kind an 8B model on
one GPU gives. ``bench_report.main`` runs in-process; the tests read what it printed.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest

from tools import bench_report

MODEL = "deepseek-ai/DeepSeek-R1-Distill-Llama-8B"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def result(concurrency: int | None, *, prompts: int = 80, **changes: Any) -> dict[str, Any]:
    """A saved result; latencies and throughput grow with concurrency the way a real sweep's do."""
    c = concurrency or prompts
    duration = 40.0 + c * 1.25
    data: dict[str, Any] = {
        "date": "20260301-101500",
        "endpoint_type": "openai",
        "backend": "openai",
        "label": None,
        "model_id": MODEL,
        "tokenizer_id": MODEL,
        "num_prompts": prompts,
        "request_rate": "inf",
        "burstiness": 1.0,
        "max_concurrency": concurrency,
        "duration": duration,
        "completed": prompts,
        "failed": 0,
        "total_input_tokens": prompts * 1024,
        "total_output_tokens": prompts * 128,
        "request_throughput": prompts / duration,
        "request_goodput": None,
        "output_throughput": prompts * 128 / duration,
        "total_token_throughput": prompts * 1152 / duration,
        "max_output_tokens_per_s": 2.0 * prompts * 128 / duration,
        "max_concurrent_requests": c,
        "rtfx": 0.0,
    }
    for metric, base in (("ttft", 80.0), ("tpot", 20.0), ("itl", 19.5)):
        data |= {
            f"mean_{metric}_ms": base * (1 + c / 8),
            f"median_{metric}_ms": base * (1 + c / 10),
            f"std_{metric}_ms": base / 4,
            f"p99_{metric}_ms": base * (2 + c / 4),
        }
    return data | changes


def write(path: Path, *documents: dict[str, Any] | list[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(json.dumps(document) for document in documents))
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    status = bench_report.main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """A downloaded sweep: concurrency 1, 8, 32 and one unbounded run, in nested folders, with companions."""
    root = tmp_path / "20260301-101500"
    for c in (8, 32, 1):
        write(root / f"c{c}" / f"openai-infqps-concurrency{c}-DeepSeek-R1-Distill-Llama-8B.json", result(c))
        write(root / f"c{c}" / f"openai-infqps-concurrency{c}.pytorch.json", [{"benchmark": {"name": "x"}}])
    write(root / "openai-infqps-DeepSeek-R1-Distill-Llama-8B.json", result(None, prompts=200))
    return root


# --- one result: the console table ----------------------------------------------------


def test_one_result_prints_the_console_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "run.json", result(8))
    status, out, err = run(capsys, path)
    assert (status, err) == (0, "")
    assert out.splitlines() == [
        f"{path}: {MODEL}, max concurrency 8, 80 prompts, request rate inf",
        "============ Serving Benchmark Result ============",
        "Successful requests:                     80",
        "Benchmark duration (s):                  50.00",
        "Total input tokens:                      81920",
        "Total generated tokens:                  10240",
        "Request throughput (req/s):              1.60",
        "Output token throughput (tok/s):         204.80",
        "Total Token throughput (tok/s):          1843.20",
        "---------------Time to First Token----------------",
        "Mean TTFT (ms):                          160.00",
        "Median TTFT (ms):                        144.00",
        "P99 TTFT (ms):                           320.00",
        "-----Time per Output Token (excl. 1st token)------",
        "Mean TPOT (ms):                          40.00",
        "Median TPOT (ms):                        36.00",
        "P99 TPOT (ms):                           80.00",
        "---------------Inter-token Latency----------------",
        "Mean ITL (ms):                           39.00",
        "Median ITL (ms):                         35.10",
        "P99 ITL (ms):                            78.00",
        "==================================================",
    ]


def test_failed_requests_are_shown_when_there_are_any(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, write(tmp_path / "run.json", result(8, completed=77, failed=3)))
    assert out.splitlines()[2:5] == [
        "Successful requests:                     77",
        "Failed requests:                         3",
        "Benchmark duration (s):                  50.00",
    ]


def test_other_percentiles_and_missing_metrics_are_shown_as_found(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # --metric-percentiles 50,90,99.9 --percentile-metrics ttft,e2el: no p99, no tpot or itl at all.
    data = {k: v for k, v in result(4).items() if not k.endswith(("_tpot_ms", "_itl_ms", "p99_ttft_ms"))}
    data |= {"p50_ttft_ms": 100.0, "p90_ttft_ms": 150.0, "p99.9_ttft_ms": 400.0, "mean_e2el_ms": 2500.0}
    status, out, _ = run(capsys, write(tmp_path / "run.json", data))
    assert status == 0
    ttft = out[out.index("Time to First Token") :]
    assert "P50 TTFT (ms):                           100.00\nP90 TTFT (ms):" in ttft
    assert "P99.9 TTFT (ms):                         400.00" in ttft
    assert "P99 TTFT" not in out
    assert "TPOT" not in out and "Inter-token" not in out
    assert "----------------End-to-end Latency----------------" in out.splitlines()
    assert "Mean E2EL (ms):                          2500.00" in out


# --- several results: one row each ----------------------------------------------------


def test_a_sweep_prints_one_row_per_run_by_concurrency(sweep: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, sweep)
    assert (status, err) == (0, "")
    header, *rows, footer = out.splitlines()
    assert header.split()[:8] == ["conc", "rate", "ok", "failed", "dur", "s", "req/s", "out"]
    assert [row.split()[0] for row in rows] == ["1", "8", "32", "inf"]  # the .pytorch.json files are skipped
    # conc 8: 80 prompts in 50 s; TTFT mean 160, p99 320; TPOT 40/80; ITL 39/78
    assert rows[1].split()[:14] == [
        "8", "inf", "80", "0", "50.0", "1.60", "204.80", "1843.20",
        "160.00", "320.00", "40.00", "80.00", "39.00", "78.00",
    ]  # fmt: skip
    assert rows[3].split()[2] == "200"
    assert rows[3].endswith("openai-infqps-DeepSeek-R1-Distill-Llama-8B.json")
    assert "inf: unbounded" in footer


def test_full_prints_the_console_table_for_every_run(sweep: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, sweep, "--full")
    contexts = [line for line in out.splitlines() if line.startswith(str(sweep))]
    assert [line.split("max concurrency ")[1].split(",")[0] for line in contexts] == ["1", "8", "32", "inf"]
    assert out.count("============ Serving Benchmark Result ============") == 4


def test_appended_results_are_each_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "sweep.json", result(16), result(2))  # --append-result: one JSON per line
    status, out, _ = run(capsys, path)
    assert status == 0
    rows = out.splitlines()[1:-1]
    assert [(row.split()[0], row.split()[-1]) for row in rows] == [("2", f"{path}#2"), ("16", f"{path}#1")]


def test_a_missing_percentile_is_a_dash_in_its_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    no_p99 = {k: v for k, v in result(2).items() if not k.startswith("p99_")}
    _, out, _ = run(capsys, write(tmp_path / "a.json", no_p99), write(tmp_path / "b.json", result(4)))
    assert out.splitlines()[1].split()[8:14] == ["100.00", "-", "25.00", "-", "24.38", "-"]


# --- the plot ---------------------------------------------------------------------------


def test_plot_writes_a_png(sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png = tmp_path / "sweep.png"
    status, _, err = run(capsys, sweep, "--plot", png)
    assert status == 0
    assert f"wrote {png}" in err
    data = png.read_bytes()
    assert data.startswith(PNG_MAGIC)
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk follows the signature
    assert (width, height) == (1650, 495)  # 15 x 4.5 inches at 110 dpi


def test_unbounded_runs_sit_at_their_number_of_prompts() -> None:
    runs = [bench_report.parse(result(c), "x") for c in (1, 8)]
    unbounded = bench_report.parse(result(None, prompts=200), "y")
    assert bench_report.plot_position(unbounded, [*runs, unbounded]) == 200
    no_prompts = bench_report.parse(result(None, num_prompts=None), "z")
    assert bench_report.plot_position(no_prompts, [*runs, no_prompts]) == 16


def test_an_unwritable_plot_is_one_line(sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, sweep, "--plot", tmp_path / "no-such-dir" / "out.png")
    assert status == 1
    assert err.splitlines() == [
        f"error: cannot write {tmp_path / 'no-such-dir' / 'out.png'}: No such file or directory"
    ]


# --- files that are not results ---------------------------------------------------------


def test_a_file_that_is_not_a_result_is_one_line_and_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "config.json", {"model": MODEL, "tensor_parallel_size": 8})
    status, out, err = run(capsys, path)
    assert (status, out) == (1, "")
    assert err.splitlines() == [
        f"error: {path}: not a `vllm bench serve` result (none of its fields, e.g. 'completed', 'duration')"
    ]
    assert "Traceback" not in err


def test_bad_files_are_reported_and_good_ones_still_shown(sweep: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (sweep / "notes.json").write_text("{not json")
    write(sweep / "partial.json", {k: v for k, v in result(2).items() if k not in ("duration", "completed")})
    write(sweep / "typo.json", result(2, duration="fast"))
    status, out, err = run(capsys, sweep)
    assert status == 0
    assert err.splitlines() == [
        f"error: {sweep / 'notes.json'}: not JSON (line 1, column 2: Expecting property name enclosed in double"
        " quotes)",
        f"error: {sweep / 'partial.json'}: not a complete `vllm bench serve` result (no completed, duration)",
        f"error: {sweep / 'typo.json'}: duration is 'fast', not a number",
    ]
    assert len(out.splitlines()) == 6  # header, four runs, footer


def test_missing_paths_and_empty_directories_are_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    status, out, err = run(capsys, tmp_path / "nope.json", tmp_path / "empty")
    assert (status, out) == (1, "")
    assert err.splitlines() == [
        f"error: {tmp_path / 'nope.json'}: No such file or directory",
        f"error: {tmp_path / 'empty'}: no .json files in this directory",
    ]


# --- cost: $ per million tokens from the throughput and an hourly price ----------------------


def test_usd_per_million_tokens_is_price_over_tokens_per_hour() -> None:
    # 1000 tok/s is 3.6 M tokens an hour: $36/h makes $10 per million.
    assert bench_report.usd_per_million(36.0, 1000.0) == pytest.approx(10.0)
    assert bench_report.usd_per_million(36.0, 0.0) is None


def test_summary_adds_cost_columns_per_concurrency(sweep: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, sweep, "--usd-per-hour", "36")
    assert status == 0
    header, *rows = out.splitlines()
    assert "$/M out" in header and "$/M tot" in header
    first = rows[0].split()  # c1: 80 prompts, 128 output / 1152 total tokens each, in 41.25 s
    out_tps, total_tps = 80 * 128 / 41.25, 80 * 1152 / 41.25
    assert first[-3] == f"{36 / (out_tps * 3600) * 1e6:.2f}"
    assert first[-2] == f"{36 / (total_tps * 3600) * 1e6:.2f}"
    assert "USD per million output, total tokens at $36/h" in out


def test_without_a_price_there_are_no_cost_columns(sweep: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, sweep)
    assert "$/M" not in out


def test_full_table_has_a_cost_section(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "one.json", result(8))
    status, out, _ = run(capsys, path, "--usd-per-hour", "55.04")
    assert status == 0
    tps = 80 * 128 / 50.0
    assert "Cost at $55.04/h" in out
    assert f"$ per million output tokens:{'':<12} {55.04 / (tps * 3600) * 1e6:.2f}" in out


def test_total_tokens_fall_back_to_counts_over_duration(tmp_path: Path) -> None:
    (parsed,) = bench_report.load(write(tmp_path / "r.json", result(4, total_token_throughput=None)))
    assert bench_report.total_tokens_per_second(parsed) == pytest.approx(80 * 1152 / 45.0)


@pytest.mark.parametrize("price", ["0", "-3", "abc", "nan"])
def test_a_bad_price_is_refused(sweep: Path, price: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        bench_report.main([str(sweep), "--usd-per-hour", price])
    assert exit_.value.code == 2
    assert "--usd-per-hour" in capsys.readouterr().err


def test_plot_with_a_price_has_a_cost_panel(sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png = tmp_path / "cost.png"
    status, _, _ = run(capsys, sweep, "--plot", png, "--usd-per-hour", "36")
    assert status == 0 and png.read_bytes().startswith(PNG_MAGIC)
    width = struct.unpack(">I", png.read_bytes()[16:20])[0]
    assert width == 4 * 5 * 110  # four panels of 5 inches at 110 dpi
