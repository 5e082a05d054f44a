"""An init container that refuses a GPU node the engine cannot run on, before anything else.

An engine pod on a node whose NVIDIA driver is older than its image's CUDA build fails
only after the image pull and minutes into start-up, with a CUDA error far from the
cause; a missing GPU or one with uncorrected ECC errors fails later still, or corrupts
results. This check runs first, with the engine's own image and the same GPUs, and
exits 1 with every problem it finds in plain words:

* the driver (``nvidia-smi --query-gpu=driver_version``) is older than the image's
  ``CudaBuild.min_driver`` (components/catalog/images.py; NVIDIA's CUDA toolkit release
  notes, table 3);
* fewer GPUs are visible than the pod requested;
* a GPU reports uncorrected ECC errors since the driver loaded
  (``ecc.errors.uncorrected.volatile.total``), the check cluster-toolkit runs before its
  A4 NCCL test (``examples/gke-a4/nccl-jobset-example.yaml``, init container
  ``gpu-healthcheck``). ``[N/A]`` (ECC off or not reported) is logged, not fatal.

Where ``nvidia-smi`` is: on EKS the NVIDIA container toolkit puts it on the container's
PATH (``/usr/bin``) for a container that is given GPUs (the CUDA images set
``NVIDIA_DRIVER_CAPABILITIES`` with ``utility``); on GKE the device plugin mounts the
host driver at ``/usr/local/nvidia`` (``bin/nvidia-smi``, libraries in ``lib64``; GKE
"Run GPUs in Standard node pools", and the explicit mount of components/gcp/rdma.py).
The script tries PATH first, then ``/usr/local/nvidia/bin``.

The container requests the same GPUs as the engine: init containers' requests are not
added to the pod's, and the kubelet hands the same devices on to the engine container.
"""

from __future__ import annotations

from components import catalog
from components.platform import GpuNodes, Manifest
from components.workloads.common import container_security

NAME = "gpu-check"
GKE_NVIDIA_DIR = "/usr/local/nvidia"
QUERY = "index,driver_version,ecc.errors.uncorrected.volatile.total"


def min_driver(image: str) -> tuple[str, str] | None:
    """The oldest driver an image runs on, and its CUDA, if the image is one of the
    catalog's; a custom image (``serving.image``) gets the GPU checks without the driver's."""
    for known in (catalog.VLLM_IMAGE, catalog.RAY_LLM_IMAGE):
        if known.ref == image and known.cuda is not None:
            return known.cuda.min_driver, known.cuda.cuda
    return None


def gpu_check_script(gpus: int, image: str) -> str:
    """Bash: checks every rule, prints each problem, exits 1 if there was any."""
    driver = min_driver(image)
    driver_rule = (
        f"""if version_lt "$driver" {driver[0]}; then
  problem "NVIDIA driver $driver is older than {driver[0]}, which {image} (CUDA {driver[1]}) needs: \\
use a node image with a newer driver, or an engine image built for an older CUDA"
fi
"""
        if driver
        else 'echo "custom image: no driver requirement known, driver not checked"\n'
    )
    return f"""set -u
failed=0
problem() {{ echo "GPU check failed: $*" >&2; failed=1; }}
version_lt() {{  # $1 < $2, dotted numbers
  local IFS=.; local -a a=($1) b=($2); local i
  for i in 0 1 2 3; do
    if ((10#${{a[i]:-0}} < 10#${{b[i]:-0}})); then return 0; fi
    if ((10#${{a[i]:-0}} > 10#${{b[i]:-0}})); then return 1; fi
  done
  return 1
}}
smi=$(command -v nvidia-smi || true)
if [ -z "$smi" ] && [ -x {GKE_NVIDIA_DIR}/bin/nvidia-smi ]; then
  smi={GKE_NVIDIA_DIR}/bin/nvidia-smi
  export LD_LIBRARY_PATH={GKE_NVIDIA_DIR}/lib64${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}
fi
if [ -z "$smi" ]; then
  echo "GPU check failed: no nvidia-smi on PATH or in {GKE_NVIDIA_DIR}/bin: the node exposes no NVIDIA driver" >&2
  exit 1
fi
if ! gpus=$("$smi" --query-gpu={QUERY} --format=csv,noheader,nounits 2>&1); then
  echo "GPU check failed: nvidia-smi cannot talk to the driver: $gpus" >&2
  exit 1
fi
echo "$gpus"
count=$(printf '%s\\n' "$gpus" | grep -c .)
if [ "$count" -lt {gpus} ]; then
  problem "$count GPUs visible, {gpus} requested: a GPU is missing or fell off the bus"
fi
driver=$(printf '%s\\n' "$gpus" | head -n 1 | cut -d, -f2 | tr -d ' ')
{driver_rule}while IFS=', ' read -r index _ ecc; do
  case "$ecc" in
    0) ;;
    ''|'[N/A]'|N/A) echo "GPU $index: ECC not reported (off or unsupported)" ;;
    *[!0-9]*) problem "GPU $index: unreadable ECC count '$ecc'" ;;
    *) problem "GPU $index has $ecc uncorrected ECC errors: drain the node and have it repaired" ;;
  esac
done <<< "$gpus"
if [ "$failed" -ne 0 ]; then exit 1; fi
echo "GPU check passed: $count GPUs, driver $driver"
"""


def gpu_check_container(image: str, gpu: GpuNodes, gpus: int) -> Manifest:
    """The init container, for the engine's image on ``gpu``'s nodes with ``gpus`` GPUs."""
    container: Manifest = {
        "name": NAME,
        "image": image,
        "command": ["/bin/bash", "-c", gpu_check_script(gpus, image)],
        "resources": {
            "requests": {gpu.resource_name: str(gpus), "cpu": "100m", "memory": "128Mi"},
            "limits": {gpu.resource_name: str(gpus)},
        },
        # nvidia-smi only reads the devices: no capability, no privilege (root FS left writable:
        # bash may need /tmp for the here-string).
        "securityContext": container_security(),
    }
    if gpu.volume_mounts:  # the host driver where the platform mounts it explicitly (GKE RDMA)
        container["volumeMounts"] = [dict(m) for m in gpu.volume_mounts]
    return container
