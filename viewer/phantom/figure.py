"""The phantom's picture for ``docs/phantom.md``: axial slices (CT and labels), a
coronal MIP and a coronal projection of the ground truth.

    .venv/bin/python -m viewer.phantom.figure docs/img/phantom.png [--size default] [--clean]

numpy and Pillow only (no plotting library): each panel is windowed or coloured here,
laid out on one canvas and captioned with Pillow's built-in font.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from viewer.phantom.generator import LEGEND, Phantom, generate

#: RGB of each label in the label panels.
COLOURS: dict[str, tuple[int, int, int]] = {
    "background": (0, 0, 0),
    "skin": (200, 160, 140),
    "fat": (235, 200, 90),
    "muscle": (150, 60, 60),
    "bone": (240, 240, 230),
    "marrow": (140, 120, 60),
    "artery": (255, 30, 30),
    "collateral": (255, 140, 0),
    "calcification": (255, 255, 0),
    "mass": (120, 170, 255),
    "table": (90, 90, 110),
    "plaque": (0, 255, 255),
    "vein": (40, 90, 255),
    "nutrient": (0, 230, 0),
    "trabecular": (175, 150, 205),
    "other_bone": (160, 160, 150),
    "other_artery": (255, 0, 200),
}


def _window(hu: np.ndarray, width: float, level: float) -> np.ndarray:
    g = (hu.astype(np.float32) - (level - 0.5 * width)) / width
    return (np.clip(g, 0.0, 1.0) * 255).astype(np.uint8)


def _grey(a: np.ndarray) -> np.ndarray:
    return np.repeat(a[..., None], 3, axis=2)


def _labels_rgb(lab: np.ndarray) -> np.ndarray:
    lut = np.zeros((256, 3), dtype=np.uint8)
    for name, v in LEGEND.items():
        lut[v] = COLOURS[name]
    return lut[lab]


def _stretch_z(img: np.ndarray, factor: float) -> np.ndarray:
    """Resample rows (z) by ``factor`` (nearest), so that pixels are square in mm."""
    n = int(round(img.shape[0] * factor))
    rows = np.minimum((np.arange(n) / factor).astype(int), img.shape[0] - 1)
    return img[rows]


def render_figure(ph: Phantom) -> np.ndarray:
    """The figure as an (H, W, 3) uint8 image."""
    from PIL import Image, ImageDraw

    vol = ph.volume
    hu, lab = vol.hu, ph.labels
    if ph.feet_first:
        hu, lab = hu[::-1], lab[::-1]
    nz, ny, nx = hu.shape
    sx, sy, sz = vol.spacing_mm
    z0 = float(vol.lps_of_ijk((0, 0, 0))[2]) if not ph.feet_first else float(vol.lps_of_ijk((0, 0, nz - 1))[2])
    lm = ph.landmarks

    def k_of(z_mm: float) -> int:
        return int(np.clip(round((z_mm - z0) / sz), 0, nz - 1))

    picks = [
        (lm["knee_joint_z_mm"] - 8.0, "knee: plateau, popliteal artery and vein"),
        (lm["mass_center_lps"][2], "mass centre"),
        (lm["ankle_joint_z_mm"] + 10.0, "above the ankle"),
    ]
    panels: list[tuple[np.ndarray, int, int, str]] = []
    y = 0
    for z_mm, what in picks:
        k = k_of(z_mm)
        panels.append((_grey(_window(hu[k], 1000, 250)), 0, y, f"z = {z_mm:.0f} mm, {what} (W 1000 / L 250)"))
        panels.append((_labels_rgb(lab[k]), nx + 8, y, "labels"))
        y += ny + 18
    axial_h = y
    # coronal views: image rows = z (superior up), columns = x (patient right on the left)
    f = sz / sx
    x_c = 2 * (nx + 8)
    mip = _stretch_z(np.max(hu, axis=1)[::-1], f)
    panels.append((_grey(_window(mip, 1500, 500)), x_c, 0, "coronal MIP: the couch hides the vessels"))
    above = lab != LEGEND["table"]
    if "table_top_y_mm" in lm:
        # only what lies in front of (anterior to) the mattress surface
        y_mm = vol.lps_of_ijk(np.stack([np.zeros(ny), np.arange(ny), np.zeros(ny)], axis=1))[:, 1]
        x_mm = vol.lps_of_ijk(np.stack([np.arange(nx), np.zeros(nx), np.zeros(nx)], axis=1))[:, 0]
        (cx, cy), r = lm["table"]["arc_centre_xy_mm"], lm["table"]["mattress_radius_mm"]
        top = cy + np.sqrt(np.maximum(r**2 - (x_mm - cx) ** 2, 0.0))
        above = np.broadcast_to((y_mm[:, None] < top[None, :] - 0.5)[None], hu.shape)
    mip2 = _stretch_z(np.max(np.where(above, hu, -1024), axis=1)[::-1], f)
    x_c += nx + 8
    panels.append((_grey(_window(mip2, 1500, 500)), x_c, 0, "coronal MIP in front of the couch"))
    order = [
        "bone",
        "trabecular",
        "other_bone",
        "calcification",
        "vein",
        "collateral",
        "nutrient",
        "artery",
        "other_artery",
        "plaque",
    ]
    proj = np.zeros((nz, nx), dtype=np.uint8)
    for name in order:  # later ones drawn over earlier ones
        hit = (lab == LEGEND[name]).any(axis=1)
        proj[hit] = LEGEND[name]
    panels.append((_stretch_z(_labels_rgb(proj)[::-1], f), x_c + nx + 8, 0, "truth projection: vessels over bone"))
    height = max(axial_h, int(round(nz * f)) + 18) + 40
    width = x_c + 2 * nx + 8
    canvas = Image.new("RGB", (width, height), (0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    for img, px, py, caption in panels:
        canvas.paste(Image.fromarray(np.ascontiguousarray(img)), (px, py + 14))
        draw.text((px + 2, py + 1), caption, fill=(255, 255, 120))
    # legend strip
    x = 4
    y = height - 22
    for name, v in LEGEND.items():
        if name == "background":
            continue
        draw.rectangle([x, y, x + 10, y + 10], fill=COLOURS[name])
        draw.text((x + 14, y), f"{v} {name}", fill=(230, 230, 230))
        x += 14 + 7 * (len(name) + 3) + 6
    return np.asarray(canvas)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="write the phantom's documentation figure")
    p.add_argument("out", help="PNG file to write")
    p.add_argument("--size", default="default")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--clean", action="store_true")
    args = p.parse_args(argv)
    from PIL import Image

    ph = generate(args.size, seed=args.seed, clean=args.clean)
    Image.fromarray(render_figure(ph)).save(args.out, optimize=True)
    print(f"wrote {Path(args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
