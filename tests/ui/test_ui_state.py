"""The evented state and the binding helper, without any window (napari-style
adapter tests: the model and the binding are plain Python)."""

from __future__ import annotations

import numpy as np
import pytest

from viewer.core.extraction import ClassMasks
from viewer.core.state import Event, ViewerState, bind
from viewer.core.transfer import TransferFunction
from viewer.core.volume import Volume, axis_aligned_affine


def _volume(n: int = 4) -> Volume:
    return Volume(np.zeros((n, n, n), np.int16), (1.0, 1.0, 2.0), axis_aligned_affine((1.0, 1.0, 2.0)))


class FakeWidget:
    """Stands in for a Qt widget: a value and a change signal that fires on every set,
    the way QSlider.valueChanged does when setValue is called."""

    def __init__(self) -> None:
        self.value = None
        self.listeners: list = []
        self.n_set = 0

    def set_value(self, v) -> None:
        self.n_set += 1
        if v != self.value:
            self.value = v
            for cb in self.listeners:
                cb(v)

    def connect(self, cb) -> None:
        self.listeners.append(cb)


def test_every_field_has_a_change_event_and_emits_new_value() -> None:
    s = ViewerState()
    seen: dict[str, list] = {}
    for name in ViewerState.FIELDS:
        seen[name] = []
        s.event(name).connect(seen[name].append)
        assert getattr(s, f"{name}_changed") is s.event(name)
    vol = _volume()
    s.volume = vol
    s.crosshair_lps = (1, 2, 3)
    s.layout = "3d"
    s.show_identity = True
    s.clip_plane = ((0, 0, 0), (0, 0, 2))
    assert seen["volume"] == [vol]
    assert seen["crosshair_lps"] == [(1.0, 2.0, 3.0)]
    assert seen["layout"] == ["3d"]
    assert seen["show_identity"] == [True]
    # The normal is normalised.
    assert seen["clip_plane"] == [((0.0, 0.0, 0.0), (0.0, 0.0, 1.0))]


def test_assigning_an_equal_value_emits_nothing() -> None:
    s = ViewerState()
    calls: list = []
    s.crosshair_lps_changed.connect(calls.append)
    s.transfer_function_changed.connect(calls.append)
    s.crosshair_lps = (1.0, 2.0, 3.0)
    s.crosshair_lps = [1, 2, 3]  # same point, other container
    tf = s.transfer_function
    s.transfer_function = tf.with_changes()  # equal frozen dataclass
    assert len(calls) == 1
    s.transfer_function = tf.with_vessel_window(100, 400)
    assert len(calls) == 2


def test_masks_compare_by_identity() -> None:
    s = ViewerState()
    calls: list = []
    s.class_masks_changed.connect(calls.append)
    m = ClassMasks(np.zeros((2, 2, 2), bool), None, 650.0, (170.0, 600.0))
    s.class_masks = m
    s.class_masks = m
    s.class_masks = ClassMasks(m.bone.copy(), None, 650.0, (170.0, 600.0))
    assert len(calls) == 2


def test_bad_values_are_refused() -> None:
    s = ViewerState()
    with pytest.raises(AttributeError):
        s.not_a_field = 1
    with pytest.raises(ValueError):
        s.layout = "4x4"
    with pytest.raises(ValueError):
        s.crosshair_lps = (1, 2)
    with pytest.raises(TypeError):
        s.transfer_function = "Bone + vessels"
    with pytest.raises(ValueError):
        s.clip_plane = ((0, 0, 0), (0, 0, 0))


def test_a_failing_callback_does_not_stop_the_others_and_is_raised() -> None:
    ev = Event("x")
    got: list = []

    def bad(_v) -> None:
        raise RuntimeError("boom")

    def worse(_v) -> None:
        raise ValueError("second")

    ev.connect(bad)
    ev.connect(got.append)
    ev.connect(worse)
    # The others still run, and the first error reaches the caller (not swallowed).
    with pytest.raises(RuntimeError, match="boom"):
        ev.emit(5)
    assert got == [5]
    with ev.blocked():
        ev.emit(6)
    assert got == [5]


