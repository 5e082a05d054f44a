"""Run the Pulumi program offline on Pulumi's mock engine and record what it declares.

Used by ``tools/plan.py`` and the tests. Nothing here is imported by the program: the
program runs unchanged, and only the engine underneath it is a fake (see
docs/reference/pulumi-python.md §1 for how the mock engine behaves).

What the fake engine answers:

* ``register resource``: the inputs echoed back as outputs, plus the few values a real
  provider computes and the program reads (``FAKE_OUTPUTS``), in Pulumi's camelCase
  wire names. Remote components (pulumi-eks ``Cluster``, Helm ``Chart``) are one opaque
  resource each; their outputs are whatever is listed here.
* ``invoke``: the data sources the program calls (``FAKE_INVOKES``).
"""

from __future__ import annotations

import asyncio
import copy
import json
import runpy
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi.runtime.resource
import yaml
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs, Mocks
from pulumi.runtime.proto import resource_pb2, source_pb2

ROOT = Path(__file__).resolve().parents[1]
PROJECT = str(yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["name"])
SECRET_PLACEHOLDER = "offline-secret-value"  # stands in for `secure:` values of the stack file
FAKE_ACCOUNT = "123456789012"
FAKE_PROJECT_NUMBER = "123456789012"

_SECRET_SIG = rpc._special_sig_key  # the wire marker of a secret value
_SECRET_VALUE = rpc._special_secret_sig

Json = Any


# --------------------------------------------------------------------------------------
# What a recorded resource looks like
# --------------------------------------------------------------------------------------


@dataclass
class Recorded:
    """One resource as the program registered it."""

    type: str
    name: str
    urn: str
    parent: str
    custom: bool
    inputs: dict[str, Json]  # secrets unwrapped, integral floats back to ints
    secret_paths: set[str]  # dotted input paths whose values were Pulumi secrets
    depends_on: list[str]  # URNs of explicit and implicit dependencies
    provider: str
    providers: dict[str, str]  # package -> provider reference, as components receive them
    custom_timeouts: dict[str, str]
    retain_on_delete: bool
    protect: bool
    delete_before_replace: bool = False

    ignore_changes: list[str] = field(default_factory=list)
    import_id: str = ""  # the `import` resource option: the id of an existing resource to adopt

    @property
    def kubernetes_object(self) -> Json | None:
        """The manifest of a Kubernetes object resource, or None for anything else."""
        if not (self.custom and self.type.startswith("kubernetes:")) or "kind" not in self.inputs:
            return None
        return {k: v for k, v in self.inputs.items() if not k.startswith("__")}


@dataclass
class StackRun:
    """Everything one run of the program declared."""

    stack: str
    resources: list[Recorded] = field(default_factory=list)
    invokes: list[MockCallArgs] = field(default_factory=list)
    outputs: dict[str, Json] = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)
    error: BaseException | None = None
    # The program's module globals after it ran (e.g. ``platform``), for plain-value checks.
    program_globals: dict[str, Any] = field(default_factory=dict)

    def of_type(self, type_: str) -> list[Recorded]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, name: str | None = None) -> Recorded:
        """The single resource of a type (and name); fails loudly if there are 0 or several."""
        found = [r for r in self.of_type(type_) if name is None or r.name == name]
        if len(found) != 1:
            names = [r.name for r in self.of_type(type_)]
            raise AssertionError(f"expected one {type_} named {name!r}, found {len(found)} among {names}")
        return found[0]

    def by_urn(self, urn: str) -> Recorded | None:
        return next((r for r in self.resources if r.urn == urn), None)

    def children(self, parent: Recorded) -> list[Recorded]:
        return [r for r in self.resources if r.parent == parent.urn]

    def kubernetes_objects(self) -> list[Json]:
        """Every Kubernetes object the program declared, as a manifest."""
        objects = []
        for r in self.resources:
            obj = r.kubernetes_object
            if obj is not None:
                objects.append(obj)
        return objects

    def kubernetes_object(self, kind: str, name: str) -> Json:
        found = [o for o in self.kubernetes_objects() if o["kind"] == kind and o["metadata"].get("name") == name]
        if len(found) != 1:
            names = [o["metadata"].get("name") for o in self.kubernetes_objects() if o["kind"] == kind]
            raise AssertionError(f"expected one {kind} named {name!r}, found {len(found)} among {names}")
        return found[0]


