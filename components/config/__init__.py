"""Stack configuration: strict pydantic models, every default, every cross-field rule.

The stack file (``Pulumi.<stack>.yaml``) carries six structured keys under the
``llm-serving`` namespace (``platform``, ``serving``, ``modelCache``, ``benchmark``, ``cost``,
``monitoring``)
and secrets (``hfToken``, ``alertWebhookUrl``: ``StackSecrets``). ``load_config`` reads them from ``pulumi.Config``,
validates everything before a single resource is declared, and raises ``ConfigError``
listing *all* problems, each as ``llm-serving:<key path> = <value>: <what is allowed>``.
The sizing gate (components/sizing.py) is one of those rules: a configuration that
cannot start on its GPUs is refused with the numbers.

One module per concern:

    base.py      the strict base model, how a rule reports, shared pieces (model store, registry)
    gcp.py       platform: Google Cloud (GKE, A4 High pool, RoCE networks)
    aws.py       platform: AWS (EKS, Karpenter GPU NodePools)
    existing.py  platform: a Kubernetes cluster you already have (kubeconfig, GPU nodes)
    serving.py   engine, Open WebUI, exposure, model cache, benchmark
    cost.py      prices the catalog lacks (reservations, committed use, other regions)
    monitoring.py  scraping and alerts on or off, alert thresholds
    stack.py     the whole stack: rules across sections, derived views (sizing)
    loading.py   reading Pulumi config, turning pydantic errors into stack-key messages
"""

from components.config.aws import (
    AwsEfaConfig,
    AwsGpuNodePoolConfig,
    AwsPlatformConfig,
    AwsSystemNodeGroupConfig,
    DisruptionBudget,
)
from components.config.base import (
    NAMESPACE,
    SECRET_KEYS,
    CloudBucket,
    CloudRepository,
    MirrorCredentials,
    ModelStoreConfig,
    NoStore,
    RegistryConfig,
    RegistryMirror,
    S3CompatibleStore,
    StoreSections,
    VolumeStore,
    s3_key_names,
)
from components.config.existing import ExistingGpuPoolConfig, ExistingPlatformConfig
from components.config.gcp import (
    AuthorizedNetwork,
    GcpGpuPoolConfig,
    GcpMaintenanceConfig,
    GcpNetworkConfig,
    GcpPlatformConfig,
    GcpSystemPoolConfig,
)
from components.config.loading import ConfigError, StackSecrets, load_config, parse, read_raw_config
from components.config.serving import (
    REMOVED_VLLM_FLAGS,
    BenchmarkConfig,
    ChatBackupConfig,
    CompileCacheConfig,
    ExposureConfig,
    ModelCacheConfig,
    OpenWebuiConfig,
    ServiceExposure,
    ServingConfig,
)
from components.config.stack import PlatformConfig, StackConfig, gpu_pool_names, pool_shape, sizing_request

__all__ = [
    "NAMESPACE",
    "REMOVED_VLLM_FLAGS",
    "SECRET_KEYS",
    "AuthorizedNetwork",
    "AwsEfaConfig",
    "AwsGpuNodePoolConfig",
    "AwsPlatformConfig",
    "AwsSystemNodeGroupConfig",
    "BenchmarkConfig",
    "ChatBackupConfig",
    "CloudBucket",
    "CloudRepository",
    "CompileCacheConfig",
    "ConfigError",
    "DisruptionBudget",
    "ExistingGpuPoolConfig",
    "ExistingPlatformConfig",
    "ExposureConfig",
    "GcpGpuPoolConfig",
    "GcpMaintenanceConfig",
    "GcpNetworkConfig",
    "GcpPlatformConfig",
    "GcpSystemPoolConfig",
    "MirrorCredentials",
    "ModelCacheConfig",
    "ModelStoreConfig",
    "NoStore",
    "OpenWebuiConfig",
    "PlatformConfig",
    "RegistryConfig",
    "RegistryMirror",
    "S3CompatibleStore",
    "ServiceExposure",
    "ServingConfig",
    "StackConfig",
    "StackSecrets",
    "StoreSections",
    "VolumeStore",
    "gpu_pool_names",
    "load_config",
    "parse",
    "pool_shape",
    "read_raw_config",
    "s3_key_names",
    "sizing_request",
]
