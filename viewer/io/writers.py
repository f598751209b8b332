"""Writing volumes to standard files: a CT DICOM series, NRRD and NIfTI-1.

Nothing custom: files that 3D Slicer, ITK-SNAP, pydicom, SimpleITK and our own loader
read as they are.

* :func:`write_dicom_series` -- one CT Image Storage file per axial slice (PS3.3
  A.3), Explicit VR Little Endian, uncompressed 16-bit pixels. HU that fit
  ``[-1024, 64511]`` are stored unsigned with (0028,1052) RescaleIntercept -1024, as
  most CT scanners do; anything below -1024 is stored signed with intercept 0.
* :func:`write_nrrd` -- NRRD0004, ``space: left-posterior-superior``, ``space
  directions`` / ``space origin`` from ``ijk_to_lps``, gzip encoding.
* :func:`write_nifti` -- NIfTI-1 single file (``.nii`` or ``.nii.gz``) with sform and
  qform (code 1, scanner anatomical). NIfTI's world frame is RAS, so the LPS affine is
  pre-multiplied by ``diag(-1, -1, 1)``.

Arrays are ``(nz, ny, nx)`` C-order (index ``[k, j, i]``), so their bytes are already in
the order both NRRD and NIfTI expect (i fastest). Writers never overwrite a file unless
asked to (``overwrite=True``); they never touch files they would not write.
"""

from __future__ import annotations

import datetime as _dt
import gzip
import hashlib
import os
import re
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from viewer.core.errors import ViewerError
from viewer.core.fileio import atomic_write
from viewer.core.progress import ProgressFn, report
from viewer.core.volume import Volume

if TYPE_CHECKING:  # pragma: no cover - pydicom is imported where it is used (start-up time)
    from pydicom.uid import UID

# ----------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def _as_3d_array(array: np.ndarray, path: Path) -> np.ndarray:
    a = np.asarray(array)
    if a.ndim != 3:
        raise ViewerError(f"expected a 3D (nz, ny, nx) array, got shape {a.shape}", path)
    if a.dtype == np.bool_:
        a = a.astype(np.uint8)
    if a.dtype not in (np.uint8, np.int8, np.int16, np.uint16, np.int32, np.uint32, np.float32, np.float64):
        raise ViewerError(f"cannot write arrays of type {a.dtype}", path)
    # little endian on disk (both headers below say so)
    return np.ascontiguousarray(a.astype(a.dtype.newbyteorder("<"), copy=False))


def _as_affine(ijk_to_lps: np.ndarray, path: Path) -> np.ndarray:
    m = np.asarray(ijk_to_lps, dtype=np.float64)
    if m.shape != (4, 4) or not np.all(np.isfinite(m)) or abs(np.linalg.det(m[:3, :3])) < 1e-12:
        raise ViewerError("ijk_to_lps must be a finite, non-singular 4x4 matrix", path)
    return m


