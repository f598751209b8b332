"""The controls panel: preset, thresholds, histogram, classes, rendering, crop, clip, camera.

Every control edits the :class:`ViewerState` through :func:`viewer.core.state.bind`
(transfer-function controls build a new frozen ``TransferFunction`` with one thing
changed); none of them talks to the renderer. Slider holds are reported through
``interaction_started`` / ``interaction_finished`` so the 3D view can drop to its
interactive level of detail while a slider is dragged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)
from superqt import QLabeledDoubleRangeSlider
from superqt.sliders._labeled import EdgeLabelMode, LabelPosition

from viewer.core.state import ViewerState, bind
from viewer.core.transfer import TransferFunction
from viewer.ui.histogram import HistogramWidget

#: Range of the threshold controls (HU): fat to dense cortical bone.
VESSEL_RANGE_HU = (-200.0, 1500.0)
BONE_RANGE_HU = (100, 2000)

#: Camera buttons: (label, view name, shortcut key shown in the tooltip).
CAMERA_BUTTONS = (
    ("A", "anterior", "1"),
    ("P", "posterior", "2"),
    ("L", "left", "3"),
    ("R", "right", "4"),
    ("S", "superior", "5"),
    ("I", "inferior", "6"),
)

#: Clip-plane axes: label -> LPS axis index.
#: Clip-plane orientations: a patient axis (0, 1, 2 = L, P, S), or -1 = across the
#: current view direction (cut away what lies in front, as a surgeon opens a view).
VIEW_DIRECTION = -1
CLIP_AXES = (("Axial (S-I)", 2), ("Coronal (A-P)", 1), ("Sagittal (L-R)", 0), ("Across the view", VIEW_DIRECTION))


class ControlsPanel(QWidget):
    """All controls, bound to ``state``.

    Signals: interaction_started(), interaction_finished() (a slider is held /
    released), suggest_requested(), view_requested(name), reset_camera_requested(),
    crop_handles_toggled(bool), reset_crop_requested().
    """

    interaction_started = Signal()
    interaction_finished = Signal()
    suggest_requested = Signal()
    view_requested = Signal(str)
    reset_camera_requested = Signal()
    crop_handles_toggled = Signal(bool)
    reset_crop_requested = Signal()

    def __init__(self, state: ViewerState, presets: dict[str, TransferFunction], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("controls")
        self.state = state
        self.presets = dict(presets)
        self._bindings: list[Any] = []
        outer = QVBoxLayout(self)
        outer.setContentsMargins(6, 6, 6, 6)
        outer.setSpacing(8)

        # ----- preset -----
        box = QGroupBox("Preset")
        form = QFormLayout(box)
        self.preset_combo = QComboBox()
        self.preset_combo.addItems(list(self.presets))
        self.preset_combo.setToolTip("Transfer-function preset: how HU become colour and opacity.")
        form.addRow(self.preset_combo)
        outer.addWidget(box)
        self.preset_combo.textActivated.connect(self._on_preset_chosen)
        state.preset_name_changed.connect(self._show_preset_name)
        self._show_preset_name(state.preset_name)

        # ----- thresholds -----
        box = QGroupBox("Thresholds (HU)")
        grid = QGridLayout(box)
        grid.addWidget(QLabel("Vessel window"), 0, 0, 1, 2)
        self.vessel_slider = QLabeledDoubleRangeSlider(Qt.Orientation.Horizontal)
        # superqt's stubs type the double slider's range and step as int (they are float).
        self.vessel_slider.setRange(*VESSEL_RANGE_HU)  # type: ignore[arg-type]
        self.vessel_slider.setDecimals(0)
        self.vessel_slider.setSingleStep(5.0)  # type: ignore[arg-type]
        # The numbers at the ends are the window's low and high HU (typing one moves
        # that handle); superqt's default makes them the slider's *range*, which a
        # user would edit by mistake.
        self.vessel_slider.setEdgeLabelMode(EdgeLabelMode.LabelIsValue)
        self.vessel_slider.setHandleLabelPosition(LabelPosition.NoLabel)
        self.vessel_slider.setToolTip("Vessel window [low, high] in HU: contrast-filled vessels are drawn red.")
        grid.addWidget(self.vessel_slider, 1, 0, 1, 2)
        grid.addWidget(QLabel("Bone threshold"), 2, 0)
        self.bone_spin = QSpinBox()
        self.bone_spin.setRange(*BONE_RANGE_HU)
        self.bone_spin.setSingleStep(10)
        self.bone_spin.setSuffix(" HU")
        self.bone_spin.setToolTip("Bone threshold in HU: denser voxels are bone (ivory).")
        grid.addWidget(self.bone_spin, 2, 1)
        self.bone_slider = QSlider(Qt.Orientation.Horizontal)
        self.bone_slider.setRange(*BONE_RANGE_HU)
        self.bone_slider.setSingleStep(10)
        self.bone_slider.setPageStep(50)
        self.bone_slider.setToolTip(self.bone_spin.toolTip())
        grid.addWidget(self.bone_slider, 3, 0, 1, 2)
        self.histogram = HistogramWidget()
        grid.addWidget(self.histogram, 4, 0, 1, 2)
        self.suggest_button = QPushButton("Suggest")
        self.suggest_button.setToolTip("Suggest the vessel window and bone threshold from this scan's histogram.")
        self.suggest_button.clicked.connect(self.suggest_requested)
        grid.addWidget(self.suggest_button, 5, 0, 1, 2)
        outer.addWidget(box)

        tf_field = "transfer_function"
        self._bindings.append(
            bind(
                state,
                tf_field,
                lambda v: self.vessel_slider.setValue(v),
                self.vessel_slider.valueChanged.connect,
                to_widget=lambda tf: tuple(tf.vessel_window_hu),
                to_state=lambda w, tf: tf.with_vessel_window(*w),
            )
        )
        for widget in (self.bone_spin, self.bone_slider):
            self._bindings.append(
                bind(
                    state,
                    tf_field,
                    widget.setValue,
                    widget.valueChanged.connect,
                    to_widget=lambda tf: int(round(tf.bone_threshold_hu)),
                    to_state=lambda w, tf: tf.with_bone_threshold(float(w)),
                )
            )
        state.transfer_function_changed.connect(self._update_histogram_marks)
        self._update_histogram_marks(state.transfer_function)

        # ----- classes -----
        box = QGroupBox("Classes")
        grid = QGridLayout(box)
        self.separated_check = QCheckBox("Separated mode")
        self.separated_check.setToolTip(
            "Separate bone from vessels with a bone mask (S): no red fringe on bone,\n"
            "vessels touching bone stay red, calcified shells gold. The masks are recomputed\n"
            "in the background when a threshold changes."
        )
        grid.addWidget(self.separated_check, 0, 0, 1, 3)
        self._bind_tf_check(self.separated_check, lambda tf: tf.separated, lambda on, tf: tf.with_changes(separated=on))
        # Flags of the real-CT separation, each a bool field of the transfer function.
        self.real_ct_check = self._flag_check(
            grid,
            "Real-CT separation",
            "real_ct_separation",
            (4, 0, 1, 3),
            "Separate on real anatomy: body mask, bone as an object (cancellous bone too),\n"
            "plaques as calcification, a check for contrast (a scan without it shows no red),\n"
            "uncertain voxels (vessel touching cortex) kept visible.",
        )
        self.remove_table_check = self._flag_check(
            grid,
            "Remove table",
            "remove_table",
            (5, 0, 1, 3),
            "Drop the CT couch, head holder and anything else outside the body (real-CT separation)",
        )
        self.show_uncertain_check = self._flag_check(
            grid,
            "Show uncertain",
            "show_uncertain",
            (6, 0, 1, 2),
            "Draw voxels of unsure class (vessel touching cortex) in magenta",
        )
        self.show_removed_check = self._flag_check(
            grid,
            "Show removed",
            "show_removed",
            (6, 2, 1, 1),
            "Draw what the body mask removed (the couch) as a grey ghost",
        )
        # The contrast verdict: detected, or said by the user where the check is wrong.
        grid.addWidget(QLabel("Contrast"), 7, 0)
        self.contrast_combo = QComboBox()
        self.contrast_combo.setObjectName("contrast_combo")
        for text, value in (("auto (detect)", "auto"), ("yes: draw vessels", "yes"), ("no: vessel class empty", "no")):
            self.contrast_combo.addItem(text, value)
        self.contrast_combo.setToolTip(
            "Real-CT separation: does the scan have opacified (contrast-filled) vessels?\n"
            "auto: the separation checks for a contrast-filled lumen (the status bar says what it found).\n"
            "yes / no: say it where the check is wrong -- e.g. a scan without contrast at\n"
            "2-3 mm voxels drawn with red bone (no), or an angiogram whose arteries are too\n"
            "thin for the check (yes)."
        )
        self._bind_tf_combo(self.contrast_combo, "contrast")
        grid.addWidget(self.contrast_combo, 7, 1, 1, 2)
        self.bone_visible = QCheckBox("Bone")
        self.vessel_visible = QCheckBox("Vessels")
        self.bone_opacity = self._opacity_slider("bone")
        self.vessel_opacity = self._opacity_slider("vessel")
        for grid_row, (cls, check, slider) in enumerate(
            (("bone", self.bone_visible, self.bone_opacity), ("vessel", self.vessel_visible, self.vessel_opacity)),
            start=1,
        ):
            check.setToolTip(f"Show or hide the {cls} class.")
            grid.addWidget(check, grid_row, 0)
            grid.addWidget(QLabel("opacity"), grid_row, 1)
            grid.addWidget(slider, grid_row, 2)
            self._bind_tf_check(check, _class_getter(cls, "visible"), _class_setter(cls, "visible"))
            self._bindings.append(
                bind(
                    state,
                    tf_field,
                    slider.setValue,
                    slider.valueChanged.connect,
                    to_widget=_opacity_percent_getter(cls),
                    to_state=_opacity_percent_setter(cls),
                )
            )
        # Calcified shells are drawn as an opaque mesh (see viewer.core.classmap):
        # shown or hidden, no opacity (a translucent mesh cannot be depth-sorted
        # against the ray-cast volume, so vessels behind it would draw in front).
        self.calcification_visible = QCheckBox("Calcification")
        self.calcification_visible.setToolTip(
            "Show or hide calcified shells (e.g. the rim of a calcified mass), drawn gold in\n"
            "separated mode. Hide them to see the vessels behind."
        )
        grid.addWidget(self.calcification_visible, 3, 0, 1, 3)
        self._bind_tf_check(
            self.calcification_visible,
            _class_getter("calcification", "visible"),
            _class_setter("calcification", "visible"),
        )
        outer.addWidget(box)

        # ----- rendering -----
        box = QGroupBox("Rendering")
        row = QHBoxLayout(box)
        self.shading_check = QCheckBox("Shading")
        self.shading_check.setToolTip("Phong shading (lighting) of the volume.")
        self._bind_tf_check(
            self.shading_check,
            lambda tf: tf.shading.enabled,
            lambda on, tf: tf.with_changes(shading=_replace(tf.shading, enabled=on)),
        )
        row.addWidget(self.shading_check)
        self.blend_combo = QComboBox()
        self.blend_combo.addItem("Composite", "composite")
        self.blend_combo.addItem("MIP", "mip")
        self.blend_combo.setToolTip("Composite (volume rendering) or maximum-intensity projection.")
        self._bind_tf_combo(self.blend_combo, "blend_mode")
        row.addWidget(self.blend_combo)
        outer.addWidget(box)

        # ----- crop and clip -----
        box = QGroupBox("Crop and clip")
        grid = QGridLayout(box)
        self.crop_check = QCheckBox("Crop box handles")
        self.crop_check.setToolTip("Show the crop box in the 3D view; drag its handles to crop (C).")
        self.crop_check.toggled.connect(self.crop_handles_toggled)
        grid.addWidget(self.crop_check, 0, 0)
        self.reset_crop_button = QPushButton("Reset crop")
        self.reset_crop_button.setToolTip("Show the whole volume again.")
        self.reset_crop_button.clicked.connect(self.reset_crop_requested)
        grid.addWidget(self.reset_crop_button, 0, 1)
        self.clip_check = QCheckBox("Clip plane")
        self.clip_check.setToolTip("Cut the volume with a plane; the slider moves it.")
        grid.addWidget(self.clip_check, 1, 0)
        #: Camera direction of projection in LPS (set by the window); None: unknown.
        self.view_direction: Callable[[], Any] = _noop_direction
        self.clip_axis = QComboBox()
        for label, ax in CLIP_AXES:
            self.clip_axis.addItem(label, ax)
        self.clip_axis.setToolTip(
            "Axis the clip plane is perpendicular to; 'Across the view' cuts perpendicular to\n"
            "the current view direction (the slider then re-aims it at the view)."
        )
        grid.addWidget(self.clip_axis, 1, 1)
        self.clip_flip = QCheckBox("Flip")
        self.clip_flip.setToolTip("Keep the other side of the plane.")
        grid.addWidget(self.clip_flip, 2, 0)
        self.clip_slider = QSlider(Qt.Orientation.Horizontal)
        self.clip_slider.setRange(0, 1000)
        self.clip_slider.setValue(500)
        self.clip_slider.setToolTip("Clip plane position along its axis.")
        grid.addWidget(self.clip_slider, 2, 1)
        for sig in (
            self.clip_check.toggled,
            self.clip_axis.currentIndexChanged,
            self.clip_flip.toggled,
            self.clip_slider.valueChanged,
        ):
            sig.connect(self._update_clip_plane)
        state.volume_changed.connect(lambda _v: self._update_clip_plane())
        state.clip_plane_changed.connect(self._show_clip_plane)
        outer.addWidget(box)

        # ----- camera -----
        box = QGroupBox("Camera")
        row = QHBoxLayout(box)
        row.setSpacing(3)
        self.camera_buttons: dict[str, QPushButton] = {}
        for label, view, key in CAMERA_BUTTONS:
            b = QPushButton(label)
            b.setToolTip(f"{view.capitalize()} view ({key})")
            b.setFixedWidth(34)
            b.clicked.connect(lambda _c=False, v=view: self.view_requested.emit(v))
            row.addWidget(b)
            self.camera_buttons[view] = b
        b = QPushButton("Reset")
        b.setToolTip("Reset the camera to the whole volume (R)")
        b.clicked.connect(self.reset_camera_requested)
        row.addWidget(b)
        self.camera_buttons["reset"] = b
        outer.addWidget(box)
        outer.addStretch(1)

        # Level of detail while any slider is held.
        for s in (self.vessel_slider, self.bone_slider, self.bone_opacity, self.vessel_opacity, self.clip_slider):
            s.sliderPressed.connect(self.interaction_started)
            s.sliderReleased.connect(self.interaction_finished)

    # ----- helpers ----------------------------------------------------------------
    def _opacity_slider(self, cls: str) -> QSlider:
        s = QSlider(Qt.Orientation.Horizontal)
        s.setRange(0, 100)
        s.setToolTip(f"Peak opacity of the {cls} class (0-100 %).")
        return s

    def _flag_check(
        self, grid: QGridLayout, text: str, field: str, cell: tuple[int, int, int, int], tip: str
    ) -> QCheckBox:
        """A check box bound to the transfer function's bool ``field``, placed at ``cell``."""
        check = QCheckBox(text)
        check.setToolTip(tip)
        grid.addWidget(check, *cell)
        self._bind_tf_check(check, lambda tf: bool(getattr(tf, field)), lambda on, tf: tf.with_changes(**{field: on}))
        return check

    def _bind_tf_check(
        self,
        check: QCheckBox,
        get: Callable[[TransferFunction], bool],
        put: Callable[[bool, TransferFunction], TransferFunction],
    ) -> None:
        self._bindings.append(
            bind(self.state, "transfer_function", check.setChecked, check.toggled.connect, to_widget=get, to_state=put)
        )

    def _bind_tf_combo(self, combo: QComboBox, field: str) -> None:
        """A combo box whose items' data are the values of the transfer function's
        ``field``, bound both ways."""
        self._bindings.append(
            bind(
                self.state,
                "transfer_function",
                lambda value: combo.setCurrentIndex(combo.findData(value)),
                combo.currentIndexChanged.connect,
                to_widget=lambda tf: getattr(tf, field),
                to_state=lambda i, tf: tf.with_changes(**{field: combo.itemData(i)}),
            )
        )

    def _on_preset_chosen(self, name: str) -> None:
        tf = self.presets.get(name)
        if tf is None:
            return
        # Keep the scan-specific thresholds? No: a preset is a complete look, as in
        # Slicer; "Suggest" re-fits the thresholds to the scan afterwards.
        self.state.update(transfer_function=tf, preset_name=name)

    def _show_preset_name(self, name: str) -> None:
        i = self.preset_combo.findText(name)
        if i >= 0:
            self.preset_combo.setCurrentIndex(i)

    def set_presets(self, presets: dict[str, TransferFunction]) -> None:
        """Replace the list (after a preset was saved)."""
        self.presets = dict(presets)
        self.preset_combo.blockSignals(True)
        self.preset_combo.clear()
        self.preset_combo.addItems(list(self.presets))
        self.preset_combo.blockSignals(False)
        self._show_preset_name(self.state.preset_name)

    def _update_histogram_marks(self, tf: TransferFunction) -> None:
        self.histogram.set_thresholds(tf.vessel_window_hu, tf.bone_threshold_hu)

    def _show_clip_plane(self, plane: Any) -> None:
        """Reflect a clip plane set elsewhere (a session) in the check box."""
        on = plane is not None
        if self.clip_check.isChecked() != on:
            self.clip_check.blockSignals(True)
            self.clip_check.setChecked(on)
            self.clip_check.blockSignals(False)
        if on and self.clip_axis.currentData() != VIEW_DIRECTION:
            normal = np.asarray(plane[1])
            ax = int(np.argmax(np.abs(normal)))
            i = self.clip_axis.findData(ax)
            if i >= 0 and abs(normal[ax]) > 0.99:
                for w, v in ((self.clip_axis, i),):
                    w.blockSignals(True)
                    w.setCurrentIndex(v)
                    w.blockSignals(False)
                self.clip_flip.blockSignals(True)
                self.clip_flip.setChecked(bool(normal[ax] < 0))
                self.clip_flip.blockSignals(False)

    def _update_clip_plane(self, *_args: Any) -> None:
        vol = self.state.volume
        if vol is None or not self.clip_check.isChecked():
            self.state.clip_plane = None
            return
        ax = int(self.clip_axis.currentData())
        lo, hi = vol.bounds_lps()
        if ax == VIEW_DIRECTION:
            self.state.clip_plane = self._view_clip_plane(np.asarray(lo), np.asarray(hi))
            return
        origin = (np.asarray(lo) + np.asarray(hi)) / 2.0
        origin[ax] = lo[ax] + (hi[ax] - lo[ax]) * self.clip_slider.value() / 1000.0
        normal = np.zeros(3)
        normal[ax] = -1.0 if self.clip_flip.isChecked() else 1.0
        self.state.clip_plane = (
            (float(origin[0]), float(origin[1]), float(origin[2])),
            (float(normal[0]), float(normal[1]), float(normal[2])),
        )

    def _view_clip_plane(self, lo: np.ndarray, hi: np.ndarray) -> Any:
        """A plane across the current view direction (from :attr:`view_direction`),
        moved by the slider from the near side of the volume (0) to the far side
        (1000); it keeps what lies beyond it, or in front of it with Flip."""
        d = self.view_direction()
        if d is None:
            return None
        d = np.asarray(d, dtype=float)
        d /= np.linalg.norm(d)
        centre = (lo + hi) / 2.0
        half_depth = 0.5 * float(np.abs(hi - lo) @ np.abs(d))  # box extent along d
        t = self.clip_slider.value() / 1000.0
        origin = centre + d * (2.0 * t - 1.0) * half_depth
        normal = -d if self.clip_flip.isChecked() else d
        return (tuple(float(v) for v in origin), tuple(float(v) for v in normal))


def _noop_direction() -> None:
    return None


def _replace(obj: Any, **changes: Any) -> Any:
    from dataclasses import replace

    return replace(obj, **changes)


def _class_getter(cls: str, attr: str) -> Callable[[TransferFunction], Any]:
    return lambda tf: getattr(getattr(tf, cls), attr)


def _class_setter(cls: str, attr: str) -> Callable[[Any, TransferFunction], TransferFunction]:
    return lambda v, tf: tf.with_changes(**{cls: _replace(getattr(tf, cls), **{attr: v})})


def _opacity_percent_getter(cls: str) -> Callable[[TransferFunction], int]:
    """A class's opacity as the slider's 0-100 %."""
    return lambda tf: int(round(getattr(tf, cls).opacity * 100))


def _opacity_percent_setter(cls: str) -> Callable[[int, TransferFunction], TransferFunction]:
    """The slider's 0-100 % as the class's opacity."""
    set_opacity = _class_setter(cls, "opacity")
    return lambda percent, tf: set_opacity(percent / 100.0, tf)


__all__ = ["ControlsPanel"]
