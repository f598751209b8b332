"""NIfTI-1, NRRD and MetaImage readers (own numpy parsers).

Why own parsers rather than VTK's readers: the geometry is the whole point of the
loader, and VTK's readers each handle it their own way (vtkNIFTIImageReader returns
the qform and sform as separate matrices and may flip the data to make the spacing
positive; vtkNrrdReader ignores "space directions" on older VTK; vtkMetaImageReader
drops TransformMatrix on many VTK builds since vtkImageData had no direction before
9.x). These formats are simple headers over a raw array, so a small parser gives one
exact ijk -> LPS affine for each, which tests check against hand-built files.

Each reader returns ``RawVolume``: voxel values as an array ``(nz, ny, nx)`` (x
fastest on disk, so C order reversed), the 4x4 ``ijk_to_lps`` and warnings.
"""

from __future__ import annotations

import gzip
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal, cast

import numpy as np

from viewer.core.errors import ViewerError

#: RAS (NIfTI, "right-anterior-superior" NRRD) -> LPS: negate x and y.
RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass
class RawVolume:
    data: np.ndarray | None  # (nz, ny, nx), scaled when the format says so; None: header only
    ijk_to_lps: np.ndarray
    warnings: list[str] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)
    shape_zyx: tuple[int, int, int] = (0, 0, 0)
    dtype: str = ""

    @property
    def looks_like_labels(self) -> bool:
        """8-bit integer voxels: a mask / label map, not a CT (CT needs >= 12 bits)."""
        return self.dtype in ("uint8", "int8")


#: How much of an NRRD / MetaImage file to read when only its header is wanted.
_HEADER_PROBE_BYTES = 65536


#: The volume-file formats (SeriesInfo.kind of a file that is not DICOM).
VolumeFileKind = Literal["nifti", "nrrd", "metaimage"]


def kind_of(path: Path) -> VolumeFileKind | None:
    """'nifti', 'nrrd', 'metaimage' from the file name, else None."""
    name = path.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        return "nifti"
    if name.endswith((".nrrd", ".nhdr")):
        return "nrrd"
    if name.endswith((".mha", ".mhd")):
        return "metaimage"
    return None


def read_volume_file(path: Path, kind: VolumeFileKind, header_only: bool = False) -> RawVolume:
    """Read a NIfTI / NRRD / MetaImage file (or only its header); ViewerError on failure."""
    try:
        if kind == "nifti":
            return read_nifti(path, header_only)
        if kind == "nrrd":
            return read_nrrd(path, header_only)
        if kind == "metaimage":
            return read_metaimage(path, header_only)
    except ViewerError:
        raise
    except (OSError, EOFError, zlib.error, ValueError, IndexError, KeyError) as exc:
        raise ViewerError(f"cannot read {kind} file: {type(exc).__name__}: {exc}", path=path) from None
    raise ViewerError(f"unknown volume file type {kind}", path=path)


def gunzip(data: bytes | memoryview) -> bytes:
    """Every member of a gzip stream, decompressed (as :func:`gzip.decompress`, in one
    ``zlib`` call a member: 0.32-0.34 s against 0.50-0.56 s for a 300 MB volume, run
    three times in one process; ``gzip.decompress`` decompresses in small pieces).
    Raises EOFError when the stream
    ends before a member's end-of-stream marker (a truncated file), ``zlib.error`` when
    it is not gzip."""
    parts: list[bytes] = []
    view: bytes | memoryview = data
    while True:
        d = zlib.decompressobj(wbits=31)
        parts.append(d.decompress(view))
        if not d.eof:
            raise EOFError("compressed data ended before its end-of-stream marker (file truncated?)")
        rest = d.unused_data
        if not rest.strip(b"\x00"):  # (zero padding after the last member is allowed)
            break
        view = rest
    return parts[0] if len(parts) == 1 else b"".join(parts)


#: Output piece of :func:`gunzip_into` (bytes): small enough to stay in the CPU cache
#: on its way into the array.
_GUNZIP_PIECE = 1 << 23


