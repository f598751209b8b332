"""Small synthetic DICOM series for the loader tests, written with pydicom.

Every helper writes into a folder the test owns (``tmp_path``) and returns what the
loader should find, so each test states its ground truth next to its data.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
    generate_uid,
)

PATIENT_NAME = "Secret^Patient"
PATIENT_ID = "PID-998877"
ENHANCED_CT = "1.2.840.10008.5.1.4.1.1.2.1"


def ramp_volume(nz: int = 6, ny: int = 12, nx: int = 10, seed: int = 0) -> np.ndarray:
    """int16 HU test volume whose every voxel is distinct enough to detect mis-ordering:
    value = 100*k + 10*j + i - 1000 plus a little noise-free pattern."""
    k, j, i = np.mgrid[0:nz, 0:ny, 0:nx]
    return (100 * k + 7 * j + i - 1000).astype(np.int16)


def slice_dataset(
    hu: np.ndarray,
    ipp: Sequence[float],
    iop: Sequence[float] = (1, 0, 0, 0, 1, 0),
    pixel_spacing: tuple[float, float] = (0.8, 0.6),  # (row spacing, column spacing)
    series_uid: str | None = "1.2.3.4.5",
    series_number: int | None = 7,
    instance: int = 1,
    modality: str = "CT",
    slope: float = 1.0,
    intercept: float = 0.0,
    unsigned: bool = False,
    bits_stored: int = 16,
    thickness: float | None = 1.0,
    image_type: Sequence[str] = ("ORIGINAL", "PRIMARY", "AXIAL"),
    transfer_syntax: str = ExplicitVRLittleEndian,
    description: str = "Synthetic CT",
    tilt: float | None = None,
) -> Dataset:
    """One CT image whose stored values give ``hu`` after rescale."""
    raw = np.rint((hu.astype(np.float64) - intercept) / slope)
    fm = FileMetaDataset()
    fm.MediaStorageSOPClassUID = CTImageStorage
    fm.MediaStorageSOPInstanceUID = generate_uid()
    fm.TransferSyntaxUID = transfer_syntax
    ds = Dataset()
    ds.file_meta = fm
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = fm.MediaStorageSOPInstanceUID
    ds.Modality = modality
    ds.Manufacturer = "TestCo"
    ds.KVP = 100
    ds.PatientName = PATIENT_NAME
    ds.PatientID = PATIENT_ID
    ds.PatientBirthDate = "19700101"
    ds.StudyInstanceUID = "1.2.3.4"
    if series_uid is not None:
        ds.SeriesInstanceUID = series_uid
    if series_number is not None:
        ds.SeriesNumber = series_number
    ds.SeriesDescription = description
    ds.InstanceNumber = instance
    ds.ImageType = list(image_type)
    ds.ImagePositionPatient = [float(x) for x in ipp]
    ds.ImageOrientationPatient = [float(x) for x in iop]
    ds.PixelSpacing = list(pixel_spacing)
    if thickness is not None:
        ds.SliceThickness = thickness
    if tilt is not None:
        ds.GantryDetectorTilt = tilt
    ds.Rows, ds.Columns = hu.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 0 if unsigned else 1
    ds.RescaleSlope = slope
    ds.RescaleIntercept = intercept
    dtype = np.uint16 if unsigned else np.int16
    info = np.iinfo(dtype)
    assert raw.min() >= info.min and raw.max() <= info.max, "test value does not fit the stored type"
    ds.PixelData = raw.astype(dtype).tobytes()
    return ds


def save(ds: Dataset, path: Path, rle: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if rle:
        ds.compress(RLELossless, encoding_plugin="pydicom")
    ds.save_as(path, enforce_file_format=True)
    return path


def write_series(
    folder: Path,
    hu: np.ndarray,
    positions: Sequence[Sequence[float]] | None = None,
    iop: Sequence[float] = (1, 0, 0, 0, 1, 0),
    spacing_z: float = 2.0,
    origin: Sequence[float] = (-10.0, -20.0, 30.0),
    names: Sequence[str] | None = None,
    shuffle_seed: int | None = 0,
    rle: bool = False,
    **kw,
) -> list[Path]:
    """Write ``hu[k]`` as one file per slice at ``positions[k]`` (default: a regular
    stack along the normal from ``origin``). File names and InstanceNumbers are
    shuffled so that neither carries the slice order."""
    nz = hu.shape[0]
    row, col = np.asarray(iop[:3], float), np.asarray(iop[3:], float)
    normal = np.cross(row, col)
    if positions is None:
        positions = [np.asarray(origin) + k * spacing_z * normal for k in range(nz)]
    rng = np.random.default_rng(shuffle_seed)
    perm = rng.permutation(nz) if shuffle_seed is not None else np.arange(nz)
    files = []
    for k in range(nz):
        name = names[k] if names is not None else f"img{perm[k]:03d}"
        ds = slice_dataset(hu[k], positions[k], iop=iop, instance=int(perm[k]) + 1, **kw)
        files.append(save(ds, folder / name, rle=rle))
    return files


def write_enhanced_ct(
    path: Path,
    hu: np.ndarray,
    origin: Sequence[float],
    spacing_z: float,
    pixel_spacing: tuple[float, float] = (0.8, 0.6),
    slopes: Sequence[float] | None = None,
    intercept: float = -1024.0,
) -> Path:
    """One multi-frame Enhanced CT file (PS3.3 A.38): per-frame PlanePositionSequence
    and PixelValueTransformationSequence, shared PlaneOrientation / PixelMeasures.
    Frames are stored in reverse slice order so position, not frame order, must sort."""
    nz, ny, nx = hu.shape
    slopes = list(slopes) if slopes is not None else [1.0] * nz
    order = list(range(nz))[::-1]
    fm = FileMetaDataset()
    fm.MediaStorageSOPClassUID = ENHANCED_CT
    fm.MediaStorageSOPInstanceUID = generate_uid()
    fm.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = fm
    ds.SOPClassUID, ds.SOPInstanceUID = ENHANCED_CT, fm.MediaStorageSOPInstanceUID
    ds.Modality = "CT"
    ds.PatientName = PATIENT_NAME
    ds.SeriesInstanceUID = "1.2.3.4.99"
    ds.SeriesNumber = 9
    ds.SeriesDescription = "Enhanced"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL", "NONE"]
    ds.NumberOfFrames = nz
    ds.Rows, ds.Columns = ny, nx
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    shared = Dataset()
    po = Dataset()
    po.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    shared.PlaneOrientationSequence = [po]
    pm = Dataset()
    pm.PixelSpacing = list(pixel_spacing)
    pm.SliceThickness = spacing_z
    shared.PixelMeasuresSequence = [pm]
    ds.SharedFunctionalGroupsSequence = [shared]
    frames, raw = [], []
    for k in order:
        item = Dataset()
        pp = Dataset()
        pp.ImagePositionPatient = [origin[0], origin[1], origin[2] + k * spacing_z]
        item.PlanePositionSequence = [pp]
        pv = Dataset()
        pv.RescaleSlope = slopes[k]
        pv.RescaleIntercept = intercept
        pv.RescaleType = "HU"
        item.PixelValueTransformationSequence = [pv]
        frames.append(item)
        raw.append(np.rint((hu[k].astype(np.float64) - intercept) / slopes[k]).astype(np.uint16))
    ds.PerFrameFunctionalGroupsSequence = frames
    ds.PixelData = np.stack(raw).tobytes()
    return save(ds, path)


__all__ = [
    "ENHANCED_CT",
    "ImplicitVRLittleEndian",
    "PATIENT_ID",
    "PATIENT_NAME",
    "ramp_volume",
    "save",
    "slice_dataset",
    "write_enhanced_ct",
    "write_series",
]
