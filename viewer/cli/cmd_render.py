"""``vessel-viewer render``: figures, report sheets and movies without a display.

Same code as the GUI's File > Export actions (``viewer.export``), rendering offscreen
(VTK picks EGL when there is no X server). Examples::

    vessel-viewer render phantom:small --out figure.png
    vessel-viewer render scan/ --preset "Vessels only" --separated --view left \\
        --size 1920x1080 --scale 2 --scale-bar --orientation-labels --caption --out fig.png
    vessel-viewer render --session case.vvsession.json --sheet --out sheet.png
    vessel-viewer render phantom --turntable spin.mp4 --duration 6 --fps 15

Bad arguments or input print one line (``vessel-viewer render: error: ...``) and exit
with status 2, with no traceback.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Any

from viewer.cli import add_contrast_argument
from viewer.cli.cmd_lesion import add_lesion_arguments, lesion_from_args, load_with_landmarks
from viewer.core.errors import ViewerError
from viewer.core.progress import ProgressFn

VIEWS = ("anterior", "posterior", "left", "right", "superior", "inferior")
AXES = ("superior-inferior", "anterior-posterior", "left-right")
DEFAULT_SIZE = (1920, 1080)


def parse_size(text: str) -> tuple[int, int]:
    """``"1920x1080"`` -> ``(1920, 1080)``; argparse turns the error into exit 2."""
    m = re.fullmatch(r"\s*(\d{1,5})\s*[xX\u00d7]\s*(\d{1,5})\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"size must be WIDTHxHEIGHT in pixels, e.g. 1920x1080, got {text!r}")
    w, h = int(m.group(1)), int(m.group(2))
    if not (16 <= w <= 8192 and 16 <= h <= 8192):
        raise argparse.ArgumentTypeError(f"width and height must be 16..8192 pixels, got {w}x{h}")
    return w, h


def parse_scale(text: str) -> float:
    try:
        s = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"scale must be a number from 1 to 4, got {text!r}") from None
    if not 1.0 <= s <= 4.0:
        raise argparse.ArgumentTypeError(f"scale must be from 1 to 4, got {text}")
    return s


def _positive(kind: type) -> Any:
    def conv(text: str) -> Any:
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
        if v <= 0:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
        return v

    return conv


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "render",
        help="render a figure, report sheet or movie without a display",
        description=(
            "Render the 3D view of a scan (or of the built-in phantom) offscreen and write "
            "a figure (PNG/JPEG/TIFF), a report sheet (anterior, posterior, medial, lateral) "
            "and/or a movie (turntable or threshold sweep, MP4 or GIF). No patient identity "
            "is written unless --show-identity is given."
        ),
        epilog=(
            "PATH is a DICOM folder or file, a NIfTI/NRRD/MHA file, or 'phantom' / "
            "'phantom:small' / 'phantom:large' for the built-in lower-leg phantom. "
            "Exit status: 0 done, 2 bad arguments or input."
        ),
    )
    p.add_argument("path", nargs="?", metavar="PATH", help="scan to render (omit with --session)")
    p.add_argument("--series", metavar="KEY", help="series to load from a folder holding several")
    p.add_argument("--session", metavar="FILE", help="restore a saved session (scan, preset, camera, crop...)")
    p.add_argument("--preset", metavar="NAME", help="preset name, or a preset .json file (default: Bone + vessels)")
    sep = p.add_mutually_exclusive_group()
    sep.add_argument(
        "--separated",
        dest="separated",
        action="store_true",
        default=None,
        help="separate bone from vessels with a bone mask",
    )
    sep.add_argument(
        "--no-separated", dest="separated", action="store_false", help="use one transfer function on raw HU"
    )
    tbl = p.add_mutually_exclusive_group()
    tbl.add_argument(
        "--remove-table",
        dest="remove_table",
        action="store_true",
        default=None,
        help="separated mode: drop the CT couch and holders outside the body (the presets' default)",
    )
    tbl.add_argument(
        "--keep-table",
        dest="remove_table",
        action="store_false",
        help="separated mode: classify everything, the couch included",
    )
    p.add_argument(
        "--real-ct",
        action="store_true",
        help="separated mode: the real-CT separation (body mask, bone object, plaque and contrast checks)",
    )
    add_contrast_argument(p)
    p.add_argument(
        "--show-uncertain",
        action="store_true",
        help="separated mode: draw voxels of unsure class (vessel touching cortex) in magenta",
    )
    p.add_argument(
        "--show-removed",
        action="store_true",
        help="separated mode: draw what the body mask removed (the couch) as a grey ghost",
    )
    add_lesion_arguments(p, required=False)
    p.add_argument("--keyhole", action="store_true", help="remove the bone inside the lesion (vessels and mass stay)")
    p.add_argument(
        "--vessel-colour",
        choices=("off", "lesion", "bone"),
        default=None,
        help="colour vessels by distance (mm) to the lesion or to bone, with a colour bar (default: off)",
    )
    p.add_argument("--colour-max", type=_positive(float), default=30.0, metavar="MM", help="colour bar maximum (mm)")
    p.add_argument(
        "--ruler",
        nargs=6,
        type=float,
        action="append",
        metavar=("AL", "AP", "AS", "BL", "BP", "BS"),
        help="draw a ruler between two LPS points (mm); repeatable",
    )
    p.add_argument(
        "--angle",
        nargs=9,
        type=float,
        action="append",
        metavar=("AL", "AP", "AS", "VL", "VP", "VS", "BL", "BP", "BS"),
        help="draw the angle at vertex V between points A and B (LPS mm); repeatable",
    )
    p.add_argument("--view", choices=VIEWS, default=None, help="camera view (default: anterior)")
    p.add_argument(
        "--size",
        type=parse_size,
        default=None,
        metavar="WxH",
        help=f"view size in pixels (default: {DEFAULT_SIZE[0]}x{DEFAULT_SIZE[1]}; per cell with --sheet)",
    )
    p.add_argument(
        "--scale",
        type=parse_scale,
        default=1.0,
        metavar="S",
        help="resolution multiplier 1..4: the image is S times --size (default 1)",
    )
    p.add_argument("--out", metavar="FILE", help="figure (or sheet) to write: .png (default), .jpg, .tif")
    p.add_argument("--sheet", action="store_true", help="write a 2x2 report sheet to --out instead of one view")
    p.add_argument("--turntable", metavar="MOVIE", help="also write a turntable movie (.mp4 or .gif)")
    p.add_argument("--sweep", metavar="MOVIE", help="also write a threshold sweep movie (.mp4 or .gif)")
    p.add_argument("--axis", choices=AXES, default="superior-inferior", help="turntable rotation axis")
    p.add_argument("--duration", type=_positive(float), default=6.0, metavar="SECONDS", help="movie length (default 6)")
    p.add_argument("--fps", type=_positive(float), default=15.0, help="movie frame rate (default 15)")
    p.add_argument("--frames", type=_positive(int), default=None, help="movie frame count (overrides --duration)")
    p.add_argument(
        "--movie-size",
        type=parse_size,
        default=None,
        metavar="WxH",
        help="movie frame size (default: --size, or 640x480 without --size)",
    )
    p.add_argument("--transparent", action="store_true", help="transparent background (PNG/TIFF only)")
    p.add_argument(
        "--scale-bar",
        action="store_true",
        help="draw a scale bar in mm (renders in parallel projection so it is exact)",
    )
    p.add_argument("--orientation-labels", action="store_true", help="A/P/L/R/S/I letters on the image edges")
    p.add_argument("--orientation-marker", action="store_true", help="the labelled orientation cube")
    p.add_argument(
        "--caption",
        nargs="?",
        const="",
        default=None,
        metavar="TEXT",
        help="caption with the preset and thresholds (and TEXT if given)",
    )
    p.add_argument(
        "--show-identity",
        action="store_true",
        help="include the patient's name/ID/birth date in the caption and metadata (off by default)",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors")
    p.set_defaults(func=run)


# ----------------------------------------------------------------------------------
def _check_writable(path: str, what: str) -> Path:
    p = Path(path).expanduser()
    folder = p.parent if str(p.parent) else Path(".")
    if not folder.is_dir():
        raise ViewerError(f"cannot write the {what} {p}: the folder {folder} does not exist", p)
    if not os.access(folder, os.W_OK):
        raise ViewerError(f"cannot write the {what} {p}: the folder {folder} is not writable", p)
    if p.is_dir():
        raise ViewerError(f"cannot write the {what} {p}: it is a folder", p)
    return p


def _pick_preset(name: str | None) -> tuple[Any, str]:
    from viewer.core.presets import default_preset_name, list_presets, load_preset

    if name and name.lower().endswith(".json") and Path(name).is_file():
        tf = load_preset(name)
        return tf, tf.name
    presets = list_presets()
    wanted = name or default_preset_name()
    if wanted in presets:
        return presets[wanted], wanted
    folded = {k.casefold(): k for k in presets}
    if wanted.casefold() in folded:
        key = folded[wanted.casefold()]
        return presets[key], key
    known = ", ".join(repr(k) for k in presets)
    raise ViewerError(f"unknown preset {wanted!r}; known presets: {known}")


def _progress_printer(quiet: bool) -> ProgressFn:
    last = {"step": -1}

    def progress(fraction: float, message: str) -> None:
        if quiet:
            return
        step = int(fraction * 10)
        if step != last["step"]:
            last["step"] = step
            print(f"  {fraction * 100:5.1f}%  {message}", file=sys.stderr)

    return progress


NEEDS_LESION = "--keyhole and --vessel-colour lesion need a lesion: give --lesion L P S R or --lesion-box"


def _measurements(args: argparse.Namespace) -> list[Any]:
    from viewer.core.measure import Angle, Ruler

    out: list[Any] = [Ruler(tuple(r[:3]), tuple(r[3:])) for r in args.ruler or ()]
    out += [Angle(tuple(a[:3]), tuple(a[3:6]), tuple(a[6:])) for a in args.angle or ()]
    return out


def _apply_lesion(state: Any, lesion: Any, args: argparse.Namespace, measurements: list[Any]) -> None:
    """The lesion, keyhole, distance colouring and measurements of the arguments, into
    the viewer state the scene is reset to."""
    if lesion is not None:
        from viewer.core.lesion import validate_lesion

        validate_lesion(lesion, state.volume)
        state.lesion = lesion
    if (args.keyhole or args.vessel_colour == "lesion") and state.lesion is None:
        raise ViewerError(NEEDS_LESION)  # the session had none either
    # Only what was asked for: a restored session keeps its own keyhole and colours.
    if args.keyhole:
        state.keyhole = True
    if args.vessel_colour is not None:
        state.vessel_colouring = args.vessel_colour
    if measurements:
        state.measurements = measurements


def run(args: argparse.Namespace) -> int:
    """Entry point of ``vessel-viewer render``; returns the exit status."""
    os.environ.setdefault("VTK_SMP_BACKEND_IN_USE", "STDThread")
    if not (args.out or args.turntable or args.sweep):
        raise ViewerError("nothing to write: give --out FILE (and/or --turntable MOVIE, --sweep MOVIE)")
    if args.path is None and args.session is None:
        raise ViewerError("give a PATH to render (a scan, or 'phantom') or --session FILE")
    if args.sheet and not args.out:
        raise ViewerError("--sheet writes to --out FILE: give --out")

    # Everything that can be checked before the (slow) load and render is checked now.
    from viewer.export.imagefile import image_format_for
    from viewer.export.movie import frame_count, movie_format

    out = _check_writable(args.out, "image") if args.out else None
    if out is not None:
        fmt = image_format_for(out)
        if fmt == "JPEG" and args.transparent:
            raise ViewerError("JPEG has no alpha channel: use .png or .tif with --transparent", out)
    movies: list[tuple[str, Path]] = []
    for kind, m in (("turntable", args.turntable), ("sweep", args.sweep)):
        if m:
            mp = _check_writable(m, "movie")
            movie_format(mp)
            movies.append((kind, mp))
    if movies and args.frames is None:
        frame_count(args.duration, args.fps)
    if args.series and args.session:
        raise ViewerError("--series cannot be combined with --session (the session names its series)")

    from viewer.core.session import load_session
    from viewer.core.state import ViewerState
    from viewer.export.image import ExportOptions, FigureContext, export_image
    from viewer.export.movie import export_threshold_sweep, export_turntable
    from viewer.export.sessions import open_source, session_camera, session_state, session_transfer_function
    from viewer.export.sheet import export_report_sheet
    from viewer.render.scene import Scene
    from viewer.render.scene_adapter import reset

    session = load_session(args.session) if args.session else None
    if session is not None and (args.preset is None):
        tf, preset_name = session_transfer_function(session), session.preset_name
    else:
        tf, preset_name = _pick_preset(args.preset)
    if args.separated is not None:
        tf = tf.with_changes(separated=bool(args.separated))
    if args.remove_table is not None:
        tf = tf.with_changes(remove_table=bool(args.remove_table))
    if args.real_ct:
        tf = tf.with_changes(real_ct_separation=True)
    if args.contrast is not None:
        tf = tf.with_changes(contrast=args.contrast)
    if args.show_uncertain:
        tf = tf.with_changes(show_uncertain=True)
    if args.show_removed:
        tf = tf.with_changes(show_removed=True)
    lesion = None if args.phantom_lesion else lesion_from_args(args, None)
    measurements = _measurements(args)
    needs_lesion = args.keyhole or args.vessel_colour == "lesion"
    if needs_lesion and lesion is None and not args.phantom_lesion and args.session is None:
        raise ViewerError(NEEDS_LESION)
    if args.keyhole or args.vessel_colour not in (None, "off"):
        tf = tf.with_changes(separated=True)  # both work on the separated classes

    progress = _progress_printer(args.quiet)
    if args.path is not None and args.phantom_lesion:
        volume, landmarks = load_with_landmarks(args.path, progress)
        lesion = lesion_from_args(args, landmarks)
    elif args.path is not None:
        volume = open_source(args.path, args.series, progress)
    else:
        assert session is not None
        volume = open_source(session.data_path, session.series, progress)

    size = args.size or DEFAULT_SIZE
    caption_on = args.caption is not None
    opts = ExportOptions(
        width=size[0],
        height=size[1],
        scale=args.scale,
        transparent=args.transparent,
        orientation_labels=args.orientation_labels,
        orientation_marker=args.orientation_marker,
        scale_bar=args.scale_bar,
        caption=caption_on,
        caption_text=args.caption or "",
        show_identity=args.show_identity,
    )
    if session is not None:
        state = session_state(session, volume)
        state.transfer_function = tf
    else:
        state = ViewerState(tf, preset_name)
        state.volume = volume
    _apply_lesion(state, lesion, args, measurements)
    camera = (session_camera(session) if session is not None else None) or "anterior"
    with Scene(offscreen=True) as scene:
        reset(scene, state, camera=camera, colour_max_mm=args.colour_max if args.vessel_colour is not None else None)
        if not any(kind == "sweep" for kind, _ in movies):
            # The masks are made and no threshold edit follows (a sweep re-separates at
            # each bone threshold and uses it): the separation's cached body mask goes,
            # before the render's shading gradients need the memory.
            from viewer.core.separation import release_prepare_cache

            release_prepare_cache()
            # Nor does a transfer-function or crop edit: the render buffer is cut to
            # what the rays visit, so the shading gradients are made for that only.
            scene.trim_to_visible()
        if args.view:
            scene.set_view(args.view)  # from the session camera's projection
        ctx = FigureContext(
            transfer_function=tf,
            preset_name=preset_name,
            volume=volume,
            crop_box_lps=scene.crop_box_lps,
            clip_plane=session.clip_plane if session is not None else None,
            view_name=args.view or (None if session is not None else "anterior"),
        )
        if out is not None:
            if args.sheet:
                fig = export_report_sheet(scene, out, ctx, opts)
            else:
                fig = export_image(scene, out, ctx, opts)
            if not args.quiet:
                h, w = fig.image.shape[:2]
                print(f"wrote {out} ({w}x{h})", file=sys.stderr)
        for kind, mp in movies:
            msize = args.movie_size or args.size or (640, 480)
            mopts = ExportOptions(
                width=msize[0],
                height=msize[1],
                scale=1.0,
                orientation_labels=args.orientation_labels,
                orientation_marker=args.orientation_marker,
                scale_bar=args.scale_bar,
                caption=caption_on,
                caption_text=args.caption or "",
                show_identity=args.show_identity,
            )
            if kind == "turntable":
                res = export_turntable(
                    scene,
                    mp,
                    ctx,
                    duration_s=args.duration,
                    fps=args.fps,
                    axis=args.axis,
                    opts=mopts,
                    n_frames=args.frames,
                    progress=progress,
                )
            else:
                res = export_threshold_sweep(
                    scene,
                    mp,
                    ctx,
                    duration_s=args.duration,
                    fps=args.fps,
                    opts=mopts,
                    n_frames=args.frames,
                    progress=progress,
                )
            if not args.quiet:
                print(
                    f"wrote {mp} ({res.n_frames} frames, {res.size_px[0]}x{res.size_px[1]}, {res.fps:g} fps)",
                    file=sys.stderr,
                )
    return 0


__all__ = ["parse_scale", "parse_size", "register", "run"]
