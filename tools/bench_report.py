"""Summarize `vllm bench serve` result files as tables, and plot latency and throughput against concurrency.

Results are the files ``vllm bench serve --save-result`` writes, one per run; the stack's
benchmark job keeps them in its bucket. Copy them down, then point this tool at files or
directories (searched recursively for ``*.json``)::

    gcloud storage cp -r gs://BUCKET/benchmarks/STACK/TIMESTAMP .          # GKE (a4high)
    aws s3 cp --recursive s3://BUCKET/benchmarks/STACK/TIMESTAMP TIMESTAMP  # EKS
    python tools/bench_report.py TIMESTAMP                    # one row per run
    python tools/bench_report.py TIMESTAMP --plot sweep.png   # ... and TTFT, TPOT, throughput vs concurrency
    python tools/bench_report.py TIMESTAMP/run.json           # one run: the full table
    python tools/bench_report.py TIMESTAMP --full             # the full table for every run

One result prints the table `vllm bench serve` prints on its console (the layout of the seed
recipe); several print one row per run, sorted by ``max_concurrency``, unbounded runs last.
In the plot an unbounded run sits at its number of prompts (all of them are in flight at
once) and is labelled "inf".

The fields are those `vllm bench serve` 0.33 writes with ``--save-result``
(docs/reference/vllm-serving.md §2.1). Percentile keys follow ``--metric-percentiles``
(``p99_ttft_ms`` by default, ``p50_ttft_ms`` ... when others were asked for); metrics left
out of ``--percentile-metrics`` are simply absent. Both are shown as found. A file written
with ``--append-result`` holds several results, one per line; each is read. The
``*.pytorch.json`` files written next to the results (§2.1) are skipped in directories.

A file that is not a result gets one ``error:`` line on stderr; the exit status is 1 only if
no result was found at all.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

# Always in a saved result (vllm-serving.md §2.1); without them a file is not a result.
REQUIRED = (
    "completed",
    "duration",
    "total_input_tokens",
    "total_output_tokens",
    "request_throughput",
    "output_throughput",
)
# --percentile-metrics: the name in the keys, the section title and the label of the console output.
METRICS = {
    "ttft": ("Time to First Token", "TTFT"),
    "tpot": ("Time per Output Token (excl. 1st token)", "TPOT"),
    "itl": ("Inter-token Latency", "ITL"),
    "e2el": ("End-to-end Latency", "E2EL"),
}
PERCENTILE_KEY = re.compile(r"^p(\d+(?:\.\d+)?)_(" + "|".join(METRICS) + r")_ms$")
COMPANION_SUFFIX = ".pytorch.json"  # PyTorch-benchmark-format copy of each result
WIDTH = 50  # of the console table


class NotAResultError(Exception):
    """Why a file (or one document in it) is not a `vllm bench serve` result."""


# --------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Latency:
    """One metric of ``--percentile-metrics``, in milliseconds; None where the file has no value."""

    mean: float | None
    median: float | None
    percentiles: tuple[tuple[str, float], ...]  # ("99", 1234.5), ascending

    def percentile(self, which: str) -> float | None:
        return dict(self.percentiles).get(which)


@dataclass(frozen=True)
class BenchResult:
    source: str  # the file, with "#N" when it holds several results
    model_id: str | None
    num_prompts: int | None
    request_rate: float  # requests/s; math.inf when all were sent at once
    max_concurrency: int | None  # None: unbounded
    completed: int
    failed: int | None
    duration: float  # seconds
    total_input_tokens: int
    total_output_tokens: int
    request_throughput: float
    output_throughput: float
    total_token_throughput: float | None
    latencies: Mapping[str, Latency]  # by metric name: ttft, tpot, itl, e2el

    def latency(self, metric: str, stat: str) -> float | None:
        """``stat`` is "mean", "median" or a percentile such as "99"."""
        found = self.latencies.get(metric)
        if found is None:
            return None
        return found.mean if stat == "mean" else found.median if stat == "median" else found.percentile(stat)


def parse(data: object, source: str) -> BenchResult:
    """A result from one decoded JSON document; NotAResultError says why not."""
    if not isinstance(data, dict):
        raise NotAResultError(f"not a `vllm bench serve` result (a JSON {type(data).__name__}, not an object)")
    missing = [key for key in REQUIRED if key not in data]
    if len(missing) == len(REQUIRED):
        raise NotAResultError("not a `vllm bench serve` result (none of its fields, e.g. 'completed', 'duration')")
    if missing:
        raise NotAResultError(f"not a complete `vllm bench serve` result (no {', '.join(missing)})")
    fields = _Fields(data)
    return BenchResult(
        source=source,
        model_id=fields.text("model_id"),
        num_prompts=fields.integer("num_prompts"),
        request_rate=_request_rate(data.get("request_rate")),
        max_concurrency=fields.integer("max_concurrency"),
        completed=fields.required_integer("completed"),
        failed=fields.integer("failed"),
        duration=fields.required_number("duration"),
        total_input_tokens=fields.required_integer("total_input_tokens"),
        total_output_tokens=fields.required_integer("total_output_tokens"),
        request_throughput=fields.required_number("request_throughput"),
        output_throughput=fields.required_number("output_throughput"),
        total_token_throughput=fields.number("total_token_throughput"),
        latencies=_latencies(fields),
    )


class _Fields:
    """Typed access to a result's fields: absent or null is None, a wrong type is NotAResultError."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data

    def number(self, key: str) -> float | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise NotAResultError(f"{key} is {value!r}, not a number")
        return float(value)

    def integer(self, key: str) -> int | None:
        value = self.number(key)
        if value is not None and not value.is_integer():
            raise NotAResultError(f"{key} is {value!r}, not a whole number")
        return None if value is None else int(value)

    def required_number(self, key: str) -> float:
        value = self.number(key)
        if value is None:
            raise NotAResultError(f"{key} is null")
        return value

    def required_integer(self, key: str) -> int:
        value = self.integer(key)
        if value is None:
            raise NotAResultError(f"{key} is null")
        return value

    def text(self, key: str) -> str | None:
        value = self.data.get(key)
        return value if isinstance(value, str) else None


