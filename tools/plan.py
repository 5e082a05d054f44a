"""Offline plan: what `pulumi up --stack NAME` would create, without the CLI or credentials.

    venv/bin/python tools/plan.py --stack a4high
    venv/bin/python tools/plan.py --stack-file path/to/Pulumi.mystack.yaml --out build

Runs the program on Pulumi's mock engine with the stack file's config and prints, for a
reviewer: the sizing report, the resource tree (type, name and the settings that
matter), and the stack outputs (secrets masked). Writes every Kubernetes object to
``build/<stack>/`` as YAML (Secret values redacted) and checks each against its schema.
Exits 2 with the problems, each naming its key, when the stack config is invalid.

Values only a real deployment knows (IPs, generated passwords, account numbers) are
placeholders from tools/offline.py.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

import pulumi  # noqa: E402

from components.config import StackConfig  # noqa: E402
from components.cost import estimate  # noqa: E402
from components.sizing import format_report  # noqa: E402
from tools import kubeschema  # noqa: E402
from tools.offline import Recorded, StackFileError, StackRun, load_stack_config, run_stack  # noqa: E402

REDACTED = "<redacted: Pulumi secret>"

# The few inputs worth showing per resource type, as dotted paths into its inputs.
KEY_SETTINGS: dict[str, tuple[str, ...]] = {
    "pulumi:providers:gcp": ("project", "region"),
    "pulumi:providers:aws": ("region",),
    "gcp:compute/network:Network": ("mtu", "networkProfile"),
    "gcp:compute/subnetwork:Subnetwork": ("ipCidrRange", "region"),
    "gcp:compute/firewall:Firewall": ("sourceRanges",),
    "gcp:container/cluster:Cluster": (
        "location",
        "minMasterVersion",
        "datapathProvider",
        "enableMultiNetworking",
        "deletionProtection",
    ),
    "gcp:container/nodePool:NodePool": (
        "nodeConfig.machineType",
        "nodeCount",
        "nodeLocations",
        "nodeConfig.reservationAffinity.consumeReservationType",
        "nodeConfig.spot",
    ),
    "gcp:storage/bucket:Bucket": ("name", "location", "publicAccessPrevention", "uniformBucketLevelAccess"),
    "gcp:artifactregistry/repository:Repository": ("repositoryId", "format", "location", "mode"),
    "gcp:storage/bucketIAMMember:BucketIAMMember": ("role", "member"),
    "aws:ec2/vpc:Vpc": ("cidrBlock",),
    "aws:ec2/subnet:Subnet": ("cidrBlock", "availabilityZone"),
    "eks:index:Cluster": ("name", "version", "authenticationMode"),
    "eks:index:ManagedNodeGroup": ("instanceTypes", "scalingConfig.desiredSize"),
    "aws:s3/bucket:Bucket": ("bucket", "forceDestroy"),
    "aws:ecr/repository:Repository": ("name", "imageTagMutability"),
    "aws:ecr/pullThroughCacheRule:PullThroughCacheRule": ("ecrRepositoryPrefix", "upstreamRegistryUrl"),
    "aws:iam/role:Role": ("name",),
    "aws:eks/podIdentityAssociation:PodIdentityAssociation": ("namespace", "serviceAccount"),
    "kubernetes:helm.sh/v3:Release": ("chart", "version", "namespace"),
    "kubernetes:apps/v1:Deployment": ("spec.replicas", "spec.template.spec.containers.0.image"),
    "kubernetes:apps/v1:DaemonSet": ("spec.template.spec.initContainers.0.image",),
    "kubernetes:core/v1:Service": ("spec.type", "spec.ports.0.port"),
    "kubernetes:batch/v1:Job": ("spec.activeDeadlineSeconds",),
    "kubernetes:core/v1:PersistentVolumeClaim": ("spec.resources.requests.storage",),
    "kubernetes:ray.io/v1:RayService": ("spec.rayClusterConfig.rayVersion",),
    "random:index/randomPassword:RandomPassword": ("length",),
}


def _get(data: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        elif isinstance(data, dict) and part in data:
            data = data[part]
        else:
            return None
    return data


def _settings(r: Recorded) -> str:
    shown = []
    for path in KEY_SETTINGS.get(r.type, ()):
        value = _get(r.inputs, path)
        if value is not None:
            shown.append(
                f"{path.rsplit('.', 1)[-1] if '.' in path else path}={REDACTED if path in r.secret_paths else value}"
            )
    extras = []
    if r.custom_timeouts:
        extras.append("timeouts=" + "/".join(f"{k}:{v}" for k, v in r.custom_timeouts.items()))
    if r.retain_on_delete:
        extras.append("retained on destroy")
    if r.protect:
        extras.append("protected")
    if r.import_id:
        extras.append(f"adopted (imports {r.import_id})")
    return "  ".join(shown + extras)


def resource_tree(run: StackRun) -> list[str]:
    """One line per resource, children indented under their component."""
    known = {r.urn for r in run.resources}
    children: dict[str, list[Recorded]] = {}
    for r in run.resources:
        children.setdefault(r.parent if r.parent in known else "", []).append(r)
    lines: list[str] = []

    def walk(parent: str, depth: int) -> None:
        for r in sorted(children.get(parent, []), key=lambda x: (x.custom, x.type, x.name)):
            settings = _settings(r)
            lines.append(f"{'  ' * depth}{r.type}  {r.name}" + (f"  [{settings}]" if settings else ""))
            walk(r.urn, depth + 1)

    walk("", 1)
    return lines


def _mask(value: Any, secret: bool) -> Any:
    return REDACTED if secret else value


def _sorted(value: Any) -> Any:
    """Mapping keys in sorted order, recursively: the engine hands maps over in no fixed
    order, and a plan should diff cleanly against the previous one."""
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def _ordered(obj: dict[str, Any]) -> dict[str, Any]:
    """apiVersion, kind and metadata first, as people write manifests; then the rest."""
    obj = _sorted(obj)
    head = ("apiVersion", "kind", "metadata")
    return {**{k: obj[k] for k in head if k in obj}, **{k: v for k, v in obj.items() if k not in head}}


def _identity(obj: dict[str, Any]) -> tuple[str, str, str]:
    meta = obj.get("metadata", {})
    return obj["kind"], meta.get("namespace", ""), meta.get("name", "")


def _redact(obj: dict[str, Any]) -> dict[str, Any]:
    if obj.get("kind") == "Secret":
        for field in ("data", "stringData"):
            if field in obj:
                obj = {**obj, field: dict.fromkeys(obj[field], REDACTED)}
    return obj


def write_manifests(run: StackRun, out: Path) -> list[Path]:
    """Every Kubernetes object as ``NN-kind-namespace-name.yaml`` in ``out`` (emptied first),
    numbered in a stable order (kind, namespace, name), so two plans diff cleanly."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    paths = []
    for i, obj in enumerate(sorted(run.kubernetes_objects(), key=_identity), start=1):
        meta = obj.get("metadata", {})
        name = f"{i:02d}-{obj['kind'].lower()}-{meta.get('namespace', 'cluster')}-{meta.get('name', 'unnamed')}.yaml"
        path = out / name
        path.write_text(yaml.safe_dump(_ordered(_redact(obj)), sort_keys=False))
        paths.append(path)
    releases = [
        {
            "name": r.name,
            **{k: r.inputs[k] for k in ("chart", "version", "namespace", "repositoryOpts", "values") if k in r.inputs},
        }
        for r in sorted(run.of_type("kubernetes:helm.sh/v3:Release"), key=lambda r: r.name)
    ]
    if releases:
        (out / "helm-releases.yaml").write_text(yaml.safe_dump(_sorted(releases), sort_keys=False))
    return paths


