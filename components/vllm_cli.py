"""The ``vllm serve`` command line, as a pure function of the resolved stack. No Pulumi.

One renderer serves two callers: the vLLM engine puts its output in the container, and
config validation asks it which flags the stack already owns, so ``serving.extraArgs``
cannot repeat one (argparse keeps the last value: ``--tensor-parallel-size=16`` after the
sized 8 would silently win). It sits beside ``sizing.py`` rather than in
``components/workloads`` because config may not import the workloads layer; it knows vLLM's
command line and nothing about Kubernetes.

Flags are those of the pinned vLLM 0.33.0 (vllm/engine/arg_utils.py,
vllm/entrypoints/common/cli_args.py; vllm-serving.md §1.1). ``--api-key`` is never
rendered: vLLM reads ``VLLM_API_KEY`` from the environment itself
(entrypoints/serve/middleware/register.py L32-33: ``args.api_key or [envs.VLLM_API_KEY]``),
and a flag would put the key in the process list.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from components.catalog import ModelSpec
from components.topology import Layout, Topology

PORT = 8000  # vLLM's own default (FrontendArgs.port, entrypoints/common/cli_args.py)

# Short and alternative spellings of flags the renderer writes out in full
# (0.33.0 vllm/engine/arg_utils.py L1172, L1209, L1213, L1241, L1306, L1389-1390, L1866).
ALIASES = {
    "-tp": "--tensor-parallel-size",
    "-pp": "--pipeline-parallel-size",
    "-dp": "--data-parallel-size",
    "-ep": "--enable-expert-parallel",
    "-dcp": "--decode-context-parallel-size",
    "-sc": "--speculative-config",
    "--device-memory-utilization": "--gpu-memory-utilization",
}
# Owned although never rendered: the key comes from the Secret through VLLM_API_KEY.
API_KEY_FLAG = "--api-key"

# Rendezvous of a replica over several nodes, without Ray (0.33.0 vllm/config/parallel.py):
# the leader's torch.distributed port (master_port, L320) and the data-parallel RPC port
# every node shares (data_parallel_rpc_port, L161); both vLLM's defaults, written out so
# the two sides of a group cannot disagree.
MASTER_PORT = 29501
DP_RPC_PORT = 29550

LOADERS_WITH_ARGS = ("huggingface", "runai-streamer", "gcsfuse")
RUNAI_CONCURRENCY = 16  # the streamer's reader threads (vllm-serving.md §4.2 tuning example)
# Through GCS FUSE: read each checkpoint file into the page cache before the workers load it
# (0.33.0 config/load.py ``safetensors_load_strategy``: "prefetch ... useful on network or
# high-latency storage"); the default mmap has every TP rank read the shards at random
# through FUSE, and vLLM prefetches on its own only for NFS/Lustre (performance.md §3).
# vLLM warns of OOM when the checkpoint exceeds 90 % of the host's available RAM
# (model_loader/weight_utils.py safetensors_weights_iterator); the audit expects an A4 High's
# host RAM to hold R1's 641 GiB (performance.md §3, not verified on A4), the engine container
# has no memory limit (common.gpu_resources), and page cache is reclaimable in any case.
FUSE_LOAD_STRATEGY = "prefetch"


@dataclass(frozen=True)
class ServeOptions:
    """What the command line is rendered from (all resolved and validated)."""

    model: ModelSpec
    served_name: str
    topology: Topology
    max_model_len: int
    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None


def loader_args(loader: str, download_dir: str, tensor_parallel: int) -> tuple[str, ...]:
    """Flags a weights loader adds (components/workloads/weights.py picks the loader)."""
    if loader == "huggingface":
        return ("--download-dir", download_dir)
    if loader == "gcsfuse":
        return ("--safetensors-load-strategy", FUSE_LOAD_STRATEGY)
    if loader == "runai-streamer":
        extra: dict[str, object] = {"concurrency": RUNAI_CONCURRENCY}
        if tensor_parallel > 1:
            extra["distributed"] = True  # each rank streams its own shards
        return ("--load-format", "runai_streamer", "--model-loader-extra-config", json.dumps(extra))
    return ()


def speculative_config(tokens: int) -> str:
    """``--speculative-config`` for the model's own MTP layers (0.33.0 config/speculative.py
    L38-57: method "mtp"; DeepSeek V3/R1 map to deepseek_mtp, L749-754)."""
    return json.dumps({"method": "mtp", "num_speculative_tokens": tokens}, separators=(",", ":"))


def serve_args(options: ServeOptions, loader: Sequence[str] = ()) -> list[str]:
    """``vllm serve MODEL`` flags after the model argument, in a stable order."""
    topology, layout = options.topology, options.topology.layout
    args = [
        "--host", "0.0.0.0",
        "--port", str(PORT),
        "--served-model-name", options.served_name,
        "--tensor-parallel-size", str(layout.tensor),
        "--pipeline-parallel-size", str(layout.pipeline),
    ]  # fmt: skip
    if layout.data > 1:
        args += ["--data-parallel-size", str(layout.data)]
    if layout.expert:
        args.append("--enable-expert-parallel")
        if topology.ep_weight_filter:
            args.append("--enable-ep-weight-filter")
    if layout.decode_context > 1:
        args += ["--decode-context-parallel-size", str(layout.decode_context)]
    args += [
        "--max-model-len", str(options.max_model_len),
        "--gpu-memory-utilization", str(topology.gpu_memory_utilization),
        "--kv-cache-dtype", topology.kv_cache_dtype,
        "--performance-mode", topology.performance_mode,
    ]  # fmt: skip
    if topology.mtp_speculative_tokens:
        args += ["--speculative-config", speculative_config(topology.mtp_speculative_tokens)]
    if options.max_num_seqs:
        args += ["--max-num-seqs", str(options.max_num_seqs)]
    if options.max_num_batched_tokens:
        args += ["--max-num-batched-tokens", str(options.max_num_batched_tokens)]
    if options.model.reasoning_parser:
        args += ["--reasoning-parser", options.model.reasoning_parser]
    if options.model.tool_call_parser:  # Open WebUI sends tools: "auto" needs both flags (issue #9 item 5)
        args += ["--enable-auto-tool-choice", "--tool-call-parser", options.model.tool_call_parser]
    if options.model.trust_remote_code:
        args.append("--trust-remote-code")
    return [*args, *loader]


def group_args(layout: Layout, node_rank: str, leader_address: str, dp_start_rank: str) -> list[str]:
    """Flags that make one node's ``vllm serve`` part of a replica over ``layout.nodes``
    nodes, after ``serve_args`` (0.33.0 arg_utils.py L1175-1178, L1253-1275; serve.py).

    Node 0 (the leader) runs the API server; the others run ``--headless`` (engine
    processes only). TP x PP across nodes uses the multiprocessing rendezvous
    (``--nnodes``/``--node-rank``/``--master-addr``/``--master-port``); DP (+ EP) across
    nodes gives each node ``data / nodes`` DP ranks, starting at ``dp_start_rank``, all
    meeting at ``--data-parallel-address`` (vLLM's data-parallel deployment guide).
    ``node_rank``, ``leader_address`` and ``dp_start_rank`` may be shell words such as
    ``$NODE_RANK``, known only inside the pod.
    """
    leader = node_rank == "0"
    if layout.data > 1:
        args = [
            "--data-parallel-size-local", str(layout.data // layout.nodes),
            "--data-parallel-address", leader_address,
            "--data-parallel-rpc-port", str(DP_RPC_PORT),
        ]  # fmt: skip
        if not leader:
            # A start rank on the leader would switch it to hybrid load balancing
            # (arg_utils.py L2489-2491); on workers it places their DP ranks.
            args += ["--data-parallel-start-rank", dp_start_rank]
    else:
        args = [
            "--nnodes", str(layout.nodes),
            "--node-rank", node_rank,
            "--master-addr", leader_address,
            "--master-port", str(MASTER_PORT),
        ]  # fmt: skip
    return args if leader else [*args, "--headless"]


def canonical_flag(arg: str) -> str | None:
    """The long flag an argument sets (``-tp=4`` -> ``--tensor-parallel-size``), or None for
    a value. vLLM's parser accepts underscores for dashes and ``--no-X`` for booleans."""
    if not arg.startswith("-") or arg == "-" or arg[1:2].isdigit():
        return None
    flag = arg.split("=", 1)[0]
    if flag.startswith("--"):
        flag = "--" + flag[2:].replace("_", "-")
    flag = ALIASES.get(flag, flag)
    if flag.startswith("--no-"):
        flag = "--" + flag[len("--no-") :]
    return flag


def owned_flags(options: ServeOptions) -> frozenset[str]:
    """Every flag the stack config can set: what the renderer writes for this stack, and for
    the same stack with every optional key switched on (so ``extraArgs`` cannot add EP or
    DP behind the sizing's back), with any loader, plus the API key (from the environment)."""
    layout = replace(options.topology.layout, data=2, expert=True, decode_context=2)
    everything = replace(
        options,
        topology=replace(options.topology, layout=layout, ep_weight_filter=True, mtp_speculative_tokens=1),
        max_num_seqs=1,
        max_num_batched_tokens=1,
    )
    rendered = [*serve_args(options), *serve_args(everything)]
    # The rendezvous of a replica over several nodes, both shapes, leader and worker.
    for data in (1, 2):
        layout = replace(options.topology.layout, data=data, nodes=2)
        rendered += [*group_args(layout, "0", "a", "0"), *group_args(layout, "1", "a", "1")]
    for loader in LOADERS_WITH_ARGS:
        rendered += loader_args(loader, "/dir", options.topology.layout.tensor)
    flags = {canonical_flag(a) for a in rendered}
    return frozenset({f for f in flags if f} | {API_KEY_FLAG})


def repeated_flags(extra_args: Iterable[str], owned: frozenset[str]) -> list[tuple[int, str, str]]:
    """(index, argument, flag) of each extra argument that sets an owned flag."""
    found = []
    for i, arg in enumerate(extra_args):
        flag = canonical_flag(arg)
        if flag in owned:
            found.append((i, arg, flag))
    return found
