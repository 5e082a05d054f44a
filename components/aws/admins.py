"""Cluster admins: access entries for ``adminPrincipals``, minus the cluster's creator.

pulumi-eks always creates the cluster with ``bootstrapClusterCreatorAdminPermissions:
true`` (nodejs/eks/cluster/cluster.ts, ``accessConfig``; no argument turns it off in
4.x), so EKS itself gives the principal that creates the cluster an admin access entry.
A second entry for the same principal is refused with 409 ResourceInUseException
(pulumi/pulumi-eks#2373; terraform-aws-eks #3293). The program therefore makes entries
for every listed admin except the creator.

Who is the creator, on every ``up``:

* ``clusterCreator`` from the stack config, when set;
* otherwise the principal running this ``up`` (``aws.get_caller_identity``; for an
  assumed role, ``aws.iam.get_session_context`` gives the role, which is what EKS's
  bootstrap entry names). On the first ``up`` that is the creator by definition.

The caller alone is not stable: when a different admin runs a later ``up``, the skipped
entry would move from the creator to them, and EKS would refuse the creator's new entry
(409) while the other admin's entry went away. So the creator resolved at the first ``up``
is recorded in the stack's state (``CreatorRecord``, which ignores later changes) and each
``up`` compares: a different caller without ``clusterCreator`` stops with a message
saying which value to set, before any access entry changes. The stack file asks users to
set ``clusterCreator`` after the first ``up`` (the ``cluster_creator`` output prints it);
config, not state, is the lasting record because the set of entries has to be known
when the program runs, and only config is a plain value then.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pulumi
import pulumi_aws as aws
import pulumi_random as random

# Key of the principal in the record's keepers.
_PRINCIPAL = "principalArn"
# arn:<partition>:iam::<account>:role/<path/>name or :user/<path/>name
_IAM_PRINCIPAL = re.compile(r"^arn:[^:]+:iam::(\d{12}):(role|user)/(?:.*/)?([^/]+)$")


def deploying_principal(provider: aws.Provider, parent: pulumi.Resource) -> str:
    """The IAM role or user running this program: an assumed-role session resolves to its role.

    A plain value, not an Output (an invoke that blocks): which access entries exist
    depends on it, and Pulumi needs the set of resources when the program runs.
    """
    opts = pulumi.InvokeOptions(provider=provider, parent=parent)
    caller = aws.get_caller_identity(opts=opts)
    return aws.iam.get_session_context(arn=caller.arn, opts=opts).issuer_arn


def admin_principals(admins: Sequence[str], creator: str) -> list[str]:
    """The listed admins that need an access entry: all but the creator, in order, once each."""
    return [p for p in dict.fromkeys(admins) if p != creator]


def entry_key(principal: str) -> str:
    """A stable access-entry key per principal (account, kind, name), so that adding or
    removing another admin never renames, and so replaces, this one's entry."""
    match = _IAM_PRINCIPAL.match(principal)
    if match is None:
        raise ValueError(f"not an IAM role or user ARN: {principal}")
    account, kind, name = match.groups()
    return f"admin-{account}-{kind}-{name}"


def check_creator(recorded: str, creator: str, *, configured: bool) -> str:
    """The creator to use, or a stop when a later ``up`` by someone else would move it.

    ``configured``: the creator comes from ``clusterCreator``, which always wins (it is how
    a user states the creator for clusters made before the record, or fixes a record).
    """
    if configured or recorded == creator:
        return creator
    raise pulumi.RunError(
        f"this cluster was created by {recorded} (recorded at the stack's first `up`), and EKS gave that "
        f"principal its admin access entry; this `up` runs as {creator}. Record the creator once so every "
        f"admin computes the same access entries:\n"
        f"  pulumi config set --path 'llm-serving:platform.clusterCreator' '{recorded}'"
    )


def after(check: pulumi.Output[str], principal: str) -> pulumi.Output[str]:
    """``principal`` once ``check`` has passed: an entry made from it waits for the check."""
    return check.apply(lambda _: principal)


class CreatorRecord(pulumi.ComponentResource):
    """The cluster creator, written to the stack's state once and never updated.

    A ``random.RandomId`` whose keepers hold the principal, with ``ignore_changes`` on the
    keepers: the engine keeps the first value whoever runs later ``up``s, and the record
    is free and has no cloud side effects.
    """

    principal: pulumi.Output[str]

    def __init__(self, name: str, creator: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llm-serving:aws:ClusterCreator", name, None, opts)
        record = random.RandomId(
            name,
            byte_length=4,
            keepers={_PRINCIPAL: creator},
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["keepers"]),
        )
        self.principal = record.keepers.apply(lambda keepers: (keepers or {}).get(_PRINCIPAL, creator))
        self.register_outputs({"principal": self.principal})
