"""GUI soak: randomised actions through the real widgets for N minutes (issue 11).

Run by hand, under an X server (the real VTK widget needs one)::

    QT_QPA_PLATFORM=xcb xvfb-run -a -s "-screen 0 1600x1000x24" \\
        .venv/bin/python benchmarks/soak_gui.py --minutes 10 [--trim] [--seed 1]

What it does: opens the main window on the small phantom, then, until the time is up,
picks a random action (toggle a check box of the control panel, choose a preset or a
blend mode, move a slider, press a view button, set a random crop box, switch the
layout, reload the phantom or a small synthetic DICOM series = a scan replacement) and
lets the event loop run for a random 50-600 ms. A 50 ms QTimer is the heartbeat: every
gap between two ticks longer than 250 ms is a stall, recorded with the action that ran
before it. Python exceptions (sys/threading excepthook) and everything VTK prints
(vtkOutputWindow replaced by a string window) are counted. RSS (/proc/self/statm) is
sampled after every scan replacement.

``--trim`` calls ``viewer.core.memory.trim_freed_memory()`` (glibc malloc_trim) after
each scan replacement, to measure what trimming saves. Prints a JSON summary (and
writes it to ``--out``); docs/bench-soak.md records runs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--trim", action="store_true", help="malloc_trim after each scan replacement")
    ap.add_argument("--out", default=None, help="also write the JSON summary here")
    ap.add_argument(
        "--preview-masks",
        action="store_true",
        help="treat every scan as big: loads leave the separation to the mask controller, whose "
        "first job per scan makes preview masks of every second slice, and the 3D view draws a coarse "
        "first frame of every scan (the real-size path)",
    )
    args = ap.parse_args()

    os.environ.setdefault("VTK_SMP_BACKEND_IN_USE", "STDThread")
    cfg = tempfile.mkdtemp()
    os.environ["VESSEL_VIEWER_CONFIG_DIR"] = cfg
    from PySide6.QtCore import QElapsedTimer, QSettings, Qt, QTimer
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QAbstractSlider, QApplication, QCheckBox, QComboBox, QPushButton
    from vtkmodules.vtkCommonCore import vtkOutputWindow, vtkStringOutputWindow

    app = QApplication.instance() or QApplication([])
    vtk_out = vtkStringOutputWindow()
    vtkOutputWindow.SetInstance(vtk_out)

    exceptions: list[str] = []

    def hook(t, v, tb) -> None:  # type: ignore[no-untyped-def]
        exceptions.append("".join(traceback.format_exception(t, v, tb))[-1500:])

    sys.excepthook = hook
    threading.excepthook = lambda a: hook(a.exc_type, a.exc_value, a.exc_traceback)

    from viewer.core.memory import trim_freed_memory
    from viewer.ui.main_window import MainWindow

    # A small DICOM series to alternate with the phantom (a real load through viewer.io).
    dicom_dir = Path(cfg) / "dicom"
    from viewer.io.writers import write_dicom_series
    from viewer.phantom import generate

    small = generate("small")
    write_dicom_series(small.volume, dicom_dir)
    del small

    w = MainWindow(settings=QSettings(str(Path(cfg) / "s.ini"), QSettings.Format.IniFormat))
    if args.preview_masks:
        import numpy as np

        import viewer.ui.load_controller as load_controller
        from viewer.core.extraction import PreviewMasks, class_masks_for

        load_controller.LOAD_MASKS_MAX_VOXELS = 1000

        def stride2(volume, settings, progress):  # type: ignore[no-untyped-def]
            if not settings.real_ct:
                return None
            sx, sy, sz = volume.spacing_mm
            part = np.ascontiguousarray(volume.hu[1::2])
            return PreviewMasks(class_masks_for(part, (sx, sy, 2 * sz), settings, progress), 2, 1, settings)

        w.mask_controller.preview_min_voxels = 1
        w.mask_controller._preview = stride2
        # ... and the view draws every scan as a big one: a coarse first frame, which
        # stands in for the bone-only scalars while separated masks are on their way
        import viewer.ui.view3d as view3d_mod

        view3d_mod.PREVIEW_MIN_VOXELS = 1
    w.resize(1400, 900)
    w.show()
    w.view3d.initialize()

    def pump(seconds: float) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.003)

    def wait_loaded(timeout_s: float = 120.0) -> None:
        end = time.perf_counter() + timeout_s
        pump(0.05)
        while (w.loading or w.state.volume is None) and time.perf_counter() < end:
            pump(0.02)

    w.open_phantom("small")
    wait_loaded()
    pump(1.0)

    rng = random.Random(args.seed)
    last_action = ["start"]
    gaps: list[tuple[float, str]] = []
    clock = QElapsedTimer()
    clock.start()
    prev = [clock.elapsed()]

    def beat() -> None:
        now = clock.elapsed()
        gap = (now - prev[0]) / 1000.0
        prev[0] = now
        if gap > 0.25:
            gaps.append((gap, last_action[0]))

    hb = QTimer()
    hb.setInterval(50)
    hb.timeout.connect(beat)
    hb.start()

    c = w.controls
    checks = [x for x in c.findChildren(QCheckBox) if x.isVisible() or True]
    combos = c.findChildren(QComboBox)
    sliders = [s for s in c.findChildren(QAbstractSlider) if s.maximum() > s.minimum()]
    buttons = [b for b in c.findChildren(QPushButton) if b.text() not in ("Suggest",)]
    rss: list[tuple[float, float]] = [(0.0, rss_mb())]
    replacements = [0]

    def random_crop() -> str:
        vol = w.state.volume
        if vol is None:
            return "crop (no volume)"
        lo, hi = vol.bounds_lps()
        b = []
        for a in range(3):
            x0, x1 = sorted(rng.uniform(lo[a], hi[a]) for _ in range(2))
            if x1 - x0 < 0.2 * (hi[a] - lo[a]):
                x0, x1 = lo[a], hi[a]
            b += [x0, x1]
        w.state.crop_box_lps = tuple(float(x) for x in b)
        return "crop box"

    def replace_scan() -> str:
        if rng.random() < 0.5:
            w.open_phantom("small")
            what = "reload phantom"
        else:
            w.open_path(dicom_dir)
            what = "open DICOM series"
        wait_loaded()
        pump(0.5)
        replacements[0] += 1
        if args.trim:
            trim_freed_memory()
        rss.append((time.perf_counter() - t0, rss_mb()))
        return what

    def act() -> str:
        r = rng.random()
        if r < 0.30 and checks:
            x = rng.choice(checks)
            if not x.isEnabled() or not x.isVisible():
                return "skip"
            QTest.mouseClick(x, Qt.MouseButton.LeftButton)
            return f"click check '{x.text()}'"
        if r < 0.45 and combos:
            x = rng.choice(combos)
            if not x.isEnabled() or x.count() == 0:
                return "skip"
            i = rng.randrange(x.count())
            x.setCurrentIndex(i)
            x.textActivated.emit(x.itemText(i))
            return f"combo -> '{x.itemText(i)}'"
        if r < 0.70 and sliders:
            x = rng.choice(sliders)
            if not x.isEnabled():
                return "skip"
            cur = x.value()
            if isinstance(cur, (tuple, list)):  # superqt range slider: a (low, high) pair
                v = tuple(sorted(rng.uniform(x.minimum(), x.maximum()) for _ in cur))
            else:
                v = rng.randint(int(x.minimum()), int(x.maximum()))
            x.setSliderDown(True)
            x.setValue(v)
            x.setSliderDown(False)
            return f"slider {x.objectName() or type(x).__name__} -> {x.value()}"
        if r < 0.82 and buttons:
            x = rng.choice(buttons)
            if not x.isEnabled() or not x.isVisible():
                return "skip"
            QTest.mouseClick(x, Qt.MouseButton.LeftButton)
            return f"button '{x.text()}'"
        if r < 0.90:
            return random_crop()
        if r < 0.95:
            lay = rng.choice(["3d", "2x2"])
            w.set_layout(lay)
            return f"layout {lay}"
        return replace_scan()

    t0 = time.perf_counter()
    end = t0 + args.minutes * 60
    n_actions = 0
    actions_by_kind: dict[str, int] = {}
    while time.perf_counter() < end:
        try:
            what = act()
        except Exception:  # noqa: BLE001 - counted, the soak goes on
            what = "action raised"
            hook(*sys.exc_info())
        if what == "skip":
            continue
        n_actions += 1
        kind = what.split(" ")[0]
        actions_by_kind[kind] = actions_by_kind.get(kind, 0) + 1
        last_action[0] = what
        pump(rng.uniform(0.05, 0.6))
    duration = time.perf_counter() - t0
    # The scene must follow the state once the work in flight is done (masks, scene
    # preparation, shading): a window whose 3D view stays on an older transfer function
    # or masks is a defect, not a slow machine.
    t_settle = time.perf_counter()
    while not w.settled and time.perf_counter() - t_settle < 180.0:
        pump(0.1)
    settled_at_end = bool(w.settled)
    settle_s = time.perf_counter() - t_settle
    hb.stop()
    w.close()
    pump(0.5)

    vtk_text = vtk_out.GetOutput()
    vtk_lines = [ln for ln in vtk_text.splitlines() if ln.strip()]
    vtk_msgs = [ln for ln in vtk_lines if any(k in ln for k in ("ERROR", "Warning", "Error"))]
    gaps.sort(reverse=True)
    after_first = [m for t, m in rss[2:]] if len(rss) > 2 else []
    growth = ((after_first[-1] - after_first[0]) / after_first[0] * 100.0) if len(after_first) > 1 else None
    per10 = (
        growth * 10.0 / max(1e-9, (rss[-1][0] - rss[2][0]) / 60.0)
        if growth is not None and rss[-1][0] > rss[2][0]
        else None
    )
    summary = {
        "minutes": round(duration / 60, 2),
        "seed": args.seed,
        "trim": args.trim,
        "actions": n_actions,
        "actions_by_kind": actions_by_kind,
        "scan_replacements": replacements[0],
        "preview_masks": args.preview_masks,
        "separated_previews_shown": w.view3d.n_separated_previews,
        "max_stall_s": round(gaps[0][0], 3) if gaps else 0.0,
        "max_stall_after": gaps[0][1] if gaps else None,
        "stalls_over_1s": sum(1 for g, _ in gaps if g > 1.0),
        "stalls_over_0.25s": len(gaps),
        "worst_stalls": [(round(g, 2), m) for g, m in gaps[:8]],
        "rss_mb": [(round(t, 1), round(m, 1)) for t, m in rss],
        "rss_growth_pct_after_first_replacement": None if growth is None else round(growth, 1),
        "rss_growth_pct_per_10_min": None if per10 is None else round(per10, 1),
        "settled_at_end": settled_at_end,
        "settle_wait_s": round(settle_s, 2),
        "exceptions": len(exceptions),
        "exception_samples": exceptions[:3],
        "vtk_error_lines": len(vtk_msgs),
        "vtk_output_lines": len(vtk_lines),
        "vtk_samples": vtk_msgs[:5],
    }
    text = json.dumps(summary, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
