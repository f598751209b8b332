"""Picking a point on the rendered 3D picture: display pixel -> patient LPS mm.

The scene places the volume in world space with its IJK->LPS matrix, so a world point
*is* an LPS point in mm. ``vtkCellPicker`` casts a ray through the pixel and stops at
the first prop it hits: for a ``vtkVolume`` that is where the accumulated scalar
opacity first passes ``opacity_isovalue`` (VTK's "volume opacity isovalue"), i.e. the
visible surface of bone or vessel; for a mesh (the calcification) its first cell.
"""

from __future__ import annotations

from vtkmodules.vtkRenderingCore import vtkCellPicker, vtkRenderer

#: Opacity at which the ray through a volume counts as having hit its surface: low
#: enough that a thin vessel is hit, high enough that faint soft tissue is not.
DEFAULT_OPACITY_ISOVALUE = 0.3


def pick_lps(
    renderer: vtkRenderer,
    x_px: float,
    y_px: float,
    opacity_isovalue: float = DEFAULT_OPACITY_ISOVALUE,
) -> tuple[float, float, float] | None:
    """The LPS point (mm) under display pixel ``(x_px, y_px)`` (VTK display
    coordinates: origin at the bottom left), or None when the ray hits nothing."""
    picker = vtkCellPicker()
    picker.SetTolerance(0.0005)
    picker.SetVolumeOpacityIsovalue(float(opacity_isovalue))
    picker.PickClippingPlanesOff()
    if not picker.Pick(float(x_px), float(y_px), 0.0, renderer):
        return None
    if picker.GetProp3D() is None:
        return None
    x, y, z = picker.GetPickPosition()
    return (float(x), float(y), float(z))


__all__ = ["DEFAULT_OPACITY_ISOVALUE", "pick_lps"]
