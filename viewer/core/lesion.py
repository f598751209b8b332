"""Lesion-centred planning (issue 10): the lesion a user marks and what feeds it.

Frames and units
----------------
Everything here is in patient space, LPS millimetres (x to the Left, y Posterior,
z Superior), the frame of :attr:`viewer.core.volume.Volume.ijk_to_lps`. Voxel arrays
are ``(nz, ny, nx)`` like :attr:`Volume.hu`. Box bounds use VTK's order
``(xmin, xmax, ymin, ymax, zmin, zmax)`` so the renderer can pass them on unchanged.

A :class:`Lesion` is either a sphere (``center_lps`` + ``radius_mm``) or an
axis-aligned LPS box (``box_lps``; then ``center_lps`` is the box centre and
``radius_mm`` half its diagonal, for display only).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from viewer.core.errors import ViewerError
from viewer.core.volume import Volume

Bounds6 = tuple[float, float, float, float, float, float]
Vec3 = tuple[float, float, float]


def _finite_vec(value: Any, n: int, what: str) -> tuple[float, ...]:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ViewerError(f"{what} must be {n} numbers, got {value!r}") from None
    if arr.shape != (n,):
        raise ViewerError(f"{what} must be {n} numbers, got {value!r}")
    if not np.all(np.isfinite(arr)):
        raise ViewerError(f"{what} must be finite numbers (no NaN or infinity), got {value!r}")
    return tuple(float(v) for v in arr)


def _check_box(box: tuple[float, ...], what: str = "lesion box_lps") -> Bounds6:
    for axis, (lo, hi) in zip("LPS", zip(box[0::2], box[1::2], strict=True), strict=True):
        if not hi > lo:
            raise ViewerError(
                f"{what} must have min < max on every axis (xmin, xmax, ymin, ymax, zmin, zmax); "
                f"on {axis} it runs from {lo:g} to {hi:g} mm"
            )
    return box  # type: ignore[return-value]


@dataclass(frozen=True)
class Lesion:
    """The region a user marks around a lesion (LPS mm).

    Attributes:
        center_lps: sphere centre, or the box centre when ``box_lps`` is set (LPS mm).
        radius_mm: sphere radius (mm); for a box half its diagonal (informational).
        box_lps: when set, the region is this axis-aligned box
            ``(xmin, xmax, ymin, ymax, zmin, zmax)`` in LPS mm, else the sphere.

    Construction checks what needs no scan (finite numbers, a positive radius, a box
    with min < max); :func:`validate_lesion` adds the checks against a scan.
    """

    center_lps: Vec3
    radius_mm: float
    box_lps: Bounds6 | None = None

    def __post_init__(self) -> None:
        c = _finite_vec(self.center_lps, 3, "lesion center_lps (L, P, S in mm)")
        try:
            r = float(self.radius_mm)
        except (TypeError, ValueError):
            raise ViewerError(f"lesion radius_mm must be a number, got {self.radius_mm!r}") from None
        if not math.isfinite(r):
            raise ViewerError(f"lesion radius_mm must be a finite number, got {self.radius_mm!r}")
        if r <= 0:
            raise ViewerError(f"lesion radius must be greater than 0 mm, got {r:g} mm")
        object.__setattr__(self, "center_lps", c)
        object.__setattr__(self, "radius_mm", r)
        if self.box_lps is not None:
            box = _check_box(_finite_vec(self.box_lps, 6, "lesion box_lps (xmin, xmax, ymin, ymax, zmin, zmax)"))
            object.__setattr__(self, "box_lps", box)

    # ----- constructors ---------------------------------------------------
    @classmethod
    def sphere(cls, center_lps: tuple[float, float, float] | np.ndarray, radius_mm: float) -> Lesion:
        """A sphere of ``radius_mm`` around ``center_lps`` (LPS mm)."""
        return cls(_finite_vec(center_lps, 3, "lesion center_lps (L, P, S in mm)"), radius_mm)  # type: ignore[arg-type]

    @classmethod
    def box(cls, box_lps: Bounds6 | tuple[float, ...] | np.ndarray) -> Lesion:
        """An axis-aligned LPS box ``(xmin, xmax, ymin, ymax, zmin, zmax)`` in mm."""
        b = _check_box(_finite_vec(box_lps, 6, "lesion box_lps (xmin, xmax, ymin, ymax, zmin, zmax)"))
        lo = np.array(b[0::2])
        hi = np.array(b[1::2])
        center = tuple(float(v) for v in (lo + hi) / 2.0)
        return cls(center, float(np.linalg.norm(hi - lo) / 2.0), b)  # type: ignore[arg-type]

    # ----- geometry -------------------------------------------------------
    @property
    def is_box(self) -> bool:
        return self.box_lps is not None

    def bounds_lps(self) -> Bounds6:
        """Axis-aligned LPS bounds of the region (VTK order), mm."""
        if self.box_lps is not None:
            return self.box_lps
        c, r = self.center_lps, self.radius_mm
        return (c[0] - r, c[0] + r, c[1] - r, c[1] + r, c[2] - r, c[2] + r)

    def distance_lps(self, points_lps: np.ndarray) -> np.ndarray:
        """Distance (mm) of ``(N, 3)`` LPS points to the region, 0 inside; float64 ``(N,)``."""
        p = np.asarray(points_lps, dtype=np.float64).reshape(-1, 3)
        if self.box_lps is None:
            d = np.linalg.norm(p - np.asarray(self.center_lps), axis=1) - self.radius_mm
            return np.asarray(np.maximum(d, 0.0))
        lo = np.asarray(self.box_lps[0::2])
        hi = np.asarray(self.box_lps[1::2])
        out = np.maximum(np.maximum(lo - p, 0.0), p - hi)
        return np.asarray(np.linalg.norm(out, axis=1))

    def contains_lps(self, points_lps: np.ndarray) -> np.ndarray:
        """``(N, 3)`` LPS points (mm) -> ``(N,)`` bool, True inside the region (surface included)."""
        p = np.asarray(points_lps, dtype=np.float64).reshape(-1, 3)
        if self.box_lps is None:
            d2 = np.sum((p - np.asarray(self.center_lps)) ** 2, axis=1)
            return np.asarray(d2 <= self.radius_mm**2)
        lo = np.asarray(self.box_lps[0::2])
        hi = np.asarray(self.box_lps[1::2])
        return np.asarray(np.all((p >= lo) & (p <= hi), axis=1))

    def ijk_slices(self, volume: Volume, margin_mm: float = 0.0) -> tuple[slice, slice, slice]:
        """The ``(k, j, i)`` index window of ``volume`` holding the region grown by
        ``margin_mm`` (clipped to the volume; may be empty when the region lies outside)."""
        b = self.bounds_lps()
        m = float(margin_mm)
        lo = np.array(b[0::2]) - m
        hi = np.array(b[1::2]) + m
        corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
        ijk = volume.ijk_of_lps(corners)
        i0 = np.floor(ijk.min(axis=0)).astype(int)
        i1 = np.ceil(ijk.max(axis=0)).astype(int) + 1
        nx, ny, nz = volume.dims_xyz
        size = (nx, ny, nz)
        a = [int(min(max(i0[d], 0), size[d])) for d in range(3)]
        e = [int(min(max(i1[d], 0), size[d])) for d in range(3)]
        return slice(a[2], e[2]), slice(a[1], e[1]), slice(a[0], e[0])

    def region_mask(self, volume: Volume) -> np.ndarray:
        """bool ``(nz, ny, nx)``: True for voxels whose centre lies in the region."""
        out = np.zeros(volume.shape, dtype=bool)
        sk, sj, si = self.ijk_slices(volume)
        if sk.stop <= sk.start or sj.stop <= sj.start or si.stop <= si.start:
            return out
        out[sk, sj, si] = self.contains_lps(_crop_lps(volume, (sk, sj, si)).reshape(-1, 3)).reshape(
            sk.stop - sk.start, sj.stop - sj.start, si.stop - si.start
        )
        return out

    # ----- serialisation --------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form (lists of floats, ``box_lps`` None for a sphere)."""
        return {
            "center_lps": list(self.center_lps),
            "radius_mm": self.radius_mm,
            "box_lps": None if self.box_lps is None else list(self.box_lps),
        }

    @classmethod
    def from_dict(cls, d: Any, source: str = "<lesion>") -> Lesion:
        """Inverse of :meth:`to_dict`. With ``box_lps`` set the box defines the region
        (centre and radius follow from it); otherwise ``center_lps`` and ``radius_mm``
        are required. Errors are :class:`ViewerError` naming ``source`` and the field."""
        if not isinstance(d, Mapping):
            raise ViewerError(f"{source}: a lesion must be an object, got {type(d).__name__}")
        box = d.get("box_lps")
        try:
            if box is not None:
                return cls.box(box)
            for name in ("center_lps", "radius_mm"):
                if name not in d:
                    raise ViewerError(f"lesion has no field '{name}' (and no 'box_lps')")
            return cls(d["center_lps"], d["radius_mm"])
        except ViewerError as exc:
            raise ViewerError(f"{source}: {exc}") from None


