"""Every real scan in ../shared/data loads with correct geometry and HU range, and its
quirk is handled and reported as docs/loading.md says."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from viewer.io import load_volume, scan_series
from viewer.io.dicom_headers import _read_with_pydicom, read_slice_headers


def _warn(vol, text: str) -> str:
    hits = [w for w in vol.warnings if text in w]
    assert hits, f"no warning containing {text!r} in {vol.warnings}"
    return hits[0]


def test_abdomen_j2k_empty_uids(shared_data: Path) -> None:
    """JPEG 2000, empty SeriesInstanceUID/SOPInstanceUID, no .dcm ending, unsigned
    12-bit with intercept -1024: 20 slices, 512x512, 0.977 mm pixels, 2.0 mm step."""
    folder = shared_data / "ct-contrast-abdomen-j2k"
    (info,) = scan_series(folder)
    assert info.n_slices == 20 and info.key.startswith("auto-")
    vol = load_volume(folder)
    assert vol.shape == (20, 512, 512)
    assert vol.spacing_mm == pytest.approx((0.9765625, 0.9765625, 2.0))
    assert vol.hu_range() == (-1024, 1839)
    _warn(vol, "SeriesInstanceUID is empty")
    assert "JPEG 2000" in vol.metadata["TransferSyntax"]
    # Sorted along +z (normal of the axial IOP); first slice is the lowest one.
    np.testing.assert_allclose(vol.origin_lps, (-249.51171875, -437.51171875, -804.5), atol=1e-4)
    assert vol.ijk_to_lps[2, 2] == pytest.approx(2.0)
    # aorta in portal-venous contrast: a bright blob well above soft tissue exists
    assert np.percentile(vol.hu, 99.5) > 150
    assert not vol.identity.get("PatientName", "").startswith("Secret")


def test_cta_aorta_nifti(shared_data: Path) -> None:
    folder = shared_data / "cta-aorta-nifti"
    infos = scan_series(folder)
    by_name = {i.description: i for i in infos}
    assert by_name["ct_cropped.nii.gz"].is_ct and not by_name["aorta.nii.gz"].is_ct
    vol = load_volume(folder)  # picks the CT, not the uint8 aorta mask
    assert vol.description == "ct_cropped.nii.gz"
    assert vol.dims_xyz == (120, 126, 164)
    assert vol.spacing_mm == pytest.approx((1.5, 1.5, 1.5))
    assert vol.hu_range() == (-1078, 3343)
    mask = load_volume(folder, series=by_name["aorta.nii.gz"].key)
    np.testing.assert_allclose(mask.ijk_to_lps, vol.ijk_to_lps)
    aorta_mean = vol.hu[mask.hu > 0].mean()
    assert 250 < aorta_mean < 450  # arterial phase, README: about 353 HU


def test_gantry_tilt_head(shared_data: Path) -> None:
    folder = shared_data / "ct-head-gantry-tilt"
    (info,) = scan_series(folder)
    assert info.n_slices == 28
    vol = load_volume(folder)
    w_tilt = _warn(vol, "gantry tilt")
    assert "18.5 deg" in w_tilt
    w_uneven = _warn(vol, "uneven slice spacing")
    for step in ("1.08", "4.00", "7.00"):
        assert step in w_uneven
    assert vol.metadata["resampled"] is True
    assert vol.metadata["gantry_tilt_deg"] == pytest.approx(18.5, abs=0.2)
    d = vol.direction
    np.testing.assert_allclose(d.T @ d, np.eye(3), atol=1e-6)  # orthogonal after de-shear
    assert vol.spacing_mm[2] == pytest.approx(2.0, abs=0.05)
    assert vol.hu.min() >= -1500 and 1500 < vol.hu.max() <= 2121
    # first and last acquired slice centres stay where the files say they are
    import pydicom

    first = pydicom.dcmread(folder / "01.dcm", stop_before_pixels=True)
    last = pydicom.dcmread(folder / "28.dcm", stop_before_pixels=True)
    for ds in (first, last):
        ipp = np.array([float(x) for x in ds.ImagePositionPatient])
        k = vol.ijk_of_lps(ipp)
        assert abs(k[2] - round(k[2])) < 1e-3 and abs(k[0]) < 1e-3  # on a grid plane, x = column 0
    body_hu = vol.hu[vol.shape[0] // 2]
    assert (body_hu > 0).mean() > 0.1  # the middle slice shows head, not only fill


def test_duplicate_positions(shared_data: Path) -> None:
    folder = shared_data / "ct-duplicate-positions"
    (info,) = scan_series(folder)
    assert info.n_slices == 11
    vol = load_volume(folder)
    w = _warn(vol, "exact duplicate")
    assert "CT26.dcm" in w and "CT28.dcm" in w
    gaps = _warn(vol, "missing slices")
    assert "2.50 mm missing" in gaps
    _warn(vol, "uneven slice spacing")
    np.testing.assert_allclose(vol.origin_lps, (-172.5, -180.0, -512.5))
    top = vol.lps_of_ijk((0, 0, vol.shape[0] - 1))
    assert top[2] == pytest.approx(-42.5)
    assert vol.hu.min() >= -2048 and vol.hu.max() <= 1493


def test_fast_header_walker_matches_pydicom_on_real_files(shared_data: Path) -> None:
    for sub in ("ct-contrast-abdomen-j2k", "ct-head-gantry-tilt", "ct-duplicate-positions"):
        for f in sorted((shared_data / sub).iterdir()):
            if f.suffix in (".txt", ".md"):
                continue
            assert read_slice_headers(f) == _read_with_pydicom(f), f
