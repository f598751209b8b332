"""The real-CT separation on the confounder phantom (issue 8): both legs on a couch,
plaques, paired veins, nutrient arteries, low-density bone ends touching the arteries,
correlated noise. Exact labels say what is right.

The bounds are what the method reaches today (docs/separation.md), below the issue's
targets where it misses them (bone Dice 0.97, artery+collateral Dice 0.93, collateral
recall 0.95, nutrient recall 0.8): a regression makes these fail, and so does the
classic separation (bone Dice 0.69, artery Dice 0.08 on this phantom).
"""

from __future__ import annotations

import numpy as np
import pytest

from viewer.core.extraction import class_masks
from viewer.core.metrics import dice, recall

WINDOW = (170.0, 600.0)


@pytest.fixture(scope="module")
def default_phantom():  # type: ignore[no-untyped-def]
    from viewer.phantom import generate
    from viewer.phantom.generator import LEGEND

    ph = generate("default")
    v = ph.volume
    m = class_masks(v.hu, v.spacing_mm, 650.0, WINDOW, real_ct=True)
    return ph, np.asarray(ph.labels), dict(LEGEND), m


def _vessel(m) -> np.ndarray:  # type: ignore[no-untyped-def]
    return m.vessel | (m.uncertain if m.uncertain is not None else False)


def test_bone_object_covers_cortex_cancellous_ends_and_the_other_leg(default_phantom) -> None:  # type: ignore[no-untyped-def]
    ph, lab, L, m = default_phantom
    truth = np.isin(lab, [L["bone"], L["marrow"], L["trabecular"], L["other_bone"]])
    assert m.contrast is True
    # The bone class as exported: without the faint partial-volume layer (under a fifth
    # of the local bone contrast) that the drawn bone keeps. Issue 8's target, met:
    # 0.974 (the drawn bone, a voxel fatter, 0.965).
    core = m.bone_core(ph.volume.hu)
    assert dice(core, truth) >= 0.97
    assert dice(m.bone, truth) >= 0.95
    assert not (core & ~m.bone).any()
    # The 150-400 HU ends under a cortex that never reaches the seed threshold.
    assert core[lab == L["trabecular"]].mean() >= 0.95


def test_the_bone_edge_is_the_faint_outer_layer_only() -> None:
    """:func:`bone_edge` on a blurred slab of cortex: the outer voxels under a fifth of
    the contrast go, the brighter ones and everything inside stay; a one-voxel-thin
    plate whose voxels are its own brightest is kept whole."""
    from viewer.core.separation import bone_edge

    hu = np.full((8, 12, 12), 40, np.int16)
    hu[:, 3:9, 3:9] = 1400  # cortex block
    hu[:, 2, 3:9] = 200  # faint partial-volume row (12 % of the contrast)
    hu[:, 9, 3:9] = 700  # bright partial-volume row (48 %)
    bone = hu > 100
    edge = bone_edge(hu, bone, 40.0)
    assert edge[:, 2, 3:9].all()
    assert not edge[:, 9, 3:9].any() and not edge[:, 3:9, 3:9].any()
    assert not (edge & ~bone).any()
    plate = np.full((8, 12, 12), 40, np.int16)
    plate[:, 5, 2:10] = 260  # a thin rib at coarse voxels: faint, but its own maximum
    assert not bone_edge(plate, plate > 100, 40.0).any()


def test_arteries_are_vessel_and_not_swallowed_by_bone(default_phantom) -> None:  # type: ignore[no-untyped-def]
    ph, lab, L, m = default_phantom
    v = _vessel(m)
    arteries = np.isin(lab, [L["artery"], L["collateral"], L["nutrient"], L["other_artery"]])
    # 0.784 before the lumen reach and the thin-vessel halo trim (lumen_trim), 0.894 after,
    # 0.909 with the arteries carved out of the ankle's cancellous part (bone_side_lumen).
    assert dice(v, arteries) >= 0.90
    # (0.903 before bone_side_lumen, 0.942 with it)
    assert recall(v, lab == L["artery"]) >= 0.93
    assert recall(v, lab == L["collateral"]) >= 0.85
    # The paired veins (100-170 HU) whose noise crosses the window's low end: 8.9 %
    # painted before the lumen reach, 0.7 % after.
    assert v[lab == L["vein"]].mean() <= 0.03
    # Arteries lying on the low-density bone ends: at most a few percent go to bone
    # (5.8 % before bone_side_lumen, 2.0 % with it: the rest are edge voxels).
    assert m.bone[lab == L["artery"]].mean() <= 0.03


