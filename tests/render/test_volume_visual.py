"""The volume visual (viewer.render.volume_visual), split out of the scene (issue 9):
mapper set-up, ray steps, level of detail, property styling and cropping, checked on
VTK objects without a render window."""

from __future__ import annotations

import pytest

from viewer.core.transfer import OpacityPoint, Shading, TransferFunction
from viewer.render import volume_visual as vv
from viewer.render._vtk import vtkFixedPointVolumeRayCastMapper, vtkPiecewiseFunction, vtkVolumeProperty


def test_mapper_kinds_and_configuration() -> None:
    events: list[str] = []
    cpu = vv.make_mapper("cpu", events.append)
    assert cpu.GetClassName() == "vtkFixedPointVolumeRayCastMapper"
    assert cpu.GetAutoAdjustSampleDistances() == 0
    assert cpu.GetIntermixIntersectingGeometry() == 0
    gpu = vv.make_mapper("gpu", events.append)
    assert "GPUVolumeRayCastMapper" in gpu.GetClassName()
    assert gpu.GetUseJittering() == 1
    own = vtkFixedPointVolumeRayCastMapper()
    own.IntermixIntersectingGeometryOn()
    assert vv.make_mapper("cpu", events.append, adopt=own) is own
    assert own.GetIntermixIntersectingGeometry() == 0 and own.GetAutoAdjustSampleDistances() == 0


def test_ray_step_follows_the_spacing_within_limits() -> None:
    assert vv.full_sample_distance(None) == 1.0
    assert vv.full_sample_distance((0.7, 0.7, 1.0)) == pytest.approx(0.8)
    assert vv.full_sample_distance((0.3, 0.3, 0.6)) == 0.5
    assert vv.full_sample_distance((1.5, 1.5, 3.0)) == 1.0
    assert vv.full_sample_distance((1.5, 1.5, 3.0), override_mm=0.25) == 0.25


def test_interactive_ray_budget() -> None:
    assert vv.interactive_image_sample_distance(2.5, 800, 600) == 2.5
    assert vv.interactive_image_sample_distance(2.5, 1920, 1080) == pytest.approx(4.0)
    assert vv.interactive_image_sample_distance(3.0, 100, 100) == 3.0
    assert vv.interactive_image_sample_distance(2.5, 0, 0) == 2.5


def test_sampling_full_and_interactive() -> None:
    m = vv.make_mapper("cpu", lambda _s: None)
    vv.apply_sampling(m, 0.8, True, 4.0)
    assert m.GetImageSampleDistance() == 4.0
    assert m.GetSampleDistance() == pytest.approx(0.8 * vv.INTERACTIVE_STEP_FACTOR)
    vv.apply_sampling(m, 0.8, False, 4.0)
    assert m.GetImageSampleDistance() == 1.0
    assert m.GetSampleDistance() == pytest.approx(0.8)
    assert m.GetInteractiveSampleDistance() == pytest.approx(0.8 * vv.INTERACTIVE_STEP_FACTOR)


def test_property_styling_from_the_transfer_function() -> None:
    prop, gof = vtkVolumeProperty(), vtkPiecewiseFunction()
    tf = TransferFunction(
        shading=Shading(True, 0.2, 0.7, 0.3, 12.0),
        gradient_opacity=(OpacityPoint(0.0, 0.0), OpacityPoint(100.0, 1.0)),
        unit_distance_mm=2.0,
        interpolation="nearest",
    )
    vv.style_property(prop, gof, tf, mip=False, unshaded=False)
    assert prop.GetShade() == 1 and prop.GetAmbient() == pytest.approx(0.2)
    assert prop.GetSpecularPower() == pytest.approx(12.0)
    assert prop.GetDisableGradientOpacity() == 0 and gof.GetSize() == 2
    assert prop.GetScalarOpacityUnitDistance() == pytest.approx(2.0)
    assert prop.GetInterpolationTypeAsString() == "Nearest Neighbor"
    # Deferred shading and MIP: no shading, no gradient opacity (no gradients needed).
    for mip, unshaded in ((False, True), (True, False)):
        vv.style_property(prop, gof, tf, mip=mip, unshaded=unshaded)
        assert prop.GetShade() == 0 and prop.GetDisableGradientOpacity() == 1


def test_cropping_planes_are_voxel_indices_times_spacing() -> None:
    m = vv.make_mapper("cpu", lambda _s: None)
    vv.apply_cropping(m, (2, 10, 0, 5, 3, 7), (0.5, 1.0, 2.0))
    assert m.GetCropping() == 1
    assert m.GetCroppingRegionFlags() == 0x2000  # sub-volume
    assert m.GetCroppingRegionPlanes() == pytest.approx((1.0, 5.0, 0.0, 5.0, 6.0, 14.0))
    vv.apply_cropping(m, None, (0.5, 1.0, 2.0))
    assert m.GetCropping() == 0
