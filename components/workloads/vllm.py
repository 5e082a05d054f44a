"""The ``vllm`` engine: one Deployment running ``vllm serve`` and a Service on port 8000.

Flags are those of the pinned vLLM release (docs/reference/vllm-serving.md §1.1): no
``--enable-reasoning`` (gone since 0.10) or ``--disable-log-requests`` (gone since 0.17);
``--reasoning-parser`` splits DeepSeek R1's thinking into the ``reasoning`` field.
"""

from __future__ import annotations

import math
import shlex

import pulumi

from components.config import ServiceExposure
from components.platform import GpuNodes, LoadBalancing, Manifest
from components.workloads.common import (
    concat,
    dedupe_by_name,
    dev_shm,
    env,
    env_from_secret,
    gpu_pod_fields,
    gpu_resources,
    http_probe,
    merge_annotations,
    metadata,
    selector,
    service,
)
from components.workloads.engine import (
    ENGINE_PORT,
    SECRET_API_KEY,
    SECRET_API_KEY_KEY,
    EngineSettings,
    hf_token_env,
    scratch_size_gib,
)
from components.workloads.weights import HF_HOME, SCRATCH_MOUNT, WeightsPlan

NAME = "vllm"
PROBE_PERIOD_SECONDS = 10


def vllm_args(engine: EngineSettings, weights: WeightsPlan) -> list[str]:
    """``vllm serve`` flags after the model argument, in a stable order."""
    args = [
        "--host", "0.0.0.0",
        "--port", str(ENGINE_PORT),
        "--served-model-name", engine.served_name,
        "--tensor-parallel-size", str(engine.tensor_parallel),
        "--pipeline-parallel-size", str(engine.pipeline_parallel),
        "--max-model-len", str(engine.max_model_len),
        "--gpu-memory-utilization", str(engine.gpu_memory_utilization),
        "--kv-cache-dtype", engine.kv_cache_dtype,
    ]  # fmt: skip
    if engine.max_num_seqs:
        args += ["--max-num-seqs", str(engine.max_num_seqs)]
    if engine.max_num_batched_tokens:
        args += ["--max-num-batched-tokens", str(engine.max_num_batched_tokens)]
    if engine.model.reasoning_parser:
        args += ["--reasoning-parser", engine.model.reasoning_parser]
    if engine.model.tool_call_parser:  # Open WebUI sends tools: "auto" needs both flags (issue #9 item 5)
        args += ["--enable-auto-tool-choice", "--tool-call-parser", engine.model.tool_call_parser]
    if engine.model.trust_remote_code:
        args.append("--trust-remote-code")
    return [*args, *weights.vllm_args, *engine.extra_args]


def vllm_script(engine: EngineSettings, weights: WeightsPlan, prelude: str) -> pulumi.Input[str]:
    """The container's shell: the platform's prelude (NCCL environment on GKE), then
    ``exec vllm serve``. The API key comes from the environment, never the manifest."""
    model = weights.model_arg
    quoted: pulumi.Input[str] = (
        shlex.quote(model) if isinstance(model, str) else pulumi.Output.concat(model).apply(shlex.quote)
    )
    # The prelude runs before `set -e`: the platform's scripts (the gIB NCCL settings) are
    # sourced the way their authors run them, and fail the container themselves if needed.
    return concat(
        f"{prelude.rstrip()}\n" if prelude else "",
        "set -e\n",
        "exec vllm serve ",
        quoted,
        " ",
        shlex.join(vllm_args(engine, weights)),
        ' --api-key "$VLLM_API_KEY"\n',
    )


def vllm_deployment(
    namespace: str,
    engine: EngineSettings,
    gpu: GpuNodes,
    weights: WeightsPlan,
    service_account: str,
    hf_token: bool,
) -> Manifest:
    """The engine Deployment. Probes allow the whole first load; ``Recreate`` because a
    rolling update would need a second set of GPUs (a whole second node on A4 High)."""
    shm_volume, shm_mount = dev_shm(engine.shm_gib)
    if gpu.scratch_host_path:
        scratch: Manifest = {
            "name": "scratch",
            "hostPath": {"path": f"{gpu.scratch_host_path}/llm-serving", "type": "DirectoryOrCreate"},
        }
    else:
        scratch = {"name": "scratch", "emptyDir": {"sizeLimit": f"{scratch_size_gib(engine.model)}Gi"}}
    environment = [
        env_from_secret("VLLM_API_KEY", SECRET_API_KEY, SECRET_API_KEY_KEY),
        env("HF_HOME", HF_HOME),
        env("VLLM_CACHE_ROOT", f"{SCRATCH_MOUNT}/vllm-cache"),  # torch.compile cache survives restarts
        # The engine core's own start timeout (600 s by default) must cover the load too.
        env("VLLM_ENGINE_READY_TIMEOUT_S", str(engine.startup_seconds)),
        *weights.env,
        *(dict(e) for e in gpu.env),
    ]
    if hf_token:
        environment.insert(1, hf_token_env())
    container: Manifest = {
        "name": NAME,
        "image": engine.image,
        "command": ["/bin/bash", "-c", vllm_script(engine, weights, gpu.shell_prelude)],
        "ports": [{"name": "http", "containerPort": ENGINE_PORT}],
        "env": dedupe_by_name(environment),
        "resources": gpu_resources(gpu, engine.gpus, engine.cpu, engine.memory),
        "volumeMounts": [
            shm_mount,
            {"name": "scratch", "mountPath": SCRATCH_MOUNT},
            *weights.mounts,
            *(dict(m) for m in gpu.volume_mounts),
        ],
        # /health answers only once the model is loaded (vllm-serving.md §1.4).
        "startupProbe": http_probe(
            "/health", ENGINE_PORT, PROBE_PERIOD_SECONDS, math.ceil(engine.startup_seconds / PROBE_PERIOD_SECONDS)
        ),
        "readinessProbe": http_probe("/health", ENGINE_PORT, PROBE_PERIOD_SECONDS, 3),
        "livenessProbe": http_probe("/health", ENGINE_PORT, 30, 4, timeout=10),
    }
    pod_spec: Manifest = {
        "serviceAccountName": service_account,
        "terminationGracePeriodSeconds": 60,
        **gpu_pod_fields(gpu),
        "containers": [container],
        "volumes": dedupe_by_name([shm_volume, scratch, *weights.volumes, *(dict(v) for v in gpu.volumes)]),
    }
    if weights.wait_for_cache:
        pod_spec["initContainers"] = [weights.wait_for_cache]
    annotations = merge_annotations(
        {"kubectl.kubernetes.io/default-container": NAME}, gpu.pod_annotations, weights.pod_annotations
    )
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(NAME, namespace, "engine"),
        "spec": {
            "replicas": engine.replicas,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": selector(NAME)},
            "template": {
                "metadata": {"labels": metadata(NAME, None, "engine")["labels"], "annotations": annotations},
                "spec": pod_spec,
            },
        },
    }


def vllm_service(namespace: str, exposure: ServiceExposure, load_balancing: LoadBalancing) -> Manifest:
    ports = [{"name": "http", "port": ENGINE_PORT, "targetPort": "http"}]
    return service(NAME, namespace, "engine", ports, exposure, load_balancing)
