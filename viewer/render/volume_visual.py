"""The volume visual: how the scene's ray-cast mapper and volume property are set up.

A part of :class:`~viewer.render.scene.Scene` split out for issue 9 (the scene had
about eight jobs). Functions of VTK objects and plain values only -- no render window,
so each is testable without one: which mapper and how it is configured, the ray step
and image sample distance (full quality, interactive, the interactive ray budget), the
volume property's shading / interpolation / gradient opacity from a transfer function,
and the cropping planes of a visible box (``viewer.render.extent``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from viewer.core.transfer import TransferFunction
from viewer.render._vtk import (
    vtkCommand,
    vtkFixedPointVolumeRayCastMapper,
    vtkGPUVolumeRayCastMapper,
    vtkPiecewiseFunction,
    vtkVolumeProperty,
)
from viewer.render.extent import IndexBox
from viewer.render.offscreen import MapperKind

VolumeMapper = vtkFixedPointVolumeRayCastMapper | vtkGPUVolumeRayCastMapper

#: Default image sample distance while the camera moves (pixels per ray, each way):
#: 2.5 casts 1/6 of the rays of a still. Measured in docs/bench-render.md.
INTERACTIVE_IMAGE_SAMPLE_DISTANCE = 2.5
#: Ray step while interacting, as a multiple of the still's step.
INTERACTIVE_STEP_FACTOR = 2.0
#: Rays per interactive frame at most (issue 9): larger windows get a coarser image
#: sample distance so a drag costs about the same at any window size. 129 600 keeps
#: 800x600 at 2.5 and gives 1920x1080 4.0 pixels per ray (see docs/bench-render.md).
INTERACTIVE_RAY_BUDGET = 129_600


def make_mapper(
    kind: MapperKind,
    on_gradient: Callable[[str], None],
    adopt: vtkFixedPointVolumeRayCastMapper | None = None,
) -> VolumeMapper:
    """A volume mapper of ``kind`` (or ``adopt``, a CPU mapper made elsewhere) configured
    as the scene uses it; ``on_gradient`` gets ``"start"``, ``"progress"``, ``"end"``
    while the CPU mapper computes its shading gradients."""
    m: VolumeMapper
    if adopt is not None:
        m = adopt
        adopt.IntermixIntersectingGeometryOff()
    elif kind == "gpu":
        m = gpu = vtkGPUVolumeRayCastMapper()
        gpu.SetUseJittering(1)  # hides wood-grain sampling artefacts at no cost
    else:
        m = cpu = vtkFixedPointVolumeRayCastMapper()
        # Intermixing opaque geometry needs a depth-buffer read per frame: only while
        # a mesh is shown (the scene turns it on then).
        cpu.IntermixIntersectingGeometryOff()
    # Sample distances are chosen here (full quality for stills, coarser while
    # interacting), not by VTK's frame-rate guesser.
    m.SetAutoAdjustSampleDistances(0)
    m.SetBlendModeToComposite()
    for event, stage in (
        (vtkCommand.VolumeMapperComputeGradientsStartEvent, "start"),
        (vtkCommand.VolumeMapperComputeGradientsProgressEvent, "progress"),
        (vtkCommand.VolumeMapperComputeGradientsEndEvent, "end"),
    ):
        m.AddObserver(event, lambda *_a, _s=stage: on_gradient(_s))
    return m


def full_sample_distance(spacing_mm: Sequence[float] | None, override_mm: float | None = None) -> float:
    """The still's ray step (mm): ``override_mm`` if given; else the mean voxel step,
    capped at 1 mm (VTK's default step, which pyvista keeps) and floored at 0.5 mm:
    finer steps on sub-millimetre scans cost frame time (0.3 mm steps made a
    512x512x640 frame ~3x slower) for detail the shading does not show."""
    if override_mm is not None:
        return float(override_mm)
    if spacing_mm is None:
        return 1.0
    return float(min(1.0, max(0.5, sum(spacing_mm) / 3.0)))


def interactive_image_sample_distance(base: float, width: int, height: int) -> float:
    """Pixels per ray while interacting: ``base``, or coarser where a ``width`` x
    ``height`` window would need more than :data:`INTERACTIVE_RAY_BUDGET` rays."""
    return float(max(base, math.sqrt(max(0, width) * max(0, height) / INTERACTIVE_RAY_BUDGET)))


def apply_sampling(mapper: VolumeMapper, step_mm: float, interactive: bool, isd: float) -> None:
    """Full quality (1 pixel per ray, ``step_mm``) or the interactive level of detail
    (``isd`` pixels per ray, :data:`INTERACTIVE_STEP_FACTOR` times the step)."""
    if interactive:
        mapper.SetImageSampleDistance(isd)
        mapper.SetSampleDistance(step_mm * INTERACTIVE_STEP_FACTOR)
    else:
        mapper.SetImageSampleDistance(1.0)
        mapper.SetSampleDistance(step_mm)
    if isinstance(mapper, vtkFixedPointVolumeRayCastMapper):
        mapper.SetInteractiveSampleDistance(step_mm * INTERACTIVE_STEP_FACTOR)


def style_property(
    prop: vtkVolumeProperty, gof: vtkPiecewiseFunction, tf: TransferFunction, *, mip: bool, unshaded: bool
) -> None:
    """Shading, gradient opacity (into ``gof``), unit distance and interpolation of
    ``tf`` on ``prop``; a MIP, or ``unshaded`` (shading deferred to a worker), turns
    shading and gradient opacity off (so a render computes no gradients)."""
    if tf.gradient_opacity and not mip and not unshaded:
        gof.RemoveAllPoints()
        for g in tf.gradient_opacity:
            gof.AddPoint(float(g.x), float(g.opacity))
        prop.SetGradientOpacity(gof)
        prop.SetDisableGradientOpacity(0)
    else:
        prop.SetDisableGradientOpacity(1)
    sh = tf.shading
    prop.SetShade(1 if (sh.enabled and not mip and not unshaded) else 0)
    prop.SetAmbient(sh.ambient)
    prop.SetDiffuse(sh.diffuse)
    prop.SetSpecular(sh.specular)
    prop.SetSpecularPower(sh.specular_power)
    prop.SetScalarOpacityUnitDistance(max(1e-3, float(tf.unit_distance_mm)))
    if tf.interpolation == "nearest":
        prop.SetInterpolationTypeToNearest()
    else:
        prop.SetInterpolationTypeToLinear()


def apply_cropping(mapper: VolumeMapper, box: IndexBox | None, spacing_mm: Sequence[float]) -> None:
    """Crop ``mapper`` to ``box`` (inclusive voxel indices x, y, z of an image with
    origin 0 and ``spacing_mm``; VTK sub-volume cropping), or not at all (None)."""
    if box is None:
        mapper.CroppingOff()
        return
    mapper.SetCroppingRegionPlanes(*(float(box[i]) * float(spacing_mm[i // 2]) for i in range(6)))
    mapper.SetCroppingRegionFlagsToSubVolume()
    mapper.CroppingOn()


__all__ = [
    "INTERACTIVE_IMAGE_SAMPLE_DISTANCE",
    "INTERACTIVE_RAY_BUDGET",
    "INTERACTIVE_STEP_FACTOR",
    "VolumeMapper",
    "apply_cropping",
    "apply_sampling",
    "full_sample_distance",
    "interactive_image_sample_distance",
    "make_mapper",
    "style_property",
]
