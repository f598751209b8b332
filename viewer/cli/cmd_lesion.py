"""``vessel-viewer lesion``: what feeds a lesion (issue 10), headless.

Loads the scan (or the built-in phantom), separates it with the preset's thresholds
(the same masks as ``render`` and ``vessels``), runs
``viewer.core.lesion.analyse_lesion`` for the lesion given and prints its entry points
and branches as a table (or JSON with ``--json``); ``--sheet FILE`` also writes the
report sheet with CSV and JSON tables next to it. Examples::

    vessel-viewer lesion phantom --phantom-lesion --json
    vessel-viewer lesion scan/ --lesion 12.5 40 -210 30 --sheet report.png
    vessel-viewer lesion scan.nii.gz --lesion-box 0 40 20 60 -230 -190 --csv tables.csv

Bad input (a lesion outside the scan, radius 0 or larger than the scan, no vessel near
the lesion, a scan without contrast) prints one line and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from typing import Any

from viewer.core.errors import ViewerError
from viewer.core.lesion import Lesion, LesionAnalysis


def add_lesion_arguments(p: argparse.ArgumentParser, required: bool) -> None:
    """``--lesion L P S R`` / ``--lesion-box ...`` / ``--phantom-lesion`` (one of them)."""
    g = p.add_mutually_exclusive_group(required=required)
    g.add_argument(
        "--lesion",
        nargs=4,
        type=float,
        metavar=("L", "P", "S", "R"),
        help="lesion sphere: centre L P S (LPS mm) and radius R (mm)",
    )
    g.add_argument(
        "--lesion-box",
        nargs=6,
        type=float,
        metavar=("XMIN", "XMAX", "YMIN", "YMAX", "ZMIN", "ZMAX"),
        help="lesion box in LPS mm",
    )
    g.add_argument(
        "--phantom-lesion",
        action="store_true",
        help="built-in phantom only: the lesion from its legend (the eroded cortex's box)",
    )


def lesion_from_args(args: argparse.Namespace, landmarks: Mapping[str, object] | None) -> Lesion | None:
    """The lesion the arguments name (None when none is given); ViewerError if bad."""
    from viewer.core.lesion import lesion_from_phantom

    if getattr(args, "phantom_lesion", False):
        if landmarks is None:
            raise ViewerError("--phantom-lesion needs the built-in phantom (PATH 'phantom'); give --lesion L P S R")
        return lesion_from_phantom(landmarks)
    if getattr(args, "lesion_box", None) is not None:
        return Lesion.box(tuple(args.lesion_box))
    if getattr(args, "lesion", None) is not None:
        lps, r = args.lesion[:3], args.lesion[3]
        return Lesion.sphere(tuple(lps), r)
    return None


def load_with_landmarks(path: str, progress: Any = None) -> tuple[Any, Mapping[str, object] | None]:
    """``(volume, landmarks)``: the phantom's legend for ``phantom[:size]``, else None."""
    from viewer.core.session import is_builtin_source
    from viewer.export.sessions import open_source, phantom_size

    if is_builtin_source(path):
        from viewer import phantom

        ph = phantom.generate(phantom_size(path), progress=progress)
        return ph.volume, ph.landmarks
    return open_source(path, None, progress), None


def named_arteries(landmarks: Mapping[str, object] | None) -> dict[str, Any] | None:
    """The phantom's named artery centrelines (LPS mm), for the entry points' feeders."""
    if landmarks is None:
        return None
    lines = dict(landmarks.get("centerlines_lps", {}) or {})  # type: ignore[call-overload]
    names = set(landmarks.get("arteries", []) or [])  # type: ignore[call-overload]
    return {k: v for k, v in lines.items() if k in names} or None


def register(subparsers: argparse._SubParsersAction) -> None:
    from viewer.cli.cmd_render import parse_size

    p = subparsers.add_parser(
        "lesion",
        help="list what feeds a lesion: cortex entry points and vessel branches (and write a report)",
        description=(
            "Analyse the vessels around a lesion: where they enter the bone cortex inside it "
            "(position, distance to the lesion centre, nearest named artery, calibre) and the "
            "branch map within it (lengths, mean diameters, lumen volume). No patient identity "
            "is written unless --show-identity is given."
        ),
        epilog=(
            "PATH is a DICOM folder or file, a NIfTI/NRRD/MHA file, or 'phantom' / "
            "'phantom:small' / 'phantom:large'. Exit status: 0 done, 2 bad arguments or input "
            "(lesion outside the scan, radius 0 or larger than the scan, no vessel near it, "
            "no contrast)."
        ),
    )
    p.add_argument("path", metavar="PATH", help="scan to analyse")
    add_lesion_arguments(p, required=True)
    p.add_argument("--preset", metavar="NAME", help="preset whose thresholds to use (default: Bone + vessels)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--csv", metavar="FILE", help="write the tables: FILE_entry_points.csv and FILE_branches.csv")
    p.add_argument(
        "--sheet", metavar="FILE", help="write the report sheet (PNG/JPEG/TIFF) with CSV and JSON tables next to it"
    )
    p.add_argument(
        "--vessel-colour",
        choices=("lesion", "bone", "off"),
        default="lesion",
        help="sheet: colour vessels by distance to the lesion (default) or to bone",
    )
    p.add_argument("--colour-max", type=float, default=30.0, metavar="MM", help="sheet: colour bar maximum, mm")
    p.add_argument("--keyhole", action="store_true", help="sheet: remove the bone inside the lesion")
    p.add_argument("--centrelines", action="store_true", help="sheet: draw the branch centrelines too")
    p.add_argument("--size", type=parse_size, default=None, metavar="WxH", help="sheet cell size (default 800x600)")
    p.add_argument("--show-identity", action="store_true", help="sheet/JSON: include the patient's identity")
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing but the result and errors")
    p.set_defaults(func=run)


