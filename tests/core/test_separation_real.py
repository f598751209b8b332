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


def _block_mean(hu: np.ndarray, spacing, f: tuple[int, int, int]):  # type: ignore[no-untyped-def]
    """``hu`` averaged over blocks of ``f`` = (z, y, x) voxels (as a coarser
    reconstruction of the same scan would be), with its spacing."""
    fz, fy, fx = f
    nz, ny, nx = (n // k * k for n, k in zip(hu.shape, f, strict=True))
    a = hu[:nz, :ny, :nx].astype(np.float32).reshape(nz // fz, fz, ny // fy, fy, nx // fx, fx).mean(axis=(1, 3, 5))
    return np.round(a).astype(np.int16), (spacing[0] * fx, spacing[1] * fy, spacing[2] * fz)


@pytest.mark.parametrize("f", [(1, 2, 2), (2, 2, 2), (1, 3, 3), "stride"], ids=["2x2x1", "2x2x2", "3x3x1", "every-2nd"])
def test_non_contrast_chest_at_coarse_pixels_is_not_painted_red(f) -> None:  # type: ignore[no-untyped-def]
    """The real chest without contrast at 2-3 mm pixels. Until the homogeneous-share and
    thin-tube tests of the contrast check, its vertebral bodies (cancellous bone that
    the averaging smooths to 240-340 HU) were taken for a lumen and 6-21 % of its dense
    voxels were painted red (docs/separation.md)."""
    vol = _load("ct-chest-noncontrast")
    if f == "stride":
        hu, spacing = np.ascontiguousarray(vol.hu[::2, ::2, ::2]), tuple(2.0 * s for s in vol.spacing_mm)
    else:
        hu, spacing = _block_mean(vol.hu, vol.spacing_mm, f)
    m = class_masks(hu, spacing, 650.0, WINDOW, real_ct=True)
    dense = hu >= 150
    assert m.contrast is False, m.message
    assert "no contrast" in m.message and "thin opacified tube" in m.message
    red = m.vessel | (m.uncertain if m.uncertain is not None else False)
    assert red[dense].mean() <= 0.03
    assert m.bone[dense].mean() >= 0.9


@pytest.mark.parametrize("f", [(2, 2, 2), (1, 2, 2), (3, 1, 1)], ids=["3mm", "3x3x1.5", "1.5x1.5x4.5"])
def test_coarse_cta_keeps_its_contrast(f) -> None:  # type: ignore[no-untyped-def]
    """The real CTA averaged to coarser voxels is still a CTA (its aorta is a
    homogeneous lumen piece through many slices)."""
    vol = _load("cta-aorta-nifti/ct_cropped.nii.gz")
    hu, spacing = _block_mean(vol.hu, vol.spacing_mm, f)
    m = class_masks(hu, spacing, 650.0, WINDOW, real_ct=True)
    assert m.contrast is True, m.message
    assert "ml of opacified lumen" in m.message


def test_the_user_can_overrule_the_contrast_check() -> None:
    """The real chest without contrast at every second voxel: the check says no
    contrast; "yes" set by hand draws the window outside bone as vessel and says what
    the check alone found; "no" set by hand gives the automatic masks."""
    vol = _load("ct-chest-noncontrast")
    hu = np.ascontiguousarray(vol.hu[::2, ::2, ::2])
    spacing = tuple(2.0 * s for s in vol.spacing_mm)
    auto = class_masks(hu, spacing, 650.0, WINDOW, real_ct=True)
    no = class_masks(hu, spacing, 650.0, WINDOW, real_ct=True, contrast=False)
    yes = class_masks(hu, spacing, 650.0, WINDOW, real_ct=True, contrast=True)
    assert not auto.contrast_forced and no.contrast_forced and yes.contrast_forced
    assert auto.contrast is False and no.contrast is False and yes.contrast is True
    assert "set by hand" in no.message and "would say no contrast" in no.message
    assert "set by hand" in yes.message and "would say no contrast" in yes.message
    assert np.array_equal(auto.bone, no.bone) and auto.vessel is not None and no.vessel is not None
    assert not auto.vessel.any() and not no.vessel.any()
    assert yes.vessel is not None and yes.vessel.any()


def test_lumen_tubes_take_a_thin_tube_not_a_plate_or_a_blob() -> None:
    """:func:`lumen_tubes` on a made scene at 1 mm: an opacified tube 3 mm across and
    60 mm long in soft tissue is found with its length; a plate of the same HU and
    thickness (a scapula blade) and a smooth blob (cancellous bone) are not."""
    from viewer.core.separation import lumen_tubes

    z, y, x = np.mgrid[0:80, 0:60, 0:120]
    hu = np.full(z.shape, 40, np.int16)
    tube = ((y - 30) ** 2 + (x - 20) ** 2 <= 2) & (z >= 10) & (z < 70)
    plate = (np.abs(x - 60) <= 1) & (y >= 10) & (y < 50) & (z >= 10) & (z < 70)
    blob = (z - 40) ** 2 + (y - 30) ** 2 + (x - 100) ** 2 <= 100
    for m in (tube, plate, blob):
        hu[m] = 320
    cand = hu >= 230
    mm, idx = lumen_tubes(hu, (1.0, 1.0, 1.0), cand, 40.0)
    assert 55.0 <= mm <= 62.0
    found = np.zeros(hu.shape, bool)
    found.reshape(-1)[idx] = True
    assert found[tube].mean() >= 0.5  # its centre and most of its cross-section
    assert not (found & (plate | blob)).any()
    # without the tube: nothing as long as an artery
    hu[tube] = 40
    mm2, _ = lumen_tubes(hu, (1.0, 1.0, 1.0), hu >= 230, 40.0)
    assert mm2 < 25.0


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


def test_sparse_components_match_volume_labelling() -> None:
    """:func:`sparse_components` (scattered voxels joined as a graph) gives the pieces
    ``cc3d`` gives for the same voxels in a volume, 26-connected, edges included."""
    import cc3d

    from viewer.core.separation import sparse_components

    rng = np.random.default_rng(3)
    mask = rng.random((20, 30, 40)) > 0.93
    mask[:, :, 0] = mask[:, :, -1] = True  # runs along both x faces: no wrap-around joins
    idx = np.flatnonzero(mask)
    got = sparse_components(idx, mask.shape)
    ref = cc3d.connected_components(mask, connectivity=26).reshape(-1)[idx]
    # the same partition: each piece of one is one piece of the other
    pairs = set(zip(got.tolist(), ref.tolist(), strict=True))
    assert len(pairs) == len(set(got.tolist())) == len(set(ref.tolist()))
