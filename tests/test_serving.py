"""The serving layer on platforms built in tests (tests/fake_platforms.py).

Each run declares the workloads of a real stack file on Pulumi's mock engine; the
assertions read the recorded resources and the manifests they carry.
"""

from __future__ import annotations

import shlex
from typing import Any

import pytest
import yaml

from components import catalog
from components.sizing import cache_job_deadline_seconds, startup_budget_seconds
from components.workloads.weights import MARKER
from conftest import assert_valid
from fake_platforms import EKS_G5, GKE_A4, run_serving
from tools.offline import SECRET_PLACEHOLDER, StackRun, secret_values

R1 = catalog.MODELS["deepseek-ai/DeepSeek-R1"]


def container(obj: dict[str, Any], name: str) -> dict[str, Any]:
    pod = obj["spec"]["template"]["spec"]
    found = [c for c in [*pod.get("initContainers", []), *pod["containers"]] if c["name"] == name]
    assert len(found) == 1, [c["name"] for c in pod["containers"]]
    result: dict[str, Any] = found[0]
    return result


def env_of(c: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env", [])}


def vllm_serve_argv(run: StackRun) -> list[str]:
    """The words after `exec` in the engine container's script."""
    script = container(run.kubernetes_object("Deployment", "vllm"), "vllm")["command"][2]
    line = next(line for line in script.splitlines() if line.startswith("exec "))
    return shlex.split(line)[1:]


def flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


@pytest.fixture(scope="module")
def a4() -> StackRun:
    return run_serving("a4high", hf_token=True)


@pytest.fixture(scope="module")
def ray() -> StackRun:
    return run_serving("eks", hf_token=True)


# --- every object is valid -----------------------------------------------------------------


@pytest.mark.parametrize("stack", ["a4high", "eks"])
@pytest.mark.parametrize(
    "variant",
    [
        {},
        {"benchmark": {"enabled": True, "maxConcurrency": [1, 8]}},
        {
            "modelCache": {"enabled": False},
            "serving": {
                "exposure": {
                    "openWebui": {"type": "LoadBalancer", "allowedSourceRanges": ["198.51.100.0/24"], "internal": True}
                }
            },
        },
    ],
)
def test_every_serving_object_passes_strict_validation(stack: str, variant: dict[str, Any]) -> None:
    assert_valid(run_serving(stack, variant, hf_token=True).kubernetes_objects())


# --- vLLM engine ------------------------------------------------------------------------


def test_vllm_flags_come_from_the_sized_config(a4: StackRun) -> None:
    argv = vllm_serve_argv(a4)
    assert argv[:3] == ["vllm", "serve", f"/bucket/models/{R1.hf_id}"]  # model cache on: weights from the bucket
    assert flag(argv, "--tensor-parallel-size") == "8"
    assert flag(argv, "--max-model-len") == "32768"
    assert flag(argv, "--gpu-memory-utilization") == "0.9"
    assert flag(argv, "--served-model-name") == "deepseek-r1"
    assert flag(argv, "--reasoning-parser") == "deepseek_r1"
    assert "--trust-remote-code" not in argv  # vLLM 0.33 implements DeepseekV3ForCausalLM itself
    assert "--api-key" not in argv  # vLLM reads VLLM_API_KEY itself; a flag shows the key in `ps`
    assert not {"--enable-reasoning", "--disable-log-requests"} & set(argv)


def test_vllm_image_is_pinned(a4: StackRun) -> None:
    image = container(a4.kubernetes_object("Deployment", "vllm"), "vllm")["image"]
    assert image == catalog.VLLM_IMAGE.ref
    assert not image.endswith((":latest", ":main"))


def test_vllm_lands_on_the_platform_gpu_nodes(a4: StackRun) -> None:
    deployment = a4.kubernetes_object("Deployment", "vllm")
    pod = deployment["spec"]["template"]
    assert pod["spec"]["nodeSelector"] == GKE_A4.node_selector
    assert pod["spec"]["tolerations"] == [dict(t) for t in GKE_A4.tolerations]
    for key, value in GKE_A4.pod_annotations.items():
        assert pod["metadata"]["annotations"][key] == value
    c = container(deployment, "vllm")
    assert c["resources"]["limits"] == {"nvidia.com/gpu": "8"}
    assert c["resources"]["requests"]["nvidia.com/gpu"] == "8"
    assert {"name": "nvidia", "mountPath": "/usr/local/nvidia"} in c["volumeMounts"]
    assert env_of(c)["LD_LIBRARY_PATH"] == "/usr/local/nvidia/lib64"
    script = c["command"][2]
    assert script.startswith(f"{GKE_A4.shell_prelude}\nset -e\n")
    # After the compile cache's background packer (tests/test_compile_cache.py), the engine.
    assert script.splitlines()[-1].startswith("exec vllm serve ")
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["dshm"]["emptyDir"]["medium"] == "Memory"
    assert volumes["scratch"]["hostPath"]["path"].startswith(str(GKE_A4.scratch_host_path))
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}


