"""Reading the stack from Pulumi and reporting every problem, one line each, by stack key."""

from __future__ import annotations

import difflib
import json
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import pulumi
from pulumi.runtime import config as runtime_config
from pydantic import BaseModel, ValidationError
from pydantic.alias_generators import to_camel

from components.config.base import (
    DURATION,
    GCE_NAME,
    K8S_NAME,
    NAMESPACE,
    PROVIDER_NAMESPACES,
    REFUSED_TAG,
    S3_KEY_ROLES,
    SECRET_KEYS,
    S3CompatibleStore,
    s3_key_names,
)
from components.config.existing import (
    ABSOLUTE_PATH,
    COUNT,
    DNS_NAME,
    IMAGE_PREFIX,
    LABEL_KEY,
    RESOURCE_NAME,
    ExistingPlatformConfig,
    KubeconfigFile,
    KubeconfigSecret,
)
from components.config.gcp import RECURRENCE, ZULU_TIME
from components.config.monitoring import PROM_DURATION, SLACK_CHANNEL
from components.config.serving import IMAGE_REF
from components.config.stack import StackConfig

# Every pattern a config field uses, in words: a user is told what is allowed, not shown a
# regular expression (tests/test_config_messages.py checks that none is missing).
PATTERN_WORDS: dict[str, str] = {
    K8S_NAME: "lowercase letters, digits and '-', starting and ending with a letter or digit",
    GCE_NAME: "lowercase letters, digits and '-', starting with a letter, at most 63 characters",
    DURATION: "a duration in whole seconds, minutes or hours, such as 90s, 30m, 720h or 1h30m",
    PROM_DURATION: "a Prometheus duration in one unit, greater than zero, such as 30s, 5m or 1h",
    SLACK_CHANNEL: "a Slack channel (#name) or user (@name): lowercase letters, digits, '.', '_' and '-'",
    IMAGE_REF: "an image reference such as registry/repository:tag, not empty and without spaces",
    LABEL_KEY: "a label or annotation key such as nvidia.com/gpu.product or app (optional prefix/, then a name)",
    RESOURCE_NAME: "a domain-prefixed name such as nvidia.com/gpu or rdma/ib",
    ABSOLUTE_PATH: "an absolute path such as /mnt/nvme, without spaces",
    DNS_NAME: "a host name with its domain, in lowercase, such as chat.example.internal",
    IMAGE_PREFIX: "a registry host and optional path, without a tag, such as harbor.example.internal/proxy",
    COUNT: 'a whole number of 1 or more, in quotes, such as "1"',
    r"^(\d+%?)$": "a number of nodes (3) or a percentage of them (10%)",
    r"^([0-9]+h)?([0-9]+m)?$": "hours and/or minutes such as 8h, 30m or 1h30m (no seconds)",
    r"^[a-z]{2}(-gov)?-[a-z]+-\d$": "an AWS region such as us-west-2 or us-gov-west-1",
    r"^[a-zA-Z][a-zA-Z0-9-]*$": "letters, digits and '-', starting with a letter",
    r"^1\.\d{2}$": 'a Kubernetes minor version in quotes, such as "1.33"',
    r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/.+$": (
        "the ARN of an IAM role or user, such as arn:aws:iam::123456789012:role/Admin"
    ),
    r"^cr-[0-9a-f]+$": "a capacity reservation id such as cr-0123456789abcdef0",
    r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$": (
        "a project id: 6 to 30 lowercase letters, digits and '-', starting with a letter, not ending with '-'"
    ),
    r"^[a-z]+-[a-z]+[0-9]+$": "a Google Cloud region such as us-central1",
    r"^[a-z]+-[a-z]+[0-9]+-[a-z]$": "a Google Cloud zone such as us-central1-b",
    r"^[a-z]([-a-z0-9]*[a-z0-9])?$": (
        "lowercase letters, digits and '-', starting with a letter and ending with a letter or digit"
    ),
    ZULU_TIME: "a UTC time in RFC 3339 form, such as 2026-01-03T02:00:00Z",
    RECURRENCE: (
        "FREQ=DAILY, or FREQ=WEEKLY;BYDAY= followed by days (MO,TU,WE,TH,FR,SA,SU), such as FREQ=WEEKLY;BYDAY=SA,SU"
    ),
    r"^\S+ \S+ \S+ \S+ \S+$": "a five-field cron schedule such as '17 3 * * *' (minute hour day month weekday, UTC)",
    r"^v\d+\.\d+\.\d+$": "a release tag such as v1.1.1",
    r"^[^@\s]+@[^@\s]+$": "an e-mail address such as admin@example.com",
    r"^[A-Za-z0-9][A-Za-z0-9._/-]*$": "letters, digits and . _ / -, starting with a letter or digit",
    r"^[a-z][a-z0-9-_/]{1,62}$": ("2 to 63 lowercase letters, digits and - _ /, starting with a letter"),
}

