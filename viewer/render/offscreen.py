"""Offscreen rendering to numpy arrays, and what OpenGL this machine really has.

``render_to_array`` is what tests, export and the command line use: VTK alone renders
offscreen with no display at all (the vtk wheel picks EGL when there is no X server).

Mapper choice (``choose_mapper_kind``): measured on a 2-core machine with Mesa llvmpipe
(DESIGN.md), VTK's GPU ray caster took ~8-9 s a frame for a 512x512x300 CT at 800x600,
the multi-threaded CPU ray caster ~0.2 s -- so a *software* OpenGL (renderer string
naming llvmpipe, softpipe or SwiftShader) gets the CPU ray caster, real GPUs the GPU
ray caster. ``VESSEL_VIEWER_MAPPER=cpu|gpu`` overrides.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Literal

import numpy as np

from viewer.core.errors import ViewerError
from viewer.render._vtk import vtk_to_numpy, vtkRenderer, vtkRenderWindow, vtkWindowToImageFilter

if TYPE_CHECKING:  # pragma: no cover
    from viewer.render.scene import Scene

MapperKind = Literal["cpu", "gpu"]

#: Substrings of GL_RENDERER that identify a software rasteriser.
SOFTWARE_RENDERERS = ("llvmpipe", "softpipe", "swiftshader", "software rasterizer", "swr")

_probe_cache: str | None = None


def gl_renderer_string(render_window: vtkRenderWindow | None = None) -> str:
    """The OpenGL ``GL_RENDERER`` string (e.g. ``"llvmpipe (LLVM 15.0.6, 256 bits)"``).

    Reads it from ``render_window`` if that window has already rendered (asking an
    un-shown Qt window to render would show it too early); otherwise from a private
    1x1 offscreen probe window, cached for the process. Returns ``""`` if no OpenGL
    context can be made.
    """
    global _probe_cache
    if render_window is not None and not render_window.GetNeverRendered():
        s = _parse_renderer(render_window.ReportCapabilities())
        if s:
            return s
    if _probe_cache is None:
        rw = vtkRenderWindow()
        rw.SetOffScreenRendering(1)
        rw.SetSize(1, 1)
        rw.AddRenderer(vtkRenderer())
        try:
            rw.Render()
            _probe_cache = _parse_renderer(rw.ReportCapabilities())
        finally:
            rw.Finalize()
    return _probe_cache


def _parse_renderer(capabilities: str) -> str:
    m = re.search(r"OpenGL renderer string:\s*(.+)", capabilities or "")
    return m.group(1).strip() if m else ""


def is_software_renderer_name(renderer: str) -> bool:
    """True when a ``GL_RENDERER`` string names a software rasteriser (llvmpipe,
    softpipe, SwiftShader, ...): see :data:`SOFTWARE_RENDERERS`."""
    name = renderer.lower()
    return any(s in name for s in SOFTWARE_RENDERERS)


def is_software_renderer(render_window: vtkRenderWindow | None = None) -> bool:
    """True when this machine's OpenGL is a software rasteriser."""
    return is_software_renderer_name(gl_renderer_string(render_window))


def mapper_kind_for_renderer(renderer: str) -> MapperKind:
    """The volume mapper for a ``GL_RENDERER`` string: ``"cpu"`` on software OpenGL and
    when there is no OpenGL at all (``""``: the CPU ray caster needs the least from
    it), ``"gpu"`` on a hardware renderer."""
    if not renderer or is_software_renderer_name(renderer):
        return "cpu"
    return "gpu"


def choose_mapper_kind(render_window: vtkRenderWindow | None = None) -> MapperKind:
    """``"cpu"`` (vtkFixedPointVolumeRayCastMapper) on software OpenGL, else ``"gpu"``
    (vtkGPUVolumeRayCastMapper); the env var ``VESSEL_VIEWER_MAPPER`` overrides (and
    then no OpenGL context is made to ask)."""
    env = os.environ.get("VESSEL_VIEWER_MAPPER", "").strip().lower()
    if env == "cpu":
        return "cpu"
    if env == "gpu":
        return "gpu"
    if env:
        raise ViewerError(f"VESSEL_VIEWER_MAPPER must be 'cpu' or 'gpu', got {env!r}")
    return mapper_kind_for_renderer(gl_renderer_string(render_window))


def grab_window(render_window: vtkRenderWindow, *, transparent: bool = False) -> np.ndarray:
    """Read the back buffer of a window that has just rendered: uint8 ``(H, W, 3|4)``,
    row 0 at the top (VTK's row 0 is the bottom)."""
    w2i = vtkWindowToImageFilter()
    w2i.SetInput(render_window)
    w2i.SetInputBufferTypeToRGBA() if transparent else w2i.SetInputBufferTypeToRGB()
    # The window was rendered just before; do not render again (and read the back
    # buffer: the front buffer of an offscreen EGL window is undefined).
    w2i.ShouldRerenderOff()
    w2i.ReadFrontBufferOff()
    w2i.Update()
    img = w2i.GetOutput()
    w, h, _ = img.GetDimensions()
    flat: np.ndarray = vtk_to_numpy(img.GetPointData().GetScalars())
    rgb: np.ndarray = flat.reshape(h, w, -1)[::-1].copy()
    return rgb


def render_to_array(scene: Scene, width: int, height: int, *, transparent: bool = False) -> np.ndarray:
    """Render ``scene`` offscreen at ``width`` x ``height`` pixels.

    Returns uint8 ``(height, width, 3)``, or ``(height, width, 4)`` with
    ``transparent=True`` (background alpha 0, the volume's accumulated opacity in the
    alpha channel). Always full quality (the interactive level of detail is lifted
    for the still and restored afterwards). A scene drawing into someone else's window
    (the GUI's) is rendered through an offscreen twin with the same state, so the
    on-screen widget is not resized.
    """
    width, height = int(width), int(height)
    if width < 1 or height < 1 or width > 16384 or height > 16384:
        raise ViewerError(f"image size must be 1..16384 pixels a side, got {width}x{height}")
    target = scene if scene.owns_window else scene.offscreen_twin()
    return target.render_still(width, height, transparent=transparent)


__all__ = [
    "MapperKind",
    "SOFTWARE_RENDERERS",
    "choose_mapper_kind",
    "gl_renderer_string",
    "grab_window",
    "is_software_renderer",
    "is_software_renderer_name",
    "mapper_kind_for_renderer",
    "render_to_array",
]
