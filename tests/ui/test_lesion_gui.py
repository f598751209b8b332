"""Lesion planning in the window (issue 10), driven the way a user drives it.

Real widgets and the real VTK render widget under Xvfb (pytest-xvfb), on the small
phantom: mark a lesion by a click on a slice, set it from the phantom legend, bad
lesions, keyhole and distance colouring, the analysis (tables, markers), sessions and
the lesion report. One window is shared by the module's tests; each sets what it needs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("VTK_SMP_BACKEND_IN_USE", "STDThread")

pytest.importorskip("pytestqt")
from PySide6.QtCore import QEvent, QPoint, QSettings, Qt, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

if not os.environ.get("DISPLAY"):
    pytest.skip("needs an X server (run under pytest-xvfb or xvfb-run)", allow_module_level=True)

from viewer.core.lesion import Lesion, lesion_from_phantom  # noqa: E402
from viewer.core.measure import Angle, Ruler  # noqa: E402
from viewer.ui.main_window import MainWindow  # noqa: E402

pytestmark = pytest.mark.gui

LOAD_TIMEOUT_MS = 60_000
RENDER_TIMEOUT_MS = 20_000
ANALYSIS_TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def window(qapp: QApplication, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MainWindow]:
    cfg = tmp_path_factory.mktemp("config")
    os.environ["VESSEL_VIEWER_CONFIG_DIR"] = str(cfg)
    settings = QSettings(str(cfg / "settings.ini"), QSettings.Format.IniFormat)
    w = MainWindow(settings=settings)
    w.resize(1300, 850)
    w.show()
    w.view3d.initialize()
    from pytestqt.qtbot import QtBot

    bot = QtBot(qapp)
    frames: list[bool] = []
    w.first_full_frame.connect(lambda: frames.append(True))
    w.action_phantom_small.trigger()
    bot.waitUntil(lambda: w.state.volume is not None and not w.loading, timeout=LOAD_TIMEOUT_MS)
    bot.waitUntil(lambda: bool(frames), timeout=RENDER_TIMEOUT_MS)
    w.lesion_dock.raise_()
    yield w
    w.close()
    w.deleteLater()
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


def still(qtbot, w: MainWindow) -> np.ndarray:  # type: ignore[no-untyped-def]
    """The 3D view's pixels after every pending render has run."""
    scene_ready(qtbot, w)
    n = w.view3d.n_renders
    w.view3d.request_render()
    qtbot.waitUntil(lambda: w.view3d.n_renders > n, timeout=RENDER_TIMEOUT_MS)
    qtbot.wait(30)
    return w.view3d.grab_image()


def scene_ready(qtbot, w: MainWindow) -> None:  # type: ignore[no-untyped-def]
    """Wait for the 3D view's scene preparation (a worker, issue 9) to be applied."""
    qtbot.waitUntil(lambda: not w.view3d.scene_busy, timeout=LOAD_TIMEOUT_MS)


def separated(qtbot, w: MainWindow) -> None:  # type: ignore[no-untyped-def]
    """Separated mode on, with the class masks of the current thresholds."""
    if not w.state.transfer_function.separated:
        w.action_separated.trigger()
    qtbot.waitUntil(
        lambda: w.state.class_masks is not None and not w.mask_runner.busy and not w._mask_timer.isActive(),
        timeout=LOAD_TIMEOUT_MS,
    )


def click_slice(qtbot, w: MainWindow, axis: str, lps: tuple[float, float, float]) -> None:  # type: ignore[no-untyped-def]
    v = w.slice_views[axis]
    pos = v.lps_to_widget(lps)
    assert pos is not None
    qtbot.mouseClick(v, Qt.MouseButton.LeftButton, pos=pos.toPoint())


def left_leg_point(w: MainWindow) -> tuple[float, float, float]:
    """The crosshair the phantom opens on (the left leg's axis, middle third)."""
    c = w.state.crosshair_lps
    assert c is not None
    return c


