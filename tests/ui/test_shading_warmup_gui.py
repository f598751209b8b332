"""What the window prepares off its GUI thread and shows before it is done (issue 9):

* the 3D view's workers compute the shading gradients of new scalars
  (viewer.render.shading_warmup), so the GUI thread's first render after a new scan or a
  re-encode does not freeze for them; meanwhile the new volume is drawn unshaded;
* a big scan is shown before its separation is done: the load publishes a volume over
  ``LOAD_MASKS_MAX_VOXELS`` without class masks, the window draws it at once with bone
  only -- no vessel red before the separation says what is vessel -- and the separated
  picture follows when the mask controller's job is done.

Real window under Xvfb (pytest-xvfb), small phantom (standing in for a big scan, the
limit lowered for the test)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import numpy as np
import pytest

os.environ.setdefault("VTK_SMP_BACKEND_IN_USE", "STDThread")

pytest.importorskip("pytestqt")
from PySide6.QtCore import QEvent, QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

if not os.environ.get("DISPLAY"):
    pytest.skip("needs an X server (run under pytest-xvfb or xvfb-run)", allow_module_level=True)

import viewer.ui.load_controller as load_controller  # noqa: E402
from viewer.ui.main_window import MainWindow  # noqa: E402

pytestmark = pytest.mark.gui

TIMEOUT_MS = 60_000


@pytest.fixture()
def window(qapp: QApplication, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MainWindow]:
    cfg = tmp_path_factory.mktemp("config")
    os.environ["VESSEL_VIEWER_CONFIG_DIR"] = str(cfg)
    w = MainWindow(settings=QSettings(str(cfg / "settings.ini"), QSettings.Format.IniFormat))
    w.resize(900, 650)
    w.show()
    w.view3d.initialize()
    yield w
    w.close()
    w.deleteLater()
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


def _red(img: np.ndarray) -> np.ndarray:
    r, g, b = (img[..., i].astype(int) for i in range(3))
    return (r > 120) & (r > 2 * g) & (r > 2 * b)


def _grab_now(v, qtbot) -> np.ndarray:  # type: ignore[no-untyped-def]
    """The 3D view's pixels after one more full-quality render of what it shows now."""
    n = v.n_renders
    v.request_render()
    qtbot.waitUntil(lambda: v.n_renders > n and not v.interactive, timeout=TIMEOUT_MS)
    qtbot.wait(30)
    return v.grab_image()


def _frame(w: MainWindow, qtbot) -> np.ndarray:  # type: ignore[no-untyped-def]
    """The 3D view's pixels after a full-quality render, once the view's workers are idle."""
    v = w.view3d
    qtbot.waitUntil(lambda: w.state.volume is not None and not w.loading and not v.scene_busy, timeout=TIMEOUT_MS)
    return _grab_now(v, qtbot)


def test_gui_thread_renders_compute_no_gradients(window: MainWindow, qtbot) -> None:  # type: ignore[no-untyped-def]
    w = window
    gui = threading.get_ident()
    starts: list[int] = []
    hook = w.view3d.scene.on_gradient_progress

    def spy(stage: str) -> None:
        if stage == "start":
            starts.append(threading.get_ident())
        if hook is not None:
            hook(stage)

    w.view3d.scene.on_gradient_progress = spy

    w.action_phantom_small.trigger()
    first = _frame(w, qtbot)
    assert (first.astype(int).sum(axis=2) > 60).mean() > 0.01, "black 3D view"
    assert "shading_warmup_s" in w.view3d.scene.last_timings_s, "the worker did not compute the gradients"
    # A re-encode (separated mode on, then off) brings new scalars: again on the worker.
    w.set_separated(not w.state.transfer_function.separated)
    qtbot.waitUntil(lambda: not w.view3d.scene_busy, timeout=TIMEOUT_MS)
    second = _frame(w, qtbot)
    assert np.abs(first.astype(int) - second.astype(int)).mean() > 0.5, "the mode switch changed nothing"
    assert gui not in starts, f"{starts.count(gui)} gradient computations on the GUI thread"


