"""2D slices along the patient axes in the radiological display convention."""

from __future__ import annotations

import numpy as np
import pytest

from viewer.core.errors import ViewerError
from viewer.core.volume import Volume, axis_aligned_affine
from viewer.render.slices import slice_image, slice_positions_mm, window_level_to_rgb


def vol_with_marker(direction=None):
    hu = np.full((12, 10, 8), -1000, np.int16)
    v = Volume(hu, (1.0, 2.0, 3.0), axis_aligned_affine((1.0, 2.0, 3.0), (5.0, -7.0, 11.0), direction))
    return v


@pytest.mark.parametrize("direction", [None, np.diag([-1.0, 1.0, -1.0]), np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1.0]])])
def test_marker_found_in_all_three_slices(direction) -> None:
    v = vol_with_marker(direction)
    ijk = (2, 7, 4)
    v.hu[ijk[2], ijk[1], ijk[0]] = 900
    lps = v.lps_of_ijk(ijk)
    for axis in ("axial", "coronal", "sagittal"):
        s = slice_image(v, axis, lps)
        r, c = np.argwhere(s.hu == 900)[0]
        assert np.allclose(s.lps_of_pixel(r, c), lps), axis
        assert np.allclose(s.pixel_of_lps(lps), (r, c)), axis
        assert (s.hu == 900).sum() == 1


def test_display_orientation_is_radiological() -> None:
    v = vol_with_marker()
    lo, hi = v.bounds_lps()
    ax = slice_image(v, "axial", (lo + hi) / 2)
    # axial: columns run to the patient's left (+x), rows to posterior (+y).
    assert np.allclose(ax.col_dir_lps, (1, 0, 0)) and np.allclose(ax.row_dir_lps, (0, 1, 0))
    co = slice_image(v, "coronal", (lo + hi) / 2)
    assert np.allclose(co.col_dir_lps, (1, 0, 0)) and np.allclose(co.row_dir_lps, (0, 0, -1))
    assert co.lps_of_pixel(0, 0)[2] == pytest.approx(hi[2])  # superior at the top
    sa = slice_image(v, "sagittal", (lo + hi) / 2)
    assert np.allclose(sa.col_dir_lps, (0, 1, 0)) and np.allclose(sa.row_dir_lps, (0, 0, -1))
    assert ax.hu.shape == (10, 8) and ax.pixel_spacing_mm == (2.0, 1.0)
    assert co.hu.shape == (12, 8) and co.pixel_spacing_mm == (3.0, 1.0)
    assert sa.hu.shape == (12, 10)
    assert len(slice_positions_mm(v, "axial")) == 12


def test_oblique_nearest_neighbour_and_outside() -> None:
    a = 0.3
    rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1.0]])
    v = vol_with_marker(rot)
    v.hu[6, 5, 4] = 700
    lps = v.lps_of_ijk((4, 5, 6))
    s = slice_image(v, "axial", lps)
    assert (s.hu == 700).any()
    assert (s.hu == -1024).any()  # the rotated volume does not fill its LPS box
    with pytest.raises(ViewerError):
        slice_image(v, "oblique", lps)


def test_window_level() -> None:
    rgb = window_level_to_rgb(np.array([[-1000, 40, 440]]), 400, 40)
    assert rgb.shape == (1, 3, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0, 0] == 0 and rgb[0, 2, 0] == 255 and 120 < rgb[0, 1, 0] < 136
    with pytest.raises(ViewerError):
        window_level_to_rgb(np.zeros((2, 2)), 0, 0)
