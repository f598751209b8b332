"""The uncertain / removed overlays of the real-CT separation: drawn when asked, and
cut by the crop box like the rest of the scene."""

from __future__ import annotations

import numpy as np

from viewer.core.presets import list_presets
from viewer.render.offscreen import render_to_array
from viewer.render.scene import Scene


def _magenta(img: np.ndarray) -> np.ndarray:
    r, g, b = (img[..., i].astype(int) for i in range(3))
    return (r > 120) & (b > 120) & (g < 0.6 * r) & (g < 0.6 * b)


def test_uncertain_overlay_shows_and_is_cropped() -> None:
    from viewer.phantom import generate

    vol = generate("small").volume
    tf = list_presets()["Bone + vessels"].with_changes(separated=True)
    with Scene(offscreen=True) as s:
        s.set_volume(vol)
        s.set_transfer_function(tf)
        s.set_view("posterior")
        base = _magenta(render_to_array(s, 240, 360)).sum()
        s.set_transfer_function(tf.with_changes(show_uncertain=True))
        masks = s.class_masks
        assert masks is not None and masks.uncertain is not None and masks.uncertain.any()
        on = _magenta(render_to_array(s, 240, 360)).sum()
        assert on > base + 50, (base, on)
        # Crop to the lowest 10 mm of the scan: most of the magenta must go.
        lo, hi = vol.bounds_lps()
        s.set_crop_box_lps((lo[0], hi[0], lo[1], hi[1], lo[2], lo[2] + 10.0))
        cropped = _magenta(render_to_array(s, 240, 360)).sum()
        assert cropped < 0.5 * on, (on, cropped)