def test_click_on_slice_marks_lesion_shown_in_slices_and_3d(window: MainWindow, qtbot) -> None:  # type: ignore[no-untyped-def]
    w = window
    w.state.lesion = None
    before = still(qtbot, w)
    qtbot.mouseClick(w.measure_tools.tool_buttons["lesion"], Qt.MouseButton.LeftButton)
    assert w.pointer_tools.tool == "lesion" and w.view3d.pick_mode
    w.lesion_panel.radius_spin.setValue(25.0)
    target = left_leg_point(w)
    click_slice(qtbot, w, "axial", target)
    lesion = w.state.lesion
    assert lesion is not None and lesion.box_lps is None
    assert lesion.radius_mm == pytest.approx(25.0)
    # The click's point (in the axial plane through the crosshair), within a pixel.
    assert np.allclose(lesion.center_lps, target, atol=2.0)
    assert w.state.crosshair_lps == target, "a lesion-mode click must not move the crosshair"
    # The panel shows it; the 3D view draws its outline.
    assert w.lesion_panel.centre_spins[0].value() == pytest.approx(lesion.center_lps[0], abs=0.1)
    scene_ready(qtbot, w)
    assert w.scene.lesion == lesion
    after = still(qtbot, w)
    assert np.abs(after.astype(int) - before.astype(int)).sum(axis=2).astype(bool).sum() > 200
    # The slice views draw the circle (lesion colour: cyan) where the sphere cuts them.
    for axis in ("axial", "coronal", "sagittal"):
        img = w.slice_views[axis].grab().toImage()
        arr = np.array(
            [[img.pixelColor(x, y).getRgb()[:3] for x in range(0, img.width(), 2)] for y in range(0, img.height(), 2)]
        )
        cyan = (arr[..., 0] < 120) & (arr[..., 1] > 180) & (arr[..., 2] > 200)
        assert cyan.sum() > 20, f"no lesion circle drawn on the {axis} slice"
    qtbot.mouseClick(w.measure_tools.tool_buttons["crosshair"], Qt.MouseButton.LeftButton)


def test_drag_on_slice_marks_a_box(window: MainWindow, qtbot) -> None:  # type: ignore[no-untyped-def]
    w = window
    w.pointer_tools.set_tool("lesion")
    v = w.slice_views["axial"]
    c = left_leg_point(w)
    a = v.lps_to_widget((c[0] - 10, c[1] - 10, c[2])).toPoint()
    b = v.lps_to_widget((c[0] + 10, c[1] + 10, c[2])).toPoint()
    qtbot.mousePress(v, Qt.MouseButton.LeftButton, pos=a)
    qtbot.mouseMove(v, pos=b)
    qtbot.mouseRelease(v, Qt.MouseButton.LeftButton, pos=b)
    lesion = w.state.lesion
    assert lesion is not None and lesion.box_lps is not None
    bx = lesion.box_lps
    assert bx[1] - bx[0] == pytest.approx(20.0, abs=3.0) and bx[3] - bx[2] == pytest.approx(20.0, abs=3.0)
    # Its depth across the slice: the radius either side.
    assert bx[5] - bx[4] == pytest.approx(2 * w.pointer_tools.radius_mm, abs=0.01)
    w.pointer_tools.set_tool("crosshair")


def test_bad_lesion_gives_a_message_and_keeps_the_state(window: MainWindow, qtbot) -> None:  # type: ignore[no-untyped-def]
    w = window
    good = Lesion.sphere(left_leg_point(w), 15.0)
    w.state.lesion = good
    # Radius 0, by a click.
    w.pointer_tools.set_tool("lesion")
    w.lesion_panel.radius_spin.setValue(0.0)
    click_slice(qtbot, w, "axial", left_leg_point(w))
    assert w.state.lesion == good
    assert "radius" in w.statusBar().currentMessage().lower()
    assert "Lesion not set" in w.lesion_panel.message_label.text()
    # Larger than the scan.
    w.lesion_panel.radius_spin.setValue(900.0)
    click_slice(qtbot, w, "axial", left_leg_point(w))
    assert w.state.lesion == good
    assert "larger than the scan" in w.statusBar().currentMessage()
    # Outside the scan, typed into the centre box.
    w.lesion_panel.radius_spin.setValue(15.0)
    spin = w.lesion_panel.centre_spins[2]
    spin.setValue(4000.0)
    spin.editingFinished.emit()
    assert w.state.lesion == good
    assert "outside the scan" in w.statusBar().currentMessage()
    assert spin.value() == pytest.approx(good.center_lps[2], abs=0.1), "the panel shows the lesion that stayed"
    w.pointer_tools.set_tool("crosshair")


