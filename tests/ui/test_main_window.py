"""The desktop application, driven the way a user drives it.

Runs with the real VTK render widget, so it needs an X server: pytest-xvfb starts
Xvfb for the test run (DESIGN.md: the offscreen Qt platform cannot host the VTK
widget). One window, opened on the small phantom through the File menu's action, is
shared by the tests of this module to keep it fast; each test leaves it as it found it
or sets what it needs. Every wait is a ``qtbot.waitUntil`` with a timeout.
"""

from __future__ import annotations

import gc
import os
import weakref
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("VTK_SMP_BACKEND_IN_USE", "STDThread")

pytest.importorskip("pytestqt")
from PySide6.QtCore import QEvent, QPoint, QSettings, Qt  # noqa: E402
from PySide6.QtWidgets import QApplication, QMessageBox, QStyle, QStyleOptionSlider  # noqa: E402

if not os.environ.get("DISPLAY"):
    pytest.skip("needs an X server (run under pytest-xvfb or xvfb-run)", allow_module_level=True)

from viewer.core.extraction import class_masks  # noqa: E402
from viewer.core.volume import Volume  # noqa: E402
from viewer.ui.main_window import MainWindow  # noqa: E402

pytestmark = pytest.mark.gui

LOAD_TIMEOUT_MS = 60_000
RENDER_TIMEOUT_MS = 15_000


def red_and_ivory(img: np.ndarray) -> tuple[int, int]:
    """Counts of arterial-red and bone-ivory pixels in an RGB image."""
    r, g, b = (img[..., i].astype(int) for i in range(3))
    red = (r > 90) & (r > 2 * g) & (r > 2 * b)
    ivory = (r > 110) & (g > 95) & (b > 60) & (r >= b) & (abs(r - g) < 60) & (r - b > 10)
    return int(red.sum()), int(ivory.sum())


@pytest.fixture(scope="module")
def window(qapp: QApplication, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MainWindow]:
    cfg = tmp_path_factory.mktemp("config")
    os.environ["VESSEL_VIEWER_CONFIG_DIR"] = str(cfg)  # no user presets from $HOME
    settings = QSettings(str(cfg / "settings.ini"), QSettings.Format.IniFormat)
    w = MainWindow(settings=settings)
    w.resize(1200, 800)
    w.show()
    w.view3d.initialize()
    yield w
    rw_ref = weakref.ref(w.view3d.vtk_widget.GetRenderWindow())
    w.close()
    assert w.scene.closed
    w.deleteLater()
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    del w
    gc.collect()
    # No leaked VTK render window (it holds an X display connection).
    assert rw_ref() is None, "the VTK render window outlived the main window"


@pytest.fixture(scope="module")
def loaded(window: MainWindow, qapp: QApplication) -> MainWindow:
    """The window after File > Sample data > Lower-leg phantom (small)."""
    from pytestqt.qtbot import QtBot

    bot = QtBot(qapp)
    frames: list[bool] = []
    window.first_full_frame.connect(lambda: frames.append(True))
    window.action_phantom_small.trigger()
    bot.waitUntil(lambda: window.state.volume is not None and not window.loading, timeout=LOAD_TIMEOUT_MS)
    bot.waitUntil(lambda: bool(frames), timeout=RENDER_TIMEOUT_MS)
    return window


def wait_for_frame(qtbot, w: MainWindow, after: int) -> None:
    """Wait for a full-quality render newer than render count ``after`` (after the 3D
    view's scene preparation, a worker since issue 9, was applied)."""
    qtbot.waitUntil(lambda: not w.view3d.scene_busy, timeout=LOAD_TIMEOUT_MS)
    qtbot.waitUntil(lambda: w.view3d.n_renders > after and not w.view3d.interactive, timeout=RENDER_TIMEOUT_MS)
    qtbot.wait(50)  # let a pending coalesced render run too


def test_phantom_opens_via_menu_and_3d_view_is_not_blank(loaded: MainWindow, qtbot) -> None:
    w = loaded
    vol = w.state.volume
    assert isinstance(vol, Volume)
    assert w.state.crosshair_lps is not None
    # the phantom opens on the left leg's axis (its centre lies between the legs)
    from viewer.phantom import anatomy

    assert np.allclose(w.state.crosshair_lps[:2], anatomy.LEG_AXIS_XY_MM)
    assert w.current_source == {"kind": "phantom", "size": "small"}
    assert w.controls.histogram.has_histogram
    # Smoke test of the real render widget, read back through VTK.
    img = w.view3d.grab_image()
    assert img.shape[0] > 100 and img.shape[1] > 100
    assert img.std() > 10, "3D view is blank"
    red, ivory = red_and_ivory(img)
    assert red > 200, f"no red vessel pixels ({red})"
    assert ivory > 200, f"no ivory bone pixels ({ivory})"
    # The three slice views show the scan.
    for v in w.slice_views.values():
        assert v._qimage is not None
    # Title: the description only; no patient identity.
    assert vol.description in w.windowTitle() or "scan" in w.windowTitle()


