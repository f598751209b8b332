"""Reading the few DICOM header fields the loader needs, fast, read-only.

One pass per file: ``pydicom.dcmread(fp, stop_before_pixels=True, specific_tags=...)``
stops right before (7FE0,0010) PixelData and leaves the file position there, so for
native (uncompressed, little-endian) pixel data we read the element header ourselves
and remember the byte offset of the pixel values. The pixel pass then reads the bytes
straight into the preallocated int16 volume with ``readinto`` (no intermediate copy,
no second header parse). Compressed syntaxes go through pydicom's decoders (GDCM /
pylibjpeg plugins) in the pixel pass instead.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

#: Transfer syntaxes whose PixelData is the raw little-endian pixel values, readable
#: with one ``readinto`` (PS3.5 A.1 / A.2).
NATIVE_LE = {str(ExplicitVRLittleEndian), str(ImplicitVRLittleEndian)}


_HEADER_TAGS = [
    "SOPClassUID", "Modality", "SeriesInstanceUID", "SeriesNumber", "SeriesDescription",
    "ImageType", "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing",
    "SliceThickness", "Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit",
    "PixelRepresentation", "SamplesPerPixel", "PhotometricInterpretation",
    "RescaleSlope", "RescaleIntercept", "InstanceNumber", "NumberOfFrames",
    "GantryDetectorTilt", "AcquisitionNumber",
    "SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence",
]

#: Identifying fields, kept only in Volume.identity.
IDENTITY_TAGS = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber")
#: Non-identifying facts copied to Volume.metadata (keyword -> value as str/float).
METADATA_TAGS = (
    "Modality", "Manufacturer", "ManufacturerModelName", "SeriesDescription",
    "StudyDescription", "SeriesInstanceUID", "StudyInstanceUID", "SeriesNumber",
    "KVP", "XRayTubeCurrent", "ExposureTime", "SliceThickness", "ConvolutionKernel",
    "ContrastBolusAgent", "BodyPartExamined", "PatientPosition", "StudyDate",
    "SeriesDate", "GantryDetectorTilt", "ImageType", "SOPClassUID",
)


class NotDicom(Exception):
    """The file is not DICOM (or not an image we can use); message says why."""


class BadDicom(Exception):
    """The file is DICOM but unusable (truncated, inconsistent); message says why."""


@dataclass(frozen=True)
class SliceHeader:
    """What the loader needs from one image (one file, or one frame of a multi-frame).

    Positions/orientation are LPS mm from (0020,0032)/(0020,0037) or, for Enhanced CT,
    the per-frame PlanePositionSequence / PlaneOrientationSequence.
    """

    path: Path
    frame: int | None
    series_uid: str
    series_number: int | None
    description: str
    modality: str
    sop_class: str
    image_type: tuple[str, ...]
    ipp: tuple[float, float, float] | None
    iop: tuple[float, ...] | None
    pixel_spacing: tuple[float, float] | None  # (row spacing, column spacing) as stored
    thickness: float | None
    rows: int
    cols: int
    bits_allocated: int
    bits_stored: int
    pixel_rep: int
    samples: int
    slope: float
    intercept: float
    instance_number: int | None
    transfer_syntax: str
    pixel_offset: int | None  # byte offset of this frame's native pixel values, else None
    n_frames: int
    gantry_tilt: float | None

    @property
    def frame_bytes(self) -> int:
        return self.rows * self.cols * self.samples * self.bits_allocated // 8

    @property
    def label(self) -> str:
        return self.path.name if self.frame is None else f"{self.path.name}[frame {self.frame + 1}]"

    @property
    def is_localizer(self) -> bool:
        return any("LOCALIZER" in t.upper() for t in self.image_type)


def _f(v: Any, default: float | None = None) -> float | None:
    try:
        if v is None or v == "":
            return default
        return float(v)
    except (TypeError, ValueError):
        return default


def _strings(v: Any) -> tuple[str, ...]:
    if v is None or v == "":
        return ()
    if isinstance(v, str):
        return (v,)
    return tuple(str(x) for x in v)


def _i(v: Any) -> int | None:
    try:
        if v is None or v == "":
            return None
        return int(v)
    except (TypeError, ValueError):
        return None


def _floats(v: Any, n: int) -> tuple[float, ...] | None:
    try:
        if v is None:
            return None
        out = tuple(float(x) for x in v)
        return out if len(out) == n and all(np.isfinite(out)) else None
    except (TypeError, ValueError):
        return None


def looks_like_dicom(path: Path) -> bool:
    """True when the file has the 'DICM' magic at byte 128 (PS3.10 7.1)."""
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def read_slice_headers(path: Path) -> list[SliceHeader]:
    """Parse one file's header; one SliceHeader per frame. Read-only.

    Raises:
        NotDicom: not a DICOM file, or DICOM without pixel data (SR, DICOMDIR...).
        BadDicom: DICOM image that cannot be used (truncated, sizes inconsistent).
    """
    fast = fast_parse(path)
    if fast is not None:
        values, ts, pix_pos, pix_head, file_size = fast
        return _build(path, values.get, ts, pix_pos, pix_head, file_size, None)
    return _read_with_pydicom(path)


def _read_with_pydicom(path: Path) -> list[SliceHeader]:
    """The general path: pydicom parses the header (any transfer syntax, sequences)."""
    has_magic = looks_like_dicom(path)
    try:
        with open(path, "rb") as fp:
            ds = pydicom.dcmread(
                fp, stop_before_pixels=True, specific_tags=_HEADER_TAGS, force=not has_magic
            )
            pix_pos = fp.tell()
            file_size = os.fstat(fp.fileno()).st_size
            fp.seek(pix_pos)
            pix_head = fp.read(12)
    except (InvalidDicomError, EOFError, struct.error, ValueError, OSError, KeyError,
            TypeError, AttributeError, NotImplementedError) as exc:
        if has_magic:
            raise BadDicom(f"unreadable DICOM header ({type(exc).__name__}: {exc})") from None
        raise NotDicom("not a DICOM file") from None
    if not has_magic and "SOPClassUID" not in ds and "Rows" not in ds:
        # pydicom with force=True 'parses' almost anything; a real headerless DICOM file
        # (older ACR-NEMA style) still carries SOP Class or Rows.
        raise NotDicom("not a DICOM file")
    meta = getattr(ds, "file_meta", None)
    ts = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    return _build(path, ds.get, ts, pix_pos, pix_head, file_size, ds)


def _build(path: Path, get: Any, ts: str, pix_pos: int, pix_head: bytes, file_size: int,
           ds: Any) -> list[SliceHeader]:
    """SliceHeaders from header values (``get(keyword)``) and the PixelData element head."""
    rows, cols = _i(get("Rows")), _i(get("Columns"))
    if not rows or not cols:
        raise NotDicom("DICOM without an image (no Rows/Columns)")
    if pix_head[:4] != b"\xe0\x7f\x10\x00":
        raise BadDicom("no (7FE0,0010) PixelData element (file truncated?)")

    if not ts:
        ts = str(ImplicitVRLittleEndian)  # PS3.5 10.1: the default when no meta header
    bits_alloc = _i(get("BitsAllocated")) or 16
    bits_stored = _i(get("BitsStored")) or bits_alloc
    pixel_rep = _i(get("PixelRepresentation")) or 0
    samples = _i(get("SamplesPerPixel")) or 1
    n_frames = _i(get("NumberOfFrames")) or 1
    frame_bytes = rows * cols * samples * bits_alloc // 8

    # Native pixel data: parse the element header at pix_pos ourselves.
    pixel_offset: int | None = None
    if ts in NATIVE_LE:
        if ts == str(ExplicitVRLittleEndian) and pix_head[4:6] in (b"OB", b"OW", b"UN"):
            (length,) = struct.unpack("<I", pix_head[8:12])
            value_start = pix_pos + 12
        elif ts == str(ExplicitVRLittleEndian):
            raise BadDicom(f"PixelData with unexpected VR {pix_head[4:6]!r}")
        else:
            (length,) = struct.unpack("<I", pix_head[4:8])
            value_start = pix_pos + 8
        need = frame_bytes * n_frames
        if length == 0xFFFFFFFF:
            raise BadDicom("encapsulated PixelData in an uncompressed transfer syntax")
        if length < need:
            raise BadDicom(
                f"pixel data is {length} bytes but Rows*Columns*BitsAllocated*frames "
                f"({rows}x{cols}x{bits_alloc} bit x{n_frames}) needs {need}"
            )
        if value_start + need > file_size:
            raise BadDicom(
                f"file truncated: pixel data needs {need} bytes from offset {value_start}, "
                f"file has {file_size} bytes"
            )
        pixel_offset = value_start

    base = dict(
        path=path,
        series_uid=str(get("SeriesInstanceUID", "") or "").strip(),
        series_number=_i(get("SeriesNumber")),
        description=str(get("SeriesDescription", "") or ""),
        modality=str(get("Modality", "") or "").upper(),
        sop_class=str(get("SOPClassUID", "") or ""),
        image_type=_strings(get("ImageType")),
        rows=rows, cols=cols, bits_allocated=bits_alloc, bits_stored=bits_stored,
        pixel_rep=pixel_rep, samples=samples,
        instance_number=_i(get("InstanceNumber")), transfer_syntax=ts,
        n_frames=n_frames, gantry_tilt=_f(get("GantryDetectorTilt")),
    )
    top_ipp = _floats(get("ImagePositionPatient"), 3)
    top_iop = _floats(get("ImageOrientationPatient"), 6)
    top_ps = _floats(get("PixelSpacing"), 2)
    top_th = _f(get("SliceThickness"))
    top_slope = _f(get("RescaleSlope"), 1.0) or 1.0
    top_icpt = _f(get("RescaleIntercept"), 0.0) or 0.0

    per_frame = ds.get("PerFrameFunctionalGroupsSequence") if ds is not None else None
    if n_frames == 1 and not per_frame:
        return [SliceHeader(frame=None, ipp=top_ipp, iop=top_iop, pixel_spacing=top_ps,  # type: ignore[arg-type]
                            thickness=top_th, slope=top_slope, intercept=top_icpt,
                            pixel_offset=pixel_offset, **base)]

    # Enhanced (multi-frame) CT, PS3.3 C.7.6.16: geometry and rescale live in the
    # shared and per-frame functional groups.
    shared = ds.get("SharedFunctionalGroupsSequence") if ds is not None else None
    shared_item = shared[0] if shared else None
    out = []
    for k in range(n_frames):
        item = per_frame[k] if per_frame is not None and k < len(per_frame) else None
        ipp = _fg(item, shared_item, "PlanePositionSequence", "ImagePositionPatient", 3) or top_ipp
        iop = _fg(item, shared_item, "PlaneOrientationSequence", "ImageOrientationPatient", 6) or top_iop
        ps = _fg(item, shared_item, "PixelMeasuresSequence", "PixelSpacing", 2) or top_ps
        th = _fg(item, shared_item, "PixelMeasuresSequence", "SliceThickness", 1)
        sl = _fg(item, shared_item, "PixelValueTransformationSequence", "RescaleSlope", 1)
        ic = _fg(item, shared_item, "PixelValueTransformationSequence", "RescaleIntercept", 1)
        out.append(SliceHeader(
            frame=k, ipp=ipp, iop=iop, pixel_spacing=ps,  # type: ignore[arg-type]
            thickness=th[0] if th else top_th,
            slope=(sl[0] if sl else top_slope) or 1.0,
            intercept=ic[0] if ic else top_icpt,
            pixel_offset=None if pixel_offset is None else pixel_offset + k * frame_bytes,
            **base,
        ))
    return out


def _fg(item: Any, shared: Any, seq: str, kw: str, n: int) -> tuple[float, ...] | None:
    """Value of ``seq[0].kw`` from the per-frame item, else the shared item."""
    for src in (item, shared):
        if src is None:
            continue
        s = src.get(seq)
        if s:
            v = s[0].get(kw)
            if v is not None:
                got = _floats(v if n > 1 else [v], n)
                if got is not None:
                    return got
    return None


def read_metadata(path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """(metadata, identity) from a full header read of one file of the series."""
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    except Exception:  # noqa: BLE001 - metadata is best-effort; the pixels already loaded
        return {}, {}
    meta: dict[str, Any] = {}
    for kw in METADATA_TAGS:
        v = ds.get(kw)
        if v is None or v == "":
            continue
        if kw == "ImageType" or isinstance(v, pydicom.multival.MultiValue):
            meta[kw] = "\\".join(str(x) for x in v)
        elif isinstance(v, (pydicom.valuerep.DSfloat, pydicom.valuerep.IS, float, int)):
            meta[kw] = float(v) if not isinstance(v, int) or isinstance(v, bool) else int(v)
        else:
            meta[kw] = str(v)
    ts = getattr(ds, "file_meta", None)
    if ts is not None and "TransferSyntaxUID" in ts:
        meta["TransferSyntax"] = ts.TransferSyntaxUID.name
    ident = {kw: str(ds.get(kw)) for kw in IDENTITY_TAGS if ds.get(kw) not in (None, "")}
    return meta, ident


# ------------------------------------------------------------------ fast header walker
# pydicom spends ~0.4-0.7 ms per file building DataElement objects and converting
# values; for a 600-slice series that alone is slower than reading all the pixels.
# This walker reads the top level of a Part-10 file's little-endian data set with
# struct, decodes only the tags above and skips the rest by length (nested sequences
# included). Anything it does not fully understand (big-endian or deflated syntaxes,
# Enhanced multi-frame functional groups, malformed lengths) returns None and the
# file goes through pydicom instead, so the fast path never guesses. A test checks
# that both paths give identical SliceHeaders on every test file.

_WANTED: dict[int, tuple[str, str]] = {
    0x00080008: ("ImageType", "CS"), 0x00080016: ("SOPClassUID", "UI"),
    0x00080060: ("Modality", "CS"), 0x0008103E: ("SeriesDescription", "LO"),
    0x00180050: ("SliceThickness", "DS"), 0x00181120: ("GantryDetectorTilt", "DS"),
    0x0020000E: ("SeriesInstanceUID", "UI"), 0x00200011: ("SeriesNumber", "IS"),
    0x00200012: ("AcquisitionNumber", "IS"), 0x00200013: ("InstanceNumber", "IS"),
    0x00200032: ("ImagePositionPatient", "DS"), 0x00200037: ("ImageOrientationPatient", "DS"),
    0x00280002: ("SamplesPerPixel", "US"), 0x00280004: ("PhotometricInterpretation", "CS"),
    0x00280008: ("NumberOfFrames", "IS"), 0x00280010: ("Rows", "US"),
    0x00280011: ("Columns", "US"), 0x00280030: ("PixelSpacing", "DS"),
    0x00280100: ("BitsAllocated", "US"), 0x00280101: ("BitsStored", "US"),
    0x00280102: ("HighBit", "US"), 0x00280103: ("PixelRepresentation", "US"),
    0x00281052: ("RescaleIntercept", "DS"), 0x00281053: ("RescaleSlope", "DS"),
}
#: Explicit-VR VRs with a 2-byte reserved field and a 4-byte length (PS3.5 7.1.2).
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR",
             b"UT", b"UV"}
_FALLBACK_TAGS = {0x52009229, 0x52009230}  # Shared/PerFrameFunctionalGroupsSequence
_PIXEL = 0x7FE00010
_UNDEF = 0xFFFFFFFF
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_TAG = struct.Struct("<HH")
_EXPLICIT_TS = "1.2.840.10008.1.2.1"
_IMPLICIT_TS = "1.2.840.10008.1.2"
_NO_FAST_TS = {"1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2"}  # deflated, big endian


class _Fallback(Exception):
    pass


class _Buf:
    """The file's bytes, read in growing chunks as the walker needs them."""

    def __init__(self, f: Any, size: int) -> None:
        self.f, self.size = f, size
        self.b = f.read(16384)

    def need(self, end: int) -> None:
        if end > len(self.b):
            if end > self.size:
                raise _Fallback()
            self.b += self.f.read(max(end - len(self.b), len(self.b)))