def test_vllm_probes_and_timeouts_cover_the_model_load() -> None:
    run = run_serving("a4high", {"modelCache": {"enabled": False}})
    deployment = run.kubernetes_object("Deployment", "vllm")
    c = container(deployment, "vllm")
    budget = startup_budget_seconds(R1, from_bucket=False)
    assert budget >= 60 * 60  # a 671B download and load takes tens of minutes
    startup = c["startupProbe"]
    assert startup["httpGet"] == {"path": "/health", "port": 8000}
    assert startup["periodSeconds"] * startup["failureThreshold"] >= budget
    assert c["readinessProbe"]["httpGet"]["path"] == "/health"
    assert c["livenessProbe"]["httpGet"]["path"] == "/health"
    assert int(env_of(c)["VLLM_ENGINE_READY_TIMEOUT_S"]) == budget
    # Pulumi waits longer than the default 10 minutes: the load plus an image pull.
    timeouts = run.one("kubernetes:apps/v1:Deployment", "vllm").custom_timeouts
    assert timeouts["create"] == timeouts["update"]
    assert int(timeouts["create"].removesuffix("m")) * 60 >= budget + 10 * 60


def test_vllm_await_can_be_skipped_deliberately() -> None:
    run = run_serving("a4high", {"serving": {"waitForReady": False}})
    deployment = run.one("kubernetes:apps/v1:Deployment", "vllm")
    assert deployment.custom_timeouts == {}
    assert deployment.inputs["metadata"]["annotations"]["pulumi.com/skipAwait"] == "true"


def test_vllm_service_is_cluster_ip_on_8000(a4: StackRun) -> None:
    svc = a4.kubernetes_object("Service", "vllm")
    assert svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["ports"] == [{"name": "http", "port": 8000, "targetPort": "http"}]
    assert "loadBalancerSourceRanges" not in svc["spec"]


def test_vllm_downloads_from_hugging_face_when_the_cache_is_off() -> None:
    run = run_serving("a4high", {"modelCache": {"enabled": False}}, hf_token=True)
    argv = vllm_serve_argv(run)
    assert argv[2] == R1.hf_id
    assert flag(argv, "--download-dir").startswith("/scratch/")
    deployment = run.kubernetes_object("Deployment", "vllm")
    # No wait for a model cache; the compile cache is restored all the same.
    assert [c["name"] for c in deployment["spec"]["template"]["spec"]["initContainers"]] == [
        "gpu-check",
        "compile-cache-fetch",
        "compile-cache-unpack",
    ]
    assert env_of(container(deployment, "vllm"))["HF_TOKEN"] == {
        "secretKeyRef": {"name": "hf-token", "key": "HF_TOKEN"}
    }
    assert not run.of_type("kubernetes:batch/v1:Job")


