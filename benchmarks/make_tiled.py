"""Write a real-size test volume: the real chest CT of ``../shared/data`` mirrored along z
to N slices, as a NRRD (gzip-encoded at level 0: stored, not compressed). The GUI, CLI
and stall benchmarks of issue 9 open it as "the real chest tiled to 512 x 512 x N".

    .venv/bin/python benchmarks/make_tiled.py 600 /tmp/chest600.nrrd

Mirrored (every other copy upside down) so the anatomy runs on without a jump at the
seams. ``ct-chest-noncontrast`` is ITKElastix example data (Apache-2.0; see
``../shared/data/README.md``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = Path(os.environ.get("VIEWER_SHARED_DATA", str(ROOT.parent / "shared" / "data")))


def main() -> int:
    from viewer.io.api import load_volume
    from viewer.io.writers import write_nrrd

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("slices", type=int, help="slices of the tiled volume (e.g. 600)")
    ap.add_argument("out", type=Path, help="NRRD file to write")
    ap.add_argument("--scan", type=Path, default=DATA / "ct-chest-noncontrast", help="scan to tile")
    args = ap.parse_args()
    if args.slices < 1:
        ap.error("slices must be at least 1")
    v = load_volume(args.scan)
    hu = v.hu
    reps = -(-args.slices // hu.shape[0])
    tiled = np.concatenate([hu if i % 2 == 0 else hu[::-1] for i in range(reps)], axis=0)[: args.slices]
    write_nrrd(np.ascontiguousarray(tiled), v.ijk_to_lps.copy(), args.out, overwrite=True, compresslevel=0)
    print(f"wrote {args.out}: {tiled.shape[2]} x {tiled.shape[1]} x {tiled.shape[0]} voxels, spacing {v.spacing_mm} mm")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
