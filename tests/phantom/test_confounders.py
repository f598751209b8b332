"""The default phantom's confounders (issue 8): what makes a naive threshold method fail
on it as on real run-off CTA. Each new label is present with the HU promised; the couch
is under the legs and touches nothing but skin; the other leg is inside the field of
view; plaques sit on arterial walls with the lumen open past them; nutrient arteries
cross the tibial cortex into the marrow; low-density cancellous bone touches the
popliteal artery; the noise is spatially correlated.

Checks of small structures use noise-free crops at the default resolution (0.7 mm) or
finer, rendered by ``render_region`` with the same rules as ``generate``.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from viewer.phantom import LEGEND, SIZES, generate
from viewer.phantom import anatomy as A
from viewer.phantom import generator as G
from viewer.phantom.generator import _build_scene, _ct_noise, _landmarks, render_region

NEW = ("table", "plaque", "vein", "nutrient", "trabecular", "other_bone", "other_artery")
BODY = [v for n, v in LEGEND.items() if n not in ("background", "table")]


@pytest.fixture(scope="module")
def scene():
    return _build_scene(0, False)


@pytest.fixture(scope="module")
def landmarks(scene):
    return _landmarks(scene)


def _crop(centre, half_mm, step=0.7, z_step=None):
    """Noise-free render of a box around ``centre`` (LPS mm)."""
    c = np.asarray(centre, dtype=float)
    hx, hy, hz = (half_mm, half_mm, half_mm) if np.isscalar(half_mm) else half_mm
    x = np.arange(c[0] - hx, c[0] + hx, step)
    y = np.arange(c[1] - hy, c[1] + hy, step)
    z = np.arange(c[2] - hz, c[2] + hz, z_step or step)
    hu, lab = render_region(0, x, y, z)
    return x, y, z, hu, lab


def _lps(vol, mask):
    k, j, i = np.nonzero(mask)
    return vol.lps_of_ijk(np.stack([i, j, k], axis=1).astype(np.float64))


def test_every_new_label_present(small_phantom) -> None:
    counts = {n: int((small_phantom.labels == LEGEND[n]).sum()) for n in NEW}
    assert all(c > 0 for c in counts.values()), counts
    assert set(np.unique(small_phantom.labels)) == set(LEGEND.values())


def test_new_labels_hu_as_promised(small_phantom, scene) -> None:
    """HU of each new class as documented in LEGEND_HU (before blur: the model; after:
    the voxels of noise-free 0.7 mm crops)."""
    # couch: thin dense skins 300-600 HU around a foam core, mattress -100..0
    x = np.arange(-100.0, 145.0, 0.7)
    y = np.arange(70.0, 121.0, 0.7)
    hu, lab = render_region(0, x, y, np.array([-700.0, -699.0, -698.0]))
    table = lab == LEGEND["table"]
    assert table.any()
    assert 300 <= hu[table].max() <= 600
    assert np.median(hu[table]) < -700  # mostly foam
    pad_y = scene.table.top_y(x) + 0.5 * A.TABLE_PAD_MM  # the middle of the mattress
    j = np.rint((pad_y - y[0]) / 0.7).astype(int)
    pad_hu = hu[1, j, np.arange(len(x))]
    assert -100 <= np.median(pad_hu) <= 0
    # cancellous bone of the knee: 150-400 HU (away from its edges)
    lm = _landmarks(scene)
    c = np.array([A.LEG_AXIS_XY_MM[0] - 3.0, A.LEG_AXIS_XY_MM[1] - 6.0, -510.0])
    *_, hu, lab = _crop(c, (30.0, 20.0, 8.0), z_step=1.0)
    core = ndi.binary_erosion(lab == LEGEND["trabecular"], iterations=2)
    assert core.sum() > 1000
    assert 150 <= np.percentile(hu[core], 1) and np.percentile(hu[core], 99) <= 400
    # the thin cortex of the ends, blurred, stays well below a 650 HU bone threshold
    assert np.percentile(hu[lab == LEGEND["bone"]], 99) < 600
    assert hu[lab == LEGEND["bone"]].max() < 650
    # deep veins: 120-200 HU; calf, posterior tibial and peroneal veins
    z0 = -700.0
    vein_pts = np.concatenate([lm["centerlines_lps"][n] for n in lm["veins"]])
    vein_pts = vein_pts[np.abs(vein_pts[:, 2] - z0) < 3]
    *_, hu, lab = _crop((vein_pts[:, 0].mean(), vein_pts[:, 1].mean(), z0), (25.0, 25.0, 3.0))
    vcore = ndi.binary_erosion(lab == LEGEND["vein"], structure=np.ones((1, 3, 3)))
    assert vcore.sum() > 20
    assert 120 <= np.median(hu[vcore]) <= 200
    assert np.median(hu[vcore]) < np.median(hu[lab == LEGEND["artery"]]) - 100
    # plaques: 800-1500 HU before blur; their voxels reach >= 800 at 0.7 mm
    for p in scene.left.plaques + scene.right.plaques:
        assert 800 <= p.hu <= 1500
    p = scene.left.plaques[0]
    *_, hu, lab = _crop(p.centre_lps, 6.0)
    assert hu[lab == LEGEND["plaque"]].max() >= 800
    # the right leg's classes look like the left leg's
    hu_s, lab_s = small_phantom.volume.hu, small_phantom.labels
    med_a = np.median(hu_s[lab_s == LEGEND["artery"]])
    med_oa = np.median(hu_s[lab_s == LEGEND["other_artery"]])
    assert abs(med_a - med_oa) < 30
    assert np.percentile(hu_s[lab_s == LEGEND["other_bone"]], 95) > 1200  # its shaft cortex


def test_couch_under_both_legs_touching_only_skin(small_phantom, landmarks) -> None:
    ph = small_phantom
    vol, lab = ph.volume, ph.labels
    table = lab == LEGEND["table"]
    # it spans the whole field of view: every slice, every column
    assert table.any(axis=(1, 2)).all()
    assert table.any(axis=(0, 1)).all()
    # below (posterior of, +y) the legs in every column: j of the couch's top voxel
    # >= j of the lowest body voxel (the curved top rises towards the sides)
    body = np.isin(lab, BODY)
    j = np.arange(vol.shape[1])[None, :, None]
    top = np.where(table, j, 10**6).min(axis=(0, 1))
    bottom = np.where(body, j, -1).max(axis=(0, 1))
    assert np.all(top >= bottom)
    assert np.any(top - bottom <= 1)  # they rest on it
    # nothing but skin (and the fat under it, by partial volume) within 1.5 voxels;
    # bones, vessels and muscle far away
    near = ndi.binary_dilation(table, structure=np.ones((3, 3, 3)))
    touching = set(np.unique(lab[near & ~table]).tolist())
    assert touching <= {LEGEND["background"], LEGEND["skin"], LEGEND["fat"]}, touching
    assert LEGEND["skin"] in touching  # the legs rest on it
    sp = vol.spacing_mm
    dist = ndi.distance_transform_edt(~table, sampling=(sp[2], sp[1], sp[0]))
    for name in ("bone", "trabecular", "marrow", "artery", "vein", "plaque", "other_bone", "other_artery", "muscle"):
        m = lab == LEGEND[name]
        assert dist[m].min() > (5.0 if name == "muscle" else 15.0), name
    # the landmark: the mattress surface under the left leg, where the calf rests
    y_top = landmarks["table_top_y_mm"]
    skin_y = _lps(vol, lab == LEGEND["skin"])[:, 1].max()
    assert abs(y_top - skin_y) < 2.0


def test_other_leg_in_the_field_of_view(small_phantom, landmarks) -> None:
    ph = small_phantom
    vol, lab = ph.volume, ph.labels
    body = np.isin(lab, BODY)
    # fully inside: no body voxel on the field of view's edges
    assert not body[:, :, :2].any() and not body[:, :, -2:].any()
    assert not body[:, :2, :].any()
    # two legs with a gap of a few cm between them in every slice
    x = vol.lps_of_ijk(np.stack([np.arange(vol.shape[2]), np.zeros(vol.shape[2]), np.zeros(vol.shape[2])], axis=1))[
        :, 0
    ]
    cols = body.any(axis=1)  # (nz, nx)
    mx = landmarks["mirror_x_mm"]
    for k in range(vol.shape[0]):
        left = x[cols[k] & (x > mx)]
        right = x[cols[k] & (x < mx)]
        assert left.size and right.size
        gap = left.min() - right.max()
        assert 20.0 <= gap <= 80.0, (k, gap)
    # the right leg: its own bone and arteries, no lesion, about the mirror image
    right_bone = _lps(vol, lab == LEGEND["other_bone"])
    left_bone = _lps(vol, np.isin(lab, [LEGEND["bone"], LEGEND["trabecular"]]))
    assert right_bone[:, 0].max() < 0 < left_bone[:, 0].min()
    axis_r = np.asarray(landmarks["right_leg_axis_xy_mm"])
    assert axis_r[0] == pytest.approx(2 * mx - A.LEG_AXIS_XY_MM[0])
    assert abs(np.median(right_bone[:, 0]) - (2 * mx - np.median(left_bone[:, 0]))) < 4.0
    right_half = x < mx
    for name in ("artery", "collateral", "mass", "calcification", "nutrient", "trabecular", "bone"):
        assert not (lab[:, :, right_half] == LEGEND[name]).any(), name
    assert (lab[:, :, right_half] == LEGEND["vein"]).any() and (lab[:, :, right_half] == LEGEND["plaque"]).any()
    # its arteries follow the landmark centre lines
    pts = landmarks["right_centerlines_lps"]["posterior_tibial"]
    pts = pts[(pts[:, 2] > -850) & (pts[:, 2] < -550)]
    ijk = np.rint(vol.ijk_of_lps(pts)).astype(int)
    hits = lab[ijk[:, 2], ijk[:, 1], ijk[:, 0]] == LEGEND["other_artery"]
    assert hits.mean() > 0.9


def test_plaques_on_the_arterial_wall_lumen_open(scene, landmarks) -> None:
    """Each plaque touches its artery, reaches into the lumen by less than half its
    radius, and the lumen label stays connected past it (a method that calls every
    dense voxel bone cuts the vessel there)."""
    plaques = landmarks["plaques"]
    left = [p for p in plaques if p["leg"] == "left"]
    assert {p["vessel"] for p in left} == {"popliteal", "tibioperoneal_trunk", "posterior_tibial", "peroneal"}
    assert len(landmarks["plaque_centers_lps"]) == len(plaques) >= 6
    by_name = {v.name: v for v in scene.left.vessels}
    for p in left:
        assert 3.0 <= p["length_mm"] <= 6.0
        assert 0.0 < p["intrusion_mm"] < 0.5 * p["lumen_radius_mm"]
        c = np.asarray(p["centerline_point_lps"])
        x, y, z, hu, lab = _crop(c, 9.0)
        art = lab == LEGEND["artery"]
        pl = lab == LEGEND["plaque"]
        assert pl.sum() >= 10
        assert (ndi.binary_dilation(pl, structure=np.ones((3, 3, 3))) & art).sum() >= 10  # on the lumen
        v = by_name[p["vessel"]]
        k = int(np.argmin(np.linalg.norm(v.points_lps - c, axis=1)))
        before, after = v.points_lps[max(k - 5, 0)], v.points_lps[min(k + 5, len(v.points_lps) - 1)]
        comps, _ = ndi.label(art, structure=np.ones((3, 3, 3)))

        def comp_at(q, axes=(x, y, z), comps=comps):
            i, j, kk = (int(round((q[n] - a[0]) / 0.7)) for n, a in enumerate(axes))
            return comps[kk, j, i]

        assert comp_at(before) != 0 and comp_at(before) == comp_at(after), p["vessel"]
        # the lumen at the plaque's own level: artery voxels next to plaque voxels in
        # the plaque's cross-section
        n_axis = np.asarray(v.points_lps[min(k + 1, len(v.points_lps) - 1)] - v.points_lps[max(k - 1, 0)])
        n_axis /= np.linalg.norm(n_axis)
        Z, Y, X = np.meshgrid(z, y, x, indexing="ij")
        level = np.abs((X - c[0]) * n_axis[0] + (Y - c[1]) * n_axis[1] + (Z - c[2]) * n_axis[2]) < 0.5
        assert (art & level).sum() >= 3


def test_nutrient_arteries_cross_the_cortex(scene, landmarks) -> None:
    names = landmarks["nutrients"]
    entries = landmarks["nutrient_entry_lps"]
    assert 2 <= len(names) == len(entries) <= 4
    (lo, hi) = (np.asarray(v) for v in landmarks["eroded_bone_box_lps"])
    mass = scene.left.mass
    for name, e in zip(names, entries, strict=False):
        parent = landmarks["nutrient_parents"][name]
        assert parent == "posterior_tibial" or parent.startswith("collateral_")
        d = 2 * landmarks["vessel_radii_mm"][name]
        assert 0.8 - 1e-6 <= d.min() and d.max() <= 1.5 + 1e-6
        # the entry lies on the tibia's outer surface, near the erosion
        e = np.asarray(e)
        assert abs(A.bone_sd_points(e[None], mass)[0]) < 0.1
        assert lo[2] - 30 <= e[2] <= hi[2] + 30
        # its centre line starts outside the bone and ends in the marrow cavity
        p = landmarks["centerlines_lps"][name]
        sd = A.bone_sd_points(p, mass)
        cortex = A.slice_params(p[-1:, 2]).tibia[0, 4]
        assert sd[0] > 1.0 and sd[-1] < -(cortex + 0.5)
        # oblique: it runs distally through the cortex
        inside = p[sd < 0]
        assert inside[-1, 2] < inside[0, 2] - 2.0
        # in the voxels: one branch touching soft tissue, cortex and marrow
        *_, hu, lab = _crop(e, 12.0)
        nut = lab == LEGEND["nutrient"]
        comps, n = ndi.label(nut, structure=np.ones((3, 3, 3)))
        assert n >= 1
        big = comps == 1 + int(np.argmax(ndi.sum(nut, comps, range(1, n + 1))))
        ring = ndi.binary_dilation(big, structure=np.ones((3, 3, 3))) & ~big
        around = set(np.unique(lab[ring]).tolist())
        assert {LEGEND["bone"], LEGEND["marrow"]} <= around, (name, around)
        assert around & {LEGEND["muscle"], LEGEND["fat"]}, (name, around)
        assert np.median(hu[big & ~ndi.binary_dilation(lab == LEGEND["bone"])]) > 200  # contrast


def test_trabecular_bone_touches_the_popliteal_artery(scene, landmarks) -> None:
    """Low-density cancellous bone behind the tibial plateau within 1 mm of the
    popliteal artery's wall (a thin cortex between), and the same at the ankle for the
    posterior and anterior tibial arteries."""
    left = scene.left
    by_name = {v.name: v for v in left.vessels}
    for name, z_lo, z_hi in (
        ("popliteal", -540.0, -500.0),
        ("posterior_tibial", -884.0, -862.0),
        ("anterior_tibial", -884.0, -862.0),
    ):
        v = by_name[name]
        m = (v.points_lps[:, 2] >= z_lo) & (v.points_lps[:, 2] <= z_hi)
        p, r = v.points_lps[m], v.radii_mm[m]
        wall_to_bone = A.bone_sd_points(p, left.mass, left.bumps) - r
        cortex = A.slice_params(p[:, 2], realistic_ends=True).tibia[:, 4]
        wall_to_cancellous = wall_to_bone + cortex
        assert wall_to_bone.min() >= 0.0, name  # touching, not inside
        close = wall_to_cancellous <= 1.0
        assert close.sum() >= 15, (name, wall_to_cancellous.round(2))  # >= 15 mm of contact
        assert name in landmarks["bone_contact_z_mm"]
    # in the voxels (a 0.35 mm crop at the contact): cancellous bone of 150-400 HU next
    # to the popliteal lumen
    v = by_name["popliteal"]
    g = A.bone_sd_points(v.points_lps, left.mass, left.bumps) - v.radii_mm
    g[v.points_lps[:, 2] > -503] = np.inf
    c = v.points_lps[int(np.argmin(g))]
    step = 0.35
    x, y, z, hu, lab = _crop(c, 6.0, step=step)
    art = lab == LEGEND["artery"]
    trab = lab == LEGEND["trabecular"]
    dist = ndi.distance_transform_edt(~art, sampling=step)
    assert dist[trab].min() <= 1.1
    near = trab & (dist <= 2.0)
    assert near.sum() >= 20
    assert 150 <= np.median(hu[near]) <= 400


def test_veins_beside_their_arteries(scene, landmarks) -> None:
    veins = [v for v in scene.left.extra_vessels if v.kind == "vein"]
    assert {v.parent for v in veins} == {"popliteal", "posterior_tibial", "peroneal", "anterior_tibial"}
    for parent in ("posterior_tibial", "peroneal", "anterior_tibial"):
        assert sum(v.parent == parent for v in veins) == 2  # paired venae comitantes
    arteries = [v for v in scene.left.vessels if v.kind == "artery"]
    walls = A._WallDistance(arteries)
    for v in veins:
        d = 2 * v.radii_mm
        assert 3.0 - 1e-6 <= d.min() and d.max() <= 7.0 + 1e-6, v.name
        assert 120 <= v.meta["hu"] <= 200
        gap = walls.distance(v.points_lps) - v.radii_mm
        assert gap.min() > 0.2, v.name  # its own tube, not merged with an artery
        own = {a.name: a for a in arteries}[v.parent]
        near = A._dist_to_polyline(v.points_lps, own.points_lps) - v.radii_mm
        assert np.median(near) < 6.0, v.name  # it stays beside its artery
        assert (A.bone_sd_points(v.points_lps, scene.left.mass, scene.left.bumps) - v.radii_mm).min() > 0.0
    assert set(landmarks["veins"]) == {v.name for v in veins}


def test_noise_is_correlated_like_ct(small_phantom) -> None:
    """In uniform muscle the noise of neighbouring voxels correlates clearly (white
    noise: about 0), in-plane and along z; standard deviation 15-25 HU."""
    hu = small_phantom.volume.hu.astype(np.float64)
    lab = small_phantom.labels
    muscle = ndi.binary_erosion(lab == LEGEND["muscle"], iterations=3)
    n = hu - A.HU_MUSCLE

    def corr(axis: int) -> float:
        a = [slice(None)] * 3
        b = [slice(None)] * 3
        a[axis] = slice(1, None)
        b[axis] = slice(None, -1)
        m = muscle[tuple(a)] & muscle[tuple(b)]
        x, y = n[tuple(a)][m], n[tuple(b)][m]
        return float(np.corrcoef(x, y)[0, 1])

    cx, cy, cz = corr(2), corr(1), corr(0)
    assert cx > 0.4 and cy > 0.4, (cx, cy)
    assert cz > 0.2, cz
    assert 15 <= n[muscle].std() <= 25
    # the noise alone, in air: same texture everywhere
    air = ndi.binary_erosion(lab == LEGEND["background"], iterations=3)
    air &= hu > -1000  # away from the -1024 clip
    assert air.sum() > 1000
    clean = generate("small", clean=True)
    m2 = ndi.binary_erosion(clean.labels == LEGEND["muscle"], iterations=3)
    w = clean.volume.hu.astype(np.float64) - A.HU_MUSCLE
    mm = m2[:, :, 1:] & m2[:, :, :-1]
    assert abs(np.corrcoef(w[:, :, 1:][mm], w[:, :, :-1][mm])[0, 1]) < 0.1


def test_noise_and_volume_do_not_depend_on_the_slab_size(small_phantom, monkeypatch) -> None:
    nz, ny, nx = 60, 40, 50
    whole = _ct_noise(3, 0, nz, nz, ny, nx)
    parts = np.concatenate([_ct_noise(3, k, min(nz, k + 7), nz, ny, nx) for k in range(0, nz, 7)])
    assert np.allclose(whole, parts, atol=1e-3)
    spec = SIZES["small"]
    monkeypatch.setitem(G.SIZES, "small", G.PhantomSize("small", spec.shape, spec.spacing_mm, 23))
    again = generate("small")
    assert np.array_equal(again.labels, small_phantom.labels)
    assert np.array_equal(again.volume.hu, small_phantom.volume.hu)


def test_streak_between_the_tibiae() -> None:
    """A weak dark band joins the two tibiae (beam hardening); it changes HU, not labels."""
    scene = _build_scene(0, False)
    z = np.array([-700.0])
    x = np.arange(-100.0, 145.0, 1.0)
    y = np.arange(-30.0, 60.0, 1.0)
    out = np.zeros((1, len(y), len(x)), dtype=np.float32)
    G._add_streak(out, scene, x, y, z)
    assert -25 <= out.min() <= -5
    sp = A.slice_params(z)
    j = int(np.argmin(np.abs(y - sp.tibia[0, 1])))
    row = out[0, j]
    assert row[np.abs(x - A.MIRROR_X_MM) < 10].mean() < -5  # between the legs
    assert np.abs(out[0, np.abs(y - sp.tibia[0, 1]) > 15]).max() < 1.0  # a band, not a haze


@pytest.mark.parametrize("size", ["small", "default", "large"])
def test_every_size_holds_both_legs_and_the_couch(size: str) -> None:
    """From the model, without generating: the field of view of each size contains both
    legs (with a few mm of air at the sides) and the couch down to its bottom; large is
    a real-size 512 x 512 reconstruction with over 1000 slices."""
    spec, affine = G.phantom_grid(size)
    nz, ny, nx = spec.shape
    lo = affine[:3, 3]
    hi = lo + np.diag(affine[:3, :3]) * (np.array([nx, ny, nz]) - 1)
    z = np.linspace(lo[2], hi[2], 60)
    sp = A.slice_params(z)
    leg = sp.leg
    x_max = float((leg[:, 0] + leg[:, 2]).max())
    x_min = 2 * A.MIRROR_X_MM - x_max  # the right leg, mirrored
    assert lo[0] + 3 <= x_min and x_max <= hi[0] - 3
    assert lo[1] + 3 <= float((leg[:, 1] - leg[:, 3]).min())
    table = _build_scene(0, False).table
    assert float(table.bottom_y(A.MIRROR_X_MM)) <= hi[1] - 2
    assert hi[2] - lo[2] == pytest.approx(381, abs=3)  # ankle - 4 mm .. about the knee joint line
    if size == "large":
        assert (ny, nx) == (512, 512) and nz >= 1000
        assert 0.6 <= spec.spacing_mm[0] <= 0.75
    else:
        assert spec.spacing_mm == G.CLEAN_SIZES[size].spacing_mm  # voxel sizes kept


def test_textured_cancellous_bone_is_an_option_with_a_real_spread(small_phantom) -> None:
    """``textured_bone=True`` gives the cancellous bone a trabecular texture (real
    cancellous bone's local 3x3x3 spread: 70-160 HU at 1 mm; the default phantom's is
    the CT noise alone); the other tissues and the labels are those of the default."""
    tex = generate("small", textured_bone=True)
    assert tex.textured_bone and not small_phantom.textured_bone
    assert np.array_equal(tex.labels, small_phantom.labels)
    tr = tex.labels == LEGEND["trabecular"]
    inner = ndi.binary_erosion(tr, iterations=1)

    def local_sd(hu: np.ndarray) -> np.ndarray:
        h = hu.astype(np.float32)
        m = ndi.uniform_filter(h, 3)
        return np.sqrt(np.maximum(ndi.uniform_filter(h * h, 3) - m * m, 0.0))

    plain = float(np.median(local_sd(small_phantom.volume.hu)[inner]))
    textured = float(np.median(local_sd(tex.volume.hu)[inner]))
    assert textured >= 50.0 and textured >= 2.0 * plain, (plain, textured)
    # the texture has no mean of its own: the bone's level stays where it was
    assert abs(float(np.mean(tex.volume.hu[inner])) - float(np.mean(small_phantom.volume.hu[inner]))) < 15.0
    # away from the cancellous bone (the blur spreads the texture a few voxels) the
    # volumes are the same
    cancellous = np.isin(tex.labels, [LEGEND["trabecular"], LEGEND["marrow"], LEGEND["other_bone"]])
    far = (small_phantom.labels == LEGEND["muscle"]) & ~ndi.binary_dilation(cancellous, iterations=4)
    assert far.sum() > 10_000
    assert np.array_equal(tex.volume.hu[far], small_phantom.volume.hu[far])
