"""Accuracy of the bone / vessel separation against the phantom's exact ground truth.

Targets (issue 3): bone Dice >= 0.95, vessel Dice >= 0.90, collateral-branch recall
>= 0.90, at most 2 % of bone-surface voxels labelled vessel -- asserted at the phantom's
DEFAULT size (0.7 mm voxels); the small size (1.5 mm) gets looser, stated bounds. What "truth" means here
(docs/transfer-functions.md, "Accuracy"):

* bone truth = mineralised bone ∪ marrow: the bone mask fills the marrow cavity on
  purpose (marrow's fat and trabecular bone sit inside the vessel window), so a surgeon
  sees a solid bone and no red inside it. The Dice is taken on the mask *before* its
  one-voxel safety dilation (``dilation_voxels=0``): the dilation deliberately grows
  the mask over the partial-volume rim, outside the truth, to keep it out of the
  vessel class; the dilated (rendered) mask is held to the same bound;
* vessel truth = artery ∪ collateral labels; the calcified rim of the mass is not a
  vessel, and vessel voxels on it count as false positives (the calcification class
  keeps it out: ``Extraction.calcification``, compared with the rim's label);
* bone surface = truth bone boundary voxels and their 1-voxel outside neighbourhood,
  minus true vessel voxels (a vessel lying on the bone is rightly red).
"""

from __future__ import annotations

import numpy as np
import pytest

from viewer import phantom
from viewer.core.extraction import bone_mask, extract
from viewer.core.metrics import component_recall, dice, recall, surface_contamination
from viewer.core.presets import default_preset_name, list_presets
from viewer.core.thresholds import suggest_thresholds


def _legend(ph) -> dict[str, list[int]]:
    """Label values by lower-case name, from the phantom's legend (name->value or
    value->name; values may be ints or objects with .value / ['value'])."""
    out: dict[str, list[int]] = {}
    for k, v in dict(ph.legend).items():
        if isinstance(k, str):
            name, val = k, v
        else:
            name, val = v, k
        if not isinstance(name, str):
            name = getattr(name, "name", str(name))
        if not isinstance(val, (int, np.integer)):
            val = getattr(val, "value", val["value"] if isinstance(val, dict) else val)
        out.setdefault(name.lower(), []).append(int(val))
    return out


def _select(
    labels: np.ndarray, legend: dict[str, list[int]], *, has: tuple[str, ...], not_has: tuple[str, ...] = ()
) -> np.ndarray:
    vals = [
        v
        for name, vs in legend.items()
        for v in vs
        if any(h in name for h in has) and not any(n in name for n in not_has)
    ]
    return np.isin(labels, vals)


def _truth(ph) -> dict[str, np.ndarray]:
    leg = _legend(ph)
    lab = np.asarray(ph.labels)
    truth = {
        "bone": _select(lab, leg, has=("bone", "cortex", "cortical", "tibia", "fibula"), not_has=("marrow",)),
        "marrow": _select(lab, leg, has=("marrow",)),
        "artery": _select(lab, leg, has=("arter",), not_has=("collateral",)),
        "collateral": _select(lab, leg, has=("collateral",)),
        "rim": _select(lab, leg, has=("rim", "calcif")),
    }
    for k in ("bone", "artery", "collateral", "rim"):
        assert truth[k].any(), f"phantom legend {leg} has no {k} label"
    return truth


@pytest.fixture(scope="session")
def small():
    ph = phantom.generate(
        "small", clean=True
    )  # issue 3 targets: the clean phantom; the confounder phantom is measured in benchmarks/bench_separation.py
    return ph, _truth(ph)


@pytest.fixture(scope="session")
def default_size():
    """224x224x380 at 0.7 mm: about 2 s to generate, once per test session."""
    ph = phantom.generate("default", clean=True)
    return ph, _truth(ph)


