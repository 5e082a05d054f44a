"""Reading the stack from Pulumi and reporting every problem, one line each, by stack key."""

from __future__ import annotations

import difflib
import json
import types
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Union, get_args, get_origin

import pulumi
from pulumi.runtime import config as runtime_config
from pydantic import BaseModel, ValidationError
from pydantic.alias_generators import to_camel

from components.config.base import NAMESPACE, REFUSED_TAG, SECRET_KEYS
from components.config.stack import StackConfig


class ConfigError(Exception):
    """Every problem of a stack's configuration, one line each."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        count = f"{len(self.problems)} problem{'s' if len(self.problems) != 1 else ''}"
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid stack configuration ({count}); nothing was created:\n{lines}")


def _full_key(path: Sequence[str | int]) -> str:
    key = f"{NAMESPACE}:"
    for i, part in enumerate(path):
        key += f"[{part}]" if isinstance(part, int) else (part if i == 0 else f".{part}")
    return key


def _camel(part: str | int) -> str | int:
    # Defaults are validated too, and pydantic locates their errors by field name.
    return to_camel(part) if isinstance(part, str) else part


def _show(value: Any) -> str:
    if isinstance(value, Mapping | list):
        text = json.dumps(value, default=str)
        return text if len(text) <= 60 else text[:57] + "..."
    return repr(value)


def _unwrap(annotation: Any) -> list[Any]:
    """The types an annotation may hold, looking through Optional, Annotated, list and dict."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _unwrap(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return [t for arg in get_args(annotation) for t in _unwrap(arg)]
    if origin in (list, dict, tuple):
        return [t for arg in get_args(annotation) for t in _unwrap(arg)]
    return [annotation]


def _model_at(loc: Sequence[str | int]) -> tuple[type[BaseModel] | None, list[str | int]]:
    """The model class that owns the last key of ``loc``, and ``loc`` as the user sees it.

    Discriminated unions put the tag (``gcp``) into pydantic's location; it is not a key
    in the stack file, so it is dropped from the displayed path.
    """
    current: type[BaseModel] | None = StackConfig
    shown: list[str | int] = []
    pending: list[type[BaseModel]] = []
    loc = [_camel(part) for part in loc]
    for part in loc[:-1]:
        if isinstance(part, int):
            shown.append(part)
            continue
        if pending:
            tagged = [m for m in pending if _tag(m) == part]
            if tagged:
                current, pending = tagged[0], []
                continue
        shown.append(part)
        field = _field_by_alias(current, part) if current else None
        if field is None:
            current = None
            continue
        models = [t for t in _unwrap(field.annotation) if isinstance(t, type) and issubclass(t, BaseModel)]
        current = models[0] if len(models) == 1 else None
        pending = models if len(models) > 1 else []
    if not (pending and loc[-1] == REFUSED_TAG):  # a refused variant reports at its section
        shown.append(loc[-1])
    return current, shown


def _tag(model: type[BaseModel]) -> str | None:
    """The tag of a variant of a discriminated union (its ``cloud`` or ``kind``)."""
    for name in ("cloud", "kind"):
        if name in model.model_fields:
            values = get_args(model.model_fields[name].annotation)
            return str(values[0]) if len(values) == 1 else None
    return None


def _field_by_alias(model: type[BaseModel], alias: str) -> Any:
    for name, info in model.model_fields.items():
        if (info.alias or name) == alias:
            return info
    return None


def _describe(error: Mapping[str, Any]) -> str:
    owner, path = _model_at(error["loc"])
    key = _full_key(path)
    if error["type"] == "extra_forbidden":
        valid = [info.alias or name for name, info in owner.model_fields.items()] if owner else []
        near = difflib.get_close_matches(str(path[-1]), valid, n=1, cutoff=0.6)
        hint = f"did you mean '{near[0]}'? " if near else ""
        return f"{key}: unknown key; {hint}allowed keys: {', '.join(valid)}"
    if error["type"] == "missing":
        return f"{key}: is required"
    message = error["msg"].removeprefix("Value error, ")
    return f"{key} = {_show(error['input'])}: {message}"


def parse(raw: Mapping[str, Any]) -> StackConfig:
    """Validate the stack's structured config (keys without the namespace)."""
    try:
        return StackConfig.model_validate(dict(raw))
    except ValidationError as err:
        raise ConfigError([_describe(e) for e in err.errors()]) from None


def read_raw_config() -> dict[str, Any]:
    """Every ``llm-serving:*`` key the engine passes to the program, parsed from JSON.

    Listing the keys (rather than asking for known ones) is what lets a misspelled
    top-level key be reported instead of silently ignored.
    """
    keys = set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())
    config = pulumi.Config(NAMESPACE)
    raw: dict[str, Any] = {}
    for full_key in sorted(keys):
        namespace, _, key = full_key.partition(":")
        if namespace != NAMESPACE or key in SECRET_KEYS:
            continue
        value = config.get(key)
        try:
            raw[key] = json.loads(value) if value is not None else None
        except json.JSONDecodeError:
            raw[key] = value
    return raw


def load_config() -> tuple[StackConfig, pulumi.Output[str] | None]:
    """The validated stack configuration and the Hugging Face token (a secret), if set."""
    problems: list[str] = []
    token: pulumi.Output[str] | None = None
    config = pulumi.Config(NAMESPACE)
    if config.get("hfToken") is not None:
        if not pulumi.runtime.is_config_secret(f"{NAMESPACE}:hfToken"):
            problems.append(
                f"{NAMESPACE}:hfToken: is stored in plain text; set it with "
                f"`pulumi config set --secret hfToken <token>`"
            )
        token = config.require_secret("hfToken")
    try:
        stack = parse(read_raw_config())
    except ConfigError as err:
        raise ConfigError(problems + err.problems) from None
    if problems:
        raise ConfigError(problems)
    return stack, token