# Pydantic's words for the kind of value a field takes, said the way a stack file says it.
_KINDS = {
    "bool_type": "true or false",
    "int_type": "a whole number",
    "float_type": "a number",
    "string_type": "text",
    "list_type": "a list",
    "dict_type": "a map of keys",
    "model_type": "a map of keys",
    "model_attributes_type": "a map of keys",
}
# `pulumi config set --path` stores true/false and whole numbers typed, anything else as
# text unless given `--type` (https://www.pulumi.com/docs/iac/cli/commands/pulumi_config_set/).
_TYPED = ("bool_type", "int_type", "float_type")


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


def _show(value: Any) -> str:
    """A value as the stack file writes it (YAML/JSON), shortened."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, IPv4Network):  # as written in the file: text
        return repr(str(value))
    if isinstance(value, Mapping | list):
        text = json.dumps(value, default=str)
        return text if len(text) <= 60 else text[:57] + "..."
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


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


def _field(model: type[BaseModel] | None, part: str) -> tuple[str, Any]:
    """The key as the stack file spells it and its field, for a key or a field name.

    Pydantic locates the errors of defaults by field name (``max_model_len``) and those of
    the user's input by their own key; a user's own ``max_model_len`` is not a field name
    of a model with aliases, so it is shown as they wrote it.
    """
    if model is None:
        return part, None
    for name, info in model.model_fields.items():
        alias = info.alias or name
        if part in (alias, name):
            return alias, info
    return part, None


def _model_at(loc: Sequence[str | int]) -> tuple[type[BaseModel] | None, list[str | int]]:
    """The model class that owns the last key of ``loc``, and ``loc`` as the user sees it.

    Discriminated unions put the tag (``gcp``) into pydantic's location; it is not a key
    in the stack file, so it is dropped from the displayed path.
    """
    current: type[BaseModel] | None = StackConfig
    shown: list[str | int] = []
    pending: list[type[BaseModel]] = []
    for part in loc[:-1]:
        if isinstance(part, int):
            shown.append(part)
            continue
        if pending:
            tagged = [m for m in pending if _tag(m) == part]
            if tagged:
                current, pending = tagged[0], []
                continue
        key, field = _field(current, part)
        shown.append(key)
        if field is None:
            current = None
            continue
        models = [t for t in _unwrap(field.annotation) if isinstance(t, type) and issubclass(t, BaseModel)]
        current = models[0] if len(models) == 1 else None
        pending = models if len(models) > 1 else []
    last = loc[-1] if loc else ""
    if not (pending and last == REFUSED_TAG):  # a refused variant reports at its section
        shown.append(_field(current, last)[0] if isinstance(last, str) else last)
    return current, shown


def _tag(model: type[BaseModel]) -> str | None:
    """The tag of a variant of a discriminated union (its ``cloud`` or ``kind``)."""
    for name in ("cloud", "kind"):
        if name in model.model_fields:
            values = get_args(model.model_fields[name].annotation)
            return str(values[0]) if len(values) == 1 else None
    return None


def _unknown_key(owner: type[BaseModel] | None, key: str) -> str:
    valid = [info.alias or name for name, info in owner.model_fields.items()] if owner else []
    near = [to_camel(key)] if to_camel(key) in valid else difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    if not near:  # ClusterName, maxmodellen: a case slip
        near = [v for v in valid if v.lower() == key.lower()]
    hint = f"did you mean '{near[0]}'? " if near else ""
    return f"unknown key; {hint}allowed keys: {', '.join(valid)}"


def _what_went_wrong(error: Mapping[str, Any], key: str) -> str:
    kind, value = error["type"], error["input"]
    ctx = error.get("ctx") or {}
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern", ""))
        return f"must be {PATTERN_WORDS.get(pattern, f'text matching the pattern {pattern}')}"
    if kind == "string_type" and isinstance(value, int | float) and not isinstance(value, bool):
        # kubernetesVersion: 1.30 is the number 1.3 in YAML before this program sees it.
        return f"must be text; YAML reads an unquoted {value} as a number (1.30 even becomes 1.3): put it in quotes"
    if kind in _TYPED and isinstance(value, str) and _looks_like(value, kind):
        if kind != "float_type":  # a quoted true or 8 in the file: `config set --path` writes those typed
            return f"must be {_KINDS[kind]}, not the text {value!r}: remove the quotes"
        path = key.partition(":")[2]
        return (
            f"must be a number, not the text {value!r}: `pulumi config set --path` stores decimals as text "
            f"unless given a type; write it with `pulumi config set --path --type float '{path}' {value}` "
            "(or unquoted in the stack file)"
        )
    if kind == "literal_error":
        return f"must be {ctx.get('expected')}"
    if kind == "is_instance_of" and ctx.get("class") == "IPv4Network":
        return f"must be an IPv4 network in CIDR notation such as 10.0.0.0/16{_network_problem(value)}"
    if kind in _KINDS:
        return f"must be {_KINDS[kind]}, not {_kind_of(value)}"
    return str(error["msg"]).removeprefix("Value error, ")


def _network_problem(value: Any) -> str:
    if not isinstance(value, str):
        return f", not {_kind_of(value)}"
    try:
        IPv4Network(value)
    except ValueError as err:
        return f" ({err})"
    return ""


def _looks_like(text: str, kind: str) -> bool:
    if kind == "bool_type":
        return text in ("true", "false")
    try:
        (int if kind == "int_type" else float)(text)
    except ValueError:
        return False
    return True


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "a map"
    return "null" if value is None else type(value).__name__


_CLOUDS = (
    "'gcp' (GKE, components/config/gcp.py), 'aws' (EKS, components/config/aws.py) or "
    "'existing' (a cluster you already have, components/config/existing.py)"
)


def _describe(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind in ("union_tag_not_found", "union_tag_invalid") and ctx.get("discriminator", "'cloud'") != "'cloud'":
        # Another section's discriminator (kubeconfig, monitoring, identity: `kind`).
        owner, path = _model_at(error["loc"])
        field = str(ctx["discriminator"]).strip("'")
        key = _full_key([*path, field])
        if kind == "union_tag_not_found":
            return f"{key}: is required"
        return f"{key} = {_show(ctx.get('tag'))}: allowed: {ctx.get('expected_tags')}"
    if kind in ("union_tag_not_found", "union_tag_invalid"):
        # The platform section's `cloud` picks which keys are valid: say so in words.
        owner, path = _model_at(error["loc"])
        key = _full_key([*path, "cloud"])
        if kind == "union_tag_not_found":
            return f"{key}: is required, it decides which platform keys apply: {_CLOUDS}"
        given = error["input"]
        tag = given.get("cloud") if isinstance(given, Mapping) else (error.get("ctx") or {}).get("tag")
        return f"{key} = {_show(tag)}: not a supported cloud; allowed: {_CLOUDS}"
    owner, path = _model_at(error["loc"])
    if kind == "extra_forbidden":  # the user's own key, as they wrote it
        key = _full_key([*path[:-1], error["loc"][-1]])
        return f"{key}: {_unknown_key(owner, str(error['loc'][-1]))}"
    key = _full_key(path)
    if kind == "missing":
        return f"{key}: is required"
    return f"{key} = {_show(error['input'])}: {_what_went_wrong(error, key)}"


def parse(raw: Mapping[str, Any]) -> StackConfig:
    """Validate the stack's structured config (keys without the namespace)."""
    try:
        return StackConfig.model_validate(dict(raw))
    except ValidationError as err:
        raise ConfigError([_describe(e) for e in err.errors()]) from None


