"""The benchmark: ``vllm bench serve`` against the in-cluster endpoint, results to the bucket.

The workload is the seed recipes' (random dataset, 1000 input and 1000 output tokens,
EOS ignored; shared/seeds 001), with the prompt count scaled to each point's concurrency
(``BenchmarkConfig.prompts``). Flags and result fields follow the pinned vLLM's ``vllm
bench serve`` (docs/reference/vllm-serving.md §2.1): ``--backend openai`` sends
``/v1/completions``, which both engines serve; ``--ready-check-timeout-sec`` makes the
Job wait for an engine that is still loading; ``OPENAI_API_KEY`` becomes the bearer token.

One init container per concurrency point, each followed by one that uploads the run's
folder (``benchmarks/<stack>/<UTC timestamp>/``): a point's ``concurrency-<N>.json`` is in
the bucket as soon as it completes. A failed point is recorded and the sweep goes on; the
last container (``report``) fails the Job if any point failed, so a sweep is never lost
to one bad point and never reported as a success either. ``tools/bench_report.py`` turns
the folder into a table and a plot.

For the ``vllm`` engine each point also saves the engine's Prometheus metrics before and
after it (``metrics-<point>-before.prom``, ``-after.prom``: KV cache usage, preemptions,
prefix cache queries and hits; names from vLLM 0.33.0 ``vllm/v1/metrics/loggers.py``)
and samples the gauges every ``SAMPLE_SECONDS`` during it (``-during.prom``). Ray Serve
LLM publishes the same figures only through each Ray node's metrics agent (``ray_vllm_*``
on the nodes' metrics export port), not on the Serve endpoint, so Ray runs have none.
"""

from __future__ import annotations

import shlex

import pulumi

from components.catalog import VLLM_IMAGE, ModelSpec
from components.config import BenchmarkConfig
from components.platform import Manifest, ModelStore
from components.workloads.common import (
    NON_ROOT_UID,
    TMP_VOLUME,
    env,
    env_from_secret,
    hardened_pod,
    metadata,
    script_container,
    selector,
    store_env,
)
from components.workloads.engine import SECRET_API_KEY, SECRET_API_KEY_KEY, hf_token_env
from components.workloads.needs import WorkloadNeeds

NAME = "benchmark"
RESULTS = "/results"
RUN_SECONDS_PER_POINT = 4 * 3600  # generous: thousands of prompts x 2000 tokens on a small GPU
SAMPLE_SECONDS = 15
# Gauges worth sampling while a point runs (a before/after snapshot of a gauge says little).
SAMPLED_GAUGES = ("vllm:kv_cache_usage_perc", "vllm:num_requests_running", "vllm:num_requests_waiting")


def point_label(concurrency: int | None) -> str:
    return f"c{concurrency}" if concurrency else "unbounded"


def benchmark_needs(uploads: bool) -> WorkloadNeeds:
    """Serves nothing. Calls the engine (the engine lists it as a client), fetches the
    tokenizer from Hugging Face, and with a bucket uploads the results as the writer."""
    return WorkloadNeeds(name=NAME, selector=selector(NAME), internet_egress=True, cloud_identity=uploads)


def results_key(stack: str) -> str:
    return f"benchmarks/{stack}"


def bench_command(
    config: BenchmarkConfig,
    base_url: str,
    served_name: str,
    model: ModelSpec,
    stack: str,
    concurrency: int | None,
    ready_timeout: int,
) -> list[str]:
    """One ``vllm bench serve`` invocation (without the result directory)."""
    args = [
        "vllm", "bench", "serve",
        "--backend", "openai",
        "--base-url", base_url,
        "--endpoint", "/v1/completions",
        "--model", served_name,
        "--tokenizer", model.hf_id,
        "--dataset-name", "random",
        "--random-input-len", str(config.input_len),
        "--random-output-len", str(config.output_len),
        "--num-prompts", str(config.prompts(concurrency)),
        "--ignore-eos",
        "--ready-check-timeout-sec", str(ready_timeout),
        "--save-result",
        "--result-filename", f"concurrency-{concurrency or 'unbounded'}.json",
        "--metadata", f"stack={stack}", f"model={model.hf_id}",
    ]  # fmt: skip
    if model.trust_remote_code:
        args.append("--trust-remote-code")
    if concurrency:
        args += ["--max-concurrency", str(concurrency)]
    return args


def point_script(
    label: str, command: list[str], metrics_url: str | None, health_url: str | None, ready_timeout: int
) -> str:
    """One point: metrics before, the run, metrics after. Never fails the container: a
    failed run is appended to ``failed`` and the sweep goes on."""
    run = f'{shlex.join(command)} --result-dir "$RUN_DIR"'
    lines = [
        "set -u",
        f"[ -f {RESULTS}/RUN ] || date -u +%Y%m%dT%H%M%SZ > {RESULTS}/RUN",
        f"RUN_DIR={RESULTS}/$(cat {RESULTS}/RUN)",
        'mkdir -p "$RUN_DIR"',
    ]
    if metrics_url and health_url:
        prefix = f'"$RUN_DIR/metrics-{label}'
        gauges = "|".join(SAMPLED_GAUGES)
        lines += [
            # The first point may find the engine still loading: snapshot once it serves.
            f"deadline=$((SECONDS + {ready_timeout}))",
            f"until curl -fsS --max-time 5 -o /dev/null {health_url}; do",
            '  if [ "$SECONDS" -ge "$deadline" ]; then',
            # `vllm bench` would only wait as long again before failing the same way.
            f"    echo {label} >> {RESULTS}/failed",
            f'    echo "point {label}: the engine was not ready within {ready_timeout} s"; exit 0',
            "  fi",
            "  sleep 10",
            "done",
            "snapshot() {",
            f'  curl -fsS --max-time 10 -o {prefix}-$1.prom" {metrics_url} || echo "no metrics snapshot ($1)"',
            "}",
            "snapshot before",
            f"( while sleep {SAMPLE_SECONDS}; do",
            f"    curl -fsS --max-time 5 {metrics_url} | grep -E '^({gauges})' >> {prefix}-during.prom\"",
            "  done ) &",
            "SAMPLER=$!",
            run,
            "status=$?",
            'kill "$SAMPLER" 2>/dev/null',
            "snapshot after",
        ]
    else:
        lines += [run, "status=$?"]
    lines += [
        'if [ "$status" -ne 0 ]; then',
        f'  echo {label} >> {RESULTS}/failed; echo "point {label} failed (exit $status); the sweep goes on"',
        "fi",
        "exit 0",
    ]
    return "\n".join(lines) + "\n"


