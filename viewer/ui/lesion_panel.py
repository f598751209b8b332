"""The lesion-planning panel (issue 10): mark a lesion, colour vessels by distance,
keyhole, analyse what feeds the lesion, and write the lesion report.

Everything here edits :class:`~viewer.core.state.ViewerState` (``lesion``,
``vessel_colouring``, ``keyhole``, ``lesion_analysis``); the 3D view, the slice views,
sessions and exports all follow the state. The analysis
(:func:`viewer.core.lesion.analyse_lesion`) and the report
(:func:`viewer.export.lesion_report.write_lesion_report`) run on worker threads
(:mod:`viewer.ui.workers`): the analysis latest-only and cancellable, so moving the
lesion while an analysis runs drops the stale one.

Bad input -- a lesion outside the scan, a radius of 0 or larger than the scan, no vessel
near the lesion, a scan without contrast -- is said in the panel's message line and the
status bar; the state is left as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from viewer.core.errors import ViewerError
from viewer.core.extraction import ClassMasks, class_masks_for
from viewer.core.lesion import Lesion, LesionAnalysis, lesion_from_phantom, validate_lesion
from viewer.core.mask_policy import MaskSettings
from viewer.core.state import ViewerState, bind
from viewer.core.volume import Volume
from viewer.ui.measure_tools import PointerTools
from viewer.ui.workers import LatestOnlyRunner, TaskThread

log = logging.getLogger(__name__)

#: Vessel colouring choices: (label, state value).
COLOURINGS = (
    ("Off (class colours)", "off"),
    ("Distance to the lesion", "lesion"),
    ("Distance to the bone surface", "bone"),
)
ENTRY_COLUMNS = ("No.", "L mm", "P mm", "S mm", "To centre mm", "Nearest artery", "Calibre mm")
BRANCH_COLUMNS = ("No.", "Length mm", "Diameter mm", "Crosses radius")
NO_LESION_TEXT = "No lesion: use Mark lesion (click a slice or the 3D surface; drag a box on a slice)"


def is_phantom(volume: Volume | None) -> bool:
    return volume is not None and str(volume.source or "").startswith("phantom")


def phantom_landmarks(volume: Volume, progress: Any = None) -> Mapping[str, Any]:
    """The legend (ground-truth landmarks, LPS mm) of the built-in phantom ``volume``
    was generated as: the phantom is generated again with the same size, seed and
    variant (the volume carries only the voxels). Slow (seconds): call off the GUI
    thread."""
    from viewer.phantom import generate

    md = volume.metadata
    return generate(
        size=str(md.get("phantom_size", "default")),
        seed=int(md.get("phantom_seed", 0)),
        clean=bool(md.get("phantom_clean", False)),
        feet_first=md.get("patient_position") == "FFS",
        progress=progress,
    ).landmarks


def masks_for(volume: Volume, state_masks: ClassMasks | None, tf: Any, progress: Any = None) -> ClassMasks:
    """The window's class masks when they belong to ``volume``, else computed for the
    current thresholds (on the caller's, i.e. a worker's, thread)."""
    if state_masks is not None and state_masks.bone.shape == volume.shape:
        return state_masks
    return class_masks_for(volume.hu, volume.spacing_mm, MaskSettings.of(tf), progress)


class LesionController(QObject):
    """Analysis and report workers, and the state rules of the lesion fields.

    Signals: message(text) (for the status bar), analysis_started(),
    analysis_finished(analysis), analysis_failed(text), report_written(paths).
    """

    message = Signal(str)
    analysis_started = Signal()
    analysis_finished = Signal(object)
    analysis_failed = Signal(str)
    report_written = Signal(object)
    report_failed = Signal(str)

    def __init__(self, state: ViewerState, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self._landmarks: dict[tuple[Any, ...], Mapping[str, Any]] = {}
        self.runner = LatestOnlyRunner("lesion analysis", self)
        self.runner.finished_latest.connect(self._on_analysis_done)
        self.runner.failed_latest.connect(self._on_analysis_error)
        self._threads: set[TaskThread] = set()
        state.volume_changed.connect(self._on_volume_changed)
        state.lesion_changed.connect(self._on_lesion_changed)

    # ----- state rules ------------------------------------------------------------
    def _on_volume_changed(self, _volume: Any) -> None:
        # A lesion and rulers of another scan mean nothing here (a session restores
        # its own after the volume).
        self.runner.cancel()
        self.state.update(lesion=None, measurements=(), lesion_analysis=None)

    def _on_lesion_changed(self, lesion: Any) -> None:
        analysis = self.state.lesion_analysis
        if analysis is not None and analysis.lesion != lesion:
            self.runner.cancel()
            self.state.lesion_analysis = None
        if lesion is None and self.state.vessel_colouring == "lesion":
            self.state.vessel_colouring = "off"  # nothing to measure the distance to

    def set_lesion(self, lesion: Lesion) -> bool:
        """Set ``state.lesion`` after checking it against the scan; False (and a
        message, state unchanged) when it does not fit."""
        vol = self.state.volume
        if vol is None:
            self.message.emit("Open a scan before marking a lesion")
            return False
        try:
            validate_lesion(lesion, vol)
        except ViewerError as exc:
            self.message.emit(f"Lesion not set: {exc}")
            return False
        self.state.lesion = lesion
        return True

    # ----- phantom legend ---------------------------------------------------------
    def _landmark_key(self, volume: Volume) -> tuple[Any, ...]:
        md = volume.metadata
        return (md.get("phantom_size"), md.get("phantom_seed"), md.get("phantom_clean"), md.get("patient_position"))

    def remember_landmarks(self, volume: Volume, landmarks: Mapping[str, Any]) -> None:
        """Keep the legend of a phantom just generated (callable from the load worker:
        one dict assignment), so the legend shortcut need not generate it again."""
        self._landmarks[self._landmark_key(volume)] = landmarks

    def cached_landmarks(self, volume: Volume) -> Mapping[str, Any] | None:
        return self._landmarks.get(self._landmark_key(volume)) if is_phantom(volume) else None

    def _landmarks_for(self, volume: Volume, progress: Any) -> Mapping[str, Any]:
        key = self._landmark_key(volume)
        lm = self._landmarks.get(key)
        if lm is None:
            lm = phantom_landmarks(volume, progress)
            self._landmarks[key] = lm
        return lm

    def lesion_from_legend(self, wait: bool = False) -> TaskThread | None:
        """Set the lesion to the phantom legend's erosion box (worker thread: the
        legend is regenerated the first time)."""
        vol = self.state.volume
        if not is_phantom(vol):
            self.message.emit("Lesion from the phantom legend: the scan shown is not the built-in phantom")
            return None
        assert vol is not None

        def work(progress: Any) -> Lesion:
            return lesion_from_phantom(self._landmarks_for(vol, progress))

        def done(lesion: Lesion) -> None:
            if self.state.volume is vol and self.set_lesion(lesion):
                self.message.emit("Lesion set from the phantom legend (erosion box)")

        return self._start(work, "phantom legend", done, self.message.emit, wait)

    # ----- analysis ---------------------------------------------------------------
    def analyse(self) -> int | None:
        """Analyse ``state.lesion`` on a worker (latest request wins); returns the job's
        serial number, or None when there is nothing to analyse."""
        vol, lesion = self.state.volume, self.state.lesion
        if vol is None or lesion is None:
            self.message.emit("Mark a lesion first (Mark lesion tool, or Lesion at crosshair)")
            return None
        state_masks, tf = self.state.class_masks, self.state.transfer_function

        def work(progress: Any) -> tuple[Volume, LesionAnalysis]:
            masks = masks_for(vol, state_masks, tf, lambda f, m: progress(0.3 * f, m))
            return vol, self._analyse(vol, masks, lesion, progress)

        self.analysis_started.emit()
        return self.runner.submit(work)

    def _analyse(self, vol: Volume, masks: ClassMasks, lesion: Lesion, progress: Any) -> LesionAnalysis:
        """:func:`analyse_lesion` on a worker thread, with the phantom legend's named
        arteries (for "nearest artery") when the scan is the built-in phantom;
        ``progress`` runs from 0.3 to 1."""
        from viewer.core.lesion import analyse_lesion

        arteries = None
        if is_phantom(vol):
            lm = self._landmarks_for(vol, lambda f, m: progress(0.3 + 0.2 * f, m))
            names = list(lm.get("arteries", ())) + list(lm.get("collaterals", ())) + list(lm.get("nutrients", ()))
            arteries = {n: lm["centerlines_lps"][n] for n in names if n in lm.get("centerlines_lps", {})}
        return analyse_lesion(
            vol, masks, lesion, artery_centerlines_lps=arteries, progress=lambda f, m: progress(0.5 + 0.5 * f, m)
        )

    def cancel(self) -> None:
        self.runner.cancel()
        self.message.emit("Lesion analysis cancelled")

    def _on_analysis_done(self, result: tuple[Volume, LesionAnalysis]) -> None:
        vol, analysis = result
        if vol is not self.state.volume or analysis.lesion != self.state.lesion:
            return  # the scan or the lesion changed meanwhile
        # The message first: the panel clears its message line when a clean result
        # arrives (its summary says it all); the status bar keeps it.
        if analysis.message:
            self.message.emit(f"Lesion analysis: {analysis.message}")
        else:
            self.message.emit(
                f"Lesion analysis: {len(analysis.entry_points)} entry point(s), {len(analysis.branches)} branch(es), "
                f"{analysis.n_branches_crossing} crossing the radius, lumen {analysis.lumen_volume_ml:.2f} ml"
            )
        self.state.lesion_analysis = analysis
        self.analysis_finished.emit(analysis)

    def _on_analysis_error(self, exc: Any) -> None:
        self.message.emit(f"Lesion analysis failed: {exc}")
        self.analysis_failed.emit(str(exc))

    # ----- report -----------------------------------------------------------------
    def write_report(self, out: str | Path, wait: bool = False, centrelines: bool = True) -> TaskThread | None:
        """Write the lesion report (sheet PNG, CSV, JSON) to ``out`` (a folder or the
        sheet's file name) on a worker; the current analysis is used, or made first.
        The sheet shows the window's vessel colouring (distance to the lesion when it
        is off: the report is about the lesion), keyhole and preset."""
        vol, lesion = self.state.volume, self.state.lesion
        if vol is None or lesion is None:
            self.message.emit("Mark a lesion before writing the lesion report")
            return None
        st = self.state
        state_masks, tf, analysis = st.class_masks, st.transfer_function, st.lesion_analysis
        show_identity = bool(st.show_identity)
        colouring = "lesion" if st.vessel_colouring == "off" else st.vessel_colouring
        keyhole, preset_name = bool(st.keyhole), str(st.preset_name)
        if analysis is not None and analysis.lesion != lesion:
            analysis = None

        def work(progress: Any) -> list[Path]:
            from viewer.export.lesion_report import write_lesion_report

            masks = masks_for(vol, state_masks, tf, lambda f, m: progress(0.3 * f, m))
            a = analysis if analysis is not None else self._analyse(vol, masks, lesion, progress)
            progress(1.0, "rendering the report sheet")
            paths = write_lesion_report(
                vol,
                masks,
                a,
                Path(out),
                tf=tf,
                show_identity=show_identity,
                preset_name=preset_name,
                colouring=colouring,
                keyhole=keyhole,
                centrelines=centrelines,
            )
            return list(paths)

        def done(paths: list[Path]) -> None:
            self.message.emit(f"Wrote the lesion report: {', '.join(p.name for p in paths)}")
            self.report_written.emit(paths)

        def failed(text: str) -> None:
            self.message.emit(f"Lesion report failed: {text}")
            self.report_failed.emit(text)

        return self._start(work, "lesion report", done, failed, wait)

    # ----- threads ----------------------------------------------------------------
    def _start(self, work: Any, name: str, done: Any, failed: Any, wait: bool) -> TaskThread:
        thread = TaskThread(work, name)
        thread.succeeded.connect(done)
        thread.failed.connect(lambda e: failed(str(e)))
        # Referenced until it ends: a running QThread must not be destroyed.
        self._threads.add(thread)
        thread.finished.connect(lambda: self._threads.discard(thread))
        thread.start()
        if wait:
            thread.wait()
        return thread

    @property
    def busy(self) -> bool:
        return self.runner.busy or any(t.isRunning() for t in self._threads)

    def shutdown(self) -> None:
        self.runner.shutdown()
        for t in list(self._threads):
            t.cancel()
            t.wait(15000)
        self._threads.clear()


def _item(value: Any) -> QTableWidgetItem:
    text = f"{value:.1f}" if isinstance(value, float) else ("-" if value is None else str(value))
    it = QTableWidgetItem(text)
    it.setFlags(it.flags() & ~Qt.ItemFlag.ItemIsEditable)
    return it


class LesionPanel(QWidget):
    """The "Lesion planning" panel: lesion, colouring, keyhole, analysis, report.

    Signals: overlays_changed(show_entry_points, show_centrelines).
    """

    overlays_changed = Signal(bool, bool)

    def __init__(
        self,
        state: ViewerState,
        controller: LesionController,
        tools: PointerTools,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("lesion_panel")
        self.state = state
        self.controller = controller
        self.tools = tools
        self._bindings: list[Any] = []
        self._updating = False
        outer = QVBoxLayout(self)
        outer.setContentsMargins(4, 4, 4, 4)

        # ----- the lesion -----
        box = QGroupBox("Lesion")
        form = QFormLayout()
        self.centre_spins = []
        centre_row = QHBoxLayout()
        for letter in "LPS":
            sp = QDoubleSpinBox()
            sp.setRange(-5000.0, 5000.0)
            sp.setDecimals(1)
            sp.setSuffix(f" {letter}")
            sp.setToolTip(f"Lesion centre, {letter} coordinate (LPS mm)")
            sp.editingFinished.connect(self._on_edited)
            centre_row.addWidget(sp)
            self.centre_spins.append(sp)
        form.addRow("Centre (mm)", centre_row)
        self.radius_spin = QDoubleSpinBox()
        self.radius_spin.setObjectName("lesion_radius")
        self.radius_spin.setRange(0.0, 1000.0)
        self.radius_spin.setDecimals(1)
        self.radius_spin.setSuffix(" mm")
        self.radius_spin.setValue(tools.radius_mm)
        self.radius_spin.setToolTip("Sphere radius; also the depth of a box dragged on a slice")
        self.radius_spin.valueChanged.connect(lambda v: setattr(self.tools, "radius_mm", float(v)))
        self.radius_spin.editingFinished.connect(self._on_edited)
        form.addRow("Radius", self.radius_spin)
        self.kind_label = QLabel(NO_LESION_TEXT)
        self.kind_label.setWordWrap(True)
        form.addRow(self.kind_label)
        row = QHBoxLayout()
        self.at_crosshair_button = QPushButton("At crosshair")
        self.at_crosshair_button.setToolTip("A sphere of the radius above around the crosshair")
        self.at_crosshair_button.clicked.connect(self.lesion_at_crosshair)
        self.legend_button = QPushButton("From the phantom legend")
        self.legend_button.setObjectName("lesion_from_legend")
        self.legend_button.setToolTip("The phantom's erosion box (the eroded cortex and its feeding collaterals)")
        self.legend_button.clicked.connect(lambda: self.controller.lesion_from_legend())
        self.clear_button = QPushButton("Clear")
        self.clear_button.clicked.connect(lambda: setattr(self.state, "lesion", None))
        for b in (self.at_crosshair_button, self.legend_button, self.clear_button):
            row.addWidget(b)
        form.addRow(row)
        box.setLayout(form)
        outer.addWidget(box)

        # ----- display -----
        box = QGroupBox("Display")
        form = QFormLayout()
        self.colour_combo = QComboBox()
        self.colour_combo.setObjectName("vessel_colouring")
        for label, value in COLOURINGS:
            self.colour_combo.addItem(label, value)
        self.colour_combo.setToolTip("Colour vessels by their distance (mm) to the lesion or to the bone surface")
        values = [v for _l, v in COLOURINGS]
        self._bindings.append(
            bind(
                state,
                "vessel_colouring",
                self.colour_combo.setCurrentIndex,
                self.colour_combo.currentIndexChanged.connect,
                to_widget=values.index,
                to_state=lambda i, cur: self._colouring_for(values[int(i)], cur),
            )
        )
        form.addRow("Colour vessels by", self.colour_combo)
        self.keyhole_check = QCheckBox("Keyhole (remove bone in the lesion)")
        self.keyhole_check.setObjectName("keyhole")
        self.keyhole_check.setToolTip("Cut away bone only inside the lesion; vessels and calcification stay")
        self._bindings.append(bind(state, "keyhole", self.keyhole_check.setChecked, self.keyhole_check.toggled.connect))
        form.addRow(self.keyhole_check)
        self.entry_check = QCheckBox("Show entry points")
        self.entry_check.setChecked(True)
        self.centreline_check = QCheckBox("Show centrelines")
        self.centreline_check.setChecked(True)
        for c in (self.entry_check, self.centreline_check):
            c.toggled.connect(lambda _on: self.overlays_changed.emit(*self.overlays))
            form.addRow(c)
        box.setLayout(form)
        outer.addWidget(box)

        # ----- analysis -----
        box = QGroupBox("What feeds the lesion")
        v = QVBoxLayout()
        row = QHBoxLayout()
        self.analyse_button = QPushButton("Analyse")
        self.analyse_button.setObjectName("lesion_analyse")
        self.analyse_button.setToolTip("Entry points through the cortex, branch map and lumen volume in the lesion")
        self.analyse_button.clicked.connect(lambda: self.controller.analyse())
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.controller.cancel)
        self.cancel_button.setEnabled(False)
        self.report_button = QPushButton("Write lesion report...")
        self.report_button.setObjectName("lesion_report")
        self.report_button.clicked.connect(lambda: self.write_report_dialog())
        for b in (self.analyse_button, self.cancel_button, self.report_button):
            row.addWidget(b)
        v.addLayout(row)
        self.message_label = QLabel("")
        self.message_label.setObjectName("lesion_message")
        self.message_label.setWordWrap(True)
        v.addWidget(self.message_label)
        self.summary_label = QLabel("")
        self.summary_label.setWordWrap(True)
        v.addWidget(self.summary_label)
        self.tabs = QTabWidget()
        self.entry_table = self._table(ENTRY_COLUMNS, "entry_table")
        self.branch_table = self._table(BRANCH_COLUMNS, "branch_table")
        self.tabs.addTab(self.entry_table, "Entry points")
        self.tabs.addTab(self.branch_table, "Branches")
        v.addWidget(self.tabs)
        box.setLayout(v)
        outer.addWidget(box)
        outer.addStretch(1)

        self.entry_table.cellClicked.connect(self._on_entry_clicked)
        self.branch_table.cellClicked.connect(self._on_branch_clicked)
        controller.message.connect(self.message_label.setText)
        controller.runner.busy_changed.connect(self._on_busy)
        state.lesion_changed.connect(self._on_lesion_changed)
        state.lesion_analysis_changed.connect(self._on_analysis_changed)
        state.volume_changed.connect(lambda vol: self.legend_button.setEnabled(is_phantom(vol)))
        self.legend_button.setEnabled(is_phantom(state.volume))
        self._on_lesion_changed(state.lesion)
        self._on_analysis_changed(state.lesion_analysis)

    @staticmethod
    def _table(columns: tuple[str, ...], name: str) -> QTableWidget:
        t = QTableWidget(0, len(columns))
        t.setObjectName(name)
        t.setHorizontalHeaderLabels(list(columns))
        t.verticalHeader().setVisible(False)
        t.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        t.setMinimumHeight(140)
        t.setToolTip("Click a row to move the crosshair there")
        return t

    @property
    def overlays(self) -> tuple[bool, bool]:
        """(show entry points, show centrelines)."""
        return self.entry_check.isChecked(), self.centreline_check.isChecked()

    def _colouring_for(self, value: str, current: str) -> str:
        if value == "lesion" and self.state.lesion is None:
            self.controller.message.emit("Colour by distance to the lesion: mark a lesion first")
            return current
        return value

    # ----- the lesion fields ------------------------------------------------------
    def _on_lesion_changed(self, lesion: Lesion | None) -> None:
        self._updating = True
        try:
            if lesion is not None:
                for sp, v in zip(self.centre_spins, lesion.center_lps, strict=True):
                    sp.setValue(v)
                if lesion.box_lps is None:
                    self.radius_spin.setValue(lesion.radius_mm)
        finally:
            self._updating = False
        for sp in self.centre_spins:
            sp.setEnabled(lesion is not None)
        if lesion is None:
            self.kind_label.setText(NO_LESION_TEXT)
        elif lesion.box_lps is None:
            self.kind_label.setText(f"Sphere, radius {lesion.radius_mm:.1f} mm")
        else:
            b = lesion.box_lps
            self.kind_label.setText(
                f"Box {b[1] - b[0]:.1f} x {b[3] - b[2]:.1f} x {b[5] - b[4]:.1f} mm (L x P x S); "
                "editing the centre moves it, the radius makes it a sphere"
            )
        self.analyse_button.setEnabled(lesion is not None)
        self.report_button.setEnabled(lesion is not None)

    def _on_edited(self) -> None:
        """Centre or radius typed in: move / resize the lesion (checked against the scan)."""
        lesion = self.state.lesion
        if self._updating or lesion is None:
            return
        centre = np.array([sp.value() for sp in self.centre_spins])
        radius = float(self.radius_spin.value())
        try:
            if lesion.box_lps is not None and self.sender() is not self.radius_spin:
                shift = centre - np.asarray(lesion.center_lps)
                new = Lesion.box(tuple(float(v + shift[i // 2]) for i, v in enumerate(lesion.box_lps)))
            else:
                new = Lesion.sphere(tuple(float(v) for v in centre), radius)  # type: ignore[arg-type]
        except ViewerError as exc:
            self.controller.message.emit(f"Lesion not changed: {exc}")
            self._on_lesion_changed(lesion)
            return
        if new != lesion and not self.controller.set_lesion(new):
            self._on_lesion_changed(lesion)  # show the lesion that stays

    def lesion_at_crosshair(self) -> bool:
        c = self.state.crosshair_lps
        if c is None:
            self.controller.message.emit("Open a scan and click a slice first")
            return False
        try:
            lesion = Lesion.sphere(c, float(self.radius_spin.value()))
        except ViewerError as exc:
            self.controller.message.emit(f"Lesion not set: {exc}")
            return False
        return self.controller.set_lesion(lesion)

    # ----- analysis results -------------------------------------------------------
    def _on_busy(self, busy: bool) -> None:
        self.cancel_button.setEnabled(busy)
        self.analyse_button.setText("Analysing..." if busy else "Analyse")
        if busy:
            self.message_label.setText("Analysing the lesion (entry points, branch map)...")

    def _on_analysis_changed(self, analysis: LesionAnalysis | None) -> None:
        self.entry_table.setRowCount(0)
        self.branch_table.setRowCount(0)
        if analysis is None:
            self.summary_label.setText("")
            return
        for e in analysis.entry_points:
            r = self.entry_table.rowCount()
            self.entry_table.insertRow(r)
            row = (e.number, *e.lps_mm, e.distance_to_center_mm, e.nearest_artery, e.calibre_mm)
            for c, value in enumerate(row):
                self.entry_table.setItem(r, c, _item(value))
        for b in analysis.branches:
            r = self.branch_table.rowCount()
            self.branch_table.insertRow(r)
            for c, value in enumerate((b.number, b.length_mm, b.diameter_mm, "yes" if b.crosses_radius else "no")):
                self.branch_table.setItem(r, c, _item(value))
        self.entry_table.resizeColumnsToContents()
        self.branch_table.resizeColumnsToContents()
        if not analysis.message:
            self.message_label.setText("")  # the summary below says it all
        self.summary_label.setText(
            f"{len(analysis.entry_points)} entry point(s); {len(analysis.branches)} branch(es), "
            f"{analysis.n_branches_crossing} crossing the radius; lumen volume {analysis.lumen_volume_ml:.2f} ml"
            + (f"\n{analysis.message}" if analysis.message else "")
        )

    def _on_entry_clicked(self, row: int, _col: int) -> None:
        analysis = self.state.lesion_analysis
        if analysis is not None and 0 <= row < len(analysis.entry_points):
            self.state.crosshair_lps = analysis.entry_points[row].lps_mm

    def _on_branch_clicked(self, row: int, _col: int) -> None:
        analysis = self.state.lesion_analysis
        if analysis is not None and 0 <= row < len(analysis.branches):
            pts = np.asarray(analysis.branches[row].points_lps)
            if len(pts):
                x, y, z = (float(v) for v in pts[len(pts) // 2])
                self.state.crosshair_lps = (x, y, z)

    # ----- report -----------------------------------------------------------------
    def write_report_dialog(self, out: str | Path | None = None, wait: bool = False) -> TaskThread | None:
        """Ask for the sheet's file name (unless given), then write the report."""
        if out is None:
            path, _ = QFileDialog.getSaveFileName(
                self, "Write lesion report", str(Path.home() / "lesion_report.png"), "PNG image (*.png)"
            )
            if not path:
                return None
            out = path
        return self.controller.write_report(out, wait=wait, centrelines=self.centreline_check.isChecked())


