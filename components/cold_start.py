"""How long an engine takes from "pod scheduled" to "answers /health", as a pure model.

Four phases, each from a named anchor in components/catalog/cold_start.py:

* **image**: pulling the engine image (none when the node already has it);
* **fill**: copying the weights onto the node before the engine starts (the ``node-cache``
  loader's init container; nothing for the others);
* **load**: the engine reading the weights into the GPUs: a download or a stream from
  where the loader reads, then the safetensors into GPU memory;
* **init**: memory profiling, KV sizing and CUDA graphs, plus the DeepGEMM/FlashInfer/
  torch.compile JIT when no compile cache is there (or its restore from the bucket).

Per state of the node and the caches:

* ``first-ever``: a fresh node and no compile cache anywhere (the first ``up``);
* ``fresh-node``: a new node (replacement, scale-up); the bucket holds the model and,
  where the stack keeps them there, the compile caches;
* ``warm-node``: a new pod on a node that ran the engine before (rollout, eviction);
* ``pod-restart``: the engine container restarts inside its pod (crash, liveness).

Two inputs belong to other parts of the stack and are taken explicitly: whether the image
comes through the stack's registry mirror with image streaming, and where compile/JIT
caches survive (``none``; ``node``: a hostPath on the node; ``bucket``: on the node and
also saved to the bucket, restored on a new node: the values of the compile cache's
``StackConfig.compile_cache_store``).

The figures are estimates for planning; the timeouts derived from them
(``engine_timeout_seconds``) are the worst state times ``COLD_START_SAFETY_FACTOR`` and
never below the budgets the program used before this model (``sizing.startup_budget_seconds``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from components.catalog import ModelSpec
from components.catalog import cold_start as anchors
from components.sizing import startup_budget_seconds

State = Literal["first-ever", "fresh-node", "warm-node", "pod-restart"]
STATES: tuple[State, ...] = ("first-ever", "fresh-node", "warm-node", "pod-restart")
CompileCache = Literal["none", "node", "bucket"]
# Loaders that keep the weights on the node between pods (a hostPath), and those that keep
# them for the pod's lifetime only (an emptyDir: the GCS FUSE file cache, Ray's mirror).
POD_LOCAL = frozenset({"gcsfuse", "ray-mirror"})


@dataclass(frozen=True)
class ColdStartInputs:
    model: ModelSpec
    loader: str  # components/workloads/weights.py Loader
    bucket_scheme: str | None  # "gs" / "s3", or None without a bucket
    # The engine's scratch (Hugging Face cache, node weights cache) is a hostPath that
    # outlives the pod (local SSD on A4 High), rather than an emptyDir.
    node_scratch: bool
    image_streaming: bool = False  # registry mirror + image streaming (registry helper's keys)
    compile_cache: CompileCache = "none"  # where JIT/compile caches survive (jitcache helper's keys)


@dataclass(frozen=True)
class StateEstimate:
    state: State
    image_seconds: float
    fill_seconds: float  # init container, before the engine starts
    load_seconds: float  # inside the engine container
    init_seconds: float  # inside the engine container

    @property
    def engine_seconds(self) -> float:
        """What the startup probe and VLLM_ENGINE_READY_TIMEOUT_S must allow."""
        return self.load_seconds + self.init_seconds

    @property
    def total_seconds(self) -> float:
        return self.image_seconds + self.fill_seconds + self.engine_seconds


@dataclass(frozen=True)
class ColdStart:
    inputs: ColdStartInputs
    states: tuple[StateEstimate, ...]

    def state(self, name: State) -> StateEstimate:
        return next(s for s in self.states if s.state == name)

    @property
    def worst(self) -> StateEstimate:
        return max(self.states, key=lambda s: s.total_seconds)

    @property
    def engine_timeout_seconds(self) -> int:
        """Startup probe and the engine's own ready timeout: the worst in-container time
        times the safety factor, whole minutes, never below the budget used before."""
        worst = max(s.engine_seconds for s in self.states)
        modeled = _minutes_up(anchors.COLD_START_SAFETY_FACTOR * worst)
        floor = startup_budget_seconds(self.inputs.model, from_bucket=self.inputs.loader != "huggingface")
        return max(floor, modeled)

    @property
    def fill_timeout_seconds(self) -> int:
        """What the init containers before the engine may take on top (node cache fill)."""
        return _minutes_up(anchors.COLD_START_SAFETY_FACTOR * max(s.fill_seconds for s in self.states))

    def summary(self) -> dict[str, object]:
        """The stack output: minutes per state, the inputs and the derived timeout."""
        i = self.inputs
        return {
            "loader": i.loader,
            "image_streaming": i.image_streaming,
            "compile_cache": i.compile_cache,
            "modeled_minutes": {s.state: round(s.total_seconds / 60, 1) for s in self.states},
            "engine_timeout_minutes": self.engine_timeout_seconds // 60,
            "safety_factor": anchors.COLD_START_SAFETY_FACTOR,
        }


def _minutes_up(seconds: float) -> int:
    return math.ceil(seconds / 60) * 60


def local_load_seconds(model: ModelSpec) -> float:
    """Safetensors from the node's disk or page cache into the GPUs (the R1 anchor, scaled)."""
    return anchors.LOCAL_LOAD.value * model.checkpoint_bytes / anchors.LOCAL_LOAD_REFERENCE_BYTES