def test_lesion_from_the_phantom_legend(window: MainWindow, qtbot, small_phantom) -> None:  # type: ignore[no-untyped-def]
    w = window
    w.state.lesion = None
    assert w.lesion_panel.legend_button.isEnabled()
    # The legend was kept when the phantom was generated: no second generation.
    assert w.lesion_controller.cached_landmarks(w.state.volume) is not None
    qtbot.mouseClick(w.lesion_panel.legend_button, Qt.MouseButton.LeftButton)
    expected = lesion_from_phantom(small_phantom.landmarks)
    qtbot.waitUntil(lambda: w.state.lesion is not None, timeout=LOAD_TIMEOUT_MS)
    assert w.state.lesion == expected
    assert w.state.lesion.box_lps is not None


def changed_pixels(a: np.ndarray, b: np.ndarray) -> int:
    return int((np.abs(a.astype(int) - b.astype(int)).sum(axis=2) > 30).sum())


def test_keyhole_and_distance_colouring_reach_the_scene(window: MainWindow, qtbot, small_phantom) -> None:  # type: ignore[no-untyped-def]
    w = window
    separated(qtbot, w)
    w.state.update(lesion=lesion_from_phantom(small_phantom.landmarks), keyhole=False, vessel_colouring="off")
    w.view3d.set_view("left")
    base = still(qtbot, w)
    qtbot.mouseClick(w.lesion_panel.keyhole_check, Qt.MouseButton.LeftButton)
    scene_ready(qtbot, w)
    assert w.state.keyhole is True and w.scene.keyhole is True
    keyhole = still(qtbot, w)
    # Bone is cut away in the lesion region: the picture changes there.
    assert changed_pixels(base, keyhole) > 100
    w.state.keyhole = False
    combo = w.lesion_panel.colour_combo
    combo.setCurrentIndex(combo.findData("bone"))
    scene_ready(qtbot, w)
    assert w.state.vessel_colouring == "bone" and w.scene.vessel_colouring[0] == "bone"
    coloured = still(qtbot, w)
    assert changed_pixels(base, coloured) > 100
    combo.setCurrentIndex(combo.findData("lesion"))
    scene_ready(qtbot, w)
    assert w.scene.vessel_colouring[0] == "lesion"
    # Clearing the lesion turns "distance to the lesion" off (nothing to measure to).
    qtbot.mouseClick(w.lesion_panel.clear_button, Qt.MouseButton.LeftButton)
    assert w.state.lesion is None and w.state.vessel_colouring == "off"
    assert combo.currentData() == "off"
    w.view3d.set_view("anterior")


