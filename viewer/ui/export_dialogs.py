"""File-menu dialogs for export, sessions and custom presets.

Each function takes the main window and runs one action; the window's File menu calls
them by name (``export_image``, ``export_report_sheet``, ``export_movie``,
``save_session``, ``open_session``, ``save_preset``; the ``*_dialog`` names are the same
functions). They use only the window's public parts: ``state`` (a
:class:`~viewer.core.state.ViewerState`), ``scene`` (the renderer's Scene),
``current_source`` (what the scan was opened from), ``presets`` / ``controls`` and
``statusBar()``; anything missing is tolerated.

The work itself is ``viewer.export`` (plain functions, also used by ``vessel-viewer
render``). Stills render on the GUI thread (one offscreen frame through the scene's
offscreen twin); movies and session loads run on a worker thread
(:class:`~viewer.ui.workers.TaskThread`) with a progress dialog and Cancel. A movie
renders its own offscreen copy of the scene, so the on-screen view stays usable and
is never touched from the worker.

For tests and scripting every dialog can be skipped by passing ``path`` (and the
options) directly.

Identity: the "include patient identity" box is unchecked every time a dialog opens;
nothing identifying is written unless it is ticked for that export.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEventLoop, Qt
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QInputDialog,
    QLineEdit,
    QMessageBox,
    QProgressDialog,
    QSpinBox,
    QWidget,
)

from viewer.core.errors import ViewerError
from viewer.core.presets import list_presets, preset_file_name, user_preset_dir
from viewer.core.presets import save_preset as write_preset_file
from viewer.core.session import Session, load_session
from viewer.core.session import save_session as write_session_file
from viewer.export.image import ExportOptions, FigureContext
from viewer.export.image import export_image as _export_image
from viewer.export.movie import AXES_LPS, MovieResult, export_threshold_sweep, export_turntable
from viewer.export.sessions import open_source, planning_fields, session_camera, session_fields, source_spec
from viewer.export.sheet import export_report_sheet as _export_report_sheet
from viewer.render.scene_adapter import Overlays, reset
from viewer.ui.workers import TaskThread

log = logging.getLogger(__name__)

TITLE = "Vessel-bone CTA viewer"
IMAGE_FILTER = "PNG image (*.png);;JPEG image (*.jpg *.jpeg);;TIFF image (*.tif *.tiff)"
MOVIE_FILTER = "MP4 video (*.mp4);;Animated GIF (*.gif)"
SESSION_FILTER = "Vessel viewer session (*.json);;All files (*)"


# ----------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------
def _state(window: Any) -> Any:
    st = getattr(window, "state", None)
    if st is None:
        raise ViewerError("the window has no viewer state")
    return st


def _require_volume(window: Any) -> Any:
    vol = getattr(_state(window), "volume", None)
    if vol is None:
        raise ViewerError("open a scan first")
    return vol


def _status(window: Any, text: str) -> None:
    sb = getattr(window, "statusBar", None)
    if callable(sb):
        sb().showMessage(text, 8000)


def _view_size(window: Any) -> tuple[int, int]:
    """The 3D view's size in pixels (the base of the resolution multiplier)."""
    view = getattr(window, "view3d", None)
    if view is not None:
        w, h = int(view.width()), int(view.height())
        if w >= 16 and h >= 16:
            return w, h
    return 960, 540


def _context(window: Any) -> FigureContext:
    st = _state(window)
    return FigureContext(
        transfer_function=st.transfer_function,
        preset_name=getattr(st, "preset_name", "") or st.transfer_function.name,
        volume=st.volume,
        crop_box_lps=getattr(st, "crop_box_lps", None),
        clip_plane=getattr(st, "clip_plane", None),
    )


def _last_folder(window: Any) -> str:
    s = getattr(window, "settings", None)
    if s is not None:
        return str(s.value("last_export_folder", str(Path.home())))
    return str(Path.home())


