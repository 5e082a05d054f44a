"""The ``rayservice`` engine: the KubeRay operator and a RayService running Ray Serve LLM.

Ray Serve LLM's ``build_openai_app`` serves the OpenAI API from ``llm_configs``
(docs/reference/aws-eks-karpenter.md §4.4), so there is no serving script and no custom
image: the pinned ``rayproject/ray-llm`` image bundles a matching vLLM. KubeRay creates
``<name>-serve-svc`` (port 8000) and ``<name>-head-svc`` (dashboard 8265), both
ClusterIP. Ray Serve has no API key, so the engine is never exposed outside the cluster
(the config refuses a LoadBalancer for it).

Across nodes (``serving.nodesPerReplica > 1``): one Ray worker pod per node takes all of
its GPUs, so the worker group has ``replicas x nodesPerReplica`` pods, and each Serve
replica's placement group of TP x PP one-GPU bundles is packed over as many of them
as it needs (aws-eks-karpenter.md §5: TP inside a node, PP across nodes). On fabric pools
the worker pods carry what the platform's ``GpuNodes`` asks of a GPU pod: on GKE A4 High
the NIC annotations, host libraries, ``IPC_LOCK`` and the gIB NCCL environment; on an EKS
EFA pool the EFA interfaces, ``IPC_LOCK`` and the libfabric environment. The pool's shell
prelude runs in the container's shell before ``ray start``, so the raylet, and every vLLM
rank it starts, inherits what it exports.
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
    env,
    gpu_pod_fields,
    gpu_resources,
    hardened_pod,
    merge_annotations,
    metadata,
    selector,
)
from components.workloads.compile_cache import CompileCachePlan, pack_after_ready
from components.workloads.engine import (
    CPU_PER_GPU,
    ENGINE_PORT,
    MEMORY_GIB_PER_GPU,
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
# KubeRay leaves a container's command alone when its pod template carries this annotation,
# and hands over the `ray start` command it generated in KUBERAY_GEN_RAY_START_CMD
# (kuberay v1.7.0 ray-operator/controllers/ray/common/pod.go BuildPod, utils/constant.go;
# sample ray-operator/config/samples/ray-cluster.overwrite-command.yaml).
OVERWRITE_CMD_ANNOTATION = "ray.io/overwrite-container-cmd"
GENERATED_START_CMD_ENV = "KUBERAY_GEN_RAY_START_CMD"
# KubeRay's own prefix to `ray start` (pod.go: "ulimit -n ${RAY_START_ULIMIT_OPEN_FILES:-65536}").
ULIMIT = "ulimit -n ${RAY_START_ULIMIT_OPEN_FILES:-65536}"
# Pulumi waits for this condition of the RayService (pulumi-kubernetes >= 4.18 `pulumi.com/waitFor`).
# KubeRay v1.7 sets Ready once the cluster has serve endpoints, and switches traffic to a
# cluster only when every Serve application on it is RUNNING (rayservice_controller.go
# calculateConditions, getAndCheckServeStatus); Ray Serve reports the LLM application
# RUNNING only once each replica's placement group is placed and its engine has loaded.
WAIT_FOR_ANNOTATION = "pulumi.com/waitFor"
READY_CONDITION = "condition=Ready"
ZONE_LABEL = "topology.kubernetes.io/zone"
# Ray Serve LLM gives a replica this long to download (or mirror) the weights and start its
# engine, all of its nodes' ranks included, then kills and retries it; 3600 s by default
# (2.52.0 ray/llm/_internal/serve/constants.py ENGINE_START_TIMEOUT_S, read in
# core/server/llm_server.py ``start``). The replica runs on a worker, whose raylet passes
# its environment on; set to the stack's start-up budget, as VLLM_ENGINE_READY_TIMEOUT_S is
# for the vllm engine.
ENGINE_START_TIMEOUT_ENV = "RAYLLM_ENGINE_START_TIMEOUT_S"
WORKER_GROUP = "gpu"
GROUP_LABEL = "ray.io/group"  # KubeRay labels each pod with its group (utils/constant.go RayNodeGroupLabelKey)


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
        # Ray Serve LLM forces and allows only "ray" (2.52.0 engines/vllm/vllm_models.py
        # get_initialization_kwargs); stated so the rendered config says how ranks span nodes.
        "distributed_executor_backend": "ray",
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
    if weights.mounted:  # a volume store: the files are in the pod already
        source = weights.model_arg
    return {
        "model_loading_config": {"model_id": engine.served_name, "model_source": source},
        "accelerator_type": catalog.GPUS[gpu.gpu].ray_accelerator_type,
        "engine_kwargs": engine_kwargs,
        "placement_group_config": placement_group_config(engine),
        "deployment_config": {
            # One replica per worker: the cluster is sized to exactly these GPUs.
            "autoscaling_config": {"min_replicas": engine.replicas, "max_replicas": engine.replicas},
        },
    }


def placement_group_config(engine: EngineSettings) -> dict[str, Any]:
    """One one-GPU bundle per vLLM rank (TP x PP), as Ray Serve LLM would make by default
    (2.52.0 engines/vllm/vllm_models.py ``placement_bundles``), with the strategy stated.

    On one node ``STRICT_PACK``: a replica's TP group never straddles two pods. Across
    nodes ``PACK``: each worker pod offers exactly one node's GPUs, so the bundles fill one
    node and spill over to the next, a PP stage per node (Ray's doc
    serve/llm/user-guides/cross-node-parallelism.md; aws-eks-karpenter.md §5); vLLM's Ray
    executor orders ranks by node, so each TP group stays on its node's NVLink.
    Explicit bundles also make Ray treat accelerator types its fixed list misses (B200)
    as GPUs (``VLLMEngineConfig.use_gpu`` checks the bundles first).
    """
    ranks = engine.tensor_parallel * engine.pipeline_parallel
    strategy = "PACK" if engine.topology.layout.nodes > 1 else "STRICT_PACK"
    return {"bundles": [{"GPU": 1} for _ in range(ranks)], "strategy": strategy}


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


def worker_script(prelude: str, after_ready: str = "") -> str:
    """The worker container's shell: the platform's prelude (the gIB NCCL settings on GKE),
    the background step that runs once Serve answers (``after_ready``: packing the compile
    cache), then KubeRay's own ``ulimit`` (not fatal, as in KubeRay's command) and generated
    ``ray start`` (which runs with ``--block``). The prelude fails the container itself.
    Sourced in this shell, the prelude's exports reach the raylet and every Ray worker
    process it starts, the vLLM ranks among them. Unquoted, as KubeRay's sample runs it:
    the generated command is flag words only."""
    before = f"{prelude.rstrip()}\n" if prelude else ""
    return f"{before}{after_ready}{ULIMIT}\nexec ${GENERATED_START_CMD_ENV}\n"


def same_zone_affinity() -> Manifest:
    """A replica's pipeline stages exchange activations every step: keep all GPU workers in
    one zone (a GKE pool has one zone anyway; on EKS this keeps Karpenter from spreading
    them over AZs, where the traffic is slower and billed). All replicas share the one
    worker group, and Ray places a replica on any of its pods, so the whole group shares
    the zone (several replicas trade zonal redundancy for it). The first pod matches its
    own term, so it may land in any zone; the others follow it."""
    return {
        "podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {
                    "labelSelector": {
                        "matchLabels": {**selector(NAME), GROUP_LABEL: WORKER_GROUP},
                    },
                    "topologyKey": ZONE_LABEL,
                }
            ]
        }
    }


def rayservice(
    namespace: str,
    engine: EngineSettings,
    gpu: GpuNodes,
    weights: WeightsPlan,
    service_account: str,
    hf_token: bool,
    compile_cache: CompileCachePlan | None = None,
) -> Manifest:
    """The RayService: a CPU head (no Serve replicas on it: ``num-cpus``/``num-gpus`` 0) and
    ``nodesPerReplica`` GPU worker pods per replica. The workers run vLLM, so they carry
    the compile caches (``compile_cache``): on the pool's scratch, restored before Ray starts."""
    image = engine.image
    token_env = [hf_token_env()] if hf_token else []
    shm_volume, shm_mount = dev_shm(gpu.shm_gib)
    scratch, scratch_mount = scratch_volume(gpu, engine.model)
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
    nodes = engine.topology.layout.nodes
    # One worker pod per node of each replica, each taking that node's share of the GPUs
    # (the whole node across nodes: config requires TP x PP = nodes x GPUs per node).
    pod_gpus = engine.gpus // nodes
    container: Manifest = {
        "name": "ray-worker",
        "image": image,
        # Named so scraping can find it (WorkloadNeeds.metrics).
        "ports": [{"name": "metrics", "containerPort": METRICS_PORT}],
        "env": dedupe_by_name(
            [
                *token_env,
                env(ENGINE_START_TIMEOUT_ENV, str(engine.startup_seconds)),
                *weights.env,
                *(compile_cache.env if compile_cache else ()),
            ]
            + [dict(e) for e in gpu.env]
        ),
        "resources": gpu_resources(gpu, pod_gpus, str(CPU_PER_GPU * pod_gpus), f"{MEMORY_GIB_PER_GPU * pod_gpus}Gi"),
        "volumeMounts": [
            shm_mount,
            ray_logs_mount,
            scratch_mount,
            *weights.mounts,
            *(dict(m) for m in gpu.volume_mounts),
        ],
        "securityContext": container_security(gpu.capabilities),
    }
    # Karpenter must not consolidate a node that holds a loaded model.
    annotations = merge_annotations(
        {"karpenter.sh/do-not-disrupt": "true"}, gpu.pod_annotations, weights.pod_annotations
    )
    # Ray Serve answers on the serve Service once the application (every replica) runs.
    after_ready = pack_after_ready(compile_cache, f"http://{serve_service_name()}:{ENGINE_PORT}/v1/models")
    if gpu.shell_prelude or after_ready:
        container["command"] = ["/bin/bash", "-c", worker_script(gpu.shell_prelude, after_ready)]
        annotations[OVERWRITE_CMD_ANNOTATION] = "true"
    pod_spec: Manifest = {
        "serviceAccountName": service_account,
        **hardened_pod(),
        **gpu_pod_fields(gpu),
        "containers": [container],
        "volumes": dedupe_by_name(
            [
                shm_volume,
                ray_logs,
                scratch,
                *(compile_cache.volumes if compile_cache else ()),
                *weights.volumes,
                *(dict(v) for v in gpu.volumes),
            ]
        ),
        "initContainers": [
            gpu_check_container(image, gpu, pod_gpus),
            *(compile_cache.restore_containers(image) if compile_cache else ()),
            *filter(None, [weights.wait_for_cache]),
        ],
    }
    if nodes > 1:
        pod_spec["affinity"] = same_zone_affinity()
    worker = {
        "groupName": WORKER_GROUP,
        "replicas": engine.replicas * nodes,
        "minReplicas": engine.replicas * nodes,
        "maxReplicas": engine.replicas * nodes,
        "rayStartParams": {},
        "template": {
            "metadata": {"labels": metadata(NAME, None, "engine")["labels"], "annotations": annotations},
            "spec": pod_spec,
        },
    }
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": metadata(NAME, namespace, "engine", annotations={WAIT_FOR_ANNOTATION: READY_CONDITION}),
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
    ready_when = (
        "KubeRay sets the RayService's Ready condition: its Serve application is RUNNING, every replica's "
        "placement group placed (on all of its nodes) and its engine loaded"
    )

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
            ctx.compile_cache,
        )
        return [EngineObject(NAME, manifest, awaited=True)]

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