def test_vessel_window_slider_changes_tf_and_image(loaded: MainWindow, qtbot) -> None:
    w = loaded
    slider = w.controls.vessel_slider
    tf0 = w.state.transfer_function
    before = w.view3d.grab_image()
    red0, _ = red_and_ivory(before)
    n = w.view3d.n_renders
    # Type a new low end into the number box at the slider's left end, then Enter.
    low_box = slider._min_label
    low_box.selectAll()
    qtbot.keyClicks(low_box, "1000")
    qtbot.keyClick(low_box, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: w.state.transfer_function.vessel_window_hu != tf0.vessel_window_hu, timeout=5000)
    # Typed above the high end: the window is kept ordered, the slider follows.
    assert w.state.transfer_function.vessel_window_hu == (tf0.vessel_window_hu[1], 1000.0)
    assert tuple(slider.value()) == pytest.approx(w.state.transfer_function.vessel_window_hu)
    assert w.state.transfer_function.bone_threshold_hu == tf0.bone_threshold_hu
    wait_for_frame(qtbot, w, n)
    after = w.view3d.grab_image()
    red1, _ = red_and_ivory(after)
    assert np.abs(after.astype(int) - before.astype(int)).mean() > 0.1  # thin vessels: few pixels
    assert red1 < red0 / 2, f"vessels still red with the window above contrast ({red0} -> {red1})"
    # Put it back through the state: the slider follows (two-way binding).
    n = w.view3d.n_renders
    w.state.transfer_function = tf0
    assert tuple(slider.value()) == pytest.approx(tf0.vessel_window_hu)
    wait_for_frame(qtbot, w, n)


def test_slider_hold_uses_interactive_level_of_detail(loaded: MainWindow, qtbot) -> None:
    w = loaded
    s = w.controls.bone_slider
    opt = QStyleOptionSlider()
    s.initStyleOption(opt)
    handle = s.style().subControlRect(QStyle.ComplexControl.CC_Slider, opt, QStyle.SubControl.SC_SliderHandle, s)
    qtbot.mousePress(s, Qt.MouseButton.LeftButton, pos=handle.center())
    assert w.view3d.interactive and w.scene.interactive
    qtbot.mouseMove(s, handle.center() + QPoint(25, 0))
    qtbot.wait(100)
    n = w.view3d.n_renders
    qtbot.mouseRelease(s, Qt.MouseButton.LeftButton, pos=handle.center() + QPoint(25, 0))
    assert not w.view3d.interactive and not w.scene.interactive
    wait_for_frame(qtbot, w, n)
    assert w.view3d.last_full_frame_time is not None
    # Restore the preset's threshold.
    w.controls.bone_spin.setValue(int(w.presets[w.state.preset_name].bone_threshold_hu))


def test_camera_drag_in_3d_view_uses_level_of_detail(loaded: MainWindow, qtbot) -> None:
    w = loaded
    vw = w.view3d.vtk_widget
    cam = w.scene.renderer.GetActiveCamera()
    pos0 = np.array(cam.GetPosition())
    c = vw.rect().center()
    seen: list[bool] = []
    w.view3d.interaction_changed.connect(seen.append)
    qtbot.mousePress(vw, Qt.MouseButton.LeftButton, pos=c)
    assert w.view3d.interactive and w.scene.interactive
    for k in range(1, 6):
        qtbot.mouseMove(vw, c + QPoint(12 * k, 0))
        qtbot.wait(20)
    n = w.view3d.n_renders
    qtbot.mouseRelease(vw, Qt.MouseButton.LeftButton, pos=c + QPoint(60, 0))
    assert not w.view3d.interactive and not w.scene.interactive
    assert seen == [True, False]
    wait_for_frame(qtbot, w, n)
    assert np.linalg.norm(np.array(cam.GetPosition()) - pos0) > 1.0, "the drag did not rotate the camera"
    w.view_actions["anterior"].trigger()


def test_click_in_slice_view_moves_crosshair_and_other_views_follow(loaded: MainWindow, qtbot) -> None:
    w = loaded
    axial, coronal, sagittal = (w.slice_views[a] for a in ("axial", "coronal", "sagittal"))
    x0, y0, z0 = w.state.crosshair_lps
    cor0, sag0 = coronal.slice_position_mm, sagittal.slice_position_mm
    r = axial.image_rect()
    click = QPoint(int(r.left() + r.width() * 0.3), int(r.top() + r.height() * 0.7))
    qtbot.mouseClick(axial, Qt.MouseButton.LeftButton, pos=click)
    x1, y1, z1 = w.state.crosshair_lps
    assert z1 == z0, "a click in the axial view must not change the axial slice"
    # Axial: image right = patient left (+x), image down = posterior (+y).
    assert x1 < x0 and y1 > y0
    # The other views resliced to the new point.
    assert coronal.slice_position_mm != cor0 and abs(coronal.slice_position_mm - y1) < 2.0
    assert sagittal.slice_position_mm != sag0 and abs(sagittal.slice_position_mm - x1) < 2.0
    # The crosshair is drawn where the user clicked (within a pixel or two).
    c = axial.widget_pos_of_crosshair()
    assert abs(c.x() - click.x()) < 3 and abs(c.y() - click.y()) < 3
    # Hovering reports HU and LPS mm in the status bar.
    qtbot.mouseMove(axial, click)
    qtbot.waitUntil(lambda: "HU" in w.hover_label.text(), timeout=3000)
    assert "mm" in w.hover_label.text()


def test_right_drag_changes_window_level(loaded: MainWindow, qtbot) -> None:
    v = loaded.slice_views["coronal"]
    w0, l0 = v.window_hu, v.level_hu
    c = v.rect().center()
    qtbot.mousePress(v, Qt.MouseButton.RightButton, pos=c)
    qtbot.mouseMove(v, c + QPoint(40, -20))
    qtbot.mouseRelease(v, Qt.MouseButton.RightButton, pos=c + QPoint(40, -20))
    assert v.window_hu > w0 and v.level_hu > l0
    v.set_window_level(w0, l0)


