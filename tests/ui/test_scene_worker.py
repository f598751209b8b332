"""The window never freezes on scene work (issue 9): the 3D view prepares keyhole,
distance colouring and class encodings in a worker and applies them on the GUI thread.

Real window under Xvfb (pytest-xvfb), small phantom, separated mode: (a) what the worker
path puts in the scene equals what the synchronous setters make; (b) a result made for
a state that has moved on is dropped; (c) the GUI event loop keeps running (a 10 ms
QTimer keeps ticking) while the preparation runs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import pytest

os.environ.setdefault("VTK_SMP_BACKEND_IN_USE", "STDThread")

pytest.importorskip("pytestqt")
from PySide6.QtCore import QEvent, QSettings, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

if not os.environ.get("DISPLAY"):
    pytest.skip("needs an X server (run under pytest-xvfb or xvfb-run)", allow_module_level=True)

from vtkmodules.util.numpy_support import vtk_to_numpy  # noqa: E402

from viewer.core.lesion import Lesion, lesion_from_phantom  # noqa: E402
from viewer.render.scene import Scene  # noqa: E402
from viewer.render.scene_data import prepare_scene  # noqa: E402
from viewer.ui.main_window import MainWindow  # noqa: E402

pytestmark = pytest.mark.gui

TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def window(qapp: QApplication, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MainWindow]:
    cfg = tmp_path_factory.mktemp("config")
    os.environ["VESSEL_VIEWER_CONFIG_DIR"] = str(cfg)
    w = MainWindow(settings=QSettings(str(cfg / "settings.ini"), QSettings.Format.IniFormat))
    w.resize(1000, 700)
    w.show()
    w.view3d.initialize()
    from pytestqt.qtbot import QtBot

    bot = QtBot(qapp)
    w.action_phantom_small.trigger()
    bot.waitUntil(lambda: w.state.volume is not None and not w.loading, timeout=TIMEOUT_MS)
    w.set_separated(True)
    bot.waitUntil(
        lambda: w.state.class_masks is not None and not w.mask_runner.busy and not w.view3d.scene_busy,
        timeout=TIMEOUT_MS,
    )
    yield w
    w.close()
    w.deleteLater()
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


def settle(qtbot, w: MainWindow) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: not w.view3d.scene_busy and not w.mask_runner.busy, timeout=TIMEOUT_MS)


def still(qtbot, w: MainWindow) -> np.ndarray:  # type: ignore[no-untyped-def]
    """The 3D view's pixels after a full-quality render of the applied scene."""
    settle(qtbot, w)
    n = w.view3d.n_renders
    w.view3d.request_render()
    qtbot.waitUntil(lambda: w.view3d.n_renders > n and not w.view3d.interactive, timeout=TIMEOUT_MS)
    qtbot.wait(30)
    return w.view3d.grab_image()


def _distances(s: Scene) -> np.ndarray:
    mesh = s._vessel_mesh.mesh
    assert mesh is not None
    return np.asarray(vtk_to_numpy(mesh.GetPointData().GetScalars()))


def test_worker_path_equals_the_synchronous_path(window: MainWindow, qtbot, small_phantom) -> None:  # type: ignore[no-untyped-def]
    w = window
    lesion = lesion_from_phantom(small_phantom.landmarks)
    w.state.update(lesion=lesion, keyhole=True, vessel_colouring="bone")
    assert w.view3d.scene_busy, "the keyhole and the colouring are prepared in the worker"
    settle(qtbot, w)
    gui = w.scene
    assert gui.keyhole and gui.lesion == lesion and gui.vessel_colouring[0] == "bone"
    with Scene(offscreen=True) as sync:
        sync.set_volume(w.state.volume)
        sync.set_class_masks(w.state.class_masks)
        sync.set_transfer_function(gui.transfer_function)
        sync.set_lesion(lesion)
        sync.set_keyhole(True)
        sync.set_vessel_colouring("bone")
        assert gui._buffer is not None and sync._buffer is not None
        np.testing.assert_array_equal(gui._buffer, sync._buffer)
        np.testing.assert_allclose(_distances(gui), _distances(sync))
        # The same picture, within a small pixel difference: the window's 3D view (its
        # scalars and mesh from the worker) and the synchronous scene offscreen.
        shown = still(qtbot, w).astype(int)
        sync.set_orientation_marker(gui.orientation_marker_visible)
        sync.renderer.SetBackground(*gui.renderer.GetBackground())
        sync.sample_distance_mm = gui.sample_distance_mm
        sync.set_camera_state(gui.camera_state())
        h, wd = shown.shape[:2]
        made = sync.render_still(wd, h)[..., :3].astype(int)
        differ = (np.abs(shown - made).max(axis=-1) > 30).mean()
        assert differ < 0.02, f"{differ:.1%} of the pixels differ"
    w.state.update(lesion=None, keyhole=False, vessel_colouring="off")
    settle(qtbot, w)


