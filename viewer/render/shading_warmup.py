"""Shading gradients computed off the render thread (issue 9).

The CPU ray caster (``vtkFixedPointVolumeRayCastMapper``) computes its shading
gradients (a normal index and a magnitude per voxel) inside the first render after its
input changes: 0.7 s at 224 x 224 x 380, 6-12 s at 512 x 512 x 300-640 on 2 cores. In
the window that render runs on the GUI thread, which froze for that long after every
new scan, bone-threshold change or keyhole edit ("Preparing 3D shading...").

The mapper keeps those gradients for as long as its input (the same ``vtkImageData``,
not modified since) stays. So the worker that prepares the scene's new scalars also
makes a **new** mapper on a new image holding them, and renders it once in a private
8 x 8 offscreen EGL window on the worker thread: the gradients are computed there
(VTK releases the GIL meanwhile; the GUI thread keeps running). The GUI thread then
adopts image and mapper (:meth:`viewer.render.scene.Scene.apply_prepared`), and its next
render finds the gradients ready. Measured with a 512 x 512 x 200 volume under Xvfb:
first GUI-thread render 5.9 s before, 0.27 s after; the GUI thread's longest pause while
the worker computed them, 76 ms.

Only the CPU mapper needs this (the GPU ray caster computes gradients in its shader),
only when the transfer function shades or uses gradient opacity, and only on Linux,
where VTK's EGL window can render offscreen on any thread. Anywhere else, or when EGL
cannot make a context, :func:`warm_mapper` returns None and the scene computes the
gradients in its own first render, as before.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass

import numpy as np

from viewer.core.transfer import TransferFunction
from viewer.render._vtk import (
    numpy_to_vtk,
    vtkColorTransferFunction,
    vtkCommand,
    vtkFixedPointVolumeRayCastMapper,
    vtkImageData,
    vtkPiecewiseFunction,
    vtkRenderer,
    vtkVolume,
    vtkVolumeProperty,
)
from viewer.render.content import BufferBox, origin_mm
from viewer.render.extent import BlockRanges

#: Side (pixels) of the private window the warm-up renders in: the gradients do not
#: depend on it, the ray casting it costs does.
WARM_WINDOW_PX = 8

_egl_lock = threading.Lock()
_egl_ok: bool | None = None


@dataclass(eq=False)
class WarmMapper:
    """A CPU ray-cast mapper that has rendered ``image`` once (``computed``: with its
    shading gradients), whose scalars share ``buffer``'s memory (the scene checks it
    is the buffer it installs)."""

    buffer: np.ndarray
    image: vtkImageData
    mapper: vtkFixedPointVolumeRayCastMapper
    seconds: float
    computed: bool
    #: The buffer's block value ranges for the visible extent (viewer.render.extent),
    #: made with the unshaded mapper (0.65 s at 512 x 512 x 600), or None.
    block_ranges: BlockRanges | None = None
    #: The part of the whole render buffer ``buffer`` is (``viewer.render.content``),
    #: or None: all of it.
    box: BufferBox | None = None


def needs_gradients(tf: TransferFunction) -> bool:
    """Whether the CPU ray caster computes gradients for ``tf`` (shading or gradient
    opacity, in composite mode; MIP needs none)."""
    if tf.blend_mode == "mip":
        return False
    return bool(tf.shading.enabled or tf.gradient_opacity)


def _egl_window() -> object | None:
    """A new offscreen EGL render window, or None where there is none (not Linux, or
    EGL made no context once: then never tried again in this process)."""
    global _egl_ok
    if not sys.platform.startswith("linux"):
        return None
    try:
        from vtkmodules.vtkRenderingOpenGL2 import vtkEGLRenderWindow
    except ImportError:
        return None
    with _egl_lock:
        if _egl_ok is False:
            return None
        rw = vtkEGLRenderWindow()
        rw.SetOffScreenRendering(1)
        rw.SetSize(WARM_WINDOW_PX, WARM_WINDOW_PX)
        if _egl_ok is None:
            _egl_ok = bool(rw.SupportsOpenGL())
            if not _egl_ok:
                rw.Finalize()
                return None
    return rw


def image_for(
    buffer: np.ndarray,
    spacing_mm: tuple[float, float, float],
    origin_mm: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> vtkImageData:
    """The ``vtkImageData`` a scene renders ``buffer`` (int16 ``(nz, ny, nx)``, C order)
    from: the volume's spacing, scalars sharing the buffer's memory, ``origin_mm``
    (0, or the corner of a buffer cut to the body: ``viewer.render.content``)."""
    nz, ny, nx = buffer.shape
    image = vtkImageData()
    image.SetDimensions(nx, ny, nz)
    image.SetSpacing(*(float(s) for s in spacing_mm))
    image.SetOrigin(*(float(o) for o in origin_mm))
    arr = numpy_to_vtk(buffer.reshape(-1), deep=False)
    arr.SetName("scalars")
    image.GetPointData().SetScalars(arr)
    return image


def warm_mapper(
    buffer: np.ndarray,
    spacing_mm: tuple[float, float, float],
    tf: TransferFunction,
    *,
    shade: bool = True,
    box: BufferBox | None = None,
    origin: tuple[float, float, float] | None = None,
) -> WarmMapper | None:
    """A CPU mapper on a new image of ``buffer`` with its shading gradients computed
    on this thread (any thread), or None when ``tf`` needs no gradients or no offscreen
    EGL window can be made here. Blocks for the gradient computation's time.

    ``shade=False``: render it unshaded instead, so the mapper holds only what every
    first render of new scalars builds (the space-leaping min/max blocks and scalar
    tables: 0.7 s on the GUI thread for a 360 x 224 x 380 volume); ``computed`` is
    then False and the scene draws it unshaded until a shaded one arrives.
    ``box``: the part of the whole render buffer ``buffer`` is (a buffer cut to the
    body: ``viewer.render.content``; the image is placed at its corner), as the scene
    holds it (a scene adopts only a mapper made for its own box). ``origin``: the
    image origin, when it is not ``box``'s corner at ``spacing_mm`` (a decimated copy of
    the buffer, at twice the spacing, has the corner of the full-size one)."""
    if (shade and not needs_gradients(tf)) or buffer.ndim != 3 or buffer.size == 0:
        return None
    rw = _egl_window()
    if rw is None:
        return None
    t0 = time.perf_counter()
    buffer = np.ascontiguousarray(buffer)
    image = image_for(buffer, spacing_mm, origin if origin is not None else origin_mm(box, spacing_mm))
    mapper = vtkFixedPointVolumeRayCastMapper()
    mapper.SetInputData(image)
    computed = []
    mapper.AddObserver(vtkCommand.VolumeMapperComputeGradientsEndEvent, lambda *_a: computed.append(True))
    # Any opacity over the buffer's values makes the mapper cast (and so shade): the
    # gradients depend on the scalars only (ComputeNormalFromOpacity is off). A ramp over
    # the whole int16 range needs no pass over the buffer to find its own range.
    otf = vtkPiecewiseFunction()
    otf.AddPoint(-32768.0, 0.2)
    otf.AddPoint(32767.0, 0.5)
    ctf = vtkColorTransferFunction()
    ctf.AddRGBPoint(-32768.0, 1.0, 1.0, 1.0)
    prop = vtkVolumeProperty()
    prop.SetScalarOpacity(otf)
    prop.SetColor(ctf)
    prop.SetShade(1 if shade else 0)
    prop.SetInterpolationTypeToLinear()
    actor = vtkVolume()
    actor.SetMapper(mapper)
    actor.SetProperty(prop)
    ren = vtkRenderer()
    rw.AddRenderer(ren)  # type: ignore[attr-defined]
    ren.AddVolume(actor)
    ren.ResetCamera()
    # The block ranges (numpy, GIL released in its loops) beside the render (VTK
    # releases the GIL too): the first frame of a new scan waits for both.
    ranges_box: list[BlockRanges] = []
    side = None if shade else threading.Thread(target=lambda: ranges_box.append(BlockRanges(buffer)), daemon=True)
    if side is not None:
        side.start()
    try:
        rw.Render()  # type: ignore[attr-defined]
    finally:
        ren.RemoveVolume(actor)
        rw.RemoveRenderer(ren)  # type: ignore[attr-defined]
        rw.Finalize()  # type: ignore[attr-defined]
        if side is not None:
            side.join()
    ranges = None if shade else (ranges_box[0] if ranges_box else BlockRanges(buffer))
    return WarmMapper(buffer, image, mapper, time.perf_counter() - t0, shade and bool(computed), ranges, box)


__all__ = ["WARM_WINDOW_PX", "WarmMapper", "image_for", "needs_gradients", "warm_mapper"]
