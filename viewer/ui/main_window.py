"""The main window: menus, the 3D and slice views, the controls dock, the status bar.

The window owns one :class:`ViewerState`; everything on screen subscribes to it. It
composes the parts that do the work and shows what they report:

* :class:`~viewer.ui.load_controller.LoadController` opens a scan or the phantom in
  the background (progress, cancel, errors naming the file);
* :class:`~viewer.ui.mask_controller.MaskController` keeps ``state.class_masks``
  fitting the scan and thresholds (the one mask policy, computed off the GUI thread);
* :mod:`viewer.ui.actions` builds the menus and their actions.

A failed load shows its message in a dialog and leaves the previous scan on screen.
See ``docs/architecture.md`` for the data flow.

Privacy: patient name and ID (``Volume.identity``) appear nowhere (title bar, status
bar, dialogs) unless View > Show patient identity is checked; the title shows the
series description only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QGridLayout,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QWidget,
)

from viewer.core.errors import ViewerError
from viewer.core.extraction import ClassMasks
from viewer.core.presets import default_preset_name, list_presets
from viewer.core.state import ViewerState
from viewer.core.thresholds import suggest_thresholds
from viewer.core.transfer import TransferFunction
from viewer.core.volume import Volume
from viewer.io.prefetch import PrefetchedLoad
from viewer.render import scene_adapter
from viewer.ui.actions import APP_TITLE, RecentFiles, add_action, build_menus
from viewer.ui.controls import ControlsPanel
from viewer.ui.dialogs import SeriesPickerDialog
from viewer.ui.lesion_panel import LesionController, install_lesion_planning
from viewer.ui.load_controller import (
    LoadController,
    LoadResult,
    finish_volume,
    serious_geometry_warnings,
    volume_histogram,
)
from viewer.ui.mask_controller import MaskController
from viewer.ui.slice_view import AXES, SliceViewWidget
from viewer.ui.view3d import View3DWidget
from viewer.ui.workers import LatestOnlyRunner

log = logging.getLogger(__name__)

#: File-dialog filter for single-file volumes (the loader decides by content/extension).
VOLUME_FILTER = "Volumes (*.nii *.nii.gz *.nrrd *.nhdr *.mha *.mhd *.dcm);;All files (*)"

#: Kept for callers of the old names (the load's last step moved to the load controller).
_finish_volume = finish_volume


class MainWindow(QMainWindow):
    """The application window.

    Public for other modules (sessions, export dialogs, tests): :attr:`state`,
    :attr:`scene` (the renderer's Scene), :attr:`view3d`, :attr:`slice_views`,
    :attr:`controls`, the ``action_*`` attributes, :meth:`open_path`,
    :meth:`open_phantom`, :meth:`set_volume`.

    Signals: volume_loaded(volume), load_failed(message), load_cancelled(),
    first_full_frame() (once, after the first full-quality frame of a loaded volume),
    class_masks_ready().
    """

    volume_loaded = Signal(object)
    load_failed = Signal(str)
    load_cancelled = Signal()
    first_full_frame = Signal()
    #: The first frame that shows a newly loaded volume at all (possibly unshaded, or
    #: bone only before its separation: it refines by itself).
    first_frame = Signal()
    #: The first frame of a newly loaded volume in which bone and vessels are told apart
    #: (separated mode: possibly a coarse one from preview masks).
    first_separated_frame = Signal()
    class_masks_ready = Signal()

    #: Set by :func:`viewer.ui.lesion_panel.install_lesion_planning` in ``__init__``.
    lesion_controller: LesionController

    # Menus and actions, set by :func:`viewer.ui.actions.build_menus` in ``__init__``.
    recent_menu: QMenu
    recent: RecentFiles
    export_actions: dict[str, QAction]
    view_actions: dict[str, QAction]
    action_open_folder: QAction
    action_open_file: QAction
    action_phantom: QAction
    action_phantom_small: QAction
    action_import_slicer: QAction
    action_export_slicer: QAction
    action_quit: QAction
    action_layout_3d: QAction
    action_layout_2x2: QAction
    action_toggle_layout: QAction
    action_reset_camera: QAction
    action_crop: QAction
    action_reset_crop: QAction
    action_show_identity: QAction
    action_separated: QAction
    action_suggest: QAction
    action_count_vessels: QAction
    action_cancel: QAction
    action_about: QAction

    def __init__(
        self,
        settings: QSettings | None = None,
        presets: dict[str, TransferFunction] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("main_window")
        self.settings = settings if settings is not None else QSettings()
        self.presets = presets if presets is not None else list_presets()
        start_preset = str(self.settings.value("last_preset", default_preset_name()))
        if start_preset not in self.presets:
            start_preset = default_preset_name()
        if start_preset not in self.presets:
            start_preset = next(iter(self.presets))
        self.state = ViewerState(self.presets[start_preset], preset_name=start_preset)
        self.current_source: dict[str, Any] = {}  # what the current volume came from
        self._first_frame_pending = False
        self._first_full_frame_pending = False
        self._first_separated_frame_pending = False

        self.setWindowTitle(APP_TITLE)
        self.setAcceptDrops(True)
        self.resize(1400, 900)

        # ----- views -----
        self.view3d = View3DWidget(self.state)
        self.scene = self.view3d.scene
        self.slice_views = {axis: SliceViewWidget(self.state, axis) for axis in AXES}
        central = QWidget()
        grid = QGridLayout(central)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(2)
        grid.addWidget(self.view3d, 0, 0)
        grid.addWidget(self.slice_views["axial"], 0, 1)
        grid.addWidget(self.slice_views["coronal"], 1, 0)
        grid.addWidget(self.slice_views["sagittal"], 1, 1)
        self.setCentralWidget(central)

        # ----- controls dock -----
        self.controls = ControlsPanel(self.state, self.presets)
        self.controls.view_direction = lambda: self.scene.camera_state().direction_of_projection
        scroll = QScrollArea()
        scroll.setWidget(self.controls)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(self.controls.sizeHint().width() + 24)
        self.controls_dock = QDockWidget("Controls", self)
        self.controls_dock.setObjectName("controls_dock")
        self.controls_dock.setWidget(scroll)
        self.controls_dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetFloatable
        )
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.controls_dock)

        # ----- status bar -----
        sb = self.statusBar()
        self.hover_label = QLabel("")
        self.hover_label.setObjectName("hover_label")
        self.hover_label.setMinimumWidth(330)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setMaximumWidth(220)
        self.progress_bar.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop loading (Esc)")
        self.cancel_button.clicked.connect(self.cancel_load)
        self.mask_label = QLabel("")
        self.shading_label = QLabel("")
        self.shading_label.setObjectName("shading_label")
        # What the separation found about contrast, for as long as the masks hold
        # (a scan without contrast must not look like a failed separation).
        self.contrast_label = QLabel("")
        self.contrast_label.setObjectName("contrast_label")
        # Busy while the 3D view's scene preparation runs in its worker (issue 9).
        self.scene_label = QLabel("")
        self.scene_label.setObjectName("scene_label")
        sb.addPermanentWidget(self.scene_label)
        sb.addPermanentWidget(self.shading_label)
        sb.addPermanentWidget(self.contrast_label)
        sb.addPermanentWidget(self.mask_label)
        sb.addPermanentWidget(self.hover_label)
        sb.addPermanentWidget(self.progress_bar)
        sb.addPermanentWidget(self.cancel_button)
        self._set_busy(False)

        # ----- workers -----
        # The mask controller owns state.class_masks (computed off the GUI thread,
        # latest request wins); the load controller runs one background load at a time.
        self.mask_controller = MaskController(self.state, self)
        self.mask_controller.masks_ready.connect(self._on_mask_ready)
        # A big scan's first separated frame from masks of every few slices (issue 9),
        # taken back if the full masks fail.
        self.mask_controller.preview_ready.connect(self.view3d.show_preview_masks)
        self.mask_controller.preview_wanted = lambda: self.view3d.scene.mapper_kind == "cpu"
        self.mask_controller.failed.connect(lambda _e: self.view3d.drop_separated_preview())
        self.mask_controller.failed.connect(lambda e: self.statusBar().showMessage(f"Separation failed: {e}", 8000))
        self.mask_controller.busy_changed.connect(
            lambda busy: self.mask_label.setText("Separating bone, vessels, calcification..." if busy else "")
        )
        # Scalars drawn before their masks get their shading when the masks have come
        # (or have failed), not twice (View3DWidget._start_shading).
        self.view3d.masks_expected = lambda: self.mask_controller.busy
        # (after the mask result's own handling: new masks then have their scene
        # preparation under way, and masks_settled leaves the shading to it)
        self.mask_controller.busy_changed.connect(
            lambda busy: None if busy else QTimer.singleShot(0, self.view3d.masks_settled)
        )
        self.loader = LoadController(
            self, mask_settings=self.mask_controller.settings_for_load, choose_series=self._choose_series
        )
        self.loader.started.connect(lambda message: self._set_busy(True, message))
        self.loader.busy_changed.connect(self._on_load_busy)
        self.loader.progressed.connect(self._on_load_progress)
        self.loader.loaded.connect(self._on_volume_loaded)
        self.loader.failed.connect(self._show_load_error)
        self.loader.cancelled.connect(self._on_load_cancelled)
        self.view3d.scene_busy_changed.connect(
            lambda busy: self.scene_label.setText("Updating the 3D view..." if busy else "")
        )
        self.view3d.scene_failed.connect(lambda e: self.statusBar().showMessage(f"3D view update failed: {e}", 8000))

        # ----- wiring -----
        self.state.preset_name_changed.connect(lambda name: self.settings.setValue("last_preset", name))
        self.state.layout_changed.connect(self._apply_layout)
        self.state.class_masks_changed.connect(self._on_class_masks_changed)
        self.state.show_identity_changed.connect(lambda _on: self._update_title())
        self.controls.interaction_started.connect(self.view3d.begin_interaction)
        self.controls.interaction_finished.connect(self.view3d.end_interaction)
        self.controls.suggest_requested.connect(self.suggest_thresholds)
        self.controls.view_requested.connect(self.view3d.set_view)
        self.controls.reset_camera_requested.connect(self.view3d.reset_camera)
        self.controls.crop_handles_toggled.connect(self._on_crop_handles_toggled)
        self.controls.reset_crop_requested.connect(self.reset_crop)
        self.view3d.frame_rendered.connect(self._on_frame_rendered)
        self.view3d.shading_progress.connect(self._on_shading_progress)
        for v in self.slice_views.values():
            v.hovered.connect(self._on_hover)

        build_menus(self)
        # Lesion planning (issue 10): its dock, tools and menu items live in their own module.
        install_lesion_planning(self)
        self._restore_settings()
        self._apply_layout(self.state.layout)

    # ===== menus ==================================================================
    #: ``_action(text, slot, shortcut, tip, checkable)``: an action of this window
    #: (:func:`viewer.ui.actions.add_action`; the lesion-planning module uses it).
    _action = add_action

    # ===== layout =================================================================
    def set_layout(self, layout: str) -> None:
        self.state.layout = layout

    def _apply_layout(self, layout: str) -> None:
        two = layout == "2x2"
        for v in self.slice_views.values():
            v.setVisible(two)
        self.action_layout_2x2.setChecked(two)
        self.action_layout_3d.setChecked(not two)
        self.settings.setValue("layout", layout)

    # ===== opening data ===========================================================
    def choose_folder(self) -> None:
        start = str(self.settings.value("last_folder", str(Path.home())))
        folder = QFileDialog.getExistingDirectory(self, "Open DICOM folder", start)
        if folder:
            self.open_path(folder)

    def choose_file(self) -> None:
        start = str(self.settings.value("last_folder", str(Path.home())))
        path, _ = QFileDialog.getOpenFileName(self, "Open volume file", start, VOLUME_FILTER)
        if path:
            self.open_path(path)

    def import_slicer_presets(self, path: str | Path | None = None) -> list[str]:
        """Import every preset of a 3D Slicer ``presets.xml`` as a user preset (their
        curves are kept as they are; the thresholds are estimated from the curves for
        separated mode). Returns the names added to the picker."""
        from viewer.core.presets import preset_file_name, save_preset, user_preset_dir
        from viewer.core.slicer_presets import import_slicer_presets

        if path is None:
            start = str(self.settings.value("last_folder", str(Path.home())))
            path, _ = QFileDialog.getOpenFileName(
                self, "Import 3D Slicer presets", start, "3D Slicer presets (*.xml);;All files (*)"
            )
            if not path:
                return []
        try:
            imported = import_slicer_presets(path)
            folder = user_preset_dir()
            names = []
            for tf in imported:
                # "Slicer: " keeps them apart from ours in the picker and on disk.
                tf = tf.with_changes(name=f"Slicer: {tf.name}")
                save_preset(tf, folder / preset_file_name(tf.name))
                names.append(tf.name)
        except ViewerError as exc:
            QMessageBox.critical(self, "Could not import the presets", str(exc))
            return []
        self.presets = list_presets()
        self.controls.set_presets(self.presets)
        self.statusBar().showMessage(f"Imported {len(names)} 3D Slicer preset(s) into {folder}", 8000)
        return names

    def export_slicer_presets(self, path: str | Path | None = None) -> Path | None:
        """Write all presets (ours and the user's) as a 3D Slicer ``presets.xml``."""
        from viewer.core.slicer_presets import export_slicer_presets

        if path is None:
            start = str(Path(str(self.settings.value("last_folder", str(Path.home())))) / "presets.xml")
            path, _ = QFileDialog.getSaveFileName(self, "Export presets for 3D Slicer", start, "XML (*.xml)")
            if not path:
                return None
        try:
            out = export_slicer_presets(list(self.presets.values()), path)
        except ViewerError as exc:
            QMessageBox.critical(self, "Could not export the presets", str(exc))
            return None
        self.statusBar().showMessage(f"Wrote {len(self.presets)} presets to {out}", 8000)
        return out

    def open_path(self, path: str | Path, prefetched: PrefetchedLoad | None = None) -> None:
        """Open a DICOM folder or a volume file in the background (the load controller).

        A folder is scanned first; several series -> the series picker. ``prefetched``:
        the same path already being read (see :class:`viewer.io.prefetch.PrefetchedLoad`)."""
        p = Path(path)
        self.settings.setValue("last_folder", str(p if p.is_dir() else p.parent))
        self.loader.open_path(p, prefetched)

    def _choose_series(self, _folder: Path, series: Sequence[Any], thumbnails: Sequence[Any]) -> Any:
        """The series picker, for the load controller (None: the user declined)."""
        dlg = SeriesPickerDialog(series, self, thumbnails=thumbnails)
        if dlg.exec() != SeriesPickerDialog.DialogCode.Accepted or dlg.selected_series() is None:
            self.statusBar().showMessage("Opening cancelled", 4000)
            return None
        return dlg.selected_series()

    def open_phantom(self, size: str = "default", prefetched: Future[Volume] | None = None) -> None:
        """Generate the built-in lower-leg phantom (``"default"`` or ``"small"``).

        ``prefetched``: a future of the same phantom already being generated (the
        application starts generating it before Qt and VTK are even imported, see
        ``viewer.app``); the load then waits for it instead of starting over."""
        # The lesion legend takes the phantom's landmarks without regenerating it.
        self.loader.open_phantom(size, prefetched, on_generated=self.lesion_controller.remember_landmarks)

    @property
    def background_threads(self) -> int:
        """Load threads still running (cancelled ones included)."""
        return self.loader.background_threads

    @property
    def loading(self) -> bool:
        return self.loader.loading

    @property
    def settled(self) -> bool:
        """Nothing is on its way to the 3D view: no load, the masks (separated mode) fit
        the state by the mask policy (a vessel-window edit restyles the masks held), no
        mask job, scene preparation or shading runs, and the scene draws the state's
        transfer function (what tests and benchmarks wait for)."""
        st = self.state
        if st.volume is None or self.loading or self.mask_controller.busy or self.view3d.scene_busy:
            return False
        if st.transfer_function.separated and not self.mask_controller.is_current():
            return False
        return self.scene.transfer_function == scene_adapter.scene_transfer_function(st, own_masks=False)

    def call_when_settled(self, fn: Callable[[], None], delay_ms: int = 500) -> None:
        """Call ``fn`` once, on the GUI thread, ``delay_ms`` after a full-quality frame
        drawn while the window had settled (:attr:`settled`), if it still has: the final
        picture of what is on its way (masks, shading), not a coarse, bone-only or
        unshaded stand-in (``--screenshot``)."""
        fired = [False]

        def check() -> None:
            if fired[0] or not self.settled:
                return  # (the next full frame tries again)
            fired[0] = True
            self.view3d.frame_rendered.disconnect(on_frame)
            fn()

        def on_frame(full_quality: bool, _seconds: float) -> None:
            if full_quality and not fired[0] and self.settled:
                QTimer.singleShot(int(delay_ms), check)

        self.view3d.frame_rendered.connect(on_frame)
        if self.settled:
            QTimer.singleShot(int(delay_ms), check)

    @property
    def mask_runner(self) -> LatestOnlyRunner:
        """The mask controller's job runner (``busy`` while masks are computed)."""
        return self.mask_controller.runner

    @property
    def _mask_timer(self) -> QTimer:
        """The mask controller's debounce timer (tests and benchmarks wait for it)."""
        return self.mask_controller.timer

    def cancel_load(self) -> None:
        """Cancel the running load, if any (its result is then ignored)."""
        self.loader.cancel()

    def _on_load_cancelled(self) -> None:
        self.statusBar().showMessage("Loading cancelled", 4000)
        self.load_cancelled.emit()

    def _on_load_busy(self, busy: bool) -> None:
        if not busy:  # a load starting says so with its message (loader.started)
            self._set_busy(False)

    def _on_load_progress(self, fraction: float, message: str) -> None:
        self.progress_bar.setValue(int(fraction * 1000))
        if message:
            self.progress_bar.setFormat(f"{message[:40]} %p%")

    def _set_busy(self, busy: bool, message: str = "") -> None:
        self.progress_bar.setVisible(busy)
        self.cancel_button.setVisible(busy)
        if hasattr(self, "action_cancel"):
            self.action_cancel.setEnabled(busy)
        if busy:
            self.progress_bar.setValue(0)
            self.progress_bar.setFormat("%p%")
            self.statusBar().showMessage(message)
        else:
            self.statusBar().clearMessage()

    def _show_load_error(self, exc: Any) -> None:
        msg = str(exc)
        self.statusBar().showMessage("Could not open the scan", 6000)
        self.load_failed.emit(msg)
        QMessageBox.critical(self, "Could not open the scan", msg)

    def _on_volume_loaded(self, result: LoadResult, source: dict[str, Any]) -> None:
        volume, hist, masks = result
        self.current_source = source
        self.controls.histogram.set_histogram(*hist)
        crosshair = None
        if source.get("kind") == "phantom":
            # Both legs are in the phantom's field of view; its centre lies between them,
            # where the sagittal view shows nothing. Start on the left leg's axis, in the
            # middle third (the eroded segment). (Given to set_volume: the slice views
            # are cut once, not at the centre first.)
            from viewer.phantom import anatomy

            lo, hi = volume.bounds_lps()
            x, y = (float(v) for v in anatomy.LEG_AXIS_XY_MM)
            crosshair = (x, y, float(lo[2] + hi[2]) / 2.0)
        self.set_volume(volume, class_masks=masks, crosshair_lps=crosshair)
        if source.get("kind") == "path":
            self._add_recent(source["path"])
        if volume.warnings:
            self.statusBar().showMessage(f"Loaded with {len(volume.warnings)} warning(s): {volume.warnings[0]}", 10000)
            self._show_geometry_warnings(volume)
        else:
            nx, ny, nz = volume.dims_xyz
            msg = f"Loaded {nx} x {ny} x {nz} voxels"
            if masks is not None and masks.contrast is False:
                msg += f"; {masks.message}"  # "no contrast-filled vessels found ...", plainly
            self.statusBar().showMessage(msg, 10000)
        self.volume_loaded.emit(volume)

    def _show_geometry_warnings(self, volume: Volume) -> None:
        serious = serious_geometry_warnings(volume)
        if not serious:
            return
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Scan geometry warnings")
        box.setText(
            f"{volume.description or 'The scan'} was loaded, but its slices are not a clean regular stack. "
            "Some voxels are interpolated, not measured: do not judge anatomy in those regions."
        )
        box.setInformativeText("\n\n".join(serious[:3]) + ("\n\n..." if len(serious) > 3 else ""))
        box.setDetailedText("\n\n".join(volume.warnings))
        box.setStandardButtons(QMessageBox.StandardButton.Ok)
        box.setObjectName("geometry_warnings")
        # Window-modal and non-blocking: the scan is already on screen behind it.
        box.open()
        self.geometry_warning_box = box

    def set_volume(
        self,
        volume: Volume,
        class_masks: ClassMasks | None = None,
        crosshair_lps: tuple[float, float, float] | None = None,
    ) -> None:
        """Show ``volume``: crosshair at ``crosshair_lps`` (default: its centre), crop
        and clip reset. ``class_masks`` (e.g. from the load worker) are used for
        separated mode (even when the thresholds moved on meanwhile: the picture
        restyles at once and new masks follow from the background); without them they
        are computed there."""
        lo, hi = volume.bounds_lps()
        self._first_full_frame_pending = True
        self._first_frame_pending = True
        self._first_separated_frame_pending = True
        # The old scan's mask first: nothing may pair the new volume with it.
        self.mask_controller.drop()
        self.state.update(
            volume=volume,
            crop_box_lps=None,
            clip_plane=None,
            crosshair_lps=(tuple(float(v) for v in (lo + hi) / 2.0) if crosshair_lps is None else tuple(crosshair_lps)),
        )
        # The old scan's arrays are free now: hand the memory back to the system
        # (glibc keeps it otherwise: RSS 808 vs 690 MB in the soak, docs/bench-soak.md).
        from viewer.core.memory import trim_freed_memory

        trim_freed_memory()
        if class_masks is not None:
            self.mask_controller.adopt(volume, class_masks)
        if self.controls.histogram.has_histogram is False:
            self.controls.histogram.set_histogram(*volume_histogram(volume))
        self._update_title()

    # ----- recent files -----
    def recent_files(self) -> list[str]:
        return self.recent.items()

    def _add_recent(self, path: str) -> None:
        self.recent.add(path)

    # ----- drag and drop -----
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt API
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt API
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.open_path(paths[0])

    # ===== state reactions ========================================================
    def _update_title(self) -> None:
        vol = self.state.volume
        title = APP_TITLE
        if vol is not None:
            title = f"{vol.description or 'untitled scan'} - {APP_TITLE}"
            if self.state.show_identity and vol.identity:
                who = ", ".join(str(v) for v in vol.identity.values() if v)
                if who:
                    title = f"{who} - {title}"
        self.setWindowTitle(title)

    def _on_hover(self, lps: Any, hu: Any) -> None:
        if lps is None:
            self.hover_label.setText("")
            return
        x, y, z = lps
        # LPS: +x = patient's left, +y = posterior, +z = superior (DICOM).
        hu_text = "-" if hu is None else f"{hu}"
        self.hover_label.setText(f"HU {hu_text}   L {x:.1f}  P {y:.1f}  S {z:.1f} mm")

    def _on_shading_progress(self, stage: str) -> None:
        """VTK computes shading gradients inside a render (seconds on a big scan) and
        the event loop cannot run meanwhile. Say so, and repaint just the status label
        synchronously (``repaint``, not ``update``: no event is processed, so nothing
        can re-enter the render)."""
        if stage == "end":
            self.shading_label.setText("")
        else:
            dots = "." * (1 + int(time.perf_counter() * 3) % 3)
            self.shading_label.setText(f"Preparing 3D shading for the new volume{dots}")
        self.shading_label.repaint()

    def _on_frame_rendered(self, full_quality: bool, _seconds: float) -> None:
        # The first frame that shows the volume: its scalars come from the 3D view's
        # worker, a frame or more after the volume itself (issue 9); a big scan's
        # coarse first frame (Scene.show_preview) counts.
        drawn = self.state.volume is not None and self.scene.has_scalars
        if (drawn or (self.state.volume is not None and self.scene.previewing)) and self._first_frame_pending:
            self._first_frame_pending = False
            self.first_frame.emit()
        sc = self.scene
        # (a coarse separated frame over the bone-only scalars, or in their place)
        coarse_separated = sc.previewing_over or sc.previewing_classes
        separated = coarse_separated or (drawn and sc.class_masks is not None and not sc.previewing)
        if self._first_separated_frame_pending and separated and self.state.transfer_function.separated:
            self._first_separated_frame_pending = False
            self.first_separated_frame.emit()
        shown = drawn and not self.view3d.scene_busy
        if full_quality and self._first_full_frame_pending and shown:
            self._first_full_frame_pending = False
            self.first_full_frame.emit()

    # ===== separated mode / thresholds ===========================================
    def set_separated(self, on: bool) -> None:
        tf = self.state.transfer_function
        self.state.transfer_function = tf.with_changes(separated=bool(on))

    def _on_mask_ready(self, masks: ClassMasks) -> None:
        if masks.message:
            # "no contrast-filled vessels found ...", said plainly.
            self.statusBar().showMessage(masks.message[:1].upper() + masks.message[1:], 10000)
        self.class_masks_ready.emit()

    def _on_class_masks_changed(self, masks: Any) -> None:
        tf = self.state.transfer_function
        if masks is None or getattr(masks, "contrast", None) is None or not tf.separated:
            self.contrast_label.setText("")
            self.contrast_label.setToolTip("")
        else:
            by_hand = " (set by hand)" if getattr(masks, "contrast_forced", False) else ""
            text = "Contrast: yes" if masks.contrast else "No contrast: vessel class empty"
            self.contrast_label.setText(text + by_hand)
            self.contrast_label.setToolTip(masks.message)

    def count_vessels_dialog(self, radius_mm: float | None = None) -> Any:
        """Count vessels within a radius of the crosshair; the result goes to a message
        box and the status bar, and is returned (None when cancelled or no scan)."""
        from viewer.core.vessel_count import count_vessels_near

        vol, tf = self.state.volume, self.state.transfer_function
        if vol is None or self.state.crosshair_lps is None:
            self.statusBar().showMessage("Open a scan and click a point in a slice view first", 6000)
            return None
        if radius_mm is None:
            r, ok = QInputDialog.getDouble(
                self,
                "Count vessels near the crosshair",
                "Radius around the crosshair (mm):",
                float(str(self.settings.value("vessel_count_radius_mm", 30.0))),
                2.0,
                300.0,
                1,
            )
            if not ok:
                return None
            radius_mm = float(r)
            self.settings.setValue("vessel_count_radius_mm", radius_mm)
        masks = self.state.class_masks if tf.separated else None
        result = count_vessels_near(vol, self.state.crosshair_lps, radius_mm, tf.vessel_window_hu, masks)
        text = result.summary()
        if masks is None:
            text += ". Separated mode is off: bone rims in the vessel window are counted too."
        self.statusBar().showMessage(text, 15000)
        QMessageBox.information(self, "Vessels near the crosshair", text)
        return result

    def suggest_thresholds(self) -> None:
        vol = self.state.volume
        if vol is None:
            return
        s = suggest_thresholds(vol.hu, vol.spacing_mm)
        tf = self.state.transfer_function.with_vessel_window(*s.vessel_window_hu).with_bone_threshold(
            s.bone_threshold_hu
        )
        self.state.transfer_function = tf
        self.statusBar().showMessage(f"Suggested thresholds: {s.reason}", 10000)

    # ===== crop ===================================================================
    def _on_crop_handles_toggled(self, on: bool) -> None:
        self.view3d.set_crop_handles_visible(on)

    def reset_crop(self) -> None:
        self.state.crop_box_lps = None

    # ===== settings / close ======================================================
    def _restore_settings(self) -> None:
        geo = self.settings.value("geometry")
        if isinstance(geo, QByteArray) and not geo.isEmpty():
            self.restoreGeometry(geo)
        st = self.settings.value("window_state")
        if isinstance(st, QByteArray) and not st.isEmpty():
            self.restoreState(st)
        layout = str(self.settings.value("layout", "2x2"))
        if layout in ("3d", "2x2"):
            self.state.layout = layout

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt API
        # Nothing may escape from here: an exception raised out of a Qt event handler
        # during close crashed PySide 6.12 (in shiboken's error reporting).
        try:
            self.settings.setValue("geometry", self.saveGeometry())
            self.settings.setValue("window_state", self.saveState())
            self.settings.sync()
            self.shutdown()
        except Exception:  # noqa: BLE001
            log.exception("error while closing the main window")
        event.accept()

    def shutdown(self) -> None:
        """Stop workers and release VTK resources (idempotent)."""
        if getattr(self, "_shut_down", False):
            return
        self._shut_down = True
        self.mask_controller.shutdown()
        self.loader.shutdown()
        self.lesion_controller.shutdown()
        self.view3d.close_view()


__all__ = ["APP_TITLE", "MainWindow"]
