"""A big scan's coarse first frame (Scene.show_preview, issue 9: start to first frame):
a mapper warmed for every second voxel of the render buffer draws nearly the picture of
the full one, in the same place, and gives way to it."""

from __future__ import annotations

import os

os.environ.setdefault("VTK_SMP_BACKEND_IN_USE", "STDThread")

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from render_helpers import Leg

from viewer.core.presets import default_preset
from viewer.core.transfer import TransferFunction
from viewer.render.offscreen import render_to_array
from viewer.render.scene import Scene
from viewer.render.scene_data import prepare_scene
from viewer.render.shading_warmup import warm_mapper


def _warm(*args: Any, **kw: Any) -> Any:
    """warm_mapper on a worker thread, as the window calls it (its private EGL context
    must not become current on the thread of the scene's own window)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(warm_mapper, *args, **kw).result()


@pytest.fixture(scope="module")
def tf() -> TransferFunction:
    return default_preset().with_changes(separated=False)


def test_the_coarse_frame_shows_the_volume_in_place_and_gives_way(leg: Leg, tf: TransferFunction) -> None:
    s = Scene(offscreen=True)
    try:
        s.set_volume(leg.volume, prepare=False)
        # unshaded, as the window draws it: the preview comes before any gradients
        s.defer_shading(True)
        blank = render_to_array(s, 240, 320)
        prepared = prepare_scene(s.scene_inputs(tf=tf))
        buf = prepared.buffer
        assert buf is not None
        sp = leg.volume.spacing_mm
        coarse = _warm(np.ascontiguousarray(buf[::2, ::2, ::2]), (2 * sp[0], 2 * sp[1], 2 * sp[2]), tf, shade=False)
        assert coarse is not None
        assert s.show_preview(coarse, leg.volume, tf) and s.previewing
        pre = render_to_array(s, 240, 320).astype(float)
        full_w = _warm(buf, sp, tf, shade=False)
        assert s.apply_prepared(replace(prepared, warm=full_w))
        assert not s.previewing and s.renderer.GetVolumes().GetNumberOfItems() == 1
        full = render_to_array(s, 240, 320).astype(float)
        # not a blank picture, and the coarse one is the full one at a glance: the same
        # pixels covered, colours within a few percent
        covered = full.sum(axis=2) > blank.sum(axis=2) + 30
        assert covered.mean() > 0.05
        pre_covered = pre.sum(axis=2) > blank.sum(axis=2) + 30
        assert (pre_covered == covered).mean() > 0.97
        assert np.abs(pre - full).mean() / 255.0 < 0.03
        # nothing else may be previewed once scalars are in, nor another volume's
        assert not s.show_preview(coarse, leg.volume, tf)
    finally:
        s.close()


def test_no_preview_for_another_volume(leg: Leg, tf: TransferFunction) -> None:
    s = Scene(offscreen=True)
    try:
        s.set_volume(leg.volume, prepare=False)
        prepared = prepare_scene(s.scene_inputs(tf=tf))
        assert prepared.buffer is not None
        w = _warm(np.ascontiguousarray(prepared.buffer[::2, ::2, ::2]), leg.volume.spacing_mm, tf, shade=False)
        assert w is not None
        other = replace(leg.volume)
        assert not s.show_preview(w, other, tf)
        assert not s.previewing
    finally:
        s.close()


def test_the_coarse_frame_follows_the_blend_mode(leg: Leg, tf: TransferFunction) -> None:
    """A MIP transfer function draws the coarse frame as a MIP too."""
    mip = tf.with_changes(blend_mode="mip")
    s = Scene(offscreen=True)
    try:
        s.set_volume(leg.volume, prepare=False)
        prepared = prepare_scene(s.scene_inputs(tf=mip))
        assert prepared.buffer is not None
        sp = leg.volume.spacing_mm
        w = _warm(
            np.ascontiguousarray(prepared.buffer[::2, ::2, ::2]), (2 * sp[0], 2 * sp[1], 2 * sp[2]), mip, shade=False
        )
        assert w is not None and s.show_preview(w, leg.volume, mip)
        assert w.mapper.GetBlendMode() == w.mapper.MAXIMUM_INTENSITY_BLEND
    finally:
        s.close()
