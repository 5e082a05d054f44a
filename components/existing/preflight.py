"""What the program cannot check offline about a cluster it did not build, as ``kubectl``
commands in the stack output ``preflight``: run them before (or right after) the first
``pulumi up``. Each entry says what to expect; none changes the cluster except the
NetworkPolicy probe, a short-lived pod deleted when it exits.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping

from components import catalog
from components.config.existing import ExistingPlatformConfig, PrometheusOperatorConfig
from components.config.stack import StackConfig

# CRDs whose operators an engine needs (KubeRay 1.7: ray.io/v1 RayService; LWS 0.10).
OPERATOR_CRDS: Mapping[str, str] = {
    "rayservice": "rayservices.ray.io",
    "vllm-multinode": "leaderworkersets.leaderworkerset.x-k8s.io",
}
# A pinned image with curl (Amazon Linux 2 based) the catalog already has, on ECR Public
# rather than Docker Hub; any image with curl would do.
PROBE_IMAGE = catalog.AWS_CLI_IMAGE
# Multus: the annotation naming the NetworkAttachmentDefinitions a pod is attached to
# (k8snetworkplumbingwg/multus-cni docs/quickstart.md).
MULTUS_NETWORKS = "k8s.v1.cni.cncf.io/networks"
PROMETHEUS_CRDS = "podmonitors.monitoring.coreos.com prometheusrules.monitoring.coreos.com"


def _selector(labels: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in labels.items())


def _escaped(resource: str) -> str:
    """A resource name as a jsonpath key (dots escaped)."""
    return resource.replace(".", "\\.")


def identity_checks(platform: ExistingPlatformConfig) -> dict[str, str]:
    """A bucket reached through the managed cluster's identity: what must be switched on.
    Fields of the GKE API's Cluster resource (workloadIdentityConfig.workloadPool,
    nodeConfig.workloadMetadataConfig.mode, addonsConfig.gcsFuseCsiDriverConfig.enabled;
    https://cloud.google.com/kubernetes-engine/docs/reference/rest/v1/projects.locations.clusters);
    the EKS add-on name of https://docs.aws.amazon.com/eks/latest/userguide/pod-id-agent-setup.html."""
    checks: dict[str, str] = {}
    bucket = platform.bucket_store.name if platform.bucket_store else None
    if platform.gke is not None:
        gke = platform.gke
        where = f"{gke.cluster} --location {gke.location} --project {gke.project}"
        checks["workload_identity"] = (
            f"gcloud container clusters describe {where} --format='value(workloadIdentityConfig.workloadPool)'"
            f"  # expect {gke.project}.svc.id.goog (Workload Identity enabled on the cluster)"
        )
        checks["gke_metadata_server"] = (
            f"gcloud container node-pools list --cluster {where} "
            "--format='table(name,config.workloadMetadataConfig.mode)'"
            "  # expect GKE_METADATA on every pool the workloads run on"
        )
        # The prefix writers' grants are IAM conditions, which need uniform bucket-level access
        # (https://cloud.google.com/storage/docs/access-control/iam#conditions); --raw shows the
        # JSON API's field names (gcloud storage buckets describe reference).
        checks["bucket_access_control"] = (
            f"gcloud storage buckets describe gs://{bucket} --project {gke.project} --raw "
            "--format='value(iamConfiguration.uniformBucketLevelAccess.enabled)'  # expect True: the backup "
            "and compile-cache grants are IAM conditions, which need uniform bucket-level access"
        )
        if gke.gcs_fuse:
            checks["gcs_fuse_csi_driver"] = (
                f"gcloud container clusters describe {where} "
                "--format='value(addonsConfig.gcsFuseCsiDriverConfig.enabled)'  # expect True (identity.gcsFuse)"
            )
    if platform.eks is not None:
        eks = platform.eks
        checks["pod_identity_agent"] = (
            f"aws eks describe-addon --cluster-name {eks.cluster_name} --region {eks.region} "
            "--addon-name eks-pod-identity-agent --query addon.status  # expect ACTIVE (built into EKS Auto Mode)"
        )
        # Pods sign S3 requests for identity.region (AWS_REGION), as the EKS stack does for the
        # bucket it creates in its own region.
        checks["bucket_region"] = (
            f"aws s3api get-bucket-location --bucket {bucket}  # expect {eks.region} (null means us-east-1): "
            "the bucket must be in the cluster's region"
        )
    return checks


