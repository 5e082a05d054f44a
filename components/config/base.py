"""What every config model shares: strictness, camelCase keys, and how rules report."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel
from pydantic_core import InitErrorDetails, PydanticCustomError

NAMESPACE = "llm-serving"
SECRET_KEYS = ("hfToken",)

K8S_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"  # RFC 1123 label
GCE_NAME = r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"  # Compute Engine resource name (RFC 1035)
DURATION = r"^([0-9]+(s|m|h))+$"  # Karpenter durations such as 30m, 720h


class Strict(BaseModel):
    """Base of every config model: unknown keys are errors, keys are camelCase."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, frozen=True, validate_default=True)


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
