"""The serving layer on a Platform: secrets, model cache, engine, Open WebUI, benchmark.

Manifests come from the pure builders next to this file; this component only applies
them in order and collects the stack outputs. It never imports a cloud SDK.

Waiting for the engine. pulumi-kubernetes waits for a Deployment to become available,
by default for 10 minutes, far less than a 671B model needs. Engine Deployments get
custom create/update timeouts from the cold-start model (components/cold_start.py: the
engine's load and initialisation as a limit, plus the image pull, the node copy's fill
and the model cache Job's deadline when the engine waits for it), so `pulumi up`
reports either a serving engine or a real failure, and shows its progress meanwhile.
``serving.waitForReady: false`` opts out (skip-await): `pulumi up` returns once the
objects exist. Jobs are never awaited (the
engine waits for the cache marker itself; follow them with the ``*_logs`` outputs).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s

from components import catalog
from components.cold_start import ColdStart, ColdStartInputs, estimate
from components.config import OpenWebuiConfig, StackConfig
from components.kubernetes import apply, chart_release, skip_await
from components.platform import READER_SERVICE_ACCOUNT, WRITER_SERVICE_ACCOUNT, Manifest, Platform
from components.sizing import cache_job_deadline_seconds
from components.vllm_cli import serve_args
from components.workloads import backup, benchmark, compile_cache, dashboards, model_cache, monitoring, open_webui
from components.workloads.common import load_balancer_clients, selector
from components.workloads.engine import (
    IMAGE_PULL_SECONDS,
    SECRET_API_KEY,
    SECRET_API_KEY_KEY,
    SECRET_HF_TOKEN,
    SECRET_HF_TOKEN_KEY,
    EngineSettings,
)
from components.workloads.engines import ENGINES, Endpoint, Engine, EngineContext
from components.workloads.images import mirrored, through_mirror
from components.workloads.needs import Peer, WorkloadNeeds
from components.workloads.network_policy import network_policies
from components.workloads.secrets import (
    ADMIN_PASSWORD_LENGTH,
    API_KEY_LENGTH,
    WEBUI_SECRET_KEY_LENGTH,
    generated_password,
    secret,
)
from components.workloads.weights import Loader, WeightsPlan, choose_loader, plan_weights, weights_key

WEBUI_TIMEOUT = "20m"  # image pull, migrations and the first embedding-model download


@dataclass(frozen=True)
class ServingArgs:
    platform: Platform
    config: StackConfig
    hf_token: pulumi.Output[str] | None
    stack: str


def _external_url(svc: pulumi.CustomResource, port: int, path: str = "") -> pulumi.Output[str]:
    """The load balancer's address once the cloud has assigned one."""

    def url(status: Any) -> str:
        ingress = ((status or {}).get("load_balancer") or {}).get("ingress") or []
        host = (ingress[0].get("hostname") or ingress[0].get("ip")) if ingress else None
        return f"http://{host}:{port}{path}" if host else "pending (kubectl get svc)"

    return cast(k8s.core.v1.Service, svc).status.apply(url)


