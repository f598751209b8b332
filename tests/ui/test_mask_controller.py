"""The mask controller without a window: a ViewerState, a stand-in for the separation,
and the controller's own thread. Latest request wins, a cancel applies nothing and
reports nothing, a vessel-window edit computes nothing (the one mask policy)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from viewer.core.errors import ViewerError  # noqa: E402
from viewer.core.extraction import ClassMasks  # noqa: E402
from viewer.core.mask_policy import MaskSettings  # noqa: E402
from viewer.core.priority import BACKGROUND_NICE, thread_nice  # noqa: E402
from viewer.core.progress import ProgressFn  # noqa: E402
from viewer.core.state import ViewerState  # noqa: E402
from viewer.core.transfer import TransferFunction  # noqa: E402
from viewer.core.volume import Volume, axis_aligned_affine  # noqa: E402
from viewer.ui.mask_controller import MaskController  # noqa: E402

pytestmark = pytest.mark.gui

TIMEOUT_MS = 10_000


def _volume(nz: int = 6) -> Volume:
    hu = np.full((nz, 8, 8), -1000, np.int16)
    return Volume(hu, (1.0, 1.0, 1.0), axis_aligned_affine((1.0, 1.0, 1.0)))


def _masks_for(volume: Volume, s: MaskSettings) -> ClassMasks:
    return ClassMasks(
        np.zeros(volume.shape, bool),
        None,
        s.bone_threshold_hu,
        s.vessel_window_hu,
        contrast=True if s.real_ct else None,
        remove_table=s.remove_table,
    )


class FakeSeparation:
    """Stands in for the separation: records each call's settings; a call whose bone
    threshold is in ``hold`` waits until :meth:`release` (the test decides the order
    the jobs end in); a threshold in ``fail`` raises a ViewerError."""

    def __init__(self) -> None:
        self.calls: list[float] = []
        #: the nice value of the thread each call ran on (viewer.core.priority)
        self.nice: list[int | None] = []
        self.hold: dict[float, threading.Event] = {}
        self.fail: set[float] = set()
        self._lock = threading.Lock()

    def __call__(self, volume: Volume, s: MaskSettings, progress: ProgressFn) -> ClassMasks:
        with self._lock:
            self.calls.append(s.bone_threshold_hu)
            self.nice.append(thread_nice())
        gate = self.hold.get(s.bone_threshold_hu)
        if gate is not None:
            assert gate.wait(10), "the test never released this job"
        if s.bone_threshold_hu in self.fail:
            raise ViewerError("the separation failed on purpose")
        return _masks_for(volume, s)

    def release(self, bone_hu: float) -> None:
        self.hold[bone_hu].set()

    def release_all(self) -> None:
        for gate in self.hold.values():
            gate.set()


@pytest.fixture
def fake() -> FakeSeparation:
    return FakeSeparation()


@pytest.fixture
def setup(qapp, fake: FakeSeparation) -> Iterator[tuple[ViewerState, MaskController, dict[str, list[object]]]]:  # type: ignore[no-untyped-def]
    state = ViewerState(TransferFunction().with_changes(separated=True))
    ctl = MaskController(state, compute=fake, debounce_ms=20)
    seen: dict[str, list[object]] = {"ready": [], "failed": []}
    ctl.masks_ready.connect(lambda m: seen["ready"].append(m))
    ctl.failed.connect(lambda e: seen["failed"].append(e))
    yield state, ctl, seen
    fake.release_all()
    ctl.shutdown()
    ctl.deleteLater()


def test_a_new_volume_in_separated_mode_gets_masks_off_the_gui_thread(setup, fake, qtbot) -> None:  # type: ignore[no-untyped-def]
    state, ctl, seen = setup
    vol = _volume()
    state.volume = vol
    assert ctl.busy  # debounced, then on the runner's thread
    qtbot.waitUntil(lambda: state.class_masks is not None and not ctl.busy, timeout=TIMEOUT_MS)
    assert fake.calls == [state.transfer_function.bone_threshold_hu]
    assert state.class_masks.bone.shape == vol.shape
    assert seen["ready"] == [state.class_masks] and seen["failed"] == []
    assert ctl.is_current()


def test_a_job_runs_at_background_priority_and_the_gui_thread_keeps_its_own(setup, fake, qtbot) -> None:  # type: ignore[no-untyped-def]
    """The separation yields the cores to the window's renders: its job's thread runs at
    a higher nice value (Linux, where threads have one of their own); the GUI thread's
    stays what it was."""
    state, ctl, _seen = setup
    gui_nice = thread_nice()
    state.volume = _volume()
    qtbot.waitUntil(lambda: state.class_masks is not None and not ctl.busy, timeout=TIMEOUT_MS)
    assert thread_nice() == gui_nice
    if gui_nice is None:
        assert fake.nice == [None]
    else:
        assert fake.nice == [max(gui_nice, BACKGROUND_NICE)]


def test_quick_threshold_edits_make_one_job(setup, fake, qtbot) -> None:  # type: ignore[no-untyped-def]
    state, ctl, _seen = setup
    state.transfer_function = state.transfer_function.with_changes(separated=False)
    state.volume = _volume()
    assert not ctl.busy  # not separated: nothing to compute
    ctl.timer.setInterval(500)  # the drag below takes far less
    tf = state.transfer_function.with_changes(separated=True)
    for hu in (600.0, 610.0, 620.0):  # a slider drag
        state.transfer_function = tf.with_bone_threshold(hu)
    qtbot.waitUntil(lambda: state.class_masks is not None and not ctl.busy, timeout=TIMEOUT_MS)
    assert fake.calls == [620.0]
    assert state.class_masks.bone_threshold_hu == 620.0


def test_two_quick_requests_apply_only_the_latest_result(setup, fake, qtbot) -> None:  # type: ignore[no-untyped-def]
    state, ctl, seen = setup
    state.volume = _volume()
    tf = state.transfer_function
    fake.hold[500.0] = threading.Event()
    state.transfer_function = tf.with_bone_threshold(500.0)
    ctl.start_now()  # job 1 runs (held)
    qtbot.waitUntil(lambda: 500.0 in fake.calls, timeout=TIMEOUT_MS)
    fake.hold[700.0] = threading.Event()
    state.transfer_function = tf.with_bone_threshold(700.0)
    ctl.start_now()  # job 2 supersedes job 1
    qtbot.waitUntil(lambda: 700.0 in fake.calls, timeout=TIMEOUT_MS)
    # The older job ends first: its result must not be applied.
    fake.release(500.0)
    qtbot.wait(200)
    assert state.class_masks is None and seen["ready"] == []
    fake.release(700.0)
    qtbot.waitUntil(lambda: state.class_masks is not None and not ctl.busy, timeout=TIMEOUT_MS)
    assert state.class_masks.bone_threshold_hu == 700.0
    assert [m.bone_threshold_hu for m in seen["ready"]] == [700.0]  # type: ignore[attr-defined]
    assert seen["failed"] == []


def test_cancel_applies_nothing_and_reports_no_error(setup, fake, qtbot) -> None:  # type: ignore[no-untyped-def]
    state, ctl, seen = setup
    fake.hold[650.0] = threading.Event()
    state.volume = _volume()
    qtbot.waitUntil(lambda: 650.0 in fake.calls, timeout=TIMEOUT_MS)
    busy: list[bool] = []
    ctl.busy_changed.connect(busy.append)
    ctl.cancel()
    assert not ctl.busy and busy == [False]
    fake.release(650.0)
    qtbot.waitUntil(lambda: not ctl.runner._threads, timeout=TIMEOUT_MS)  # the thread ended
    qtbot.wait(50)
    assert state.class_masks is None
    assert seen["ready"] == [] and seen["failed"] == []


def test_a_failed_job_is_reported_and_leaves_no_masks(setup, fake, qtbot) -> None:  # type: ignore[no-untyped-def]
    state, ctl, seen = setup
    fake.fail.add(650.0)
    state.volume = _volume()
    qtbot.waitUntil(lambda: bool(seen["failed"]), timeout=TIMEOUT_MS)
    assert "failed on purpose" in str(seen["failed"][0])
    assert state.class_masks is None and not ctl.busy


def test_a_vessel_window_edit_restyles_without_a_job(setup, fake, qtbot) -> None:  # type: ignore[no-untyped-def]
    state, ctl, _seen = setup
    state.volume = _volume()
    qtbot.waitUntil(lambda: state.class_masks is not None and not ctl.busy, timeout=TIMEOUT_MS)
    masks = state.class_masks
    state.transfer_function = state.transfer_function.with_vessel_window(250.0, 700.0)
    assert not ctl.busy
    qtbot.wait(60)
    assert state.class_masks is masks and len(fake.calls) == 1
    # A bone-threshold edit does make new masks.
    state.transfer_function = state.transfer_function.with_bone_threshold(700.0)
    qtbot.waitUntil(lambda: state.class_masks is not masks and not ctl.busy, timeout=TIMEOUT_MS)
    assert fake.calls == [650.0, 700.0]


def test_masks_that_came_with_a_load_are_adopted(setup, fake, qtbot) -> None:  # type: ignore[no-untyped-def]
    state, ctl, _seen = setup
    vol = _volume()
    ctl.drop()
    state.volume = vol
    loaded = _masks_for(vol, MaskSettings.of(state.transfer_function))
    ctl.adopt(vol, loaded)
    assert state.class_masks is loaded and not ctl.busy and ctl.is_current()
    qtbot.wait(60)
    assert fake.calls == []
    # Masks of older thresholds are shown, and newer ones follow.
    vol2 = _volume(nz=7)
    ctl.drop()
    state.volume = vol2
    old = _masks_for(vol2, MaskSettings.of(state.transfer_function.with_bone_threshold(400.0)))
    ctl.adopt(vol2, old)
    assert state.class_masks is old and ctl.busy
    qtbot.waitUntil(lambda: state.class_masks is not old and not ctl.busy, timeout=TIMEOUT_MS)
    assert state.class_masks.bone_threshold_hu == state.transfer_function.bone_threshold_hu


def test_a_result_for_a_replaced_volume_is_dropped(setup, fake, qtbot) -> None:  # type: ignore[no-untyped-def]
    state, ctl, seen = setup
    fake.hold[650.0] = threading.Event()
    state.volume = _volume(nz=6)
    qtbot.waitUntil(lambda: 650.0 in fake.calls, timeout=TIMEOUT_MS)
    # Another scan replaces it while the job runs; the old job is cancelled and its
    # masks, when they arrive, must not be paired with the new scan.
    gate = fake.hold.pop(650.0)
    new = _volume(nz=9)
    state.volume = new
    gate.set()
    qtbot.waitUntil(lambda: state.class_masks is not None and not ctl.busy, timeout=TIMEOUT_MS)
    assert state.class_masks.bone.shape == new.shape
    assert all(m.bone.shape == new.shape for m in seen["ready"])  # type: ignore[attr-defined]


def test_a_big_scans_first_separation_sends_preview_masks_first(qapp, fake, qtbot) -> None:  # type: ignore[no-untyped-def]
    """From ``preview_min_voxels`` on, the first job of a scan makes preview masks
    before the full ones and sends them (``preview_ready``) while the full ones are
    made; so does a new bone threshold afterwards (the masks held no longer fit), a new
    vessel window (which restyles them) makes none, and preview masks of a superseded
    job are not sent."""
    from viewer.core.extraction import PreviewMasks

    state = ViewerState(TransferFunction().with_changes(separated=True))
    previews: list[float] = []
    preview_gate = threading.Event()
    preview_gate.set()

    def preview(volume: Volume, s: MaskSettings, progress: ProgressFn) -> PreviewMasks:
        previews.append(s.bone_threshold_hu)
        assert preview_gate.wait(10), "the test never opened the preview gate"
        return PreviewMasks(_masks_for(volume, s), 2, 1, s)

    ctl = MaskController(state, compute=fake, debounce_ms=20, preview=preview)
    ctl.preview_min_voxels = 300  # the 6 x 8 x 8 test volume is "big"
    sent: list[tuple[object, PreviewMasks]] = []
    ctl.preview_ready.connect(lambda v, p: sent.append((v, p)))
    try:
        bone = state.transfer_function.bone_threshold_hu
        fake.hold[bone] = threading.Event()
        vol = _volume()
        state.volume = vol
        qtbot.waitUntil(lambda: len(sent) == 1, timeout=TIMEOUT_MS)
        assert sent[0][0] is vol and sent[0][1].settings == MaskSettings.of(state.transfer_function)
        assert state.class_masks is None  # the full masks wait for the test
        fake.release(bone)
        qtbot.waitUntil(lambda: state.class_masks is not None and not ctl.busy, timeout=TIMEOUT_MS)
        # a new bone threshold on the same scan: the masks held no longer fit, so the
        # new threshold gets preview masks first too
        state.transfer_function = state.transfer_function.with_bone_threshold(700.0)
        qtbot.waitUntil(lambda: state.class_masks.bone_threshold_hu == 700.0 and not ctl.busy, timeout=TIMEOUT_MS)
        assert previews == [bone, 700.0] and len(sent) == 2 and sent[1][1].settings.bone_threshold_hu == 700.0
        # a new vessel window: the masks held restyle, no job and no preview
        lo, hi = state.transfer_function.vessel_window_hu
        state.transfer_function = state.transfer_function.with_vessel_window(lo + 10.0, hi)
        qtbot.wait(200)
        assert previews == [bone, 700.0] and len(sent) == 2 and not ctl.busy
        # a small scan: no preview at all
        state.volume = _volume(nz=2)
        qtbot.waitUntil(lambda: state.class_masks is not None and not ctl.busy, timeout=TIMEOUT_MS)
        assert previews == [bone, 700.0]
        # nobody draws previews (the window's 3D view on a GPU): none is made
        ctl.preview_wanted = lambda: False
        state.volume = _volume(nz=5)  # (big enough: 320 voxels)
        qtbot.waitUntil(lambda: state.class_masks is not None and not ctl.busy, timeout=TIMEOUT_MS)
        assert previews == [bone, 700.0]
        ctl.preview_wanted = None
        # a superseded first job: its preview is made but not sent
        preview_gate.clear()
        first = _volume()
        state.volume = first
        qtbot.waitUntil(lambda: len(previews) == 3, timeout=TIMEOUT_MS)
        second = _volume()
        state.volume = second  # replaces the scan while the first job makes its preview
        preview_gate.set()
        qtbot.waitUntil(lambda: state.class_masks is not None and not ctl.busy, timeout=TIMEOUT_MS)
        assert [v for v, _p in sent[2:]] == [second]
    finally:
        preview_gate.set()
        fake.release_all()
        ctl.shutdown()
        ctl.deleteLater()
