"""Open WebUI in front of the engine: login required, data on a volume, no open sign-up.

Environment semantics from docs/reference/aws-eks-karpenter.md §6 and the Open WebUI
environment reference (docs.openwebui.com/getting-started/env-configuration):

* ``OPENAI_API_BASE_URLS`` / ``OPENAI_API_KEYS`` are ``;``-separated and index-aligned.
* ``ENABLE_OLLAMA_API`` defaults to True and makes it probe localhost:11434: off.
* Most settings are PersistentConfig: after the first start they are read from the
  database, not the environment. ``ENABLE_PERSISTENT_CONFIG=False`` keeps this stack's
  environment authoritative, so a `pulumi up` that changes the engine URL takes effect.
* ``WEBUI_SECRET_KEY`` signs sessions; without it start.sh writes a random key outside
  the data volume and every pod restart logs everybody out.

The first admin. Open WebUI makes the first account that signs up an admin, so a UI
published through a load balancer could be claimed by whoever reaches it first. This
stack never relies on that: the admin account (``adminEmail``, generated password in a
Secret and the ``open_webui_admin_password`` stack output) is created by Open WebUI on
its first start from ``WEBUI_ADMIN_EMAIL``/``WEBUI_ADMIN_PASSWORD``, before the pod is
Ready and so before any Service routes to it; ``ENABLE_SIGNUP=False`` closes
self-registration and ``DEFAULT_USER_ROLE=pending`` leaves any account created later
without access until an admin approves it. Open WebUI creates that admin only while its
database has no user (``create_admin_user``): the password is the initial one only, and
changing it later happens in Open WebUI, not in the stack.

Tools (issue #9 item 5). Open WebUI 0.12 sends its built-in tools with every chat from the
page ("native" function calling); vLLM 0.33 then defaults ``tool_choice`` to "auto" and
answers HTTP 400 unless the engine runs with ``--enable-auto-tool-choice
--tool-call-parser``. The engine enables those where the catalog gives the model a parser
(``ModelSpec.tool_call_parser``); everywhere else ``DEFAULT_MODEL_PARAMS`` sets "legacy"
function calling, which never puts ``tools`` into a request: neither the built-in ones nor
tools an admin adds later (turning only the ``builtin_tools`` capability off would still send
those). tests/conformance drives both cases through a real browser.
"""

from __future__ import annotations

import json

from components import catalog
from components.config import OpenWebuiConfig, ServiceExposure
from components.platform import IngressRoute, LoadBalancing, Manifest
from components.workloads.common import (
    container_security,
    env,
    env_from_secret,
    hardened_pod,
    http_probe,
    metadata,
    selector,
    service,
)
from components.workloads.needs import Peer, ServedPort, WorkloadNeeds

NAME = "open-webui"
PORT = 8080  # the image's PORT (Dockerfile ENV PORT=8080)
SERVICE_PORT = 80
DATA_DIR = "/app/backend/data"  # SQLite database, uploads, caches
PVC_NAME = f"{NAME}-data"
SECRET = NAME
SECRET_KEY_KEY = "WEBUI_SECRET_KEY"
SECRET_ADMIN_PASSWORD_KEY = "WEBUI_ADMIN_PASSWORD"
NO_KEY = "none"  # placeholder key for an engine without authentication (Ray Serve)
# Open WebUI 0.12.4 backend/open_webui/config.py DEFAULT_MODEL_PARAMS (JSON); "legacy" keeps
# `tools` out of chat requests (see the module docstring).
NO_NATIVE_TOOLS = json.dumps({"function_calling": "legacy"})
ADMIN_PASSWORD_NOTE = (
    "the initial password only: Open WebUI creates the admin on its first start and never "
    "reads WEBUI_ADMIN_PASSWORD again; change the password in Open WebUI (Settings > Account)"
)


def open_webui_needs(clients: tuple[Peer, ...]) -> WorkloadNeeds:
    """Serves the UI on 8080 to ``clients`` (a load balancer's sources; none when only
    port-forwarded, which enters the pod through the kubelet). Calls the engine (the
    engine lists it as a client) and nothing else: no internet (``OFFLINE_MODE``), no
    cloud identity."""
    return WorkloadNeeds(name=NAME, selector=selector(NAME), serves=(ServedPort("http", PORT, clients),))


