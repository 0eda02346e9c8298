"""Owns every rule of which decoder, decord or PyAV, reads which frames of a video, and why.

decord is preferred: it is faster and resizes inside the decoder. The backends themselves only
decode and say, with typed errors, what they cannot do (see :mod:`videocam.io.decord_backend`);
the choices are made here:

* ``backend="pyav"``: PyAV reads everything.
* ``"auto"`` and ``"decord"``: PyAV reads everything instead of decord when decord opens the
  file but must not read it (its index holds fewer frames than the container lists, a file cut
  short at a packet boundary, on which PyAV says whether it is truncated; or its first frames
  fail on damaged data). ``"auto"`` also takes PyAV where decord cannot open the file (GIF, for
  one), and where the picture changes size part-way (decord keeps the first size and returns
  wrong frames after the change, silently); asked for by name, decord raises its open error
  (PyAV's reason when PyAV cannot open the file either) and decodes a size change with a
  warning.
* Otherwise decord reads, rescued part-way by PyAV (:class:`_HandOverSource`): a size decord
  0.6 cannot resize to is decoded by PyAV, that size only (a warning, once); after decord fails
  on damaged data, PyAV decodes from the first frame not yet returned on, for every later read.
  Both record damaged frames in one :class:`~videocam.io.base.DecodeLog`.
* decord reports damaged data from its decoder thread, at a point that varies from run to run,
  so where a rescue starts varies too. :func:`decode_reproducibly` restarts a caller's work on
  PyAV alone as soon as decord fails on damaged data, so that the same file always gives the
  same frames.

Every source records the choice as :attr:`FrameSource.decoder
<videocam.io.base.FrameSource.decoder>` (a :class:`~videocam.io.base.DecoderChoice`), which
summary.json records as ``decoder``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import numpy as np

from videocam.errors import DecodeError, VideocamError, VideoOpenError
from videocam.io.base import DecoderChoice, FrameSource, Size, VideoMeta, check_video_path
from videocam.io.decord_backend import (
    DecordSource,
    _CannotResize,
    _DecordCannotOpen,
    _DecordFailure,
    _DecordUnsuitable,
)
from videocam.io.pyav_backend import PyAVSource

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: The decoders, preferred first.
BACKENDS: tuple[str, ...] = ("decord", "pyav")
#: What a caller may ask :func:`open_video` for.
BACKEND_CHOICES: tuple[str, ...] = ("auto", *BACKENDS)

_WRONG_AFTER_SIZE_CHANGE = "decord returns wrong frames after that point"


def open_video(path: str | Path, backend: str = "auto") -> FrameSource:
    """Open a video for reading.

    Args:
        path: the video file.
        backend: ``"decord"``, ``"pyav"``, or ``"auto"`` (decord, else PyAV where decord cannot
            open the file or would decode it wrongly; see the module docstring).

    Returns:
        An open :class:`FrameSource`; use it as a context manager. Its ``decoder`` says
            which decoder reads it and why.

    Raises:
        ValueError: ``backend`` is not one of :data:`BACKEND_CHOICES`.
        VideoOpenError: the file is missing, not a file, empty, or no backend can open it; the
            message names the file and the reason.
    """
    if backend not in BACKEND_CHOICES:
        raise ValueError(f"backend must be 'auto', 'decord' or 'pyav', got {backend!r}")
    path = check_video_path(path)
    if backend == "pyav":
        return _chosen(PyAVSource(path), backend, None)
    try:
        decord_source = DecordSource(path)
    except _DecordUnsuitable as unsuitable:
        # decord opened it but must not read it: PyAV reads it all (and says whether the file
        # is truncated).
        return _pyav_for_everything(path, backend, unsuitable.reason, unsuitable)
    except VideoOpenError as decord_error:
        if backend == "decord":
            error = _decord_open_error(path, decord_error)
            if error is decord_error:
                raise
            raise error from decord_error
        try:
            source = PyAVSource(path)
        except VideoOpenError as pyav_error:
            raise pyav_error from decord_error
        reason = f"decord cannot open it ({_detail(path, decord_error)})"
        logger.info("%s: %s; decoding with PyAV", path, reason)
        return _chosen(source, backend, reason)
    if decord_source.size_change:
        if backend == "decord":
            logger.warning(
                "%s: %s; %s (use the PyAV backend)",
                path,
                decord_source.size_change,
                _WRONG_AFTER_SIZE_CHANGE,
            )
        else:
            # PyAV decodes the frames of every size and scales them to the video's size.
            decord_source.close()
            return _pyav_for_everything(
                path, backend, f"{decord_source.size_change}; {_WRONG_AFTER_SIZE_CHANGE}"
            )
    return _HandOverSource(decord_source, backend)


def decode_reproducibly(path: str | Path, backend: str, work: Callable[[FrameSource], T]) -> T:
    """``work(source)`` on the video opened with the policy, the same result on every run.

    decord fails on damaged data at a point that varies from run to run, so a source that PyAV
    rescues from there on decodes a different mix of frames each time. With ``backend="auto"``,
    as soon as decord fails on damaged data while ``work`` reads, the read stops (``work``
    sees an internal :class:`~videocam.errors.DecodeError`), the source is closed, and ``work``
    is called again on the video opened with PyAV alone, whose ``decoder`` says why (requested
    ``"auto"``, backend ``"pyav"``). With ``"decord"`` or ``"pyav"`` it is ``work`` on
    :func:`open_video`'s source, once.

    Args:
        path: the video file.
        backend: as :func:`open_video`.
        work: reads the source (inside ``with source:``) and returns the result. It must be
            restartable: it may be stopped part-way by an exception out of a read and then
            called again from the start, so it must not keep state from the first call nor
            leave effects that the second call does not redo.

    Returns:
        What the last call of ``work`` returned.

    Raises:
        ValueError, VideoOpenError: as :func:`open_video`.
        Exception: whatever ``work`` raises, unchanged (but for the restart: the source's
            :class:`~videocam.errors.DecodeError`, or a :class:`~videocam.errors.VideocamError`
            of ``work``'s own raised once the source stopped the read; anything else raised
            then, a bug, comes out as it is). No source is left open.
    """
    source = open_video(path, backend)
    with source:
        if not isinstance(source, _HandOverSource) or backend != "auto":
            return work(source)
        source.restart_on_hand_over = True
        try:
            result = work(source)
        except VideocamError:
            # work may have wrapped the restart in an error of its own: the source knows.
            failure = source.restart_cause
            if failure is None:
                raise
        else:
            failure = source.restart_cause
            if failure is None:
                return result
    reason = (
        f"decord failed on damaged data at {failure.what} ({failure.detail}); the whole video "
        "was decoded with PyAV so that the result does not depend on where decord stopped"
    )
    logger.info(
        "%s: decord failed on damaged data at %s (%s); decoding it all again with PyAV",
        source.path,
        failure.what,
        failure.detail,
    )
    with _pyav_for_everything(source.path, backend, reason, failure) as pyav:
        return work(pyav)


class _RestartWithPyAV(DecodeError):
    """decord failed on damaged data in a :class:`_HandOverSource` asked to stop there
    (``restart_on_hand_over``): :func:`decode_reproducibly` starts again with PyAV."""

    def __init__(self, failure: _DecordFailure) -> None:
        super().__init__(f"{failure}; the read stops here, to decode it all again with PyAV")
        self.failure = failure


class _HandOverSource(FrameSource):
    """A decord source rescued part-way by PyAV (see the module docstring).

    Works at the upright level: both inner sources turn their own frames upright (their
    ``_read_sorted`` / ``_iter_sorted``, then their ``_upright``), so this one has
    ``_turns == 0``. Metadata and times are decord's; PyAV is opened when first needed and must
    index as many frames. Damaged frames of both go to this source's log.
    """

    backend = "decord"

    def __init__(self, decord: DecordSource, requested: str) -> None:
        super().__init__(decord.path)
        self._decord = decord
        decord._log = self._log  # one record of damaged frames for both decoders
        self._requested = requested
        self._pyav: PyAVSource | None = None
        self._pyav_sizes: set[Size] = set()  # upright sizes decord cannot resize to
        self._notes: list[str] = []  # why PyAV decodes some frames, in the order it began to
        self._failure: _DecordFailure | None = None  # decord's failure on damaged data
        self._restart: _DecordFailure | None = None  # the same, when it stopped the read
        #: Stop at decord's failure on damaged data (raise :class:`_RestartWithPyAV`, now and
        #: at every later read) instead of handing over to PyAV: set by
        #: :func:`decode_reproducibly`.
        self.restart_on_hand_over = False
        self.size_change = decord.size_change

    @property
    def restart_cause(self) -> _DecordFailure | None:
        """decord's failure on damaged data that stopped the read (``restart_on_hand_over``:
        the work is to start again with PyAV), else None."""
        return self._restart

    @property
    def meta(self) -> VideoMeta:
        return self._decord.meta

    @property
    def times_s(self) -> np.ndarray:
        return self._decord.times_s

    @property
    def decoder(self) -> DecoderChoice:
        return DecoderChoice(self._requested, self.meta.backend, "; ".join(self._notes) or None)

    @property
    def _turns(self) -> int:
        return 0

    def _read_sorted(self, indices: np.ndarray, size: Size | None) -> tuple[np.ndarray, np.ndarray]:
        if self._decord_reads(size):
            try:
                return _upright_read(self._decord, indices, size)
            except _CannotResize as exc:
                self._cannot_resize(size, exc)
            except _DecordFailure as exc:
                self._hand_over(exc, "PyAV decoded from then on")
        return _upright_read(self._fallback(), indices, size)

    def _iter_sorted(
        self, indices: np.ndarray, size: Size | None, batch_size: int
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        if self._decord_reads(size):
            chunks = _upright_iter(self._decord, indices, size, batch_size)
            last = -1  # the last frame yielded
            while True:
                try:
                    got, frames = next(chunks)
                except StopIteration:
                    return
                except _CannotResize as exc:  # before the first chunk
                    self._cannot_resize(size, exc)
                    break
                except _DecordFailure as exc:
                    indices = indices[indices > last]
                    rest = f"from frame {indices[0]} on" if len(indices) else "from then on"
                    self._hand_over(exc, f"PyAV decoded {rest}")
                    break
                if len(got):
                    last = int(got[-1])
                yield got, frames
        yield from _upright_iter(self._fallback(), indices, size, batch_size)

    def _close(self) -> None:
        self._decord.close()
        if self._pyav is not None:
            self._pyav.close()

    # -- the rules -----------------------------------------------------------------------------
    def _decord_reads(self, size: Size | None) -> bool:
        """Whether decord is to decode a read at ``size``."""
        if self._restart is not None:
            raise _RestartWithPyAV(self._restart)
        return self._failure is None and size not in self._pyav_sizes

    def _cannot_resize(self, size: Size | None, exc: _CannotResize) -> None:
        """decord cannot resize to ``size``: PyAV decodes that size, for every read."""
        assert size is not None  # decord decodes every frame at its own size
        self._pyav_sizes.add(size)
        logger.warning(
            "%s: decord cannot resize to %dx%d (%s); PyAV decodes that size",
            self.path,
            size[1],
            size[0],
            exc.detail,
        )
        self._notes.append(
            f"decord cannot resize to {size[1]}x{size[0]} ({exc.detail}); PyAV decoded that size"
        )

    def _hand_over(self, failure: _DecordFailure, rest: str) -> None:
        """decord failed on damaged data: PyAV decodes from here on (``rest`` says from where),
        or the read stops when ``restart_on_hand_over`` is set."""
        if self.restart_on_hand_over:
            self._restart = failure
            self._decord.close()
            raise _RestartWithPyAV(failure) from failure
        logger.info("%s: %s; decoding with PyAV from there on", self.path, failure.reason)
        try:
            self._fallback()
        except DecodeError as fallback_error:
            raise fallback_error from failure
        self._failure = failure
        self._decord.close()
        self._notes.append(f"{failure.reason}; {rest}")

    def _fallback(self) -> PyAVSource:
        """The PyAV source that decodes what decord cannot, opened when first needed."""
        if self._pyav is None:
            try:
                fallback = PyAVSource(self.path)
            except VideoOpenError as exc:
                raise DecodeError(str(exc)) from exc
            if fallback.meta.n_frames != self.meta.n_frames:
                fallback.close()
                raise DecodeError(
                    f"{self.path}: damaged file: decord indexes {self.meta.n_frames} frames, "
                    f"PyAV {fallback.meta.n_frames}"
                )
            fallback._log = self._log
            self._pyav = fallback
        return self._pyav


def _upright_read(
    source: FrameSource, indices: np.ndarray, size: Size | None
) -> tuple[np.ndarray, np.ndarray]:
    """``source._read_sorted`` with the frames turned upright; ``size`` is upright."""
    got, frames = source._read_sorted(indices, source._coded_size(size))
    return got, source._upright(frames)


def _upright_iter(
    source: FrameSource, indices: np.ndarray, size: Size | None, batch_size: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``source._iter_sorted`` with the frames turned upright; ``size`` is upright."""
    for got, frames in source._iter_sorted(indices, source._coded_size(size), batch_size):
        yield got, source._upright(frames)


