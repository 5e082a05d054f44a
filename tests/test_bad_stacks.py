"""A corpus of malformed stack files, each run through tools/plan.py main() in-process.

Every one must exit non-zero with no traceback, name the file, and name the stack key
where there is one (issue #11 items 1-6). The files are generated from the two stack
files of this repository, one change each, so the corpus follows them as they evolve.
A corpus of unusual but valid files follows at the end.
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.config import ConfigError, parse
from tools import plan
from tools.offline import MAX_STACK_FILE_BYTES, ROOT, merge, read_stack_file

STACKS = {name: (ROOT / f"Pulumi.{name}.yaml").read_text() for name in ("a4high", "eks")}


def _config(stack: str) -> dict[str, Any]:
    return dict(yaml.safe_load(STACKS[stack])["config"])


def _with(stack: str, changes: dict[str, Any]) -> bytes:
    """The stack's file with ``changes`` merged into its config (keys without namespace)."""
    config = merge(_config(stack), {f"llm-serving:{k}" if ":" not in k else k: v for k, v in changes.items()})
    return yaml.safe_dump({"config": config}, sort_keys=False).encode()


def _replace(stack: str, old: str, new: str) -> bytes:
    text = STACKS[stack]
    assert old in text, old
    return text.replace(old, new, 1).encode()


@dataclass(frozen=True)
class Bad:
    id: str
    content: Callable[[], bytes]
    says: str  # a fragment of the one message
    key: str | None = None  # the full stack key it names, where there is one


def bad(id: str, content: Callable[[], bytes], says: str, key: str | None = None) -> Any:
    return pytest.param(Bad(id, content, says, key), id=id)


CLEAR_BUCKET = {"keepOnDestroy": None, "backupRetentionDays": None}
S3_STORE = {"kind": "s3Compatible", "endpoint": "https://minio.example.com", "bucket": "models", **CLEAR_BUCKET}


def change(stack: str, changes: dict[str, Any], key: str, says: str, id: str) -> Any:
    return bad(f"{stack}-{id}", lambda: _with(stack, changes), says, key)


ALIAS_BOMB = (
    "config:\n  llm-serving:serving:\n"
    '    a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    + "".join(
        f"    {chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},"
        f"*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]\n"
        for i in range(8)
    )
).encode()

# --- the file itself: encoding, YAML, shape (#11.2) ----------------------------------
FILE_LEVEL = [
    bad("document-is-a-list", lambda: b"- config\n- x\n", "is a YAML list"),
    bad("document-is-a-string", lambda: b"just some text\n", "is a YAML string"),
    bad("document-is-a-number", lambda: b"42\n", "is a YAML int value"),
    bad("config-is-a-list", lambda: b"config:\n  - llm-serving:serving\n", "`config:` is a YAML list"),
    bad("config-is-a-string", lambda: b"config: llm-serving\n", "`config:` is a YAML string"),
    bad("config-is-a-number", lambda: b"config: 3\n", "`config:` is a YAML int value"),
    bad("latin-1", lambda: STACKS["a4high"].replace("# Stack", "# Café stack", 1).encode("latin-1"), "not UTF-8"),
    bad("latin-1-value", lambda: STACKS["eks"].replace("admin@", "jos\xe9@").encode("latin-1"), "not UTF-8"),
    bad("utf-16-le", lambda: codecs.BOM_UTF16_LE + STACKS["eks"].encode("utf-16-le"), "UTF-16"),
    bad("utf-16-be", lambda: codecs.BOM_UTF16_BE + STACKS["eks"].encode("utf-16-be"), "UTF-16"),
    bad("utf-16-no-bom", lambda: STACKS["eks"].encode("utf-16-le"), "not valid YAML"),
    bad("binary", lambda: bytes(range(256)), "not UTF-8"),
    bad(
        "unclosed-flow-list",
        lambda: _replace("eks", "[us-west-2a, us-west-2b]", "[us-west-2a, us-west-2b"),
        "not valid YAML (line",
    ),
    bad("unclosed-quote", lambda: _replace("eks", '"1.36"', '"1.36'), "not valid YAML"),
    bad(
        "bad-indentation",
        lambda: _replace("a4high", "    region: us-central1", "   region: us-central1"),
        "not valid YAML",
    ),
    bad("tab-indentation", lambda: _replace("a4high", "    region: us-central1", "\tregion: us-central1"), "not tabs"),
    bad("tab-in-nested-map", lambda: _replace("eks", "      - name: g5", "\t- name: g5"), "not tabs"),
    bad(
        "python-object-tag",
        lambda: b'config:\n  llm-serving:serving: !!python/object/apply:os.system ["true"]\n',
        "!!python/",
    ),
    bad("python-name-tag", lambda: b"config:\n  llm-serving:serving: !!python/name:os.system\n", "!!python/"),
    bad("python-module-tag", lambda: b"config:\n  llm-serving:serving: !!python/module:os\n", "!!python/"),
    bad("unknown-tag", lambda: b"config:\n  llm-serving:serving: !vault secret/x\n", "not valid YAML"),
    bad("alias-bomb", lambda: ALIAS_BOMB, "aliases expand to more than"),
    bad("undefined-alias", lambda: b"config:\n  llm-serving:serving: *nothing\n", "not valid YAML"),
    bad("two-documents", lambda: STACKS["eks"].encode() + b"---\nconfig: {}\n", "not valid YAML"),
    bad(
        "duplicate-config-key",
        lambda: STACKS["eks"].encode() + b"  llm-serving:benchmark:\n    enabled: true\n",
        "duplicate key 'llm-serving:benchmark'",
    ),
    bad(
        "duplicate-nested-key",
        lambda: _replace("eks", "    replicas: 1\n", "    replicas: 1\n    replicas: 2\n"),
        "duplicate key 'replicas'",
    ),
    bad("duplicate-top-level-key", lambda: STACKS["eks"].encode() + b"config: {}\n", "duplicate key 'config'"),
    bad("number-as-key", lambda: b"config:\n  123: x\n", "key 123 is not text"),
    bad("key-without-namespace", lambda: b"config:\n  hfToken: hf_x\n", "not of the form <namespace>:<name>"),
    bad("key-with-empty-namespace", lambda: b"config:\n  :serving: {}\n", "not of the form <namespace>:<name>"),
    bad("config-outside-config", lambda: b"llm-serving:serving:\n  engine: vllm\n", "unknown top-level key"),
    bad(
        "nested-too-deeply",
        lambda: b"config:\n  llm-serving:serving: " + b"[" * 5000 + b"]" * 5000 + b"\n",
        "nested too deeply",
    ),
    bad("too-large", lambda: STACKS["eks"].encode() + b"#" * MAX_STACK_FILE_BYTES, "a stack file is at most"),
]


