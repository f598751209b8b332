"""Series descriptions and grouping of DICOM images into series.

Grouping (PS3.3 C.7.3.1: all images of a series share (0020,000E) SeriesInstanceUID):
1. by SeriesInstanceUID; where it is empty or missing (some anonymisers blank it, as in
   the ct-contrast-abdomen-j2k test scan) by (SeriesNumber, orientation, size, pixel
   spacing) instead;
2. inside one UID, images of different orientation or size cannot form one volume:
   they are split into separate series, each with a warning;
3. localizer/scout images (ImageType contains LOCALIZER, or a lone image whose
   orientation differs from the rest of its series) are dropped with a warning.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from viewer.io.dicom_headers import SliceHeader
from viewer.io.geometry import orientation_label, slice_frame

SeriesKind = Literal["dicom", "nifti", "nrrd", "metaimage"]


@dataclass(frozen=True)
class SeriesInfo:
    """One loadable series found by :func:`viewer.io.scan_series`.

    Holds no patient identity (names, IDs, birth dates are read only at load time into
    ``Volume.identity``).

    Attributes:
        key: stable id; pass it back as ``load_volume(..., series=key)``.
        description: (0008,103E) SeriesDescription or the file name.
        modality: (0008,0060) Modality ('CT', 'MR'...); '' for NIfTI/NRRD/MetaImage,
            which carry none (they are assumed to be CT, see ``is_ct``).
        n_slices: number of images (frames) in the series, localizers excluded.
        rows, columns: slice size in pixels.
        spacing_mm: (x, y, z) voxel size: column spacing, row spacing and the median
            slice step along the normal; None when it cannot be known (one slice).
        files: the files of the series (sorted by path).
        warnings: problems already visible from the headers (splits, skipped files).
        is_ct: modality is CT (volume files are assumed CT).
        series_number: (0020,0011) SeriesNumber.
        kind: 'dicom', 'nifti', 'nrrd' or 'metaimage'.
        orientation: 'axial', 'coronal', 'sagittal', 'oblique' or '' when unknown.
    """

    key: str
    description: str
    modality: str
    n_slices: int
    rows: int
    columns: int
    spacing_mm: tuple[float, float, float] | None
    files: tuple[Path, ...]
    warnings: tuple[str, ...] = ()
    is_ct: bool = True
    series_number: int | None = None
    kind: SeriesKind = "dicom"
    orientation: str = ""

    def summary(self) -> str:
        """One line for lists: number, description, modality, size, spacing."""
        sp = "?" if self.spacing_mm is None else "x".join(f"{s:.3g}" for s in self.spacing_mm)
        num = "" if self.series_number is None else f"#{self.series_number} "
        mod = self.modality or "volume"
        return (
            f"{num}{self.description or '(no description)'} [{mod}, {self.kind}] "
            f"{self.columns}x{self.rows}x{self.n_slices} @ {sp} mm"
        )


@dataclass
class DicomGroup:
    """Headers of one DICOM series plus grouping warnings (internal)."""

    key: str
    headers: list[SliceHeader]
    warnings: list[str] = field(default_factory=list)


def _round_iop(iop: tuple[float, ...] | None) -> tuple[float, ...]:
    return () if iop is None else tuple(round(float(x), 3) for x in iop)


def _round_ps(ps: tuple[float, float] | None) -> tuple[float, ...]:
    return () if ps is None else tuple(round(float(x), 4) for x in ps)


def _geom_key(h: SliceHeader) -> tuple:
    return (_round_iop(h.iop), h.rows, h.cols, _round_ps(h.pixel_spacing))


def _short_hash(*parts: object) -> str:
    return hashlib.sha1(repr(parts).encode()).hexdigest()[:8]


def _names(hs: list[SliceHeader], limit: int = 5) -> str:
    labels = sorted({h.label for h in hs})
    shown = ", ".join(labels[:limit])
    return shown if len(labels) <= limit else f"{shown} and {len(labels) - limit} more"


def _complete(h: SliceHeader) -> bool:
    return h.iop is not None and h.pixel_spacing is not None


#: Fields of SliceHeader.pixel_format, for messages.
_FORMAT_NAMES = (
    "(0028,0100) BitsAllocated",
    "(0028,0101) BitsStored",
    "(0028,0102) HighBit",
    "(0028,0103) PixelRepresentation",
    "(0028,0002) SamplesPerPixel",
    "(0028,0004) PhotometricInterpretation",
)


def _consistent(base: str, hs: list[SliceHeader]) -> tuple[list[SliceHeader], list[str]]:
    """Drop the images of one series whose header disagrees with the rest about what the
    stored values mean: (0008,0060) Modality, the pixel format (bits, sign, samples,
    photometric) or the presence of (0028,1052)/(0028,1053) rescale values.

    Each of these changes how every voxel of the image is read; one odd file read with
    the wrong sign or without its intercept is 1,000-3,000 HU off with nothing to show
    for it. The majority decides; every dropped image is named with its value and the
    series' value. Without a majority (a tie) nothing is dropped here: the series keeps
    its mix, and each image is still read with its own header.
    """
    warnings: list[str] = []
    checks = (
        ("(0008,0060) Modality", lambda h: h.modality or "(none)"),
        ("pixel format", lambda h: h.pixel_format),
        (
            "(0028,1052) RescaleIntercept / (0028,1053) RescaleSlope",
            lambda h: "present" if h.rescale_given else "absent",
        ),
    )
    for what, key in checks:
        counts: dict = {}
        for h in hs:
            counts.setdefault(key(h), []).append(h)
        if len(counts) < 2:
            continue
        main = max(counts, key=lambda k: len(counts[k]))
        if len(counts[main]) * 2 <= len(hs):
            continue
        odd = [h for k, v in counts.items() if k != main for h in v]
        if what == "pixel format":

            def diff(h: SliceHeader, series_format: tuple[object, ...]) -> str:
                named = zip(_FORMAT_NAMES, h.pixel_format, series_format, strict=False)
                parts = [f"{n} {a!r} (series: {b!r})" for n, a, b in named if a != b]
                return f"{h.label}: " + ", ".join(parts)

            detail = "; ".join(diff(h, main) for h in odd[:5]) + (f" and {len(odd) - 5} more" if len(odd) > 5 else "")
        else:
            detail = "; ".join(f"{h.label}: {key(h)}" for h in odd[:5]) + (
                f" and {len(odd) - 5} more" if len(odd) > 5 else ""
            )
            detail += f" (series: {main})"
        warnings.append(
            f"skipped {len(odd)} image(s) of series {base} whose {what} differs from the "
            f"other {len(counts[main])} images: {detail}"
        )
        drop = {id(h) for h in odd}
        hs = [h for h in hs if id(h) not in drop]
    return hs, warnings


def group_series(headers: list[SliceHeader]) -> tuple[list[DicomGroup], list[str]]:
    """Group image headers into series; returns (groups, warnings about dropped images)."""
    dropped: list[str] = []
    localizers = [h for h in headers if h.is_localizer]
    if localizers:
        dropped.append(
            f"skipped {len({h.path for h in localizers})} localizer/scout image(s) "
            f"(ImageType LOCALIZER): {_names(localizers)}"
        )
    images = [h for h in headers if not h.is_localizer]

    by_uid: dict[tuple, list[SliceHeader]] = {}
    deferred: list[SliceHeader] = []
    for h in images:
        if h.series_uid:
            k: tuple = ("uid", h.series_uid)
        elif _complete(h):
            k = ("auto", h.series_number, *_geom_key(h))
        else:
            deferred.append(h)  # no UID and no geometry to group by: placed below
            continue
        by_uid.setdefault(k, []).append(h)
    for h in deferred:
        # Join the largest UID-less group of the same SeriesNumber and size, where the
        # loader then skips it by name for its missing geometry; else a group of its own.
        cands = [k for k in by_uid if k[0] == "auto" and k[1] == h.series_number and k[3] == h.rows and k[4] == h.cols]
        k = max(cands, key=lambda c: len(by_uid[c])) if cands else ("auto", h.series_number, *_geom_key(h))
        by_uid.setdefault(k, []).append(h)

    groups: list[DicomGroup] = []
    for k, hs in by_uid.items():
        sub: dict[tuple, list[SliceHeader]] = {}
        incomplete: list[SliceHeader] = []
        for h in hs:
            if _complete(h):
                sub.setdefault(_geom_key(h), []).append(h)
            else:
                incomplete.append(h)
        if k[0] == "auto":
            base = f"auto-S{k[1] if k[1] is not None else 'x'}-{hs[0].cols}x{hs[0].rows}-{_short_hash(k)}"
            warn = [
                "(0020,000E) SeriesInstanceUID is empty or missing: grouped by SeriesNumber, "
                "orientation, size and pixel spacing instead"
            ]
        else:
            base = k[1]
            warn = []
        hs, odd = _consistent(base, hs)
        dropped.extend(odd)
        kept = {id(h) for h in hs}
        sub = {gk: [h for h in v if id(h) in kept] for gk, v in sub.items()}
        sub = {gk: v for gk, v in sub.items() if v}
        incomplete = [h for h in incomplete if id(h) in kept]
        if not sub:
            if incomplete:  # nothing placeable: load_group refuses it, naming the files
                groups.append(DicomGroup(base, incomplete, warn))
            continue
        # Images lacking (0020,0037) or (0028,0030) stay with the main part of their
        # series, where load_group skips them with a warning that names them (a group of
        # their own would hide them in a one-image series).
        main_key = max(sub, key=lambda g: len(sub[g]))
        sub[main_key] = sub[main_key] + incomplete
        if len(sub) == 1:
            groups.append(DicomGroup(base, sub[main_key], warn))
            continue
        # Several geometries in one series: lone images of another orientation are scouts.
        parts = {}
        for gk, ghs in sub.items():
            if gk != main_key and len({h.path for h in ghs}) == 1 and len(ghs) == 1 and gk[0] != main_key[0]:
                dropped.append(
                    f"skipped lone image {ghs[0].label} of series {base}: its orientation "
                    f"differs from the other {len(sub[main_key])} images (a localizer)"
                )
                continue
            parts[gk] = ghs
        if len(parts) == 1:
            groups.append(DicomGroup(base, next(iter(parts.values())), warn))
            continue

        def part_desc(g: tuple, v: list[SliceHeader]) -> str:
            ps = "x".join(f"{x:g}" for x in g[3]) if g[3] else "?"
            where = f": {_names(v, 3)}" if len(v) <= 3 else ""
            return f"{g[2]}x{g[1]} {_orient(g[0])} {ps} mm pixels ({len(v)} image(s){where})"

        desc = "; ".join(part_desc(g, v) for g, v in parts.items())
        for gk, ghs in parts.items():
            key = f"{base}#{gk[2]}x{gk[1]}-{_orient(gk[0])}-{_short_hash(gk)[:4]}"
            groups.append(
                DicomGroup(
                    key,
                    ghs,
                    warn
                    + [
                        f"series {base} mixes images of different size, orientation or pixel spacing ({desc}); "
                        f"split into {len(parts)} series, this one holds {len(ghs)} image(s)"
                    ],
                )
            )
    return groups, dropped


def _orient(iop: tuple[float, ...]) -> str:
    try:
        return orientation_label(iop) if iop else "unknown"
    except ValueError:
        return "invalid"


def describe_group(g: DicomGroup, extra_warnings: list[str]) -> SeriesInfo:
    """SeriesInfo for a DICOM group (spacing from positions along the normal)."""
    h0 = g.headers[0]
    spacing: tuple[float, float, float] | None = None
    orient = ""
    if h0.iop is not None:
        try:
            _, _, n = slice_frame(h0.iop)
            orient = orientation_label(h0.iop)
            ws = sorted({round(float(np.dot(h.ipp, n)), 3) for h in g.headers if h.ipp is not None})
            if h0.pixel_spacing is not None and len(ws) > 1:
                spacing = (float(h0.pixel_spacing[1]), float(h0.pixel_spacing[0]), float(np.median(np.diff(ws))))
        except ValueError:
            orient = "invalid"
    modality = h0.modality
    # (0008,0060) Modality decides; only when it is missing does a CT SOP class count.
    is_ct = modality == "CT" or (
        not modality and h0.sop_class in ("1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.2.1")
    )
    return SeriesInfo(
        key=g.key,
        description=h0.description,
        modality=modality,
        n_slices=len(g.headers),
        rows=h0.rows,
        columns=h0.cols,
        spacing_mm=spacing,
        files=tuple(sorted({h.path for h in g.headers})),
        warnings=tuple(g.warnings + extra_warnings),
        is_ct=is_ct,
        series_number=h0.series_number,
        kind="dicom",
        orientation=orient,
    )
