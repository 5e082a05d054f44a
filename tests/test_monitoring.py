"""Monitoring: scrape objects from the workloads' declarations, alert rules a real PromQL parser
accepts, querying only series the pinned vLLM exports; one switch turns it all off.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import promql_parser
import pytest
from test_config import only_problem, raw

from components import catalog
from components.aws import monitoring as aws_monitoring
from components.catalog.metrics import ray_name
from components.config import ConfigError, GcpPlatformConfig, parse
from components.config.monitoring import AlertsConfig
from components.gcp import node_alerts
from components.platform import Monitoring
from components.workloads import dashboards, monitoring
from components.workloads.needs import MetricsEndpoint, WorkloadNeeds
from conftest import assert_valid
from tools.offline import StackRun

# What vLLM 0.33.0 exports, by type (wheel vllm-0.33.0: vllm/v1/metrics/loggers.py L528-L1011,
# vllm/v1/spec_decode/metrics.py L229-231); prometheus_client adds _total to counters and
# _bucket/_sum/_count to histograms.
VLLM_GAUGES = {"vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc"}
VLLM_COUNTERS = {
    "vllm:prefix_cache_queries",
    "vllm:prefix_cache_hits",
    "vllm:num_preemptions",
    "vllm:generation_tokens",
    "vllm:spec_decode_num_draft_tokens",
    "vllm:spec_decode_num_accepted_tokens",
}
VLLM_HISTOGRAMS = {
    "vllm:time_to_first_token_seconds",
    "vllm:inter_token_latency_seconds",
    "vllm:request_time_per_output_token_seconds",
    "vllm:e2e_request_latency_seconds",
    "vllm:request_queue_time_seconds",
}
VLLM_SERIES = (
    VLLM_GAUGES
    | {f"{c}_total" for c in VLLM_COUNTERS}
    | {f"{h}{s}" for h in VLLM_HISTOGRAMS for s in ("_bucket", "_sum", "_count")}
)
# Series Prometheus itself adds per target.
SCRAPE_SERIES = {"up"}

GMP = Monitoring(kind="gmp", namespace="gmp-system")
OPERATOR = Monitoring(kind="prometheus-operator", namespace="monitoring", object_labels={"release": "kps"})
ENGINE = WorkloadNeeds("vllm", {"app.kubernetes.io/name": "vllm"}, metrics=MetricsEndpoint("http"))


def selectors(node: Any) -> Iterator[str]:
    """Every metric name an expression's AST selects."""
    if isinstance(node, promql_parser.VectorSelector) and node.name is not None:
        yield node.name
    for attr in ("lhs", "rhs", "expr", "args", "param", "vector_selector"):
        child = getattr(node, attr, None)
        for c in child if isinstance(child, list) else [child]:
            if c is not None and not isinstance(c, str | int | float):
                yield from selectors(c)


def rules_of(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        r for o in objects if o["kind"] in ("Rules", "PrometheusRule") for g in o["spec"]["groups"] for r in g["rules"]
    ]


def test_every_engine_metric_name_is_one_vllm_0_33_exports() -> None:
    names = {getattr(catalog.VLLM_METRICS, f) for f in catalog.VLLM_METRICS.__dataclass_fields__}
    histograms = {n for n in names if n in VLLM_HISTOGRAMS}
    assert names - histograms <= VLLM_SERIES and histograms


def test_ray_serve_llm_names_are_the_sanitised_vllm_names_with_rays_prefix() -> None:
    assert catalog.RAY_LLM_METRICS.kv_cache_usage == "ray_vllm_kv_cache_usage_perc"
    assert catalog.RAY_LLM_METRICS.ttft == "ray_vllm_time_to_first_token_seconds"
    assert ray_name("vllm:num_preemptions_total") == "ray_vllm_num_preemptions_total"