def _request_rate(value: object) -> float:
    # A number, or the string "inf" for the default: JSON has no infinity (vllm/benchmarks/serve.py, result_json).
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return math.inf


def _latencies(fields: _Fields) -> dict[str, Latency]:
    percentiles: dict[str, list[tuple[str, float]]] = {}
    for key in fields.data:
        match = PERCENTILE_KEY.match(key)
        value = fields.number(key) if match else None
        if match and value is not None:
            percentiles.setdefault(match[2], []).append((match[1], value))
    found = {}
    for metric in METRICS:
        mean, median = fields.number(f"mean_{metric}_ms"), fields.number(f"median_{metric}_ms")
        points = tuple(sorted(percentiles.get(metric, []), key=lambda point: float(point[0])))
        if points or mean is not None or median is not None:
            found[metric] = Latency(mean, median, points)
    return found


# --------------------------------------------------------------------------------------
# Finding and reading files
# --------------------------------------------------------------------------------------


def collect(paths: Iterable[Path]) -> tuple[list[BenchResult], list[str]]:
    """Results from files and directories, and one problem line per file that gave none."""
    results: list[BenchResult] = []
    problems: list[str] = []
    for path in paths:
        files = list(_json_files(path)) if path.is_dir() else [path]
        if not files:
            problems.append(f"{path}: no .json files in this directory")
        for file in files:
            try:
                results += load(file)
            except (NotAResultError, OSError, UnicodeDecodeError) as err:
                problems.append(f"{file}: {_reason(err)}")
    return results, problems


def _json_files(directory: Path) -> Iterator[Path]:
    for path in sorted(directory.rglob("*.json")):
        if path.is_file() and not path.name.endswith(COMPANION_SUFFIX):
            yield path


def load(path: Path) -> list[BenchResult]:
    """Every result in one file (several when it was written with --append-result)."""
    documents = _documents(path.read_text(encoding="utf-8"))
    if not documents:
        raise NotAResultError("empty file")
    if len(documents) == 1:
        return [parse(documents[0], str(path))]
    results = []
    for number, document in enumerate(documents, 1):
        try:
            results.append(parse(document, f"{path}#{number}"))
        except NotAResultError as err:
            raise NotAResultError(f"result {number} of {len(documents)}: {err}") from None
    return results


def _documents(text: str) -> list[object]:
    """The JSON documents in ``text``: one, or several separated by whitespace (--append-result)."""
    decoder = json.JSONDecoder()
    documents = []
    position = _skip_space(text, 0)
    while position < len(text):
        try:
            document, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as err:
            raise NotAResultError(f"not JSON (line {err.lineno}, column {err.colno}: {err.msg})") from None
        documents.append(document)
        position = _skip_space(text, position)
    return documents


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position].isspace():
        position += 1
    return position


