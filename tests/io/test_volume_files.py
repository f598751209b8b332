"""NIfTI-1, NRRD and MetaImage round trips with files written here by hand (numpy)."""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from viewer.core.errors import ViewerError
from viewer.io import load_volume, scan_series

SHAPE_ZYX = (4, 5, 6)


def _data() -> np.ndarray:
    return (np.arange(np.prod(SHAPE_ZYX)).reshape(SHAPE_ZYX) * 3 - 500).astype(np.int16)


def _rot() -> np.ndarray:
    """A proper rotation (about z by 30 deg, then a 90-deg tilt) for non-trivial geometry."""
    t = np.radians(30)
    rz = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])
    return rz @ np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]])


SPACING = np.array([0.5, 0.7, 1.3])
ORIGIN_LPS = np.array([10.0, -20.0, 30.0])


def _expected_affine() -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = _rot() @ np.diag(SPACING)
    m[:3, 3] = ORIGIN_LPS
    return m


# ----------------------------------------------------------------------------- NIfTI
def _nifti_bytes(
    data: np.ndarray,
    ras: np.ndarray,
    sform: bool,
    slope: float = 1.0,
    inter: float = 0.0,
    datatype: int = 4,
    qfac: float = 1.0,
) -> bytes:
    nz, ny, nx = data.shape
    h = bytearray(352)
    struct.pack_into("<i", h, 0, 348)
    struct.pack_into("<8h", h, 40, 3, nx, ny, nz, 1, 1, 1, 1)
    struct.pack_into("<hh", h, 70, datatype, data.dtype.itemsize * 8)
    sp = np.linalg.norm(ras[:3, :3], axis=0)
    struct.pack_into("<8f", h, 76, qfac, *sp, 0, 0, 0, 0)
    struct.pack_into("<f", h, 108, 352.0)
    struct.pack_into("<ff", h, 112, slope, inter)
    if sform:
        struct.pack_into("<hh", h, 252, 0, 2)
        struct.pack_into("<12f", h, 280, *ras[:3, :].ravel())
    else:
        # quaternion of the rotation part (qfac handles a left-handed third axis)
        r = ras[:3, :3] / sp
        r = r @ np.diag([1, 1, qfac])
        w = np.sqrt(max(0.0, 1 + np.trace(r))) / 2
        b, c, d = (r[2, 1] - r[1, 2]) / (4 * w), (r[0, 2] - r[2, 0]) / (4 * w), (r[1, 0] - r[0, 1]) / (4 * w)
        struct.pack_into("<hh", h, 252, 1, 0)
        struct.pack_into("<6f", h, 256, b, c, d, *ras[:3, 3])
    h[344:348] = b"n+1\x00"
    return bytes(h) + data.tobytes()


@pytest.mark.parametrize("sform", [True, False])
@pytest.mark.parametrize("gz", [True, False])
def test_nifti_round_trip_ras_to_lps(tmp_path: Path, sform: bool, gz: bool) -> None:
    lps = _expected_affine()
    ras = np.diag([-1.0, -1, 1, 1]) @ lps
    blob = _nifti_bytes(_data(), ras, sform)
    path = tmp_path / ("ct.nii.gz" if gz else "ct.nii")
    path.write_bytes(gzip.compress(blob) if gz else blob)
    vol = load_volume(path)
    np.testing.assert_array_equal(vol.hu, _data())
    np.testing.assert_allclose(vol.ijk_to_lps, lps, atol=1e-5)
    assert vol.spacing_mm == pytest.approx(tuple(SPACING), abs=1e-6)
    (info,) = scan_series(path)
    assert info.kind == "nifti" and (info.columns, info.rows, info.n_slices) == (6, 5, 4)


def test_nifti_scl_slope_float_data_rounded(tmp_path: Path) -> None:
    data = _data().astype(np.float32) + 0.4
    ras = np.diag([-1.0, -1, 1, 1]) @ _expected_affine()
    path = tmp_path / "f.nii"
    path.write_bytes(_nifti_bytes(data, ras, True, slope=2.0, inter=-10.0, datatype=16))
    vol = load_volume(path)
    np.testing.assert_array_equal(vol.hu, np.rint(data.astype(np.float64) * 2 - 10).astype(np.int16))


