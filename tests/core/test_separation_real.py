"""The separation on real CT (issue 8): scans nobody here made, in ../shared/data.

Non-contrast scans must not be painted red; the real chest CTA's aorta must be vessel
and not bone; TotalSegmentator's bone labels must land in the bone class. Figures and
the reasons behind each step: docs/separation.md; benchmark: benchmarks/bench_separation.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from viewer.core.errors import ViewerError
from viewer.core.extraction import class_masks
from viewer.core.separation import LABELS, dilate6, separate

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
WINDOW = (170.0, 600.0)


def _need(rel: str) -> Path:
    p = DATA / rel
    if not p.exists():
        pytest.skip(f"real scan {p} not available (../shared/data is absent)")
    return p


def _load(rel: str):
    from viewer.io import load_volume

    return load_volume(_need(rel))


@pytest.mark.parametrize("rel", ["ct-chest-noncontrast", "totalseg-abdomen-3mm/ct.nii.gz", "ct-head-gantry-tilt"])
def test_non_contrast_scan_is_not_painted_red(rel: str) -> None:
    vol = _load(rel)
    m = class_masks(vol.hu, vol.spacing_mm, 650.0, WINDOW, real_ct=True)
    dense = vol.hu >= 150
    vessel = m.vessel | (m.uncertain if m.uncertain is not None else False)
    assert m.contrast is False, m.message
    assert "no contrast" in m.message
    assert vessel[dense].mean() <= 0.03
    # and the dense voxels went to bone, not nowhere
    assert m.bone[dense].mean() >= 0.75


def test_the_user_can_say_no_contrast_where_the_check_is_wrong() -> None:
    """The real chest without contrast at every second voxel (1.95 x 1.95 x 4 mm): the
    contrast check takes its vertebral bodies for a lumen (a known miss,
    docs/separation.md), so bone is painted red; the user's "no" empties the vessel
    class and the skeleton is bone."""
    vol = _load("ct-chest-noncontrast")
    hu = np.ascontiguousarray(vol.hu[::2, ::2, ::2])
    spacing = tuple(2.0 * s for s in vol.spacing_mm)
    dense = hu >= 150
    auto = class_masks(hu, spacing, 650.0, WINDOW, real_ct=True)
    said = class_masks(hu, spacing, 650.0, WINDOW, real_ct=True, contrast=False)
    assert not auto.contrast_forced and said.contrast_forced
    # the automatic verdict at these pixels says where to overrule it
    assert auto.contrast and "set Contrast to no" in auto.message
    assert said.contrast is False
    assert "set by hand" in said.message and "no contrast" in said.message
    red = said.vessel | (said.uncertain if said.uncertain is not None else False)
    assert red[dense].sum() == 0
    assert said.bone[dense].mean() >= 0.9
    # what the check alone says is still told (here: a lumen it should not have found)
    assert "would say contrast" in said.message


def test_the_user_can_say_contrast_and_the_vessels_stay() -> None:
    """ "yes" on the real CTA gives the detected separation; "no" hides its vessels."""
    vol = _load("cta-aorta-nifti/ct_cropped.nii.gz")
    auto = class_masks(vol.hu, vol.spacing_mm, 650.0, WINDOW, real_ct=True)
    yes = class_masks(vol.hu, vol.spacing_mm, 650.0, WINDOW, real_ct=True, contrast=True)
    no = class_masks(vol.hu, vol.spacing_mm, 650.0, WINDOW, real_ct=True, contrast=False)
    assert auto.contrast and yes.contrast and no.contrast is False
    assert auto.vessel is not None and yes.vessel is not None and no.vessel is not None
    assert np.array_equal(auto.vessel, yes.vessel) and np.array_equal(auto.bone, yes.bone)
    assert auto.vessel.sum() > 10_000 and no.vessel.sum() == 0


def test_chest_ct_couch_is_removed_and_skeleton_is_bone() -> None:
    vol = _load("ct-chest-noncontrast")
    s = separate(vol.hu, vol.spacing_mm, WINDOW, 650.0)
    # The couch: the dense curve below the patient (rows 440-512 of this scan).
    couch = np.zeros(vol.hu.shape, bool)
    couch[:, 440:, :] = True
    couch &= vol.hu > -300
    assert couch.sum() > 1000
    assert (s.labels[couch] == LABELS["removed"]).mean() >= 0.95
    s_keep = separate(vol.hu, vol.spacing_mm, WINDOW, 650.0, remove_table=False)
    assert (s_keep.labels == LABELS["removed"]).sum() == 0


def test_totalsegmentator_bone_labels_are_bone() -> None:
    from viewer.io.volume_files import read_nifti

    vol = _load("totalseg-abdomen-3mm/ct.nii.gz")
    d = DATA / "totalseg-abdomen-3mm"
    lab = read_nifti(d / "labels.nii.gz").data
    names = {int(k): v for k, v in json.loads((d / "labels.json").read_text())["labels"].items()}
    ids = [k for k, v in names.items() if v.startswith(("vertebrae", "rib_", "sternum"))]
    ref = np.isin(lab, ids) & (vol.hu >= 150)
    m = class_masks(vol.hu, vol.spacing_mm, 650.0, WINDOW, real_ct=True)
    assert ref.sum() > 1000
    assert m.bone[ref].mean() >= 0.90


def test_chest_cta_aorta_is_vessel_not_bone() -> None:
    from viewer.io.volume_files import read_nifti

    vol = _load("cta-aorta-nifti/ct_cropped.nii.gz")
    ao = read_nifti(DATA / "cta-aorta-nifti/aorta.nii.gz").data > 0
    m = class_masks(vol.hu, vol.spacing_mm, 650.0, WINDOW, real_ct=True)
    assert m.contrast is True
    vessel = m.vessel | (m.uncertain if m.uncertain is not None else False)
    w = ao & (vol.hu >= WINDOW[0])
    # Of the aorta voxels a threshold transfer function can show at all (>= the window's
    # low end; the mask also holds wall and fat at 12-170 HU), vessel and not bone.
    # Issue 8's targets: 95 % / 1 % (measured 95.1 % / 0.7 %, docs/separation.md).
    assert vessel[w].mean() >= 0.95
    assert m.bone[w].mean() <= 0.01
    # The vertebral column (its voxel box in this crop, the aorta and 2 voxels around it
    # left out): mostly bone now. Issue 8's target, <= 5 % painted vessel; measured 4.7 %
    # (6.1 % before the shell test reached vertebral bodies 6 steps from the bone, 6.7 %
    # before the hollow rib segments, 10.5 % before the loose-cortex pieces, 13.8 % before
    # the thin cortex was judged near the bone only, 34.9 % before the thin-cortex rule,
    # 74 % before the dim-cortex rule). 2 016 of the red voxels left lie next to the
    # contrast-filled structure in the box's front rows (y 85-90), not bone.
    spine = np.zeros(vol.hu.shape, bool)
    spine[:, 85:126, 25:62] = True
    grown = ao.copy()
    for _ in range(2):
        grown = dilate6(grown)
    vert = spine & (vol.hu >= 150) & ~grown
    assert vessel[vert].mean() <= 0.05
    assert m.bone[vert].mean() >= 0.85
    # The lateral chest wall (this crop's x 100-120, slices 90-163): its rib segments at
    # 1.5 mm are rings of cortex blur in the vessel window, cut off from the bone class
    # and touching it at one end; the hollow rule takes them (dense voxels painted
    # vessel 55.4 % before it, 12.5 % with it: what stays red is mostly vessels).
    wall = np.zeros(vol.hu.shape, bool)
    wall[90:164, :, 100:120] = True
    wall &= vol.hu >= 150
    assert vessel[wall].mean() <= 0.2
    # Its calcified wall is calcification, not bone.
    assert m.calcification is not None and m.calcification[ao & (vol.hu >= 800)].mean() >= 0.8
    # The undiluted contrast in the superior vena cava and right atrium (800-2000 HU, a
    # 63 ml piece in this crop's front right: y 18-80, x 0-67, slices 48-163) is a
    # contrast pool, not bone (it was: 185 ml of the bone class with what it enclosed);
    # the sternum in front of it (y 0-25) stays bone.
    pool = np.zeros(vol.hu.shape, bool)
    pool[48:164, 30:80, 0:60] = True
    dense = vol.hu >= 800
    assert m.bone[pool & dense].mean() <= 0.05
    sternum = np.zeros(vol.hu.shape, bool)
    sternum[79:126, 0:25, 37:58] = True
    assert m.bone[sternum & dense].mean() >= 0.9


def test_contrast_pool_is_found_and_a_bone_beside_it_is_not() -> None:
    """:func:`contrast_pools` on a made scene: a dense blob (900 HU) bathed in contrast
    (the vessel class all round it) is a pool; a dense tube with soft tissue round it,
    a few voxels away, is not, and keeps its part of the bone class."""
    from viewer.core.separation import contrast_pools

    hu = np.full((40, 60, 60), 40, np.int16)
    vessel = np.zeros(hu.shape, bool)
    hu[5:35, 10:40, 10:40] = 400  # an atrium of contrast
    vessel[5:35, 10:40, 10:40] = True
    hu[8:32, 15:35, 15:35] = 900  # its undiluted core, 9.6 ml
    vessel[8:32, 15:35, 15:35] = False
    bone = hu >= 900
    hu[:, 46:58, 46:58] = 1200  # a bone beside it (5.8 ml), in soft tissue
    bone |= hu >= 1200
    got = contrast_pools(hu, (1.0, 1.0, 1.0), bone, vessel, 650.0)
    assert got is not None
    box, region = got
    pool_full = np.zeros(hu.shape, bool)
    pool_full[box] = region
    assert pool_full[8:32, 15:35, 15:35].all()
    assert not pool_full[:, 46:58, 46:58].any()
    # without the contrast round it, the blob is bone
    assert contrast_pools(hu, (1.0, 1.0, 1.0), bone, np.zeros_like(vessel), 650.0) is None


@pytest.mark.parametrize(
    "hu",
    [
        np.zeros((1, 8, 8), np.int16),
        np.full((4, 16, 16), -1000, np.int16),
        np.full((4, 16, 16), 300, np.int16),
        np.linspace(-1000, 2000, 4 * 16 * 16, dtype=np.float32).reshape(4, 16, 16),
    ],
    ids=["one-slice", "all-air", "all-one-value", "float"],
)
def test_odd_volumes_give_an_answer_not_a_traceback(hu: np.ndarray) -> None:
    s = separate(hu, (1.0, 1.0, 1.0), WINDOW, 650.0)
    assert s.labels.shape == hu.shape
    assert isinstance(s.message, str) and s.message


@pytest.mark.parametrize("spacing", [(0.0, 1.0, 1.0), (1.0, -1.0, 1.0), (1.0, 1.0, 1e6), (np.nan, 1, 1)])
def test_bad_spacing_is_a_clear_error(spacing) -> None:
    with pytest.raises(ViewerError, match="spacing"):
        separate(np.zeros((4, 8, 8), np.int16), spacing, WINDOW, 650.0)


def test_nan_input_is_a_clear_error() -> None:
    a = np.zeros((4, 8, 8), np.float32)
    a[1, 2, 3] = np.nan
    with pytest.raises(ViewerError, match="finite"):
        separate(a, (1, 1, 1), WINDOW, 650.0)


def test_fine_pixel_cta_keeps_its_aorta_with_the_textured_candidates() -> None:
    """The textured-cancellous candidates run at fine pixels only; the real CTA is 1.5 mm,
    so it is checked at 0.75 mm pixels (each voxel split in four in-plane): its aorta
    beside the spine must stay vessel (with a smoothed-HU gradient limit of 30 HU per
    voxel instead of 20, 9.6 % of it went to bone)."""
    from viewer.core import separation as S
    from viewer.io.volume_files import read_nifti

    vol = _load("cta-aorta-nifti/ct_cropped.nii.gz")
    ao = read_nifti(_need("cta-aorta-nifti/aorta.nii.gz")).data > 0

    def split(a: np.ndarray) -> np.ndarray:
        return np.repeat(np.repeat(a, 2, axis=1), 2, axis=2)

    hu, aorta = split(vol.hu), split(ao)
    sx, sy, sz = vol.spacing_mm
    assert min(sx, sy) / 2 < S.COARSE_VOXEL_MM  # (the rule runs)
    m = class_masks(hu, (sx / 2, sy / 2, sz), 650.0, WINDOW, real_ct=True)
    w = aorta & (hu >= WINDOW[0])
    vessel = m.vessel | (m.uncertain if m.uncertain is not None else False)
    assert vessel[w].mean() >= 0.94
    assert m.bone[w].mean() <= 0.01
