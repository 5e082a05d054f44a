"""Compile and JIT caches: kept on the GPU node, copied to the stack's bucket, restored at start.

A first start of DeepSeek R1 on A4 High spends about 12 minutes compiling DeepGEMM and
FlashInfer kernels, and a compiled torch.compile graph then loads in 2.5 s instead of
being compiled again (shared/reference/audit/performance.md, engine init;
vllm-serving.md §7 ``VLLM_CACHE_ROOT``). Everything those compilers write goes to one
directory per *cache key* on the pod's scratch volume, the node's local SSD where the
GPU pool has one (``GpuNodes.scratch_host_path``):

* ``VLLM_CACHE_ROOT``: torch.compile/Inductor artifacts, FlashInfer autotune results,
  and DeepGEMM's JIT cache unless ``DG_JIT_CACHE_DIR`` is set (vLLM 0.33.0 envs.py;
  compilation/decorators.py; model_executor/warmup/flashinfer_autotune_cache.py;
  utils/deep_gemm.py sets ``DG_JIT_CACHE_DIR`` to ``$VLLM_CACHE_ROOT/deep_gemm``
  itself, set here explicitly all the same);
* ``FLASHINFER_WORKSPACE_BASE``: FlashInfer's JIT-compiled ops, else under ``$HOME``
  (flashinfer/jit/env.py: ``<base>/.cache/flashinfer/<arch>/cached_ops``);
* ``TRITON_CACHE_DIR`` and ``TRITON_HOME``: Triton kernels, else ``~/.triton/cache``
  (triton knobs.py; vLLM keeps a caller's ``TRITON_CACHE_DIR``:
  compilation/compiler_interface.py ``initialize_inductor_cache``);
* ``TORCHINDUCTOR_CACHE_DIR``: Inductor outside vLLM's own compile, else
  ``/tmp/torchinductor_<user>`` (torch _inductor/runtime/cache_dir_utils.py);
* ``XDG_CACHE_HOME``, ``TORCH_EXTENSIONS_DIR`` and ``CUDA_CACHE_PATH``: whatever else
  follows ``~/.cache`` (torch _appdirs.py, cpp_extension.py), and the driver's PTX JIT
  cache, else ``~/.nv/ComputeCache`` (CUDA C++ Programming Guide, CUDA environment
  variables).

The key. A cache is only valid for the image (vLLM, torch, Triton, FlashInfer,
DeepGEMM and CUDA versions), the model, the GPU (its architecture) and the layout and
flags of a replica (vLLM hashes these into its own subfolders too). The key is a hash
of all of them, so a different image, model or layout never reuses a stale cache: it
gets a new directory on the node and a new prefix in the bucket.

Restore, at engine start (init containers of every engine pod, before the engine):

1. ``compile-cache-fetch`` (cloud CLI image, as the engine's own read-only identity):
   nothing to do when this node has the key already; else download every archive under
   ``compile-cache/<key>/`` to a staging folder. No archive (first start) or an
   unreadable one is not an error: the engine then compiles, as without a cache.
2. ``compile-cache-unpack`` (the engine image, which has ``tar``; the AWS CLI image
   does not): unpack into the key's directory and mark it restored.

Upload, after the engine is ready. The engine's identity stays read-only, and a pod has
one identity, so the upload cannot be a container of the engine pod. Once the engine
answers its health URL, a background step of the engine pod packs the key's directory
into ``<scratch>/compile-cache-outbox/<key>/<time>-<pod>.tar`` (unless it was restored
or packed before); the ``compile-cache-upload`` DaemonSet on the GPU pool, as the
``compile-cache`` account that may only *create* objects under ``compile-cache/``,
uploads each archive and deletes it from the outbox. Why a DaemonSet rather than a Job:
engine pods of several replicas, the nodes of a multi-node replica and a pod
re-created on a new node each build a cache on their own node, at any time; one small
pod per GPU node sees every outbox there, and a Job would see one node once. Each
upload is a new object (its name carries the time and the pod), so the create-only
grant suffices; a restore unpacks every archive of the key (compile caches are
content-addressed, and per-rank files carry the rank in their name, so the archives of
a multi-node replica's nodes merge into one tree).

Where the pool has no node-local scratch hostPath (an instance type without local disk),
the scratch is the pod's emptyDir: the cache survives container restarts, not a new pod, and no
uploader can reach it, so the stack keeps caches in the pod only (``store`` says so in
the outputs).
"""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pulumi

