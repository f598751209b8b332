"""The crop box and clip plane (viewer.render.cut), split out of the scene (issue 9):
volume planes, mesh cutting and point tests, checked without a render window."""

from __future__ import annotations

import numpy as np
from vtkmodules.vtkFiltersSources import vtkSphereSource

from viewer.render._vtk import vtkPolyDataMapper
from viewer.render.cut import feed_clipped, kept_by_cut, volume_planes

BOX = (-5.0, 5.0, -20.0, 20.0, -20.0, 3.0)
CLIP = (np.array([2.0, 0.0, 0.0]), np.array([-1.0, 0.0, 0.0]))  # keeps x <= 2


def _sphere():  # noqa: ANN202 - vtkPolyData
    src = vtkSphereSource()
    src.SetRadius(10.0)
    src.SetThetaResolution(48)
    src.SetPhiResolution(48)
    src.Update()
    return src.GetOutput()


def test_volume_planes_point_into_the_kept_part() -> None:
    assert volume_planes(None, None).GetNumberOfItems() == 0
    planes = volume_planes(BOX, CLIP)
    assert planes.GetNumberOfItems() == 7
    inside = np.array([0.0, 0.0, 0.0])
    for i in range(7):
        pl = planes.GetItem(i)
        assert pl.EvaluateFunction(*inside) > 0.0  # in front of every plane
    outside = np.array([4.0, 0.0, 0.0])  # in the box, cut away by the plane
    assert planes.GetItem(6).EvaluateFunction(*outside) < 0.0


def test_mesh_cut_to_box_and_half_space() -> None:
    mapper = vtkPolyDataMapper()
    mesh = _sphere()
    assert feed_clipped(mapper, mesh, None, None) is None
    assert mapper.GetInput() is mesh
    cutter = feed_clipped(mapper, mesh, BOX, CLIP)
    assert cutter is not None
    cutter.Update()  # type: ignore[attr-defined]
    b = cutter.GetOutput().GetBounds()  # type: ignore[attr-defined]
    assert cutter.GetOutput().GetNumberOfPoints() > 0  # type: ignore[attr-defined]
    assert b[0] >= -5.0 - 1e-6 and b[1] <= 2.0 + 1e-6  # box x-min, plane at x = 2
    assert b[5] <= 3.0 + 1e-6  # box z-max
    assert feed_clipped(mapper, None, BOX, CLIP) is None
    assert mapper.GetNumberOfInputPorts() == 1 and mapper.GetInputConnection(0, 0) is None


def test_points_kept_by_the_cut() -> None:
    pts = np.array([[0.0, 0.0, 0.0], [4.0, 0.0, 0.0], [0.0, 0.0, 10.0], [-6.0, 0.0, 0.0]])
    assert kept_by_cut(pts, None, None).tolist() == [True, True, True, True]
    assert kept_by_cut(pts, BOX, None).tolist() == [True, True, False, False]
    assert kept_by_cut(pts, BOX, CLIP).tolist() == [True, False, False, False]
