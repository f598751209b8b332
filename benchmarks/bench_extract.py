"""Benchmark bone / vessel extraction on a 512x512x600 CTA-sized volume.

    .venv/bin/python benchmarks/bench_extract.py [--repeat 3] [--source auto|phantom|synthetic]

Source: ``viewer.phantom.generate("large")`` when the phantom package provides it
(512x512x640, used as it is), else a synthetic 512x512x600 lower leg
built here (two long bones with cortex, marrow and trabecular HU, three arteries,
soft tissue, noise). Prints the median time per stage of ``bone_mask``,
``calcification_mask``, ``vessel_mask``, ``extract`` and ``suggest_thresholds``, and the
accuracy figures against the phantom's labels when the phantom is used. Results go in
docs/bench-extract.md by hand.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from viewer.core.extraction import bone_mask, calcification_mask, extract, vessel_mask  # noqa: E402
from viewer.core.thresholds import suggest_thresholds  # noqa: E402

SHAPE = (600, 512, 512)


def synthetic_leg(shape: tuple[int, int, int] = SHAPE, seed: int = 0) -> np.ndarray:
    """A 0.8 mm lower leg: tibia + fibula (cortex 1400 HU, marrow 60-300 HU), three
    arteries (380 HU), muscle 45 HU, fat, air, Gaussian noise 15 HU."""
    nz, ny, nx = shape
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:ny, 0:nx].astype(np.float32)
    sl = np.full((ny, nx), -1000, np.float32)
    r_leg = np.hypot(x - nx / 2, y - ny / 2)
    sl[r_leg < 0.39 * nx] = 45
    sl[(r_leg < 0.39 * nx) & (r_leg > 0.36 * nx)] = -100
    marrow = np.zeros((ny, nx), bool)
    for cx, cy, ro, ri in ((0.43 * nx, 0.45 * ny, 45, 28), (0.64 * nx, 0.53 * ny, 20, 10)):
        r = np.hypot(x - cx, y - cy)
        sl[r < ro] = 1400
        marrow |= r < ri
    sl[marrow] = 60 + 120 * (np.sin(x[marrow] * 0.9) * np.cos(y[marrow] * 1.1) + 1)
    for cx, cy in ((0.49, 0.64), (0.59, 0.62), (0.39, 0.62)):
        sl[np.hypot(x - cx * nx, y - cy * ny) < 4] = 380
    vol = np.empty(shape, np.int16)
    noise = rng.normal(0, 15, (8, ny, nx)).astype(np.float32)
    for k in range(nz):
        vol[k] = np.rint(sl + noise[k % 8])
    return vol


def load_source(kind: str):
    """(hu, spacing_mm, phantom-or-None, description)."""
    if kind in ("auto", "phantom"):
        try:
            from viewer.phantom import generate  # type: ignore[attr-defined]

            ph = generate("large")
            hu = ph.volume.hu
            desc = f"viewer.phantom.generate('large'), {hu.shape[2]}x{hu.shape[1]}x{hu.shape[0]}"
            return hu, ph.volume.spacing_mm, ph, desc
        except (ImportError, AttributeError) as exc:
            if kind == "phantom":
                raise SystemExit(f"phantom not available: {exc}") from exc
    hu = synthetic_leg()
    return hu, (0.8, 0.8, 0.8), None, "synthetic leg 512x512x600 (benchmarks/bench_extract.py)"


def timed(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def accuracy(ph, ex, hu: np.ndarray, spacing, bt: float) -> dict[str, float]:
    """Figures against the phantom's labels (as in tests/core/test_accuracy_phantom.py)."""
    from viewer.core.metrics import component_recall, dice, recall, surface_contamination

    lab = np.asarray(ph.labels)
    leg = {str(k).lower(): int(v) for k, v in dict(ph.legend).items()}
    bone_t = np.isin(lab, [leg["bone"], leg["marrow"]])
    vessel_t = np.isin(lab, [leg["artery"], leg["collateral"]])
    col_t = lab == leg["collateral"]
    rim_t = lab == leg["calcification"]
    core = bone_mask(hu, spacing, bt, dilation_voxels=0)
    return {
        "bone_dice_core": dice(core, bone_t),
        "bone_dice": dice(ex.bone, bone_t),
        "vessel_dice": dice(ex.vessel, vessel_t),
        "collateral_voxel_recall": recall(ex.vessel, col_t),
        "collateral_branch_recall": component_recall(ex.vessel, col_t)[0],
        "bone_surface_contamination": surface_contamination(ex.vessel, bone_t, exclude=vessel_t),
        "calcification_dice": dice(ex.calcification, rim_t),
        "rim_in_vessel": recall(ex.vessel, rim_t),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--source", choices=("auto", "phantom", "synthetic"), default="auto")
    ap.add_argument("--bone-threshold", type=float, default=650.0)
    ap.add_argument("--vessel-window", type=float, nargs=2, default=(170.0, 600.0))
    ap.add_argument("--no-accuracy", action="store_true", help="skip the figures against the phantom's labels")
    args = ap.parse_args()
    t = time.perf_counter()
    hu, spacing, ph, desc = load_source(args.source)
    print(f"source: {desc} ({hu.nbytes / 1e6:.0f} MB int16, made in {time.perf_counter() - t:.1f} s)")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__}")
    bt, win = args.bone_threshold, tuple(args.vessel_window)
    t_sug, sug = timed(lambda: suggest_thresholds(hu, spacing), args.repeat)
    print(f"suggest_thresholds:  {t_sug:.3f} s -> {sug.reason}")  # type: ignore[union-attr]
    t_bone, bone = timed(lambda: bone_mask(hu, spacing, bt, rim_low_hu=win[0]), args.repeat)
    print(f"bone_mask:           {t_bone:.3f} s (median of {args.repeat}), {int(bone.sum())} voxels")  # type: ignore[union-attr]
    t_calc, calc = timed(lambda: calcification_mask(hu, spacing, bone, win), args.repeat)
    print(f"calcification_mask:  {t_calc:.3f} s, {int(calc.sum())} voxels")  # type: ignore[union-attr]
    t_ves, ves = timed(lambda: vessel_mask(hu, bone | calc, win, spacing_mm=spacing), args.repeat)  # type: ignore[operator]
    print(f"vessel_mask:         {t_ves:.3f} s, {int(ves.sum())} voxels")  # type: ignore[union-attr]
    t_all, ex = timed(lambda: extract(hu, spacing, bt, win), args.repeat)
    stages = {k: round(v, 3) for k, v in ex.timings_s.items()}  # type: ignore[union-attr]
    print(f"extract (total):     {t_all:.3f} s (median of {args.repeat})  stages {stages}")
    if ph is not None and not args.no_accuracy:
        fig = accuracy(ph, ex, hu, spacing, bt)
        print("accuracy vs phantom labels: " + ", ".join(f"{k} {v:.4f}" for k, v in fig.items()))
    bone_ok = "OK" if t_bone < 2.0 else "MISSED"
    extract_ok = "OK" if t_all < 3.0 else "MISSED"
    print(f"RESULT bone_mask_s={t_bone:.3f} target<2.0 {bone_ok}; extract_s={t_all:.3f} target<3.0 {extract_ok}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