from components.config import CompileCacheConfig
from components.platform import COMPILE_CACHE_PREFIX, GpuNodes, Manifest, ModelStore
from components.workloads.common import (
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
from components.workloads.needs import WorkloadNeeds
from components.workloads.weights import SCRATCH_MOUNT

NAME = "compile-cache-upload"  # the uploader DaemonSet
CACHE_DIR = f"{SCRATCH_MOUNT}/compile-cache"  # <key>/ per cache key
STAGING_DIR = f"{SCRATCH_MOUNT}/compile-cache-staging"  # <key>/ archives being restored
OUTBOX = "compile-cache-outbox"  # <key>/<slot>.tar waiting for the uploader
OUTBOX_DIR = f"{SCRATCH_MOUNT}/{OUTBOX}"
UPLOADER_OUTBOX = "/outbox"  # where the uploader mounts the node's outbox
ARCHIVE_SUFFIX = ".tar"
RESTORED = ".restored"  # the key's directory came from the bucket
PACKED = ".packed"  # the key's directory was packed for upload once
# How often the uploader looks at the outbox; the engine's background step polls its
# health URL at the same pace.
POLL_SECONDS = 30

Store = Literal["none", "node", "bucket"]


def cache_key(inputs: Mapping[str, Any]) -> str:
    """A short, stable name for ``inputs`` (image, model, GPU, engine, layout, flags)."""
    digest = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]
    model = str(inputs.get("model", "model")).rsplit("/", 1)[-1].lower()
    return f"{''.join(c if c.isalnum() or c in '.-' else '-' for c in model)}-{digest}"


def cache_env(key_dir: str) -> list[Manifest]:
    """Every compile and JIT cache of the engine under ``key_dir`` (sources: module docstring)."""
    return [
        env("VLLM_CACHE_ROOT", f"{key_dir}/vllm"),
        env("DG_JIT_CACHE_DIR", f"{key_dir}/vllm/deep_gemm"),
        env("FLASHINFER_WORKSPACE_BASE", f"{key_dir}/flashinfer"),
        env("TRITON_CACHE_DIR", f"{key_dir}/triton/cache"),
        env("TRITON_HOME", f"{key_dir}/triton"),
        env("TORCHINDUCTOR_CACHE_DIR", f"{key_dir}/inductor"),
        env("TORCH_EXTENSIONS_DIR", f"{key_dir}/torch_extensions"),
        env("CUDA_CACHE_PATH", f"{key_dir}/nv/ComputeCache"),
        env("XDG_CACHE_HOME", f"{key_dir}/xdg"),
    ]