def _reason(err: Exception) -> str:
    if isinstance(err, OSError):
        return err.strerror or str(err)
    if isinstance(err, UnicodeDecodeError):
        return "not UTF-8 text"
    return str(err)


def by_concurrency(result: BenchResult) -> tuple[bool, int, float, str]:
    """Sort key: bounded concurrency ascending, then unbounded; ties by request rate and file."""
    bounded = result.max_concurrency is not None
    return (not bounded, result.max_concurrency or 0, result.request_rate, result.source)


# --------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    return "inf" if math.isinf(value) else f"{value:.2f}"


def _concurrency(result: BenchResult) -> str:
    return "inf" if result.max_concurrency is None else str(result.max_concurrency)


def _rate(result: BenchResult) -> str:
    return "inf" if math.isinf(result.request_rate) else f"{result.request_rate:g}"


def full_table(result: BenchResult, usd_per_hour: float | None = None) -> list[str]:
    """The console table of `vllm bench serve` (the seed recipe's layout), under a line naming the run."""
    context = (
        f"{result.source}: {result.model_id or 'model not recorded'}, max concurrency {_concurrency(result)}, "
        f"{_fmt(result.num_prompts)} prompts, request rate {_rate(result)}"
    )
    rows: list[tuple[str, float | None]] = [("Successful requests:", result.completed)]
    if result.failed:
        rows.append(("Failed requests:", result.failed))
    rows += [
        ("Benchmark duration (s):", result.duration),
        ("Total input tokens:", result.total_input_tokens),
        ("Total generated tokens:", result.total_output_tokens),
        ("Request throughput (req/s):", result.request_throughput),
        ("Output token throughput (tok/s):", result.output_throughput),
        ("Total Token throughput (tok/s):", result.total_token_throughput),
    ]
    lines = [context, _rule(" Serving Benchmark Result ", "="), *_rows(rows)]
    for metric, latency in result.latencies.items():
        title, label = METRICS[metric]
        stats = [("Mean", latency.mean), ("Median", latency.median)]
        stats += [(f"P{which}", value) for which, value in latency.percentiles]
        lines.append(_rule(title, "-"))
        lines += _rows([(f"{name} {label} (ms):", value) for name, value in stats if value is not None])
    if usd_per_hour is not None:
        lines += cost_rows(result, usd_per_hour)
    return [*lines, "=" * WIDTH]


def _rule(title: str, fill: str) -> str:
    return title.center(WIDTH, fill)


def _rows(rows: Iterable[tuple[str, float | None]]) -> list[str]:
    return [f"{label:<40} {_fmt(value)}" for label, value in rows]


@dataclass(frozen=True)
class Column:
    header: str
    cell: Callable[[BenchResult], str]
    left: bool = False  # text columns; numbers align right


def _latency_column(metric: str, stat: str) -> Column:
    header = f"{METRICS[metric][1]} {'mean' if stat == 'mean' else 'p' + stat}"
    return Column(header, lambda r: _fmt(r.latency(metric, stat)))


SUMMARY_COLUMNS = (
    Column("conc", _concurrency),
    Column("rate", _rate),
    Column("ok", lambda r: str(r.completed)),
    Column("failed", lambda r: _fmt(r.failed)),
    Column("dur s", lambda r: f"{r.duration:.1f}"),
    Column("req/s", lambda r: _fmt(r.request_throughput)),
    Column("out tok/s", lambda r: _fmt(r.output_throughput)),
    Column("tot tok/s", lambda r: _fmt(r.total_token_throughput)),
    *(_latency_column(metric, stat) for metric in ("ttft", "tpot", "itl") for stat in ("mean", "99")),
)


