"""Apply plain-dict Kubernetes manifests as Pulumi resources.

Manifest builders across the code base are pure functions that return plain dicts
(``components.platform.Manifest``): easy to test, to validate against schemas and to
render as YAML. ``apply`` turns one into the matching typed pulumi-kubernetes resource,
so the provider's await logic, diffs and timeouts apply as usual. Kinds without a
typed class are custom resources.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.catalog import Chart
from components.platform import Manifest


def namespace_manifest(name: str) -> Manifest:
    """The workload namespace every platform creates."""
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def service_account_manifest(name: str, namespace: str) -> Manifest:
    """A workload identity (platform.SERVICE_ACCOUNTS). The cloud binds its credentials to
    the account's name: GKE Workload Identity through the metadata server, EKS Pod Identity
    through its own projected token (aws-eks-karpenter.md §1.7;
    https://docs.aws.amazon.com/eks/latest/userguide/pod-id-how-it-works.html), static keys
    from Secrets on other clusters. None calls the Kubernetes API, so the pod gets no API
    token unless it opts back in."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": namespace},
        "automountServiceAccountToken": False,
    }


_TYPED: Mapping[tuple[str, str], Any] = {
    ("v1", "Namespace"): k8s.core.v1.Namespace,
    ("v1", "ServiceAccount"): k8s.core.v1.ServiceAccount,
    ("v1", "Service"): k8s.core.v1.Service,
    ("v1", "Secret"): k8s.core.v1.Secret,
    ("v1", "ConfigMap"): k8s.core.v1.ConfigMap,
    ("v1", "PersistentVolumeClaim"): k8s.core.v1.PersistentVolumeClaim,
    ("apps/v1", "Deployment"): k8s.apps.v1.Deployment,
    ("apps/v1", "DaemonSet"): k8s.apps.v1.DaemonSet,
    ("apps/v1", "StatefulSet"): k8s.apps.v1.StatefulSet,
    ("batch/v1", "Job"): k8s.batch.v1.Job,
    ("batch/v1", "CronJob"): k8s.batch.v1.CronJob,
    ("storage.k8s.io/v1", "StorageClass"): k8s.storage.v1.StorageClass,
    ("networking.k8s.io/v1", "NetworkPolicy"): k8s.networking.v1.NetworkPolicy,
    ("networking.k8s.io/v1", "Ingress"): k8s.networking.v1.Ingress,
    ("policy/v1", "PodDisruptionBudget"): k8s.policy.v1.PodDisruptionBudget,
    ("rbac.authorization.k8s.io/v1", "Role"): k8s.rbac.v1.Role,
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): k8s.rbac.v1.RoleBinding,
}


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower()


def apply(resource_name: str, manifest: Manifest, opts: pulumi.ResourceOptions | None = None) -> pulumi.CustomResource:
    """Declare ``manifest`` as a resource named ``resource_name``."""
    api_version, kind = manifest["apiVersion"], manifest["kind"]
    body = {k: v for k, v in manifest.items() if k not in ("apiVersion", "kind")}
    typed = _TYPED.get((api_version, kind))
    if typed is not None:
        resource: pulumi.CustomResource = typed(resource_name, opts=opts, **{_snake(k): v for k, v in body.items()})
        return resource
    extra = set(body) - {"metadata", "spec"}
    if extra:
        raise ValueError(f"{kind} {resource_name}: custom resources carry only metadata and spec, not {extra}")
    return k8s.apiextensions.CustomResource(
        resource_name,
        api_version=api_version,
        kind=kind,
        metadata=body.get("metadata"),
        spec=body.get("spec"),
        opts=opts,
    )


def skip_await(manifest: Manifest) -> Manifest:
    """The manifest with ``pulumi.com/skipAwait`` set: Pulumi creates it without waiting
    for it to become ready (for objects whose readiness is not Pulumi's business)."""
    annotations = {**manifest["metadata"].get("annotations", {}), "pulumi.com/skipAwait": "true"}
    return {**manifest, "metadata": {**manifest["metadata"], "annotations": annotations}}


def chart_release(resource_name: str, chart: Chart, opts: pulumi.ResourceOptions, **args: Any) -> k8s.helm.v3.Release:
    """A Helm release of a pinned catalog chart; ``args`` are the other ``ReleaseArgs``
    (name, namespace, values, ...). An oci:// chart carries its registry in its name, so it
    gets no repository."""
    repository = k8s.helm.v3.RepositoryOptsArgs(repo=chart.repo) if chart.repo else None
    release = k8s.helm.v3.ReleaseArgs(chart=chart.name, version=chart.version, repository_opts=repository, **args)
    return k8s.helm.v3.Release(resource_name, release, opts)
