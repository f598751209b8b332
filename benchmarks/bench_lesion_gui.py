"""How long the GUI thread is busy with lesion planning (run by hand, under X).

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python benchmarks/bench_lesion_gui.py

On the default phantom and on the real CTA of ../shared/data/cta-aorta-nifti, in the
window (separated mode): the time each state edit of the lesion panel keeps the GUI
thread (marking the lesion, distance colouring to the lesion and to bone, keyhole, a
ruler), and, while the analysis and the report run on their worker threads, the time
until the result arrives and the longest gap between two 10 ms ticks of a GUI-thread
timer (how long a click would wait). Target: GUI thread never blocked > ~100 ms.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    os.environ.setdefault("VTK_SMP_BACKEND_IN_USE", "STDThread")
    cfg = tempfile.mkdtemp()
    os.environ["VESSEL_VIEWER_CONFIG_DIR"] = cfg
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from viewer.core.lesion import Lesion
    from viewer.core.measure import Ruler
    from viewer.ui.main_window import MainWindow

    w = MainWindow(settings=QSettings(str(Path(cfg) / "s.ini"), QSettings.Format.IniFormat))
    w.resize(1400, 900)
    w.show()
    w.view3d.initialize()

    def pump(cond, timeout_s: float = 600.0) -> None:  # type: ignore[no-untyped-def]
        end = time.perf_counter() + timeout_s
        while not cond():
            app.processEvents()
            time.sleep(0.002)
            if time.perf_counter() > end:
                raise SystemExit("timed out")

    def idle() -> None:
        pump(
            lambda: (
                not (
                    w.view3d._render_timer.isActive()
                    or w.view3d.scene_busy
                    or w.mask_runner.busy
                    or w.lesion_controller.busy
                )
            )
        )
        for _ in range(10):
            app.processEvents()

    def gui_edit(label: str, edit) -> None:  # type: ignore[no-untyped-def]
        """The edit itself, then everything it sets off (the scene's preparation on
        its worker, the prepared scene applied, the first full render), with a 10 ms
        GUI-thread timer running: its longest gap is the longest hold of the GUI thread."""
        idle()
        ticks: list[float] = []
        frames: list[float] = []
        timer = QTimer()
        timer.setInterval(10)
        timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
        renders: list[str] = []

        def on_frame(full: bool, dt: float) -> None:
            renders.append(f"{dt * 1000:.0f}{'' if full else 'i'}")
            if full:
                frames.append(dt)

        w.view3d.frame_rendered.connect(on_frame)
        timer.start()
        for _ in range(3):  # the timer's first ticks
            app.processEvents()
            time.sleep(0.011)
        t0 = time.perf_counter()
        edit()
        t_edit = time.perf_counter() - t0
        ticks.append(time.perf_counter())
        n = w.view3d.n_renders
        pump(lambda: w.view3d.n_renders > n and not w.view3d.scene_busy and not w.view3d._render_timer.isActive())
        t_done = time.perf_counter() - t0
        idle()
        timer.stop()
        w.view3d.frame_rendered.disconnect(on_frame)
        gaps = [b - a for a, b in zip(ticks[:-1], ticks[1:], strict=True)] or [t_done]
        longest_render = max(frames) if frames else float("nan")
        print(
            f"  {label:<30} state edit {t_edit * 1000:6.1f} ms, longest GUI gap {max(gaps) * 1000:6.0f} ms "
            f"(longest render {longest_render * 1000:5.0f} ms), shown after {t_done:5.2f} s; renders (ms) "
            + " ".join(renders)
        )

    def in_worker(label: str, start, done) -> None:  # type: ignore[no-untyped-def]
        idle()
        ticks: list[float] = []
        timer = QTimer()
        timer.setInterval(10)
        timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
        timer.start()
        t0 = time.perf_counter()
        start()
        pump(done)
        t = time.perf_counter() - t0
        timer.stop()
        gaps = [b - a for a, b in zip(ticks[:-1], ticks[1:], strict=True)] or [t]
        print(f"  {label:<34} result after {t:6.2f} s   longest GUI gap {max(gaps) * 1000:6.0f} ms")

    def run(name: str, lesion_of) -> None:  # type: ignore[no-untyped-def]
        vol = w.state.volume
        nx, ny, nz = vol.dims_xyz
        print(f"{name}: {nx} x {ny} x {nz} voxels, spacing {tuple(round(s, 2) for s in vol.spacing_mm)} mm")
        lesion = lesion_of()
        gui_edit("mark the lesion", lambda: w.lesion_controller.set_lesion(lesion))
        gui_edit("colour by distance to lesion", lambda: setattr(w.state, "vessel_colouring", "lesion"))
        gui_edit("colour by distance to bone", lambda: setattr(w.state, "vessel_colouring", "bone"))
        gui_edit("keyhole on", lambda: setattr(w.state, "keyhole", True))
        gui_edit("keyhole off, colours off", lambda: w.state.update(keyhole=False, vessel_colouring="off"))
        c = lesion.center_lps
        gui_edit("add a ruler", lambda: setattr(w.state, "measurements", (Ruler(c, (c[0] + 20, c[1], c[2])),)))
        for attempt in ("analyse (first)", "analyse (again)"):
            w.state.lesion_analysis = None
            in_worker(attempt, lambda: w.lesion_controller.analyse(), lambda: w.state.lesion_analysis is not None)
            a = w.state.lesion_analysis
            t = {k: round(v, 3) for k, v in a.timings_s.items()}
            print(f"    {len(a.entry_points)} entry points, {len(a.branches)} branches; core timings {t}")
        written: list[object] = []
        failed: list[object] = []
        w.lesion_controller.report_written.connect(written.append)
        w.lesion_controller.report_failed.connect(failed.append)
        out = Path(tempfile.mkdtemp()) / "sheet.png"
        in_worker("lesion report", lambda: w.lesion_controller.write_report(out), lambda: bool(written or failed))
        if failed:
            print("    report failed:", failed[0])
        w.state.update(lesion=None, measurements=())

    w.set_separated(True)
    w.open_phantom("default")
    pump(lambda: w.state.volume is not None and not w.loading and w.state.class_masks is not None)
    idle()

    def legend() -> Lesion:
        w.lesion_controller.lesion_from_legend()
        pump(lambda: w.state.lesion is not None)
        lesion = w.state.lesion
        w.state.lesion = None
        return lesion

    run("default phantom (lesion from the legend)", legend)

    src = ROOT.parent / "shared" / "data" / "cta-aorta-nifti" / "ct_cropped.nii.gz"
    if src.exists():
        old = w.state.volume
        w.open_path(str(src))
        pump(
            lambda: (
                w.state.volume is not old
                and not w.loading
                and w.state.class_masks is not None
                and w.state.class_masks.bone.shape == w.state.volume.shape
            )
        )
        run("real CTA cta-aorta-nifti (30 mm sphere, crosshair)", lambda: Lesion.sphere(w.state.crosshair_lps, 30))
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
