"""Overlays on plain numpy images: orientation letters, scale bar geometry, captions."""

from __future__ import annotations

import numpy as np
import pytest

from viewer.export.overlays import (
    direction_letters,
    draw_overlays,
    load_font,
    mm_per_pixel_parallel,
    nice_length_mm,
    orientation_labels,
    plan_scale_bar,
    wrap_text,
)
from viewer.render.camera import STANDARD_VIEWS


@pytest.mark.parametrize(
    "view, expected",
    [
        # Anterior: facing the patient, so the patient's left is on the image's right.
        ("anterior", {"left": "R", "right": "L", "top": "S", "bottom": "I"}),
        ("posterior", {"left": "L", "right": "R", "top": "S", "bottom": "I"}),
        # From the patient's left (camera at +x looking -x): anterior is on the left.
        ("left", {"left": "A", "right": "P", "top": "S", "bottom": "I"}),
        ("right", {"left": "P", "right": "A", "top": "S", "bottom": "I"}),
        # From the feet, anterior up: like an axial CT slice (patient left on the right).
        ("inferior", {"left": "R", "right": "L", "top": "A", "bottom": "P"}),
        ("superior", {"left": "L", "right": "R", "top": "A", "bottom": "P"}),
    ],
)
def test_orientation_labels_standard_views(view: str, expected: dict[str, str]) -> None:
    dop, up = STANDARD_VIEWS[view]
    assert orientation_labels(dop, up) == expected


def test_oblique_view_gets_two_letters() -> None:
    # Camera turned 45 degrees from anterior towards the patient's left.
    dop = np.array([-1.0, 1.0, 0.0]) / np.sqrt(2)
    labels = orientation_labels(dop, (0, 0, 1))
    assert set(labels["right"]) == {"L", "P"}
    assert set(labels["left"]) == {"R", "A"}
    assert direction_letters((0, 0, 0)) == ""
    assert direction_letters((0.1, -1.0, 0.0)) == "A"


def test_view_up_parallel_to_direction_is_refused() -> None:
    with pytest.raises(ValueError):
        orientation_labels((0, 0, 1), (0, 0, 2))


@pytest.mark.parametrize(
    "max_mm, nice", [(0.9, 0.5), (1.0, 1.0), (37.0, 20.0), (55.0, 50.0), (99.9, 50.0), (100.0, 100.0), (260, 200)]
)
def test_nice_lengths(max_mm: float, nice: float) -> None:
    assert nice_length_mm(max_mm) == pytest.approx(nice)


def _longest_white_run(img: np.ndarray) -> tuple[int, int]:
    """(length, row) of the longest horizontal run of pure white pixels."""
    white = np.all(img[..., :3] == 255, axis=-1)
    best = (0, -1)
    for r in range(white.shape[0]):
        row = np.concatenate([[0], white[r].astype(np.int8), [0]])
        d = np.diff(row)
        starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
        if len(starts):
            n = int((ends - starts).max())
            if n > best[0]:
                best = (n, r)
    return best


@pytest.mark.parametrize("w, h, scale_mm", [(200, 150, 60.0), (800, 600, 60.0), (640, 360, 12.5)])
def test_scale_bar_pixel_length_matches_label(w: int, h: int, scale_mm: float) -> None:
    mmpp = mm_per_pixel_parallel(scale_mm, h)
    bar = plan_scale_bar(mmpp, w, exact=True)
    img = np.zeros((h, w, 3), np.uint8)
    out, placed = draw_overlays(img, scale_bar=bar)
    assert placed is not None
    n, row = _longest_white_run(out)
    assert n == placed.length_px
    assert placed.y0_px <= row < placed.y0_px + placed.thickness_px
    # The drawn length in mm agrees with the label within 2 %.
    assert n * mmpp == pytest.approx(bar.length_mm, rel=0.02)
    assert bar.label == f"{bar.length_mm:g} mm"
    assert "approx" not in bar.label


def test_perspective_scale_bar_says_approximate() -> None:
    bar = plan_scale_bar(0.5, 400, exact=False)
    assert "approx" in bar.label


def test_overlays_on_transparent_image_are_opaque_and_background_stays_clear() -> None:
    img = np.zeros((150, 200, 4), np.uint8)
    out, _ = draw_overlays(
        img,
        labels={"left": "R", "right": "L", "top": "S", "bottom": "I"},
        scale_bar=plan_scale_bar(0.5, 200, True),
        caption_lines=["Bone + vessels: vessels 180-600 HU"],
    )
    assert out.shape == (150, 200, 4)
    alpha = out[..., 3]
    assert alpha[75, 100] == 0  # the middle is still transparent
    assert (alpha == 255).sum() > 200  # the text and bar are opaque
    # The letters sit at the edges they name.
    assert alpha[:, :20].max() == 255 and alpha[:, -20:].max() == 255


def test_caption_is_wrapped_within_the_left_part() -> None:
    font = load_font(12)
    lines = wrap_text("one two three four five six seven eight nine ten", font, 60)
    assert len(lines) > 1
    assert all(font.getlength(ln) <= 60 or " " not in ln for ln in lines)


def test_rgb_stays_rgb_and_bad_input_is_refused() -> None:
    out, _ = draw_overlays(np.zeros((50, 60, 3), np.uint8), title="Anterior")
    assert out.shape == (50, 60, 3) and out.max() == 255
    with pytest.raises(ValueError):
        draw_overlays(np.zeros((50, 60), np.uint8))