def test_analyse_fills_tables_and_draws_markers(window: MainWindow, qtbot, small_phantom) -> None:  # type: ignore[no-untyped-def]
    w = window
    separated(qtbot, w)
    w.state.lesion = lesion_from_phantom(small_phantom.landmarks)
    # The GUI thread keeps running while the analysis works (it is on a worker).
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    t_click = time.perf_counter()
    qtbot.mouseClick(w.lesion_panel.analyse_button, Qt.MouseButton.LeftButton)
    assert w.lesion_controller.runner.busy
    qtbot.waitUntil(lambda: w.state.lesion_analysis is not None, timeout=ANALYSIS_TIMEOUT_MS)
    t_done = time.perf_counter()
    timer.stop()
    # A fast analysis leaves room for few ticks, so the check is on the gaps: no pause
    # of the event loop longer than half the analysis (0.75 s at least, for the noise of
    # a loaded machine). A worker holding the GIL throughout gives one gap as long as
    # the whole analysis.
    stamps = [t_click, *ticks, t_done]
    longest = float(np.diff(stamps).max())
    took = t_done - t_click
    print(f"analysis: {took:.2f} s, {len(ticks)} GUI ticks, longest gap {longest * 1000:.0f} ms")
    assert longest <= max(0.75, 0.5 * took), f"the event loop stopped for {longest:.2f} s of a {took:.2f} s analysis"
    a = w.state.lesion_analysis
    assert w.lesion_panel.entry_table.rowCount() == len(a.entry_points)
    assert w.lesion_panel.branch_table.rowCount() == len(a.branches)
    assert len(a.branches) >= 1, a.message
    assert w.scene.lesion_overlay.branches == a.branches
    if not a.entry_points:
        # The small phantom has no nutrient arteries: give the analysis one entry
        # point (the markers are what is tested here, not the analysis).
        from dataclasses import replace

        from viewer.core.lesion import EntryPoint

        entry = EntryPoint(1, tuple(float(v) for v in a.branches[0].points_lps[0]), 5.0, "artery", 2.0)
        a = replace(a, entry_points=(entry,))
        w.state.lesion_analysis = a
        assert w.lesion_panel.entry_table.rowCount() == 1
    assert w.scene.lesion_overlay.entry_points == a.entry_points
    # Clicking an entry point's row moves the crosshair there; its marker is then drawn.
    e = a.entry_points[0]
    w.lesion_panel.tabs.setCurrentIndex(0)
    w.lesion_panel.entry_table.cellClicked.emit(0, 0)
    assert w.state.crosshair_lps == e.lps_mm
    for v in w.slice_views.values():
        v.repaint()
        assert e.number in v.drawn_entry_numbers
    # Hiding the entry points takes them out of the 3D view.
    w.lesion_panel.entry_check.setChecked(False)
    assert w.scene.lesion_overlay.entry_points == ()
    v.repaint()
    assert v.drawn_entry_numbers == []
    w.lesion_panel.entry_check.setChecked(True)
    assert w.scene.lesion_overlay.entry_points == a.entry_points
    # A branch row moves the crosshair onto its centreline.
    w.lesion_panel.branch_table.cellClicked.emit(0, 0)
    pts = a.branches[0].points_lps
    assert np.min(np.linalg.norm(pts - np.asarray(w.state.crosshair_lps), axis=1)) < 1e-6
    # Moving the lesion makes the analysis stale.
    w.state.lesion = Lesion.sphere(e.lps_mm, 10.0)
    assert w.state.lesion_analysis is None and w.lesion_panel.entry_table.rowCount() == 0


def test_rulers_and_angle_add_and_delete_one(window: MainWindow, qtbot) -> None:  # type: ignore[no-untyped-def]
    w = window
    w.state.measurements = ()
    c = left_leg_point(w)
    qtbot.mouseClick(w.measure_tools.tool_buttons["ruler"], Qt.MouseButton.LeftButton)
    click_slice(qtbot, w, "axial", (c[0] - 10, c[1], c[2]))
    assert len(w.pointer_tools.pending_lps) == 1
    click_slice(qtbot, w, "axial", (c[0] + 10, c[1], c[2]))
    click_slice(qtbot, w, "coronal", (c[0], c[1], c[2] - 15))
    click_slice(qtbot, w, "coronal", (c[0], c[1], c[2] + 15))
    qtbot.mouseClick(w.measure_tools.tool_buttons["angle"], Qt.MouseButton.LeftButton)
    click_slice(qtbot, w, "axial", (c[0] + 10, c[1], c[2]))
    click_slice(qtbot, w, "axial", (c[0], c[1], c[2]))
    click_slice(qtbot, w, "axial", (c[0], c[1] + 10, c[2]))
    ms = w.state.measurements
    assert [type(m) for m in ms] == [Ruler, Ruler, Angle]
    assert ms[0].length_mm == pytest.approx(20.0, abs=2.0)
    assert ms[1].length_mm == pytest.approx(30.0, abs=2.5)
    assert ms[2].angle_deg == pytest.approx(90.0, abs=8.0)
    assert w.measure_tools.list.count() == 3
    assert w.scene.lesion_overlay.measurements == ms
    for v in w.slice_views.values():
        v.repaint()
        assert v.drawn_measurements == 3
    # Delete the first ruler: the second ruler and the angle stay, in order.
    w.measure_tools.list.setCurrentRow(0)
    qtbot.mouseClick(w.measure_tools.delete_button, Qt.MouseButton.LeftButton)
    assert w.state.measurements == ms[1:]
    assert w.measure_tools.list.count() == 2
    assert w.scene.lesion_overlay.measurements == ms[1:]
    w.slice_views["axial"].repaint()
    assert w.slice_views["axial"].drawn_measurements == 2
    w.pointer_tools.set_tool("crosshair")


