"""Axial, coronal and sagittal slice views: a QImage painted from ``slice_image``.

No VTK here: the slice is resampled by :func:`viewer.render.slices.slice_image` (which
knows the volume's placement in LPS) and turned into RGB by ``window_level_to_rgb``;
this widget only scales it to fit (keeping the pixels' physical aspect), draws the
crosshair and the orientation letters, and turns mouse events into LPS points.

Mouse: left click or drag moves the crosshair (the state's ``crosshair_lps``, which the
other views follow); right drag, or Shift + left drag, changes window (horizontal) and
level (vertical); the wheel steps through slices. Hovering reports HU and LPS mm.
With a pointer tool active (:class:`viewer.ui.measure_tools.PointerTools`: lesion,
ruler, angle) a left click hands its LPS point to the tool instead, and a left drag in
lesion mode spans a box.

Lesion planning overlays (all from the state, in LPS mm, so every view agrees): the
circle where the lesion sphere cuts this slice (or the box's section), the numbered
entry points of the analysis lying within :data:`MARKER_DEPTH_MM` of the slice, and
every ruler and angle projected onto the slice (solid where it lies in the slice,
dashed where it is projected from elsewhere), with its label.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPen, QPolygonF, QWheelEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from viewer.core.state import ViewerState
from viewer.render.slices import slice_image, window_level_to_rgb

if TYPE_CHECKING:  # pragma: no cover
    from viewer.ui.measure_tools import PointerTools

AXES = ("axial", "coronal", "sagittal")
#: LPS axis index each view's slice steps along (axial: S, coronal: P, sagittal: L).
NORMAL_AXIS = {"axial": 2, "coronal": 1, "sagittal": 0}
#: Letters for the +/- direction of each LPS axis.
_LETTERS = (("R", "L"), ("A", "P"), ("I", "S"))

#: Default slice window / level (HU) for CT angiography: contrast, bone and soft
#: tissue all distinguishable (a common "CTA" window is W 600-800, L 150-200).
DEFAULT_WINDOW_HU = 800.0
DEFAULT_LEVEL_HU = 200.0
#: Entry points and measurement ends within this distance (mm) of the slice plane are
#: drawn as lying in it (about two slices of a 1 mm CTA).
MARKER_DEPTH_MM = 2.5
#: A lesion-mode press that moves less than this (widget pixels) is a click, not a box.
BOX_DRAG_MIN_PX = 6.0
_LESION_COLOUR = QColor(60, 220, 255)
_ENTRY_COLOUR = QColor(255, 80, 200)
_MEASURE_COLOUR = QColor(120, 255, 120)


def _direction_letter(v: np.ndarray) -> str:
    """Orientation letter(s) of an LPS direction (dominant axis first)."""
    order = np.argsort(-np.abs(v))
    out = ""
    for ax in order[:2]:
        if abs(v[ax]) > 0.35:
            out += _LETTERS[ax][1 if v[ax] > 0 else 0]
    return out


class SliceViewWidget(QWidget):
    """One slice view bound to a :class:`ViewerState`.

    Signals: ``hovered(lps_mm: object, hu: object)`` (tuple or None, int or None) and
    ``window_level_changed(window_hu, level_hu)``.
    """

    hovered = Signal(object, object)
    window_level_changed = Signal(float, float)

    def __init__(self, state: ViewerState, axis: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        if axis not in AXES:
            raise ValueError(f"axis must be one of {AXES}, got {axis!r}")
        self.state = state
        self.axis = axis
        self.window_hu = DEFAULT_WINDOW_HU
        self.level_hu = DEFAULT_LEVEL_HU
        self._slice: Any = None  # SliceImage
        self._slice_key: tuple[Any, ...] | None = None
        self._qimage: QImage | None = None
        self._drag_wl: tuple[QPointF, float, float] | None = None
        #: The pointer tools (set by the window); None: clicks move the crosshair.
        self.tools: PointerTools | None = None
        self._tool_press: tuple[QPointF, tuple[float, float, float]] | None = None
        self._tool_drag: QPointF | None = None
        #: Whether the analysis' entry points are drawn (the lesion panel's check box).
        self.show_entry_points = True
        #: Numbers of the entry points drawn in the last paint (for tests, status).
        self.drawn_entry_numbers: list[int] = []
        #: How many measurements the last paint drew (projected or in plane).
        self.drawn_measurements = 0
        self.setObjectName(f"slice_{axis}")
        self.setMinimumSize(QSize(120, 120))
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.setToolTip(
            f"{axis.capitalize()} slice. Click: move the crosshair. Wheel: next slice.\n"
            "Right-drag or Shift+drag: window (left/right) and level (up/down)."
        )
        state.volume_changed.connect(self._on_volume_changed)
        state.crosshair_lps_changed.connect(self._on_crosshair_changed)
        for name in ("lesion", "measurements", "lesion_analysis"):
            state.event(name).connect(lambda _v: self.update())

    def set_tools(self, tools: PointerTools) -> None:
        """Route left clicks to ``tools`` while one of its tools is active."""
        self.tools = tools
        tools.pending_changed.connect(self.update)

    # ----- state -> view ----------------------------------------------------------
    def _on_volume_changed(self, _volume: Any) -> None:
        self._slice_key = None
        self._refresh()

    def _on_crosshair_changed(self, _lps: Any) -> None:
        self._refresh()

    def _refresh(self) -> None:
        vol = self.state.volume
        lps = self.state.crosshair_lps
        if vol is None or lps is None:
            self._slice = None
            self._qimage = None
            self.update()
            return
        # Only the coordinate along the view's normal selects a new slice; moving the
        # crosshair within the plane needs a repaint, not a reslice.
        key = (id(vol), round(float(lps[NORMAL_AXIS[self.axis]]), 3))
        if key != self._slice_key:
            self._slice = slice_image(vol, self.axis, lps)
            self._slice_key = key
            self._qimage = None
        self._make_image()
        self.update()

    def set_window_level(self, window_hu: float, level_hu: float) -> None:
        self.window_hu = max(1.0, float(window_hu))
        self.level_hu = float(level_hu)
        self._qimage = None
        self._make_image()
        self.update()
        self.window_level_changed.emit(self.window_hu, self.level_hu)

    def _make_image(self) -> None:
        if self._slice is None or self._qimage is not None:
            return
        rgb = np.ascontiguousarray(window_level_to_rgb(self._slice.hu, self.window_hu, self.level_hu), dtype=np.uint8)
        h, w = rgb.shape[:2]
        # QImage does not own the buffer: keep the array alive with the image.
        img = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888)
        self._rgb = rgb
        self._qimage = img

    # ----- geometry ---------------------------------------------------------------
    def image_rect(self) -> QRectF:
        """Where the slice is drawn (widget pixels), physical aspect kept."""
        if self._slice is None:
            return QRectF()
        h, w = self._slice.hu.shape
        sx, sy = self._pixel_spacing()
        width_mm, height_mm = w * sx, h * sy
        scale = min(self.width() / width_mm, self.height() / height_mm)
        dw, dh = width_mm * scale, height_mm * scale
        return QRectF((self.width() - dw) / 2, (self.height() - dh) / 2, dw, dh)

    def _pixel_spacing(self) -> tuple[float, float]:
        """(column step, row step) in mm: the width and height of one pixel."""
        row_mm, col_mm = self._slice.pixel_spacing_mm
        return float(col_mm), float(row_mm)

    def _pixel_to_lps_raw(self, col: float, row: float) -> np.ndarray:
        return np.asarray(self._slice.lps_of_pixel(row, col), dtype=np.float64)

    def widget_to_lps(self, pos: QPointF) -> tuple[float, float, float] | None:
        """LPS mm of a widget position, or None outside the image."""
        r = self.image_rect()
        if self._slice is None or not r.contains(pos):
            return None
        h, w = self._slice.hu.shape
        col = (pos.x() - r.left()) / r.width() * w - 0.5
        row = (pos.y() - r.top()) / r.height() * h - 0.5
        return tuple(float(v) for v in self._pixel_to_lps_raw(col, row))  # type: ignore[return-value]

    def lps_to_widget(self, lps: tuple[float, float, float]) -> QPointF | None:
        if self._slice is None:
            return None
        col, row = self._lps_to_pixel(lps)
        r = self.image_rect()
        h, w = self._slice.hu.shape
        return QPointF(r.left() + (col + 0.5) / w * r.width(), r.top() + (row + 0.5) / h * r.height())

    def _lps_to_pixel(self, lps: tuple[float, float, float]) -> tuple[float, float]:
        row, col = self._slice.pixel_of_lps(lps)
        return float(col), float(row)

    def widget_pos_of_crosshair(self) -> QPointF | None:
        """Where the crosshair is drawn (widget pixels); for tests and the status bar."""
        lps = self.state.crosshair_lps
        return None if lps is None else self.lps_to_widget(lps)

    @property
    def slice_position_mm(self) -> float | None:
        """The LPS coordinate (mm) along this view's normal of the slice shown."""
        if self._slice is None:
            return None
        return float(self._slice.position_lps[NORMAL_AXIS[self.axis]])

    # ----- painting ---------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt API
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(0, 0, 0))
        if self._qimage is None:
            p.setPen(QColor(150, 150, 150))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, f"{self.axis} (no scan)")
            p.end()
            return
        r = self.image_rect()
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        p.drawImage(r, self._qimage)
        c = self.widget_pos_of_crosshair()
        if c is not None:
            p.setPen(QPen(QColor(255, 210, 0, 200), 1))
            p.drawLine(QPointF(r.left(), c.y()), QPointF(r.right(), c.y()))
            p.drawLine(QPointF(c.x(), r.top()), QPointF(c.x(), r.bottom()))
        # Orientation letters at the middle of each edge, from the pixel->LPS mapping.
        p.setPen(QColor(230, 230, 120))
        h, w = self._slice.hu.shape
        o = self._pixel_to_lps_raw(0.0, 0.0)
        right = self._pixel_to_lps_raw(1.0, 0.0) - o
        down = self._pixel_to_lps_raw(0.0, 1.0) - o
        rect = self.rect().adjusted(4, 2, -4, -2)
        p.drawText(rect, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, _direction_letter(right))
        p.drawText(rect, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, _direction_letter(-right))
        p.drawText(rect, Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignHCenter, _direction_letter(-down))
        p.drawText(rect, Qt.AlignmentFlag.AlignBottom | Qt.AlignmentFlag.AlignHCenter, _direction_letter(down))
        p.setPen(QColor(200, 200, 200))
        pos = self.slice_position_mm
        label = self.axis.capitalize() + ("" if pos is None else f"  {pos:.1f} mm")
        p.drawText(rect, Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft, label)
        p.drawText(
            rect,
            Qt.AlignmentFlag.AlignBottom | Qt.AlignmentFlag.AlignLeft,
            f"W {self.window_hu:.0f}  L {self.level_hu:.0f}",
        )
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        self._paint_planning(p)
        p.end()

    # ----- lesion planning overlays ---------------------------------------------
    def _plane(self) -> tuple[np.ndarray, np.ndarray]:
        """(a point, the unit normal) of the slice plane, LPS mm."""
        sl = self._slice
        n = np.cross(np.asarray(sl.col_dir_lps, dtype=float), np.asarray(sl.row_dir_lps, dtype=float))
        return np.asarray(sl.origin_lps, dtype=float), n / np.linalg.norm(n)

    def _depth_mm(self, lps: Any) -> float:
        """Signed distance (mm) of an LPS point from the slice plane."""
        o, n = self._plane()
        return float((np.asarray(lps, dtype=float) - o) @ n)

    def _px_per_mm(self) -> float:
        return float(self.image_rect().width() / (self._slice.hu.shape[1] * self._pixel_spacing()[0]))

    def _paint_planning(self, p: QPainter) -> None:
        self._paint_lesion(p)
        self._paint_entry_points(p)
        self._paint_measurements(p)
        self._paint_tool_feedback(p)

    def _paint_lesion(self, p: QPainter) -> None:
        lesion = self.state.lesion
        if lesion is None:
            return
        p.setPen(QPen(_LESION_COLOUR, 2))
        p.setBrush(QBrush(QColor(60, 220, 255, 35)))
        if lesion.box_lps is None:
            d = self._depth_mm(lesion.center_lps)
            if abs(d) >= lesion.radius_mm:
                return
            # The sphere cuts the plane in a circle of radius sqrt(r^2 - d^2).
            r_px = float(np.sqrt(lesion.radius_mm**2 - d**2)) * self._px_per_mm()
            o, n = self._plane()
            c = self.lps_to_widget(tuple(np.asarray(lesion.center_lps) - d * n))
            if c is not None:
                p.drawEllipse(c, r_px, r_px)
            return
        b = lesion.box_lps
        ax = NORMAL_AXIS[self.axis]
        pos = self.slice_position_mm
        if pos is None or not b[2 * ax] <= pos <= b[2 * ax + 1]:
            return
        u, v = (a for a in range(3) if a != ax)
        corners = []
        for cu, cv in ((0, 0), (1, 0), (1, 1), (0, 1)):
            q = [0.0, 0.0, 0.0]
            q[ax], q[u], q[v] = pos, b[2 * u + cu], b[2 * v + cv]
            w = self.lps_to_widget(tuple(q))  # type: ignore[arg-type]
            if w is not None:
                corners.append(w)
        p.drawPolygon(QPolygonF(corners))

    def _paint_entry_points(self, p: QPainter) -> None:
        self.drawn_entry_numbers = []
        analysis = self.state.lesion_analysis
        if analysis is None or not self.show_entry_points:
            return
        for ep in analysis.entry_points:
            if abs(self._depth_mm(ep.lps_mm)) > MARKER_DEPTH_MM:
                continue
            c = self.lps_to_widget(ep.lps_mm)
            if c is None:
                continue
            p.setPen(QPen(_ENTRY_COLOUR, 2))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawEllipse(c, 6.0, 6.0)
            p.drawText(c + QPointF(8.0, -6.0), str(ep.number))
            self.drawn_entry_numbers.append(int(ep.number))

    def _paint_polyline(self, p: QPainter, pts_lps: Sequence[Any], label: str, label_at: int) -> None:
        """A measurement's points projected onto the slice; solid when they all lie
        in it, dashed otherwise."""
        pts = [self.lps_to_widget(tuple(q)) for q in pts_lps]
        if any(q is None for q in pts):
            return
        in_plane = all(abs(self._depth_mm(q)) <= MARKER_DEPTH_MM for q in pts_lps)
        p.setPen(QPen(_MEASURE_COLOUR, 2, Qt.PenStyle.SolidLine if in_plane else Qt.PenStyle.DashLine))
        for a, b in zip(pts[:-1], pts[1:], strict=True):
            p.drawLine(a, b)  # type: ignore[arg-type]
        for q in pts:
            p.drawEllipse(q, 3.0, 3.0)  # type: ignore[arg-type]
        if label:
            p.drawText(pts[label_at] + QPointF(6.0, 14.0), label)  # type: ignore[operator]

    def _paint_measurements(self, p: QPainter) -> None:
        self.drawn_measurements = 0
        p.setBrush(Qt.BrushStyle.NoBrush)
        for m in self.state.measurements:
            if hasattr(m, "vertex_lps"):
                self._paint_polyline(p, [m.a_lps, m.vertex_lps, m.b_lps], m.label(), 1)
            else:
                self._paint_polyline(p, [m.a_lps, m.b_lps], m.label(), 1)
            self.drawn_measurements += 1

    def _paint_tool_feedback(self, p: QPainter) -> None:
        """Points placed so far with the ruler/angle tool, and the box being dragged."""
        if self.tools is not None and self.tools.pending_lps:
            self._paint_polyline(p, self.tools.pending_lps, "", 0)
        if self._tool_press is not None and self._tool_drag is not None:
            p.setPen(QPen(_LESION_COLOUR, 1, Qt.PenStyle.DashLine))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(QRectF(self._tool_press[0], self._tool_drag).normalized())

    # ----- mouse ------------------------------------------------------------------
    def _wants_window_level(self, event: QMouseEvent) -> bool:
        b = event.buttons() if event.type() != event.Type.MouseButtonPress else event.button()
        if b & Qt.MouseButton.RightButton:
            return True
        return bool(b & Qt.MouseButton.LeftButton) and bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)

    def _tool_active(self) -> bool:
        return self.tools is not None and self.tools.active

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        if self._wants_window_level(event):
            self._drag_wl = (event.position(), self.window_hu, self.level_hu)
        elif event.button() == Qt.MouseButton.LeftButton and self._tool_active():
            lps = self.widget_to_lps(event.position())
            self._tool_press = None if lps is None else (event.position(), lps)
            self._tool_drag = None
        elif event.button() == Qt.MouseButton.LeftButton:
            self._move_crosshair(event.position())
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        pos = event.position()
        if self._drag_wl is not None:
            start, w0, l0 = self._drag_wl
            # 4 HU per pixel: a 200-pixel drag spans a typical CTA window.
            self.set_window_level(w0 + 4.0 * (pos.x() - start.x()), l0 - 4.0 * (pos.y() - start.y()))
        elif self._tool_press is not None:
            if self.tools is not None and self.tools.tool == "lesion":
                self._tool_drag = pos
                self.update()
        elif event.buttons() & Qt.MouseButton.LeftButton and not self._tool_active():
            self._move_crosshair(pos)
        lps = self.widget_to_lps(pos)
        hu = None if lps is None or self.state.volume is None else self.state.volume.hu_at_lps(lps)
        self.hovered.emit(lps, hu)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        self._drag_wl = None
        press, self._tool_press, self._tool_drag = self._tool_press, None, None
        if press is not None and self.tools is not None and event.button() == Qt.MouseButton.LeftButton:
            start, start_lps = press
            moved = (event.position() - start).manhattanLength()
            end_lps = self.widget_to_lps(event.position())
            if self.tools.tool == "lesion" and moved >= BOX_DRAG_MIN_PX and end_lps is not None:
                self.tools.box(start_lps, end_lps, NORMAL_AXIS[self.axis])
            else:
                self.tools.point(start_lps)
            self.update()
        event.accept()

    def leaveEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        self.hovered.emit(None, None)
        super().leaveEvent(event)

    def _move_crosshair(self, pos: QPointF) -> None:
        lps = self.widget_to_lps(pos)
        if lps is None:
            return
        # Keep the crosshair's coordinate along this view's normal exactly as it was
        # (the click is in this plane), so this view does not reslice.
        cur = self.state.crosshair_lps
        if cur is not None:
            lps = list(lps)  # type: ignore[assignment]
            ax = NORMAL_AXIS[self.axis]
            lps[ax] = cur[ax]  # type: ignore[index]
        self.state.crosshair_lps = tuple(lps)  # type: ignore[assignment]

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 - Qt API
        vol, cur = self.state.volume, self.state.crosshair_lps
        if vol is None or cur is None:
            return
        steps = event.angleDelta().y() / 120.0
        ax = NORMAL_AXIS[self.axis]
        step_mm = float(np.min(np.abs(np.asarray(vol.spacing_mm))))
        # Step by the voxel size along the LPS axis closest to this view's normal.
        d = np.abs(vol.direction[ax, :]) * np.asarray(vol.spacing_mm)
        step_mm = float(d.max()) if d.max() > 0 else step_mm
        lo, hi = vol.bounds_lps()
        new = list(cur)
        new[ax] = float(np.clip(cur[ax] + steps * step_mm, lo[ax], hi[ax]))
        self.state.crosshair_lps = tuple(new)  # type: ignore[assignment]
        event.accept()


__all__ = ["AXES", "NORMAL_AXIS", "SliceViewWidget"]
