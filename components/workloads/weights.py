"""Where an engine loads its weights from, and what its pod needs for that.

Three loaders (docs/reference/vllm-serving.md §4.2):

* ``huggingface``: download from the Hub at start-up into node-local scratch. The
  fallback when the model cache is off; DeepSeek R1 (~688 GB) takes 30-50 minutes.
* ``gcsfuse`` (GKE): the stack's bucket mounted read-only by the GCS FUSE CSI driver,
  with parallel downloads into a file cache on the node's local SSD. First load runs at
  multi-GB/s instead of the Hub's ~300 MB/s (R1: roughly 10-15 minutes), restarts read
  the SSD cache.
* ``runai-streamer``: vLLM's Run:ai Model Streamer reads safetensors straight from
  ``s3://``/``gs://`` into GPU memory (measured 860 MiB/s for an 8B model on g6e,
  ~18 s; R1 ~13 minutes), no local copy at all.
* ``ray-mirror``: Ray Serve LLM's own path for the ``rayservice`` engine: its
  ``model_source.bucket_uri`` (CloudMirrorConfig) copies the files from the bucket to
  the worker, then vLLM loads them locally (the 8B model's 16 GB in well under a
  minute at S3 speeds, instead of minutes from the Hub).

The model cache Job (``model_cache.py``) writes a marker object after the last file;
an engine that loads from the bucket waits for it in an init container, so it never
starts on a half-copied model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pulumi

from components.catalog import ModelSpec
from components.config import ModelCacheConfig
from components.platform import Manifest, ModelStore
from components.vllm_cli import loader_args
from components.workloads.common import concat, env, script_container, store_env

Loader = Literal["huggingface", "gcsfuse", "runai-streamer", "ray-mirror"]

MARKER = ".llm-serving-complete"  # written by the cache Job after the last file
BUCKET_MOUNT = "/bucket"
SCRATCH_MOUNT = "/scratch"  # node-local disk: downloads, compile caches
HF_HOME = f"{SCRATCH_MOUNT}/hf"

# GCS FUSE options for a read-mostly model directory (gcp-a4high.md §5.2; GKE "Optimize
# Cloud Storage FUSE CSI driver performance"): cache metadata and whole files without
# limits, fill the file cache with parallel ranged downloads.
GCSFUSE_MOUNT_OPTIONS = (
    "implicit-dirs",
    "metadata-cache:ttl-secs:-1",
    "metadata-cache:stat-cache-max-size-mb:-1",
    "metadata-cache:type-cache-max-size-mb:-1",
    "file-cache:max-size-mb:-1",
    "file-cache:cache-file-for-range-read:true",
    "file-cache:enable-parallel-downloads:true",
)


def weights_key(model: ModelSpec) -> str:
    """Object prefix of a model in the stack's bucket."""
    return f"models/{model.hf_id}"


def choose_loader(cache: ModelCacheConfig, store: ModelStore | None, engine_loader: Loader | None = None) -> Loader:
    """``engine_loader``: an engine with its own way to read the bucket (Ray's mirror) always
    uses it; otherwise ``auto`` is GCS FUSE where the cluster has the CSI driver (GKE),
    else the streamer."""
    if not cache.enabled or store is None:
        return "huggingface"
    if engine_loader is not None:
        return engine_loader
    if cache.loader != "auto":
        return cache.loader
    return "gcsfuse" if store.fuse_csi_driver else "runai-streamer"


@dataclass(frozen=True)
class WeightsPlan:
    loader: Loader
    model_arg: pulumi.Input[str]  # what `vllm serve` (or Ray's model_source) is given
    vllm_args: tuple[str, ...] = ()
    env: tuple[Manifest, ...] = ()
    volumes: tuple[Manifest, ...] = ()
    mounts: tuple[Manifest, ...] = ()
    pod_annotations: dict[str, str] = field(default_factory=dict)
    wait_for_cache: Manifest | None = None  # init container

    @property
    def from_bucket(self) -> bool:
        return self.loader != "huggingface"

    @property
    def mounted(self) -> bool:
        """The weights are files in the pod at ``model_arg`` (a mounted bucket or volume store)."""
        return bool(self.mounts)


def wait_for_cache_container(store: ModelStore, marker_url: pulumi.Input[str]) -> Manifest:
    """An init container that blocks until the cache Job has written its marker."""
    script = concat(
        "until ",
        store.exists_command("$MARKER"),
        "; do\n",
        '  echo "waiting for the model cache ($MARKER)"; sleep 30\n',
        "done\n",
    )
    return script_container(
        "wait-for-model-cache",
        store.cli_image,
        script,
        env=[env("MARKER", marker_url), *store_env(store)],
        mounts=store.mounts(read_only=True),
        requests={"cpu": "50m", "memory": "256Mi"},
    )


def plan_weights(
    model: ModelSpec,
    loader: Loader,
    store: ModelStore | None,
    bucket: pulumi.Input[str],
    tensor_parallel: int,
) -> WeightsPlan:
    """How the engine gets ``model`` with ``loader``; ``bucket`` is the bucket's name."""
    if loader == "huggingface" or store is None:
        return WeightsPlan(
            loader="huggingface",
            model_arg=model.hf_id,
            vllm_args=loader_args("huggingface", f"{HF_HOME}/hub", tensor_parallel),
        )
    key = weights_key(model)
    wait = wait_for_cache_container(store, store.address(bucket, key, MARKER))
    if store.scheme == "file":
        # A volume store: the files are where the claim is mounted (read-only). The streamer
        # reads local paths too, with many threads (vLLM docs, Run:ai Model Streamer page:
        # `vllm serve /path --load-format runai_streamer`; vllm-serving.md §4.2 has it 3x
        # faster than the default loader from local disk); Ray gets the path, not a bucket.
        return WeightsPlan(
            loader=loader,
            model_arg=store.address(bucket, key),
            vllm_args=loader_args(loader, f"{HF_HOME}/hub", tensor_parallel),
            volumes=tuple(store.pod_volumes(read_only=True)),
            mounts=tuple(store.mounts(read_only=True)),
            wait_for_cache=wait,
        )
    if loader == "ray-mirror":
        return WeightsPlan(
            loader=loader,
            model_arg=store.address(bucket, key),
            env=tuple(store_env(store)),
            wait_for_cache=wait,
        )
    if loader == "gcsfuse":
        if not store.fuse_csi_driver:
            raise ValueError("the gcsfuse loader needs a platform with the GCS FUSE CSI driver")
        volume = {
            "name": "weights",
            "csi": {
                "driver": store.fuse_csi_driver,
                "readOnly": True,
                "volumeAttributes": {"bucketName": bucket, "mountOptions": ",".join(GCSFUSE_MOUNT_OPTIONS)},
            },
        }
        # The driver's sidecar keeps its file cache in this volume: an emptyDir on the
        # node's ephemeral storage, which is local SSD on A4 High.
        cache = ({"name": store.fuse_cache_volume, "emptyDir": {}},) if store.fuse_cache_volume else ()
        return WeightsPlan(
            loader=loader,
            model_arg=f"{BUCKET_MOUNT}/{key}",
            volumes=(volume, *cache),
            mounts=({"name": "weights", "mountPath": BUCKET_MOUNT, "readOnly": True},),
            pod_annotations=dict(store.fuse_pod_annotations),
            wait_for_cache=wait,
        )
    return WeightsPlan(
        loader=loader,
        model_arg=store.address(bucket, key),
        vllm_args=loader_args(loader, f"{HF_HOME}/hub", tensor_parallel),
        env=tuple(store_env(store)),
        wait_for_cache=wait,
    )
