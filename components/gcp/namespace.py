"""The workload namespace and the Kubernetes service accounts the bucket is bound to.

Pods that read or write model weights run as one of these accounts; IAM grants the
bucket roles to them directly as Workload Identity principals (``storage.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi

from components.gcp.options import child_options
from components.kubernetes import apply, namespace_manifest, service_account_manifest


@dataclass(frozen=True)
class WorkloadNamespaceArgs:
    namespace: str
    service_accounts: Sequence[str]


class WorkloadNamespace(pulumi.ComponentResource):
    """A namespace for the workloads and their service accounts."""

    namespace: pulumi.CustomResource
    service_accounts: list[pulumi.CustomResource]

    def __init__(self, name: str, args: WorkloadNamespaceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llm-serving:gcp:WorkloadNamespace", name, None, opts)
        self.namespace = apply(name, namespace_manifest(args.namespace), child_options(self, opts))
        self.service_accounts = [
            apply(
                f"{name}-{account}",
                service_account_manifest(account, args.namespace),
                child_options(self, opts, depends_on=[self.namespace]),
            )
            for account in args.service_accounts
        ]
        self.register_outputs({"namespace": args.namespace, "service_accounts": list(args.service_accounts)})