def test_a_stale_result_is_dropped(window: MainWindow, qtbot, small_phantom) -> None:  # type: ignore[no-untyped-def]
    w = window
    lesion = lesion_from_phantom(small_phantom.landmarks)
    w.state.update(lesion=lesion, keyhole=False, vessel_colouring="off")
    settle(qtbot, w)
    key = w.scene._buffer_key
    # A preparation for "keyhole on" ...
    w.state.keyhole = True
    inputs = w.view3d._pending_inputs
    assert inputs is not None and inputs.keyhole
    old = prepare_scene(inputs)
    # ... and the user turns it off again before the result arrives.
    w.state.keyhole = False
    assert not w.view3d.scene_busy, "back to what the scene holds: nothing to prepare"
    dropped = w.view3d.n_stale_dropped
    w.view3d._on_scene_prepared(old)  # the late result of the superseded request
    assert w.view3d.n_stale_dropped == dropped + 1
    assert not w.scene.keyhole and w.scene._buffer_key == key
    qtbot.wait(300)
    assert not w.scene.keyhole and w.scene._buffer_key == key
    w.state.lesion = None
    settle(qtbot, w)


def test_the_event_loop_runs_while_the_scene_is_prepared(window: MainWindow, qtbot, small_phantom) -> None:  # type: ignore[no-untyped-def]
    w = window
    base = lesion_from_phantom(small_phantom.landmarks)
    w.state.update(lesion=base, keyhole=False, vessel_colouring="off")
    settle(qtbot, w)
    ticks_busy: list[int] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks_busy.append(1) if w.view3d.scene_busy else None)
    timer.start()
    try:
        # A new lesion with the keyhole and the colouring to bone: an encoding, a vessel
        # mesh and a distance field (not cached), all in the worker.
        w.scene._bone_distance.clear()
        moved = Lesion.sphere(tuple(c + 3.0 for c in base.center_lps), base.radius_mm)
        w.state.update(lesion=moved, keyhole=True, vessel_colouring="bone")
        assert w.view3d.scene_busy
        settle(qtbot, w)
    finally:
        timer.stop()
    assert len(ticks_busy) >= 1, f"the GUI timer ticked {len(ticks_busy)} times during the preparation"
    assert w.scene.keyhole and w.scene.lesion == moved
    w.state.update(lesion=None, keyhole=False, vessel_colouring="off")
    settle(qtbot, w)


def test_the_views_handlers_and_the_adapters_reset_build_the_same_scene(window: MainWindow, qtbot) -> None:  # type: ignore[no-untyped-def]
    """One adapter from state to scene (issue 9): the 3D view's per-field handlers and
    worker, fed one edit at a time, and ``scene_adapter.reset`` of a fresh offscreen
    scene to the same state build the same scene: transfer function, masks, crop, clip,
    lesion, keyhole, colouring and measurements, and the same picture."""
    from viewer.core.measure import Ruler
    from viewer.render import scene_adapter
    from viewer.render.offscreen import render_to_array

    w = window
    settle(qtbot, w)
    lo, hi = w.state.volume.bounds_lps()
    c = tuple(float(v) for v in (lo + hi) / 2.0)
    ms = (Ruler(c, (c[0] + 10.0, c[1], c[2])),)
    w.state.crop_box_lps = (lo[0], hi[0], lo[1], hi[1], lo[2] + 10.0, hi[2] - 10.0)
    w.state.clip_plane = (c, (0.0, 1.0, 0.0))
    w.state.lesion = Lesion.sphere(c, 15.0)
    w.state.keyhole = True
    w.state.vessel_colouring = "bone"
    w.state.measurements = ms
    settle(qtbot, w)
    gui = w.scene
    fresh = Scene(offscreen=True)
    try:
        scene_adapter.reset(fresh, w.state, camera=gui.camera_state(), overlays=w.view3d.overlays, own_masks=False)
        assert fresh.transfer_function == gui.transfer_function == w.state.transfer_function
        assert fresh.class_masks is gui.class_masks is w.state.class_masks
        assert fresh.crop_box_lps == gui.crop_box_lps == w.state.crop_box_lps
        assert gui._clip is not None and fresh._clip is not None
        assert all(np.allclose(a, b) for a, b in zip(fresh._clip, gui._clip, strict=True))
        assert fresh.lesion == gui.lesion == fresh.lesion_overlay.lesion == gui.lesion_overlay.lesion == w.state.lesion
        assert fresh.keyhole is gui.keyhole is True
        assert fresh.vessel_colouring == gui.vessel_colouring == ("bone", 30.0)
        assert fresh.lesion_overlay.measurements == gui.lesion_overlay.measurements == ms
        # What the view adds that is no state: its background and orientation marker.
        fresh.renderer.SetBackground(*gui.renderer.GetBackground())
        fresh.set_orientation_marker(gui.orientation_marker_visible)
        a, b = render_to_array(gui, 120, 90), render_to_array(fresh, 120, 90)
        assert np.abs(a.astype(np.int16) - b.astype(np.int16)).mean() < 1.0
    finally:
        fresh.close()
        w.state.update(
            crop_box_lps=None, clip_plane=None, lesion=None, keyhole=False, vessel_colouring="off", measurements=()
        )
        settle(qtbot, w)
