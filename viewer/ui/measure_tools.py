"""Pointer tools shared by the slice views and the 3D view, and the measurement list.

:class:`PointerTools` holds which tool a left click uses ("crosshair", "lesion",
"ruler", "angle") and turns the points a view hands it (LPS mm, from the slice's
pixel -> patient mapping or from a pick on the 3D surface) into state edits:

* **crosshair**: the views handle the click themselves (the tools do nothing);
* **lesion**: a click sets a sphere of :attr:`PointerTools.radius_mm` around the point;
  a drag on a slice spans a box (its extent across the slice is the radius either
  side of the slice); the lesion is checked against the scan first and a bad one is
  reported, the state left as it was;
* **ruler**: two points make a :class:`~viewer.core.measure.Ruler`;
* **angle**: three points (arm end, vertex, arm end) make an
  :class:`~viewer.core.measure.Angle`.

Points placed so far (:attr:`PointerTools.pending_lps`) are drawn by the slice views.
:class:`MeasureToolsWidget` lists ``state.measurements`` with Delete (deleting one
keeps the others) and Clear.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from viewer.core.errors import ViewerError
from viewer.core.lesion import Lesion, validate_lesion
from viewer.core.measure import Angle, Measurement, Ruler
from viewer.core.state import ViewerState

Vec3 = tuple[float, float, float]
TOOLS: tuple[str, ...] = ("crosshair", "lesion", "ruler", "angle")
#: Points each measurement tool needs.
_POINTS_NEEDED = {"ruler": 2, "angle": 3}
#: Default lesion radius (mm): a calcific myonecrosis eroding the tibia is a few cm.
DEFAULT_RADIUS_MM = 20.0


def describe(m: Measurement) -> str:
    """One line for the list: kind, value and where (LPS mm)."""
    if isinstance(m, Ruler):
        return f"Ruler {m.label()}"
    return f"Angle {m.label()}"


class PointerTools(QObject):
    """The current left-click tool and the points placed with it.

    Signals: tool_changed(name), pending_changed() (points placed so far changed),
    message(text) (a bad lesion or measurement, said plainly; the state is unchanged).
    """

    tool_changed = Signal(str)
    pending_changed = Signal()
    message = Signal(str)

    def __init__(self, state: ViewerState, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self._tool = "crosshair"
        self.radius_mm = DEFAULT_RADIUS_MM
        self.pending_lps: list[Vec3] = []
        state.volume_changed.connect(lambda _v: self.clear_pending())

    @property
    def tool(self) -> str:
        return self._tool

    def set_tool(self, name: str) -> None:
        if name not in TOOLS:
            raise ValueError(f"tool must be one of {TOOLS}, got {name!r}")
        if name != self._tool:
            self._tool = name
            self.clear_pending()
            self.tool_changed.emit(name)

    @property
    def active(self) -> bool:
        """Whether clicks go to a tool (not to the crosshair / camera)."""
        return self._tool != "crosshair"

    def clear_pending(self) -> None:
        if self.pending_lps:
            self.pending_lps = []
            self.pending_changed.emit()

    # ----- input from the views -----------------------------------------------
    def point(self, lps: Sequence[float]) -> None:
        """A click at ``lps`` (LPS mm) in any view."""
        p: Vec3 = (float(lps[0]), float(lps[1]), float(lps[2]))
        if self._tool == "lesion":
            self._set_lesion(lambda: Lesion.sphere(p, self.radius_mm))
        elif self._tool in _POINTS_NEEDED:
            self.pending_lps.append(p)
            if len(self.pending_lps) >= _POINTS_NEEDED[self._tool]:
                pts, self.pending_lps = self.pending_lps, []
                self._add_measurement(pts)
            self.pending_changed.emit()

    def box(self, a_lps: Sequence[float], b_lps: Sequence[float], normal_axis: int) -> None:
        """A drag from ``a_lps`` to ``b_lps`` on a slice whose normal is LPS axis
        ``normal_axis``: a box lesion, as deep as :attr:`radius_mm` either side."""
        a, b = np.asarray(a_lps, dtype=float), np.asarray(b_lps, dtype=float)
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        lo[normal_axis] = a[normal_axis] - self.radius_mm
        hi[normal_axis] = a[normal_axis] + self.radius_mm
        bounds = tuple(float(v) for pair in zip(lo, hi, strict=True) for v in pair)
        self._set_lesion(lambda: Lesion.box(bounds))

    # ----- state edits ----------------------------------------------------------
    def _set_lesion(self, make: Callable[[], Lesion]) -> None:
        vol = self.state.volume
        if vol is None:
            self.message.emit("Open a scan before marking a lesion")
            return
        try:
            lesion = make()
            validate_lesion(lesion, vol)
        except ViewerError as exc:
            self.message.emit(f"Lesion not set: {exc}")
            return
        self.state.lesion = lesion

    def _add_measurement(self, pts: list[Vec3]) -> None:
        try:
            m: Measurement = Ruler(pts[0], pts[1]) if len(pts) == 2 else Angle(pts[0], pts[1], pts[2])
        except ViewerError as exc:
            self.message.emit(f"Measurement not added: {exc}")
            return
        self.state.measurements = (*self.state.measurements, m)
        self.message.emit(f"Added {describe(m)}")


class MeasureToolsWidget(QWidget):
    """Tool buttons (crosshair, lesion, ruler, angle) and the list of measurements."""

    def __init__(self, state: ViewerState, tools: PointerTools, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("measure_tools")
        self.state = state
        self.tools = tools
        box = QGroupBox("Click tool and measurements")
        grid = QGridLayout()
        self.tool_group = QButtonGroup(self)
        self.tool_buttons: dict[str, QPushButton] = {}
        tips = {
            "crosshair": "Click in a slice moves the crosshair; drag in 3D turns the camera",
            "lesion": "Click (slice or 3D surface): lesion sphere of the radius below; drag on a slice: a box",
            "ruler": "Two clicks (slices or 3D surface): a distance in mm",
            "angle": "Three clicks: arm end, vertex, arm end: an angle in degrees",
        }
        for i, name in enumerate(TOOLS):
            b = QPushButton({"crosshair": "Crosshair", "lesion": "Mark lesion"}.get(name, name.capitalize()))
            b.setObjectName(f"tool_{name}")
            b.setCheckable(True)
            b.setToolTip(tips[name])
            self.tool_group.addButton(b)
            self.tool_buttons[name] = b
            grid.addWidget(b, i // 2, i % 2)
            b.toggled.connect(functools.partial(self._on_tool_toggled, name))
        self.tool_buttons[tools.tool].setChecked(True)
        tools.tool_changed.connect(lambda n: self.tool_buttons[n].setChecked(True))
        self.list = QListWidget()
        self.list.setObjectName("measurement_list")
        self.list.setMaximumHeight(110)
        self.delete_button = QPushButton("Delete")
        self.delete_button.setToolTip("Delete the selected measurement (the others stay)")
        self.delete_button.clicked.connect(self.delete_selected)
        self.clear_button = QPushButton("Clear all")
        self.clear_button.clicked.connect(lambda: setattr(self.state, "measurements", ()))
        row = QHBoxLayout()
        row.addWidget(self.delete_button)
        row.addWidget(self.clear_button)
        v = QVBoxLayout()
        v.addLayout(grid)
        v.addWidget(self.list)
        v.addLayout(row)
        box.setLayout(v)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(box)
        state.measurements_changed.connect(self._on_measurements_changed)
        self._on_measurements_changed(state.measurements)

    def _on_tool_toggled(self, name: str, on: bool) -> None:
        if on:
            self.tools.set_tool(name)

    def _on_measurements_changed(self, items: Sequence[Measurement]) -> None:
        row = self.list.currentRow()
        self.list.clear()
        for i, m in enumerate(items, start=1):
            self.list.addItem(f"{i}. {describe(m)}")
        if items:
            self.list.setCurrentRow(min(max(row, 0), len(items) - 1))
        self.delete_button.setEnabled(bool(items))
        self.clear_button.setEnabled(bool(items))

    def delete_selected(self) -> None:
        """Delete the selected measurement; the others keep their order."""
        row = self.list.currentRow()
        items = self.state.measurements
        if 0 <= row < len(items):
            self.state.measurements = items[:row] + items[row + 1 :]


__all__ = ["DEFAULT_RADIUS_MM", "TOOLS", "MeasureToolsWidget", "PointerTools", "describe"]
