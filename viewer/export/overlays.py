"""Overlays drawn into exported pixels: orientation labels, a scale bar, a caption.

Everything here works on plain numpy images (``uint8`` ``(h, w, 3)`` RGB or
``(h, w, 4)`` RGBA) with Pillow, so it is tested without VTK. Geometry comes in
as numbers in patient space (LPS, mm):

* orientation labels are computed from the camera's direction of projection and
  view-up vectors in LPS (:func:`orientation_labels`);
* the scale bar needs the image's mm per pixel (:func:`mm_per_pixel_parallel`),
  which is exact only in parallel projection (see ``docs/export.md``).

Text is white with a black outline (Pillow's ``stroke_width``) so it reads on the
black background, on ivory bone and on red vessels alike, and sizes scale with the
image height so a 4x export has 4x larger text (the figure looks the same).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

#: Patient-space letters of the +/- LPS axes (DICOM PS3.3 C.7.6.1.1.1: x increases to
#: the patient's Left, y to Posterior, z to Superior).
_AXIS_LETTERS: tuple[tuple[str, str], ...] = (("L", "R"), ("P", "A"), ("S", "I"))

#: Secondary letters are added (e.g. "LA") when their share of the edge direction is at
#: least this fraction of the main one; radiology viewers do the same for oblique views.
_SECONDARY_FRACTION = 0.5

_WHITE = (255, 255, 255, 255)
_BLACK = (0, 0, 0, 255)

#: Fonts tried in order: DejaVu Sans Bold ships with most Linux desktops (and with
#: matplotlib); if none is found Pillow's built-in scalable font is used.
_FONT_CANDIDATES = (
    "DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/TTF/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf",
    "DejaVuSans.ttf",
)


# ----------------------------------------------------------------------------------
# fonts
# ----------------------------------------------------------------------------------
@lru_cache(maxsize=32)
def load_font(size_px: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """A legible font of about ``size_px`` pixels: DejaVu Sans Bold if available,
    else Pillow's bundled default font at that size, else its bitmap default."""
    size_px = max(6, int(size_px))
    for cand in _FONT_CANDIDATES:
        try:
            if cand.startswith("/") and not Path(cand).is_file():
                continue
            return ImageFont.truetype(cand, size_px)
        except OSError:
            continue
    try:
        return ImageFont.load_default(size=size_px)
    except TypeError:  # Pillow < 10.1 has no scalable default font
        return ImageFont.load_default()


def text_size_px(height_px: int) -> int:
    """Overlay text height for an image ``height_px`` tall (about 1/28 of it, at
    least 10 px), so text keeps its share of the figure at any export multiplier."""
    return max(10, int(round(height_px / 28.0)))


# ----------------------------------------------------------------------------------
# orientation
# ----------------------------------------------------------------------------------
def direction_letters(vec_lps: npt.ArrayLike) -> str:
    """Patient-direction letters for a vector in LPS, main axis first.

    ``(1, 0, 0)`` -> ``"L"``; ``(0.7, -0.7, 0)`` -> ``"LA"``; a zero vector -> ``""``.
    """
    v = np.asarray(vec_lps, dtype=np.float64)
    n = float(np.linalg.norm(v))
    if n == 0 or not np.isfinite(n):
        return ""
    v = v / n
    order = np.argsort(-np.abs(v))
    main = abs(v[order[0]])
    out = []
    for ax in order:
        if abs(v[ax]) < 1e-6 or abs(v[ax]) < _SECONDARY_FRACTION * main:
            continue
        pos, neg = _AXIS_LETTERS[ax]
        out.append(pos if v[ax] > 0 else neg)
    return "".join(out)


