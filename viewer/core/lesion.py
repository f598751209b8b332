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
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from viewer.core.errors import ViewerError
from viewer.core.extraction import ClassMasks
from viewer.core.progress import ProgressFn, report
from viewer.core.separation import dilate6
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
        shape = (sj.stop - sj.start, si.stop - si.start)
        for k in range(sk.start, sk.stop):  # a slice at a time: memory stays one plane of points
            plane = _crop_lps(volume, (slice(k, k + 1), sj, si)).reshape(-1, 3)
            out[k, sj, si] = self.contains_lps(plane).reshape(shape)
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
        what = "radius" if lesion.box_lps is None else "box (half its diagonal)"
        raise ViewerError(
            f"lesion {what} {lesion.radius_mm:.1f} mm is larger than the scan itself "
            f"(largest extent {extent:.1f} mm): choose a smaller {'radius' if lesion.box_lps is None else 'box'}"
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


# ----- the analysis ------------------------------------------------------------------

#: Crop margin (mm) around the lesion region: branches are followed this far past the
#: surface so a crossing is seen on both sides, and bone just outside still counts.
MARGIN_MM = 10.0

#: A vessel end this close (mm, centreline to the nearest bone voxel centre) to bone
#: ends on the cortex: a candidate entry point. Measured on the default phantom: the
#: nutrient arteries' skeleton ends lie about 1.0-1.4 mm from the bone voxels of the canal.
TOUCH_MM = 1.6

#: Entry candidates closer together than this (mm) are one entry.
MERGE_MM = 3.0

#: A spur (junction-to-end skeleton path) shorter than this many local lumen radii
#: (distance transform at its junction), or than SPUR_VOXELS voxels, ends inside or just
#: past its parent's wall: a bump of the lumen's surface, not a branch.
SPUR_RADII = 1.5
SPUR_VOXELS = 2.0

#: ... or one that sticks out of the parent's wall by less than this many of its own
#: diameters (a wall bump is about as long as it is wide).
SPUR_DIAMETERS = 2.0

#: Spurs are pruned again after each round (pruning joins paths and uncovers new
#: spurs), up to this many rounds.
PRUNE_ROUNDS = 8

#: Isolated skeleton pieces shorter than this (mm) are noise specks, not vessels.
MIN_ISOLATED_MM = 1.0

#: Vessel pieces smaller than this (mm3) on their own are partial-volume specks (the
#: fringe of cortex and calcification against muscle falls in the vessel window), unless
#: they lie within one voxel of a larger vessel (a thin vessel broken by noise).
MIN_COMPONENT_MM3 = 20.0

#: A vessel end enters the bone when its direction meets bone within this distance (mm).
ENTER_MM = 2.5

#: ... and when it comes from away from the bone: over the last APPROACH_MM (mm) of its
#: centreline the distance to bone grows by at least APPROACH_SLOPE per mm (0.3: an
#: approach steeper than about 17 degrees to the surface). Measured on the default
#: phantom: the nutrient arteries' ends rise 0.46-0.62 mm per mm, the collaterals and
#: partial-volume rims that end on the cortex while running along it 0.10-0.15.
APPROACH_MM = 3.0
APPROACH_SLOPE = 0.3

#: The analysis box is the vessel voxels' bounding box grown by this (mm): every bone
#: voxel the entry tests can reach (TOUCH_MM + APPROACH_MM + ENTER_MM) lies inside it.
PAD_MM = TOUCH_MM + APPROACH_MM + ENTER_MM + 1.0

#: How far (mm, along the skeleton) the nearest named artery is looked for from an entry.
FEEDER_SEARCH_MM = 60.0


def _empty(lesion: Lesion, message: str, timings: Mapping[str, float], lumen_ml: float = 0.0) -> LesionAnalysis:
    return LesionAnalysis(lesion, (), (), lumen_ml, 0, message, dict(timings))


def _no_vessel_message(lesion: Lesion) -> str:
    if lesion.box_lps is None:
        return f"No vessel within {lesion.radius_mm:.0f} mm of the lesion centre"
    return "No vessel inside the lesion box"


def _vessel_voxels(volume: Volume, masks: ClassMasks, window: tuple[slice, slice, slice]) -> np.ndarray:
    """Vessel-class voxels of the crop: ``masks.vessel`` with the uncertain rim (vessel-
    window voxels touching bone; they render as vessel, and the nutrient arteries' last
    voxels before the cortex are among them), or, for the classic masks that carry no
    vessel class, the vessel window outside bone, calcification and hidden voxels."""
    if masks.vessel is not None:
        ves = np.array(masks.vessel[window], dtype=bool)
        if masks.uncertain is not None:
            ves |= masks.uncertain[window]
        return ves
    lo, hi = masks.vessel_window_hu
    hu = volume.hu[window]
    ves = (hu >= lo) & (hu <= hi) & ~masks.bone[window]
    for extra in (masks.calcification, masks.hidden, masks.removed):
        if extra is not None:
            ves &= ~extra[window]
    return np.asarray(ves)


def _halo_back(volume: Volume, masks: ClassMasks, window: tuple[slice, slice, slice], vessel: np.ndarray) -> np.ndarray:
    """``vessel`` (after :func:`_clean_vessels`) with the classless voxels of the vessel
    window next to it: the separation's trim of thin vessels' partial-volume halo
    leaves them in no class (``masks.hidden``), and on the default phantom it cut the
    last two voxels of nutrient_1 before the cortex (264 HU), so the vessel ended 2 mm
    short of the bone and its entry was lost (recall 1.00 -> 0.67). Only next to the
    kept vessels and only up to the window's top: the hidden class also holds the
    cortex's and the calcified rim's blur up to the bone threshold, and with it specks
    round the mass joined into pieces large enough to keep (25 mm sphere: 2 -> 31
    branches)."""
    if masks.vessel is None or masks.hidden is None:
        return vessel
    hi = masks.vessel_window_hu[1]
    near = dilate6(vessel) & masks.hidden[window] & (volume.hu[window] <= hi)
    return np.asarray(vessel | near)


def _clean_vessels(vessel: np.ndarray, voxel_mm3: float) -> np.ndarray:
    """Drop partial-volume specks, keep broken thin vessels (see MIN_COMPONENT_MM3): a
    small piece at most one voxel away from a large one is kept (as a piece of its own:
    bridging the gap also joined it to neighbouring vessels, closing loops that hide
    where the vessel ends)."""
    import cc3d

    labels = cc3d.connected_components(vessel, connectivity=26)
    stats = cc3d.statistics(labels)
    sizes = np.asarray(stats["voxel_counts"]) * voxel_mm3
    large_ids = np.nonzero(sizes >= MIN_COMPONENT_MM3)[0]
    large_ids = large_ids[large_ids != 0]
    is_large = np.zeros(len(sizes), dtype=bool)
    is_large[large_ids] = True
    keep = is_large.copy()
    shape = labels.shape
    for n in np.nonzero(~is_large)[0].tolist():
        if n == 0 or sizes[n] == 0:
            continue
        # the piece's bounding box grown by two voxels: any large vessel in it?
        box = tuple(
            slice(max(b.start - 2, 0), min(b.stop + 2, shape[d])) for d, b in enumerate(stats["bounding_boxes"][n])
        )
        keep[n] = bool(is_large[np.unique(labels[box])].any())
    keep[0] = False
    return np.asarray(keep[labels])


def _summarize(sk: Any) -> Any:
    """``skan.summarize`` (a pandas table per path), without the deprecation warning
    that skan 0.13's own ``DataFrame.rename(inplace=True)`` raises under pandas 3.1."""
    import warnings

    import skan

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The inplace keyword", category=Warning)
        return skan.summarize(sk, separator="_")


def _stubby(sk: Any, path: int, junction: int, r_junction_mm: float, length_mm: float, radius_mm: np.ndarray) -> bool:
    """True when the spur ``path`` sticks out of its parent's wall by less than
    SPUR_DIAMETERS of its own diameters (its mean diameter beyond the parent's radius
    from the junction): a bump of the wall, not a branch."""
    ids = np.asarray(sk.path(path))
    if int(ids[0]) != junction:
        ids = ids[::-1]
    pts = np.asarray(sk.coordinates[ids], dtype=np.float64) * np.asarray(sk.spacing)
    along = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
    outside = along > r_junction_mm
    if not outside.any():
        return True
    own_diameter = 2.0 * float(radius_mm[tuple(np.round(sk.coordinates[ids[outside]]).astype(int).T)].mean())
    return length_mm - r_junction_mm < SPUR_DIAMETERS * own_diameter


def _skeleton(vessel: np.ndarray, radius_mm: np.ndarray, spacing_zyx: tuple[float, float, float]) -> Any:
    """skan Skeleton of the vessel mask, spurs and specks pruned (see SPUR_RADII)."""
    import skan
    from skimage.morphology import skeletonize

    skel = np.asarray(skeletonize(vessel)).astype(bool)  # type: ignore[no-untyped-call]
    if not skel.any():
        return None
    sk = skan.Skeleton(skel, spacing=spacing_zyx, source_image=radius_mm)
    min_spur_mm = SPUR_VOXELS * float(np.cbrt(np.prod(spacing_zyx)))
    for _round in range(PRUNE_ROUNDS):
        df = _summarize(sk)
        length = df["branch_distance"].to_numpy()
        kind = df["branch_type"].to_numpy()
        src = df["node_id_src"].to_numpy()
        dst = df["node_id_dst"].to_numpy()
        # the junction end of a spur: the node of degree > 1
        junction = np.where(sk.degrees[src] > 1, src, dst)
        r_junction = radius_mm[tuple(np.round(sk.coordinates[junction]).astype(int).T)]
        spur = (kind == 1) & (length < np.maximum(SPUR_RADII * r_junction, min_spur_mm))
        for n in np.nonzero((kind == 1) & ~spur)[0].tolist():
            spur[n] = _stubby(sk, n, int(junction[n]), float(r_junction[n]), float(length[n]), radius_mm)
        speck = (kind == 0) & (length < MIN_ISOLATED_MM)
        drop = np.nonzero(spur | speck)[0]
        if drop.size == 0:
            break
        if drop.size == len(df):
            return None
        sk = sk.prune_paths(drop)
    return sk


def _runs(inside: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` index ranges of consecutive True values."""
    edges = np.diff(np.concatenate([[0], inside.astype(np.int8), [0]]))
    return list(zip(np.nonzero(edges == 1)[0].tolist(), np.nonzero(edges == -1)[0].tolist(), strict=True))


def _surface_point(lesion: Lesion, p_in: np.ndarray, p_out: np.ndarray) -> np.ndarray:
    """Where the segment from an inside point to an outside point crosses the region's
    surface (bisection, to 0.01 mm)."""
    a, b = p_in, p_out
    for _ in range(12):
        m = (a + b) / 2.0
        if lesion.contains_lps(m[None])[0]:
            a = m
        else:
            b = m
    return np.asarray((a + b) / 2.0)


def _branches(
    sk: Any, lesion: Lesion, to_lps: Any, radius_mm: np.ndarray
) -> tuple[list[tuple[np.ndarray, float, float, bool, float]], int]:
    """Pieces of skeleton paths inside the region: (points, length, diameter, crosses,
    distance to the centre), and the number of surface crossings."""
    out = []
    crossing_pts: list[np.ndarray] = []
    crossing_r: list[float] = []
    centre = np.asarray(lesion.center_lps)
    for i in range(sk.n_paths):
        ids = np.asarray(sk.path(i))
        idx = np.asarray(sk.coordinates[ids], dtype=np.float64)
        if len(idx) < 2:
            continue
        pts = to_lps(idx)
        r = radius_mm[tuple(np.round(idx).astype(int).T)]
        along = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
        own = _trim_junctions(sk, ids, along, r)
        inside = lesion.contains_lps(pts)
        for a, b in _runs(inside):
            piece = pts[a:b]
            sel = own[a:b]
            diam = _diameter_mm(r[a:b][sel] if sel.any() else r[a:b])
            enters = a > 0
            leaves = b < len(pts)
            if enters:
                piece = np.vstack([_surface_point(lesion, pts[a], pts[a - 1])[None], piece])
                crossing_pts.append(piece[0])
                crossing_r.append(float(r[a]))
            if leaves:
                piece = np.vstack([piece, _surface_point(lesion, pts[b - 1], pts[b])[None]])
                crossing_pts.append(piece[-1])
                crossing_r.append(float(r[b - 1]))
            length = float(np.linalg.norm(np.diff(piece, axis=0), axis=1).sum()) if len(piece) > 1 else 0.0
            if length <= 0.0 or (length < diam and not (enters or leaves)):
                continue  # a stub shorter than it is wide: a lump of lumen, not a tube
            dist = float(np.linalg.norm(piece - centre, axis=1).min())
            out.append((piece, length, diam, enters or leaves, dist))
    return out, len(_distinct_crossings(crossing_pts, crossing_r))


def _distinct_crossings(points: list[np.ndarray], radii_mm: list[float]) -> list[int]:
    """Indices of the crossings that stand for distinct vessels: crossings closer together
    than the lumen's diameter are one vessel crossing the surface (a centreline that
    wiggles across it, or two skeleton paths of one lumen; on the large phantom these
    made 9 crossings of 6 collaterals)."""
    kept: list[int] = []
    for n, (p, r) in enumerate(zip(points, radii_mm, strict=True)):
        if all(float(np.linalg.norm(p - points[m])) > 2.0 * max(r, radii_mm[m]) for m in kept):
            kept.append(n)
    return kept


def _diameter_mm(radius_mm: np.ndarray) -> float:
    """Mean lumen diameter (mm): twice the mean distance transform (mm, with the true
    voxel spacing) on the centreline.

    The distance transform of a centreline voxel is the distance to the nearest voxel
    centre outside the lumen; of the many outside centres around a tube one lies just
    past its wall, so it reads the radius itself: on digitised straight tubes of radius
    1-4.3 voxels at any angle, 2 x it came out at 0.93-0.99 of the true diameter.
    (Taking half a voxel off, the textbook correction for the wall lying between voxel
    centres, read the phantom's collaterals 0.53 mm too thin on average, so it is not
    done.) Below 1.5 voxels the grid sets a floor: a one-voxel-thin vessel reads two
    voxels (1.4 mm at 0.7 mm voxels)."""
    r = np.asarray(radius_mm, dtype=np.float64)
    return float(2.0 * r.mean()) if r.size else 0.0


def _trim_junctions(sk: Any, ids: np.ndarray, along_mm: np.ndarray, radius_path: np.ndarray) -> np.ndarray:
    """bool per path point: False within the parent lumen at a junction end (the path
    starts on the parent's centreline, where the distance transform is the parent's
    radius, not the branch's)."""
    keep = np.ones(len(ids), dtype=bool)
    total = float(along_mm[-1]) if len(along_mm) else 0.0
    if sk.degrees[ids[0]] > 2:
        keep &= along_mm >= radius_path[0]
    if sk.degrees[ids[-1]] > 2:
        keep &= (total - along_mm) >= radius_path[-1]
    return keep if keep.any() else np.ones(len(ids), dtype=bool)


def _named_centrelines(
    artery_centerlines_lps: Mapping[str, np.ndarray] | None,
) -> tuple[Any, list[str], np.ndarray] | None:
    if not artery_centerlines_lps:
        return None
    from scipy.spatial import cKDTree

    names: list[str] = []
    pts: list[np.ndarray] = []
    owner: list[np.ndarray] = []
    for name, line in artery_centerlines_lps.items():
        arr = np.asarray(line, dtype=np.float64).reshape(-1, 3)
        if arr.size == 0:
            continue
        names.append(str(name))
        pts.append(arr)
        owner.append(np.full(len(arr), len(names) - 1))
    if not pts:
        return None
    return cKDTree(np.vstack(pts)), names, np.concatenate(owner)


def _entries(
    sk: Any,
    lesion: Lesion,
    to_lps: Any,
    window_shape: tuple[int, int, int],
    at_volume_face: tuple[np.ndarray, np.ndarray],
    radius_mm: np.ndarray,
    bone: np.ndarray,
    vessel: np.ndarray,
    d_bone_mm: np.ndarray,
    spacing_zyx: tuple[float, float, float],
    named: tuple[Any, list[str], np.ndarray] | None,
) -> list[tuple[np.ndarray, float, str | None]]:
    """Vessel ends on the cortex inside the region: (entry LPS, calibre mm, feeder)."""
    from scipy.sparse.csgraph import dijkstra

    coords = np.asarray(sk.coordinates, dtype=np.float64)
    ends = np.nonzero(sk.degrees == 1)[0]
    if ends.size == 0:
        return []
    ijk = np.round(coords[ends]).astype(int)
    # an end on a crop face (not the scan's own face) is where the crop cut the vessel
    shape = np.asarray(window_shape)
    cut = np.any(((ijk == 0) & ~at_volume_face[0]) | ((ijk == shape - 1) & ~at_volume_face[1]), axis=1)
    near = d_bone_mm[tuple(ijk.T)] <= TOUCH_MM
    inside = lesion.contains_lps(to_lps(coords[ends]))
    cand = ends[near & inside & ~cut]
    path_of: dict[int, int] = {}
    for i in range(sk.n_paths):
        ids = sk.path(i)
        for e in (int(ids[0]), int(ids[-1])):
            path_of.setdefault(e, i)
    step = 0.2
    sp = np.asarray(spacing_zyx)
    found: list[tuple[np.ndarray, float, str | None]] = []
    for e in cand.tolist():
        path_index = path_of.get(e)
        if path_index is None:
            continue
        ids = sk.path(path_index)
        idx = coords[ids] if int(ids[0]) == e else coords[ids][::-1]  # from the end inwards
        along = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(idx, axis=0) * sp, axis=1))])
        kb = min(int(np.searchsorted(along, APPROACH_MM)), len(idx) - 1)
        back = idx[kb]
        rise = float(d_bone_mm[tuple(np.round(back).astype(int))] - d_bone_mm[tuple(np.round(idx[0]).astype(int))])
        if along[kb] <= 0 or rise < APPROACH_SLOPE * along[kb]:
            continue  # runs along the cortex, not towards it
        direction = (idx[0] - back) * sp
        if np.linalg.norm(direction) < 1e-6:
            continue
        direction /= np.linalg.norm(direction)
        entry_idx = None
        reentered = False
        for t in np.arange(step, 4.0 + step, step):
            q = np.round(idx[0] + t * direction / sp).astype(int)
            if np.any(q < 0) or np.any(q >= shape):
                break
            if entry_idx is None and bone[tuple(q)]:
                entry_idx = idx[0] + t * direction / sp
            elif entry_idx is not None and vessel[tuple(q)] and t > 1.0:
                reentered = True  # vessel again beyond a thin bone bridge: a gap, not an entry
                break
        if reentered or entry_idx is None:
            continue
        if float(np.linalg.norm((entry_idx - idx[0]) * sp)) > ENTER_MM:
            continue  # the vessel ends near the cortex but runs along it, not into it
        sel = (along >= 1.0) & (along <= 5.0)
        calibre = _diameter_mm(radius_mm[tuple(np.round(idx[sel] if sel.any() else idx).astype(int).T)])
        feeder = None
        if named is not None:
            feeder = _feeder(sk, e, dijkstra, to_lps, named)
        found.append((to_lps(entry_idx[None])[0], calibre, feeder))
    # one marker per entry: merge candidates closer than MERGE_MM
    merged: list[tuple[np.ndarray, float, str | None]] = []
    for f in found:
        if all(np.linalg.norm(f[0] - m[0]) >= MERGE_MM for m in merged):
            merged.append(f)
    return merged


def _feeder(sk: Any, end: int, dijkstra: Any, to_lps: Any, named: tuple[Any, list[str], np.ndarray]) -> str | None:
    """The named centreline first reached walking the skeleton from ``end``: the
    nearest skeleton pixel (geodesically) lying within 1.5 mm of a named centreline.

    A thin vessel broken into pieces (see :func:`_clean_vessels`) is followed across
    its gaps: when the walk runs out on a piece, it goes on from the piece's far end to
    the nearest skeleton pixel of another piece within 2.5 voxels."""
    from scipy.spatial import cKDTree

    tree, names, owner = named
    coords = np.asarray(sk.coordinates, dtype=np.float64)
    lps = to_lps(coords)
    d_line, k_line = tree.query(lps)
    on_named = d_line <= 1.5
    pix_tree = cKDTree(coords)
    start, budget = end, FEEDER_SEARCH_MM
    visited = np.zeros(len(coords), dtype=bool)
    for _hop in range(4):
        dist = dijkstra(sk.graph, directed=False, indices=start, limit=budget)
        reached = np.nonzero(np.isfinite(dist))[0]
        order = reached[np.argsort(dist[reached])]
        hit = order[on_named[order]]
        if hit.size:
            return names[int(owner[k_line[hit[0]]])]
        visited[reached] = True
        far = int(order[-1])
        budget -= float(dist[far])
        nxt = [q for q in pix_tree.query_ball_point(coords[far], 2.5) if not visited[q]]
        if budget <= 0 or not nxt:
            break
        start = min(nxt, key=lambda q: float(np.linalg.norm(coords[q] - coords[far])))
    return names[int(owner[k_line[end]])] if d_line[end] <= 10.0 else None


def warm_up() -> None:
    """Compile skan's numba graph code on a tiny skeleton (about 1.5-2 s once per
    process; the first :func:`analyse_lesion` pays it otherwise). Call it on a worker
    thread at start-up."""
    import skan

    img = np.zeros((5, 5, 5), dtype=bool)
    img[2, 2, 1:4] = True
    img[2, 1:4, 2] = True
    _summarize(skan.Skeleton(img, spacing=(1.0, 1.0, 1.0)))


def analyse_lesion(
    volume: Volume,
    masks: ClassMasks,
    lesion: Lesion,
    *,
    artery_centerlines_lps: Mapping[str, np.ndarray] | None = None,
    progress: ProgressFn | None = None,
) -> LesionAnalysis:
    """What feeds the lesion: cortex entry points, the branch map and the lumen volume.

    Works on a crop of the region plus :data:`MARGIN_MM`:

    1. vessel voxels (:func:`_vessel_voxels`) and their distance transform (mm);
    2. the centreline: ``skimage.morphology.skeletonize`` (3D, Lee 1994) and ``skan``'s
       graph with the true voxel spacing, spurs shorter than :data:`SPUR_RADII`
       local radii pruned;
    3. branches: skeleton paths cut at the region's surface, with length, mean diameter
       (2 x the distance transform on the centreline, :func:`_diameter_mm`) and whether they
       cross the surface; ``n_branches_crossing`` counts the surface crossings (each a
       vessel cut by a margin at that surface);
    4. entry points: vessel ends inside the region within :data:`TOUCH_MM` of bone
       (vessels that end on the cortex, like nutrient arteries entering their canal),
       placed where the vessel's direction meets the bone, merged within
       :data:`MERGE_MM`; the feeder is the named centreline (``artery_centerlines_lps``)
       first reached along the skeleton.

    A scan without contrast, or no vessel in the region, gives an empty analysis with
    ``message`` saying so; a lesion outside the scan raises :class:`ViewerError`.
    """
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    validate_lesion(lesion, volume)
    if masks.bone.shape != volume.shape:
        raise ViewerError(f"the class masks ({masks.bone.shape}) do not belong to this scan ({volume.shape})")
    if masks.contrast is False:
        reason = masks.message or "no contrast-filled vessels were found in this scan"
        return _empty(lesion, f"No contrast: {reason}", {"total_s": time.perf_counter() - t0})
    report(progress, 0.0, "lesion: vessels in the region")
    window = lesion.ijk_slices(volume, MARGIN_MM)
    sx, sy, sz = volume.spacing_mm
    vessel = _halo_back(volume, masks, window, _clean_vessels(_vessel_voxels(volume, masks, window), sx * sy * sz))
    spacing_zyx = (sz, sy, sx)
    idx = np.argwhere(vessel)
    origin = np.array([window[2].start, window[1].start, window[0].start], dtype=np.float64)
    n_inside = int(lesion.contains_lps(volume.lps_of_ijk(idx[:, ::-1] + origin)).sum()) if len(idx) else 0
    lumen_ml = n_inside * sx * sy * sz / 1000.0
    if n_inside == 0:
        timings["total_s"] = timings["crop_s"] = time.perf_counter() - t0
        return _empty(lesion, _no_vessel_message(lesion), timings)
    # From here on only the box around the vessel voxels, grown by as far as the entry
    # tests look for bone (PAD_MM): the distance transforms cost per voxel of the box,
    # and most of a 60 mm sphere's crop holds no vessel.
    pad = [int(math.ceil(PAD_MM / h)) for h in spacing_zyx]
    lo_kji = np.maximum(idx.min(axis=0) - pad, 0)
    hi_kji = np.minimum(idx.max(axis=0) + 1 + np.asarray(pad), vessel.shape)
    local = tuple(slice(int(a), int(b)) for a, b in zip(lo_kji, hi_kji, strict=True))
    vessel = vessel[local]
    window = tuple(slice(w.start + b.start, w.start + b.stop) for w, b in zip(window, local, strict=True))  # type: ignore[assignment]
    sk_, sj_, si_ = window
    off = np.array([si_.start, sj_.start, sk_.start], dtype=np.float64)
    shape = (sk_.stop - sk_.start, sj_.stop - sj_.start, si_.stop - si_.start)
    bone = np.asarray(masks.bone[window], dtype=bool)

    def to_lps(idx_zyx: np.ndarray) -> np.ndarray:
        return volume.lps_of_ijk(np.asarray(idx_zyx, dtype=np.float64)[:, ::-1] + off)

    timings["crop_s"] = time.perf_counter() - t0

    report(progress, 0.1, "lesion: distance transforms")
    t = time.perf_counter()
    radius_mm = _edt(vessel, spacing_zyx)
    d_bone_mm = _edt(~bone, spacing_zyx) if bone.any() else np.full(shape, np.inf, dtype=np.float32)
    timings["distance_s"] = time.perf_counter() - t
    report(progress, 0.3, "lesion: centrelines")
    t = time.perf_counter()
    sk = _skeleton(vessel, radius_mm, spacing_zyx)
    timings["skeleton_s"] = time.perf_counter() - t
    if sk is None:
        timings["total_s"] = time.perf_counter() - t0
        return _empty(lesion, _no_vessel_message(lesion), timings, lumen_ml)
    report(progress, 0.7, "lesion: branches")
    t = time.perf_counter()
    pieces, crossings = _branches(sk, lesion, to_lps, radius_mm)
    pieces.sort(key=lambda p: p[4])
    branches = tuple(
        Branch(n + 1, length, diam, pts, crosses) for n, (pts, length, diam, crosses, _d) in enumerate(pieces)
    )
    timings["branches_s"] = time.perf_counter() - t
    report(progress, 0.85, "lesion: entry points")
    t = time.perf_counter()
    nz, ny, nx = volume.shape
    faces = (
        np.array([sk_.start == 0, sj_.start == 0, si_.start == 0]),
        np.array([sk_.stop == nz, sj_.stop == ny, si_.stop == nx]),
    )
    found = _entries(
        sk,
        lesion,
        to_lps,
        shape,
        faces,
        radius_mm,
        bone,
        vessel,
        d_bone_mm,
        spacing_zyx,
        _named_centrelines(artery_centerlines_lps),
    )
    centre = np.asarray(lesion.center_lps)
    found.sort(key=lambda f: float(np.linalg.norm(f[0] - centre)))
    entries = tuple(
        EntryPoint(
            n + 1,
            (float(p[0]), float(p[1]), float(p[2])),
            float(np.linalg.norm(p - centre)),
            feeder,
            calibre,
        )
        for n, (p, calibre, feeder) in enumerate(found)
    )
    timings["entries_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - t0
    report(progress, 1.0, "lesion: done")
    message = "" if branches else _no_vessel_message(lesion)
    return LesionAnalysis(lesion, entries, branches, lumen_ml, crossings, message, timings)


# ----- accuracy against a ground truth (the phantom's legend) -------------------------


@dataclass(frozen=True)
class LesionScore:
    """How an analysis compares with the phantom's analytic truth.

    Attributes:
        entry_recall: fraction of true entries (``nutrient_entry_lps`` inside the region)
            with a marker within ``tolerance_mm``.
        false_markers: markers farther than ``tolerance_mm`` from every true entry.
        entry_errors_mm: distance of each found true entry to its nearest marker.
        n_true_entries: true entries inside the region.
        collateral_crossings_true: crossings of the lesion surface by the centrelines
            of the ``collaterals`` (crossings closer than the lumen's diameter are one).
        collateral_crossings_found: crossings by branches whose surface point lies
            nearest to a collateral centreline (within its radius + 1.5 mm; the same
            merging).
        diameter_errors_mm: per branch matched to a collateral, measured minus true
            mean diameter.
        feeders_right: markers whose ``nearest_artery`` is the true entry's parent.
    """

    entry_recall: float
    false_markers: int
    entry_errors_mm: tuple[float, ...]
    n_true_entries: int
    collateral_crossings_true: int
    collateral_crossings_found: int
    diameter_errors_mm: tuple[float, ...]
    feeders_right: int


def _surface_crossings(lesion: Lesion, points_lps: np.ndarray, radii_mm: np.ndarray) -> int:
    """Distinct crossings (see :func:`_distinct_crossings`) of a centreline through the
    lesion's surface."""
    inside = lesion.contains_lps(points_lps)
    k = np.nonzero(np.diff(inside.astype(np.int8)))[0]
    mid = [(points_lps[i] + points_lps[i + 1]) / 2.0 for i in k]
    return len(_distinct_crossings(mid, [float(radii_mm[i]) for i in k]))


def _on_surface(lesion: Lesion, q: np.ndarray, tol_mm: float = 0.05) -> bool:
    """True when ``q`` (LPS mm) lies on the region's surface: a step of ``tol_mm``
    along some axis changes whether it is inside."""
    steps = np.vstack([np.eye(3), -np.eye(3)]) * tol_mm
    inside = lesion.contains_lps(q[None] + steps)
    return bool(inside.any() and not inside.all())


def score_against_truth(
    analysis: LesionAnalysis, landmarks: Mapping[str, Any], tolerance_mm: float = 2.0
) -> LesionScore:
    """Compare ``analysis`` with the phantom legend (``landmarks`` of
    :func:`viewer.phantom.generate`).

    Matching: a true entry is found when a marker lies within ``tolerance_mm``; a
    marker with no true entry that near is false. A branch end on the lesion surface
    is a crossing; it belongs to the named vessel (arteries, collaterals, veins,
    nutrient arteries) whose centreline is nearest to it, when within that vessel's
    radius + 1.5 mm. A branch is matched to a collateral when the median distance of
    its points to that collateral's centreline is within its radius + 1 mm and it is
    nearer to it than to any other vessel; its true diameter is twice the mean radius
    at the centreline points nearest to the branch's points."""
    from scipy.spatial import cKDTree

    lesion = analysis.lesion
    truth = np.asarray(landmarks.get("nutrient_entry_lps", ()), dtype=np.float64).reshape(-1, 3)
    truth = truth[lesion.contains_lps(truth)] if len(truth) else truth
    parents = [landmarks.get("nutrient_parents", {}).get(n) for n in landmarks.get("nutrients", ())]
    all_truth = np.asarray(landmarks.get("nutrient_entry_lps", ()), dtype=np.float64).reshape(-1, 3)
    found = np.array([e.lps_mm for e in analysis.entry_points], dtype=np.float64).reshape(-1, 3)
    errors: list[float] = []
    if len(truth) and len(found):
        d = np.linalg.norm(truth[:, None, :] - found[None, :, :], axis=2)
        errors = [float(v) for v in d.min(axis=1) if v <= tolerance_mm]
        false = int((d.min(axis=0) > tolerance_mm).sum())
    else:
        false = len(found)
    feeders = 0
    for e in analysis.entry_points:
        if len(all_truth):
            dd = np.linalg.norm(all_truth - np.asarray(e.lps_mm), axis=1)
            k = int(np.argmin(dd))
            if dd[k] <= tolerance_mm and k < len(parents) and parents[k] == e.nearest_artery:
                feeders += 1
    lines: Mapping[str, np.ndarray] = landmarks["centerlines_lps"]
    radii: Mapping[str, np.ndarray] = landmarks["vessel_radii_mm"]
    collaterals = set(landmarks.get("collaterals", ()))
    names = list(lines)
    pts = np.vstack([np.asarray(lines[n]) for n in names])
    rad = np.concatenate([np.asarray(radii[n]) for n in names])
    owner = np.concatenate([np.full(len(lines[n]), i) for i, n in enumerate(names)])
    tree = cKDTree(pts)
    crossings_true = sum(_surface_crossings(lesion, np.asarray(lines[n]), np.asarray(radii[n])) for n in collaterals)
    ends = [
        (q, b.diameter_mm / 2.0)
        for b in analysis.branches
        if len(b.points_lps) >= 2
        for q in (b.points_lps[0], b.points_lps[-1])
        if _on_surface(lesion, q)
    ]
    crossings_found = 0
    for n in _distinct_crossings([q for q, _ in ends], [r for _, r in ends]):
        dq, kq = tree.query(ends[n][0])
        if dq <= rad[kq] + 1.5 and names[int(owner[kq])] in collaterals:
            crossings_found += 1
    diam_err: list[float] = []
    for b in analysis.branches:
        if len(b.points_lps) < 2:
            continue
        dq, kq = tree.query(b.points_lps)
        who = owner[kq]
        best = int(np.bincount(who).argmax())
        if names[best] in collaterals and b.length_mm >= 3.0:
            mine = who == best
            if np.median(dq[mine]) <= np.median(rad[kq[mine]]) + 1.0 and mine.mean() >= 0.8:
                diam_err.append(float(b.diameter_mm - 2.0 * rad[kq[mine]].mean()))
    return LesionScore(
        entry_recall=len(errors) / len(truth) if len(truth) else 1.0,
        false_markers=false,
        entry_errors_mm=tuple(errors),
        n_true_entries=len(truth),
        collateral_crossings_true=crossings_true,
        collateral_crossings_found=crossings_found,
        diameter_errors_mm=tuple(diam_err),
        feeders_right=feeders,
    )


__all__ = [
    "Bounds6",
    "Branch",
    "EntryPoint",
    "Lesion",
    "LesionAnalysis",
    "LesionScore",
    "Vec3",
    "analyse_lesion",
    "distance_to_bone_mm",
    "distance_to_lesion_mm",
    "lesion_from_phantom",
    "score_against_truth",
    "validate_lesion",
    "warm_up",
    "write_lesion_tables",
]
