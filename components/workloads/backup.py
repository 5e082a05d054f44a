"""Chat backups: a CronJob copies Open WebUI's database and uploads to the model bucket.

What is copied (Open WebUI's data directory, ``DATA_DIR=/app/backend/data``; layout from
open-webui backend/open_webui/env.py ``DATABASE_URL`` default ``sqlite:///{DATA_DIR}/webui.db``
and config.py ``UPLOAD_DIR = {DATA_DIR}/uploads``, ``CHROMA_DATA_PATH = {DATA_DIR}/vector_db``,
``CACHE_DIR``; docs/reference/aws-eks-karpenter.md §6. Read from the repository index at
Dockerfile commit 00a89829; the v0.12.4 tag itself could not be fetched here, the
snapshot being too large, so check these paths when the pinned image moves):

* ``webui.db``, the SQLite database (users, chats, settings), through SQLite's online
  backup API (Python's ``sqlite3.Connection.backup``): a consistent snapshot taken under
  SQLite's own locking while Open WebUI keeps writing, never a copy of the live file,
  then checked with ``PRAGMA integrity_check``;
* ``uploads/``, the files users attached (written once, so a tar of the folder is sound);
* not ``vector_db/`` (Chroma's index, rebuilt from the uploads by re-indexing) nor
  ``cache/`` (downloaded embedding and speech models).

Each run writes ``backups/open-webui/<UTC time>/`` with ``webui.db``, ``uploads.tar.gz``
and, last, ``manifest.json``: a folder without a manifest is an incomplete run.

Where it runs, and why a CronJob rather than a sidecar. The volume is ReadWriteOnce,
which binds it to one node, not one pod: other pods on that node may mount it
(Kubernetes docs, Persistent Volumes, access modes; ReadWriteOncePod would forbid it).
So the Job's pod carries a required pod affinity to the Open WebUI pod on
``kubernetes.io/hostname``. A sidecar would have to run as Open WebUI's service
account, handing the UI process (which runs user-supplied tools and functions) the
cloud identity that writes the bucket; the CronJob runs as its own account,
``chat-backup``, which the platform allows to *create objects under* ``backups/`` and
nothing else (no read, list or delete: GCS ``roles/storage.objectCreator`` under an IAM
condition on the prefix, an S3 policy with ``s3:PutObject`` on ``backups/*``). It also
keeps Open WebUI's pod as it is and gives every run a record (`kubectl get jobs`).
Trade-off: while a run is in progress (seconds to minutes) a rescheduled Open WebUI pod
on another node waits for the volume to detach.

Two steps in one pod sharing an emptyDir: ``snapshot`` runs in the Open WebUI image (it
has Python with sqlite3 and is on the node already; its user is root, Dockerfile
``ARG UID=0``, as the files on the volume are), ``upload`` in the cloud CLI image as
the backup account. The restore is documented in the README ("Restore chats").
"""

from __future__ import annotations

import pulumi

from components.config import ChatBackupConfig
from components.platform import BACKUP_PREFIX, Manifest, ModelStore
from components.workloads import open_webui
from components.workloads.common import (
    TMP_VOLUME,
    concat,
    env,
    hardened_pod,
    metadata,
    script_container,
    selector,
    store_env,
)
from components.workloads.needs import WorkloadNeeds

NAME = "chat-backup"
PREFIX = f"{BACKUP_PREFIX}open-webui"  # bucket prefix of the backups, under the account's grant
SNAPSHOT_DIR = "/backup"  # the emptyDir both steps share
HOSTNAME_KEY = "kubernetes.io/hostname"
# A run copies a database of some MB to a few GB; an hour is generous, and the deadline
# frees the volume if something hangs.
DEADLINE_SECONDS = 3600
MANIFEST = "manifest.json"

NEEDS = WorkloadNeeds(name=NAME, selector=selector(NAME), internet_egress=True, cloud_identity=True)

# Runs with python3 in the Open WebUI image. DATA_DIR and SNAPSHOT_DIR come from the
# environment; it prints the snapshot's folder name (UTC time) into SNAPSHOT_DIR/STAMP.
SNAPSHOT_SCRIPT = """
import datetime, json, os, sqlite3, sys, tarfile
data, out = os.environ["DATA_DIR"], os.environ["SNAPSHOT_DIR"]
stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
folder = os.path.join(out, stamp)
os.makedirs(folder)
database = os.path.join(data, "webui.db")
if not os.path.exists(database):
    sys.exit(f"no database at {database}: has Open WebUI started on this volume?")
source = sqlite3.connect(database, timeout=60)
target = sqlite3.connect(os.path.join(folder, "webui.db"))
with target:
    source.backup(target)
source.close()
check = target.execute("PRAGMA integrity_check").fetchone()[0]
target.close()
if check != "ok":
    sys.exit(f"integrity check of the copy failed: {check}")
uploads = os.path.join(data, "uploads")
with tarfile.open(os.path.join(folder, "uploads.tar.gz"), "w:gz") as tar:
    if os.path.isdir(uploads):
        tar.add(uploads, arcname="uploads")
files = sorted(os.listdir(folder))
sizes = {f: os.path.getsize(os.path.join(folder, f)) for f in files}
manifest = {"created": stamp, "image": os.environ.get("OPEN_WEBUI_IMAGE", ""), "files": sizes}
with open(os.path.join(folder, "manifest.json"), "w") as f:
    json.dump(manifest, f, indent=1)
with open(os.path.join(out, "STAMP"), "w") as f:
    f.write(stamp)
print(f"snapshot {stamp}: {sizes}")
""".strip()


