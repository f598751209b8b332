"""Fixtures for the render tests: a small lower-leg CTA with ground-truth labels.

Uses the project's phantom (``viewer.phantom.generate("small")``) when it is importable,
else the synthetic leg in ``tests/render/synthetic.py``; both expose ``volume``,
``bone`` / ``artery`` boolean masks and the LPS ``erosion_box_lps``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

os.environ.setdefault("VTK_SMP_BACKEND_IN_USE", "STDThread")

import numpy as np

from viewer.core.volume import Volume


@dataclass(frozen=True)
class Leg:
    volume: Volume
    bone: np.ndarray  # bool (nz, ny, nx): bone incl. marrow, truth
    artery: np.ndarray  # bool: contrast-filled arteries incl. collaterals, truth
    other_dense: np.ndarray  # bool: neither bone nor artery but may show (calcified mass)
    erosion_box_lps: tuple[float, float, float, float, float, float]
    source: str


def _from_phantom() -> Leg | None:
    try:
        from viewer.phantom import generate  # type: ignore[attr-defined]
    except ImportError:
        return None
    # The clean phantom (one leg, no couch, plaques or veins, dense bone ends): these
    # tests check how bone and artery classes are drawn, not how the separation copes
    # with the confounders of a real scan (tests/core and the phantom's own tests do).
    ph = generate("small", clean=True)
    legend = {str(k).lower(): v for k, v in dict(ph.legend).items()}
    # legend maps name -> label value (or the reverse); accept either.
    items = [(k, v) if not isinstance(v, str) else (v.lower(), k) for k, v in legend.items()]

    def labels_for(*words: str) -> list[int]:
        return [int(v) for k, v in items if any(w in str(k) for w in words)]

    bone_l = labels_for("bone", "cortex", "cortical", "marrow", "trabec")
    art_l = labels_for("arter", "collateral")
    if not bone_l or not art_l:
        return None
    lab = np.asarray(ph.labels)
    box_raw = ph.landmarks["erosion_box_lps"]
    if len(box_raw) == 2:  # ((min x, y, z), (max x, y, z))
        (x0, y0, z0), (x1, y1, z1) = box_raw
        box = (x0, x1, y0, y1, z0, z1)
    else:
        box = tuple(float(x) for x in box_raw)
    other_l = labels_for("calcif", "mass")
    return Leg(ph.volume, np.isin(lab, bone_l), np.isin(lab, art_l), np.isin(lab, other_l), box, "phantom")  # type: ignore[arg-type]


def is_red(img: np.ndarray) -> np.ndarray:
    """Vessel-red pixels (shaded arterial red, not ivory/grey/black)."""
    f = img[..., :3].astype(np.int32)
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    return (r >= 50) & (r >= 2 * g) & (r >= 2 * b)


def is_ivory(img: np.ndarray) -> np.ndarray:
    """Bone-ivory pixels: bright, warm, little saturation."""
    f = img[..., :3].astype(np.int32)
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    return (r >= 60) & (g >= 0.8 * r) & (b >= 0.6 * r) & (b <= 1.05 * g)


def is_foreground(img: np.ndarray, background: int = 0) -> np.ndarray:
    return np.abs(img[..., :3].astype(np.int32) - background).max(axis=-1) > 8