def _decode(raw: bytes, vr: str) -> Any:
    if vr == "US":
        if len(raw) < 2:
            raise _Fallback()
        return _U16.unpack_from(raw)[0]
    text = raw.decode("latin-1").strip(" \x00")
    return text.split("\\") if "\\" in text else text


def _skip_undefined(buf: _Buf, pos: int, explicit: bool, depth: int = 0) -> int:
    """Position after an undefined-length sequence or item list starting at ``pos``."""
    if depth > 16:
        raise _Fallback()
    while True:
        buf.need(pos + 8)
        g, e = _TAG.unpack_from(buf.b, pos)
        length = _U32.unpack_from(buf.b, pos + 4)[0]
        pos += 8
        if g != 0xFFFE:
            raise _Fallback()
        if e == 0xE0DD:  # sequence delimitation
            return pos
        if e != 0xE000:
            raise _Fallback()
        if length != _UNDEF:
            pos += length
            continue
        # undefined-length item: walk its elements until (FFFE,E00D)
        while True:
            buf.need(pos + 8)
            g, e = _TAG.unpack_from(buf.b, pos)
            if g == 0xFFFE and e == 0xE00D:
                pos += 8
                break
            pos, _, _, _ = _element(buf, pos, explicit, depth + 1)


def _element(buf: _Buf, pos: int, explicit: bool, depth: int = 0) -> tuple[int, int, int, bytes]:
    """Parse the element at ``pos``: (next pos, tag, value offset, VR)."""
    buf.need(pos + 12)
    g, e = _TAG.unpack_from(buf.b, pos)
    tag = (g << 16) | e
    if explicit and g != 0xFFFE:
        vr = buf.b[pos + 4:pos + 6]
        if vr in _LONG_VRS:
            length = _U32.unpack_from(buf.b, pos + 8)[0]
            start = pos + 12
        else:
            if not (vr.isalpha() and vr.isupper()):
                raise _Fallback()
            length = _U16.unpack_from(buf.b, pos + 6)[0]
            start = pos + 8
    else:
        vr = b""
        length = _U32.unpack_from(buf.b, pos + 4)[0]
        start = pos + 8
    if length == _UNDEF:
        if tag == _PIXEL:
            if depth:  # encapsulated pixel data inside a sequence (an icon image): let pydicom
                raise _Fallback()
            return start, tag, start, vr
        return _skip_undefined(buf, start, explicit, depth), tag, start, vr
    return start + length, tag, start, vr


