"""DICOM loading on small synthetic series: order, geometry, HU, and every bad input."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
from dicom_factory import (
    PATIENT_ID,
    PATIENT_NAME,
    ImplicitVRLittleEndian,
    ramp_volume,
    save,
    slice_dataset,
    write_enhanced_ct,
    write_series,
)

from viewer.core.errors import LoadCancelled, ViewerError
from viewer.io import load_volume, scan_series
from viewer.io.dicom_headers import _read_with_pydicom, fast_parse, read_slice_headers


def _warn(vol, text: str) -> str:
    hits = [w for w in vol.warnings if text in w]
    assert hits, f"no warning containing {text!r} in {vol.warnings}"
    return hits[0]


# ------------------------------------------------------------------ order and geometry
def test_shuffled_files_sorted_by_position_with_exact_hu_and_affine(tmp_path: Path) -> None:
    hu = ramp_volume()
    write_series(tmp_path, hu, origin=(-10, -20, 30), spacing_z=2.0)
    vol = load_volume(tmp_path)
    np.testing.assert_array_equal(vol.hu, hu)
    assert vol.hu.dtype == np.int16
    assert vol.spacing_mm == pytest.approx((0.6, 0.8, 2.0))
    expected = np.array([[0.6, 0, 0, -10], [0, 0.8, 0, -20], [0, 0, 2.0, 30], [0, 0, 0, 1]])
    np.testing.assert_allclose(vol.ijk_to_lps, expected, atol=1e-9)
    assert not vol.warnings, vol.warnings


def test_single_file_and_file_list(tmp_path: Path) -> None:
    hu = ramp_volume()
    files = write_series(tmp_path, hu)
    vol = load_volume([str(f) for f in files[::-1]])
    np.testing.assert_array_equal(vol.hu, hu)
    one = load_volume(files[0])
    assert one.shape == (1, hu.shape[1], hu.shape[2])


@pytest.mark.parametrize("feet_first", [False, True])
def test_marker_voxel_lands_at_its_lps_position(tmp_path: Path, feet_first: bool) -> None:
    """Head-first supine: rows go to -y... columns to +x (L); feet-first supine flips x and
    the slice order along z. A bright voxel at a known LPS point must be found there."""
    nz, ny, nx = 8, 10, 12
    hu = np.full((nz, ny, nx), -1000, np.int16)
    iop = (-1, 0, 0, 0, 1, 0) if feet_first else (1, 0, 0, 0, 1, 0)
    origin = np.array([40.0, -30.0, 100.0])
    ps = (0.8, 0.6)  # row spacing (y), column spacing (x)
    row, col = np.array(iop[:3], float), np.array(iop[3:], float)
    step = np.array([0, 0, -2.5]) if feet_first else np.array([0, 0, 2.5])
    positions = [origin + k * step for k in range(nz)]
    k0, j0, i0 = 5, 3, 7
    hu[k0, j0, i0] = 2000
    marker_lps = origin + k0 * step + i0 * ps[1] * row + j0 * ps[0] * col
    write_series(tmp_path, hu, positions=positions, iop=iop, pixel_spacing=ps, thickness=2.5)
    vol = load_volume(tmp_path)
    assert vol.hu_at_lps(tuple(marker_lps)) == 2000
    k, j, i = np.argwhere(vol.hu == 2000)[0]
    np.testing.assert_allclose(vol.lps_of_ijk((i, j, k)), marker_lps, atol=1e-6)
    assert np.linalg.det(vol.ijk_to_lps[:3, :3]) > 0  # k runs along row x col
    assert vol.spacing_mm == pytest.approx((0.6, 0.8, 2.5))


def test_implicit_vr_little_endian(tmp_path: Path) -> None:
    hu = ramp_volume()
    write_series(tmp_path, hu, transfer_syntax=ImplicitVRLittleEndian)
    np.testing.assert_array_equal(load_volume(tmp_path).hu, hu)


def test_fast_header_walker_agrees_with_pydicom(tmp_path: Path) -> None:
    files = write_series(tmp_path / "e", ramp_volume(nz=3))
    files += write_series(tmp_path / "i", ramp_volume(nz=3), transfer_syntax=ImplicitVRLittleEndian)
    files += write_series(tmp_path / "r", ramp_volume(nz=2), rle=True)
    for f in files:
        assert fast_parse(f) is not None
        assert read_slice_headers(f) == _read_with_pydicom(f)


# ------------------------------------------------------------------------------- HU
def test_unsigned_12_bit_with_intercept(tmp_path: Path) -> None:
    hu = ramp_volume() + 100  # -900..
    write_series(tmp_path, hu, unsigned=True, bits_stored=12, intercept=-1024)
    np.testing.assert_array_equal(load_volume(tmp_path).hu, hu)


def test_fractional_slope_rounds_to_nearest(tmp_path: Path) -> None:
    hu = ramp_volume()
    ds = slice_dataset(hu[0], (0, 0, 0), slope=0.5, intercept=-1000.5)
    raw = np.frombuffer(ds.PixelData, np.int16).reshape(hu.shape[1:])
    save(ds, tmp_path / "a")
    vol = load_volume(tmp_path)
    np.testing.assert_array_equal(vol.hu[0], np.rint(raw * 0.5 - 1000.5).astype(np.int16))


def test_values_beyond_int16_are_clipped_with_warning(tmp_path: Path) -> None:
    hu = np.full((1, 4, 4), 1000, np.int16)
    ds = slice_dataset(hu[0], (0, 0, 0), slope=40.0, intercept=0.0)  # 40 * 25 = 1000
    arr = np.frombuffer(ds.PixelData, np.int16).copy()
    arr[0] = 2000  # 2000 * 40 = 80000 HU: beyond int16
    ds.PixelData = arr.tobytes()
    save(ds, tmp_path / "a")
    vol = load_volume(tmp_path)
    assert vol.hu.max() == 32767
    assert "clipped" in _warn(vol, "clipped")


# --------------------------------------------------------------- geometry problems
def test_gap_is_reported_and_filled_by_interpolation(tmp_path: Path) -> None:
    hu = ramp_volume(nz=6)
    keep = [0, 1, 2, 4, 5]  # slice 3 missing
    pos = [(-10, -20, 30 + 2.0 * k) for k in keep]
    write_series(tmp_path, hu[keep], positions=pos, thickness=2.0)
    vol = load_volume(tmp_path)
    w = _warn(vol, "missing slices")
    assert "about 1 slice" in w
    assert vol.shape[0] == 6 and vol.spacing_mm[2] == pytest.approx(2.0)
    np.testing.assert_array_equal(vol.hu[[0, 1, 2, 4, 5]], hu[keep])
    np.testing.assert_array_equal(vol.hu[3], ((hu[2].astype(int) + hu[4]) // 2))
    assert vol.metadata["missing_slices"] == 1


def test_uneven_spacing_is_resampled_with_warning(tmp_path: Path) -> None:
    hu = ramp_volume(nz=5)
    zs = [0.0, 2.0, 4.0, 7.0, 10.0]  # 2 mm then 3 mm steps
    write_series(tmp_path, hu, positions=[(0, 0, z) for z in zs], thickness=None)
    vol = load_volume(tmp_path)
    assert "uneven slice spacing" in _warn(vol, "uneven slice spacing")
    assert vol.spacing_mm[2] == pytest.approx(2.0)
    assert vol.shape[0] == 6
    # z = 6 mm lies 2/3 of the way from the slice at 4 to the one at 7
    expect = np.rint(hu[2] + (hu[3].astype(float) - hu[2]) * 2 / 3)
    np.testing.assert_array_equal(vol.hu[3], expect.astype(np.int16))
    assert vol.lps_of_ijk((0, 0, 5))[2] == pytest.approx(10.0)


def test_exact_duplicates_dropped_with_warning(tmp_path: Path) -> None:
    hu = ramp_volume(nz=4)
    write_series(tmp_path, hu)
    write_series(tmp_path, hu[1:2], positions=[(-10, -20, 32.0)], names=["dup"])
    vol = load_volume(tmp_path)
    np.testing.assert_array_equal(vol.hu, hu)
    assert "dup" in _warn(vol, "exact duplicate")


def test_conflicting_duplicate_keeps_one_and_says_so(tmp_path: Path) -> None:
    hu = ramp_volume(nz=4)
    write_series(tmp_path, hu)
    write_series(tmp_path, hu[1:2] + 5, positions=[(-10, -20, 32.0)], names=["zzz_other"])
    vol = load_volume(tmp_path)
    assert vol.shape[0] == 4
    w = _warn(vol, "DIFFERENT pixels")
    assert "zzz_other" in w and "5 HU" in w


def test_two_interleaved_volumes_are_refused(tmp_path: Path) -> None:
    hu = ramp_volume(nz=4)
    write_series(tmp_path / "x", hu)
    write_series(tmp_path / "x", hu + 50, names=[f"b{k}" for k in range(4)])
    with pytest.raises(ViewerError, match="two volumes mixed"):
        load_volume(tmp_path)


def test_gantry_tilt_is_desheared_and_marker_stays_in_place(tmp_path: Path) -> None:
    """Axial slices whose origins drift along the column direction: a tilted gantry."""
    nz, ny, nx = 6, 16, 10
    hu = np.full((nz, ny, nx), -1000, np.int16)
    ps = (1.0, 1.0)
    tilt = np.radians(20.0)
    iop = (1, 0, 0, 0, np.cos(tilt), -np.sin(tilt))  # column direction tilted
    row, col = np.array(iop[:3]), np.array(iop[3:])
    normal = np.cross(row, col)
    # Table moves 3 mm along z per slice: slice step along the normal 3 cos(t), drift along col.
    positions = [np.array([0.0, 0.0, 3.0 * k]) for k in range(nz)]
    k0, j0, i0 = 4, 5, 6
    hu[k0, j0, i0] = 1500
    marker = positions[k0] + i0 * ps[1] * row + j0 * ps[0] * col
    write_series(tmp_path, hu, positions=positions, iop=iop, pixel_spacing=ps, thickness=3.0, tilt=20.0)
    vol = load_volume(tmp_path)
    w = _warn(vol, "gantry tilt")
    assert "20.0 deg" in w and "(0018,1120)" in w
    d = vol.direction
    np.testing.assert_allclose(d.T @ d, np.eye(3), atol=1e-9)  # orthogonal grid
    np.testing.assert_allclose(d[:, 2], normal, atol=1e-9)
    assert vol.spacing_mm[2] == pytest.approx(3.0 * np.cos(tilt))
    assert vol.hu_at_lps(tuple(marker)) is not None
    assert vol.hu_at_lps(tuple(marker)) > 300  # the marker, blurred at most by interpolation
    peak = np.unravel_index(np.argmax(vol.hu), vol.shape)
    np.testing.assert_allclose(vol.lps_of_ijk(peak[::-1]), marker, atol=0.75)
    assert vol.shape[1] > ny  # grid widened to keep every acquired pixel


# ----------------------------------------------------------------------- bad input
def test_truncated_file_skipped_and_named(tmp_path: Path) -> None:
    hu = ramp_volume(nz=5)
    files = write_series(tmp_path, hu)
    data = files[2].read_bytes()
    files[2].write_bytes(data[: len(data) - 50])
    vol = load_volume(tmp_path)
    assert files[2].name in _warn(vol, "unreadable")
    assert vol.shape[0] == 5  # the hole is interpolated and reported as a gap
    _warn(vol, "missing slices")


def test_non_dicom_file_skipped_and_named(tmp_path: Path) -> None:
    write_series(tmp_path, ramp_volume())
    (tmp_path / "notes.txt").write_text("not an image")
    vol = load_volume(tmp_path)
    assert "notes.txt" in _warn(vol, "not DICOM")


def test_pixel_data_not_matching_rows_columns(tmp_path: Path) -> None:
    hu = ramp_volume(nz=4)
    write_series(tmp_path, hu)
    bad = slice_dataset(hu[0], (-10, -20, 60.0))
    bad.Rows = 40  # header claims more rows than the pixel data holds
    save(bad, tmp_path / "liar")
    vol = load_volume(tmp_path)
    w = _warn(vol, "liar")
    assert "Rows*Columns" in w
    with pytest.raises(ViewerError, match="liar"):
        load_volume(tmp_path / "liar")


def test_unsupported_or_corrupt_compressed_data_named(tmp_path: Path) -> None:
    hu = ramp_volume(nz=4)
    files = write_series(tmp_path, hu, rle=True)
    import pydicom

    ds = pydicom.dcmread(files[0])
    ds.PixelData = ds.PixelData[:40] + b"\x00" * 8  # broken RLE fragment
    ds.save_as(files[0])
    vol = load_volume(tmp_path)
    assert files[0].name in _warn(vol, "unreadable")


def test_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(ViewerError, match="empty"):
        load_volume(tmp_path)


def test_folder_without_dicom(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("hello")
    (tmp_path / "b.bin").write_bytes(os.urandom(3000))
    with pytest.raises(ViewerError, match="no DICOM") as exc:
        load_volume(tmp_path)
    assert "a.txt" in str(exc.value)


def test_missing_path() -> None:
    with pytest.raises(ViewerError, match="no such file"):
        load_volume("/nonexistent/ct")


def test_non_ct_refused_by_default_loaded_when_asked(tmp_path: Path) -> None:
    write_series(tmp_path, ramp_volume(), modality="MR")
    with pytest.raises(ViewerError, match="no CT series.*MR"):
        load_volume(tmp_path)
    (info,) = scan_series(tmp_path)
    assert info.modality == "MR" and not info.is_ct
    vol = load_volume(tmp_path, series=info.key)
    assert "not Hounsfield" in _warn(vol, "modality MR")


def test_two_series_pick_ct_with_most_slices(tmp_path: Path) -> None:
    write_series(tmp_path / "a", ramp_volume(nz=3), series_uid="1.1", series_number=1)
    write_series(tmp_path / "b", ramp_volume(nz=7), series_uid="1.2", series_number=2)
    write_series(tmp_path / "c", ramp_volume(nz=9), series_uid="1.3", series_number=3, modality="PT")
    infos = scan_series(tmp_path)
    assert [i.key for i in infos][:2] == ["1.2", "1.1"]
    vol = load_volume(tmp_path)
    assert vol.shape[0] == 7
    w = _warn(vol, "other series")
    assert "1.1" in w and "1.3" in w
    assert load_volume(tmp_path, series="1.1").shape[0] == 3
    with pytest.raises(ViewerError, match="no series with key"):
        load_volume(tmp_path, series="9.9")


def test_empty_series_uid_falls_back_to_number_and_geometry(tmp_path: Path) -> None:
    write_series(tmp_path, ramp_volume(nz=4), series_uid="", series_number=3)
    write_series(tmp_path / "sub", ramp_volume(nz=2, ny=8), series_uid=None, series_number=3)
    infos = scan_series(tmp_path)
    assert sorted(i.n_slices for i in infos) == [2, 4]
    assert all("SeriesInstanceUID is empty" in " ".join(i.warnings) for i in infos)
    assert load_volume(tmp_path).shape == (4, 12, 10)


def test_mixed_sizes_in_one_uid_are_split(tmp_path: Path) -> None:
    write_series(tmp_path, ramp_volume(nz=4))
    write_series(tmp_path, ramp_volume(nz=3, ny=8), names=["s0", "s1", "s2"], origin=(0, 0, 0))
    infos = scan_series(tmp_path)
    assert sorted(i.n_slices for i in infos) == [3, 4]
    assert all("split into 2 series" in " ".join(i.warnings) for i in infos)
    assert load_volume(tmp_path).shape[0] == 4


def test_localizers_are_skipped(tmp_path: Path) -> None:
    hu = ramp_volume(nz=4)
    write_series(tmp_path, hu)
    scout = slice_dataset(hu[0], (0, 0, 0), iop=(1, 0, 0, 0, 0, -1), image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"))
    save(scout, tmp_path / "scout")
    lone = slice_dataset(hu[0], (0, 0, 0), iop=(0, 1, 0, 0, 0, -1))  # lone sagittal image
    save(lone, tmp_path / "lone")
    (info,) = scan_series(tmp_path)
    assert info.n_slices == 4
    vol = load_volume(tmp_path)
    np.testing.assert_array_equal(vol.hu, hu)
    assert "scout" in _warn(vol, "localizer")
    assert "lone" in _warn(vol, "lone image")


# ----------------------------------------------------- compressed and multi-frame
def test_rle_compressed_series(tmp_path: Path) -> None:
    hu = ramp_volume()
    write_series(tmp_path, hu, rle=True, unsigned=True, intercept=-1024)
    vol = load_volume(tmp_path)
    np.testing.assert_array_equal(vol.hu, hu)
    assert "RLE" in vol.metadata["TransferSyntax"]


def test_enhanced_multiframe_ct(tmp_path: Path) -> None:
    hu = ramp_volume(nz=5)
    slopes = [1.0, 2.0, 1.0, 0.5, 1.0]
    hu_fit = hu.copy()
    hu_fit[1] = hu[1] // 2 * 2  # representable with slope 2
    write_enhanced_ct(tmp_path / "multi.dcm", hu_fit, origin=(5.0, 6.0, -40.0), spacing_z=1.5, slopes=slopes)
    (info,) = scan_series(tmp_path)
    assert info.n_slices == 5
    vol = load_volume(tmp_path)
    np.testing.assert_array_equal(vol.hu, hu_fit)
    assert vol.spacing_mm == pytest.approx((0.6, 0.8, 1.5))
    np.testing.assert_allclose(vol.origin_lps, (5.0, 6.0, -40.0))


# -------------------------------------------------- progress, privacy, read-only
def test_progress_reports_and_cancel(tmp_path: Path) -> None:
    write_series(tmp_path, ramp_volume(nz=12))
    seen: list[float] = []
    load_volume(tmp_path, progress=lambda f, m: seen.append(f))
    assert seen[-1] == 1.0 and all(0 <= f <= 1 for f in seen)

    def cancel(f: float, msg: str) -> None:
        if "reading slices" in msg:
            raise LoadCancelled()

    import viewer.io.api as api

    api._cache = None
    with pytest.raises(LoadCancelled):
        load_volume(tmp_path, progress=cancel)
    with pytest.raises(LoadCancelled):
        load_volume(tmp_path, progress=lambda f, m: (_ for _ in ()).throw(LoadCancelled()))


def test_identity_only_in_volume_identity(tmp_path: Path) -> None:
    write_series(tmp_path, ramp_volume())
    infos = scan_series(tmp_path)
    assert PATIENT_NAME not in repr(infos) and PATIENT_ID not in repr(infos)
    vol = load_volume(tmp_path)
    assert vol.identity["PatientName"] == PATIENT_NAME
    assert vol.identity["PatientID"] == PATIENT_ID
    text = repr(dict(vol.metadata)) + " ".join(vol.warnings) + vol.description
    assert PATIENT_NAME not in text and PATIENT_ID not in text
    assert vol.metadata["Manufacturer"] == "TestCo" and vol.metadata["KVP"] == 100


def test_source_files_are_not_modified(tmp_path: Path) -> None:
    files = write_series(tmp_path, ramp_volume(), rle=False)
    files[1].write_bytes(files[1].read_bytes()[:-10])  # a damaged file, still not touched
    before = {f: (hashlib.sha1(f.read_bytes()).hexdigest(), f.stat().st_mtime_ns) for f in files}
    for f in files:
        f.chmod(0o444)
    load_volume(tmp_path)
    after = {f: (hashlib.sha1(f.read_bytes()).hexdigest(), f.stat().st_mtime_ns) for f in files}
    assert before == after


def test_a_volume_too_big_for_memory_is_refused_not_allocated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On Linux a huge allocation 'succeeds' and the kernel kills the process later:
    the loader checks the available memory first and says what it would need."""
    import viewer.core.memory as memory

    folder = tmp_path / "series"
    write_series(folder, np.zeros((4, 8, 8), np.int16))
    monkeypatch.setattr(memory, "available_memory_bytes", lambda: 100)  # 100 bytes "available"
    with pytest.raises(ViewerError, match=r"needs .* GiB but only .* available"):
        load_volume(folder)
    monkeypatch.setattr(memory, "available_memory_bytes", lambda: None)  # unknown: no check
    assert load_volume(folder).shape == (4, 8, 8)
