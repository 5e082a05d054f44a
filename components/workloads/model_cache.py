"""The model cache: a Job that copies a model from Hugging Face into the stack's bucket once.

Three steps in one pod, sharing a scratch volume in which each model has its own work
folder (``/work/<org>--<name>``):

1. ``check`` (cloud CLI): clears what earlier runs left (this model's skip flag, and
   every other model's folder: on GKE the scratch is a hostPath that outlives the Job),
   then flags the model as cached if ``models/<id>/.llm-serving-complete`` exists; a
   rerun of the Job is then a no-op.
2. ``download`` (the vLLM image, which ships the ``hf`` CLI): download the repository
   into the model's folder (``original/`` consolidated checkpoints excluded: engines read
   the safetensors), logging its settings, then progress every minute (share, rate,
   time left) and the average rate at the end.
3. ``upload`` (cloud CLI): sync the files to the bucket, write the marker last, so an
   engine waiting on it never sees a half-copied model, then delete the local copy.

A failed upload leaves the download and its ``.cache`` (the Hub's per-file metadata) in
place, so the Job's next attempt on the same node resumes instead of starting over;
``.cache`` itself is never uploaded. Scratch is node-local SSD when the platform has it
(GKE A4 High: the Job then runs on the GPU node without taking a GPU) and an ephemeral
volume otherwise.
"""

from __future__ import annotations

import json
import math
import shlex

import pulumi

from components.catalog import GB, HF_DOWNLOAD_BYTES_PER_S, VLLM_IMAGE, ModelSpec
from components.platform import GpuNodes, Manifest, ModelStore
from components.sizing import cache_job_deadline_seconds
from components.workloads.common import (
    NON_ROOT_UID,
    TMP_VOLUME,
    env,
    gpu_pod_fields,
    hardened_pod,
    metadata,
    script_container,
    selector,
    store_env,
)
from components.workloads.engine import hf_token_env, scratch_size_gib
from components.workloads.needs import WorkloadNeeds
from components.workloads.weights import MARKER, weights_key

NAME = "model-cache"
WORK = "/work"
# What `hf download --local-dir` keeps beside the files (huggingface_hub 2.4.0
# `_local_folder.py`: `<local_dir>/.cache/huggingface/`): lets a retry skip finished files.
HUB_METADATA = ".cache"
PROGRESS_SECONDS = 60
# Files `hf download` fetches at once (huggingface_hub 2.4.0 `cli/download.py`
# `--max-workers`, default 8); R1 has 163 shards of ~4.3 GB, so more in flight fill the NIC.
DOWNLOAD_WORKERS = 16
# huggingface_hub 2.4.0 `constants.py`: `HF_XET_HIGH_PERFORMANCE` (the successor of
# hf_transfer) lets hf_xet use more concurrency and memory. Set only where the Job runs on
# a GPU node with hundreds of GB of RAM: on small nodes it has been seen to OOM.
XET_HIGH_PERFORMANCE = {"HF_XET_HIGH_PERFORMANCE": "1"}


def work_dir(model: ModelSpec) -> str:
    """The model's own folder in scratch: one model's files never mix with another's."""
    return f"{WORK}/{model.hf_id.replace('/', '--')}"


def check_script(store: ModelStore, state: str) -> str:
    """Clear what earlier runs left, then flag the model as cached if the marker exists."""
    exists = store.exists_command(f"$MODEL_URL/{MARKER}")
    return f"""set -e
for entry in {WORK}/* {WORK}/.[!.]*; do
  if [ -e "$entry" ] && [ "$entry" != {state} ]; then
    echo "removing $entry (left by an earlier run)"; rm -rf "$entry"
  fi
done
rm -f {state}/cached
mkdir -p {state}
if {exists}; then
  echo "$MODEL_URL is already cached"; rm -rf {state}/model; touch {state}/cached
else
  echo "$MODEL_URL is not cached yet"
fi
"""


def download_script(model: ModelSpec, state: str) -> str:
    """``hf download`` into the model's folder, saying up front what it runs with and what
    the model expects, then a line every ``PROGRESS_SECONDS``: what is on disk, its share
    of the checkpoint, the rate over the last interval and the time left at that rate; and
    the average at the end. (The CLI's own progress bars are off: in a pod log they are
    one endless line.) ``du`` counts files still being written, so the lines move while
    the shards arrive."""
    total = model.checkpoint_bytes
    size = f"{total / GB:.0f} GB"
    modeled = math.ceil(total / HF_DOWNLOAD_BYTES_PER_S / 60)
    deadline = math.ceil(cache_job_deadline_seconds(model) / 60)
    rate = f"{HF_DOWNLOAD_BYTES_PER_S / 1e6:.0f} MB/s"
    gigabytes = "$(( $1 / 1000000000 )).$(( $1 / 100000000 % 10 )) GB"
    return f"""set -e
if [ -f {state}/cached ]; then echo "already cached, nothing to download"; exit 0; fi
mkdir -p {state}/model
echo "downloading {model.hf_id} (~{size}): {DOWNLOAD_WORKERS} files at a time," \\
  "Xet high-performance mode ${{HF_XET_HIGH_PERFORMANCE:-0}}; modeled ~{modeled} min at {rate}," \\
  "the Job's deadline (download and upload) {deadline} min"
on_disk() {{ echo $(( $(du -sk {state}/model | cut -f1) * 1024 )); }}
gb() {{ echo "{gigabytes}"; }}
( last=$(on_disk)
  while sleep {PROGRESS_SECONDS}; do
    now=$(on_disk); rate=$(( (now - last) / {PROGRESS_SECONDS} )); last=$now
    if [ "$rate" -gt 0 ]; then left="~$(( ({total} - now) / rate / 60 + 1 )) min left"; else left="no progress"; fi
    echo "$(date -u +%H:%M:%S) downloaded $(gb "$now") of ~{size} ($(( 100 * now / {total} ))%)," \\
      "$(( rate / 1000000 )) MB/s, $left"
  done ) &
PROGRESS=$!
trap 'kill $PROGRESS 2>/dev/null' EXIT
start=$(date +%s)
hf download {shlex.quote(model.hf_id)} --local-dir {state}/model --exclude 'original/*' \\
  --max-workers {DOWNLOAD_WORKERS}
seconds=$(( $(date +%s) - start )); now=$(on_disk)
echo "downloaded $(gb "$now") in $(( seconds / 60 )) min $(( seconds % 60 )) s," \\
  "$(( now / (seconds > 0 ? seconds : 1) / 1000000 )) MB/s on average"
"""


