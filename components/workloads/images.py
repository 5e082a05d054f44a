"""Image references through the platform's registry mirror.

A workload manifest names images as their publishers do (``vllm/vllm-openai:v0.33.0``,
components/catalog/images.py, or the stack's ``serving.image``). When the platform has a
pull-through mirror of Docker Hub (``Platform.image_mirror``), every container image that
lives on Docker Hub is rewritten to the same repository path under the mirror, with its
tag and digest unchanged; images of other registries (ghcr.io, gcr.io, public.ecr.aws,
nvcr.io, ...) are left as they are.

Which references are Docker Hub's follows the reference grammar of the container tools
(github.com/distribution/reference ``normalize.go``): the first path component is a
registry host only if it contains ``.`` or ``:``, is ``localhost``, or has an uppercase
letter; without one the image is Docker Hub's, and a one-component name is an official
image under ``library/``.
"""

from __future__ import annotations

from typing import Any

import pulumi

from components.platform import ImageMirror, Manifest

# Docker Hub's own names for itself (distribution/reference normalize.go: docker.io, and the
# legacy index.docker.io; registry-1.docker.io is the API host the daemon talks to).
DOCKER_HUB_HOSTS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
OFFICIAL_NAMESPACE = "library"
# Pod spec fields that hold containers (Kubernetes PodSpec).
CONTAINER_FIELDS = ("containers", "initContainers", "ephemeralContainers")


def _is_host(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost" or component.lower() != component


def docker_hub_path(ref: str) -> str | None:
    """``ref`` as a path on Docker Hub (``vllm/vllm-openai:v0.33.0``,
    ``library/busybox@sha256:...``), or None when it names another registry."""
    first, slash, rest = ref.partition("/")
    if slash and _is_host(first):
        if first not in DOCKER_HUB_HOSTS:
            return None
        ref = rest
    # Without a host, the only ':' before a digest is the tag's.
    name = ref.split("@", 1)[0].split(":", 1)[0]
    return ref if "/" in name else f"{OFFICIAL_NAMESPACE}/{ref}"


def mirrored(ref: str, mirror: ImageMirror | None) -> pulumi.Input[str]:
    """Where to pull ``ref`` from: through ``mirror`` if it mirrors the image's registry."""
    path = docker_hub_path(ref) if mirror is not None else None
    if mirror is None or path is None:
        return ref
    if isinstance(mirror.prefix, str):
        return f"{mirror.prefix}/{path}"
    return pulumi.Output.concat(mirror.prefix, "/", path)


def through_mirror(manifest: Manifest, mirror: ImageMirror | None) -> Manifest:
    """``manifest`` with every container's image pulled through ``mirror``: containers of
    any pod template inside it (Deployments, Jobs, CronJobs, LeaderWorkerSets,
    RayServices alike). A new object; ``manifest`` is not changed."""
    if mirror is None:
        return manifest
    return dict(_rewrite(manifest, mirror))


def _rewrite(value: Any, mirror: ImageMirror) -> Any:
    if isinstance(value, list):
        return [_rewrite(item, mirror) for item in value]
    if not isinstance(value, dict):
        return value
    out = {key: _rewrite(item, mirror) for key, item in value.items()}
    for field_name in CONTAINER_FIELDS:
        containers = out.get(field_name)
        if isinstance(containers, list):
            out[field_name] = [
                {**c, "image": mirrored(c["image"], mirror)} if isinstance(c.get("image"), str) else c
                for c in containers
            ]
    return out