@pytest.mark.parametrize("backend", [GMP, OPERATOR], ids=["gmp", "operator"])
def test_scrape_object_comes_from_the_declared_endpoint(backend: Monitoring) -> None:
    obj = monitoring.scrape_object(ENGINE, "llm", backend, "30s")
    assert obj is not None
    assert_valid([obj])
    endpoints = obj["spec"]["endpoints" if backend.kind == "gmp" else "podMetricsEndpoints"]
    assert endpoints == [{"port": "http", "path": "/metrics", "interval": "30s"}]
    assert obj["spec"]["selector"] == {"matchLabels": {"app.kubernetes.io/name": "vllm"}}
    assert obj["metadata"].get("labels", {}) == dict(backend.object_labels)


def test_a_workload_without_metrics_is_not_scraped() -> None:
    assert monitoring.scrape_object(WorkloadNeeds("webui", {"a": "b"}), "llm", GMP, "30s") is None


@pytest.mark.parametrize("backend", [GMP, OPERATOR], ids=["gmp", "operator"])
@pytest.mark.parametrize("metrics", [catalog.VLLM_METRICS, catalog.RAY_LLM_METRICS], ids=["vllm", "ray"])
def test_alert_rules_parse_and_query_only_exported_series(backend: Monitoring, metrics: catalog.EngineMetrics) -> None:
    rules = monitoring.engine_alerts(ENGINE, metrics, "llm", backend, AlertsConfig())
    obj = monitoring.rules_object("llm-serving-alerts", "llm", backend, rules)
    assert_valid([obj])
    exported = VLLM_SERIES if metrics is catalog.VLLM_METRICS else {ray_name(n) for n in VLLM_SERIES}
    for rule in rules_of([obj]):
        names = set(selectors(promql_parser.parse(rule["expr"])))
        assert names and names <= exported | SCRAPE_SERIES, (rule["alert"], names - exported)
    assert {r.name for r in rules} == {"EngineDown", "KvCacheNearlyFull", "RequestQueueGrowing", "SlowTimeToFirstToken"}


def test_thresholds_come_from_config() -> None:
    alerts = AlertsConfig.model_validate({"ttftP95Seconds": 2.5, "kvCacheUsage": 0.95, "forDuration": "3m"})
    rules = {r.name: r for r in monitoring.engine_alerts(ENGINE, catalog.VLLM_METRICS, "llm", GMP, alerts)}
    assert rules["SlowTimeToFirstToken"].expr.endswith("> 2.5")
    assert rules["KvCacheNearlyFull"].expr.endswith("> 0.95") and rules["KvCacheNearlyFull"].for_duration == "3m"


def test_engine_down_names_the_scrape_job_each_backend_gives() -> None:
    gmp = monitoring.engine_alerts(ENGINE, catalog.VLLM_METRICS, "llm", GMP, AlertsConfig())[0]
    operator = monitoring.engine_alerts(ENGINE, catalog.VLLM_METRICS, "llm", OPERATOR, AlertsConfig())[0]
    assert 'job="vllm-metrics"' in gmp.expr and 'job="llm/vllm-metrics"' in operator.expr