def bucket_read_rate(scheme: str | None) -> float:
    """Parallel reads from the stack's bucket into the node. From S3 (the EKS node copy,
    ``aws s3 sync``) the Run:ai streamer's S3 figure: no published AWS CLI figure with its
    hardware named was found, so the catalog's S3 rate stands until a real log replaces it."""
    return anchors.GCS_PARALLEL_READ.value if scheme == "gs" else anchors.RUNAI_STREAM.value


def _weights(i: ColdStartInputs, state: State) -> tuple[float, float]:
    """(fill, load) seconds for the weights in ``state``."""
    size, local = i.model.checkpoint_bytes, local_load_seconds(i.model)
    on_node = state in ("warm-node", "pod-restart") and i.node_scratch
    if i.loader == "node-cache":
        return (0.0 if on_node else size / bucket_read_rate(i.bucket_scheme)), local
    if i.loader == "huggingface":
        return 0.0, local + (0.0 if on_node else size / anchors.HF_XET_DOWNLOAD.value)
    if i.loader == "runai-streamer":  # no local copy: every start streams the bucket
        return 0.0, size / anchors.RUNAI_STREAM.value
    # GCS FUSE's file cache and Ray's mirror live in the pod's emptyDir: a container
    # restart reuses them, a new pod reads the bucket again.
    rate = anchors.RAY_MIRROR.value if i.loader == "ray-mirror" else anchors.GCS_PARALLEL_READ.value
    return 0.0, local + (0.0 if state == "pod-restart" else size / rate)


def _jit(i: ColdStartInputs, state: State) -> float:
    """JIT/compile seconds: all of it without a cache, a restore on a new node when the
    bucket keeps one, nothing where the node kept it."""
    if state == "first-ever" or i.compile_cache == "none":
        return anchors.JIT_COMPILE.value
    if state == "fresh-node":
        return anchors.JIT_RESTORE.value if i.compile_cache == "bucket" else anchors.JIT_COMPILE.value
    return 0.0


def estimate(inputs: ColdStartInputs) -> ColdStart:
    # The mirror fetches a tag from Docker Hub on its first pull, about as slowly as a direct
    # pull (GKE image streaming docs: the first pull may not be faster); later nodes stream it.
    streamed = anchors.IMAGE_STREAMED.value if inputs.image_streaming else anchors.IMAGE_PULL.value
    states = []
    for state in STATES:
        fill, load = _weights(inputs, state)
        states.append(
            StateEstimate(
                state=state,
                image_seconds={"first-ever": anchors.IMAGE_PULL.value, "fresh-node": streamed}.get(state, 0.0),
                fill_seconds=fill,
                load_seconds=load,
                init_seconds=anchors.ENGINE_INIT.value + _jit(inputs, state),
            )
        )
    return ColdStart(inputs, tuple(states))


def format_cold_start(cold: ColdStart) -> str:
    """The plan's cold-start table (minutes)."""
    i = cold.inputs
    lines = [
        f"loader {i.loader}; image {'mirror + streaming' if i.image_streaming else 'pulled from its registry'}; "
        f"compile/JIT cache: {i.compile_cache}; weights kept on the node: {'yes' if i.node_scratch else 'no'}",
        "  state         image   fill   load   init  total (min)",
    ]
    lines += [
        f"  {s.state:<12} {s.image_seconds / 60:6.1f} {s.fill_seconds / 60:6.1f} {s.load_seconds / 60:6.1f} "
        f"{s.init_seconds / 60:6.1f} {s.total_seconds / 60:6.1f}"
        for s in cold.states
    ]
    lines.append(
        f"  engine timeout {cold.engine_timeout_seconds // 60} min (startup probe, engine ready timeout): "
        f"{anchors.COLD_START_SAFETY_FACTOR:g} x the worst load + init, never below the pre-model budget"
    )
    return "\n".join(lines)
