"""Rates and durations the cold-start model (components/cold_start.py) is built from.

Each anchor names where it was measured and on what hardware. None was measured on an
A4 High node: they are the best published figures for each step, and the timeouts that
derive from them keep today's budgets as floors until a real A4 log recalibrates them
(README "What a cold start waits for" says which log lines give the real figures).
"""

from __future__ import annotations

from dataclasses import dataclass

GB = 1000**3
GIB = 1024**3
MIB = 1024**2


@dataclass(frozen=True)
class Anchor:
    """One measured (or, where said, estimated) figure: a rate in bytes/s or a duration in s."""

    value: float
    source: str
    hardware: str


# --- image pull ----------------------------------------------------------------------------
# A whole serving image pulled from a public registry on a fresh node (ray-llm, ~the size of
# vllm/vllm-openai): "image pull 2m01s" of a 6m33s cold start.
IMAGE_PULL = Anchor(
    121.0,
    "vllm-serving.md §4.2: awslabs/data-on-eks website/docs/ai-ml/ray-batch-inference.md L181-223",
    "g6e.2xlarge (AWS, up to 20 Gbps), Docker Hub",
)
# The image from the stack's own registry mirror with GKE image streaming: the container
# starts once the files it opens first are there, the rest streams in the background.
IMAGE_STREAMED = Anchor(
    30.0,
    'shared/reference/audit/performance.md §3 ("image streaming (~0.5 min)") [estimate]',
    "GKE image streaming from Artifact Registry (not measured for this image)",
)

# --- weights -------------------------------------------------------------------------------
# Hugging Face Xet: one 5 GB file read cold. vLLM's own download (and `hf download`) fetch
# several files at once, so for a 163-file checkpoint this per-file rate is a floor.
HF_XET_DOWNLOAD = Anchor(
    682e6,
    "shared/reference/audit/performance.md §3 (Hugging Face buckets benchmark, Xet, one file cold)",
    "100 Gbps VM",
)
# Parallel reads of large GCS objects into one VM. GoogleCloudPlatform/gcsfuse
# docs/benchmarks.md, FIO sequential reads: an earlier revision measured 7,741 MiB/s for
# 100 MB files with 128 threads on an n2-standard-96 (100 Gbps); the current one 14.2 GB/s
# for 1 GiB files with 144 jobs on a c4-standard-192 (200 Gbps, gcsfuse v3.4.3). The lower
# is used: the node copy runs ``gcloud storage`` (32 processes x 4 threads, sliced
# downloads), the same JSON-API ranged reads, not gcsfuse; "over 8 GiB/s with parallel
# streams" (beginswithdata.com 2024-02-01, "High throughput file transfers with Google Cloud
# Storage") is of the same order. A4 High's two 200 Gbps gVNICs are not the limit.
GCS_PARALLEL_READ = Anchor(
    7741 * MIB,
    "GoogleCloudPlatform/gcsfuse docs/benchmarks.md (reads, 128 threads; 14.2 GB/s on 200 Gbps today)",
    "n2-standard-96, 100 Gbps, bucket in the same region",
)
# The Run:ai Model Streamer from S3: 15 GB in 4.88 s at concurrency 32 (the audit's figure,
# kept as the lower of two); the project's own benchmark page has Llama-3-8B from S3 in
# 4.24 s, 3.51 GiB/s (run-ai/runai-model-streamer docs/src/benchmarks.md, streamer 0.6.0).
RUNAI_STREAM = Anchor(
    3.1 * GB,
    "shared/reference/audit/performance.md §3; run-ai/runai-model-streamer docs/src/benchmarks.md",
    "g5.12xlarge (4 x A10G, up to 40 Gbps), S3 in-region",
)
# The only Ray Serve LLM figure from a bucket: 15 GiB in 17.8 s (used for Ray's mirror, which
# copies with the cloud SDK and then loads locally).
RAY_MIRROR = Anchor(
    860 * MIB,
    "vllm-serving.md §4.2: awslabs/data-on-eks ray-batch-inference.md L181-223",
    "g6e.2xlarge (AWS, up to 20 Gbps), S3",
)
# Safetensors from local disk / page cache into the GPUs: DeepSeek R1's 163 shards loaded
# in 1m12s at TP 8 with the files already on the node.
LOCAL_LOAD = Anchor(
    72.0,
    "vllm-serving.md §4.2: HabanaAI/vllm-fork#809 (163/163 shards in 1m12s from local disk)",
    "8 x Gaudi, TP 8, local disk",
)
# The R1 checkpoint the LOCAL_LOAD duration was measured on (a rate follows for other models).
LOCAL_LOAD_REFERENCE_BYTES = 688 * GB

# --- engine initialisation -----------------------------------------------------------------
# After the weights: memory profiling and KV sizing 2m17s, CUDA graph capture 35 s, with the
# compile caches warm (a cached compiled graph loads in 2.5 s).
ENGINE_INIT = Anchor(
    137.0 + 35.0,
    "shared/reference/audit/performance.md §3 (R1 log: KV sized 2m17s after load, graphs 35 s)",
    "8 x H200, vLLM 0.11.2, DeepSeek R1-0528 TP 8",
)
# The first start on a node without the JIT caches: DeepGEMM and FlashInfer kernels compiled
# for every shape (~12 minutes in an R1 log), plus torch.compile.
JIT_COMPILE = Anchor(
    12 * 60.0,
    "shared/reference/audit/performance.md §3 (R1 log: ~12 min DeepGEMM/FlashInfer JIT on first run)",
    "8 x B200/H200 class, DeepSeek R1 (log of a first start)",
)
# Restoring the compile/JIT caches from the bucket before the engine starts (a few GB of
# kernels and graphs at the GCS/S3 parallel read rate) [estimate].
JIT_RESTORE = Anchor(30.0, "[estimate] a few GB of caches at bucket read rates", "any")

# Timeouts derived from the model are this many times its worst case: no A4 log has checked
# the model yet, and a timeout that fires on a slow but healthy first start costs a redeploy.
COLD_START_SAFETY_FACTOR = 2.0
