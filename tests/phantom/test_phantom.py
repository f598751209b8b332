"""The lower-leg CTA phantom: determinism, anatomy, HU statistics, ground truth."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from viewer.core.errors import LoadCancelled, ViewerError
from viewer.phantom import CLEAN_LEGEND, CLEAN_SIZES, LEGEND, SIZES, generate
from viewer.phantom import anatomy as A
from viewer.phantom.generator import _build_model, _build_scene, _landmarks, render_region

REQUIRED = ("background", "skin", "fat", "muscle", "bone", "marrow", "artery", "collateral", "calcification", "mass")
NEW = ("table", "plaque", "vein", "nutrient", "trabecular", "other_bone", "other_artery")


def _lps_of_voxels(vol, mask: np.ndarray) -> np.ndarray:
    k, j, i = np.nonzero(mask)
    return vol.lps_of_ijk(np.stack([i, j, k], axis=1).astype(np.float64))


@pytest.fixture(scope="module")
def erosion_crop():
    """Noise-free default-resolution (0.7 x 0.7 x 1 mm) render of the erosion box."""
    lm = _landmarks(_build_scene(0, False))
    lo, hi = (np.asarray(v) for v in lm["erosion_box_lps"])
    x = np.arange(lo[0] - 3, hi[0] + 3, 0.7)
    y = np.arange(lo[1] - 3, hi[1] + 3, 0.7)
    z = np.arange(lo[2] - 3, hi[2] + 3, 1.0)
    hu, lab = render_region(0, x, y, z)
    return x, y, z, hu, lab, lm


def test_shapes_types_and_geometry(small_phantom) -> None:
    ph = small_phantom
    vol = ph.volume
    assert vol.hu.dtype == np.int16 and ph.labels.dtype == np.uint8
    assert ph.labels.shape == vol.shape == SIZES["small"].shape
    assert vol.spacing_mm == SIZES["small"].spacing_mm
    # head-first axial: i -> +x (left), j -> +y (posterior), k -> +z (superior)
    d = vol.direction
    assert np.allclose(d, np.eye(3))
    lo, hi = vol.bounds_lps()
    assert hi[2] - lo[2] == pytest.approx(380, abs=2)  # knee to ankle
    # the LEFT leg (the lesion's) lies at positive x (patient's left), the right leg
    # at negative x; the field of view holds both
    left = np.isin(
        ph.labels, [LEGEND["bone"], LEGEND["trabecular"], LEGEND["artery"], LEGEND["collateral"], LEGEND["mass"]]
    )
    right = np.isin(ph.labels, [LEGEND["other_bone"], LEGEND["other_artery"]])
    assert _lps_of_voxels(vol, left)[:, 0].min() > 0
    assert _lps_of_voxels(vol, right)[:, 0].max() < 0
    for name in REQUIRED + NEW:
        assert name in ph.legend
    assert {n: ph.legend[n] for n in REQUIRED} == {n: i for i, n in enumerate(REQUIRED)}
    assert [ph.legend[n] for n in NEW] == list(range(10, 17))
    assert len(set(ph.legend.values())) == len(ph.legend)


def test_clean_phantom_is_the_old_one() -> None:
    """``clean=True``: one leg at positive x, labels 0-9 only, the old grid."""
    ph = generate("small", clean=True)
    assert ph.clean and dict(ph.legend) == dict(CLEAN_LEGEND)
    assert set(np.unique(ph.labels)) == set(range(10))
    assert ph.labels.shape == CLEAN_SIZES["small"].shape == (218, 96, 96)
    lo, _ = ph.volume.bounds_lps()
    assert lo[0] > 0
    assert "table_top_y_mm" not in ph.landmarks and "erosion_box_lps" in ph.landmarks
    # the lesion and its landmarks are the same in both phantoms
    ph_default = _landmarks(_build_scene(0, False))
    for key in ("erosion_box_lps", "eroded_bone_box_lps", "mass_center_lps", "mass_radius_mm", "leg_axis_xy_mm"):
        assert np.allclose(np.asarray(ph.landmarks[key], dtype=float), np.asarray(ph_default[key], dtype=float)), key
    for name in ph.landmarks["arteries"] + ph.landmarks["collaterals"]:
        assert np.array_equal(ph.landmarks["centerlines_lps"][name], ph_default["centerlines_lps"][name])
    # white noise of 10-20 HU in the clean one
    muscle = ndi.binary_erosion(ph.labels == LEGEND["muscle"], iterations=2)
    assert 10 <= ph.volume.hu[muscle].std() <= 20


def test_deterministic_for_a_seed(small_phantom) -> None:
    again = generate("small", seed=0)
    assert np.array_equal(again.volume.hu, small_phantom.volume.hu)
    assert np.array_equal(again.labels, small_phantom.labels)
    assert np.allclose(again.volume.ijk_to_lps, small_phantom.volume.ijk_to_lps)
    other = generate("small", seed=1)
    assert not np.array_equal(other.volume.hu, small_phantom.volume.hu)
    # the seed moves small details only: the label volumes agree almost everywhere
    assert np.mean(other.labels == small_phantom.labels) > 0.99


def test_every_label_present_with_plausible_hu(small_phantom) -> None:
    ph = small_phantom
    hu, lab = ph.volume.hu, ph.labels
    counts = {n: int((lab == v).sum()) for n, v in ph.legend.items()}
    assert all(counts[n] > 0 for n in REQUIRED), counts
    med = {n: float(np.median(hu[lab == v])) for n, v in ph.legend.items() if counts[n]}
    # even at 1.5 mm (partial volume with neighbours) the bulk of each class is right
    assert med["background"] < -950
    assert -130 <= med["fat"] <= -70
    assert 40 <= med["muscle"] <= 60
    assert med["artery"] > 200
    assert 0 <= med["mass"] <= 45
    assert 250 <= med["calcification"] <= 800
    assert med["bone"] > 300


def test_hu_ranges_at_default_resolution(erosion_crop) -> None:
    """Class medians in the issue's ranges, measured away from partial-volume edges
    (each class eroded by one voxel) on a noise-free 0.7 mm render."""
    *_, hu, lab, _ = erosion_crop
    ranges = {
        "fat": (-120, -80),
        "muscle": (40, 60),
        "mass": (10, 30),
        "calcification": (300, 800),
        "artery": (300, 450),
    }
    for name, (lo, hi) in ranges.items():
        core = ndi.binary_erosion(lab == LEGEND[name]) if name not in ("calcification",) else lab == LEGEND[name]
        assert core.any(), name
        med = float(np.median(hu[core]))
        assert lo <= med <= hi, (name, med)
    # cortical bone: the densest part of the bone label, mid-shaft
    bone = hu[lab == LEGEND["bone"]]
    assert 1200 <= np.percentile(bone, 75) <= 1800
    # fatty marrow of the diaphysis
    marrow = hu[ndi.binary_erosion(lab == LEGEND["marrow"])]
    assert -110 <= np.median(marrow) <= -30


def test_skin_layer_hu() -> None:
    """Skin (about 0-60 HU): sample a default-resolution column through the anterior
    skin over the shin, where fat is thin."""
    z = np.array([A.z_of_t(0.5) - 1, A.z_of_t(0.5), A.z_of_t(0.5) + 1])
    x = A.LEG_AXIS_XY_MM[0] + np.arange(-40.0, 40.0, 0.35)
    y = A.LEG_AXIS_XY_MM[1] + np.arange(-60.0, 70.0, 0.35)
    hu, lab = render_region(0, x, y, z)
    skin = ndi.binary_erosion(lab == LEGEND["skin"], structure=np.ones((1, 3, 3)))
    assert skin.sum() > 50
    assert 0 <= np.median(hu[skin]) <= 60


def test_noise_sigma_in_muscle(small_phantom) -> None:
    ph = small_phantom
    muscle = ndi.binary_erosion(ph.labels == LEGEND["muscle"], iterations=2)
    vals = ph.volume.hu[muscle].astype(np.float64)
    # muscle is uniform 50 HU before noise: its spread is the noise (CT-like, 15-25 HU)
    assert 15 <= vals.std() <= 25
    assert abs(np.mean(vals) - A.HU_MUSCLE) < 3


def test_middle_third_of_both_bones_eroded(small_phantom) -> None:
    ph = small_phantom
    vol, lab = ph.volume, ph.labels
    # the left leg's bone (the right leg's marrow shares label 5: count x > 0 only)
    left_half = (
        vol.lps_of_ijk(np.stack([np.arange(vol.shape[2]), np.zeros(vol.shape[2]), np.zeros(vol.shape[2])], axis=1))[
            :, 0
        ]
        > 0
    )
    bone = np.isin(lab, [LEGEND["bone"], LEGEND["marrow"], LEGEND["trabecular"]]) & left_half[None, None, :]
    bone_area = bone.sum(axis=(1, 2)) * vol.spacing_mm[0] * vol.spacing_mm[1]
    z = vol.lps_of_ijk(np.stack([np.zeros(vol.shape[0]), np.zeros(vol.shape[0]), np.arange(vol.shape[0])], axis=1))[
        :, 2
    ]
    (x0, y0, z0), (x1, y1, z1) = ph.landmarks["eroded_bone_box_lps"]
    t0, t1 = A.t_of_z(z0), A.t_of_z(z1)
    # the erosion lies in the middle third of the leg
    assert 0.25 <= t0 and t1 <= 0.75 and (t0 + t1) / 2 == pytest.approx(0.5, abs=0.05)
    centre = (z0 + z1) / 2
    in_mid = np.abs(z - centre) < 15
    above = (z > z1 + 10) & (z < z1 + 30)
    below = (z < z0 - 10) & (z > z0 - 30)
    mid = bone_area[in_mid].mean()
    assert mid < 0.85 * bone_area[above].mean(), (mid, bone_area[above].mean())
    # (the shaft below is slender: 0.87 leaves room for the edge voxels of a 1.5 mm grid)
    assert mid < 0.87 * bone_area[below].mean(), (mid, bone_area[below].mean())
    # both bones lose bone to the mass
    ev = ph.landmarks["eroded_volume_mm3"]
    assert ev["tibia"] > 1000 and ev["fibula"] > 500


def test_mass_in_anterolateral_compartment(small_phantom) -> None:
    ph = small_phantom
    c = np.asarray(ph.landmarks["mass_center_lps"])
    sp = A.slice_params(np.array([c[2]]))
    tibia = sp.tibia[0, :2]
    fibula = sp.fibula[0, :2]
    # anterior = -y: in front of the fibula; lateral for a left leg = +x: beside the tibia
    assert c[0] > tibia[0] + 10
    assert c[1] < fibula[1] - 5
    # the voxels agree with the landmark
    pts = _lps_of_voxels(ph.volume, (ph.labels == LEGEND["mass"]) | (ph.labels == LEGEND["calcification"]))
    assert np.linalg.norm(pts.mean(axis=0) - c) < 4.0
    assert 8 < ph.landmarks["mass_radius_mm"] < 30
    # the rim wraps the liquid contents: calcification surrounds the mass label
    mass = ph.labels == LEGEND["mass"]
    shell = ndi.binary_dilation(mass, iterations=2) & ~mass
    assert np.mean(np.isin(ph.labels[shell], [LEGEND["calcification"], LEGEND["bone"], LEGEND["muscle"]])) > 0.95
    assert np.mean(ph.labels[shell] == LEGEND["calcification"]) > 0.5


def test_arteries_and_collaterals_in_the_model(small_phantom) -> None:
    lm = small_phantom.landmarks
    for name in ("popliteal", "anterior_tibial", "tibioperoneal_trunk", "posterior_tibial", "peroneal"):
        assert name in lm["arteries"]
        d = 2 * lm["vessel_radii_mm"][name]
        assert 2.0 <= d.min() and d.max() <= 6.0, name
    cols = lm["collaterals"]
    assert len(cols) >= 12
    lo, hi = (np.asarray(v) for v in lm["erosion_box_lps"])
    for name in cols:
        d = 2 * lm["vessel_radii_mm"][name]
        assert 0.8 - 1e-6 <= d.min() and d.max() <= 2.0 + 1e-6, (name, d.min(), d.max())
        assert lm["collateral_parents"][name] in ("posterior_tibial", "peroneal")
        p = lm["centerlines_lps"][name]
        assert np.all((p >= lo - 1e-6) & (p <= hi + 1e-6))
    # they wind around the eroded bone: angle swept around the nearest bone axis
    model = _build_model(0)
    swept = []
    for v in model.vessels:
        if v.kind != "collateral":
            continue
        sp = A.slice_params(v.points_lps[:, 2])
        cen = sp.tibia[:, :2] if v.meta["bone"] == "tibia" else sp.fibula[:, :2]
        ang = np.unwrap(np.arctan2(v.points_lps[:, 1] - cen[:, 1], v.points_lps[:, 0] - cen[:, 0]))
        swept.append(np.degrees(np.ptp(ang)))
    assert sum(s >= 60 for s in swept) >= 12, swept


def test_collateral_clearance_from_bone(small_phantom) -> None:
    """Most collaterals keep >= 1 mm of tissue from bone and mass; a few (periosteal)
    hug the cortex; none runs inside bone."""
    model = _build_model(0)
    gaps = []
    for v in model.vessels:
        if v.kind != "collateral":
            continue
        arc = np.concatenate([[0], np.cumsum(np.linalg.norm(np.diff(v.points_lps, axis=0), axis=1))])
        mid = (arc > 6) & (arc < arc[-1] - 6)  # away from where it leaves / joins an artery
        p, r = v.points_lps[mid], v.radii_mm[mid]
        gap = A.bone_sd_points(p, model.mass) - r
        gaps.append(float(gap.min()))
    gaps = np.array(gaps)
    assert np.all(gaps > 0.2), gaps
    assert np.sum(gaps >= 1.0) >= 10, gaps
    assert np.sum(gaps < 0.7) >= 2, gaps  # hugging the bone


def test_collateral_branches_in_the_voxels(erosion_crop) -> None:
    """At 0.7 mm the collateral label forms >= 12 branches of 0.8-2 mm calibre, all in
    the erosion box, and most with >= 1 voxel of tissue between them and bone."""
    x, y, z, hu, lab, lm = erosion_crop
    col = lab == LEGEND["collateral"]
    comps, n = ndi.label(col, structure=np.ones((3, 3, 3)))
    sizes = ndi.sum(col, comps, index=np.arange(1, n + 1))
    big = [i + 1 for i, s in enumerate(sizes) if s >= 20]
    assert len(big) >= 12, sorted(sizes)
    # calibre from the distance transform (mm): twice the largest inscribed radius,
    # plus half a voxel for the centre voxel's own extent
    edt = ndi.distance_transform_edt(col, sampling=(1.0, 0.7, 0.7))
    diam = np.array([2 * edt[comps == c].max() for c in big])
    assert np.all((diam >= 0.6) & (diam <= 3.0)), diam
    # HU of the collateral voxels: contrast, clearly above muscle
    assert np.median(hu[col]) > 200
    # clearance: distance from each branch to the nearest bone voxel
    bone = (lab == LEGEND["bone"]) | (lab == LEGEND["marrow"])
    dist_to_bone = ndi.distance_transform_edt(~bone, sampling=(1.0, 0.7, 0.7))
    clear = [dist_to_bone[comps == c].min() for c in big]
    assert sum(d > 1.0 for d in clear) >= 8, clear


def test_labels_consistent_with_hu(small_phantom) -> None:
    """Label = dominant tissue before blur: the classes' median HU keep their order."""
    hu, lab = small_phantom.volume.hu, small_phantom.labels
    med = {n: np.median(hu[lab == v]) for n, v in LEGEND.items()}
    assert med["background"] < med["fat"] < med["muscle"] < med["vein"] < med["artery"] < med["plaque"]
    assert med["mass"] < med["muscle"] + 5 < med["calcification"]
    assert med["table"] < med["fat"]  # mostly foam core
    # a soft-tissue voxel as dense as cortex can only be a partial-volume voxel at the
    # edge of a bone, the calcified rim or a plaque, never one in the open
    soft = np.isin(lab, [LEGEND["fat"], LEGEND["muscle"], LEGEND["skin"]])
    dense = np.isin(
        lab, [LEGEND["bone"], LEGEND["calcification"], LEGEND["plaque"], LEGEND["other_bone"], LEGEND["nutrient"]]
    )
    near = ndi.binary_dilation(dense, structure=np.ones((3, 3, 3)))
    assert np.sum(soft & (hu > 500) & ~near) == 0
    # and a voxel labelled cortex-dense bone is never as dark as fat
    assert np.mean(hu[lab == LEGEND["bone"]] < -50) < 0.01


def test_feet_first_same_anatomy(small_phantom) -> None:
    ff = generate("small", feet_first=True)
    hf = small_phantom
    assert np.array_equal(ff.volume.hu, hf.volume.hu[::-1])
    assert np.array_equal(ff.labels, hf.labels[::-1])
    assert ff.volume.ijk_to_lps[2, 2] < 0
    nz = hf.volume.shape[0]
    # voxel (i, j, k) head-first is voxel (i, j, nz-1-k) feet-first, at the same LPS point
    p_hf = hf.volume.lps_of_ijk((10, 20, 5))
    p_ff = ff.volume.lps_of_ijk((10, 20, nz - 1 - 5))
    assert np.allclose(p_hf, p_ff)
    assert ff.volume.metadata["patient_position"] == "FFS"


def test_progress_and_cancel() -> None:
    seen: list[float] = []
    generate("small", progress=lambda f, m: seen.append(f))
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)

    def cancel(frac: float, msg: str) -> None:
        if frac > 0.3:
            raise LoadCancelled()

    with pytest.raises(LoadCancelled):
        generate("small", progress=cancel)


def test_unknown_size_is_a_clear_error() -> None:
    with pytest.raises(ViewerError, match="unknown phantom size"):
        generate("huge")