def _remember_folder(window: Any, path: Path) -> None:
    s = getattr(window, "settings", None)
    if s is not None:
        s.setValue("last_export_folder", str(path.parent))


def _ask_save_path(window: Any, caption: str, name: str, filters: str) -> Path | None:
    path, _ = QFileDialog.getSaveFileName(window, caption, str(Path(_last_folder(window)) / name), filters)
    return Path(path) if path else None


class ExportOptionsDialog(QDialog):
    """Overlay and size options for a figure or sheet (or a movie's frames)."""

    def __init__(self, parent: QWidget | None, title: str, base_size: tuple[int, int], *, movie: bool = False) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.movie = movie
        form = QFormLayout(self)
        self.width_spin = QSpinBox()
        self.width_spin.setRange(16, 8192)
        self.width_spin.setValue(base_size[0])
        self.height_spin = QSpinBox()
        self.height_spin.setRange(16, 8192)
        self.height_spin.setValue(base_size[1])
        form.addRow("Width (px)", self.width_spin)
        form.addRow("Height (px)", self.height_spin)
        self.scale_combo = QComboBox()
        for s in (1, 2, 3, 4):
            self.scale_combo.addItem(f"{s}x", s)
        self.scale_combo.setToolTip("Rendered at this multiple of the size above (same framing, more pixels)")
        self.transparent = QCheckBox("Transparent background (PNG/TIFF)")
        if not movie:
            form.addRow("Resolution", self.scale_combo)
            form.addRow(self.transparent)
        self.labels = QCheckBox("Orientation labels (A/P/L/R/S/I)")
        self.labels.setChecked(True)
        self.marker = QCheckBox("Orientation cube")
        self.scale_bar = QCheckBox("Scale bar (renders in parallel projection, exact)")
        self.caption = QCheckBox("Caption: preset and thresholds")
        self.caption.setChecked(True)
        self.caption_text = QLineEdit()
        self.caption_text.setPlaceholderText("extra caption text (optional)")
        self.identity = QCheckBox("Include patient identity (name, ID, birth date)")
        self.identity.setChecked(False)
        self.identity.setToolTip("Off by default: figures leave the hospital in papers and lectures")
        for w in (self.labels, self.marker, self.scale_bar, self.caption):
            form.addRow(w)
        form.addRow("Caption text", self.caption_text)
        form.addRow(self.identity)
        if movie:
            self.kind = QComboBox()
            self.kind.addItem("Turntable", "turntable")
            self.kind.addItem("Threshold sweep (vessels appear)", "sweep")
            self.axis = QComboBox()
            for a in AXES_LPS:
                self.axis.addItem(a, a)
            self.duration = QDoubleSpinBox()
            self.duration.setRange(0.2, 120.0)
            self.duration.setValue(6.0)
            self.duration.setSuffix(" s")
            self.fps = QSpinBox()
            self.fps.setRange(1, 60)
            self.fps.setValue(15)
            # Threshold sweep: the vessel window's low end moves from ... to ... HU.
            lo, hi = _window_of(parent)
            self.sweep_start = QDoubleSpinBox()
            self.sweep_end = QDoubleSpinBox()
            for spin, value in ((self.sweep_start, hi - 1.0), (self.sweep_end, lo)):
                spin.setRange(-1024.0, hi - 1.0)
                spin.setDecimals(0)
                spin.setSuffix(" HU")
                spin.setValue(value)
            self.sweep_start.setToolTip("Window low end at the first frame (high: almost nothing shows)")
            self.sweep_end.setToolTip("Window low end at the last frame (the vessels have appeared)")
            form.addRow("Movie", self.kind)
            form.addRow("Rotation axis", self.axis)
            form.addRow("Sweep from", self.sweep_start)
            form.addRow("Sweep to", self.sweep_end)
            form.addRow("Duration", self.duration)
            form.addRow("Frame rate", self.fps)

            def _enable(_i: int = 0) -> None:
                sweep = self.kind.currentData() == "sweep"
                self.axis.setEnabled(not sweep)
                self.sweep_start.setEnabled(sweep)
                self.sweep_end.setEnabled(sweep)

            self.kind.currentIndexChanged.connect(_enable)
            _enable()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def options(self) -> ExportOptions:
        return ExportOptions(
            width=self.width_spin.value(),
            height=self.height_spin.value(),
            scale=1.0 if self.movie else float(self.scale_combo.currentData()),
            transparent=False if self.movie else self.transparent.isChecked(),
            orientation_labels=self.labels.isChecked(),
            orientation_marker=self.marker.isChecked(),
            scale_bar=self.scale_bar.isChecked(),
            caption=self.caption.isChecked(),
            caption_text=self.caption_text.text().strip(),
            show_identity=self.identity.isChecked(),
        )


