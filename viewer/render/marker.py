"""The orientation marker: a cube labelled L/R, A/P, S/I in the lower-left corner.

A part of :class:`~viewer.render.scene.Scene` split out for issue 9 (the scene had
about eight jobs): it holds its own small renderer on layer 1, turned with the main
camera at every render. Unlike ``vtkOrientationMarkerWidget`` it needs no interactor,
so it also appears in offscreen renders. Testable without a window: its camera follows
any ``vtkCamera``, and showing it only adds its renderer to a render window.
"""

from __future__ import annotations

import numpy as np

from viewer.render._vtk import vtkAnnotatedCubeActor, vtkRenderer, vtkRenderWindow

#: Fraction of the window (each way) the marker's viewport takes, from the lower left.
VIEWPORT = 0.2


def make_marker_cube() -> vtkAnnotatedCubeActor:
    """The labelled cube: world +x is the patient's Left, +y Posterior, +z Superior."""
    cube = vtkAnnotatedCubeActor()
    cube.SetXPlusFaceText("L")
    cube.SetXMinusFaceText("R")
    cube.SetYPlusFaceText("P")
    cube.SetYMinusFaceText("A")
    cube.SetZPlusFaceText("S")
    cube.SetZMinusFaceText("I")
    cube.SetFaceTextScale(0.65)
    cube.GetCubeProperty().SetColor(0.35, 0.45, 0.6)
    tp = cube.GetTextEdgesProperty()
    tp.SetColor(0.9, 0.9, 0.9)
    tp.SetLineWidth(1.0)
    for prop in (cube.GetXPlusFaceProperty(), cube.GetXMinusFaceProperty()):
        prop.SetColor(1.0, 0.85, 0.3)
    for prop in (cube.GetYPlusFaceProperty(), cube.GetYMinusFaceProperty()):
        prop.SetColor(0.4, 1.0, 0.5)
    for prop in (cube.GetZPlusFaceProperty(), cube.GetZMinusFaceProperty()):
        prop.SetColor(0.5, 0.8, 1.0)
    return cube


class OrientationMarker:
    """The cube in its own renderer (layer 1, lower-left corner), shown or not."""

    def __init__(self) -> None:
        self.renderer = vtkRenderer()
        self.renderer.SetLayer(1)
        self.renderer.SetViewport(0.0, 0.0, VIEWPORT, VIEWPORT)
        self.renderer.InteractiveOff()
        self.cube = make_marker_cube()
        self.renderer.AddActor(self.cube)
        self._visible = False

    @property
    def visible(self) -> bool:
        return self._visible

    def set_visible(self, render_window: vtkRenderWindow, visible: bool) -> None:
        """Add the marker's renderer to ``render_window`` (or take it away)."""
        visible = bool(visible)
        if visible == self._visible:
            return
        if visible:
            render_window.AddRenderer(self.renderer)
        else:
            render_window.RemoveRenderer(self.renderer)
        self._visible = visible

    def follow(self, camera: object) -> None:
        """Turn the cube's camera to look along ``camera``'s direction with its view-up
        (a parallel projection of the unit cube, whatever the main zoom)."""
        dop = np.asarray(camera.GetDirectionOfProjection())  # type: ignore[attr-defined]
        mc = self.renderer.GetActiveCamera()
        mc.SetFocalPoint(0.0, 0.0, 0.0)
        mc.SetPosition(*(-5.0 * dop))
        mc.SetViewUp(*camera.GetViewUp())  # type: ignore[attr-defined]
        mc.ParallelProjectionOn()
        mc.SetParallelScale(1.0)
        self.renderer.ResetCameraClippingRange()

    def close(self, render_window: vtkRenderWindow | None) -> None:
        """Leave ``render_window`` and drop the cube."""
        if render_window is not None and self._visible:
            render_window.RemoveRenderer(self.renderer)
        self._visible = False
        self.renderer.RemoveAllViewProps()


__all__ = ["VIEWPORT", "OrientationMarker", "make_marker_cube"]