def format_table(analysis: LesionAnalysis) -> str:
    """The analysis as readable text (mm, ml)."""
    les = analysis.lesion
    c = ", ".join(f"{v:.1f}" for v in les.center_lps)
    if les.box_lps is not None:
        region = "box " + " ".join(f"{v:.1f}" for v in les.box_lps) + " mm"
    else:
        region = f"sphere radius {les.radius_mm:.1f} mm"
    out = [f"Lesion: centre ({c}) mm LPS, {region}"]
    out.append(f"Entry points: {len(analysis.entry_points)}")
    if analysis.entry_points:
        out.append(f"  {'#':>3} {'L mm':>8} {'P mm':>8} {'S mm':>8} {'to centre mm':>13} {'calibre mm':>11}  artery")
        for e in analysis.entry_points:
            x, y, z = e.lps_mm
            out.append(
                f"  {e.number:>3} {x:>8.1f} {y:>8.1f} {z:>8.1f} {e.distance_to_center_mm:>13.1f} "
                f"{e.calibre_mm:>11.2f}  {e.nearest_artery or '-'}"
            )
    out.append(f"Branches: {len(analysis.branches)} ({analysis.n_branches_crossing} crossing the lesion surface)")
    if analysis.branches:
        out.append(f"  {'#':>3} {'length mm':>10} {'diameter mm':>12}  crosses")
        for b in analysis.branches:
            crosses = "yes" if b.crosses_radius else "no"
            out.append(f"  {b.number:>3} {b.length_mm:>10.1f} {b.diameter_mm:>12.2f}  {crosses}")
    out.append(f"Lumen volume in the lesion: {analysis.lumen_volume_ml:.3f} ml")
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``vessel-viewer lesion``; returns the exit status."""
    os.environ.setdefault("VTK_SMP_BACKEND_IN_USE", "STDThread")
    from viewer.cli.cmd_render import _check_writable, _pick_preset, _progress_printer
    from viewer.core.lesion import analyse_lesion, validate_lesion
    from viewer.export.lesion_report import scene_class_masks

    # Cheap checks first: arguments and output folders, before the (slow) load.
    lesion = None if args.phantom_lesion else lesion_from_args(args, None)
    if args.phantom_lesion:
        from viewer.core.session import is_builtin_source

        if not is_builtin_source(args.path):
            raise ViewerError("--phantom-lesion needs the built-in phantom (PATH 'phantom'); give --lesion L P S R")
    if args.sheet:
        _check_writable(args.sheet, "report sheet")
        from viewer.export.imagefile import image_format_for

        image_format_for(args.sheet)
    if args.csv:
        _check_writable(args.csv, "table")
    if not (args.colour_max > 0):
        raise ViewerError(f"--colour-max must be a positive number of mm, got {args.colour_max:g}")
    tf, preset_name = _pick_preset(args.preset)
    progress = _progress_printer(args.quiet)
    volume, landmarks = load_with_landmarks(args.path, progress)
    if lesion is None:
        lesion = lesion_from_args(args, landmarks)
    assert lesion is not None
    validate_lesion(lesion, volume)
    masks = scene_class_masks(volume, tf, progress)
    arteries = named_arteries(landmarks)
    analysis = analyse_lesion(volume, masks, lesion, artery_centerlines_lps=arteries, progress=progress)
    if analysis.message:
        raise ViewerError(analysis.message)
    if args.json:
        print(json.dumps(analysis.to_json_dict(), indent=2))
    else:
        print(format_table(analysis))
    if args.csv:
        from viewer.core.lesion import write_lesion_tables

        for path in write_lesion_tables(analysis, _check_writable(args.csv, "table")):
            if not args.quiet:
                print(f"wrote {path}", file=sys.stderr)
    if args.sheet:
        from viewer.export.lesion_report import REPORT_CELL_PX, write_lesion_report

        paths = write_lesion_report(
            volume,
            masks,
            analysis,
            args.sheet,
            tf=tf,
            show_identity=args.show_identity,
            preset_name=preset_name,
            colouring=args.vessel_colour,
            max_mm=args.colour_max,
            keyhole=args.keyhole,
            centrelines=args.centrelines,
            cell_px=args.size or REPORT_CELL_PX,
        )
        if not args.quiet:
            for path in paths:
                print(f"wrote {path}", file=sys.stderr)
    return 0


__all__ = ["add_lesion_arguments", "format_table", "lesion_from_args", "load_with_landmarks", "register", "run"]
