"""The optional model libraries of the ``videocam[hf]`` extra (transformers, timm) and the
``videocam[openclip]`` extra (open_clip): imported on first use, with one clear error naming
the extra when they are missing.

Nothing imports them at module level, so ``videocam --help``, ``videocam models`` and every other
model source stay as fast as before.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

from videocam.errors import ModelLoadError

__all__ = ["EXTRA", "OPENCLIP_EXTRA", "import_optional", "quiet_hub"]

#: The pip extra that installs transformers and timm.
EXTRA = "videocam[hf]"


#: The pip extra that installs open_clip (``--model openclip:NAME``).
OPENCLIP_EXTRA = "videocam[openclip]"

_EXTRA_HOLDS = {EXTRA: "transformers and timm", OPENCLIP_EXTRA: "open_clip_torch"}


def import_optional(module: str, *, needed_for: str, extra: str = EXTRA) -> ModuleType:
    """Import ``module`` (``"transformers"``, ``"timm"``, ``"timm.data"``, ``"open_clip"``…).

    Raises:
        ModelLoadError: one line naming what needs it and the extra that installs it.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = module.split(".")[0]
        raise ModelLoadError(
            f"{needed_for} needs the package {package}, which is not installed: "
            f"pip install '{extra}' ({_EXTRA_HOLDS.get(extra, package)}) "
            f"({type(exc).__name__}: {exc})"
        ) from exc


@contextmanager
def quiet_hub() -> Iterator[None]:
    """While downloading from the Hugging Face Hub: no progress bars and none of its retry
    warnings on stderr ("Retrying in 1s…" ten times when offline), so that a failed download
    ends in videocam's one error line. Restored afterwards."""
    hub_logger = logging.getLogger("huggingface_hub")
    level = hub_logger.level
    hub_logger.setLevel(logging.ERROR)
    try:
        from huggingface_hub.utils import (
            are_progress_bars_disabled,
            disable_progress_bars,
            enable_progress_bars,
        )
    except ImportError:
        restore_bars = False
    else:
        restore_bars = not are_progress_bars_disabled()
        disable_progress_bars()
    try:
        yield
    finally:
        hub_logger.setLevel(level)
        if restore_bars:
            enable_progress_bars()