def _check_target(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise ViewerError(f"{path} already exists; not overwriting it (pass overwrite=True to replace it)", path)
    if path.exists() and path.is_dir():
        raise ViewerError(f"{path} is a folder, not a file", path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ViewerError(f"cannot create folder {path.parent}: {exc}", path.parent) from None


def _array_and_path(a, b, c) -> tuple[np.ndarray, np.ndarray, Path]:
    """Check the documented argument order ``(array, ijk_to_lps, path)``."""
    if isinstance(c, (str, os.PathLike)):
        return a, b, Path(c)
    raise ViewerError("write_nrrd/write_nifti need (array, ijk_to_lps, path)")


def _atomic_write(path: Path, payload_writer) -> None:
    """A failure never leaves a half-written file under the final name."""
    atomic_write(path, payload_writer)


# ----------------------------------------------------------------------------------
# NRRD
# ----------------------------------------------------------------------------------
_NRRD_TYPES = {
    np.dtype(np.uint8): "uint8",
    np.dtype(np.int8): "int8",
    np.dtype(np.int16): "int16",
    np.dtype(np.uint16): "uint16",
    np.dtype(np.int32): "int32",
    np.dtype(np.uint32): "uint32",
    np.dtype(np.float32): "float",
    np.dtype(np.float64): "double",
}


def _nrrd_vec(v: Iterable[float]) -> str:
    return "(" + ",".join(repr(float(x)) for x in v) + ")"


def write_nrrd(array, ijk_to_lps, path, *, overwrite: bool = False, compresslevel: int = 6) -> Path:
    """Write a 3D ``(nz, ny, nx)`` array as a gzip-encoded NRRD in LPS space.

    ``space directions`` are the columns of ``ijk_to_lps[:3, :3]`` (the i, j, k steps in
    mm), ``space origin`` is its translation (centre of voxel 0, 0, 0). bool is written
    as uint8. Returns the path.
    """
    array, ijk_to_lps, path = _array_and_path(array, ijk_to_lps, path)
    a = _as_3d_array(array, path)
    m = _as_affine(ijk_to_lps, path)
    _check_target(path, overwrite)
    nz, ny, nx = a.shape
    header = "\n".join(
        [
            "NRRD0004",
            "# Complete NRRD file format specification at:",
            "# http://teem.sourceforge.net/nrrd/format.html",
            f"type: {_NRRD_TYPES[a.dtype]}",
            "dimension: 3",
            "space: left-posterior-superior",
            f"sizes: {nx} {ny} {nz}",
            "space directions: " + " ".join(_nrrd_vec(m[:3, c]) for c in range(3)),
            "kinds: domain domain domain",
            "endian: little",
            "encoding: gzip",
            "space origin: " + _nrrd_vec(m[:3, 3]),
            "",
            "",
        ]
    ).encode("ascii")

    def payload(fh) -> None:
        fh.write(header)
        with gzip.GzipFile(fileobj=fh, mode="wb", compresslevel=compresslevel, mtime=0) as gz:
            gz.write(a.data.cast("B"))

    _atomic_write(path, payload)
    return path


# ----------------------------------------------------------------------------------
# NIfTI-1
# ----------------------------------------------------------------------------------
_NIFTI_TYPES = {  # dtype -> (datatype code, bitpix), NIfTI-1 nifti1.h
    np.dtype(np.uint8): (2, 8),
    np.dtype(np.int16): (4, 16),
    np.dtype(np.int32): (8, 32),
    np.dtype(np.float32): (16, 32),
    np.dtype(np.float64): (64, 64),
    np.dtype(np.int8): (256, 8),
    np.dtype(np.uint16): (512, 16),
    np.dtype(np.uint32): (768, 32),
}
#: The 348-byte NIfTI-1 header, little endian (field order of nifti1.h).
_NIFTI_HDR = struct.Struct("<i10s18sihsB8h3fhhhh8ffffhBBffffii80s24shh3f3f4f4f4f16s4s")
assert _NIFTI_HDR.size == 348


def _quaternion(r: np.ndarray) -> tuple[float, float, float, float]:
    """(b, c, d, qfac) of a 3x3 matrix with unit columns, as nifti1_io's
    ``nifti_mat44_to_quatern``: a proper rotation after flipping the third column when
    the determinant is negative (qfac = -1)."""
    # nearest orthonormal matrix (polar decomposition), for slightly sheared inputs
    u, _, vt = np.linalg.svd(r)
    q = u @ vt
    qfac = 1.0
    if np.linalg.det(q) < 0:
        qfac = -1.0
        q[:, 2] = -q[:, 2]
    a = 1.0 + q[0, 0] + q[1, 1] + q[2, 2]
    if a > 0.5:
        a = 0.5 * np.sqrt(a)
        b = 0.25 * (q[2, 1] - q[1, 2]) / a
        c = 0.25 * (q[0, 2] - q[2, 0]) / a
        d = 0.25 * (q[1, 0] - q[0, 1]) / a
    else:
        xd = 1.0 + q[0, 0] - (q[1, 1] + q[2, 2])
        yd = 1.0 + q[1, 1] - (q[0, 0] + q[2, 2])
        zd = 1.0 + q[2, 2] - (q[0, 0] + q[1, 1])
        if xd > 1.0:
            b = 0.5 * np.sqrt(xd)
            c = 0.25 * (q[0, 1] + q[1, 0]) / b
            d = 0.25 * (q[0, 2] + q[2, 0]) / b
            a = 0.25 * (q[2, 1] - q[1, 2]) / b
        elif yd > 1.0:
            c = 0.5 * np.sqrt(yd)
            b = 0.25 * (q[0, 1] + q[1, 0]) / c
            d = 0.25 * (q[1, 2] + q[2, 1]) / c
            a = 0.25 * (q[0, 2] - q[2, 0]) / c
        else:
            d = 0.5 * np.sqrt(zd)
            b = 0.25 * (q[0, 2] + q[2, 0]) / d
            c = 0.25 * (q[1, 2] + q[2, 1]) / d
            a = 0.25 * (q[1, 0] - q[0, 1]) / d
        if a < 0.0:
            b, c, d = -b, -c, -d
    return float(b), float(c), float(d), qfac


def write_nifti(
    array, ijk_to_lps, path, *, overwrite: bool = False, description: str = "", compresslevel: int = 6
) -> Path:
    """Write a 3D ``(nz, ny, nx)`` array as NIfTI-1 (``.nii`` or ``.nii.gz``).

    sform (code 1) holds the exact affine ``diag(-1, -1, 1) @ ijk_to_lps`` (RAS); qform
    (code 1) its rotation part as a quaternion with ``pixdim`` spacings and qfac.
    ``xyzt_units`` = mm. bool is written as uint8. Returns the path.
    """
    array, ijk_to_lps, path = _array_and_path(array, ijk_to_lps, path)
    name = path.name.lower()
    if not (name.endswith(".nii") or name.endswith(".nii.gz")):
        raise ViewerError("a NIfTI file name must end in .nii or .nii.gz", path)
    a = _as_3d_array(array, path)
    m = _as_affine(ijk_to_lps, path)
    _check_target(path, overwrite)
    nz, ny, nx = a.shape
    ras = _LPS_TO_RAS @ m
    spacing = np.linalg.norm(ras[:3, :3], axis=0)
    b, c, d, qfac = _quaternion(ras[:3, :3] / spacing[None, :])
    code, bitpix = _NIFTI_TYPES[a.dtype]
    hdr = _NIFTI_HDR.pack(
        348,
        b"",
        b"",
        0,
        0,
        b"r",
        0,
        3,
        nx,
        ny,
        nz,
        1,
        1,
        1,
        1,  # dim
        0.0,
        0.0,
        0.0,
        0,  # intent p1-p3, intent_code
        code,
        bitpix,
        0,  # datatype, bitpix, slice_start
        qfac,
        float(spacing[0]),
        float(spacing[1]),
        float(spacing[2]),
        0.0,
        0.0,
        0.0,
        0.0,  # pixdim
        352.0,
        1.0,
        0.0,  # vox_offset, scl_slope, scl_inter
        0,
        0,
        2,  # slice_end, slice_code, xyzt_units (NIFTI_UNITS_MM)
        0.0,
        0.0,
        0.0,
        0.0,
        0,
        0,  # cal_max, cal_min, slice_duration, toffset, glmax, glmin
        description.encode("ascii", "replace")[:79],
        b"",
        1,
        1,  # qform_code, sform_code: NIFTI_XFORM_SCANNER_ANAT
        b,
        c,
        d,
        float(ras[0, 3]),
        float(ras[1, 3]),
        float(ras[2, 3]),
        *(float(v) for v in ras[0, :4]),
        *(float(v) for v in ras[1, :4]),
        *(float(v) for v in ras[2, :4]),
        b"",
        b"n+1\0",
    )

    def payload(fh) -> None:
        if name.endswith(".gz"):
            with gzip.GzipFile(fileobj=fh, mode="wb", compresslevel=compresslevel, mtime=0) as gz:
                gz.write(hdr + b"\0\0\0\0")
                gz.write(a.data.cast("B"))
        else:
            fh.write(hdr + b"\0\0\0\0")  # 4-byte extension flag: no extensions
            fh.write(a.data.cast("B"))

    _atomic_write(path, payload)
    return path


# ----------------------------------------------------------------------------------
# DICOM
# ----------------------------------------------------------------------------------
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
DICOM_NAME_PATTERN = re.compile(r"^IM_\d{5}\.dcm$")


def dicom_file_name(index: int) -> str:
    """File name of slice ``index`` (0-based) in a series written here."""
    return f"IM_{index + 1:05d}.dcm"


def _ds(v: float) -> str:
    """A Decimal String (VR DS, at most 16 characters) for ``v``: rounded to 1e-6 mm,
    trailing zeros dropped, so 12.65 is written "12.65", not "12.649999999999999"."""
    s = f"{float(v):.6f}".rstrip("0").rstrip(".")
    if s in ("-0", ""):
        s = "0"
    if len(s) > 16:
        from pydicom.valuerep import format_number_as_ds

        s = format_number_as_ds(float(v))
    return s


def _uid(*parts: object) -> UID:
    from pydicom.uid import generate_uid

    # Deterministic: the same inputs give the same UID (reproducible files), and
    # generate_uid hashes the entropy sources into the 2.25 / pydicom root.
    return generate_uid(entropy_srcs=[str(p) for p in parts])


def write_dicom_series(
    volume: Volume,
    outdir: str | Path,
    *,
    series_description: str = "Lower-leg CTA phantom",
    patient_name: str = "PHANTOM^LOWER LEG",
    patient_id: str = "PHANTOM-0001",
    progress: ProgressFn | None = None,
    feet_first: bool | None = None,
    overwrite: bool = False,
    series_number: int = 1,
    study_description: str = "CT angiography lower extremity (synthetic)",
) -> list[Path]:
    """Write ``volume`` as a CT Image Storage series, one file per slice.

    Geometry: (0020,0037) ImageOrientationPatient = the unit i and j columns of
    ``ijk_to_lps``; (0020,0032) ImagePositionPatient of slice k = ``ijk_to_lps @ (0, 0,
    k, 1)``; (0028,0030) PixelSpacing = (row step = j spacing, column step = i
    spacing); (0018,0050) SliceThickness = the slice step. Files are named
    ``IM_00001.dcm``... in k order; (0020,0013) InstanceNumber = k + 1.

    ``feet_first``: (0018,5100) PatientPosition FFS or HFS; ``None`` takes it from
    ``volume.metadata["patient_position"]`` when set, else FFS when the slice order runs
    inferior (k column's z < 0). UIDs are derived deterministically from the patient
    ID, the description and a hash of the voxels and geometry (pydicom ``generate_uid``
    with entropy sources), so writing the same volume twice gives identical files.

    Refuses (ViewerError) to write when a file it would create already exists in
    ``outdir``, unless ``overwrite=True``; then it also removes older ``IM_#####.dcm``
    files beyond the new series' length, so the folder holds one series. Other files
    are never touched. Returns the written paths in k order.
    """
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, ExplicitVRLittleEndian

    out = Path(outdir)
    if out.exists() and not out.is_dir():
        raise ViewerError(f"{out} is a file, not a folder", out)
    hu = np.asarray(volume.hu)
    nz, ny, nx = hu.shape
    names = [dicom_file_name(k) for k in range(nz)]
    if out.is_dir():
        clash = [n for n in names if (out / n).exists()]
        if clash and not overwrite:
            raise ViewerError(
                f"{out} already holds {len(clash)} file(s) this series would overwrite (e.g. {clash[0]}); "
                "choose an empty folder or pass overwrite=True",
                out,
            )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ViewerError(f"cannot create folder {out}: {exc}", out) from None

    m = np.asarray(volume.ijk_to_lps, dtype=np.float64)
    row_dir = m[:3, 0] / np.linalg.norm(m[:3, 0])
    col_dir = m[:3, 1] / np.linalg.norm(m[:3, 1])
    normal = np.cross(row_dir, col_dir)
    if feet_first is None:
        pos = str(volume.metadata.get("patient_position", "")).upper() if volume.metadata else ""
        feet_first = pos.startswith("FF") if pos else bool(m[2, 2] < 0)
    patient_position = "FFS" if feet_first else "HFS"

    lo, hi = int(hu.min()), int(hu.max())
    if lo >= -1024 and hi <= 65535 - 1024:
        # unsigned storage with intercept -1024, as most CT scanners write
        intercept, pixel_repr, store = -1024, 0, np.uint16
    elif lo >= -32768 and hi <= 32767:
        intercept, pixel_repr, store = 0, 1, np.int16
    else:  # cannot happen for int16 HU, kept for clarity
        raise ViewerError(f"HU range {lo}..{hi} does not fit 16-bit storage", out)

    digest = hashlib.blake2b(hu.tobytes(), digest_size=16)
    digest.update(m.tobytes())
    content = digest.hexdigest()
    study_uid = _uid("study", patient_id, study_description)
    series_uid = _uid("series", patient_id, series_description, series_number, content, patient_position)
    frame_uid = _uid("frame-of-reference", patient_id, study_description)
    now = _dt.datetime(2024, 1, 1, 12, 0, 0)  # fixed: reproducible files
    date, time_ = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    iop = [_ds(v) for v in (*row_dir, *col_dir)]
    pixel_spacing = [_ds(float(np.linalg.norm(m[:3, 1]))), _ds(float(np.linalg.norm(m[:3, 0])))]
    thickness = _ds(float(np.linalg.norm(m[:3, 2])))

    paths: list[Path] = []
    for k in range(nz):
        sop_uid = _uid("instance", series_uid, k)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = UID(CT_IMAGE_STORAGE)
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        ds = pydicom.Dataset()
        ds.file_meta = meta
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.SOPClassUID = CT_IMAGE_STORAGE
        ds.SOPInstanceUID = sop_uid
        ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = date
        ds.StudyTime = ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = time_
        ds.AccessionNumber = ""
        ds.Modality = "CT"
        ds.Manufacturer = "vessel-viewer phantom"
        ds.ReferringPhysicianName = ""
        ds.StudyDescription = study_description
        ds.SeriesDescription = series_description
        ds.PatientName = patient_name
        ds.PatientID = patient_id
        ds.PatientBirthDate = ""
        ds.PatientSex = "O"
        ds.BodyPartExamined = "LEG"
        ds.ContrastBolusAgent = "IODINATED CONTRAST (SYNTHETIC)"
        ds.KVP = "100"
        ds.SliceThickness = thickness
        ds.PatientPosition = patient_position
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.StudyID = "1"
        ds.SeriesNumber = int(series_number)
        ds.AcquisitionNumber = 1
        ds.InstanceNumber = k + 1
        ipp = m[:3, :3] @ np.array([0.0, 0.0, float(k)]) + m[:3, 3]
        ds.ImagePositionPatient = [_ds(v) for v in ipp]
        ds.ImageOrientationPatient = iop
        ds.FrameOfReferenceUID = frame_uid
        ds.PositionReferenceIndicator = ""
        ds.SliceLocation = _ds(float(ipp @ normal))
        ds.Laterality = "L" if volume.metadata and volume.metadata.get("laterality") == "L" else ""
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = ny
        ds.Columns = nx
        ds.PixelSpacing = pixel_spacing
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = pixel_repr
        ds.RescaleIntercept = str(intercept)
        ds.RescaleSlope = "1"
        ds.RescaleType = "HU"
        ds.WindowCenter = "300"
        ds.WindowWidth = "1000"
        ds.PixelData = (
            (hu[k].astype(np.int32) - intercept).astype(store).astype("<" + np.dtype(store).str[1:]).tobytes()
        )
        path = out / names[k]
        try:
            ds.save_as(path, enforce_file_format=True)
        except OSError as exc:
            raise ViewerError(f"cannot write {path}: {exc}", path) from None
        paths.append(path)
        if k % 16 == 15 or k == nz - 1:
            report(progress, (k + 1) / nz, f"writing DICOM slice {k + 1}/{nz}")
    if overwrite:
        # leftovers of an earlier, longer series written here under our own names
        for f in out.iterdir():
            if DICOM_NAME_PATTERN.match(f.name) and int(f.name[3:8]) > nz and f.is_file():
                f.unlink()
    return paths


__all__ = ["CT_IMAGE_STORAGE", "dicom_file_name", "write_dicom_series", "write_nifti", "write_nrrd"]
