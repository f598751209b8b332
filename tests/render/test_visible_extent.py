"""Issue 9: rays visit only the box of voxels some class shows (viewer.render.extent),
and software GL renders without multisampling. The speed-ups must not change the image:
every render here is compared with the same scene rendered with the cropping off, and
the images must not be black (a blank image would match trivially)."""

from __future__ import annotations

import numpy as np
import pytest
from render_helpers import Leg

from viewer.core.transfer import ClassAppearance, TransferFunction
from viewer.core.volume import Volume, axis_aligned_affine
from viewer.render.extent import BlockRanges, box_of_points, intersect, mip_exact, visible_values
from viewer.render.offscreen import render_to_array
from viewer.render.scene import Scene

W, H = 240, 200


def _mad_pct(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean() / 255.0 * 100.0)


def _lit(img: np.ndarray) -> float:
    return float((img.max(axis=-1) > 20).mean())


def _both(scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    """(image with the visible-extent cropping, image without); leaves it on."""
    scene.skip_invisible = True
    on = render_to_array(scene, W, H)
    scene.skip_invisible = False
    off = render_to_array(scene, W, H)
    scene.skip_invisible = True
    return on, off


# ----- pure parts ------------------------------------------------------------------
def test_block_ranges_match_brute_force_with_overlap() -> None:
    rng = np.random.default_rng(1)
    a = rng.integers(-2000, 3000, size=(19, 23, 29)).astype(np.int16)
    br = BlockRanges(a, block=4)
    assert br.lo.shape == (5, 6, 8)
    for k in range(br.lo.shape[0]):
        for j in range(br.lo.shape[1]):
            for i in range(br.lo.shape[2]):
                cell = a[4 * k : 4 * k + 5, 4 * j : 4 * j + 5, 4 * i : 4 * i + 5]
                assert br.lo[k, j, i] == cell.min()
                assert br.hi[k, j, i] == cell.max()


def test_visible_box_covers_interpolation_between_blocks() -> None:
    # Two invisible values side by side whose interpolation crosses a visible window:
    # a 0 block next to a 1000 block, window 400-500. The cell between them is visible.
    a = np.zeros((16, 16, 16), np.int16)
    a[:, :, 8:] = 1000
    br = BlockRanges(a, block=8)
    vis = visible_values([(0.0, 0.0), (399.0, 0.0), (400.0, 0.5), (500.0, 0.5), (501.0, 0.0)], 0, 1000)
    box = br.visible_box(vis, 0)
    assert box is not None
    assert box[0] <= 7 and box[1] >= 8  # the boundary cell 7..8 is inside
    # Nothing in the window anywhere: no box.
    assert br.visible_box(visible_values([(0.0, 0.0), (5000.0, 0.0)], 0, 1000), 0) is None


def test_visible_values_clamps_and_marks_segments() -> None:
    vis = visible_values([(100.0, 0.0), (110.5, 0.0), (111.0, 0.3), (200.0, 0.0)], 0, 300, margin=0)
    assert not vis[:110].any()
    assert vis[111] and vis[150]
    assert not vis[201:].any()
    # Clamped ends: opacity before the first point is the first point's.
    vis2 = visible_values([(100.0, 0.5), (200.0, 0.0)], 0, 300, margin=0)
    assert vis2[0] and vis2[99] and not vis2[250]


def test_mip_exact_only_for_ramps_opaque_above_a_level() -> None:
    assert mip_exact([(-1000.0, 0.0), (100.0, 0.0), (300.0, 1.0), (3000.0, 1.0)])
    assert not mip_exact([(-1000.0, 0.0), (100.0, 1.0), (300.0, 0.0)])


def test_box_helpers() -> None:
    b = box_of_points(np.array([[2.2, 3.7, 4.0], [5.5, 1.0, 9.9]]), (20, 20, 8))
    assert b == (1, 7, 0, 5, 3, 7)
    assert intersect((0, 10, 0, 10, 0, 10), (5, 20, 3, 4, 11, 12)) is None
    assert intersect((0, 10, 0, 10, 0, 10), (5, 20, 3, 4, 2, 12)) == (5, 10, 3, 4, 2, 10)


# ----- the scene ---------------------------------------------------------------------
def test_software_gl_renders_without_multisampling() -> None:
    with Scene() as s:
        if s.mapper_kind != "cpu":
            pytest.skip("hardware GL keeps its anti-aliasing")
        assert s.render_window.GetMultiSamples() == 0


@pytest.mark.parametrize("separated", [False, True])
def test_cropped_render_equals_full_render_on_the_leg(leg: Leg, separated: bool) -> None:
    with Scene() as s:
        s.set_volume(leg.volume)
        s.set_transfer_function(TransferFunction(separated=separated))
        for view in ("anterior", "left", "superior"):
            s.set_view(view)
            on, off = _both(s)
            assert _lit(on) > 0.01, f"{view}: nothing drawn"
            assert _mad_pct(on, off) < 0.5, view
        if separated:
            # The test above must exercise the cropping: the clean leg's separated
            # classes leave air around them.
            assert s.visible_box is not None


def _two_objects() -> Volume:
    """Air with a dense block (1200 HU, bone) in one corner and a 300 HU ball (vessel
    window) in the opposite one."""
    hu = np.full((48, 48, 48), -1000, np.int16)
    hu[4:14, 4:14, 4:14] = 1200
    k, j, i = np.mgrid[:48, :48, :48]
    hu[(k - 38) ** 2 + (j - 38) ** 2 + (i - 38) ** 2 <= 36] = 300
    sp = (1.0, 1.0, 1.0)
    return Volume(hu, sp, axis_aligned_affine(sp, (0.0, 0.0, 0.0)), description="two objects", source="test")


def _ball_pixels(s: Scene) -> np.ndarray:
    centre = s.volume.lps_of_ijk((38.0, 38.0, 38.0))  # type: ignore[union-attr]
    c, r = np.rint(s.world_to_pixel(centre[None, :], W, H)[0]).astype(int)
    return np.s_[r - 2 : r + 3, c - 2 : c + 3]


def test_extent_follows_class_toggles_and_threshold_edits() -> None:
    vol = _two_objects()
    tf = TransferFunction()
    with Scene() as s:
        s.set_volume(vol)
        s.set_view("anterior")
        s.set_transfer_function(tf)
        ball = _ball_pixels(s)
        on, off = _both(s)
        assert on[ball].max() > 30 and _mad_pct(on, off) < 0.5
        full_box = s.visible_box

        # Vessel class hidden: the box shrinks to the block, the ball is gone.
        hidden = tf.with_changes(vessel=ClassAppearance(tf.vessel.color, tf.vessel.opacity, False))
        s.set_transfer_function(hidden)
        box = s.visible_box
        assert box is not None and box[1] < 30 and box[3] < 30 and box[5] < 30
        on, off = _both(s)
        assert on[ball].max() < 10 and _lit(on) > 0.01 and _mad_pct(on, off) < 0.5

        # Shown again: the ball must not be cut off.
        s.set_transfer_function(tf)
        assert s.visible_box == full_box
        on, off = _both(s)
        assert on[ball].max() > 30 and _mad_pct(on, off) < 0.5

        # Threshold edit: the vessel window above the ball's HU drops it, back restores it.
        s.set_transfer_function(tf.with_vessel_window(350.0, 600.0))
        box = s.visible_box
        assert box is not None and box[1] < 30
        s.set_transfer_function(tf.with_vessel_window(250.0, 600.0))
        on, off = _both(s)
        assert on[ball].max() > 30 and _mad_pct(on, off) < 0.5


def test_extent_follows_the_crop_box() -> None:
    vol = _two_objects()
    with Scene() as s:
        s.set_volume(vol)
        s.set_view("anterior")
        s.set_transfer_function(TransferFunction())
        # Keep the half with the ball (x >= 24 mm).
        s.set_crop_box_lps((24.0, 48.0, -1.0, 48.0, -1.0, 48.0))
        box = s.visible_box
        assert box is not None and box[0] >= 20  # buffer index = voxel index + 1
        on, off = _both(s)
        assert on[_ball_pixels(s)].max() > 30 and _mad_pct(on, off) < 0.5
        s.set_crop_box_lps(None)
        assert s.visible_box is not None and s.visible_box[0] < 8


def test_mip_cropped_equals_full() -> None:
    vol = _two_objects()
    with Scene() as s:
        s.set_volume(vol)
        s.set_view("anterior")
        s.set_transfer_function(TransferFunction(blend_mode="mip", mip_window_hu=(100.0, 1300.0)))
        on, off = _both(s)
        assert _lit(on) > 0.01 and _mad_pct(on, off) < 0.5


def test_interactive_ray_budget_follows_the_window_size() -> None:
    with Scene() as s:
        s.set_volume(_two_objects())
        s.set_transfer_function(TransferFunction())
        s.render_window.SetSize(800, 600)
        s.set_interactive(True)
        s.render()
        assert s.mapper is not None and s.mapper.GetImageSampleDistance() == pytest.approx(2.5)
        s.render_window.SetSize(1920, 1080)  # resized while dragging (the GUI's window)
        s.render()
        assert s.mapper.GetImageSampleDistance() == pytest.approx(4.0)
        s.set_interactive(False)
        assert s.mapper.GetImageSampleDistance() == 1.0
        s.render()
        assert s.mapper.GetImageSampleDistance() == 1.0


def test_extent_with_a_crop_box_on_an_oblique_flipped_volume() -> None:
    """The crop box is in LPS; the cropping region in voxels. With a rotated, z-flipped
    direction the voxel box around the crop box's corners must still hold all of it."""
    base = _two_objects()
    c, s_ = np.cos(np.radians(30.0)), np.sin(np.radians(30.0))
    direction = np.array([[c, -s_, 0.0], [s_, c, 0.0], [0.0, 0.0, -1.0]])
    sp = (1.0, 1.2, 0.9)
    vol = Volume(base.hu, sp, axis_aligned_affine(sp, (5.0, -7.0, 40.0), direction), description="oblique", source="t")
    with Scene() as s:
        s.set_volume(vol)
        s.set_view("anterior")
        s.set_transfer_function(TransferFunction())
        ball_lps = vol.lps_of_ijk((38.0, 38.0, 38.0))
        lo, hi = ball_lps - 12.0, ball_lps + 12.0
        s.set_crop_box_lps((lo[0], hi[0], lo[1], hi[1], lo[2], hi[2]))
        box = s.visible_box
        assert box is not None and box[0] > 10  # the block at the other corner is cut away
        on, off = _both(s)
        assert on[_ball_pixels(s)].max() > 30 and _mad_pct(on, off) < 0.5


def test_gpu_mapper_cropped_equals_full(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VESSEL_VIEWER_MAPPER", "gpu")
    with Scene() as s:
        assert s.mapper_kind == "gpu"
        s.set_volume(_two_objects())
        s.set_view("anterior")
        tf = TransferFunction()
        s.set_transfer_function(tf.with_changes(vessel=ClassAppearance(tf.vessel.color, tf.vessel.opacity, False)))
        assert s.visible_box is not None
        on, off = _both(s)
        assert _lit(on) > 0.01 and _mad_pct(on, off) < 0.5
