"""The ``vllm`` engine: one Deployment running ``vllm serve`` and a Service on port 8000.

One pod per replica takes the replica's GPUs (one node). Flags come from
components/vllm_cli.py (the pinned vLLM 0.33's own names, vllm-serving.md §1.1), so the
config's check of ``extraArgs`` and the container see the same command line. The API
key reaches vLLM as ``VLLM_API_KEY`` from a Secret, never as an argument.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Mapping

import pulumi

from components.config import ServiceExposure
from components.platform import GpuNodes, LoadBalancing, Manifest
from components.vllm_cli import serve_args
from components.workloads.common import (
    concat,
    container_security,
    dedupe_by_name,
    dev_shm,
    env,
    env_from_secret,
    gpu_pod_fields,
    gpu_resources,
    hardened_pod,
    http_probe,
    merge_annotations,
    metadata,
    selector,
    service,
)
from components.workloads.compile_cache import CompileCachePlan, pack_after_ready
from components.workloads.engine import (
    ENGINE_PORT,
    SECRET_API_KEY,
    SECRET_API_KEY_KEY,
    EngineSettings,
    hf_token_env,
    scratch_volume,
)
from components.workloads.engines.base import (
    Endpoint,
    Engine,
    EngineContext,
    EngineObject,
    EngineOutputs,
    port_forward,
)
from components.workloads.gpu_check import gpu_check_container
from components.workloads.needs import MetricsEndpoint, Peer, ServedPort, WorkloadNeeds
from components.workloads.weights import HF_HOME, WeightsPlan

NAME = "vllm"
PROBE_PERIOD_SECONDS = 10
PORT_NAME = "http"
# What the engine pod's own background steps poll: vLLM answers /health once loaded.
LOCAL_HEALTH_URL = f"http://127.0.0.1:{ENGINE_PORT}/health"


def vllm_needs(gpu: GpuNodes, clients: tuple[Peer, ...]) -> WorkloadNeeds:
    """One pod per replica serving the OpenAI API (and, unauthenticated, /metrics and
    /health: vllm-serving.md §7) on 8000 to ``clients``. It fetches weights over HTTPS
    (Hugging Face, or the bucket's API, also the GCS FUSE sidecar inside the pod) as the
    reader account; tensor parallelism stays inside the pod, so there are no peers."""
    return WorkloadNeeds(
        name=NAME,
        selector=selector(NAME),
        serves=(ServedPort(PORT_NAME, ENGINE_PORT, clients),),
        internet_egress=True,
        cloud_identity=True,
        capabilities=tuple(gpu.capabilities),
        metrics=MetricsEndpoint(PORT_NAME),
    )


def vllm_args(engine: EngineSettings, weights: WeightsPlan) -> list[str]:
    """``vllm serve`` flags after the model argument: the config's, the loader's, then the
    stack's ``extraArgs`` (which config validation keeps from repeating the others)."""
    return [*serve_args(engine.serve_options, weights.vllm_args), *engine.extra_args]


def quoted_model_arg(weights: WeightsPlan) -> pulumi.Input[str]:
    """The model argument as one shell word (a bucket URL is only known at deploy time)."""
    model = weights.model_arg
    return shlex.quote(model) if isinstance(model, str) else pulumi.Output.concat(model).apply(shlex.quote)


def vllm_script(engine: EngineSettings, weights: WeightsPlan, prelude: str, after_ready: str = "") -> pulumi.Input[str]:
    """The container's shell: the platform's prelude (NCCL environment on GKE), what runs
    in the background once the engine is ready (``after_ready``: packing the compile cache),
    then ``exec vllm serve``. vLLM reads the API key from ``VLLM_API_KEY`` itself (0.33.0
    entrypoints/serve/middleware/register.py L32-33), so it is in neither the manifest nor
    the process list."""
    quoted = quoted_model_arg(weights)
    # The prelude runs before `set -e`: the platform's scripts (the gIB NCCL settings) are
    # sourced the way their authors run them, and fail the container themselves if needed.
    return concat(
        f"{prelude.rstrip()}\n" if prelude else "",
        "set -e\n",
        after_ready,
        "exec vllm serve ",
        quoted,
        " ",
        shlex.join(vllm_args(engine, weights)),
        "\n",
    )


def vllm_deployment(
    namespace: str,
    engine: EngineSettings,
    gpu: GpuNodes,
    weights: WeightsPlan,
    service_account: str,
    hf_token: bool,
    compile_cache: CompileCachePlan | None = None,
) -> Manifest:
    """The engine Deployment. Probes allow the whole first load; ``Recreate`` because a
    rolling update would need a second set of GPUs (a whole second node on A4 High)."""
    after_ready = pack_after_ready(compile_cache, LOCAL_HEALTH_URL)
    template = vllm_pod_template(
        engine,
        gpu,
        weights,
        service_account,
        hf_token,
        vllm_script(engine, weights, gpu.shell_prelude, after_ready),
        compile_cache=compile_cache,
    )
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(NAME, namespace, "engine"),
        "spec": {
            "replicas": engine.replicas,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": selector(NAME)},
            "template": template,
        },
    }