# --------------------------------------------------------------------------------------
# Values the fake engine computes
# --------------------------------------------------------------------------------------

FakeOutputs = Callable[[MockResourceArgs], dict[str, Json]]


def _fake_kubeconfig(name: str) -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": name,
            "clusters": [{"name": name, "cluster": {"server": "https://203.0.113.10"}}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
            "users": [{"name": name, "user": {}}],
        }
    )


FAKE_OUTPUTS: dict[str, FakeOutputs] = {
    "random:index/randomPassword:RandomPassword": lambda a: {"result": f"offline-random-{a.name}"},
    "eks:index:Cluster": lambda a: {
        "kubeconfigJson": _fake_kubeconfig(a.name),
        "kubeconfig": json.loads(_fake_kubeconfig(a.name)),
        "clusterSecurityGroupId": "sg-0cluster0000000000",
        "nodeSecurityGroupId": "sg-0node00000000000000",
        "oidcProviderArn": f"arn:aws:iam::{FAKE_ACCOUNT}:oidc-provider/oidc.eks.example/id/FAKE",
        "oidcIssuer": "oidc.eks.example/id/FAKE",
    },
    "gcp:container/cluster:Cluster": lambda a: {
        "endpoint": "203.0.113.10",
        "masterAuth": {"clusterCaCertificate": "RkFLRS1DQQ=="},
        "selfLink": f"https://container.googleapis.com/v1/projects/fake/locations/fake/clusters/{a.name}",
    },
    "gcp:artifactregistry/repository:Repository": lambda a: {
        "registryUri": f"{a.inputs.get('location', 'region')}-docker.pkg.dev/"
        f"{a.inputs.get('project', 'project')}/{a.inputs.get('repositoryId', a.name)}",
    },
    "gcp:storage/bucket:Bucket": lambda a: {"url": f"gs://{a.inputs.get('name', a.name)}"},
    "gcp:serviceaccount/account:Account": lambda a: {
        "email": f"{a.inputs.get('accountId', a.name)}@{a.inputs.get('project', 'project')}.iam.gserviceaccount.com",
        "member": f"serviceAccount:{a.inputs.get('accountId', a.name)}@{a.inputs.get('project', 'project')}"
        ".iam.gserviceaccount.com",
    },
    "aws:s3/bucket:Bucket": lambda a: {
        "bucket": a.inputs.get("bucket", f"{a.name}-0000"),
        "arn": f"arn:aws:s3:::{a.inputs.get('bucket', f'{a.name}-0000')}",
    },
    "aws:ecr/repository:Repository": lambda a: {
        "repositoryUrl": f"{FAKE_ACCOUNT}.dkr.ecr.region.amazonaws.com/{a.inputs.get('name', a.name)}",
    },
    "aws:ec2/eip:Eip": lambda a: {"allocationId": f"eipalloc-{a.name}"},
    "aws:ec2/launchTemplate:LaunchTemplate": lambda a: {"latestVersion": 1},
    "aws:sqs/queue:Queue": lambda a: {
        "arn": f"arn:aws:sqs:region:{FAKE_ACCOUNT}:{a.inputs.get('name', a.name)}",
        "url": f"https://sqs.region.amazonaws.com/{FAKE_ACCOUNT}/{a.inputs.get('name', a.name)}",
    },
}


def _generic_outputs(args: MockResourceArgs) -> dict[str, Json]:
    """What nearly every provider returns: a name, and an ARN for AWS resources."""
    out: dict[str, Json] = {"name": args.inputs.get("name", args.name)}
    if args.typ.startswith("aws:"):
        service = args.typ.split(":")[1].split("/")[0]
        out["arn"] = f"arn:aws:{service}::{FAKE_ACCOUNT}:{args.typ.rsplit(':', 1)[-1].lower()}/{out['name']}"
    if args.typ.startswith("gcp:"):
        out["selfLink"] = f"https://www.googleapis.com/fake/{args.typ.rsplit(':', 1)[-1].lower()}/{out['name']}"
    return out


