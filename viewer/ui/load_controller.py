"""The load controller: opening a scan or the phantom in the background.

One load at a time. :meth:`LoadController.open_path` scans a DICOM folder (several
series: the ``choose_series`` callback asks the user) or reads a volume file;
:meth:`LoadController.open_phantom` generates the built-in phantom. The work runs on a
:class:`~viewer.ui.workers.TaskThread` as plain synchronous functions; it ends with
:func:`finish_volume` (histogram, and the class masks when separated mode is on, so the
first frame of a new scan is already separated; the mask controller says which).

What it reports (signals, on the GUI thread), for the current load only:

* ``started(message)`` when a load starts, ``progressed(fraction, message)``;
* ``busy_changed(bool)``: a load runs (False before any outcome below);
* ``loaded(result, source)``: ``result`` is ``(volume, (counts, edges), masks or None)``,
  ``source`` what it came from (``{"kind": "path", "path", "series"}`` or
  ``{"kind": "phantom", "size"}``);
* ``failed(message)``: the message names the file;
* ``cancelled()``: once, when :meth:`cancel` stopped a load.

A load started while another runs replaces it: the older one is cancelled and its
outcome, whenever it arrives, is dropped (no ``cancelled`` for it: the user did not ask).
Every thread stays referenced until it has ended (a running QThread whose Python object
is collected aborts the process). It needs no window: tests drive it directly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from viewer.core.errors import ViewerError
from viewer.core.extraction import ClassMasks
from viewer.core.mask_policy import MaskSettings
from viewer.core.progress import ProgressFn
from viewer.core.thresholds import histogram
from viewer.core.volume import Volume
from viewer.io.prefetch import PrefetchedLoad
from viewer.ui.mask_controller import compute_masks
from viewer.ui.workers import TaskThread

#: Histogram bins: 10 HU wide over -1024..3071 HU.
HIST_BINS = 410
HIST_RANGE_HU = (-1024.0, 3076.0)

#: What a load returns: the volume, its histogram (counts, edges), and the class masks
#: (None when not in separated mode).
LoadResult = tuple[Volume, tuple[np.ndarray, np.ndarray], "ClassMasks | None"]
#: ``choose_series(folder, series, thumbnails)``: the series to open, or None to stop.
ChooseSeries = Callable[[Path, Sequence[Any], Sequence[Any]], Any]
#: ``on_generated(volume, landmarks)``: called on the worker with a freshly made phantom.
OnGenerated = Callable[[Volume, Any], None]


def volume_histogram(volume: Volume) -> tuple[np.ndarray, np.ndarray]:
    """The histogram the controls panel shows (10 HU bins)."""
    return histogram(volume.hu, bins=HIST_BINS, hu_range=HIST_RANGE_HU)


#: Volumes up to this many voxels (the default phantom's 30.6 M) come with their class
#: masks, so their first frame is already separated. Bigger ones (a 512 x 512 x 600 scan
#: is 157 M voxels: seconds of separation) are published without: the window draws
#: them at once (bone only, no vessel colour until the separation says what is vessel)
#: while the mask controller separates them off the GUI thread (issue 9: first frame).
LOAD_MASKS_MAX_VOXELS = 1 << 25


def finish_volume(
    volume: Volume,
    settings: MaskSettings | tuple[float, tuple[float, float], bool, bool] | None,
    progress: ProgressFn,
) -> LoadResult:
    """The rest of a load, still on the worker thread: the histogram, and the class
    masks for ``settings`` (None: not in separated mode) when the volume has at most
    ``LOAD_MASKS_MAX_VOXELS`` voxels."""
    hist = volume_histogram(volume)
    masks = None
    if settings is not None and volume.hu.size <= LOAD_MASKS_MAX_VOXELS:
        progress(0.9, "Separating bone, vessels and calcification")
        # The load's progress (which raises LoadCancelled once the user cancels) reaches
        # the separation's stages, so Cancel works during this step too.
        masks = compute_masks(volume, MaskSettings.coerce(settings), lambda f, msg: progress(0.9 + 0.1 * f, msg))
    progress(1.0, "")
    return volume, hist, masks


#: Warnings that change what the voxels mean (interpolated, resampled, dropped or
#: conflicting slices): a surgeon must see these, not just a status-bar line.
GEOMETRY_WARNING_WORDS = ("missing slice", "interpolat", "resampl", "gantry tilt", "duplicate", "conflict")


def serious_geometry_warnings(volume: Volume) -> list[str]:
    """The load warnings of ``volume`` that change what its voxels mean."""
    return [w for w in volume.warnings if any(k in w.lower() for k in GEOMETRY_WARNING_WORDS)]


def first_series(_folder: Path, series: Sequence[Any], _thumbnails: Sequence[Any]) -> Any:
    """The default series choice (no dialog): the first one."""
    return series[0]


def _naming(message: str, path: Path | None) -> str:
    """``message``, prefixed with the file's path unless it names the file already."""
    if path is None or path.name in message:
        return message
    return f"{path}: {message}"


