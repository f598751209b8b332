"""Accuracy of the bone / vessel separation against the phantom's exact ground truth.

Targets (issue 3): bone Dice >= 0.95, vessel Dice >= 0.90, collateral recall >= 0.90,
at most 2 % of bone-surface voxels labelled vessel. What "truth" means here
(docs/transfer-functions.md, "Accuracy"):

* bone truth = mineralised bone ∪ marrow: the bone mask fills the marrow cavity on
  purpose (marrow's fat and trabecular bone sit inside the vessel window), so a surgeon
  sees a solid bone and no red inside it. The Dice is taken on the mask *before* its
  one-voxel safety dilation (``dilation_voxels=0``): the dilation deliberately grows
  the mask over the partial-volume rim, outside the truth, to keep it out of the
  vessel class; the Dice of the dilated mask is printed as well;
* vessel truth = artery ∪ collateral labels; the calcified rim of the mass is a real
  structure but not a vessel: voxels of the rim are left out of the vessel comparison
  (neither counted as hits nor as false positives), and the figure with them counted
  as false positives is printed too;
* bone surface = truth bone boundary voxels and their 1-voxel outside neighbourhood,
  minus true vessel voxels (a vessel lying on the bone is rightly red).
"""

from __future__ import annotations

import numpy as np
import pytest

from viewer.core.extraction import bone_mask, extract
from viewer.core.metrics import component_recall, dice, recall, surface_contamination
from viewer.core.presets import default_preset_name, list_presets
from viewer.core.thresholds import suggest_thresholds

phantom = pytest.importorskip("viewer.phantom")
if not hasattr(phantom, "generate"):
    pytest.skip("viewer.phantom.generate is not there yet", allow_module_level=True)


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


def _select(labels: np.ndarray, legend: dict[str, list[int]], *, has: tuple[str, ...], not_has: tuple[str, ...] = ()) -> np.ndarray:
    vals = [v for name, vs in legend.items() for v in vs if any(h in name for h in has) and not any(n in name for n in not_has)]
    return np.isin(labels, vals)


@pytest.fixture(scope="module")
def small():
    ph = phantom.generate("small")
    leg = _legend(ph)
    lab = np.asarray(ph.labels)
    truth = {
        "bone": _select(lab, leg, has=("bone", "cortex", "cortical", "tibia", "fibula"), not_has=("marrow",)),
        "marrow": _select(lab, leg, has=("marrow",)),
        "artery": _select(lab, leg, has=("arter",), not_has=("collateral",)),
        "collateral": _select(lab, leg, has=("collateral",)),
        "rim": _select(lab, leg, has=("rim", "calcif")),
    }
    for k in ("bone", "artery", "collateral"):
        assert truth[k].any(), f"phantom legend {leg} has no {k} label"
    return ph, truth


def _figures(ph, truth, bone_hu: float, window: tuple[float, float]) -> dict[str, float]:
    vol = ph.volume
    ex = extract(vol.hu, vol.spacing_mm, bone_hu, window)
    bone_t = truth["bone"] | truth["marrow"]
    vessel_t = truth["artery"] | truth["collateral"]
    keep = ~truth["rim"]
    core = bone_mask(vol.hu, vol.spacing_mm, bone_hu, dilation_voxels=0)
    return {
        "bone_dice": dice(core, bone_t),
        "bone_dice_dilated": dice(ex.bone, bone_t),
        "vessel_dice": dice(ex.vessel & keep, vessel_t & keep),
        "vessel_dice_rim_counted": dice(ex.vessel, vessel_t),
        "collateral_recall": recall(ex.vessel, truth["collateral"]),
        "collateral_branch_recall": component_recall(ex.vessel, truth["collateral"])[0],
        "surface_contamination": surface_contamination(ex.vessel, bone_t, exclude=vessel_t),
        "rim_in_vessel": recall(ex.vessel, truth["rim"]) if truth["rim"].any() else 0.0,
        "bone_s": ex.timings_s["bone_s"],
    }


def _check(f: dict[str, float]) -> None:
    print({k: round(v, 4) for k, v in f.items()})
    assert f["bone_dice"] >= 0.95, f
    assert f["vessel_dice"] >= 0.90, f
    assert f["collateral_recall"] >= 0.90, f
    assert f["surface_contamination"] <= 0.02, f


def test_default_preset_thresholds(small) -> None:
    ph, truth = small
    tf = list_presets()[default_preset_name()]
    _check(_figures(ph, truth, tf.bone_threshold_hu, tf.vessel_window_hu))


def test_suggested_thresholds(small) -> None:
    ph, truth = small
    s = suggest_thresholds(ph.volume.hu, ph.volume.spacing_mm)
    hu = ph.volume.hu
    art = hu[truth["artery"]]
    cortex = hu[truth["bone"]]
    lo, hi = s.vessel_window_hu
    # Inside the truth's ranges: the window holds the bulk of the arteries' HU, the
    # bone threshold lies above the arteries and below the cortex' bulk.
    assert lo <= np.percentile(art, 5) and np.percentile(art, 95) <= hi, s.reason
    assert np.percentile(art, 99) < s.bone_threshold_hu < np.percentile(cortex, 50), s.reason
    _check(_figures(ph, truth, s.bone_threshold_hu, s.vessel_window_hu))