def summary_table(results: Sequence[BenchResult], usd_per_hour: float | None = None) -> list[str]:
    """One row per run, in the order given; latencies in ms; with a price, $ per million tokens."""
    columns = list(SUMMARY_COLUMNS)
    if usd_per_hour is not None:
        columns += cost_columns(usd_per_hour)
    if len({r.model_id for r in results}) > 1:
        columns.append(Column("model", lambda r: r.model_id or "-", left=True))
    columns.append(Column("result", lambda r: r.source, left=True))
    cells = [[column.header for column in columns]] + [[column.cell(r) for column in columns] for r in results]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = [
        "  ".join(
            text.ljust(width) if column.left else text.rjust(width)
            for text, width, column in zip(row, widths, columns, strict=True)
        ).rstrip()
        for row in cells
    ]
    legend = "latencies in ms; conc = max concurrency (inf: unbounded); rate = request rate (req/s)"
    if usd_per_hour is not None:
        legend += f"; $/M out, $/M tot = USD per million output, total tokens at ${usd_per_hour:g}/h"
    return [*lines, legend]


# --------------------------------------------------------------------------------------
# Cost: dollars per million tokens at each point, from the throughput and an hourly price
# --------------------------------------------------------------------------------------
# The price is what the serving nodes cost per hour (the stack output ``gpu_cost_per_hour``,
# components/cost.py, or your own rate). A point's cost per million tokens is that price
# divided by the tokens it produced per hour: what a million tokens cost when the endpoint
# runs at that concurrency all the time.

SECONDS_PER_HOUR = 3600
TOKENS_PER_UNIT = 1_000_000


def usd_per_million(usd_per_hour: float, tokens_per_second: float | None) -> float | None:
    if not tokens_per_second or tokens_per_second <= 0:
        return None
    return usd_per_hour / (tokens_per_second * SECONDS_PER_HOUR) * TOKENS_PER_UNIT


def total_tokens_per_second(result: BenchResult) -> float | None:
    """``total_token_throughput`` where saved, otherwise (input + output tokens) / duration."""
    if result.total_token_throughput is not None:
        return result.total_token_throughput
    if result.duration <= 0:
        return None
    return (result.total_input_tokens + result.total_output_tokens) / result.duration


def cost_columns(usd_per_hour: float) -> tuple[Column, ...]:
    return (
        Column("$/M out", lambda r: _fmt(usd_per_million(usd_per_hour, r.output_throughput))),
        Column("$/M tot", lambda r: _fmt(usd_per_million(usd_per_hour, total_tokens_per_second(r)))),
    )


def cost_rows(result: BenchResult, usd_per_hour: float) -> list[str]:
    """The full table's cost section."""
    return [
        _rule(f" Cost at ${usd_per_hour:g}/h ", "-"),
        *_rows(
            [
                ("$ per million output tokens:", usd_per_million(usd_per_hour, result.output_throughput)),
                ("$ per million total tokens:", usd_per_million(usd_per_hour, total_tokens_per_second(result))),
            ]
        ),
    ]


def cost_panel(usd_per_hour: float) -> Panel:
    return Panel(
        f"$ per million tokens (at ${usd_per_hour:g}/h)",
        (
            ("output", lambda r: usd_per_million(usd_per_hour, r.output_throughput)),
            ("total", lambda r: usd_per_million(usd_per_hour, total_tokens_per_second(r))),
        ),
    )


# --------------------------------------------------------------------------------------
# Plot
# --------------------------------------------------------------------------------------


def plot_position(result: BenchResult, results: Sequence[BenchResult]) -> float:
    """Where a run sits on the concurrency axis: an unbounded run at its number of prompts."""
    if result.max_concurrency is not None:
        return result.max_concurrency
    if result.num_prompts:
        return result.num_prompts
    bounded = [r.max_concurrency for r in results if r.max_concurrency is not None]
    return 2 * max(bounded, default=1)  # prompts not recorded: one step right of the rest


Value = Callable[[BenchResult], float | None]


@dataclass(frozen=True)
class Panel:
    title: str
    lines: tuple[tuple[str, Value], ...]  # (legend label, value of a run), drawn solid, then dashed


PANELS = (
    Panel(
        "Time to first token (ms)",
        (("mean", lambda r: r.latency("ttft", "mean")), ("p99", lambda r: r.latency("ttft", "99"))),
    ),
    Panel(
        "Time per output token (ms)",
        (("mean", lambda r: r.latency("tpot", "mean")), ("p99", lambda r: r.latency("tpot", "99"))),
    ),
    Panel("Output token throughput (tok/s)", (("", lambda r: r.output_throughput),)),
)
LINE_STYLES = ("o-", "x--")
NO_MODEL = "model not recorded"


