"""The report sheet: anterior, posterior, medial and lateral views in one 2x2 image.

Medial and lateral depend on which leg is shown. For a left leg the lateral side is
the patient's left, so the lateral view is the view from the patient's left (camera
at +x in LPS) and the medial view the one from the right; for a right leg the other
way round. The side is taken from ``Volume.metadata["laterality"]`` (DICOM
(0020,0060) Laterality / (0020,0062) Image Laterality: ``"L"`` or ``"R"``) when the
loader or phantom sets it; otherwise it is guessed from which side of the patient's
mid-line (x = 0 in LPS) the scan's centre lies, and the labels say the side was
assumed. With no usable hint the cells are labelled "Left view" / "Right view" and
say which of them is lateral for which leg.

Every cell is rendered with one common zoom (the largest of the four views'), so the
four views are at the same scale and one scale bar value holds for all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from viewer.core.errors import ViewerError
from viewer.core.volume import Volume
from viewer.export.image import (
    ExportOptions,
    Figure,
    FigureContext,
    caption_lines,
    decorate,
    figure_settings,
    identity_line,
    identity_of,
    parallel_equivalent,
    render_view,
)
from viewer.export.imagefile import image_format_for, save_image
from viewer.export.overlays import draw_overlays, text_size_px
from viewer.render.camera import CameraState

if TYPE_CHECKING:  # pragma: no cover
    from viewer.render.scene import Scene

Side = Literal["left", "right"]

#: A scan centre this far (mm) from the mid-line is taken as one leg's side.
_MIDLINE_MARGIN_MM = 20.0

_LATERALITY_WORDS = {"l": "left", "left": "left", "r": "right", "right": "right"}


@dataclass(frozen=True)
class SheetCell:
    """One cell: the standard view rendered and the label drawn on it; with
    ``camera`` set, that camera instead (kept as it is, outside the common zoom: e.g.
    the lesion report's close-up)."""

    view: str  # a Scene.set_view name: "anterior", "posterior", "left", "right"
    label: str
    camera: CameraState | None = None


def leg_side(volume: Volume | None) -> tuple[Side | None, str]:
    """``(side, how)``: the leg's side and how it was known ("metadata", "assumed from
    the scan position", or "unknown" with side None)."""
    if volume is None:
        return None, "unknown"
    lat = str(volume.metadata.get("laterality", "") or "").strip().lower()
    if lat in _LATERALITY_WORDS:
        return _LATERALITY_WORDS[lat], "metadata"  # type: ignore[return-value]
    lo, hi = volume.bounds_lps()
    centre_x = float((lo[0] + hi[0]) / 2.0)
    # LPS: +x is the patient's left.
    if centre_x > _MIDLINE_MARGIN_MM:
        return "left", "assumed from the scan position"
    if centre_x < -_MIDLINE_MARGIN_MM:
        return "right", "assumed from the scan position"
    return None, "unknown"


def sheet_cells(volume: Volume | None) -> list[SheetCell]:
    """The four cells, in reading order (anterior, posterior / medial, lateral)."""
    side, how = leg_side(volume)
    cells = [
        SheetCell("anterior", "Anterior"),
        SheetCell("posterior", "Posterior"),
    ]
    if side is None:
        cells += [
            SheetCell("right", "Right view (medial for a left leg)"),
            SheetCell("left", "Left view (lateral for a left leg)"),
        ]
        return cells
    other: Side = "right" if side == "left" else "left"
    note = f"{side} leg" + ("" if how == "metadata" else ", assumed")
    cells += [
        SheetCell(other, f"Medial (from patient {other}; {note})"),
        SheetCell(side, f"Lateral (from patient {side}; {note})"),
    ]
    return cells


def _view_camera(scene: Scene, view: str) -> CameraState:
    scene.set_view(view)
    return scene.camera_state()


def render_report_sheet(
    scene: Scene,
    ctx: FigureContext,
    opts: ExportOptions,
    gap_px: int | None = None,
    cells: Sequence[SheetCell] | None = None,
) -> Figure:
    """Render the 2x2 sheet. Each cell is ``opts.width`` x ``opts.height`` times
    ``opts.scale``; the sheet adds a gap between cells and, with ``opts.caption``, a
    caption band at the bottom. ``cells`` (four, reading order) replaces
    :func:`sheet_cells`. The scene's camera is restored afterwards."""
    w, h = opts.size_px
    gap = max(2, h // 100) if gap_px is None else int(gap_px)
    cells = list(sheet_cells(ctx.volume) if cells is None else cells)
    if len(cells) != 4:
        raise ViewerError(f"a report sheet has four cells, got {len(cells)}")
    before = scene.camera_state()
    try:
        cams = [c.camera if c.camera is not None else _view_camera(scene, c.view) for c in cells]
    finally:
        scene.set_camera_state(before)
    # One zoom for all four cells: the widest view's, so nothing is cut off and one
    # scale bar value holds for the whole sheet. Parallel projection keeps the scale
    # exact when a bar is drawn; otherwise the user's projection is kept.
    if opts.scale_bar and opts.exact_scale:
        cams = [parallel_equivalent(c) for c in cams]
    standard = [cell.camera is None for cell in cells]
    if all(c.parallel_projection for c, std in zip(cams, standard, strict=True) if std) and any(standard):
        common = max(c.parallel_scale_mm for c, std in zip(cams, standard, strict=True) if std)
        cams = [replace(c, parallel_scale_mm=common) if std else c for c, std in zip(cams, standard, strict=True)]
    images = []
    labels_all = {}
    bar = None
    for cell, cam in zip(cells, cams, strict=False):
        img = render_view(scene, cam, w, h, transparent=opts.transparent, marker=opts.orientation_marker)
        img, placed, labels = decorate(img, cam, ctx, opts, title=cell.label, caption=False, identity=False)
        bar = bar or placed
        labels_all[cell.view] = labels
        images.append(img)
    channels = images[0].shape[2]
    lines: list[str] = caption_lines(ctx, opts.caption_text) if opts.caption else []
    if opts.show_identity and identity_of(ctx.volume):
        lines.append(identity_line(identity_of(ctx.volume)))
    # Caption text sized like a cell's, in a band below the grid.
    text_px = text_size_px(h)
    band = 0
    if lines:
        cap_px = max(8, int(text_px * 0.75))
        band = int(round(len(lines) * cap_px * 1.3 + 2 * max(4, text_px // 2) + cap_px))
    sheet = np.zeros((2 * h + gap + band, 2 * w + gap, channels), dtype=np.uint8)
    if channels == 4:
        sheet[..., 3] = 0
    for n, img in enumerate(images):
        r, c = divmod(n, 2)
        sheet[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = img
    if lines:
        if channels == 4:
            sheet[2 * h + gap :, :, 3] = 255  # an opaque band so the caption reads
        sheet, _ = draw_overlays(sheet, caption_lines=lines, text_px=text_px)
    settings = figure_settings(ctx, cams[0], (sheet.shape[1], sheet.shape[0]), opts, bar)
    settings["sheet"] = {
        "cells": [
            {"view": c.view, "label": c.label, "camera": cam.to_dict()} for c, cam in zip(cells, cams, strict=False)
        ],
        "cell_size_px": [w, h],
        "leg_side": leg_side(ctx.volume)[0],
        "leg_side_source": leg_side(ctx.volume)[1],
    }
    identity = identity_of(ctx.volume) if opts.show_identity else None
    return Figure(sheet, settings, identity or None, bar, cams[0], labels_all.get("anterior", {}))


def export_report_sheet(scene: Scene, path: str | Path, ctx: FigureContext, opts: ExportOptions) -> Figure:
    """Render the report sheet and write it to ``path`` (PNG/JPEG/TIFF)."""
    fmt = image_format_for(path, opts.fmt)
    if fmt == "JPEG" and opts.transparent:
        raise ViewerError("JPEG has no alpha channel: choose PNG or TIFF for a transparent background", path)
    fig = render_report_sheet(scene, ctx, opts)
    save_image(fig.image, path, fig.settings, fmt=fmt, identity=fig.identity)
    return fig


__all__ = ["SheetCell", "export_report_sheet", "leg_side", "render_report_sheet", "sheet_cells"]
