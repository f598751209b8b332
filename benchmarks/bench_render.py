"""Rendering benchmark: our Scene vs pyvista's add_volume on the same CTA volume.

Run by hand (not by pytest):

    .venv/bin/python benchmarks/bench_render.py --real ../shared/data/ct-chest-noncontrast \
        --real ../shared/data/cta-aorta-nifti/ct_cropped.nii.gz                 # full (~15 min)
    .venv/bin/python benchmarks/bench_render.py --quick                                     # ~2 min

Measures on the phantom (800x600): time to first frame (includes VTK's one-off
gradient computation, and in separated mode the class masks and encoding), median frame
time over a rotation at full quality and at the interactive level of detail, the
threshold-change-to-new-frame latency, separated vs one-class frame time.

Full quality against pyvista ``add_volume(..., mapper='fixed_point')`` (issue 9), on the
phantom and on every ``--real`` scan, one-class and separated: the same scalars, curves,
shading, ray step, light (a headlight) and camera at every view of a rotation, ours and
pyvista's frames rendered in turn; the median frame times, their ratio, and the mean
absolute pixel difference of each image pair (MAD, % of 255; the largest is printed).
Our frame is also timed with the visible-extent cropping off (the previous code path).

Interactive level of detail on a real-size volume: the first ``--real`` scan (else the
phantom) tiled along z to ``--big-slices`` slices (default 1000), separated mode, at
800x600 and 1920x1080. The last line prints the ratios, each comparison with its MAD.

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


def rotation_median(s: Scene, steps: int) -> float:
    """Median render time over a turn of ``steps`` views."""
    times = []
    for _ in range(steps):
        s.azimuth(360.0 / steps)
        times.append(timed(s.render))
    return statistics.median(times)


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
    out["full_median_s"] = rotation_median(s, steps)
    s.set_interactive(True)
    s.render()
    out["interactive_median_s"] = rotation_median(s, steps)
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
    """pyvista's default mapper on its own camera (the ">= 20x" figure)."""
    import pyvista as pv

    w, h = size
    out: dict[str, float] = {}
    pl = pv.Plotter(off_screen=True, window_size=(w, h))
    kw = {} if mapper is None else {"mapper": mapper}
    ref = Scene()
    ref.set_transfer_function(tf)
    t0 = time.perf_counter()
    actor = pl.add_volume(_pv_grid(vol.hu, vol.spacing_mm), scalars="hu", show_scalar_bar=False, **kw)
    _copy_look(actor, ref, tf, sample_distance)
    pl.camera_position = "xz"
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


def _pv_grid(scalars_zyx: np.ndarray, spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)):  # noqa: ANN202
    import pyvista as pv

    nz, ny, nx = scalars_zyx.shape
    grid = pv.ImageData(dimensions=(nx, ny, nz), spacing=spacing, origin=(0.0, 0.0, 0.0))
    grid.point_data["hu"] = scalars_zyx.reshape(-1)
    return grid


def _copy_look(actor, scene: Scene, tf: TransferFunction, sample_distance: float) -> None:  # noqa: ANN001
    """Give a pyvista volume actor our curves, shading and ray step (the same image)."""
    prop = actor.prop
    prop.SetColor(scene._ctf)
    prop.SetScalarOpacity(scene._otf)
    prop.SetShade(1 if tf.shading.enabled else 0)
    prop.SetAmbient(tf.shading.ambient)
    prop.SetDiffuse(tf.shading.diffuse)
    prop.SetSpecular(tf.shading.specular)
    prop.SetSpecularPower(tf.shading.specular_power)
    prop.SetScalarOpacityUnitDistance(tf.unit_distance_mm)
    prop.SetInterpolationTypeToLinear()
    actor.mapper.SetSampleDistance(sample_distance)


def _matrix(m: np.ndarray):  # noqa: ANN202 - vtkMatrix4x4
    from vtkmodules.vtkCommonMath import vtkMatrix4x4

    vm = vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            vm.SetElement(r, c, float(m[r, c]))
    return vm


