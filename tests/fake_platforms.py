"""Platforms built in tests, so the serving layer is tested apart from the clouds.

They mirror what ``components/gcp`` and ``components/aws`` return (see
``components/platform.py``); the stack tests check the real ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.aws import pod_network as aws_network
from components.config import AwsPlatformConfig, GcpPlatformConfig, StackConfig, parse
from components.gcp import pod_network as gcp_network
from components.platform import (
    BACKUP_SERVICE_ACCOUNT,
    COMPILE_CACHE_SERVICE_ACCOUNT,
    READER_SERVICE_ACCOUNT,
    WRITER_SERVICE_ACCOUNT,
    ClusterNetwork,
    GpuNodes,
    LoadBalancing,
    ModelStore,
    Platform,
    retaining_storage_class,
)
from components.workloads import Serving, ServingArgs
from tools.offline import StackRun, load_stack_config, merge, run_program

GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}

GKE_A4 = GpuNodes(
    pool="a4high",
    gpu="B200",
    gpus_per_node=8,
    node_selector={"cloud.google.com/gke-nodepool": "a4high"},
    tolerations=[GPU_TOLERATION],
    shm_gib=250,
    whole_node=True,
    pod_annotations={"networking.gke.io/default-interface": "eth0", "networking.gke.io/interfaces": "[]"},
    volumes=[{"name": "nvidia", "hostPath": {"path": "/home/kubernetes/bin/nvidia"}}],
    volume_mounts=[{"name": "nvidia", "mountPath": "/usr/local/nvidia"}],
    env=[{"name": "LD_LIBRARY_PATH", "value": "/usr/local/nvidia/lib64"}],
    shell_prelude="source /usr/local/gib/scripts/set_nccl_env.sh",
    scratch_host_path="/mnt/stateful_partition/kube-ephemeral-ssd",
    capabilities=("IPC_LOCK",),
)

# A pool without node-local scratch (the real EKS g5 pool has its instance-store NVMe at
# /mnt/k8s-disks/0; the eks-p5 stack file's tests run the real platform for that).
EKS_G5 = GpuNodes(
    pool="g5",
    gpu="A10G",
    gpus_per_node=8,
    node_selector={"karpenter.sh/nodepool": "g5"},
    tolerations=[GPU_TOLERATION],
    shm_gib=2,
)


def platform_network(config: StackConfig) -> ClusterNetwork:
    """The network facts the real platform of this stack file would hand over."""
    platform = config.platform
    if isinstance(platform, GcpPlatformConfig):
        return gcp_network.cluster_network(platform)
    assert isinstance(platform, AwsPlatformConfig)
    return aws_network.cluster_network(platform)


def fake_platform(cloud: str, network: ClusterNetwork | None = None) -> Platform:
    provider = k8s.Provider("test-cluster", kubeconfig="{}")
    if cloud == "gcp":
        return Platform(
            cloud="gcp",
            cluster_name="test",
            location="us-central1",
            provider=provider,
            namespace="llm",
            gpu_pools={"a4high": GKE_A4},
            load_balancing=LoadBalancing(internal_annotations={"networking.gke.io/load-balancer-type": "Internal"}),
            model_store=ModelStore(
                scheme="gs",
                bucket=pulumi.Output.from_input("test-bucket"),
                reader_service_account=READER_SERVICE_ACCOUNT,
                writer_service_account=WRITER_SERVICE_ACCOUNT,
                fuse_csi_driver="gcsfuse.csi.storage.gke.io",
                fuse_pod_annotations={"gke-gcsfuse/volumes": "true"},
                fuse_cache_volume="gke-gcsfuse-cache",
                backup_service_account=BACKUP_SERVICE_ACCOUNT,
                compile_cache_service_account=COMPILE_CACHE_SERVICE_ACCOUNT,
            ),
            storage_class="standard-rwo",
            network=network or ClusterNetwork(),
            retained_storage_class=retaining_storage_class("pd.csi.storage.gke.io", {"type": "pd-balanced"}),
        )
    return Platform(
        cloud="aws",
        cluster_name="test",
        location="us-west-2",
        provider=provider,
        namespace="llm",
        gpu_pools={"g5": EKS_G5},
        load_balancing=LoadBalancing(
            external_annotations={"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"},
            internal_annotations={"service.beta.kubernetes.io/aws-load-balancer-internal": "true"},
        ),
        model_store=ModelStore(
            scheme="s3",
            bucket=pulumi.Output.from_input("test-bucket"),
            reader_service_account=READER_SERVICE_ACCOUNT,
            writer_service_account=WRITER_SERVICE_ACCOUNT,
            env={"AWS_REGION": "us-west-2"},
            backup_service_account=BACKUP_SERVICE_ACCOUNT,
            compile_cache_service_account=COMPILE_CACHE_SERVICE_ACCOUNT,
        ),
        storage_class="gp3",
        network=network or ClusterNetwork(),
    )


def stack_config(stack: str, changes: dict[str, Any] | None = None) -> StackConfig:
    raw = {k.split(":", 1)[1]: v for k, v in load_stack_config(stack).items()}
    return parse(merge(raw, changes or {}))


def run_serving(stack: str, changes: dict[str, Any] | None = None, hf_token: bool = False) -> StackRun:
    """The serving layer of a stack file (with changes) on a fake platform, on the mock engine."""
    config = stack_config(stack, changes)
    engine_config: dict[str, Any] = {"llm-serving:hfToken": {"secure": "v1:fake"}} if hf_token else {}

    def program() -> None:
        token = pulumi.Config("llm-serving").get_secret("hfToken")
        serving = Serving(
            "serving",
            ServingArgs(
                platform=fake_platform(config.platform.cloud, platform_network(config)),
                config=config,
                hf_token=token,
                stack=stack,
            ),
        )
        for key, value in serving.outputs.items():
            pulumi.export(key, value)

    run = run_program(program, stack, engine_config)
    if run.error is not None:
        raise AssertionError(f"serving failed on the mock engine: {run.error}") from run.error
    return run


ServingRunner = Callable[..., StackRun]
