"""Lesion visuals in the 3D scene (issue 10): distance colouring, keyhole, markers,
centrelines, measurements and the lesion outline, checked on offscreen renders of the
clean small phantom (pixel statistics at projected truth positions, not golden images)."""

from __future__ import annotations

import os

os.environ.setdefault("VTK_SMP_BACKEND_IN_USE", "STDThread")

from collections.abc import Iterator

import numpy as np
import pytest
from render_helpers import Leg, is_ivory, is_red

from viewer.core.errors import ViewerError
from viewer.core.extraction import ClassMasks
from viewer.core.lesion import Branch, EntryPoint, Lesion
from viewer.core.measure import Angle, Ruler
from viewer.core.presets import default_preset
from viewer.core.transfer import TransferFunction
from viewer.export.lesion_report import scene_class_masks
from viewer.render.content import whole_buffer
from viewer.render.lesion_visual import CENTRELINE_RGB, ENTRY_RGB, LESION_RGB, MEASURE_RGB, OTHER_WINDOW_RGB
from viewer.render.scene import Scene

W, H = 400, 400


@pytest.fixture(scope="module")
def tf() -> TransferFunction:
    return default_preset().with_changes(separated=True)


@pytest.fixture(scope="module")
def masks(leg: Leg, tf: TransferFunction) -> ClassMasks:
    return scene_class_masks(leg.volume, tf)


@pytest.fixture()
def scene(leg: Leg, tf: TransferFunction, masks: ClassMasks) -> Iterator[Scene]:
    sc = Scene(offscreen=True)
    sc.set_volume(leg.volume)
    sc.set_transfer_function(tf)
    sc.set_class_masks(masks)
    sc.set_view("anterior")
    yield sc
    sc.close()


def _near(img: np.ndarray, rgb: tuple[float, float, float], tol: int = 40) -> np.ndarray:
    f = img[..., :3].astype(np.int32)
    return np.abs(f - np.round(np.asarray(rgb) * 255).astype(np.int32)).max(axis=-1) <= tol


def _is_blue(img: np.ndarray) -> np.ndarray:
    f = img[..., :3].astype(np.int32)
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    return (b >= 80) & (b >= 1.5 * r) & (b >= 1.1 * g)


def _is_warm(img: np.ndarray) -> np.ndarray:
    """Red to orange (the near end of the distance colour map)."""
    f = img[..., :3].astype(np.int32)
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    return (r >= 60) & (g <= 0.75 * r) & (b <= 0.4 * r)


def _disk(sc: Scene, center_lps: np.ndarray, radius_mm: float) -> np.ndarray:
    """Image pixels within the projected circle of a sphere (parallel-ish view)."""
    c = sc.world_to_pixel(np.asarray(center_lps, float), W, H)
    edge = sc.world_to_pixel(np.asarray(center_lps, float) + [radius_mm, 0.0, 0.0], W, H)
    r_px = float(np.linalg.norm(edge - c))
    yy, xx = np.mgrid[0:H, 0:W]
    return np.asarray((xx - c[0]) ** 2 + (yy - c[1]) ** 2 <= r_px**2)


def _tibia_point(leg: Leg) -> np.ndarray:
    """LPS of a voxel in the middle of the largest bone at the middle slice (truth)."""
    from scipy import ndimage

    k = leg.volume.shape[0] // 2
    lab, n = ndimage.label(leg.bone[k])
    sizes = ndimage.sum(np.ones_like(lab), lab, index=range(1, n + 1))
    j, i = ndimage.center_of_mass(lab == (int(np.argmax(sizes)) + 1))
    return np.asarray(leg.volume.lps_of_ijk((i, j, k)))


def _artery_voxels_lps(leg: Leg) -> np.ndarray:
    k, j, i = np.nonzero(leg.artery)
    return np.asarray(leg.volume.lps_of_ijk(np.stack([i, j, k], axis=1)))