def test_plaques_are_calcification_not_bone(default_phantom) -> None:  # type: ignore[no-untyped-def]
    ph, lab, L, m = default_phantom
    plaque = lab == L["plaque"]
    assert m.bone[plaque].mean() <= 0.05
    assert m.calcification is not None and m.calcification[plaque].mean() >= 0.7


def test_couch_is_in_no_visible_class(default_phantom) -> None:  # type: ignore[no-untyped-def]
    ph, lab, L, m = default_phantom
    table = lab == L["table"]
    visible = m.bone | _vessel(m) | (m.calcification if m.calcification is not None else False)
    assert np.count_nonzero(table & visible) == 0
    assert m.removed is not None and m.removed[table & (ph.volume.hu >= 150)].all()


def test_nutrient_arteries_reach_the_cortex(default_phantom) -> None:  # type: ignore[no-untyped-def]
    ph, lab, L, m = default_phantom
    v = _vessel(m)
    vol = ph.volume
    found = 0
    for e in ph.landmarks["nutrient_entry_lps"]:
        i, j, k = np.rint(vol.ijk_of_lps(np.asarray([e], float))[0]).astype(int)
        r = [int(np.ceil(2.0 / s)) for s in vol.spacing_mm]
        if v[k - r[2] : k + r[2] + 1, j - r[1] : j + r[1] + 1, i - r[0] : i + r[0] + 1].any():
            found += 1
    assert found >= 2, found


def test_lumen_trim_drops_vein_noise_and_thin_halo_not_lumen() -> None:
    """Synthetic: a 4 mm artery at 400 HU with a 170-190 HU fringe two voxels out (its
    halo), and next to it a 140 HU vein whose noisy voxels at 175 HU join the vessel
    class. The vein's voxels and the artery's halo go, the lumen stays."""
    from viewer.core.separation import lumen_trim

    shape = (20, 40, 40)
    hu = np.full(shape, 40, np.int16)
    zz, yy, xx = np.indices(shape)
    r = np.hypot(yy - 15, xx - 15)
    lumen = r <= 2.5
    hu[lumen] = 400
    halo = (r > 2.5) & (r <= 3.5)
    hu[halo] = 180
    vein = np.hypot(yy - 15, xx - 25) <= 2.5
    hu[vein & ((zz + yy + xx) % 3 == 0)] = 175
    vessel = hu >= 170
    found = lumen_trim(hu, (0.7, 0.7, 1.0), vessel, 45.0)
    assert found is not None
    drop = np.zeros(shape, bool)
    drop[found[0]] = found[1]
    assert not (drop & lumen).any()
    assert drop[halo].mean() >= 0.9
    far_vein = vein & vessel & (np.hypot(yy - 15, xx - 25) <= 1.5)
    assert far_vein.any() and drop[far_vein].all()


def test_bone_side_lumen_carves_an_artery_out_of_a_cancellous_part() -> None:
    """Synthetic: a 250 HU cancellous block with a 450 HU cortex (both in the window), a
    3 x 3 voxel artery at 380 HU lying on its face that the part swallowed over 30 slices
    and that leaves it as vessel in the last 10, and a bump of cancellous bone at 300 HU
    on another face that touches no vessel. The artery comes back, the block and the
    bump stay bone, and so does the 450 HU cortex (brighter than the lumen's top, 420)."""
    from viewer.core.separation import bone_side_lumen

    shape = (40, 48, 48)
    hu = np.full(shape, 40, np.int16)
    block = np.zeros(shape, bool)
    block[:, 12:40, 8:40] = True
    hu[block] = 250
    inner = np.zeros(shape, bool)
    inner[:, 14:38, 10:38] = True
    hu[block & ~inner] = 450
    artery = np.zeros(shape, bool)
    artery[:, 9:12, 22:25] = True
    hu[artery] = 380
    bump = np.zeros(shape, bool)
    bump[:, 20:23, 40:43] = True
    hu[bump] = 300
    part = block | bump | artery
    part[30:] &= ~artery[30:]
    vessel = np.zeros(shape, bool)
    vessel[30:] = artery[30:]
    found = bone_side_lumen(hu, (0.7, 0.7, 1.0), part, part.copy(), vessel, np.zeros(shape, bool), 420.0)
    assert found is not None
    back = np.zeros(shape, bool)
    back[found[0]] = found[1]
    # 8 of its 9 voxels a slice: the diamond's tip covers the middle of the row on the
    # bone, and the one-step edge growth takes back only what touches the carved tube.
    assert back[artery & part].mean() >= 0.85
    assert not (back & (block | bump)).any()