def test_nifti_sform_preferred_over_qform(tmp_path: Path) -> None:
    ras = np.diag([-1.0, -1, 1, 1]) @ _expected_affine()
    blob = bytearray(_nifti_bytes(_data(), ras, sform=True))
    struct.pack_into("<hh", blob, 252, 1, 2)  # qform_code 1 (zeros: identity), sform_code 2
    path = tmp_path / "both.nii"
    path.write_bytes(bytes(blob))
    np.testing.assert_allclose(load_volume(path).ijk_to_lps, _expected_affine(), atol=1e-5)


def test_nifti_garbage_is_a_viewer_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.nii"
    path.write_bytes(b"\x00" * 400)
    with pytest.raises(ViewerError, match="bad.nii"):
        load_volume(path)


# ------------------------------------------------------------------------------ NRRD
def _nrrd(
    path: Path, data: np.ndarray, m_lps: np.ndarray, space: str, encoding: str = "raw", detached: bool = False
) -> None:
    flip = np.diag([-1.0, -1, 1, 1]) if space == "right-anterior-superior" else np.eye(4)
    m = flip @ m_lps
    dirs = " ".join("(" + ",".join(repr(float(x)) for x in m[:3, c]) + ")" for c in range(3))
    body = data.astype("<i2").tobytes()
    if encoding == "gzip":
        body = gzip.compress(body)
    nz, ny, nx = data.shape
    header = (
        f"NRRD0004\n# test\ntype: short\ndimension: 3\nspace: {space}\nsizes: {nx} {ny} {nz}\n"
        f"space directions: {dirs}\nkinds: domain domain domain\nendian: little\n"
        f"encoding: {encoding}\nspace origin: ({','.join(repr(float(x)) for x in m[:3, 3])})\n"
        f"key:=value\n"
    )
    if detached:
        (path.parent / "data.raw").write_bytes(body)
        path.write_text(header + "data file: data.raw\n")
    else:
        path.write_bytes(header.encode() + b"\n" + body)


@pytest.mark.parametrize("space", ["left-posterior-superior", "right-anterior-superior"])
@pytest.mark.parametrize("encoding", ["raw", "gzip"])
def test_nrrd_round_trip(tmp_path: Path, space: str, encoding: str) -> None:
    path = tmp_path / "ct.nrrd"
    _nrrd(path, _data(), _expected_affine(), space, encoding)
    vol = load_volume(path)
    np.testing.assert_array_equal(vol.hu, _data())
    np.testing.assert_allclose(vol.ijk_to_lps, _expected_affine(), atol=1e-9)


def test_nrrd_detached_header(tmp_path: Path) -> None:
    path = tmp_path / "ct.nhdr"
    _nrrd(path, _data(), _expected_affine(), "left-posterior-superior", detached=True)
    (info,) = scan_series(tmp_path)  # data.raw is the header's data file, not a DICOM candidate
    assert info.kind == "nrrd" and not info.warnings
    np.testing.assert_array_equal(load_volume(path).hu, _data())


def test_truncated_nrrd_named(tmp_path: Path) -> None:
    path = tmp_path / "short.nrrd"
    _nrrd(path, _data(), _expected_affine(), "left-posterior-superior")
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(ViewerError, match="short.nrrd.*truncated"):
        load_volume(path)


