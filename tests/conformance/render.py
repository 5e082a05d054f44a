"""What the program declares, in the shape the conformance checkers read.

Runs in the project's own virtualenv: each stack file and the variants below go through
``tools.offline.run_stack`` (the real program on Pulumi's mock engine), and the rendered
manifests are reduced to what the real software must accept: every ``vllm serve`` and
``vllm bench serve`` command line, the ``VLLM_*`` variables set next to them, the
RayService's serve config, and the Open WebUI Deployment's environment.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from tools.offline import StackRun, all_stacks, run_stack

# Variants beyond the stack files (issue #10 item 2): model cache on and off, each loader,
# benchmark on, both engines, a model with tool calling on each cloud, and each serving
# profile and parallel layout of components/topology.py (DP + EP, MTP, DCP).
_CACHE_OFF = {"llm-serving:modelCache": {"enabled": False}}
_BENCH = {"llm-serving:benchmark": {"enabled": True}}
_S3_COMPATIBLE: Mapping[str, Any] = {
    "llm-serving:platform": {
        "modelStore": {
            "kind": "s3Compatible",
            "endpoint": "https://minio.example.com:9000",
            "bucket": "llm-models",
            "keepOnDestroy": None,
            "backupRetentionDays": None,
        }
    },
    "llm-serving:modelStoreAccessKeyId": {"secure": "v1:id"},
    "llm-serving:modelStoreSecretAccessKey": {"secure": "v1:key"},
}
VARIANTS: Mapping[str, tuple[str, Mapping[str, Any]]] = {
    "a4high-huggingface": ("a4high", _CACHE_OFF),
    "a4high-gcsfuse-benchmark": (
        "a4high",
        {"llm-serving:modelCache": {"enabled": True, "loader": "gcsfuse"}, **_BENCH},
    ),
    "a4high-runai-streamer": ("a4high", {"llm-serving:modelCache": {"enabled": True, "loader": "runai-streamer"}}),
    # The node copy on local SSD (a4high's `auto`), named so a change of default keeps it covered.
    "a4high-node-cache": ("a4high", {"llm-serving:modelCache": {"enabled": True, "loader": "node-cache"}}),
    "a4high-r1-0528-tools": (
        "a4high",
        {"llm-serving:serving": {"model": "deepseek-ai/DeepSeek-R1-0528", "servedModelName": "deepseek-r1-0528"}},
    ),
    "a4high-throughput": ("a4high", {"llm-serving:serving": {"profile": "throughput"}}),
    "a4high-interactivity": ("a4high", {"llm-serving:serving": {"profile": "interactivity"}}),
    "a4high-decode-context-parallel": ("a4high", {"llm-serving:serving": {"decodeContextParallelSize": 8}}),
    # The a4high-2node stack is DP + EP across its nodes; this is the other multi-node
    # shape, TP 8 inside each node x PP 2 across (leader and worker command lines).
    "a4high-2node-tp-pp": ("a4high-2node", {"llm-serving:serving": {"profile": "balanced"}}),
    "eks-ray-mirror": ("eks", {"llm-serving:modelCache": {"enabled": True}}),
    # Stores without the stack's bucket (components/stores.py): vLLM streams from an
    # S3-compatible endpoint, or from a mounted ReadWriteMany volume.
    "a4high-store-s3-compatible": ("a4high", _S3_COMPATIBLE),
    # Ray's model mirror from the same endpoint (the bucket_uri Ray 2.52 must accept).
    "eks-ray-s3-compatible": ("eks", {"llm-serving:modelCache": {"enabled": True}, **_S3_COMPATIBLE}),
    "a4high-store-volume": (
        "a4high",
        {
            "llm-serving:platform": {
                "modelStore": {
                    "kind": "volume",
                    "storageClass": "nfs-rwx",
                    "sizeGib": 2000,
                    "keepOnDestroy": None,
                    "backupRetentionDays": None,
                }
            }
        },
    ),
    # A volume model store (components/stores.py): Ray is given the mounted path, not a bucket.
    "eks-ray-volume": (
        "eks",
        {
            "llm-serving:modelCache": {"enabled": True},
            "llm-serving:platform": {
                "modelStore": {
                    "kind": "volume",
                    "claimName": "shared-models",
                    "keepOnDestroy": None,
                    "backupRetentionDays": None,
                }
            },
        },
    ),
    # Ray across nodes (issue 13): 2 x A4 High as TP 8 x PP 2 by default, and the seeds'
    # R1 FP8 on 2 x p5.48xlarge as TP 8 x PP 2.
    "a4high-ray-two-nodes": (
        "a4high",
        {
            "llm-serving:platform": {"gpuPool": {"nodeCount": 2, "compactPlacement": True}},
            "llm-serving:serving": {"engine": "rayservice", "nodesPerReplica": 2},
        },
    ),
    "eks-ray-p5-tp8-pp2": (
        "eks",
        {
            "llm-serving:platform": {"gpuNodePools": [{"name": "p5", "instanceFamilies": ["p5"], "gpuLimit": 16}]},
            "llm-serving:serving": {
                "model": "deepseek-ai/DeepSeek-R1",
                "servedModelName": "deepseek-r1",
                "tensorParallelSize": 8,
                "pipelineParallelSize": 2,
                "nodesPerReplica": 2,
                "maxModelLen": 16384,
                "allowTcpInterconnect": True,  # a p5 pool without its EFA section
            },
        },
    ),
    # The on-prem stack's lighter alternative (Pulumi.onprem.yaml): the distilled 70B on one
    # node, TP 8, on the vllm engine: `vllm serve` on the existing platform from the volume.
    "onprem-r1-distill-70b-vllm": (
        "onprem",
        {
            "llm-serving:serving": {
                "engine": "vllm",
                "model": "deepseek-ai/DeepSeek-R1-Distill-Llama-70B",
                "servedModelName": "deepseek-r1-distill-llama-70b",
                "pipelineParallelSize": 1,
                "nodesPerReplica": 1,
                "replicas": 8,
            }
        },
    ),
    # The streamer named: `auto` now picks the node copy on EKS pools with NVMe.
    "eks-vllm-runai-benchmark": (
        "eks",
        {
            "llm-serving:serving": {"engine": "vllm"},
            "llm-serving:modelCache": {"enabled": True, "loader": "runai-streamer"},
            **_BENCH,
        },
    ),
    "eks-vllm-node-cache": (
        "eks",
        {"llm-serving:serving": {"engine": "vllm"}, "llm-serving:modelCache": {"enabled": True}},
    ),
    "eks-vllm-llama-tools": (
        "eks",
        {
            "llm-serving:serving": {
                "engine": "vllm",
                "model": "meta-llama/Llama-3.1-8B-Instruct",
                "servedModelName": "llama-3.1-8b-instruct",
            },
            **_CACHE_OFF,
        },
    ),
}

# Shell variables in rendered scripts stand for run-time values; "1" parses as a number,
# a name and a path alike.
_PLACEHOLDERS = {
    "RUN_DIR": "/tmp/results/run",
    "VLLM_API_KEY": "test-key",
    # A multi-node group's worker 1 (components/workloads/engines/vllm_lws.py).
    "LEADER_IP": "10.0.0.2",
    "NODE_RANK": "1",
    "DP_START_RANK": "8",
}
_SHELL_OPERATORS = {";", "&&", "||", "|", "&", ">", ">>", "<", "(", ")"}
SECRET_VALUE = "conformance-secret"


@dataclass
class Rendered:
    name: str
    stack: str
    changes: Mapping[str, Any]
    engine: str
    model: str
    served_name: str
    nodes_per_replica: int = 1  # > 1: a LeaderWorkerSet, one `vllm serve` for the leader, one for workers
    vllm_serve: list[list[str]] = field(default_factory=list)
    vllm_bench: list[list[str]] = field(default_factory=list)
    vllm_env: list[str] = field(default_factory=list)  # VLLM_* set on vLLM 0.33 containers
    ray_serve_configs: list[dict[str, Any]] = field(default_factory=list)
    ray_vllm_env: list[str] = field(default_factory=list)  # VLLM_* set on Ray pods
    open_webui_env: dict[str, str] | None = None  # secrets substituted by SECRET_VALUE

    @property
    def tool_calling(self) -> bool:
        return any("--enable-auto-tool-choice" in argv for argv in self.vllm_serve)

    def as_json(self) -> dict[str, Any]:
        return {**self.__dict__, "changes": dict(self.changes), "tool_calling": self.tool_calling}


def _substitute(token: str) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: _PLACEHOLDERS.get(m[1], "1"), token)


def vllm_commands(script: str) -> Iterator[list[str]]:
    """Each ``vllm ...`` command in a shell script, as argv after ``vllm``."""
    script = script.replace("\\\n", " ")
    for line in script.splitlines():
        if "vllm" not in line:
            continue
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        try:
            tokens = list(lexer)
        except ValueError:
            continue
        for i, token in enumerate(tokens[:-1]):
            if token == "vllm" and tokens[i + 1] in ("serve", "bench"):
                argv: list[str] = []
                for t in tokens[i + 1 :]:
                    if t in _SHELL_OPERATORS:
                        break
                    argv.append(_substitute(t))
                yield argv


def _pod_specs(obj: Any) -> Iterator[dict[str, Any]]:
    if isinstance(obj, dict):
        if isinstance(obj.get("containers"), list):
            yield obj
        for value in obj.values():
            yield from _pod_specs(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _pod_specs(value)


def _script(container: Mapping[str, Any]) -> str:
    parts = [*(container.get("command") or []), *(container.get("args") or [])]
    return "\n".join(str(p) for p in parts)


def _env_value(entry: Mapping[str, Any]) -> str:
    return SECRET_VALUE if "valueFrom" in entry else str(entry.get("value", ""))


def reduce(name: str, stack: str, changes: Mapping[str, Any], run: StackRun) -> Rendered:
    serving = run.program_globals["config"].serving
    out = Rendered(
        name, stack, changes, str(serving.engine), str(serving.model), str(serving.served_name),
        int(serving.nodes_per_replica),
    )  # fmt: skip
    for obj in run.kubernetes_objects():
        if obj["kind"] == "RayService":
            out.ray_serve_configs.append(yaml.safe_load(obj["spec"]["serveConfigV2"]))
        for pod in _pod_specs(obj.get("spec", {})):
            for container in [*pod.get("initContainers", []), *pod["containers"]]:
                env_names = [e["name"] for e in container.get("env", []) if e["name"].startswith("VLLM_")]
                if obj["kind"] == "RayService":
                    out.ray_vllm_env += env_names
                    continue
                commands = list(vllm_commands(_script(container)))
                for argv in commands:
                    (out.vllm_serve if argv[0] == "serve" else out.vllm_bench).append(argv)
                if commands or env_names:
                    out.vllm_env += env_names
        if obj["kind"] == "Deployment" and obj["metadata"]["name"] == "open-webui":
            container = obj["spec"]["template"]["spec"]["containers"][0]
            out.open_webui_env = {e["name"]: _env_value(e) for e in container["env"]}
    out.vllm_env = sorted(set(out.vllm_env))
    out.ray_vllm_env = sorted(set(out.ray_vllm_env))
    return out


def render(name: str) -> Rendered:
    stack, changes = (name, {}) if name in all_stacks() else VARIANTS[name]
    run = run_stack(stack, changes)
    if run.error is not None:
        raise AssertionError(f"{name}: the program failed on the mock engine: {run.error}") from run.error
    return reduce(name, stack, changes, run)


def names() -> list[str]:
    return [*all_stacks(), *VARIANTS]
