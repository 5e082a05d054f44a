"""The GPU check init container, run for real against a stub nvidia-smi
(tests/scripts_harness.py), where GKE and EKS put it."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from components import catalog
from components.workloads.gpu_check import NAME, gpu_check_container
from fake_platforms import EKS_G5, GKE_A4, run_serving
from scripts_harness import ContainerRun, Sandbox
from tools.offline import StackRun

VLLM = catalog.VLLM_IMAGE
RAY = catalog.RAY_LLM_IMAGE


def healthy(count: int, driver: str = "580.95.05", ecc: str = "0") -> list[dict[str, str]]:
    return [
        {"index": str(i), "driver_version": driver, "ecc.errors.uncorrected.volatile.total": ecc} for i in range(count)
    ]


def run_gke(box: Sandbox, gpus: int = 8, image: str = VLLM.ref) -> ContainerRun:
    """On GKE nvidia-smi is not on PATH: it is in the host driver folder the pod mounts."""
    container = gpu_check_container(image, GKE_A4, gpus)
    driver = box.host_path("/home/kubernetes/bin/nvidia")
    (driver / "bin").mkdir(parents=True, exist_ok=True)
    shutil.move(str(box.bin / "nvidia-smi"), driver / "bin" / "nvidia-smi")
    volumes = {v["name"]: box.host_path(v["hostPath"]["path"]) for v in GKE_A4.volumes}
    return box.run_container(container, volumes)


def run_eks(box: Sandbox, gpus: int = 1, image: str = RAY.ref) -> ContainerRun:
    """On EKS the NVIDIA container toolkit puts nvidia-smi on the container's PATH."""
    return box.run_container(gpu_check_container(image, EKS_G5, gpus), {})


@pytest.fixture
def box(tmp_path: Path) -> Sandbox:
    return Sandbox(tmp_path)


def test_healthy_a4_node_passes(box: Sandbox) -> None:
    box.gpus(*healthy(8))
    result = run_gke(box)
    assert result.exit_code == 0, result.output
    assert "GPU check passed: 8 GPUs, driver 580.95.05" in result.output
    # nvidia-smi ran from the host driver folder, with its libraries on the path.
    (call,) = box.calls("nvidia-smi")
    assert call.env["LD_LIBRARY_PATH"].endswith("home/kubernetes/bin/nvidia/lib64")


def test_driver_older_than_the_image_needs_fails_clearly(box: Sandbox) -> None:
    box.gpus(*healthy(8, driver="570.133.20"))  # a 2025 GKE LATEST for B200 (settled.md)
    result = run_gke(box)
    assert result.exit_code == 1
    assert f"NVIDIA driver 570.133.20 is older than {VLLM.cuda.min_driver}" in result.output  # type: ignore[union-attr]
    assert "CUDA 13.0" in result.output


def test_the_cuda_12_8_ray_image_accepts_that_driver(box: Sandbox) -> None:
    box.gpus(*healthy(1, driver="570.133.20"))
    result = run_eks(box)
    assert result.exit_code == 0, result.output


def test_driver_comparison_is_numeric(box: Sandbox) -> None:
    box.gpus(*healthy(1, driver="580.9.1"))  # 580.9 < 580.65 although "9" > "6" as text
    result = run_eks(box, image=VLLM.ref)
    assert result.exit_code == 1 and "older than 580.65.06" in result.output


def test_a_missing_gpu_fails(box: Sandbox) -> None:
    box.gpus(*healthy(7))
    result = run_gke(box)
    assert result.exit_code == 1
    assert "7 GPUs visible, 8 requested" in result.output


def test_uncorrected_ecc_errors_fail_and_name_the_gpu(box: Sandbox) -> None:
    rows = healthy(8)
    rows[3]["ecc.errors.uncorrected.volatile.total"] = "2"
    box.gpus(*rows)
    result = run_gke(box)
    assert result.exit_code == 1
    assert "GPU 3 has 2 uncorrected ECC errors" in result.output


def test_every_problem_is_reported_at_once(box: Sandbox) -> None:
    rows = healthy(7, driver="550.54.15")
    rows[0]["ecc.errors.uncorrected.volatile.total"] = "1"
    box.gpus(*rows)
    result = run_gke(box)
    assert result.exit_code == 1
    assert result.output.count("GPU check failed") == 3


def test_ecc_not_reported_is_not_fatal(box: Sandbox) -> None:
    box.gpus(*healthy(1, ecc="[N/A]"))
    result = run_eks(box)
    assert result.exit_code == 0, result.output
    assert "ECC not reported" in result.output


def test_no_driver_at_all_fails(box: Sandbox) -> None:
    (box.bin / "nvidia-smi").unlink()
    result = run_eks(box)
    assert result.exit_code == 1 and "no nvidia-smi" in result.output


def test_a_broken_driver_fails(box: Sandbox) -> None:
    box.gpus(*healthy(1))
    box.fail("nvidia-smi")
    result = run_eks(box)
    assert result.exit_code == 1 and "cannot talk to the driver" in result.output


def test_custom_images_skip_only_the_driver_rule(box: Sandbox) -> None:
    box.gpus(*healthy(1, driver="535.0"))
    result = run_eks(box, image="example.com/my-vllm:1")
    assert result.exit_code == 0, result.output
    assert "driver not checked" in result.output


# --- wiring: the engines run it first, with their GPUs -----------------------------------------


def init_containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return list(obj["spec"]["template"]["spec"]["initContainers"])


@pytest.fixture(scope="module")
def a4() -> StackRun:
    return run_serving("a4high")


def test_vllm_pod_checks_its_gpus_before_waiting_for_the_cache(a4: StackRun) -> None:
    first, *between, last = init_containers(a4.kubernetes_object("Deployment", "vllm"))
    assert (first["name"], last["name"]) == (NAME, "wait-for-model-cache")
    assert [c["name"] for c in between] == ["compile-cache-fetch", "compile-cache-unpack"]
    assert first["image"] == VLLM.ref
    assert first["resources"]["limits"] == {"nvidia.com/gpu": "8"}
    assert {"name": "nvidia", "mountPath": "/usr/local/nvidia"} in first["volumeMounts"]


def test_ray_gpu_worker_checks_its_gpus() -> None:
    run = run_serving("eks")
    worker = run.kubernetes_object("RayService", "ray-llm")["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]
    (check,) = [c for c in worker["template"]["spec"]["initContainers"] if c["name"] == NAME]
    assert check["image"] == RAY.ref
    assert check["resources"]["limits"] == {"nvidia.com/gpu": "1"}
