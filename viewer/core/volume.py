"""The one geometry truth: a CT volume in Hounsfield units placed in patient space.

Frames and units
----------------
* ``hu`` is int16 Hounsfield units, shape ``(nz, ny, nx)``: index ``[k, j, i]`` is
  column ``i``, row ``j`` of slice ``k``.
* ``spacing_mm`` is ``(x, y, z)`` = (column step, row step, slice step) in mm.
* ``ijk_to_lps`` is a 4x4 affine taking a voxel index ``(i, j, k, 1)`` to a point in
  DICOM patient coordinates LPS (x to the patient's Left, y to Posterior, z to
  Superior), in mm. Its upper 3x3 is ``direction @ diag(spacing_mm)``. For a DICOM
  series its columns are the row direction cosine, the column direction cosine (both
  from (0020,0037) ImageOrientationPatient) and the slice step vector; its translation
  is (0020,0032) ImagePositionPatient of slice ``k = 0``.

Everything else (VTK placement, slice positions, scale bars) derives from these.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from viewer.core.errors import ViewerError

#: The HU range that a CT stored as int16 can hold after rescale. Values outside
#: this are clipped at load with a warning.
HU_MIN = -32768
HU_MAX = 32767


@dataclass(frozen=True, eq=False)
class Volume:
    """A CT volume in HU with its placement in patient (LPS) space.

    Frozen: edits make new objects (``dataclasses.replace``). ``eq=False`` because
    comparing voxel arrays element-wise is never what ``==`` should mean here.

    Attributes:
        hu: int16 array ``(nz, ny, nx)`` of Hounsfield units.
        spacing_mm: voxel size ``(x, y, z)`` in mm.
        ijk_to_lps: 4x4 float64 affine, voxel index ``(i, j, k)`` -> LPS mm.
        description: short human label (series description or file name).
        source: where it came from (folder, file or ``"phantom"``), for display.
        warnings: problems found while loading that did not stop it (gaps, skipped
            files, resampling), each naming the file or slice concerned.
        metadata: non-identifying facts (modality, manufacturer, kVp, series UID...).
        identity: patient-identifying fields (name, ID, birth date) kept apart so
            nothing shows them unless the user asks.
    """

    hu: np.ndarray
    spacing_mm: tuple[float, float, float]
    ijk_to_lps: np.ndarray
    description: str = ""
    source: str = ""
    warnings: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    identity: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        hu = np.asarray(self.hu)
        if hu.ndim != 3:
            raise ViewerError(f"a volume needs 3 dimensions, got shape {hu.shape}")
        if hu.dtype != np.int16:
            raise ViewerError(f"Volume.hu must be int16 Hounsfield units, got {hu.dtype}")
        if min(hu.shape) < 1:
            raise ViewerError(f"empty volume of shape {hu.shape}")
        spacing = tuple(float(s) for s in self.spacing_mm)
        if len(spacing) != 3 or not all(np.isfinite(s) and s > 0 for s in spacing):
            raise ViewerError(f"voxel spacing must be three positive numbers, got {self.spacing_mm}")
        m = np.asarray(self.ijk_to_lps, dtype=np.float64)
        if m.shape != (4, 4) or not np.all(np.isfinite(m)):
            raise ViewerError("ijk_to_lps must be a finite 4x4 matrix")
        if abs(np.linalg.det(m[:3, :3])) < 1e-9:
            raise ViewerError("ijk_to_lps is singular (degenerate orientation)")
        m = m.copy()
        m.setflags(write=False)
        object.__setattr__(self, "spacing_mm", spacing)
        object.__setattr__(self, "ijk_to_lps", m)
        object.__setattr__(self, "warnings", tuple(self.warnings))

    # ----- derived geometry -------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int]:
        """``(nz, ny, nx)``."""
        return tuple(int(s) for s in self.hu.shape)  # type: ignore[return-value]

    @property
    def dims_xyz(self) -> tuple[int, int, int]:
        """``(nx, ny, nz)``: number of columns, rows, slices."""
        nz, ny, nx = self.shape
        return nx, ny, nz

    @property
    def origin_lps(self) -> np.ndarray:
        """LPS position (mm) of voxel (0, 0, 0)'s centre."""
        origin: np.ndarray = self.ijk_to_lps[:3, 3].copy()
        return origin

    @property
    def direction(self) -> np.ndarray:
        """3x3 matrix whose columns are the unit i, j, k axes in LPS."""
        axes: np.ndarray = self.ijk_to_lps[:3, :3] / np.asarray(self.spacing_mm)[None, :]
        return axes

    @property
    def nbytes(self) -> int:
        return int(self.hu.nbytes)

    def lps_of_ijk(self, ijk: np.ndarray | tuple[float, float, float]) -> np.ndarray:
        """LPS mm of voxel index/indices ``(..., 3)`` given as ``(i, j, k)``."""
        p = np.asarray(ijk, dtype=np.float64)
        lps: np.ndarray = p @ self.ijk_to_lps[:3, :3].T + self.ijk_to_lps[:3, 3]
        return lps

    def ijk_of_lps(self, lps: np.ndarray | tuple[float, float, float]) -> np.ndarray:
        """Continuous voxel index ``(i, j, k)`` of LPS point(s) ``(..., 3)`` in mm."""
        p = np.asarray(lps, dtype=np.float64) - self.ijk_to_lps[:3, 3]
        ijk: np.ndarray = p @ np.linalg.inv(self.ijk_to_lps[:3, :3]).T
        return ijk

    def hu_at_lps(self, lps: tuple[float, float, float]) -> int | None:
        """HU of the voxel nearest to an LPS point, or None outside the volume."""
        i, j, k = np.rint(self.ijk_of_lps(lps)).astype(int)
        nz, ny, nx = self.shape
        if 0 <= i < nx and 0 <= j < ny and 0 <= k < nz:
            return int(self.hu[k, j, i])
        return None

    def corners_lps(self) -> np.ndarray:
        """The 8 corner voxel centres in LPS, shape (8, 3)."""
        nx, ny, nz = self.dims_xyz
        c = np.array(
            [[i, j, k] for k in (0, nz - 1) for j in (0, ny - 1) for i in (0, nx - 1)],
            dtype=np.float64,
        )
        return self.lps_of_ijk(c)

    def bounds_lps(self) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned (min, max) LPS corners of the voxel-centre box."""
        c = self.corners_lps()
        return c.min(axis=0), c.max(axis=0)

    def hu_range(self) -> tuple[int, int]:
        return int(self.hu.min()), int(self.hu.max())


def axis_aligned_affine(
    spacing_mm: tuple[float, float, float],
    origin_lps: tuple[float, float, float] = (0.0, 0.0, 0.0),
    direction: np.ndarray | None = None,
) -> np.ndarray:
    """Build ``ijk_to_lps`` from spacing, origin and an optional 3x3 direction
    (columns = unit i, j, k axes in LPS; identity means axial head-first supine)."""
    d = np.eye(3) if direction is None else np.asarray(direction, dtype=np.float64)
    m = np.eye(4)
    m[:3, :3] = d * np.asarray(spacing_mm, dtype=np.float64)[None, :]
    m[:3, 3] = origin_lps
    return m