class LoadController(QObject):
    """Runs one background load at a time; see the module docstring for its signals."""

    started = Signal(str)
    progressed = Signal(float, str)
    busy_changed = Signal(bool)
    loaded = Signal(object, object)
    failed = Signal(str)
    cancelled = Signal()

    def __init__(
        self,
        parent: QObject | None = None,
        *,
        mask_settings: Callable[[], MaskSettings | None] | None = None,
        choose_series: ChooseSeries | None = None,
    ) -> None:
        super().__init__(parent)
        self._mask_settings = mask_settings if mask_settings is not None else (lambda: None)
        self.choose_series: ChooseSeries = choose_series if choose_series is not None else first_series
        self._thread: TaskThread | None = None
        self._live: set[TaskThread] = set()

    # ----- state --------------------------------------------------------------------
    @property
    def loading(self) -> bool:
        """A load runs (one that was cancelled or replaced does not count)."""
        return self._thread is not None

    @property
    def background_threads(self) -> int:
        """Load threads still running, cancelled and replaced ones included."""
        return len(self._live)

    # ----- opening ------------------------------------------------------------------
    def open_path(self, path: str | Path, prefetched: PrefetchedLoad | None = None) -> None:
        """Open a DICOM folder (scanned first; several series -> ``choose_series``) or a
        volume file.

        ``prefetched``: the same path already being read (the application starts reading
        it before Qt and VTK are imported, see ``viewer.app``); the load waits for it,
        cancellable, and falls back to the usual scan for a folder of several series."""
        p = Path(path)
        if not p.exists():
            self.failed.emit(str(ViewerError("no such file or folder", p)))
            return
        if prefetched is not None and prefetched.path == p:
            self._adopt_prefetch(p, prefetched)
        elif p.is_dir():
            self._start(_scan_work(p), f"Scanning {p.name}...", lambda r: self._on_scanned(p, r[0], r[1]), p)
        else:
            self.load_file(p, None)

    def load_file(self, path: Path, series: Any | None) -> None:
        """Load ``path`` (a file, or a folder with the ``series`` chosen in it)."""
        from viewer import io as vio

        settings = self._mask_settings()
        key = None if series is None else series.key

        def load(progress: ProgressFn) -> LoadResult:
            vol = vio.load_volume(path, series=key, progress=lambda f, m: progress(0.9 * f, m))
            return finish_volume(vol, settings, progress)

        source = {"kind": "path", "path": str(path), "series": getattr(series, "key", None)}
        self._start(load, f"Loading {path.name}...", lambda r: self.loaded.emit(r, source), path)

    def _adopt_prefetch(self, path: Path, prefetched: PrefetchedLoad) -> None:
        settings = self._mask_settings()
        several = object()  # a folder of several series: the user chooses

        def load(progress: ProgressFn) -> Any:
            got = prefetched.wait(lambda f, m: progress(0.9 * f, m))
            if got is None:
                return several
            vol, key = got
            return finish_volume(vol, settings, progress), key

        def done(result: Any) -> None:
            if result is several:
                self.open_path(path)
                return
            loaded, key = result
            self.loaded.emit(loaded, {"kind": "path", "path": str(path), "series": key})

        self._start(load, f"Loading {path.name}...", done, path)

    def open_phantom(
        self,
        size: str = "default",
        prefetched: Future[Volume] | None = None,
        on_generated: OnGenerated | None = None,
    ) -> None:
        """Generate the built-in lower-leg phantom (``"default"`` or ``"small"``).

        ``prefetched``: a future of the same phantom already being generated (the
        application starts it before Qt and VTK are imported, see ``viewer.app``); the
        load waits for it, cancellable. ``on_generated(volume, landmarks)`` runs on the
        worker when the phantom is made here (its landmarks without regenerating)."""
        settings = self._mask_settings()

        def gen(progress: ProgressFn) -> LoadResult:
            # (imported here, on the worker: the generator's import took 0.23-0.27 s,
            # the GUI thread's longest stall of a first phantom load)
            from viewer import phantom

            if prefetched is not None:
                progress(0.1, "generating the phantom")
                while True:  # wait, but stay cancellable
                    try:
                        vol = prefetched.result(timeout=0.05)
                        break
                    except FutureTimeout:
                        progress(0.1, "generating the phantom")
            else:
                ph = phantom.generate(size=size, progress=lambda f, m: progress(0.8 * f, m))
                vol = ph.volume
                if on_generated is not None:
                    on_generated(vol, ph.landmarks)
            return finish_volume(vol, settings, progress)

        source = {"kind": "phantom", "size": size}
        label = "small lower-leg phantom" if size == "small" else "lower-leg phantom"
        self._start(gen, f"Generating the {label}...", lambda r: self.loaded.emit(r, source), None)

    def cancel(self) -> None:
        """Cancel the running load, if any: its result is ignored; ``cancelled`` once."""
        t = self._thread
        if t is None:
            return
        t.cancel()
        # Drop our interest now: its late signals find self._thread changed (the thread
        # itself stays in self._live until it ends).
        self._thread = None
        self.busy_changed.emit(False)
        self.cancelled.emit()

    def shutdown(self, timeout_ms: int = 15000) -> None:
        """Cancel the load and wait for every load thread (call before quitting)."""
        self.cancel()
        for t in list(self._live):
            t.wait(timeout_ms)
        self._live.clear()

    # ----- the thread ---------------------------------------------------------------
    def _supersede(self) -> None:
        """Cancel the running load without reporting it (a new one replaces it)."""
        t, self._thread = self._thread, None
        if t is not None:
            t.cancel()
            self.busy_changed.emit(False)

    def _start(
        self, work: Callable[[ProgressFn], Any], message: str, on_done: Callable[[Any], None], path: Path | None
    ) -> None:
        self._supersede()
        thread = TaskThread(work, "load")

        def progressed(fraction: float, text: str) -> None:
            if thread is self._thread:
                self.progressed.emit(fraction, text)

        def succeeded(result: Any) -> None:
            if self._end(thread):
                on_done(result)

        def failed(error: Any) -> None:
            if self._end(thread):
                self.failed.emit(_naming(str(error), path))

        def cancelled() -> None:
            # A cancel asked through cancel() was reported then; this is only for work
            # that gave up by itself (LoadCancelled raised inside it).
            if self._end(thread):
                self.cancelled.emit()

        thread.progressed.connect(progressed)
        thread.succeeded.connect(succeeded)
        thread.failed.connect(failed)
        thread.cancelled.connect(cancelled)
        self._live.add(thread)
        thread.finished.connect(lambda: self._reap(thread))
        self._thread = thread
        self.busy_changed.emit(True)
        self.started.emit(message)
        thread.start()

    def _end(self, thread: TaskThread) -> bool:
        """Whether ``thread`` was the current load (then it no longer is)."""
        if self._thread is not thread:
            return False
        self._thread = None
        self.busy_changed.emit(False)
        return True

    def _reap(self, thread: TaskThread) -> None:
        self._live.discard(thread)
        thread.deleteLater()

    def _on_scanned(self, folder: Path, series: Sequence[Any], thumbnails: Sequence[Any]) -> None:
        if not series:
            self.failed.emit(str(ViewerError("no readable image series found", folder)))
            return
        chosen = series[0] if len(series) == 1 else self.choose_series(folder, series, thumbnails)
        if chosen is not None:
            self.load_file(folder, chosen)


def _scan_work(folder: Path) -> Callable[[ProgressFn], Any]:
    """The work of scanning ``folder``: its series, and thumbnails when there are several
    (the user will have to choose; one file each)."""

    def scan(progress: ProgressFn) -> tuple[list[Any], list[Any]]:
        from viewer import io as vio
        from viewer.io.thumbnails import series_thumbnail

        series = vio.scan_series(folder, progress=lambda f, m: progress(0.9 * f, m))
        thumbs = [series_thumbnail(s) for s in series] if len(series) > 1 else []
        return series, thumbs

    return scan


__all__ = [
    "GEOMETRY_WARNING_WORDS",
    "HIST_BINS",
    "HIST_RANGE_HU",
    "LoadController",
    "LoadResult",
    "LOAD_MASKS_MAX_VOXELS",
    "finish_volume",
    "first_series",
    "serious_geometry_warnings",
    "volume_histogram",
]
