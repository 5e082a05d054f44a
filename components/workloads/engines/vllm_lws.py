"""The ``vllm-lws`` engine: a replica of vLLM over several nodes, as a LeaderWorkerSet.

Config picks it for ``serving.engine: vllm`` with ``nodesPerReplica > 1``
(``ServingConfig.engine_kind``). One LeaderWorkerSet group is one replica: ``size`` pods,
one per node, each taking every GPU of its node (kubernetes-sigs/lws v0.10.0,
api/leaderworkerset/v1/leaderworkerset_types.go). The leader (worker index 0) runs the
API server; the workers run vLLM ``--headless``.

How the group starts: vLLM's own multi-node launch, not Ray. vLLM 0.33 spans nodes with
its multiprocessing executor (vllm-serving.md §1.1; 0.33.0 arg_utils.py L1175-1178,
L1253-1275, L2390-2520; entrypoints/cli/serve.py ``run_headless``):

* TP inside a node x PP across nodes: every node runs the same ``vllm serve`` with
  ``--nnodes N --node-rank R --master-addr LEADER --master-port 29501``; ranks > 0 add
  ``--headless``. vLLM's recipes call this the recommended multi-node default
  (strategies/multi_node_tp_pp.yaml).
* DP (+ EP) across nodes (wide-EP): each node hosts ``data / N`` DP ranks
  (``--data-parallel-size-local``), all meeting at ``--data-parallel-address LEADER
  --data-parallel-rpc-port 29550``; workers add ``--data-parallel-start-rank R x local``
  and ``--headless`` (vLLM's data-parallel deployment guide; a start rank on the leader
  would switch it to hybrid load balancing, arg_utils.py L2489-2491).

Why not Ray (``--distributed-executor-backend ray`` after ``ray start`` on every pod,
as gpu-recipes' a3mega LWS chart does): no second scheduler and object store inside the
group, no head/worker ``ray start`` script to keep alive, one process tree per pod whose
exit LWS sees; DP + EP across nodes, the wide-EP shape, is native to the mp launcher
(``--nnodes > 1`` refuses a Ray DP backend, arg_utils.py L2390-2397); and every pod runs
the same pinned ``vllm serve`` whose flags the conformance tier parses with vLLM's own
parser. Ray across nodes remains the ``rayservice`` engine's way.

Ranks and addresses come from what LWS injects into every container
(``LWS_LEADER_ADDRESS``, ``LWS_WORKER_INDEX``; the group size is the config's and
rendered literally). The leader binds vLLM's sockets on its own pod IP (ZMQ binds only
to addresses, not DNS names); a worker resolves the leader's DNS name to that IP first,
waiting until it exists. ``VLLM_HOST_IP`` is each pod's own IP (vLLM's multi-node guide:
every node needs a distinct one).

Failure and restart: ``restartPolicy: RecreateGroupOnPodRestart``: any pod or container
restart recreates the whole group, because no vLLM rank can rejoin a running engine.
The leader's /health answers only once the engine (every rank on every node) is up, so
its readiness means "the group has joined and loaded"; probes and the Service select
the leader only (LWS's ``worker-index: "0"`` label). ``startupPolicy: LeaderCreated``
(workers start with the leader: ``LeaderReady`` would deadlock, the leader is never
ready without them). Updates roll one group at a time with ``maxSurge: 0``: the group
is replaced in place, so no spare nodes are needed (a one-replica stack is down while
its group reloads).
"""

from __future__ import annotations

import dataclasses
import re
import shlex

import pulumi

from components import catalog
from components.platform import GpuNodes, Manifest
from components.vllm_cli import group_args, serve_args
from components.workloads.common import concat, metadata, selector, service
from components.workloads.compile_cache import pack_after_ready
from components.workloads.engine import ENGINE_PORT, EngineSettings
from components.workloads.engines.base import (
    Endpoint,
    Engine,
    EngineContext,
    EngineObject,
    EngineOutputs,
    Operator,
    port_forward,
)
from components.workloads.engines.vllm import (
    LOCAL_HEALTH_URL,
    NAME,
    PORT_NAME,
    quoted_model_arg,
    vllm_needs,
    vllm_pod_template,
)
from components.workloads.needs import Peer, WorkloadNeeds
from components.workloads.weights import WeightsPlan

