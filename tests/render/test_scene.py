"""Offscreen renders of a small leg CTA: where the colours land (image statistics,
not golden images). Renders are saved to /tmp/vessel-viewer-render-tests for a look."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from render_helpers import Leg, is_foreground, is_ivory, is_red
from scipy import ndimage as ndi

from viewer.core.errors import ViewerError
from viewer.core.transfer import IVORY, ClassAppearance, TransferFunction
from viewer.render.offscreen import render_to_array
from viewer.render.scene import Scene

W = H = 300
OUT = Path("/tmp/vessel-viewer-render-tests")


def save(name: str, img: np.ndarray) -> None:
    from PIL import Image

    OUT.mkdir(exist_ok=True)
    Image.fromarray(img).save(OUT / f"{name}.png")


def project(scene: Scene, volume, mask: np.ndarray, grow_px: int = 2) -> np.ndarray:
    """Boolean image of where ``mask``'s voxel centres project (grown to close gaps)."""
    k, j, i = np.nonzero(mask)
    pts = volume.lps_of_ijk(np.stack([i, j, k], axis=-1).astype(float))
    px = np.rint(scene.world_to_pixel(pts, W, H)).astype(int)
    ok = (px[:, 0] >= 0) & (px[:, 0] < W) & (px[:, 1] >= 0) & (px[:, 1] < H)
    img = np.zeros((H, W), bool)
    img[px[ok, 1], px[ok, 0]] = True
    return ndi.binary_dilation(img, iterations=grow_px) if grow_px else img


@pytest.fixture()
def scene(leg: Leg):
    s = Scene()
    s.set_volume(leg.volume)
    yield s
    s.close()


SEPARATED = TransferFunction(separated=True)
ONE_CLASS = TransferFunction(separated=False)


def regions(scene: Scene, leg: Leg) -> tuple[np.ndarray, np.ndarray]:
    """(artery-only, bone-only) projected regions in the current view, each away
    from the other class by a few pixels, so a pixel's expected class is clear."""
    # Arteries are 1-5 mm wide, a few pixels here: take their voxel centres as they
    # project (no growth) so the region is not wider than the vessel.
    art = project(scene, leg.volume, leg.artery, grow_px=0)
    bone = project(scene, leg.volume, leg.bone)
    other = ndi.binary_dilation(project(scene, leg.volume, leg.other_dense), iterations=3)
    art_only = art & ~ndi.binary_dilation(bone, iterations=2) & ~other
    bone_only = ndi.binary_erosion(bone, iterations=2) & ~ndi.binary_dilation(art, iterations=3) & ~other
    return art_only, bone_only


def test_separated_anterior_red_on_arteries_ivory_on_bone(scene: Scene, leg: Leg) -> None:
    scene.set_transfer_function(SEPARATED)
    img = render_to_array(scene, W, H)
    save("separated_anterior", img)
    art_only, bone_only = regions(scene, leg)
    assert art_only.sum() > 50 and bone_only.sum() > 200
    red, ivory = is_red(img), is_ivory(img)
    assert red[art_only].mean() > 0.6, red[art_only].mean()
    assert ivory[bone_only].mean() > 0.8, ivory[bone_only].mean()
    # No red fringe on bone surfaces: essentially no red where only bone projects.
    assert red[bone_only].mean() < 0.01, red[bone_only].mean()
    # Nothing is drawn where nothing projects.
    body = ndi.binary_dilation(project(scene, leg.volume, leg.bone | leg.artery | leg.other_dense), iterations=4)
    assert is_foreground(img)[~body].mean() < 0.01


def test_one_class_shows_arteries_but_fringes_bone(scene: Scene, leg: Leg) -> None:
    """The single 1D transfer function: arteries are red, and so is the bone's
    partial-volume rim -- the problem separated mode exists to solve."""
    scene.set_transfer_function(ONE_CLASS)
    img = render_to_array(scene, W, H)
    save("one_class_anterior", img)
    art_only, bone_only = regions(scene, leg)
    red = is_red(img)
    assert red[art_only].mean() > 0.6
    scene.set_transfer_function(SEPARATED)
    sep = render_to_array(scene, W, H)
    assert is_red(sep)[bone_only].mean() < 0.2 * max(red[bone_only].mean(), 0.05)


def test_vessels_only_shows_no_bone_colour(scene: Scene, leg: Leg) -> None:
    hidden = ClassAppearance(IVORY, 0.9, False)
    for separated in (True, False):
        scene.set_transfer_function(TransferFunction(separated=separated, bone=hidden))
        img = render_to_array(scene, W, H)
        save(f"vessels_only_sep{int(separated)}", img)
        assert is_ivory(img).sum() == 0
        assert is_red(img).sum() > 100


