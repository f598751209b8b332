"""Separation accuracy and time on the phantom and on every real scan in ../shared/data.

Run by hand: ``.venv/bin/python benchmarks/bench_separation.py [--no-phantom] [--tile 600]``.
Prints one table: per scan whether contrast was found, the share of dense voxels
(>= 150 HU) painted vessel (false red on scans without contrast), the reference-mask
figures (cta-aorta-nifti's aorta mask; totalseg-abdomen-3mm's TotalSegmentator bone
labels), Dice against the phantom's truth, and the seconds per stage. ``--tile N``
also times the whole extraction on the real chest CT tiled along z to N slices
(512 x 512 x N, a real-size volume), then a bone-threshold change on the same volume
(the threshold-independent stages come from the per-volume cache), with the process's
peak memory. Results go in docs/benchmarks.md.

Side by side (the machine is shared: compare in one run, not across runs):
``--side-by-side OLD_ROOT`` runs the real-size timings in fresh processes, alternating
the checkout at OLD_ROOT (``git worktree add /tmp/old <commit>``) and this one, ``--reps``
times each, and prints the per-stage minimum of each. ``--root PATH`` runs this script
against the checkout at PATH (what the side-by-side mode does for the old one).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

if "--root" in sys.argv:  # before any viewer import: run against another checkout
    sys.path.insert(0, str(Path(sys.argv[sys.argv.index("--root") + 1]).resolve()))

import numpy as np  # noqa: E402

from viewer.core.extraction import class_masks  # noqa: E402
from viewer.core.metrics import dice, recall  # noqa: E402
from viewer.io import load_volume  # noqa: E402
from viewer.io.volume_files import read_nifti  # noqa: E402

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
#: cta-aorta-nifti: the lateral chest wall on one side (x 100-120, slices 90-163), where
#: the ribs are; no reference mask, so its dense voxels painted vessel are ribs and the
#: wall's own vessels together.
CTA_WALL_BOX = (slice(90, 164), slice(None), slice(100, 120))


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
            # the bone class as exported (ClassMasks.bone_core); drawn ivory is m.bone
            "dense in bone": float(m.bone_core(hu)[dense].mean()),
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
            # What of that red is a contrast-filled lumen, not bone: red voxels within two
            # voxels of a homogeneous lumen piece (3x3x3 spread under 2x the noise, >= 300 HU,
            # >= 20 voxels) -- a diagnostic next to the figure, which it does not replace.
            row["vertebra box red voxels next to a homogeneous lumen"] = _red_near_lumen(hu, vessel & vert, m.removed)
            wall = np.zeros(hu.shape, bool)
            wall[CTA_WALL_BOX] = True
            row["lateral chest wall box: dense voxels painted vessel"] = float(vessel[wall & dense].mean())
        if name == "totalseg-abdomen-3mm":
            d = DATA / "totalseg-abdomen-3mm"
            lab = read_nifti(d / "labels.nii.gz").data
            names = {int(k): v for k, v in json.loads((d / "labels.json").read_text())["labels"].items()}
            ids = [k for k, v in names.items() if v.startswith(BONE_PREFIXES)]
            rb = np.isin(lab, ids) & dense
            row["reference bone >= 150 HU in bone"] = float(m.bone_core(hu)[rb].mean())
            row["reference aorta painted vessel"] = float(vessel[lab == 52].mean())
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def _red_near_lumen(hu: np.ndarray, red: np.ndarray, removed: np.ndarray | None) -> int:
    """How many ``red`` voxels lie within two 6-steps of a homogeneous lumen piece: 3x3x3
    standard deviation under twice the scan's noise, >= 300 HU, 26-connected pieces of
    at least 20 voxels."""
    import cc3d
    from scipy.ndimage import uniform_filter

    from viewer.core.separation import dilate6, noise_sd

    body = ~removed if removed is not None else np.ones(hu.shape, bool)
    h = hu.astype(np.float32)
    mean = uniform_filter(h, 3)
    sd = np.sqrt(np.maximum(uniform_filter(h * h, 3) - mean * mean, 0.0))
    hom = (sd < 2.0 * noise_sd(hu, body)) & (hu >= 300) & body
    lab = cc3d.connected_components(hom, connectivity=26)
    counts = np.bincount(lab.ravel())
    counts[0] = 0
    near = counts[lab] >= 20
    for _ in range(2):
        near = dilate6(near)
    return int(np.count_nonzero(red & near))


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


def phantom_rows(sizes: tuple[str, ...], textured: bool = False) -> list[dict]:
    """``textured``: also the default phantom with textured cancellous bone."""
    from viewer.phantom import generate
    from viewer.phantom.generator import LEGEND as L

    rows = []
    variants = [(s, c, False) for s in sizes for c in (False, True)]
    if textured:
        variants += [(s, False, True) for s in sizes]
    for size, clean, tex in variants:
        ph = generate(size, clean=clean, textured_bone=tex)
        hu, lab = ph.volume.hu, np.asarray(ph.labels)
        m, dt = _masks(hu, ph.volume.spacing_mm)
        vessel = m.vessel | (m.uncertain if m.uncertain is not None else False)
        tb = np.isin(lab, [L[k] for k in ("bone", "marrow", "trabecular", "other_bone") if k in L])
        ta = np.isin(lab, [L[k] for k in ("artery", "collateral", "nutrient", "other_artery") if k in L])
        row = {
            "scan": f"phantom {size}{' (clean)' if clean else ''}{' (textured bone)' if tex else ''}",
            "shape": "x".join(str(s) for s in hu.shape[::-1]),
            "contrast found": "yes" if m.contrast else "no",
            "bone Dice": dice(m.bone_core(hu), tb),
            # what is drawn ivory: the class plus its faint partial-volume layer
            "bone Dice (drawn bone)": dice(m.bone, tb),
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
            row["trabecular voxels in bone"] = float(m.bone_core(hu)[lab == L["trabecular"]].mean())
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def _reset_peak() -> None:
    """Start the peak-memory count afresh (Linux: writing 5 to clear_refs resets VmHWM
    to the current resident size), so a row's peak is its own, not the loader's."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _status_mb(field: str) -> float:
    """A field of /proc/self/status in MB (VmHWM: the peak resident memory since
    :func:`_reset_peak`; VmRSS: resident now); NaN where there is none."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return float(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def _timed_rows(name: str, hu: np.ndarray, spacing: tuple[float, float, float]) -> list[dict]:
    """The whole extraction, then a bone-threshold change (650 -> 700 HU) on the same
    volume, with the peak memory: the volume itself plus what the separation took at
    its peak above what was resident before (the loader's or generator's leftovers and
    the libraries are not counted), over the volume's size."""
    from concurrent.futures import ThreadPoolExecutor

    rows = []
    vol_mb = hu.nbytes / 2**20
    runs = (
        ("", BONE_HU, False),
        (", bone threshold 650 -> 700 HU", BONE_HU + 50.0, False),
        # As the window runs it: on a worker thread, where the labelling goes slab by
        # slab so the GUI thread gets the GIL (viewer.core.separation.label).
        (", on a worker thread (as in the window)", BONE_HU, True),
    )
    for label, bone_hu, worker in runs:
        if worker:
            from viewer.core import separation

            separation._PREP_CACHE.clear()  # the whole extraction again, body included
        _reset_peak()
        before = _status_mb("VmRSS")
        t = time.perf_counter()
        if worker:
            with ThreadPoolExecutor(1) as pool:
                m = pool.submit(class_masks, hu, spacing, bone_hu, WINDOW, real_ct=True).result()
        else:
            m = class_masks(hu, spacing, bone_hu, WINDOW, real_ct=True)
        dt = time.perf_counter() - t
        row = {
            "scan": f"{name} {'x'.join(str(s) for s in hu.shape[::-1])}{label}",
            "peak memory / volume": round(1.0 + (_status_mb("VmHWM") - before) / vol_mb, 2),
            "time_s": dt,
            "stages": {k: round(v, 2) for k, v in m.timings_s.items()},
        }
        del m
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def tiled_rows(n: int) -> list[dict]:
    p = DATA / "ct-chest-noncontrast"
    if not p.exists():
        return []
    vol = load_volume(p)
    reps = -(-n // vol.hu.shape[0])
    hu = np.concatenate([vol.hu, vol.hu[::-1]] * reps, axis=0)[:n].copy()  # (a slice would keep all of it)
    spacing = vol.spacing_mm
    del vol
    return _timed_rows("chest CT tiled to", hu, spacing)


def large_phantom_rows() -> list[dict]:
    from viewer.phantom import generate

    ph = generate("large")
    return _timed_rows("phantom large", ph.volume.hu, ph.volume.spacing_mm)


def side_by_side(old_root: Path, reps: int, tile: int, large: bool) -> None:
    """Fresh processes, alternating old and new, ``reps`` times: per row and stage the
    minimum seconds of each (a shared machine's noise only ever adds time)."""
    me = Path(__file__).resolve()
    here = me.parents[1]
    results: dict[str, dict[str, list[dict]]] = {"old": {}, "new": {}}
    for _ in range(reps):
        for tag, root in (("old", old_root), ("new", here)):
            cmd = [sys.executable, str(me), "--root", str(root), "--timing-only", "--tile", str(tile)]
            if large:
                cmd.append("--large-phantom")
            out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=here).stdout
            for line in out.splitlines():
                if line.startswith("{"):
                    r = json.loads(line)
                    results[tag].setdefault(r["scan"], []).append(r)
    print(f"\n| volume | {old_root.name} (s) | this checkout (s) | new stages (min s) | new peak / volume |")
    print("|---|---|---|---|---|")
    for scan, new in results["new"].items():
        old = results["old"].get(scan, [])
        t_old = f"{min(r['time_s'] for r in old):.2f}" if old else "-"
        t_new = min(r["time_s"] for r in new)
        stages = {k: min(r["stages"].get(k, 0.0) for r in new) for k in new[0]["stages"]}
        st = ", ".join(f"{k} {v:.2f}" for k, v in stages.items() if not k.startswith("cached"))
        peak = min(r["peak memory / volume"] for r in new)
        print(f"| {scan} | {t_old} | {t_new:.2f} | {st} | {peak:.2f} |")


