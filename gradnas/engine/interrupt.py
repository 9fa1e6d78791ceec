"""Ctrl-C and SIGTERM end a run cleanly at the next step boundary."""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any


class Interrupted(Exception):
    """The run stopped on a signal after writing a checkpoint; ``--resume`` continues it."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum


class StopRequest:
    """While active, SIGINT and SIGTERM only set ``signum``; the loop checks it
    between steps, writes a checkpoint and raises :class:`Interrupted`.

    A second signal is taken as an insistent stop and raises
    ``KeyboardInterrupt`` at once. Only the main thread can install handlers;
    elsewhere (a test runner's worker thread) this does nothing.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}  # what signal.signal returned: a handler or a constant

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