def test_separated_classes_toggle(scene: Scene, leg: Leg) -> None:
    scene.set_transfer_function(SEPARATED.with_changes(vessel=ClassAppearance((0.85, 0.08, 0.06), 0.0, True)))
    img = render_to_array(scene, W, H)
    save("separated_vessel_opacity0", img)
    assert is_red(img).sum() == 0
    assert is_ivory(img).sum() > 500
    scene.set_transfer_function(SEPARATED.with_changes(bone=ClassAppearance(IVORY, 0.9, False)))
    img = render_to_array(scene, W, H)
    save("separated_bone_hidden", img)
    assert is_ivory(img).sum() == 0
    assert is_red(img).sum() > 100


def test_collateral_branches_near_erosion_visible(scene: Scene, leg: Leg) -> None:
    scene.set_transfer_function(SEPARATED)
    img = render_to_array(scene, W, H)
    x0, x1, y0, y1, z0, z1 = leg.erosion_box_lps
    corners = np.array([[x, y, z] for x in (x0, x1) for y in (y0, y1) for z in (z0, z1)])
    px = scene.world_to_pixel(corners, W, H)
    c0, r0 = np.floor(px.min(axis=0)).astype(int)
    c1, r1 = np.ceil(px.max(axis=0)).astype(int)
    box = np.zeros((H, W), bool)
    box[max(r0, 0) : max(r1, 0), max(c0, 0) : max(c1, 0)] = True
    # Only the arteries that run inside the box, projected.
    inside = np.zeros_like(leg.artery)
    k, j, i = np.nonzero(leg.artery)
    lps = leg.volume.lps_of_ijk(np.stack([i, j, k], -1).astype(float))
    sel = (
        (lps[:, 0] >= x0)
        & (lps[:, 0] <= x1)
        & (lps[:, 1] >= y0)
        & (lps[:, 1] <= y1)
        & (lps[:, 2] >= z0)
        & (lps[:, 2] <= z1)
    )
    inside[k[sel], j[sel], i[sel]] = True
    # Where they are not hidden behind bone or the calcified mass.
    hidden = ndi.binary_dilation(project(scene, leg.volume, leg.bone | leg.other_dense), iterations=1)
    proj = project(scene, leg.volume, inside, grow_px=0) & box & ~hidden
    save("collaterals", np.where(proj[..., None], np.array([0, 255, 0], np.uint8), img))
    assert proj.sum() > 20
    red = is_red(img)
    assert red[box].sum() > 20
    assert red[proj].mean() > 0.6, red[proj].mean()


def test_crop_left_half_removes_it(scene: Scene, leg: Leg) -> None:
    scene.set_transfer_function(SEPARATED)
    lo, hi = leg.volume.bounds_lps()
    cx = float((lo[0] + hi[0]) / 2)
    full = render_to_array(scene, W, H)
    # Keep the patient's right half (x <= cx): the patient's left (+x), drawn on the
    # image's right in the anterior view, must go.
    scene.set_crop_box_lps((lo[0] - 5, cx, lo[1] - 5, hi[1] + 5, lo[2] - 5, hi[2] + 5))
    img = render_to_array(scene, W, H)
    save("crop_keep_patient_right", img)
    col_c = int(round(scene.world_to_pixel(np.array([cx, (lo[1] + hi[1]) / 2, (lo[2] + hi[2]) / 2]), W, H)[0]))
    fg = is_foreground(img)
    assert is_foreground(full)[:, col_c + 3 :].sum() > 500
    assert fg[:, col_c + 3 :].sum() == 0
    assert fg[:, : col_c - 3].sum() > 100
    scene.set_crop_box_lps(None)
    assert np.array_equal(render_to_array(scene, W, H), full)
    with pytest.raises(ViewerError):
        scene.set_crop_box_lps((1, 0, 0, 1, 0, 1))


def test_clip_plane_keeps_the_normal_side(scene: Scene, leg: Leg) -> None:
    scene.set_transfer_function(SEPARATED)
    lo, hi = leg.volume.bounds_lps()
    c = (lo + hi) / 2
    scene.set_clip_plane(c, (0.0, 0.0, 1.0))  # keep superior half
    img = render_to_array(scene, W, H)
    save("clip_keep_superior", img)
    row_c = int(round(scene.world_to_pixel(c, W, H)[1]))
    fg = is_foreground(img)
    assert fg[row_c + 3 :, 60:].sum() == 0  # (marker-free area: skip the corner)
    assert fg[: row_c - 3].sum() > 500
    scene.set_clip_plane(None)
    assert is_foreground(render_to_array(scene, W, H))[row_c + 3 :, 60:].sum() > 500


def test_anterior_and_posterior_are_mirror_images(scene: Scene) -> None:
    scene.set_transfer_function(SEPARATED)
    scene.set_view("anterior")
    a = is_foreground(render_to_array(scene, W, H))
    scene.set_view("posterior")
    p = is_foreground(render_to_array(scene, W, H))
    flipped = p[:, ::-1]
    iou = (a & flipped).sum() / (a | flipped).sum()
    assert iou > 0.8, iou
    assert (a & p).sum() / (a | p).sum() < iou


