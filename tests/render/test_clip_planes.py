"""Crop box + clip plane on the calcification mesh (issue 11, from the GUI soak).

OpenGL polydata mappers take at most 6 clipping planes; the crop box is 6, so a clip
plane given to the mesh's mapper as a 7th was dropped ("OpenGL has a limit of 6
clipping planes" on every frame) and the gold shells showed in the half cut away.
The mesh is now cut by a filter: no point of what the mapper draws lies outside the
box or on the cut-away side, and VTK prints nothing.
"""

from __future__ import annotations

import numpy as np
import pytest
from vtkmodules.util.numpy_support import vtk_to_numpy
from vtkmodules.vtkCommonCore import vtkOutputWindow, vtkStringOutputWindow

from viewer.core.presets import list_presets
from viewer.render.offscreen import render_to_array
from viewer.render.scene import Scene


@pytest.fixture(scope="module")
def phantom():  # type: ignore[no-untyped-def]
    from viewer.phantom import generate

    return generate("small")


@pytest.fixture()
def vtk_log():  # type: ignore[no-untyped-def]
    """Everything VTK prints (warnings, errors) during the test, as one string."""
    old = vtkOutputWindow.GetInstance()
    win = vtkStringOutputWindow()
    vtkOutputWindow.SetInstance(win)
    yield win
    vtkOutputWindow.SetInstance(old)


def _drawn_points(scene: Scene) -> np.ndarray:
    mapper = scene._calc_mapper
    mapper.Update()
    poly = mapper.GetInput()
    assert poly is not None
    pts = poly.GetPoints()
    return np.zeros((0, 3)) if pts is None else vtk_to_numpy(pts.GetData()).astype(float)


def test_crop_box_and_clip_plane_both_cut_the_calcification_mesh(phantom, vtk_log) -> None:  # type: ignore[no-untyped-def]
    tf = list_presets()["Bone + vessels"]
    assert tf.separated and tf.calcification.visible
    s = Scene(offscreen=True)
    try:
        s.set_volume(phantom.volume)
        s.set_view("anterior")
        s.set_transfer_function(tf)
        full = _drawn_points(s)
        assert len(full) > 100, "the phantom's calcified shell gives a mesh"
        lo, hi = full.min(axis=0), full.max(axis=0)
        mid = (lo + hi) / 2
        # A crop box that keeps the whole shell but is a real box (6 planes), and a clip
        # plane through the middle of the shell that keeps the +x half.
        box = (lo[0] - 5, hi[0] + 5, lo[1] - 5, hi[1] + 5, lo[2] - 5, hi[2] + 5)
        s.set_crop_box_lps(box)
        s.set_clip_plane(mid, (1.0, 0.0, 0.0))
        render_to_array(s, 160, 240)
        pts = _drawn_points(s)
        assert len(pts) > 10, "the kept half still has its mesh"
        assert pts[:, 0].min() >= mid[0] - 1e-3, "mesh points on the cut-away side of the clip plane"
        assert (full[:, 0] < mid[0] - 1.0).sum() > 10, "the plane really cuts the shell"
        cp = s._calc_mapper.GetClippingPlanes()
        assert cp is None or cp.GetNumberOfItems() == 0, "no mapper planes left to overflow OpenGL's 6"

        # A tighter crop box in z: nothing outside it, the clip plane still applies.
        zc = (lo[2] + 0.25 * (hi[2] - lo[2]), lo[2] + 0.75 * (hi[2] - lo[2]))
        s.set_crop_box_lps((box[0], box[1], box[2], box[3], zc[0], zc[1]))
        render_to_array(s, 160, 240)
        pts = _drawn_points(s)
        assert len(pts) > 0
        assert pts[:, 2].min() >= zc[0] - 1e-3 and pts[:, 2].max() <= zc[1] + 1e-3
        assert pts[:, 0].min() >= mid[0] - 1e-3

        # Both removed: the whole mesh is back.
        s.set_crop_box_lps(None)
        s.set_clip_plane(None)
        assert len(_drawn_points(s)) == len(full)
    finally:
        s.close()
    out = vtk_log.GetOutput()
    assert "clipping planes" not in out, out
    assert "ERROR" not in out and "Warning" not in out, out
