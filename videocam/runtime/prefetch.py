"""Decoding ahead of the model: an iterator run in a background thread through a bounded queue,
and the same interface without a thread."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import suppress
from typing import Any

#: Name of the background decoding thread (tests look for leftovers by it).
THREAD_NAME = "videocam-decode"


class Prefetch:
    """Runs an iterator in a background thread, at most ``depth`` items ahead of the consumer.

    Items, the end, and the producer's exception (re-raised as is in the consumer) pass through
    one bounded queue. ``close`` (also on leaving the ``with`` block, error or not) stops the
    producer at its next item and joins the thread: none is ever left running.
    """

    _ITEM, _END, _ERROR = range(3)

    def __init__(self, make_iterator: Callable[[], Iterator[Any]], depth: int) -> None:
        self._queue: queue.Queue[tuple[int, Any]] = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(
            target=self._produce, args=(make_iterator,), name=THREAD_NAME, daemon=True
        )
        self._thread.start()

    def _produce(self, make_iterator: Callable[[], Iterator[Any]]) -> None:
        iterator: Iterator[Any] | None = None
        try:
            iterator = make_iterator()
            for item in iterator:
                if not self._put((self._ITEM, item)):
                    return
            self._put((self._END, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
            self._put((self._ERROR, exc))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    def _put(self, message: tuple[int, Any]) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(message, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Prefetch:
        return self

    def __next__(self) -> Any:
        if self._done:
            raise StopIteration
        kind, value = self._queue.get()
        if kind == self._ITEM:
            return value
        self._done = True
        self._thread.join()
        if kind == self._ERROR:
            raise value
        raise StopIteration

    def close(self) -> None:
        """Stop the producer and wait for it; safe to call twice."""
        self._stop.set()
        self._done = True
        while self._thread.is_alive():
            with suppress(queue.Empty):  # unblock a producer waiting on a full queue
                self._queue.get(timeout=0.05)
        self._thread.join()

    def __enter__(self) -> Prefetch:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Inline:
    """:class:`Prefetch`'s interface without a thread: the iterator runs in the caller."""

    def __init__(self, make_iterator: Callable[[], Iterator[Any]], depth: int) -> None:
        del depth
        self._iterator = make_iterator()

    def __iter__(self) -> Iterator[Any]:
        return self._iterator

    def __enter__(self) -> Iterator[Any]:
        return self._iterator

    def __exit__(self, *exc_info: object) -> None:
        close = getattr(self._iterator, "close", None)
        if close is not None:
            close()
