"""Screenshots of the window with the lesion-planning tools in use (run by hand, under X).

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python benchmarks/gui_lesion_screenshots.py

Writes docs/img/lesion-gui-phantom.png (default phantom: lesion from the phantom
legend, vessels coloured by distance to the lesion, keyhole, analysis with entry points
and centrelines, a ruler and an angle) and docs/img/lesion-gui-cta.png (the real CTA of
../shared/data/cta-aorta-nifti: a sphere around the crosshair, vessels coloured by
distance to the bone surface, analysis, a ruler). Prints the time each analysis took.
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
    import numpy as np

    from viewer.app import save_window_png
    from viewer.core.lesion import Lesion
    from viewer.core.measure import Angle, Ruler
    from viewer.ui.main_window import MainWindow

    w = MainWindow(settings=QSettings(str(Path(cfg) / "s.ini"), QSettings.Format.IniFormat))
    w.resize(1500, 950)
    w.show()
    w.view3d.initialize()
    w.lesion_dock.raise_()

    def busy() -> bool:
        return w.view3d._render_timer.isActive() or w.mask_runner.busy or w.lesion_controller.busy

    def settle(cond=lambda: True, timeout_s: float = 300.0) -> None:  # type: ignore[no-untyped-def]
        end = time.perf_counter() + timeout_s
        while not cond() or busy():
            app.processEvents()
            time.sleep(0.01)
            if time.perf_counter() > end:
                raise SystemExit("timed out")
        for _ in range(20):
            app.processEvents()
            time.sleep(0.01)

    def analyse() -> None:
        t0 = time.perf_counter()
        w.lesion_panel.analyse_button.click()
        settle(lambda: w.state.lesion_analysis is not None or "failed" in w.lesion_panel.message_label.text())
        a = w.state.lesion_analysis
        if a is None:
            print("analysis failed:", w.lesion_panel.message_label.text())
            return
        print(
            f"analysis in {time.perf_counter() - t0:.1f} s (GUI): {len(a.entry_points)} entry points, "
            f"{len(a.branches)} branches, {a.n_branches_crossing} crossing; {a.message or 'ok'}"
        )
        if a.entry_points:
            w.lesion_panel.entry_table.selectRow(0)
            w.lesion_panel.entry_table.cellClicked.emit(0, 0)

    img = ROOT / "docs" / "img"
    img.mkdir(parents=True, exist_ok=True)

    # ----- the default phantom -----
    w.set_separated(True)
    w.open_phantom("default")
    settle(lambda: w.state.volume is not None and not w.loading and w.state.class_masks is not None)
    w.lesion_controller.lesion_from_legend()
    settle(lambda: w.state.lesion is not None)
    lesion = w.state.lesion
    assert lesion is not None
    w.state.update(vessel_colouring="lesion", keyhole=True)
    analyse()
    c = lesion.center_lps
    r = lesion.radius_mm / 2
    w.state.measurements = (
        Ruler((c[0] - r, c[1], c[2]), (c[0] + r, c[1], c[2])),
        Angle((c[0] + r, c[1], c[2] - r), c, (c[0] - r, c[1], c[2] - r)),
    )
    w.scene.set_view("left")
    w.scene.zoom(2.2)
    w.view3d.request_render()
    settle()
    save_window_png(w, img / "lesion-gui-phantom.png")
    print("wrote", img / "lesion-gui-phantom.png")

    # ----- the real CTA -----
    src = ROOT.parent / "shared" / "data" / "cta-aorta-nifti" / "ct_cropped.nii.gz"
    if not src.exists():
        print("skip", src)
        w.close()
        return 0
    old = w.state.volume
    w.open_path(str(src))
    settle(
        lambda: (
            w.state.volume is not old
            and not w.loading
            and w.state.class_masks is not None
            and w.state.class_masks.bone.shape == w.state.volume.shape
        )
    )
    ch = w.state.crosshair_lps
    assert ch is not None
    # The lesion where the descending aorta lies on the spine: the vertebral body is
    # the bone behind the crosshair in its axial slice, near the midline.
    vol, bone = w.state.volume, w.state.class_masks.bone
    k = int(round(float(vol.ijk_of_lps(ch)[2])))
    jj, ii = np.nonzero(bone[k])
    pts = vol.lps_of_ijk(np.stack([ii, jj, np.full_like(ii, k)], axis=1).astype(float))
    near = pts[(pts[:, 1] > ch[1]) & (np.abs(pts[:, 0] - ch[0]) < 40.0)]
    centre = near.mean(axis=0) + np.array([15.0, -20.0, 0.0]) if len(near) else np.asarray(ch)
    w.lesion_controller.set_lesion(Lesion.sphere(tuple(float(v) for v in centre), 30.0))
    w.state.update(vessel_colouring="bone", crosshair_lps=tuple(float(v) for v in centre))
    w.lesion_panel.centreline_check.setChecked(False)
    analyse()
    ch = w.state.lesion.center_lps if w.state.lesion is not None else ch
    w.state.measurements = (Ruler((ch[0] - 30, ch[1], ch[2]), (ch[0] + 30, ch[1], ch[2])),)
    # From behind: the keyhole opens the spine onto the aorta.
    w.scene.set_view("posterior")
    w.scene.zoom(1.6)
    w.view3d.request_render()
    settle()
    save_window_png(w, img / "lesion-gui-cta.png")
    print("wrote", img / "lesion-gui-cta.png")
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
