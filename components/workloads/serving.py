"""The serving layer on top of a Platform (work in progress: outputs only)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi

from components.config import StackConfig
from components.platform import Platform


@dataclass(frozen=True)
class ServingArgs:
    platform: Platform
    config: StackConfig
    hf_token: pulumi.Output[str] | None
    stack: str


class Serving(pulumi.ComponentResource):
    outputs: Mapping[str, pulumi.Input[Any]]

    def __init__(self, name: str, args: ServingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llm-serving:workloads:Serving", name, None, opts)
        self.outputs = {}
        self.register_outputs({})
