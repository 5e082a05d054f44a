"""The ``rayservice`` engine: the KubeRay operator and a RayService running Ray Serve LLM.

Ray Serve LLM's ``build_openai_app`` serves the OpenAI API from ``llm_configs``
(docs/reference/aws-eks-karpenter.md §4.4), so there is no serving script and no custom
image: the pinned ``rayproject/ray-llm`` image bundles a matching vLLM. KubeRay creates
``<name>-serve-svc`` (port 8000) and ``<name>-head-svc`` (dashboard 8265), both
ClusterIP. Ray Serve has no API key, so the engine is never exposed outside the cluster
(the config refuses a LoadBalancer for it).
"""

from __future__ import annotations

from typing import Any

import pulumi
import yaml

from components import catalog
from components.platform import GpuNodes, Manifest
from components.workloads.common import (
    container_security,
    dedupe_by_name,
    dev_shm,
    gpu_pod_fields,
    gpu_resources,
    hardened_pod,
    merge_annotations,
    metadata,
    selector,
)
from components.workloads.engine import ENGINE_PORT, EngineSettings, hf_token_env
from components.workloads.engines.base import (
    Endpoint,
    Engine,
    EngineContext,
    EngineObject,
    EngineOutputs,
    Operator,
    port_forward,
)
from components.workloads.gpu_check import gpu_check_container
from components.workloads.needs import MetricsEndpoint, Peer, ServedPort, WorkloadNeeds
from components.workloads.weights import Loader, WeightsPlan

NAME = "ray-llm"
APP = "llm"
DASHBOARD_PORT = 8265
GCS_PORT = 6379
CLIENT_PORT = 10001
METRICS_PORT = 8080  # KubeRay's default metrics-export-port
HEAD_CPU, HEAD_MEMORY = "2", "8Gi"  # the head runs Serve's controller and proxy only (num-cpus 0)
OPERATOR_NAMESPACE = "kuberay-system"
# The named port KubeRay gives Ray's metrics exporter (8080; aws-eks-karpenter.md §4.4
# head ports). A policy naming a port no container declares matches nothing.
METRICS_PORT_NAME = "metrics"


def rayservice_needs(gpu: GpuNodes, clients: tuple[Peer, ...]) -> WorkloadNeeds:
    """The Ray cluster (head and workers) as one workload.

    Serve's proxies answer on 8000 to ``clients`` and to the KubeRay operator, which
    probes each proxy's /-/healthz and drives Serve through the dashboard API on 8265
    (ray-operator/controllers/ray/utils/httpproxy_httpclient.go, dashboard_httpclient.go).
    The dashboard and Jobs API (8265), client server (10001) and GCS (6379) run code:
    nobody else reaches them. Ray's raylets, object managers and workers, and NCCL's
    bootstrap, listen on random ports, so the Ray pods reach each other on any port.
    The head's Serve controller and the workers fetch weights over HTTPS as the reader.
    """
    operator = Peer(namespace=OPERATOR_NAMESPACE)
    return WorkloadNeeds(
        name=NAME,
        selector=selector(NAME),
        serves=(
            ServedPort("serve", ENGINE_PORT, (*clients, operator)),
            ServedPort("dashboard", DASHBOARD_PORT, (operator,)),
        ),
        peer_any_port=True,
        internet_egress=True,
        cloud_identity=True,
        capabilities=tuple(gpu.capabilities),
        metrics=MetricsEndpoint(METRICS_PORT_NAME),
    )


def serve_service_name() -> str:
    return f"{NAME}-serve-svc"


def head_service_name() -> str:
    return f"{NAME}-head-svc"