# --- values (#11.1, #11.3-#11.6): each names its key ----------------------------------
def _values() -> list[Any]:
    a, e = "a4high", "eks"
    p, s = "llm-serving:platform", "llm-serving:serving"
    lb_open = {"type": "LoadBalancer", "allowedSourceRanges": ["0.0.0.0/0"]}
    return [
        # silent coercion (#11.4)
        change(
            a,
            {"platform": {"modelStore": {"keepOnDestroy": "off"}}},
            f"{p}.modelStore.keepOnDestroy",
            "true or false",
            "keep-on-destroy-off",
        ),
        change(
            a,
            {"platform": {"modelStore": {"keepOnDestroy": 0}}},
            f"{p}.modelStore.keepOnDestroy",
            "true or false",
            "keep-on-destroy-0",
        ),
        change(
            e,
            {"platform": {"modelStore": {"keepOnDestroy": "false"}}},
            f"{p}.modelStore.keepOnDestroy",
            "remove the quotes",
            "keep-on-destroy-text-false",
        ),
        change(
            a,
            {"platform": {"deletionProtection": "yes"}},
            f"{p}.deletionProtection",
            "true or false",
            "deletion-protection-yes",
        ),
        change(
            e,
            {"platform": {"deletionProtection": 1}},
            f"{p}.deletionProtection",
            "true or false",
            "deletion-protection-1",
        ),
        change(
            a,
            {"serving": {"tensorParallelSize": "8"}},
            f"{s}.tensorParallelSize",
            "remove the quotes",
            "tensor-parallel-text",
        ),
        change(
            a,
            {"serving": {"tensorParallelSize": 8.0}},
            f"{s}.tensorParallelSize",
            "whole number",
            "tensor-parallel-float",
        ),
        change(
            a,
            {"serving": {"gpuMemoryUtilization": "0.95"}},
            f"{s}.gpuMemoryUtilization",
            "pulumi config set --path --type float 'serving.gpuMemoryUtilization' 0.95",
            "gpu-util-text",
        ),
        change(e, {"serving": {"replicas": True}}, f"{s}.replicas", "whole number", "replicas-bool"),
        change(
            a,
            {"platform": {"gpuPool": {"nodeCount": True}}},
            f"{p}.gpuPool.nodeCount",
            "whole number",
            "node-count-bool",
        ),
        change(
            a,
            {"platform": {"gpuPool": {"compactPlacement": "false"}}},
            f"{p}.gpuPool.compactPlacement",
            "true or false",
            "compact-text",
        ),
        change(e, {"serving": {"waitForReady": "no"}}, f"{s}.waitForReady", "true or false", "wait-no"),
        change(
            e, {"serving": {"openWebui": {"enabled": 1}}}, f"{s}.openWebui.enabled", "true or false", "webui-enabled-1"
        ),
        change(e, {"modelCache": {"enabled": "yes"}}, "llm-serving:modelCache.enabled", "true or false", "cache-yes"),
        change(
            e,
            {"benchmark": {"numPrompts": "100"}},
            "llm-serving:benchmark.numPrompts",
            "remove the quotes",
            "prompts-text",
        ),
        change(e, {"serving": {"maxModelLen": 8192.5}}, f"{s}.maxModelLen", "whole number", "max-len-float"),
        change(
            e,
            {"platform": {"modelStore": {"adopt": "true", "name": "my-models"}}},
            f"{p}.modelStore.adopt",
            "remove the quotes",
            "adopt-text",
        ),
        change(
            e,
            {
                "serving": {
                    "exposure": {
                        "openWebui": {"type": "LoadBalancer", "internal": "true", "allowedSourceRanges": ["10.0.0.0/8"]}
                    }
                }
            },
            f"{s}.exposure.openWebui.internal",
            "true or false",
            "internal-text",
        ),
        change(
            e,
            {"platform": {"gpuNodePools": [{"name": "g5", "gpuLimit": "4"}]}},
            f"{p}.gpuNodePools[0].gpuLimit",
            "remove the quotes",
            "gpu-limit-text",
        ),
        change(e, {"platform": {"vpcCidr": 10}}, f"{p}.vpcCidr", "CIDR notation", "vpc-cidr-number"),
        # wrongly accepted (#11.3)
        change(
            e,
            {"serving": {"extraArgs": ["--enforce-eager"]}},
            f"{s}.extraArgs",
            "rayservice engine takes no vllm serve flags",
            "extra-args-ray",
        ),
        change(
            a,
            {"serving": {"engine": "none", "extraArgs": ["--enforce-eager"]}, "modelCache": {"enabled": False}},
            f"{s}.extraArgs",
            "no engine",
            "extra-args-no-engine",
        ),
        change(
            a, {"serving": {"extraArgs": ["--x"] * 257}}, f"{s}.extraArgs", "at most 256 arguments", "extra-args-257"
        ),
        change(
            a,
            {"serving": {"extraArgs": ["--chat-template=" + "x" * 40_000]}},
            f"{s}.extraArgs",
            "bytes in all",
            "extra-arg-40k",
        ),
        change(a, {"serving": {"image": ""}}, f"{s}.image", "not empty and without spaces", "image-empty"),
        change(e, {"serving": {"image": "my image:1"}}, f"{s}.image", "without spaces", "image-space"),
        change(
            a, {"serving": {"openWebui": {"image": ""}}}, f"{s}.openWebui.image", "image reference", "webui-image-empty"
        ),
        change(
            a,
            {"serving": {"exposure": {"engine": lb_open}}},
            f"{s}.exposure.engine.allowedSourceRanges[0]",
            "allowInternet: true",
            "engine-lb-internet",
        ),
        change(
            e,
            {"serving": {"exposure": {"openWebui": lb_open}}},
            f"{s}.exposure.openWebui.allowedSourceRanges[0]",
            "the internet",
            "webui-lb-internet",
        ),
        change(
            e,
            {
                "serving": {
                    "exposure": {
                        "openWebui": {"type": "LoadBalancer", "allowedSourceRanges": ["0.0.0.0/1", "128.0.0.0/1"]}
                    }
                }
            },
            f"{s}.exposure.openWebui.allowedSourceRanges[1]",
            "the internet",
            "webui-lb-two-halves",
        ),
        change(
            a,
            {"platform": {"masterAuthorizedNetworks": [{"cidr": "0.0.0.0/0"}]}},
            f"{p}.masterAuthorizedNetworks[0].cidr",
            "apiAllowInternet: true",
            "master-networks-internet",
        ),
        change(
            e,
            {"platform": {"endpointPublicAccessCidrs": ["0.0.0.0/0"]}},
            f"{p}.endpointPublicAccessCidrs[0]",
            "apiAllowInternet: true",
            "eks-endpoint-internet",
        ),
        change(
            a,
            {"platform": {"region": "mars-central1", "zone": "mars-central1-a"}},
            f"{p}.region",
            "allowUnlistedRegion",
            "gcp-made-up-region",
        ),
        change(a, {"platform": {"zone": "us-central1-z"}}, f"{p}.zone", "us-central1-f", "gcp-made-up-zone"),
        change(
            a,
            {"platform": {"region": "us-east1", "zone": "us-east1-a"}},
            f"{p}.zone",
            "us-east1-b",
            "gcp-zone-a-of-us-east1",
        ),
        change(
            e,
            {"platform": {"region": "us-west-9", "availabilityZones": ["us-west-9a", "us-west-9b"]}},
            f"{p}.region",
            "did you mean 'us-west-2'",
            "aws-made-up-region",
        ),
        change(
            e,
            {"platform": {"availabilityZones": ["us-west-2a", "us-west-2z"]}},
            f"{p}.availabilityZones[1]",
            "us-west-2d",
            "aws-made-up-zone",
        ),
        change(a, {"serving": {"replicas": 2}}, f"{s}.replicas", "nodeCount = 1", "gke-replicas-over-nodes"),
        change(
            a,
            {"platform": {"gpuPool": {"nodeCount": 0}}},
            f"{s}.replicas",
            "nodeCount = 0",
            "gke-node-count-0-reservation",
        ),
        change(
            a,
            {"platform": {"gpuPool": {"nodeCount": 0, "provisioning": "on-demand", "reservation": None}}},
            f"{s}.replicas",
            "flex-start",
            "gke-node-count-0-on-demand",
        ),
        change(
            a,
            {"platform": {"gpuPool": {"nodeCount": 0, "provisioning": "flex-start", "reservation": None}}},
            f"{p}.gpuPool.nodeCount",
            "at least 1",
            "gke-flex-start-0",
        ),
        change(
            a,
            {"other-project:serving": {"engine": "vllm"}},
            "other-project:serving",
            "not read by this program",
            "other-project-key",
        ),
        change(
            e,
            {"llm-serving-old:platform": {"cloud": "aws"}},
            "llm-serving-old:platform",
            "providers' own namespaces",
            "similar-project-key",
        ),
        # rules that used to run after resources existed (#11.5)
        change(
            e,
            {"serving": {"engine": "vllm"}, "modelCache": {"enabled": True, "loader": "gcsfuse"}},
            "llm-serving:modelCache.loader",
            "not available on cloud 'aws'",
            "gcsfuse-on-aws",
        ),
        change(
            e,
            {"modelCache": {"enabled": True, "loader": "runai-streamer"}},
            "llm-serving:modelCache.loader",
            "Ray's bucket mirror",
            "loader-with-ray",
        ),
        # the node copy needs vLLM (#14 item 2) and a serving pool with node-local scratch: every
        # GPU type in the catalog has local SSD or instance-store NVMe, so that rule's case is
        # tests/test_weights.py test_node_copy_needs_the_serving_pool_to_have_scratch
        change(
            a,
            {"serving": {"engine": "rayservice"}, "modelCache": {"enabled": True, "loader": "node-cache"}},
            "llm-serving:modelCache.loader",
            "Ray's bucket mirror",
            "node-cache-with-ray",
        ),
        change(
            a,
            {"modelCache": {"enabled": True, "loader": "nodecache"}},
            "llm-serving:modelCache.loader",
            "node-cache",
            "loader-misspelled",
        ),
        # messages (#11.6)
        change(
            e,
            {"serving": {"max_model_len": 4096}},
            f"{s}.max_model_len",
            "did you mean 'maxModelLen'",
            "snake-case-key",
        ),
        change(
            e, {"platform": {"ClusterName": "x"}}, f"{p}.ClusterName", "did you mean 'clusterName'", "capitalised-key"
        ),
        bad(
            "eks-unquoted-kubernetes-version",
            lambda: _replace("eks", '"1.36"', "1.30"),
            "put it in quotes",
            f"{p}.kubernetesVersion",
        ),
        bad(
            "a4high-unquoted-version-prefix",
            lambda: _replace("a4high", 'versionPrefix: "1.35."', "versionPrefix: 1.35"),
            "in quotes followed by a dot",
            f"{p}.versionPrefix",
        ),
        change(
            a,
            {"platform": {"cloud": None}},
            f"{p}.cloud",
            "is required, it decides which platform keys",
            "cloud-missing",
        ),
        change(a, {"platform": {"cloud": "azure"}}, f"{p}.cloud", "not a supported cloud", "cloud-azure"),
        change(e, {"platform": {"cloud": "GCP"}}, f"{p}.cloud", "'gcp' (GKE", "cloud-uppercase"),
        change(
            a, {"platform": {"project": "My_Project"}}, f"{p}.project", "6 to 30 lowercase letters", "project-pattern"
        ),
        change(a, {"platform": {"clusterName": "LLM"}}, f"{p}.clusterName", "lowercase letters", "gke-name-pattern"),
        change(
            e, {"platform": {"clusterName": "1eks"}}, f"{p}.clusterName", "starting with a letter", "eks-name-pattern"
        ),
        change(
            a,
            {"platform": {"gibVersion": "1.1.1"}},
            f"{p}.gibVersion",
            "a release tag such as v1.1.1",
            "gib-version-pattern",
        ),
        change(
            a, {"platform": {"registry": {"name": "X"}}}, f"{p}.registry.name", "lowercase letters", "registry-pattern"
        ),
        change(
            e,
            {"platform": {"adminPrincipals": ["admin"]}},
            f"{p}.adminPrincipals[0]",
            "the ARN of an IAM role",
            "arn-pattern",
        ),
        change(
            e,
            {"platform": {"gpuNodePools": [{"name": "g5", "consolidateAfter": "30 minutes"}]}},
            f"{p}.gpuNodePools[0].consolidateAfter",
            "a duration in whole seconds",
            "duration-pattern",
        ),
        change(
            e,
            {"platform": {"gpuNodePools": [{"name": "G5"}]}},
            f"{p}.gpuNodePools[0].name",
            "lowercase letters",
            "pool-name-pattern",
        ),
        change(
            e,
            {"serving": {"openWebui": {"adminEmail": "admin"}}},
            f"{s}.openWebui.adminEmail",
            "an e-mail address",
            "email-pattern",
        ),
        change(
            e,
            {"serving": {"servedModelName": "-x"}},
            f"{s}.servedModelName",
            "letters, digits and",
            "served-name-pattern",
        ),
        change(e, {"serving": {"namespace": "LLM"}}, f"{s}.namespace", "lowercase letters", "namespace-pattern"),
        change(
            e,
            {"platform": {"capacityReservationIds": ["odcr-1"]}},
            f"{p}.capacityReservationIds[0]",
            "capacity reservation id",
            "reservation-id-pattern",
        ),
        change(e, {"platform": {"region": "US-WEST-2"}}, f"{p}.region", "an AWS region such as", "aws-region-pattern"),
        change(a, {"platform": {"zone": "us-central1b"}}, f"{p}.zone", "a Google Cloud zone", "gcp-zone-pattern"),
        change(
            e,
            {"platform": {"gpuNodePools": [{"name": "g5", "capacityTypes": ["reserved"]}]}},
            f"{p}.capacityReservationIds",
            "use capacity type 'reserved'",
            "reserved-without-ids",
        ),
        change(e, {"serving": {"MAXMODELLEN": 4096}}, f"{s}.MAXMODELLEN", "did you mean 'maxModelLen'", "shouting-key"),
        # shapes
        change(a, {"platform": [1, 2]}, p, "must be a map of keys, not a list", "platform-list"),
        change(e, {"serving": "vllm"}, s, "must be a map of keys", "serving-text"),
        change(e, {"benchmark": 5}, "llm-serving:benchmark", "map of keys", "benchmark-number"),
        change(e, {"platform": {"gpuNodePools": {"name": "g5"}}}, f"{p}.gpuNodePools", "must be a list", "pools-map"),
        change(
            a,
            {"platform": {"masterAuthorizedNetworks": "203.0.113.0/24"}},
            f"{p}.masterAuthorizedNetworks",
            "must be a list",
            "networks-text",
        ),
        change(
            a,
            {"platform": {"masterAuthorizedNetworks": [{"cidr": "203.0.113.1/24"}]}},
            f"{p}.masterAuthorizedNetworks[0].cidr",
            "host bits set",
            "cidr-host-bits",
        ),
        change(e, {"platform": {"vpcCidr": "10.0.0.0/33"}}, f"{p}.vpcCidr", "CIDR notation", "cidr-bad-prefix"),
        change(
            e,
            {"platform": {"endpointPublicAccessCidrs": ["not-a-network"]}},
            f"{p}.endpointPublicAccessCidrs[0]",
            "CIDR notation",
            "cidr-garbage",
        ),
        change(a, {"platform": None}, p, "is required", "platform-missing"),
        change(e, {"serving": {"unknownSetting": 1}}, f"{s}.unknownSetting", "unknown key", "unknown-key"),
        change(e, {"benchmak": {}}, "llm-serving:benchmak", "unknown key; did you mean 'benchmark'", "typo-section"),
        # existing rules, reached through the plan
        change(a, {"serving": {"tensorParallelSize": 3}}, f"{s}.tensorParallelSize", "must divide", "tp-3"),
        change(e, {"serving": {"model": "gpt-5"}}, f"{s}.model", "unknown model", "unknown-model"),
        change(e, {"serving": {"namespace": "kube-system"}}, f"{s}.namespace", "not one of", "reserved-namespace"),
        change(
            a,
            {
                "platform": {"gpuPool": {"nodeCount": 2}},
                "serving": {"engine": "rayservice", "nodesPerReplica": 2, "tensorParallelSize": 16},
            },
            f"{s}.tensorParallelSize",
            "tensor parallelism inside a node",
            "ray-tp-across-nodes",
        ),
        change(
            e, {"serving": {"maxModelLen": 100}}, f"{s}.maxModelLen", "greater than or equal to 256", "max-len-small"
        ),
        change(e, {"serving": {"replicas": 0}}, f"{s}.replicas", "greater than or equal to 1", "replicas-0"),
        change(
            e,
            {"serving": {"gpuMemoryUtilization": 0.5}},
            f"{s}.gpuMemoryUtilization",
            "greater than 0.5",
            "gpu-util-low",
        ),
        change(
            e,
            {"serving": {"engine": "vllm", "extraArgs": ["--enable-reasoning"]}},
            f"{s}.extraArgs",
            "removed in vLLM 0.10",
            "removed-flag",
        ),
        change(
            e,
            {"serving": {"engine": "vllm", "extraArgs": ["--disable-log-requests=true"]}},
            f"{s}.extraArgs",
            "removed in vLLM 0.17",
            "removed-flag-with-value",
        ),
        change(
            e,
            {"platform": {"kubernetesVersion": "1.20"}},
            f"{p}.kubernetesVersion",
            "supports Kubernetes",
            "old-kubernetes",
        ),
        change(
            a, {"platform": {"network": {"mtu": 9000}}}, f"{p}.network.mtu", "less than or equal to 8896", "mtu-high"
        ),
        change(
            a,
            {"platform": {"systemPool": {"nodesPerZone": 0}}},
            f"{p}.systemPool.nodesPerZone",
            "greater than or equal to 1",
            "nodes-per-zone-0",
        ),
        change(
            a,
            {
                "platform": {"modelStore": {"kind": "none", "keepOnDestroy": None, "backupRetentionDays": None}},
                "serving": {"openWebui": {"backup": {"enabled": False}}},
            },
            "llm-serving:modelCache.enabled",
            "needs a model store",
            "cache-without-bucket",
        ),
        change(
            a,
            {
                "platform": {
                    "modelStore": {
                        "kind": "volume",
                        "storageClass": "nfs",
                        "sizeGib": 100,
                        "accessMode": "ReadWriteOnce",
                        **CLEAR_BUCKET,
                    }
                }
            },
            f"{p}.modelStore.accessMode",
            "only ReadWriteMany",
            "volume-store-not-rwx",
        ),
        change(
            e,
            {"platform": {"modelStore": {**S3_STORE, "endpoint": "http://minio.example.com"}}},
            f"{p}.modelStore.endpoint",
            "plain http",
            "s3-compatible-plain-http",
        ),
        change(
            e,
            {"platform": {"modelStore": S3_STORE}},
            "llm-serving:modelStoreAccessKeyId",
            "needs its keys",
            "s3-compatible-without-keys",
        ),
        change(
            a,
            {
                "platform": {"modelStore": {"kind": "none", "keepOnDestroy": None, "backupRetentionDays": None}},
                "serving": {"openWebui": {"backup": {"enabled": False}}, "compileCache": {"store": "bucket"}},
                "modelCache": {"enabled": False},
            },
            f"{s}.compileCache.store",
            "needs a bucket",
            "compile-cache-bucket-without-bucket",
        ),
        change(
            a,
            {"serving": {"compileCache": {"store": "gcs"}}},
            f"{s}.compileCache.store",
            "'auto', 'bucket' or 'node'",
            "compile-cache-store-unknown",
        ),
        change(
            a,
            {"serving": {"compileCache": {"enabled": "yes"}}},
            f"{s}.compileCache.enabled",
            "must be true or false",
            "compile-cache-enabled-string",
        ),
        change(
            a,
            {"serving": {"compileCache": {"keyedBy": ["image"]}}},
            f"{s}.compileCache.keyedBy",
            "allowed keys: enabled, store",
            "compile-cache-unknown-key",
        ),
        change(
            e,
            {"serving": {"exposure": {"engine": {"type": "LoadBalancer", "allowedSourceRanges": ["10.0.0.0/8"]}}}},
            f"{s}.exposure.engine.type",
            "Ray Serve has no API key",
            "ray-lb",
        ),
        change(
            e,
            {"serving": {"exposure": {"openWebui": {"internal": True}}}},
            f"{s}.exposure.openWebui.allowedSourceRanges",
            "need type LoadBalancer",
            "clusterip-internal",
        ),
        change(e, {"serving": {"replicas": 5}}, f"{s}.replicas", "gpuLimit of 4", "eks-replicas-over-limit"),
        change(
            e,
            {"platform": {"availabilityZones": ["us-west-2a", "us-west-2a"]}},
            f"{p}.availabilityZones",
            "distinct",
            "duplicate-zones",
        ),
        change(
            e,
            {"serving": {"engine": "none"}, "benchmark": {"enabled": True}},
            "llm-serving:benchmark.enabled",
            "needs an engine",
            "benchmark-without-engine",
        ),
        change(a, {"llm-serving:hfToken": "hf_plaintext"}, "llm-serving:hfToken", "plain text", "token-plain"),
        change(
            e,
            {"platform": {"systemNodeGroup": {"instanceTypes": ["m6i.xlarge"]}}},
            f"{p}.systemNodeGroup.instanceTypes",
            "with one node kept spare",
            "system-nodes-too-small",
        ),
    ]


