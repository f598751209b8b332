"""Overlap measures used by the accuracy tests."""

from __future__ import annotations

import numpy as np
import pytest

from viewer.core.errors import ViewerError
from viewer.core.metrics import component_recall, dice, precision, recall, surface_band, surface_contamination


def test_dice_recall_precision() -> None:
    a = np.zeros((4, 4, 4), bool)
    b = np.zeros((4, 4, 4), bool)
    assert dice(a, b) == 1.0
    a[0, 0, :2] = True
    b[0, 0, 1:3] = True
    assert dice(a, b) == pytest.approx(0.5)
    assert recall(a, b) == pytest.approx(0.5)
    assert precision(a, b) == pytest.approx(0.5)
    with pytest.raises(ViewerError):
        dice(a, b[:3])


def test_surface_band_and_contamination() -> None:
    bone = np.zeros((9, 9, 9), bool)
    bone[3:6, 3:6, 3:6] = True
    band = surface_band(bone)
    assert not band[4, 4, 4]  # the core is not surface
    assert band[3, 3, 3] and band[2, 4, 4]  # boundary and one voxel outside
    assert not band[1, 4, 4]
    fringe = band & ~bone
    assert surface_contamination(fringe, bone) == pytest.approx(fringe.sum() / band.sum())
    assert surface_contamination(np.zeros_like(bone), bone) == 0.0
    assert surface_contamination(fringe, bone, exclude=fringe) == 0.0


def test_component_recall() -> None:
    t = np.zeros((5, 20, 20), bool)
    t[2, 2, 2:8] = True
    t[2, 10, 2:8] = True
    f = np.zeros_like(t)
    f[2, 2, 2:8] = True
    f[2, 10, 2:4] = True
    frac, hit, n = component_recall(f, t)
    assert (frac, hit, n) == (0.5, 1, 2)
