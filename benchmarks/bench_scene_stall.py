"""Longest stall of the GUI event loop during scene work (issue 9), run by hand, under X.

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python benchmarks/bench_scene_stall.py [--quick]

A heartbeat (a QTimer every 10 ms on the GUI thread) records the gaps between its
ticks while the window does one operation and settles (masks, scene preparation and
the next render done). The longest gap is how long a click would have waited. On the
default phantom, the real CTA (../shared/data/cta-aorta-nifti/ct_cropped.nii.gz) and the
real non-contrast chest (../shared/data/ct-chest-noncontrast), in separated mode:
distance colouring to the lesion and to bone, keyhole on/off, moving the lesion, a bone
threshold change, the separated toggle, a preset switch and the scan replacement. The
scan loads also print when the new volume was first drawn (unshaded while the shading
worker computes its gradients) and first drawn shaded, counted from the load's start;
``--big PATH`` adds a real-size scan (e.g. the real chest tiled along z to 600 slices).
Target: max stall <= 100 ms. The last line prints ``max stall N ms`` per operation.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# This checkout's package, not whichever one the virtual environment's editable install
# points at (a benchmark of another worktree would measure the wrong code).
sys.path.insert(0, str(ROOT))
DATA = Path(os.environ.get("VIEWER_SHARED_DATA", str(ROOT.parent / "shared" / "data")))


def main() -> int:
    os.environ.setdefault("VTK_SMP_BACKEND_IN_USE", "STDThread")
    cfg = tempfile.mkdtemp()
    os.environ["VESSEL_VIEWER_CONFIG_DIR"] = cfg
    quick = "--quick" in sys.argv
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from viewer.core.lesion import Lesion
    from viewer.ui.main_window import MainWindow

    w = MainWindow(settings=QSettings(str(Path(cfg) / "s.ini"), QSettings.Format.IniFormat))
    w.resize(1400, 900)
    w.show()
    w.view3d.initialize()
    worst: dict[str, float] = {}
    renders: list[float] = []
    w.view3d.frame_rendered.connect(lambda _full, sec: renders.append(sec))

    def pump(cond: Any, timeout_s: float = 300.0) -> None:
        end = time.perf_counter() + timeout_s
        while not cond():
            app.processEvents()
            time.sleep(0.002)
            if time.perf_counter() > end:
                raise SystemExit("timed out")

    def settled() -> bool:
        v = w.view3d
        return not (v._render_timer.isActive() or w.mask_runner.busy or w.loading or getattr(v, "scene_busy", False))

    def idle() -> None:
        pump(settled)
        for _ in range(10):
            app.processEvents()

    def stall(label: str, edit: Any, until: Any = None, draws: bool = True) -> None:
        """Heartbeat gaps while ``edit()`` runs and the window settles (and renders,
        unless ``draws`` is False: an export draws an offscreen copy, not the window)."""
        idle()
        ticks: list[float] = []
        timer = QTimer()
        timer.setInterval(10)
        timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
        timer.start()
        for _ in range(3):
            app.processEvents()
            time.sleep(0.011)
        n = w.view3d.n_renders
        renders.clear()
        t0 = time.perf_counter()
        edit()
        pump(lambda: (until is None or until()) and settled() and (w.view3d.n_renders > n or not draws))
        t = time.perf_counter() - t0
        for _ in range(3):
            app.processEvents()
            time.sleep(0.011)
        timer.stop()
        gaps = [b - a for a, b in zip(ticks[:-1], ticks[1:], strict=True)] or [t]
        g = max(gaps) * 1000.0
        worst[label] = max(worst.get(label, 0.0), g)
        r = max(renders, default=0.0) * 1000.0
        # The longest VTK render inside the window (shading gradients after new
        # scalars are computed there): the part of the stall that is no scene work.
        print(f"  {label:<28} done after {t:6.2f} s   max stall {g:6.0f} ms   longest render {r:6.0f} ms", flush=True)

    def run(name: str, lesion: Lesion) -> None:
        vol = w.state.volume
        nx, ny, nz = vol.dims_xyz
        print(f"{name}: {nx} x {ny} x {nz} voxels", flush=True)
        tf0 = w.state.transfer_function
        stall("mark the lesion", lambda: setattr(w.state, "lesion", lesion))
        stall("colour to lesion", lambda: setattr(w.state, "vessel_colouring", "lesion"))
        moved = Lesion.sphere(tuple(c + 5.0 for c in lesion.center_lps), lesion.radius_mm)
        stall("move the lesion", lambda: setattr(w.state, "lesion", moved))
        stall("colour to bone", lambda: setattr(w.state, "vessel_colouring", "bone"))
        stall("colours off", lambda: setattr(w.state, "vessel_colouring", "off"))
        stall("keyhole on", lambda: setattr(w.state, "keyhole", True))
        stall("keyhole off", lambda: setattr(w.state, "keyhole", False))
        w.state.lesion = None
        masks0 = w.state.class_masks
        stall(
            "bone threshold +30 HU",
            lambda: setattr(
                w.state, "transfer_function", tf0.with_changes(bone_threshold_hu=tf0.bone_threshold_hu + 30)
            ),
            lambda: w.state.class_masks is not masks0,
        )
        stall("separated off", lambda: w.set_separated(False))
        stall("separated on", lambda: w.set_separated(True))
        # A preset whose transfer function differs from the current one (setting an
        # equal one changes nothing and renders nothing: the wait below would hang).
        name0 = w.state.preset_name
        other = next(n for n in w.presets if w.presets[n].with_changes(separated=True) != tf0)
        stall(
            "preset switch",
            lambda: w.state.update(transfer_function=w.presets[other].with_changes(separated=True), preset_name=other),
        )
        stall("preset back", lambda: w.state.update(transfer_function=tf0, preset_name=name0))
        # File > Export image at 1200 x 900 (rendered on a worker since 2026-12-07)
        from viewer.export.image import ExportOptions
        from viewer.ui.export_dialogs import export_image_dialog

        out = Path(cfg) / "still.png"
        stall("export image", lambda: export_image_dialog(w, out, ExportOptions(width=1200, height=900)), draws=False)

    def load(label: str, start: Any) -> None:
        old = w.state.volume

        def ready() -> bool:
            v, m = w.state.volume, w.state.class_masks
            return v is not old and v is not None and m is not None and m.bone.shape == v.shape

        # When the new volume is first drawn (unshaded while the shading worker runs,
        # viewer.render.shading_warmup) and when it is drawn shaded.
        seen: dict[str, float] = {}

        def on_frame(_full: bool, _sec: float) -> None:
            if w.state.volume is not old and w.view3d.scene.has_scalars:
                seen.setdefault("first", time.perf_counter())
                if not getattr(w.view3d.scene, "shading_deferred", False) and not w.view3d.scene_busy:
                    seen.setdefault("shaded", time.perf_counter())

        w.view3d.frame_rendered.connect(on_frame)
        t_load = time.perf_counter()
        stall(label, start, ready)
        n = w.view3d.n_renders
        t0 = time.perf_counter()
        w.view3d.request_render()
        pump(lambda: w.view3d.n_renders > n)
        w.view3d.frame_rendered.disconnect(on_frame)
        print(f"  (full frame after settling: {time.perf_counter() - t0:.2f} s)", flush=True)
        for k, t in seen.items():
            print(f"  ({k} frame of the new volume {t - t_load:.2f} s after the load began)", flush=True)

    w.set_separated(True)
    load("load phantom", lambda: w.open_phantom("default"))
    w.lesion_controller.lesion_from_legend()
    pump(lambda: w.state.lesion is not None)
    legend = w.state.lesion
    w.state.lesion = None
    run("default phantom", legend)
    scans = [
        ("real CTA cta-aorta-nifti", DATA / "cta-aorta-nifti" / "ct_cropped.nii.gz"),
        ("real chest ct-chest-noncontrast", DATA / "ct-chest-noncontrast"),
    ]
    # --big PATH: a real-size scan too (e.g. the real chest tiled along z to 600 slices).
    if "--big" in sys.argv:
        big = Path(sys.argv[sys.argv.index("--big") + 1])
        scans.append((f"real-size {big.name}", big))
    for label, src in scans:
        if (quick and "real-size" not in label) or not src.exists():
            continue
        load("scan replacement", lambda s=src: w.open_path(str(s)))
        run(label, Lesion.sphere(w.state.crosshair_lps, 30.0))
    w.close()
    print("max stall " + ", ".join(f"{k} {v:.0f} ms" for k, v in worst.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
