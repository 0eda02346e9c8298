"""The optional dependencies of the OTIO and EDL exports (``videocam[interchange]``), imported
only when one of them runs, with one line naming the extra when one is missing."""

from __future__ import annotations

from types import ModuleType

from videocam.errors import ConfigError

__all__ = ["INSTALL_HINT", "MissingExtraError", "import_cmx3600", "import_otio"]

#: The one line an export answers when OpenTimelineIO or its CMX 3600 adapter is missing.
INSTALL_HINT = "videocam export {fmt} needs {what}: pip install 'videocam[interchange]'"


class MissingExtraError(ConfigError):
    """An optional dependency of an export is not installed (the message names the extra)."""


def import_otio(fmt: str) -> ModuleType:
    """``opentimelineio``, or a :class:`MissingExtraError` naming the extra."""
    try:
        import opentimelineio
    except ImportError as exc:
        raise MissingExtraError(INSTALL_HINT.format(fmt=fmt, what="OpenTimelineIO")) from exc
    return opentimelineio


def import_cmx3600() -> ModuleType:
    """OpenTimelineIO's CMX 3600 adapter (``otio-cmx3600-adapter``), or a :class:`ConfigError`
    naming the extra."""
    import_otio("edl")
    try:
        from otio_cmx3600_adapter import cmx_3600
    except ImportError as exc:
        what = "OpenTimelineIO's CMX 3600 adapter (otio-cmx3600-adapter)"
        raise MissingExtraError(INSTALL_HINT.format(fmt="edl", what=what)) from exc
    return cmx_3600
