"""Helpers shared by the batch tests of the local and Ray engines: small input clips, reading
``index.csv``, checking an analysis folder is complete, and a model that crashes its worker.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd

from videocam.batch import DONE_MARKER
from videocam.synthetic import make_clip

#: The files every finished analysis folder holds (besides the done marker and log.txt).
ANALYSIS_FILES = {"frames.csv", "keyframes.csv", "segments.csv", "cams.npy", "summary.json"}


def clip(path: Path, seed: int, n_frames: int = 24) -> Path:
    """Write a small clip (48x64, a "grow" event) at ``path``, making its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    make_clip(path, n_frames=n_frames, size=(48, 64), event="grow", seed=seed)
    return path


def read_index(out: Path) -> pd.DataFrame:
    """A batch's ``index.csv`` (empty cells stay empty strings)."""
    return pd.read_csv(out / "index.csv", keep_default_na=False)


def page_data(page: Path) -> dict[str, Any]:
    """The data a review page embeds (its JSON block)."""
    text = page.read_text(encoding="utf-8")
    match = re.search(r'<script type="application/json" id="vc-data">(.*?)</script>', text, re.S)
    assert match is not None, f"{page}: no data block"
    return json.loads(match.group(1))


def assert_complete(sub: Path, render: bool = False) -> None:
    """``sub`` holds a finished analysis (and its renders if ``render``), no temporary files."""
    files = {p.name for p in sub.iterdir()}
    assert ANALYSIS_FILES | {DONE_MARKER, "log.txt"} <= files, files
    if render:
        assert {"annotated.mp4", "timeline.png", "keyframes", "report.html"} <= files
    else:
        assert "report.html" not in files
    assert not list(sub.rglob("*.tmp-*"))


#: A custom model (``--model FILE:build``) that SIGSEGVs its process on a flat clip, as a crash
#: in native code does; on other clips it is a small working Conv3d model.
CRASHING_MODEL = """
import os
import resource
import signal

import torch
from torch import nn


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Conv3d(3, 4, 3, padding=1)
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if float(x.std(dim=(2, 3, 4)).max()) < 1e-2:  # the flat clip: a "native" crash
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            os.kill(os.getpid(), signal.SIGSEGV)
        return self.head(torch.relu(self.features(x)).mean(dim=(2, 3, 4)))


def build() -> nn.Module:
    return Net()
"""
