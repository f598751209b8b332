"""2D slices through a volume along the patient axes, for the GUI's slice views.

Pure numpy (no VTK needed): nearest-neighbour resampling of the volume onto a grid
aligned with the patient (LPS) axes, in the radiological display convention:

* **axial**: seen from the feet -- image right = patient left (+x), image down =
  posterior (+y);
* **coronal**: seen from the front -- image right = patient left (+x), image down =
  inferior (-z);
* **sagittal**: seen from the patient's left -- image right = posterior (+y), image
  down = inferior (-z) (anterior on the left, as radiology workstations show it).

For an axis-aligned scan (direction cosines a signed permutation, the usual case) the
grid falls exactly on the voxel centres, so the slice reproduces the voxels; oblique
scans are resampled by nearest neighbour at the finest voxel spacing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from viewer.core.errors import ViewerError
from viewer.core.volume import Volume

Axis = Literal["axial", "coronal", "sagittal"]

#: axis -> (LPS axis index and sign of image columns, of image rows, slice normal axis)
_LAYOUT: dict[str, tuple[tuple[int, float], tuple[int, float], int]] = {
    "axial": ((0, 1.0), (1, 1.0), 2),
    "coronal": ((0, 1.0), (2, -1.0), 1),
    "sagittal": ((1, 1.0), (2, -1.0), 0),
}

#: HU outside the scanned volume.
OUTSIDE_HU = -1024


@dataclass(frozen=True, eq=False)
class SliceImage:
    """A 2D slice ready for display: ``hu[row, col]``, row 0 at the top.

    ``origin_lps`` is the LPS centre of pixel (0, 0); ``col_dir_lps`` / ``row_dir_lps``
    the unit LPS directions of increasing column / row; ``pixel_spacing_mm`` is
    ``(row_mm, col_mm)``.
    """

    hu: np.ndarray
    axis: str
    position_lps: tuple[float, float, float]
    origin_lps: np.ndarray
    col_dir_lps: np.ndarray
    row_dir_lps: np.ndarray
    pixel_spacing_mm: tuple[float, float]

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.hu.shape[0]), int(self.hu.shape[1])

    def lps_of_pixel(self, row: float | np.ndarray, col: float | np.ndarray) -> np.ndarray:
        """LPS mm of pixel centre(s) ``(row, col)`` -> ``(..., 3)``."""
        r = np.asarray(row, dtype=np.float64)[..., None]
        c = np.asarray(col, dtype=np.float64)[..., None]
        lps: np.ndarray = (
            self.origin_lps
            + r * self.pixel_spacing_mm[0] * self.row_dir_lps
            + c * self.pixel_spacing_mm[1] * self.col_dir_lps
        )
        return lps

    def pixel_of_lps(self, lps: np.ndarray | tuple[float, float, float]) -> np.ndarray:
        """Continuous ``(row, col)`` of LPS point(s) projected onto the slice plane."""
        d = np.asarray(lps, dtype=np.float64) - self.origin_lps
        row = d @ self.row_dir_lps / self.pixel_spacing_mm[0]
        col = d @ self.col_dir_lps / self.pixel_spacing_mm[1]
        return np.stack([row, col], axis=-1)


def _axis_aligned(volume: Volume) -> np.ndarray | None:
    """For each LPS axis, the voxel axis (0=i, 1=j, 2=k) along it, if the direction
    cosines are a signed permutation; else None."""
    d = volume.direction
    a = np.abs(d)
    if not np.allclose(a.max(axis=0), 1.0, atol=1e-6):
        return None
    perm = a.argmax(axis=0)  # perm[voxel_axis] = lps_axis
    if sorted(perm.tolist()) != [0, 1, 2]:
        return None
    inv = np.empty(3, dtype=int)
    inv[perm] = np.arange(3)
    return inv


def slice_grid(volume: Volume, axis: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sample positions along each LPS axis for ``axis`` slices.

    Returns (positions along x, along y, along z) in mm -- voxel-centre aligned for
    axis-aligned scans -- and the per-axis step (mm).
    """
    lo, hi = volume.bounds_lps()
    aligned = _axis_aligned(volume)
    steps = np.empty(3)
    coords = []
    for lps_axis in range(3):
        if aligned is not None:
            step = float(volume.spacing_mm[aligned[lps_axis]])
        else:
            step = float(min(volume.spacing_mm))
        n = int(np.floor((hi[lps_axis] - lo[lps_axis]) / step + 1e-6)) + 1
        coords.append(lo[lps_axis] + step * np.arange(n))
        steps[lps_axis] = step
    return coords[0], coords[1], coords[2], steps


