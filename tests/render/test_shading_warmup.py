"""Shading gradients computed on a worker thread (viewer.render.shading_warmup, issue 9):
the scene that adopts a warmed mapper renders the same picture without computing its
gradients in its own render; nothing is adopted that does not fit."""

from __future__ import annotations

import os

os.environ.setdefault("VTK_SMP_BACKEND_IN_USE", "STDThread")

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np
import pytest
from render_helpers import Leg

from viewer.core.presets import default_preset
from viewer.core.transfer import TransferFunction
from viewer.render.offscreen import render_to_array
from viewer.render.scene import Scene
from viewer.render.scene_data import prepare_scene
from viewer.render.shading_warmup import WarmMapper, needs_gradients, warm_mapper


@pytest.fixture(scope="module")
def tf() -> TransferFunction:
    return default_preset().with_changes(separated=True)


def _gradient_starts(scene: Scene) -> list[str]:
    seen: list[str] = []
    scene.on_gradient_progress = lambda stage: seen.append(stage) if stage == "start" else None
    return seen


def _scene(leg: Leg, tf: TransferFunction, *, warm: bool) -> tuple[Scene, list[str], WarmMapper | None]:
    s = Scene(offscreen=True)
    s.set_volume(leg.volume, prepare=False)
    prepared = prepare_scene(s.scene_inputs(tf=tf))
    assert prepared.buffer is not None
    w = None
    if warm:
        # On a worker thread, as the window does it.
        with ThreadPoolExecutor(1) as pool:
            w = pool.submit(warm_mapper, prepared.buffer, leg.volume.spacing_mm, tf, box=prepared.buffer_box).result()
        assert w is not None and w.computed, "the warm-up computed no gradients"
        prepared = replace(prepared, warm=w)
    starts = _gradient_starts(s)
    assert s.apply_prepared(prepared)
    return s, starts, w


def test_an_adopted_warm_mapper_renders_the_same_picture_without_computing_gradients(
    leg: Leg, tf: TransferFunction
) -> None:
    plain, plain_starts, _ = _scene(leg, tf, warm=False)
    warmed, warm_starts, w = _scene(leg, tf, warm=True)
    try:
        assert w is not None and warmed.mapper is w.mapper
        for s in (plain, warmed):
            s.set_view("anterior")
        a = render_to_array(plain, 200, 160)
        b = render_to_array(warmed, 200, 160)
        assert plain_starts == ["start"], "the plain scene computes its gradients in its render"
        assert warm_starts == [], "the adopted mapper computed its gradients again"
        assert (a.astype(int).sum(axis=2) > 60).mean() > 0.02, "black picture"
        diff = np.abs(a.astype(float) - b.astype(float)).mean() / 255.0
        assert diff < 0.002, f"pictures differ by {diff:.4f}"
        # A later edit that replaces the scalars goes the ordinary way (gradients again).
        warmed.set_transfer_function(tf.with_changes(separated=False))
        render_to_array(warmed, 64, 64)
        assert warm_starts == ["start"]
    finally:
        plain.close()
        warmed.close()


def test_a_warm_mapper_for_another_buffer_is_not_adopted(leg: Leg, tf: TransferFunction) -> None:
    with Scene(offscreen=True) as s:
        s.set_volume(leg.volume, prepare=False)
        prepared = prepare_scene(s.scene_inputs(tf=tf))
        assert prepared.buffer is not None
        other = warm_mapper(prepared.buffer.copy(), leg.volume.spacing_mm, tf)
        assert other is not None
        assert s.apply_prepared(replace(prepared, warm=other))
        assert s.mapper is not other.mapper


def test_no_warm_up_where_no_gradients_are_used(leg: Leg, tf: TransferFunction) -> None:
    buf = np.zeros((4, 5, 6), np.int16)
    flat = tf.with_changes(shading=replace(tf.shading, enabled=False), gradient_opacity=())
    assert needs_gradients(tf)
    assert not needs_gradients(flat)
    assert not needs_gradients(tf.with_changes(blend_mode="mip"))
    assert warm_mapper(buf, (1.0, 1.0, 1.0), flat) is None


def test_an_unshaded_warm_mapper_comes_with_the_scalars_but_is_no_shading(leg: Leg, tf: TransferFunction) -> None:
    """The scene worker's mapper has drawn the new scalars once unshaded: the scene
    takes it with them (its first render then builds nothing), draws it unshaded, and
    does not take it for the shading."""
    with Scene(offscreen=True) as s:
        s.set_volume(leg.volume, prepare=False)
        prepared = prepare_scene(s.scene_inputs(tf=tf))
        assert prepared.buffer is not None
        w = warm_mapper(prepared.buffer, leg.volume.spacing_mm, tf, shade=False, box=prepared.buffer_box)
        assert w is not None and not w.computed
        assert s.apply_prepared(replace(prepared, warm=w))
        assert s.mapper is w.mapper
        # The visible extent's block ranges came with it (not rebuilt on this thread).
        assert w.block_ranges is not None and s._extent.ranges(prepared.buffer) is w.block_ranges
        s.defer_shading(True)
        starts = _gradient_starts(s)
        img = render_to_array(s, 160, 120)
        assert (img.astype(int).sum(axis=2) > 60).mean() > 0.02, "black picture"
        assert starts == []
        assert not s.adopt_shading(w) and s.shading_deferred