def gunzip_into(data: bytes | memoryview, nbytes: int) -> np.ndarray | None:
    """The first ``nbytes`` bytes of a one-member gzip stream, decompressed piece by
    piece straight into a new writable uint8 array (no volume-sized ``bytes`` and no
    copy of it afterwards). None when the stream's first member ends before
    ``nbytes`` (several members, or too little data: :func:`gunzip` then decides);
    EOFError when the stream itself is cut short (a truncated file)."""
    out = np.empty(int(nbytes), dtype=np.uint8)
    dst = memoryview(out.data)
    src = memoryview(data)
    d = zlib.decompressobj(wbits=31)
    pos = off = 0
    while pos < out.size:
        if d.eof:
            return None
        if d.unconsumed_tail:
            chunk: bytes | memoryview = d.unconsumed_tail
        elif off < len(src):
            chunk = src[off : off + _GUNZIP_PIECE]
            off += len(chunk)
        else:
            raise EOFError("compressed data ended before its end-of-stream marker (file truncated?)")
        piece = d.decompress(chunk, min(out.size - pos, _GUNZIP_PIECE))
        dst[pos : pos + len(piece)] = piece
        pos += len(piece)
    return out


def _reshape(flat: np.ndarray, sizes_xyz: list[int], path: Path) -> np.ndarray:
    need = int(np.prod(sizes_xyz))
    if flat.size < need:
        raise ViewerError(
            f"data holds {flat.size} voxels, header says {sizes_xyz} = {need} (file truncated?)", path=path
        )
    return flat[:need].reshape(sizes_xyz[::-1])


# --------------------------------------------------------------------------- NIfTI-1
_NIFTI_DTYPES = {2: "u1", 4: "i2", 8: "i4", 16: "f4", 64: "f8", 256: "i1", 512: "u2", 768: "u4", 1024: "i8", 1280: "u8"}