def _crop_lps(volume: Volume, window: tuple[slice, slice, slice]) -> np.ndarray:
    """LPS mm of the voxel centres in a ``(k, j, i)`` window, float64 ``(nk, nj, ni, 3)``."""
    sk, sj, si = window
    k, j, i = np.meshgrid(
        np.arange(sk.start, sk.stop, dtype=np.float64),
        np.arange(sj.start, sj.stop, dtype=np.float64),
        np.arange(si.start, si.stop, dtype=np.float64),
        indexing="ij",
    )
    a = volume.ijk_to_lps
    out = np.empty(k.shape + (3,), dtype=np.float64)
    for r in range(3):
        out[..., r] = a[r, 0] * i + a[r, 1] * j + a[r, 2] * k + a[r, 3]
    return out


def validate_lesion(lesion: Lesion, volume: Volume) -> None:
    """Check that ``lesion`` makes sense for ``volume``; raise :class:`ViewerError` if not.

    * the centre must lie inside the scan (its voxel-centre box grown by half a voxel);
    * the radius must be greater than 0 mm (also checked at construction) and no larger
      than the scan's largest extent (a bigger sphere holds the whole scan in any
      direction, which is no longer a lesion);
    * a box must overlap the scan.
    """
    c = np.asarray(lesion.center_lps, dtype=np.float64)
    if not np.all(np.isfinite(c)) or not math.isfinite(lesion.radius_mm):
        raise ViewerError(f"lesion centre {lesion.center_lps} or radius {lesion.radius_mm} is not a finite number")
    if lesion.radius_mm <= 0:
        raise ViewerError(f"lesion radius must be greater than 0 mm, got {lesion.radius_mm:g} mm")
    lo, hi = volume.bounds_lps()
    half = np.abs(volume.ijk_to_lps[:3, :3]).sum(axis=1) / 2.0
    lo, hi = lo - half, hi + half
    extent = float(np.max(hi - lo))
    scan = f"the scan spans L {lo[0]:.1f}..{hi[0]:.1f}, P {lo[1]:.1f}..{hi[1]:.1f}, S {lo[2]:.1f}..{hi[2]:.1f} mm"
    if lesion.box_lps is not None:
        blo = np.asarray(lesion.box_lps[0::2])
        bhi = np.asarray(lesion.box_lps[1::2])
        if np.any(bhi < lo) or np.any(blo > hi):
            raise ViewerError(f"lesion box {tuple(round(v, 1) for v in lesion.box_lps)} lies outside the scan: {scan}")
    elif np.any(c < lo) or np.any(c > hi):
        raise ViewerError(
            f"lesion centre ({c[0]:.1f}, {c[1]:.1f}, {c[2]:.1f}) mm (L, P, S) lies outside the scan: {scan}"
        )
    if lesion.radius_mm > extent:
        raise ViewerError(
            f"lesion radius {lesion.radius_mm:.1f} mm is larger than the scan itself "
            f"(largest extent {extent:.1f} mm): choose a smaller radius"
        )


