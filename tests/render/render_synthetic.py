"""A small synthetic lower-leg CTA for render tests (used until/unless the phantom is
importable): soft-tissue cylinder in air, a tubular bone (cortex + marrow with a
trabecular patch in the vessel window's HU range), an anterior artery on the patient's
right, a second artery touching the bone, and thin collateral branches inside an
"erosion" box. Blurred by a Gaussian so bone edges have a partial-volume rim that
passes through the vessel window -- the source of the red fringe."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from viewer.core.volume import Volume, axis_aligned_affine

BONE, ARTERY = 1, 2


@dataclass(frozen=True)
class Synthetic:
    volume: Volume
    labels: np.ndarray  # (nz, ny, nx) uint8: 0 other, 1 bone (incl. marrow), 2 artery
    legend: dict[str, int]
    landmarks: dict[str, object]


def make_synthetic(shape: tuple[int, int, int] = (70, 64, 64), spacing_mm=(1.5, 1.5, 2.0)) -> Synthetic:
    nz, ny, nx = shape
    sx, sy, sz = spacing_mm
    origin = (-(nx - 1) * sx / 2, -(ny - 1) * sy / 2, -(nz - 1) * sz / 2)
    aff = axis_aligned_affine(spacing_mm, origin)
    k, j, i = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    x = origin[0] + i * sx
    y = origin[1] + j * sy
    z = origin[2] + k * sz
    hu = np.full(shape, -1000.0)
    labels = np.zeros(shape, np.uint8)
    body = x**2 + y**2 <= 42.0**2
    hu[body] = 40.0
    # Bone: tube along z, centred on the patient's left (+x) of the axis.
    r_bone = np.hypot(x - 10.0, y - 2.0)
    bone = r_bone <= 13.0
    hu[bone] = 1300.0
    marrow = r_bone <= 7.5
    hu[marrow] = 60.0
    # Trabecular patch inside the marrow near the top: vessel-window HU inside bone.
    hu[marrow & (z > 40.0)] = 320.0
    labels[bone] = BONE
    # Main artery: anterior (-y) on the patient's right (-x).
    art = np.hypot(x + 18.0, y + 20.0) <= 4.0
    # A second artery running along the bone's posterior-lateral surface (touching).
    art2 = np.hypot(x - 10.0, y - 18.5) <= 3.5
    # Collateral branches inside the erosion box: thin vessels across z in a box.
    ebox = (-30.0, -5.0, -32.0, -10.0, -30.0, 0.0)  # LPS bounds (x, y, z)
    coll = np.zeros(shape, bool)
    for dz in (-24.0, -14.0, -6.0):
        coll |= (np.hypot(y + 22.0, z - dz) <= 1.6) & (x > -28.0) & (x < -8.0)
    arteries = art | art2 | coll
    hu[arteries] = 380.0
    labels[arteries] = ARTERY
    hu = ndi.gaussian_filter(hu, 0.7)
    vol = Volume(np.rint(hu).astype(np.int16), spacing_mm, aff, description="synthetic leg", source="synthetic")
    return Synthetic(vol, labels, {"bone": BONE, "artery": ARTERY}, {"erosion_box_lps": ebox})
