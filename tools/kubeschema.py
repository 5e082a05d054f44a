"""Strict schema validation of Kubernetes manifests, offline.

Core kinds are checked with ``kubernetes-validate`` (the upstream OpenAPI schemas of
``KUBERNETES_VERSION``, strict mode: unknown fields are errors). Custom resources are checked
against the CRD schemas vendored in ``tests/schemas/crds/`` (sources and licences in
``tests/schemas/SOURCES.md``), closed the way ``kubeconform -strict`` closes them: every
object with ``properties`` refuses other keys unless the schema says otherwise.
"""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from kubernetes_validate import utils as kv_utils
from referencing import Registry, Resource

from components import catalog

# The default Kubernetes version of new EKS clusters, the newest any stack here runs by
# default (kubernetes-validate 1.37 ships schemas up to 1.37).
KUBERNETES_VERSION = catalog.EKS_KUBERNETES_VERSION
CRD_DIR = Path(__file__).resolve().parents[1] / "tests" / "schemas" / "crds"


def crd_schema_path(api_version: str, kind: str) -> Path:
    group, _, version = api_version.rpartition("/")
    return CRD_DIR / f"{group}-{version}-{kind}.json"


def _close(node: Any) -> None:
    """Set ``additionalProperties: false`` on every object node with properties, walking
    properties, items and schema-valued additionalProperties (not anyOf/allOf/oneOf/not)."""
    if not isinstance(node, dict):
        return
    props = node.get("properties")
    if isinstance(props, dict):
        if "additionalProperties" not in node and not node.get("x-kubernetes-preserve-unknown-fields"):
            node["additionalProperties"] = False
        for child in props.values():
            _close(child)
    items = node.get("items")
    if isinstance(items, dict):
        _close(items)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        _close(extra)


@cache
def _crd_validator(api_version: str, kind: str) -> jsonschema.Draft202012Validator:
    path = crd_schema_path(api_version, kind)
    schema = json.loads(path.read_text())
    strict = copy.deepcopy(schema)
    _close(strict)
    # Top-level apiVersion/kind/metadata are the API server's, not in every CRD schema.
    strict.setdefault("properties", {}).update(
        {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
        }
    )
    return jsonschema.Draft202012Validator(strict)


@cache
def _core_schema_dir() -> str:
    """kubernetes-validate's strict schemas for ``KUBERNETES_VERSION``: the newest it ships
    that is not newer (its own rule, kubernetes_validate/utils.py ``validate``)."""
    wanted = kv_utils.major_minor(KUBERNETES_VERSION)
    if wanted > kv_utils.latest_version():
        raise kv_utils.VersionNotSupportedError(version=wanted)
    version = [v for v in kv_utils.all_versions() if kv_utils.major_minor(v) <= wanted][-1]
    return f"kubernetes-json-schema/v{version}-local-strict"


@cache
def _core_definitions() -> Resource[Any]:
    definitions = kv_utils.schema_contents(f"{_core_schema_dir()}/_definitions.json", KUBERNETES_VERSION)
    return Resource.from_contents(definitions)


@cache
def _core_validator(api_version: str, kind: str) -> jsonschema.Draft202012Validator | None:
    """The validator ``kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)``
    builds, built once per kind: the library re-reads its 1.8 MB definitions file and builds a
    new validator on every call (~20 ms), which is most of the test suite's validation time.
    None when the library has no schema for the kind."""
    # The library's file naming: rbac.authorization.k8s.io/v1 -> rbac-v1, apps/v1 -> apps-v1.
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = kv_utils.schema_contents(
            f"{_core_schema_dir()}/{kind.lower()}-{group_version}.json", KUBERNETES_VERSION
        )
    except FileNotFoundError:
        return None
    registry: Registry[Any] = _core_definitions() @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry)


def is_custom_resource(obj: dict[str, Any]) -> bool:
    return crd_schema_path(obj["apiVersion"], obj["kind"]).exists()


def validate(obj: dict[str, Any]) -> list[str]:
    """Every schema problem of one manifest, as ``Kind/name: path: message`` lines."""
    where = f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"
    if "apiVersion" not in obj or "kind" not in obj:
        return [f"{where}: apiVersion and kind are required"]
    if is_custom_resource(obj):
        validator = _crd_validator(obj["apiVersion"], obj["kind"])
        return [
            f"{where}: {'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}"
            for error in validator.iter_errors(obj)
        ]
    core = _core_validator(obj["apiVersion"], obj["kind"])
    if core is None:
        return [f"{where}: no schema for {obj['apiVersion']} {obj['kind']} (neither core nor in {CRD_DIR.name}/)"]
    # The one error kubernetes_validate.validate reports: the first (jsonschema's validate raises it).
    error = next(iter(core.iter_errors(obj)), None)
    if error is not None:
        path = "/".join(map(str, error.path)) or "(root)"
        return [f"{where}: {path}: {error.message}"]
    return []
