"""One self-contained HTML page: its skeleton, style and script inline (package data in
``assets/``), its data as JSON in a non-executed ``<script>`` element, and a
Content-Security-Policy that allows exactly those inline blocks (by hash) and relative media.

The page needs no server and no network: it opens from its folder (``file://``), and a zip of
the folder keeps working. What it may load is the policy's business: nothing from the network
(``default-src 'none'``), images and media from its own origin only, no plugin, no form, no
``<base>``; scripts only the one inline block whose hash the policy names, so even markup that
slipped into the page could run nothing.
"""

from __future__ import annotations

import base64
import hashlib
import html
import os
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from videocam.render.files import atomic_write
from videocam.render.report.data import script_json

__all__ = ["PAGE_KINDS", "PAGE_SCRIPTS", "content_security_policy", "render_page", "write_page"]

#: The pages, each with a skeleton ``assets/KIND.html`` and a script ``assets/KIND.js``.
PAGE_KINDS = ("video", "batch", "evaluate")

#: The script files of each page, in the order they are joined into its one inline script: the
#: shared helpers (``common.js`` defines ``VC``, the only global name; ``table.js`` adds
#: ``VC.Table``), the page's parts (each adds to ``VC.video``), then ``KIND.js``, which runs it.
PAGE_SCRIPTS: dict[str, tuple[str, ...]] = {
    "video": (
        "common.js",
        "table.js",
        "video-model.js",
        "video-summary.js",
        "video-draw.js",
        "video-timeline.js",
        "video-pointer.js",
        "video-controls.js",
        "video-lists.js",
        "video.js",
    ),
    "batch": ("common.js", "table.js", "batch.js"),
    "evaluate": ("common.js", "table.js", "evaluate.js"),
}


@cache
def _asset(name: str) -> str:
    return resources.files("videocam.render.report").joinpath("assets", name).read_text("utf-8")


def _sha256(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def content_security_policy(script: str, style: str) -> str:
    """The page's policy: no network, the inline ``script`` and ``style`` allowed by hash,
    images and media from the page's own origin (its folder, on ``file://``)."""
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src {_sha256(script)}",
            f"style-src {_sha256(style)}",
            "img-src 'self'",
            "media-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "object-src 'none'",
        ]
    )


def clean_text(text: str) -> str:
    """``text`` with undecodable bytes of file names (lone surrogates) as U+FFFD, so it can be
    written as UTF-8."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def render_page(kind: str, title: str, data: Any, *, footer: str = "") -> str:
    """The HTML of one page.

    Args:
        kind: one of :data:`PAGE_KINDS`.
        title: the document title (escaped here).
        data: JSON-ready data the page's script reads (strings in it are never markup).
        footer: a line of text at the bottom (escaped here).
    """
    if kind not in PAGE_KINDS:
        raise ValueError(f"unknown page kind {kind!r}; choose from {', '.join(PAGE_KINDS)}")
    style = _asset("report.css")
    # One inline script: the shared helpers, then the page's own code.
    script = "\n".join(_asset(name) for name in PAGE_SCRIPTS[kind])
    policy = content_security_policy(script, style)
    return "".join(
        [
            "<!doctype html>\n",
            '<html lang="en">\n<head>\n<meta charset="utf-8">\n',
            # Keywords and base64 hashes hold no '"', '<' or '&': the policy needs no escaping.
            f'<meta http-equiv="Content-Security-Policy" content="{policy}">\n',
            '<meta name="referrer" content="no-referrer">\n',
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
            f"<title>{html.escape(clean_text(title))}</title>\n",
            f"<style>{style}</style>\n",
            "</head>\n",
            f'<body class="vc-page-{kind}">\n',
            "<noscript><p>This page draws its content with JavaScript; the same results are "
            "in the CSV and JSON files of this folder.</p></noscript>\n",
            _asset(f"{kind}.html"),
            f"<footer>{html.escape(clean_text(footer))}</footer>\n",
            f'<script type="application/json" id="vc-data">{script_json(data)}</script>\n',
            f"<script>{script}</script>\n",
            "</body>\n</html>\n",
        ]
    )


def write_page(path: str | os.PathLike[str], text: str) -> Path:
    """Write a page atomically (UTF-8)."""
    path = Path(path)
    with atomic_write(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