def test_gpu_alerts_only_where_the_cluster_exports_their_series() -> None:
    with_dcgm = Monitoring(
        "prometheus-operator",
        "monitoring",
        available_series=frozenset(
            {"DCGM_FI_DEV_XID_ERRORS", "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "kube_node_status_condition"}
        ),
    )
    rules = monitoring.engine_alerts(ENGINE, catalog.VLLM_METRICS, "llm", with_dcgm, AlertsConfig())
    gpu = [r for r in rules if r.name.startswith("Gpu")]
    assert {r.name for r in gpu} == {"GpuXidError", "GpuUncorrectableEcc"}
    with_all = Monitoring("prometheus-operator", "monitoring", available_series=aws_monitoring.AVAILABLE_SERIES)
    rules = monitoring.engine_alerts(ENGINE, catalog.VLLM_METRICS, "llm", with_all, AlertsConfig())
    gpu = [r for r in rules if r.name.startswith("Gpu")]
    assert {r.name for r in gpu} == {"GpuXidError", "GpuUncorrectableEcc", "GpuRowRemapFailure", "GpuNodeNotReady"}
    for rule in gpu:
        promql_parser.parse(rule.expr)
    assert not [
        r
        for r in monitoring.engine_alerts(ENGINE, catalog.VLLM_METRICS, "llm", GMP, AlertsConfig())
        if r.name.startswith("Gpu")
    ]


def test_gke_stack_scrapes_the_engine_and_alerts(a4high: StackRun) -> None:
    objects = [o for o in a4high.kubernetes_objects() if o["apiVersion"] == monitoring.GMP_API]
    assert sorted(o["kind"] for o in objects) == ["GlobalRules", "PodMonitoring", "Rules"]
    assert_valid(objects)
    assert a4high.outputs["monitoring"]["backend"] == "gmp"
    # The NetworkPolicy lets GMP's collectors reach the same port.
    policy = next(
        o
        for o in a4high.kubernetes_objects()
        if o["kind"] == "NetworkPolicy" and o["metadata"]["name"].startswith("vllm")
    )
    scrape_port = next(o for o in objects if o["kind"] == "PodMonitoring")["spec"]["endpoints"][0]["port"]
    assert any(
        p.get("port") == scrape_port and any(f.get("namespaceSelector") for f in rule["from"])
        for rule in policy["spec"]["ingress"]
        for p in rule.get("ports", [])
    )


def test_one_switch_turns_monitoring_off(run_with: Callable[..., StackRun]) -> None:
    run = run_with("a4high", {"llm-serving:monitoring": {"enabled": False}})
    assert run.error is None and run.of_type("kubernetes:apps/v1:Deployment")
    assert not [o for o in run.kubernetes_objects() if o["apiVersion"] == monitoring.GMP_API]
    assert "monitoring" not in run.outputs


def test_eks_installs_prometheus_and_scrapes_the_engine(eks: StackRun) -> None:
    objects = [o for o in eks.kubernetes_objects() if o["apiVersion"] == monitoring.OPERATOR_API]
    assert sorted(o["kind"] for o in objects) == ["PodMonitor", "PrometheusRule"]
    assert_valid(objects)
    charts = {r.inputs["chart"]: r for r in eks.of_type("kubernetes:helm.sh/v3:Release")}
    assert charts["kube-prometheus-stack"].inputs["version"] == catalog.KUBE_PROMETHEUS_STACK_CHART.version
    assert charts["dcgm-exporter"].inputs["version"] == catalog.DCGM_EXPORTER_CHART.version
    assert "grafana_admin_password" in eks.secret_outputs
    alerts = eks.outputs["monitoring"]["alerts"]
    assert "GpuXidError" in alerts and "GpuNodeNotReady" in alerts


def _dcgm_fields(csv: str) -> dict[str, str]:
    """dcgm-exporter's counters file: ``field, type, help`` per line, ``#`` comments."""
    fields = {}
    for line in csv.splitlines():
        if line.strip() and not line.startswith("#"):
            field, kind, help_text = (part.strip() for part in line.split(",", 2))
            assert field.startswith(("DCGM_FI_", "DCGM_EXP_")) and kind in ("gauge", "counter") and help_text, line
            fields[field] = kind
    return fields


def test_eks_dcgm_exporter_watches_xid_ecc_and_row_remapping(eks: StackRun) -> None:
    """The chart's own list leaves ECC out; ours (its whole list: customMetrics is not
    additive) carries every DCGM series the alerts and dashboard use."""
    (dcgm,) = [r for r in eks.of_type("kubernetes:helm.sh/v3:Release") if r.inputs["chart"] == "dcgm-exporter"]
    fields = _dcgm_fields(dcgm.inputs["values"]["customMetrics"])
    assert fields["DCGM_FI_DEV_XID_ERRORS"] == "gauge" and fields["DCGM_FI_DEV_ROW_REMAP_FAILURE"] == "gauge"
    assert fields["DCGM_FI_DEV_ECC_DBE_VOL_TOTAL"] == "counter" and "DCGM_EXP_XID_ERRORS_COUNT" in fields
    assert set(fields) >= DCGM_SERIES
    assert {s for s in aws_monitoring.AVAILABLE_SERIES if s.startswith("DCGM_")} == set(fields)


def test_eks_alerts_cover_gpu_faults_and_query_only_series_the_cluster_has(eks: StackRun) -> None:
    (rule_object,) = [o for o in eks.kubernetes_objects() if o["kind"] == "PrometheusRule"]
    rules = {r["alert"]: r for r in rules_of([rule_object])}
    assert {"GpuXidError", "GpuUncorrectableEcc", "GpuRowRemapFailure", "GpuNodeNotReady"} <= set(rules)
    # The windowed count, which names the XID and resolves, not the last-XID gauge, which never does.
    assert "DCGM_EXP_XID_ERRORS_COUNT" in rules["GpuXidError"]["expr"] and "xid" in rules["GpuXidError"]["expr"]
    for rule in rules.values():
        names = set(selectors(promql_parser.parse(rule["expr"])))
        engine = VLLM_SERIES | {ray_name(n) for n in VLLM_SERIES}  # the eks stack serves through Ray
        assert names <= engine | SCRAPE_SERIES | aws_monitoring.AVAILABLE_SERIES, (rule["alert"], names)


def test_gke_alerts_on_nodes_not_ready_from_gkes_node_metric(a4high: StackRun) -> None:
    (rules,) = [o for o in a4high.kubernetes_objects() if o["kind"] == "GlobalRules"]
    assert_valid([rules])
    assert "namespace" not in rules["metadata"]  # cluster-scoped: the only kind that reads system metrics
    (rule,) = rules_of([{**rules, "kind": "Rules"}])
    assert rule["alert"] == "NodeNotReady" and rule["for"] == node_alerts.NOT_READY_FOR
    assert "NodeNotReady" in a4high.outputs["monitoring"]["alerts"]
    expr = promql_parser.parse(rule["expr"])
    assert set(selectors(expr)) == {"kubernetes_io:node_status_condition"}
    platform = parse(raw("a4high")).platform
    assert isinstance(platform, GcpPlatformConfig)
    for matcher in (
        f'project_id="{platform.project}"',
        f'cluster_name="{platform.cluster_name}"',
        'condition="Ready"',
        'status!="True"',
    ):
        assert matcher in rule["expr"], matcher


@pytest.mark.parametrize("change", [{"enabled": False}, {"alerts": {"enabled": False}}], ids=["monitoring", "alerts"])
def test_gke_node_alerts_follow_the_switches(run_with: Callable[..., StackRun], change: dict[str, Any]) -> None:
    run = run_with("a4high", {"llm-serving:monitoring": change})
    assert run.error is None and not [o for o in run.kubernetes_objects() if o["kind"] == "GlobalRules"]


def test_eks_monitoring_stack_stays_off_the_gpu_nodes_but_the_exporter(eks: StackRun) -> None:
    charts = {r.inputs["chart"]: r.inputs.get("values", {}) for r in eks.of_type("kubernetes:helm.sh/v3:Release")}
    stack = charts["kube-prometheus-stack"]
    # No component of the stack is given the GPU taint's toleration (node-exporter keeps its
    # chart default, which tolerates every NoSchedule taint: it is an exporter too).
    assert "nvidia.com/gpu" not in str(stack)
    dcgm = charts["dcgm-exporter"]
    assert dcgm["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert dcgm["nodeSelector"] == {"nvidia.com/gpu.present": "true"}


def test_grafana_has_a_generated_password_and_no_anonymous_access(eks: StackRun) -> None:
    values = next(
        r for r in eks.of_type("kubernetes:helm.sh/v3:Release") if r.inputs["chart"] == "kube-prometheus-stack"
    )
    grafana = values.inputs["values"]["grafana"]
    assert grafana["grafana.ini"]["auth.anonymous"]["enabled"] is False
    assert grafana["admin"]["existingSecret"] == "grafana-admin"
    assert "adminPassword" not in grafana
    spec = values.inputs["values"]["prometheus"]["prometheusSpec"]
    assert spec["retention"] == catalog.PROMETHEUS_RETENTION
    assert spec["storageSpec"]["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"] == "50Gi"


def test_eks_monitoring_switch_removes_the_stack(run_with: Callable[..., StackRun]) -> None:
    run = run_with("eks", {"llm-serving:monitoring": {"enabled": False}})
    assert run.error is None and run.of_type("kubernetes:helm.sh/v3:Release")
    assert not [r for r in run.of_type("kubernetes:helm.sh/v3:Release") if r.inputs["chart"] == "kube-prometheus-stack"]
    assert not [o for o in run.kubernetes_objects() if o["apiVersion"].startswith("monitoring.")]


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"scrapeInterval": "30"}, "llm-serving:monitoring.scrapeInterval"),
        ({"enabled": "no"}, "llm-serving:monitoring.enabled"),
        ({"alerts": {"ttftP95Seconds": 0}}, "llm-serving:monitoring.alerts.ttftP95Seconds"),
        ({"alerts": {"kvCacheUsage": 1.5}}, "llm-serving:monitoring.alerts.kvCacheUsage"),
        ({"alerts": {"forDuration": "ten minutes"}}, "llm-serving:monitoring.alerts.forDuration"),
        ({"alerts": {"channel": "x"}}, "llm-serving:monitoring.alerts.channel"),
    ],
)
def test_bad_monitoring_config_names_its_key(change: dict[str, Any], key: str) -> None:
    assert key in only_problem("a4high", {"monitoring": change})


