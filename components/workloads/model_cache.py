"""The model cache: a Job that copies a model from Hugging Face into the stack's bucket once.

Three steps in one pod, sharing a scratch volume:

1. ``check`` (cloud CLI): if ``models/<id>/.llm-serving-complete`` exists, note it and
   skip everything else; a rerun of the Job is a no-op.
2. ``download`` (the vLLM image, which ships the ``hf`` CLI): download the repository
   to scratch (``original/`` consolidated checkpoints excluded: engines read the
   safetensors).
3. ``upload`` (cloud CLI): sync the files to the bucket, then write the marker last,
   so an engine waiting on it never sees a half-copied model.

Scratch is node-local SSD when the platform has it (GKE A4 High: the Job then runs on
the GPU node without taking a GPU) and an ephemeral volume otherwise.
"""

from __future__ import annotations

import json
import shlex

import pulumi

from components.catalog import VLLM_IMAGE, ModelSpec
from components.platform import GpuNodes, Manifest, ModelStore
from components.sizing import cache_job_deadline_seconds
from components.workloads.common import (
    NON_ROOT_UID,
    TMP_VOLUME,
    concat,
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
SKIP_FLAG = f"{WORK}/already-cached"


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
    url = concat(f"{store.scheme}://", bucket, f"/{key}")
    marker = json.dumps({"model": model.hf_id, "writer": "llm-serving model-cache"})
    cli_env = [env("MODEL_URL", url), *store_env(store)]

    check = (
        f"if {store.exists_command(f'$MODEL_URL/{MARKER}')}; then\n"
        f'  echo "$MODEL_URL is already cached"; touch {SKIP_FLAG}\n'
        "fi\n"
    )
    download = (
        "set -e\n"
        f"if [ -f {SKIP_FLAG} ]; then exit 0; fi\n"
        f"hf download {shlex.quote(model.hf_id)} --local-dir {WORK}/model --exclude 'original/*'\n"
        f"rm -rf {WORK}/model/.cache\n"  # the hub's download metadata, not model files
    )
    upload = (
        "set -e\n"
        f"if [ -f {SKIP_FLAG} ]; then exit 0; fi\n"
        f"{store.upload_command(f'{WORK}/model', '$MODEL_URL')}\n"
        f"echo {shlex.quote(marker)} > {WORK}/marker\n"
        f"{store.write_command(f'{WORK}/marker', f'$MODEL_URL/{MARKER}')}\n"
        'echo "cached $MODEL_URL"\n'
    )
    download_env = [env("HF_HOME", f"{WORK}/hf-home")]
    if hf_token:
        download_env.append(hf_token_env())

    work_mount = {"name": "work", "mountPath": WORK}
    pod_spec: Manifest = {
        "serviceAccountName": service_account,
        "restartPolicy": "Never",
        "initContainers": [
            script_container(
                "check",
                store.cli_image,
                check,
                env=cli_env,
                mounts=[work_mount],
                requests={"cpu": "100m", "memory": "256Mi"},
                read_only_root=True,
            ),
            script_container(
                "download",
                VLLM_IMAGE.ref,
                download,
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
                upload,
                env=cli_env,
                mounts=[work_mount],
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
        ]
    else:
        pod_spec.update(hardened_pod(run_as=NON_ROOT_UID))
        pod_spec["volumes"] = [{"name": "work", "emptyDir": {"sizeLimit": f"{scratch_size_gib(model)}Gi"}}, TMP_VOLUME]
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