def test_vllm_on_aws_streams_from_s3_when_the_cache_is_on() -> None:
    run = run_serving("eks", {"serving": {"engine": "vllm"}, "modelCache": {"enabled": True}})
    argv = vllm_serve_argv(run)
    assert argv[2] == "s3://test-bucket/models/deepseek-ai/DeepSeek-R1-Distill-Llama-8B"
    assert flag(argv, "--load-format") == "runai_streamer"
    assert flag(argv, "--model-loader-extra-config") == '{"concurrency": 16}'
    deployment = run.kubernetes_object("Deployment", "vllm")
    assert env_of(container(deployment, "vllm"))["AWS_REGION"] == "us-west-2"
    assert deployment["spec"]["template"]["spec"]["nodeSelector"] == EKS_G5.node_selector


def test_engine_waits_for_the_cache_marker(a4: StackRun) -> None:
    wait = container(a4.kubernetes_object("Deployment", "vllm"), "wait-for-model-cache")
    assert env_of(wait)["MARKER"] == f"gs://test-bucket/models/{R1.hf_id}/{MARKER}"
    assert wait["command"][2].startswith("until gcloud storage objects describe $MARKER")
    # Pulumi's wait covers the copy too.
    timeouts = a4.one("kubernetes:apps/v1:Deployment", "vllm").custom_timeouts
    assert int(timeouts["create"].removesuffix("m")) * 60 >= cache_job_deadline_seconds(R1)


def test_gcs_fuse_volume_reads_the_bucket_through_a_local_file_cache(a4: StackRun) -> None:
    pod = a4.kubernetes_object("Deployment", "vllm")["spec"]["template"]
    weights = next(v for v in pod["spec"]["volumes"] if v["name"] == "weights")
    assert weights["csi"]["driver"] == "gcsfuse.csi.storage.gke.io"
    assert weights["csi"]["readOnly"] is True
    assert weights["csi"]["volumeAttributes"]["bucketName"] == "test-bucket"
    assert "file-cache:enable-parallel-downloads:true" in weights["csi"]["volumeAttributes"]["mountOptions"]
    assert pod["metadata"]["annotations"]["gke-gcsfuse/volumes"] == "true"  # from the platform
    assert {"name": "gke-gcsfuse-cache", "emptyDir": {}} in pod["spec"]["volumes"]
    assert pod["spec"]["serviceAccountName"] == "model-reader"


# --- secrets ------------------------------------------------------------------------------


def test_secrets_are_only_in_secrets(a4: StackRun) -> None:
    secrets = {r.name: r for r in a4.of_type("kubernetes:core/v1:Secret")}
    assert set(secrets) == {"hf-token", "vllm-api-key", "open-webui-secret"}
    for r in secrets.values():
        assert r.secret_paths == {"stringData"}, r.name  # a Pulumi secret end to end
    assert secrets["hf-token"].inputs["stringData"] == {"HF_TOKEN": SECRET_PLACEHOLDER}
    known = set(secret_values(a4))
    assert len(known) == 4  # the token and three generated values
    for r in a4.resources:
        if r.type == "kubernetes:core/v1:Secret":
            continue
        text = repr(r.inputs)
        leaked = [value for value in known if value in text]
        assert not leaked, f"{r.type} {r.name} carries a secret value"


def test_api_key_is_a_secret_output(a4: StackRun) -> None:
    assert a4.outputs["api_key"] == "offline-random-vllm-api-key"
    assert {"api_key", "open_webui_admin_password"} <= a4.secret_outputs
    password = a4.one("random:index/randomPassword:RandomPassword", "vllm-api-key").inputs
    assert password["length"] >= 32 and password["special"] is False


# --- Open WebUI ---------------------------------------------------------------------------


