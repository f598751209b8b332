"""The crop box and the clip plane, applied to the volume and to meshes.

A part of :class:`~viewer.render.scene.Scene` split out for issue 9: pure functions of
the cut (an LPS crop box ``(xmin, xmax, ymin, ymax, zmin, zmax)`` and/or a clip plane
``(origin, unit normal)``, the half the normal points into kept) and VTK objects, so
each is testable without a window.

* the volume: world-space clipping planes on the ray-cast mapper (six for the box, one
  for the plane; rather than VTK's cropping region, which is in voxel coordinates, so
  the box stays aligned with the patient axes on oblique scans);
* meshes (calcified shells, overlays, the vessel mesh, lesion overlays): cut by a
  ``vtkClipPolyData`` with one implicit function, box AND half-space. Not by mapper
  clipping planes: OpenGL polydata mappers take at most 6 planes and the crop box alone
  is 6, so VTK dropped the clip plane ("OpenGL has a limit of 6 clipping planes", every
  frame) and the shells showed in the half that was cut away;
* points (markers, labels): which lie inside the box and on the kept side.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from viewer.render._vtk import vtkPlane, vtkPlaneCollection

Bounds6 = tuple[float, float, float, float, float, float]
ClipPlane = tuple[np.ndarray, np.ndarray]


def volume_planes(crop: Bounds6 | Sequence[float] | None, clip: ClipPlane | None) -> vtkPlaneCollection:
    """The world-space planes that cut the volume (normals point into the kept part)."""
    planes = vtkPlaneCollection()
    if crop is not None:
        b = tuple(float(x) for x in crop)
        for axis in range(3):
            for side, value in ((1.0, b[2 * axis]), (-1.0, b[2 * axis + 1])):
                o = [0.0, 0.0, 0.0]
                nrm = [0.0, 0.0, 0.0]
                o[axis] = value
                nrm[axis] = side
                pl = vtkPlane()
                pl.SetOrigin(*o)
                pl.SetNormal(*nrm)
                planes.AddItem(pl)
    if clip is not None:
        pl = vtkPlane()
        pl.SetOrigin(*(float(x) for x in clip[0]))
        pl.SetNormal(*(float(x) for x in clip[1]))
        planes.AddItem(pl)
    return planes


def feed_clipped(mapper: object, mesh: object, crop: Bounds6 | None, clip: ClipPlane | None) -> object:
    """Give ``mapper`` the ``mesh`` cut to ``crop`` and ``clip``, or the mesh itself when
    neither is set (or nothing when ``mesh`` is None). Returns the clip filter, which
    the caller keeps alive, or None."""
    from vtkmodules.vtkCommonDataModel import vtkBox, vtkImplicitBoolean
    from vtkmodules.vtkFiltersCore import vtkClipPolyData

    mapper.RemoveAllClippingPlanes()  # type: ignore[attr-defined]
    if mesh is None:
        mapper.RemoveAllInputs()  # type: ignore[attr-defined]
        return None
    if crop is None and clip is None:
        mapper.SetInputData(mesh)  # type: ignore[attr-defined]
        return None
    # Implicit functions are negative inside: keep where max(box, -halfspace) < 0,
    # i.e. inside the crop box and on the side the clip normal points into.
    keep = vtkImplicitBoolean()
    keep.SetOperationTypeToIntersection()  # the maximum of the functions
    if crop is not None:
        box = vtkBox()
        box.SetBounds(*(float(x) for x in crop))
        keep.AddFunction(box)
    if clip is not None:
        half = vtkPlane()
        half.SetOrigin(*(float(x) for x in clip[0]))
        half.SetNormal(*(-float(x) for x in clip[1]))  # negative on the kept side
        keep.AddFunction(half)
    cutter = vtkClipPolyData()
    cutter.SetInputData(mesh)
    cutter.SetClipFunction(keep)
    cutter.InsideOutOn()
    mapper.SetInputConnection(cutter.GetOutputPort())  # type: ignore[attr-defined]
    return cutter


def kept_by_cut(points_lps: np.ndarray, crop: Bounds6 | None, clip: ClipPlane | None) -> np.ndarray:
    """``(N, 3)`` LPS points -> bool: inside ``crop`` and on ``clip``'s kept side."""
    p = np.asarray(points_lps, dtype=np.float64).reshape(-1, 3)
    keep = np.ones(len(p), dtype=bool)
    if crop is not None:
        b = np.asarray(crop, dtype=np.float64)
        keep &= np.all((p >= b[0::2]) & (p <= b[1::2]), axis=1)
    if clip is not None:
        keep &= (p - clip[0]) @ clip[1] >= 0.0
    return keep


__all__ = ["Bounds6", "ClipPlane", "feed_clipped", "kept_by_cut", "volume_planes"]