def test_new_scalars_show_at_once_unshaded_then_shaded(window: MainWindow, qtbot, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A coarse first frame that refines by itself: while the shading worker runs, the
    new volume is drawn unshaded (nothing for the GUI's render to compute); when the
    gradients arrive, the same view is drawn shaded."""
    import viewer.ui.view3d as view3d_mod

    w = window
    gate = threading.Event()
    real = view3d_mod.warm_mapper

    def held(*args, **kwargs):  # type: ignore[no-untyped-def]
        if kwargs.get("shade", True):  # the shading job waits; the unshaded first draw does not
            assert gate.wait(TIMEOUT_MS / 1000), "the test never opened the gate"
        return real(*args, **kwargs)

    monkeypatch.setattr(view3d_mod, "warm_mapper", held)
    w.action_phantom_small.trigger()
    v = w.view3d
    try:
        qtbot.waitUntil(lambda: v.shading_pending and not w.loading, timeout=TIMEOUT_MS)
        assert v.scene_busy and v.scene.shading_deferred and v.scene.has_scalars
        n = v.n_renders
        v.request_render()
        qtbot.waitUntil(lambda: v.n_renders > n and not v.interactive, timeout=TIMEOUT_MS)
        qtbot.wait(30)
        flat = v.grab_image()
        assert (flat.astype(int).sum(axis=2) > 60).mean() > 0.01, "nothing drawn while the shading is made"
    finally:
        gate.set()
    qtbot.waitUntil(lambda: not v.scene_busy, timeout=TIMEOUT_MS)
    assert not v.scene.shading_deferred and "shading_warmup_s" in v.scene.last_timings_s
    shaded = _frame(w, qtbot)
    assert np.abs(flat.astype(int) - shaded.astype(int)).mean() > 0.5, "shading changed nothing"


def _count_shading(monkeypatch) -> list[object]:  # type: ignore[no-untyped-def]
    """The buffers the shading worker made gradients for (warm_mapper with shading)."""
    import viewer.ui.view3d as view3d_mod

    real = view3d_mod.warm_mapper
    shaded: list[object] = []

    def counting(buffer, *args, **kwargs):  # type: ignore[no-untyped-def]
        if kwargs.get("shade", True):
            shaded.append(buffer)
        return real(buffer, *args, **kwargs)

    monkeypatch.setattr(view3d_mod, "warm_mapper", counting)
    return shaded


def test_a_big_scan_is_drawn_bone_only_before_its_separation(window: MainWindow, qtbot, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A scan over LOAD_MASKS_MAX_VOXELS is drawn at once, bone only, while its masks
    are made; the bone-only scalars get no shading gradients of their own (they are
    replaced when the masks come: seconds of both cores saved at real size), the
    separated ones do."""
    w = window
    monkeypatch.setattr(load_controller, "LOAD_MASKS_MAX_VOXELS", 1000)
    gate = threading.Event()
    compute = w.mask_controller._compute

    def held(*args, **kwargs):  # type: ignore[no-untyped-def]
        assert gate.wait(TIMEOUT_MS / 1000), "the test never opened the gate"
        return compute(*args, **kwargs)

    monkeypatch.setattr(w.mask_controller, "_compute", held)
    shaded = _count_shading(monkeypatch)
    if not w.state.transfer_function.separated:
        w.set_separated(True)
    first: list[bool] = []  # masks present when the volume was first drawn?
    w.first_frame.connect(lambda: first.append(w.state.class_masks is not None))
    w.action_phantom_small.trigger()
    try:
        qtbot.waitUntil(lambda: w.state.volume is not None and not w.loading, timeout=TIMEOUT_MS)
        assert w.state.class_masks is None, "the load separated a volume over the limit"
        qtbot.waitUntil(lambda: w.mask_controller.runner.busy, timeout=TIMEOUT_MS)
        # (the view stays busy until the masks come -- its shading waits for them --
        # so this frame is taken as soon as the bone-only scalars are in)
        v = w.view3d
        qtbot.waitUntil(
            lambda: v.scene.has_scalars and v.shading_pending and not v.scene_busy_preparing, timeout=TIMEOUT_MS
        )
        early = _grab_now(v, qtbot)
        assert w.state.class_masks is None  # still separating
        drawn = early.astype(int).sum(axis=2) > 60
        assert drawn.mean() > 0.005, "nothing drawn before the separation"
        assert _red(early).mean() < 0.0005, "vessel red before the separation"
        assert first == [False], "first_frame not reported for the bone-only frame"
        assert w.view3d.scene.shading_deferred and shaded == [], "gradients made for the bone-only scalars"
    finally:
        gate.set()
    qtbot.waitUntil(lambda: w.state.class_masks is not None, timeout=TIMEOUT_MS)
    late = _frame(w, qtbot)
    assert _red(late).mean() > 0.001, "no vessels after the separation"
    assert len(shaded) == 1 and shaded[0] is w.view3d.scene.buffer, "the separated scalars were not shaded once"
    assert not w.view3d.scene.shading_deferred


def test_scalars_whose_masks_fail_are_shaded_all_the_same(window: MainWindow, qtbot, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """When the separation of a big scan fails, the bone-only scalars that waited for
    it get their shading (the view is not left flat)."""
    from viewer.core.errors import ViewerError

    w = window
    monkeypatch.setattr(load_controller, "LOAD_MASKS_MAX_VOXELS", 1000)

    def failing(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise ViewerError("made to fail")

    monkeypatch.setattr(w.mask_controller, "_compute", failing)
    shaded = _count_shading(monkeypatch)
    if not w.state.transfer_function.separated:
        w.set_separated(True)
    w.action_phantom_small.trigger()
    qtbot.waitUntil(lambda: w.state.volume is not None and not w.loading, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: not w.mask_controller.busy and not w.view3d.scene_busy, timeout=TIMEOUT_MS)
    assert w.state.class_masks is None
    qtbot.waitUntil(lambda: not w.view3d.scene.shading_deferred, timeout=TIMEOUT_MS)
    assert len(shaded) == 1 and shaded[0] is w.view3d.scene.buffer


def test_a_big_scan_gets_a_coarse_first_frame_that_refines(window: MainWindow, qtbot, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A scan of PREVIEW_MIN_VOXELS or more is first drawn from every second voxel while
    its full-size mapper is warmed (issue 9: start to first frame); the first-frame
    signal fires on it, and the full scalars replace it. Here the limit is lowered to
    the small phantom, and the full warm-up is held until the coarse frame was seen."""
    import viewer.ui.view3d as view3d_mod

    w = window
    v = w.view3d
    monkeypatch.setattr(view3d_mod, "PREVIEW_MIN_VOXELS", 1)
    gate = threading.Event()
    real = view3d_mod.warm_mapper
    full_shapes: list[tuple[int, ...]] = []

    def held(buffer, *args, **kwargs):  # type: ignore[no-untyped-def]
        if not kwargs.get("shade", True) and buffer.shape[0] > 150:  # the full unshaded warm-up
            full_shapes.append(buffer.shape)
            assert gate.wait(TIMEOUT_MS / 1000), "the test never opened the gate"
        return real(buffer, *args, **kwargs)

    monkeypatch.setattr(view3d_mod, "warm_mapper", held)
    firsts: list[bool] = []
    w.first_frame.connect(lambda: firsts.append(v.scene.previewing))
    w.action_phantom_small.trigger()
    try:
        qtbot.waitUntil(lambda: v.scene.previewing and bool(firsts), timeout=TIMEOUT_MS)
        assert firsts == [True] and not v.scene.has_scalars and v.n_previews == 1
        coarse = _grab_now(v, qtbot)
    finally:
        gate.set()
    full = _frame(w, qtbot)
    assert not v.scene.previewing and v.scene.has_scalars and full_shapes
    assert v.scene.renderer.GetVolumes().GetNumberOfItems() == 1
    lit_c = coarse.astype(int).sum(axis=2) > 60
    lit_f = full.astype(int).sum(axis=2) > 60
    assert lit_c.mean() > 0.01, "black coarse frame"
    # the same place and extent (the full one is shaded by now, and sharper)
    for axis in (0, 1):
        ic, jf = np.flatnonzero(lit_c.any(axis=1 - axis)), np.flatnonzero(lit_f.any(axis=1 - axis))
        size = lit_f.shape[axis]
        assert abs(int(ic[0]) - int(jf[0])) <= 0.03 * size and abs(int(ic[-1]) - int(jf[-1])) <= 0.03 * size
    assert (lit_c & lit_f).sum() / (lit_c | lit_f).sum() > 0.6


def test_a_coarse_first_frame_is_dropped_when_its_scalars_fail(window: MainWindow, qtbot, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The full-size warm-up fails after the coarse frame was shown: the view reports
    the failure and does not leave the coarse picture standing in for scalars that
    will not come."""
    import viewer.ui.view3d as view3d_mod
    from viewer.core.errors import ViewerError

    w = window
    v = w.view3d
    monkeypatch.setattr(view3d_mod, "PREVIEW_MIN_VOXELS", 1)
    real = view3d_mod.warm_mapper

    def failing(buffer, *args, **kwargs):  # type: ignore[no-untyped-def]
        if not kwargs.get("shade", True) and buffer.shape[0] > 150:  # the full unshaded warm-up
            raise ViewerError("made to fail by the test")
        return real(buffer, *args, **kwargs)

    monkeypatch.setattr(view3d_mod, "warm_mapper", failing)
    failures: list[object] = []
    previews: list[bool] = []
    v.scene_failed.connect(lambda e: failures.append(e))
    v._preview_ready.connect(lambda *_a: previews.append(True))
    w.action_phantom_small.trigger()
    qtbot.waitUntil(lambda: bool(failures), timeout=TIMEOUT_MS)
    assert previews, "no coarse frame was made"
    assert v.n_previews == 1
    assert not v.scene.previewing and v.scene.renderer.GetVolumes().GetNumberOfItems() <= 1


def _stride2_preview(volume, settings, progress):  # type: ignore[no-untyped-def]
    """Preview masks of every second slice whatever the voxel size (the small phantom's
    1.5 mm pixels are too coarse for the real rule, ``preview_stride``)."""
    from viewer.core.extraction import PreviewMasks, class_masks_for

    sx, sy, sz = volume.spacing_mm
    part = np.ascontiguousarray(volume.hu[1::2])
    return PreviewMasks(class_masks_for(part, (sx, sy, 2 * sz), settings, progress), 2, 1, settings)


def _big_scan_setup(w: MainWindow, monkeypatch, compute) -> None:  # type: ignore[no-untyped-def]
    """The small phantom stands in for a big scan: loaded without masks, its first
    separation makes preview masks first; ``compute`` stands in for the full masks."""
    monkeypatch.setattr(load_controller, "LOAD_MASKS_MAX_VOXELS", 1000)
    monkeypatch.setattr(w.mask_controller, "preview_min_voxels", 1)
    monkeypatch.setattr(w.mask_controller, "_preview", _stride2_preview)
    monkeypatch.setattr(w.mask_controller, "_compute", compute)
    if not w.state.transfer_function.separated:
        w.set_separated(True)


def _coarse_then_full(w: MainWindow, qtbot, coarse: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Check a coarse separated frame (red vessels, not black), wait for the full masks
    and return the full frame."""
    assert _red(coarse).mean() > 0.0005, "no red vessels in the coarse separated frame"
    assert (coarse.astype(int).sum(axis=2) > 60).mean() > 0.01, "black coarse frame"
    qtbot.waitUntil(lambda: w.state.class_masks is not None, timeout=TIMEOUT_MS)
    return _frame(w, qtbot)


def _failing_compute():  # type: ignore[no-untyped-def]
    """A mask computation that fails (a ViewerError) once the returned gate opens."""
    from viewer.core.errors import ViewerError

    gate = threading.Event()

    def failing(*args, **kwargs):  # type: ignore[no-untyped-def]
        assert gate.wait(TIMEOUT_MS / 1000), "the test never opened the gate"
        raise ViewerError("made to fail by the test")

    return gate, failing


def _gated_compute(w: MainWindow):  # type: ignore[no-untyped-def]
    """The window's mask computation held until the returned gate opens."""
    gate = threading.Event()
    compute = w.mask_controller._compute

    def held(*args, **kwargs):  # type: ignore[no-untyped-def]
        assert gate.wait(TIMEOUT_MS / 1000), "the test never opened the gate"
        return compute(*args, **kwargs)

    return gate, held


def test_a_big_scan_shows_a_coarse_separated_frame_before_its_full_masks(
    window: MainWindow, qtbot, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """Preview masks (every few slices) come before the whole separation: the view draws
    a coarse separated frame -- bone and red vessels -- over the bone-only one, and the
    full separated scalars replace it (one volume left in the renderer)."""
    w = window
    v = w.view3d
    gate, held = _gated_compute(w)
    _big_scan_setup(w, monkeypatch, held)
    w.action_phantom_small.trigger()
    try:
        qtbot.waitUntil(lambda: v.n_separated_previews == 1 and v.scene.previewing_over, timeout=TIMEOUT_MS)
        assert w.state.class_masks is None  # the full masks are still on their way
        coarse = _grab_now(v, qtbot)
    finally:
        gate.set()
    full = _coarse_then_full(w, qtbot, coarse)
    assert not v.scene.previewing and v.scene.class_masks is w.state.class_masks
    assert v.scene.renderer.GetVolumes().GetNumberOfItems() == 1
    assert _red(full).mean() > 0.0005


def test_a_coarse_separated_frame_is_taken_back_when_the_separation_fails(
    window: MainWindow, qtbot, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """The full masks fail after the coarse separated frame was shown: the bone-only
    frame comes back (no red standing in for a separation that did not happen)."""
    w = window
    v = w.view3d
    gate, failing = _failing_compute()
    _big_scan_setup(w, monkeypatch, failing)
    w.action_phantom_small.trigger()
    try:
        qtbot.waitUntil(lambda: v.scene.previewing_over, timeout=TIMEOUT_MS)
    finally:
        gate.set()
    qtbot.waitUntil(lambda: not w.mask_controller.busy and not v.scene.previewing, timeout=TIMEOUT_MS)
    assert w.state.class_masks is None and v.scene.has_scalars
    img = _frame(w, qtbot)
    assert _red(img).mean() < 0.0005, "red left after the separation failed"
    assert (img.astype(int).sum(axis=2) > 60).mean() > 0.005, "the bone-only frame did not come back"


def test_a_coarse_separated_frame_that_comes_first_waits_for_the_first_scalars(
    window: MainWindow, qtbot, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """Preview masks ready before the scan's first (bone-only) scalars: the coarse
    separated frame is held and drawn over them when they arrive -- not replaced by
    them at once."""
    import viewer.ui.view3d as view3d_mod

    w = window
    v = w.view3d
    masks_gate, warm_gate = threading.Event(), threading.Event()
    compute = w.mask_controller._compute

    def held_masks(*args, **kwargs):  # type: ignore[no-untyped-def]
        assert masks_gate.wait(TIMEOUT_MS / 1000), "the test never opened the gate"
        return compute(*args, **kwargs)

    real = view3d_mod.warm_mapper

    def held_warm(buffer, *args, **kwargs):  # type: ignore[no-untyped-def]
        if not kwargs.get("shade", True) and buffer.shape[0] > 150:  # the full unshaded warm-up
            assert warm_gate.wait(TIMEOUT_MS / 1000), "the test never opened the gate"
        return real(buffer, *args, **kwargs)

    _big_scan_setup(w, monkeypatch, held_masks)
    monkeypatch.setattr(view3d_mod, "warm_mapper", held_warm)
    w.action_phantom_small.trigger()
    try:
        qtbot.waitUntil(lambda: v._separated_preview_held is not None, timeout=TIMEOUT_MS)
        assert not v.scene.has_scalars and v.n_separated_previews == 0
        warm_gate.set()
        qtbot.waitUntil(lambda: v.scene.previewing_over, timeout=TIMEOUT_MS)
        assert v.scene.has_scalars and v.n_separated_previews == 1 and v._separated_preview_held is None
        assert w.state.class_masks is None
    finally:
        warm_gate.set()
        masks_gate.set()
    qtbot.waitUntil(lambda: w.state.class_masks is not None and not v.scene.previewing, timeout=TIMEOUT_MS)


def test_a_new_bone_threshold_on_a_big_scan_shows_a_coarse_separated_frame_first(
    window: MainWindow, qtbot, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """A new bone threshold on a big separated scan: the masks held no longer fit, so
    the job makes preview masks for the new threshold first and the view draws them as
    a coarse separated frame until the full masks for it come. A new vessel window
    (which restyles the masks held) makes none."""
    w = window
    v = w.view3d
    gate, held = _gated_compute(w)
    gate.set()
    _big_scan_setup(w, monkeypatch, held)
    w.action_phantom_small.trigger()
    qtbot.waitUntil(lambda: w.state.class_masks is not None and not v.scene.previewing, timeout=TIMEOUT_MS)
    _frame(w, qtbot)
    assert v.n_separated_previews == 1
    first_masks = w.state.class_masks
    gate.clear()
    try:
        tf = w.state.transfer_function
        w.state.transfer_function = tf.with_bone_threshold(tf.bone_threshold_hu + 100.0)
        qtbot.waitUntil(lambda: v.n_separated_previews == 2 and v.scene.previewing_over, timeout=TIMEOUT_MS)
        assert w.state.class_masks is first_masks  # the new full masks are still on their way
        coarse = _grab_now(v, qtbot)
    finally:
        gate.set()
    assert _red(coarse).mean() > 0.0005, "no red vessels in the coarse separated frame"
    assert (coarse.astype(int).sum(axis=2) > 60).mean() > 0.01, "black coarse frame"
    want = w.state.transfer_function.bone_threshold_hu
    qtbot.waitUntil(
        lambda: w.state.class_masks is not None and w.state.class_masks.bone_threshold_hu == want,
        timeout=TIMEOUT_MS,
    )
    _frame(w, qtbot)
    assert not v.scene.previewing and v.scene.class_masks is w.state.class_masks
    assert v.scene.renderer.GetVolumes().GetNumberOfItems() == 1
    # a new vessel window: the held masks restyle (no new job), no coarse frame
    held_masks = w.state.class_masks
    tf = w.state.transfer_function
    lo, hi = tf.vessel_window_hu
    w.state.transfer_function = tf.with_vessel_window(lo + 10.0, hi)
    _frame(w, qtbot)
    qtbot.wait(300)
    assert not w.mask_controller.busy and w.state.class_masks is held_masks
    assert v.n_separated_previews == 2 and not v.scene.previewing


def test_a_big_scan_waiting_for_its_masks_is_drawn_coarse_not_bone_only_in_full(
    window: MainWindow, qtbot, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """A big scan in separated mode whose masks are on their way: its coarse first frame
    stands in for the bone-only scalars, which are never made in full (a volume's
    worth of memory, and a core's work beside the separation); the coarse separated
    frame replaces it (the first separated frame), then the full separated scalars."""
    import viewer.ui.view3d as view3d_mod

    w = window
    v = w.view3d
    gate, held = _gated_compute(w)
    _big_scan_setup(w, monkeypatch, held)
    monkeypatch.setattr(view3d_mod, "PREVIEW_MIN_VOXELS", 1)
    real = view3d_mod.warm_mapper
    full_warm: list[tuple[int, ...]] = []

    def watched(buffer, *args, **kwargs):  # type: ignore[no-untyped-def]
        if buffer.shape[0] > 150:  # a full-size warm-up (the coarse ones are half as deep)
            full_warm.append(buffer.shape)
        return real(buffer, *args, **kwargs)

    monkeypatch.setattr(view3d_mod, "warm_mapper", watched)
    firsts: list[bool] = []
    separated_firsts: list[bool] = []
    w.first_frame.connect(lambda: firsts.append(v.scene.previewing))
    w.first_separated_frame.connect(lambda: separated_firsts.append(v.scene.previewing_classes))
    w.action_phantom_small.trigger()
    try:
        qtbot.waitUntil(lambda: v.n_separated_previews == 1 and v.scene.previewing_classes, timeout=TIMEOUT_MS)
        assert w.state.class_masks is None  # the full masks are still on their way
        assert not v.scene.has_scalars and full_warm == [], "bone-only scalars were made in full"
        assert firsts == [True]
        coarse = _grab_now(v, qtbot)
        qtbot.waitUntil(lambda: bool(separated_firsts), timeout=TIMEOUT_MS)
        assert separated_firsts == [True]
    finally:
        gate.set()
    full = _coarse_then_full(w, qtbot, coarse)
    assert not v.scene.previewing and v.scene.has_scalars and v.scene.class_masks is w.state.class_masks
    assert v.scene.renderer.GetVolumes().GetNumberOfItems() == 1
    assert _red(full).mean() > 0.0005


def test_a_big_scan_whose_masks_fail_gets_its_bone_only_scalars_after_all(
    window: MainWindow, qtbot, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """The masks of a big scan drawn coarse while they were made fail: the bone-only
    scalars are made in full then (no coarse or red picture left standing)."""
    import viewer.ui.view3d as view3d_mod

    w = window
    v = w.view3d
    gate, failing = _failing_compute()
    _big_scan_setup(w, monkeypatch, failing)
    monkeypatch.setattr(view3d_mod, "PREVIEW_MIN_VOXELS", 1)
    w.action_phantom_small.trigger()
    try:
        qtbot.waitUntil(lambda: v.scene.previewing_classes, timeout=TIMEOUT_MS)
        assert not v.scene.has_scalars
    finally:
        gate.set()
    qtbot.waitUntil(
        lambda: not w.mask_controller.busy and v.scene.has_scalars and not v.scene.previewing, timeout=TIMEOUT_MS
    )
    assert w.state.class_masks is None
    img = _frame(w, qtbot)
    assert _red(img).mean() < 0.0005, "red left after the separation failed"
    assert (img.astype(int).sum(axis=2) > 60).mean() > 0.005, "the bone-only frame did not come"
