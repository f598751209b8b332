"""The render buffer cut to the patient's body (viewer.render.content, issue 9): the
same picture for less memory and fewer shading gradients."""

from __future__ import annotations

import numpy as np
import pytest
from render_helpers import Leg

from viewer.core.classmap import RAW_MIN_HU
from viewer.core.transfer import TransferFunction
from viewer.render import content, scene_data
from viewer.render.offscreen import render_to_array
from viewer.render.scene import Scene

W, H = 220, 180


def _mad_pct(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean() / 255.0 * 100.0)


def _lit(img: np.ndarray) -> float:
    return float((img.max(axis=-1) > 20).mean())


def test_air_shown_reads_the_transfer_function_as_drawn() -> None:
    tf = TransferFunction(separated=True)
    assert not content.air_shown(tf)
    assert not content.air_shown(tf.with_changes(separated=False))
    # a MIP window that starts below air ramps air in
    assert content.air_shown(tf.with_changes(blend_mode="mip", mip_window_hu=(-2000.0, 500.0)))
    assert not content.air_shown(tf.with_changes(blend_mode="mip", mip_window_hu=(0.0, 800.0)))


def test_body_box_and_buffer_box() -> None:
    removed = np.ones((6, 10, 12), bool)
    assert content.body_box(removed) is None
    removed[2:4, 3:7, 5:6] = False
    assert content.body_box(removed) == (slice(2, 4), slice(3, 7), slice(5, 6))
    m = content.MARGIN
    box = content.buffer_box(removed.shape, content.body_box(removed))
    # volume index v is buffer index v + 1; MARGIN voxels of air each side, clipped
    assert box == (max(0, 3 - m), 5 + m, max(0, 4 - m), 8 + m, 6 - m, 7 + m)
    # a body that fills the volume keeps the whole buffer
    assert content.buffer_box((6, 10, 12), (slice(0, 6), slice(0, 10), slice(0, 12))) is None
    assert content.buffer_box((6, 10, 12), None) is None
    assert content.origin_mm((1, 5, 2, 8, 3, 9), (0.5, 0.7, 2.0)) == (1.5, 1.4, 2.0)
    assert content.origin_mm(None, (0.5, 0.7, 2.0)) == (0.0, 0.0, 0.0)


def _views(s: Scene) -> dict[str, np.ndarray]:
    out = {}
    for view in ("anterior", "left", "superior"):
        s.set_view(view)
        out[view] = render_to_array(s, W, H)
    return out