def test_open_webui_talks_to_the_engine_with_its_key(a4: StackRun) -> None:
    c = container(a4.kubernetes_object("Deployment", "open-webui"), "open-webui")
    env = env_of(c)
    assert env["OPENAI_API_BASE_URLS"] == "http://vllm.llm.svc.cluster.local:8000/v1"
    assert env["OPENAI_API_KEYS"] == {"secretKeyRef": {"name": "vllm-api-key", "key": "api-key"}}
    assert env["ENABLE_OLLAMA_API"] == "False"
    assert env["WEBUI_AUTH"] == "True"
    assert env["ENABLE_SIGNUP"] == "False"
    assert env["DEFAULT_USER_ROLE"] == "pending"
    assert env["WEBUI_SECRET_KEY"] == {"secretKeyRef": {"name": "open-webui", "key": "WEBUI_SECRET_KEY"}}
    assert env["WEBUI_ADMIN_PASSWORD"] == {"secretKeyRef": {"name": "open-webui", "key": "WEBUI_ADMIN_PASSWORD"}}
    assert env["WEBUI_ADMIN_EMAIL"] == "admin@example.com"
    assert c["image"] == catalog.OPEN_WEBUI_IMAGE.ref


def test_open_webui_keeps_its_data_on_a_volume(a4: StackRun) -> None:
    deployment = a4.kubernetes_object("Deployment", "open-webui")
    c = container(deployment, "open-webui")
    assert {"name": "data", "mountPath": "/app/backend/data"} in c["volumeMounts"]
    volume = deployment["spec"]["template"]["spec"]["volumes"][0]
    assert volume == {"name": "data", "persistentVolumeClaim": {"claimName": "open-webui-data"}}
    pvc = a4.kubernetes_object("PersistentVolumeClaim", "open-webui-data")
    assert pvc["spec"]["storageClassName"] == "llm-serving-retain"  # the platform's retaining class
    assert pvc["spec"]["resources"]["requests"]["storage"] == "10Gi"
    # A WaitForFirstConsumer claim binds only with its pod: Pulumi must not wait on it.
    assert pvc["metadata"]["annotations"]["pulumi.com/skipAwait"] == "true"


def test_open_webui_without_engine_key_uses_a_placeholder(ray: StackRun) -> None:
    env = env_of(container(ray.kubernetes_object("Deployment", "open-webui"), "open-webui"))
    assert env["OPENAI_API_BASE_URLS"] == "http://ray-llm-serve-svc.llm.svc.cluster.local:8000/v1"
    assert env["OPENAI_API_KEYS"] == "none"


# --- exposure -----------------------------------------------------------------------------


def test_load_balancer_is_limited_to_the_allowed_ranges() -> None:
    run = run_serving(
        "a4high",
        {
            "serving": {
                "exposure": {
                    "engine": {"type": "LoadBalancer", "allowedSourceRanges": ["198.51.100.0/24"], "internal": True},
                    "openWebui": {"type": "LoadBalancer", "allowedSourceRanges": ["203.0.113.0/24"]},
                }
            }
        },
    )
    engine = run.kubernetes_object("Service", "vllm")
    assert engine["spec"]["type"] == "LoadBalancer"
    assert engine["spec"]["loadBalancerSourceRanges"] == ["198.51.100.0/24"]
    assert engine["metadata"]["annotations"] == {"networking.gke.io/load-balancer-type": "Internal"}
    ui = run.kubernetes_object("Service", "open-webui")
    assert ui["spec"]["loadBalancerSourceRanges"] == ["203.0.113.0/24"]
    assert "annotations" not in ui["metadata"]
    assert run.outputs["engine_external_url"].startswith("pending")
    assert "open_webui_url" in run.outputs


def test_everything_is_cluster_ip_by_default(a4: StackRun, ray: StackRun) -> None:
    for run in (a4, ray):
        assert all(o["spec"]["type"] == "ClusterIP" for o in run.kubernetes_objects() if o["kind"] == "Service")


# --- Ray engine ---------------------------------------------------------------------------


def test_kuberay_operator_chart_is_pinned(ray: StackRun) -> None:
    release = ray.one("kubernetes:helm.sh/v3:Release", "kuberay-operator").inputs
    assert release["chart"] == "kuberay-operator"
    assert release["version"] == catalog.KUBERAY_OPERATOR_CHART.version
    assert release["repositoryOpts"]["repo"] == "https://ray-project.github.io/kuberay-helm/"


