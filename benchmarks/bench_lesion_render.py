"""Lesion rendering (issue 10): frame rate with distance colours vs the separated mode,
the cost of each lesion visual, and the report sheet, on the phantom and the real CTA.

Run by hand: ``.venv/bin/python benchmarks/bench_lesion_render.py [--json FILE] [--no-cta]``.

* frame rate: ``bench_lesion.frame_rate`` (800 x 600 offscreen, full quality, the same
  camera turning; the modes take turns and keep their best median) and
  :func:`paired_frame_rate` (a separated and a coloured scene rendered in turn, frame
  by frame: the per-pair ratio is robust to the shared machine's load) on the default
  phantom (60 mm sphere at the phantom legend's lesion) and on the real CTA
  (``../shared/data/cta-aorta-nifti``, 25 mm sphere on the aorta);
* the paired frame rate with the vessel mesh's triangle budget at 30 k and 200 k (the
  shipped budget is ``VESSEL_MESH_MAX_TRIANGLES``) to show what the mesh costs;
* set-up times: keyhole on (re-encode), first distance colouring (mesh build), a moved
  lesion (re-colour only), the report sheet (four 800 x 600 cells).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("VTK_SMP_BACKEND_IN_USE", "STDThread")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402
from bench_lesion import frame_rate  # noqa: E402

from viewer.core.extraction import ClassMasks  # noqa: E402
from viewer.core.lesion import Lesion, analyse_lesion, lesion_from_phantom  # noqa: E402
from viewer.core.presets import default_preset  # noqa: E402
from viewer.core.volume import Volume  # noqa: E402
from viewer.export.lesion_report import scene_class_masks, write_lesion_report  # noqa: E402
from viewer.render import lesion_visual  # noqa: E402
from viewer.render.scene import Scene  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
CTA_LESION = Lesion.sphere((17.0, -142.0, 690.0), 25.0)  # centre of the aorta mask at its middle slice


def paired_frame_rate(
    vol: Volume, masks: ClassMasks, lesion: Lesion, mode: str, frames: int = 24, cull: bool = True
) -> dict[str, float]:
    """Two scenes, one separated and one with ``mode`` distance colours, rendered in
    turn frame by frame from the same turning camera (800 x 600, full quality): each
    pair sees the same machine load (the machine is shared), so the median of the
    per-pair ratios is the frame-rate cost of the colours. ``cull=False`` draws the
    mesh's back faces too (as before they were culled)."""
    tf = default_preset().with_changes(separated=True)
    scenes = [Scene(offscreen=True), Scene(offscreen=True)]
    try:
        for s, colour in zip(scenes, ("off", mode), strict=True):
            s.render_window.SetSize(800, 600)
            s.set_volume(vol)
            s.set_transfer_function(tf)
            s.set_class_masks(masks)
            s.set_lesion(lesion)
            s.set_vessel_colouring(colour, 30.0)
            s.render()  # gradients and meshes: not timed
            if not cull:
                s._vessel_mesh.actor.GetProperty().BackfaceCullingOff()
            s.render()
        t_plain, t_col = [], []
        for _ in range(frames):
            for s, out in zip(scenes, (t_plain, t_col), strict=True):
                s.azimuth(360.0 / frames)
                t = time.perf_counter()
                s.render()
                out.append(time.perf_counter() - t)
    finally:
        for s in scenes:
            s.close()
    ratio = float(np.median(np.asarray(t_col) / np.asarray(t_plain)))
    res = {"separated_s": float(np.median(t_plain)), "coloured_s": float(np.median(t_col)), "ratio": ratio}
    res["fps_loss"] = 1.0 - 1.0 / ratio
    print(
        f"  paired 800x600 frames, colours by {mode}{'' if cull else ' (back faces drawn)'}:"
        f" separated {res['separated_s']:.3f} s, coloured "
        f"{res['coloured_s']:.3f} s, median per-pair ratio {ratio:.3f} (frame-rate loss {res['fps_loss']:.1%})"
    )
    return res


