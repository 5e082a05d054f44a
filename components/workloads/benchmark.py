"""The benchmark: ``vllm bench serve`` against the in-cluster endpoint, results to the bucket.

Defaults are the seed recipes' (random dataset, 1000 input and 1000 output tokens, 1100
prompts, EOS ignored; shared/seeds 001). Flags and result fields follow the pinned
vLLM's ``vllm bench serve`` (docs/reference/vllm-serving.md §2.1): ``--backend openai``
sends ``/v1/completions``, which both engines serve; ``--ready-check-timeout-sec``
makes the Job wait for an engine that is still loading; ``OPENAI_API_KEY`` becomes the
bearer token. Each run of the sweep writes ``concurrency-<N>.json`` and the whole
directory lands in ``benchmarks/<stack>/<UTC timestamp>/``; ``tools/bench_report.py``
turns it into a table and a plot.
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
    concat,
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
RUN_SECONDS_PER_POINT = 4 * 3600  # generous: 1100 prompts x 2000 tokens at low concurrency


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
        "--num-prompts", str(config.num_prompts),
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
) -> Manifest:
    """The Job. With a bucket, the sweep runs as an init container and an upload container
    copies the results; without one, results stay in the Job's log."""
    points: list[int | None] = list(config.max_concurrency) or [None]
    ready_timeout = config.ready_timeout_seconds or engine_wait_seconds
    runs = "\n".join(
        shlex.join(bench_command(config, base_url, served_name, model, stack, c, ready_timeout))
        + ' --result-dir "$RUN_DIR"'
        for c in points
    )
    bench_script = (
        "set -e\n"
        f"RUN_DIR={RESULTS}/$(date -u +%Y%m%dT%H%M%SZ)\n"
        f'mkdir -p "$RUN_DIR" && basename "$RUN_DIR" > {RESULTS}/RUN\n'
        f"{runs}\n"
    )
    bench_env = [env("HF_HOME", f"{RESULTS}/hf-home")]
    if api_key:
        bench_env.append(env_from_secret("OPENAI_API_KEY", SECRET_API_KEY, SECRET_API_KEY_KEY))
    if hf_token:  # the tokenizer comes from the Hub
        bench_env.append(hf_token_env())
    mount = {"name": "results", "mountPath": RESULTS}
    bench = script_container(
        "bench",
        VLLM_IMAGE.ref,
        bench_script,
        env=bench_env,
        mounts=[mount],
        requests={"cpu": "4", "memory": "8Gi"},
        shell="/bin/bash",
        read_only_root=True,
    )
    pod_spec: Manifest = {
        "restartPolicy": "Never",
        **hardened_pod(run_as=NON_ROOT_UID),
        "volumes": [{"name": "results", "emptyDir": {}}, TMP_VOLUME],
    }
    if store is None:
        pod_spec["containers"] = [bench]
    else:
        upload = (
            "set -e\n"
            f"RUN=$(cat {RESULTS}/RUN)\n"
            f"{store.upload_command(f'{RESULTS}/$RUN', '$RESULTS_URL/$RUN')}\n"
            'echo "results in $RESULTS_URL/$RUN"\n'
        )
        pod_spec["serviceAccountName"] = service_account
        pod_spec["initContainers"] = [bench]
        results_url = concat(f"{store.scheme}://", bucket, f"/{results_key(stack)}")
        pod_spec["containers"] = [
            script_container(
                "upload",
                store.cli_image,
                upload,
                env=[env("RESULTS_URL", results_url), *store_env(store)],
                mounts=[mount],
                requests={"cpu": "100m", "memory": "256Mi"},
                read_only_root=True,
            )
        ]
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
