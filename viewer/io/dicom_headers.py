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

import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

#: Transfer syntaxes whose PixelData is the raw little-endian pixel values, readable
#: with one ``readinto`` (PS3.5 A.1 / A.2).
NATIVE_LE = {str(ExplicitVRLittleEndian), str(ImplicitVRLittleEndian)}


_HEADER_TAGS = [
    "SOPClassUID",
    "Modality",
    "SeriesInstanceUID",
    "SeriesNumber",
    "SeriesDescription",
    "ImageType",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "PixelSpacing",
    "SliceThickness",
    "Rows",
    "Columns",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "RescaleSlope",
    "RescaleIntercept",
    "InstanceNumber",
    "NumberOfFrames",
    "GantryDetectorTilt",
    "AcquisitionNumber",
    "SharedFunctionalGroupsSequence",
    "PerFrameFunctionalGroupsSequence",
]

#: Identifying fields, kept only in Volume.identity.
IDENTITY_TAGS = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber")
#: Non-identifying facts copied to Volume.metadata (keyword -> value as str/float).
METADATA_TAGS = (
    "Modality",
    "Manufacturer",
    "ManufacturerModelName",
    "SeriesDescription",
    "StudyDescription",
    "SeriesInstanceUID",
    "StudyInstanceUID",
    "SeriesNumber",
    "KVP",
    "XRayTubeCurrent",
    "ExposureTime",
    "SliceThickness",
    "ConvolutionKernel",
    "ContrastBolusAgent",
    "BodyPartExamined",
    "PatientPosition",
    "StudyDate",
    "SeriesDate",
    "GantryDetectorTilt",
    "ImageType",
    "SOPClassUID",
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
    #: (0028,0100) BitsAllocated, (0028,0101) BitsStored, (0028,0102) HighBit,
    #: (0028,0103) PixelRepresentation, (0028,0002) SamplesPerPixel as stored (None when
    #: absent) and (0028,0004) PhotometricInterpretation: images of one series must agree
    #: on all of them (viewer.io.series drops the odd ones out, naming them).
    pixel_format: tuple = ()
    #: True when the file carries both (0028,1052) RescaleIntercept and (0028,1053)
    #: RescaleSlope (Type 1 in the CT Image module, PS3.3 C.8.2.1).
    rescale_given: bool = True

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
    """A finite float, else ``default`` (absent, unparseable, NaN or infinite)."""
    try:
        if v is None or v == "":
            return default
        out = float(v)
        return out if math.isfinite(out) else default
    except (TypeError, ValueError, OverflowError):
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
    except (TypeError, ValueError, OverflowError):
        return None


def _floats(v: Any, n: int) -> tuple[float, ...] | None:
    try:
        if v is None:
            return None
        if isinstance(v, (str, bytes)) and n > 1:
            return None  # one value where n are required
        out = tuple(float(x) for x in v)
        return out if len(out) == n and all(np.isfinite(out)) else None
    except (TypeError, ValueError, OverflowError):
        return None


def _vec3(v: tuple[float, ...] | None) -> tuple[float, float, float] | None:
    """A 3-vector from ``_floats(value, 3)`` (which has checked the length)."""
    return None if v is None else (v[0], v[1], v[2])


def _pair(v: tuple[float, ...] | None) -> tuple[float, float] | None:
    """A value pair from ``_floats(value, 2)`` (which has checked the length)."""
    return None if v is None else (v[0], v[1])


def _short(exc: BaseException) -> str:
    msg = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {msg[:160]}" if msg else type(exc).__name__


def _us(v: Any, tag: str, kw: str, lo: int, hi: int) -> int | None:
    """A US element's value: None when absent; BadDicom when it is not one integer in
    ``lo..hi`` (a one-byte or two-valued US, text, out of range)."""
    if v is None or v == "":
        return None
    if isinstance(v, (list, tuple, pydicom.multival.MultiValue)) or isinstance(v, (bytes, str, float)):
        raise BadDicom(f"{tag} {kw} is not one integer: {str(v)[:40]!r}")
    try:
        iv = int(v)
    except (TypeError, ValueError, OverflowError):
        raise BadDicom(f"{tag} {kw} is not an integer: {str(v)[:40]!r}") from None
    if not lo <= iv <= hi:
        raise BadDicom(f"{tag} {kw} = {iv} is outside {lo}..{hi}")
    return iv


def _rescale(v: Any, tag: str, kw: str, default: float, nonzero: bool) -> tuple[float, bool]:
    """(value, given) of (0028,1052)/(0028,1053): absent gives (default, False); a value
    that is present but not one finite number (``abc``, ``0x10``, ``1\\2``, ``NaN``, a
    zero slope) makes the file unusable (BadDicom) rather than silently 0 or 1."""
    if v is None or (isinstance(v, str) and not v.strip()):
        return default, False
    bad = isinstance(v, (list, tuple, pydicom.multival.MultiValue))
    out = math.nan
    if not bad:
        try:
            out = float(str(v).strip())
        except (TypeError, ValueError, OverflowError):
            bad = True
    if bad or not math.isfinite(out) or (nonzero and out == 0.0) or str(v).strip().lower().startswith("0x"):
        raise BadDicom(f"{tag} {kw} {str(v)[:40]!r} is not a finite number" + (" other than 0" if nonzero else ""))
    return out, True


def _text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (list, tuple, pydicom.multival.MultiValue)):
        return "\\".join(str(x) for x in v)
    return str(v)


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
    try:
        fast = fast_parse(path)
        if fast is not None:
            values, ts, pix_pos, pix_head, file_size = fast
            return _build(path, values.get, ts, pix_pos, pix_head, file_size, None)
        return _read_with_pydicom(path)
    except (NotDicom, BadDicom):
        raise
    except Exception as exc:  # noqa: BLE001 - any parser failure on one file = that file is unusable
        # pydicom converts values lazily, so a malformed element (a one-byte US raises
        # BytesLengthException, a 400-digit IS OverflowError) surfaces on first access.
        if not looks_like_dicom(path):
            raise NotDicom("not a DICOM file") from None
        raise BadDicom(f"unreadable DICOM header ({_short(exc)})") from None