def test_pick_on_the_3d_surface(window: MainWindow, qtbot) -> None:  # type: ignore[no-untyped-def]
    w = window
    w.state.measurements = ()
    w.view3d.set_view("anterior")
    img = still(qtbot, w)
    h = img.shape[0]
    ys, xs = np.nonzero(img.astype(int).sum(axis=2) > 200)
    assert len(xs), "nothing rendered to pick"
    k = len(xs) // 2
    w.pointer_tools.set_tool("ruler")
    picked: list[object] = []
    w.view3d.point_picked.connect(picked.append)
    # A real click on the VTK widget (Qt -> VTK interactor -> the style's observer).
    vw = w.view3d.vtk_widget
    ratio = vw.devicePixelRatioF()
    pos = QPoint(int(xs[k] / ratio), int(ys[k] / ratio))
    cam = w.scene.camera_state()
    qtbot.mouseClick(vw, Qt.MouseButton.LeftButton, pos=pos)
    qtbot.waitUntil(lambda: bool(picked), timeout=5000)
    lo, hi = w.state.volume.bounds_lps()
    p = np.asarray(picked[0])
    assert np.all(p >= lo - 2.0) and np.all(p <= hi + 2.0)
    assert len(w.pointer_tools.pending_lps) == 1
    assert w.scene.camera_state() == cam, "a pick must not turn the camera"
    # A second point by the same path makes a ruler.
    lps2 = w.view3d.pick_at(float(xs[k]), float(h - 1 - ys[k]) + 0.0)
    assert lps2 is not None
    assert len(w.state.measurements) == 1
    # In lesion mode a pick on the surface centres the lesion sphere there.
    w.pointer_tools.set_tool("lesion")
    w.lesion_panel.radius_spin.setValue(15.0)
    hit = w.view3d.pick_at(float(xs[k]), float(h - 1 - ys[k]))
    assert hit is not None and w.state.lesion == Lesion.sphere(hit, 15.0)
    # A click on the empty background picks nothing and says so.
    missed: list[bool] = []
    w.view3d.pick_missed.connect(lambda: missed.append(True))
    assert w.view3d.pick_at(2.0, 2.0) is None and missed
    assert w.state.lesion == Lesion.sphere(hit, 15.0)
    w.pointer_tools.set_tool("crosshair")
    assert not w.view3d.pick_mode
    w.state.measurements = ()


