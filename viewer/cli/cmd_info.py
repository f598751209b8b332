"""``vessel-viewer info PATH [--json] [--series KEY] [--show-identity]``.

Lists the series found under PATH, loads the chosen one (the CT series with most
images, or ``--series KEY``) and prints its dimensions, spacing, HU range, placement
and every warning. Patient name / ID / birth date are printed only with
``--show-identity``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

from viewer.core.errors import LoadCancelled, ViewerError
from viewer.io import load_volume, scan_series


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "info",
        help="describe the CT series in a folder or file (no patient identity by default)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("path", nargs="+", help="DICOM folder/files, or a NIfTI/NRRD/MetaImage file")
    p.add_argument("--series", default=None, help="series key to load (from the list printed)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--show-identity", action="store_true", help="also print patient name, ID and birth date")
    p.set_defaults(func=run)


def _jsonable(v: Any) -> Any:
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return str(v)


def run(args: argparse.Namespace) -> int:
    paths = args.path[0] if len(args.path) == 1 else args.path
    try:
        infos = scan_series(paths)
        vol = load_volume(paths, series=args.series)
    except (ViewerError, LoadCancelled, KeyboardInterrupt, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - last resort: a loader bug must not reach a user as a traceback
        # viewer.io promises ViewerError for bad input (the fuzz test in tests/io checks
        # it); anything else is a bug, reported as one line that says so.
        raise ViewerError(
            f"internal error while reading ({type(exc).__name__}: {exc}); please report it",
            path=paths if isinstance(paths, str) else None,
        ) from exc
    chosen_key = str(vol.metadata.get("series_key", args.series or ""))
    lo, hi = vol.hu_range()
    nx, ny, nz = vol.dims_xyz
    out: dict[str, Any] = {
        "series": [
            {
                "key": i.key,
                "description": i.description,
                "modality": i.modality,
                "kind": i.kind,
                "series_number": i.series_number,
                "images": i.n_slices,
                "rows": i.rows,
                "columns": i.columns,
                "spacing_mm": i.spacing_mm,
                "orientation": i.orientation,
                "is_ct": i.is_ct,
                "chosen": i.key == chosen_key,
            }
            for i in infos
        ],
        "chosen": chosen_key,
        "description": vol.description,
        "dimensions_xyz": [nx, ny, nz],
        "spacing_mm": list(vol.spacing_mm),
        "hu_range": [lo, hi],
        "ijk_to_lps": np.round(vol.ijk_to_lps, 6).tolist(),
        "bounds_lps_mm": [b.round(3).tolist() for b in vol.bounds_lps()],
        "size_mb": round(vol.nbytes / 1e6, 1),
        "metadata": {k: _jsonable(v) for k, v in vol.metadata.items()},
        "warnings": list(vol.warnings),
    }
    if args.show_identity:
        out["identity"] = dict(vol.identity)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"{len(infos)} series found:")
    for i in infos:
        mark = "*" if i.key == chosen_key else " "
        print(f" {mark} {i.summary()}  key={i.key}")
    print(
        f"loaded: {vol.description}  ({vol.metadata.get('format', '')}"
        f"{', ' + str(vol.metadata['Modality']) if 'Modality' in vol.metadata else ''})"
    )
    print(f"  dimensions (x, y, z): {nx} x {ny} x {nz}  ({out['size_mb']} MB as int16)")
    print(f"  spacing (x, y, z):    {' x '.join(f'{s:.4g}' for s in vol.spacing_mm)} mm")
    print(f"  HU range:             {lo} .. {hi}")
    mn, mx = vol.bounds_lps()
    print(f"  LPS bounds (mm):      {np.round(mn, 1).tolist()} .. {np.round(mx, 1).tolist()}")
    for k in (
        "Manufacturer",
        "ManufacturerModelName",
        "KVP",
        "SliceThickness",
        "ConvolutionKernel",
        "PatientPosition",
        "TransferSyntax",
    ):
        if k in vol.metadata:
            print(f"  {k + ':':<22}{vol.metadata[k]}")
    if args.show_identity:
        for k, v in vol.identity.items():
            print(f"  {k + ':':<22}{v}")
    if vol.warnings:
        print(f"warnings ({len(vol.warnings)}):")
        for w in vol.warnings:
            print(f"  - {w}")
    else:
        print("warnings: none")
    return 0
