"""Geometry truth through the renderer, and maximum-intensity projection."""

from __future__ import annotations

import numpy as np
import pytest
from render_helpers import is_foreground

from viewer.core.errors import ViewerError
from viewer.core.transfer import TransferFunction
from viewer.core.volume import Volume
from viewer.render.camera import CameraState
from viewer.render.offscreen import render_to_array
from viewer.render.scene import Scene

W = H = 200


def marker_volume(direction: np.ndarray, marker_lps: np.ndarray) -> Volume:
    """A 40x30x20 air volume whose one bright blob sits at ``marker_lps``."""
    spacing = (2.0, 2.5, 3.0)
    nx, ny, nz = 40, 30, 20
    m = np.eye(4)
    m[:3, :3] = direction * np.asarray(spacing)[None, :]
    # Place the volume's centre at the LPS origin.
    centre_ijk = np.array([(nx - 1) / 2, (ny - 1) / 2, (nz - 1) / 2])
    m[:3, 3] = -m[:3, :3] @ centre_ijk
    hu = np.full((nz, ny, nx), -1000, np.int16)
    vol = Volume(hu, spacing, m)
    i, j, k = np.rint(vol.ijk_of_lps(marker_lps)).astype(int)
    hu[max(k - 1, 0) : k + 2, max(j - 1, 0) : j + 2, max(i - 1, 0) : i + 2] = 1500
    # A faint frame of the whole box so the render is framed on the volume.
    return Volume(hu, spacing, m)


ROT = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]) @ np.array(
    [[1.0, 0.0, 0.0], [0.0, np.cos(0.4), -np.sin(0.4)], [0.0, np.sin(0.4), np.cos(0.4)]]
)


@pytest.mark.parametrize(
    "direction", [np.eye(3), np.diag([-1.0, 1.0, -1.0]), ROT], ids=["identity", "flipped", "oblique"]
)
def test_marker_voxel_lands_where_its_lps_projects(direction: np.ndarray) -> None:
    # Patient's left (+x) and superior (+z) of the centre, a little anterior.
    marker = np.array([18.0, -6.0, 15.0])
    vol = marker_volume(direction, marker)
    tf = TransferFunction(separated=False, bone_threshold_hu=600)
    with Scene() as s:
        s.set_volume(vol)
        s.set_transfer_function(tf)
        for view, right_half, top_half in (("anterior", True, True), ("posterior", False, True)):
            s.set_view(view)
            img = render_to_array(s, W, H)
            fg = is_foreground(img)
            assert fg.sum() > 5, view
            rows, cols = np.nonzero(fg)
            got = np.array([cols.mean(), rows.mean()])
            want = s.world_to_pixel(marker, W, H)
            assert np.linalg.norm(got - want) < 4.0, (view, got, want)
            # Radiological anterior view: the patient's left is on the image's right.
            assert (got[0] > W / 2) == right_half, view
            assert (got[1] < H / 2) == top_half, view


def test_camera_state_round_trip_and_views() -> None:
    vol = marker_volume(np.eye(3), np.array([0.0, 0.0, 0.0]))
    with Scene() as s:
        s.set_volume(vol)
        s.set_view("left")
        st = s.camera_state()
        assert st.direction_of_projection == pytest.approx((-1.0, 0.0, 0.0))
        s.azimuth(30)
        s.elevation(10)
        s.zoom(1.5)
        moved = s.camera_state()
        assert moved != st
        s.set_camera_state(CameraState.from_dict(st.to_dict()))
        again = s.camera_state()
        assert np.allclose(again.position_lps, st.position_lps)
        assert np.allclose(again.view_up, st.view_up)
        for name, dop in (("superior", (0, 0, -1)), ("inferior", (0, 0, 1)), ("right", (1, 0, 0))):
            s.set_view(name)
            assert s.camera_state().direction_of_projection == pytest.approx(dop)
        with pytest.raises(ViewerError):
            s.set_view("sideways")
        with pytest.raises(ViewerError):
            CameraState.from_dict({"position_lps": [0, 0, 0]})
        with pytest.raises(ViewerError):
            CameraState((0, 0, 0), (0, 0, 0))


def test_mip_brightness_rises_with_hu() -> None:
    nx = ny = nz = 30
    hu = np.full((nz, ny, nx), -1000, np.int16)
    levels = (150, 350, 550, 750)
    for n, v in enumerate(levels):
        hu[10:20, 10:20, 2 + 7 * n : 7 + 7 * n] = v  # blocks along +x (image left->right)
    vol = Volume(hu, (1.0, 1.0, 1.0), np.eye(4))
    for separated in (False, True):
        with Scene() as s:
            s.set_volume(vol)
            # The classic class map: bone only above the (out of reach) threshold, so all
            # four blocks stay raw HU; the real-CT separation would call them bone.
            s.set_transfer_function(
                TransferFunction(
                    blend_mode="mip",
                    mip_window_hu=(0, 800),
                    separated=separated,
                    bone_threshold_hu=2000,
                    real_ct_separation=False,
                )
            )
            img = render_to_array(s, W, H)
            means = []
            for n in range(len(levels)):
                c = s.world_to_pixel(vol.lps_of_ijk((4 + 7 * n, 15, 15)), W, H)
                col, row = np.rint(c).astype(int)
                means.append(img[row - 2 : row + 3, col - 2 : col + 3, :3].mean())
            assert all(b > a + 20 for a, b in zip(means, means[1:], strict=False)), means
            # Grey: MIP has no colour.
            assert np.abs(img[..., 0].astype(int) - img[..., 2]).max() <= 2


def test_separated_mip_hides_bone() -> None:
    hu = np.full((20, 20, 30), -1000, np.int16)
    hu[5:15, 5:15, 3:10] = 1200  # "bone"
    hu[5:15, 5:15, 18:25] = 400  # "vessel"
    vol = Volume(hu, (1.0, 1.0, 1.0), np.eye(4))
    with Scene() as s:
        s.set_volume(vol)
        s.set_bone_mask(hu >= 1000)
        tf = TransferFunction(blend_mode="mip", mip_window_hu=(0, 800))
        s.set_transfer_function(tf)
        raw = render_to_array(s, W, H)
        s.set_transfer_function(tf.with_changes(separated=True))
        sep = render_to_array(s, W, H)

        def at(i: int) -> float:
            col, row = np.rint(s.world_to_pixel(vol.lps_of_ijk((i, 10, 10)), W, H)).astype(int)
            return float(raw[row, col, 0]), float(sep[row, col, 0])

        bone_raw, bone_sep = at(6)
        ves_raw, ves_sep = at(21)
        assert bone_raw > 200 and bone_sep < 5
        assert abs(ves_raw - ves_sep) < 5 and 110 < ves_sep < 145