def plan(stack: str, stack_file: Path, out: Path) -> int:
    print(f"== offline plan for stack '{stack}' ({stack_file.name}) ==")
    try:
        config = load_stack_config(stack, stack_file)
    except StackFileError as err:
        print(err, file=sys.stderr)
        return 2
    run = run_stack(stack, config=config)
    if run.error is not None:
        message = str(run.error)
        if isinstance(run.error, pulumi.RunError) and message.startswith("invalid stack configuration"):
            print(f"{stack_file}: {message}", file=sys.stderr)
            return 2
        print(
            message if isinstance(run.error, pulumi.RunError) else f"the program failed: {message!r}", file=sys.stderr
        )
        return 1
    # The configuration the program itself validated (secrets and all), not a second parse.
    parsed: StackConfig = run.program_globals["config"]

    print("\n-- topology and sizing (per GPU, per engine, per replica) --")
    if parsed.sizing:
        print(f"profile {parsed.topology.profile}: {parsed.topology.layout.describe()}")
    print(format_report(parsed.sizing) if parsed.sizing else "no engine (serving.engine: none)")
    print("\n-- GPU cost per hour (list prices; storage, load balancers and egress not included) --")
    print("\n".join(estimate(parsed).lines()))
    print(f"\n-- resources ({len(run.resources)}) --")
    print("\n".join(resource_tree(run)))
    print("\n-- stack outputs --")
    for key in sorted(run.outputs):
        print(f"  {key}: {_mask(run.outputs[key], key in run.secret_outputs)}")

    paths = write_manifests(run, out)
    problems = [p for obj in run.kubernetes_objects() for p in kubeschema.validate(obj)]
    print(f"\n-- Kubernetes objects: {len(paths)} written to {out} --")
    if problems:
        print("\n".join(f"  INVALID {p}" for p in problems), file=sys.stderr)
        return 1
    print(f"  all {len(paths)} pass strict schema validation (Kubernetes {kubeschema.KUBERNETES_VERSION}, CRDs)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--stack", help="a stack of this project: reads Pulumi.<stack>.yaml")
    which.add_argument("--stack-file", type=Path, help="any stack file (its name must be Pulumi.<stack>.yaml)")
    parser.add_argument("--out", type=Path, default=ROOT / "build", help="where manifests go (default: build/)")
    args = parser.parse_args(argv)
    stack_file = args.stack_file or ROOT / f"Pulumi.{args.stack}.yaml"
    stack = args.stack or stack_file.name.removeprefix("Pulumi.").removesuffix(".yaml")
    if not stack_file.exists():
        print(f"no stack file {stack_file}", file=sys.stderr)
        return 2
    return plan(stack, stack_file, args.out / stack)


if __name__ == "__main__":
    sys.exit(main())