def plot(results: Sequence[BenchResult], path: Path, usd_per_hour: float | None = None) -> None:
    """A PNG with TTFT, TPOT and output throughput against max concurrency, one series per model;
    with a price, a fourth panel of $ per million output and total tokens."""
    panels = PANELS if usd_per_hour is None else (*PANELS, cost_panel(usd_per_hour))
    models: dict[str, list[BenchResult]] = {}
    for result in sorted(results, key=lambda r: plot_position(r, results)):
        models.setdefault(result.model_id or NO_MODEL, []).append(result)
    figure = Figure(figsize=(5 * len(panels), 4.5), layout="constrained")  # no pyplot: no global state, no GUI
    for axes, panel in zip(figure.subplots(1, len(panels)), panels, strict=True):
        for color, (model, runs) in enumerate(sorted(models.items())):  # one colour per model
            for (label, value), style in zip(panel.lines, LINE_STYLES, strict=False):
                points = [(plot_position(r, results), y) for r in runs if (y := value(r)) is not None]
                name = " ".join(part for part in (model if len(models) > 1 else "", label) if part)
                xs, ys = [x for x, _ in points], [y for _, y in points]
                axes.plot(xs, ys, style, color=f"C{color}", label=name or None)
        _style_axes(axes, panel.title, _ticks(results))
    figure.suptitle(f"vllm bench serve: {', '.join(sorted(models))}")
    figure.supxlabel("max concurrency (inf: unbounded, drawn at its number of prompts)")
    figure.savefig(path, format="png", dpi=110)


def _style_axes(axes: Axes, title: str, ticks: Mapping[float, str]) -> None:
    axes.set_title(title)
    axes.set_xscale("log", base=2)  # concurrency sweeps double: 1, 2, 4, ...
    axes.set_xticks(list(ticks), list(ticks.values()))
    axes.xaxis.set_minor_locator(NullLocator())
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    if axes.get_legend_handles_labels()[1]:
        axes.legend()


def _ticks(results: Sequence[BenchResult]) -> dict[float, str]:
    """A labelled tick at every run's position ("inf" for unbounded ones)."""
    labels: dict[float, set[str]] = {}
    for result in results:
        labels.setdefault(plot_position(result, results), set()).add(_concurrency(result))
    return {x: ", ".join(sorted(names, key=lambda name: name == "inf")) for x, names in sorted(labels.items())}


# --------------------------------------------------------------------------------------
# Engine metrics: server-side figures of each point
# --------------------------------------------------------------------------------------
# The benchmark Job (components/workloads/benchmark.py) saves vLLM's Prometheus text next to
# each result ``concurrency-<N>.json``: ``metrics-c<N>-before.prom``, ``-after.prom`` (whole
# snapshots) and ``-during.prom`` (a few gauges sampled while the point ran). They show what
# the client cannot see: how full the KV cache got, how long the queue grew, how many
# requests were preempted, how often the prefix cache hit. Names are vLLM 0.33.0's
# (``vllm/v1/metrics/loggers.py``; counters carry the ``_total`` suffix prometheus_client
# adds); the series of several engines are summed.

KV_USAGE = "vllm:kv_cache_usage_perc"
WAITING = "vllm:num_requests_waiting"
PREEMPTIONS = "vllm:num_preemptions_total"
PREFIX_QUERIES = "vllm:prefix_cache_queries_total"
PREFIX_HITS = "vllm:prefix_cache_hits_total"

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


@dataclass(frozen=True)
class PointMetrics:
    label: str  # c<N> or unbounded
    kv_peak: float | None  # fraction of the KV cache, 1 = full
    waiting_peak: float | None
    preemptions: float | None
    prefix_hit_rate: float | None  # hit tokens / queried tokens during the point


def prometheus_scrapes(text: str) -> list[dict[str, float]]:
    """Prometheus text as a list of scrapes (a ``-during`` file holds several, appended):
    each maps a metric name to the sum of its series. A name seen again starts a new scrape."""
    scrapes: list[dict[str, float]] = [{}]
    seen: set[tuple[str, str]] = set()
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if not match:
            continue
        name, labels, value = match[1], match[2] or "", match[3]
        try:
            number = float(value)
        except ValueError:
            continue
        if (name, labels) in seen:
            scrapes.append({})
            seen.clear()
        seen.add((name, labels))
        scrapes[-1][name] = scrapes[-1].get(name, 0.0) + number
    return [s for s in scrapes if s]