def _window_of(window: Any) -> tuple[float, float]:
    """The current vessel window (HU) of the window's state, or the default's."""
    try:
        lo, hi = _state(window).transfer_function.vessel_window_hu
        return float(lo), float(hi)
    except Exception:  # noqa: BLE001 - a dialog default, nothing depends on it
        return 170.0, 600.0


def _ask_options(window: Any, title: str, movie: bool = False) -> ExportOptionsDialog | None:
    dlg = ExportOptionsDialog(window, title, _view_size(window), movie=movie)
    if dlg.exec() != QDialog.DialogCode.Accepted:
        return None
    return dlg


def _run_with_progress(
    window: Any, title: str, work: Callable[[Any], Any], on_done: Callable[[Any], None], wait: bool = False
) -> TaskThread:
    """Run ``work(progress)`` on a TaskThread with a modal progress dialog and Cancel."""
    dlg = QProgressDialog(title, "Cancel", 0, 1000, window)
    dlg.setWindowTitle(TITLE)
    dlg.setWindowModality(Qt.WindowModality.WindowModal)
    dlg.setMinimumDuration(0)
    dlg.setAutoClose(False)
    dlg.setAutoReset(False)
    thread = TaskThread(work, title)
    dlg.canceled.connect(thread.cancel)

    def progressed(f: float, msg: str) -> None:
        dlg.setValue(int(f * 1000))
        if msg:
            dlg.setLabelText(f"{title}\n{msg}")

    def finish() -> None:
        dlg.close()
        dlg.deleteLater()

    def failed(exc: Any) -> None:
        finish()
        QMessageBox.critical(window, TITLE, str(exc))
        _status(window, f"{title}: failed")

    def cancelled() -> None:
        finish()
        _status(window, f"{title}: cancelled")

    def succeeded(result: Any) -> None:
        finish()
        on_done(result)

    thread.progressed.connect(progressed)
    thread.succeeded.connect(succeeded)
    thread.failed.connect(failed)
    thread.cancelled.connect(cancelled)
    # Keep the thread referenced until it ends (a running QThread must not be destroyed).
    jobs = getattr(window, "_export_jobs", None)
    if jobs is None:
        jobs = []
        try:
            window._export_jobs = jobs
        except AttributeError:
            pass
    jobs.append(thread)
    thread.finished.connect(lambda: jobs.remove(thread) if thread in jobs else None)
    dlg.show()
    thread.start()
    if wait:
        thread.wait()
    return thread


# ----------------------------------------------------------------------------------
# stills
# ----------------------------------------------------------------------------------
def _ask_still(
    window: Any, title: str, default_name: str, path: str | Path | None, options: ExportOptions | None
) -> tuple[Path, ExportOptions] | None:
    """Options, then a file name (PNG unless the name says JPEG/TIFF); None if cancelled."""
    _require_volume(window)
    if options is None:
        dlg = _ask_options(window, title)
        if dlg is None:
            return None
        options = dlg.options()
    if path is None:
        path = _ask_save_path(window, title, default_name, IMAGE_FILTER)
        if path is None:
            return None
    p = Path(path)
    if not p.suffix:
        p = p.with_suffix(".png")
    return p, options


