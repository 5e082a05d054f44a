"""Drive Open WebUI's page in a real browser: sign in, send a message, see the answer.

Runs inside the tier's Open WebUI virtualenv (Playwright from PyPI) with Debian's chromium
(``/usr/bin/chromium``; Playwright's own browser download cannot work here):
``python browser_chat.py IN.json`` with ``{"url", "email", "password", "message", "expect":
"answer"|"error", "answer", "reasoning", "error_text", "screenshots"}``. Prints a JSON report;
screenshots go to ``screenshots``. Selectors are the page's stable ids
(shared/reference/audit/settled.md, "Open WebUI 0.12.4 in a real browser").
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 90_000


def run(request: dict[str, Any]) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    shots = Path(request["screenshots"])
    shots.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"ok": False, "steps": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(TIMEOUT_MS)
        try:
            page.goto(request["url"])
            page.wait_for_url(re.compile(r".*/auth.*"))
            report["steps"].append("redirected to /auth")
            page.fill("#email", request["email"])
            page.fill("#password", request["password"])
            page.screenshot(path=str(shots / "1-sign-in.png"))
            page.click("button[type=submit]")
            page.wait_for_selector("#chat-input")
            report["steps"].append("signed in")
            whats_new = page.get_by_role("button", name="Okay, Let's Go!")
            with contextlib.suppress(Exception):  # the dialog appears once per new user
                whats_new.click(timeout=10_000)
            page.click("#chat-input")
            page.keyboard.type(request["message"])
            page.click("#send-message-button")
            report["steps"].append("sent")
            if request["expect"] == "error":
                page.get_by_text(request["error_text"], exact=False).first.wait_for()
                report["steps"].append("error shown")
            else:
                page.get_by_text(request["answer"], exact=False).last.wait_for()
                report["steps"].append("answer shown")
                if request.get("reasoning"):
                    folded = page.get_by_role("button", name=re.compile("Thought for"))
                    folded.first.wait_for()
                    report["steps"].append(f"reasoning folded: {folded.first.inner_text().strip()!r}")
                    report["reasoning_visible"] = page.get_by_text(request["reasoning"], exact=False).count() > 0
            report["ok"] = True
        except Exception as exc:
            report["error"] = f"{type(exc).__name__}: {exc}"[:2000]
        finally:
            page.screenshot(path=str(shots / "2-chat.png"), full_page=True)
            browser.close()
    return report


def main() -> None:
    with open(sys.argv[1]) as f:
        request = json.load(f)
    print(json.dumps(run(request)))


if __name__ == "__main__":
    main()