def test_a_failing_subscriber_reaches_the_code_that_set_the_field() -> None:
    s = ViewerState()
    seen: list = []

    def broken(_v) -> None:
        raise KeyError("subscriber bug")

    s.layout_changed.connect(broken)
    s.layout_changed.connect(seen.append)
    with pytest.raises(KeyError, match="subscriber bug"):
        s.layout = "3d" if s.layout != "3d" else "2x2"
    assert len(seen) == 1 and s.layout == seen[0]


def test_bind_two_ways_with_feedback_guard() -> None:
    s = ViewerState(TransferFunction(vessel_window_hu=(180, 600)))
    w = FakeWidget()
    tf_events: list = []
    s.transfer_function_changed.connect(tf_events.append)
    bind(
        s,
        "transfer_function",
        w.set_value,
        w.connect,
        to_widget=lambda tf: tf.vessel_window_hu,
        to_state=lambda v, tf: tf.with_vessel_window(*v),
    )
    assert w.value == (180.0, 600.0)  # shows the current value at once
    # widget -> state: exactly one state event, and the widget is not set back.
    n_set = w.n_set
    w.set_value((200.0, 500.0))
    assert s.transfer_function.vessel_window_hu == (200.0, 500.0)
    assert len(tf_events) == 1
    assert w.n_set == n_set + 1
    # state -> widget: the widget's echo does not write back into the state.
    s.transfer_function = s.transfer_function.with_vessel_window(150, 450)
    assert w.value == (150.0, 450.0)
    assert len(tf_events) == 2
    # Other fields of the transfer function are kept by the widget's edits.
    s.transfer_function = s.transfer_function.with_bone_threshold(900)
    w.set_value((210.0, 480.0))
    assert s.transfer_function.bone_threshold_hu == 900.0


def test_two_widgets_bound_to_one_field_stay_in_step() -> None:
    s = ViewerState()
    a, b = FakeWidget(), FakeWidget()
    for w in (a, b):
        bind(
            s,
            "transfer_function",
            w.set_value,
            w.connect,
            to_widget=lambda tf: int(tf.bone_threshold_hu),
            to_state=lambda v, tf: tf.with_bone_threshold(v),
        )
    a.set_value(777)
    assert b.value == 777
    assert s.transfer_function.bone_threshold_hu == 777.0
    b.set_value(800)
    assert a.value == 800


def test_bind_to_widget_none_leaves_widget_alone() -> None:
    s = ViewerState()
    w = FakeWidget()
    bind(s, "volume", w.set_value, w.connect, to_widget=lambda v: None if v is None else v.shape)
    assert w.value is None and w.n_set == 0
    s.volume = _volume(3)
    assert w.value == (3, 3, 3)


def test_update_emits_in_field_order() -> None:
    s = ViewerState()
    order: list[str] = []
    for name in ("volume", "crosshair_lps", "class_masks"):
        s.event(name).connect(lambda _v, n=name: order.append(n))
    s.update(
        crosshair_lps=(0, 0, 0),
        class_masks=ClassMasks(np.zeros((4, 4, 4), bool), None, 650.0, (170.0, 600.0)),
        volume=_volume(),
    )
    assert order == ["volume", "class_masks", "crosshair_lps"]


def test_bind_shows_the_widget_what_the_state_normalised() -> None:
    s = ViewerState()
    w = FakeWidget()
    bind(
        s,
        "transfer_function",
        w.set_value,
        w.connect,
        to_widget=lambda tf: tf.vessel_window_hu,
        to_state=lambda v, tf: tf.with_vessel_window(*v),
    )
    w.set_value((900.0, 300.0))  # typed upside down
    assert s.transfer_function.vessel_window_hu == (300.0, 900.0)
    assert w.value == (300.0, 900.0)