def upload_script(store: ModelStore, model: ModelSpec, state: str) -> str:
    """Files, then the marker, then (only then) the local copy and its Hub metadata go."""
    marker = json.dumps({"model": model.hf_id, "writer": "llm-serving model-cache"})
    upload = store.upload_command(f"{state}/model", "$MODEL_URL", exclude_dir=HUB_METADATA)
    return f"""set -e
if [ -f {state}/cached ]; then rm -rf {state}; echo "already cached"; exit 0; fi
{upload}
echo {shlex.quote(marker)} > {state}/marker
{store.write_command(f"{state}/marker", f"$MODEL_URL/{MARKER}")}
rm -rf {state}
echo "cached $MODEL_URL"
"""


def model_cache_needs() -> WorkloadNeeds:
    """Serves nothing; reaches Hugging Face and the bucket over HTTPS as the writer account."""
    return WorkloadNeeds(name=NAME, selector=selector(NAME), internet_egress=True, cloud_identity=True)


def model_cache_job(
    namespace: str,
    model: ModelSpec,
    store: ModelStore,
    bucket: pulumi.Input[str],
    gpu: GpuNodes,
    service_account: str,
    hf_token: bool,
) -> Manifest:
    key = weights_key(model)
    url = store.address(bucket, key)
    state = work_dir(model)
    cli_env = [env("MODEL_URL", url), *store_env(store, service_account)]
    upload_env = [*cli_env, *(env(k, v) for k, v in store.uploader_env.items())]
    # HF_HOME in the model's folder: hf_xet's chunk cache is deleted with the copy.
    download_env = [env("HF_HOME", f"{state}/hf-home"), env("HF_HUB_DISABLE_PROGRESS_BARS", "1")]
    if gpu.scratch_host_path:
        download_env += [env(k, v) for k, v in XET_HIGH_PERFORMANCE.items()]
    if hf_token:
        download_env.append(hf_token_env())

    work_mount = {"name": "work", "mountPath": WORK}
    store_mounts = store.mounts(read_only=False)  # a volume store; none for buckets
    pod_spec: Manifest = {
        "serviceAccountName": service_account,
        "restartPolicy": "Never",
        "initContainers": [
            script_container(
                "check",
                store.cli_image,
                check_script(store, state),
                env=cli_env,
                mounts=[work_mount, *store_mounts],
                requests={"cpu": "100m", "memory": "256Mi"},
                read_only_root=True,
            ),
            script_container(
                "download",
                VLLM_IMAGE.ref,
                download_script(model, state),
                env=download_env,
                mounts=[work_mount],
                requests={"cpu": "4", "memory": "16Gi"},
                shell="/bin/bash",
                read_only_root=True,
            ),
        ],
        "containers": [
            script_container(
                "upload",
                store.cli_image,
                upload_script(store, model, state),
                env=upload_env,
                mounts=[work_mount, *store_mounts],
                requests={"cpu": "4", "memory": "8Gi"},
                read_only_root=True,
            ),
        ],
    }
    if gpu.scratch_host_path:
        # Run beside the engine on the GPU node (no GPU requested) to use its local SSD.
        # As the images' default root: the kubelet creates the hostPath root-owned and
        # fsGroup does not apply to hostPath volumes.
        pod_spec.update(gpu_pod_fields(gpu), **hardened_pod())
        pod_spec["volumes"] = [
            {"name": "work", "hostPath": {"path": f"{gpu.scratch_host_path}/model-cache", "type": "DirectoryOrCreate"}},
            TMP_VOLUME,
            *store.pod_volumes(read_only=False),
        ]
    else:
        pod_spec.update(hardened_pod(run_as=NON_ROOT_UID))
        pod_spec["volumes"] = [
            {"name": "work", "emptyDir": {"sizeLimit": f"{scratch_size_gib(model)}Gi"}},
            TMP_VOLUME,
            *store.pod_volumes(read_only=False),
        ]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata(NAME, namespace, "model-cache"),
        "spec": {
            "backoffLimit": 3,
            "activeDeadlineSeconds": cache_job_deadline_seconds(model),
            "template": {"metadata": {"labels": metadata(NAME, None, "model-cache")["labels"]}, "spec": pod_spec},
        },
    }
