"""A real browser for the tests of the review pages: Playwright driving the system's Chromium.

Playwright's own browser download is not used (it needs the network); ``.ci/run`` installs
Debian's ``chromium`` when it is missing. Where either is absent the browser tests skip and say
which, and how to get it.

A page under test records what would betray a broken or unsafe page: console errors, uncaught
exceptions, and every request it makes (a review page makes none but ``file://`` reads of its
own folder).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

#: The system's Chromium (Debian's package), or $VIDEOCAM_CHROMIUM.
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
# Without the background-networking flags Chromium keeps trying to reach Google's services.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1400, "height": 1000}


def chromium_path() -> str | None:
    """The Chromium executable to drive, or None."""
    configured = os.environ.get("VIDEOCAM_CHROMIUM")
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    for candidate in CHROMIUM_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("chromium")


def launch_browser() -> Iterator[Any]:
    """Yield a launched headless Chromium, or skip the test saying what is missing."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright is not installed: pip install -e '.[dev]'")
    executable = chromium_path()
    if executable is None:
        pytest.skip(
            "browser tests need Chromium at /usr/bin/chromium (apt-get install -y chromium; "
            ".ci/run installs it) or $VIDEOCAM_CHROMIUM"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Visit:
    """A page opened from a file, with what it logged and requested."""

    page: Any
    root: Path
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def outside_requests(self) -> list[str]:
        """Requests that are not ``file://`` reads inside ``root`` (network, data:, other
        folders)."""
        prefix = self.root.resolve().as_uri() + "/"
        return [url for url in self.requests if not url.startswith(prefix)]

    def assert_clean(self) -> None:
        """No console error, no uncaught exception, no request outside ``root``."""
        assert self.console_errors == [], f"console errors: {self.console_errors}"
        assert self.page_errors == [], f"uncaught exceptions: {self.page_errors}"
        assert self.outside_requests() == [], f"requests outside {self.root}"

    def shot(self, path: Path, *, full_page: bool = True) -> Path:
        self.page.screenshot(path=str(path), full_page=full_page)
        return path


def open_page(
    browser: Any,
    path: Path,
    *,
    fragment: str = "",
    root: Path | None = None,
    width: int = VIEWPORT["width"],
    scale: float = 1.0,
) -> Visit:
    """Open ``path`` (``#fragment`` appended) in a fresh page and wait until its script ran.

    ``root`` is the folder its requests must stay in (default: the page's folder); ``width``
    the viewport's in CSS pixels, ``scale`` its device pixel ratio."""
    viewport = {"width": width, "height": VIEWPORT["height"]}
    page = browser.new_page(viewport=viewport, device_scale_factor=scale)
    visit = Visit(page=page, root=root or path.parent)
    page.on("console", lambda m: visit.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: visit.page_errors.append(str(e)))
    page.on("request", lambda r: visit.requests.append(r.url))
    page.goto(path.resolve().as_uri() + (f"#{fragment}" if fragment else ""))
    # A selector, not wait_for_function: the page's policy refuses the eval that polls with.
    page.wait_for_selector("body[data-ready='true']", state="attached")
    return visit


def wait_for_video(visit: Visit) -> None:
    """Wait until the player has its clip's first frame (it can seek, and a screenshot shows
    the picture rather than the loading spinner)."""
    visit.page.wait_for_selector("#player", state="attached")
    for _ in range(100):
        if visit.page.evaluate("document.getElementById('player').readyState") >= 2:
            return
        visit.page.wait_for_timeout(50)
    raise AssertionError("the player never loaded its clip's metadata")


def current_time(visit: Visit) -> float:
    return float(visit.page.evaluate("document.getElementById('player').currentTime"))


def wait_for_time(visit: Visit, expected: float, tolerance: float, timeout_ms: int = 5000) -> float:
    """The player's currentTime once it is within ``tolerance`` of ``expected`` (or the last
    value seen, when it never gets there in time)."""
    t = current_time(visit)
    for _ in range(max(1, timeout_ms // 50)):
        if abs(t - expected) <= tolerance:
            return t
        visit.page.wait_for_timeout(50)
        t = current_time(visit)
    return t


def timeline_x(visit: Visit, time_s: float) -> tuple[float, float]:
    """Page coordinates of the timeline's first lane at ``time_s``, from the mapping the
    timeline publishes (its view and its plot's left edge and width)."""
    timeline = visit.page.locator("#timeline")
    start = float(timeline.get_attribute("data-view-start"))
    end = float(timeline.get_attribute("data-view-end"))
    left = float(timeline.get_attribute("data-plot-left"))
    width = float(timeline.get_attribute("data-plot-width"))
    box = visit.page.locator("#tl-over").bounding_box()
    return box["x"] + left + (time_s - start) / (end - start) * width, box["y"] + 60