@dataclass(frozen=True)
class CompileCachePlan:
    """How one stack's engine keeps its compile caches (``None`` plan: caches off)."""

    key: str
    key_inputs: Mapping[str, Any]
    store: Store  # "node": on the node only; "bucket": also in the bucket
    reason: str  # one sentence for the outputs: where the cache lives and why
    model_store: ModelStore | None = None  # set with store "bucket"
    url: pulumi.Input[str] | None = None  # gs://bucket/compile-cache/<key> with store "bucket"

    @property
    def key_dir(self) -> str:
        return f"{CACHE_DIR}/{self.key}"

    @property
    def env(self) -> list[Manifest]:
        return cache_env(self.key_dir)

    @property
    def volumes(self) -> list[Manifest]:
        """Pod volumes the restore containers need besides the scratch: their ``$HOME`` on a
        read-only root file system."""
        return [dict(TMP_VOLUME)] if self.store == "bucket" else []

    def restore_containers(self, engine_image: str) -> list[Manifest]:
        """Init containers that restore the key from the bucket (none with store "node");
        the pod must also have ``volumes``."""
        if self.store != "bucket" or self.model_store is None or self.url is None:
            return []
        scratch = {"name": "scratch", "mountPath": SCRATCH_MOUNT}
        staging = f"{STAGING_DIR}/{self.key}"
        common = [env("COMPILE_CACHE_DIR", self.key_dir), env("COMPILE_CACHE_STAGING", staging)]
        fetch = script_container(
            "compile-cache-fetch",
            self.model_store.cli_image,
            fetch_script(self.model_store),
            requests={"cpu": "100m", "memory": "256Mi"},
            env=[*common, env("COMPILE_CACHE_URL", self.url), *store_env(self.model_store)],
            mounts=[scratch],
            read_only_root=True,  # the CLI's config goes to $HOME, the pod's /tmp volume
        )
        unpack = script_container(
            "compile-cache-unpack",
            engine_image,
            UNPACK_SCRIPT,
            requests={"cpu": "100m", "memory": "256Mi"},
            env=common,
            mounts=[scratch],
            shell="/bin/bash",
            read_only_root=True,
        )
        return [fetch, unpack]

    def after_ready(self, health_url: str) -> str:
        """Shell for the engine container, before it ``exec``s the engine: in the
        background, wait for ``health_url`` (double-quoted, so a ``$VARIABLE`` in it
        expands) and pack the cache for the uploader, logging to ``<key dir>.log`` on the
        scratch volume. Empty with store "node"."""
        if self.store != "bucket":
            return ""
        outbox = f"{OUTBOX_DIR}/{self.key}"
        return (
            f"COMPILE_CACHE_DIR={shlex.quote(self.key_dir)} COMPILE_CACHE_OUTBOX={shlex.quote(outbox)} "
            f'COMPILE_CACHE_HEALTH_URL="{health_url}" bash -c {shlex.quote(PACK_SCRIPT)} '
            # Its own log on the node (it must not hold the container's output open).
            f">>{shlex.quote(self.key_dir)}.log 2>&1 &\n"
        )


def pack_after_ready(plan: CompileCachePlan | None, health_url: str) -> str:
    """``plan.after_ready`` or nothing, for engines' scripts."""
    return plan.after_ready(health_url) if plan is not None else ""


def plan_compile_cache(
    config: CompileCacheConfig,
    gpu: GpuNodes,
    store: ModelStore | None,
    bucket: pulumi.Input[str],
    key_inputs: Mapping[str, Any],
) -> CompileCachePlan | None:
    """Where this stack's compile caches live: ``None`` when off; the bucket when the config
    allows it, the platform grants the uploader's account and the pool has node-local
    scratch for it to read; else the node (or the pod, without such scratch)."""
    if not config.enabled:
        return None
    key = cache_key(key_inputs)
    local = "on the node's local scratch" if gpu.scratch_host_path else "in the engine pod's scratch volume"
    if config.store == "node":
        return CompileCachePlan(key, key_inputs, "node", f"kept {local} (compileCache.store is 'node')")
    if store is None or store.compile_cache_service_account is None:
        return CompileCachePlan(key, key_inputs, "node", f"kept {local}: the stack has no bucket")
    if not gpu.scratch_host_path:
        return CompileCachePlan(
            key,
            key_inputs,
            "node",
            f"kept {local}: the GPU pool has no node-local scratch for the uploader to read",
        )
    url = concat(f"{store.scheme}://", bucket, f"/{COMPILE_CACHE_PREFIX}{key}")
    return CompileCachePlan(
        key, key_inputs, "bucket", f"kept {local} and in the bucket, restored at engine start", store, url
    )


