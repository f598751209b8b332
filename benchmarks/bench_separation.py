"""Separation accuracy and time on the phantom and on every real scan in ../shared/data.

Run by hand: ``.venv/bin/python benchmarks/bench_separation.py [--no-phantom] [--tile 600]``.
Prints one table: per scan whether contrast was found, the share of dense voxels
(>= 150 HU) painted vessel (false red on scans without contrast), the reference-mask
figures (cta-aorta-nifti's aorta mask; totalseg-abdomen-3mm's TotalSegmentator bone
labels), Dice against the phantom's truth, and the seconds per stage. ``--tile N``
also times the whole extraction on the real chest CT tiled along z to N slices
(512 x 512 x N, a real-size volume). Results go in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from viewer.core.extraction import class_masks
from viewer.core.metrics import dice, recall
from viewer.io import load_volume
from viewer.io.volume_files import read_nifti

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
WINDOW = (170.0, 600.0)
BONE_HU = 650.0

#: Real scans: folder or file, and whether it has arterial contrast (from its source).
REAL = {
    "ct-chest-noncontrast": ("ct-chest-noncontrast", False),
    "totalseg-abdomen-3mm": ("totalseg-abdomen-3mm/ct.nii.gz", False),
    "ct-head-gantry-tilt": ("ct-head-gantry-tilt", False),
    "ct-contrast-abdomen-j2k": ("ct-contrast-abdomen-j2k", None),  # portal-venous (aorta 150-180 HU)
    "ct-duplicate-positions": ("ct-duplicate-positions", None),  # C4KC-KiTS, contrast phase not stated
    "cta-aorta-nifti": ("cta-aorta-nifti/ct_cropped.nii.gz", True),
}
#: TotalSegmentator bone classes (vertebrae, ribs, sternum, ...) in labels.json.
BONE_PREFIXES = ("vertebrae", "rib_", "sternum", "sacrum", "hip_", "femur", "humerus", "scapula", "clavicula", "skull")
#: Vertebral column of the chest CTA (voxel box, from its axial slices): x 25-62, y 85-126.
CTA_SPINE_BOX = (slice(None), slice(85, 126), slice(25, 62))


def _masks(hu: np.ndarray, spacing: tuple[float, float, float]):
    t = time.perf_counter()
    m = class_masks(hu, spacing, BONE_HU, WINDOW, real_ct=True)
    return m, time.perf_counter() - t


def real_rows() -> list[dict]:
    rows = []
    for name, (rel, contrast) in REAL.items():
        p = DATA / rel
        if not p.exists():
            print(f"skip {name}: {p} not found")
            continue
        vol = load_volume(p)
        hu = vol.hu
        m, dt = _masks(hu, vol.spacing_mm)
        dense = hu >= 150
        vessel = m.vessel | (m.uncertain if m.uncertain is not None else False)
        row = {
            "scan": name,
            "shape": "x".join(str(s) for s in hu.shape[::-1]),
            "contrast (truth)": {True: "yes", False: "no", None: "?"}[contrast],
            "contrast found": "yes" if m.contrast else "no",
            "dense painted vessel": float(vessel[dense].mean()),
            "dense in bone": float(m.bone[dense].mean()),
            "dense removed": float(m.removed[dense].mean()) if m.removed is not None else 0.0,
            "time_s": dt,
            "stages": {k: round(v, 2) for k, v in m.timings_s.items()},
        }
        if name == "cta-aorta-nifti":
            ao = read_nifti(DATA / "cta-aorta-nifti/aorta.nii.gz").data > 0
            w = ao & (hu >= WINDOW[0])
            row["aorta (all mask voxels) in vessel"] = float(vessel[ao].mean())
            row["aorta >= window low in vessel"] = float(vessel[w].mean())
            row["aorta >= window low in bone"] = float(m.bone[w].mean())
            row["aorta >= window low in calcification"] = (
                float(m.calcification[w].mean()) if m.calcification is not None else 0.0
            )
            spine = np.zeros(hu.shape, bool)
            spine[CTA_SPINE_BOX] = True
            grown = ao.copy()
            for _ in range(2):
                from viewer.core.separation import dilate6

                grown = dilate6(grown)
            vert = spine & dense & ~grown
            row["vertebra voxels painted vessel"] = float(vessel[vert].mean())
        if name == "totalseg-abdomen-3mm":
            d = DATA / "totalseg-abdomen-3mm"
            lab = read_nifti(d / "labels.nii.gz").data
            names = {int(k): v for k, v in json.loads((d / "labels.json").read_text())["labels"].items()}
            ids = [k for k, v in names.items() if v.startswith(BONE_PREFIXES)]
            rb = np.isin(lab, ids) & dense
            row["reference bone >= 150 HU in bone"] = float(m.bone[rb].mean())
            row["reference aorta painted vessel"] = float(vessel[lab == 52].mean())
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def _nutrient_vessels_found(ph, vessel: np.ndarray) -> int:
    """How many of the phantom's nutrient arteries have vessel-class voxels within 2 mm
    of their cortex entry point (``nutrient_entry_lps``)."""
    entries = ph.landmarks.get("nutrient_entry_lps") or []
    vol = ph.volume
    found = 0
    for e in entries:
        ijk = np.rint(vol.ijk_of_lps(np.asarray([e], float))[0]).astype(int)
        r = [int(np.ceil(2.0 / s)) for s in vol.spacing_mm]
        sl = tuple(slice(max(0, c - k), c + k + 1) for c, k in zip(ijk[::-1], r[::-1], strict=False))
        if vessel[sl].any():
            found += 1
    return found


def phantom_rows(sizes: tuple[str, ...]) -> list[dict]:
    from viewer.phantom import generate
    from viewer.phantom.generator import LEGEND as L

    rows = []
    for size, clean in [(s, c) for s in sizes for c in (False, True)]:
        ph = generate(size, clean=clean)
        hu, lab = ph.volume.hu, np.asarray(ph.labels)
        m, dt = _masks(hu, ph.volume.spacing_mm)
        vessel = m.vessel | (m.uncertain if m.uncertain is not None else False)
        tb = np.isin(lab, [L[k] for k in ("bone", "marrow", "trabecular", "other_bone") if k in L])
        ta = np.isin(lab, [L[k] for k in ("artery", "collateral", "nutrient", "other_artery") if k in L])
        row = {
            "scan": f"phantom {size}{' (clean)' if clean else ''}",
            "shape": "x".join(str(s) for s in hu.shape[::-1]),
            "contrast found": "yes" if m.contrast else "no",
            "bone Dice": dice(m.bone, tb),
            "artery+collateral Dice": dice(vessel, ta),
            "collateral voxel recall": recall(vessel, lab == L["collateral"]),
            "time_s": dt,
            "stages": {k: round(v, 2) for k, v in m.timings_s.items()},
        }
        if not clean:
            z = np.zeros(hu.shape, bool)
            removed = m.removed if m.removed is not None else z
            calc = m.calcification if m.calcification is not None else z
            nut = lab == L["nutrient"]
            row["nutrient voxel recall"] = recall(vessel, nut)
            row["nutrient voxel recall, in the window (<= 600 HU)"] = recall(vessel, nut & (hu <= WINDOW[1]))
            row["nutrient vessels found (of 3)"] = _nutrient_vessels_found(ph, vessel)
            row["plaque voxels in bone"] = float(m.bone[lab == L["plaque"]].mean())
            row["table voxels in a visible class"] = int(
                np.count_nonzero((lab == L["table"]) & (m.bone | vessel | calc))
            )
            row["table voxels >= 150 HU kept"] = int(np.count_nonzero((lab == L["table"]) & (hu >= 150) & ~removed))
            row["table voxels inside the body (pad contact)"] = int(np.count_nonzero((lab == L["table"]) & ~removed))
            row["vein voxels painted vessel"] = float(vessel[lab == L["vein"]].mean())
            row["trabecular voxels in bone"] = float(m.bone[lab == L["trabecular"]].mean())
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def tiled_row(n: int) -> dict | None:
    p = DATA / "ct-chest-noncontrast"
    if not p.exists():
        return None
    vol = load_volume(p)
    reps = -(-n // vol.hu.shape[0])
    hu = np.concatenate([vol.hu, vol.hu[::-1]] * reps, axis=0)[:n]
    hu = np.ascontiguousarray(hu)
    m, dt = _masks(hu, vol.spacing_mm)
    row = {
        "scan": f"chest CT tiled to {'x'.join(str(s) for s in hu.shape[::-1])}",
        "time_s": dt,
        "stages": {k: round(v, 2) for k, v in m.timings_s.items()},
    }
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--no-phantom", action="store_true")
    ap.add_argument("--phantom-sizes", default="default")
    ap.add_argument("--tile", type=int, default=600, help="slices of the tiled real chest (0: skip)")
    a = ap.parse_args()
    print(f"machine: {platform.machine()}, {platform.python_version()}, cores: {__import__('os').cpu_count()}")
    rows = real_rows()
    if not a.no_phantom:
        rows += phantom_rows(tuple(a.phantom_sizes.split(",")))
    if a.tile:
        r = tiled_row(a.tile)
        if r:
            rows.append(r)
    print("\n| scan | figures | time (s) |\n|---|---|---|")
    for r in rows:
        figs = "; ".join(
            f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
            for k, v in r.items()
            if k not in ("scan", "time_s", "stages")
        )
        print(f"| {r['scan']} | {figs} | {r['time_s']:.2f} |")


if __name__ == "__main__":
    main()