def _has_output(value: Any) -> bool:
    if isinstance(value, pulumi.Output):
        return True
    if isinstance(value, dict):
        return any(_has_output(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_output(v) for v in value)
    return False


def _yaml(data: dict[str, Any]) -> pulumi.Input[str]:
    if _has_output(data):
        return pulumi.Output.from_input(data).apply(lambda d: yaml.safe_dump(d, sort_keys=False))
    return yaml.safe_dump(data, sort_keys=False)


def llm_config(engine: EngineSettings, gpu: GpuNodes, weights: WeightsPlan) -> dict[str, Any]:
    """One entry of ``llm_configs`` (Ray Serve LLM ``LLMConfig``)."""
    engine_kwargs: dict[str, Any] = {
        "tensor_parallel_size": engine.tensor_parallel,
        "pipeline_parallel_size": engine.pipeline_parallel,
        "max_model_len": engine.max_model_len,
        "gpu_memory_utilization": engine.gpu_memory_utilization,
        "kv_cache_dtype": engine.kv_cache_dtype,
    }
    if engine.max_num_seqs:
        engine_kwargs["max_num_seqs"] = engine.max_num_seqs
    if engine.max_num_batched_tokens:
        engine_kwargs["max_num_batched_tokens"] = engine.max_num_batched_tokens
    if engine.topology.layout.expert:
        engine_kwargs["enable_expert_parallel"] = True
    if engine.model.reasoning_parser:
        # Separates R1's thinking from the answer, as --reasoning-parser does for vLLM
        # (Ray Serve LLM passes engine_kwargs to vLLM's AsyncEngineArgs).
        engine_kwargs["reasoning_parser"] = engine.model.reasoning_parser
    if engine.model.trust_remote_code:
        engine_kwargs["trust_remote_code"] = True
    # From the bucket, Ray mirrors the files (CloudMirrorConfig.bucket_uri) before vLLM loads them.
    source: Any = {"bucket_uri": weights.model_arg} if weights.from_bucket else engine.model.hf_id
    return {
        "model_loading_config": {"model_id": engine.served_name, "model_source": source},
        "accelerator_type": catalog.GPUS[gpu.gpu].ray_accelerator_type,
        "engine_kwargs": engine_kwargs,
        "deployment_config": {
            # One replica per worker: the cluster is sized to exactly these GPUs.
            "autoscaling_config": {"min_replicas": engine.replicas, "max_replicas": engine.replicas},
        },
    }


def serve_config(engine: EngineSettings, gpu: GpuNodes, weights: WeightsPlan) -> pulumi.Input[str]:
    """``serveConfigV2``: a YAML string, as the CRD wants it."""
    return _yaml(
        {
            "applications": [
                {
                    "name": APP,
                    "route_prefix": "/",
                    "import_path": "ray.serve.llm:build_openai_app",
                    "args": {"llm_configs": [llm_config(engine, gpu, weights)]},
                }
            ],
        }
    )


def rayservice(
    namespace: str,
    engine: EngineSettings,
    gpu: GpuNodes,
    weights: WeightsPlan,
    service_account: str,
    hf_token: bool,
    capabilities: tuple[str, ...] = (),
) -> Manifest:
    """The RayService: a CPU head (no Serve replicas on it) and one GPU worker per replica."""
    image = engine.image
    token_env = [hf_token_env()] if hf_token else []
    shm_volume, shm_mount = dev_shm(gpu.shm_gib)
    ray_logs = {"name": "ray-logs", "emptyDir": {}}
    ray_logs_mount = {"name": "ray-logs", "mountPath": "/tmp/ray"}
    head = {
        "rayStartParams": {"num-cpus": "0", "num-gpus": "0", "dashboard-host": "0.0.0.0"},
        "template": {
            "metadata": {"labels": metadata(NAME, None, "engine")["labels"]},
            "spec": {
                "serviceAccountName": service_account,
                **hardened_pod(),
                "containers": [
                    {
                        "name": "ray-head",
                        "image": image,
                        "ports": [
                            {"name": "gcs", "containerPort": 6379},
                            {"name": "dashboard", "containerPort": DASHBOARD_PORT},
                            {"name": "client", "containerPort": 10001},
                            {"name": "serve", "containerPort": ENGINE_PORT},
                            {"name": "metrics", "containerPort": METRICS_PORT},
                        ],
                        "env": token_env,
                        "resources": {
                            "requests": {"cpu": HEAD_CPU, "memory": HEAD_MEMORY},
                            "limits": {"memory": HEAD_MEMORY},
                        },
                        "volumeMounts": [ray_logs_mount],
                        "securityContext": container_security(),
                    }
                ],
                "volumes": [ray_logs],
            },
        },
    }
    worker = {
        "groupName": "gpu",
        "replicas": engine.replicas,
        "minReplicas": engine.replicas,
        "maxReplicas": engine.replicas,
        "rayStartParams": {},
        "template": {
            "metadata": {
                "labels": metadata(NAME, None, "engine")["labels"],
                # Karpenter must not consolidate a node that holds a loaded model.
                "annotations": merge_annotations(
                    {"karpenter.sh/do-not-disrupt": "true"}, gpu.pod_annotations, weights.pod_annotations
                ),
            },
            "spec": {
                "serviceAccountName": service_account,
                **hardened_pod(),
                **gpu_pod_fields(gpu),
                "containers": [
                    {
                        "name": "ray-worker",
                        "image": image,
                        # Named so scraping can find it (WorkloadNeeds.metrics).
                        "ports": [{"name": "metrics", "containerPort": METRICS_PORT}],
                        "env": dedupe_by_name([*token_env, *weights.env, *(dict(e) for e in gpu.env)]),
                        "resources": gpu_resources(gpu, engine.gpus, engine.cpu, engine.memory),
                        "volumeMounts": [
                            shm_mount,
                            ray_logs_mount,
                            *weights.mounts,
                            *(dict(m) for m in gpu.volume_mounts),
                        ],
                        "securityContext": container_security(capabilities),
                    }
                ],
                "volumes": dedupe_by_name([shm_volume, ray_logs, *weights.volumes, *(dict(v) for v in gpu.volumes)]),
                "initContainers": [
                    gpu_check_container(image, gpu, engine.gpus),
                    *filter(None, [weights.wait_for_cache]),
                ],
            },
        },
    }
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": metadata(NAME, namespace, "engine"),
        "spec": {
            "serveConfigV2": serve_config(engine, gpu, weights),
            "rayClusterConfig": {
                "rayVersion": catalog.RAY_VERSION,
                "headGroupSpec": head,
                "workerGroupSpecs": [worker],
            },
        },
    }