# GKE's answer for a version prefix: one patch of that minor, offered in every channel
# (shaped like Regular's 1.35.8-gke.1036000 of 2026-09-17, audit gcp.md finding 1).
FAKE_GKE_PATCH = "8-gke.1036000"


def _fake_engine_versions(args: MockCallArgs) -> dict[str, Json]:
    version = f"{args.args.get('versionPrefix') or '1.35.'}{FAKE_GKE_PATCH}"
    channels = {channel: version for channel in ("RAPID", "REGULAR", "STABLE")}
    return {
        "defaultClusterVersion": version,
        "latestMasterVersion": version,
        "latestNodeVersion": version,
        "releaseChannelDefaultVersion": channels,
        "releaseChannelLatestVersion": channels,
        "releaseChannelUpgradeTargetVersion": channels,
        "validMasterVersions": [version],
        "validNodeVersions": [version],
        "location": args.args.get("location"),
        "project": args.args.get("project"),
        "versionPrefix": args.args.get("versionPrefix"),
        "id": "engine-versions",
    }


def _fake_session_context(arn: str) -> dict[str, Json]:
    """STS's assumed-role session ARN resolves to its IAM role; any other ARN to itself
    (the data source's contract, pulumi-aws iam/get_session_context.py)."""
    partition, account, resource = arn.split(":")[1], arn.split(":")[4], arn.split(":", 5)[5]
    if arn.split(":")[2] == "sts" and resource.startswith("assumed-role/"):
        _, role, session = resource.split("/", 2)
        issuer = f"arn:{partition}:iam::{account}:role/{role}"
        return {"arn": arn, "issuerArn": issuer, "issuerName": role, "sessionName": session}
    return {"arn": arn, "issuerArn": arn, "issuerName": resource.rsplit("/", 1)[-1], "sessionName": ""}


FAKE_INVOKES: dict[str, Callable[[MockCallArgs], dict[str, Json]]] = {
    "gcp:container/getEngineVersions:getEngineVersions": _fake_engine_versions,
    "gcp:organizations/getProject:getProject": lambda a: {
        "number": FAKE_PROJECT_NUMBER,
        "projectId": a.args.get("projectId", "project"),
    },
    "gcp:organizations/getClientConfig:getClientConfig": lambda a: {"project": "project", "accessToken": "fake"},
    "aws:index/getCallerIdentity:getCallerIdentity": lambda a: {
        "accountId": FAKE_ACCOUNT,
        "arn": f"arn:aws:iam::{FAKE_ACCOUNT}:user/offline",
        "userId": "OFFLINE",
    },
    "aws:iam/getSessionContext:getSessionContext": lambda a: _fake_session_context(a.args["arn"]),
    "aws:index/getPartition:getPartition": lambda a: {"partition": "aws", "dnsSuffix": "amazonaws.com"},
    "aws:secretsmanager/getSecret:getSecret": lambda a: {
        "arn": f"arn:aws:secretsmanager:region:{FAKE_ACCOUNT}:secret:{a.args['name']}-AbCdEf",
        "name": a.args["name"],
    },
    "aws:index/getRegion:getRegion": lambda a: {"name": a.args.get("name", "us-west-2"), "region": "us-west-2"},
}


class _FakeEngine(Mocks):
    def __init__(self, invokes: list[MockCallArgs]) -> None:
        self.invokes = invokes

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Json]]:
        state = {**_generic_outputs(args), **args.inputs}
        fake = FAKE_OUTPUTS.get(args.typ)
        if fake is not None:
            state.update(fake(args))
        return (f"{args.name}-id" if args.custom else None), state

    def call(self, args: MockCallArgs) -> tuple[dict[str, Json], list[tuple[str, str]] | None]:
        self.invokes.append(args)
        fake = FAKE_INVOKES.get(args.token)
        # An empty failure list, not None: the SDK's MockMonitor.Invoke iterates it even
        # though Mocks.call is annotated Optional (pulumi 3.272 runtime/mocks.py).
        return (fake(args) if fake else {}), []