KIND = "vllm-lws"
# The LeaderWorkerSet's own name: LWS creates a headless Service of that name for the
# group's DNS, so it must differ from the engine Service ("vllm") clients use.
LWS_NAME = "vllm-group"
LWS_API = "leaderworkerset.x-k8s.io/v1"
LWS_NAMESPACE = "lws-system"  # the chart's documented namespace (charts/lws/README.md)
# Labels and environment LWS puts on every pod (leaderworkerset_types.go).
WORKER_INDEX_LABEL = "leaderworkerset.sigs.k8s.io/worker-index"
LEADER_ADDRESS_ENV = "LWS_LEADER_ADDRESS"
WORKER_INDEX_ENV = "LWS_WORKER_INDEX"
# Pulumi waits for the LeaderWorkerSet's Available condition, which the controller sets
# only when every group is ready on the current template (reason "AllGroupsReady";
# kubernetes-sigs/lws pkg/controllers/leaderworkerset_controller.go updateConditions);
# pulumi-kubernetes >= 4.18 reads this annotation for custom resources.
WAIT_FOR = "condition=Available"
LEADER_SELECTOR = {**selector(NAME), WORKER_INDEX_LABEL: "0"}
LEADER_WAIT_SECONDS = 5

# Shell variables the group's scripts set before ``exec vllm serve``.
POD_IP_ENV = "POD_IP"
LEADER_IP = "$LEADER_IP"
NODE_RANK = "$NODE_RANK"
DP_START_RANK = "$DP_START_RANK"


def lws_needs(gpu: GpuNodes, clients: tuple[Peer, ...]) -> WorkloadNeeds:
    """The single-node engine's needs plus the group's own traffic: NCCL's bootstrap and
    proxies, torch.distributed's store and vLLM's ZMQ sockets use ports picked at run
    time besides the fixed 29501/29550, so the group's pods reach each other on any port
    (RDMA itself bypasses the pod network). The pool's capabilities (IPC_LOCK for
    GPUDirect RDMA and EFA) come from ``GpuNodes``."""
    return dataclasses.replace(vllm_needs(gpu, clients), peer_any_port=True)


def shell_word(arg: str) -> str:
    """A command-line word for bash: the group's ``$VARIABLES`` expand (double quotes),
    everything else is quoted literally."""
    return f'"{arg}"' if re.fullmatch(r"\$[A-Z_]+", arg) else shlex.quote(arg)


def node_args(engine: EngineSettings, weights: WeightsPlan, leader: bool) -> list[str]:
    """``vllm serve`` flags after the model on the leader or a worker: the single-node
    flags, the stack's ``extraArgs``, then the group's rendezvous."""
    layout = engine.topology.layout
    rank = "0" if leader else NODE_RANK
    return [
        *serve_args(engine.serve_options, weights.vllm_args),
        *engine.extra_args,
        *group_args(layout, rank, LEADER_IP, "0" if leader else DP_START_RANK),
    ]


def node_script(
    engine: EngineSettings, weights: WeightsPlan, prelude: str, leader: bool, after_ready: str = ""
) -> pulumi.Input[str]:
    """The container's shell on the leader or a worker: the platform's prelude (gIB NCCL
    settings), the group's addresses and ranks, the background step that runs once the
    group serves (``after_ready``), then ``exec vllm serve``."""
    local_ranks = engine.topology.layout.data // engine.topology.layout.nodes
    if leader:
        setup = f'LEADER_IP="${POD_IP_ENV}"\n'
    else:
        setup = (
            f"until LEADER_IP=$(getent hosts \"${LEADER_ADDRESS_ENV}\" | awk '{{print $1; exit}}') "
            '&& [ -n "$LEADER_IP" ]; do\n'
            f'  echo "waiting for the group leader ${LEADER_ADDRESS_ENV}"; sleep {LEADER_WAIT_SECONDS}\n'
            "done\n"
            f'NODE_RANK="${WORKER_INDEX_ENV}"\n'
        )
        if engine.topology.layout.data > 1:
            # This node's first DP rank: the leader holds 0 .. local - 1.
            setup += f"DP_START_RANK=$(({WORKER_INDEX_ENV} * {local_ranks}))\n"
    quoted = quoted_model_arg(weights)
    return concat(
        f"{prelude.rstrip()}\n" if prelude else "",
        "set -e\n",
        setup,
        after_ready,
        "exec vllm serve ",
        quoted,
        " ",
        " ".join(shell_word(a) for a in node_args(engine, weights, leader)),
        "\n",
    )