def test_loose_cortex_pieces_take_textured_blobs_on_bone_not_lumen_or_lines() -> None:
    """Synthetic, 1.5 mm voxels: a bone slab with three vessel-class pieces lying on it,
    cut off from each other: a textured 6 x 6 x 6 blob (a rib head's cortex: 200 / 500 HU
    checkerboard) goes to bone; a homogeneous 6 x 6 x 6 blob at 400 HU (a lumen) and a
    textured 2 x 2 x 30 line (a small artery at 1.5 mm) stay vessel."""
    from viewer.core.separation import loose_cortex_pieces

    shape = (40, 40, 60)
    hu = np.full(shape, 40, np.int16)
    bone = np.zeros(shape, bool)
    bone[:, 30:36, :] = True
    hu[bone] = 800
    zz, yy, xx = np.indices(shape)
    checker = np.where((zz + yy + xx) % 2 == 0, 200, 500).astype(np.int16)
    blob = np.zeros(shape, bool)
    blob[5:11, 24:30, 5:11] = True
    hu[blob] = checker[blob]
    lumen = np.zeros(shape, bool)
    lumen[5:11, 24:30, 25:31] = True
    hu[lumen] = 400
    line = np.zeros(shape, bool)
    line[5:35, 28:30, 45:47] = True
    hu[line] = checker[line]
    vessel = blob | lumen | line
    out = loose_cortex_pieces(hu, (1.5, 1.5, 1.5), vessel, bone, 20.0)
    assert out[blob].all()
    assert not (out & (lumen | line)).any()


def test_loose_cortex_pieces_take_hollow_rib_segments_far_along_the_bone() -> None:
    """Synthetic, 1.5 mm voxels: tubes 44 voxels long running away from a bone slab,
    each touching it at one end only (so most of each lies far from it, and each is a
    line). A textured ring around marrow (a rib at 1.5 mm: 200 / 500 HU cortex blur
    round 120 HU) goes to bone; a solid textured tube of the same size, a homogeneous
    ring at 400 HU round a dark core (a lumen) and a textured ring that does not touch
    the bone stay vessel."""
    from viewer.core.separation import loose_cortex_pieces

    shape = (40, 48, 60)
    hu = np.full(shape, 40, np.int16)
    bone = np.zeros(shape, bool)
    bone[:, :, :6] = True
    hu[bone] = 800
    zz, yy, xx = np.indices(shape)
    checker = np.where((zz + yy + xx) % 2 == 0, 200, 500).astype(np.int16)

    def tube(z0: int, y0: int, x0: int, hollow: bool, wall: int = 2) -> tuple[np.ndarray, np.ndarray]:
        outer = np.zeros(shape, bool)
        outer[z0 : z0 + 3 + 2 * wall, y0 : y0 + 3 + 2 * wall, x0:50] = True
        inner = np.zeros(shape, bool)
        if hollow:
            inner[z0 + wall : z0 + wall + 3, y0 + wall : y0 + wall + 3, x0:50] = True
        return outer & ~inner, inner

    rib, marrow = tube(4, 4, 6, True)
    solid, _ = tube(20, 4, 6, False)
    # (a lumen's wall of contrast three voxels thick: its middle layer is homogeneous)
    lumen, lumen_inside = tube(4, 24, 6, True, wall=3)
    loose_ring, loose_inside = tube(22, 26, 9, True)
    for piece, value in ((rib, checker), (solid, checker), (loose_ring, checker)):
        hu[piece] = value[piece]
    hu[lumen] = 400
    hu[marrow | lumen_inside | loose_inside] = 120
    vessel = rib | solid | lumen | loose_ring
    out = loose_cortex_pieces(hu, (1.5, 1.5, 1.5), vessel, bone, 20.0)
    assert out[rib].all()
    assert not (out & (solid | lumen | loose_ring)).any()