# Runs in the cloud CLI image as the engine's read-only account. Never fails the pod: a
# missing or unreadable archive only means the engine compiles, as without a cache.
def fetch_script(store: ModelStore) -> str:
    list_archives = store.list_command('"$COMPILE_CACHE_URL/"', ARCHIVE_SUFFIX)
    return "\n".join(
        [
            "set -u",
            'dir="$COMPILE_CACHE_DIR"',
            f'if [ -e "$dir/{RESTORED}" ] || [ -e "$dir/{PACKED}" ]; then',
            '  echo "compile cache: kept on this node ($dir)"; exit 0',
            "fi",
            'rm -rf "$COMPILE_CACHE_STAGING"; mkdir -p "$COMPILE_CACHE_STAGING"',
            "found=0",
            f"for url in $({list_archives}); do",
            "  if " + store.read_command('"$url"', '"$COMPILE_CACHE_STAGING/$(basename "$url")"') + "; then",
            "    found=$((found + 1))",
            "  else",
            '    echo "compile cache: could not read $url; skipped"',
            "  fi",
            "done",
            'echo "compile cache: $found archive(s) under $COMPILE_CACHE_URL"',
        ]
    )


# Runs in the engine image. A damaged archive is skipped, never fatal.
UNPACK_SCRIPT = "\n".join(
    [
        "set -u",
        'dir="$COMPILE_CACHE_DIR"',
        'mkdir -p "$dir"',
        "restored=0",
        f'for archive in "$COMPILE_CACHE_STAGING"/*{ARCHIVE_SUFFIX}; do',
        '  [ -e "$archive" ] || continue',
        '  if tar -xf "$archive" -C "$dir"; then restored=1',
        '  else echo "compile cache: $archive is damaged; skipped"; fi',
        '  rm -f "$archive"',
        "done",
        f'if [ "$restored" = 1 ]; then touch "$dir/{RESTORED}"; echo "compile cache: restored into $dir"; fi',
    ]
)

# Runs in the engine container's background once per start. Packs only a cache this node
# built itself (not restored, not packed before); the rename makes the archive appear
# whole, so the uploader never sends half of one.
PACK_SCRIPT = "\n".join(
    [
        "set -u",
        "until python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=10)' \\",
        f'    "$COMPILE_CACHE_HEALTH_URL" >/dev/null 2>&1; do sleep {POLL_SECONDS}; done',
        'dir="$COMPILE_CACHE_DIR"',
        f'[ -e "$dir/{RESTORED}" ] || [ -e "$dir/{PACKED}" ] || [ ! -d "$dir" ] && exit 0',
        'mkdir -p "$COMPILE_CACHE_OUTBOX"',
        f'name="$(date -u +%Y%m%dT%H%M%SZ)-${{HOSTNAME:-pod}}{ARCHIVE_SUFFIX}"',
        'part="$COMPILE_CACHE_OUTBOX/.$name.part"',
        f'if tar -cf "$part" -C "$dir" --exclude ./{RESTORED} --exclude ./{PACKED} . '
        '&& mv "$part" "$COMPILE_CACHE_OUTBOX/$name"; then',
        f'  touch "$dir/{PACKED}"; echo "compile cache: packed $name for upload"',
        "else",
        '  rm -f "$part"; echo "compile cache: packing failed; the cache stays on this node only"',
        "fi",
    ]
)


def upload_script(store: ModelStore) -> str:
    """The uploader's loop: every archive in the node's outbox goes to the bucket under
    its key (``$CACHE_URL/<key>/<name>``), then leaves the outbox. Create only: the
    account can neither list nor overwrite, and every name is new."""
    write = store.write_command('"$archive"', '"$CACHE_URL/$key/$name"')
    return "\n".join(
        [
            "set -u",
            "while true; do",
            f"  for archive in {UPLOADER_OUTBOX}/*/*{ARCHIVE_SUFFIX}; do",
            '    [ -e "$archive" ] || continue',
            '    key="$(basename "$(dirname "$archive")")"; name="$(basename "$archive")"',
            f"    if {write}; then",
            '      rm -f "$archive"; echo "compile cache: uploaded $key/$name"',
            "    else",
            '      echo "compile cache: upload of $key/$name failed; retrying later"',
            "    fi",
            "  done",
            '  [ "${UPLOAD_ONCE:-}" = 1 ] && exit 0',
            f"  sleep {POLL_SECONDS}",
            "done",
        ]
    )


def uploader_needs() -> WorkloadNeeds:
    """Serves nothing; reaches the bucket over HTTPS as the compile-cache account."""
    return WorkloadNeeds(name=NAME, selector=selector(NAME), internet_egress=True, cloud_identity=True)