def test_broken_folder_shows_dialog_and_keeps_previous_scan(
    loaded: MainWindow, qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = loaded
    (tmp_path / "IM0001.dcm").write_bytes(b"this is not a DICOM file" * 40)
    (tmp_path / "notes.txt").write_text("hello")
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "critical", staticmethod(lambda _p, _t, text, *a, **k: shown.append(text)))
    monkeypatch.setattr("PySide6.QtWidgets.QFileDialog.getExistingDirectory", lambda *a, **k: str(tmp_path))
    vol = w.state.volume
    w.action_open_folder.trigger()
    qtbot.waitUntil(lambda: bool(shown), timeout=LOAD_TIMEOUT_MS)
    assert str(tmp_path) in shown[0] or "DICOM" in shown[0] or "series" in shown[0]
    assert "Traceback" not in shown[0]
    assert w.state.volume is vol
    assert not w.loading
    assert w.view3d.grab_image().std() > 10


def test_cancel_a_load_keeps_previous_scan(loaded: MainWindow, qtbot) -> None:
    w = loaded
    vol = w.state.volume
    cancelled: list[bool] = []
    w.load_cancelled.connect(lambda: cancelled.append(True))
    w.action_phantom.trigger()  # the full-size phantom: long enough to cancel
    assert w.loading and w.cancel_button.isVisible()
    qtbot.mouseClick(w.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(cancelled) and not w.loading, timeout=5000)
    assert not w.cancel_button.isVisible()
    # The cancelled worker ends soon and nothing replaces the scan.
    qtbot.waitUntil(lambda: w.background_threads == 0, timeout=LOAD_TIMEOUT_MS)
    qtbot.wait(100)
    assert w.state.volume is vol


def test_switch_presets_with_the_picker(loaded: MainWindow, qtbot) -> None:
    w = loaded
    combo = w.controls.preset_combo
    start = w.state.preset_name
    target = "Vessels only" if "Vessels only" in w.presets else next(n for n in w.presets if n != start)
    n = w.view3d.n_renders
    combo.setFocus()
    for _ in range(combo.count()):
        if combo.currentText() == target:
            break
        qtbot.keyClick(combo, Qt.Key.Key_Down)
    assert w.state.preset_name == target
    assert w.state.transfer_function == w.presets[target]
    wait_for_frame(qtbot, w, n)
    assert w.settings.value("last_preset") == target
    if target == "Vessels only":
        qtbot.waitUntil(lambda: w.state.class_masks is not None, timeout=LOAD_TIMEOUT_MS)
        wait_for_frame(qtbot, w, w.view3d.n_renders - 1)
        _, ivory = red_and_ivory(w.view3d.grab_image())
        assert ivory < 50, f"bone colour in a vessels-only preset ({ivory} px)"
    # Back to where we started.
    w.state.update(transfer_function=w.presets[start], preset_name=start)
    assert combo.currentText() == start


def test_a_bone_threshold_edit_is_drawn_with_its_masks_not_before(loaded: MainWindow, qtbot) -> None:
    """Separated mode: a bone-threshold edit is not redrawn with the masks held (the
    threshold only picks the separation's seeds: the same picture, and a full render
    sharing the cores with the new separation); the scene takes the edit with its new
    masks, or, when they fail, with the masks held."""
    import threading

    from viewer.core.errors import ViewerError

    w = loaded
    if not w.state.transfer_function.separated:
        w.set_separated(True)
    bone0 = w.state.transfer_function.bone_threshold_hu

    def settled() -> bool:
        return w.settled

    qtbot.waitUntil(settled, timeout=LOAD_TIMEOUT_MS)
    real = w.mask_controller._compute
    gate = threading.Event()
    fail = threading.Event()

    def gated(volume, settings, progress):  # type: ignore[no-untyped-def]
        assert gate.wait(30), "the test never opened the gate"
        if fail.is_set():
            raise ViewerError("the separation failed on purpose")
        return real(volume, settings, progress)

    w.mask_controller._compute = gated
    try:
        held = w.state.class_masks
        w.controls.bone_spin.setValue(int(bone0) + 30)
        qtbot.wait(400)
        assert w.mask_controller.busy and w.state.class_masks is held
        assert w.scene.transfer_function.bone_threshold_hu == bone0  # not redrawn yet
        gate.set()
        qtbot.waitUntil(settled, timeout=LOAD_TIMEOUT_MS)
        assert w.scene.transfer_function.bone_threshold_hu == bone0 + 30
        assert w.scene.class_masks is w.state.class_masks and w.state.class_masks is not held
        # masks that fail: the edit is drawn with the masks held
        gate.clear()
        fail.set()
        w.controls.bone_spin.setValue(int(bone0) + 10)
        qtbot.wait(300)
        assert w.scene.transfer_function.bone_threshold_hu == bone0 + 30
        gate.set()
        qtbot.waitUntil(
            lambda: not w.mask_controller.busy and w.scene.transfer_function == w.state.transfer_function,
            timeout=LOAD_TIMEOUT_MS,
        )
        assert w.scene.transfer_function.bone_threshold_hu == bone0 + 10
    finally:
        gate.set()
        w.mask_controller._compute = real
        w.view3d._masks_failed_for = None
        w.controls.bone_spin.setValue(int(bone0))
        qtbot.waitUntil(settled, timeout=LOAD_TIMEOUT_MS)