def export_image_dialog(
    window: Any, path: str | Path | None = None, options: ExportOptions | None = None
) -> Path | None:
    """File > Export image: options, then a file name; PNG unless the name says JPEG/TIFF."""
    asked = _ask_still(window, "Export image", "figure.png", path, options)
    if asked is None:
        return None
    p, options = asked
    if _render_still(window, "Export image", lambda scene: _export_image(scene, p, _context(window), options)) is None:
        return None
    _remember_folder(window, p)
    w, h = options.size_px
    _status(window, f"Exported {p.name} ({w} x {h})")
    return p


def report_sheet_dialog(
    window: Any, path: str | Path | None = None, options: ExportOptions | None = None
) -> Path | None:
    """File > Export report sheet: anterior, posterior, medial and lateral in one image."""
    asked = _ask_still(window, "Export report sheet", "report_sheet.png", path, options)
    if asked is None:
        return None
    p, options = asked
    ctx = _context(window)
    if _render_still(window, "Export report sheet", lambda scene: _export_report_sheet(scene, p, ctx, options)) is None:
        return None
    _remember_folder(window, p)
    _status(window, f"Exported report sheet {p.name}")
    return p


def _render_still(window: Any, title: str, render: Callable[[Any], Any]) -> Any:
    """``render(scene)`` on a worker thread, on an offscreen copy of the window's scene
    (:func:`_scene_copy`), with the progress
    dialog; the window stays live meanwhile (a local event loop waits for it). A
    real-size scan's first still computes the copy's shading gradients: 2-3 s that
    froze the window when the still was rendered on the GUI thread. Returns what
    ``render`` returned, or None when it failed (said in a message box) or was
    cancelled; a failure to make the copy is raised."""
    clone = _scene_copy(window)
    outcome: dict[str, Any] = {}

    def work(progress: Any) -> Any:
        progress(0.1, "rendering")
        return render(clone)

    loop = QEventLoop()
    try:
        thread = _run_with_progress(window, title, work, lambda result: outcome.setdefault("result", result))
    except BaseException:
        clone.close()
        raise
    try:
        thread.finished.connect(loop.quit)
        if not thread.isFinished():
            loop.exec()
        QApplication.processEvents()  # (the thread's result signal, queued to this thread)
    finally:
        # closed here, on the thread that made it (as a movie's copy)
        thread.wait()
        clone.close()
    return outcome.get("result")


# ----------------------------------------------------------------------------------
# movies
# ----------------------------------------------------------------------------------
def _scene_copy(window: Any) -> Any:
    """An offscreen copy of the window's scene for a still or movie rendered on a worker
    thread (it shares the window scene's scalars buffer and copies its meshes).

    Built on the GUI thread from the window's state (through the one state-to-scene
    adapter, masks only from the mask controller, as the 3D view does); only the worker
    renders it, so the on-screen scene is never touched off the GUI thread."""
    from viewer.render.scene import Scene

    src = window.scene
    view = getattr(window, "view3d", None)
    overlays = Overlays(getattr(view, "show_entry_points", True), getattr(view, "show_centrelines", True))
    clone = Scene(offscreen=True)
    try:
        reset(
            clone,
            _state(window),
            camera=src.camera_state(),
            overlays=overlays,
            own_masks=False,
            colour_max_mm=src.vessel_colouring[1],
            like=src,
        )
        clone.renderer.SetBackground(*src.renderer.GetBackground())
    except BaseException:
        clone.close()
        raise
    return clone


