"""The shaded bone is smooth: no slice-by-slice terraces from the class mask's edge.

The class code jumps by ~4000 at the bone mask's edge; when that edge sat next to the
bone's iso-surface, VTK's gradients followed the mask's voxel staircase and the bone
showed horizontal bands one slice apart. The renderer pads the rendered bone mask with
one more sub-window layer; this compares the vertical roughness of the shaded tibia
shaft with and without that layer.
"""

from __future__ import annotations

import numpy as np
import pytest

import viewer.render.scene_data as scene_data
from viewer.core.presets import list_presets
from viewer.render.offscreen import render_to_array
from viewer.render.scene import Scene

W, H = 300, 400


def _shaft_roughness(img: np.ndarray) -> float:
    """Mean |row-to-row brightness change| over ivory pixels of the middle rows."""
    rgb = img[..., :3].astype(float)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    ivory = (r > 60) & (g > 0.8 * r) & (b > 0.6 * r) & (b < 0.98 * r)
    lum = rgb.mean(axis=-1)
    rows = slice(int(H * 0.15), int(H * 0.85))
    both = ivory[rows][1:] & ivory[rows][:-1]
    d = np.abs(np.diff(lum[rows], axis=0))[both]
    assert d.size > 500, "too few bone pixels to judge"
    return float(d.mean())


@pytest.fixture(scope="module")
def volume():  # type: ignore[no-untyped-def]
    from viewer.phantom import generate

    # the clean phantom: this is about shading the bone surface, not about the
    # confounders of a real scan (the couch, plaques, low-density bone ends)
    return generate("default", clean=True).volume


def _render(volume) -> np.ndarray:  # type: ignore[no-untyped-def]
    with Scene(offscreen=True) as s:
        s.set_volume(volume)
        s.set_transfer_function(list_presets()["Bone + vessels"])
        s.set_view("anterior")
        s.zoom(2.0)
        return render_to_array(s, W, H)


def test_padded_bone_mask_removes_slice_terraces(volume, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    smooth = _shaft_roughness(_render(volume))
    # the rendered bone without its growth: the bone mask itself
    monkeypatch.setattr(scene_data, "_bone_growth", lambda masks: ((lambda b, h: b), 0))
    terraced = _shaft_roughness(_render(volume))
    assert smooth < 0.75 * terraced, (smooth, terraced)
