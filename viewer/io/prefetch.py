"""Reading a scan while the application is still starting (issue 9: start to first frame).

``vessel-viewer PATH`` spends its first second importing Qt and VTK and building the
window, and only then asked for the scan: on a 512 x 512 x 600 volume the read (1.3 s)
came after that second instead of beside it. :class:`PrefetchedLoad` starts reading on a
plain thread before those imports (it needs neither Qt nor VTK), and the window's load
then waits for it -- cancellable, with its progress -- instead of starting over.

A folder is scanned first; with several series the user must choose one, so the
prefetch stops there and says so (``wait`` returns None) and the window scans as usual.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

from viewer.core.errors import LoadCancelled
from viewer.core.progress import ProgressFn
from viewer.core.volume import Volume


class PrefetchedLoad:
    """``load_volume(path)`` started now on a daemon thread; see the module docstring.

    ``wait(progress)`` blocks until it is done and returns ``(volume, series key or
    None)``, or None for a folder of several series; it raises what the load raised
    (a ViewerError naming the file). ``progress(fraction, message)`` receives the
    load's progress while waiting; when it raises LoadCancelled the read is cancelled
    too and the exception goes on."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._future: Future[tuple[Volume, str | None] | None] = Future()
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._progress: tuple[float, str] = (0.0, f"reading {self.path.name}")
        threading.Thread(target=self._work, name="load-prefetch", daemon=True).start()

    def _report(self, fraction: float, message: str) -> None:
        if self._cancel.is_set():
            raise LoadCancelled("superseded")
        with self._lock:
            self._progress = (float(fraction), message)

    def _work(self) -> None:
        from viewer.io.api import load_volume, scan_series

        try:
            key = None
            if self.path.is_dir():
                series = scan_series(self.path, progress=lambda f, m: self._report(0.1 * f, m))
                if len(series) != 1:
                    self._future.set_result(None)
                    return
                key = series[0].key
            vol = load_volume(self.path, series=key, progress=self._report)
            self._future.set_result((vol, key))
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting load
            self._future.set_exception(exc)

    def cancel(self) -> None:
        """Stop the read at its next progress step (its result is then never used)."""
        self._cancel.set()

    def done(self) -> bool:
        return self._future.done()

    def wait(self, progress: ProgressFn | None = None) -> tuple[Volume, str | None] | None:
        while True:
            try:
                return self._future.result(timeout=0.05)
            except FutureTimeout:
                if progress is not None:
                    with self._lock:
                        fraction, message = self._progress
                    try:
                        progress(fraction, message)
                    except LoadCancelled:
                        self.cancel()
                        raise


__all__ = ["PrefetchedLoad"]