def movie_dialog(
    window: Any,
    path: str | Path | None = None,
    options: ExportOptions | None = None,
    *,
    kind: str = "turntable",
    axis: str = "superior-inferior",
    duration_s: float = 6.0,
    fps: float = 15.0,
    sweep_hu: tuple[float, float] | None = None,
    wait: bool = False,
    on_done: Callable[[MovieResult], None] | None = None,
) -> TaskThread | None:
    """File > Export movie: a turntable or a threshold sweep to MP4/GIF, on a worker
    thread with a progress dialog and Cancel. Returns the running thread.
    ``sweep_hu``: (first, last) low end of the vessel window for a sweep (default:
    from just below the window's high end to its low end)."""
    _require_volume(window)
    if options is None:
        dlg = _ask_options(window, "Export movie", movie=True)
        if dlg is None:
            return None
        options = dlg.options()
        kind = dlg.kind.currentData()
        axis = dlg.axis.currentData()
        duration_s = dlg.duration.value()
        fps = float(dlg.fps.value())
        sweep_hu = (dlg.sweep_start.value(), dlg.sweep_end.value())
    if path is None:
        path = _ask_save_path(
            window, "Export movie", "turntable.mp4" if kind == "turntable" else "sweep.mp4", MOVIE_FILTER
        )
        if path is None:
            return None
    p = Path(path)
    if not p.suffix:
        p = p.with_suffix(".mp4")
    ctx = _context(window)
    clone = _scene_copy(window)

    def work(progress: Any) -> MovieResult:
        if kind == "sweep":
            start, end = sweep_hu if sweep_hu is not None else (None, None)
            return export_threshold_sweep(
                clone,
                p,
                ctx,
                duration_s=duration_s,
                fps=fps,
                opts=options,
                progress=progress,
                start_low_hu=start,
                end_low_hu=end,
            )
        return export_turntable(
            clone, p, ctx, duration_s=duration_s, fps=fps, axis=axis, opts=options, progress=progress
        )

    def done(result: MovieResult) -> None:
        _remember_folder(window, p)
        _status(window, f"Exported {p.name}: {result.n_frames} frames at {result.fps:g} frames/s")
        if on_done is not None:
            on_done(result)

    thread = _run_with_progress(window, "Exporting movie", work, done, wait=wait)
    thread.finished.connect(clone.close)
    if wait:
        clone.close()
    return thread


# ----------------------------------------------------------------------------------
# sessions and presets
# ----------------------------------------------------------------------------------
def current_session(window: Any) -> Session:
    """The session describing what the window shows now."""
    st = _state(window)
    vol = _require_volume(window)
    data_path, series = source_spec(getattr(window, "current_source", None), vol)
    tf = st.transfer_function
    clip = getattr(st, "clip_plane", None)
    return Session(
        data_path=data_path,
        series=series,
        preset_name=getattr(st, "preset_name", "") or tf.name,
        transfer_function=tf,
        separated=tf.separated,
        camera=window.scene.camera_state().to_dict(),
        crop_box_lps=getattr(st, "crop_box_lps", None),
        clip_plane=clip,
        layout=getattr(st, "layout", "3d"),
        **planning_fields(st),
    )


def save_session_dialog(window: Any, path: str | Path | None = None) -> Path | None:
    """File > Save session: data path, series, preset, full transfer function, separated
    mode, camera, crop box, clip plane and layout, written atomically."""
    session = current_session(window)
    if path is None:
        path = _ask_save_path(window, "Save session", "session.json", SESSION_FILTER)
        if path is None:
            return None
    p = Path(path)
    if not p.suffix:
        p = p.with_suffix(".json")
    write_session_file(session, p)
    _remember_folder(window, p)
    _status(window, f"Saved session {p.name}")
    return p