def _read(path: Path) -> list[dict[str, float]]:
    return prometheus_scrapes(path.read_text(encoding="utf-8")) if path.is_file() else []


def _peak(scrapes: Iterable[dict[str, float]], name: str) -> float | None:
    values = [s[name] for s in scrapes if name in s and not math.isnan(s[name])]
    return max(values) if values else None


def _delta(before: list[dict[str, float]], after: list[dict[str, float]], name: str) -> float | None:
    if not before or not after or name not in before[-1] or name not in after[-1]:
        return None
    return after[-1][name] - before[0][name]


def point_metrics(directory: Path, label: str) -> PointMetrics | None:
    """The figures of one point, or None when the Job saved no snapshot for it."""
    before = _read(directory / f"metrics-{label}-before.prom")
    after = _read(directory / f"metrics-{label}-after.prom")
    during = _read(directory / f"metrics-{label}-during.prom")
    if not (before or after or during):
        return None
    queries = _delta(before, after, PREFIX_QUERIES)
    hits = _delta(before, after, PREFIX_HITS)
    return PointMetrics(
        label=label,
        kv_peak=_peak([*before, *during, *after], KV_USAGE),
        waiting_peak=_peak([*before, *during, *after], WAITING),
        preemptions=_delta(before, after, PREEMPTIONS),
        prefix_hit_rate=hits / queries if hits is not None and queries else None,
    )


def label_of(max_concurrency: int | None) -> str:
    """The point's label in file names (components/workloads/benchmark.py point_label)."""
    return f"c{max_concurrency}" if max_concurrency else "unbounded"


def _cell(value: float | None, scale: float = 1.0, digits: int = 0) -> str:
    return "-" if value is None else f"{value * scale:.{digits}f}"


def engine_metrics_table(points: Sequence[PointMetrics]) -> list[str]:
    """One row per point; empty when no point had snapshots."""
    if not points:
        return []
    header = ("point", "KV peak %", "waiting peak", "preemptions", "prefix hit %")
    rows = [
        (
            p.label,
            _cell(p.kv_peak, 100, 1),
            _cell(p.waiting_peak),
            _cell(p.preemptions),
            _cell(p.prefix_hit_rate, 100, 1),
        )
        for p in points
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)) for row in [header, *rows]]
    return ["engine metrics (the engine's /metrics before, during and after each point):", *lines]


def engine_metrics_of(results: Sequence[BenchResult]) -> list[PointMetrics]:
    """The snapshots saved next to each result file, for the results that have them."""
    points = []
    for result in results:
        directory = Path(result.source.split("#", 1)[0]).parent
        found = point_metrics(directory, label_of(result.max_concurrency))
        if found is not None:
            points.append(found)
    return points


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench_report.py",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog="Copy results down first, e.g. `gcloud storage cp -r gs://BUCKET/benchmarks/STACK/TIMESTAMP .` "
        "or `aws s3 cp --recursive s3://BUCKET/benchmarks/STACK/TIMESTAMP TIMESTAMP`.",
    )
    parser.add_argument("paths", nargs="+", type=Path, help="result JSON files, or directories to search for them")
    parser.add_argument("--plot", type=Path, metavar="PNG", help="also draw TTFT, TPOT and throughput vs concurrency")
    parser.add_argument("--full", action="store_true", help="the full table for every result, not one row each")
    parser.add_argument(
        "--usd-per-hour",
        type=_price,
        metavar="USD",
        help="what the serving nodes cost per hour: adds $ per million output and total tokens to the tables and "
        "the plot (e.g. the stack output: pulumi stack output gpu_cost_per_hour --json, usd_per_hour_high)",
    )
    return parser.parse_args(argv)


def _price(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of US dollars") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a price per hour must be a positive number")
    return value


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results, problems = collect(args.paths)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if not results:
        return 1
    results.sort(key=by_concurrency)
    if len(results) == 1 or args.full:
        print("\n\n".join("\n".join(full_table(result, args.usd_per_hour)) for result in results))
    else:
        print("\n".join(summary_table(results, args.usd_per_hour)))
    if engine := engine_metrics_table(engine_metrics_of(results)):
        print("\n" + "\n".join(engine))
    if args.plot:
        try:
            plot(results, args.plot, args.usd_per_hour)
        except OSError as err:
            print(f"error: cannot write {args.plot}: {_reason(err)}", file=sys.stderr)
            return 1
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
