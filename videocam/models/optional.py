"""The optional model libraries of the ``videocam[hf]`` extra (transformers, timm): imported on
first use, with one clear error naming the extra when they are missing.

Nothing imports them at module level, so ``videocam --help``, ``videocam models`` and every other
model source stay as fast as before.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from videocam.errors import ModelLoadError

__all__ = ["EXTRA", "import_optional"]

#: The pip extra that installs transformers and timm.
EXTRA = "videocam[hf]"


def import_optional(module: str, *, needed_for: str) -> ModuleType:
    """Import ``module`` (``"transformers"``, ``"timm"``, ``"timm.data"``…).

    Raises:
        ModelLoadError: one line naming what needs it and the extra that installs it.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = module.split(".")[0]
        raise ModelLoadError(
            f"{needed_for} needs the package {package}, which is not installed: "
            f"pip install '{EXTRA}' (transformers and timm) ({type(exc).__name__}: {exc})"
        ) from exc