def foreign_keys(keys: Sequence[str]) -> list[str]:
    """Keys of the stack under a namespace nobody here reads (another project's): the
    engine would hand them over and nothing would use them, so a pasted stack file of
    another project, or a key set without ``--path`` under the wrong project, would
    silently configure nothing."""
    problems = []
    for key in sorted(keys):
        namespace = key.partition(":")[0]
        if namespace in (NAMESPACE, *PROVIDER_NAMESPACES):
            continue
        problems.append(
            f"{key}: not read by this program (project '{NAMESPACE}'); its keys are "
            f"{NAMESPACE}:<key>, and only the providers' own namespaces "
            f"({', '.join(PROVIDER_NAMESPACES)}) may appear besides"
        )
    return problems


def read_raw_config() -> dict[str, Any]:
    """Every ``llm-serving:*`` key the engine passes to the program, parsed from JSON.

    Listing the keys (rather than asking for known ones) is what lets a misspelled
    top-level key be reported instead of silently ignored.
    """
    raw: dict[str, Any] = {}
    config = pulumi.Config(NAMESPACE)
    for full_key in sorted(_all_keys()):
        namespace, _, key = full_key.partition(":")
        if namespace != NAMESPACE or key in SECRET_KEYS:
            continue
        value = config.get(key)
        try:
            raw[key] = json.loads(value) if value is not None else None
        except json.JSONDecodeError:
            raw[key] = value
    return raw


