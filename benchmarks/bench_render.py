"""Rendering benchmark: our Scene vs pyvista's add_volume on the same CTA volume.

Run by hand (not by pytest):

    VTK_SMP_BACKEND_IN_USE=STDThread .venv/bin/python benchmarks/bench_render.py          # full
    .venv/bin/python benchmarks/bench_render.py --quick                                     # < 1 min

Measures, per image size: time to first frame (includes VTK's one-off gradient
computation, and in separated mode the bone mask and class encoding), median frame
time over a rotation at full quality and at the interactive level of detail, the
threshold-change-to-new-frame latency, separated vs one-class frame time, and
pyvista's ``add_volume`` (its default mapper and ``mapper='fixed_point'``) on the same
data with our transfer function and sample distance (same image). The last line
prints the target ratios.

Volume: ``viewer.phantom.generate("large")`` when it exists, else a synthetic two-leg
CTA of 512x512x300 (0.8 x 0.8 x 1.0 mm) built here; ``--quick`` uses a 256x256x150
crop-sized synthetic (or the phantom's "default" size) and fewer frames.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("VTK_SMP_BACKEND_IN_USE", "STDThread")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from viewer.core.transfer import TransferFunction  # noqa: E402
from viewer.core.volume import Volume, axis_aligned_affine  # noqa: E402
from viewer.render.offscreen import render_to_array  # noqa: E402
from viewer.render.scene import Scene, compute_bone_mask  # noqa: E402


def synthetic_legs(nx: int, ny: int, nz: int, spacing=(0.8, 0.8, 1.0), seed: int = 0) -> Volume:
    """Two lower legs in air: skin/muscle/fat, tibia + fibula (cortex, marrow,
    trabecular ends), three arteries each drifting along z, CT-like noise."""
    rng = np.random.default_rng(seed)
    sx, sy, sz = spacing
    scale = nx / 512.0
    x = (np.arange(nx) - nx / 2) * sx
    y = (np.arange(ny) - ny / 2) * sy
    X, Y = np.meshgrid(x, y)  # (ny, nx)
    hu = np.empty((nz, ny, nx), np.int16)
    legs = [(-80.0 * scale, 0.0), (80.0 * scale, 0.0)]
    for k in range(nz):
        t = k / max(nz - 1, 1)
        s = np.full((ny, nx), -1000.0, np.float32)
        for side, (cx, cy) in enumerate(legs):
            mir = -1.0 if cx < 0 else 1.0
            r = np.hypot(X - cx, Y - cy)
            s[r < 62 * scale] = -90.0  # subcutaneous fat
            s[r < 55 * scale] = 45.0  # muscle
            for bx, by, ro, ri in (
                (cx - mir * 8 * scale, cy - 12 * scale, 14 * scale, 8 * scale),
                (cx + mir * 22 * scale, cy + 5 * scale, 7 * scale, 3.5 * scale),
            ):
                rb = np.hypot(X - bx, Y - by)
                s[rb < ro] = 1250.0
                s[rb < ri] = 300.0 if (t < 0.12 or t > 0.88) else 40.0  # trabecular ends
            for ax, ay, ra in (
                (cx - mir * 12 * scale, cy - 30 * scale, 3.0),
                (cx + mir * 12 * scale, cy + 14 * scale, 2.5),
                (cx + mir * 30 * scale, cy - 8 * scale, 2.2),
            ):
                ax += 6 * scale * np.sin(6.0 * t + side)
                ay += 4 * scale * np.cos(5.0 * t)
                s[np.hypot(X - ax, Y - ay) < ra] = 380.0
        s += rng.normal(0.0, 15.0, size=s.shape).astype(np.float32)
        hu[k] = np.clip(s, -1024, 3071).astype(np.int16)
    return Volume(
        hu,
        spacing,
        axis_aligned_affine(spacing, (-nx / 2 * sx, -ny / 2 * sy, -nz / 2 * sz)),
        description=f"synthetic legs {nx}x{ny}x{nz}",
        source="benchmark",
    )


def load_volume(quick: bool) -> Volume:
    try:
        from viewer.phantom import generate  # type: ignore[attr-defined]

        return generate("default" if quick else "large").volume
    except ImportError:
        pass
    return synthetic_legs(256, 256, 150, spacing=(1.6, 1.6, 2.0)) if quick else synthetic_legs(512, 512, 300)


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench_ours(vol: Volume, size: tuple[int, int], steps: int, separated: bool, tf: TransferFunction) -> dict:
    w, h = size
    out: dict[str, float] = {}
    s = Scene()
    s.render_window.SetSize(w, h)
    tf = tf.with_changes(separated=separated)
    t0 = time.perf_counter()
    s.set_volume(vol)
    s.set_transfer_function(tf)
    s.render()
    out["first_frame_s"] = time.perf_counter() - t0
    out["mask_s"] = s.last_timings_s.get("class_masks", 0.0)
    out["encode_s"] = s.last_timings_s.get("encode", 0.0)
    out["sample_distance_mm"] = s.mapper.GetSampleDistance()
    full = []
    for _ in range(steps):
        s.azimuth(360.0 / steps)
        full.append(timed(s.render))
    out["full_median_s"] = statistics.median(full)
    s.set_interactive(True)
    s.render()
    inter = []
    for _ in range(steps):
        s.azimuth(360.0 / steps)
        inter.append(timed(s.render))
    out["interactive_median_s"] = statistics.median(inter)
    s.set_interactive(False)
    s.render()
    # Threshold change -> new frame. One-class: any threshold is a curve edit.
    # Separated: the vessel window is a curve edit; the bone threshold restyles the
    # current mask at once (GUI path: mask supplied, recomputed off-thread) ...
    if separated:
        s.set_bone_mask(s.bone_mask)  # supplied mask: a threshold edit restyles
        s.render()
    lat = []
    for n, lo in enumerate((160.0, 200.0, 170.0)):
        tf2 = tf.with_vessel_window(lo, 600.0).with_bone_threshold(650.0 + 20 * (n + 1))
        lat.append(timed(lambda tf2=tf2: (s.set_transfer_function(tf2), s.render())))
    out["threshold_to_frame_s"] = statistics.median(lat)
    if separated:
        # ... and the full bone-threshold change: new mask + re-encode + frame
        # (gradients recomputed by the CPU mapper).
        s.set_bone_mask(None)
        tf3 = tf.with_bone_threshold(700.0)
        out["bone_remask_to_frame_s"] = timed(lambda: (s.set_transfer_function(tf3), s.render()))
        # The same with the mask handed in (computed off the GUI thread): encode + frame.
        mask = compute_bone_mask(vol.hu, vol.spacing_mm, 600.0)
        out["mask_supplied_to_frame_s"] = timed(lambda: (s.set_bone_mask(mask), s.render()))
    img = render_to_array(s, w, h)
    out["_image"] = img  # type: ignore[assignment]
    s.close()
    return out


def bench_pyvista(
    vol: Volume, size: tuple[int, int], frames: int, mapper: str | None, tf: TransferFunction, sample_distance: float
) -> dict:
    import pyvista as pv

    from viewer.render.scene import Scene as _S

    w, h = size
    out: dict[str, float] = {}
    nx, ny, nz = vol.dims_xyz
    grid = pv.ImageData(dimensions=(nx, ny, nz), spacing=vol.spacing_mm, origin=tuple(vol.origin_lps))
    grid.point_data["hu"] = vol.hu.reshape(-1)
    pl = pv.Plotter(off_screen=True, window_size=(w, h))
    kw = {} if mapper is None else {"mapper": mapper}
    t0 = time.perf_counter()
    actor = pl.add_volume(grid, scalars="hu", **kw)
    # Same transfer function, shading and step as ours, for the same image.
    ref = _S()
    ref.set_transfer_function(tf)
    prop = actor.prop
    prop.SetColor(ref._ctf)
    prop.SetScalarOpacity(ref._otf)
    prop.SetShade(1)
    prop.SetAmbient(tf.shading.ambient)
    prop.SetDiffuse(tf.shading.diffuse)
    prop.SetSpecular(tf.shading.specular)
    prop.SetSpecularPower(tf.shading.specular_power)
    prop.SetScalarOpacityUnitDistance(tf.unit_distance_mm)
    actor.mapper.SetSampleDistance(sample_distance)
    pl.camera_position = "xz"
    pl.camera.azimuth = 0
    # Plotter.render() is a no-op before show(); render the window itself.
    pl.ren_win.Render()
    out["first_frame_s"] = time.perf_counter() - t0
    times = []
    for _ in range(frames):
        pl.camera.Azimuth(360.0 / 30)
        times.append(timed(pl.ren_win.Render))
    out["median_s"] = statistics.median(times) if times else out["first_frame_s"]
    out["mapper"] = actor.mapper.GetClassName()  # type: ignore[assignment]
    pl.close()
    ref.close()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small volume, 800x600 only, few frames (< 1 min)")
    ap.add_argument("--no-pyvista-default", action="store_true", help="skip pyvista's default (GPU) mapper")
    ap.add_argument("--json", type=Path, help="write the figures here as JSON")
    args = ap.parse_args(argv)

    t_load = time.perf_counter()
    vol = load_volume(args.quick)
    print(
        f"volume: {vol.description} {vol.dims_xyz} spacing {vol.spacing_mm} mm "
        f"({time.perf_counter() - t_load:.1f} s to make)"
    )
    probe = Scene()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"GL: {probe.renderer_info}, mapper: {probe.mapper_kind}, python {platform.python_version()}"
    )
    probe.close()
    sizes = [(800, 600)] if args.quick else [(800, 600), (1920, 1080)]
    steps = 10 if args.quick else 30
    tf = TransferFunction()
    results: dict = {"volume": list(vol.dims_xyz), "spacing_mm": list(vol.spacing_mm), "sizes": {}}
    for size in sizes:
        key = f"{size[0]}x{size[1]}"
        r: dict = {}
        r["ours_one_class"] = bench_ours(vol, size, steps, False, tf)
        r["ours_separated"] = bench_ours(vol, size, steps, True, tf)
        sd = r["ours_one_class"]["sample_distance_mm"]
        r["pyvista_fixed_point"] = bench_pyvista(vol, size, 3 if args.quick else 10, "fixed_point", tf, sd)
        if not args.no_pyvista_default and size == (800, 600):
            r["pyvista_default"] = bench_pyvista(vol, size, 0 if args.quick else 1, None, tf, sd)
        for name, d in r.items():
            d.pop("_image", None)
            print(
                f"[{key}] {name}: "
                + ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in d.items())
            )
        results["sizes"][key] = r

    r = results["sizes"]["800x600"]
    one, sep = r["ours_one_class"], r["ours_separated"]
    ratios = {
        "interactive_fps_800x600": 1.0 / one["interactive_median_s"],
        "interactive_fps_sep_800x600": 1.0 / sep["interactive_median_s"],
        "full_vs_pyvista_fixed_point": one["full_median_s"] / r["pyvista_fixed_point"]["median_s"],
        "separated_vs_one_class": sep["full_median_s"] / one["full_median_s"],
        "threshold_to_frame_s": max(one["threshold_to_frame_s"], sep["threshold_to_frame_s"]),
    }
    if "pyvista_default" in r:
        ratios["speedup_vs_pyvista_default"] = r["pyvista_default"]["median_s"] / one["full_median_s"]
    results["ratios"] = ratios
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=float))
    ok = (
        ratios["interactive_fps_800x600"] >= 10
        and ratios["full_vs_pyvista_fixed_point"] <= 1.0
        and ratios["separated_vs_one_class"] <= 1.5
        and ratios["threshold_to_frame_s"] <= 0.3
        and ratios.get("speedup_vs_pyvista_default", 99) >= 20
    )
    print("RATIOS " + " ".join(f"{k}={v:.2f}" for k, v in ratios.items()) + f" targets={'met' if ok else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