def report_script(labels: list[str], uploaded: bool) -> str:
    """The Job's verdict: fails if any point failed, after every point had its chance."""
    where = f"in $RESULTS_URL/$(cat {RESULTS}/RUN)" if uploaded else "above"
    show = "" if uploaded else f"cat {RESULTS}/*/concurrency-*.json 2>/dev/null; echo\n"
    return (
        f"{show}"
        f"if [ -s {RESULTS}/failed ]; then\n"
        f"  echo \"failed points: $(tr '\\n' ' ' < {RESULTS}/failed); the other results are {where}\"\n"
        "  exit 1\n"
        "fi\n"
        f'echo "all {len(labels)} points completed; results {where}"\n'
    )


def benchmark_job(
    namespace: str,
    config: BenchmarkConfig,
    base_url: str,
    served_name: str,
    model: ModelSpec,
    stack: str,
    store: ModelStore | None,
    bucket: pulumi.Input[str],
    service_account: str,
    api_key: bool,
    hf_token: bool,
    engine_wait_seconds: int,
    engine_metrics: bool = False,
) -> Manifest:
    """The Job: per point a ``bench-<point>`` and (with a bucket) an ``upload-<point>`` init
    container, then ``report``. ``engine_metrics``: the engine serves Prometheus text on
    ``<base_url>/metrics`` (vLLM does, without the API key)."""
    points: list[int | None] = list(config.max_concurrency) or [None]
    ready_timeout = config.ready_timeout_seconds or engine_wait_seconds
    bench_env = [env("HF_HOME", f"{RESULTS}/hf-home")]
    if api_key:
        bench_env.append(env_from_secret("OPENAI_API_KEY", SECRET_API_KEY, SECRET_API_KEY_KEY))
    if hf_token:  # the tokenizer comes from the Hub
        bench_env.append(hf_token_env())
    mount = {"name": "results", "mountPath": RESULTS}
    metrics_url = f"{base_url}/metrics" if engine_metrics else None
    health_url = f"{base_url}/health" if engine_metrics else None
    results_url = store.address(bucket, results_key(stack)) if store else None
    upload_env = (
        [
            env("RESULTS_URL", results_url),
            *store_env(store, service_account),
            *(env(k, v) for k, v in store.uploader_env.items()),
        ]
        if store and results_url is not None
        else []
    )

    init: list[Manifest] = []
    labels = []
    for concurrency in points:
        label = point_label(concurrency)
        labels.append(label)
        command = bench_command(config, base_url, served_name, model, stack, concurrency, ready_timeout)
        init.append(
            script_container(
                f"bench-{label}",
                VLLM_IMAGE.ref,
                point_script(label, command, metrics_url, health_url, ready_timeout),
                env=bench_env,
                mounts=[mount],
                requests={"cpu": "4", "memory": "8Gi"},
                shell="/bin/bash",
                read_only_root=True,
            )
        )
        if store is not None:
            upload = (
                "set -e\n"
                f"RUN=$(cat {RESULTS}/RUN)\n"
                f"{store.upload_command(f'{RESULTS}/$RUN', '$RESULTS_URL/$RUN')}\n"
                f'echo "{label}: results in $RESULTS_URL/$RUN"\n'
            )
            init.append(
                script_container(
                    f"upload-{label}",
                    store.cli_image,
                    upload,
                    env=upload_env,
                    mounts=[mount, *store.mounts(read_only=False)],
                    requests={"cpu": "100m", "memory": "256Mi"},
                    read_only_root=True,
                )
            )
    report = script_container(
        "report",
        store.cli_image if store else VLLM_IMAGE.ref,
        report_script(labels, uploaded=store is not None),
        env=[env("RESULTS_URL", results_url)] if results_url is not None else [],
        mounts=[mount],
        requests={"cpu": "50m", "memory": "64Mi"},
        read_only_root=True,
    )
    pod_spec: Manifest = {
        "restartPolicy": "Never",
        **hardened_pod(run_as=NON_ROOT_UID),
        "initContainers": init,
        "containers": [report],
        "volumes": [{"name": "results", "emptyDir": {}}, TMP_VOLUME, *(store.pod_volumes(False) if store else [])],
    }
    if store is not None:
        pod_spec["serviceAccountName"] = service_account
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata(NAME, namespace, "benchmark"),
        "spec": {
            "backoffLimit": 0,  # a failed benchmark is a finding, not something to retry blindly
            "activeDeadlineSeconds": ready_timeout + RUN_SECONDS_PER_POINT * len(points),
            "template": {"metadata": {"labels": metadata(NAME, None, "benchmark")["labels"]}, "spec": pod_spec},
        },
    }