def slice_positions_mm(volume: Volume, axis: str) -> np.ndarray:
    """The LPS coordinate (mm, along the slice normal) of every slice ``axis`` can show,
    e.g. z of each axial slice: for a slider."""
    if axis not in _LAYOUT:
        raise ViewerError(f"unknown slice axis {axis!r}; choose axial, coronal or sagittal")
    grid = slice_grid(volume, axis)
    return grid[_LAYOUT[axis][2]]


def slice_image(volume: Volume, axis: str, position_lps: tuple[float, float, float] | np.ndarray) -> SliceImage:
    """The ``axis`` slice through ``position_lps`` (only its normal coordinate matters),
    resampled by nearest neighbour onto the patient axes. Pixels outside the volume
    read ``OUTSIDE_HU``."""
    if axis not in _LAYOUT:
        raise ViewerError(f"unknown slice axis {axis!r}; choose axial, coronal or sagittal")
    p = np.asarray(position_lps, dtype=np.float64)
    if p.shape != (3,) or not np.all(np.isfinite(p)):
        raise ViewerError(f"slice position must be an LPS point (3 finite numbers), got {position_lps!r}")
    (c_ax, c_sign), (r_ax, r_sign), n_ax = _LAYOUT[axis]
    grid = slice_grid(volume, axis)
    steps = grid[3]
    cols = grid[c_ax] if c_sign > 0 else grid[c_ax][::-1]
    rows = grid[r_ax] if r_sign > 0 else grid[r_ax][::-1]
    # Snap the normal coordinate to the nearest grid plane (a voxel centre plane).
    normal_coords = grid[n_ax]
    n_val = float(normal_coords[np.argmin(np.abs(normal_coords - p[n_ax]))]) if len(normal_coords) else p[n_ax]

    pts = np.empty((rows.size, cols.size, 3))
    pts[..., c_ax] = cols[None, :]
    pts[..., r_ax] = rows[:, None]
    pts[..., n_ax] = n_val
    ijk = np.rint(volume.ijk_of_lps(pts)).astype(np.int64)
    nx, ny, nz = volume.dims_xyz
    inside = (
        (ijk[..., 0] >= 0)
        & (ijk[..., 0] < nx)
        & (ijk[..., 1] >= 0)
        & (ijk[..., 1] < ny)
        & (ijk[..., 2] >= 0)
        & (ijk[..., 2] < nz)
    )
    out = np.full((rows.size, cols.size), OUTSIDE_HU, dtype=np.int16)
    ii = ijk[inside]
    out[inside] = volume.hu[ii[:, 2], ii[:, 1], ii[:, 0]]

    col_dir = np.zeros(3)
    col_dir[c_ax] = c_sign
    row_dir = np.zeros(3)
    row_dir[r_ax] = r_sign
    origin = np.zeros(3)
    origin[c_ax] = cols[0]
    origin[r_ax] = rows[0]
    origin[n_ax] = n_val
    pos = p.copy()
    pos[n_ax] = n_val
    return SliceImage(
        hu=out,
        axis=axis,
        position_lps=(float(pos[0]), float(pos[1]), float(pos[2])),
        origin_lps=origin,
        col_dir_lps=col_dir,
        row_dir_lps=row_dir,
        pixel_spacing_mm=(float(steps[r_ax]), float(steps[c_ax])),
    )


def window_level_to_rgb(hu2d: np.ndarray, window: float, level: float) -> np.ndarray:
    """Grey uint8 ``(H, W, 3)`` from HU with a display window (width) and level
    (centre), both in HU: ``level - window/2`` -> black, ``level + window/2`` -> white."""
    w = float(window)
    if not (np.isfinite(w) and w > 0):
        raise ViewerError(f"window width must be a positive number of HU, got {window}")
    lo = float(level) - w / 2.0
    g = np.clip((np.asarray(hu2d, dtype=np.float32) - lo) * (255.0 / w), 0.0, 255.0)
    g8 = (g + 0.5).astype(np.uint8)
    return np.repeat(g8[..., None], 3, axis=-1)


__all__ = ["OUTSIDE_HU", "SliceImage", "slice_grid", "slice_image", "slice_positions_mm", "window_level_to_rgb"]