def lesion_from_phantom(landmarks: Mapping[str, object]) -> Lesion:
    """The lesion of the phantom's legend: the box ``erosion_box_lps`` (the cortical
    erosion under the calcified mass, given as ``((xmin, ymin, zmin), (xmax, ymax, zmax))``
    in LPS mm) as a :class:`Lesion` box."""
    box = landmarks.get("erosion_box_lps")
    if box is None:
        raise ViewerError("this scan has no phantom legend (no landmark 'erosion_box_lps')")
    try:
        lo, hi = (np.asarray(v, dtype=np.float64).reshape(3) for v in box)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        raise ViewerError(f"phantom landmark 'erosion_box_lps' must be two LPS points, got {box!r}") from None
    return Lesion.box((lo[0], hi[0], lo[1], hi[1], lo[2], hi[2]))


def distance_to_lesion_mm(volume: Volume, lesion: Lesion) -> np.ndarray:
    """float32 ``(nz, ny, nx)``: distance (mm) of each voxel centre to the lesion
    region, 0 inside. Exact (analytic, from the voxel centres' LPS positions), computed
    one slice at a time so the peak memory is the output plus one slice's coordinates."""
    nz, ny, nx = volume.shape
    out = np.empty(volume.shape, dtype=np.float32)
    a = volume.ijk_to_lps
    j, i = np.meshgrid(np.arange(ny, dtype=np.float64), np.arange(nx, dtype=np.float64), indexing="ij")
    plane = np.stack([a[r, 0] * i + a[r, 1] * j + a[r, 3] for r in range(3)], axis=-1)  # k = 0
    for k in range(nz):
        pts = plane + a[:3, 2] * float(k)
        out[k] = lesion.distance_lps(pts.reshape(-1, 3)).reshape(ny, nx)
    return out


