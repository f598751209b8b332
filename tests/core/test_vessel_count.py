"""Counting vessels near a point, on the phantom whose collaterals wrap the bone defect."""

from __future__ import annotations

import numpy as np
import pytest

from viewer.core.errors import ViewerError
from viewer.core.extraction import class_masks
from viewer.core.vessel_count import count_vessels_near
from viewer.core.volume import Volume, axis_aligned_affine

WINDOW = (170.0, 600.0)


@pytest.fixture(scope="module")
def leg():  # type: ignore[no-untyped-def]
    from viewer.phantom import generate

    # The clean phantom: this tests the counting (three arteries at the ankle, the
    # collaterals around the defect); the confounder phantom adds paired veins whose
    # noisy 150-175 HU reach into the vessel window.
    ph = generate("small", clean=True)
    v = ph.volume
    return ph, class_masks(v.hu, v.spacing_mm, 650.0, WINDOW, real_ct=True)


def test_more_vessels_around_the_erosion_than_at_the_ankle(leg) -> None:  # type: ignore[no-untyped-def]
    ph, masks = leg
    lo, hi = (np.asarray(p) for p in ph.landmarks["erosion_box_lps"])
    centre = (lo + hi) / 2
    near = count_vessels_near(ph.volume, tuple(centre), 40.0, WINDOW, masks)
    b0, _ = ph.volume.bounds_lps()
    ankle = count_vessels_near(ph.volume, (centre[0], centre[1], b0[2] + 40.0), 40.0, WINDOW, masks)
    # Three main arteries at the ankle; the collaterals add profiles around the defect.
    assert 2 <= ankle.max_profiles <= 4
    assert near.max_profiles >= ankle.max_profiles + 3
    assert near.volume_mm3 > 0 and near.n_segments >= 1
    assert len(near.profiles_per_slice) > 10
    assert "vessels cut by one axial slice" in near.summary()


def test_bone_and_calcification_masks_are_not_counted(leg) -> None:  # type: ignore[no-untyped-def]
    ph, masks = leg
    c = tuple(float(v) for v in ph.landmarks["mass_center_lps"])
    with_masks = count_vessels_near(ph.volume, c, 30.0, WINDOW, masks)
    without = count_vessels_near(ph.volume, c, 30.0, WINDOW, None)
    # The calcified rim and bone rims fall in the window: without masks they count.
    assert without.volume_mm3 > 3 * with_masks.volume_mm3


def test_exact_count_on_a_synthetic_volume() -> None:
    hu = np.zeros((20, 40, 40), np.int16)
    hu[:, 10:12, 10:12] = 300  # vessel 1 along z
    hu[:, 25:27, 20:22] = 300  # vessel 2 along z
    hu[:, 30:32, 35:37] = 300  # vessel 3, outside the radius below
    vol = Volume(hu, (1.0, 1.0, 1.0), axis_aligned_affine((1.0, 1.0, 1.0)))
    r = count_vessels_near(vol, (16.0, 18.0, 10.0), 12.0, WINDOW)
    assert r.n_segments == 2 and r.max_profiles == 2
    # A sphere outside the scan: nothing, no error.
    assert count_vessels_near(vol, (500.0, 500.0, 500.0), 5.0, WINDOW).n_segments == 0
    with pytest.raises(ViewerError):
        count_vessels_near(vol, (0.0, 0.0, 0.0), 0.0, WINDOW)
    with pytest.raises(ViewerError):
        count_vessels_near(vol, (0.0, 0.0, 0.0), 5.0, (600.0, 100.0))