class _RecordingMonitor(MockMonitor):
    """The SDK's mock monitor, also keeping what `MockResourceArgs` leaves out:
    parent, dependencies and resource options (pulumi/pulumi#14421)."""

    def __init__(self, mocks: Mocks, record: list[Recorded]) -> None:
        super().__init__(mocks)
        self.record = record

    def GetDeploymentInfo(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        """The mock monitor's features minus resource references.

        With references, a resource passed as an input (``eks.ManagedNodeGroup(cluster=
        eks.Cluster)``) is rehydrated while the mock deserializes the request, on another
        event loop, and the run hangs or fails ("attached to a different loop"). Without
        them the SDK sends the resource's URN (components) or ID (custom resources), which
        is also what a test wants to compare.
        """
        info = super().GetDeploymentInfo(request)  # type: ignore[no-untyped-call]
        features = [f for f in info.supportedFeatures if f != resource_pb2.RESOURCE_MONITOR_FEATURE_RESOURCE_REFERENCES]
        return resource_pb2.DeploymentInfo(supportedFeatures=features)

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type == "pulumi:pulumi:Stack":
            return response
        inputs, secrets = _unwrap(rpc.deserialize_properties(request.object))
        timeouts = request.customTimeouts
        self.record.append(
            Recorded(
                type=request.type,
                name=request.name,
                urn=response.urn,
                parent=request.parent,
                custom=bool(request.custom),
                inputs=inputs,
                secret_paths=secrets,
                depends_on=list(request.dependencies),
                provider=request.provider,
                providers=dict(request.providers),
                custom_timeouts={
                    k: v
                    for k, v in (("create", timeouts.create), ("update", timeouts.update), ("delete", timeouts.delete))
                    if v
                },
                retain_on_delete=bool(request.retainOnDelete),
                protect=bool(request.protect),
                delete_before_replace=bool(request.deleteBeforeReplace),
                ignore_changes=list(request.ignoreChanges),
                import_id=request.importId,
            )
        )
        return response


def _unwrap(value: Json, path: str = "") -> tuple[Json, set[str]]:
    """Strip Pulumi's secret markers (remembering where they were) and turn the floats
    that protobuf makes of every integer back into ints."""
    if isinstance(value, dict):
        if value.get(_SECRET_SIG) == _SECRET_VALUE:
            inner, secrets = _unwrap(value.get("value"), path)
            return inner, secrets | {path}
        out, secrets = {}, set()
        for k, v in value.items():
            out[k], inner = _unwrap(v, f"{path}.{k}" if path else k)
            secrets |= inner
        return out, secrets
    if isinstance(value, list):
        items, secrets = [], set()
        for i, v in enumerate(value):
            item, inner = _unwrap(v, f"{path}[{i}]")
            items.append(item)
            secrets |= inner
        return items, secrets
    if isinstance(value, float) and value.is_integer():
        return int(value), set()
    return value, set()


# --------------------------------------------------------------------------------------
# Loading a stack file and running the program
# --------------------------------------------------------------------------------------


# A stack file is a few KiB; these bounds only stop a hostile or broken file early.
MAX_STACK_FILE_BYTES = 1024 * 1024
# Nodes of the YAML document once every alias is expanded (the JSON the program receives):
# a 3.6 KB "billion laughs" file expands to billions and would exhaust memory.
MAX_EXPANDED_NODES = 100_000
# Where the Pulumi CLI keeps a stack's settings other than `config:` (Pulumi stack file
# reference: https://www.pulumi.com/docs/iac/concepts/projects/stack-settings-file/).
STACK_FILE_KEYS = ("config", "secretsprovider", "encryptedkey", "encryptionsalt", "environment")


class StackFileError(Exception):
    """A stack file that cannot be read as a Pulumi stack file: one line, naming the file."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")


class _StackFileLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses what the Pulumi CLI refuses: duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str):
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is not text (quote it)", key_node.start_mark
                )
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first on line {seen[key].line + 1})", key_node.start_mark
                )
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """How many nodes ``node`` becomes once aliases are copied out (aliases share nodes)."""
    if id(node) in memo:
        return memo[id(node)]
    memo[id(node)] = MAX_EXPANDED_NODES + 1  # a node inside itself expands forever
    size = 1
    if isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(child, memo) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size += sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    memo[id(node)] = size = min(size, MAX_EXPANDED_NODES + 1)
    return size


def _describe_yaml_error(err: yaml.YAMLError) -> str:
    if isinstance(err, yaml.reader.ReaderError):
        hint = " (NUL bytes: UTF-16 without a byte-order mark? save it as UTF-8)" if err.character == 0 else ""
        return f"not valid YAML: character #x{err.character:04x} at offset {err.position} is not allowed{hint}"
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    problem = getattr(err, "problem", None) or str(err)
    if "\t" in str(problem) or "'\\t'" in str(problem):
        problem += "; YAML indents with spaces, not tabs"
    if "python/" in str(problem):
        problem = "a Python-specific tag (!!python/...) is not allowed in a stack file"
    return f"not valid YAML{where}: {problem}"


def read_stack_file(path: Path) -> dict[str, Json]:
    """The ``config:`` map of a stack file, or a StackFileError saying in one line why not."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise StackFileError(path, f"cannot read it: {err.strerror}") from None
    if len(data) > MAX_STACK_FILE_BYTES:
        raise StackFileError(path, f"{len(data):,} bytes; a stack file is at most {MAX_STACK_FILE_BYTES:,}")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise StackFileError(path, "is UTF-16 text; save it as UTF-8")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise StackFileError(
            path, f"is not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start}); save it as UTF-8"
        ) from None
    loader: _StackFileLoader | None = None
    try:
        loader = _StackFileLoader(text)
        root = loader.get_single_node()
        if root is not None and _expanded_size(root, {}) > MAX_EXPANDED_NODES:
            raise StackFileError(
                path, f"its aliases expand to more than {MAX_EXPANDED_NODES:,} values; write the values out"
            )
        document = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as err:
        raise StackFileError(path, _describe_yaml_error(err)) from None
    except RecursionError:  # PyYAML composes nested collections recursively
        raise StackFileError(path, "nested too deeply to be a stack file") from None
    finally:
        if loader is not None:
            loader.dispose()
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise StackFileError(path, f"is a YAML {_kind(document)}; a stack file is a map with a `config:` key")
    unknown = sorted(set(document) - set(STACK_FILE_KEYS))
    if unknown:
        raise StackFileError(
            path, f"unknown top-level key(s) {', '.join(unknown)}; allowed: {', '.join(STACK_FILE_KEYS)}"
        )
    config = document.get("config")
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise StackFileError(
            path, f"`config:` is a YAML {_kind(config)}; it must be a map of <namespace>:<key> entries"
        )
    for key in config:
        namespace, colon, name = key.partition(":")
        if not (colon and namespace and name):
            # What the Pulumi CLI answers too (pkg/resource/config/key.go ParseKey).
            raise StackFileError(
                path, f"config key {key!r} is not of the form <namespace>:<name> (e.g. {PROJECT}:{key or 'serving'})"
            )
    return dict(config)


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    return f"{type(value).__name__} value"


def load_stack_config(stack: str, path: Path | None = None) -> dict[str, Json]:
    """The ``config:`` map of ``Pulumi.<stack>.yaml`` (or of the file at ``path``),
    structured values as Python data."""
    path = path or ROOT / f"Pulumi.{stack}.yaml"
    if not path.exists():
        stacks = sorted(p.name.split(".")[1] for p in ROOT.glob("Pulumi.*.yaml"))
        raise FileNotFoundError(f"no stack file {path.name}; stacks: {', '.join(stacks)}")
    return read_stack_file(path)


def merge(base: Mapping[str, Json], changes: Mapping[str, Json]) -> dict[str, Json]:
    """``base`` with ``changes`` merged in recursively; a value of None removes the key."""
    out = copy.deepcopy(dict(base))
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _engine_config(config: Mapping[str, Json]) -> tuple[dict[str, str], list[str]]:
    """Config as the Pulumi CLI hands it to a program: strings, JSON for structured values,
    ``secure:`` values (undecryptable without the CLI) replaced by a placeholder."""
    values, secret_keys = {}, []
    for key, value in config.items():
        if isinstance(value, Mapping) and set(value) == {"secure"}:
            values[key] = SECRET_PLACEHOLDER
            secret_keys.append(key)
        elif isinstance(value, str):
            values[key] = value
        else:
            values[key] = json.dumps(value, default=str)  # dates and such: as the CLI's text
    return values, secret_keys


def run_stack(
    stack: str,
    changes: Mapping[str, Json] | None = None,
    *,
    config: Mapping[str, Json] | None = None,
) -> StackRun:
    """Run ``__main__.py`` for a stack on the mock engine.

    ``changes`` are merged into the stack file's config (keys with their namespace, e.g.
    ``{"llm-serving:serving": {"maxModelLen": 131072}}``); ``config`` replaces it. Errors
    raised by the program are returned in ``StackRun.error`` together with whatever was
    declared before them, so a test can check that nothing was.
    """
    base = dict(config) if config is not None else load_stack_config(stack)

    def main() -> dict[str, Any]:
        return runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")

    return run_program(main, stack, merge(base, changes or {}))


def run_program(program: Callable[[], dict[str, Any] | None], stack: str, config: Mapping[str, Json]) -> StackRun:
    """Run any Pulumi program (a function declaring resources, optionally returning its
    globals) on the mock engine with ``config`` as the stack's configuration, recording
    what it declares."""
    values, secret_keys = _engine_config(config)
    run = StackRun(stack)

    pulumi.runtime.reset_options()
    engine = _FakeEngine(run.invokes)
    pulumi.runtime.set_mocks(
        engine, project=PROJECT, stack=stack, preview=False, monitor=_RecordingMonitor(engine, run.resources)
    )
    pulumi.runtime.set_all_config(values, secret_keys=secret_keys)

    @pulumi.runtime.test  # type: ignore[untyped-decorator,unused-ignore]
    async def _program() -> None:
        run.program_globals = program() or {}
        root = pulumi.runtime.get_root_resource()
        exports = dict(getattr(root, "outputs", {}) or {})
        for key, value in exports.items():
            output = pulumi.Output.from_input(value)
            resolved, secret = await asyncio.gather(output.future(), output.is_secret())
            run.outputs[key], _ = _unwrap(resolved)
            if secret:
                run.secret_outputs.add(key)

    # The SDK walks and encodes the Python stack on every registration so the engine can show
    # where a resource was declared (pulumi/runtime/resource.py ``_get_stack_trace``): a
    # fifth of a run here, and nothing this engine records. Skipped while the program runs.
    get_stack_trace = getattr(pulumi.runtime.resource, "_get_stack_trace", None)
    if get_stack_trace is not None:
        pulumi.runtime.resource._get_stack_trace = source_pb2.StackTrace
    try:
        _program()
    except Exception as err:  # handed to the caller with what was declared
        run.error = err
    finally:
        pulumi.runtime.reset_options()
        if get_stack_trace is not None:
            pulumi.runtime.resource._get_stack_trace = get_stack_trace
    return run


def all_stacks() -> list[str]:
    return sorted(p.name.split(".")[1] for p in ROOT.glob("Pulumi.*.yaml") if p.name != "Pulumi.yaml")


def secret_values(run: StackRun) -> Iterable[str]:
    """Values the fake engine knows to be secret: the stack's secrets and generated passwords."""
    yield SECRET_PLACEHOLDER
    for r in run.of_type("random:index/randomPassword:RandomPassword"):
        yield f"offline-random-{r.name}"
