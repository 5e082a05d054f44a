"""Where an engine loads its weights from, and what its pod needs for that.

The loaders (docs/reference/vllm-serving.md §4.2):

* ``huggingface``: download from the Hub at start-up into node-local scratch. The
  fallback when the model cache is off; DeepSeek R1 (~688 GB) takes 30-50 minutes.
* ``gcsfuse`` (GKE): the stack's bucket mounted read-only by the GCS FUSE CSI driver,
  with parallel downloads into a file cache on the node's local SSD, and vLLM's
  ``--safetensors-load-strategy prefetch`` (0.33.0 ``config/load.py``: files read into the
  page cache before the workers load them, instead of every rank's random mmap reads through
  FUSE). A container restart reads the SSD cache; a new pod downloads again.
* ``runai-streamer``: vLLM's Run:ai Model Streamer reads safetensors straight from
  ``s3://``/``gs://`` into GPU memory (measured 860 MiB/s for an 8B model on g6e,
  ~18 s; R1 ~13 minutes), no local copy at all.
* ``node-cache``: a copy of the bucket's model on the node's local SSD (the pool's
  scratch hostPath: GKE's local SSD, EKS's instance-store NVMe RAID0), filled by an init
  container with the cloud CLI's parallel download (``gcloud storage rsync``, ``aws s3
  sync``), under a lock and with a completion marker, then loaded by vLLM
  from NVMe. A pod re-created on the same node finds the copy and starts reading at once.
  GCS FUSE cannot give that: its file cache is indexed in memory per mount (gcsfuse
  ``internal/fs/fs.go`` createSingleMountFileCacheHandler builds a new LRU on every mount,
  so files left by an earlier mount are downloaded again) and the CSI driver's cache is an
  emptyDir of the pod.
* ``ray-mirror``: Ray Serve LLM's own path for the ``rayservice`` engine: its
  ``model_source.bucket_uri`` (CloudMirrorConfig) copies the files from the bucket to
  the worker, then vLLM loads them locally (the 8B model's 16 GB in well under a
  minute at S3 speeds, instead of minutes from the Hub).

Not built: per-rank pre-sharded checkpoints (``--load-format sharded_state`` or
``runai_streamer_sharded``). They must be written by a process that holds the GPUs with
the exact TP/PP/EP layout (vLLM's ``save_sharded_state`` example, not ``vllm serve``), are
valid for that layout and vLLM release only, and would double the first start with a
688 GB upload; with the node copy the load is already about a minute from NVMe and the
page cache, so the JIT, not the weights, dominates a start (components/cold_start.py).

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

Loader = Literal["huggingface", "gcsfuse", "runai-streamer", "ray-mirror", "node-cache"]

MARKER = ".llm-serving-complete"  # written by the cache Job after the last file
BUCKET_MOUNT = "/bucket"
SCRATCH_MOUNT = "/scratch"  # node-local disk: downloads, compile caches
HF_HOME = f"{SCRATCH_MOUNT}/hf"
NODE_MODELS = f"{SCRATCH_MOUNT}/models"  # the node-cache loader's copies, one folder per model
NODE_MARKER = ".llm-serving-node-copy"  # the bucket marker's content, written after the last file
# gcloud storage parallelism for the node copy (storage/process_count, thread_count,
# sliced_object_download_max_components; Cloud Storage "tune gcloud performance"): R1's 163
# files of ~4.3 GB download 32 at a time, each in slices, to fill two 200 Gbps NICs.
NODE_FILL_ENV = {
    "CLOUDSDK_STORAGE_PROCESS_COUNT": "32",
    "CLOUDSDK_STORAGE_THREAD_COUNT": "4",
    "CLOUDSDK_STORAGE_SLICED_OBJECT_DOWNLOAD_MAX_COMPONENTS": "8",
}
NODE_FILL_REQUESTS = {"cpu": "32", "memory": "32Gi"}  # an init container: not added to the engine's
# aws s3 sync's concurrency for the node copy (our setting; the CLI's default is 10): the
# `s3.max_concurrent_requests` value of the CLI's config, written with `aws configure set`
# (AWS CLI topic s3-config, aws/aws-cli awscli/topics/s3-config.rst). It applies to the
# classic transfer client; on p4d, p4de and p5 the CLI picks the CRT client by itself
# (preferred_transfer_client auto), which ignores it and aims at the NIC's bandwidth.
NODE_FILL_S3_CONCURRENCY = 64
# The node copy's lock where the CLI image may lack flock (the AWS CLI image is Amazon Linux
# with less and groff added; util-linux is not verified): a folder made with mkdir (atomic),
# kept fresh by its holder; one left by a killed holder is taken over once stale.
NODE_FILL_LOCK_HEARTBEAT_S = 30
NODE_FILL_LOCK_STALE_S = 180

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


def choose_loader(
    cache: ModelCacheConfig,
    store: ModelStore | None,
    engine_loader: Loader | None = None,
    node_scratch: bool = False,
) -> Loader:
    """``engine_loader``: an engine with its own way to read the bucket (Ray's mirror) always
    uses it. Otherwise ``auto`` is the node copy where the GPU pool has node-local scratch
    (``node_scratch``: A4 High's local SSD, EKS instance-store NVMe) and the store is the
    cloud's own bucket, since only it survives the pod; then GCS FUSE where the cluster has
    the CSI driver (GKE); else the Run:ai streamer (S3-compatible stores, volumes, pools
    without node-local disk)."""
    if not cache.enabled or store is None:
        return "huggingface"
    if engine_loader is not None:
        return engine_loader
    if cache.loader != "auto":
        return cache.loader
    if node_scratch and store.scheme != "file" and store.endpoint_url is None:
        return "node-cache"
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
    fill_node_cache: Manifest | None = None  # init container, after wait_for_cache

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


def node_copy_dir(model: ModelSpec) -> str:
    """The node-cache loader's folder for ``model`` under the engine's scratch mount: the
    bucket's layout (``models/<org>/<name>``), so the path ends in the model's id."""
    return f"{NODE_MODELS}/{model.hf_id}"


def fill_script(store: ModelStore, model: ModelSpec) -> str:
    """Make the node's copy of the model current, under a lock; the copy is current when its
    marker holds the bucket marker's content (which the cache Job writes once per copy, so a
    re-cached model is fetched again: rsync then moves only what changed). Other models'
    folders go first, so the local SSD holds one checkpoint."""
    folder = node_copy_dir(model)
    lock = f"{NODE_MODELS}/.{model.hf_id.replace('/', '--')}.lock"
    return f"""set -eu
mkdir -p {NODE_MODELS}
echo "$(date -u +%H:%M:%S) waiting for the node copy's lock"
{_lock_lines(store, lock)}
want="$({store.cat_command(f"$MODEL_URL/{MARKER}")})"
if [ -f {folder}/{NODE_MARKER} ] && [ "$(cat {folder}/{NODE_MARKER})" = "$want" ]; then
  echo "$(date -u +%H:%M:%S) node copy current: {folder} ($(du -sh {folder} | cut -f1))"; exit 0
fi
for other in {NODE_MODELS}/*/*; do
  if [ -d "$other" ] && [ "$other" != {folder} ]; then echo "removing $other"; rm -rf "$other"; fi
done
for org in {NODE_MODELS}/*/; do rmdir "$org" 2>/dev/null || true; done
mkdir -p {folder}
rm -f {folder}/{NODE_MARKER}
start=$(date +%s)
echo "$(date -u +%H:%M:%S) copying $MODEL_URL to {folder}"
{_tune_download(store)}{store.download_command("$MODEL_URL", folder)}
printf '%s' "$want" > {folder}/{NODE_MARKER}
echo "$(date -u +%H:%M:%S) node copy filled in $(( $(date +%s) - start )) s ($(du -sh {folder} | cut -f1))"
"""


def _lock_lines(store: ModelStore, lock: str) -> str:
    """Take the node copy's lock for the rest of the script. gcloud's image (Debian) has
    flock, released by the kernel whatever ends the holder; elsewhere a mkdir lock with a
    heartbeat, so only coreutils are needed."""
    if store.scheme == "gs":
        return f"exec 9>{lock}\nflock 9"
    held = f"{lock}.d"
    return f"""until mkdir {held} 2>/dev/null; do
  age=$(( $(date +%s) - $(stat -c %Y {held} 2>/dev/null || date +%s) ))
  if [ "$age" -gt {NODE_FILL_LOCK_STALE_S} ]; then
    echo "taking over a stale lock ($age s old)"; rmdir {held} 2>/dev/null || true; continue
  fi
  sleep 5
done
( while sleep {NODE_FILL_LOCK_HEARTBEAT_S}; do touch {held}; done ) &
heartbeat=$!
trap 'kill $heartbeat 2>/dev/null; rmdir {held}' EXIT"""


def _fill_env(store: ModelStore) -> dict[str, str]:
    return NODE_FILL_ENV if store.scheme == "gs" else {}


def _tune_download(store: ModelStore) -> str:
    """Settings the node copy's download needs before it runs (gcloud's come as env)."""
    if store.scheme == "s3" and store.endpoint_url is None:
        return f"aws configure set default.s3.max_concurrent_requests {NODE_FILL_S3_CONCURRENCY}\n"
    return ""


def fill_node_cache_container(store: ModelStore, model: ModelSpec, model_url: pulumi.Input[str]) -> Manifest:
    """The init container that fills the node copy; it shares the engine's scratch volume."""
    return script_container(
        "fill-node-cache",
        store.cli_image,
        fill_script(store, model),
        env=[env("MODEL_URL", model_url), *store_env(store), *(env(k, v) for k, v in _fill_env(store).items())],
        mounts=[{"name": "scratch", "mountPath": SCRATCH_MOUNT}],
        requests=NODE_FILL_REQUESTS,
        shell="/bin/bash",
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
    if loader == "node-cache":
        return WeightsPlan(
            loader=loader,
            model_arg=node_copy_dir(model),
            vllm_args=loader_args(loader, f"{HF_HOME}/hub", tensor_parallel),
            wait_for_cache=wait,
            fill_node_cache=fill_node_cache_container(store, model, store.address(bucket, key)),
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
            vllm_args=loader_args(loader, f"{HF_HOME}/hub", tensor_parallel),
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
