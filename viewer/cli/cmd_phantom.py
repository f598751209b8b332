"""``vessel-viewer phantom OUTDIR``: write the lower-leg CTA phantom to disk.

Writes ``OUTDIR/dicom/IM_00001.dcm ...`` (a CT series, one file per slice; the default
phantom with both legs and the confounders of a real scan, ``--clean`` the earlier one),
``OUTDIR/labels.nrrd`` (or ``labels.nii.gz``) with the ground-truth labels on the same
grid, and ``OUTDIR/legend.json`` (label name -> value, what each holds and its HU, the
landmarks in LPS mm), then prints a summary. Existing files are never overwritten
unless ``--overwrite`` is given.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from viewer.core.errors import ViewerError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "phantom",
        help="write the synthetic lower-leg CTA phantom (DICOM + ground-truth labels)",
        description=(
            "Write the built-in lower-leg CT angiography phantom as a DICOM series "
            "(OUTDIR/dicom), its ground-truth label volume (OUTDIR/labels.nrrd or "
            ".nii.gz) and OUTDIR/legend.json."
        ),
    )
    p.add_argument("outdir", metavar="OUTDIR", help="output folder (created if missing)")
    size = p.add_mutually_exclusive_group()
    size.add_argument(
        "--size",
        choices=("small", "default", "large"),
        default="default",
        help="small: 168x104x218 (1.5 mm); default: 360x224x380 (0.7 mm, 1 mm slices); "
        "large: 512x512x1024 (0.68 mm, 0.375 mm slices; real size)",
    )
    size.add_argument("--small", dest="size", action="store_const", const="small", help="same as --size small")
    size.add_argument("--large", dest="size", action="store_const", const="large", help="same as --size large")
    p.add_argument("--seed", type=int, default=0, help="random seed (noise and small variations); default 0")
    p.add_argument("--feet-first", action="store_true", help="store it as a feet-first (FFS) scan: slice 1 at the knee")
    p.add_argument(
        "--clean",
        action="store_true",
        help="the earlier phantom without the confounders of a real scan (one leg, no couch, plaques, "
        "veins or nutrient arteries, dense bone ends, white noise; labels 0-9 only)",
    )
    p.add_argument(
        "--textured-bone",
        action="store_true",
        help="cancellous bone with a trabecular texture, as real cancellous bone (the separation "
        "holds on it at fine voxels, not yet at the small size's 1.5 mm: docs/separation.md)",
    )
    p.add_argument(
        "--labels-format", choices=("nrrd", "nifti"), default="nrrd", help="label volume format (default nrrd)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace files of an earlier phantom in OUTDIR")
    p.set_defaults(func=run)


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return np.round(v, 3).tolist()
    if isinstance(v, (np.floating, float)):
        return round(float(v), 3)
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


def legend_document(ph: Any) -> dict[str, Any]:
    """The content of legend.json for a phantom."""
    vol = ph.volume
    return {
        "format": "vessel-viewer phantom legend",
        "version": 1,
        "labels": {name: int(val) for name, val in ph.legend.items()},
        "hu": {name: ph.legend_hu[name] for name in ph.legend if name in ph.legend_hu},
        "frame": "LPS (DICOM patient coordinates), mm",
        "grid": {
            "shape_zyx": list(vol.shape),
            "spacing_mm_xyz": list(vol.spacing_mm),
            "ijk_to_lps": np.asarray(vol.ijk_to_lps).tolist(),
        },
        "size": ph.size,
        "seed": ph.seed,
        "patient_position": "FFS" if ph.feet_first else "HFS",
        "clean": bool(getattr(ph, "clean", False)),
        "textured_bone": bool(getattr(ph, "textured_bone", False)),
        "landmarks": _jsonable(dict(ph.landmarks)),
    }


def run(args: argparse.Namespace) -> int:
    from viewer.io.writers import write_dicom_series, write_nifti, write_nrrd
    from viewer.phantom import generate

    out = Path(args.outdir)
    if out.exists() and not out.is_dir():
        raise ViewerError(f"{out} is a file, not a folder", out)
    labels_name = "labels.nrrd" if args.labels_format == "nrrd" else "labels.nii.gz"
    if not args.overwrite:
        # check everything before writing anything, so a refusal leaves no partial output
        for name in (labels_name, "legend.json"):
            if (out / name).exists():
                raise ViewerError(f"{out / name} already exists; use --overwrite to replace it", out / name)
        dicom_dir = out / "dicom"
        if dicom_dir.is_dir() and any(dicom_dir.iterdir()):
            raise ViewerError(f"{dicom_dir} is not empty; use --overwrite or choose another OUTDIR", dicom_dir)
    t0 = time.perf_counter()
    ph = generate(
        args.size, seed=args.seed, feet_first=args.feet_first, clean=args.clean, textured_bone=args.textured_bone
    )
    t1 = time.perf_counter()
    paths = write_dicom_series(
        ph.volume,
        out / "dicom",
        overwrite=args.overwrite,
        series_description=f"Lower-leg CTA phantom ({args.size}{', clean' if args.clean else ''}"
        f"{', textured bone' if ph.textured_bone else ''})",
    )
    if args.labels_format == "nrrd":
        write_nrrd(ph.labels, ph.volume.ijk_to_lps, out / labels_name, overwrite=args.overwrite)
    else:
        write_nifti(
            ph.labels,
            ph.volume.ijk_to_lps,
            out / labels_name,
            overwrite=args.overwrite,
            description="lower-leg phantom labels",
        )
    legend_path = out / "legend.json"
    try:
        legend_path.write_text(json.dumps(legend_document(ph), indent=1) + "\n", encoding="utf-8")
    except OSError as exc:
        raise ViewerError(f"cannot write {legend_path}: {exc}", legend_path) from None
    t2 = time.perf_counter()

    vol = ph.volume
    nz, ny, nx = vol.shape
    lm = ph.landmarks
    kind = "clean (one leg, no confounders)" if args.clean else "both legs on the couch, with the confounders"
    first = "feet" if args.feet_first else "head"
    print(f"lower-leg CTA phantom, size {args.size}, seed {args.seed}, {first}-first, {kind}")
    sx, sy, sz = vol.spacing_mm
    print(f"  grid      {nx} x {ny} x {nz} voxels, spacing {sx:g} x {sy:g} x {sz:g} mm")
    lo, hi = vol.bounds_lps()
    print(f"  extent    LPS ({lo[0]:.1f}, {lo[1]:.1f}, {lo[2]:.1f}) .. ({hi[0]:.1f}, {hi[1]:.1f}, {hi[2]:.1f}) mm")
    print(f"  HU range  {vol.hu_range()[0]} .. {vol.hu_range()[1]}")
    print(f"  dicom     {len(paths)} files in {out / 'dicom'}")
    print(f"  labels    {out / labels_name}")
    print(f"  legend    {legend_path}")
    print("  label            voxels   median HU")
    for name, val in ph.legend.items():
        m = ph.labels == val
        med = f"{np.median(vol.hu[m]):9.0f}" if m.any() else "        -"
        print(f"    {name:<14s} {int(m.sum()):9d} {med}")
    c = lm["mass_center_lps"]
    print(f"  mass      centre ({c[0]:.1f}, {c[1]:.1f}, {c[2]:.1f}) mm, axial radius {lm['mass_radius_mm']:.1f} mm")
    b0, b1 = lm["erosion_box_lps"]
    print(f"  erosion   box ({b0[0]:.1f}, {b0[1]:.1f}, {b0[2]:.1f}) .. ({b1[0]:.1f}, {b1[1]:.1f}, {b1[2]:.1f}) mm")
    print(f"  vessels   {len(lm['arteries'])} arteries, {len(lm['collaterals'])} collateral branches")
    if not args.clean:
        print(
            f"            {len(lm['veins'])} deep veins, {len(lm['nutrients'])} nutrient arteries, "
            f"{len(lm['plaques'])} calcified plaques"
        )
        print(
            f"  couch     mattress top y = {lm['table_top_y_mm']:.1f} mm under the left leg; "
            f"right leg axis x = {lm['right_leg_axis_xy_mm'][0]:.1f} mm"
        )
    print(f"  time      generate {t1 - t0:.2f} s, write {t2 - t1:.2f} s")
    return 0
