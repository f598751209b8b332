"""The orientation marker (viewer.render.marker), split out of the scene (issue 9):
labels, camera following and showing, checked without rendering a window."""

from __future__ import annotations

import numpy as np

from viewer.render._vtk import vtkRenderer, vtkRenderWindow
from viewer.render.marker import VIEWPORT, OrientationMarker, make_marker_cube
from viewer.render.scene import Scene


def test_cube_faces_name_the_lps_axes() -> None:
    cube = make_marker_cube()
    assert (cube.GetXPlusFaceText(), cube.GetXMinusFaceText()) == ("L", "R")
    assert (cube.GetYPlusFaceText(), cube.GetYMinusFaceText()) == ("P", "A")
    assert (cube.GetZPlusFaceText(), cube.GetZMinusFaceText()) == ("S", "I")


def test_marker_camera_follows_the_main_camera() -> None:
    m = OrientationMarker()
    cam = vtkRenderer().GetActiveCamera()
    cam.SetFocalPoint(10.0, 20.0, 30.0)
    cam.SetPosition(10.0, -480.0, 30.0)  # anterior view: looking along +y
    cam.SetViewUp(0.0, 0.0, 1.0)
    m.follow(cam)
    mc = m.renderer.GetActiveCamera()
    assert np.allclose(mc.GetDirectionOfProjection(), (0.0, 1.0, 0.0))
    assert np.allclose(mc.GetViewUp(), (0.0, 0.0, 1.0))
    assert mc.GetParallelProjection() == 1
    cam.Azimuth(90.0)
    m.follow(cam)
    assert np.allclose(mc.GetDirectionOfProjection(), cam.GetDirectionOfProjection())


def test_showing_adds_its_renderer_on_layer_one() -> None:
    rw = vtkRenderWindow()
    rw.SetNumberOfLayers(2)
    m = OrientationMarker()
    assert m.renderer.GetLayer() == 1
    assert m.renderer.GetViewport() == (0.0, 0.0, VIEWPORT, VIEWPORT)
    m.set_visible(rw, True)
    m.set_visible(rw, True)  # idempotent
    assert rw.GetRenderers().GetNumberOfItems() == 1 and m.visible
    m.set_visible(rw, False)
    assert rw.GetRenderers().GetNumberOfItems() == 0 and not m.visible
    m.set_visible(rw, True)
    m.close(rw)
    assert rw.GetRenderers().GetNumberOfItems() == 0 and not m.visible


def test_scene_marker_turns_with_the_scene_camera() -> None:
    with Scene() as s:
        s.set_orientation_marker(True)
        assert s.orientation_marker_visible
        s.set_view("left")
        s.render()
        mc = s._marker.renderer.GetActiveCamera()
        dop = s.renderer.GetActiveCamera().GetDirectionOfProjection()
        assert np.allclose(mc.GetDirectionOfProjection(), dop)
        s.set_orientation_marker(False)
        assert not s.orientation_marker_visible
