"""llm-serving: config -> platform -> serving -> outputs.

Each step lives in ``components/``; this file only wires them together.
"""

from __future__ import annotations

import pulumi

from components.config import AwsPlatformConfig, ConfigError, GcpPlatformConfig, load_config
from components.cost import estimate
from components.notifications import rendered
from components.platform import Platform
from components.workloads import Serving, ServingArgs

try:
    config, secrets = load_config()
except ConfigError as err:
    # Raised before any resource is declared; RunError prints without a traceback.
    raise pulumi.RunError(str(err)) from None

stack = pulumi.get_stack()
notify = config.monitoring.notifications
# load_config refused notifications without their URL.
alertmanager_config = rendered(notify, secrets.alert_webhook_url) if notify and secrets.alert_webhook_url else None
platform: Platform
if isinstance(config.platform, GcpPlatformConfig):
    from components.gcp import GcpPlatform, GcpPlatformArgs  # imported per cloud: each SDK is large

    platform = GcpPlatform(
        "gcp",
        GcpPlatformArgs(
            config=config.platform,
            namespace=config.serving.namespace,
            stack=stack,
            alertmanager_config=alertmanager_config,
            store_keys=secrets.store_keys,
            node_alerts=config.monitoring.enabled and config.monitoring.alerts.enabled,
        ),
    ).platform
elif isinstance(config.platform, AwsPlatformConfig):
    from components.aws import AwsPlatform, AwsPlatformArgs

    platform = AwsPlatform(
        "aws",
        AwsPlatformArgs(
            config=config.platform,
            namespace=config.serving.namespace,
            stack=stack,
            monitoring=config.monitoring.enabled,
            alertmanager_config=alertmanager_config,
            store_keys=secrets.store_keys,
        ),
    ).platform
else:
    from components.existing import ExistingPlatform, ExistingPlatformArgs

    platform = ExistingPlatform(
        "existing",
        ExistingPlatformArgs(
            config=config,
            namespace=config.serving.namespace,
            kubeconfig=secrets.kubeconfig,
            store_keys=secrets.store_keys,
        ),
    ).platform

serving = Serving("serving", ServingArgs(platform=platform, config=config, hf_token=secrets.hf_token, stack=stack))

for key, value in {**platform.outputs, **serving.outputs}.items():
    pulumi.export(key, value)
# List prices from components/catalog/prices.py or llm-serving:cost; a range where Karpenter may choose.
pulumi.export("gpu_cost_per_hour", estimate(config).output())