def preflight_commands(stack: StackConfig, namespace: str) -> dict[str, str]:
    """name -> ``kubectl`` command with what it should show."""
    platform = stack.platform
    assert isinstance(platform, ExistingPlatformConfig)
    checks: dict[str, str] = {}
    for pool in platform.gpu_pools:
        sel = shlex.quote(_selector(pool.node_selector))
        columns = [f"GPUS:.status.allocatable.{_escaped(pool.resource_name)}"]
        if pool.rdma:
            columns += [f"{r.upper()}:.status.allocatable.{_escaped(r)}" for r in pool.rdma.resources]
        checks[f"gpu_nodes_{pool.name}"] = (
            f"kubectl get nodes -l {sel} -o custom-columns=NAME:.metadata.name,{','.join(columns)}"
            f"  # expect {pool.node_count} nodes with {pool.gpus_per_node} GPUs each (the device plugin advertises "
            f"{pool.resource_name})" + (" and the RDMA resources" if pool.rdma else "")
        )
        networks = pool.rdma.pod_annotations.get(MULTUS_NETWORKS) if pool.rdma else None
        if networks:
            checks[f"rdma_networks_{pool.name}"] = (
                f"kubectl -n {namespace} get network-attachment-definitions  # must list {networks} "
                "(Multus attaches the RDMA NICs by these names)"
            )
    if stack.serving.engine != "none":
        image = stack.serving.engine_image
        pinned = catalog.RAY_LLM_IMAGE if stack.serving.engine == "rayservice" else catalog.VLLM_IMAGE
        pool = platform.pool(stack.gpu_pool_name)
        need = (
            f"NVIDIA driver >= {pinned.cuda.min_driver} (the image {image} is built for CUDA {pinned.cuda.cuda})"
            if image == pinned.ref and pinned.cuda is not None
            else f"a driver that runs {image}"
        )
        checks["gpu_driver"] = (
            f"kubectl get nodes -l {shlex.quote(_selector(pool.node_selector))} "
            "-L nvidia.com/cuda.driver-version.full  # needs GPU feature discovery labels; "
            f"expect {need}; the engine's gpu-check init container refuses an older one at start"
        )
        operator = "vllm-multinode" if stack.serving.engine == "vllm" and stack.topology.layout.nodes > 1 else None
        operator = "rayservice" if stack.serving.engine == "rayservice" else operator
        installed = {
            "rayservice": platform.install.kuberay,
            "vllm-multinode": platform.install.leader_worker_set,
        }
        if operator is not None and not installed[operator]:
            checks["operator_crd"] = (
                f"kubectl get crd {OPERATOR_CRDS[operator]}  # the cluster's own operator must serve it "
                "(or set platform.install to install the pinned chart)"
            )
    checks.update(identity_checks(platform))
    storage = platform.storage
    checks["storage_class"] = (
        f"kubectl get storageclass {storage.class_name}  # must exist"
        if storage.class_name
        else "kubectl get storageclass  # one must be marked (default); claims use it"
    )
    ingress = platform.exposure.ingress
    if ingress is not None:
        checks["ingress_class"] = (
            f"kubectl get ingressclass {ingress.class_name}  # the controller Open WebUI is published through"
        )
    if isinstance(platform.monitoring, PrometheusOperatorConfig):
        checks["prometheus_operator"] = f"kubectl get crd {PROMETHEUS_CRDS}  # the cluster's prometheus-operator"
    # A pod with labels no policy admits must fail to reach the namespace's Services: if it
    # gets through, the CNI does not enforce NetworkPolicies (kube-proxy alone does not).
    probe = (
        f"kubectl -n {namespace} run netpol-probe --rm -i --restart=Never --image={PROBE_IMAGE.ref} "
        "--labels=app.kubernetes.io/name=netpol-probe --command -- "
        "curl -sS -m 5 -o /dev/null http://kubernetes.default.svc:443"
    )
    checks["network_policy_enforced"] = (
        f"{probe}  # expect curl to fail (name lookup or connection blocked): the namespace's default-deny holds"
    )
    return checks