def fast_parse(path: Path) -> tuple[dict[str, Any], str, int, bytes, int] | None:
    """(values by keyword, transfer syntax, PixelData element offset, its first 12 bytes,
    file size) for a plain Part-10 little-endian file, or None to use pydicom."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            buf = _Buf(f, size)
            if len(buf.b) < 144 or buf.b[128:132] != b"DICM":
                return None
            # File meta group (0002,xxxx): always explicit VR little endian (PS3.10 7.1).
            pos, ts = 132, ""
            while True:
                buf.need(pos + 8)
                g, e = _TAG.unpack_from(buf.b, pos)
                if g != 0x0002:
                    break
                nxt, tag, start, _ = _element(buf, pos, True)
                if tag == 0x00020010:
                    ts = buf.b[start:nxt].decode("ascii").strip(" \x00")
                pos = nxt
            if not ts or ts in _NO_FAST_TS:
                return None
            explicit = ts != _IMPLICIT_TS
            values: dict[str, Any] = {}
            while True:
                if pos + 8 > size:
                    return None  # no PixelData: let pydicom decide what this file is
                nxt, tag, start, vr = _element(buf, pos, explicit)
                if tag == _PIXEL:
                    buf.need(pos + 12)
                    head = buf.b[pos:pos + 12]
                    break
                if tag in _FALLBACK_TAGS:
                    return None
                want = _WANTED.get(tag)
                if want is not None:
                    buf.need(nxt)
                    values[want[0]] = _decode(buf.b[start:nxt], want[1])
                elif tag > _PIXEL:
                    return None
                pos = nxt
        if _i(values.get("NumberOfFrames")) not in (None, 1):
            return None  # multi-frame: pydicom reads the functional groups
        return values, ts, pos, head, size
    except (_Fallback, struct.error, UnicodeDecodeError, OSError, ValueError):
        return None
