"""The one interface every serving engine implements.

The Serving component (components/workloads/serving.py) knows engines only through this:
it asks an engine for the operators it needs (Helm charts), the Kubernetes objects it is
made of (and which one Pulumi awaits), where clients reach it, what it adds to the stack
outputs, and what its pods need from the cluster (``WorkloadNeeds``: served ports and
their clients, peer ports, egress, capabilities, metrics), from which NetworkPolicies,
pod hardening and scraping are derived. A new engine (a multi-node LeaderWorkerSet, say)
is a new module registered in ``components/workloads/engines/__init__.py``, not a branch
in the Serving component.

Manifests stay pure data: an engine never creates Pulumi resources itself.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from components import catalog
from components.config import ServiceExposure
from components.platform import GpuNodes, LoadBalancing, Manifest
from components.workloads.compile_cache import CompileCachePlan
from components.workloads.engine import EngineSettings
from components.workloads.needs import Peer, WorkloadNeeds
from components.workloads.weights import Loader, WeightsPlan


@dataclass(frozen=True)
class EngineContext:
    """Everything an engine builds from: the sized settings and where it runs."""

    namespace: str
    settings: EngineSettings
    gpu: GpuNodes
    weights: WeightsPlan
    service_account: str  # the platform's bucket reader
    hf_token: bool  # the stack's Hugging Face token Secret exists
    exposure: ServiceExposure
    load_balancing: LoadBalancing
    clients: tuple[Peer, ...] = ()  # pods that call the engine's API (Open WebUI, benchmark)
    # Where the engine's compile/JIT caches live and how they are restored (None: off);
    # every engine puts its environment and restore steps on its GPU pods.
    compile_cache: CompileCachePlan | None = None


@dataclass(frozen=True)
class Endpoint:
    """Where clients inside the cluster reach the OpenAI-compatible API."""

    service: str  # Kubernetes Service name
    port: int
    path: str = "/v1"
    api_key: bool = False  # clients must present the stack's engine key (Secret SECRET_API_KEY)

    def url(self, namespace: str, with_path: bool = True) -> str:
        path = self.path if with_path else ""
        return f"http://{self.service}.{namespace}.svc.cluster.local:{self.port}{path}"


@dataclass(frozen=True)
class Operator:
    """A Helm chart the engine's objects need (a CRD and its controller)."""

    name: str  # Pulumi resource name
    chart: catalog.Chart
    namespace: str


@dataclass(frozen=True)
class EngineObject:
    """One Kubernetes object of the engine, in apply order.

    ``awaited``: Pulumi waits until this object reports the engine serving, within the
    start-up budget (``serving.waitForReady: false`` turns that into skip-await).
    Other objects are applied with the provider's ordinary await.
    """

    name: str  # Pulumi resource name
    manifest: Manifest
    awaited: bool = False


@dataclass(frozen=True)
class EngineOutputs:
    """What the engine adds to the stack outputs."""

    port_forward: Mapping[str, str] = field(default_factory=dict)  # name -> kubectl command
    extra: Mapping[str, Any] = field(default_factory=dict)


class Engine(ABC):
    """A serving engine, keyed in the registry by the config's ``serving.engine``."""

    kind: str
    # The engine's own way of reading weights from the stack's bucket, if it has one
    # (Ray Serve LLM mirrors the files itself); None: the stack's loader choice applies.
    bucket_loader: Loader | None = None
    # One sentence for outputs and docs: what "ready" means for this engine.
    ready_when: str

    @abstractmethod
    def endpoint(self) -> Endpoint: ...

    def operators(self) -> Sequence[Operator]:
        return ()

    @abstractmethod
    def objects(self, ctx: EngineContext) -> Sequence[EngineObject]: ...

    @abstractmethod
    def needs(self, ctx: EngineContext) -> WorkloadNeeds: ...

    @abstractmethod
    def outputs(self, ctx: EngineContext) -> EngineOutputs: ...


def port_forward(namespace: str, service: str, local: int, remote: int) -> str:
    return f"kubectl -n {namespace} port-forward svc/{service} {local}:{remote}"
