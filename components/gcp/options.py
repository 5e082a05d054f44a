"""Resource options of a component's children."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi


def child_options(parent: pulumi.Resource, opts: pulumi.ResourceOptions | None, **extra: Any) -> pulumi.ResourceOptions:
    """Options for a child of ``parent``: parented to it, and waiting for whatever the
    component was told to wait for. Pulumi hands a component's providers down to its
    children but not its ``depends_on``, which would then hold back nothing. ``extra``
    adds options, including more ``depends_on``."""
    waits: list[pulumi.Input[pulumi.Resource]] = []
    inherited = opts.depends_on if opts else None
    if isinstance(inherited, pulumi.Resource):
        waits.append(inherited)
    elif isinstance(inherited, Sequence):
        waits.extend(inherited)
    elif inherited is not None:
        raise TypeError("components take depends_on as a resource or a list of resources")
    waits.extend(extra.pop("depends_on", []))
    return pulumi.ResourceOptions(parent=parent, depends_on=waits or None, **extra)
