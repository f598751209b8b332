"""Bone-threshold edit to frame in the window, separated mode, on a real-size scan
(issue 9: "bone threshold change to frame <= 1 s"). Run by hand, under X:

    .venv/bin/python benchmarks/make_tiled.py 600 /tmp/chest600.nrrd
    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python benchmarks/bench_bone_edit_gui.py /tmp/chest600.nrrd

Opens PATH in the main window in separated mode, waits until everything has settled
(full masks, shaded full-quality frame), then moves the bone threshold by each of
``--deltas`` (HU, one after the other, through the spin box as a user types it) and
prints, counted from the edit: the frames rendered before the new masks' preview came,
when the preview masks (every few slices, a big scan only) came, the first frame after
them (the coarse separated frame), when the full masks came and the first frame after
them. A big scan's coarse frame is what the target counts ("a coarse first frame is
fine if it refines by itself"). The last line prints the medians.

To compare two commits, run this file against another checkout with ``--root``
(``git worktree add /tmp/old <commit>``) in the same half hour, in turn.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("path", help="scan to open (e.g. the real chest tiled to 600 slices)")
    ap.add_argument("--deltas", default="50,-50,50,-50", help="bone threshold steps in HU (default 50,-50,50,-50)")
    ap.add_argument("--root", default=str(Path(__file__).resolve().parents[1]), help="checkout to measure")
    ap.add_argument(
        "--trace", action="store_true", help="also print when the coarse frame's steps ran (buffer, warm-up, render)"
    )
    args = ap.parse_args()
    sys.path.insert(0, str(Path(args.root).resolve()))
    os.environ.setdefault("VTK_SMP_BACKEND_IN_USE", "STDThread")
    cfg = tempfile.mkdtemp()
    os.environ["VESSEL_VIEWER_CONFIG_DIR"] = cfg
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from viewer.ui.main_window import MainWindow

    print(f"code: {sys.modules['viewer'].__file__}")
    w = MainWindow(settings=QSettings(os.path.join(cfg, "s.ini"), QSettings.Format.IniFormat))
    w.resize(1400, 900)
    w.show()
    w.view3d.initialize()
    events: list[tuple[float, str]] = []
    w.view3d.frame_rendered.connect(lambda full, s: events.append((time.perf_counter(), "frame")))
    w.mask_controller.preview_ready.connect(lambda *a: events.append((time.perf_counter(), "preview")))
    w.mask_controller.masks_ready.connect(lambda *a: events.append((time.perf_counter(), "masks")))
    steps: list[tuple[float, float, str]] = []
    if args.trace:
        import viewer.ui.view3d as v3d

        def traced(fn, name):  # type: ignore[no-untyped-def]
            def run(*a, **k):  # type: ignore[no-untyped-def]
                t = time.perf_counter()
                try:
                    return fn(*a, **k)
                finally:
                    steps.append((t, time.perf_counter(), name))

            return run

        for name in ("preview_buffer", "warm_mapper"):
            setattr(v3d, name, traced(getattr(v3d, name), name))
        w.view3d.scene.render = traced(w.view3d.scene.render, "render")

    def wait(cond, timeout_s: float = 180.0) -> None:  # type: ignore[no-untyped-def]
        end = time.perf_counter() + timeout_s
        while not cond():
            app.processEvents()
            time.sleep(0.002)
            if time.perf_counter() > end:
                raise SystemExit("bench_bone_edit_gui: timed out")

    def settle(seconds: float) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.01)

    def settled() -> bool:
        if hasattr(type(w), "settled"):
            return bool(w.settled)
        # (a checkout from before MainWindow.settled, for --root)
        tf, m = w.state.transfer_function, w.state.class_masks
        return (
            m is not None
            and m.matches(tf.bone_threshold_hu, tf.vessel_window_hu)
            and not w.mask_controller.busy
            and not w.view3d.scene_busy
        )

    t_open = time.perf_counter()
    w.set_separated(True)
    w.open_path(args.path)
    wait(lambda: w.state.volume is not None and not w.loading)
    wait(settled)
    settle(2.0)
    nx, ny, nz = w.state.volume.dims_xyz
    print(f"{Path(args.path).name}: {nx} x {ny} x {nz}, settled {time.perf_counter() - t_open:.1f} s after opening")
    coarse_s: list[float] = []
    full_s: list[float] = []
    for delta in (float(d) for d in args.deltas.split(",")):
        events.clear()
        steps.clear()
        t0 = time.perf_counter()
        w.controls.bone_spin.setValue(int(round(w.state.transfer_function.bone_threshold_hu + delta)))
        wait(lambda: any(n == "masks" for _, n in events))
        wait(settled)
        settle(1.0)
        t_masks = next(t for t, n in events if n == "masks")
        t_prev = next((t for t, n in events if n == "preview"), None)
        frames = [t for t, n in events if n == "frame"]
        before = [round(t - t0, 2) for t in frames if t_prev is not None and t < t_prev]
        coarse = next((t for t in frames if t_prev is not None and t_prev < t < t_masks), None)
        full = next((t for t in frames if t > t_masks), None)
        first = coarse if coarse is not None else full
        if first is not None:
            coarse_s.append(first - t0)
        if full is not None:
            full_s.append(full - t0)

        def fmt(t: float | None, t0: float = t0) -> str:
            return "--" if t is None else f"{t - t0:.2f} s"

        print(
            f"bone {delta:+.0f} HU: frames before the preview {before}; preview masks {fmt(t_prev)}; "
            f"coarse frame {fmt(coarse)}; full masks {fmt(t_masks)}; full frame {fmt(full)}"
        )
        if steps:
            print("   steps: " + ", ".join(f"{n} {a - t0:.2f}-{b - t0:.2f}" for a, b, n in steps if a - t0 < 8))
    w.close()
    if coarse_s and full_s:
        print(
            f"RESULT bone edit to first frame with the new masks: median {statistics.median(coarse_s):.2f} s "
            f"(target <= 1 s); to the full frame: median {statistics.median(full_s):.2f} s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