def test_session_keeps_lesion_measurements_and_toggles(window: MainWindow, qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from viewer.ui.export_dialogs import open_session_dialog, save_session_dialog

    w = window
    c = left_leg_point(w)
    lesion = Lesion.sphere(c, 18.0)
    ms = (Ruler(c, (c[0] + 5, c[1], c[2])), Angle((c[0] + 5, c[1], c[2]), c, (c[0], c[1] + 5, c[2])))
    w.state.update(lesion=lesion, measurements=ms, vessel_colouring="lesion", keyhole=True)
    f = save_session_dialog(w, tmp_path / "plan.json")
    assert f is not None and f.exists()
    w.state.update(lesion=None, measurements=(), vessel_colouring="off", keyhole=False)
    done: list[object] = []
    open_session_dialog(w, f, on_done=done.append)
    qtbot.waitUntil(lambda: bool(done), timeout=LOAD_TIMEOUT_MS)
    st = w.state
    assert st.lesion == lesion and st.measurements == ms
    assert st.vessel_colouring == "lesion" and st.keyhole is True
    scene_ready(qtbot, w)
    assert w.scene.lesion == lesion and w.scene.keyhole and w.scene.vessel_colouring[0] == "lesion"
    assert w.scene.lesion_overlay.measurements == ms
    assert w.measure_tools.list.count() == 2
    assert w.lesion_panel.keyhole_check.isChecked()
    w.state.update(keyhole=False, vessel_colouring="off")


def test_write_the_lesion_report(window: MainWindow, qtbot, tmp_path: Path, small_phantom) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image

    w = window
    separated(qtbot, w)
    w.state.lesion = lesion_from_phantom(small_phantom.landmarks)
    written: list[list[Path]] = []
    failed: list[str] = []
    w.lesion_controller.report_written.connect(written.append)
    w.lesion_controller.report_failed.connect(failed.append)
    w.lesion_panel.write_report_dialog(tmp_path / "report" / "lesion_sheet.png")
    qtbot.waitUntil(lambda: bool(written or failed), timeout=ANALYSIS_TIMEOUT_MS)
    assert not failed, failed
    paths = written[0]
    assert all(p.exists() and p.stat().st_size > 0 for p in paths)
    pngs = [p for p in paths if p.suffix == ".png"]
    assert pngs and any(p.suffix == ".json" for p in paths) and any(p.suffix == ".csv" for p in paths)
    img = np.asarray(Image.open(pngs[0]).convert("RGB"))
    assert img.shape[0] > 200 and img.shape[1] > 200
    assert img.std() > 10, "the report sheet is blank"
    assert "Wrote the lesion report" in w.statusBar().currentMessage()


def test_report_without_a_lesion_says_so(window: MainWindow, qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    w = window
    w.state.lesion = None
    assert w.lesion_panel.write_report_dialog(tmp_path / "x.png") is None
    assert "Mark a lesion" in w.statusBar().currentMessage()
    assert not (tmp_path / "x.png").exists()
    assert not w.lesion_panel.report_button.isEnabled()


def test_movie_and_still_exports_carry_the_planning_view(window: MainWindow, qtbot) -> None:  # type: ignore[no-untyped-def]
    from viewer.ui.export_dialogs import _scene_copy

    w = window
    c = left_leg_point(w)
    lesion = Lesion.sphere(c, 20.0)
    ms = (Ruler(c, (c[0] + 8, c[1], c[2])),)
    w.state.update(lesion=lesion, keyhole=True, vessel_colouring="bone", measurements=ms)
    clone = _scene_copy(w)
    try:
        assert clone.lesion == lesion and clone.keyhole is True
        assert clone.vessel_colouring[0] == "bone"
        assert clone.lesion_overlay.measurements == ms
    finally:
        clone.close()
    scene_ready(qtbot, w)  # stills of the window's scene show what its 3D view shows
    twin = w.scene.offscreen_twin()
    assert twin.lesion == lesion and twin.keyhole is True
    w.state.update(lesion=None, keyhole=False, vessel_colouring="off", measurements=())


def test_no_vessel_near_and_no_contrast_are_said(window: MainWindow, qtbot) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    w = window
    separated(qtbot, w)
    # In the air in front of the legs, inside the scan: no vessel there.
    lo, hi = w.state.volume.bounds_lps()
    c = left_leg_point(w)
    air = Lesion.sphere((float(lo[0]) + 6.0, float(lo[1]) + 6.0, c[2]), 5.0)
    assert w.lesion_controller.set_lesion(air)
    w.lesion_panel.analyse_button.click()
    qtbot.waitUntil(lambda: w.state.lesion_analysis is not None, timeout=ANALYSIS_TIMEOUT_MS)
    assert "No vessel" in w.lesion_panel.summary_label.text()
    assert "No vessel" in w.statusBar().currentMessage()
    assert w.lesion_panel.entry_table.rowCount() == 0 and w.state.lesion == air
    # Masks that say the scan has no contrast: the analysis says so, nothing else changes.
    masks = w.state.class_masks
    w.state.lesion = Lesion.sphere(c, 20.0)
    empty = replace(masks, vessel=np.zeros_like(masks.bone), contrast=False, message="no contrast-filled vessels found")
    w.state.class_masks = empty
    tf, layout = w.state.transfer_function, w.state.layout
    w.lesion_panel.analyse_button.click()
    qtbot.waitUntil(lambda: w.state.lesion_analysis is not None, timeout=ANALYSIS_TIMEOUT_MS)
    assert "No contrast" in w.lesion_panel.summary_label.text()
    assert w.state.transfer_function == tf and w.state.layout == layout and w.state.lesion is not None
    w.state.class_masks = masks