def test_distance_colouring_recolours_vessels_by_mm(scene: Scene, leg: Leg) -> None:
    off = scene.render_still(W, H)
    assert is_red(off).sum() > 200, "the separated render shows red vessels"
    assert _is_blue(off).sum() < 20
    art = _artery_voxels_lps(leg)
    # A small sphere on the front-most artery voxel that shows red in this view: near
    # vessels red, the rest blue.
    px = scene.world_to_pixel(art, W, H).round().astype(int)
    ok = (px[:, 0] >= 0) & (px[:, 0] < W) & (px[:, 1] >= 0) & (px[:, 1] < H)
    ok[ok] = is_red(off)[px[ok, 1], px[ok, 0]]
    centre = art[ok][np.argmin(art[ok][:, 1])]
    scene.set_lesion(Lesion.sphere(centre, 5.0))
    scene.set_vessel_colouring("lesion", 20.0)
    img = scene.render_still(W, H)
    assert _is_blue(img).sum() > 200, "vessels far from the lesion are blue"
    # What stays in the volume's vessel window (no vessel class) is no longer "near" red.
    assert scene._ctf.GetColor(300.0) == pytest.approx(OTHER_WINDOW_RGB)
    # The vessel mesh's colours are the exact distances of its vertices to the lesion.
    vm = scene._vessel_mesh
    pts = vm.points_lps()
    from vtkmodules.util.numpy_support import vtk_to_numpy

    d = vtk_to_numpy(vm.mesh.GetPointData().GetScalars())  # type: ignore[attr-defined]
    np.testing.assert_allclose(d, Lesion.sphere(centre, 5.0).distance_lps(pts), atol=1e-3)
    # Near the lesion the vessel pixels are red/orange (distance < a quarter of the bar).
    near = _disk(scene, centre, 8.0) & ~_near(img, LESION_RGB, 60)
    assert (near & _is_warm(img)).sum() > 5
    assert (near & _is_blue(img)).sum() == 0
    # The colour bar: a vertical run of both ends of the colour map at the right edge.
    bar = img[int(0.2 * H) : int(0.8 * H), int(0.82 * W) : int(0.96 * W)]
    assert _is_blue(bar).sum() > 20 and is_red(bar).sum() > 20
    # Off again: the preset's vessel red, no colour bar.
    scene.set_vessel_colouring("off")
    again = scene.render_still(W, H)
    assert scene._ctf.GetColor(300.0) == pytest.approx(scene.transfer_function.vessel.color, abs=0.02)
    assert _is_blue(again).sum() < 20
    assert abs(int(is_red(again).sum()) - int(is_red(off).sum())) < 0.05 * is_red(off).sum() + 20


def test_colouring_by_distance_to_bone_needs_no_lesion(scene: Scene) -> None:
    scene.set_vessel_colouring("bone", 10.0)
    img = scene.render_still(W, H)
    assert scene._vessel_mesh.visible
    # Arteries that run along the bones are red-orange, those away from it green-blue.
    assert is_red(img).sum() > 50 and _is_blue(img).sum() > 50
    assert scene.lesion_overlay.colour_bar == ("mm to bone", 10.0)


def test_lesion_colouring_waits_for_a_lesion_and_bad_modes_fail(scene: Scene) -> None:
    scene.set_vessel_colouring("lesion")
    assert not scene._vessel_mesh.visible and scene.lesion_overlay.colour_bar is None
    with pytest.raises(ViewerError, match="vessel colouring"):
        scene.set_vessel_colouring("rainbow")
    with pytest.raises(ViewerError, match="maximum"):
        scene.set_vessel_colouring("bone", 0.0)
    with pytest.raises(ViewerError, match="Lesion"):
        scene.set_lesion((1.0, 2.0, 3.0))  # type: ignore[arg-type]


def _whole(scene: Scene) -> np.ndarray:
    """The scene's whole render buffer (it may hold only the body's box of it)."""
    assert scene.buffer is not None and scene.volume is not None
    return whole_buffer(scene.buffer, scene.buffer_box, scene.volume.shape)


