"""Lesion-centred planning (viewer.core.lesion): the lesion value object, its
validation against a scan, serialisation, and the analysis on the phantom and real CT."""

from __future__ import annotations

import numpy as np
import pytest

from viewer.core.errors import ViewerError
from viewer.core.lesion import (
    Branch,
    EntryPoint,
    Lesion,
    LesionAnalysis,
    distance_to_bone_mm,
    distance_to_lesion_mm,
    lesion_from_phantom,
    validate_lesion,
    write_lesion_tables,
)
from viewer.core.volume import Volume, axis_aligned_affine


def _volume(shape: tuple[int, int, int] = (20, 30, 40), spacing=(0.5, 0.5, 2.0), origin=(-10.0, -7.5, 100.0)) -> Volume:
    return Volume(np.zeros(shape, np.int16), spacing, axis_aligned_affine(spacing, origin))


def test_sphere_contains_and_region_mask_match_voxel_centres() -> None:
    vol = _volume()
    les = Lesion.sphere((0.0, 0.0, 118.0), 4.0)
    pts = np.array([[0.0, 0.0, 118.0], [4.0, 0.0, 118.0], [0.0, 0.0, 122.1], [3.0, 3.0, 118.0]])
    assert les.contains_lps(pts).tolist() == [True, True, False, False]
    mask = les.region_mask(vol)
    assert mask.shape == vol.shape and mask.dtype == bool
    k, j, i = np.nonzero(mask)
    lps = vol.lps_of_ijk(np.stack([i, j, k], axis=1))
    assert np.all(np.linalg.norm(lps - les.center_lps, axis=1) <= 4.0 + 1e-9)
    # every voxel centre inside the sphere is in the mask (brute force over the volume)
    kk, jj, ii = np.indices(vol.shape).reshape(3, -1)
    all_lps = vol.lps_of_ijk(np.stack([ii, jj, kk], axis=1))
    assert mask.sum() == int((np.linalg.norm(all_lps - les.center_lps, axis=1) <= 4.0).sum()) > 0


def test_box_lesion_centre_radius_and_mask() -> None:
    vol = _volume()
    les = Lesion.box((-2.0, 2.0, -1.0, 1.0, 110.0, 116.0))
    assert les.center_lps == (0.0, 0.0, 113.0)
    assert les.radius_mm == pytest.approx(np.linalg.norm([4.0, 2.0, 6.0]) / 2)
    assert les.contains_lps(np.array([[1.9, 0.9, 111.0], [2.1, 0.0, 113.0]])).tolist() == [True, False]
    mask = les.region_mask(vol)
    # x: -2..2 at 0.5 mm from -10 -> 9 columns; y: -1..1 -> 5 rows; z: 110..116 at 2 mm -> 4 slices
    assert mask.sum() == 9 * 5 * 4


def test_region_mask_oblique_and_feet_first_affine() -> None:
    direction = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, -1.0]])  # feet first
    vol = Volume(
        np.zeros((20, 30, 40), np.int16),
        (0.5, 0.5, 2.0),
        axis_aligned_affine((0.5, 0.5, 2.0), (-10, -7.5, 140), direction),
    )
    les = Lesion.sphere((0.0, 0.0, 118.0), 5.0)
    k, j, i = np.nonzero(les.region_mask(vol))
    lps = vol.lps_of_ijk(np.stack([i, j, k], axis=1))
    assert len(lps) > 0 and np.all(les.contains_lps(lps))


def test_validate_lesion_messages_name_the_values() -> None:
    vol = _volume()  # x -10..9.5, y -7.5..7, z 100..138 (voxel centres)
    validate_lesion(Lesion.sphere((0.0, 0.0, 118.0), 5.0), vol)
    with pytest.raises(ViewerError, match=r"outside the scan.*L -10\.2\.\.9\.8"):
        validate_lesion(Lesion.sphere((50.0, 0.0, 118.0), 5.0), vol)
    with pytest.raises(ViewerError, match="larger than the scan"):
        validate_lesion(Lesion.sphere((0.0, 0.0, 118.0), 500.0), vol)
    with pytest.raises(ViewerError, match="greater than 0 mm, got 0 mm"):
        Lesion.sphere((0.0, 0.0, 118.0), 0.0)
    with pytest.raises(ViewerError, match="finite"):
        Lesion.sphere((float("nan"), 0.0, 118.0), 3.0)
    with pytest.raises(ViewerError, match="finite"):
        Lesion.sphere((0.0, 0.0, 118.0), float("nan"))
    with pytest.raises(ViewerError, match="outside the scan"):
        validate_lesion(Lesion.box((100.0, 110.0, 0.0, 1.0, 110.0, 111.0)), vol)
    with pytest.raises(ViewerError, match="min < max.*on P"):
        Lesion.box((0.0, 1.0, 2.0, 1.0, 110.0, 111.0))


