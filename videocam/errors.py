"""Typed errors raised by videocam.

Every error a user can cause derives from :class:`VideocamError`; the CLI turns those into one
line on stderr and exit code 2. Anything else is an internal error (exit code 1).
"""

from __future__ import annotations


class VideocamError(Exception):
    """Base class of every error caused by the user's input, arguments or environment."""


class VideoOpenError(VideocamError):
    """A video cannot be opened: missing, not a file, empty, not a video, no video stream."""


class DecodeError(VideocamError):
    """A video opened but its frames cannot be decoded (truncated file, corrupt index...)."""


class ModelLoadError(VideocamError):
    """A model or its weights cannot be built or loaded."""


class LayerNotFoundError(VideocamError):
    """The requested target layer does not exist in the model."""


class ConfigError(VideocamError):
    """A configuration file or option value is invalid."""


class CamError(VideocamError, ValueError):
    """A CAM request cannot be served: bad targets, unknown method, unusable layer output.

    Also a ValueError, which is what plain-Python callers of ``compute_cam`` would catch.
    """


class OutputError(VideocamError):
    """Outputs cannot be written (unwritable folder, disk full...)."""


#: The most characters of an exception's text :func:`first_line` keeps.
FIRST_LINE_CHARS = 200


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message, at most :data:`FIRST_LINE_CHARS` characters, for a
    one-line error of our own (the exception's type name when it has no message)."""
    text = str(exc).strip()
    return text.splitlines()[0][:FIRST_LINE_CHARS] if text else type(exc).__name__