def test_gzip_nrrd_of_several_members_and_a_truncated_one(tmp_path: Path) -> None:
    """The gzip reader (one zlib call a member) reads a stream of two members (what
    ``cat a.gz b.gz`` or a parallel compressor writes) as one, and a stream cut inside
    its member is a clear error naming the file."""
    path = tmp_path / "two.nrrd"
    _nrrd(path, _data(), _expected_affine(), "left-posterior-superior", "gzip")
    blob = path.read_bytes()
    head, body = blob[: blob.index(b"\n\n") + 2], blob[blob.index(b"\n\n") + 2 :]
    raw = gzip.decompress(body)
    half = len(raw) // 2
    # (one member first: decompressed straight into the volume's own array, writable)
    one = load_volume(path)
    np.testing.assert_array_equal(one.hu, _data())
    assert one.hu.flags.writeable and one.hu.flags.c_contiguous
    path.write_bytes(head + gzip.compress(raw[:half]) + gzip.compress(raw[half:]) + b"\x00" * 8)
    np.testing.assert_array_equal(load_volume(path).hu, _data())
    cut = tmp_path / "cut.nrrd"
    cut.write_bytes(head + body[: len(body) // 2])
    with pytest.raises(ViewerError, match="cut.nrrd.*truncated"):
        load_volume(cut)
    notgz = tmp_path / "notgz.nrrd"
    notgz.write_bytes(head + b"this is not gzip data at all" * 4)
    with pytest.raises(ViewerError, match="notgz.nrrd"):
        load_volume(notgz)


def test_truncated_nifti_gz_named(tmp_path: Path) -> None:
    path = tmp_path / "ct.nii.gz"
    ras = np.diag([-1.0, -1, 1, 1]) @ _expected_affine()
    blob = gzip.compress(_nifti_bytes(_data(), ras, True))
    path.write_bytes(blob[: len(blob) // 2])
    from viewer.io.volume_files import kind_of, read_volume_file

    kind = kind_of(path)
    assert kind is not None
    with pytest.raises(ViewerError, match="ct.nii.gz.*truncated"):
        read_volume_file(path, kind)
    with pytest.raises(ViewerError, match="ct.nii.gz"):
        load_volume(path)


# ------------------------------------------------------------------------- MetaImage
def _mha_header(data: np.ndarray, m: np.ndarray, datafile: str, compressed: bool = False) -> str:
    nz, ny, nx = data.shape
    sp = np.linalg.norm(m[:3, :3], axis=0)
    d = m[:3, :3] / sp
    tm = " ".join(repr(float(x)) for x in d.T.ravel())  # axis cosines one after another
    return (
        f"ObjectType = Image\nNDims = 3\nBinaryData = True\nBinaryDataByteOrderMSB = False\n"
        f"CompressedData = {compressed}\nTransformMatrix = {tm}\n"
        f"Offset = {' '.join(repr(float(x)) for x in m[:3, 3])}\n"
        f"AnatomicalOrientation = RAI\nElementSpacing = {' '.join(repr(float(s)) for s in sp)}\n"
        f"DimSize = {nx} {ny} {nz}\nElementType = MET_SHORT\nElementDataFile = {datafile}\n"
    )


@pytest.mark.parametrize("compressed", [False, True])
def test_mha_local_round_trip(tmp_path: Path, compressed: bool) -> None:
    body = _data().astype("<i2").tobytes()
    body = zlib.compress(body) if compressed else body
    path = tmp_path / "ct.mha"
    path.write_bytes(_mha_header(_data(), _expected_affine(), "LOCAL", compressed).encode() + body)
    vol = load_volume(path)
    np.testing.assert_array_equal(vol.hu, _data())
    np.testing.assert_allclose(vol.ijk_to_lps, _expected_affine(), atol=1e-9)


def test_mhd_with_raw_file(tmp_path: Path) -> None:
    (tmp_path / "ct.raw").write_bytes(_data().astype("<i2").tobytes())
    path = tmp_path / "ct.mhd"
    path.write_text(_mha_header(_data(), _expected_affine(), "ct.raw"))
    vol = load_volume(tmp_path)  # folder: the .raw must not be reported as non-DICOM
    np.testing.assert_array_equal(vol.hu, _data())
    assert not any("not DICOM" in w for w in vol.warnings)


def test_simpleitk_agrees_when_installed(tmp_path: Path) -> None:
    """Independent check of all three parsers against ITK's readers/writers."""
    sitk = pytest.importorskip("SimpleITK")
    img = sitk.GetImageFromArray(_data())
    img.SetSpacing(tuple(SPACING))
    img.SetOrigin(tuple(ORIGIN_LPS))
    img.SetDirection(tuple(_rot().ravel()))
    for name in ("a.mha", "b.nrrd", "c.nii.gz"):
        sitk.WriteImage(img, str(tmp_path / name))
        vol = load_volume(tmp_path / name)
        np.testing.assert_array_equal(vol.hu, _data())
        np.testing.assert_allclose(vol.ijk_to_lps, _expected_affine(), atol=1e-5, err_msg=name)