def _read_with_pydicom(path: Path) -> list[SliceHeader]:
    """The general path: pydicom parses the header (any transfer syntax, sequences)."""
    has_magic = looks_like_dicom(path)
    try:
        with open(path, "rb") as fp:
            ds = pydicom.dcmread(fp, stop_before_pixels=True, specific_tags=_HEADER_TAGS, force=not has_magic)
            pix_pos = fp.tell()
            file_size = os.fstat(fp.fileno()).st_size
            fp.seek(pix_pos)
            pix_head = fp.read(12)
            meta = getattr(ds, "file_meta", None)
            ts = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
            if ts == str(DeflatedExplicitVRLittleEndian):
                # PS3.5 A.5: the data set is one deflate stream, so file offsets mean
                # nothing; read it whole to find (7FE0,0010) and its length.
                fp.seek(0)
                full = pydicom.dcmread(fp, force=True)
                pix_pos, pix_head = -1, b""
                if "PixelData" in full:
                    el = full["PixelData"]
                    n = 0xFFFFFFFF if getattr(el, "is_undefined_length", False) else len(el.value or b"")
                    pix_head = b"\xe0\x7f\x10\x00OW\0\0" + struct.pack("<I", n & 0xFFFFFFFF)
    except MemoryError:
        raise BadDicom("unreadable DICOM header (an element length claims more memory than exists)") from None
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types on a malformed header
        # InvalidDicomError, EOFError, struct.error, ValueError, BytesLengthException (a
        # file meta group length that lies), zlib.error (a corrupt deflate stream), ...
        if has_magic:
            raise BadDicom(f"unreadable DICOM header ({_short(exc)})") from None
        raise NotDicom("not a DICOM file") from None
    if not has_magic and "SOPClassUID" not in ds and "Rows" not in ds:
        # pydicom with force=True 'parses' almost anything; a real headerless DICOM file
        # (older ACR-NEMA style) still carries SOP Class or Rows.
        raise NotDicom("not a DICOM file")
    return _build(path, ds.get, ts, pix_pos, pix_head, file_size, ds)


