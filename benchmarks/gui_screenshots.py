"""Make the documentation screenshots of the running window (run by hand, under X).

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python benchmarks/gui_screenshots.py

Writes docs/img/main-window.png (default start: 2x2, "Bone + vessels", anterior),
docs/img/one-class.png and docs/img/separated.png (3D only, zoomed on the eroded
segment: the same thresholds without and with separated mode) and
assets/screenshot.png (for the README), and the window on two real scans of
../shared/data (docs/img/main-window-chest-noncontrast.png, main-window-cta.png).
The VTK view's pixels are read through VTK,
the rest of the window through Qt (see ``viewer.app.save_window_png``).
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
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from viewer.app import save_window_png
    from viewer.ui.main_window import MainWindow

    w = MainWindow(settings=QSettings(str(Path(cfg) / "s.ini"), QSettings.Format.IniFormat))
    w.resize(1400, 900)
    w.show()
    w.view3d.initialize()

    def settle(cond=lambda: True, timeout_s: float = 120.0) -> None:
        end = time.perf_counter() + timeout_s
        while not cond() or w.view3d._render_timer.isActive() or w.mask_runner.busy:
            app.processEvents()
            time.sleep(0.01)
            if time.perf_counter() > end:
                raise SystemExit("timed out")
        for _ in range(20):
            app.processEvents()
            time.sleep(0.01)

    w.open_phantom("default")
    settle(lambda: w.state.volume is not None and not w.loading and w.view3d.last_full_frame_time is not None)
    img = ROOT / "docs" / "img"
    img.mkdir(parents=True, exist_ok=True)
    # Hover the axial view so the status bar shows HU and position, as a user sees it.
    axial = w.slice_views["axial"]
    w._on_hover(axial.widget_to_lps(axial.rect().center()), w.state.volume.hu_at_lps(w.state.crosshair_lps))
    settle()
    save_window_png(w, img / "main-window.png")
    (ROOT / "assets").mkdir(exist_ok=True)
    save_window_png(w, ROOT / "assets" / "screenshot.png")

    # 3D only, zoomed on the eroded middle third where the collaterals run.
    w.set_layout("3d")
    settle()
    w.scene.set_view("anterior")
    w.scene.zoom(1.8)
    w.set_separated(False)
    settle()
    w.view3d.request_render()
    settle()
    save_window_png(w, img / "one-class.png")
    w.set_separated(True)
    settle(lambda: w.state.class_masks is not None)
    w.view3d.request_render()
    settle()
    save_window_png(w, img / "separated.png")

    # Real scans: the window as a user sees them, 2x2, separated, default preset.
    data = ROOT.parent / "shared" / "data"
    w.set_layout("2x2")
    for name, rel in (
        ("main-window-chest-noncontrast.png", "ct-chest-noncontrast"),
        ("main-window-cta.png", "cta-aorta-nifti/ct_cropped.nii.gz"),
    ):
        src = data / rel
        if not src.exists():
            print("skip", src)
            continue
        old = w.state.volume
        w.open_path(str(src))
        settle(
            lambda old=old: (
                w.state.volume is not old
                and not w.loading
                and w.state.class_masks is not None
                and w.state.class_masks.bone.shape == w.state.volume.shape
            )
        )
        w.scene.set_view("anterior")
        w.view3d.request_render()
        settle()
        save_window_png(w, img / name)
        print("wrote", img / name)
    w.close()
    print(
        "wrote",
        img / "main-window.png",
        img / "one-class.png",
        img / "separated.png",
        ROOT / "assets" / "screenshot.png",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
