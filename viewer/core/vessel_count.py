"""How many vessels run near a point: the surgeon's question before cutting.

Within a sphere around a point (the crosshair, e.g. on the bone defect or the mass),
count the contrast-filled vessel segments and their lumen volume. Vessels are the
vessel window outside the bone and calcification masks, as in separated mode, so the
bone's partial-volume rim and a calcified shell do not count as vessels.

Two counts, because branches that join inside the sphere merge in 3D:

* *segments*: 26-connected pieces of vessel inside the sphere (an artery that passes
  through counts once; a collateral tree joined to its parent artery inside the sphere
  counts with it);
* *cross-sections per slice*: in each acquired slice through the sphere, the separate
  vessel profiles (8-connected, at least :data:`MIN_PROFILE_MM2`), reported as the
  maximum and median over the slices -- the number of vessels a cut at that level
  would open, which is what a surgeon weighs before an excision.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from viewer.core.errors import ViewerError
from viewer.core.extraction import DEFAULT_MIN_VESSEL_COMPONENT_MM3, ClassMasks
from viewer.core.volume import Volume

#: Smallest vessel profile counted in a slice (mm^2): about a 0.8 mm vessel cut
#: across; smaller specks are noise at the window's edge.
MIN_PROFILE_MM2 = 0.5


@dataclass(frozen=True)
class VesselCount:
    """Vessels inside a sphere. Units: mm, mm^3; frame: LPS."""

    center_lps: tuple[float, float, float]
    radius_mm: float
    vessel_window_hu: tuple[float, float]
    n_segments: int
    volume_mm3: float
    #: Lumen volume of each segment, largest first (mm^3).
    segment_volumes_mm3: tuple[float, ...]
    #: Vessel profiles in each slice through the sphere (slice order of the scan).
    profiles_per_slice: tuple[int, ...] = ()

    @property
    def max_profiles(self) -> int:
        return max(self.profiles_per_slice, default=0)

    @property
    def median_profiles(self) -> float:
        return float(np.median(self.profiles_per_slice)) if self.profiles_per_slice else 0.0

    def summary(self) -> str:
        x, y, z = self.center_lps
        lo, hi = self.vessel_window_hu
        return (
            f"Within {self.radius_mm:g} mm of L {x:.1f}, P {y:.1f}, S {z:.1f} mm: "
            f"up to {self.max_profiles} vessels cut by one axial slice (median {self.median_profiles:g}), "
            f"{self.n_segments} connected vessel segment(s), "
            f"{self.volume_mm3 / 1000.0:.2f} cm\u00b3 of contrast lumen "
            f"(vessel window {lo:g}-{hi:g} HU, outside bone and calcification)"
        )


def count_vessels_near(
    volume: Volume,
    center_lps: tuple[float, float, float],
    radius_mm: float,
    vessel_window_hu: tuple[float, float],
    masks: ClassMasks | None = None,
    min_segment_mm3: float = DEFAULT_MIN_VESSEL_COMPONENT_MM3,
) -> VesselCount:
    """Count vessel segments within ``radius_mm`` of ``center_lps``.

    Works on the sphere's bounding box only (milliseconds, whatever the scan size).
    ``masks`` (bone, calcified shells) are excluded when given; without them every
    voxel in the window counts, bone rims included (the one-class picture).
    """
    if not radius_mm > 0:
        raise ViewerError(f"the radius must be > 0 mm, got {radius_mm}")
    lo, hi = (float(v) for v in vessel_window_hu)
    if not lo < hi:
        raise ViewerError(f"vessel window must be low < high HU, got {vessel_window_hu}")
    c = np.asarray(center_lps, dtype=np.float64)
    # Bounding box of the sphere in voxel indices (the 8 corners of its LPS cube).
    corners = c + radius_mm * np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
    ijk = volume.ijk_of_lps(corners)
    nz, ny, nx = volume.shape
    i0, j0, k0 = np.maximum(np.floor(ijk.min(axis=0)).astype(int), 0)
    i1, j1, k1 = np.minimum(np.ceil(ijk.max(axis=0)).astype(int), [nx - 1, ny - 1, nz - 1])
    empty = VesselCount(tuple(float(v) for v in c), float(radius_mm), (lo, hi), 0, 0.0, ())  # type: ignore[arg-type]
    if i0 > i1 or j0 > j1 or k0 > k1:
        return empty  # the sphere lies outside the scan
    box = (slice(k0, k1 + 1), slice(j0, j1 + 1), slice(i0, i1 + 1))
    sub = volume.hu[box]
    vessel = (sub >= lo) & (sub <= hi)
    if masks is not None and masks.vessel is not None:
        # The real-CT separation's own vessel class (uncertain voxels: vessel touching
        # bone, counted), within the window asked for.
        cls = np.asarray(masks.vessel)[box]
        if masks.uncertain is not None:
            cls = cls | np.asarray(masks.uncertain)[box]
        vessel &= cls
    elif masks is not None:
        vessel &= ~np.asarray(masks.bone[box], dtype=bool)  # (a packed mask unpacks the box only)
        if masks.calcification is not None:
            vessel &= ~np.asarray(masks.calcification)[box]
    # Voxel centres inside the sphere (distances in mm through the affine).
    kk, jj, ii = np.meshgrid(np.arange(k0, k1 + 1), np.arange(j0, j1 + 1), np.arange(i0, i1 + 1), indexing="ij")
    pts = volume.lps_of_ijk(np.stack([ii, jj, kk], axis=-1).astype(np.float64))
    inside = np.sum((pts - c) ** 2, axis=-1) <= radius_mm**2
    vessel &= inside
    labels, n = ndi.label(vessel, structure=np.ones((3, 3, 3), bool))
    if n == 0:
        return empty
    # Profiles per slice: 2D components in each slice that cuts the sphere.
    pixel_mm2 = float(volume.spacing_mm[0] * volume.spacing_mm[1])
    profiles: list[int] = []
    for k in range(vessel.shape[0]):
        if not inside[k].any():
            continue
        lab2, m2 = ndi.label(vessel[k], structure=np.ones((3, 3), bool))
        if m2:
            areas = np.bincount(lab2.ravel())[1:] * pixel_mm2
            profiles.append(int(np.count_nonzero(areas >= MIN_PROFILE_MM2)))
        else:
            profiles.append(0)
    voxel_mm3 = float(np.prod(volume.spacing_mm))
    sizes = np.bincount(labels.ravel())[1:] * voxel_mm3
    keep = np.sort(sizes[sizes >= min_segment_mm3])[::-1]
    return VesselCount(
        tuple(float(v) for v in c),  # type: ignore[arg-type]
        float(radius_mm),
        (lo, hi),
        int(keep.size),
        float(keep.sum()),
        tuple(float(v) for v in keep),
        tuple(profiles),
    )


__all__ = ["MIN_PROFILE_MM2", "VesselCount", "count_vessels_near"]