def test_call_when_settled_waits_for_the_masks_and_their_frame(loaded: MainWindow, qtbot) -> None:
    """``--screenshot`` takes the final picture: ``call_when_settled`` fires once, after
    a full-quality frame of the settled window -- not while masks are being made, however
    many frames are drawn meanwhile."""
    import threading

    w = loaded
    if not w.state.transfer_function.separated:
        w.set_separated(True)
    qtbot.waitUntil(lambda: w.settled, timeout=LOAD_TIMEOUT_MS)
    bone0 = w.state.transfer_function.bone_threshold_hu
    real = w.mask_controller._compute
    gate = threading.Event()

    def gated(volume, settings, progress):  # type: ignore[no-untyped-def]
        assert gate.wait(30), "the test never opened the gate"
        return real(volume, settings, progress)

    w.mask_controller._compute = gated
    calls: list[tuple[bool, float]] = []
    try:
        w.controls.bone_spin.setValue(int(bone0) + 40)
        qtbot.waitUntil(lambda: not w.settled, timeout=RENDER_TIMEOUT_MS)
        w.call_when_settled(lambda: calls.append((w.settled, w.scene.transfer_function.bone_threshold_hu)), 50)
        for _ in range(3):
            w.view3d.request_render()
            qtbot.wait(200)
        assert calls == [] and w.view3d.n_renders > 0
        gate.set()
        qtbot.waitUntil(lambda: bool(calls), timeout=LOAD_TIMEOUT_MS)
        assert calls == [(True, bone0 + 40)]
        w.view3d.request_render()
        qtbot.wait(300)
        assert len(calls) == 1  # once
        # a vessel-window edit restyles the masks held: the window settles without new ones
        lo, hi = w.state.transfer_function.vessel_window_hu
        w.state.transfer_function = w.state.transfer_function.with_vessel_window(lo + 10.0, hi)
        qtbot.waitUntil(lambda: w.settled, timeout=RENDER_TIMEOUT_MS)
        w.state.transfer_function = w.state.transfer_function.with_vessel_window(lo, hi)
    finally:
        gate.set()
        w.mask_controller._compute = real
        w.controls.bone_spin.setValue(int(bone0))
        qtbot.waitUntil(lambda: w.settled, timeout=LOAD_TIMEOUT_MS)