def test_rayservice_serves_through_ray_serve_llm(ray: StackRun) -> None:
    service = ray.kubernetes_object("RayService", "ray-llm")
    app = yaml.safe_load(service["spec"]["serveConfigV2"])["applications"][0]
    assert app["import_path"] == "ray.serve.llm:build_openai_app"
    (llm,) = app["args"]["llm_configs"]
    assert llm["model_loading_config"] == {
        "model_id": "deepseek-r1-distill-llama-8b",
        "model_source": "deepseek-ai/DeepSeek-R1-Distill-Llama-8B",
    }
    assert llm["accelerator_type"] == "A10G"
    assert llm["engine_kwargs"]["tensor_parallel_size"] == 1
    assert llm["engine_kwargs"]["max_model_len"] == 8192
    cluster = service["spec"]["rayClusterConfig"]
    assert cluster["rayVersion"] == catalog.RAY_VERSION
    head = cluster["headGroupSpec"]
    assert head["rayStartParams"]["num-gpus"] == "0"
    assert "nodeSelector" not in head["template"]["spec"]  # CPU head on the system nodes
    (worker,) = cluster["workerGroupSpecs"]
    pod = worker["template"]["spec"]
    assert pod["nodeSelector"] == EKS_G5.node_selector
    assert pod["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    assert worker["template"]["metadata"]["annotations"]["karpenter.sh/do-not-disrupt"] == "true"
    images = {c["image"] for c in [*head["template"]["spec"]["containers"], *pod["containers"]]}
    assert images == {catalog.RAY_LLM_IMAGE.ref}


def test_rayservice_mirrors_the_bucket_when_the_cache_is_on() -> None:
    run = run_serving("eks", {"modelCache": {"enabled": True}})
    service = run.kubernetes_object("RayService", "ray-llm")
    llm = yaml.safe_load(service["spec"]["serveConfigV2"])["applications"][0]["args"]["llm_configs"][0]
    assert llm["model_loading_config"]["model_source"] == {
        "bucket_uri": "s3://test-bucket/models/deepseek-ai/DeepSeek-R1-Distill-Llama-8B"
    }
    worker = service["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["template"]["spec"]
    assert [c["name"] for c in worker["initContainers"]] == ["gpu-check", "wait-for-model-cache"]
    assert run.outputs["model_weights"]["loader"] == "ray-mirror"


def test_ray_outputs_name_the_dashboard_and_have_no_api_key(ray: StackRun) -> None:
    assert ray.outputs["port_forward"]["ray_dashboard"] == "kubectl -n llm port-forward svc/ray-llm-head-svc 8265:8265"
    assert ray.outputs["openai_base_url"] == "http://ray-llm-serve-svc.llm.svc.cluster.local:8000/v1"
    assert "api_key" not in ray.outputs


def test_outputs_tell_where_the_endpoints_are(a4: StackRun) -> None:
    assert a4.outputs["openai_base_url"] == "http://vllm.llm.svc.cluster.local:8000/v1"
    assert a4.outputs["local_base_url"] == "http://localhost:8000/v1"
    assert a4.outputs["served_model_name"] == "deepseek-r1"
    assert a4.outputs["port_forward"] == {
        "engine": "kubectl -n llm port-forward svc/vllm 8000:8000",
        "open_webui": "kubectl -n llm port-forward svc/open-webui 8080:80",
    }
    assert a4.outputs["engine"]["max_model_len"] == 32768


# --- model cache and benchmark ------------------------------------------------------------


def test_cache_job_copies_once_and_writes_the_marker_last(a4: StackRun) -> None:
    job = a4.kubernetes_object("Job", "model-cache")
    pod = job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "model-writer"
    assert [c["name"] for c in pod["initContainers"]] == ["check", "download"]
    check, download, upload = (container(job, n) for n in ("check", "download", "upload"))
    assert env_of(check)["MODEL_URL"] == f"gs://test-bucket/models/{R1.hf_id}"
    assert f"$MODEL_URL/{MARKER}" in check["command"][2]
    assert f"hf download {R1.hf_id} --local-dir /work/deepseek-ai--DeepSeek-R1/model" in download["command"][2]
    assert env_of(download)["HF_TOKEN"] == {"secretKeyRef": {"name": "hf-token", "key": "HF_TOKEN"}}
    script = upload["command"][2]
    assert script.index("gcloud storage rsync") < script.index(f"$MODEL_URL/{MARKER}")
    # The copy runs on the GPU node to use its local SSD, without asking for a GPU.
    assert pod["nodeSelector"] == GKE_A4.node_selector
    assert all("nvidia.com/gpu" not in str(c.get("resources")) for c in (check, download, upload))
    assert job["spec"]["activeDeadlineSeconds"] >= 3 * 3600  # ~700 GB in and out
    assert job["metadata"]["annotations"]["pulumi.com/skipAwait"] == "true"


def test_cache_job_on_aws_uses_an_ephemeral_volume_and_the_aws_cli() -> None:
    run = run_serving("eks", {"modelCache": {"enabled": True}})
    job = run.kubernetes_object("Job", "model-cache")
    assert "aws s3 sync" in container(job, "upload")["command"][2]
    assert "nodeSelector" not in job["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in job["spec"]["template"]["spec"]["volumes"]}
    assert set(volumes) == {"work", "tmp"}
    assert volumes["work"]["emptyDir"]["sizeLimit"].endswith("Gi")


def test_benchmark_runs_the_seed_workload_and_saves_to_the_bucket() -> None:
    run = run_serving("a4high", {"benchmark": {"enabled": True, "maxConcurrency": [1, 64]}})
    job = run.kubernetes_object("Job", "benchmark")
    pod = job["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["initContainers"]] == ["bench-c1", "upload-c1", "bench-c64", "upload-c64"]
    assert [c["name"] for c in pod["containers"]] == ["report"]
    for concurrency, prompts in (("1", "100"), ("64", "640")):
        bench = container(job, f"bench-c{concurrency}")
        (line,) = [line for line in bench["command"][2].splitlines() if line.startswith("vllm bench serve")]
        argv = shlex.split(line)
        assert flag(argv, "--base-url") == "http://vllm.llm.svc.cluster.local:8000"
        assert flag(argv, "--dataset-name") == "random"
        assert flag(argv, "--random-input-len") == "1000"
        assert flag(argv, "--random-output-len") == "1000"
        assert flag(argv, "--num-prompts") == prompts  # 10 x concurrency, at least 100
        assert "--ignore-eos" in argv and "--save-result" in argv
        assert flag(argv, "--max-concurrency") == concurrency
        assert int(flag(argv, "--ready-check-timeout-sec")) >= startup_budget_seconds(R1, from_bucket=True)
        assert env_of(bench)["OPENAI_API_KEY"] == {"secretKeyRef": {"name": "vllm-api-key", "key": "api-key"}}
        upload = container(job, f"upload-c{concurrency}")
        assert env_of(upload)["RESULTS_URL"] == "gs://test-bucket/benchmarks/a4high"
        assert env_of(upload)["CLOUDSDK_STORAGE_PARALLEL_COMPOSITE_UPLOAD_ENABLED"] == "False"
        assert "$RESULTS_URL/$RUN" in upload["command"][2]
    assert run.outputs["benchmark_results"] == "gs://test-bucket/benchmarks/a4high"
    assert "--all-containers" in run.outputs["benchmark_logs"]
    assert pod["serviceAccountName"] == "model-writer"


def test_no_benchmark_unless_asked(a4: StackRun) -> None:
    assert [r.name for r in a4.of_type("kubernetes:batch/v1:Job")] == ["model-cache"]