def distance_to_bone_mm(volume: Volume, bone_mask: np.ndarray) -> np.ndarray:
    """float32 ``(nz, ny, nx)``: Euclidean distance (mm, true voxel spacing) of each
    voxel centre to the nearest bone voxel centre, 0 in bone; where the scan holds no
    bone at all, every voxel gets the scan's diagonal (no bone within the scan)."""
    bone = np.asarray(bone_mask, dtype=bool)
    if bone.shape != volume.shape:
        raise ViewerError(f"bone mask shape {bone.shape} does not match the scan's {volume.shape}")
    if not bone.any():
        lo, hi = volume.bounds_lps()
        return np.full(volume.shape, float(np.linalg.norm(hi - lo)), dtype=np.float32)
    sx, sy, sz = volume.spacing_mm
    return _edt(~bone, (sz, sy, sx))


def _edt(mask: np.ndarray, sampling_zyx: tuple[float, float, float]) -> np.ndarray:
    """float32 distance (mm) of each True voxel to the nearest False one (0 on False).

    The ``edt`` package (multi-threaded, about 5x faster than
    ``scipy.ndimage.distance_transform_edt`` on 2 cores here); scipy if it is absent."""
    try:
        import edt as edt_pkg
    except ImportError:  # pragma: no cover - edt is a declared dependency
        from scipy import ndimage as ndi

        return np.asarray(ndi.distance_transform_edt(mask, sampling=sampling_zyx), dtype=np.float32)
    return np.asarray(
        edt_pkg.edt(
            np.ascontiguousarray(mask, dtype=np.uint8), anisotropy=sampling_zyx, black_border=False, parallel=2
        ),
        dtype=np.float32,
    )


@dataclass(frozen=True)
class EntryPoint:
    """Where a vessel enters or touches the bone cortex inside the lesion region.

    Attributes:
        number: 1-based marker number (ordered by distance to the lesion centre).
        lps_mm: the cortex crossing, LPS mm.
        distance_to_center_mm: from the lesion centre, mm.
        nearest_artery: name of the nearest named artery centreline, when known
            (phantom legend); None on real scans.
        calibre_mm: local vessel diameter at the entry, mm (2 x the lumen's distance
            transform on its centreline).
    """

    number: int
    lps_mm: Vec3
    distance_to_center_mm: float
    nearest_artery: str | None
    calibre_mm: float

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "lps_mm": [round(v, 2) for v in self.lps_mm],
            "distance_to_center_mm": round(self.distance_to_center_mm, 2),
            "nearest_artery": self.nearest_artery,
            "calibre_mm": round(self.calibre_mm, 2),
        }