def vllm_pod_template(
    engine: EngineSettings,
    gpu: GpuNodes,
    weights: WeightsPlan,
    service_account: str,
    hf_token: bool,
    script: pulumi.Input[str],
    *,
    serves_api: bool = True,
    extra_env: tuple[Manifest, ...] = (),
    extra_resources: Mapping[str, str] | None = None,
    compile_cache: CompileCachePlan | None = None,
) -> Manifest:
    """The pod of one engine process group: ``script`` on the GPUs of one node, with the
    pool's host wiring. ``serves_api``: the pod answers HTTP on 8000 (port and probes);
    a headless worker of a multi-node replica does not. ``extra_resources`` are requested
    and limited next to the GPUs (a pool's RDMA/EFA devices). ``compile_cache``: the
    compile/JIT caches' environment and restore steps (components/workloads/compile_cache.py)."""
    shm_volume, shm_mount = dev_shm(gpu.shm_gib)
    scratch, scratch_mount = scratch_volume(gpu, engine.model)
    environment = [
        env_from_secret("VLLM_API_KEY", SECRET_API_KEY, SECRET_API_KEY_KEY),
        env("HF_HOME", HF_HOME),
        *(compile_cache.env if compile_cache else ()),
        # The engine core's own start timeout (600 s by default) must cover the load too.
        env("VLLM_ENGINE_READY_TIMEOUT_S", str(engine.startup_seconds)),
        *weights.env,
        *(dict(e) for e in gpu.env),
        *extra_env,
    ]
    if hf_token:
        environment.insert(1, hf_token_env())
    resources = gpu_resources(gpu, engine.gpus_per_pod, engine.cpu, engine.memory)
    for name, quantity in (extra_resources or {}).items():
        resources["requests"][name] = resources["limits"][name] = quantity
    container: Manifest = {
        "name": NAME,
        "image": engine.image,
        "command": ["/bin/bash", "-c", script],
    }
    if serves_api:
        container["ports"] = [{"name": PORT_NAME, "containerPort": ENGINE_PORT}]
    container.update(
        {
            "env": dedupe_by_name(environment),
            "resources": resources,
            "volumeMounts": [
                shm_mount,
                scratch_mount,
                *weights.mounts,
                *(dict(m) for m in gpu.volume_mounts),
            ],
        }
    )
    if serves_api:
        # /health answers only once the model is loaded (vllm-serving.md §1.4).
        container["startupProbe"] = http_probe(
            "/health", ENGINE_PORT, PROBE_PERIOD_SECONDS, math.ceil(engine.startup_seconds / PROBE_PERIOD_SECONDS)
        )
        container["readinessProbe"] = http_probe("/health", ENGINE_PORT, PROBE_PERIOD_SECONDS, 3)
        container["livenessProbe"] = http_probe("/health", ENGINE_PORT, 30, 4, timeout=10)
    # As the image's default root: it writes caches under its own tree and the scratch hostPath.
    container["securityContext"] = container_security(gpu.capabilities)
    pod_spec: Manifest = {
        "serviceAccountName": service_account,
        **hardened_pod(),
        "terminationGracePeriodSeconds": 60,
        **gpu_pod_fields(gpu),
        "containers": [container],
        "volumes": dedupe_by_name(
            [
                shm_volume,
                scratch,
                *(compile_cache.volumes if compile_cache else ()),
                *weights.volumes,
                *(dict(v) for v in gpu.volumes),
            ]
        ),
    }
    # The GPU check first: a bad node fails in seconds, before any wait for the cache.
    pod_spec["initContainers"] = [
        gpu_check_container(engine.image, gpu, engine.gpus_per_pod),
        *(compile_cache.restore_containers(engine.image) if compile_cache else ()),
        *filter(None, [weights.wait_for_cache]),
    ]
    annotations = merge_annotations(
        {"kubectl.kubernetes.io/default-container": NAME}, gpu.pod_annotations, weights.pod_annotations
    )
    return {
        "metadata": {"labels": metadata(NAME, None, "engine")["labels"], "annotations": annotations},
        "spec": pod_spec,
    }


def vllm_service(namespace: str, exposure: ServiceExposure, load_balancing: LoadBalancing) -> Manifest:
    ports = [{"name": "http", "port": ENGINE_PORT, "targetPort": "http"}]
    return service(NAME, namespace, "engine", ports, exposure, load_balancing)


class VllmEngine(Engine):
    kind = "vllm"
    ready_when = "the Deployment's pods answer /health, which vLLM serves only once the model is loaded"

    def endpoint(self) -> Endpoint:
        return Endpoint(service=NAME, port=ENGINE_PORT, path="/v1", api_key=True)

    def objects(self, ctx: EngineContext) -> list[EngineObject]:
        deployment = vllm_deployment(
            ctx.namespace,
            ctx.settings,
            ctx.gpu,
            ctx.weights,
            ctx.service_account,
            ctx.hf_token,
            ctx.compile_cache,
        )
        return [
            EngineObject(NAME, deployment, awaited=True),
            EngineObject(f"{NAME}-svc", vllm_service(ctx.namespace, ctx.exposure, ctx.load_balancing)),
        ]

    def needs(self, ctx: EngineContext) -> WorkloadNeeds:
        return vllm_needs(ctx.gpu, ctx.clients)

    def outputs(self, ctx: EngineContext) -> EngineOutputs:
        return EngineOutputs(port_forward={"engine": port_forward(ctx.namespace, NAME, ENGINE_PORT, ENGINE_PORT)})
