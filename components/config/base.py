"""What every config model shares: strictness, camelCase keys, and how rules report."""

from __future__ import annotations

import difflib
import types
from ipaddress import IPv4Network
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import InitErrorDetails, PydanticCustomError

from components.catalog import regions

NAMESPACE = "llm-serving"
SECRET_KEYS = ("hfToken",)
# Other namespaces a stack file may carry: the Pulumi engine's own (``pulumi:tags``,
# ``pulumi:disable-default-providers``) and those of the providers this program uses
# (requirements.txt), whose default providers read e.g. ``gcp:project``, ``aws:region``,
# ``kubernetes:context``. A key under any other namespace (another project's) is a mistake
# the engine would silently ignore.
PROVIDER_NAMESPACES = ("pulumi", "gcp", "aws", "eks", "kubernetes", "random")

K8S_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"  # RFC 1123 label
GCE_NAME = r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"  # Compute Engine resource name (RFC 1035)
DURATION = r"^([0-9]+(s|m|h))+$"  # Karpenter durations such as 30m, 720h


# A range wider than this (a /7, ..., 0.0.0.0/0) is "the internet" for the opt-in rules below.
INTERNET_PREFIX = 8


class Strict(BaseModel):
    """Base of every config model: unknown keys are errors, keys are camelCase, and no
    value is coerced (``"off"`` is not false, ``"8"`` is not 8): a coerced boolean can
    turn on force-destroy of a bucket. The one conversion kept is text to IPv4Network
    (a stack file has no other way to write a network), for every field that holds one."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, frozen=True, validate_default=True, strict=True)

    @model_validator(mode="before")
    @classmethod
    def _networks_from_text(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        converted = dict(data)
        for name, info in cls.model_fields.items():
            key = info.alias or name
            if key in converted and _holds_network(info.annotation):
                value = converted[key]
                converted[key] = [_network(v) for v in value] if isinstance(value, list) else _network(value)
        return converted


def _network(value: Any) -> Any:
    """Text to IPv4Network; anything else as it is, for strict validation to report."""
    try:
        return IPv4Network(value) if isinstance(value, str) else value
    except ValueError:
        return value


def _holds_network(annotation: Any) -> bool:
    if annotation is IPv4Network:
        return True
    origin = get_origin(annotation)
    if origin in (Annotated, Union, types.UnionType, list):
        return any(_holds_network(arg) for arg in get_args(annotation))
    return False


def rule(loc: tuple[str | int, ...], value: Any, message: str) -> InitErrorDetails:
    """One cross-field problem, reported at the key the user has to change."""
    return InitErrorDetails(type=PydanticCustomError("rule", "{message}", {"message": message}), loc=loc, input=value)


def raise_problems(title: str, problems: list[InitErrorDetails]) -> None:
    if problems:
        raise ValidationError.from_exception_data(title, problems)


def deployer_reachable(cidrs: list[Any], what: str) -> list[Any]:
    """A Kubernetes API open to nobody would lock out Pulumi itself; open to everybody is
    not a default we make. So the list of allowed networks is required."""
    if not cidrs:
        raise ValueError(
            f"list at least one CIDR (your deployment machine): the {what} is only reachable "
            "from these networks and Pulumi applies Kubernetes objects through it"
        )
    return cidrs


def internet_ranges(cidrs: list[Any], allowed: bool, opt_in: str) -> list[InitErrorDetails]:
    """Ranges that open a door to the whole internet, unless the stack opts in by name."""
    if allowed:
        return []
    return [
        rule(
            (i,),
            str(cidr),
            f"covers {cidr.num_addresses:,} addresses, i.e. the internet; list your own ranges, "
            f"or set {opt_in}: true to open it on purpose",
        )
        for i, cidr in enumerate(cidrs)
        if cidr.prefixlen < INTERNET_PREFIX
    ]


def unlisted_region(region: str, known: list[str], cloud: str) -> str:
    """The message for a region missing from components/catalog/regions.py."""
    near = difflib.get_close_matches(region, known, n=1)
    hint = f"did you mean '{near[0]}'? " if near else ""
    return (
        f"not a region of {cloud} as of {regions.REGIONS_AS_OF}; {hint}for a region opened since, "
        "set platform.allowUnlistedRegion: true"
    )


# --------------------------------------------------------------------------------------
# Shared pieces
# --------------------------------------------------------------------------------------


class BucketConfig(Strict):
    """The stack's bucket for model weights and benchmark results."""

    create: bool = True
    # Buckets hold data: `pulumi destroy` leaves them (and their contents) in place
    # unless this is false, in which case they are deleted with everything in them.
    keep_on_destroy: bool = True


class RegistryConfig(Strict):
    """A container registry for your own serving images (nodes may pull from it)."""

    create: bool = True
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-_/]{1,62}$")] = "llm-serving"