class RayServiceEngine(Engine):
    kind = "rayservice"
    bucket_loader: Loader | None = "ray-mirror"
    ready_when = "KubeRay reports the RayService's Serve application RUNNING (not awaited by Pulumi)"

    def endpoint(self) -> Endpoint:
        return Endpoint(service=serve_service_name(), port=ENGINE_PORT, path="/v1", api_key=False)

    def operators(self) -> list[Operator]:
        return [Operator("kuberay-operator", catalog.KUBERAY_OPERATOR_CHART, OPERATOR_NAMESPACE)]

    def objects(self, ctx: EngineContext) -> list[EngineObject]:
        manifest = rayservice(
            ctx.namespace,
            ctx.settings,
            ctx.gpu,
            ctx.weights,
            ctx.service_account,
            ctx.hf_token,
            tuple(ctx.gpu.capabilities),
        )
        return [EngineObject(NAME, manifest)]

    def needs(self, ctx: EngineContext) -> WorkloadNeeds:
        return rayservice_needs(ctx.gpu, ctx.clients)

    def outputs(self, ctx: EngineContext) -> EngineOutputs:
        return EngineOutputs(
            port_forward={
                "engine": port_forward(ctx.namespace, serve_service_name(), ENGINE_PORT, ENGINE_PORT),
                "ray_dashboard": port_forward(ctx.namespace, head_service_name(), DASHBOARD_PORT, DASHBOARD_PORT),
            },
            extra={"engine_status": f"kubectl -n {ctx.namespace} get rayservice {NAME}"},
        )