def test_keyhole_removes_bone_only_and_keeps_crop(scene: Scene, leg: Leg) -> None:
    p = _tibia_point(leg)
    lesion = Lesion.sphere(p, 25.0)  # larger than the tibia's half-width: cuts through it
    scene.set_lesion(lesion)
    before = scene.render_still(W, H)
    enc_before = _whole(scene)[1:-1, 1:-1, 1:-1].copy()
    scene.set_keyhole(True)
    after = scene.render_still(W, H)
    enc = _whole(scene)[1:-1, 1:-1, 1:-1]
    region = lesion.region_mask(leg.volume)
    # In the volume: no bone code left inside the region, nothing changed outside it,
    # and the non-bone voxels inside (vessels, soft tissue) kept their values.
    assert (enc_before[region] < -3000).sum() > 100
    assert not (enc[region] < -3000).any()
    np.testing.assert_array_equal(enc[~region], enc_before[~region])
    keep = region & (enc_before >= -1024)
    np.testing.assert_array_equal(enc[keep], enc_before[keep])
    # In the picture: the bone in the middle of the sphere's disk mostly vanished.
    disk = _disk(scene, p, 12.0) & ~_near(after, LESION_RGB, 60)
    iv_before, iv_after = int((is_ivory(before) & disk).sum()), int((is_ivory(after) & disk).sum())
    assert iv_before > 100 and iv_after < 0.6 * iv_before, (iv_before, iv_after)
    # Crop still applies with the keyhole on: keep only the patient's right of the
    # lesion centre; the left half of the patient (image right in an anterior view) is empty.
    lo, hi = leg.volume.bounds_lps()
    scene.set_crop_box_lps((lo[0] - 1, p[0], lo[1] - 1, hi[1] + 1, lo[2] - 1, hi[2] + 1))
    cropped = scene.render_still(W, H)
    col = int(scene.world_to_pixel(p, W, H)[0])
    right = cropped[:, col + 8 :, :3]
    assert (is_ivory(right) | is_red(right)).sum() < 30
    assert (is_ivory(cropped[:, : col - 8]) | is_red(cropped[:, : col - 8])).sum() > 100
    scene.set_keyhole(False)
    np.testing.assert_array_equal(_whole(scene)[1:-1, 1:-1, 1:-1], enc_before)


def test_entry_markers_centrelines_and_outline_drawn_and_cut(scene: Scene, leg: Leg) -> None:
    p = _tibia_point(leg) + np.array([0.0, -30.0, 0.0])  # in front of the leg
    scene.set_lesion(Lesion.sphere(p, 20.0))
    e = p + [8.0, 0.0, 8.0]  # clear of the wire circles' projections through the centre
    scene.set_entry_points([EntryPoint(1, tuple(e), 11.3, None, 1.0)])  # type: ignore[arg-type]
    line = np.array([p + [-12.0, 0.0, 30.0], p + [-12.0, 0.0, -30.0]])
    scene.set_centrelines([Branch(1, 60.0, 1.0, line, True)])
    img = scene.render_still(W, H)
    c = scene.world_to_pixel(e, W, H).round().astype(int)
    win = img[c[1] - 3 : c[1] + 4, c[0] - 3 : c[0] + 4]
    assert _near(win, ENTRY_RGB, 70).sum() >= 6, "the entry marker sphere is drawn at its LPS position"
    mid = scene.world_to_pixel(line.mean(axis=0), W, H).round().astype(int)
    assert _near(img[mid[1] - 2 : mid[1] + 3, mid[0] - 2 : mid[0] + 3], CENTRELINE_RGB, 50).sum() >= 2
    # The sphere's wire: yellow where the axial circle crosses the image row of the centre.
    edge = scene.world_to_pixel(p + [20.0, 0.0, 0.0], W, H).round().astype(int)
    assert _near(img[edge[1] - 3 : edge[1] + 4, edge[0] - 3 : edge[0] + 4], LESION_RGB, 60).any()
    # A clip plane keeping only z > p_z + 40 cuts the marker and the centreline away.
    scene.set_clip_plane(p + [0.0, 0.0, 40.0], (0.0, 0.0, 1.0))
    cut = scene.render_still(W, H)
    assert _near(cut[c[1] - 3 : c[1] + 4, c[0] - 3 : c[0] + 4], ENTRY_RGB, 70).sum() == 0
    assert _near(cut[mid[1] - 2 : mid[1] + 3, mid[0] - 2 : mid[0] + 3], CENTRELINE_RGB, 50).sum() == 0
    assert not scene.lesion_overlay._entry_labels[0].GetVisibility()  # type: ignore[attr-defined]


def test_rulers_and_angles_drawn_and_deleting_one_keeps_the_other(scene: Scene, leg: Leg) -> None:
    p = _tibia_point(leg) + np.array([0.0, -40.0, 0.0])
    ruler = Ruler(tuple(p + [-30.0, 0.0, 40.0]), tuple(p + [30.0, 0.0, 40.0]))  # type: ignore[arg-type]
    angle = Angle(tuple(p + [-30.0, 0.0, -60.0]), tuple(p + [0.0, 0.0, -30.0]), tuple(p + [30.0, 0.0, -60.0]))  # type: ignore[arg-type]
    scene.set_measurements([ruler, angle])
    img = scene.render_still(W, H)

    def green_at(image: np.ndarray, lps: np.ndarray) -> int:
        q = scene.world_to_pixel(lps, W, H).round().astype(int)
        return int(_near(image[q[1] - 2 : q[1] + 3, q[0] - 2 : q[0] + 3], MEASURE_RGB, 60).sum())

    r_mid = p + [-20.0, 0.0, 40.0]  # on the ruler, clear of its label in the middle
    a_arm = p + [-20.0, 0.0, -50.0]  # on the angle's first arm
    assert green_at(img, r_mid) > 0 and green_at(img, a_arm) > 0
    assert [lab.GetInput() for lab in scene.lesion_overlay._measure_labels] == ["60.0 mm", "90.0\N{DEGREE SIGN}"]  # type: ignore[attr-defined]
    scene.set_measurements([angle])
    img2 = scene.render_still(W, H)
    assert green_at(img2, r_mid) == 0 and green_at(img2, a_arm) > 0