def test_interactive_lod_and_stills(scene: Scene) -> None:
    scene.set_transfer_function(SEPARATED)
    still = render_to_array(scene, W, H)
    scene.set_interactive(True)
    assert scene.mapper.GetImageSampleDistance() > 1.0
    scene.render_window.SetSize(W, H)
    scene.render()
    # render_to_array always gives the full-quality still and restores the LOD.
    assert np.array_equal(render_to_array(scene, W, H), still)
    assert scene.interactive and scene.mapper.GetImageSampleDistance() > 1.0
    scene.set_interactive(False)
    assert scene.mapper.GetImageSampleDistance() == 1.0


def test_threshold_edits_with_supplied_and_own_masks(scene: Scene) -> None:
    # Masks the scene computes itself follow the thresholds they depend on (the bone
    # threshold, and the vessel window for the rim dilation and calcified shells).
    scene.set_transfer_function(SEPARATED)
    key = scene._buffer_key
    assert scene.class_masks is not None and scene.class_masks.matches(
        SEPARATED.bone_threshold_hu, SEPARATED.vessel_window_hu
    )
    scene.set_transfer_function(SEPARATED.with_bone_threshold(500))
    assert scene._buffer_key != key
    assert scene.class_masks.bone_threshold_hu == 500
    # A supplied mask (the GUI computes masks off its thread) is used as is: any
    # threshold edit then only restyles -- no re-encode, no gradient recompute.
    mask = scene.volume.hu >= 700
    scene.set_bone_mask(mask)
    key2 = scene._buffer_key
    buf = scene._buffer
    scene.set_transfer_function(SEPARATED.with_bone_threshold(800))
    scene.set_transfer_function(SEPARATED.with_vessel_window(150, 500))
    assert scene._buffer_key == key2 and scene._buffer is buf
    assert scene.bone_mask is mask
    with pytest.raises(ViewerError):
        scene.set_bone_mask(mask[:-1])


def test_render_to_array_sizes_alpha_and_not_blank(scene: Scene) -> None:
    scene.set_transfer_function(SEPARATED)
    img = render_to_array(scene, 320, 200)
    assert img.shape == (200, 320, 3) and img.dtype == np.uint8
    assert img.std() > 10 and is_foreground(img).mean() > 0.03
    rgba = render_to_array(scene, 160, 120, transparent=True)
    assert rgba.shape == (120, 160, 4)
    alpha = rgba[..., 3]
    assert alpha[0, 0] == 0 and alpha[-1, -1] == 0
    assert (alpha > 200).sum() > 100
    # Background stays opaque for normal renders after a transparent one.
    assert render_to_array(scene, 50, 40).shape == (40, 50, 3)
    with pytest.raises(ViewerError):
        render_to_array(scene, 0, 10)


def test_orientation_marker_offscreen(scene: Scene) -> None:
    scene.set_transfer_function(
        SEPARATED.with_changes(
            bone=ClassAppearance(IVORY, 0.0, False),
            vessel=ClassAppearance((1, 0, 0), 0.0, False),
            calcification=ClassAppearance((1, 1, 0), 0.0, False),
        )
    )
    blank = render_to_array(scene, W, H)
    assert not is_foreground(blank).any()
    scene.set_orientation_marker(True)
    img = render_to_array(scene, W, H)
    save("marker", img)
    corner = is_foreground(img)[int(H * 0.8) :, : int(W * 0.2)]
    assert corner.mean() > 0.1
    assert not is_foreground(img)[: int(H * 0.7)].any()


def test_close_is_idempotent_and_final(leg: Leg) -> None:
    s = Scene()
    s.set_volume(leg.volume)
    s.close()
    s.close()
    assert s.closed
    with pytest.raises(ViewerError):
        s.set_view("anterior")
    s.request_render()  # no-op after close


def test_request_render_goes_through_the_hook(scene: Scene) -> None:
    calls: list[int] = []
    scene.on_render_request = lambda: calls.append(1)
    scene.request_render()
    scene.request_render()
    assert calls == [1, 1]


def test_external_window_renders_through_twin(leg: Leg) -> None:
    from viewer.render._vtk import vtkRenderWindow

    rw = vtkRenderWindow()
    rw.SetOffScreenRendering(1)
    rw.SetSize(123, 77)
    s = Scene(render_window=rw)
    try:
        s.set_volume(leg.volume)
        s.set_transfer_function(SEPARATED)
        s.set_view("posterior")
        img = render_to_array(s, 100, 90)
        assert img.shape == (90, 100, 3) and is_red(img).sum() > 20
        assert tuple(rw.GetSize()) == (123, 77)
        own = Scene()
        own.set_volume(leg.volume)
        own.set_transfer_function(SEPARATED)
        own.set_view("posterior")
        assert np.abs(render_to_array(own, 100, 90).astype(int) - img).mean() < 1.0
        own.close()
    finally:
        s.close()
    assert rw.GetRenderers().GetNumberOfItems() == 0