@pytest.mark.parametrize("clean", [True, False])
def test_arteries_survive_at_coarse_voxels(clean: bool) -> None:
    """The small phantom (1.5 x 1.5 x 1.75 mm, as a coarse run-off CTA): the leg's
    arteries stay vessel. Before the coarse-voxel cortex rules (thin_cortex_pieces,
    lumen_trim) the recall was 0.87 (clean) / 0.89 (confounders), main arteries 0.94 /
    0.95; with them as first committed it fell to 0.00 / 0.04: every artery of the
    limb became bone or was trimmed (seen by tests/render/test_scene.py too)."""
    from viewer.phantom import generate
    from viewer.phantom.generator import LEGEND

    ph = generate("small", clean=clean)
    v, lab, L = ph.volume, np.asarray(ph.labels), dict(LEGEND)
    m = class_masks(v.hu, v.spacing_mm, 650.0, WINDOW, real_ct=True)
    vessel = _vessel(m)
    names = ["artery", "collateral"] + ([] if clean else ["nutrient", "other_artery"])
    arteries = np.isin(lab, [L[n] for n in names])
    assert recall(vessel, lab == L["artery"]) >= 0.85, "main arteries lost at 1.5 mm voxels"
    assert recall(vessel, arteries) >= 0.75, "arteries lost at 1.5 mm voxels"


def test_line_pieces_tell_a_vessel_from_a_cortex_plate() -> None:
    """A thin piece lying on bone is kept as vessel when it is a line (a 3 x 3 voxel
    tube 40 voxels long) and not when it is a plate (40 x 40 x 2)."""
    from viewer.core.separation import _line_pieces

    lab = np.zeros((50, 50, 50), np.uint32)
    lab[5:45, 10:13, 10:13] = 1
    lab[5:45, 20:60, 30:32] = 2
    lines = _line_pieces(lab, np.array([False, True, True]), (1.75, 1.5, 1.5))
    assert lines.tolist() == [False, True, False]


def test_textured_cancellous_bone_is_bone_not_vessel() -> None:
    """The default phantom with a real-like trabecular texture in its cancellous bone
    (``textured_bone``: its voxels straddle the window's low end): the knee and ankle
    ends stay bone and the arteries vessel. Without the textured candidates of
    ``thick_cancellous`` this phantom measured bone Dice 0.855, artery+collateral Dice
    0.189 and trabecular voxels in bone 0.599; without the width limit of
    ``bone_side_lumen``'s carved tubes 0.973, 0.835 and 0.985 (the rough surface of
    both legs' ankle ends carved out as sheets of "lumen", 7 000 voxels shown as
    uncertain; docs/separation.md)."""
    from viewer.phantom import generate
    from viewer.phantom.generator import LEGEND

    ph = generate("default", textured_bone=True)
    v, lab, L = ph.volume, np.asarray(ph.labels), dict(LEGEND)
    m = class_masks(v.hu, v.spacing_mm, 650.0, WINDOW, real_ct=True)
    vessel = _vessel(m)
    bone_truth = np.isin(lab, [L[n] for n in ("bone", "marrow", "trabecular", "other_bone")])
    arteries = np.isin(lab, [L[n] for n in ("artery", "collateral", "nutrient", "other_artery")])
    assert m.contrast
    assert recall(m.bone_core(v.hu), lab == L["trabecular"]) >= 0.95
    assert dice(m.bone_core(v.hu), bone_truth) >= 0.95
    assert dice(vessel, arteries) >= 0.88
    # the other leg's ankle end is not drawn red
    assert vessel[lab == L["other_bone"]].sum() < 600


def test_textured_candidates_take_a_textured_block_not_a_lumen_ring() -> None:
    """A block of textured cancellous bone (mean 220 HU, voxels 40-400 HU) is taken
    inside; the partial-volume ring around a bright lumen (a 450 HU rod in 40 HU
    tissue), whose smoothed HU is in the window too, is not."""
    from viewer.core.separation import textured_candidates

    rng = np.random.default_rng(1)
    hu = np.full((40, 60, 60), 40, dtype=np.int16)
    hu[5:35, 5:25, 5:25] = np.clip(rng.normal(220, 90, (30, 20, 20)), 40, 400).astype(np.int16)
    zz, yy, xx = np.mgrid[0:40, 0:60, 0:60]
    rod = (yy - 40) ** 2 + (xx - 40) ** 2 <= 16
    hu[rod] = 450
    body = np.ones(hu.shape, bool)
    none = np.zeros(hu.shape, bool)
    out = textured_candidates(hu, 170.0, 600.0, body, none, none)
    inside = np.zeros(hu.shape, bool)
    inside[10:30, 10:20, 10:20] = True
    assert out[inside].mean() >= 0.9
    assert (hu[inside] < 170).mean() > 0.2  # (the block straddles the window's low end)
    ring = ((yy - 40) ** 2 + (xx - 40) ** 2 > 16) & ((yy - 40) ** 2 + (xx - 40) ** 2 <= 49) & (zz > 4) & (zz < 35)
    assert out[ring].mean() <= 0.05
