"""The calcified shell of the phantom's mass: gold mesh in separated mode, not red.

Its rim (300-800 HU) lies in the vessel window; a 1D transfer function paints it red
and it hides the collaterals. Separated mode finds it by shape and draws it as its own
class. Image statistics against the phantom's labels, not golden images.
"""

from __future__ import annotations

import numpy as np
import pytest
from render_helpers import is_red
from scipy import ndimage as ndi

from viewer.core.presets import list_presets
from viewer.core.transfer import ClassAppearance
from viewer.render.offscreen import render_to_array
from viewer.render.scene import Scene

W, H = 240, 360


def is_gold(img: np.ndarray) -> np.ndarray:
    r, g, b = (img[..., i].astype(int) for i in range(3))
    return (r > 120) & (g > 0.6 * r) & (b < 0.6 * g) & (r - b > 60)


@pytest.fixture(scope="module")
def phantom():  # type: ignore[no-untyped-def]
    from viewer.phantom import generate

    # the clean phantom: this is about drawing the mass's calcified shell, not about
    # the confounders of a real scan (plaques, the couch) that a separation must handle
    return generate("small", clean=True)


@pytest.fixture()
def scene(phantom):  # type: ignore[no-untyped-def]
    s = Scene(offscreen=True)
    s.set_volume(phantom.volume)
    s.set_view("anterior")
    yield s
    s.close()


def _projected(scene: Scene, phantom, names: tuple[str, ...]) -> np.ndarray:  # type: ignore[no-untyped-def]
    ids = [phantom.legend[n] for n in names]
    k, j, i = np.nonzero(np.isin(phantom.labels, ids))
    px = np.rint(scene.world_to_pixel(phantom.volume.lps_of_ijk(np.stack([i, j, k], -1).astype(float)), W, H))
    px = px.astype(int)
    img = np.zeros((H, W), bool)
    ok = (px[:, 0] >= 0) & (px[:, 0] < W) & (px[:, 1] >= 0) & (px[:, 1] < H)
    img[px[ok, 1], px[ok, 0]] = True
    return ndi.binary_dilation(img, iterations=2)


def test_shell_is_gold_not_red_and_toggles(scene: Scene, phantom) -> None:  # type: ignore[no-untyped-def]
    tf = list_presets()["Bone + vessels"]
    assert tf.separated and tf.calcification.visible
    scene.set_transfer_function(tf)
    masks = scene.class_masks
    assert masks is not None and masks.calcification is not None
    # The shell found is the phantom's calcified rim, not its vessels.
    truth_rim = phantom.labels == phantom.legend["calcification"]
    vessels = np.isin(phantom.labels, [phantom.legend["artery"], phantom.legend["collateral"]])
    found = masks.calcification
    assert (found & truth_rim).sum() > 0.5 * truth_rim.sum()
    assert (found & vessels).sum() < 0.05 * found.sum()

    mass = _projected(scene, phantom, ("calcification", "mass"))
    img = render_to_array(scene, W, H)
    gold, red = is_gold(img), is_red(img)
    assert (gold & mass).sum() > 0.4 * mass.sum()
    assert (gold & ~mass).sum() < 0.05 * gold.sum()
    assert (red & mass).sum() < 0.05 * mass.sum()

    # Hidden: no gold anywhere, and still no red blob where the shell was.
    scene.set_transfer_function(tf.with_changes(calcification=ClassAppearance(tf.calcification.color, 1.0, False)))
    img = render_to_array(scene, W, H)
    assert is_gold(img).sum() == 0
    assert (is_red(img) & mass).sum() < 0.2 * mass.sum()

    # One-class mode (no masks): the rim is in the vessel window and paints red --
    # the failure separated mode exists to fix.
    scene.set_transfer_function(tf.with_changes(separated=False))
    img = render_to_array(scene, W, H)
    assert (is_red(img) & mass).sum() > 0.5 * mass.sum()


def test_crop_and_clip_apply_to_the_shell_mesh(scene: Scene, phantom) -> None:  # type: ignore[no-untyped-def]
    tf = list_presets()["Bone + vessels"]
    scene.set_transfer_function(tf)
    assert is_gold(render_to_array(scene, W, H)).sum() > 100
    c = np.asarray(phantom.landmarks["mass_center_lps"], dtype=float)
    lo, hi = phantom.volume.bounds_lps()
    # Keep only the part of the leg above the mass (its superior end + 100 mm).
    z0 = c[2] + 100.0
    scene.set_crop_box_lps((lo[0], hi[0], lo[1], hi[1], z0, hi[2]))
    assert is_gold(render_to_array(scene, W, H)).sum() == 0
    scene.set_crop_box_lps(None)
    # A clip plane through the mass centre keeping the superior side halves the shell.
    full = is_gold(render_to_array(scene, W, H)).sum()
    scene.set_clip_plane(tuple(c), (0.0, 0.0, 1.0))
    half = is_gold(render_to_array(scene, W, H)).sum()
    assert 0 < half < 0.8 * full