def _views_and_cropped(s: Scene, crop: tuple[float, ...]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Three views, then one with the crop box ``crop`` set (left set)."""
    views = _views(s)
    s.set_crop_box_lps(crop)
    return views, render_to_array(s, W, H)


def _assert_same_pictures(
    got: dict[str, np.ndarray], got_crop: np.ndarray, want: dict[str, np.ndarray], want_crop: np.ndarray
) -> None:
    for view in got:
        assert _lit(got[view]) > 0.01, f"{view}: nothing drawn"
        assert _mad_pct(got[view], want[view]) < 0.5, view
    assert _lit(got_crop) > 0.005 and _lit(got_crop) < _lit(got["superior"]) + 1.0
    assert _mad_pct(got_crop, want_crop) < 0.5


@pytest.mark.parametrize("mapper", ["cpu", "gpu"])
def test_a_buffer_cut_to_the_body_draws_the_same_picture(
    leg: Leg, monkeypatch: pytest.MonkeyPatch, mapper: str
) -> None:
    """Separated with the table removed, the scene holds only the body's box of the
    render buffer (less memory, fewer gradients), placed where it lies: the pictures
    equal those of the whole buffer (the rays start at other faces: sub-pixel
    differences), from three sides, with a crop box too; with either ray caster."""
    monkeypatch.setenv("VESSEL_VIEWER_MAPPER", mapper)
    tf = TransferFunction(separated=True)
    nz, ny, nx = leg.volume.shape
    crop = leg.volume.bounds_lps()
    lo, hi = np.asarray(crop[0]), np.asarray(crop[1])
    half = (lo[0], (lo[0] + hi[0]) / 2, lo[1], hi[1], lo[2], hi[2])
    with Scene(offscreen=True) as cut:
        assert cut.mapper_kind == mapper
        cut.set_volume(leg.volume)
        cut.set_transfer_function(tf)
        box = cut.buffer_box
        assert box is not None and cut.buffer is not None
        assert cut.buffer.size < 0.8 * (nz + 2) * (ny + 2) * (nx + 2)
        assert cut.buffer.shape == (box[1] - box[0], box[3] - box[2], box[5] - box[4])
        # the visible box is said in indices of the whole buffer, inside the cut one
        vb = cut.visible_box
        assert vb is not None and box[4] <= vb[0] and vb[1] < box[5] and box[2] <= vb[2] and vb[3] < box[3]
        a, a_crop = _views_and_cropped(cut, half)
    monkeypatch.setattr(scene_data, "body_box", lambda removed: None)
    with Scene(offscreen=True) as whole:
        whole.set_volume(leg.volume)
        whole.set_transfer_function(tf)
        assert whole.buffer_box is None and whole.buffer is not None
        assert whole.buffer.shape == (nz + 2, ny + 2, nx + 2)
        b, b_crop = _views_and_cropped(whole, half)
    _assert_same_pictures(a, a_crop, b, b_crop)


def test_a_transfer_function_that_draws_air_gets_the_whole_buffer(leg: Leg) -> None:
    """Air is what the cut leaves out: a transfer function that gives it opacity (a MIP
    window from below air) brings the whole buffer back, and the air round the body is
    drawn as in it."""
    tf = TransferFunction(separated=True)
    with Scene(offscreen=True) as s:
        s.set_volume(leg.volume)
        s.set_transfer_function(tf)
        box = s.buffer_box
        assert box is not None
        s.set_transfer_function(tf.with_changes(blend_mode="mip", mip_window_hu=(-2000.0, 500.0)))
        assert s.buffer_box is None and s.buffer is not None
        assert s.buffer.shape == tuple(n + 2 for n in leg.volume.shape)
        assert (s.buffer == RAW_MIN_HU).any()
        s.set_view("anterior")
        img = render_to_array(s, W, H)
        # air is drawn outside the body's box too: pixels lit beyond where that box
        # projects (volume index = buffer index - 1)
        ijk = np.array([(x, y, z) for x in box[4:6] for y in box[2:4] for z in box[0:2]], float) - 1.0
        px = s.world_to_pixel(s.volume.lps_of_ijk(ijk), W, H)  # type: ignore[union-attr]
        c0, c1 = int(np.floor(px[:, 0].min())), int(np.ceil(px[:, 0].max()))
        lit = img.max(axis=-1) > 20
        outside = lit.copy()
        outside[:, max(0, c0) : max(0, c1 + 1)] = False
        assert outside.sum() > 50, "air round the body not drawn"
        s.set_transfer_function(tf)
        assert s.buffer_box is not None


def test_a_one_shot_render_cuts_the_buffer_to_what_the_rays_visit(leg: Leg) -> None:
    """``trim_to_visible`` (vessel-viewer render): the buffer shrinks to the visible box
    plus a margin, holds the same voxels there, the visible box stays where it was in
    the whole buffer, and the pictures from three sides and with a crop box are those
    of the uncut buffer (sub-pixel: the rays start sampling at other faces)."""
    tf = TransferFunction(separated=True)
    lo, hi = (np.asarray(c) for c in leg.volume.bounds_lps())
    half = (lo[0], (lo[0] + hi[0]) / 2, lo[1], hi[1], lo[2], hi[2])
    with Scene(offscreen=True) as s:
        s.set_volume(leg.volume)
        s.set_transfer_function(tf)
        before, box0, vb0 = s.buffer, s.buffer_box, s.visible_box
        assert before is not None and box0 is not None and vb0 is not None
        full, full_crop = _views_and_cropped(s, half)
        whole = content.whole_buffer(before, box0, leg.volume.shape)
        with Scene(offscreen=True) as t:
            t.set_volume(leg.volume)
            t.set_transfer_function(tf)
            assert t.trim_to_visible()
            cut, box = t.buffer, t.buffer_box
            assert cut is not None and box is not None
            assert cut.size < 0.9 * before.size
            assert cut.shape == (box[1] - box[0], box[3] - box[2], box[5] - box[4])
            np.testing.assert_array_equal(cut, whole[box[0] : box[1], box[2] : box[3], box[4] : box[5]])
            assert t.visible_box == vb0
            parts = t.prepared_parts
            assert parts is not None and parts.buffer is cut and parts.buffer_box == box
            assert not t.trim_to_visible()  # nothing more worth cutting
            trimmed, trimmed_crop = _views_and_cropped(t, half)
    _assert_same_pictures(trimmed, trimmed_crop, full, full_crop)


def test_nothing_is_cut_without_scalars() -> None:
    with Scene(offscreen=True) as s:
        assert not s.trim_to_visible()