def mad_percent(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two uint8 images, in % of full scale (255)."""
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean() / 255.0 * 100.0)


def compare_full(vol: Volume, tf: TransferFunction, size: tuple[int, int], frames: int) -> dict:
    """Full-quality frames: ours (visible-extent cropping on), ours with it off (the
    previous code path), and pyvista ``add_volume(mapper='fixed_point')`` on the same
    scalars, same curves, shading, ray step, light (a headlight) and camera, rendered in
    turn at every view of a rotation. Medians, ratios and the pixel difference (MAD, %
    of 255) of each image pair. One class: pyvista gets the raw HU (what a user hands
    it); separated: our class-encoded scalars (the same transfer function needs them)."""
    import pyvista as pv

    from viewer.render.offscreen import grab_window

    w, h = size
    s = Scene()
    s.render_window.SetSize(w, h)
    s.set_volume(vol)
    s.set_transfer_function(tf)
    t0 = time.perf_counter()
    s.render()
    first = time.perf_counter() - t0
    assert s._buffer is not None
    if tf.separated:
        scalars = s._buffer
        m = np.array([[s.vtk_volume.GetUserMatrix().GetElement(r, c) for c in range(4)] for r in range(4)])
    else:
        scalars = vol.hu
        m = np.eye(4)
        m[:3, :3] = vol.direction
        m[:3, 3] = vol.origin_lps
    # pyvista as a user gets it (its theme's 8x MSAA), and with MSAA off as we run.
    plotters = {}
    for key, msaa in (("pyvista", None), ("pyvista_msaa0", 0)):
        pl = pv.Plotter(off_screen=True, window_size=(w, h), lighting="none")
        if msaa is not None:
            pl.ren_win.SetMultiSamples(msaa)
        pl.add_light(pv.Light(light_type="headlight"))
        pl.set_background((0.0, 0.0, 0.0))
        # Image spacing in mm and the rotation in the user matrix, as ours (VTK's
        # shading gradients are taken in the image's own frame).
        grid = _pv_grid(scalars, vol.spacing_mm)
        actor = pl.add_volume(grid, scalars="hu", mapper="fixed_point", show_scalar_bar=False)
        actor.SetUserMatrix(_matrix(m))
        _copy_look(actor, s, tf, s.mapper.GetSampleDistance())
        plotters[key] = pl

    def sync() -> None:
        c = s.renderer.GetActiveCamera()
        for pl in plotters.values():
            pcam = pl.renderer.GetActiveCamera()
            pcam.SetPosition(c.GetPosition())
            pcam.SetFocalPoint(c.GetFocalPoint())
            pcam.SetViewUp(c.GetViewUp())
            pcam.SetViewAngle(c.GetViewAngle())
            pl.renderer.ResetCameraClippingRange()

    sync()
    t0 = time.perf_counter()
    plotters["pyvista"].ren_win.Render()
    pv_first = time.perf_counter() - t0
    plotters["pyvista_msaa0"].ren_win.Render()
    s.skip_invisible = False
    s.render()  # the uncropped path once, untimed
    t: dict[str, list[float]] = {"ours": [], "ours_uncropped": [], "pyvista": [], "pyvista_msaa0": []}
    mads: list[float] = []
    mads_self: list[float] = []
    for n in range(frames):
        s.azimuth(360.0 / frames)
        sync()
        order = ["ours", "ours_uncropped", "pyvista", "pyvista_msaa0"]
        if n % 2:
            order.reverse()
        imgs = {}
        for k in order:
            if k in plotters:
                t[k].append(timed(plotters[k].ren_win.Render))
                imgs[k] = grab_window(plotters[k].ren_win)
            else:
                s.skip_invisible = k == "ours"
                t[k].append(timed(s.render))
                imgs[k] = grab_window(s.render_window)
        mads.append(mad_percent(imgs["ours"], imgs["pyvista"]))
        mads_self.append(mad_percent(imgs["ours"], imgs["ours_uncropped"]))
    s.skip_invisible = True
    out: dict = {k + "_median_s": statistics.median(v) for k, v in t.items()}
    out["first_frame_s"] = first
    out["pyvista_multisamples"] = plotters["pyvista"].ren_win.GetMultiSamples()
    out["pyvista_first_frame_s"] = pv_first
    out["speedup_vs_pyvista"] = out["pyvista_median_s"] / out["ours_median_s"]
    out["speedup_vs_pyvista_msaa0"] = out["pyvista_msaa0_median_s"] / out["ours_median_s"]
    out["speedup_vs_uncropped"] = out["ours_uncropped_median_s"] / out["ours_median_s"]
    out["mad_vs_pyvista_pct"] = statistics.median(mads)
    out["mad_vs_pyvista_max_pct"] = max(mads)
    out["mad_vs_uncropped_max_pct"] = max(mads_self)
    out["visible_box"] = str(s.visible_box)
    out["lit_pixels_pct"] = float((imgs["ours"].max(axis=-1) > 10).mean() * 100.0)
    if os.environ.get("BENCH_RENDER_IMAGES"):
        out["_images"] = imgs  # last view, for a look at the differences
    for pl in plotters.values():
        pl.close()
    s.close()
    return out


def tile_z(vol: Volume, masks, nz_min: int):  # noqa: ANN001, ANN201 - ClassMasks
    """``vol`` (and its class masks) repeated along z to at least ``nz_min`` slices: a
    real scan at a real large size."""
    import dataclasses

    reps = max(1, -(-nz_min // vol.shape[0]))
    hu = np.tile(vol.hu, (reps, 1, 1))
    big = Volume(
        hu, vol.spacing_mm, vol.ijk_to_lps, description=f"{vol.description} tiled x{reps} in z", source="benchmark"
    )
    if masks is None:
        return big, None
    fields = {}
    for f in dataclasses.fields(masks):
        v = getattr(masks, f.name)
        if isinstance(v, np.ndarray) and v.shape == vol.shape:
            fields[f.name] = np.tile(v, (reps, 1, 1))
    return big, dataclasses.replace(masks, **fields)


def bench_interactive(vol: Volume, masks, tf: TransferFunction, sizes, steps: int) -> dict:  # noqa: ANN001
    """Separated mode, level of detail on: median frame while rotating, per size."""
    out: dict = {}
    s = Scene()
    s.render_window.SetSize(*sizes[0])
    s.set_volume(vol)
    if masks is not None:
        s.set_class_masks(masks)
    s.set_transfer_function(tf.with_changes(separated=True))
    out["first_frame_s"] = timed(s.render)
    for w, h in sizes:
        s.render_window.SetSize(w, h)
        s.set_interactive(True)
        s.render()
        med = rotation_median(s, steps)
        s.set_interactive(False)
        out[f"{w}x{h}_interactive_median_s"] = med
        out[f"{w}x{h}_interactive_fps"] = 1.0 / med
    out["visible_box"] = str(s.visible_box)
    s.close()
    return out


def load_real(path: Path) -> Volume:
    from viewer.io.api import load_volume as load_any

    return load_any(str(path))


def _fmt(d: dict) -> str:
    return ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in d.items())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small volume, 800x600 only, few frames (< 1 min)")
    ap.add_argument(
        "--real",
        type=Path,
        action="append",
        default=[],
        metavar="PATH",
        help="a real scan (DICOM folder or volume file) to compare on too; repeatable",
    )
    ap.add_argument(
        "--big-slices",
        type=int,
        default=1000,
        help="interactive test volume: the first --real scan (else the phantom) tiled along z to this many slices",
    )
    ap.add_argument("--no-interactive", action="store_true", help="skip the large-volume interactive figures")
    ap.add_argument("--frames", type=int, default=0, help="views per comparison (default 12, quick 6)")
    ap.add_argument("--no-pyvista-default", action="store_true", help="skip pyvista's default (GPU) mapper")
    ap.add_argument("--json", type=Path, help="write the figures here as JSON")
    args = ap.parse_args(argv)

    t_load = time.perf_counter()
    vol = load_volume(args.quick)
    print(
        f"volume: {vol.description} {vol.dims_xyz} spacing {vol.spacing_mm} mm "
        f"({time.perf_counter() - t_load:.1f} s to make)"
    )
    reals = []
    for path in args.real:
        rv = load_real(path)
        print(f"real scan: {path} {rv.dims_xyz} spacing {tuple(round(x, 3) for x in rv.spacing_mm)} mm")
        reals.append((path.name, rv))
    probe = Scene()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}, "
        f"GL: {probe.renderer_info}, mapper: {probe.mapper_kind}, python {platform.python_version()}"
    )
    probe.close()
    size = (800, 600)
    steps = 10 if args.quick else 30
    frames = args.frames or (6 if args.quick else 12)
    tf = TransferFunction()
    results: dict = {"volume": list(vol.dims_xyz), "spacing_mm": list(vol.spacing_mm), "sizes": {}, "compare": {}}

    # Our own figures on the phantom: first frame, LOD, threshold edits.
    r: dict = {}
    r["ours_one_class"] = bench_ours(vol, size, steps, False, tf)
    r["ours_separated"] = bench_ours(vol, size, steps, True, tf)
    sd = r["ours_one_class"]["sample_distance_mm"]
    if not args.no_pyvista_default:
        r["pyvista_default"] = bench_pyvista(vol, size, 0 if args.quick else 1, None, tf, sd)
    for name, d in r.items():
        d.pop("_image", None)
        print(f"[800x600] {name}: {_fmt(d)}")
    results["sizes"]["800x600"] = r

    # Full quality against pyvista fixed_point: same scalars, curves, light and camera.
    ratios: dict[str, float] = {}
    mads: dict[str, float] = {}
    for vname, v in [("phantom", vol), *reals]:
        for mode, sep in (("one_class", False), ("separated", True)):
            c = compare_full(v, tf.with_changes(separated=sep), size, frames)
            c.pop("_images", None)
            key = f"{vname}_{mode}"
            results["compare"][key] = c
            print(f"[800x600 full] {key}: {_fmt(c)}")
            ratios[f"full_vs_pyvista_fixed_point[{key}]"] = c["speedup_vs_pyvista"]
            mads[f"full_vs_pyvista_fixed_point[{key}]"] = c["mad_vs_pyvista_max_pct"]

    one, sep_r = r["ours_one_class"], r["ours_separated"]
    ratios["separated_vs_one_class"] = sep_r["full_median_s"] / one["full_median_s"]
    ratios["threshold_to_frame_s"] = max(one["threshold_to_frame_s"], sep_r["threshold_to_frame_s"])
    if "pyvista_default" in r:
        ratios["speedup_vs_pyvista_default"] = r["pyvista_default"]["median_s"] / one["full_median_s"]

    inter_ok = True
    if not args.no_interactive:
        src_name, src = reals[0] if reals else ("phantom", vol)
        m = Scene()
        m.set_volume(src)
        m.set_transfer_function(tf.with_changes(separated=True))
        masks = m.class_masks
        m.close()
        big, big_masks = tile_z(src, masks, 150 if args.quick else args.big_slices)
        sizes = [(800, 600)] if args.quick else [(800, 600), (1920, 1080)]
        print(f"interactive volume: {src_name} {big.dims_xyz} ({big.description})")
        bi = bench_interactive(big, big_masks, tf, sizes, 10 if args.quick else 20)
        results["interactive_big"] = bi
        print(f"[interactive, separated] {src_name} {big.dims_xyz}: {_fmt(bi)}")
        ratios["interactive_fps_sep_800x600_big"] = bi["800x600_interactive_fps"]
        inter_ok = bi["800x600_interactive_fps"] >= 20
        if "1920x1080_interactive_fps" in bi:
            ratios["interactive_fps_sep_1920x1080_big"] = bi["1920x1080_interactive_fps"]
            inter_ok = inter_ok and bi["1920x1080_interactive_fps"] >= 10
        del big, big_masks

    results["ratios"] = ratios
    results["mad_pct"] = mads
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=float))
    full_ok = all(v >= 1.5 for k, v in ratios.items() if k.startswith("full_vs")) and all(
        x <= 2.0 for x in mads.values()
    )
    ok = (
        full_ok
        and inter_ok
        and ratios["separated_vs_one_class"] <= 1.5
        and ratios["threshold_to_frame_s"] <= 0.3
        and ratios.get("speedup_vs_pyvista_default", 99) >= 20
    )
    parts = []
    for k, v in ratios.items():
        parts.append(f"{k}={v:.2f}" + (f"(MAD {mads[k]:.2f}%)" if k in mads else ""))
    print("RATIOS " + " ".join(parts) + f" targets={'met' if ok else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