def test_defaults_parse() -> None:
    config = parse(raw("a4high"))
    assert config.monitoring.enabled and config.monitoring.alerts.kv_cache_usage == 0.9
    with pytest.raises(ConfigError):
        parse(raw("a4high", {"monitoring": {"scrapeInterval": "0s"}}))


# --- dashboards ----------------------------------------------------------------------------

DCGM_SERIES = {"DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED"}  # dcgm-exporter default-counters.csv


@pytest.mark.parametrize("metrics", [catalog.VLLM_METRICS, catalog.RAY_LLM_METRICS], ids=["vllm", "ray"])
def test_dashboard_panels_query_only_exported_series(metrics: catalog.EngineMetrics) -> None:
    board = dashboards.serving_dashboard(metrics, "llm", gpu=True)
    assert json.loads(json.dumps(board)) == board
    exported = VLLM_SERIES if metrics is catalog.VLLM_METRICS else {ray_name(n) for n in VLLM_SERIES}
    titles = [p["title"] for p in board["panels"]]
    assert {"KV cache usage", "Time to first token", "Inter-token latency", "GPU utilisation"} <= set(titles)
    for panel in board["panels"]:
        for target in panel["targets"]:
            names = set(selectors(promql_parser.parse(target["expr"].replace("$__rate_interval", "5m"))))
            assert names and names <= exported | DCGM_SERIES, (panel["title"], names)


