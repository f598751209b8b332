"""Progress reporting and cancellation for long synchronous work.

Long operations are plain synchronous functions taking an optional ``progress``
callable; the GUI runs them on a worker thread and the tests call them directly.
``progress(fraction, message)`` returns nothing; to cancel, the callable (or a
:class:`CancelToken` it consults) raises :class:`~viewer.core.errors.LoadCancelled`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from viewer.core.errors import LoadCancelled

ProgressFn = Callable[[float, str], None]


class CancelToken:
    """Thread-safe cancel flag shared between the GUI thread and a worker."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise :class:`LoadCancelled` if :meth:`cancel` was called."""
        if self._event.is_set():
            raise LoadCancelled()


def report(progress: ProgressFn | None, fraction: float, message: str = "") -> None:
    """Call ``progress`` if given, clamping ``fraction`` to [0, 1]."""
    if progress is not None:
        progress(min(1.0, max(0.0, float(fraction))), message)


def make_progress(callback: ProgressFn | None = None, token: CancelToken | None = None) -> ProgressFn:
    """Combine a display callback and a cancel token into one progress function."""

    def _progress(fraction: float, message: str = "") -> None:
        if token is not None:
            token.check()
        if callback is not None:
            callback(fraction, message)

    return _progress


__all__ = ["CancelToken", "LoadCancelled", "ProgressFn", "make_progress", "report"]