def open_webui_pvc(namespace: str, config: OpenWebuiConfig, storage_class: str | None) -> Manifest:
    spec: Manifest = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": f"{config.storage_gib}Gi"}},
    }
    if storage_class:
        spec["storageClassName"] = storage_class
    if config.volume_name:  # bind a kept volume (README "Bind a kept chat volume again")
        spec["volumeName"] = config.volume_name
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata(PVC_NAME, namespace, "ui"),
        "spec": spec,
    }


def open_webui_deployment(
    namespace: str,
    config: OpenWebuiConfig,
    engine_url: str,
    api_key_secret: tuple[str, str] | None,
    tool_calling: bool,
) -> Manifest:
    """``engine_url`` is the in-cluster OpenAI base URL (ending in /v1); ``api_key_secret``
    is the (Secret, key) holding the engine's API key, or None for an engine without one;
    ``tool_calling``: the engine accepts ``tools`` with ``tool_choice`` "auto"."""
    key = env_from_secret("OPENAI_API_KEYS", *api_key_secret) if api_key_secret else env("OPENAI_API_KEYS", NO_KEY)
    container: Manifest = {
        "name": NAME,
        "image": config.image,
        "ports": [{"name": "http", "containerPort": PORT}],
        "env": [
            env("OPENAI_API_BASE_URLS", engine_url),
            key,
            env("ENABLE_OPENAI_API", "True"),
            env("ENABLE_OLLAMA_API", "False"),
            env("WEBUI_AUTH", "True"),
            env("ENABLE_SIGNUP", "False"),
            env("DEFAULT_USER_ROLE", "pending"),
            env("ENABLE_PERSISTENT_CONFIG", "False"),
            env("WEBUI_ADMIN_EMAIL", config.admin_email),
            env("WEBUI_ADMIN_NAME", "Admin"),
            env_from_secret("WEBUI_ADMIN_PASSWORD", SECRET, SECRET_ADMIN_PASSWORD_KEY),
            env_from_secret("WEBUI_SECRET_KEY", SECRET, SECRET_KEY_KEY),
            env("DATA_DIR", DATA_DIR),
            # Its NetworkPolicy allows no internet: don't try Hugging Face or update checks
            # (docs.openwebui.com/getting-started/env-configuration, OFFLINE_MODE).
            env("OFFLINE_MODE", "True"),
            env("ENABLE_EVALUATION_ARENA_MODELS", "False"),  # else an extra "arena-model" is listed
            *([] if tool_calling else [env("DEFAULT_MODEL_PARAMS", NO_NATIVE_TOOLS)]),
        ],
        "resources": {k: dict(v) for k, v in catalog.OPEN_WEBUI_RESOURCES.items()},
        "volumeMounts": [{"name": "data", "mountPath": DATA_DIR}],
        # First start runs database migrations.
        "startupProbe": http_probe("/health", PORT, 10, 60),
        "readinessProbe": http_probe("/health", PORT, 10, 3),
        "livenessProbe": http_probe("/health", PORT, 30, 4),
        # Root and a writable root file system, as the image is built: its Dockerfile
        # defaults to UID 0 ("non-root configurations are untested") and start.sh tees
        # its log into /app/backend (open-webui/open-webui Dockerfile, backend/start.sh).
        "securityContext": container_security(),
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(NAME, namespace, "ui"),
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},  # one ReadWriteOnce volume
            "selector": {"matchLabels": selector(NAME)},
            "template": {
                "metadata": {"labels": metadata(NAME, None, "ui")["labels"]},
                "spec": {
                    **hardened_pod(),
                    "containers": [container],
                    "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": PVC_NAME}}],
                },
            },
        },
    }


def open_webui_service(namespace: str, exposure: ServiceExposure, load_balancing: LoadBalancing) -> Manifest:
    ports = [{"name": "http", "port": SERVICE_PORT, "targetPort": "http"}]
    return service(NAME, namespace, "ui", ports, exposure, load_balancing)


def open_webui_ingress(namespace: str, route: IngressRoute) -> Manifest:
    """The UI published through the cluster's Ingress controller: every path of ``host`` to
    the Service's http port, with TLS when the route names a certificate Secret."""
    backend = {"service": {"name": NAME, "port": {"name": "http"}}}
    spec: Manifest = {
        "ingressClassName": route.class_name,
        "rules": [{"host": route.host, "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}],
    }
    if route.tls_secret:
        spec["tls"] = [{"hosts": [route.host], "secretName": route.tls_secret}]
    meta = metadata(NAME, namespace, "ui")
    if route.annotations:
        meta["annotations"] = dict(route.annotations)
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta, "spec": spec}
