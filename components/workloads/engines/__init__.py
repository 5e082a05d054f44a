"""Serving engines behind one interface (``base.Engine``), keyed by ``serving.engine``.

    base.py        the interface: manifests, endpoint, outputs, readiness, WorkloadNeeds
    vllm.py        ``vllm``: a Deployment running ``vllm serve`` and its Service
    rayservice.py  ``rayservice``: the KubeRay operator and a RayService (Ray Serve LLM)
    vllm_lws.py    ``vllm-lws``: a replica over several nodes as a LeaderWorkerSet (picked by
                   config for ``engine: vllm`` with ``nodesPerReplica > 1``)

Adding an engine: a module with an ``Engine`` subclass, one line in ``ENGINES``, and its
name in the config's ``Engine`` literal (components/config/serving.py), or a mapping to it
in ``ServingConfig.engine_kind``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from components.workloads.engines.base import (
    Endpoint,
    Engine,
    EngineContext,
    EngineObject,
    EngineOutputs,
    Operator,
)
from components.workloads.engines.rayservice import RayServiceEngine
from components.workloads.engines.vllm import VllmEngine
from components.workloads.engines.vllm_lws import VllmLwsEngine

ENGINES: Mapping[str, Engine] = MappingProxyType(
    {e.kind: e for e in (VllmEngine(), VllmLwsEngine(), RayServiceEngine())}
)

__all__ = ["ENGINES", "Endpoint", "Engine", "EngineContext", "EngineObject", "EngineOutputs", "Operator"]
