"""Triangle surfaces of binary masks (bone, vessels) in patient LPS mm, and STL/PLY export.

The mask is contoured in voxel-index space with ``vtkFlyingEdges3D`` (threaded through
vtkSMPTools, hence the STDThread backend below) at the 0.5 level of a 0/1 image, then
moved into LPS with the volume's ``ijk_to_lps`` through ``vtkTransformFilter``
— the one geometry truth of :class:`viewer.core.volume.Volume`, never the image's own
origin/spacing, so oblique and flipped scans come out where they are.

Only the bounding box of the mask (plus one empty voxel on every side) is handed to
VTK: the padding closes the surface where the mask touches the volume's edge (a
watertight mesh for 3D printing), and the crop keeps a 512x512x600 scan's copy small.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# The vtk wheel's SMP backend defaults to Sequential; STDThread made FlyingEdges 1.7x
# faster on 2 cores (DESIGN.md). Must be set before vtkmodules first loads vtkCommonCore;
# setdefault keeps a caller's explicit choice.
os.environ.setdefault("VTK_SMP_BACKEND_IN_USE", "STDThread")

import numpy as np  # noqa: E402
from vtkmodules.util.numpy_support import numpy_to_vtk  # noqa: E402
from vtkmodules.vtkCommonCore import vtkPoints  # noqa: E402,F401  (keeps vtkCommonCore loaded first)
from vtkmodules.vtkCommonDataModel import vtkImageData, vtkPolyData  # noqa: E402
from vtkmodules.vtkCommonMath import vtkMatrix4x4  # noqa: E402
from vtkmodules.vtkCommonTransforms import vtkTransform  # noqa: E402
from vtkmodules.vtkFiltersCore import (  # noqa: E402
    vtkFlyingEdges3D,
    vtkPolyDataNormals,
    vtkWindowedSincPolyDataFilter,
)
from vtkmodules.vtkFiltersGeneral import vtkTransformFilter  # noqa: E402
from vtkmodules.vtkIOGeometry import vtkSTLWriter  # noqa: E402
from vtkmodules.vtkIOPLY import vtkPLYWriter  # noqa: E402

from viewer.core.errors import ViewerError
from viewer.core.fileio import atomic_output  # noqa: E402

SURFACE_FORMATS = ("stl", "ply")


@dataclass(frozen=True)
class SurfaceStats:
    """What was written: triangle count and LPS bounds (mm) of the mesh."""

    path: Path | None
    n_triangles: int
    bounds_min_lps: tuple[float, float, float]
    bounds_max_lps: tuple[float, float, float]


def mask_to_surface(
    mask: np.ndarray, ijk_to_lps: np.ndarray, smooth_iterations: int = 0, pass_band: float = 0.1
) -> vtkPolyData:
    """Triangle mesh of the boundary of ``mask`` (``(nz, ny, nx)`` bool) in LPS mm.

    ``smooth_iterations`` > 0 applies ``vtkWindowedSincPolyDataFilter`` (which
    preserves volume, unlike Laplacian smoothing) to take the voxel staircase off a
    mesh meant for printing (``pass_band``: its low-pass cut-off, 0.001-0.1, lower is
    smoother); 0 keeps the raw iso-surface. Empty mask -> empty mesh.
    Normals point outwards in LPS (recomputed after the transform, because a
    reflecting ``ijk_to_lps`` — negative determinant — flips triangle winding).
    """
    m = np.asarray(mask)
    if m.ndim != 3:
        raise ViewerError(f"a surface needs a 3D mask, got shape {m.shape}")
    affine = np.asarray(ijk_to_lps, dtype=np.float64)
    if affine.shape != (4, 4):
        raise ViewerError("ijk_to_lps must be a 4x4 matrix")
    out = vtkPolyData()
    nz_idx = [np.flatnonzero(m.any(axis=tuple(a for a in range(3) if a != ax))) for ax in range(3)]
    if any(ix.size == 0 for ix in nz_idx):
        return out
    (k0, k1), (j0, j1), (i0, i1) = ((int(ix[0]), int(ix[-1])) for ix in nz_idx)
    sub = np.zeros((k1 - k0 + 3, j1 - j0 + 3, i1 - i0 + 3), dtype=np.uint8)
    sub[1:-1, 1:-1, 1:-1] = m[k0 : k1 + 1, j0 : j1 + 1, i0 : i1 + 1]

    img = vtkImageData()
    img.SetDimensions(sub.shape[2], sub.shape[1], sub.shape[0])
    img.SetSpacing(1.0, 1.0, 1.0)
    # Voxel index of the padded crop's first voxel in the full volume.
    img.SetOrigin(i0 - 1.0, j0 - 1.0, k0 - 1.0)
    arr = numpy_to_vtk(sub.ravel(), deep=True)
    arr.SetName("mask")
    img.GetPointData().SetScalars(arr)

    fe = vtkFlyingEdges3D()
    fe.SetInputData(img)
    fe.SetValue(0, 0.5)
    fe.ComputeNormalsOff()  # recomputed in LPS below
    fe.ComputeGradientsOff()
    fe.ComputeScalarsOff()
    fe.Update()
    poly = fe.GetOutput()

    if smooth_iterations > 0 and poly.GetNumberOfPoints() > 0:
        sm = vtkWindowedSincPolyDataFilter()
        sm.SetInputData(poly)
        sm.SetNumberOfIterations(int(smooth_iterations))
        # Lower pass band = stronger smoothing (VTK's windowed-sinc filter).
        sm.SetPassBand(float(pass_band))
        sm.NonManifoldSmoothingOn()
        sm.NormalizeCoordinatesOn()
        sm.BoundarySmoothingOff()
        sm.FeatureEdgeSmoothingOff()
        sm.Update()
        poly = sm.GetOutput()

    mat = vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            mat.SetElement(r, c, float(affine[r, c]))
    tr = vtkTransform()
    tr.SetMatrix(mat)
    tf = vtkTransformFilter()
    tf.SetInputData(poly)
    tf.SetTransform(tr)
    tf.Update()

    nr = vtkPolyDataNormals()
    nr.SetInputConnection(tf.GetOutputPort())
    nr.ConsistencyOn()
    nr.AutoOrientNormalsOn()  # closed surfaces: normals point out, whatever the winding
    nr.SplittingOff()
    nr.Update()
    out.DeepCopy(nr.GetOutput())
    return out


def surface_stats(poly: vtkPolyData, path: Path | None = None) -> SurfaceStats:
    n = int(poly.GetNumberOfPolys())
    if poly.GetNumberOfPoints() == 0:
        nan = (float("nan"),) * 3
        return SurfaceStats(path, 0, nan, nan)
    b = poly.GetBounds()
    return SurfaceStats(path, n, (b[0], b[2], b[4]), (b[1], b[3], b[5]))


def write_surface(poly: vtkPolyData, path: str | Path) -> SurfaceStats:
    """Write ``poly`` as binary STL or binary PLY (by the file's suffix), atomically.

    Coordinates are LPS mm as produced by :func:`mask_to_surface` (STL has no unit
    field; mm is the 3D-printing convention).
    """
    p = Path(path)
    fmt = p.suffix.lower().lstrip(".")
    if fmt not in SURFACE_FORMATS:
        raise ViewerError(f"unknown surface format {p.suffix!r} (use .stl or .ply)", p)
    if poly.GetNumberOfPolys() == 0:
        raise ViewerError(f"nothing to write to {p.name}: the surface is empty", p)
    with atomic_output(p, "surface file", make_parents=True, suffix=p.suffix) as tmp:
        w: vtkSTLWriter | vtkPLYWriter
        if fmt == "stl":
            w = vtkSTLWriter()
            w.SetFileTypeToBinary()
            w.SetHeader("vessel-viewer surface, LPS mm")
        else:
            w = vtkPLYWriter()
            w.SetFileTypeToBinary()
        w.SetFileName(str(tmp))
        w.SetInputData(poly)
        # vtkWriter::Write returns 1 on success, 0 on failure (it does not raise).
        if w.Write() != 1 or os.path.getsize(tmp) == 0:
            raise ViewerError(f"VTK could not write {p}", p)
    return surface_stats(poly, p)


def export_mask_surface(
    mask: np.ndarray, ijk_to_lps: np.ndarray, path: str | Path, smooth_iterations: int = 0
) -> SurfaceStats:
    """:func:`mask_to_surface` then :func:`write_surface`."""
    return write_surface(mask_to_surface(mask, ijk_to_lps, smooth_iterations), path)


__all__ = [
    "SURFACE_FORMATS",
    "SurfaceStats",
    "export_mask_surface",
    "mask_to_surface",
    "surface_stats",
    "write_surface",
]
