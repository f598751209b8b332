"""Long work off the GUI thread: a QThread running a plain synchronous function.

The function itself (load, bone mask, ...) knows nothing of Qt: it takes a
``progress(fraction, message)`` callable. :class:`TaskThread` passes one that forwards
progress to the GUI as a queued signal and raises
:class:`~viewer.core.errors.LoadCancelled` once :meth:`TaskThread.cancel` was called,
which is how a Cancel button stops a load between two files.

:class:`LatestOnlyRunner` keeps at most one job of a kind alive: a new request cancels
the running one and its result, if it still arrives, is dropped. That is what the bone
threshold slider needs: only the mask for the threshold the user stopped at matters.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal

from viewer.core.errors import LoadCancelled, ViewerError
from viewer.core.progress import CancelToken, ProgressFn

log = logging.getLogger(__name__)

Work = Callable[[ProgressFn], Any]


class TaskThread(QThread):
    """Runs ``work(progress)`` on its own thread.

    Signals (delivered on the GUI thread, queued):
      progressed(fraction, message), succeeded(result), failed(error),
      cancelled(). Exactly one of the last three is emitted.
    ``failed`` carries a :class:`ViewerError` for bad input; any other exception is
    wrapped in one (with the traceback logged) so the GUI can always show a message.
    """

    progressed = Signal(float, str)
    succeeded = Signal(object)
    failed = Signal(object)
    cancelled = Signal()

    def __init__(self, work: Work, name: str = "task", parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._work = work
        self.token = CancelToken()
        self.setObjectName(name)

    def cancel(self) -> None:
        """Ask the work to stop at its next progress report (thread-safe)."""
        self.token.cancel()

    def _progress(self, fraction: float, message: str = "") -> None:
        self.token.check()
        self.progressed.emit(float(fraction), str(message))

    def run(self) -> None:  # noqa: D401 - QThread API
        try:
            self.token.check()
            result = self._work(self._progress)
            self.token.check()
        except LoadCancelled:
            self.cancelled.emit()
        except ViewerError as exc:
            self.failed.emit(exc)
        except MemoryError:
            self.failed.emit(ViewerError("not enough memory for this scan"))
        except Exception as exc:  # noqa: BLE001 - never let a worker kill the app silently
            log.error("%s failed:\n%s", self.objectName(), traceback.format_exc())
            self.failed.emit(ViewerError(f"unexpected error in {self.objectName()}: {exc}"))
        else:
            self.succeeded.emit(result)


class LatestOnlyRunner(QObject):
    """Runs jobs one kind at a time; a newer request supersedes (cancels) older ones.

    ``finished_latest(result)`` is emitted only for the most recent request;
    ``failed_latest(error)`` likewise. Older threads are cancelled and left to finish
    on their own; they are kept referenced until they end (a QThread destroyed while
    running aborts the process).
    """

    finished_latest = Signal(object)
    failed_latest = Signal(object)
    busy_changed = Signal(bool)

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._name = name
        self._serial = 0
        self._threads: dict[int, TaskThread] = {}

    @property
    def busy(self) -> bool:
        return self._serial in self._threads

    @property
    def latest(self) -> int:
        """The serial number of the latest job (the next :meth:`submit` returns one
        more; a :meth:`cancel` also counts one)."""
        return self._serial

    def submit(self, work: Work) -> int:
        """Start ``work`` and cancel every older job; returns the job's serial number."""
        for t in self._threads.values():
            t.cancel()
        self._serial += 1
        serial = self._serial
        thread = TaskThread(work, f"{self._name}#{serial}")
        thread.succeeded.connect(lambda r, s=serial: self._on_done(s, r, None))
        thread.failed.connect(lambda e, s=serial: self._on_done(s, None, e))
        thread.cancelled.connect(lambda s=serial: self._on_done(s, None, None))
        thread.finished.connect(lambda s=serial: self._reap(s))
        self._threads[serial] = thread
        thread.start(QThread.Priority.LowPriority)
        self.busy_changed.emit(True)
        return serial

    def cancel(self) -> None:
        """Cancel every job; no result will be emitted for them."""
        self._serial += 1
        for t in self._threads.values():
            t.cancel()
        self.busy_changed.emit(False)

    def _on_done(self, serial: int, result: Any, error: Any) -> None:
        if serial != self._serial:
            return  # superseded: a newer request is running or done
        self.busy_changed.emit(False)
        if error is not None:
            self.failed_latest.emit(error)
        elif result is not None:
            self.finished_latest.emit(result)

    def _reap(self, serial: int) -> None:
        thread = self._threads.pop(serial, None)
        if thread is not None:
            thread.deleteLater()

    def shutdown(self, timeout_ms: int = 10000) -> None:
        """Cancel everything and wait for the threads (call before the app quits)."""
        self.cancel()
        for t in list(self._threads.values()):
            t.wait(timeout_ms)
        self._threads.clear()


__all__ = ["LatestOnlyRunner", "TaskThread"]