def test_eks_grafana_loads_the_dashboard_from_a_labelled_config_map(eks: StackRun) -> None:
    (config_map,) = [
        o for o in eks.kubernetes_objects() if o["kind"] == "ConfigMap" and "dashboard" in o["metadata"]["name"]
    ]
    assert_valid([config_map])
    assert config_map["metadata"]["labels"] == {"grafana_dashboard": "1"}
    board = json.loads(config_map["data"]["llm-serving.json"])
    assert any(p["title"] == "GPU utilisation" for p in board["panels"])  # dcgm-exporter is installed


def test_gke_has_no_grafana_config_map(a4high: StackRun) -> None:
    assert not [
        o for o in a4high.kubernetes_objects() if o["kind"] == "ConfigMap" and "dashboard" in o["metadata"]["name"]
    ]


def test_gke_publishes_the_dashboard_to_cloud_monitoring(a4high: StackRun) -> None:
    (board,) = a4high.of_type("gcp:monitoring/dashboard:Dashboard")
    spec = json.loads(board.inputs["dashboardJson"])
    tiles = spec["mosaicLayout"]["tiles"]
    assert spec["displayName"] == "LLM serving (llm)" and len(tiles) == 11  # no DCGM series declared on GKE
    for tile in tiles:
        for data in tile["widget"]["xyChart"]["dataSets"]:
            names = set(selectors(promql_parser.parse(data["timeSeriesQuery"]["prometheusQuery"])))
            assert names and names <= VLLM_SERIES, (tile["widget"]["title"], names)
