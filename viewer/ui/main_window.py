"""The main window: menus, the 3D and slice views, the controls dock, the status bar.

The window owns one :class:`ViewerState`; everything on screen subscribes to it. Long
work (scanning a folder, loading a volume, generating the phantom, computing the bone
mask) runs on worker threads as plain synchronous functions with progress and cancel
(:mod:`viewer.ui.workers`). A failed load shows its message in a dialog and leaves the
previous scan on screen.

Privacy: patient name and ID (``Volume.identity``) appear nowhere (title bar, status
bar, dialogs) unless View > Show patient identity is checked; the title shows the
series description only.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QGridLayout,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QWidget,
)

from viewer.core.errors import ViewerError
from viewer.core.extraction import ClassMasks
from viewer.core.extraction import class_masks as compute_class_masks
from viewer.core.presets import default_preset_name, list_presets
from viewer.core.state import ViewerState
from viewer.core.thresholds import histogram, suggest_thresholds
from viewer.core.transfer import TransferFunction
from viewer.core.volume import Volume
from viewer.ui.controls import ControlsPanel
from viewer.ui.dialogs import SeriesPickerDialog, show_about
from viewer.ui.lesion_panel import LesionController, install_lesion_planning
from viewer.ui.slice_view import AXES, SliceViewWidget
from viewer.ui.view3d import View3DWidget
from viewer.ui.workers import LatestOnlyRunner, TaskThread

log = logging.getLogger(__name__)

APP_TITLE = "Vessel-bone CTA viewer"
MAX_RECENT = 8
#: File-dialog filter for single-file volumes (the loader decides by content/extension).
VOLUME_FILTER = "Volumes (*.nii *.nii.gz *.nrrd *.nhdr *.mha *.mhd *.dcm);;All files (*)"
#: Histogram bins: 10 HU wide over -1024..3071 HU.
HIST_BINS = 410
HIST_RANGE_HU = (-1024.0, 3076.0)
#: Delay (ms) after the last bone-threshold change before the mask is recomputed: a
#: slider drag makes one job, not one per pixel moved.
MASK_DEBOUNCE_MS = 120

#: Export/session actions: (menu text, function name in viewer.ui.export_dialogs,
#: shortcut, tooltip).
EXPORT_ACTIONS = (
    ("Export &image...", "export_image_dialog", "Ctrl+E", "Save the 3D view as PNG, JPEG or TIFF"),
    (
        "Export &report sheet...",
        "report_sheet_dialog",
        "",
        "Anterior, posterior, medial and lateral views in one image",
    ),
    ("Export &movie...", "movie_dialog", "", "Turntable or threshold sweep as MP4 or GIF"),
)
SESSION_ACTIONS = (
    (
        "&Save session...",
        "save_session_dialog",
        "Ctrl+S",
        "Save data path, preset, thresholds, camera, crop and layout",
    ),
    ("Open s&ession...", "open_session_dialog", "", "Restore a saved session"),
    ("Save &preset...", "save_preset_dialog", "", "Save the current transfer function as a named preset"),
)


#: Thresholds class masks are computed for: (bone threshold HU, (vessel low, high) HU).
MaskKey = tuple[float, tuple[float, float], bool, bool]
#: What a load worker returns: the volume, its histogram (counts, edges), and the class
#: masks (bone, calcified shells; None when not in separated mode).
LoadResult = tuple[Volume, tuple[np.ndarray, np.ndarray], "ClassMasks | None"]


def _mask_key(tf: TransferFunction) -> MaskKey:
    return (
        float(tf.bone_threshold_hu),
        (float(tf.vessel_window_hu[0]), float(tf.vessel_window_hu[1])),
        bool(tf.remove_table),
        bool(tf.real_ct_separation),
    )


def _finish_volume(volume: Volume, key: MaskKey | None, progress: Any) -> LoadResult:
    """The rest of a load, still on the worker thread: histogram, and the class masks
    when the window is in separated mode (so the first frame is already separated)."""
    hist = histogram(volume.hu, bins=HIST_BINS, hu_range=HIST_RANGE_HU)
    masks = None
    if key is not None:
        progress(0.9, "Separating bone, vessels and calcification")
        # The load's progress (which raises LoadCancelled once the user cancels) reaches
        # the separation's stages, so Cancel works during this step too.
        masks = compute_class_masks(
            volume.hu,
            volume.spacing_mm,
            key[0],
            key[1],
            progress=lambda f, msg: progress(0.9 + 0.1 * f, msg),
            remove_table=key[2],
            real_ct=key[3],
        )
    progress(1.0, "")
    return volume, hist, masks


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
    class_masks_ready = Signal()

    #: Set by :func:`viewer.ui.lesion_panel.install_lesion_planning` in ``__init__``.
    lesion_controller: LesionController

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
        self._load_thread: TaskThread | None = None
        self._live_threads: set[TaskThread] = set()
        self._first_full_frame_pending = False
        self._mask_volume_id: int | None = None

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
        self.mask_runner = LatestOnlyRunner("class masks", self)
        self.mask_runner.finished_latest.connect(self._on_mask_ready)
        self.mask_runner.failed_latest.connect(lambda e: self.statusBar().showMessage(f"Separation failed: {e}", 8000))
        self.mask_runner.busy_changed.connect(
            lambda busy: self.mask_label.setText("Separating bone, vessels, calcification..." if busy else "")
        )
        self.view3d.scene_busy_changed.connect(
            lambda busy: self.scene_label.setText("Updating the 3D view..." if busy else "")
        )
        self.view3d.scene_failed.connect(lambda e: self.statusBar().showMessage(f"3D view update failed: {e}", 8000))
        self._mask_timer = QTimer(self)
        self._mask_timer.setSingleShot(True)
        self._mask_timer.setInterval(MASK_DEBOUNCE_MS)
        self._mask_timer.timeout.connect(self._start_mask_job)

        # ----- wiring -----
        self.state.volume_changed.connect(self._on_volume_changed)
        self.state.transfer_function_changed.connect(self._on_tf_changed)
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

        self._build_menus()
        # Lesion planning (issue 10): its dock, tools and menu items live in their own module.
        install_lesion_planning(self)
        self._restore_settings()
        self._apply_layout(self.state.layout)

    # ===== menus ==================================================================
    def _action(
        self,
        text: str,
        slot: Callable[..., Any],
        shortcut: str | QKeySequence | QKeySequence.StandardKey = "",
        tip: str = "",
        checkable: bool = False,
    ) -> QAction:
        a = QAction(text, self)
        if shortcut:
            a.setShortcut(QKeySequence(shortcut))
        if tip:
            a.setToolTip(tip)
            a.setStatusTip(tip)
        a.setCheckable(checkable)
        a.triggered.connect(slot)
        self.addAction(a)  # shortcuts work even when the menu bar is hidden
        return a

    def _build_menus(self) -> None:
        mb = self.menuBar()
        m = mb.addMenu("&File")
        self.action_open_folder = self._action(
            "Open DICOM &folder...",
            self.choose_folder,
            QKeySequence.StandardKey.Open,
            "Open a DICOM series from a folder",
        )
        self.action_open_file = self._action(
            "Open &file...", self.choose_file, "Ctrl+Shift+O", "Open a NIfTI, NRRD, MHA/MHD or DICOM file"
        )
        m.addAction(self.action_open_folder)
        m.addAction(self.action_open_file)
        self.recent_menu = m.addMenu("Open &recent")
        self._rebuild_recent_menu()
        sample = m.addMenu("&Sample data")
        self.action_phantom = self._action(
            "Lower-leg phantom",
            lambda: self.open_phantom("default"),
            "",
            "Built-in synthetic lower-leg CTA (no download)",
        )
        self.action_phantom_small = self._action(
            "Lower-leg phantom (small)",
            lambda: self.open_phantom("small"),
            "",
            "A smaller, faster version of the phantom",
        )
        sample.addAction(self.action_phantom)
        sample.addAction(self.action_phantom_small)
        m.addSeparator()
        self.export_actions: dict[str, QAction] = {}
        for text, fn, key, tip in EXPORT_ACTIONS + SESSION_ACTIONS:
            if fn == "save_session_dialog":
                m.addSeparator()
            a = self._action(text, lambda _c=False, f=fn: self._call_export_dialog(f), key, tip)
            m.addAction(a)
            self.export_actions[fn] = a
        m.addSeparator()
        self.action_import_slicer = self._action(
            "Import 3D Slicer presets...",
            lambda: self.import_slicer_presets(),
            "",
            "Add the volume-rendering presets of a 3D Slicer presets.xml to the preset picker",
        )
        self.action_export_slicer = self._action(
            "Export presets for 3D Slicer...",
            lambda: self.export_slicer_presets(),
            "",
            "Write all presets as a 3D Slicer presets.xml",
        )
        m.addAction(self.action_import_slicer)
        m.addAction(self.action_export_slicer)
        m.addSeparator()
        self.action_quit = self._action("&Quit", self.close, QKeySequence.StandardKey.Quit, "Quit")
        m.addAction(self.action_quit)

        m = mb.addMenu("&View")
        group = QActionGroup(self)
        self.action_layout_3d = self._action(
            "3D &only", lambda: self.set_layout("3d"), "Ctrl+1", "Only the 3D view", True
        )
        self.action_layout_2x2 = self._action(
            "&2 x 2 (3D + slices)",
            lambda: self.set_layout("2x2"),
            "Ctrl+2",
            "3D view with axial, coronal, sagittal",
            True,
        )
        for a in (self.action_layout_3d, self.action_layout_2x2):
            group.addAction(a)
            m.addAction(a)
        self.action_toggle_layout = self._action(
            "Toggle &layout",
            lambda: self.set_layout("3d" if self.state.layout == "2x2" else "2x2"),
            "F11",
            "Switch between 3D only and 2 x 2",
        )
        m.addAction(self.action_toggle_layout)
        m.addSeparator()
        self.view_actions: dict[str, QAction] = {}
        for i, name in enumerate(("anterior", "posterior", "left", "right", "superior", "inferior"), start=1):
            a = self._action(f"{name.capitalize()} view", lambda _c=False, n=name: self.view3d.set_view(n), str(i))
            m.addAction(a)
            self.view_actions[name] = a
        self.action_reset_camera = self._action("&Reset camera", self.view3d.reset_camera, "R", "Show the whole volume")
        m.addAction(self.action_reset_camera)
        m.addSeparator()
        self.action_crop = self._action(
            "&Crop box handles", self.controls.crop_check.setChecked, "C", "Show the crop box handles", True
        )
        self.controls.crop_check.toggled.connect(self.action_crop.setChecked)
        m.addAction(self.action_crop)
        self.action_reset_crop = self._action("Reset cro&p", self.reset_crop, "Shift+C", "Show the whole volume again")
        m.addAction(self.action_reset_crop)
        m.addSeparator()
        self.action_show_identity = self._action(
            "Show patient &identity",
            lambda on: setattr(self.state, "show_identity", bool(on)),
            "",
            "Show the patient's name and ID in the title bar (off by default)",
            True,
        )
        m.addAction(self.action_show_identity)

        m = mb.addMenu("&Tools")
        self.action_separated = self._action(
            "&Separated mode", self.set_separated, "S", "Separate bone from vessels with a bone mask", True
        )
        self.state.transfer_function_changed.connect(lambda tf: self.action_separated.setChecked(tf.separated))
        self.action_separated.setChecked(self.state.transfer_function.separated)
        m.addAction(self.action_separated)
        self.action_suggest = self._action(
            "Suggest &thresholds", self.suggest_thresholds, "T", "Vessel window and bone threshold from the histogram"
        )
        m.addAction(self.action_suggest)
        self.action_count_vessels = self._action(
            "Count &vessels near crosshair...",
            lambda: self.count_vessels_dialog(),  # triggered(bool) must not become the radius
            "V",
            "How many vessels run within a radius of the crosshair (e.g. around a bone defect)",
        )
        m.addAction(self.action_count_vessels)
        self.action_cancel = self._action("Cancel loading", self.cancel_load, "Esc")

        m = mb.addMenu("&Help")
        self.action_about = self._action("&About", lambda: show_about(self), "", "Version, licences, data sources")
        m.addAction(self.action_about)

    def _call_export_dialog(self, name: str) -> None:
        """Run one of the export/session dialogs (``viewer.ui.export_dialogs.<name>``)."""
        try:
            mod = importlib.import_module("viewer.ui.export_dialogs")
            fn = getattr(mod, name)
        except (ImportError, AttributeError) as exc:
            QMessageBox.information(self, APP_TITLE, f"This action is not available in this build ({exc}).")
            return
        try:
            fn(self)
        except ViewerError as exc:
            QMessageBox.critical(self, APP_TITLE, str(exc))

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

    def open_path(self, path: str | Path) -> None:
        """Open a DICOM folder or a volume file in the background.

        A folder is scanned first; several series -> the series picker."""
        p = Path(path)
        self.settings.setValue("last_folder", str(p if p.is_dir() else p.parent))
        if not p.exists():
            self._show_load_error(ViewerError("no such file or folder", p))
            return
        from viewer import io as vio

        if p.is_dir():

            def scan(progress: Any) -> Any:
                from viewer.io.thumbnails import series_thumbnail

                series = vio.scan_series(p, progress=lambda f, m: progress(0.9 * f, m))
                # Thumbnails only when the user will have to choose (one file each).
                thumbs = [series_thumbnail(s) for s in series] if len(series) > 1 else []
                return series, thumbs

            self._start_load(scan, f"Scanning {p.name}...", lambda r: self._on_scanned(p, r[0], r[1]))
        else:
            self._load_volume_from(p, None)

    def _on_scanned(self, path: Path, series: list[Any], thumbnails: list[Any] | None = None) -> None:
        if not series:
            self._show_load_error(ViewerError("no readable image series found", path))
            return
        chosen = series[0]
        if len(series) > 1:
            dlg = SeriesPickerDialog(series, self, thumbnails=thumbnails)
            if dlg.exec() != SeriesPickerDialog.DialogCode.Accepted or dlg.selected_series() is None:
                self.statusBar().showMessage("Opening cancelled", 4000)
                return
            chosen = dlg.selected_series()
        self._load_volume_from(path, chosen)

    def _load_volume_from(self, path: Path, series: Any | None) -> None:
        from viewer import io as vio

        mask_key = self._separated_key()

        def load(progress: Any) -> LoadResult:
            key = None if series is None else series.key
            vol = vio.load_volume(path, series=key, progress=lambda f, m: progress(0.9 * f, m))
            return _finish_volume(vol, mask_key, progress)

        source = {"kind": "path", "path": str(path), "series": getattr(series, "key", None)}
        self._start_load(load, f"Loading {path.name}...", lambda r: self._on_volume_loaded(r, source))

    def open_phantom(self, size: str = "default", prefetched: Future[Volume] | None = None) -> None:
        """Generate the built-in lower-leg phantom (``"default"`` or ``"small"``).

        ``prefetched``: a future of the same phantom already being generated (the
        application starts generating it before Qt and VTK are even imported, see
        ``viewer.app``); the load then waits for it instead of starting over."""
        from viewer import phantom

        mask_key = self._separated_key()

        def gen(progress: Any) -> LoadResult:
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
                self.lesion_controller.remember_landmarks(vol, ph.landmarks)  # the legend, without regenerating
            return _finish_volume(vol, mask_key, progress)

        source = {"kind": "phantom", "size": size}
        label = "small lower-leg phantom" if size == "small" else "lower-leg phantom"
        self._start_load(gen, f"Generating the {label}...", lambda r: self._on_volume_loaded(r, source))

    def _start_load(self, work: Callable[[Any], Any], message: str, on_done: Callable[[Any], None]) -> None:
        self.cancel_load()
        thread = TaskThread(work, "load")
        thread.progressed.connect(self._on_load_progress)

        def succeeded(result: Any) -> None:
            self._finish_load(thread)
            on_done(result)

        def failed(error: Any) -> None:
            self._finish_load(thread)
            self._show_load_error(error)

        def cancelled() -> None:
            self._finish_load(thread)
            self._on_load_cancelled()

        thread.succeeded.connect(succeeded)
        thread.failed.connect(failed)
        thread.cancelled.connect(cancelled)
        # Every load thread stays referenced until it has finished, cancelled or not:
        # a running QThread whose Python object is collected aborts the process.
        self._live_threads.add(thread)
        thread.finished.connect(lambda: self._on_thread_finished(thread))
        self._load_thread = thread
        self._set_busy(True, message)
        thread.start()

    def _finish_load(self, thread: TaskThread) -> None:
        if self._load_thread is thread:
            self._load_thread = None
            self._set_busy(False)

    def _on_thread_finished(self, thread: TaskThread) -> None:
        self._live_threads.discard(thread)
        thread.deleteLater()

    @property
    def background_threads(self) -> int:
        """Load threads still running (cancelled ones included)."""
        return len(self._live_threads)

    @property
    def loading(self) -> bool:
        return self._load_thread is not None

    def cancel_load(self) -> None:
        """Cancel the running load, if any (its result is then ignored)."""
        t = self._load_thread
        if t is None:
            return
        t.cancel()
        # Drop our interest now: its late signals find _load_thread changed (the
        # thread itself stays in _live_threads until it ends).
        self._load_thread = None
        self._set_busy(False)
        self.statusBar().showMessage("Loading cancelled", 4000)
        self.load_cancelled.emit()

    def _on_load_cancelled(self) -> None:
        self.statusBar().showMessage("Loading cancelled", 4000)
        self.load_cancelled.emit()

    def _on_load_progress(self, fraction: float, message: str) -> None:
        if self.sender() is not self._load_thread:
            return
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

    def _separated_key(self) -> MaskKey | None:
        """The thresholds to compute class masks for along with a load (separated mode)."""
        tf = self.state.transfer_function
        return _mask_key(tf) if tf.separated else None

    def _on_volume_loaded(self, result: LoadResult, source: dict[str, Any]) -> None:
        volume, hist, masks = result
        self.current_source = source
        self.controls.histogram.set_histogram(*hist)
        self.set_volume(volume, class_masks=masks)
        if source.get("kind") == "phantom":
            # Both legs are in the phantom's field of view; its centre lies between them,
            # where the sagittal view shows nothing. Start on the left leg's axis, in the
            # middle third (the eroded segment).
            from viewer.phantom import anatomy

            lo, hi = volume.bounds_lps()
            x, y = (float(v) for v in anatomy.LEG_AXIS_XY_MM)
            self.state.update(crosshair_lps=(x, y, float(lo[2] + hi[2]) / 2.0))
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

    #: Warnings that change what the voxels mean (interpolated, resampled, dropped or
    #: conflicting slices): a surgeon must see these, not just a status-bar line.
    GEOMETRY_WARNING_WORDS = ("missing slice", "interpolat", "resampl", "gantry tilt", "duplicate", "conflict")

    def _show_geometry_warnings(self, volume: Volume) -> None:
        serious = [w for w in volume.warnings if any(k in w.lower() for k in self.GEOMETRY_WARNING_WORDS)]
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

    def set_volume(self, volume: Volume, class_masks: ClassMasks | None = None) -> None:
        """Show ``volume``: crosshair at its centre, crop and clip reset.
        ``class_masks`` (e.g. from the load worker) are used for separated mode (even
        when the thresholds moved on meanwhile: the picture restyles at once and new
        masks follow from the background); without them they are computed there."""
        lo, hi = volume.bounds_lps()
        self._first_full_frame_pending = True
        # The old scan's mask first: nothing may pair the new volume with it.
        self.state.class_masks = None
        self._mask_volume_id = id(volume) if class_masks is not None else None
        self.mask_runner.cancel()
        self.state.update(
            volume=volume,
            crop_box_lps=None,
            clip_plane=None,
            crosshair_lps=tuple(float(v) for v in (lo + hi) / 2.0),
        )
        # The old scan's arrays are free now: hand the memory back to the system
        # (glibc keeps it otherwise: RSS 808 vs 690 MB in the soak, docs/bench-soak.md).
        from viewer.core.memory import trim_freed_memory

        trim_freed_memory()
        if class_masks is not None:
            self.state.class_masks = class_masks
            self._schedule_mask_if_needed()
        if self.controls.histogram.has_histogram is False:
            self.controls.histogram.set_histogram(*histogram(volume.hu, bins=HIST_BINS, hu_range=HIST_RANGE_HU))
        self._update_title()

    # ----- recent files -----
    def recent_files(self) -> list[str]:
        v = self.settings.value("recent_files", [])
        if isinstance(v, str):  # QSettings gives one item back as a plain string
            return [v]
        return [str(x) for x in v] if isinstance(v, (list, tuple)) else []

    def _add_recent(self, path: str) -> None:
        items = [p for p in self.recent_files() if p != path]
        items.insert(0, path)
        self.settings.setValue("recent_files", items[:MAX_RECENT])
        self._rebuild_recent_menu()

    def _rebuild_recent_menu(self) -> None:
        self.recent_menu.clear()
        items = self.recent_files()
        for p in items:
            a = self.recent_menu.addAction(p)
            a.triggered.connect(lambda _c=False, path=p: self.open_path(path))
        self.recent_menu.setEnabled(bool(items))

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
    def _on_volume_changed(self, _volume: Any) -> None:
        self._schedule_mask_if_needed()
        if self.state.volume is not None and self._mask_volume_id == id(self.state.volume):
            self._mask_timer.stop()  # set_volume brings the masks along

    def _on_tf_changed(self, _tf: TransferFunction) -> None:
        self._schedule_mask_if_needed()

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
        # worker, a frame or more after the volume itself (issue 9).
        shown = self.state.volume is not None and self.scene.has_scalars and not self.view3d.scene_busy
        if full_quality and self._first_full_frame_pending and shown:
            self._first_full_frame_pending = False
            self.first_full_frame.emit()

    # ===== separated mode / thresholds ===========================================
    def set_separated(self, on: bool) -> None:
        tf = self.state.transfer_function
        self.state.transfer_function = tf.with_changes(separated=bool(on))

    def _schedule_mask_if_needed(self) -> None:
        tf, vol = self.state.transfer_function, self.state.volume
        if vol is None or not tf.separated:
            self._mask_timer.stop()
            return
        # Masks follow the bone threshold. A vessel-window edit only restyles: new masks
        # would re-encode the volume and make the CPU ray caster recompute its
        # gradients (about 1 s on a 224x224x380 scan, 6 s on 512x512x640) on every
        # window tweak. The window's low end still shapes the masks (rim dilation,
        # calcified shells) as it was when they were computed; a new bone threshold
        # (by hand, Suggest or a preset) or a new scan brings them up to date.
        masks = self.state.class_masks
        if (
            self._mask_volume_id == id(vol)
            and masks is not None
            and masks.bone_threshold_hu == float(tf.bone_threshold_hu)
            and (masks.contrast is not None) == tf.real_ct_separation
            and (not tf.real_ct_separation or masks.remove_table == tf.remove_table)
        ):
            return
        self._mask_timer.start()

    def _start_mask_job(self) -> None:
        vol = self.state.volume
        if vol is None:
            return
        bt, window, remove_table, real_ct = _mask_key(self.state.transfer_function)
        vid = id(vol)

        def work(progress: Any) -> tuple[int, ClassMasks]:
            return vid, compute_class_masks(
                vol.hu, vol.spacing_mm, bt, window, progress=progress, remove_table=remove_table, real_ct=real_ct
            )

        self.mask_runner.submit(work)

    def _on_mask_ready(self, result: tuple[int, ClassMasks]) -> None:
        vid, masks = result
        vol = self.state.volume
        if vol is None or id(vol) != vid or masks.bone.shape != vol.shape:
            return
        self._mask_volume_id = vid
        self.state.class_masks = masks
        if masks.message:
            # "no contrast-filled vessels found ...", said plainly.
            self.statusBar().showMessage(masks.message[:1].upper() + masks.message[1:], 10000)
        self.class_masks_ready.emit()
        # The threshold moved on while this job ran: compute the newer one.
        self._schedule_mask_if_needed()

    def _on_class_masks_changed(self, masks: Any) -> None:
        tf = self.state.transfer_function
        if masks is None or getattr(masks, "contrast", None) is None or not tf.separated:
            self.contrast_label.setText("")
            self.contrast_label.setToolTip("")
        elif masks.contrast:
            self.contrast_label.setText("Contrast: yes")
            self.contrast_label.setToolTip(masks.message)
        else:
            self.contrast_label.setText("No contrast: vessel class empty")
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
        self._mask_timer.stop()
        self.cancel_load()
        for th in list(self._live_threads):
            th.wait(15000)
        self._live_threads.clear()
        self.mask_runner.shutdown()
        self.lesion_controller.shutdown()
        self.view3d.close_view()


__all__ = ["APP_TITLE", "MainWindow"]