CASES = FILE_LEVEL + _values()


# The exact words of every refusal: messages are what users read, so a change to one is
# reviewed in the diff of this file. After a deliberate change: UPDATE_MESSAGES=1 pytest -k update.
MESSAGES = Path(__file__).with_name("bad_stacks.messages")


def _reviewed() -> dict[str, str]:
    entries = MESSAGES.read_text().split("## ")[1:]
    return {entry.split("\n", 1)[0]: entry.split("\n", 1)[1].rstrip() for entry in entries}


REVIEWED = _reviewed()


def _body(output: str, path: Path) -> str:
    """The plan's output without its banner line, the temporary path made stable."""
    return output.split("\n", 1)[1].replace(str(path), "Pulumi.bad.yaml").rstrip()


def _plan(tmp_path: Path, content: bytes, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, Path]:
    path = tmp_path / "Pulumi.bad.yaml"
    path.write_bytes(content)
    code = plan.main(["--stack-file", str(path), "--out", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    return code, out + err, path


def test_the_corpus_is_large_and_covers_every_category() -> None:
    assert len(CASES) >= 100
    ids = [case.values[0].id for case in CASES]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("case", CASES)
def test_bad_stack_file_is_refused_in_one_message(
    case: Bad, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, output, path = _plan(tmp_path, case.content(), capsys)
    assert code == 2, output
    assert "Traceback" not in output
    assert str(path) in output
    assert case.says in output, output
    if case.key is not None:
        assert f"{case.key} " in output or f"{case.key}:" in output, output
    assert not (tmp_path / "out" / "bad").exists()
    assert _body(output, path) == REVIEWED.get(case.id), "a message changed: see tests/bad_stacks.messages"


def test_file_level_problems_are_one_line(tmp_path: Path) -> None:
    for case in FILE_LEVEL:
        path = tmp_path / "Pulumi.bad.yaml"
        path.write_bytes(case.values[0].content())
        with pytest.raises(Exception) as caught:
            read_stack_file(path)
        assert "\n" not in str(caught.value), str(caught.value)


# --- unusual but valid ----------------------------------------------------------------
VALID = [
    pytest.param("eks", {"llm-serving:hfToken": {"secure": "AAABAHRva2Vu"}}, id="eks-secret-token"),
    pytest.param("a4high", {"gcp:project": "other", "pulumi:tags": {"team": "ml"}}, id="provider-keys"),
    pytest.param("eks", {"aws:region": "us-west-2", "kubernetes:context": "x", "eks:x": 1}, id="aws-provider-keys"),
    pytest.param("a4high", {"serving": {"maxModelLen": 256}}, id="shortest-context"),
    pytest.param(
        "eks",
        {
            "platform": {
                "region": "ap-south-7",
                "allowUnlistedRegion": True,
                "availabilityZones": ["ap-south-7a", "ap-south-7b"],
            }
        },
        id="unlisted-region",
    ),
    pytest.param(
        "a4high",
        {"platform": {"region": "europe-west19", "zone": "europe-west19-q", "allowUnlistedRegion": True}},
        id="gcp-unlisted-region",
    ),
    pytest.param(
        "eks",
        {"platform": {"endpointPublicAccessCidrs": ["0.0.0.0/0"], "apiAllowInternet": True}},
        id="eks-public-on-purpose",
    ),
    pytest.param(
        "a4high",
        {
            "serving": {
                "exposure": {
                    "openWebui": {"type": "LoadBalancer", "allowInternet": True, "allowedSourceRanges": ["0.0.0.0/0"]}
                }
            }
        },
        id="webui-public-on-purpose",
    ),
    pytest.param(
        "eks", {"serving": {"engine": "vllm", "extraArgs": ["--enforce-eager", "--seed=1"]}}, id="vllm-extra-args"
    ),
    pytest.param(
        "a4high", {"platform": {"gpuPool": {"nodeCount": 2}}, "serving": {"replicas": 2}}, id="two-replicas-two-nodes"
    ),
    pytest.param(
        "a4high",
        {
            "platform": {"gpuPool": {"provisioning": "flex-start", "reservation": None, "nodeCount": 3}},
            "serving": {"replicas": 3},
        },
        id="flex-start-three",
    ),
    pytest.param(
        "a4high",
        {"serving": {"engine": "none"}, "modelCache": {"enabled": False}, "platform": {"gpuPool": {"nodeCount": 0}}},
        id="no-engine-no-nodes",
    ),
    pytest.param("eks", {"serving": {"gpuMemoryUtilization": 1 - 0.05}}, id="float-util"),
    pytest.param("eks", {"serving": {"gpuMemoryUtilization": 0.9, "maxModelLen": 4096}}, id="int-like-values"),
    pytest.param(
        "a4high",
        {
            "platform": {
                "masterAuthorizedNetworks": [{"cidr": "198.51.100.7/32"}, {"cidr": "10.0.0.0/8", "name": "vpn"}]
            }
        },
        id="two-networks",
    ),
    pytest.param(
        "a4high",
        {
            "platform": {
                "region": "us-east1",
                "zone": "us-east1-d",
                "gpuPool": {"provisioning": "spot", "reservation": None},
            }
        },
        id="gcp-other-zone",
    ),
    pytest.param(
        "eks",
        {"platform": {"region": "us-east-1", "availabilityZones": ["us-east-1a", "us-east-1f"]}},
        id="aws-other-region",
    ),
]


def _valid_config(stack: str, changes: dict[str, Any]) -> dict[str, Any]:
    return merge(_config(stack), {f"llm-serving:{k}" if ":" not in k else k: v for k, v in changes.items()})


@pytest.mark.parametrize(("stack", "changes"), VALID)
def test_unusual_but_valid_config_parses(stack: str, changes: dict[str, Any]) -> None:
    config = _valid_config(stack, changes)
    raw = {
        k.split(":", 1)[1]: v for k, v in config.items() if k.startswith("llm-serving:") and k != "llm-serving:hfToken"
    }
    try:
        parse(raw)
    except ConfigError as err:
        pytest.fail(str(err))


def test_the_documented_secret_and_provider_keys_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Through the whole plan (2-4 s, so only one): the README's `pulumi config set --secret
    hfToken` and providers' own keys. The plan used to re-parse the config and die on the
    secret with a traceback (issue #11.1)."""
    changes = {"llm-serving:hfToken": {"secure": "AAABAHRva2Vu"}, "aws:region": "us-west-2", "pulumi:tags": {"a": "b"}}
    path = tmp_path / "Pulumi.eks.yaml"
    path.write_text(yaml.safe_dump({"config": _valid_config("eks", changes)}))
    code = plan.main(["--stack-file", str(path), "--out", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "pass strict schema validation" in out


def test_200k_extra_args_are_refused_by_count_and_size() -> None:
    """The audit's 2.2 MB command line: the stack file cap stops it in a file; set through
    the CLI (no file), the config rule does, naming both limits."""
    raw = {k.split(":", 1)[1]: v for k, v in _config("a4high").items()}
    raw["serving"] = {**raw["serving"], "extraArgs": ["--x"] * 200_000}
    with pytest.raises(ConfigError) as caught:
        parse(raw)
    (message,) = caught.value.problems
    assert "llm-serving:serving.extraArgs = " in message
    assert "200000 arguments of 800,000 bytes; at most 256 arguments and 32,768 bytes" in message


@pytest.mark.skipif(not os.environ.get("UPDATE_MESSAGES"), reason="UPDATE_MESSAGES=1 rewrites the reviewed messages")
def test_update_the_reviewed_messages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    entries = []
    for param in CASES:
        case = param.values[0]
        _, output, path = _plan(tmp_path, case.content(), capsys)
        entries.append(f"## {case.id}\n{_body(output, path)}\n")
    MESSAGES.write_text("\n".join(entries))
    assert _reviewed().keys() == {param.values[0].id for param in CASES}