def screen_axes_lps(
    direction_of_projection_lps: npt.ArrayLike, view_up_lps: npt.ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """Unit LPS vectors pointing to the image's right and up.

    VTK's camera looks along the direction of projection ``d`` with ``view_up`` ``u``
    (orthogonalised against ``d``); screen right is ``d x u`` (camera x = y x z with
    z pointing back at the viewer, i.e. ``u x -d``).
    """
    d = np.asarray(direction_of_projection_lps, dtype=np.float64)
    u = np.asarray(view_up_lps, dtype=np.float64)
    d = d / np.linalg.norm(d)
    u = u - d * float(np.dot(u, d))
    nu = float(np.linalg.norm(u))
    if nu < 1e-9:
        raise ValueError("view-up is parallel to the direction of projection")
    u = u / nu
    r = np.cross(d, u)
    return r / np.linalg.norm(r), u


def orientation_labels(direction_of_projection_lps: npt.ArrayLike, view_up_lps: npt.ArrayLike) -> dict[str, str]:
    """Letters for the four image edges: keys ``left``, ``right``, ``top``, ``bottom``.

    In the anterior view (looking along +y = posterior, up = +z) this gives
    right edge ``L``, left edge ``R``, top ``S``, bottom ``I``: the patient faces the
    viewer, so the patient's left is on the image's right.
    """
    r, u = screen_axes_lps(direction_of_projection_lps, view_up_lps)
    return {
        "right": direction_letters(r),
        "left": direction_letters(-r),
        "top": direction_letters(u),
        "bottom": direction_letters(-u),
    }


# ----------------------------------------------------------------------------------
# scale bar
# ----------------------------------------------------------------------------------
def mm_per_pixel_parallel(parallel_scale_mm: float, height_px: int) -> float:
    """mm per image pixel in parallel projection.

    VTK's ``vtkCamera::SetParallelScale`` is half the viewport height in world units
    (mm here), whatever the pixel size, so one pixel is ``2 * scale / height`` mm."""
    return 2.0 * float(parallel_scale_mm) / float(height_px)


def mm_per_pixel_perspective(distance_mm: float, view_angle_deg: float, height_px: int) -> float:
    """mm per pixel *at the focal plane* in perspective projection (approximate: nearer
    structures look larger, farther ones smaller). VTK's view angle is the vertical
    full angle unless ``UseHorizontalViewAngle`` is on."""
    return 2.0 * float(distance_mm) * math.tan(math.radians(view_angle_deg) / 2.0) / float(height_px)


def nice_length_mm(max_mm: float) -> float:
    """The largest 1, 2 or 5 x 10^n mm not longer than ``max_mm``."""
    if not (max_mm > 0 and math.isfinite(max_mm)):
        raise ValueError(f"scale-bar length must be positive, got {max_mm}")
    exp = math.floor(math.log10(max_mm))
    best = 10.0**exp
    for m in (1.0, 2.0, 5.0, 10.0):
        if m * 10.0**exp <= max_mm * (1 + 1e-9):
            best = m * 10.0**exp
    return best


def format_mm(length_mm: float) -> str:
    """Always millimetres (what surgical planning uses), e.g. ``"50 mm"``, ``"0.5 mm"``."""
    return f"{length_mm:g} mm"


@dataclass(frozen=True)
class ScaleBar:
    """A scale bar: ``length_mm`` drawn ``length_px`` long (``length_mm / mm_per_px``
    rounded to whole pixels) with its label; ``exact`` False adds "approx.".

    ``x0_px``/``y0_px`` and ``thickness_px`` give where it was drawn (top-left of the
    white bar), for tests and for callers that place other overlays."""

    length_mm: float
    mm_per_px: float
    exact: bool
    length_px: int
    label: str
    x0_px: int = 0
    y0_px: int = 0
    thickness_px: int = 0


def plan_scale_bar(mm_per_px: float, width_px: int, exact: bool, fraction: float = 0.25) -> ScaleBar:
    """Choose a round length no longer than ``fraction`` of the image width."""
    length_mm = nice_length_mm(mm_per_px * width_px * fraction)
    length_px = int(round(length_mm / mm_per_px))
    label = format_mm(length_mm)
    if not exact:
        label = f"~{label} (approx., at focal plane)"
    return ScaleBar(length_mm, mm_per_px, exact, length_px, label)


# ----------------------------------------------------------------------------------
# drawing
# ----------------------------------------------------------------------------------
def _text(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, font, anchor: str, size: int) -> None:
    stroke = max(1, size // 8)
    draw.text(xy, text, font=font, fill=_WHITE, anchor=anchor, stroke_width=stroke, stroke_fill=_BLACK)


def wrap_text(text: str, font, max_width_px: float) -> list[str]:
    """Split ``text`` at spaces into lines no wider than ``max_width_px`` (a single
    word longer than that stays on its own line)."""
    words = text.split(" ")
    lines: list[str] = []
    cur = ""
    for word in words:
        cand = word if not cur else f"{cur} {word}"
        if cur and font.getlength(cand) > max_width_px:
            lines.append(cur)
            cur = word
        else:
            cur = cand
    if cur:
        lines.append(cur)
    return lines


def draw_overlays(
    image: np.ndarray,
    *,
    labels: dict[str, str] | None = None,
    scale_bar: ScaleBar | None = None,
    caption_lines: Sequence[str] = (),
    title: str | None = None,
    text_px: int | None = None,
    caption_clear_bottom_px: int = 0,
) -> tuple[np.ndarray, ScaleBar | None]:
    """Draw the overlays into a copy of ``image`` (uint8 RGB or RGBA).

    * ``labels``: edge letters (see :func:`orientation_labels`) at the middle of each
      edge;
    * ``scale_bar``: a white bar with black outline at the bottom right, its label
      above it; the returned :class:`ScaleBar` records where it was drawn;
    * ``caption_lines``: text at the bottom left, last line lowest;
    * ``title``: text at the top left (the report sheet's view names);
    * ``text_px``: text height, default :func:`text_size_px` of the image height;
    * ``caption_clear_bottom_px``: keep the caption this far above the bottom edge
      (the renderer's orientation cube sits in the bottom-left corner).

    On RGBA images the overlays are opaque, so they stay visible over a transparent
    background. Returns ``(new_image, placed_scale_bar)``.
    """
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ValueError(f"expected a uint8 (h, w, 3|4) image, got {arr.dtype} {arr.shape}")
    h, w = arr.shape[:2]
    mode = "RGBA" if arr.shape[2] == 4 else "RGB"
    im = Image.fromarray(arr, mode).convert("RGBA") if mode == "RGB" else Image.fromarray(arr, "RGBA")
    draw = ImageDraw.Draw(im)
    size = text_size_px(h) if text_px is None else max(6, int(text_px))
    font = load_font(size)
    margin = max(4, size // 2)

    if labels:
        if labels.get("top"):
            # Below the title line when there is one, so a long title never hides it.
            top_y = margin + (int(size * 1.3) if title else 0)
            _text(draw, (w / 2, top_y), labels["top"], font, "mt", size)
        if labels.get("bottom"):
            _text(draw, (w / 2, h - margin), labels["bottom"], font, "mb", size)
        if labels.get("left"):
            _text(draw, (margin, h / 2), labels["left"], font, "lm", size)
        if labels.get("right"):
            _text(draw, (w - margin, h / 2), labels["right"], font, "rm", size)

    placed: ScaleBar | None = None
    if scale_bar is not None:
        thick = max(3, size // 4)
        # Keep the bar clear of the bottom edge label and inside the image.
        x1 = w - margin  # exclusive right end of the white bar
        x0 = x1 - scale_bar.length_px
        y0 = h - margin - thick - (size + margin if labels and labels.get("bottom") else 0)
        if x0 < margin:
            raise ValueError(f"scale bar of {scale_bar.length_px} px does not fit a {w} px wide image")
        # Black outline one pixel outside the white bar, so the white run is exactly
        # length_px long (tests measure it).
        draw.rectangle((x0 - 1, y0 - 1, x1, y0 + thick), fill=_BLACK)
        draw.rectangle((x0, y0, x1 - 1, y0 + thick - 1), fill=_WHITE)
        lab_font = load_font(max(8, int(size * 0.8)))
        _text(draw, ((x0 + x1) / 2, y0 - max(2, margin // 2)), scale_bar.label, lab_font, "mb", int(size * 0.8))
        placed = ScaleBar(
            scale_bar.length_mm,
            scale_bar.mm_per_px,
            scale_bar.exact,
            scale_bar.length_px,
            scale_bar.label,
            x0,
            y0,
            thick,
        )

    if caption_lines:
        cap_size = max(8, int(size * 0.75))
        cap_font = load_font(cap_size)
        # Keep the caption in the left part of the image, clear of the centred bottom
        # orientation letter and of the scale bar on the right.
        max_w = w / 2 - size - margin if labels and labels.get("bottom") else w * 0.7 - margin
        wrapped = [ln for line in caption_lines for ln in wrap_text(line, cap_font, max(40.0, max_w))]
        y = h - margin - int(caption_clear_bottom_px)
        for line in reversed(wrapped):
            _text(draw, (margin, y), line, cap_font, "lb", cap_size)
            y -= int(cap_size * 1.3)

    if title:
        _text(draw, (margin, margin), title, font, "lt", size)

    out = np.asarray(im.convert(mode))
    return out, placed


__all__ = [
    "ScaleBar",
    "direction_letters",
    "draw_overlays",
    "format_mm",
    "load_font",
    "mm_per_pixel_parallel",
    "mm_per_pixel_perspective",
    "nice_length_mm",
    "orientation_labels",
    "plan_scale_bar",
    "screen_axes_lps",
    "text_size_px",
    "wrap_text",
]