def _all_keys() -> set[str]:
    return set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())


@dataclass(frozen=True)
class StackSecrets:
    """The stack's secret keys (``SECRET_KEYS``), each a Pulumi secret when set."""

    hf_token: pulumi.Output[str] | None = None
    # Where the Alertmanager sends notifications (llm-serving:monitoring.notifications).
    alert_webhook_url: pulumi.Output[str] | None = None
    # A kubeconfig's content (platform.kubeconfig kind 'secret' on cloud 'existing').
    kubeconfig: pulumi.Output[str] | None = None
    # An S3-compatible model store's keys: account role ("" the writer's, "Reader",
    # "Backup"; S3_KEY_ROLES) -> (access key id, secret access key).
    store_keys: Mapping[str, tuple[pulumi.Output[str], pulumi.Output[str]]] = field(default_factory=dict)


def _secret(config: pulumi.Config, key: str, how: str, problems: list[str]) -> pulumi.Output[str] | None:
    if config.get(key) is None:
        return None
    if not pulumi.runtime.is_config_secret(f"{NAMESPACE}:{key}"):
        problems.append(
            f"{NAMESPACE}:{key}: is stored in plain text; set it with `pulumi config set --secret {key} {how}`"
        )
    return config.require_secret(key)


def load_config() -> tuple[StackConfig, StackSecrets]:
    """The validated stack configuration and its secrets."""
    problems: list[str] = foreign_keys(sorted(_all_keys()))
    config = pulumi.Config(NAMESPACE)
    token = _secret(config, "hfToken", "<token>", problems)
    webhook = _secret(config, "alertWebhookUrl", "<url>", problems)
    kubeconfig = _secret(config, "kubeconfig", "< ~/.kube/config", problems)
    try:
        stack = parse(read_raw_config())
    except ConfigError as err:
        raise ConfigError(problems + err.problems) from None
    wants = stack.monitoring.notifications
    if wants is not None and webhook is None:
        problems.append(
            f"{NAMESPACE}:monitoring.notifications: receiver {wants.receiver!r} needs its URL; set it with "
            f"`pulumi config set --secret alertWebhookUrl <url>`"
        )
    if wants is None and webhook is not None:
        problems.append(
            f"{NAMESPACE}:alertWebhookUrl: is set but nothing sends to it; add "
            f"{NAMESPACE}:monitoring.notifications (receiver slack or webhook) or remove the key"
        )
    store_keys = _store_keys(config, isinstance(stack.platform.model_store, S3CompatibleStore), problems)
    problems += kubeconfig_problems(stack, kubeconfig is not None)
    if problems:
        raise ConfigError(problems)
    return stack, StackSecrets(hf_token=token, alert_webhook_url=webhook, kubeconfig=kubeconfig, store_keys=store_keys)


