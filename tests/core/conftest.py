"""Fixtures for tests/core.

``synthetic_leg``: a small analytic lower-leg-like CTA with exact labels, for extraction unit tests.

Not the project phantom (viewer.phantom is the ground truth for the accuracy figures);
this one is built here so each property of the algorithm is checked on geometry whose
answer is known by construction: a tube of cortical bone around a marrow cavity with
trabecular bone inside (HU inside the vessel window), a partial-volume rim, an artery
running alongside touching the cortex, a thin collateral branch, a calcified plaque
speck, and noise.
"""

from __future__ import annotations

import numpy as np
import pytest

LABELS = {"background": 0, "soft": 1, "bone": 2, "marrow": 3, "artery": 4, "collateral": 5, "plaque": 6}


def leg(shape: tuple[int, int, int] = (48, 80, 80), seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    nz, ny, nx = shape
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[0:nz, 0:ny, 0:nx].astype(np.float32)
    labels = np.zeros(shape, np.uint8)
    hu = np.full(shape, -1000.0, np.float32)
    r_leg = np.hypot(x - nx / 2, y - ny / 2)
    soft = r_leg < nx * 0.45
    labels[soft] = 1
    hu[soft] = 45.0
    r_b = np.hypot(x - 32, y - 38)
    cortex = (r_b < 13) & (r_b >= 8.5)
    marrow = r_b < 8.5
    labels[cortex] = 2
    hu[cortex] = 1300.0
    labels[marrow] = 3
    # Marrow: fat with trabecular bone, 100-350 HU: overlaps the vessel window.
    hu[marrow] = 220.0 + 80.0 * np.sin(x[marrow] * 1.3) * np.cos(y[marrow] * 1.7)
    # Artery: 3 px radius, running along z, touching the cortex' outer surface.
    r_a = np.hypot(x - 32, y - (38 + 13 + 3))
    art = r_a < 3.0
    labels[art] = 4
    hu[art] = 380.0
    # Collateral: a thin (1.3 px radius) branch running diagonally away from the artery.
    t = np.clip(((x - 32) * 0.7 + (z - 10) * 0.7), 0, 30)
    cx, cz = 32 + t * 0.7, 10 + t * 0.7
    r_c = np.sqrt((x - cx) ** 2 + (z - cz) ** 2 + (y - 54) ** 2)
    col = (r_c < 1.6) & (labels != 4) & (labels != 2)
    labels[col] = 5
    hu[col] = 350.0
    # A calcified plaque speck well away from bone (too small to be bone).
    pl = (np.abs(x - 60) <= 1) & (np.abs(y - 30) <= 1) & (np.abs(z - 24) <= 1)
    labels[pl] = 6
    hu[pl] = 900.0
    # Partial-volume blur (what makes the red fringe) then noise.
    from scipy import ndimage as ndi

    hu = ndi.gaussian_filter(hu, 0.7)
    hu += rng.normal(0, 12, shape)
    return np.clip(np.rint(hu), -1024, 3071).astype(np.int16), labels


@pytest.fixture(scope="session")
def synthetic_leg() -> tuple[np.ndarray, np.ndarray]:
    """``(hu, labels)`` of :func:`leg` with the default shape; labels as in LABELS."""
    return leg()


@pytest.fixture(scope="session")
def leg_labels() -> dict[str, int]:
    """Label values of :func:`leg`."""
    return dict(LABELS)