def _scans_and_phantoms():
    """(name, hu, spacing) of every real scan here, then the default and small phantoms
    (each with and without its confounders)."""
    for name, (rel, _contrast) in REAL.items():
        p = DATA / rel
        if p.exists():
            vol = load_volume(p)
            yield name, vol.hu, vol.spacing_mm
    from viewer.phantom import generate

    for size in ("default", "small"):
        for clean in (False, True):
            ph = generate(size, clean=clean)
            yield f"phantom {size}{' (clean)' if clean else ''}", ph.volume.hu, ph.volume.spacing_mm


def preview_rows() -> None:
    """The separation on every k-th slice (k = 2, 3, 4; slices up to 8.5 mm) against
    the whole one: the contrast verdict, the dense voxels painted vessel, and the share
    of the dense voxels (>= 150 HU) with the same vessel / bone class at the slices kept
    -- what the preview masks of a big scan's first separated frame rest on
    (docs/separation.md, "Preview separation")."""
    print("\n| scan (slice mm) | full: contrast, dense red | k = 2 | k = 3 | k = 4 |\n|---|---|---|---|---|")
    for name, hu, sp in _scans_and_phantoms():
        m, t_full = _masks(hu, sp)
        red = m.vessel | (m.uncertain if m.uncertain is not None else False)
        cells = [f"{'yes' if m.contrast else 'no'}, {red[hu >= 150].mean():.1%} ({t_full:.2f} s)"]
        for k in (2, 3, 4):
            if sp[2] * k > 8.5 or hu.shape[0] // k < 8:
                cells.append("--")
                continue
            off = k // 2  # as preview_class_masks
            part = np.ascontiguousarray(hu[off::k])
            mk, t_k = _masks(part, (sp[0], sp[1], sp[2] * k))
            red_k = mk.vessel | (mk.uncertain if mk.uncertain is not None else False)
            dense = part >= 150
            agree_v = (red[off::k] == red_k)[dense].mean()
            agree_b = (m.bone[off::k] == mk.bone)[dense].mean()
            cells.append(
                f"{'yes' if mk.contrast else 'no'}, {red_k[dense].mean():.1%}; "
                f"agree {agree_v:.3f} / {agree_b:.3f} ({t_k:.2f} s)"
            )
        print(f"| {name} ({sp[2]:.2f}) | " + " | ".join(cells) + " |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--no-phantom", action="store_true")
    ap.add_argument("--phantom-sizes", default="default")
    ap.add_argument("--tile", type=int, default=600, help="slices of the tiled real chest (0: skip)")
    ap.add_argument("--large-phantom", action="store_true", help="also time the large (512x512x1024) phantom")
    ap.add_argument("--timing-only", action="store_true", help="only the real-size timings (tile, large phantom)")
    ap.add_argument("--root", type=Path, help="run against the checkout at this path")
    ap.add_argument("--side-by-side", type=Path, metavar="OLD_ROOT", help="alternate fresh runs of OLD_ROOT and this")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--preview", action="store_true", help="only the preview-masks table (every k-th slice)")
    ap.add_argument("--textured-phantom", action="store_true", help="also the phantoms with textured cancellous bone")
    a = ap.parse_args()
    print(f"machine: {platform.machine()}, {platform.python_version()}, cores: {os.cpu_count()}", flush=True)
    if a.preview:
        preview_rows()
        return
    if a.side_by_side:
        side_by_side(a.side_by_side.resolve(), a.reps, a.tile, a.large_phantom)
        return
    rows = [] if a.timing_only else real_rows()
    if not a.no_phantom and not a.timing_only:
        rows += phantom_rows(tuple(a.phantom_sizes.split(",")), a.textured_phantom)
    if a.tile:
        rows += tiled_rows(a.tile)
    if a.large_phantom:
        rows += large_phantom_rows()
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