def test_toggle_separated_mode_computes_mask_in_background(loaded: MainWindow, qtbot) -> None:
    w = loaded
    check = w.controls.separated_check
    was = w.state.transfer_function.separated
    if was:  # make sure we start from "off"
        qtbot.mouseClick(check, Qt.MouseButton.LeftButton, pos=QPoint(8, check.height() // 2))
        assert not w.state.transfer_function.separated
    # Change the threshold while off, so turning on needs a new mask.
    w.controls.bone_spin.setValue(int(w.state.transfer_function.bone_threshold_hu) + 20)
    ready: list[bool] = []
    w.class_masks_ready.connect(lambda: ready.append(True))
    qtbot.mouseClick(check, Qt.MouseButton.LeftButton, pos=QPoint(8, check.height() // 2))
    assert w.state.transfer_function.separated
    assert w.action_separated.isChecked()
    # A mask job started before the toggle (for the old threshold) may report first;
    # the window then computes the newer one: wait for the masks of these thresholds.
    tf_now = w.state.transfer_function
    qtbot.waitUntil(
        lambda: (
            bool(ready)
            and w.state.class_masks is not None
            and w.state.class_masks.matches(tf_now.bone_threshold_hu, tf_now.vessel_window_hu)
        ),
        timeout=LOAD_TIMEOUT_MS,
    )
    vol, tf = w.state.volume, w.state.transfer_function
    expected = class_masks(
        vol.hu,
        vol.spacing_mm,
        tf.bone_threshold_hu,
        tf.vessel_window_hu,
        remove_table=tf.remove_table,
        real_ct=tf.real_ct_separation,
    )
    assert w.state.class_masks.matches(tf.bone_threshold_hu, tf.vessel_window_hu)
    assert np.array_equal(w.state.class_masks.bone, expected.bone)
    qtbot.waitUntil(lambda: not w.view3d.scene_busy, timeout=LOAD_TIMEOUT_MS)
    assert w.scene.class_masks is w.state.class_masks
    n = w.view3d.n_renders
    wait_for_frame(qtbot, w, n - 1)
    red, ivory = red_and_ivory(w.view3d.grab_image())
    assert red > 200 and ivory > 200
    # The menu action (shortcut S) toggles the same state back.
    w.action_separated.trigger()
    assert not w.state.transfer_function.separated and not check.isChecked()
    w.state.update(transfer_function=w.presets[w.state.preset_name])


def test_layouts_crop_clip_and_camera(loaded: MainWindow, qtbot) -> None:
    w = loaded
    w.action_layout_3d.trigger()
    assert w.state.layout == "3d"
    assert all(not v.isVisible() for v in w.slice_views.values())
    w.action_toggle_layout.trigger()
    assert w.state.layout == "2x2" and all(v.isVisible() for v in w.slice_views.values())
    # Camera buttons.
    qtbot.mouseClick(w.controls.camera_buttons["left"], Qt.MouseButton.LeftButton)
    dop_left = np.array(w.scene.renderer.GetActiveCamera().GetDirectionOfProjection())
    w.view_actions["anterior"].trigger()
    dop_ant = np.array(w.scene.renderer.GetActiveCamera().GetDirectionOfProjection())
    assert abs(float(dop_left @ dop_ant)) < 0.1
    # Anterior view: the camera looks from the front (-y, anterior) towards +y.
    assert dop_ant[1] > 0.9
    # Crop handles on, a crop box through the state, reset.
    w.controls.crop_check.setChecked(True)
    assert w.view3d.crop_handles_visible and w.action_crop.isChecked()
    lo, hi = w.state.volume.bounds_lps()
    box = (lo[0], (lo[0] + hi[0]) / 2, lo[1], hi[1], lo[2], hi[2])
    w.state.crop_box_lps = box
    assert w.scene.crop_box_lps == pytest.approx(box)
    qtbot.mouseClick(w.controls.reset_crop_button, Qt.MouseButton.LeftButton)
    assert w.state.crop_box_lps is None and w.scene.crop_box_lps is None
    w.controls.crop_check.setChecked(False)
    # Clip plane on and moved.
    w.controls.clip_check.setChecked(True)
    p1 = w.state.clip_plane
    w.controls.clip_slider.setValue(800)
    p2 = w.state.clip_plane
    assert p1 is not None and p2 is not None and p2[0][2] > p1[0][2]
    w.controls.clip_check.setChecked(False)
    assert w.state.clip_plane is None


def test_patient_identity_hidden_unless_asked(loaded: MainWindow, qtbot) -> None:
    w = loaded
    vol = w.state.volume
    import dataclasses

    named = dataclasses.replace(
        vol, identity={"PatientName": "DOE^JANE", "PatientID": "ID-4711"}, description="CTA runoff"
    )
    w.set_volume(named)
    assert "DOE" not in w.windowTitle() and "4711" not in w.windowTitle()
    assert "CTA runoff" in w.windowTitle()
    w.action_show_identity.trigger()
    assert "DOE^JANE" in w.windowTitle()
    w.action_show_identity.trigger()
    assert "DOE" not in w.windowTitle()
    n = w.view3d.n_renders
    w.set_volume(vol)
    wait_for_frame(qtbot, w, n)


def test_suggest_sets_thresholds_from_histogram(loaded: MainWindow, qtbot) -> None:
    w = loaded
    qtbot.mouseClick(w.controls.suggest_button, Qt.MouseButton.LeftButton)
    tf = w.state.transfer_function
    lo, hi = tf.vessel_window_hu
    assert lo < hi <= tf.bone_threshold_hu + 1
    assert w.controls.bone_spin.value() == int(round(tf.bone_threshold_hu))
    w.state.update(transfer_function=w.presets[w.state.preset_name])


def test_settings_remembered(loaded: MainWindow) -> None:
    s = loaded.settings
    loaded.state.layout = "3d"
    assert s.value("layout") == "3d"
    loaded.state.layout = "2x2"
    assert s.value("layout") == "2x2"
    start = loaded.state.preset_name
    other = next(n for n in loaded.presets if n != start)
    loaded.controls.preset_combo.textActivated.emit(other)
    assert s.value("last_preset") == other
    loaded.controls.preset_combo.textActivated.emit(start)
    assert s.value("last_preset") == start


def test_file_menu_export_and_session_actions_reach_their_dialogs(
    loaded: MainWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    from viewer.ui import export_dialogs

    called: list[str] = []
    for fn in loaded.export_actions:
        assert callable(getattr(export_dialogs, fn)), fn
        monkeypatch.setattr(export_dialogs, fn, lambda window, _n=fn: called.append(_n) or None)
    for a in loaded.export_actions.values():
        a.trigger()
    assert called == list(loaded.export_actions)


def test_series_picker_lists_series_without_identity(qtbot) -> None:
    from types import SimpleNamespace

    from viewer.ui.dialogs import SeriesPickerDialog

    mk = lambda key, desc, n, ct: SimpleNamespace(  # noqa: E731
        key=key,
        description=desc,
        modality="CT" if ct else "SR",
        n_slices=n,
        rows=512,
        columns=512,
        spacing_mm=(0.7, 0.7, 1.0),
        warnings=(),
        is_ct=ct,
    )
    series = [mk("a", "Scout", 3, True), mk("b", "CTA runoff 1.0 B30f", 600, True), mk("c", "Dose report", 1, False)]
    dlg = SeriesPickerDialog(series)
    qtbot.addWidget(dlg)
    assert dlg.table.rowCount() == 3
    # The biggest CT series first and pre-selected.
    assert dlg.table.item(0, 0).text() == "CTA runoff 1.0 B30f"
    assert dlg.selected_series().key == "b"
    assert dlg.table.item(0, 2).text() == "600"
    dlg.table.selectRow(1)
    assert dlg.selected_series().key == "a"


def test_series_picker_shows_thumbnails(qtbot, small_phantom_dicom_dir: Path, tmp_path: Path) -> None:
    """The middle image of each series, windowed, as an icon; None (no icon) when it
    cannot be read, never an error."""
    from viewer.io import scan_series
    from viewer.io.thumbnails import series_thumbnail
    from viewer.ui.dialogs import SeriesPickerDialog

    info = scan_series(small_phantom_dicom_dir)[0]
    thumb = series_thumbnail(info)
    assert thumb is not None and thumb.dtype == np.uint8 and max(thumb.shape) <= 64
    assert thumb.std() > 10  # a leg in air, not a blank square
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(b"DICM" * 10)
    from dataclasses import replace

    assert series_thumbnail(replace(info, files=(broken,))) is None
    dlg = SeriesPickerDialog([info, replace(info, key="other")], thumbnails=[thumb, None])
    qtbot.addWidget(dlg)
    icons = [not dlg.table.item(r, 0).icon().isNull() for r in range(2)]
    assert sorted(icons) == [False, True]


def test_app_screenshot_mode_end_to_end(tmp_path: Path) -> None:
    """``vessel-viewer --small --screenshot`` as a process: the composition root opens
    the phantom, renders, saves a PNG of the whole window and exits cleanly."""
    import subprocess
    import sys

    from PIL import Image

    out = tmp_path / "win.png"
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "cfg"), VESSEL_VIEWER_CONFIG_DIR=str(tmp_path / "cfg"))
    p = subprocess.run(
        [sys.executable, "-m", "viewer", "--small", "--screenshot", str(out), "--quit-after-ms", "60000"],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    img = np.asarray(Image.open(out).convert("RGB"))
    assert img.shape[0] > 400 and img.shape[1] > 600
    red, ivory = red_and_ivory(img)
    assert red > 200 and ivory > 200, (red, ivory)


def test_app_opens_a_scan_given_on_the_command_line(tmp_path: Path) -> None:
    """``vessel-viewer PATH`` as a process: the scan is read while the application starts
    (viewer.io.prefetch), drawn (ivory bone in the window's picture), the first frames
    are timed, and the source file is left as it was."""
    import hashlib
    import subprocess
    import sys

    from viewer.io.writers import write_nrrd
    from viewer.phantom import generate

    v = generate("small").volume
    scan = tmp_path / "leg.nrrd"
    write_nrrd(v.hu, v.ijk_to_lps, scan)
    before = hashlib.sha256(scan.read_bytes()).hexdigest()
    out = tmp_path / "win.png"
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "cfg"), VESSEL_VIEWER_CONFIG_DIR=str(tmp_path / "cfg"))
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "viewer",
            str(scan),
            "--print-timing",
            "--screenshot",
            str(out),
            "--quit-after-ms",
            "60000",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    timings = dict(line.split("=") for line in p.stdout.splitlines() if line.startswith("first_"))
    assert 0.0 < float(timings["first_frame_s"]) <= float(timings["first_full_frame_s"])
    from PIL import Image

    img = np.asarray(Image.open(out).convert("RGB"))
    _red, ivory = red_and_ivory(img)
    assert ivory > 200, ivory
    assert hashlib.sha256(scan.read_bytes()).hexdigest() == before


def test_about_box_names_version_and_licences(loaded: MainWindow, monkeypatch: pytest.MonkeyPatch) -> None:
    from viewer import __version__

    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "about", staticmethod(lambda _p, _t, text: shown.append(text)))
    loaded.action_about.trigger()
    assert shown and __version__ in shown[0]
    assert "BSD-3-Clause" in shown[0] and "LGPL" in shown[0] and "Apache-2.0" in shown[0]


def test_new_masks_prepare_shading_off_the_gui_thread_and_say_so(loaded: MainWindow, qtbot) -> None:
    """New class masks need new scalars and new shading gradients: both are made by the
    3D view's worker (viewer.render.shading_warmup), the status bar says the 3D view is
    updating meanwhile, and the GUI thread's render computes no gradients."""
    w = loaded
    stages: list[str] = []
    busy_text: list[str] = []

    def on_busy(busy: bool) -> None:
        if busy:
            busy_text.append(w.scene_label.text())

    w.view3d.shading_progress.connect(stages.append)
    w.view3d.scene_busy_changed.connect(on_busy)
    try:
        if not w.state.transfer_function.separated:
            w.set_separated(True)
        qtbot.waitUntil(lambda: w.state.class_masks is not None and not w.mask_runner.busy, timeout=LOAD_TIMEOUT_MS)
        qtbot.waitUntil(lambda: not w.view3d.scene_busy, timeout=LOAD_TIMEOUT_MS)
        stages.clear()
        busy_text.clear()
        masks = w.state.class_masks
        w.controls.bone_spin.setValue(int(w.state.transfer_function.bone_threshold_hu) + 30)
        qtbot.waitUntil(
            lambda: w.state.class_masks is not masks and not w.mask_runner.busy and not w.view3d.scene_busy,
            timeout=LOAD_TIMEOUT_MS,
        )
        n = w.view3d.n_renders
        w.view3d.request_render()
        qtbot.waitUntil(lambda: w.view3d.n_renders > n, timeout=LOAD_TIMEOUT_MS)
    finally:
        w.view3d.shading_progress.disconnect(stages.append)
        w.view3d.scene_busy_changed.disconnect(on_busy)
    assert any("Updating the 3D view" in t for t in busy_text), busy_text
    assert "shading_warmup_s" in w.scene.last_timings_s
    assert stages == [], "the GUI thread's render computed shading gradients"
    assert w.scene_label.text() == "" and w.shading_label.text() == ""


def test_count_vessels_near_the_crosshair(loaded: MainWindow, qtbot, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tools > Count vessels: the same count as the core function, shown to the user."""
    from PySide6.QtWidgets import QInputDialog

    from viewer.core.vessel_count import count_vessels_near

    w = loaded
    vol = w.state.volume
    lo, hi = vol.bounds_lps()
    w.state.crosshair_lps = tuple(float(v) for v in (lo + hi) / 2)
    shown: list[str] = []
    monkeypatch.setattr(QInputDialog, "getDouble", staticmethod(lambda *a, **k: (35.0, True)))
    monkeypatch.setattr(QMessageBox, "information", staticmethod(lambda _p, _t, text: shown.append(text)))
    w.action_count_vessels.trigger()
    tf = w.state.transfer_function
    expected = count_vessels_near(
        vol, w.state.crosshair_lps, 35.0, tf.vessel_window_hu, w.state.class_masks if tf.separated else None
    )
    assert shown and f"up to {expected.max_profiles} vessels" in shown[0]
    assert "Within 35 mm" in shown[0]
    assert float(w.settings.value("vessel_count_radius_mm")) == 35.0
    # Cancelled dialog: nothing shown.
    monkeypatch.setattr(QInputDialog, "getDouble", staticmethod(lambda *a, **k: (0.0, False)))
    w.action_count_vessels.trigger()
    assert len(shown) == 1


def test_import_and_export_slicer_presets(loaded: MainWindow, shared_data: Path, tmp_path: Path) -> None:
    """File > Import 3D Slicer presets: Slicer's presets appear in the picker (saved as
    user presets); File > Export writes a presets.xml that imports back."""
    import warnings

    from viewer.core.slicer_presets import import_slicer_presets

    w = loaded
    src = shared_data / "slicer-presets" / "presets.xml"
    n_before = w.controls.preset_combo.count()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # CT-X-ray's malformed effectiveRange
        names = w.import_slicer_presets(src)
    assert len(names) == 31 and "Slicer: CT-AAA" in names
    assert w.controls.preset_combo.count() == n_before + 31
    assert w.controls.preset_combo.findText("Slicer: CT-Bone") >= 0
    # Choosing one (the combo's textActivated, as a user's pick emits it) shows
    # Slicer's own curves.
    start = w.state.preset_name
    w.controls.preset_combo.textActivated.emit("Slicer: CT-AAA")
    assert w.state.preset_name == "Slicer: CT-AAA" and w.state.transfer_function.curves == "custom"
    w.controls.preset_combo.textActivated.emit(start)
    out = w.export_slicer_presets(tmp_path / "ours.xml")
    assert out is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        back = {tf.name for tf in import_slicer_presets(out)}
    assert {"Bone + vessels", "Slicer: CT-AAA"} <= back


def test_clip_plane_across_the_view_direction(loaded: MainWindow, qtbot) -> None:
    """'Across the view': the plane faces the camera; the slider moves it from the near
    side to the far side, and re-aims it after the view changed."""
    from viewer.ui.controls import VIEW_DIRECTION

    w = loaded
    c = w.controls
    w.view3d.set_view("anterior")
    c.clip_axis.setCurrentIndex(c.clip_axis.findData(VIEW_DIRECTION))
    c.clip_slider.setValue(500)
    c.clip_check.setChecked(True)
    origin, normal = w.state.clip_plane
    # Anterior view: the camera looks from the front towards the back (+y in LPS).
    assert np.allclose(normal, (0.0, 1.0, 0.0), atol=1e-6)
    lo, hi = w.state.volume.bounds_lps()
    assert np.allclose(origin, (lo + hi) / 2, atol=1e-6)
    c.clip_slider.setValue(1000)
    assert w.state.clip_plane[0][1] == pytest.approx(hi[1])
    # From the patient's left (camera on +x looking towards -x) the plane turns with it.
    w.view3d.set_view("left")
    c.clip_slider.setValue(250)
    origin, normal = w.state.clip_plane
    assert np.allclose(normal, (-1.0, 0.0, 0.0), atol=1e-6)
    assert origin[0] == pytest.approx(hi[0] - 0.25 * (hi[0] - lo[0]))
    c.clip_check.setChecked(False)
    assert w.state.clip_plane is None
    w.view3d.set_view("anterior")


def test_gapped_series_loads_with_a_geometry_warning_box(loaded: MainWindow, qtbot, shared_data: Path) -> None:
    """A series with missing slices is shown, and a warning box says what is interpolated."""
    path = shared_data / "ct-duplicate-positions"
    w = loaded
    old = w.state.volume
    w.open_path(path)
    qtbot.waitUntil(lambda: w.state.volume is not old and not w.loading, timeout=LOAD_TIMEOUT_MS)
    box = getattr(w, "geometry_warning_box", None)
    assert box is not None and box.isVisible()
    assert "interpolated" in box.text()
    assert "missing slices" in box.informativeText() or "missing slices" in box.detailedText()
    assert "duplicate" in box.detailedText()
    box.accept()
    qtbot.waitUntil(lambda: not box.isVisible(), timeout=2000)


def test_the_contrast_box_empties_the_vessel_class_and_auto_brings_it_back(loaded: MainWindow, qtbot) -> None:
    """Classes > Contrast "no": new masks with no vessel, no red in the picture, the
    status bar says it was set by hand; "auto" detects the phantom's contrast again."""
    w = loaded
    if not w.state.transfer_function.separated:
        w.action_separated.trigger()
    qtbot.waitUntil(
        lambda: w.state.class_masks is not None and w.state.class_masks.bone.shape == w.state.volume.shape,
        timeout=LOAD_TIMEOUT_MS,
    )
    wait_for_frame(qtbot, w, w.view3d.n_renders - 1)
    red0, ivory0 = red_and_ivory(w.view3d.grab_image())
    assert red0 > 200 and w.state.class_masks.contrast
    combo = w.controls.contrast_combo
    assert combo.currentData() == "auto"
    before = w.state.class_masks
    combo.setCurrentIndex(combo.findData("no"))
    assert w.state.transfer_function.contrast == "no"
    qtbot.waitUntil(
        lambda: w.state.class_masks is not before and w.state.class_masks is not None, timeout=LOAD_TIMEOUT_MS
    )
    masks = w.state.class_masks
    assert masks.contrast is False and masks.contrast_forced
    assert masks.vessel is not None and not masks.vessel.any()
    assert w.contrast_label.text() == "No contrast: vessel class empty (set by hand)"
    assert "set by hand" in w.contrast_label.toolTip()
    wait_for_frame(qtbot, w, w.view3d.n_renders)
    red1, ivory1 = red_and_ivory(w.view3d.grab_image())
    assert red1 < 0.05 * red0, f"red left with no contrast set: {red0} -> {red1}"
    assert ivory1 > 200
    # back to auto: detected again, and the red is back
    combo.setCurrentIndex(combo.findData("auto"))
    qtbot.waitUntil(
        lambda: w.state.class_masks is not masks and w.state.class_masks is not None, timeout=LOAD_TIMEOUT_MS
    )
    assert w.state.class_masks.contrast and not w.state.class_masks.contrast_forced
    assert w.contrast_label.text() == "Contrast: yes"
    wait_for_frame(qtbot, w, w.view3d.n_renders)
    red2, _ = red_and_ivory(w.view3d.grab_image())
    assert red2 > 0.5 * red0


def test_real_chest_without_contrast_is_ivory_not_red_and_the_table_toggles(
    loaded: MainWindow, qtbot, shared_data: Path
) -> None:
    """A real non-contrast chest CT in separated mode: the status bar says there is no
    contrast, the picture has bone and no red, and Remove table / Show uncertain /
    Show removed / Real-CT separation are the user's switches. Replaces the phantom."""
    path = shared_data / "ct-chest-noncontrast"
    if not path.is_dir():
        pytest.skip(f"{path} is absent")
    w = loaded
    tf = w.state.transfer_function
    assert tf.real_ct_separation and tf.remove_table
    if not tf.separated:
        w.action_separated.trigger()
    old = w.state.volume
    ready: list[bool] = []
    w.class_masks_ready.connect(lambda: ready.append(True))
    w.open_path(str(path))
    qtbot.waitUntil(lambda: w.state.volume is not old and not w.loading, timeout=LOAD_TIMEOUT_MS)
    qtbot.waitUntil(
        lambda: w.state.class_masks is not None and w.state.class_masks.bone.shape == w.state.volume.shape,
        timeout=LOAD_TIMEOUT_MS,
    )
    masks = w.state.class_masks
    assert masks.contrast is False
    assert w.contrast_label.text().startswith("No contrast")
    assert "no contrast-filled vessels" in w.contrast_label.toolTip()
    assert masks.removed is not None and masks.removed.any()
    n = w.view3d.n_renders
    wait_for_frame(qtbot, w, n - 1)
    red, ivory = red_and_ivory(w.view3d.grab_image())
    assert ivory > 500, f"no bone on the real chest ({ivory} ivory pixels)"
    assert red < 0.02 * ivory, f"red on a scan without contrast: {red} red vs {ivory} ivory pixels"
    # Remove table off: new masks that remove nothing.
    ready.clear()
    w.controls.remove_table_check.click()
    assert not w.state.transfer_function.remove_table
    qtbot.waitUntil(lambda: bool(ready) and w.state.class_masks is not masks, timeout=LOAD_TIMEOUT_MS)
    assert w.state.class_masks.removed is None and not w.state.class_masks.remove_table
    w.controls.remove_table_check.click()
    assert w.state.transfer_function.remove_table
    # The overlay switches reach the transfer function the scene draws.
    w.controls.show_removed_check.click()
    w.controls.show_uncertain_check.click()
    qtbot.waitUntil(lambda: not w.view3d.scene_busy, timeout=LOAD_TIMEOUT_MS)
    assert w.scene.transfer_function.show_removed and w.scene.transfer_function.show_uncertain
    w.controls.show_removed_check.click()
    w.controls.show_uncertain_check.click()
    assert not w.state.transfer_function.show_removed
    # Real-CT separation off: the classic masks (they carry no contrast verdict).
    ready.clear()
    w.controls.real_ct_check.click()
    qtbot.waitUntil(lambda: bool(ready) and w.state.class_masks.contrast is None, timeout=LOAD_TIMEOUT_MS)
    w.controls.real_ct_check.click()
    assert w.state.transfer_function.real_ct_separation


def test_drop_a_nifti_file_opens_it_and_adds_it_to_recent_files(loaded: MainWindow, qtbot, shared_data: Path) -> None:
    """Runs last: it replaces the phantom in the shared window with a real scan."""
    from PySide6.QtCore import QMimeData, QPointF, QUrl
    from PySide6.QtGui import QDropEvent

    path = shared_data / "cta-aorta-nifti" / "ct_cropped.nii.gz"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    w = loaded
    old = w.state.volume
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    ev = QDropEvent(
        QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier
    )
    w.dropEvent(ev)
    qtbot.waitUntil(lambda: w.state.volume is not old and not w.loading, timeout=LOAD_TIMEOUT_MS)
    assert w.state.volume.dims_xyz == (120, 126, 164)
    assert w.recent_files()[0] == str(path)
    assert [a.text() for a in w.recent_menu.actions()][0] == str(path)
    assert "ct_cropped.nii.gz" in w.windowTitle()
    assert w.settings.value("last_folder") == str(path.parent)
    qtbot.waitUntil(lambda: w.view3d.grab_image().std() > 10, timeout=RENDER_TIMEOUT_MS)