def upload_script(store: ModelStore, snapshot_dir: str = SNAPSHOT_DIR) -> str:
    """Copy the snapshot's files one by one (the account may create, not list, so no
    sync), the manifest last; ``$BACKUP_URL`` ends with a slash."""
    stamp = f"$(cat {snapshot_dir}/STAMP)"
    folder = f'"{snapshot_dir}/{stamp}"'
    steps = [
        "set -eu",
        f'dest="$BACKUP_URL{stamp}"',
        *(store.write_command(f"{folder}/{name}", f'"$dest/{name}"') for name in ("webui.db", "uploads.tar.gz")),
        store.write_command(f"{folder}/{MANIFEST}", f'"$dest/{MANIFEST}"'),
        'echo "backup written to $dest"',
    ]
    return "\n".join(steps)


def backup_url(store: ModelStore, bucket: pulumi.Input[str]) -> pulumi.Input[str]:
    return concat(store.address(bucket, PREFIX), "/")


def backup_cronjob(
    namespace: str,
    config: ChatBackupConfig,
    image: str,
    store: ModelStore,
    bucket: pulumi.Input[str],
) -> Manifest:
    """The CronJob. ``image`` is Open WebUI's (the snapshot step's Python); ``bucket`` the
    bucket's name. Needs ``store.backup_service_account``."""
    assert store.backup_service_account, "the platform grants no account for backups"
    shared = {"name": "snapshot", "mountPath": SNAPSHOT_DIR}
    data = {"name": "data", "mountPath": open_webui.DATA_DIR}
    snapshot = script_container(
        "snapshot",
        image,
        SNAPSHOT_SCRIPT,
        requests={"cpu": "100m", "memory": "256Mi"},
        env=[
            env("DATA_DIR", open_webui.DATA_DIR),
            env("SNAPSHOT_DIR", SNAPSHOT_DIR),
            env("OPEN_WEBUI_IMAGE", image),
            env("SQLITE_TMPDIR", SNAPSHOT_DIR),  # SQLite's temporary files: the root file system is read-only
        ],
        mounts=[data, shared],
        shell="python3",
        read_only_root=True,
    )
    upload = script_container(
        "upload",
        store.cli_image,
        upload_script(store),
        requests={"cpu": "100m", "memory": "256Mi"},
        env=[env("BACKUP_URL", backup_url(store, bucket)), *store_env(store, store.backup_service_account)],
        # A volume store: only its backups/ folder, as a bucket grants the account only that prefix.
        mounts=[{**shared, "readOnly": True}, *store.mounts(read_only=False, sub_path=BACKUP_PREFIX)],
        read_only_root=True,  # the CLI's config goes to $HOME, the pod's /tmp volume
    )
    pod: Manifest = {
        "metadata": {"labels": metadata(NAME, None, "ui")["labels"]},
        "spec": {
            "serviceAccountName": store.backup_service_account,
            "restartPolicy": "Never",
            # Same node as Open WebUI: the ReadWriteOnce volume is attached there.
            "affinity": {
                "podAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [
                        {"labelSelector": {"matchLabels": selector(open_webui.NAME)}, "topologyKey": HOSTNAME_KEY}
                    ]
                }
            },
            # Root, as the files on Open WebUI's volume are (its image runs as UID 0).
            **hardened_pod(),
            "initContainers": [snapshot],
            "containers": [upload],
            "volumes": [
                {"name": "data", "persistentVolumeClaim": {"claimName": open_webui.PVC_NAME}},
                {"name": "snapshot", "emptyDir": {}},
                TMP_VOLUME,
                *store.pod_volumes(read_only=False),
            ],
        },
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": metadata(NAME, namespace, "ui"),
        "spec": {
            "schedule": config.schedule,
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            # A run missed by more than an hour (cluster down) is skipped, not replayed.
            "startingDeadlineSeconds": DEADLINE_SECONDS,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "spec": {
                    "backoffLimit": 2,
                    "activeDeadlineSeconds": DEADLINE_SECONDS,
                    "template": pod,
                }
            },
        },
    }
