"""The conformance tier tests the versions the program deploys: its requirements files
must pin exactly the catalog's versions, so bumping an image re-tests against the new one."""

from __future__ import annotations

import re
from pathlib import Path

from components.catalog import OPEN_WEBUI_IMAGE, RAY_VERSION, VLLM_IMAGE

TIER = Path(__file__).resolve().parent / "conformance"


def pinned(requirements: str, package: str) -> str:
    text = (TIER / f"requirements-{requirements}.txt").read_text()
    found = re.findall(rf"^{re.escape(package)}(?:\[[^\]]*\])?==(\S+)", text, re.MULTILINE)
    assert len(found) == 1, f"requirements-{requirements}.txt must pin {package} once, found {found}"
    return str(found[0])


def test_vllm_pin_is_the_image_tag() -> None:
    assert f"v{pinned('vllm', 'vllm')}" == VLLM_IMAGE.tag


def test_ray_pin_is_the_ray_version() -> None:
    assert pinned("ray", "ray") == RAY_VERSION


def test_open_webui_pin_is_the_image_tag() -> None:
    assert f"v{pinned('openwebui', 'open-webui')}" == OPEN_WEBUI_IMAGE.tag