def setup_costs(vol: Volume, masks: ClassMasks, lesion: Lesion) -> dict[str, float]:
    """Seconds for each lesion visual to take effect (call + first 800 x 600 frame)."""
    tf = default_preset().with_changes(separated=True)
    out: dict[str, float] = {}
    with Scene(offscreen=True) as s:
        s.render_window.SetSize(800, 600)
        s.set_volume(vol)
        s.set_transfer_function(tf)
        s.set_class_masks(masks)
        s.set_lesion(lesion)
        s.render()
        for name, step in (
            ("keyhole_on", lambda: s.set_keyhole(True)),
            ("colour_lesion_first", lambda: s.set_vessel_colouring("lesion", 30.0)),
            ("lesion_moved", lambda: s.set_lesion(Lesion.sphere(np.add(lesion.center_lps, 5.0), lesion.radius_mm))),
            ("colour_bone", lambda: s.set_vessel_colouring("bone", 30.0)),
        ):
            t = time.perf_counter()
            step()
            out[f"{name}_call_s"] = time.perf_counter() - t
            s.render()
            out[f"{name}_s"] = time.perf_counter() - t
        out["vessel_mesh_build_s"] = s.last_timings_s.get("vessel_mesh", float("nan"))
        mesh = s._vessel_mesh.mesh
        out["vessel_mesh_triangles"] = float(mesh.GetNumberOfPolys()) if mesh is not None else 0.0  # type: ignore[attr-defined]
    return out


def report_time(vol: Volume, masks: ClassMasks, lesion: Lesion) -> dict[str, float]:
    t = time.perf_counter()
    analysis = analyse_lesion(vol, masks, lesion)
    t_an = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        write_lesion_report(vol, masks, analysis, Path(d) / "r.png", tf=default_preset())
        t_rep = time.perf_counter() - t
    return {"analysis_s": t_an, "report_sheet_s": t_rep}


def case(name: str, vol: Volume, lesion: Lesion) -> dict[str, Any]:
    print(f"{name}: {vol.dims_xyz} voxels at {vol.spacing_mm} mm")
    t = time.perf_counter()
    masks = scene_class_masks(vol, default_preset())
    print(f"  masks {time.perf_counter() - t:.1f} s")
    res: dict[str, Any] = {"frame_rate": frame_rate(vol, masks, lesion)}
    for mode in ("lesion", "bone"):
        res[f"paired_{mode}"] = paired_frame_rate(vol, masks, lesion, mode)
        res[f"paired_{mode}_back_faces"] = paired_frame_rate(vol, masks, lesion, mode, cull=False)
    shipped = lesion_visual.VESSEL_MESH_MAX_TRIANGLES
    for budget in (30_000, 200_000):
        lesion_visual.VESSEL_MESH_MAX_TRIANGLES = budget
        try:
            print(f"  with a {budget // 1000} k triangle budget:")
            res[f"paired_budget_{budget}"] = paired_frame_rate(vol, masks, lesion, "lesion")
        finally:
            lesion_visual.VESSEL_MESH_MAX_TRIANGLES = shipped
    res["setup"] = setup_costs(vol, masks, lesion)
    print("  set-up: " + ", ".join(f"{k} {v:.2f}" for k, v in res["setup"].items()))
    res["report"] = report_time(vol, masks, lesion)
    print("  report: " + ", ".join(f"{k} {v:.2f} s" for k, v in res["report"].items()))
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    ap.add_argument("--no-cta", action="store_true", help="skip the real CTA")
    args = ap.parse_args(argv)
    from viewer.phantom import generate

    ph = generate("default")
    legend = lesion_from_phantom(ph.landmarks)
    results = {
        "phantom_default": case("default phantom, 60 mm sphere", ph.volume, Lesion.sphere(legend.center_lps, 60.0))
    }
    if not args.no_cta and (DATA / "cta-aorta-nifti").is_dir():
        from viewer.io import load_volume

        results["real_cta"] = case(
            "real CTA (cta-aorta-nifti), 25 mm sphere on the aorta", load_volume(DATA / "cta-aorta-nifti"), CTA_LESION
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
