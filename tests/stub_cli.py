"""Stub cloud and GPU CLIs for tests/scripts_harness.py, acting on local folders.

Run as ``gcloud``, ``aws``, ``hf``, ``vllm``, ``nvidia-smi`` or ``curl`` (the harness puts
one small launcher per name on PATH). Only the subcommands and flags the program's
scripts use are understood; anything else fails loudly, so a script that starts using a
new flag shows up here first. ``$STUB_SANDBOX/state.json`` holds the faults to inject,
the GPUs ``nvidia-smi`` reports and the text ``curl`` returns for ``/metrics``; every
call is appended to ``$STUB_SANDBOX/calls.jsonl``.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

ROOT = Path(os.environ["STUB_SANDBOX"])
STATE: dict[str, Any] = json.loads((ROOT / "state.json").read_text())


def die(message: str, code: int = 1) -> NoReturn:
    print(message, file=sys.stderr)
    sys.exit(code)


def store_path(target: str, endpoint: str | None = None) -> Path:
    """``gs://b/k`` and ``s3://b/k`` are ``buckets/b/k``; an ``s3://b/k`` of an S3-compatible
    endpoint (``--endpoint-url https://host:port``) is ``endpoints/host:port/b/k``; anything
    else is a local path."""
    match = re.match(r"^(gs|s3)://([^/]+)/?(.*)$", target)
    if match and endpoint:
        return ROOT / "endpoints" / re.sub(r"^https?://", "", endpoint).rstrip("/") / match[2] / match[3]
    if match:
        return ROOT / "buckets" / match[2] / match[3]
    return Path(target)


local = store_path


def fault(command: str, argv: list[str]) -> dict[str, Any] | None:
    line = " ".join(argv)
    return next((f for f in STATE["faults"] if f["command"] == command and f["match"] in line), None)


def copy_tree(
    source: Path, dest: Path, skip: Callable[[str], bool], failure: dict[str, Any] | None, verb: str = "Copying"
) -> None:
    if failure and not failure["after_files"]:
        die(f"ERROR: injected failure (exit {failure['exit']})", failure["exit"])
    copied = 0
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        relative = str(path.relative_to(source))
        if skip(relative):
            continue
        target = dest / relative
        if target.exists() and target.read_bytes() == path.read_bytes():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        time.sleep(STATE.get("seconds_per_file", 0))  # a transfer that takes time (Sandbox.slow)
        shutil.copyfile(path, target)
        print(f"{verb} {path} to {target}")
        copied += 1
        if failure and copied >= failure["after_files"]:
            die(f"ERROR: injected failure after {copied} files (exit {failure['exit']})", failure["exit"])


def options(argv: list[str], flags: dict[str, bool]) -> tuple[dict[str, list[str]], list[str]]:
    """Split known options (``flags``: name -> takes a value) from positional arguments."""
    found: dict[str, list[str]] = {}
    positional = []
    words = iter(argv)
    for word in words:
        name, _, inline = word.partition("=")
        if name in flags:
            value = (inline or next(words)) if flags[name] else ""
            found.setdefault(name, []).append(value)
        elif word.startswith("-") and word != "-":  # "-": stdout, a positional
            die(f"stub: unknown option {word}", 2)
        else:
            positional.append(word)
    return found, positional


def gcloud(argv: list[str]) -> None:
    failure = fault("gcloud", argv)
    if argv[:3] == ["storage", "objects", "describe"]:
        if failure:
            die("ERROR: injected failure", failure["exit"])
        if not local(argv[3]).is_file():
            die(f"ERROR: (gcloud.storage.objects.describe) The following URLs matched no objects: {argv[3]}")
        print(f"name: {argv[3]}")
        return
    if argv[:2] == ["storage", "cat"]:
        if failure:
            die("ERROR: injected failure", failure["exit"])
        if not local(argv[2]).is_file():
            die(f"ERROR: (gcloud.storage.cat) The following URLs matched no objects: {argv[2]}")
        sys.stdout.write(local(argv[2]).read_text())
        return
    if argv[:2] == ["storage", "ls"]:
        (pattern,) = argv[2:]
        if failure:
            die("ERROR: injected failure", failure["exit"])
        bucket = pattern.removeprefix("gs://").split("/", 1)[0]
        target = local(pattern)
        found = sorted(p for p in target.parent.glob(target.name) if p.is_file())
        if not found:
            die(f"ERROR: (gcloud.storage.ls) One or more URLs matched no objects: {pattern}")
        for path in found:
            print(f"gs://{bucket}/{path.relative_to(ROOT / 'buckets' / bucket)}")
        return
    if argv[:2] == ["storage", "rsync"]:
        flags = {"--recursive": False, "-r": False, "--exclude": True, "-x": True}
        opts, (source, dest) = options(argv[2:], {**flags, "--delete-unmatched-destination-objects": False})
        patterns = [re.compile(p) for p in [*opts.get("--exclude", []), *opts.get("-x", [])]]
        copy_tree(local(source), local(dest), lambda rel: any(p.search(rel) for p in patterns), failure)
        if "--delete-unmatched-destination-objects" in opts:
            for path in sorted(p for p in local(dest).rglob("*") if p.is_file()):
                if not (local(source) / path.relative_to(local(dest))).is_file():
                    path.unlink()
                    print(f"Removing {path}")
        return
    if argv[:2] == ["storage", "cp"]:
        opts, (source, dest) = options(argv[2:], {"--recursive": False, "-r": False})
        if failure:
            die("ERROR: injected failure", failure["exit"])
        local(dest).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local(source), local(dest))
        print(f"Copying {source} to {dest}")
        return
    die(f"stub gcloud: unsupported {argv}", 2)


def aws(argv: list[str]) -> None:
    failure = fault("aws", argv)
    # A global option, before the command: where an S3-compatible store answers. The real
    # CLI (>= 2.13) also takes it from AWS_ENDPOINT_URL; without either it talks to AWS.
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if argv[:1] == ["--endpoint-url"]:
        endpoint, argv = argv[1], argv[2:]
    if argv[:2] == ["configure", "set"]:
        name, value = argv[2:4]
        config = Path(os.environ["HOME"]) / ".aws" / "config"
        config.parent.mkdir(parents=True, exist_ok=True)
        with config.open("a") as out:
            out.write(f"{name} = {value}\n")
        return
    if endpoint and not (os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY")):
        die('Unable to locate credentials. You can configure credentials by running "aws configure".', 253)

    def local(target: str) -> Path:
        return store_path(target, endpoint)

    if argv[:2] == ["s3", "ls"]:
        if failure:
            die("injected failure", failure["exit"])
        target = local(argv[2])
        if argv[2].endswith("/"):  # a prefix: its objects and folders, one level
            if not target.is_dir():
                sys.exit(1)
            for path in sorted(target.iterdir()):
                print(
                    f"{'':>30} PRE {path.name}/"
                    if path.is_dir()
                    else f"2026-11-29 00:00:00 {path.stat().st_size} {path.name}"
                )
            return
        siblings = target.parent.glob(target.name + "*") if target.parent.exists() else []
        if not any(siblings):
            sys.exit(1)  # the real CLI prints nothing and exits 1 for a missing key
        print(f"2026-11-29 00:00:00 0 {target.name}")
        return
    if argv[:2] == ["s3", "sync"]:
        opts, (source, dest) = options(argv[2:], {"--no-progress": False, "--exclude": True, "--delete": False})
        globs = opts.get("--exclude", [])
        copy_tree(
            local(source), local(dest), lambda rel: any(fnmatch.fnmatch(rel, g) for g in globs), failure, "upload:"
        )
        if "--delete" in opts:  # files the source does not have go (the real CLI: "delete: ...")
            for path in sorted(p for p in local(dest).rglob("*") if p.is_file()):
                if not (local(source) / path.relative_to(local(dest))).is_file():
                    path.unlink()
                    print(f"delete: {path}")
        return
    if argv[:2] == ["s3", "cp"]:
        opts, (source, dest) = options(argv[2:], {"--no-progress": False, "--recursive": False})
        if failure:
            die("upload failed: injected failure", failure["exit"])
        if "--recursive" in opts:
            copy_tree(local(source), local(dest), lambda _: False, None, "upload:")
            return
        if dest == "-":  # an object to stdout
            sys.stdout.write(local(source).read_text())
            return
        local(dest).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local(source), local(dest))
        print(f"upload: {source} to {dest}")
        return
    die(f"stub aws: unsupported {argv}", 2)


def hf(argv: list[str]) -> None:
    if argv[:1] != ["download"]:
        die(f"stub hf: unsupported {argv}", 2)
    opts, positional = options(argv[1:], {"--local-dir": True, "--exclude": True, "--max-workers": True})
    (repo,) = positional
    source = ROOT / "hub" / repo
    if not source.is_dir():
        die(f"Repository Not Found for url: https://huggingface.co/api/models/{repo}")
    dest = Path(opts["--local-dir"][0])
    globs = opts.get("--exclude", [])

    def skip(relative: str) -> bool:
        return any(fnmatch.fnmatch(relative, g) for g in globs)

    copy_tree(source, dest, skip, fault("hf", argv), "Downloading")
    # Like the real CLI, keep per-file metadata in <local-dir>/.cache/huggingface/.
    for path in source.rglob("*"):
        relative = str(path.relative_to(source))
        if path.is_file() and not skip(relative):
            meta = dest / ".cache" / "huggingface" / "download" / f"{relative}.metadata"
            meta.parent.mkdir(parents=True, exist_ok=True)
            meta.write_text("stub-commit\nstub-etag\n0\n")
    print(str(dest))


def vllm(argv: list[str]) -> None:
    if argv[:2] != ["bench", "serve"]:
        die(f"stub vllm: unsupported {argv}", 2)
    values: dict[str, list[str]] = {}
    key = None
    for word in argv[2:]:
        if word.startswith("--"):
            key = word
            values.setdefault(key, [])
        elif key is not None:
            values[key].append(word)
    failure = fault("vllm", argv)
    if failure:
        die("injected failure: the engine went away", failure["exit"])
    concurrency = values.get("--max-concurrency", [None])[0]
    prompts = int(values["--num-prompts"][0])
    result: dict[str, Any] = {
        "date": "20261129-120000",
        "backend": "openai",
        "model_id": values["--model"][0],
        "tokenizer_id": values["--tokenizer"][0],
        "num_prompts": prompts,
        "request_rate": "inf",
        "max_concurrency": int(concurrency) if concurrency else None,
        "duration": 10.0,
        "completed": prompts,
        "failed": 0,
        "total_input_tokens": prompts * int(values["--random-input-len"][0]),
        "total_output_tokens": prompts * int(values["--random-output-len"][0]),
        "request_throughput": prompts / 10.0,
        "output_throughput": prompts * int(values["--random-output-len"][0]) / 10.0,
        "total_token_throughput": prompts * 2000 / 10.0,
        **{f"{stat}_{m}_ms": 10.0 for m in ("ttft", "tpot", "itl", "e2el") for stat in ("mean", "median", "std")},
        **{f"p99_{m}_ms": 20.0 for m in ("ttft", "tpot", "itl", "e2el")},
    }
    for item in values.get("--metadata", []):
        name, _, value = item.partition("=")
        result[name] = value
    out = Path(values["--result-dir"][0]) / values["--result-filename"][0]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result))
    print(f"Saved result to {out}")


def nvidia_smi(argv: list[str]) -> None:
    if fault("nvidia-smi", argv):
        die("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.", 9)
    query = next((a.split("=", 1)[1] for a in argv if a.startswith("--query-gpu=")), None)
    if query is None or not any(a.startswith("--format=csv") for a in argv):
        die(f"stub nvidia-smi: unsupported {argv}", 2)
    if not STATE["gpus"]:
        die("No devices were found", 6)
    for gpu in STATE["gpus"]:
        print(", ".join(str(gpu.get(name, "[N/A]")) for name in query.split(",")))


def curl(argv: list[str]) -> None:
    failure = fault("curl", argv)
    opts, (url,) = options(argv, {"-f": False, "-s": False, "-S": False, "-fsS": False, "--max-time": True, "-o": True})
    if failure:
        die("curl: (7) Failed to connect: injected failure", failure["exit"])
    if url.endswith("/health"):
        return
    if not url.endswith("/metrics"):
        die(f"stub curl: no fake for {url}", 22)
    count = len([line for line in (ROOT / "calls.jsonl").read_text().splitlines() if '"curl"' in line])
    text = STATE["metrics"].replace("{calls}", str(count))
    if "-o" in opts:
        Path(opts["-o"][0]).write_text(text)
    else:
        sys.stdout.write(text)


def main() -> None:
    command = str(globals().get("STUB_COMMAND") or Path(sys.argv[0]).name)
    argv = sys.argv[1:]
    with (ROOT / "calls.jsonl").open("a") as log:
        log.write(json.dumps({"command": command, "argv": argv, "env": dict(os.environ)}) + "\n")
    handlers = {"gcloud": gcloud, "aws": aws, "hf": hf, "vllm": vllm, "nvidia-smi": nvidia_smi, "curl": curl}
    handlers[command](argv)


main()
