"""Seeded fuzzing of DICOM headers on a small synthetic CT series (issue 11).

One case = a clean 10-slice series written in one transfer syntax, with one to three
of its files mutated (header bytes, truncations, element values of the wrong type,
size or sign, element lengths, the file meta group, a corrupt deflate stream). The
series is then loaded with ``viewer.io.load_volume`` and the outcome is judged by
:func:`judge`:

* a loaded volume is acceptable when every voxel equals the clean series, or when
  every slice that is wrong (or missing) is attributable to a mutated file that the
  warnings name;
* a ``ViewerError`` is acceptable when its message names a mutated file;
* anything else (another exception, a hang) is a failure.

The clean series is built once per transfer syntax; each case only copies bytes and
edits the encoded elements, so a few hundred cases take seconds. The element editor
works on the encoded bytes (not through pydicom's writer), which is what lets it write
values pydicom would refuse: a one-byte US, a 400-digit IS, an odd length.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from dicom_factory import slice_dataset
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    RLELossless,
)

NZ, NY, NX = 10, 32, 34
SPACING_Z = 2.0
ORIGIN = (-10.0, -20.0, 30.0)
PIXEL_SPACING = (0.8, 0.6)
INTERCEPT = -1024.0

_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
_PIXEL_TAG = 0x7FE00010


def truth_volume() -> np.ndarray:
    """HU of the clean series: unsigned 12-bit stored values -1024 + 0..4000, every slice
    different, with stored values above 2047 (so a sign error or a lost high bit shows)."""
    k, j, i = np.mgrid[0:NZ, 0:NY, 0:NX]
    return (INTERCEPT + (k * 397 + j * 131 + i * 57) % 4000).astype(np.int16)


def truth_affine() -> np.ndarray:
    m = np.eye(4)
    m[0, 0], m[1, 1], m[2, 2] = PIXEL_SPACING[1], PIXEL_SPACING[0], SPACING_Z
    m[:3, 3] = ORIGIN
    return m


def file_name(k: int) -> str:
    """Fixed width, so no name is a prefix of another ('img003' is not in 'img0031')."""
    return f"img{k:03d}"


# ------------------------------------------------------------------ encoded elements
@dataclass
class Element:
    tag: int
    vr: bytes  # b"" for implicit VR
    value: bytes
    length: int | None = None  # None: len(value); set to write a lying length field
    undefined: bool = False  # encapsulated pixel data (value = the items as written)

    def encode(self, explicit: bool) -> bytes:
        g, e = self.tag >> 16, self.tag & 0xFFFF
        n = (0xFFFFFFFF if self.undefined else len(self.value)) if self.length is None else self.length
        head = struct.pack("<HH", g, e)
        if explicit and g != 0xFFFE:
            vr = self.vr or b"UN"
            if vr in _LONG_VRS:
                head += vr + b"\0\0" + struct.pack("<I", n & 0xFFFFFFFF)
            else:
                head += vr + struct.pack("<H", n & 0xFFFF)
        else:
            head += struct.pack("<I", n & 0xFFFFFFFF)
        return head + self.value


def parse_elements(data: bytes, explicit: bool) -> list[Element]:
    """Top-level elements of an encoded little-endian data set (no sequences in ours)."""
    out, pos = [], 0
    while pos + 8 <= len(data):
        g, e = struct.unpack_from("<HH", data, pos)
        tag = (g << 16) | e
        if explicit:
            vr = data[pos + 4 : pos + 6]
            if vr in _LONG_VRS:
                (n,) = struct.unpack_from("<I", data, pos + 8)
                start = pos + 12
            else:
                (n,) = struct.unpack_from("<H", data, pos + 6)
                start = pos + 8
        else:
            vr = b""
            (n,) = struct.unpack_from("<I", data, pos + 4)
            start = pos + 8
        if n == 0xFFFFFFFF:
            assert tag == _PIXEL_TAG, "the synthetic series has no sequences"
            out.append(Element(tag, vr, data[start:], undefined=True))
            break
        out.append(Element(tag, vr, data[start : start + n]))
        pos = start + n
    return out


@dataclass
class EncodedFile:
    """One file as meta elements + data-set elements, re-encoded on :meth:`to_bytes`."""

    meta: list[Element]
    body: list[Element]
    transfer_syntax: str
    meta_group_length: int | None = None  # a lying (0002,0000) value when set
    postprocess: list[Callable[[bytearray, int], None]] = field(default_factory=list)

    def copy(self) -> EncodedFile:
        return EncodedFile(
            [Element(**vars(e)) for e in self.meta],
            [Element(**vars(e)) for e in self.body],
            self.transfer_syntax,
            self.meta_group_length,
            [],
        )

    @property
    def explicit(self) -> bool:
        return self.transfer_syntax != str(ImplicitVRLittleEndian)

    def to_bytes(self) -> bytes:
        meta = b"".join(e.encode(True) for e in self.meta if e.tag != 0x00020000)
        gl = len(meta) if self.meta_group_length is None else self.meta_group_length
        meta = Element(0x00020000, b"UL", struct.pack("<I", gl & 0xFFFFFFFF)).encode(True) + meta
        body = b"".join(e.encode(self.explicit) for e in self.body)
        if self.transfer_syntax == str(DeflatedExplicitVRLittleEndian):
            c = zlib.compressobj(9, zlib.DEFLATED, -15)
            body = c.compress(body) + c.flush()
        out = bytearray(b"\0" * 128 + b"DICM" + meta + body)
        for fn in self.postprocess:
            fn(out, 132 + len(meta))
        return bytes(out)

    def find(self, tag: int) -> Element | None:
        return next((e for e in self.body if e.tag == tag), None)

    def set(self, tag: int, vr: bytes, value: bytes) -> None:
        el = self.find(tag)
        if el is None:
            self.body.append(Element(tag, vr, value))
            self.body.sort(key=lambda x: x.tag)
        else:
            el.value, el.length = value, None
            if vr:
                el.vr = vr


def _encode_clean(ds: pydicom.Dataset, ts: str) -> EncodedFile:
    """Encode with pydicom, then split into elements (meta: explicit LE always)."""
    write_ts = ExplicitVRLittleEndian if ts == str(DeflatedExplicitVRLittleEndian) else ts
    ds.file_meta.TransferSyntaxUID = write_ts
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    data = buf.getvalue()
    (gl,) = struct.unpack_from("<I", data, 132 + 8)
    meta_end = 132 + 12 + gl
    meta = parse_elements(data[132:meta_end], True)
    body = parse_elements(data[meta_end:], write_ts != str(ImplicitVRLittleEndian))
    ef = EncodedFile(meta, body, ts)
    for e in ef.meta:
        if e.tag == 0x00020010:
            v = ts.encode()
            e.value = v + (b"\0" if len(v) % 2 else b"")
    return ef


def available_syntaxes() -> list[str]:
    """The transfer syntaxes the loader claims and this machine can also encode."""
    out = [
        str(ExplicitVRLittleEndian),
        str(ImplicitVRLittleEndian),
        str(DeflatedExplicitVRLittleEndian),
        str(RLELossless),
    ]
    try:
        ds = slice_dataset(truth_volume()[0], ORIGIN, unsigned=True, bits_stored=12, intercept=INTERCEPT)
        ds.compress(JPEG2000Lossless)
        out.append(str(JPEG2000Lossless))
    except Exception:  # noqa: BLE001 - no JPEG 2000 encoder installed: that syntax is not fuzzed
        pass
    return out


def clean_series(ts: str) -> list[EncodedFile]:
    """The 10 clean files, in slice order (file k holds slice k)."""
    hu = truth_volume()
    files = []
    for k in range(NZ):
        ipp = (ORIGIN[0], ORIGIN[1], ORIGIN[2] + k * SPACING_Z)
        ds = slice_dataset(
            hu[k],
            ipp,
            pixel_spacing=PIXEL_SPACING,
            instance=(k * 7) % NZ + 1,
            unsigned=True,
            bits_stored=12,
            intercept=INTERCEPT,
            thickness=SPACING_Z,
            series_uid="1.2.826.0.1.3680043.99.11",
        )
        if ts in (str(RLELossless), str(JPEG2000Lossless)):
            ds.compress(ts, encoding_plugin="pydicom" if ts == str(RLELossless) else "")
        files.append(_encode_clean(ds, ts))
    return files


# ------------------------------------------------------------------------ mutations
_TAGS = {
    "Rows": (0x00280010, b"US"),
    "Columns": (0x00280011, b"US"),
    "BitsAllocated": (0x00280100, b"US"),
    "BitsStored": (0x00280101, b"US"),
    "HighBit": (0x00280102, b"US"),
    "PixelRepresentation": (0x00280103, b"US"),
    "SamplesPerPixel": (0x00280002, b"US"),
    "PhotometricInterpretation": (0x00280004, b"CS"),
    "NumberOfFrames": (0x00280008, b"IS"),
    "PixelSpacing": (0x00280030, b"DS"),
    "RescaleIntercept": (0x00281052, b"DS"),
    "RescaleSlope": (0x00281053, b"DS"),
    "ImagePositionPatient": (0x00200032, b"DS"),
    "ImageOrientationPatient": (0x00200037, b"DS"),
    "SliceThickness": (0x00180050, b"DS"),
    "InstanceNumber": (0x00200013, b"IS"),
    "SeriesInstanceUID": (0x0020000E, b"UI"),
    "SeriesNumber": (0x00200011, b"IS"),
    "Modality": (0x00080060, b"CS"),
    "ImageType": (0x00080008, b"CS"),
    "SOPClassUID": (0x00080016, b"UI"),
    "KVP": (0x00180060, b"DS"),
}
_US_VALUES = [
    b"\x01",
    b"\x00",
    b"\x01\x00\x00\x00",
    b"\x00\x00",
    b"\x01\x00",
    b"\x0b\x00",
    b"\xff\xff",
    b"\x00\x80",
    b"\x08\x00",
    b"\x20\x00",
    b"\x03\x00",
    b"\x0c\x00",
    b"\x10\x00",
    b"\x0f\x00",
    b"\x02\x00",
    b"",
    b"abc",
]
_NUM_TEXT = [
    "",
    "abc",
    "0x10",
    "1\\2",
    "NaN",
    "inf",
    "-inf",
    "-1",
    "0",
    "1e20",
    "1e308",
    "-1e308",
    "9" * 400,
    "1.5",
    "-0",
    " 7 ",
    "2",
    "3.0e1",
    "\x00\x00",
    "1e-30",
    "12345678901234567",
]
_IPP_TEXT = [
    "-201\\-59\\1e308",
    "-10\\-20\\9999455",
    "-10\\-20",
    "abc\\def\\ghi",
    "-10\\-20\\31",
    "-10\\-20\\NaN",
    "-15\\-20\\34",
    "-10\\-25.5\\34",
    "0\\0\\0",
    "-10\\-20\\30",
    "-10\\-20\\48",
    "-10\\-20\\-1e6",
    "1e308\\1e308\\1e308",
    "-10\\-20\\34.4",
]
_IOP_TEXT = [
    "1\\0\\0\\0\\1\\0\\0",
    "1\\0\\0\\0\\0\\1",
    "0\\1\\0\\0\\0\\-1",
    "1\\0\\0\\0\\1",
    "0\\0\\0\\0\\0\\0",
    "1\\0\\0\\1\\0\\0",
    "0.99999\\0\\0\\0\\1\\0",
    "1\\0\\0\\0\\0.9\\0.1",
    "NaN\\0\\0\\0\\1\\0",
]
_CS_TEXT = [
    "MR",
    "SR",
    "C T",
    "CT\\MR",
    "",
    "ct",
    "MONOCHROME1",
    "RGB",
    "ORIGINAL\\PRIMARY\\LOCALIZER",
    "\xff\xfe",
    "CT",
]
_UI_TEXT = ["1.2.3", "", "1.2.826.0.1.3680043.99.12", "x" * 80, "1.2.840.10008.5.1.4.1.1.4"]


def _pad(s: str | bytes) -> bytes:
    b = s.encode("latin-1") if isinstance(s, str) else s
    return b + (b" " if len(b) % 2 else b"")


def _mutate_value(f: EncodedFile, rng: random.Random) -> str:
    name = rng.choice(sorted(_TAGS))
    tag, vr = _TAGS[name]
    if rng.random() < 0.12:
        f.body = [e for e in f.body if e.tag != tag]
        return f"delete {name}"
    if vr == b"US":
        v = rng.choice(_US_VALUES + [struct.pack("<H", rng.randrange(65536))])
        f.set(tag, vr, v)
        return f"{name} = {v!r}"
    if name == "ImagePositionPatient":
        s = rng.choice(_IPP_TEXT)
    elif name == "ImageOrientationPatient":
        s = rng.choice(_IOP_TEXT)
    elif vr == b"CS":
        s = rng.choice(_CS_TEXT)
    elif vr == b"UI":
        s = rng.choice(_UI_TEXT)
    else:
        s = rng.choice(_NUM_TEXT + [repr(rng.uniform(-5000, 5000))[:16]])
    raw = _pad(s)
    if rng.random() < 0.1:
        raw = raw[:-1]  # odd length
    f.set(tag, vr, raw)
    return f"{name} = {s[:40]!r}"


def _mutate_length(f: EncodedFile, rng: random.Random) -> str:
    el = rng.choice([e for e in f.body if not e.undefined])
    n = len(el.value)
    el.length = rng.choice([0, 1, n + 1, max(0, n - 1), n + 2, n * 2 + 8, 0xFFFF, 0x7FFFFFFF, rng.randrange(0, 70000)])
    return f"length of ({el.tag >> 16:04X},{el.tag & 0xFFFF:04X}) {n} -> {el.length}"


def _mutate_header_bytes(f: EncodedFile, rng: random.Random) -> str:
    k = rng.randint(1, 6)
    seed = rng.randrange(1 << 30)
    deflated = f.transfer_syntax == str(DeflatedExplicitVRLittleEndian)

    def flip(out: bytearray, body_start: int) -> None:
        r = random.Random(seed)
        pix = out.find(b"\xe0\x7f\x10\x00", body_start)
        # In a deflated file the bytes after the meta group are the stream itself: keep
        # to the meta group there ("stream" mutations corrupt the stream).
        end = body_start if deflated else pix if pix > 0 else min(len(out), body_start + 600)
        for _ in range(k):
            p = r.randrange(128, max(129, end))
            out[p] = r.randrange(256)

    f.postprocess.append(flip)
    return f"{k} random header byte(s) (seed {seed})"


def _truncate(f: EncodedFile, rng: random.Random) -> str:
    frac = rng.random()

    def cut(out: bytearray, body_start: int) -> None:
        del out[max(0, int(len(out) * frac)) :]

    f.postprocess.append(cut)
    return f"truncated at {frac:.3f} of the file"


def _mutate_meta(f: EncodedFile, rng: random.Random) -> str:
    choice = rng.randrange(4)
    if choice == 0:
        f.meta_group_length = rng.choice([0, 2, 102, 1000, 0xFFFFFFFF, rng.randrange(300)])
        return f"(0002,0000) group length = {f.meta_group_length}"
    ts = rng.choice(
        [
            str(ImplicitVRLittleEndian),
            str(ExplicitVRLittleEndian),
            str(DeflatedExplicitVRLittleEndian),
            "1.2.840.10008.1.2.2",
            "1.2.3.4",
            "",
        ]
    )
    for e in f.meta:
        if e.tag == 0x00020010:
            e.value = _pad(ts) if choice == 1 else _pad(ts)[:-1] if ts else b""
    # the body stays encoded in the original syntax: the header now lies about it
    return f"(0002,0010) TransferSyntaxUID = {ts!r}"


def _corrupt_stream(f: EncodedFile, rng: random.Random) -> str:
    """Bytes changed after encoding: in a deflated file they corrupt the zlib stream."""
    seed = rng.randrange(1 << 30)

    def flip(out: bytearray, body_start: int) -> None:
        r = random.Random(seed)
        for _ in range(r.randint(1, 4)):
            p = r.randrange(body_start, len(out))
            out[p] ^= 1 << r.randrange(8)

    f.postprocess.append(flip)
    return f"bits flipped after the meta group (seed {seed})"


MUTATORS = {
    "value": (_mutate_value, 10),
    "length": (_mutate_length, 2),
    "header_bytes": (_mutate_header_bytes, 2),
    "truncate": (_truncate, 1),
    "meta": (_mutate_meta, 1),
    "stream": (_corrupt_stream, 1),
}


@dataclass
class Case:
    seed: int
    transfer_syntax: str
    mutated: dict[int, str]  # slice index -> what was done

    @property
    def pixels_may_change(self) -> set[int]:
        """Files whose deflate stream was corrupted: raw deflate (PS3.5 A.5) has no
        checksum, so a flip that still inflates changes pixel values undetectably. Their
        slices may be wrong; they must still not go missing or move unnamed."""
        return {k for k, m in self.mutated.items() if m.startswith("stream:")}

    def describe(self) -> str:
        ts = pydicom.uid.UID(self.transfer_syntax).name
        return f"seed {self.seed} [{ts}]: " + "; ".join(f"{file_name(k)}: {m}" for k, m in sorted(self.mutated.items()))


def make_case(seed: int, syntaxes: list[str], clean: dict[str, list[EncodedFile]], folder: Path) -> Case:
    """Write one mutated series into ``folder``; returns what was mutated."""
    rng = random.Random(seed)
    ts = syntaxes[seed % len(syntaxes)]
    files = [f.copy() for f in clean[ts]]
    victims = rng.sample(range(NZ), rng.choice([1, 1, 2, 3]))
    names, weights = zip(*((k, w) for k, (_, w) in MUTATORS.items()), strict=False)
    mutated = {}
    for k in victims:
        kind = rng.choices(names, weights)[0]
        if kind == "stream" and ts != str(DeflatedExplicitVRLittleEndian):
            kind = "value"  # flipped pixel bits in other syntaxes are not a header fault
        mutated[k] = f"{kind}: " + MUTATORS[kind][0](files[k], rng)
    folder.mkdir(parents=True, exist_ok=True)
    for k, f in enumerate(files):
        (folder / file_name(k)).write_bytes(f.to_bytes())
    return Case(seed, ts, mutated)


# ------------------------------------------------------------------------- judging
@dataclass
class Outcome:
    kind: str  # "clean" | "warned" | "error" | "FAIL"
    detail: str
    names_file: bool = False


def _named(text: str, ks: set[int]) -> set[int]:
    return {k for k in ks if file_name(k) in text}


def judge(case: Case, result: object) -> Outcome:
    """Classify a load result (a Volume or the exception raised) for ``case``."""
    from viewer.core.errors import ViewerError

    mutated = set(case.mutated)
    if isinstance(result, BaseException):
        if not isinstance(result, ViewerError):
            return Outcome("FAIL", f"{type(result).__name__} escaped: {result}")
        named = bool(_named(str(result), mutated))
        if not named:
            return Outcome("FAIL", f"ViewerError names no mutated file: {result}")
        return Outcome("error", str(result), True)
    vol = result
    text = "\n".join(vol.warnings)  # type: ignore[attr-defined]
    named = _named(text, mutated)
    hu, m = vol.hu, vol.ijk_to_lps  # type: ignore[attr-defined]
    truth, tm = truth_volume(), truth_affine()
    if hu.dtype != np.int16:
        return Outcome("FAIL", f"volume dtype {hu.dtype}")
    same_grid = hu.shape[1:] == truth.shape[1:] and np.allclose(m[:3, :2], tm[:3, :2], atol=1e-4)
    if same_grid and hu.shape == truth.shape and np.allclose(m, tm, atol=1e-4) and np.array_equal(hu, truth):
        return Outcome("clean", "volume exact", bool(named))
    if not same_grid:
        if named:
            return Outcome("warned", "other grid; warned", True)
        return Outcome(
            "FAIL", f"volume on another grid {hu.shape} without naming a mutated file; warnings: {vol.warnings}"
        )  # type: ignore[attr-defined]
    # Same in-plane grid: match each output slice to the clean slice at its position.
    wrong: set[int] = set()
    covered: set[int] = set()
    unmatched = 0
    for kk in range(hu.shape[0]):
        p = m @ np.array([0.0, 0.0, kk, 1.0])
        if not np.allclose(p[:2], tm[:2, 3], atol=1e-3):
            unmatched += 1
            continue
        j = (p[2] - ORIGIN[2]) / SPACING_Z
        jr = int(round(j))
        if abs(j - jr) > 1e-3 or not 0 <= jr < NZ:
            unmatched += 1
            continue
        covered.add(jr)
        if not np.array_equal(hu[kk], truth[jr]):
            wrong.add(jr)
    missing = set(range(NZ)) - covered
    bad = (wrong - case.pixels_may_change) | missing
    unexplained = bad - named
    if named and vol.metadata.get("resampled"):  # type: ignore[attr-defined]
        # Resampling interpolates between neighbours: a named bad slice spreads into the
        # output slices next to it, so those are explained by the warning too.
        unexplained = set()
    if unmatched and not named:
        return Outcome(
            "FAIL",
            f"{unmatched} output slice(s) at positions of no clean slice, no mutated "
            f"file named; warnings: {vol.warnings}",
        )  # type: ignore[attr-defined]
    if unexplained:
        clean_bad = unexplained - mutated
        what = ", ".join(file_name(k) for k in sorted(unexplained))
        return Outcome(
            "FAIL",
            f"slices wrong or missing without their file named: {what}"
            f"{' (not mutated!)' if clean_bad and not named else ''}; "
            f"warnings: {vol.warnings}",
        )  # type: ignore[attr-defined]
    return Outcome("warned", f"{len(bad)} slice(s) wrong/missing, all named", bool(named))


def judge_single(case: Case, k: int, result: object) -> Outcome:
    """Like :func:`judge` for file ``k`` loaded on its own (``load_volume(file)``).

    A lone file has no neighbours to be checked against (a plausible wrong position or
    intercept cannot be seen), so this tier judges the errors: only ``ViewerError``
    may escape, and it must name the file. A loaded slice is "clean" when it equals
    clean slice ``k``, else "loaded"."""
    from viewer.core.errors import ViewerError

    name = file_name(k)
    if isinstance(result, BaseException):
        if not isinstance(result, ViewerError):
            return Outcome("FAIL", f"{type(result).__name__} escaped: {result}")
        if name not in str(result):
            return Outcome("FAIL", f"ViewerError does not name {name}: {result}")
        return Outcome("error", str(result), True)
    vol = result
    if vol.hu.dtype != np.int16:  # type: ignore[attr-defined]
        return Outcome("FAIL", f"volume dtype {vol.hu.dtype}")  # type: ignore[attr-defined]
    same = vol.hu.shape == (1, NY, NX) and np.array_equal(vol.hu[0], truth_volume()[k])  # type: ignore[attr-defined]
    return Outcome("clean" if same else "loaded", "single file", name in "\n".join(vol.warnings))  # type: ignore[attr-defined]