def _store_keys(
    config: pulumi.Config, wanted: bool, problems: list[str]
) -> dict[str, tuple[pulumi.Output[str], pulumi.Output[str]]]:
    """The S3-compatible store's key pairs: the writer's is required, the others optional;
    a pair is whole or absent; keys without such a store are refused (they would sit in
    the stack unused)."""
    pairs: dict[str, tuple[pulumi.Output[str], pulumi.Output[str]]] = {}
    writer_given = False
    for role in S3_KEY_ROLES:
        names = s3_key_names(role)
        values = [_secret(config, name, f"<{name}>", problems) for name in names]
        given = [name for name, value in zip(names, values, strict=True) if value is not None]
        writer_given = writer_given or (role == "" and bool(given))
        if given and not wanted:
            problems.append(
                f"{NAMESPACE}:{given[0]}: is set but platform.modelStore.kind is not 's3Compatible'; "
                "remove the key or use an S3-compatible store"
            )
        elif len(given) == 1:
            missing = next(name for name in names if name not in given)
            problems.append(
                f"{NAMESPACE}:{missing}: {given[0]} is set without it; set it with "
                f"`pulumi config set --secret {missing} <value>`"
            )
        elif values[0] is not None and values[1] is not None:
            pairs[role] = (values[0], values[1])
    if wanted and not writer_given:
        first, second = s3_key_names("")
        problems.append(
            f"{NAMESPACE}:{first}: an s3Compatible model store needs its keys; set them with "
            f"`pulumi config set --secret {first} <id>` and `pulumi config set --secret {second} <secret>` "
            "(optionally a read-only pair as modelStoreReader... and a create-only pair for chat backups "
            "as modelStoreBackup...)"
        )
    return pairs


def kubeconfig_problems(stack: StackConfig, secret_set: bool) -> list[str]:
    """The existing cluster's kubeconfig is where the stack says: the secret is set, or the
    file exists on this machine (checked here, before any resource; not in the model, which
    stays free of the file system)."""
    platform = stack.platform
    if not isinstance(platform, ExistingPlatformConfig):
        return (
            [f"{NAMESPACE}:kubeconfig: is set but only cloud 'existing' reads it; remove the key"] if secret_set else []
        )
    source = platform.kubeconfig
    if isinstance(source, KubeconfigSecret) and not secret_set:
        return [
            f"{NAMESPACE}:platform.kubeconfig.kind = 'secret': the secret {NAMESPACE}:kubeconfig is not set; "
            "set it with `pulumi config set --secret kubeconfig < ~/.kube/config`, or use kind 'file' or 'ambient'"
        ]
    if not isinstance(source, KubeconfigSecret) and secret_set:
        return [
            f"{NAMESPACE}:kubeconfig: is set but platform.kubeconfig.kind is {source.kind!r}; "
            "remove the secret or use kind 'secret'"
        ]
    if isinstance(source, KubeconfigFile) and not Path(source.path).expanduser().is_file():
        return [
            f"{NAMESPACE}:platform.kubeconfig.path = {source.path!r}: no such file on this machine; "
            "point it at the cluster's kubeconfig, or use kind 'secret' or 'ambient'"
        ]
    return []
