"""Small pure helpers shared by the workload manifest builders."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pulumi

from components.config import ServiceExposure
from components.platform import ClusterNetwork, GpuNodes, LoadBalancing, Manifest, ModelStore
from components.workloads.needs import Peer

PART_OF = "llm-serving"

# Pod hardening (Kubernetes Pod Security Standards, "restricted" profile:
# https://kubernetes.io/docs/concepts/security/pod-security-standards/). The Jobs run their
# images' tools as this user; the images default to root (vllm/vllm-openai and
# amazon/aws-cli set no USER; google-cloud-cli creates a `cloudsdk` user (1000) but does
# not switch to it), so every path they write is a mounted volume owned through fsGroup.
# Above 10000, so it is no user of the node either (checkov CKV_K8S_40).
NON_ROOT_UID = 10001
# A writable /tmp and $HOME under a read-only root file system: Python, the gcloud CLI
# (~/.config/gcloud), the AWS CLI (~/.aws) and the hf CLI write there.
TMP_DIR = "/tmp"
TMP_VOLUME: Manifest = {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}
TMP_MOUNT: Manifest = {"name": "tmp", "mountPath": TMP_DIR}


def labels(name: str, component: str) -> dict[str, str]:
    """Recommended Kubernetes labels; ``name`` also selects the pods of a workload."""
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": PART_OF,
    }


def selector(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name}


def metadata(name: str, namespace: str | None, component: str, **extra: Any) -> Manifest:
    meta: Manifest = {"name": name, "labels": labels(name, component)}
    if namespace is not None:
        meta["namespace"] = namespace
    return {**meta, **extra}


def concat(*parts: pulumi.Input[str]) -> pulumi.Input[str]:
    """Join strings; stays a plain ``str`` unless a part is only known at deploy time
    (so builders called with plain values return plain data, as tests want)."""
    if all(isinstance(p, str) for p in parts):
        return "".join(p for p in parts if isinstance(p, str))
    return pulumi.Output.concat(*parts)


def env(name: str, value: pulumi.Input[str]) -> Manifest:
    return {"name": name, "value": value}


def env_from_secret(name: str, secret: str, key: str, optional: bool = False) -> Manifest:
    ref: Manifest = {"name": secret, "key": key}
    if optional:
        ref["optional"] = True
    return {"name": name, "valueFrom": {"secretKeyRef": ref}}


def store_env(store: ModelStore, account: str | None = None) -> list[Manifest]:
    """What a cloud CLI or weights loader running as ``account`` (default: the readers')
    needs in its environment to reach the store (an S3-compatible store's keys among it)."""
    return store.env_for(account)


def container_security(capabilities: Iterable[str] = (), *, read_only_root: bool = False) -> Manifest:
    """A container's securityContext: no privilege escalation, every capability dropped
    but those named, the runtime's default seccomp profile."""
    caps: Manifest = {"drop": ["ALL"]}
    if added := sorted(set(capabilities)):
        caps["add"] = added
    context: Manifest = {
        "allowPrivilegeEscalation": False,
        "capabilities": caps,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    if read_only_root:
        context["readOnlyRootFilesystem"] = True
    return context


def pod_security(run_as: int | None = None) -> Manifest:
    """A pod's securityContext: RuntimeDefault seccomp; with ``run_as``, a non-root user
    and group that also owns the pod's volumes (fsGroup)."""
    context: Manifest = {"seccompProfile": {"type": "RuntimeDefault"}}
    if run_as is not None:
        context.update(runAsNonRoot=True, runAsUser=run_as, runAsGroup=run_as, fsGroup=run_as)
    return context


def hardened_pod(run_as: int | None = None) -> Manifest:
    """Pod spec fields every workload pod sets. No service account token: no workload
    calls the Kubernetes API, and neither cloud identity needs it (GKE Workload Identity
    answers on the node's metadata server, which identifies the pod by its address,
    https://cloud.google.com/kubernetes-engine/docs/concepts/workload-identity; EKS Pod
    Identity projects its own `eks-pod-identity-token` volume into the pod,
    https://docs.aws.amazon.com/eks/latest/userguide/pod-id-how-it-works.html)."""
    return {"automountServiceAccountToken": False, "securityContext": pod_security(run_as)}


def load_balancer_clients(exposure: ServiceExposure, network: ClusterNetwork) -> tuple[Peer, ...]:
    """Who reaches a Service's pods through its load balancer: the allowed source ranges,
    and the nodes that forward for it (externalTrafficPolicy Cluster)."""
    if exposure.type != "LoadBalancer":
        return ()
    ranges = (*(str(r) for r in exposure.allowed_source_ranges), *network.node_cidrs)
    return (Peer(ip_blocks=tuple(dict.fromkeys(ranges))),)


def script_container(
    name: str,
    image: str,
    script: pulumi.Input[str],
    *,
    requests: Mapping[str, str],
    env: Iterable[Manifest] = (),
    mounts: Iterable[Manifest] = (),
    shell: str = "/bin/sh",
    read_only_root: bool = False,
) -> Manifest:
    """A container that runs one shell script: a Job's step or an init container.

    ``read_only_root``: the root file system is read-only and ``$HOME`` is the pod's
    ``TMP_VOLUME`` (which the pod must then have)."""
    container: Manifest = {"name": name, "image": image, "command": [shell, "-c", script]}
    environment = list(env)
    volume_mounts = list(mounts)
    if read_only_root:
        environment.append({"name": "HOME", "value": TMP_DIR})
        volume_mounts.append(dict(TMP_MOUNT))
    if environment:
        container["env"] = environment
    if volume_mounts:
        container["volumeMounts"] = volume_mounts
    container["resources"] = {"requests": dict(requests)}
    container["securityContext"] = container_security(read_only_root=read_only_root)
    return container


def http_probe(path: str, port: int, period: int, failures: int, timeout: int = 5) -> Manifest:
    return {
        "httpGet": {"path": path, "port": port},
        "periodSeconds": period,
        "failureThreshold": failures,
        "timeoutSeconds": timeout,
    }


def gpu_pod_fields(gpu: GpuNodes) -> Manifest:
    """Pod spec fields that put a pod on the pool's GPU nodes (selector, tolerations)."""
    return {"nodeSelector": dict(gpu.node_selector), "tolerations": [dict(t) for t in gpu.tolerations]}


def gpu_resources(gpu: GpuNodes, count: int, cpu: str, memory: str) -> Manifest:
    """Requests for a container using ``count`` GPUs; GPUs are also its only limit.

    Extended resources need request == limit. CPU and memory are requested (so the
    scheduler and Karpenter pick a big enough node) but not capped: an engine owns its
    GPUs' node, and a memory cap would only add OOM kills while weights stream in.
    """
    extra = dict(gpu.pod_resources)  # e.g. the node's EFA interfaces (whole-node pools)
    return {
        "requests": {gpu.resource_name: str(count), **extra, "cpu": cpu, "memory": memory},
        "limits": {gpu.resource_name: str(count), **extra},
    }


def dev_shm(size_gib: int) -> tuple[Manifest, Manifest]:
    """A memory-backed /dev/shm (the container default of 64 MiB starves NCCL and the
    engine's worker processes; vllm-serving.md §1.1 multi-node notes), sized by the
    platform per machine (``GpuNodes.shm_gib``)."""
    volume = {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": f"{size_gib}Gi"}}
    return volume, {"name": "dshm", "mountPath": "/dev/shm"}


def merge_annotations(*sources: Mapping[str, str] | None) -> dict[str, str]:
    merged: dict[str, str] = {}
    for source in sources:
        merged.update(source or {})
    return merged


def service(
    name: str,
    namespace: str,
    component: str,
    ports: Sequence[Manifest],
    exposure: ServiceExposure,
    load_balancing: LoadBalancing,
    select: Mapping[str, str] | None = None,
) -> Manifest:
    """A Service that is ClusterIP unless the stack asks for a load balancer, and then
    only open to the configured source ranges."""
    spec: Manifest = {"selector": dict(select or selector(name)), "ports": list(ports), "type": exposure.type}
    meta = metadata(name, namespace, component)
    if exposure.type == "LoadBalancer":
        spec["loadBalancerSourceRanges"] = [str(r) for r in exposure.allowed_source_ranges]
        if load_balancing.load_balancer_class:
            spec["loadBalancerClass"] = load_balancing.load_balancer_class
        annotations = load_balancing.annotations(exposure.internal)
        if annotations:
            meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec}


def dedupe_by_name(items: Iterable[Manifest]) -> list[Manifest]:
    """Keep the first of each ``name`` (volumes, env): later entries never shadow earlier ones."""
    seen: set[str] = set()
    out = []
    for item in items:
        if item["name"] not in seen:
            seen.add(item["name"])
            out.append(item)
    return out
