"""Run the shell scripts of rendered pods against stub CLIs, in a temp folder.

The scripts come from the manifests the program renders (pure builders or a mock-engine
run), never re-typed. A ``Sandbox`` stands in for the cluster node and the clouds:

* ``bin/`` holds stub ``gcloud``, ``aws``, ``hf``, ``vllm``, ``nvidia-smi`` and ``curl``
  commands (one small Python program, ``stub_cli.py``, named by how it is called). They
  act on local folders: ``buckets/<name>/`` is ``gs://<name>/`` or ``s3://<name>/``,
  ``endpoints/<host:port>/<name>/`` the bucket of an S3-compatible endpoint (``aws
  --endpoint-url``), ``hub/<org>/<repo>/`` a Hugging Face repository, ``claims/<claim>/``
  a PersistentVolumeClaim's volume (kept from one pod to the next). Every call is logged with its
  environment; any call can be made to fail on demand (``Sandbox.fail``).
* ``run_pod`` runs a pod spec as the kubelet would, in order: init containers one after
  another (the pod fails at the first that fails), then the containers. Each container's
  script runs with ``/bin/sh`` or ``/bin/bash`` as its ``command`` says, with the
  container's environment (Secret values replaced by placeholders), and with every
  ``mountPath`` rewritten to a folder of the sandbox: ``hostPath`` volumes keep their
  contents from one pod to the next (as on a node), ``emptyDir`` volumes start empty in
  each pod.

Typical use::

    box = Sandbox(tmp_path)
    box.hub_repo("org/model", {"model.safetensors": "weights"})
    box.fail("gcloud", "rsync")                 # every matching call exits 1
    pod = box.run_pod(job["spec"]["template"]["spec"])
    assert not pod.ok and pod.failed == "upload"
    assert box.bucket_files("bucket", "models/org/model") == {...}
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STUBS = ("gcloud", "aws", "hf", "vllm", "nvidia-smi", "curl")
STUB_PROGRAM = Path(__file__).with_name("stub_cli.py")
SCRIPT_TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class Call:
    """One invocation of a stub: its arguments and the environment it saw."""

    command: str
    argv: list[str]
    env: dict[str, str]

    @property
    def line(self) -> str:
        return " ".join([self.command, *self.argv])


@dataclass(frozen=True)
class ContainerRun:
    name: str
    exit_code: int
    output: str  # stdout and stderr, interleaved


@dataclass
class PodRun:
    """What happened to one pod: the containers that ran, in order."""

    containers: list[ContainerRun] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.exit_code == 0 for c in self.containers)

    @property
    def ran(self) -> list[str]:
        return [c.name for c in self.containers]

    @property
    def failed(self) -> str | None:
        """The first container that exited non-zero."""
        return next((c.name for c in self.containers if c.exit_code != 0), None)

    def log(self, container: str) -> str:
        return next(c.output for c in self.containers if c.name == container)

    @property
    def logs(self) -> str:
        return "\n".join(f"--- {c.name} (exit {c.exit_code})\n{c.output}" for c in self.containers)


class Sandbox:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.bin = root / "bin"
        self.buckets = root / "buckets"
        self.hub = root / "hub"
        self.host = root / "host"  # hostPath volumes live here, under their node path
        for folder in (self.bin, self.buckets, self.hub, self.host, root / "home"):
            folder.mkdir(parents=True, exist_ok=True)
        for name in STUBS:
            stub = self.bin / name
            launcher = f"import runpy\nrunpy.run_path({str(STUB_PROGRAM)!r}, {{'STUB_COMMAND': {name!r}}})\n"
            stub.write_text(f"#!{sys.executable} -SE\n{launcher}")  # stdlib only: start fast
            stub.chmod(0o755)
        self._state: dict[str, Any] = {"faults": [], "gpus": [], "metrics": ""}
        self._pods = 0
        self._write_state()

    # --- what the stubs act on ------------------------------------------------------------

    def hub_repo(self, repo: str, files: Mapping[str, str]) -> None:
        """A Hugging Face repository, as ``hf download`` will find it."""
        for name, content in files.items():
            path = self.hub / repo / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)

    def put_object(self, bucket: str, key: str, content: str = "") -> None:
        path = self.buckets / bucket / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)

    def bucket_files(self, bucket: str, prefix: str = "") -> set[str]:
        """Object keys under ``prefix``, relative to it."""
        base = self.buckets / bucket / prefix
        return {str(p.relative_to(base)) for p in base.rglob("*") if p.is_file()} if base.exists() else set()

    def endpoint_files(self, endpoint: str, bucket: str, prefix: str = "") -> set[str]:
        """Object keys under ``prefix`` in a bucket of an S3-compatible ``endpoint`` (host:port)."""
        base = self.root / "endpoints" / endpoint / bucket / prefix
        return {str(p.relative_to(base)) for p in base.rglob("*") if p.is_file()} if base.exists() else set()

    def claim_files(self, claim: str, prefix: str = "") -> set[str]:
        """Files under ``prefix`` on a PersistentVolumeClaim's volume."""
        base = self.root / "claims" / claim / prefix
        return {str(p.relative_to(base)) for p in base.rglob("*") if p.is_file()} if base.exists() else set()

    def host_path(self, node_path: str) -> Path:
        """Where a ``hostPath`` volume's node folder is in the sandbox."""
        return self.host / node_path.lstrip("/")

    def gpus(self, *rows: Mapping[str, str]) -> None:
        """What ``nvidia-smi --query-gpu`` reports: one mapping of field to value per GPU."""
        self._state["gpus"] = [dict(r) for r in rows]
        self._write_state()

    def metrics(self, text: str) -> None:
        """The Prometheus text ``curl`` returns for a ``/metrics`` URL."""
        self._state["metrics"] = text
        self._write_state()

    # --- failing on demand ----------------------------------------------------------------

    def fail(self, command: str, match: str = "", exit_code: int = 1, after_files: int = 0) -> None:
        """Every call of ``command`` whose arguments contain ``match`` fails with
        ``exit_code``; a copy fails after ``after_files`` files (a partial upload)."""
        self._state["faults"].append(
            {"command": command, "match": match, "exit": exit_code, "after_files": after_files}
        )
        self._write_state()

    def slow(self, seconds_per_file: float) -> None:
        """Every stub copy (downloads, uploads) takes this long per file."""
        self._state["seconds_per_file"] = seconds_per_file
        self._write_state()

    def clear_faults(self) -> None:
        self._state["faults"] = []
        self._write_state()

    # --- what happened ----------------------------------------------------------------------

    def calls(self, command: str | None = None) -> list[Call]:
        log = self.root / "calls.jsonl"
        if not log.exists():
            return []
        calls = [Call(**json.loads(line)) for line in log.read_text().splitlines()]
        return [c for c in calls if command is None or c.command == command]

    # --- running pods -----------------------------------------------------------------------

    def run_pod(self, pod_spec: Mapping[str, Any], extra_mounts: Mapping[str, Path] | None = None) -> PodRun:
        """Init containers in order, stopping at the first failure, then the containers.
        ``extra_mounts`` maps container paths to sandbox folders for what the node injects
        (GKE's device plugin mounts the host driver at /usr/local/nvidia)."""
        self._pods += 1
        pod_dir = self.root / "pods" / str(self._pods)
        volumes = {v["name"]: self._volume_dir(v, pod_dir) for v in pod_spec.get("volumes", [])}
        run = PodRun()
        for container in pod_spec.get("initContainers", []):
            run.containers.append(self.run_container(container, volumes, extra_mounts))
            if run.containers[-1].exit_code != 0:
                return run
        for container in pod_spec["containers"]:
            run.containers.append(self.run_container(container, volumes, extra_mounts))
        return run

    def run_container(
        self,
        container: Mapping[str, Any],
        volumes: Mapping[str, Path],
        extra_mounts: Mapping[str, Path] | None = None,
    ) -> ContainerRun:
        command = container["command"]
        assert command[0] in ("/bin/sh", "/bin/bash") and command[1] == "-c", f"not a script: {command[:2]}"
        paths = {m["mountPath"]: volumes[m["name"]] / m.get("subPath", "") for m in container.get("volumeMounts", [])}
        for path in paths.values():
            path.mkdir(parents=True, exist_ok=True)  # the kubelet creates a missing subPath
        paths.update(extra_mounts or {})
        script = _rewrite(command[2], paths)
        environment = {
            "PATH": f"{self.bin}:/usr/bin:/bin",
            "HOME": str(self.root / "home"),
            "STUB_SANDBOX": str(self.root),
        }
        for item in container.get("env", []):
            value = item.get("value")
            if value is None:  # valueFrom: a Secret the cluster would fill in
                ref = item["valueFrom"]["secretKeyRef"]
                value = f"secret:{ref['name']}/{ref['key']}"
            environment[item["name"]] = _rewrite(value, paths)
        log = self.root / "pods" / f"{self._pods}-{container['name']}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("w") as out:
            process = subprocess.Popen(
                [command[0], "-c", script],
                env=environment,
                cwd=self.root,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                code = process.wait(timeout=SCRIPT_TIMEOUT_SECONDS)
            finally:
                # A container ends with its main process: whatever it left running dies too.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
        return ContainerRun(container["name"], code, log.read_text())

    # --- internals --------------------------------------------------------------------------

    def _volume_dir(self, volume: Mapping[str, Any], pod_dir: Path) -> Path:
        if "hostPath" in volume:
            path = self.host_path(volume["hostPath"]["path"])
        elif "emptyDir" in volume:
            path = pod_dir / volume["name"]
        elif "persistentVolumeClaim" in volume:
            path = self.root / "claims" / volume["persistentVolumeClaim"]["claimName"]
        else:
            raise AssertionError(f"the harness cannot stand in for volume {volume}")
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _write_state(self) -> None:
        (self.root / "state.json").write_text(json.dumps(self._state))


def _rewrite(text: str, paths: Mapping[str, Path]) -> str:
    """Replace each container path (a whole path prefix, longest first) by its sandbox folder,
    in one pass: a sandbox folder (itself under /tmp) is never rewritten again by a /tmp mount."""
    if not paths:
        return text
    alternatives = "|".join(re.escape(p) for p in sorted(paths, key=len, reverse=True))
    pattern = rf"(?<![\w./-])({alternatives})(?![\w.-])"
    return re.sub(pattern, lambda m: str(paths[m.group(1)]), text)


def script_lines(container: Mapping[str, Any], prefix: str) -> list[str]:
    """Lines of a container's script that start with ``prefix`` (e.g. ``vllm bench serve``)."""
    return [line for line in container["command"][2].splitlines() if line.startswith(prefix)]


def env_of(container: Mapping[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def containers(pod_spec: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
    return [*pod_spec.get("initContainers", []), *pod_spec["containers"]]


__all__ = ["Call", "ContainerRun", "PodRun", "Sandbox", "containers", "env_of", "script_lines"]