def _pod_template(ctx: EngineContext, leader: bool) -> Manifest:
    pod_ip = {"name": POD_IP_ENV, "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
    host_ip = {"name": "VLLM_HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
    # A worker's ranks have compiled once the leader serves (it waits for every rank).
    health = LOCAL_HEALTH_URL if leader else f"http://${LEADER_ADDRESS_ENV}:{ENGINE_PORT}/health"
    after_ready = pack_after_ready(ctx.compile_cache, health)
    return vllm_pod_template(
        ctx.settings,
        ctx.gpu,
        ctx.weights,
        ctx.service_account,
        ctx.hf_token,
        node_script(ctx.settings, ctx.weights, ctx.gpu.shell_prelude, leader, after_ready),
        serves_api=leader,
        extra_env=(pod_ip, host_ip) if leader else (host_ip,),
        extra_resources=ctx.gpu.pod_resources,
        compile_cache=ctx.compile_cache,
    )


def leader_worker_set(ctx: EngineContext) -> Manifest:
    """One group per replica, one pod per node; see the module docstring for why each
    policy is what it is."""
    engine = ctx.settings
    meta = metadata(LWS_NAME, ctx.namespace, "engine")
    meta["annotations"] = {"pulumi.com/waitFor": WAIT_FOR}
    return {
        "apiVersion": LWS_API,
        "kind": "LeaderWorkerSet",
        "metadata": meta,
        "spec": {
            "replicas": engine.replicas,
            "startupPolicy": "LeaderCreated",
            "rolloutStrategy": {
                "type": "RollingUpdate",
                "rollingUpdateConfiguration": {"maxSurge": 0, "maxUnavailable": 1},
            },
            "leaderWorkerTemplate": {
                "size": engine.topology.layout.nodes,
                "restartPolicy": "RecreateGroupOnPodRestart",
                "leaderTemplate": _pod_template(ctx, leader=True),
                "workerTemplate": _pod_template(ctx, leader=False),
            },
        },
    }


class VllmLwsEngine(Engine):
    kind = KIND
    ready_when = (
        "the LeaderWorkerSet is Available: each group's leader answers /health, which vLLM serves only once "
        "every rank on every node of the group has joined and loaded the model"
    )

    def endpoint(self) -> Endpoint:
        return Endpoint(service=NAME, port=ENGINE_PORT, path="/v1", api_key=True)

    def operators(self) -> list[Operator]:
        return [Operator("lws", catalog.LWS_CHART, LWS_NAMESPACE)]

    def objects(self, ctx: EngineContext) -> list[EngineObject]:
        ports = [{"name": PORT_NAME, "port": ENGINE_PORT, "targetPort": PORT_NAME}]
        svc = service(NAME, ctx.namespace, "engine", ports, ctx.exposure, ctx.load_balancing, select=LEADER_SELECTOR)
        return [
            EngineObject(LWS_NAME, leader_worker_set(ctx), awaited=True),
            EngineObject(f"{NAME}-svc", svc),
        ]

    def needs(self, ctx: EngineContext) -> WorkloadNeeds:
        return lws_needs(ctx.gpu, ctx.clients)

    def outputs(self, ctx: EngineContext) -> EngineOutputs:
        ns = ctx.namespace
        return EngineOutputs(
            port_forward={"engine": port_forward(ns, NAME, ENGINE_PORT, ENGINE_PORT)},
            extra={
                "engine_group_logs": {
                    "leader": f"kubectl -n {ns} logs -f {LWS_NAME}-0 -c {NAME}",
                    "workers": f"kubectl -n {ns} logs -f -l {WORKER_INDEX_LABEL}!=0,app.kubernetes.io/name={NAME} "
                    f"-c {NAME} --prefix",
                }
            },
        )