def install_lesion_planning(window: Any) -> LesionPanel:
    """Add the lesion-planning dock to ``window`` (a :class:`~viewer.ui.main_window.MainWindow`)
    and wire it: pointer tools to the slice views and the 3D view's picking, messages to
    the status bar, the Tools menu's lesion actions. Sets ``window.pointer_tools``,
    ``window.lesion_controller``, ``window.lesion_panel``, ``window.measure_tools``,
    ``window.action_analyse_lesion`` and ``window.action_lesion_report``."""
    from PySide6.QtWidgets import QDockWidget, QScrollArea

    from viewer.ui.measure_tools import MeasureToolsWidget

    state = window.state
    tools = PointerTools(state, window)
    controller = LesionController(state, window)
    panel = LesionPanel(state, controller, tools)
    measure = MeasureToolsWidget(state, tools)
    holder = QWidget()
    lay = QVBoxLayout(holder)
    lay.setContentsMargins(0, 0, 0, 0)
    lay.addWidget(measure)
    lay.addWidget(panel)
    scroll = QScrollArea()
    scroll.setWidget(holder)
    scroll.setWidgetResizable(True)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    dock = QDockWidget("Lesion planning", window)
    dock.setObjectName("lesion_dock")
    dock.setWidget(scroll)
    window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
    window.tabifyDockWidget(window.controls_dock, dock)
    window.controls_dock.raise_()

    def status(text: str) -> None:
        window.statusBar().showMessage(text, 10000)

    for v in window.slice_views.values():
        v.set_tools(tools)
    view = window.view3d
    tools.tool_changed.connect(lambda name: setattr(view, "pick_mode", name != "crosshair"))
    view.point_picked.connect(tools.point)
    view.pick_missed.connect(lambda: status("Nothing under the mouse in the 3D view: click on bone or a vessel"))
    panel.overlays_changed.connect(view.set_planning_overlays)

    def slice_markers(show_entry_points: bool, _centrelines: bool) -> None:
        for v in window.slice_views.values():
            v.show_entry_points = show_entry_points
            v.update()

    panel.overlays_changed.connect(slice_markers)
    tools.message.connect(status)
    tools.message.connect(panel.message_label.setText)
    controller.message.connect(status)
    window.pointer_tools = tools
    window.lesion_controller = controller
    window.lesion_panel = panel
    window.measure_tools = measure
    window.lesion_dock = dock
    window.action_analyse_lesion = window._action(
        "&Analyse lesion", lambda: controller.analyse(), "", "Entry points, branch map and lumen volume in the lesion"
    )
    window.action_lesion_report = window._action(
        "Write &lesion report...",
        lambda: panel.write_report_dialog(),
        "",
        "Sheet of four views with the lesion, entry points and distance colours; CSV and JSON tables",
    )
    for menu_action in window.menuBar().actions():
        if menu_action.text() == "&Tools" and menu_action.menu() is not None:
            menu = menu_action.menu()
            menu.addSeparator()
            menu.addAction(window.action_analyse_lesion)
            menu.addAction(window.action_lesion_report)
    return panel


__all__ = [
    "COLOURINGS",
    "LesionController",
    "LesionPanel",
    "install_lesion_planning",
    "is_phantom",
    "masks_for",
    "phantom_landmarks",
]