def test_to_dict_from_dict_round_trip_and_field_errors() -> None:
    for les in (Lesion.sphere((1.0, 2.0, 3.0), 4.5), Lesion.box((0.0, 1.0, 0.0, 2.0, 0.0, 3.0))):
        assert Lesion.from_dict(les.to_dict(), "s.json") == les
    with pytest.raises(ViewerError, match="s.json.*'radius_mm'"):
        Lesion.from_dict({"center_lps": [0, 0, 0]}, "s.json")
    with pytest.raises(ViewerError, match="s.json.*center_lps"):
        Lesion.from_dict({"center_lps": [0, 0], "radius_mm": 3}, "s.json")
    with pytest.raises(ViewerError, match="s.json.*radius_mm must be a number"):
        Lesion.from_dict({"center_lps": [0, 0, 0], "radius_mm": "big"}, "s.json")
    with pytest.raises(ViewerError, match="s.json.*box_lps"):
        Lesion.from_dict({"box_lps": [0, 1, 2]}, "s.json")
    with pytest.raises(ViewerError, match="s.json.*object"):
        Lesion.from_dict("lesion", "s.json")


def test_lesion_from_phantom_is_the_erosion_box(small_phantom) -> None:
    les = lesion_from_phantom(small_phantom.landmarks)
    lo, hi = small_phantom.landmarks["erosion_box_lps"]
    assert les.box_lps == (lo[0], hi[0], lo[1], hi[1], lo[2], hi[2])
    validate_lesion(les, small_phantom.volume)
    assert les.region_mask(small_phantom.volume).any()
    with pytest.raises(ViewerError, match="erosion_box_lps"):
        lesion_from_phantom({})


def test_distance_to_lesion_is_exact_and_zero_inside() -> None:
    vol = _volume()
    les = Lesion.sphere((0.0, 0.0, 118.0), 4.0)
    d = distance_to_lesion_mm(vol, les)
    assert d.dtype == np.float32 and d.shape == vol.shape
    assert np.all(d[les.region_mask(vol)] == 0)
    kk, jj, ii = np.indices(vol.shape).reshape(3, -1)
    lps = vol.lps_of_ijk(np.stack([ii, jj, kk], axis=1))
    want = np.maximum(np.linalg.norm(lps - les.center_lps, axis=1) - 4.0, 0.0)
    np.testing.assert_allclose(d.reshape(-1), want, atol=1e-4)
    box = Lesion.box((-2.0, 2.0, -1.0, 1.0, 110.0, 116.0))
    db = distance_to_lesion_mm(vol, box)
    k, j, i = 0, 0, 0  # voxel (-10, -7.5, 100): 8, 6.5, 10 mm outside on each axis
    assert db[k, j, i] == pytest.approx(np.linalg.norm([8.0, 6.5, 10.0]), abs=1e-4)


def test_distance_to_bone_uses_the_voxel_spacing() -> None:
    vol = _volume()
    bone = np.zeros(vol.shape, bool)
    bone[10, 15, 20] = True
    d = distance_to_bone_mm(vol, bone)
    assert d[10, 15, 20] == 0
    assert d[10, 15, 24] == pytest.approx(4 * 0.5)
    assert d[13, 15, 20] == pytest.approx(3 * 2.0)
    assert np.all(distance_to_bone_mm(vol, np.zeros(vol.shape, bool)) > 0)
    with pytest.raises(ViewerError, match="shape"):
        distance_to_bone_mm(vol, bone[1:])


def test_json_and_csv_tables(tmp_path) -> None:
    les = Lesion.sphere((1.0, 2.0, 3.0), 10.0)
    a = LesionAnalysis(
        lesion=les,
        entry_points=(EntryPoint(1, (1.0, 2.0, 4.0), 1.0, "posterior_tibial", 1.2),),
        branches=(Branch(1, 12.5, 2.1, np.zeros((5, 3)), True),),
        lumen_volume_ml=0.25,
        n_branches_crossing=1,
        message="",
    )
    d = a.to_json_dict()
    assert d["entry_points"][0]["lps_mm"] == [1.0, 2.0, 4.0]
    assert d["branches"][0] == {
        "number": 1,
        "length_mm": 12.5,
        "diameter_mm": 2.1,
        "crosses_radius": True,
        "n_points": 5,
    }
    assert d["lesion"] == les.to_dict() and d["n_branches_crossing"] == 1
    paths = write_lesion_tables(a, tmp_path / "report.csv")
    assert [p.name for p in paths] == ["report_entry_points.csv", "report_branches.csv"]
    rows = paths[0].read_text().splitlines()
    assert rows[0].startswith("number,L_mm,P_mm,S_mm") and rows[1] == "1,1.00,2.00,4.00,1.00,posterior_tibial,1.20"
    assert paths[1].read_text().splitlines()[1] == "1,12.50,2.10,1,5"
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ViewerError, match="cannot write the lesion tables"):
        write_lesion_tables(a, blocker / "sub" / "r.csv")
