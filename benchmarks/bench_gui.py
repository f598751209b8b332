"""GUI benchmark: start-up to first full-quality frame, and slider release to frame.

Run by hand (not by pytest), under an X server::

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python benchmarks/bench_gui.py
    # or just .venv/bin/python benchmarks/bench_gui.py (re-runs itself under xvfb-run)

1. **Start-up**: runs ``vessel-viewer --print-timing --exit-after-first-frame`` (the
   default phantom, the default preset, anterior view) as a fresh process, several
   times; the application prints the seconds since *its process started* (from
   /proc) when the first full-quality frame of the loaded volume has been rendered
   in the window. Phantom generation, imports, Qt and VTK start-up all count.
2. **Slider release -> frame** (in this process, real window and widgets): the bone
   threshold slider and the vessel window slider are pressed, dragged and released
   with QTest mouse events; the time from the release to the end of the next
   full-quality render is measured. In separated mode a bone-threshold release also
   recomputes the bone mask in the worker: that latency is reported separately.

Results are printed as a Markdown table; ``docs/bench-gui.md`` records a run.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _ensure_display() -> None:
    if os.environ.get("DISPLAY"):
        return
    xvfb = shutil.which("xvfb-run")
    if xvfb is None:
        sys.exit("bench_gui: needs an X server (DISPLAY) or xvfb-run")
    os.execv(xvfb, [xvfb, "-a", "-s", "-screen 0 1600x1000x24", sys.executable, *sys.argv])


def _clean_env(config_dir: str) -> dict[str, str]:
    env = dict(os.environ)
    env["XDG_CONFIG_HOME"] = config_dir  # fresh QSettings: default preset, default size
    env["VESSEL_VIEWER_CONFIG_DIR"] = config_dir
    env.setdefault("VTK_SMP_BACKEND_IN_USE", "STDThread")
    return env


def bench_startup(runs: int, small: bool) -> list[float]:
    exe = shutil.which("vessel-viewer", path=str(Path(sys.executable).parent))
    cmd = [exe] if exe else [sys.executable, "-m", "viewer"]
    cmd += ["--print-timing", "--exit-after-first-frame", "--quit-after-ms", "60000"]
    if small:
        cmd.append("--small")
    out: list[float] = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as cfg:
            t0 = time.perf_counter()
            p = subprocess.run(cmd, env=_clean_env(cfg), capture_output=True, text=True, timeout=120, cwd=ROOT)
            wall = time.perf_counter() - t0
        line = next((ln for ln in p.stdout.splitlines() if ln.startswith("first_full_frame_s=")), None)
        if line is None:
            print(p.stdout, p.stderr, file=sys.stderr)
            raise SystemExit(f"no first-frame line (exit code {p.returncode})")
        out.append(float(line.split("=", 1)[1]))
        print(f"  start-up run: first full frame {out[-1]:.2f} s after process start (process wall {wall:.2f} s)")
    return out


def bench_sliders(repeats: int, size: str) -> dict[str, list[float]]:
    os.environ.setdefault("VTK_SMP_BACKEND_IN_USE", "STDThread")
    cfg = tempfile.mkdtemp()
    os.environ["VESSEL_VIEWER_CONFIG_DIR"] = cfg
    from PySide6.QtCore import QPoint, QSettings, Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication, QStyle, QStyleOptionSlider

    app = QApplication.instance() or QApplication([])
    from viewer.ui.main_window import MainWindow

    w = MainWindow(settings=QSettings(str(Path(cfg) / "s.ini"), QSettings.Format.IniFormat))
    w.resize(1400, 900)
    w.show()
    w.view3d.initialize()

    def wait(cond, timeout_s: float = 30.0) -> None:
        end = time.perf_counter() + timeout_s
        while not cond():
            app.processEvents()
            if time.perf_counter() > end:
                import traceback

                traceback.print_stack(limit=4)
                raise SystemExit("bench_gui: timed out")
            time.sleep(0.002)

    w.open_phantom(size)
    wait(lambda: w.state.volume is not None and not w.loading)
    frames: list[tuple[float, bool]] = []
    render_s: list[float] = []  # duration of each full-quality render

    def on_frame(full: bool, seconds: float) -> None:
        frames.append((time.perf_counter(), full))
        if full:
            render_s.append(seconds)

    w.view3d.frame_rendered.connect(on_frame)
    wait(lambda: any(f for _, f in frames))
    time.sleep(0.2)
    app.processEvents()
    nx, ny, nz = w.state.volume.dims_xyz
    vw = w.view3d.vtk_widget
    print(f"  volume {nx}x{ny}x{nz}, 3D view {vw.width()}x{vw.height()} px, mapper {w.scene.mapper_kind}")

    def handle_center(s) -> QPoint:
        opt = QStyleOptionSlider()
        s.initStyleOption(opt)
        return (
            s.style()
            .subControlRect(QStyle.ComplexControl.CC_Slider, opt, QStyle.SubControl.SC_SliderHandle, s)
            .center()
        )

    def drag_release(slider, dx: int, until=None) -> float:
        c = handle_center(slider)
        QTest.mousePress(slider, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, c)
        for k in range(1, 6):
            QTest.mouseMove(slider, c + QPoint(dx * k // 5, 0))
            app.processEvents()
        frames.clear()
        t_release = time.perf_counter()
        QTest.mouseRelease(slider, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, c + QPoint(dx, 0))
        if until is None:
            wait(lambda: any(f for _, f in frames))
            t_frame = next(t for t, f in frames if f)
        else:
            wait(until)
            frames.clear()
            wait(lambda: any(f for _, f in frames))
            t_frame = next(t for t, f in frames if f)
        time.sleep(0.1)
        app.processEvents()
        return t_frame - t_release

    results: dict[str, list[float]] = {"bone threshold (one-class)": [], "vessel window (one-class)": []}
    w.set_separated(False)
    wait(lambda: not w.view3d._render_timer.isActive())
    inner = w.controls.vessel_slider._slider  # superqt's range slider inside the labels
    for i in range(repeats):
        results["bone threshold (one-class)"].append(drag_release(w.controls.bone_slider, 12 if i % 2 == 0 else -12))
    for i in range(repeats):
        # The range slider: drag its lower handle (it sits at the left of the bar).
        results["vessel window (one-class)"].append(_drag_range(inner, app, frames, wait, 10 if i % 2 == 0 else -10))

    # Separated mode: a bone-threshold release recomputes the mask in the worker.
    w.set_separated(True)
    wait(lambda: w.state.class_masks is not None and not w.mask_runner.busy)
    time.sleep(0.3)
    app.processEvents()
    key_sep = "bone threshold (separated: mask + frame)"
    results[key_sep] = []
    for i in range(repeats):
        old = w.state.class_masks
        results[key_sep].append(
            drag_release(
                w.controls.bone_slider,
                12 if i % 2 == 0 else -12,
                until=lambda o=old: w.state.class_masks is not o and not w.mask_runner.busy,
            )
        )
    key_sep_v = "vessel window (separated)"
    results[key_sep_v] = [_drag_range(inner, app, frames, wait, 10 if i % 2 == 0 else -10) for i in range(repeats)]
    results["(render time of one full-quality frame, all cases)"] = render_s[-4 * repeats :]
    w.close()
    return results


def _drag_range(slider, app, frames, wait, dx: int) -> float:
    from PySide6.QtCore import QPoint, Qt
    from PySide6.QtTest import QTest

    # Where the lower handle is: superqt lays handles out proportionally on the bar.
    lo, hi = slider.minimum(), slider.maximum()
    v = slider.value()[0]
    x = int(slider.width() * (v - lo) / (hi - lo))
    c = QPoint(max(6, min(slider.width() - 6, x)), slider.height() // 2)
    QTest.mousePress(slider, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, c)
    for k in range(1, 6):
        QTest.mouseMove(slider, c + QPoint(dx * k // 5, 0))
        app.processEvents()
    frames.clear()
    t_release = time.perf_counter()
    QTest.mouseRelease(slider, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, c + QPoint(dx, 0))
    wait(lambda: any(f for _, f in frames))
    t = next(t for t, f in frames if f) - t_release
    time.sleep(0.1)
    app.processEvents()
    return t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="start-up runs (default 3)")
    ap.add_argument("--repeats", type=int, default=5, help="slider releases per case (default 5)")
    ap.add_argument("--small", action="store_true", help="use the small phantom")
    ap.add_argument("--skip-startup", action="store_true")
    args = ap.parse_args()
    _ensure_display()
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, python {platform.python_version()}")
    rows: list[tuple[str, list[float]]] = []
    if not args.skip_startup:
        print("start-up (process start -> first full-quality frame):")
        rows.append(("start-up to first full-quality frame", bench_startup(args.runs, args.small)))
    print("slider release -> updated full-quality frame:")
    for k, v in bench_sliders(args.repeats, "small" if args.small else "default").items():
        rows.append((f"release -> frame: {k}", v))
    print("\n| measurement | median (s) | min (s) | max (s) | n |\n|---|---|---|---|---|")
    for name, vals in rows:
        print(f"| {name} | {statistics.median(vals):.3f} | {min(vals):.3f} | {max(vals):.3f} | {len(vals)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
