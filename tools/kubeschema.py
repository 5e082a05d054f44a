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
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate

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
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        return [f"{where}: no schema for {obj['apiVersion']} {obj['kind']} (neither core nor in {CRD_DIR.name}/)"]
    except kubernetes_validate.ValidationError as error:
        path = "/".join(map(str, error.path)) or "(root)"
        return [f"{where}: {path}: {error.message}"]
    return []
