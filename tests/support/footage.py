"""Where the optional real footage is: the one definition every test that uses it reads.

``$VIDEOCAM_REAL_VIDEOS`` when set, else ``shared/data/videos`` beside the checkout (the
licensed clips are never copied into the repository). Tests that need it skip when it is absent:
through the ``shared_videos`` fixture (tests/conftest.py) or :func:`real_video`.
"""

from __future__ import annotations

import os
from pathlib import Path

#: The environment variable that points the tests at another folder of real footage.
REAL_VIDEOS_ENV = "VIDEOCAM_REAL_VIDEOS"


def real_videos_dir() -> Path:
    """The real-footage folder (which may not exist)."""
    override = os.environ.get(REAL_VIDEOS_ENV)
    if override:
        return Path(override).expanduser()
    return Path(__file__).resolve().parents[3] / "shared" / "data" / "videos"


REAL_VIDEOS = real_videos_dir()


def real_video(name: str) -> Path | None:
    """``name`` in the real-footage folder, or None when it is not there."""
    path = REAL_VIDEOS / name
    return path if path.is_file() else None