def uploader_daemonset(namespace: str, gpu: GpuNodes, store: ModelStore, bucket: pulumi.Input[str]) -> Manifest:
    """One small pod per GPU node that uploads the node's packed caches (see module docstring)."""
    assert store.compile_cache_service_account, "the platform grants no account for compile caches"
    assert gpu.scratch_host_path, "the uploader reads the pool's node-local scratch"
    outbox = {
        "name": "outbox",
        "hostPath": {"path": f"{gpu.scratch_host_path}/llm-serving/{OUTBOX}", "type": "DirectoryOrCreate"},
    }
    upload = script_container(
        "upload",
        store.cli_image,
        upload_script(store),
        requests={"cpu": "50m", "memory": "256Mi"},
        env=[
            env("CACHE_URL", concat(f"{store.scheme}://", bucket, f"/{COMPILE_CACHE_PREFIX.rstrip('/')}")),
            *(env(k, v) for k, v in store.uploader_env.items()),
            *store_env(store),
        ],
        mounts=[{"name": "outbox", "mountPath": UPLOADER_OUTBOX}],
        read_only_root=True,
    )
    upload["resources"]["limits"] = {"memory": "1Gi"}
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": metadata(NAME, namespace, "engine"),
        "spec": {
            "selector": {"matchLabels": selector(NAME)},
            "template": {
                "metadata": {"labels": metadata(NAME, None, "engine")["labels"]},
                "spec": {
                    "serviceAccountName": store.compile_cache_service_account,
                    # Root, as the engine that writes the outbox (the images' default user).
                    **hardened_pod(),
                    **gpu_pod_fields(gpu),
                    "terminationGracePeriodSeconds": 30,
                    "containers": [upload],
                    "volumes": [outbox, TMP_VOLUME],
                },
            },
        },
    }


def plan_outputs(plan: CompileCachePlan | None, namespace: str) -> dict[str, Any]:
    """The ``compile_cache`` stack output."""
    if plan is None:
        return {"store": "none", "where": "off (serving.compileCache.enabled is false)"}
    out: dict[str, Any] = {"store": plan.store, "key": plan.key, "where": plan.reason}
    out["keyed_by"] = dict(plan.key_inputs)
    if plan.url is not None:
        out["url"] = plan.url
        labels = ",".join(f"{k}={v}" for k, v in selector(NAME).items())
        out["upload_logs"] = f"kubectl -n {namespace} logs -f -l {labels} --prefix"
    return out


# `vllm serve` flags that name or parse, and never reach compiled code, with how many values
# each takes: the API server's (vLLM 0.33.0 entrypoints/common/cli_args.py: host, port,
# tool_call_parser, enable_auto_tool_choice) and the model's public name and reasoning
# parser (engine/arg_utils.py). They stay out of the key: renaming the served model must
# not cost a recompilation (vLLM's own hashes still decide within a key's directory).
FRONTEND_FLAGS = {
    "--host": 1,
    "--port": 1,
    "--served-model-name": 1,
    "--reasoning-parser": 1,
    "--tool-call-parser": 1,
    "--enable-auto-tool-choice": 0,
}


def engine_flags(flags: Sequence[str]) -> list[str]:
    """``flags`` without the API server's own (``FRONTEND_FLAGS``, also as ``--flag=value``)."""
    kept: list[str] = []
    skip = 0
    for flag in flags:
        if skip:
            skip -= 1
        elif flag.split("=", 1)[0] in FRONTEND_FLAGS:
            skip = 0 if "=" in flag else FRONTEND_FLAGS[flag]
        else:
            kept.append(flag)
    return kept


def key_inputs(image: str, model: str, gpu: str, engine: str, layout: str, flags: Sequence[str]) -> dict[str, Any]:
    """What a compile cache depends on (see module docstring, the key)."""
    return {
        "image": image,
        "model": model,
        "gpu": gpu,
        "engine": engine,
        "layout": layout,
        "flags": engine_flags(flags),
    }