def read_nifti(path: Path, header_only: bool = False) -> RawVolume:
    """NIfTI-1 (.nii / .nii.gz), single file. Affine from sform when sform_code > 0,
    else qform when qform_code > 0, else pixdim only (NIfTI-1 header 'method 1');
    NIfTI's RAS world is converted to LPS."""
    gz = path.name.lower().endswith(".gz")
    if gz and not header_only:
        with open(path, "rb") as fz:
            raw = gunzip(fz.read())
    else:
        f: IO[bytes] = cast(IO[bytes], gzip.open(path, "rb")) if gz else open(path, "rb")
        with f:
            raw = f.read(352) if header_only else f.read()
    if len(raw) < 348:
        raise ViewerError("not a NIfTI-1 file (shorter than its 348-byte header)", path=path)
    endian = "<"
    if int(np.frombuffer(raw[:4], "<i4")[0]) != 348:
        if int(np.frombuffer(raw[:4], ">i4")[0]) == 348:
            endian = ">"
        elif int(np.frombuffer(raw[:4], "<i4")[0]) == 540:
            raise ViewerError("NIfTI-2 files are not supported (convert to NIfTI-1)", path=path)
        else:
            raise ViewerError("not a NIfTI-1 file (sizeof_hdr is not 348)", path=path)
    hdr = raw[:348]

    def arr(off: int, dt: str, n: int) -> np.ndarray:
        return np.frombuffer(hdr, dtype=endian + dt, count=n, offset=off)

    magic = hdr[344:348]
    if magic not in (b"n+1\x00", b"ni1\x00"):
        raise ViewerError(f"not a NIfTI-1 file (magic {magic!r})", path=path)
    if magic == b"ni1\x00":
        raise ViewerError("two-file NIfTI (.hdr/.img) is not supported; use a single .nii", path=path)
    dim = arr(40, "i2", 8).astype(int)
    datatype = int(arr(70, "i2", 1)[0])
    pixdim = arr(76, "f4", 8).astype(np.float64)
    vox_offset = int(arr(108, "f4", 1)[0])
    scl_slope, scl_inter = (float(x) for x in arr(112, "f4", 2))
    qform_code, sform_code = (int(x) for x in arr(252, "i2", 2))
    quat = arr(256, "f4", 6).astype(np.float64)
    srow = arr(280, "f4", 12).astype(np.float64).reshape(3, 4)
    warnings: list[str] = []
    ndim = dim[0]
    if ndim < 2 or ndim > 7:
        raise ViewerError(f"NIfTI dim[0] = {ndim} is not an image", path=path)
    sizes = [int(d) if i < ndim else 1 for i, d in enumerate(dim[1:4])]
    extra = int(np.prod([d for d in dim[4 : ndim + 1]])) if ndim > 3 else 1
    if extra > 1:
        warnings.append(f"4D NIfTI with {extra} volumes: loaded the first")
    if datatype not in _NIFTI_DTYPES:
        raise ViewerError(f"NIfTI datatype {datatype} is not supported", path=path)
    dt = np.dtype(endian + _NIFTI_DTYPES[datatype])
    count = int(np.prod(sizes))
    data: np.ndarray | None = None
    if not header_only:
        flat = np.frombuffer(
            raw, dtype=dt, count=min(count, max(0, (len(raw) - vox_offset) // dt.itemsize)), offset=vox_offset
        )
        data = _reshape(flat, sizes, path)
    if (
        data is not None
        and scl_slope not in (0.0,)
        and np.isfinite(scl_slope)
        and (scl_slope != 1.0 or scl_inter != 0.0)
    ):
        data = data.astype(np.float64) * scl_slope + (scl_inter if np.isfinite(scl_inter) else 0.0)

    if sform_code > 0:
        ras = np.eye(4)
        ras[:3, :] = srow
        src = f"sform (code {sform_code})"
    elif qform_code > 0:
        b, c, d = quat[:3]
        a2 = 1.0 - (b * b + c * c + d * d)
        a = np.sqrt(a2) if a2 > 0 else 0.0
        r = np.array(
            [
                [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
                [2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)],
                [2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b],
            ]
        )
        qfac = -1.0 if pixdim[0] < 0 else 1.0  # pixdim[0] = qfac; 0 is read as 1
        ras = np.eye(4)
        ras[:3, :3] = r @ np.diag([pixdim[1], pixdim[2], qfac * pixdim[3]])
        ras[:3, 3] = quat[3:6]
        src = f"qform (code {qform_code})"
    else:
        ras = np.diag([pixdim[1] or 1.0, pixdim[2] or 1.0, pixdim[3] or 1.0, 1.0])
        src = "pixdim only"
        warnings.append(
            "NIfTI has neither sform nor qform (both codes 0): placed with pixdim spacing only, orientation unknown"
        )
    lps = RAS_TO_LPS @ ras
    return RawVolume(
        data, lps, warnings, {"format": "NIfTI-1", "affine_source": src}, (sizes[2], sizes[1], sizes[0]), dt.name
    )


# ------------------------------------------------------------------------------ NRRD
_NRRD_TYPES = {
    "signed char": "i1",
    "int8": "i1",
    "int8_t": "i1",
    "uchar": "u1",
    "unsigned char": "u1",
    "uint8": "u1",
    "uint8_t": "u1",
    "short": "i2",
    "short int": "i2",
    "signed short": "i2",
    "signed short int": "i2",
    "int16": "i2",
    "int16_t": "i2",
    "ushort": "u2",
    "unsigned short": "u2",
    "unsigned short int": "u2",
    "uint16": "u2",
    "uint16_t": "u2",
    "int": "i4",
    "signed int": "i4",
    "int32": "i4",
    "int32_t": "i4",
    "uint": "u4",
    "unsigned int": "u4",
    "uint32": "u4",
    "uint32_t": "u4",
    "float": "f4",
    "double": "f8",
    "longlong": "i8",
    "long long": "i8",
    "int64": "i8",
    "int64_t": "i8",
}
#: NRRD space -> sign flips to LPS (teem's nrrd format spec, "space").
_NRRD_SPACES = {
    "left-posterior-superior": (1, 1, 1),
    "lps": (1, 1, 1),
    "right-anterior-superior": (-1, -1, 1),
    "ras": (-1, -1, 1),
    "left-anterior-superior": (1, -1, 1),
    "las": (1, -1, 1),
}


def _vec(s: str) -> list[float] | None:
    s = s.strip()
    if s == "none":
        return None
    return [float(x) for x in s.strip("()").split(",")]


def read_nrrd(path: Path, header_only: bool = False) -> RawVolume:
    """NRRD (attached .nrrd or detached .nhdr + data file), raw/gzip/ascii encodings."""
    with open(path, "rb") as f:
        blob = f.read(_HEADER_PROBE_BYTES) if header_only else f.read()
    if not blob.startswith(b"NRRD000"):
        raise ViewerError("not a NRRD file (no NRRD000x magic)", path=path)
    end = blob.find(b"\n\n")
    # (a CRLF header ends before the first LF blank line: no need to scan the data)
    end_r = blob.find(b"\r\n\r\n", 0, end + 4 if end >= 0 else len(blob))
    body: bytes | memoryview
    if end < 0 and end_r < 0:
        if not path.name.lower().endswith(".nhdr") and not header_only:
            raise ViewerError("NRRD header has no blank line before the data", path=path)
        header, body = blob.decode("latin-1"), b""
    # (the data as a view of what was read: no second copy of a volume-sized body)
    elif end_r >= 0 and (end < 0 or end_r < end):
        header, body = blob[:end_r].decode("latin-1"), memoryview(blob)[end_r + 4 :]
    else:
        header, body = blob[:end].decode("latin-1"), memoryview(blob)[end + 2 :]
    fields: dict[str, str] = {}
    for line in header.splitlines()[1:]:
        if line.startswith("#") or ":=" in line:  # comments and key:=value pairs
            continue
        if ": " in line:
            k, v = line.split(": ", 1)
            fields[k.strip().lower()] = v.strip()
    dim = int(fields["dimension"])
    sizes = [int(x) for x in fields["sizes"].split()]
    if dim != 3 or len(sizes) != 3:
        raise ViewerError(f"NRRD with dimension {dim} (sizes {sizes}): only 3D scalar volumes are supported", path=path)
    tname = fields["type"].lower()
    if tname not in _NRRD_TYPES:
        raise ViewerError(f"NRRD type '{tname}' is not supported", path=path)
    dt = np.dtype(_NRRD_TYPES[tname])
    if dt.itemsize > 1:
        dt = dt.newbyteorder(">" if fields.get("endian", "little") == "big" else "<")
    enc = fields.get("encoding", "raw").lower()
    data: np.ndarray | None = None
    if header_only:
        pass
    elif "data file" in fields or "datafile" in fields:
        df = fields.get("data file", fields.get("datafile", ""))
        if df.startswith("LIST") or "%" in df:
            raise ViewerError("NRRD with multiple detached data files is not supported", path=path)
        with open(path.parent / df, "rb") as f:
            body = f.read()
    if not header_only:
        data = _nrrd_data(body, fields, enc, dt, sizes, path)

    warnings: list[str] = []
    space = fields.get("space", "").lower()
    m = np.eye(4)
    if "space directions" in fields:
        dirs = re.findall(r"\([^)]*\)|none", fields["space directions"])
        vecs = [v for v in (_vec(d) for d in dirs) if v is not None]
        if len(vecs) != 3 or any(len(v) != 3 for v in vecs):
            raise ViewerError(
                f"NRRD 'space directions' {fields['space directions']!r} is not three 3-vectors", path=path
            )
        m[:3, :3] = np.array(vecs).T  # each vector is one axis' step: a column
        if "space origin" in fields:
            m[:3, 3] = _vec(fields["space origin"]) or [0, 0, 0]
        if space in _NRRD_SPACES:
            m = np.diag(list(_NRRD_SPACES[space]) + [1.0]) @ m
        else:
            warnings.append(f"NRRD space '{space or 'unset'}' is not an anatomical space; taken as LPS")
    else:
        sp = [float(x) for x in fields.get("spacings", "1 1 1").split()]
        m[:3, :3] = np.diag([s if np.isfinite(s) else 1.0 for s in sp])
        warnings.append("NRRD without 'space directions': placed axis-aligned with 'spacings', orientation unknown")
    return RawVolume(data, m, warnings, {"format": "NRRD", "space": space}, (sizes[2], sizes[1], sizes[0]), dt.name)


def _nrrd_data(
    body: bytes | memoryview, fields: dict[str, str], enc: str, dt: np.dtype, sizes: list[int], path: Path
) -> np.ndarray:
    skip = int(fields.get("byte skip", "0"))
    count = int(np.prod(sizes))
    if enc in ("ascii", "text", "txt"):
        flat = np.array(bytes(body).decode("latin-1").split(), dtype=np.float64).astype(dt.newbyteorder("="))
        return _reshape(flat, sizes, path)
    if enc in ("gzip", "gz"):
        if skip >= 0 and skip % dt.itemsize == 0:
            got = gunzip_into(body, skip + count * dt.itemsize)
            if got is not None:
                return _reshape(got[skip:].view(dt), sizes, path)
        body = gunzip(body)
    elif enc != "raw":
        raise ViewerError(f"NRRD encoding '{enc}' is not supported (raw, gzip, ascii are)", path=path)
    if skip == -1:  # data is the last count*itemsize bytes (nrrd spec)
        skip = max(0, len(body) - count * dt.itemsize)
    flat = np.frombuffer(body, dtype=dt, count=max(0, min(count, (len(body) - skip) // dt.itemsize)), offset=skip)
    return _reshape(flat, sizes, path)


# ------------------------------------------------------------------------- MetaImage
_MET_TYPES = {
    "MET_CHAR": "i1",
    "MET_UCHAR": "u1",
    "MET_SHORT": "i2",
    "MET_USHORT": "u2",
    "MET_INT": "i4",
    "MET_UINT": "u4",
    "MET_LONG": "i4",
    "MET_ULONG": "u4",
    "MET_LONG_LONG": "i8",
    "MET_ULONG_LONG": "u8",
    "MET_FLOAT": "f4",
    "MET_DOUBLE": "f8",
}


def read_metaimage(path: Path, header_only: bool = False) -> RawVolume:
    """MetaImage .mha (data LOCAL after the header) / .mhd (+ ElementDataFile).

    MetaImage space is LPS (ITK's convention). TransformMatrix lists the direction
    cosines of the i, j, k axes one after the other (ITK's MetaImageIO writes
    direction column by column), i.e. it is the row-major transpose of the direction
    matrix; Offset (alias Origin/Position) is the LPS of voxel (0, 0, 0).
    """
    with open(path, "rb") as f:
        blob = f.read(_HEADER_PROBE_BYTES) if header_only else f.read()
    fields: dict[str, str] = {}
    pos = 0
    while pos < len(blob):
        nl = blob.find(b"\n", pos)
        line_end = len(blob) if nl < 0 else nl
        line = blob[pos:line_end].decode("latin-1").strip()
        pos = line_end + 1
        if "=" not in line:
            if line:
                raise ViewerError(f"not a MetaImage header line: {line[:60]!r}", path=path)
            continue
        k, v = line.split("=", 1)
        fields[k.strip()] = v.strip()
        if k.strip() == "ElementDataFile":
            break
    if "NDims" not in fields or "ElementDataFile" not in fields:
        raise ViewerError("not a MetaImage file (needs NDims and ElementDataFile)", path=path)
    ndims = int(fields["NDims"])
    sizes = [int(x) for x in fields["DimSize"].split()]
    if ndims != 3 or len(sizes) != 3:
        raise ViewerError(f"MetaImage with NDims {ndims}: only 3D volumes are supported", path=path)
    if int(fields.get("ElementNumberOfChannels", "1")) != 1:
        raise ViewerError("MetaImage with several channels per voxel is not supported", path=path)
    et = fields.get("ElementType", "")
    if et not in _MET_TYPES:
        raise ViewerError(f"MetaImage ElementType {et!r} is not supported", path=path)
    msb = fields.get("BinaryDataByteOrderMSB", fields.get("ElementByteOrderMSB", "False")).lower() == "true"
    dt = np.dtype(_MET_TYPES[et]).newbyteorder(">" if msb else "<")
    edf = fields["ElementDataFile"]
    data: np.ndarray | None = None
    if header_only:
        pass
    elif edf == "LOCAL":
        body = blob[pos:]
    elif edf.startswith("LIST") or "%" in edf:
        raise ViewerError("MetaImage with a list of slice files is not supported", path=path)
    else:
        with open(path.parent / edf, "rb") as f:
            body = f.read()
        hs = int(fields.get("HeaderSize", "0"))
        count = int(np.prod(sizes)) * dt.itemsize
        if hs == -1:
            body = body[len(body) - count :]
        elif hs > 0:
            body = body[hs:]
    if not header_only:
        if fields.get("CompressedData", "False").lower() == "true":
            body = zlib.decompress(body)
        count = int(np.prod(sizes))
        flat = np.frombuffer(body, dtype=dt, count=min(count, len(body) // dt.itemsize))
        data = _reshape(flat, sizes, path)
    sp = [float(x) for x in fields.get("ElementSpacing", fields.get("ElementSize", "1 1 1")).split()]
    tm_s = fields.get("TransformMatrix", fields.get("Rotation", fields.get("Orientation", "1 0 0 0 1 0 0 0 1")))
    tm = np.array([float(x) for x in tm_s.split()]).reshape(3, 3)
    off = [float(x) for x in fields.get("Offset", fields.get("Origin", fields.get("Position", "0 0 0"))).split()]
    m = np.eye(4)
    m[:3, :3] = tm.T @ np.diag(sp)  # rows of tm are the axes' cosines -> columns here
    m[:3, 3] = off
    return RawVolume(
        data,
        m,
        [],
        {"format": "MetaImage", "AnatomicalOrientation": fields.get("AnatomicalOrientation", "")},
        (sizes[2], sizes[1], sizes[0]),
        dt.name,
    )
