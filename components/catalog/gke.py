"""GKE facts: versions, the NVIDIA driver GKE installs, upgrade and NAT limits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# The GKE minor new clusters get, resolved to the newest patch the release channel
# offers at deploy time (gcp.container.get_engine_versions). Checked 2026-11-29:
# Google's A4 blueprint uses this prefix (GoogleCloudPlatform/cluster-toolkit
# examples/gke-a4/gke-a4.yaml @1047080, `version_prefix: "1.35."`); REGULAR's default
# for new clusters was 1.35.8-gke.1036000 on 2026-09-17 and 1.34 left standard support
# on 2026-08-30 (shared/reference/audit/gcp.md finding 1, GKE release notes, endoflife.date).
GKE_VERSION_PREFIX = "1.35."
GKE_VERSION_PREFIX_DATE = "2026-11-29"

# The first GKE version with B200 and GPUDirect RDMA over RoCE: a floor, not a pin
# (gpu-recipes docs/configuring-environment-gke-a4.md: "1.32.4-gke.1236000 or later";
# gcp-a4high.md §2).
GKE_B200_RDMA_FLOOR = "1.32.4-gke.1236000"

GpuDriverLabel = Literal["LATEST", "DEFAULT"]


@dataclass(frozen=True)
class GkeGpuDriver:
    """The oldest NVIDIA driver GKE installs on B200 nodes for a driver label, from a
    GKE minor on. GKE installs the driver its COS node image lists under the label
    (https://cloud.google.com/kubernetes-engine/docs/how-to/gpus#map-gke-cos-gpu; COS
    keeps the list in gs://cos-tools/<build>/lakitu/gpu_driver_versions.bin), so the
    driver only moves forward with the GKE version: a record holds for later minors
    until a newer record replaces it."""

    since_minor: int  # GKE 1.<since_minor>
    label: GpuDriverLabel
    driver: str  # dotted NVIDIA driver version; "" = no B200 driver under this label on that minor
    source: str


GKE_B200_DRIVERS: tuple[GkeGpuDriver, ...] = (
    GkeGpuDriver(
        32,
        "LATEST",
        "570.133.20",
        "COS board-overlays scripts/gpu_driver_versions (commit af3ca4ea^: 'The LATEST tag has been updated to "
        "point to the stable 570.133.20 Production Branch'); gcp-a4high.md §2 (B200 needs >= 570, on GKE 1.32 "
        "only LATEST has it)",
    ),
    GkeGpuDriver(
        32,
        "DEFAULT",
        "",
        "gcp-a4high.md §2, §3 (cluster-toolkit early A4 README: on GKE 1.32 the B200 driver is LATEST only)",
    ),
    GkeGpuDriver(
        35,
        "LATEST",
        "580.65.06",
        "a lower bound: rapidsai/deployment#659 (2026-02-05: on the GKE versions then offered, 'latest ensures "
        "driver > 580.65', the CUDA 13 floor); NVIDIA/aicr#2360 (2026-08-24: 580.173.02 is qualified for B200 on "
        "COS 125 and COS 129)",
    ),
)
# No record says which driver DEFAULT installs on B200 from GKE 1.33 on, so the config
# refuses DEFAULT for images that need a driver newer than what is recorded.


def gke_minor(version_prefix: str) -> int:
    """``1.35.`` or ``1.35.8-gke.1036000`` -> 35."""
    return int(version_prefix.split(".")[1])


def b200_driver(minor: int, label: GpuDriverLabel) -> GkeGpuDriver | None:
    """The newest record for ``label`` at or below GKE ``1.<minor>``, or None. A record
    of no driver holds for its own minor only: a later one may well have added it."""
    records = [
        r
        for r in GKE_B200_DRIVERS
        if r.label == label and ((r.since_minor < minor and r.driver) or r.since_minor == minor)
    ]
    return max(records, key=lambda r: r.since_minor) if records else None


def version_tuple(version: str) -> tuple[int, ...]:
    """``1.32.4-gke.1236000`` -> (1, 32, 4, 1236000); ``580.65.06`` -> (580, 65, 6)."""
    return tuple(int(part) for part in version.replace("-gke.", ".").split("."))


# Maintenance: GKE needs at least 48 hours of maintenance availability in any 32 days,
# counting only windows of at least 4 contiguous hours
# (https://cloud.google.com/kubernetes-engine/docs/how-to/maintenance-window,
# "Considerations when configuring a maintenance window").
GKE_MAINTENANCE_MIN_HOURS_PER_32_DAYS = 48
GKE_MAINTENANCE_MIN_WINDOW_HOURS = 4
# Scopes and end behaviour of an exclusion (pulumi_gcp 10.2
# ClusterMaintenancePolicyMaintenanceExclusionExclusionOptionsArgs); the A4 blueprint's
# exclusion (cluster-toolkit examples/gke-a4/gke-a4.yaml @1047080).
GKE_EXCLUSION_SCOPE = "NO_MINOR_OR_NODE_UPGRADES"
GKE_EXCLUSION_END = "UNTIL_END_OF_SUPPORT"

# Cloud NAT with dynamic port allocation: the minimum must be a power of two >= 32, the
# maximum a power of two above it, at most 65536 (pulumi_gcp compute.RouterNat
# enable_dynamic_port_allocation / max_ports_per_vm; Compute API RouterNat). A stack
# has a handful of nodes that start by pulling 10-20 GB images from Docker Hub and
# hundreds of GB from Hugging Face over parallel connections: 1024 ports each from the
# start (an auto-allocated NAT IP has 64,512, room for 63 such VMs), growing to the cap
# on demand.
NAT_MIN_PORTS_PER_VM = 1024
NAT_MAX_PORTS_PER_VM = 65536
