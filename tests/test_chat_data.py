"""Open WebUI's chats survive: a retaining volume, scheduled backups to the bucket, and a
backup script that really produces a consistent copy.

The resource tests run the real stack files on the mock engine; the script tests run the
snapshot step with this machine's Python and SQLite against a real database that another
connection is writing to, and the upload step with ``sh`` and stub ``gcloud``/``aws``
commands that copy into a temporary folder.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from components.platform import BACKUP_SERVICE_ACCOUNT, ModelStore
from components.workloads import backup
from conftest import assert_valid
from tools.offline import Recorded, StackRun

RunWith = Callable[[str, dict[str, Any]], StackRun]
PVC = "kubernetes:core/v1:PersistentVolumeClaim"
STORAGE_CLASS = "kubernetes:storage.k8s.io/v1:StorageClass"
CRONJOB = "kubernetes:batch/v1:CronJob"


def claim(run: StackRun) -> Recorded:
    (pvc,) = [r for r in run.of_type(PVC) if r.name == "open-webui-data"]
    return pvc


# --- the volume ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stack", "provisioner", "parameters"),
    [
        ("a4high", "pd.csi.storage.gke.io", {"type": "pd-balanced"}),
        ("eks", "ebs.csi.aws.com", {"type": "gp3", "encrypted": "true"}),
    ],
)
def test_chat_volume_is_retained_through_destroy_and_replacement(
    stack: str, provisioner: str, parameters: dict[str, str], request: pytest.FixtureRequest
) -> None:
    run: StackRun = request.getfixturevalue(stack)
    classes = [r for r in run.of_type(STORAGE_CLASS) if r.name == "retained-storage-class"]
    assert len(classes) == 1
    storage_class = classes[0].kubernetes_object
    assert storage_class is not None
    # Same provisioner and disk as the platform's ordinary class, but the disk outlives
    # its claim: a destroy, a namespace change or a cluster replacement leaves it.
    assert storage_class["reclaimPolicy"] == "Retain"
    assert (storage_class["provisioner"], storage_class["parameters"]) == (provisioner, parameters)
    assert storage_class["volumeBindingMode"] == "WaitForFirstConsumer"
    pvc = claim(run)
    manifest = pvc.kubernetes_object
    assert manifest is not None
    assert manifest["spec"]["storageClassName"] == storage_class["metadata"]["name"]
    assert classes[0].urn in pvc.depends_on
    # Pulumi itself never deletes the claim (before: deleted by destroy, by any replacement).
    assert pvc.retain_on_delete is True
    assert "volumeName" not in manifest["spec"]
    assert_valid([storage_class, manifest])


def test_a_kept_volume_is_bound_again_by_name(run_with: RunWith) -> None:
    run = run_with("a4high", {"llm-serving:serving": {"openWebui": {"volumeName": "pvc-0a1b2c3d"}}})
    manifest = claim(run).kubernetes_object
    assert manifest is not None and manifest["spec"]["volumeName"] == "pvc-0a1b2c3d"


# --- the backup CronJob -------------------------------------------------------------------------


@pytest.mark.parametrize(("stack", "scheme"), [("a4high", "gs"), ("eks", "s3")])
def test_backup_cronjob_runs_beside_open_webui_as_its_own_account(
    stack: str, scheme: str, request: pytest.FixtureRequest
) -> None:
    run: StackRun = request.getfixturevalue(stack)
    (recorded,) = run.of_type(CRONJOB)
    cronjob = recorded.kubernetes_object
    assert cronjob is not None
    assert_valid([cronjob])
    spec = cronjob["spec"]
    assert (spec["schedule"], spec["timeZone"], spec["concurrencyPolicy"]) == ("17 3 * * *", "Etc/UTC", "Forbid")
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == BACKUP_SERVICE_ACCOUNT
    # The ReadWriteOnce volume is attached to Open WebUI's node: the backup pod goes there.
    (term,) = pod["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term == {
        "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "open-webui"}},
        "topologyKey": "kubernetes.io/hostname",
    }
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["data"] == {"name": "data", "persistentVolumeClaim": {"claimName": "open-webui-data"}}
    (snapshot,) = pod["initContainers"]
    assert snapshot["command"][:2] == ["python3", "-c"] and "backup(" in snapshot["command"][2]
    assert snapshot["image"].startswith("ghcr.io/open-webui/open-webui:")
    assert {"name": "data", "mountPath": "/app/backend/data"} in snapshot["volumeMounts"]
    (upload,) = pod["containers"]
    bucket_url = run.outputs["bucket"]
    env = {e["name"]: e.get("value") for e in upload["env"]}
    assert env["BACKUP_URL"] == f"{bucket_url}/backups/open-webui/"
    assert run.outputs["open_webui_backups"] == f"{bucket_url}/backups/open-webui"
    assert bucket_url.startswith(f"{scheme}://")
    assert claim(run).urn in recorded.depends_on


def test_backups_can_be_switched_off(run_with: RunWith) -> None:
    run = run_with("eks", {"llm-serving:serving": {"openWebui": {"backup": {"enabled": False}}}})
    assert run.error is None, run.error
    assert not run.of_type(CRONJOB) and "open_webui_backups" not in run.outputs


def test_backups_without_a_bucket_are_refused(run_with: RunWith) -> None:
    run = run_with(
        "eks",
        {"llm-serving:platform": {"modelStore": {"kind": "none", "keepOnDestroy": None, "backupRetentionDays": None}}},
    )
    assert run.error is not None and not run.resources
    assert "  - llm-serving:serving.openWebui.backup.enabled = true: chat backups go to the model bucket" in str(
        run.error
    )


# --- least privilege: the backup account may only add objects under backups/ -------------------


def test_gcs_backup_binding_is_create_only_under_the_prefix(a4high: StackRun) -> None:
    (binding,) = [
        r
        for r in a4high.of_type("gcp:storage/bucketIAMMember:BucketIAMMember")
        if r.inputs["member"].endswith("/sa/chat-backup")
    ]
    assert binding.inputs["role"] == "roles/storage.objectCreator"
    bucket = a4high.outputs["bucket"].removeprefix("gs://")
    assert binding.inputs["condition"]["expression"] == (
        f'resource.name.startsWith("projects/_/buckets/{bucket}/objects/backups/")'
    )


def test_s3_backup_role_is_create_only_under_the_prefix(eks: StackRun) -> None:
    (policy,) = [r for r in eks.of_type("aws:iam/rolePolicy:RolePolicy") if r.name.endswith("-chat-backup")]
    (statement,) = json.loads(policy.inputs["policy"])["Statement"]
    bucket = eks.outputs["bucket"].removeprefix("s3://")
    assert statement == {
        "Sid": "CreateUnderPrefix",
        "Effect": "Allow",
        "Action": ["s3:PutObject", "s3:AbortMultipartUpload"],
        "Resource": f"arn:aws:s3:::{bucket}/backups/*",
    }


# --- the scripts, run for real --------------------------------------------------------------------

STUB_CLI = """#!/bin/sh
# Stub of `gcloud storage cp SRC DEST` and `aws s3 cp --no-progress SRC DEST`: copies
# SRC to $STUB_BUCKETS/<bucket>/<key> and logs the call.
echo "$(basename "$0") $*" >> "$STUB_BUCKETS/calls.log"
for last; do :; done
dest="$last"
src=""
for arg; do [ "$arg" = "$dest" ] && break; src="$arg"; done
path="$STUB_BUCKETS/${dest#*://}"
mkdir -p "$(dirname "$path")"
cp "$src" "$path"
"""


def make_data_dir(root: Path) -> tuple[Path, sqlite3.Connection]:
    data = root / "data"
    (data / "uploads").mkdir(parents=True)
    (data / "uploads" / "report.pdf").write_bytes(b"%PDF-1.7 a user's upload")
    (data / "vector_db").mkdir()
    (data / "vector_db" / "chroma.sqlite3").write_bytes(b"derived index, not backed up")
    db = sqlite3.connect(data / "webui.db")
    db.execute("CREATE TABLE chat (id INTEGER PRIMARY KEY, title TEXT)")
    db.executemany("INSERT INTO chat (title) VALUES (?)", [(f"chat {i}",) for i in range(500)])
    db.commit()
    return data, db


def run_snapshot(data: Path, out: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATA_DIR": str(data), "SNAPSHOT_DIR": str(out), "SQLITE_TMPDIR": str(out)}
    return subprocess.run(
        [sys.executable, "-c", backup.SNAPSHOT_SCRIPT], check=False, env=env, capture_output=True, text=True, timeout=60
    )


def test_snapshot_is_consistent_while_open_webui_writes(tmp_path: Path) -> None:
    data, db = make_data_dir(tmp_path)
    out = tmp_path / "snapshot"
    out.mkdir()
    # Open WebUI is in the middle of a write transaction: the copy holds only committed data.
    db.execute("BEGIN IMMEDIATE")
    db.execute("INSERT INTO chat (title) VALUES ('not committed yet')")
    done = run_snapshot(data, out)
    db.rollback()
    assert done.returncode == 0, done.stderr
    stamp = (out / "STAMP").read_text()
    folder = out / stamp
    copy = sqlite3.connect(folder / "webui.db")
    assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert copy.execute("SELECT count(*) FROM chat").fetchone() == (500,)
    with tarfile.open(folder / "uploads.tar.gz") as tar:
        assert tar.getnames() == ["uploads", "uploads/report.pdf"]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["created"] == stamp and set(manifest["files"]) == {"webui.db", "uploads.tar.gz"}


def test_snapshot_fails_loudly_without_a_database(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    out = tmp_path / "snapshot"
    out.mkdir()
    done = run_snapshot(tmp_path / "data", out)
    assert done.returncode != 0 and "no database at" in done.stderr


@pytest.mark.parametrize(
    ("store", "cli"),
    [
        (ModelStore(scheme="gs", bucket=None, reader_service_account="r", writer_service_account="w"), "gcloud"),  # type: ignore[arg-type]
        (ModelStore(scheme="s3", bucket=None, reader_service_account="r", writer_service_account="w"), "aws"),  # type: ignore[arg-type]
    ],
)
def test_upload_copies_every_file_manifest_last_and_restores(tmp_path: Path, store: ModelStore, cli: str) -> None:
    data, db = make_data_dir(tmp_path)
    db.close()
    out = tmp_path / "snapshot"
    out.mkdir()
    assert run_snapshot(data, out).returncode == 0
    stubs, buckets = tmp_path / "bin", tmp_path / "buckets"
    stubs.mkdir()
    buckets.mkdir()
    (stubs / cli).write_text(STUB_CLI)
    (stubs / cli).chmod(stat.S_IRWXU)
    env = {
        "PATH": f"{stubs}:/usr/bin:/bin",
        "STUB_BUCKETS": str(buckets),
        "BACKUP_URL": f"{store.scheme}://models/{backup.PREFIX}/",
    }
    done = subprocess.run(
        ["sh", "-c", backup.upload_script(store, str(out))],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    stamp = (out / "STAMP").read_text()
    calls = (buckets / "calls.log").read_text().splitlines()
    assert [c.split()[-1].rsplit("/", 1)[1] for c in calls] == ["webui.db", "uploads.tar.gz", "manifest.json"]
    assert all(c.startswith("gcloud storage cp " if cli == "gcloud" else "aws s3 cp --no-progress ") for c in calls)
    # Restore as the README says: the database file back, the uploads unpacked.
    saved = buckets / "models" / "backups" / "open-webui" / stamp
    restored = tmp_path / "restored"
    restored.mkdir()
    (restored / "webui.db").write_bytes((saved / "webui.db").read_bytes())
    with tarfile.open(saved / "uploads.tar.gz") as tar:
        tar.extractall(restored, filter="data")
    assert sqlite3.connect(restored / "webui.db").execute("SELECT count(*) FROM chat").fetchone() == (500,)
    assert (restored / "uploads" / "report.pdf").read_bytes() == b"%PDF-1.7 a user's upload"


# --- retention: the bucket expires old backups (the backup account cannot delete) ---------------


def test_gcs_bucket_expires_backups_after_the_retention(a4high: StackRun, run_with: RunWith) -> None:
    (rule,) = a4high.one("gcp:storage/bucket:Bucket").inputs["lifecycleRules"]
    assert rule == {"action": {"type": "Delete"}, "condition": {"age": 30, "matchesPrefixes": ["backups/"]}}
    forever = run_with("a4high", {"llm-serving:platform": {"modelStore": {"backupRetentionDays": 0}}})
    assert "lifecycleRules" not in forever.one("gcp:storage/bucket:Bucket").inputs


def test_s3_bucket_expires_backups_after_the_retention(eks: StackRun, run_with: RunWith) -> None:
    lifecycle = eks.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    assert lifecycle.inputs["rules"] == [
        {"id": "expire-backups", "status": "Enabled", "filter": {"prefix": "backups/"}, "expiration": {"days": 30}}
    ]
    assert lifecycle.protect and lifecycle.retain_on_delete
    forever = run_with("eks", {"llm-serving:platform": {"modelStore": {"backupRetentionDays": 0}}})
    assert not forever.of_type("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
