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
        return (f"{num}{self.description or '(no description)'} [{mod}, {self.kind}] "
                f"{self.columns}x{self.rows}x{self.n_slices} @ {sp} mm")


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


def group_series(headers: list[SliceHeader]) -> tuple[list[DicomGroup], list[str]]:
    """Group image headers into series; returns (groups, warnings about dropped images)."""
    dropped: list[str] = []
    localizers = [h for h in headers if h.is_localizer]
    if localizers:
        dropped.append(f"skipped {len({h.path for h in localizers})} localizer/scout image(s) "
                       f"(ImageType LOCALIZER): {_names(localizers)}")
    images = [h for h in headers if not h.is_localizer]

    by_uid: dict[tuple, list[SliceHeader]] = {}
    for h in images:
        if h.series_uid:
            k: tuple = ("uid", h.series_uid)
        else:
            k = ("auto", h.series_number, *_geom_key(h))
        by_uid.setdefault(k, []).append(h)

    groups: list[DicomGroup] = []
    for k, hs in by_uid.items():
        sub: dict[tuple, list[SliceHeader]] = {}
        for h in hs:
            sub.setdefault(_geom_key(h), []).append(h)
        if k[0] == "auto":
            base = f"auto-S{k[1] if k[1] is not None else 'x'}-{hs[0].cols}x{hs[0].rows}-{_short_hash(k)}"
            warn = ["(0020,000E) SeriesInstanceUID is empty or missing: grouped by SeriesNumber, "
                    "orientation, size and pixel spacing instead"]
        else:
            base = k[1]
            warn = []
        if len(sub) == 1:
            groups.append(DicomGroup(base, hs, warn))
            continue
        # Several geometries in one series: lone images of another orientation are scouts.
        main_key = max(sub, key=lambda g: len(sub[g]))
        parts = {}
        for gk, ghs in sub.items():
            if gk != main_key and len({h.path for h in ghs}) == 1 and len(ghs) == 1 and gk[0] != main_key[0]:
                dropped.append(f"skipped lone image {ghs[0].label} of series {base}: its orientation "
                               f"differs from the other {len(sub[main_key])} images (a localizer)")
                continue
            parts[gk] = ghs
        if len(parts) == 1:
            groups.append(DicomGroup(base, next(iter(parts.values())), warn))
            continue
        desc = "; ".join(f"{g[2]}x{g[1]} {_orient(g[0])} ({len(v)} images)" for g, v in parts.items())
        for gk, ghs in parts.items():
            key = f"{base}#{gk[2]}x{gk[1]}-{_orient(gk[0])}-{_short_hash(gk)[:4]}"
            groups.append(DicomGroup(key, ghs, warn + [
                f"series {base} mixes images of different size or orientation ({desc}); "
                f"split into {len(parts)} series, this one holds {len(ghs)} image(s)"]))
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
                spacing = (float(h0.pixel_spacing[1]), float(h0.pixel_spacing[0]),
                           float(np.median(np.diff(ws))))
        except ValueError:
            orient = "invalid"
    modality = h0.modality
    # (0008,0060) Modality decides; only when it is missing does a CT SOP class count.
    is_ct = modality == "CT" or (not modality and h0.sop_class in (
        "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.2.1"))
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