def _chosen(source: FrameSource, requested: str, reason: str | None) -> FrameSource:
    """``source``, with the record of why it was chosen."""
    source._choice = DecoderChoice(requested, source.meta.backend, reason)
    return source


def _pyav_for_everything(
    path: Path, requested: str, reason: str, cause: BaseException | None = None
) -> FrameSource:
    """PyAV for the whole video instead of decord, because of ``reason``."""
    try:
        source = PyAVSource(path)
    except VideoOpenError as pyav_error:
        if cause is None:
            raise
        raise pyav_error from cause
    logger.info("%s: %s; decoding with PyAV", path, reason)
    return _chosen(source, requested, reason)


def _decord_open_error(path: Path, decord_error: VideoOpenError) -> VideoOpenError:
    """The error for a file decord cannot open when decord was asked for by name: PyAV's
    reason when PyAV cannot open it either (truncated, damaged index...), else decord's."""
    if not isinstance(decord_error, _DecordCannotOpen):
        return decord_error  # PyAV's probe already failed, or no frames: the reason stands
    try:
        PyAVSource(path).close()
    except VideoOpenError as pyav_error:
        return pyav_error
    return decord_error


def _detail(path: Path, error: VideoOpenError) -> str:
    """Why decord cannot open ``path``, without the path."""
    if isinstance(error, _DecordCannotOpen):
        return error.detail
    return str(error).removeprefix(f"{path}: ")
