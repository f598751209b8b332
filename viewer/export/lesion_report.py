"""The lesion report (issue 10): a sheet of four views plus the tables of what feeds it.

The sheet is the report sheet of ``viewer.export.sheet`` (one 2x2 image, a scale bar
and orientation letters in every cell, a caption band) with the lesion scene: the
lesion outline, the numbered entry points, the branch centrelines and the vessels
coloured by distance (mm) with their colour bar. Cells: anterior, posterior, lateral
(the side from ``sheet.leg_side``; "left" when unknown) and a close-up at the lesion,
seen from the side of the scan it lies on. The title and caption carry no patient
identity unless ``show_identity`` is set.

Next to the sheet: ``<stem>_entry_points.csv`` and ``<stem>_branches.csv``
(``viewer.core.lesion.write_lesion_tables``) and ``<stem>.json``
(``LesionAnalysis.to_json_dict()``: ``entry_points`` each with ``lps_mm``,
``branches`` each with ``length_mm`` and ``diameter_mm``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from viewer.core.errors import ViewerError
from viewer.core.extraction import ClassMasks, class_masks_for
from viewer.core.fileio import atomic_write_text
from viewer.core.lesion import Lesion, LesionAnalysis, write_lesion_tables
from viewer.core.mask_policy import MaskSettings
from viewer.core.progress import ProgressFn
from viewer.core.state import ViewerState
from viewer.core.transfer import TransferFunction
from viewer.core.volume import Volume
from viewer.export.image import ExportOptions, FigureContext, identity_of
from viewer.export.imagefile import image_format_for, save_image
from viewer.export.overlays import direction_letters
from viewer.export.sheet import SheetCell, leg_side, render_report_sheet
from viewer.render.camera import CameraState
from viewer.render.scene_adapter import Overlays, reset

if TYPE_CHECKING:  # pragma: no cover
    from viewer.render.scene import Scene

#: File suffixes taken as "write the sheet here" (anything else is a folder).
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
#: Default cell size (pixels) of the report sheet.
REPORT_CELL_PX = (800, 600)


def scene_class_masks(volume: Volume, tf: TransferFunction, progress: ProgressFn | None = None) -> ClassMasks:
    """The class masks the scene draws for ``tf`` (its thresholds and separation flags),
    as the CLI, the report and the tests need them."""
    return class_masks_for(volume.hu, volume.spacing_mm, MaskSettings.of(tf), progress)


def report_paths(out: str | Path) -> tuple[Path, Path, Path]:
    """``(sheet, csv_stem, json)`` for an output: an image path (the sheet; tables next
    to it with its stem) or a folder (``lesion_report.png`` etc. inside it)."""
    p = Path(out).expanduser()
    sheet = p if p.suffix.lower() in _IMAGE_SUFFIXES else p / "lesion_report.png"
    return sheet, sheet.with_suffix(".csv"), sheet.with_suffix(".json")


def close_up_camera(volume: Volume, lesion: Lesion, *, margin: float = 1.6) -> CameraState:
    """A parallel camera on the lesion centre, looking from the side of the scan the
    lesion lies on (horizontally, from the scan's axis towards the lesion; anterior when
    it is on the axis), framing ``margin`` times the region's half-size."""
    lo, hi = volume.bounds_lps()
    c = np.asarray(lesion.center_lps, dtype=np.float64)
    out = c - (lo + hi) / 2.0
    out[2] = 0.0
    if np.linalg.norm(out) < 1e-3:
        out = np.array([0.0, -1.0, 0.0])  # anterior (LPS: -y)
    out /= np.linalg.norm(out)
    b = np.asarray(lesion.bounds_lps())
    half = float(np.max(b[1::2] - b[0::2]) / 2.0)
    dist = float(np.linalg.norm(hi - lo)) + 10.0
    return CameraState(
        position_lps=tuple(c + dist * out),
        focal_point_lps=tuple(c),
        view_up=(0.0, 0.0, 1.0),
        view_angle_deg=30.0,
        parallel_projection=True,
        parallel_scale_mm=max(10.0, margin * half),
    )


def report_cells(volume: Volume, lesion: Lesion) -> list[SheetCell]:
    """Anterior, posterior, lateral and a close-up at the lesion (reading order)."""
    side, how = leg_side(volume)
    if side is None:
        lateral = SheetCell("left", "From patient left (lateral for a left leg)")
    else:
        note = f"{side} leg" + ("" if how == "metadata" else ", assumed")
        lateral = SheetCell(side, f"Lateral (from patient {side}; {note})")
    cam = close_up_camera(volume, lesion)
    seen_from = direction_letters(np.subtract(cam.position_lps, cam.focal_point_lps))
    return [
        SheetCell("anterior", "Anterior"),
        SheetCell("posterior", "Posterior"),
        lateral,
        SheetCell("close-up", f"Close-up at the lesion (from {seen_from})", cam),
    ]