def _figures(ph, truth, bone_hu: float, window: tuple[float, float]) -> dict[str, float]:
    vol = ph.volume
    ex = extract(vol.hu, vol.spacing_mm, bone_hu, window)
    assert not (ex.bone & ex.vessel).any() and not (ex.bone & ex.calcification).any()
    assert not (ex.vessel & ex.calcification).any()
    bone_t = truth["bone"] | truth["marrow"]
    vessel_t = truth["artery"] | truth["collateral"]
    core = bone_mask(vol.hu, vol.spacing_mm, bone_hu, dilation_voxels=0)
    return {
        "bone_dice": dice(core, bone_t),
        "bone_dice_dilated": dice(ex.bone, bone_t),
        "vessel_dice": dice(ex.vessel, vessel_t),
        "artery_recall": recall(ex.vessel, truth["artery"]),
        "collateral_recall": recall(ex.vessel, truth["collateral"]),
        "collateral_branch_recall": component_recall(ex.vessel, truth["collateral"])[0],
        "surface_contamination": surface_contamination(ex.vessel, bone_t, exclude=vessel_t),
        "calcification_dice": dice(ex.calcification, truth["rim"]),
        "calcification_recall": recall(ex.calcification, truth["rim"]),
        "rim_in_vessel": recall(ex.vessel, truth["rim"]),
        "vessel_in_calcification": recall(ex.calcification, vessel_t),
        "total_s": ex.timings_s["total_s"],
    }


def _check_issue_targets(f: dict[str, float]) -> None:
    """Issue 3's bounds, plus the calcification class's own (docs/transfer-functions.md)."""
    print({k: round(v, 4) for k, v in f.items()})
    assert f["bone_dice"] >= 0.95, f
    assert f["bone_dice_dilated"] >= 0.95, f  # the rendered mask meets it too
    assert f["vessel_dice"] >= 0.90, f  # the calcified rim counted as false positive
    assert f["collateral_branch_recall"] >= 0.90, f
    assert f["collateral_recall"] >= 0.88, f  # per voxel (measured 0.90)
    assert f["surface_contamination"] <= 0.02, f
    # The calcified rim is its own class: none of it red, little vessel taken by it.
    assert f["rim_in_vessel"] <= 0.01, f
    assert f["calcification_dice"] >= 0.80, f
    assert f["vessel_in_calcification"] <= 0.01, f


def test_default_size_default_preset(default_size) -> None:
    ph, truth = default_size
    tf = list_presets()[default_preset_name()]
    _check_issue_targets(_figures(ph, truth, tf.bone_threshold_hu, tf.vessel_window_hu))


def test_default_size_suggested_thresholds(default_size) -> None:
    ph, truth = default_size
    s = suggest_thresholds(ph.volume.hu, ph.volume.spacing_mm)
    _check_issue_targets(_figures(ph, truth, s.bone_threshold_hu, s.vessel_window_hu))


def test_small_size_looser_bounds(small) -> None:
    """1.5 mm voxels make the 2-3 mm arteries 1-2 voxels wide and leave the thinnest
    collaterals (0.8-2 mm) owning less than half of any voxel, so per-voxel figures
    cannot reach the issue's bounds there (measured: vessel Dice 0.84, collateral
    branch recall 0.61). What must still hold: solid bone, no red fringe, the
    arteries found, the rim kept out of the vessels."""
    ph, truth = small
    tf = list_presets()[default_preset_name()]
    f = _figures(ph, truth, tf.bone_threshold_hu, tf.vessel_window_hu)
    print({k: round(v, 4) for k, v in f.items()})
    assert f["bone_dice"] >= 0.95, f
    assert f["bone_dice_dilated"] >= 0.90, f
    assert f["vessel_dice"] >= 0.80, f
    assert f["artery_recall"] >= 0.90, f
    assert f["surface_contamination"] <= 0.02, f
    assert f["rim_in_vessel"] <= 0.02, f
    assert f["calcification_dice"] >= 0.65, f


def test_suggested_thresholds_in_truth_ranges(default_size) -> None:
    # Default size: at 1.5 mm the thin arteries' own voxels are partial-volume
    # mixtures (5th HU percentile 165), no longer a measure of the contrast range.
    ph, truth = default_size
    s = suggest_thresholds(ph.volume.hu, ph.volume.spacing_mm)
    hu = ph.volume.hu
    art = hu[truth["artery"]]
    cortex = hu[truth["bone"]]
    lo, hi = s.vessel_window_hu
    # Inside the truth's ranges: the window holds the bulk of the arteries' HU, the
    # bone threshold lies above the arteries and below the cortex (the upper quartile
    # of the bone label: its lower half is trabecular bone, 320-550 HU, which the
    # marrow fill recovers on purpose instead of the threshold).
    assert lo <= np.percentile(art, 5) and np.percentile(art, 95) <= hi, s.reason
    assert np.percentile(art, 99) < s.bone_threshold_hu < np.percentile(cortex, 75), s.reason
