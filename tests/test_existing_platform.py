"""The existing-cluster platform on the mock engine: what `pulumi up --stack onprem` would declare.

Every assertion reads the recorded resources of a real run of ``__main__.py`` with
``Pulumi.onprem.yaml`` (or a variant of it), or the config's own verdict; pure builders
are tested directly where a property must hold for every configuration.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from test_config import only_problem, problems, raw

from components import catalog
from components.config import ExistingPlatformConfig, parse
from components.config.existing import ExistingGpuPoolConfig
from components.existing.gpu_pools import device_plugin_values, gpu_nodes
from components.platform import SERVICE_ACCOUNTS
from conftest import assert_valid
from tools.offline import SECRET_PLACEHOLDER, StackRun

PLATFORM = "llm-serving:platform"
SERVING = "llm-serving:serving"
RELEASE = "kubernetes:helm.sh/v3:Release"
PROVIDER = "pulumi:providers:kubernetes"
# The stack's volume store's own keys, removed where a test changes the store's kind.
VOLUME_KEYS: dict[str, Any] = {"storageClass": None, "sizeGib": None, "keepOnDestroy": None}
POOL: dict[str, Any] = {
    "name": "a100",
    "gpu": "A100-40G",
    "gpusPerNode": 8,
    "nodeCount": 8,
    "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB"},
    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    "rdma": {"resources": {"rdma/ib": "1"}},
}
# One replica of the distilled 70B on one node: the lighter layout the stack file names.
DISTILLED = {
    "model": "deepseek-ai/DeepSeek-R1-Distill-Llama-70B",
    "servedModelName": "r1-distill-70b",
    "tensorParallelSize": 8,
    "pipelineParallelSize": 1,
    "nodesPerReplica": 1,
    "replicas": 1,
    "expertParallel": None,
}


def pool(**changes: Any) -> dict[str, Any]:
    return {**POOL, **changes}


def containers(obj: Any) -> Iterator[dict[str, Any]]:
    """Every container and init container anywhere in a manifest."""
    if isinstance(obj, list):
        for item in obj:
            yield from containers(item)
    elif isinstance(obj, dict):
        for key, value in obj.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                yield from (c for c in value if isinstance(c, dict))
            yield from containers(value)


# --- the stack file -----------------------------------------------------------------------


def test_onprem_stack_validates_and_its_layout_fits() -> None:
    config = parse(raw("onprem"))
    assert isinstance(config.platform, ExistingPlatformConfig)
    layout = config.topology.layout
    assert (layout.tensor, layout.pipeline, layout.nodes, layout.expert) == (8, 4, 4, False)
    report = config.sizing
    assert report is not None and not report.problems
    assert report.max_model_len >= 32768  # R1's reasoning traces are long


def test_seeds_layout_is_refused_with_the_numbers() -> None:
    """The recipe's TP 8 x PP 2 on 8 x A100 40 GB nodes (16 GPUs, 640 GB) cannot hold R1's
    FP8 weights: the gate says how much each GPU would need and how much it has."""
    seed = {"serving": {"pipelineParallelSize": 2, "nodesPerReplica": 2, "replicas": 1}}
    message = only_problem("onprem", seed)
    assert message.startswith("llm-serving:serving.tensorParallelSize = 8:")
    assert "need 41.11 GiB per GPU on 16 x A100-40G (39.39 GiB each" in message
    assert "more than the 35.45 GiB vLLM may use at gpu_memory_utilization 0.9" in message


def test_the_distilled_model_on_one_node_is_accepted() -> None:
    config = parse(raw("onprem", {"serving": DISTILLED}))
    assert config.topology.layout.nodes == 1
    assert config.sizing is not None and not config.sizing.problems


def test_onprem_plans_with_strictly_valid_manifests(onprem: StackRun) -> None:
    assert_valid(onprem.kubernetes_objects())
    kinds = {o["kind"] for o in onprem.kubernetes_objects()}
    assert {"Namespace", "ServiceAccount", "RayService", "NetworkPolicy", "Deployment"} <= kinds


def test_every_kubernetes_resource_goes_through_the_stacks_provider(onprem: StackRun) -> None:
    providers = onprem.of_type(PROVIDER)
    assert [p.name for p in providers] == ["existing-kubernetes"]
    kube = [r for r in onprem.resources if r.custom and r.type.startswith("kubernetes:")]
    assert kube and all(r.provider.rsplit("::", 1)[0] == providers[0].urn for r in kube)


def test_ambient_kubeconfig_names_the_context_and_the_cluster(onprem: StackRun) -> None:
    provider = onprem.one(PROVIDER).inputs
    assert "kubeconfig" not in provider
    assert provider["context"] == "onprem-a100"
    # A rotated or moved kubeconfig updates the provider; it does not replace every object.
    assert provider["clusterIdentifier"] == "onprem-a100"


def test_namespace_and_service_accounts(onprem: StackRun) -> None:
    objects = onprem.kubernetes_objects()
    assert {"kind": "Namespace", "name": "llm"} in [
        {"kind": o["kind"], "name": o["metadata"]["name"]} for o in objects if o["kind"] == "Namespace"
    ]
    accounts = [o for o in objects if o["kind"] == "ServiceAccount"]
    assert sorted(a["metadata"]["name"] for a in accounts) == sorted(SERVICE_ACCOUNTS)
    assert all(a["automountServiceAccountToken"] is False for a in accounts)


def test_kuberay_installed_only_when_asked(onprem: StackRun, run_with: Callable[..., StackRun]) -> None:
    assert [r.name for r in onprem.of_type(RELEASE)] == ["kuberay-operator"]
    assert onprem.one(RELEASE).inputs["version"] == catalog.KUBERAY_OPERATOR_CHART.version
    own = run_with("onprem", {PLATFORM: {"install": {"kuberay": False}}})
    assert own.error is None, own.error
    assert own.of_type(RELEASE) == []
    assert own.outputs["preflight"]["operator_crd"].startswith("kubectl get crd rayservices.ray.io")
    assert "operator_crd" not in onprem.outputs["preflight"]


def test_leader_worker_set_is_not_installed_unless_asked(run_with: Callable[..., StackRun]) -> None:
    vllm = {SERVING: {"engine": "vllm"}}  # the stack's TP 8 x PP 4 over 4 nodes, as a LeaderWorkerSet
    run = run_with("onprem", vllm)
    assert run.error is None, run.error
    assert {r.name for r in run.of_type(RELEASE)} == set()
    assert "leaderworkersets.leaderworkerset.x-k8s.io" in run.outputs["preflight"]["operator_crd"]
    asked = run_with("onprem", {**vllm, PLATFORM: {"install": {"leaderWorkerSet": True}}})
    assert asked.error is None, asked.error
    assert [r.name for r in asked.of_type(RELEASE)] == ["lws"]


def test_device_plugin_installed_only_when_asked_on_every_pools_nodes(
    onprem: StackRun, run_with: Callable[..., StackRun]
) -> None:
    assert not [r for r in onprem.of_type(RELEASE) if r.inputs.get("chart") == "nvidia-device-plugin"]
    second = pool(name="l40s", gpu="L40S", nodeSelector={"node.example/gpu": "l40s"}, rdma=None, tolerations=[])
    run = run_with("onprem", {PLATFORM: {"install": {"nvidiaDevicePlugin": True}, "gpuPools": [POOL, second]}})
    assert run.error is None, run.error
    release = next(r for r in run.of_type(RELEASE) if r.inputs["chart"] == "nvidia-device-plugin")
    assert release.inputs["version"] == catalog.NVIDIA_DEVICE_PLUGIN_CHART.version
    values = release.inputs["values"]
    terms = values["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [
        {
            "matchExpressions": [
                {"key": "nvidia.com/gpu.product", "operator": "In", "values": ["NVIDIA-A100-SXM4-40GB"]}
            ]
        },
        {"matchExpressions": [{"key": "node.example/gpu", "operator": "In", "values": ["l40s"]}]},
    ]
    assert values["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def test_engine_pods_land_on_the_pool_with_its_rdma(onprem: StackRun) -> None:
    service = onprem.kubernetes_object("RayService", "ray-llm")
    workers = service["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    pod = workers[0]["template"]["spec"]
    assert pod["nodeSelector"] == POOL["nodeSelector"]
    engine = pod["containers"][0]
    assert engine["resources"]["limits"]["nvidia.com/gpu"] == "8"
    assert engine["resources"]["limits"]["rdma/ib"] == "1"
    assert "IPC_LOCK" in engine["securityContext"]["capabilities"]["add"]
    assert {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "64Gi"}} in pod["volumes"]


def test_gpu_nodes_contract_follows_the_pool() -> None:
    nodes = gpu_nodes(
        ExistingGpuPoolConfig.model_validate(pool(rdma={"podAnnotations": {"k8s.v1.cni.cncf.io/networks": "ib"}}))
    )
    assert (nodes.gpu, nodes.gpus_per_node, nodes.fabric, nodes.whole_node) == ("A100-40G", 8, "rdma", True)
    assert nodes.pod_annotations == {"k8s.v1.cni.cncf.io/networks": "ib"}
    plain = gpu_nodes(ExistingGpuPoolConfig.model_validate(pool(rdma=None)))
    assert (plain.fabric, plain.whole_node, plain.capabilities, plain.pod_resources) == ("none", False, (), {})


def test_network_policies_know_the_clusters_ranges(onprem: StackRun) -> None:
    platform = onprem.program_globals["platform"]
    assert list(platform.network.internal_cidrs) == ["10.244.0.0/16", "10.96.0.0/12", "172.16.0.0/24"]
    assert platform.network.identity_endpoints == ()
    policies = [o for o in onprem.kubernetes_objects() if o["kind"] == "NetworkPolicy"]
    excepted = {
        tuple(peer["ipBlock"].get("except", ()))
        for p in policies
        for rule in p["spec"].get("egress", [])
        for peer in rule.get("to", [])
        if "ipBlock" in peer
    }
    ranges = {"10.244.0.0/16", "10.96.0.0/12", "172.16.0.0/24"}
    assert excepted and all(ranges <= set(e) for e in excepted)


def test_preflight_commands(onprem: StackRun) -> None:
    checks = onprem.outputs["preflight"]
    assert set(checks) >= {"gpu_nodes_a100", "gpu_driver", "storage_class", "network_policy_enforced"}
    assert all(c.startswith("kubectl ") for c in checks.values())
    assert "nvidia.com/gpu.product=NVIDIA-A100-SXM4-40GB" in checks["gpu_nodes_a100"]
    assert "RDMA/IB:.status.allocatable.rdma/ib" in checks["gpu_nodes_a100"]
    assert f">= {catalog.CUDA_12_8.min_driver}" in checks["gpu_driver"]


def test_the_stacks_model_store_is_a_read_write_many_volume(onprem: StackRun) -> None:
    """One copy of R1 on the servers' shared file system for all eight nodes: the cache Job
    fills it, the Ray workers load from it, chat backups go there."""
    platform = onprem.program_globals["platform"]
    assert platform.model_store is not None and platform.registry_url is None
    claim = onprem.kubernetes_object("PersistentVolumeClaim", "model-store")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert claim["spec"]["storageClassName"] == "cephfs"
    assert onprem.one("kubernetes:core/v1:PersistentVolumeClaim", "existing-store-claim").protect
    assert onprem.outputs["model_store"] == "pvc://model-store"
    assert onprem.outputs["model_weights"]["source"] == "/model-store/models/deepseek-ai/DeepSeek-R1"
    assert onprem.kubernetes_object("Job", "model-cache")


def test_without_a_store_engines_download_from_hugging_face(run_with: Callable[..., StackRun]) -> None:
    no_store = {
        PLATFORM: {"modelStore": {**VOLUME_KEYS, "kind": "none"}},
        "llm-serving:modelCache": {"enabled": False},
        SERVING: {"openWebui": {"backup": {"enabled": False}}},
    }
    run = run_with("onprem", no_store)
    assert run.error is None, run.error
    assert run.program_globals["platform"].model_store is None
    assert run.outputs["model_weights"]["loader"] == "huggingface"
    assert not [
        o
        for o in run.kubernetes_objects()
        if o["kind"] == "PersistentVolumeClaim" and o["metadata"]["name"] == "model-store"
    ]


def test_an_s3_compatible_store_on_the_cluster(run_with: Callable[..., StackRun]) -> None:
    store = {
        **VOLUME_KEYS,
        "kind": "s3Compatible",
        "endpoint": "https://minio.storage.svc:9000",
        "bucket": "models",
        "endpointCidrs": ["10.96.0.0/12"],
    }
    keys = {f"llm-serving:modelStore{k}": {"secure": "v1:x"} for k in ("AccessKeyId", "SecretAccessKey")}
    run = run_with("onprem", {PLATFORM: {"modelStore": store}, **keys})
    assert run.error is None, run.error
    assert run.outputs["model_store"] == "s3://models"
    secret = run.kubernetes_object("Secret", "model-store-keys")
    assert secret["metadata"]["namespace"] == "llm"
    assert_valid(run.kubernetes_objects())


# --- exposure, mirror, monitoring, storage -------------------------------------------------


def test_load_balancer_class_and_annotations(run_with: Callable[..., StackRun]) -> None:
    exposure = {"loadBalancerClass": "metallb.io/metallb", "annotations": {"metallb.io/address-pool": "serving"}}
    ui = {"type": "LoadBalancer", "allowedSourceRanges": ["192.168.10.0/24"]}
    run = run_with("onprem", {PLATFORM: {"exposure": exposure}, SERVING: {"exposure": {"openWebui": ui}}})
    assert run.error is None, run.error
    svc = run.kubernetes_object("Service", "open-webui")
    assert svc["spec"]["type"] == "LoadBalancer"
    assert svc["spec"]["loadBalancerClass"] == "metallb.io/metallb"
    assert svc["metadata"]["annotations"] == {"metallb.io/address-pool": "serving"}
    assert_valid(run.kubernetes_objects())


def test_open_webui_through_the_clusters_ingress(run_with: Callable[..., StackRun]) -> None:
    ingress = {
        "className": "nginx",
        "host": "chat.example.internal",
        "controllerNamespace": "ingress-nginx",
        "tlsSecretName": "chat-tls",
    }
    run = run_with("onprem", {PLATFORM: {"exposure": {"ingress": ingress}}})
    assert run.error is None, run.error
    assert_valid(run.kubernetes_objects())
    route = run.kubernetes_object("Ingress", "open-webui")
    assert route["spec"]["ingressClassName"] == "nginx"
    assert route["spec"]["tls"] == [{"hosts": ["chat.example.internal"], "secretName": "chat-tls"}]
    backend = route["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    assert backend == {"service": {"name": "open-webui", "port": {"name": "http"}}}
    assert run.outputs["open_webui_url"] == "https://chat.example.internal"
    assert run.outputs["preflight"]["ingress_class"].startswith("kubectl get ingressclass nginx")
    # The controller's pods, and only they (besides port-forward), reach the UI's port.
    policy = run.kubernetes_object("NetworkPolicy", "open-webui-network")
    sources = [peer for rule in policy["spec"]["ingress"] for peer in rule.get("from", [])]
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}} in sources


def test_no_ingress_by_default(onprem: StackRun) -> None:
    assert not [o for o in onprem.kubernetes_objects() if o["kind"] == "Ingress"]
    assert "open_webui_url" not in onprem.outputs


def test_image_mirror_rewrites_docker_hub_images(run_with: Callable[..., StackRun]) -> None:
    mirror = "harbor.example.internal/dockerhub"
    run = run_with("onprem", {PLATFORM: {"imageMirror": mirror}})
    assert run.error is None, run.error
    images = {c["image"] for o in run.kubernetes_objects() for c in containers(o)}
    ray = f"{mirror}/rayproject/ray-llm:{catalog.RAY_VERSION}-py311-cu128"
    assert ray in images and catalog.RAY_LLM_IMAGE.ref not in images
    assert catalog.OPEN_WEBUI_IMAGE.ref in images  # ghcr.io: not Docker Hub's
    assert all(i.startswith(f"{mirror}/") for i in images if i.startswith(("vllm/", "rayproject/")))


def test_prometheus_operator_of_the_cluster(run_with: Callable[..., StackRun]) -> None:
    watch = {"kind": "prometheusOperator", "namespace": "observability", "objectLabels": {"release": "kps"}}
    run = run_with("onprem", {PLATFORM: {"monitoring": watch}})
    assert run.error is None, run.error
    monitors = [o for o in run.kubernetes_objects() if o["kind"] == "PodMonitor"]
    assert monitors and all(m["metadata"]["labels"]["release"] == "kps" for m in monitors)
    platform = run.program_globals["platform"]
    assert platform.network.metrics_scraper_namespaces == ("observability",)
    assert "prometheus_operator" in run.outputs["preflight"]
    assert_valid(run.kubernetes_objects())


def test_storage_class_and_a_retaining_class(run_with: Callable[..., StackRun]) -> None:
    storage = {"className": "ceph-rbd", "retainProvisioner": "rook-ceph.rbd.csi.ceph.com"}
    run = run_with("onprem", {PLATFORM: {"storage": storage}})
    assert run.error is None, run.error
    classes = [o for o in run.kubernetes_objects() if o["kind"] == "StorageClass"]
    assert [(c["provisioner"], c["reclaimPolicy"]) for c in classes] == [("rook-ceph.rbd.csi.ceph.com", "Retain")]
    assert run.outputs["preflight"]["storage_class"].startswith("kubectl get storageclass ceph-rbd")


# --- kubeconfig: secret, file, ambient -----------------------------------------------------


def test_kubeconfig_secret_reaches_the_provider_only_as_a_secret(run_with: Callable[..., StackRun]) -> None:
    run = run_with(
        "onprem",
        {PLATFORM: {"kubeconfig": {"kind": "secret", "context": None}}, "llm-serving:kubeconfig": {"secure": "v1:x"}},
    )
    assert run.error is None, run.error
    provider = run.one(PROVIDER)
    assert provider.inputs["kubeconfig"] == SECRET_PLACEHOLDER
    assert "kubeconfig" in provider.secret_paths
    assert "kubeconfig" not in run.outputs  # the content is never an output
    assert run.outputs["kubeconfig_source"].startswith("the stack secret llm-serving:kubeconfig")


def test_kubeconfig_secret_missing_is_refused(run_with: Callable[..., StackRun]) -> None:
    run = run_with("onprem", {PLATFORM: {"kubeconfig": {"kind": "secret"}}})
    assert run.error is not None and not run.resources
    assert "llm-serving:platform.kubeconfig.kind = 'secret': the secret llm-serving:kubeconfig is not set" in str(
        run.error
    )


def test_kubeconfig_in_plain_text_is_refused(run_with: Callable[..., StackRun]) -> None:
    run = run_with("onprem", {PLATFORM: {"kubeconfig": {"kind": "secret"}}, "llm-serving:kubeconfig": "apiVersion: v1"})
    assert run.error is not None and not run.resources
    assert "llm-serving:kubeconfig: is stored in plain text" in str(run.error)


def test_kubeconfig_secret_unused_is_refused(run_with: Callable[..., StackRun]) -> None:
    run = run_with("onprem", {"llm-serving:kubeconfig": {"secure": "v1:x"}})
    assert run.error is not None and not run.resources
    assert "llm-serving:kubeconfig: is set but platform.kubeconfig.kind is 'ambient'" in str(run.error)


def test_kubeconfig_file_missing_is_refused(run_with: Callable[..., StackRun], tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.yaml")
    run = run_with("onprem", {PLATFORM: {"kubeconfig": {"kind": "file", "path": missing}}})
    assert run.error is not None and not run.resources
    assert f"llm-serving:platform.kubeconfig.path = {missing!r}: no such file on this machine" in str(run.error)


def test_kubeconfig_file_is_passed_as_a_path(run_with: Callable[..., StackRun], tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig.yaml"
    path.write_text("apiVersion: v1\nkind: Config\n")
    run = run_with("onprem", {PLATFORM: {"kubeconfig": {"kind": "file", "path": str(path)}}})
    assert run.error is None, run.error
    # The path, not the content: no credential enters the state.
    assert run.one(PROVIDER).inputs["kubeconfig"] == str(path)


# --- config rules --------------------------------------------------------------------------


def test_unknown_gpu_kind_is_refused_naming_the_key() -> None:
    message = only_problem("onprem", {"platform": {"gpuPools": [pool(gpu="A100-40GB")]}})
    assert message.startswith("llm-serving:platform.gpuPools[0].gpu = 'A100-40GB': not a GPU of components/catalog")
    assert "A100-40G" in message


def test_tensor_parallel_must_divide_a_nodes_gpus() -> None:
    changes = {"serving": {**DISTILLED, "tensorParallelSize": 3}, "platform": {"gpuPools": [pool(rdma=None)]}}
    message = only_problem("onprem", changes)
    assert message == ("llm-serving:serving.tensorParallelSize = 3: must divide the 8 GPUs per node of pool 'a100'")


def test_a_multi_node_replica_takes_whole_nodes() -> None:
    message = only_problem("onprem", {"serving": {"tensorParallelSize": 4, "pipelineParallelSize": 4}})
    assert message.startswith("llm-serving:serving.pipelineParallelSize = 4: the layout (TP 4 x PP 4")
    assert "must fill the replica's 4 nodes of pool 'a100'" in message


def test_whole_node_pool_refuses_part_of_a_node() -> None:
    changes = {"serving": {**DISTILLED, "tensorParallelSize": 4}}
    message = only_problem("onprem", changes)
    assert "must use the 1 x 8 GPUs of the replica's whole node(s) in pool 'a100'" in message
    assert "RDMA fabric take the whole node" in message


def test_replicas_beyond_the_pools_nodes_are_refused() -> None:
    message = only_problem("onprem", {"serving": {"replicas": 3}})
    assert message == (
        "llm-serving:serving.replicas = 3: 3 replica(s) need 12 node(s) of pool 'a100', which has 8 "
        "(platform.gpuPools[0].nodeCount = 8 x 8 GPUs): lower replicas or describe more nodes"
    )


def test_a_spanning_replica_without_rdma_needs_the_tcp_opt_in() -> None:
    message = only_problem("onprem", {"platform": {"gpuPools": [pool(rdma=None)]}})
    assert message.startswith("llm-serving:serving.nodesPerReplica = 4: pool 'a100' has no inter-node GPU fabric")


def test_a_cloud_bucket_or_repository_is_refused() -> None:
    bucket = {**VOLUME_KEYS, "kind": "bucket"}
    found = problems("onprem", {"platform": {"modelStore": bucket, "registry": {"kind": "repository"}}})
    # A bucket here is one the user has, reached through a managed cluster's identity
    # (tests/test_existing_bucket.py); without identity and name, both are asked for.
    assert found == [
        "llm-serving:platform.identity = null: a bucket on an existing cluster is reached through the cluster's "
        "workload identity: name the cluster, identity: {kind: gke, project, location, cluster} (Workload "
        "Identity) or {kind: eks, clusterName, region} (Pod Identity); an on-prem cluster uses kind "
        "'s3Compatible' or 'volume'",
        "llm-serving:platform.modelStore.name = null: name the bucket you already have: this stack creates none",
        "llm-serving:platform.registry.kind = 'repository': cloud 'existing' creates no registry; use kind 'none', "
        "and platform.imageMirror for a site registry that mirrors the public ones",
    ]


def test_network_ranges_are_required() -> None:
    found = problems("onprem", {"platform": {"network": {"podCidrs": [], "serviceCidrs": None}}})
    assert any(p.startswith("llm-serving:platform.network.podCidrs") for p in found), found
    assert any(p.startswith("llm-serving:platform.network.serviceCidrs") for p in found), found


def test_rdma_needs_resources_or_annotations() -> None:
    message = only_problem("onprem", {"platform": {"gpuPools": [pool(rdma={})]}})
    assert message.startswith("llm-serving:platform.gpuPools[0].rdma")
    assert "name the extended resources" in message


def test_the_kubeconfig_kind_is_required() -> None:
    message = only_problem("onprem", {"platform": {"kubeconfig": {"kind": "token"}}})
    assert message.startswith("llm-serving:platform.kubeconfig")


def test_device_plugin_values_tolerate_each_taint_once() -> None:
    pools = [ExistingGpuPoolConfig.model_validate(pool(name=n)) for n in ("a", "b")]
    values = device_plugin_values(pools)
    assert len(values["tolerations"]) == 1
    assert values["gfd"] == {"enabled": False} and values["nfd"] == {"enabled": False}


def test_cost_is_per_pool_and_has_no_cluster_fee(onprem: StackRun, run_with: Callable[..., StackRun]) -> None:
    assert onprem.outputs["gpu_cost_per_hour"]["usd_per_hour_low"] is None
    run = run_with("onprem", {"llm-serving:cost": {"nodeHourlyUsd": {"a100": 12.5}}})
    assert run.error is None, run.error
    assert run.outputs["gpu_cost_per_hour"]["usd_per_hour_low"] == 100.0  # 8 nodes x 12.5, no fee


def test_fp8_kv_cache_with_mla_is_refused_below_ada() -> None:
    """Triton MLA, vLLM's only MLA backend on compute capability 8.x, refuses an FP8 KV
    cache there: caught in config instead of at engine start on the A100s."""
    message = only_problem("onprem", {"serving": {"kvCacheDtype": "fp8"}})
    assert message.startswith("llm-serving:serving.kvCacheDtype = 'fp8': FP8 KV cache with deepseek-ai/DeepSeek-R1's")
    assert "A100-40G is 8.0" in message
    # Unset, the profile picks FP8 for R1: reported at the profile.
    assert only_problem("onprem", {"serving": {"kvCacheDtype": None}}).startswith(
        "llm-serving:serving.profile = 'balanced': its FP8 KV cache"
    )
    # A dense model's FP8 KV cache has other backends on Ampere.
    parse(raw("onprem", {"serving": {**DISTILLED, "kvCacheDtype": "fp8"}}))


def test_every_gpu_has_a_compute_capability() -> None:
    assert set(catalog.COMPUTE_CAPABILITY) == set(catalog.GPUS)


def test_a_kubeconfig_secret_on_a_cloud_stack_is_refused(run_with: Callable[..., StackRun]) -> None:
    run = run_with("eks", {"llm-serving:kubeconfig": {"secure": "v1:x"}})
    assert run.error is not None and not run.resources
    assert "llm-serving:kubeconfig: is set but only cloud 'existing' reads it; remove the key" in str(run.error)


def test_pool_names_are_unique() -> None:
    message = only_problem("onprem", {"platform": {"gpuPools": [POOL, pool(nodeCount=1)]}})
    assert message == "llm-serving:platform.gpuPools[1].name = 'a100': pool names must be unique"


def test_a_toleration_value_goes_with_operator_equal() -> None:
    bad = pool(tolerations=[{"key": "dedicated", "operator": "Equal"}])
    message = only_problem("onprem", {"platform": {"gpuPools": [bad]}})
    assert message.startswith("llm-serving:platform.gpuPools[0].tolerations[0]")
    assert "operator Equal takes a value" in message


def test_retain_parameters_need_the_provisioner() -> None:
    message = only_problem("onprem", {"platform": {"storage": {"retainParameters": {"pool": "ssd"}}}})
    assert message.startswith("llm-serving:platform.storage")
    assert "retainParameters go with retainProvisioner" in message


def test_an_ingress_without_open_webui_is_refused() -> None:
    ingress = {"className": "nginx", "host": "chat.example.internal", "controllerNamespace": "ingress-nginx"}
    changes = {"platform": {"exposure": {"ingress": ingress}}, "serving": {"openWebui": {"enabled": False}}}
    assert only_problem("onprem", changes) == (
        "llm-serving:serving.openWebui.enabled = false: platform.exposure.ingress publishes Open WebUI: "
        "enable it, or remove the ingress"
    )


def test_the_pools_scratch_disk_holds_the_model_cache_jobs_download(onprem: StackRun) -> None:
    job = onprem.kubernetes_object("Job", "model-cache")
    volumes = job["spec"]["template"]["spec"]["volumes"]
    assert {"name": "work", "hostPath": {"path": "/mnt/nvme/model-cache", "type": "DirectoryOrCreate"}} in volumes


def test_preflight_lists_the_multus_networks_a_pool_names(run_with: Callable[..., StackRun]) -> None:
    rdma = {"resources": {"rdma/ib": "1"}, "podAnnotations": {"k8s.v1.cni.cncf.io/networks": "ib0,ib1"}}
    run = run_with("onprem", {PLATFORM: {"gpuPools": [pool(rdma=rdma)]}})
    assert run.error is None, run.error
    check = run.outputs["preflight"]["rdma_networks_a100"]
    assert check.startswith("kubectl -n llm get network-attachment-definitions  # must list ib0,ib1")
    pod = run.kubernetes_object("RayService", "ray-llm")["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["template"]
    assert pod["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"] == "ib0,ib1"
