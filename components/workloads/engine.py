"""What every engine is started with, resolved from the validated stack config."""

from __future__ import annotations

import math
from dataclasses import dataclass

from components import catalog, vllm_cli
from components.config import StackConfig
from components.platform import GpuNodes, Manifest
from components.sizing import startup_budget_seconds
from components.topology import Topology
from components.workloads.common import env_from_secret
from components.workloads.weights import SCRATCH_MOUNT

ENGINE_PORT = vllm_cli.PORT  # vLLM and Ray Serve both serve the OpenAI API here
SECRET_API_KEY = "vllm-api-key"  # Secret name and ...
SECRET_API_KEY_KEY = "api-key"  # ... key of the engine's API key
SECRET_HF_TOKEN = "hf-token"
SECRET_HF_TOKEN_KEY = "HF_TOKEN"

# Host resources an engine pod requests per GPU, so the scheduler (and Karpenter)
# pick a node that can also feed it: the seed's Ray worker asked 12 CPU / 60 GB for
# one A10G (aws-eks-karpenter.md §4.3); vLLM needs less outside the GPU.
CPU_PER_GPU = 4
MEMORY_GIB_PER_GPU = 24
IMAGE_PULL_SECONDS = 15 * 60  # multi-GB serving images on a fresh node


@dataclass(frozen=True)
class EngineSettings:
    """The sized engine: model, topology, context and the start-up time budget."""

    model: catalog.ModelSpec
    served_name: str
    image: str
    topology: Topology
    max_model_len: int
    max_num_seqs: int | None
    max_num_batched_tokens: int | None
    replicas: int
    extra_args: tuple[str, ...]
    startup_seconds: int  # how long the first start may take (probe and await budget)

    @property
    def tensor_parallel(self) -> int:
        return self.topology.layout.tensor

    @property
    def pipeline_parallel(self) -> int:
        return self.topology.layout.pipeline

    @property
    def gpu_memory_utilization(self) -> float:
        return self.topology.gpu_memory_utilization

    @property
    def kv_cache_dtype(self) -> str:
        return self.topology.kv_cache_dtype

    @property
    def gpus(self) -> int:
        """GPUs of one replica (on ``topology.layout.nodes`` nodes)."""
        return self.topology.layout.gpus

    @property
    def gpus_per_pod(self) -> int:
        """GPUs of one engine pod: the replica's, or one node's share of a replica that
        spans nodes (config makes such a replica take whole nodes)."""
        return self.topology.layout.gpus // self.topology.layout.nodes

    @property
    def serve_options(self) -> vllm_cli.ServeOptions:
        return vllm_cli.ServeOptions(
            model=self.model,
            served_name=self.served_name,
            topology=self.topology,
            max_model_len=self.max_model_len,
            max_num_seqs=self.max_num_seqs,
            max_num_batched_tokens=self.max_num_batched_tokens,
        )

    @property
    def cpu(self) -> str:
        return str(CPU_PER_GPU * self.gpus_per_pod)

    @property
    def memory(self) -> str:
        return f"{MEMORY_GIB_PER_GPU * self.gpus_per_pod}Gi"

    @classmethod
    def from_config(cls, config: StackConfig, from_bucket: bool) -> EngineSettings:
        serving = config.serving
        return cls(
            model=serving.model_spec,
            served_name=serving.served_name,
            image=serving.engine_image,
            topology=config.topology,
            max_model_len=config.max_model_len,
            max_num_seqs=serving.max_num_seqs,
            max_num_batched_tokens=serving.max_num_batched_tokens,
            replicas=serving.replicas,
            extra_args=tuple(serving.extra_args),
            startup_seconds=startup_budget_seconds(serving.model_spec, from_bucket=from_bucket),
        )


def hf_token_env() -> Manifest:
    """``HF_TOKEN`` from the stack's Hugging Face Secret (which exists only when set)."""
    return env_from_secret(SECRET_HF_TOKEN_KEY, SECRET_HF_TOKEN, SECRET_HF_TOKEN_KEY)


def scratch_size_gib(model: catalog.ModelSpec) -> int:
    """Ephemeral scratch that holds one downloaded checkpoint plus caches (10 % + 20 GiB)."""
    return math.ceil(model.checkpoint_bytes * 1.1 / catalog.GIB) + 20


def scratch_volume(gpu: GpuNodes, model: catalog.ModelSpec) -> tuple[Manifest, Manifest]:
    """The engine pod's scratch (downloads, compile caches) and its mount: the pool's
    node-local disk where it has one (kept across pods on that node), else an emptyDir."""
    if gpu.scratch_host_path:
        volume: Manifest = {
            "name": "scratch",
            "hostPath": {"path": f"{gpu.scratch_host_path}/llm-serving", "type": "DirectoryOrCreate"},
        }
    else:
        volume = {"name": "scratch", "emptyDir": {"sizeLimit": f"{scratch_size_gib(model)}Gi"}}
    return volume, {"name": "scratch", "mountPath": SCRATCH_MOUNT}