def test_offscreen_twin_keeps_the_lesion_state(scene: Scene, leg: Leg) -> None:
    p = _tibia_point(leg)
    lesion = Lesion.sphere(p, 10.0)
    scene.set_lesion(lesion)
    scene.set_keyhole(True)
    scene.set_vessel_colouring("lesion", 25.0)
    scene.set_entry_points([EntryPoint(1, tuple(p), 0.0, "posterior_tibial", 1.2)])  # type: ignore[arg-type]
    scene.set_measurements([Ruler((0.0, 0.0, 0.0), (10.0, 0.0, 0.0))])
    twin = scene.offscreen_twin()
    assert twin.lesion == lesion and twin.keyhole and twin.vessel_colouring == ("lesion", 25.0)
    assert twin.lesion_overlay.entry_points == scene.lesion_overlay.entry_points
    assert twin.lesion_overlay.measurements == scene.lesion_overlay.measurements
    assert twin._vessel_mesh.mesh is scene._vessel_mesh.mesh, "the twin shares the vessel mesh (no rebuild)"
    a, b = scene.render_still(W, H), twin.render_still(W, H)
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 2.0


def test_vessel_mesh_is_closed_outward_and_culled_unless_cut(scene: Scene, leg: Leg) -> None:
    """The distance-coloured mesh is closed (vessels cut by the scan's edge get a cap)
    and wound outwards, so its back faces can be culled (fewer triangles to rasterise);
    a crop box opens the tubes, and then the back faces (their inner walls) are drawn."""
    from dataclasses import replace

    from vtkmodules.vtkFiltersCore import vtkFeatureEdges

    from viewer.render.lesion_visual import _signed_volume, vessel_iso_hu, vessel_surface

    iso = vessel_iso_hu(default_preset())
    # The artery runs through the whole scan: the first and last slices cut it.
    assert leg.artery[0].any() and leg.artery[-1].any()
    mesh = vessel_surface(leg.volume, leg.artery, iso)
    assert mesh.GetNumberOfPolys() > 100  # type: ignore[attr-defined]
    edges = vtkFeatureEdges()
    edges.SetInputData(mesh)
    edges.BoundaryEdgesOn()
    edges.NonManifoldEdgesOff()
    edges.FeatureEdgesOff()
    edges.ManifoldEdgesOff()
    edges.Update()
    assert edges.GetOutput().GetNumberOfCells() == 0, "no open edges: the surface is closed"
    # Wound outwards: positive enclosed volume, about the vessel voxels' volume; a
    # mirrored grid (negative determinant) too.
    sx, sy, sz = leg.volume.spacing_mm
    ml = float(leg.artery.sum()) * sx * sy * sz
    assert 0.5 * ml < _signed_volume(mesh) < 3.0 * ml
    mirror = np.diag([-1.0, 1.0, 1.0, 1.0]) @ np.asarray(leg.volume.ijk_to_lps, dtype=np.float64)
    assert 0.5 * ml < _signed_volume(vessel_surface(replace(leg.volume, ijk_to_lps=mirror), leg.artery, iso))
    # In the scene: back faces culled, drawn while a crop box cuts the mesh.
    scene.set_vessel_colouring("bone", 10.0)
    scene.render_still(W, H)
    vm = scene._vessel_mesh
    assert vm.mesh is not None and vm.mesh.GetNumberOfPolys() > 0  # type: ignore[attr-defined]
    assert vm.clip is None and vm.actor.GetProperty().GetBackfaceCulling() == 1
    pts = vm.points_lps()
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    scene.set_crop_box_lps((lo[0], hi[0], lo[1], hi[1], lo[2], (lo[2] + hi[2]) / 2.0))
    assert vm.clip is not None and vm.actor.GetProperty().GetBackfaceCulling() == 0
    scene.set_crop_box_lps(None)
    assert vm.clip is None and vm.actor.GetProperty().GetBackfaceCulling() == 1