class Serving(pulumi.ComponentResource):
    """Everything that runs on the platform; ``outputs`` are the stack's endpoint outputs."""

    outputs: Mapping[str, pulumi.Input[Any]]
    # What each workload's pods need from the cluster (NetworkPolicies, hardening, scraping).
    needs: Mapping[str, WorkloadNeeds]

    def __init__(self, name: str, args: ServingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llm-serving:workloads:Serving", name, None, opts)
        self._args = args
        config, platform = args.config, args.platform
        self._ns = platform.namespace
        self._gpu = platform.gpu_pool(config.gpu_pool_name)
        self._store = platform.model_store
        self._bucket: pulumi.Input[str] = self._store.bucket if self._store else ""
        outputs: dict[str, pulumi.Input[Any]] = {}

        model = config.serving.model_spec
        engine = ENGINES.get(config.serving.engine_kind)
        node_scratch = self._gpu.scratch_host_path is not None
        loader = choose_loader(config.model_cache, self._store, engine.bucket_loader if engine else None, node_scratch)
        weights = plan_weights(model, loader, self._store, self._bucket, config.topology.layout.tensor)
        cold_start = self._cold_start(loader, node_scratch)
        self.cold_start: ColdStart | None = cold_start if engine else None
        settings = (
            EngineSettings.from_config(config, from_bucket=weights.from_bucket, cold_start=cold_start)
            if engine
            else None
        )
        self._compile_cache = (
            compile_cache.plan_compile_cache(
                config.serving.compile_cache,
                self._gpu,
                self._store,
                self._bucket,
                compile_cache.key_inputs(
                    settings.image,
                    model.hf_id,
                    self._gpu.gpu,
                    config.serving.engine_kind,
                    config.topology.layout.describe(),
                    [*serve_args(settings.serve_options, ()), *settings.extra_args],
                ),
            )
            if engine is not None and settings is not None
            else None
        )
        ctx = self._engine_context(settings, weights) if settings else None

        # Default deny, then what each workload declares; every workload object waits for
        # the policies (``_opts``), so no pod ever runs unconfined.
        self._policies: list[pulumi.Resource] = []
        self._needs = {needs.name: needs for needs in self._workload_needs(engine, ctx)}
        self._policies = [
            apply(f"netpol-{p['metadata']['name']}", p, self._opts())
            for p in network_policies(self._ns, platform.network, list(self._needs.values()), self._store)
        ]

        if config.monitoring.enabled and platform.monitoring is not None:
            self._monitoring(engine, ctx, outputs)

        self._hf_secret = self._hf_token_secret(args.hf_token)
        cache_job = self._model_cache(outputs) if config.model_cache.enabled else None

        if engine is not None and settings is not None and ctx is not None:
            # The image, the init containers that fill the node copy, then the engine.
            wait_seconds = settings.startup_seconds + IMAGE_PULL_SECONDS + cold_start.fill_timeout_seconds
            if cache_job is not None:
                wait_seconds += cache_job_deadline_seconds(model)
            endpoint, engine_resource = self._engine(engine, ctx, wait_seconds, outputs)
            engine_url = endpoint.url(self._ns)
            outputs["served_model_name"] = settings.served_name
            outputs["openai_base_url"] = engine_url
            outputs["local_base_url"] = f"http://localhost:{endpoint.port}{endpoint.path}"
            outputs["model_weights"] = {"loader": weights.loader, "source": weights.model_arg}
            outputs["cold_start"] = cold_start.summary()
            outputs["compile_cache"] = compile_cache.plan_outputs(self._compile_cache, self._ns)
            self._compile_cache_uploader()
            outputs["engine"] = self._engine_summary(engine, settings, wait_seconds)
            if config.serving.open_webui.enabled:
                self._open_webui(engine_url, endpoint, outputs)
            if config.benchmark.enabled:
                self._benchmark(endpoint, settings, engine_resource, wait_seconds, outputs)

        self.outputs = outputs
        self.needs = self._needs
        self.register_outputs(outputs)

    # --- helpers --------------------------------------------------------------------------

    def _cold_start(self, loader: Loader, node_scratch: bool) -> ColdStart:
        """The modelled start of the engine (components/cold_start.py) from this stack.

        Two inputs belong to other features: ``image_streaming``, from the platform's
        registry mirror (GKE image streaming on the GPU nodes; an ECR pull-through cache
        still downloads the whole image first), and ``compile_cache`` (where the JIT/compile
        caches survive: "node", or "bucket" when a new node also restores them), which is
        "none" until the compile cache's ``StackConfig.compile_cache_store`` is wired here.
        """
        config = self._args.config
        mirror = self._args.platform.image_mirror
        return estimate(
            ColdStartInputs(
                model=config.serving.model_spec,
                loader=loader,
                bucket_scheme=self._store.scheme if self._store else None,
                node_scratch=node_scratch,
                image_streaming=mirror is not None and mirror.streaming,
                compile_cache=config.compile_cache_store,
            )
        )

    def _apply_pods(self, name: str, manifest: Manifest, opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
        """Apply an object that runs pods, its images pulled through the platform's mirror."""
        return apply(name, through_mirror(manifest, self._args.platform.image_mirror), opts)

    def _opts(self, **kwargs: Any) -> pulumi.ResourceOptions:
        depends_on = [*self._policies, *kwargs.pop("depends_on", [])]
        return self._args.platform.resource_options(parent=self, depends_on=depends_on, **kwargs)

    def _workload_needs(self, engine: Engine | None, ctx: EngineContext | None) -> list[WorkloadNeeds]:
        """What every workload this stack runs declares (its NetworkPolicy's source)."""
        config, network = self._args.config, self._args.platform.network
        needs: list[WorkloadNeeds] = []
        if config.model_cache.enabled:
            needs.append(model_cache.model_cache_needs())
        if engine is None or ctx is None:
            return needs
        needs.append(engine.needs(ctx))
        if self._compile_cache is not None and self._compile_cache.store == "bucket":
            needs.append(compile_cache.uploader_needs())
        if config.serving.open_webui.enabled:
            clients = load_balancer_clients(config.serving.exposure.open_webui, network)
            ingress = self._args.platform.ingress
            if ingress is not None:  # the Ingress controller's pods proxy to the UI
                clients = (*clients, Peer(namespace=ingress.controller_namespace))
            needs.append(open_webui.open_webui_needs(clients))
        if config.benchmark.enabled:
            needs.append(benchmark.benchmark_needs(uploads=self._store is not None))
        return needs

    def _monitoring(
        self, engine: Engine | None, ctx: EngineContext | None, outputs: dict[str, pulumi.Input[Any]]
    ) -> None:
        """Scrape every workload that declares metrics; alert on the engine."""
        watch = self._args.platform.monitoring
        assert watch is not None
        settings = self._args.config.monitoring
        for needs in self._needs.values():
            scrape = monitoring.scrape_object(needs, self._ns, watch, settings.scrape_interval)
            if scrape is not None:
                apply(f"scrape-{needs.name}", scrape, self._opts(depends_on=list(watch.ready)))
        alert_names: list[str] = list(watch.platform_alerts)
        metrics = catalog.ENGINE_METRICS.get(engine.kind) if engine is not None else None
        if engine is not None and ctx is not None and metrics is not None and settings.alerts.enabled:
            rules = monitoring.engine_alerts(engine.needs(ctx), metrics, self._ns, watch, settings.alerts)
            rules_object = monitoring.rules_object("llm-serving-alerts", self._ns, watch, rules)
            apply("alerts-serving", rules_object, self._opts(depends_on=list(watch.ready)))
            alert_names += [r.name for r in rules]
        dashboard = (
            dashboards.dashboard_config_map(metrics, self._ns, watch) if engine is not None and metrics else None
        )
        if dashboard is not None:
            apply("dashboard-serving", dashboard, self._opts(depends_on=list(watch.ready)))
        elif engine is not None and metrics is not None:
            dashboards.publish(metrics, self._ns, watch)
        outputs["monitoring"] = {"backend": watch.kind, "view": watch.how_to_view, "alerts": alert_names}

    def _port_forward(self, service: str, local: int, remote: int) -> str:
        return f"kubectl -n {self._ns} port-forward svc/{service} {local}:{remote}"

    def _hf_token_secret(self, token: pulumi.Output[str] | None) -> pulumi.CustomResource | None:
        if token is None:
            return None
        return apply(
            "hf-token", secret(SECRET_HF_TOKEN, self._ns, "secrets", {SECRET_HF_TOKEN_KEY: token}), self._opts()
        )

    def _after_hf_secret(self) -> list[pulumi.Resource]:
        return [self._hf_secret] if self._hf_secret else []

    # --- model cache ----------------------------------------------------------------------

    def _model_cache(self, outputs: dict[str, pulumi.Input[Any]]) -> pulumi.CustomResource:
        store = self._store
        assert store is not None, "the config requires a bucket for the model cache"
        model = self._args.config.serving.model_spec
        job = model_cache.model_cache_job(
            self._ns, model, store, self._bucket, self._gpu, WRITER_SERVICE_ACCOUNT, self._hf_secret is not None
        )
        resource = self._apply_pods("model-cache", skip_await(job), self._opts(depends_on=self._after_hf_secret()))
        outputs["model_cache_url"] = store.url(weights_key(model))
        outputs["model_cache_logs"] = f"kubectl -n {self._ns} logs -f job/{model_cache.NAME} --all-containers"
        return resource

    # --- compile cache --------------------------------------------------------------------

    def _compile_cache_uploader(self) -> None:
        """The DaemonSet that uploads packed compile caches, when they go to the bucket."""
        plan, store = self._compile_cache, self._store
        if plan is None or plan.store != "bucket" or store is None:
            return
        apply(
            compile_cache.NAME,
            compile_cache.uploader_daemonset(self._ns, self._gpu, store, self._bucket),
            self._opts(),
        )

    # --- engines --------------------------------------------------------------------------

    def _engine_clients(self) -> tuple[Peer, ...]:
        """Pods that call the engine's API: Open WebUI and the benchmark, when enabled."""
        config = self._args.config
        clients = []
        if config.serving.open_webui.enabled:
            clients.append(Peer(selector(open_webui.NAME)))
        if config.benchmark.enabled:
            clients.append(Peer(selector(benchmark.NAME)))
        # Whoever the engine's load balancer admits (ClusterIP: nobody).
        clients += load_balancer_clients(config.serving.exposure.engine, self._args.platform.network)
        return tuple(clients)

    def _engine_context(self, settings: EngineSettings, weights: WeightsPlan) -> EngineContext:
        return EngineContext(
            namespace=self._ns,
            settings=settings,
            gpu=self._gpu,
            weights=weights,
            service_account=READER_SERVICE_ACCOUNT,
            hf_token=self._args.hf_token is not None,
            exposure=self._args.config.serving.exposure.engine,
            load_balancing=self._args.platform.load_balancing,
            clients=self._engine_clients(),
            compile_cache=self._compile_cache,
        )

    def _engine(
        self,
        engine: Engine,
        ctx: EngineContext,
        wait_seconds: int,
        outputs: dict[str, pulumi.Input[Any]],
    ) -> tuple[Endpoint, pulumi.Resource]:
        """Apply whatever the engine is made of; the engine decides, this only orders."""
        config = self._args.config
        endpoint = engine.endpoint()
        before: list[pulumi.Resource] = self._after_hf_secret()
        if endpoint.api_key:
            api_key = generated_password("vllm-api-key", API_KEY_LENGTH, self)
            before.append(
                apply(
                    "vllm-api-key",
                    secret(SECRET_API_KEY, self._ns, "engine", {SECRET_API_KEY_KEY: api_key}),
                    self._opts(),
                )
            )
            outputs["api_key"] = pulumi.Output.secret(api_key)
        for operator in engine.operators():
            if operator.chart.name in self._args.platform.preinstalled_operators:
                continue  # the cluster runs it already (an existing cluster's own)
            before.append(
                chart_release(
                    operator.name, operator.chart, self._opts(), namespace=operator.namespace, create_namespace=True
                )
            )
        # Later objects (the benchmark) wait for the awaited object, else the first one.
        main: pulumi.Resource | None = None
        service: pulumi.CustomResource | None = None
        minutes = f"{math.ceil(wait_seconds / 60)}m"
        self._pulumi_waits = False
        for obj in engine.objects(ctx):
            manifest, opts = obj.manifest, self._opts(depends_on=before)
            if obj.awaited and config.serving.wait_for_ready:
                opts = self._opts(
                    depends_on=before, custom_timeouts=pulumi.CustomTimeouts(create=minutes, update=minutes)
                )
                self._pulumi_waits = True
            elif obj.awaited:
                manifest = skip_await(manifest)
            resource = self._apply_pods(obj.name, manifest, opts)
            if obj.awaited or main is None:
                main = resource
            if manifest.get("kind") == "Service" and manifest["metadata"]["name"] == endpoint.service:
                service = resource
        assert main is not None, f"engine {engine.kind} declared no objects"
        engine_outputs = engine.outputs(ctx)
        outputs["port_forward"] = dict(engine_outputs.port_forward)
        outputs.update(engine_outputs.extra)
        if service is not None and config.serving.exposure.engine.type == "LoadBalancer":
            outputs["engine_external_url"] = _external_url(service, endpoint.port, endpoint.path)
        return endpoint, main

    def _engine_summary(self, engine: Engine, settings: EngineSettings, wait_seconds: int) -> dict[str, Any]:
        config = self._args.config
        report = config.sizing
        assert report is not None
        topology = config.topology
        summary: dict[str, Any] = {
            "kind": engine.kind,
            "image": mirrored(settings.image, self._args.platform.image_mirror),
            "profile": topology.profile,
            "layout": topology.layout.describe(),
            "gpus_per_replica": settings.gpus,
            "max_model_len": settings.max_model_len,
            "kv_cache_tokens_estimate": report.tokens_fit,
            "kv_cache_tokens_per_replica_estimate": report.replica_tokens,
            "startup_budget_minutes": math.ceil(settings.startup_seconds / 60),
            "ready_when": engine.ready_when,
        }
        if self._pulumi_waits:
            summary["pulumi_waits_minutes"] = math.ceil(wait_seconds / 60)  # the awaited object's timeout
        return summary

    # --- Open WebUI -----------------------------------------------------------------------

    def _open_webui(self, engine_url: str, endpoint: Endpoint, outputs: dict[str, pulumi.Input[Any]]) -> None:
        config = self._args.config.serving
        ui = config.open_webui
        password = generated_password("open-webui-admin-password", ADMIN_PASSWORD_LENGTH, self)
        data = {
            open_webui.SECRET_KEY_KEY: generated_password("open-webui-secret-key", WEBUI_SECRET_KEY_LENGTH, self),
            open_webui.SECRET_ADMIN_PASSWORD_KEY: password,
        }
        ui_secret = apply("open-webui-secret", secret(open_webui.SECRET, self._ns, "ui", data), self._opts())
        pvc = self._open_webui_volume(ui, outputs)
        key = (SECRET_API_KEY, SECRET_API_KEY_KEY) if endpoint.api_key else None
        # Only the vllm engine renders the tool-calling flags (components/vllm_cli.py serve_args).
        tool_calling = config.engine == "vllm" and config.model_spec.tool_call_parser is not None
        self._apply_pods(
            open_webui.NAME,
            open_webui.open_webui_deployment(self._ns, ui, engine_url, key, tool_calling),
            self._opts(
                depends_on=[ui_secret, pvc],
                custom_timeouts=pulumi.CustomTimeouts(create=WEBUI_TIMEOUT, update=WEBUI_TIMEOUT),
            ),
        )
        svc = apply(
            f"{open_webui.NAME}-svc",
            open_webui.open_webui_service(self._ns, config.exposure.open_webui, self._args.platform.load_balancing),
            self._opts(),
        )
        port_forward = dict(cast(dict[str, str], outputs.get("port_forward", {})))
        port_forward["open_webui"] = self._port_forward(open_webui.NAME, open_webui.PORT, open_webui.SERVICE_PORT)
        outputs["port_forward"] = port_forward
        outputs["open_webui_admin_email"] = ui.admin_email
        outputs["open_webui_admin_password"] = pulumi.Output.secret(password)
        outputs["open_webui_admin_password_note"] = open_webui.ADMIN_PASSWORD_NOTE
        if config.exposure.open_webui.type == "LoadBalancer":
            outputs["open_webui_url"] = _external_url(svc, open_webui.SERVICE_PORT)
        ingress = self._args.platform.ingress
        if ingress is not None:
            apply(
                f"{open_webui.NAME}-ingress",
                open_webui.open_webui_ingress(self._ns, ingress),
                self._opts(depends_on=[svc]),
            )
            outputs["open_webui_url"] = ingress.url

    def _open_webui_volume(self, ui: OpenWebuiConfig, outputs: dict[str, pulumi.Input[Any]]) -> pulumi.CustomResource:
        """The chat volume, kept through `pulumi destroy`, namespace and storage-class
        changes and cluster replacements: its class retains the disk when the claim goes
        (whoever deletes it: Pulumi, a namespace deletion, a cluster deletion), and
        Pulumi never deletes the claim itself (retain_on_delete). A replaced claim gets a
        new volume; the README says how to bind the kept one again, and backups go to
        the bucket on a schedule."""
        platform = self._args.platform
        storage_class, depends_on = platform.storage_class, list[pulumi.Resource]()
        if platform.retained_storage_class is not None:
            storage_class = platform.retained_storage_class["metadata"]["name"]
            depends_on.append(apply("retained-storage-class", platform.retained_storage_class, self._opts()))
        # The claim binds when the pod is scheduled (WaitForFirstConsumer): don't wait for it.
        pvc = apply(
            "open-webui-data",
            skip_await(open_webui.open_webui_pvc(self._ns, ui, storage_class)),
            self._opts(depends_on=depends_on, retain_on_delete=True),
        )
        store = self._store
        if ui.backup.enabled and store is not None and store.backup_service_account:
            self._apply_pods(
                backup.NAME,
                backup.backup_cronjob(self._ns, ui.backup, ui.image, store, self._bucket),
                self._opts(depends_on=[pvc]),
            )
            outputs["open_webui_backups"] = store.url(backup.PREFIX)
        return pvc

    # --- benchmark ------------------------------------------------------------------------

    def _benchmark(
        self,
        endpoint: Endpoint,
        settings: EngineSettings,
        engine: pulumi.Resource,
        engine_wait_seconds: int,
        outputs: dict[str, pulumi.Input[Any]],
    ) -> None:
        config = self._args.config
        base_url = endpoint.url(self._ns, with_path=False)
        job = benchmark.benchmark_job(
            self._ns,
            config.benchmark,
            base_url,
            settings.served_name,
            settings.model,
            self._args.stack,
            self._store,
            self._bucket,
            WRITER_SERVICE_ACCOUNT,
            api_key=endpoint.api_key,
            hf_token=self._hf_secret is not None,
            engine_wait_seconds=engine_wait_seconds,
            engine_metrics=config.serving.engine == "vllm",  # Ray: see components/workloads/benchmark.py
        )
        self._apply_pods(benchmark.NAME, skip_await(job), self._opts(depends_on=[engine, *self._after_hf_secret()]))
        outputs["benchmark_logs"] = f"kubectl -n {self._ns} logs -f job/{benchmark.NAME} --all-containers --prefix"
        if self._store is not None:
            outputs["benchmark_results"] = self._store.url(benchmark.results_key(self._args.stack))