def summary_lines(analysis: LesionAnalysis, colouring: str) -> list[str]:
    """The caption's lesion lines (no identity)."""
    les = analysis.lesion
    c = ", ".join(f"{v:.1f}" for v in les.center_lps)
    region = "box" if les.box_lps is not None else f"radius {les.radius_mm:.1f} mm"
    lines = [
        f"Lesion at ({c}) mm LPS, {region}: {len(analysis.entry_points)} entry points, "
        f"{len(analysis.branches)} branches ({analysis.n_branches_crossing} crossing), "
        f"lumen {analysis.lumen_volume_ml:.2f} ml",
    ]
    if colouring != "off":
        lines.append(f"Vessels coloured by distance to the {colouring} (mm, colour bar)")
    if analysis.message:
        lines.append(analysis.message)
    return lines


def show_lesion(
    scene: Scene,
    volume: Volume,
    masks: ClassMasks,
    analysis: LesionAnalysis,
    *,
    tf: TransferFunction,
    colouring: str = "lesion",
    max_mm: float = 30.0,
    keyhole: bool = False,
    centrelines: bool = False,
) -> None:
    """Put ``volume`` with its masks in ``scene`` (separated) with the analysis's lesion
    and entry points (and its branch centrelines when asked), the keyhole and the
    distance colours, through the one state-to-scene adapter."""
    state = ViewerState(tf.with_changes(separated=True))
    state.update(
        volume=volume,
        class_masks=masks,
        lesion=analysis.lesion,
        vessel_colouring=colouring,
        keyhole=keyhole,
        lesion_analysis=analysis,
    )
    reset(scene, state, overlays=Overlays(entry_points=True, centrelines=centrelines), colour_max_mm=max_mm)


def write_lesion_report(
    volume: Volume,
    masks: ClassMasks,
    analysis: LesionAnalysis,
    out_dir_or_sheet_path: str | Path,
    *,
    tf: TransferFunction,
    show_identity: bool = False,
    preset_name: str = "",
    colouring: str = "lesion",
    max_mm: float = 30.0,
    keyhole: bool = False,
    cell_px: Sequence[int] = REPORT_CELL_PX,
    centrelines: bool = False,
) -> list[Path]:
    """Write the sheet, the two CSV tables and the JSON; returns their paths (sheet
    first). ``out_dir_or_sheet_path``: see :func:`report_paths` (a folder is created).
    ``centrelines`` draws the branch map too (off by default: dense maps hide the
    distance colours at sheet scale).
    No patient identity in the sheet, its metadata or the JSON unless ``show_identity``."""
    from viewer.render.scene import Scene

    sheet_path, csv_path, json_path = report_paths(out_dir_or_sheet_path)
    fmt = image_format_for(sheet_path)
    folder = sheet_path.parent
    if folder.exists() and not folder.is_dir():
        raise ViewerError(f"cannot write the lesion report into {folder}: it is not a folder", folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ViewerError(f"cannot create the report folder {folder}: {exc.strerror or exc}", folder) from None
    tf = tf.with_changes(separated=True, blend_mode="composite")
    w, h = (int(v) for v in cell_px)
    opts = ExportOptions(
        width=w,
        height=h,
        orientation_labels=True,
        scale_bar=True,
        caption=True,
        caption_text="; ".join(summary_lines(analysis, colouring)),
        show_identity=show_identity,
    )
    ctx = FigureContext(transfer_function=tf, preset_name=preset_name or tf.name, volume=volume)
    with Scene(offscreen=True) as scene:
        show_lesion(
            scene,
            volume,
            masks,
            analysis,
            tf=tf,
            colouring=colouring,
            max_mm=max_mm,
            keyhole=keyhole,
            centrelines=centrelines,
        )
        fig = render_report_sheet(scene, ctx, opts, cells=report_cells(volume, analysis.lesion))
    settings: dict[str, Any] = dict(fig.settings)
    settings["lesion_report"] = {
        "lesion": analysis.lesion.to_dict(),
        "vessel_colouring": colouring,
        "colour_bar_max_mm": float(max_mm),
        "keyhole": bool(keyhole),
        "n_entry_points": len(analysis.entry_points),
        "n_branches": len(analysis.branches),
    }
    written = [save_image(fig.image, sheet_path, settings, fmt=fmt, identity=fig.identity)]
    written += write_lesion_tables(analysis, csv_path)
    doc = analysis.to_json_dict()
    doc["sheet"] = sheet_path.name
    if show_identity and identity_of(volume):
        doc["identity"] = identity_of(volume)
    written.append(atomic_write_text(json_path, json.dumps(doc, indent=2), what="lesion table"))
    return written


__all__ = [
    "REPORT_CELL_PX",
    "close_up_camera",
    "report_cells",
    "report_paths",
    "scene_class_masks",
    "show_lesion",
    "summary_lines",
    "write_lesion_report",
]