@dataclass(frozen=True, eq=False)
class Branch:
    """One vessel branch (skeleton path between junctions / ends) near the lesion.

    Attributes:
        number: 1-based, ordered by distance of the branch to the lesion centre.
        length_mm: path length along the centreline, mm.
        diameter_mm: mean lumen diameter along the path, mm.
        points_lps: ``(N, 3)`` centreline points, LPS mm, in path order.
        crosses_radius: the path crosses the lesion's surface (part inside, part outside).
    """

    number: int
    length_mm: float
    diameter_mm: float
    points_lps: np.ndarray
    crosses_radius: bool

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "length_mm": round(self.length_mm, 2),
            "diameter_mm": round(self.diameter_mm, 2),
            "crosses_radius": self.crosses_radius,
            "n_points": int(len(self.points_lps)),
        }


@dataclass(frozen=True, eq=False)
class LesionAnalysis:
    """What feeds a lesion: entry points, branch map and lumen volume.

    Attributes:
        lesion: the analysed region.
        entry_points: numbered cortex entries inside the region.
        branches: vessel branches within the region (or crossing its surface).
        lumen_volume_ml: volume of vessel voxels inside the region, ml.
        n_branches_crossing: how many branches cross the region's surface.
        message: why the result is empty ("No contrast: ...", "No vessel within
            N mm of the lesion"), "" when fine.
        timings_s: seconds per stage.
    """

    lesion: Lesion
    entry_points: tuple[EntryPoint, ...]
    branches: tuple[Branch, ...]
    lumen_volume_ml: float
    n_branches_crossing: int
    message: str
    timings_s: Mapping[str, float] = field(default_factory=dict)

    def to_json_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form (no patient identity: there is none in here)."""
        return {
            "lesion": self.lesion.to_dict(),
            "entry_points": [e.to_json_dict() for e in self.entry_points],
            "branches": [b.to_json_dict() for b in self.branches],
            "lumen_volume_ml": round(self.lumen_volume_ml, 4),
            "n_branches_crossing": self.n_branches_crossing,
            "message": self.message,
        }


def write_lesion_tables(analysis: LesionAnalysis, csv_path: Path) -> list[Path]:
    """Write ``<stem>_entry_points.csv`` and ``<stem>_branches.csv`` next to
    ``csv_path`` (its suffix is dropped); returns both paths. Columns carry units."""
    base = Path(csv_path)
    stem = base.with_suffix("") if base.suffix.lower() == ".csv" else base
    entries = stem.parent / f"{stem.name}_entry_points.csv"
    branches = stem.parent / f"{stem.name}_branches.csv"
    try:
        stem.parent.mkdir(parents=True, exist_ok=True)
        with entries.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["number", "L_mm", "P_mm", "S_mm", "distance_to_center_mm", "nearest_artery", "calibre_mm"])
            for e in analysis.entry_points:
                w.writerow(
                    [e.number, *(f"{v:.2f}" for v in e.lps_mm), f"{e.distance_to_center_mm:.2f}"]
                    + [e.nearest_artery or "", f"{e.calibre_mm:.2f}"]
                )
        with branches.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["number", "length_mm", "diameter_mm", "crosses_radius", "n_points"])
            for b in analysis.branches:
                w.writerow(
                    [b.number, f"{b.length_mm:.2f}", f"{b.diameter_mm:.2f}", int(b.crosses_radius), len(b.points_lps)]
                )
    except OSError as exc:
        raise ViewerError(
            f"cannot write the lesion tables to {stem.parent}: {exc.strerror or exc}", stem.parent
        ) from None
    return [entries, branches]


__all__ = [
    "Bounds6",
    "Branch",
    "EntryPoint",
    "Lesion",
    "LesionAnalysis",
    "Vec3",
    "distance_to_bone_mm",
    "distance_to_lesion_mm",
    "lesion_from_phantom",
    "validate_lesion",
    "write_lesion_tables",
]