def apply_session_to_window(window: Any, session: Session, volume: Any) -> None:
    """Show ``volume`` and restore the session's view in the window (GUI thread)."""
    st = _state(window)
    if hasattr(window, "current_source"):
        if session.data_path.startswith("phantom"):
            size = session.data_path.split(":", 1)[1] if ":" in session.data_path else "default"
            window.current_source = {"kind": "phantom", "size": size}
        else:
            window.current_source = {"kind": "path", "path": session.data_path, "series": session.series}
    hist_widget = getattr(getattr(window, "controls", None), "histogram", None)
    if hist_widget is not None and hasattr(hist_widget, "set_histogram"):
        try:
            from viewer.core.thresholds import histogram

            hist_widget.set_histogram(*histogram(volume.hu, bins=410, hu_range=(-1024.0, 3076.0)))
        except Exception:  # noqa: BLE001 - the histogram is a nicety; the view matters
            log.exception("histogram for the session's scan failed")
    if hasattr(window, "set_volume"):
        window.set_volume(volume)
    else:
        st.volume = volume
    st.update(**session_fields(session))
    try:
        st.layout = session.layout
    except ValueError:
        log.warning("session layout %r is not one this window knows; kept %r", session.layout, st.layout)
    cam = session_camera(session)
    if cam is not None:
        window.scene.set_camera_state(cam)
    else:
        window.scene.set_view("anterior")
    view = getattr(window, "view3d", None)
    if view is not None and hasattr(view, "request_render"):
        view.request_render()
    else:
        window.scene.request_render()


def open_session_dialog(
    window: Any,
    path: str | Path | None = None,
    wait: bool = False,
    on_done: Callable[[Any], None] | None = None,
) -> TaskThread | None:
    """File > Open session: read and check the file (a missing scan or a newer format is
    a clear message), load its scan on a worker thread, then restore the view.

    ``on_done(volume)`` is called once the view is restored (connected before the
    thread starts: a signal connected to the returned, already running thread could
    be emitted before the connection is made)."""
    if path is None:
        p, _ = QFileDialog.getOpenFileName(window, "Open session", _last_folder(window), SESSION_FILTER)
        if not p:
            return None
        path = p
    session = load_session(path)

    def work(progress: Any) -> Any:
        return open_source(session.data_path, session.series, progress)

    def done(volume: Any) -> None:
        apply_session_to_window(window, session, volume)
        _status(window, f"Opened session {Path(path).name}")
        if on_done is not None:
            on_done(volume)

    return _run_with_progress(window, "Opening session", work, done, wait=wait)


def save_preset_dialog(window: Any, name: str | None = None, overwrite: bool | None = None) -> Path | None:
    """Tools/File > Save preset: the current transfer function under a name, in the
    user's preset folder; it then appears in the preset picker."""
    st = _state(window)
    if name is None:
        text, ok = QInputDialog.getText(window, "Save preset", "Preset name:", text=f"{st.preset_name} (custom)")
        if not ok or not text.strip():
            return None
        name = text.strip()
    name = name.strip()
    if not name:
        raise ViewerError("a preset needs a name")
    target = user_preset_dir() / preset_file_name(name)
    if target.exists():
        if overwrite is None:
            answer = QMessageBox.question(window, "Save preset", f"A preset file {target.name} exists. Replace it?")
            overwrite = answer == QMessageBox.StandardButton.Yes
        if not overwrite:
            return None
    tf = st.transfer_function.with_changes(name=name)
    write_preset_file(tf, target)
    presets = list_presets()
    if hasattr(window, "presets"):
        window.presets = presets
    controls = getattr(window, "controls", None)
    st.update(transfer_function=tf, preset_name=name)
    if controls is not None and hasattr(controls, "set_presets"):
        controls.set_presets(presets)
    _status(window, f"Saved preset '{name}' to {target}")
    return target


# The names the main window's File menu looks up.
export_image = export_image_dialog
export_report_sheet = report_sheet_dialog
export_movie = movie_dialog
save_session = save_session_dialog
open_session = open_session_dialog
save_preset = save_preset_dialog

__all__ = [
    "ExportOptionsDialog",
    "apply_session_to_window",
    "current_session",
    "export_image",
    "export_image_dialog",
    "export_movie",
    "export_report_sheet",
    "movie_dialog",
    "open_session",
    "open_session_dialog",
    "report_sheet_dialog",
    "save_preset",
    "save_preset_dialog",
    "save_session",
    "save_session_dialog",
]
