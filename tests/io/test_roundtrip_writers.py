"""Round trip through the project's own writers: phantom -> DICOM / NRRD / NIfTI -> load.

Exact HU, spacing and placement; shuffled file names; head-first and feet-first; a
marker voxel found at its LPS position.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from viewer import phantom
from viewer.io import load_volume, writers


@pytest.fixture(scope="module", params=[False, True], ids=["head-first", "feet-first"])
def small_phantom(request: pytest.FixtureRequest):
    return phantom.generate("small", feet_first=request.param).volume


def test_dicom_round_trip_exact(small_phantom, tmp_path: Path) -> None:
    src = small_phantom
    files = writers.write_dicom_series(src, tmp_path / "dcm")
    # Shuffle the file names so that name order says nothing about slice order.
    rng = np.random.default_rng(3)
    tmp_names = [files[0].with_name(f"tmp{i}") for i in range(len(files))]
    for f, t in zip(files, tmp_names, strict=False):
        os.rename(f, t)
    for t, n in zip(tmp_names, rng.permutation(len(files)), strict=False):
        os.rename(t, t.with_name(f"x{n:04d}"))

    vol = load_volume(tmp_path / "dcm")
    assert not vol.warnings, vol.warnings
    assert vol.spacing_mm == pytest.approx(src.spacing_mm, abs=1e-6)
    # The loader orders k along row x col; a feet-first phantom is stored the other way.
    flipped = np.dot(src.ijk_to_lps[:3, 2], np.cross(src.ijk_to_lps[:3, 0], src.ijk_to_lps[:3, 1])) < 0
    expect = src.hu[::-1] if flipped else src.hu
    np.testing.assert_array_equal(vol.hu, expect)
    first = src.lps_of_ijk((0, 0, src.shape[0] - 1)) if flipped else src.origin_lps
    np.testing.assert_allclose(vol.origin_lps, first, atol=1e-4)
    # Marker: the brightest voxel of the source is found at the same LPS point.
    k, j, i = np.unravel_index(np.argmax(src.hu), src.shape)
    p = src.lps_of_ijk((i, j, k))
    assert vol.hu_at_lps(tuple(p)) == src.hu[k, j, i]
    np.testing.assert_allclose(vol.corners_lps().min(0), src.corners_lps().min(0), atol=1e-4)
    np.testing.assert_allclose(vol.corners_lps().max(0), src.corners_lps().max(0), atol=1e-4)


@pytest.mark.parametrize("fmt", ["nrrd", "nii.gz"])
def test_volume_file_round_trip(small_phantom, tmp_path: Path, fmt: str) -> None:
    src = small_phantom
    path = tmp_path / f"ct.{fmt}"
    if fmt == "nrrd":
        writers.write_nrrd(src.hu, src.ijk_to_lps, path)
    else:
        writers.write_nifti(src.hu, src.ijk_to_lps, path)
    vol = load_volume(path)
    np.testing.assert_array_equal(vol.hu, src.hu)
    np.testing.assert_allclose(vol.ijk_to_lps, src.ijk_to_lps, atol=1e-4)
