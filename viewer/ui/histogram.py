"""The HU histogram of the loaded volume, log counts, with the thresholds drawn on it."""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPainterPath, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

#: HU shown on the horizontal axis: air to dense cortical bone. Wider values (metal)
#: would squeeze the range a surgeon tunes (0-1000 HU) into a few pixels.
DEFAULT_RANGE_HU = (-1000.0, 2000.0)


class HistogramWidget(QWidget):
    """Log-count histogram of HU with the vessel window (red band) and the bone
    threshold (ivory line). Display only; the numbers live in the controls panel."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._counts: np.ndarray | None = None
        self._edges: np.ndarray | None = None
        self._vessel_window_hu: tuple[float, float] | None = None
        self._bone_threshold_hu: float | None = None
        self._range_hu = DEFAULT_RANGE_HU
        self.setMinimumHeight(90)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip(
            "Histogram of the scan's HU (logarithmic counts).\nRed band: vessel window. Ivory line: bone threshold."
        )

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        return QSize(260, 100)

    # ----- data ---------------------------------------------------------------
    def set_histogram(self, counts: np.ndarray | None, edges_hu: np.ndarray | None) -> None:
        """Counts per bin and the ``len(counts) + 1`` bin edges in HU (None clears)."""
        if counts is None or edges_hu is None or len(counts) == 0:
            self._counts = self._edges = None
        else:
            self._counts = np.asarray(counts, dtype=np.float64)
            self._edges = np.asarray(edges_hu, dtype=np.float64)
            lo = max(DEFAULT_RANGE_HU[0], float(self._edges[0]))
            hi = min(DEFAULT_RANGE_HU[1], float(self._edges[-1]))
            self._range_hu = (lo, hi) if hi > lo else DEFAULT_RANGE_HU
        self.update()

    def set_thresholds(self, vessel_window_hu: tuple[float, float] | None, bone_threshold_hu: float | None) -> None:
        self._vessel_window_hu = vessel_window_hu
        self._bone_threshold_hu = bone_threshold_hu
        self.update()

    @property
    def has_histogram(self) -> bool:
        return self._counts is not None

    # ----- drawing ------------------------------------------------------------
    def _plot_rect(self) -> QRectF:
        return QRectF(4, 4, max(1, self.width() - 8), max(1, self.height() - 20))

    def x_of_hu(self, hu: float) -> float:
        """Widget x (pixels) of a HU value."""
        r = self._plot_rect()
        lo, hi = self._range_hu
        return r.left() + (hu - lo) / (hi - lo) * r.width()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt API
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        p.fillRect(self.rect(), pal.base())
        r = self._plot_rect()
        text_pen = QPen(pal.text().color())
        small = QFont(self.font())
        small.setPointSizeF(max(6.5, small.pointSizeF() * 0.85))
        p.setFont(small)
        lo, hi = self._range_hu

        if self._vessel_window_hu is not None:
            a, b = (self.x_of_hu(v) for v in self._vessel_window_hu)
            p.fillRect(QRectF(a, r.top(), max(1.0, b - a), r.height()), QColor(220, 40, 30, 70))

        if self._counts is not None and self._edges is not None:
            centres = 0.5 * (self._edges[:-1] + self._edges[1:])
            keep = (centres >= lo) & (centres <= hi)
            c, h = centres[keep], np.log10(1.0 + self._counts[keep])
            top = float(h.max()) if h.size and h.max() > 0 else 1.0
            path = QPainterPath(QPointF(self.x_of_hu(float(c[0]) if c.size else lo), r.bottom()))
            for hu, v in zip(c, h, strict=False):
                path.lineTo(QPointF(self.x_of_hu(float(hu)), r.bottom() - v / top * r.height()))
            path.lineTo(QPointF(self.x_of_hu(float(c[-1]) if c.size else hi), r.bottom()))
            path.closeSubpath()
            p.fillPath(path, QColor(120, 140, 170, 200))
        else:
            p.setPen(text_pen)
            p.drawText(r, Qt.AlignmentFlag.AlignCenter, "no scan loaded")

        if self._vessel_window_hu is not None:
            p.setPen(QPen(QColor(220, 40, 30), 1.5))
            for v in self._vessel_window_hu:
                x = self.x_of_hu(v)
                p.drawLine(QPointF(x, r.top()), QPointF(x, r.bottom()))
        if self._bone_threshold_hu is not None:
            x = self.x_of_hu(self._bone_threshold_hu)
            p.setPen(QPen(QColor(120, 100, 60), 3.0))
            p.drawLine(QPointF(x, r.top()), QPointF(x, r.bottom()))
            p.setPen(QPen(QColor(240, 228, 200), 1.5))
            p.drawLine(QPointF(x, r.top()), QPointF(x, r.bottom()))

        # Axis ticks every 500 HU.
        p.setPen(text_pen)
        step = 500.0
        while r.width() * step / (hi - lo) < 60 and step < 1e5:  # labels must not overlap
            step *= 2
        t = math.ceil(lo / step) * step
        while t <= hi:
            x = self.x_of_hu(t)
            p.drawLine(QPointF(x, r.bottom()), QPointF(x, r.bottom() + 3))
            # Edge labels are aligned to the widget's edge instead of being clipped.
            if x - 30 < 0:
                rect, align = QRectF(0, r.bottom() + 3, 60, 14), Qt.AlignmentFlag.AlignLeft
            elif x + 30 > self.width():
                rect, align = QRectF(self.width() - 60, r.bottom() + 3, 60, 14), Qt.AlignmentFlag.AlignRight
            else:
                rect, align = QRectF(x - 30, r.bottom() + 3, 60, 14), Qt.AlignmentFlag.AlignHCenter
            p.drawText(rect, align, f"{t:g}")
            t += step
        p.end()


__all__ = ["HistogramWidget"]
