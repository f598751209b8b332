"""``vessel-viewer extract``: bone and vessel masks (NRRD/NIfTI) and surfaces (STL/PLY).

    vessel-viewer extract PATH --out-dir DIR [--preset NAME | --auto]
                          [--bone-threshold HU] [--vessel-window LO HI]
                          [--format nrrd|nifti] [--surface-format stl|ply]
                          [--no-surfaces] [--smooth N]

``PATH`` is anything ``viewer.io.load_volume`` reads, or ``phantom`` / ``phantom:SIZE``
for the built-in lower-leg phantom. Thresholds come from the preset (default: the
default preset), or from the histogram with ``--auto``; ``--bone-threshold`` and
``--vessel-window`` override either. Writes into ``--out-dir`` (created if needed)
``<stem>_bone_mask.nrrd``, ``<stem>_vessel_mask.nrrd``, ``<stem>_bone.stl``,
``<stem>_vessels.stl`` and ``<stem>_extraction.json`` (thresholds, voxel counts,
volumes in mm^3, timings). Never writes into the source folder or over a source file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from viewer.cli import add_contrast_argument
from viewer.core.errors import ViewerError
from viewer.core.fileio import atomic_write_text
from viewer.core.mask_policy import contrast_verdict


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "extract",
        help="write bone / vessel masks (NRRD or NIfTI) and their surfaces (STL or PLY)",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("path", metavar="PATH", help="scan (DICOM folder/file, NIfTI, NRRD, MHA) or 'phantom[:SIZE]'")
    p.add_argument("--out-dir", required=True, type=Path, help="output folder (created if missing)")
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--preset", metavar="NAME", help="take the thresholds from this preset (default: the default preset)"
    )
    g.add_argument("--auto", action="store_true", help="suggest the thresholds from the scan's histogram")
    p.add_argument("--bone-threshold", type=float, metavar="HU", help="bone threshold in HU (overrides the preset)")
    p.add_argument("--vessel-window", type=float, nargs=2, metavar=("LO", "HI"), help="vessel window in HU")
    p.add_argument("--format", choices=("nrrd", "nifti"), default="nrrd", help="mask file format (default nrrd)")
    p.add_argument("--surface-format", choices=("stl", "ply"), default="stl", help="surface format (default stl)")
    p.add_argument("--no-surfaces", action="store_true", help="write the masks only")
    p.add_argument(
        "--smooth",
        type=int,
        default=0,
        metavar="N",
        help="windowed-sinc smoothing iterations for the surfaces (0 = raw voxel surface)",
    )
    p.add_argument(
        "--classic",
        action="store_true",
        help="the classic separation (fixed cortical threshold, in-plane marrow fill) instead of "
        "the real-CT one (body mask, bone object, plaque and contrast checks)",
    )
    p.add_argument(
        "--keep-table",
        action="store_true",
        help="do not drop the CT couch and holders outside the body (real-CT separation)",
    )
    add_contrast_argument(p, default="auto")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(func=run)


def _check_out_dir(src: str, out_dir: Path) -> Path:
    """Resolve ``out_dir`` and refuse places that would write into the source."""
    out = out_dir.expanduser().resolve()
    if not (src == "phantom" or src.startswith("phantom:")):
        s = Path(src).expanduser().resolve()
        src_dir = s if s.is_dir() else None
        if src_dir is not None and (out == src_dir or src_dir in out.parents):
            raise ViewerError(
                f"--out-dir {out_dir} is inside the source folder {src}; choose another folder "
                "(writing there would add files to the scan's series)"
            )
        if out == s:
            raise ViewerError(f"--out-dir {out_dir} is the source file itself")
    if out.exists() and not out.is_dir():
        raise ViewerError(f"--out-dir {out_dir} exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ViewerError(f"cannot create --out-dir {out_dir}: {exc}") from None
    if not os.access(out, os.W_OK):
        raise ViewerError(f"--out-dir {out_dir} is not writable")
    return out


def run(args: argparse.Namespace) -> int:
    from viewer.core.extraction import extract
    from viewer.core.presets import default_preset_name, list_presets
    from viewer.core.thresholds import suggest_thresholds
    from viewer.io.masks import output_stem, write_masks

    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, flush=True))
    out = _check_out_dir(args.path, args.out_dir)
    if args.smooth < 0:
        raise ViewerError(f"--smooth must be >= 0, got {args.smooth}")

    t0 = time.perf_counter()
    from viewer.export.sessions import open_source

    vol = open_source(args.path)
    t_load = time.perf_counter() - t0
    stem = output_stem(args.path.replace(":", "_")) if args.path.startswith("phantom") else output_stem(args.path)

    if args.auto:
        sug = suggest_thresholds(vol.hu, vol.spacing_mm)
        window, bone_hu, origin = sug.vessel_window_hu, sug.bone_threshold_hu, f"auto: {sug.reason}"
    else:
        presets = list_presets()
        name = args.preset or default_preset_name()
        if name not in presets:
            raise ViewerError(f"unknown preset {name!r}; known: {', '.join(presets)}")
        tf = presets[name]
        window, bone_hu, origin = tf.vessel_window_hu, tf.bone_threshold_hu, f"preset {name!r}"
    if args.bone_threshold is not None:
        bone_hu, origin = args.bone_threshold, origin + ", bone threshold from --bone-threshold"
    if args.vessel_window is not None:
        lo, hi = args.vessel_window
        if not lo < hi:
            raise ViewerError(f"--vessel-window needs LO < HI, got {lo:g} {hi:g}")
        window, origin = (lo, hi), origin + ", vessel window from --vessel-window"
    say(
        f"{vol.description or args.path}: {vol.shape[2]}x{vol.shape[1]}x{vol.shape[0]} voxels, "
        f"spacing {', '.join(f'{s:g}' for s in vol.spacing_mm)} mm (loaded in {t_load:.1f} s)"
    )
    say(f"thresholds ({origin}): vessel window {window[0]:g}..{window[1]:g} HU, bone >= {bone_hu:g} HU")

    def progress(f: float, msg: str) -> None:
        pass

    real_ct = not args.classic
    ex = extract(
        vol.hu,
        vol.spacing_mm,
        bone_hu,
        window,
        progress,
        remove_table=not args.keep_table,
        real_ct=real_ct,
        contrast=contrast_verdict(args.contrast),
    )
    vox_mm3 = vol.spacing_mm[0] * vol.spacing_mm[1] * vol.spacing_mm[2]
    if real_ct and ex.message:
        say(f"separation: {ex.message}")
    masks = {"bone": ex.bone, "vessel": ex.vessel}
    if ex.calcification.any():
        # Calcified shells and plaques: a class of their own, so a planner can print or
        # measure the mass apart from the vessels.
        masks["calcification"] = ex.calcification
    if ex.uncertain is not None and ex.uncertain.any():
        # Vessel voxels touching bone whose class is unsure (in the vessel mask too).
        masks["uncertain"] = ex.uncertain
    if ex.removed is not None and ex.removed.any() and (vol.hu[ex.removed] > -350).any():
        # What the body mask dropped (couch, holders): so it can be checked.
        masks["removed"] = ex.removed & (vol.hu > -350)
    paths = write_masks(masks, vol.ijk_to_lps, out, stem, args.format)
    summary: dict[str, Any] = {
        "source": str(args.path),
        "thresholds": dict(ex.thresholds),
        "threshold_origin": origin,
        "timings_s": {k: round(v, 3) for k, v in ex.timings_s.items()},
        "separation": "real-ct" if real_ct else "classic",
        "contrast": bool(ex.contrast) if real_ct else None,
        "contrast_setting": args.contrast if real_ct else None,
        "message": ex.message if real_ct else "",
        "classes": {},
    }
    for kind, m in masks.items():
        n = int(m.sum())
        summary["classes"][kind] = {"voxels": n, "volume_mm3": round(n * vox_mm3, 1), "mask": paths[kind].name}
        say(f"  {kind:13s} mask: {n} voxels ({n * vox_mm3 / 1000:.1f} cm^3) -> {paths[kind]}")
    if not args.no_surfaces:
        from viewer.render.surfaces import export_mask_surface

        for kind, m in masks.items():
            if kind in ("uncertain", "removed"):
                continue  # masks only: no surface a planner would print
            if not m.any():
                say(f"  {kind:6s} surface: empty mask, no surface written")
                continue
            name = "vessels" if kind == "vessel" else kind
            sp = out / f"{stem}_{name}.{args.surface_format}"
            st = export_mask_surface(m, vol.ijk_to_lps, sp, args.smooth)
            summary["classes"][kind]["surface"] = sp.name
            summary["classes"][kind]["triangles"] = st.n_triangles
            say(f"  {kind:6s} surface: {st.n_triangles} triangles -> {sp}")
    js = out / f"{stem}_extraction.json"
    atomic_write_text(js, json.dumps(summary, indent=2) + "\n", "extraction summary")
    say(f"done in {time.perf_counter() - t0:.1f} s (extraction {ex.timings_s['total_s']:.2f} s); summary {js}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    from viewer.cli import main

    sys.exit(main(["extract", *sys.argv[1:]]))
