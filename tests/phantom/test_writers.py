"""viewer.io.writers: DICOM series, NRRD, NIfTI-1; headers parsed back independently."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pydicom
import pytest

from viewer.core.errors import ViewerError
from viewer.core.volume import Volume, axis_aligned_affine
from viewer.io.writers import write_dicom_series, write_nifti, write_nrrd


def _tiny_volume(lo: int = -1000) -> Volume:
    rng = np.random.default_rng(3)
    hu = rng.integers(lo, 2000, size=(5, 6, 7)).astype(np.int16)
    return Volume(
        hu=hu, spacing_mm=(0.5, 0.75, 2.0), ijk_to_lps=axis_aligned_affine((0.5, 0.75, 2.0), (10.25, -20.5, -300.0))
    )


def test_dicom_tags_of_the_phantom(small_phantom, small_phantom_dicom_dir: Path) -> None:
    files = sorted(small_phantom_dicom_dir.glob("*.dcm"))
    vol = small_phantom.volume
    assert len(files) == vol.shape[0]
    series, sops = set(), set()
    for k in (0, 1, len(files) // 2, len(files) - 1):
        ds = pydicom.dcmread(files[k])
        assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
        assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2"  # CT Image Storage
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.Modality == "CT" and ds.PatientPosition == "HFS"
        assert ds.PatientName == "PHANTOM^LOWER LEG" and ds.PatientID == "PHANTOM-0001"
        assert ds.InstanceNumber == k + 1
        assert [float(v) for v in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
        assert np.allclose([float(v) for v in ds.ImagePositionPatient], vol.lps_of_ijk((0, 0, k)), atol=1e-6)
        assert [float(v) for v in ds.PixelSpacing] == [vol.spacing_mm[1], vol.spacing_mm[0]]
        assert float(ds.SliceThickness) == vol.spacing_mm[2]
        assert (ds.Rows, ds.Columns) == vol.shape[1:]
        hu = ds.pixel_array.astype(np.int32) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        assert np.array_equal(hu, vol.hu[k])
        assert ds.FrameOfReferenceUID and ds.StudyInstanceUID
        series.add(ds.SeriesInstanceUID)
        sops.add(ds.SOPInstanceUID)
    assert len(series) == 1 and len(sops) == 4


def test_dicom_is_reproducible_and_signed_when_needed(tmp_path: Path) -> None:
    vol = _tiny_volume()
    a = write_dicom_series(vol, tmp_path / "a")
    b = write_dicom_series(vol, tmp_path / "b")
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    # HU below -1024 cannot be stored unsigned with intercept -1024: signed, intercept 0
    low = Volume(hu=np.full((2, 3, 4), -2000, np.int16), spacing_mm=(1, 1, 1), ijk_to_lps=np.eye(4))
    (p,) = write_dicom_series(low, tmp_path / "c")[:1]
    ds = pydicom.dcmread(p)
    assert ds.PixelRepresentation == 1 and float(ds.RescaleIntercept) == 0
    assert np.all(ds.pixel_array == -2000)


def test_dicom_feet_first_positions(tmp_path: Path) -> None:
    m = axis_aligned_affine((1.0, 1.0, 2.0), (0.0, 0.0, 100.0))
    m[:3, 2] *= -1  # slices run inferior
    vol = Volume(hu=np.zeros((3, 4, 4), np.int16), spacing_mm=(1, 1, 2), ijk_to_lps=m)
    paths = write_dicom_series(vol, tmp_path / "ff")
    zs = [float(pydicom.dcmread(p).ImagePositionPatient[2]) for p in paths]
    assert zs == [100.0, 98.0, 96.0]
    assert pydicom.dcmread(paths[0]).PatientPosition == "FFS"


def test_dicom_refuses_to_overwrite(tmp_path: Path) -> None:
    vol = _tiny_volume()
    out = tmp_path / "series"
    write_dicom_series(vol, out)
    before = (out / "IM_00001.dcm").read_bytes()
    other = Volume(hu=vol.hu + 1, spacing_mm=vol.spacing_mm, ijk_to_lps=vol.ijk_to_lps)
    with pytest.raises(ViewerError, match="overwrite"):
        write_dicom_series(other, out)
    assert (out / "IM_00001.dcm").read_bytes() == before
    # a user's own file in the folder is never touched, even with overwrite=True
    (out / "notes.txt").write_text("mine")
    shorter = Volume(hu=vol.hu[:3], spacing_mm=vol.spacing_mm, ijk_to_lps=vol.ijk_to_lps)
    write_dicom_series(shorter, out, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["IM_00001.dcm", "IM_00002.dcm", "IM_00003.dcm", "notes.txt"]
    assert (out / "notes.txt").read_text() == "mine"
    with pytest.raises(ViewerError, match="not a folder"):
        write_dicom_series(vol, out / "notes.txt")


def _read_nrrd(path: Path) -> tuple[dict[str, str], bytes]:
    raw = path.read_bytes()
    head, _, body = raw.partition(b"\n\n")
    lines = head.decode("ascii").splitlines()
    assert lines[0] == "NRRD0004"
    fields = {}
    for line in lines[1:]:
        if line.startswith("#"):
            continue
        key, _, val = line.partition(": ")
        fields[key] = val
    return fields, gzip.decompress(body) if fields.get("encoding") == "gzip" else body


def _vecs(s: str) -> np.ndarray:
    return np.array([[float(x) for x in v.strip("()").split(",")] for v in s.split()])


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.bool_])
def test_nrrd_header_and_data(tmp_path: Path, dtype) -> None:
    m = np.array([[0.0, 0.5, 0, 10.25], [-0.75, 0, 0, -20.5], [0, 0, 2.0, -300], [0, 0, 0, 1]])
    arr = (np.arange(5 * 6 * 7).reshape(5, 6, 7) % (2 if dtype == np.bool_ else 200)).astype(dtype)
    p = write_nrrd(arr, m, tmp_path / "x.nrrd")
    f, data = _read_nrrd(p)
    assert f["space"] == "left-posterior-superior"
    assert f["sizes"] == "7 6 5" and f["dimension"] == "3" and f["endian"] == "little"
    assert f["type"] == {np.uint8: "uint8", np.int16: "int16", np.bool_: "uint8"}[dtype]
    assert np.allclose(_vecs(f["space directions"]), m[:3, :3].T)  # one vector per axis i, j, k
    assert np.allclose(_vecs(f["space origin"])[0], m[:3, 3])
    back = np.frombuffer(data, dtype=np.uint8 if dtype == np.bool_ else np.dtype(dtype).newbyteorder("<")).reshape(
        5, 6, 7
    )
    assert np.array_equal(back, arr.astype(back.dtype))
    with pytest.raises(ViewerError, match="already exists"):
        write_nrrd(arr, m, p)
    write_nrrd(arr, m, p, overwrite=True)


def _read_nifti(path: Path) -> tuple[dict, np.ndarray]:
    raw = path.read_bytes()
    if path.name.endswith(".gz"):
        raw = gzip.decompress(raw)
    (sizeof_hdr,) = struct.unpack_from("<i", raw, 0)
    assert sizeof_hdr == 348
    h = {
        "dim": struct.unpack_from("<8h", raw, 40),
        "datatype": struct.unpack_from("<h", raw, 70)[0],
        "pixdim": struct.unpack_from("<8f", raw, 76),
        "vox_offset": struct.unpack_from("<f", raw, 108)[0],
        "scl_slope": struct.unpack_from("<f", raw, 112)[0],
        "xyzt_units": raw[123],
        "qform_code": struct.unpack_from("<h", raw, 252)[0],
        "sform_code": struct.unpack_from("<h", raw, 254)[0],
        "quatern": struct.unpack_from("<3f", raw, 256),
        "qoffset": struct.unpack_from("<3f", raw, 268),
        "srow": np.array(struct.unpack_from("<12f", raw, 280)).reshape(3, 4),
        "magic": raw[344:348],
    }
    off = int(h["vox_offset"])
    dt = {2: np.uint8, 4: np.int16}[h["datatype"]]
    nx, ny, nz = h["dim"][1:4]
    data = np.frombuffer(raw[off:], dtype=np.dtype(dt).newbyteorder("<")).reshape(nz, ny, nx)
    return h, data


def _quatern_to_matrix(b: float, c: float, d: float, qfac: float, spacing) -> np.ndarray:
    a = np.sqrt(max(0.0, 1.0 - (b * b + c * c + d * d)))
    r = np.array(
        [
            [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
            [2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)],
            [2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b],
        ]
    )
    r[:, 2] *= qfac
    return r * np.asarray(spacing)[None, :]


@pytest.mark.parametrize("name", ["x.nii", "x.nii.gz"])
@pytest.mark.parametrize("feet_first", [False, True])
def test_nifti_header_and_data(tmp_path: Path, name: str, feet_first: bool) -> None:
    m = axis_aligned_affine((0.7, 0.8, 1.5), (11.95, -50.05, -884.0))
    if feet_first:
        m[:3, 2] *= -1
    arr = (np.arange(4 * 5 * 6).reshape(4, 5, 6) % 11).astype(np.int16) - 3
    p = write_nifti(arr, m, tmp_path / name)
    h, data = _read_nifti(p)
    assert h["magic"] == b"n+1\0" and h["vox_offset"] == 352.0
    assert h["dim"][:4] == (3, 6, 5, 4) and h["datatype"] == 4
    assert h["qform_code"] == 1 and h["sform_code"] == 1 and h["xyzt_units"] == 2
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ m
    assert np.allclose(h["srow"], ras[:3], atol=1e-4)
    q = _quatern_to_matrix(*h["quatern"], h["pixdim"][0], h["pixdim"][1:4])
    assert np.allclose(q, ras[:3, :3], atol=1e-5)
    assert np.allclose(h["qoffset"], ras[:3, 3], atol=1e-4)
    assert np.array_equal(data, arr)


def test_nifti_bool_mask_and_bad_name(tmp_path: Path) -> None:
    mask = np.zeros((3, 4, 5), bool)
    mask[1, 2, 3] = True
    h, data = _read_nifti(write_nifti(mask, np.eye(4), tmp_path / "m.nii.gz"))
    assert h["datatype"] == 2 and data[1, 2, 3] == 1 and data.sum() == 1
    with pytest.raises(ViewerError, match=r"\.nii"):
        write_nifti(mask, np.eye(4), tmp_path / "m.img")
    with pytest.raises(ViewerError, match="3D"):
        write_nrrd(np.zeros((3, 4)), np.eye(4), tmp_path / "flat.nrrd")