def _build(
    path: Path, raw_get: Any, ts: str, pix_pos: int, pix_head: bytes, file_size: int, ds: Any
) -> list[SliceHeader]:
    """SliceHeaders from header values (``raw_get(keyword)``) and the PixelData element head.

    Every value the pixel pass depends on is validated here, so a malformed element
    makes this one file unusable (BadDicom, with the tag and the value) instead of
    aborting the load or, worse, being read as something else.
    """

    def get(kw: str, default: Any = None) -> Any:
        try:
            v = raw_get(kw)
        except Exception as exc:  # noqa: BLE001 - pydicom converts lazily: a bad value raises here
            raise BadDicom(f"{kw}: unreadable value ({_short(exc)})") from None
        return default if v is None else v

    rows = _us(get("Rows"), "(0028,0010)", "Rows", 0, 65535)
    cols = _us(get("Columns"), "(0028,0011)", "Columns", 0, 65535)
    if not rows or not cols:
        raise NotDicom("DICOM without an image (no Rows/Columns)")
    if pix_head[:4] != b"\xe0\x7f\x10\x00":
        raise BadDicom("no (7FE0,0010) PixelData element (file truncated?)")

    if not ts:
        ts = str(ImplicitVRLittleEndian)  # PS3.5 10.1: the default when no meta header
    ba_raw = _us(get("BitsAllocated"), "(0028,0100)", "BitsAllocated", 1, 64)
    bs_raw = _us(get("BitsStored"), "(0028,0101)", "BitsStored", 1, 64)
    hb_raw = _us(get("HighBit"), "(0028,0102)", "HighBit", 0, 63)
    pr_raw = get("PixelRepresentation")
    spp_raw = _us(get("SamplesPerPixel"), "(0028,0002)", "SamplesPerPixel", 1, 4)
    bits_alloc = ba_raw or 16
    if bits_alloc not in (8, 16, 32):
        raise BadDicom(f"(0028,0100) BitsAllocated = {bits_alloc}: only 8, 16 or 32 are supported")
    bits_stored = bs_raw or bits_alloc
    if bits_stored > bits_alloc:
        raise BadDicom(f"(0028,0101) BitsStored = {bits_stored} exceeds BitsAllocated = {bits_alloc}")
    # CT Image module (PS3.3 C.8.2.1.1.4): HighBit is BitsStored - 1. Any other value
    # means the header contradicts itself about where the pixel bits are.
    if hb_raw is not None and hb_raw != bits_stored - 1:
        raise BadDicom(
            f"(0028,0102) HighBit = {hb_raw} does not match (0028,0101) BitsStored = "
            f"{bits_stored} (HighBit must be BitsStored - 1)"
        )
    if pr_raw is None or pr_raw == "":
        pixel_rep = 0
    else:
        pixel_rep = _us(pr_raw, "(0028,0103)", "PixelRepresentation", 0, 65535)  # type: ignore[assignment]
        if pixel_rep not in (0, 1):
            # PS3.3 C.7.6.3.1: 0 = unsigned, 1 = two's complement; nothing else exists.
            raise BadDicom(f"(0028,0103) PixelRepresentation = {pixel_rep} is neither 0 (unsigned) nor 1 (signed)")
        pr_raw = pixel_rep
    samples = spp_raw or 1
    nf_raw = get("NumberOfFrames")
    if nf_raw is None or nf_raw == "":
        n_frames = 1
    else:
        n_frames = _i(nf_raw) if not isinstance(nf_raw, (list, pydicom.multival.MultiValue)) else None  # type: ignore[assignment]
        if n_frames is None or n_frames < 1:
            raise BadDicom(f"(0028,0008) NumberOfFrames {str(nf_raw)[:40]!r} is not a positive integer")
        if n_frames > max(1, file_size):
            raise BadDicom(f"(0028,0008) NumberOfFrames = {n_frames} is more than the file has bytes")
    frame_bytes = rows * cols * samples * bits_alloc // 8
    photometric = _text(get("PhotometricInterpretation", "")).strip().upper()
    pixel_format = (ba_raw, bs_raw, hb_raw, pr_raw, spp_raw, photometric)

    # Native pixel data: parse the element header at pix_pos ourselves.
    pixel_offset: int | None = None
    if ts == str(DeflatedExplicitVRLittleEndian) and len(pix_head) >= 12:
        (length,) = struct.unpack("<I", pix_head[8:12])
        need = frame_bytes * n_frames
        if length < need:
            raise BadDicom(
                f"pixel data is {length} bytes but Rows*Columns*BitsAllocated*frames "
                f"({rows}x{cols}x{bits_alloc} bit x{n_frames}) needs {need}"
            )
    if ts in NATIVE_LE:
        # The element's own bytes say how it is encoded: a file meta (0002,0010) that lies
        # (explicit data labelled implicit, or no syntax at all) would otherwise shift
        # every pixel by the 4 bytes of VR + reserved. pydicom auto-detects the same way.
        if len(pix_head) < 12:
            raise BadDicom("file truncated inside the (7FE0,0010) PixelData element header")
        if pix_head[4:6] in (b"OB", b"OW", b"UN") and pix_head[6:8] == b"\0\0":
            (length,) = struct.unpack("<I", pix_head[8:12])
            value_start = pix_pos + 12
        elif ts == str(ExplicitVRLittleEndian) and pix_head[4:6].isalpha():
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
                f"file truncated: pixel data needs {need} bytes from offset {value_start}, file has {file_size} bytes"
            )
        pixel_offset = value_start

    # The fields every frame of the file shares (SliceHeader keywords).
    base: dict[str, Any] = dict(
        path=path,
        series_uid=_text(get("SeriesInstanceUID", "")).strip(),
        series_number=_i(get("SeriesNumber")),
        description=_text(get("SeriesDescription", "")),
        modality=_text(get("Modality", "")).strip().upper(),
        sop_class=_text(get("SOPClassUID", "")).strip(),
        image_type=_strings(get("ImageType")),
        rows=rows,
        cols=cols,
        bits_allocated=bits_alloc,
        bits_stored=bits_stored,
        pixel_rep=pixel_rep,
        samples=samples,
        instance_number=_i(get("InstanceNumber")),
        transfer_syntax=ts,
        n_frames=n_frames,
        gantry_tilt=_f(get("GantryDetectorTilt")),
        pixel_format=pixel_format,
    )
    top_ipp = _vec3(_floats(get("ImagePositionPatient"), 3))
    top_iop = _floats(get("ImageOrientationPatient"), 6)
    top_ps = _pair(_floats(get("PixelSpacing"), 2))
    if top_ps is not None and not all(1e-4 <= x <= 1e4 for x in top_ps):
        top_ps = None  # (0028,0030) of 0, negative, 1e-30 or 1e20 mm places nothing: unusable
    top_th = _f(get("SliceThickness"))
    top_slope, has_slope = _rescale(get("RescaleSlope"), "(0028,1053)", "RescaleSlope", 1.0, True)
    top_icpt, has_icpt = _rescale(get("RescaleIntercept"), "(0028,1052)", "RescaleIntercept", 0.0, False)
    base["rescale_given"] = has_slope and has_icpt

    per_frame = ds.get("PerFrameFunctionalGroupsSequence") if ds is not None else None
    if n_frames == 1 and not per_frame:
        return [
            SliceHeader(
                frame=None,
                ipp=top_ipp,
                iop=top_iop,
                pixel_spacing=top_ps,
                thickness=top_th,
                slope=top_slope,
                intercept=top_icpt,
                pixel_offset=pixel_offset,
                **base,
            )
        ]

    # Enhanced (multi-frame) CT, PS3.3 C.7.6.16: geometry and rescale live in the
    # shared and per-frame functional groups.
    shared = ds.get("SharedFunctionalGroupsSequence") if ds is not None else None
    shared_item = shared[0] if shared else None
    out = []
    for k in range(n_frames):
        item = per_frame[k] if per_frame is not None and k < len(per_frame) else None
        ipp = _vec3(_fg(item, shared_item, "PlanePositionSequence", "ImagePositionPatient", 3)) or top_ipp
        iop = _fg(item, shared_item, "PlaneOrientationSequence", "ImageOrientationPatient", 6) or top_iop
        ps = _pair(_fg(item, shared_item, "PixelMeasuresSequence", "PixelSpacing", 2)) or top_ps
        th = _fg(item, shared_item, "PixelMeasuresSequence", "SliceThickness", 1)
        sl = _fg(item, shared_item, "PixelValueTransformationSequence", "RescaleSlope", 1)
        ic = _fg(item, shared_item, "PixelValueTransformationSequence", "RescaleIntercept", 1)
        if sl is not None and sl[0] == 0.0:
            raise BadDicom(f"frame {k + 1}: (0028,1053) RescaleSlope is 0")
        out.append(
            SliceHeader(
                frame=k,
                ipp=ipp,
                iop=iop,
                pixel_spacing=ps,
                thickness=th[0] if th else top_th,
                slope=sl[0] if sl else top_slope,
                intercept=ic[0] if ic else top_icpt,
                pixel_offset=None if pixel_offset is None else pixel_offset + k * frame_bytes,
                **{**base, "rescale_given": bool(base["rescale_given"] or (sl and ic))},
            )
        )
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

    def value(kw: str) -> Any:
        try:  # pydicom converts on access: a malformed value (an IS of '-inf') raises here
            return ds.get(kw)
        except Exception:  # noqa: BLE001 - best-effort: an unreadable fact is left out
            return None

    meta: dict[str, Any] = {}
    for kw in METADATA_TAGS:
        v = value(kw)
        if v is None or v == "":
            continue
        try:
            if kw == "ImageType" or isinstance(v, pydicom.multival.MultiValue):
                meta[kw] = "\\".join(str(x) for x in v)
            elif isinstance(v, (pydicom.valuerep.DSfloat, pydicom.valuerep.IS, float, int)):
                meta[kw] = float(v) if not isinstance(v, int) or isinstance(v, bool) else int(v)
            else:
                meta[kw] = str(v)
        except (TypeError, ValueError, OverflowError):
            continue
    try:
        ts = getattr(ds, "file_meta", None)
        if ts is not None and "TransferSyntaxUID" in ts:
            meta["TransferSyntax"] = ts.TransferSyntaxUID.name
    except Exception:  # noqa: BLE001 - best-effort, as above
        pass
    ident = {kw: str(v) for kw in IDENTITY_TAGS if (v := value(kw)) not in (None, "")}
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
    0x00080008: ("ImageType", "CS"),
    0x00080016: ("SOPClassUID", "UI"),
    0x00080060: ("Modality", "CS"),
    0x0008103E: ("SeriesDescription", "LO"),
    0x00180050: ("SliceThickness", "DS"),
    0x00181120: ("GantryDetectorTilt", "DS"),
    0x0020000E: ("SeriesInstanceUID", "UI"),
    0x00200011: ("SeriesNumber", "IS"),
    0x00200012: ("AcquisitionNumber", "IS"),
    0x00200013: ("InstanceNumber", "IS"),
    0x00200032: ("ImagePositionPatient", "DS"),
    0x00200037: ("ImageOrientationPatient", "DS"),
    0x00280002: ("SamplesPerPixel", "US"),
    0x00280004: ("PhotometricInterpretation", "CS"),
    0x00280008: ("NumberOfFrames", "IS"),
    0x00280010: ("Rows", "US"),
    0x00280011: ("Columns", "US"),
    0x00280030: ("PixelSpacing", "DS"),
    0x00280100: ("BitsAllocated", "US"),
    0x00280101: ("BitsStored", "US"),
    0x00280102: ("HighBit", "US"),
    0x00280103: ("PixelRepresentation", "US"),
    0x00281052: ("RescaleIntercept", "DS"),
    0x00281053: ("RescaleSlope", "DS"),
}
#: Explicit-VR VRs with a 2-byte reserved field and a 4-byte length (PS3.5 7.1.2).
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
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
        if len(raw) != 2:
            raise _Fallback()  # a one-byte or multi-valued US: pydicom's path reports it
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
        vr = buf.b[pos + 4 : pos + 6]
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
                    head = buf.b[pos : pos + 12]
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
