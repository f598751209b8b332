"""Overlap measures between a computed mask and a ground-truth mask (voxel counts).

Used by the accuracy tests against the phantom's exact labels and by the extraction
benchmark. All functions take boolean arrays of one shape and return plain floats.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from viewer.core.errors import ViewerError


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ViewerError(f"masks differ in shape: {a.shape} vs {b.shape}")
    return a, b


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice coefficient 2|A∩B| / (|A|+|B|); 1.0 when both are empty."""
    a, b = _pair(a, b)
    na, nb = int(np.count_nonzero(a)), int(np.count_nonzero(b))
    if na + nb == 0:
        return 1.0
    return 2.0 * int(np.count_nonzero(a & b)) / (na + nb)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Fraction of ``truth`` voxels that are in ``found`` (sensitivity); 1.0 for an
    empty truth."""
    found, truth = _pair(found, truth)
    nt = int(np.count_nonzero(truth))
    if nt == 0:
        return 1.0
    return int(np.count_nonzero(found & truth)) / nt


def precision(found: np.ndarray, truth: np.ndarray) -> float:
    """Fraction of ``found`` voxels that are in ``truth``; 1.0 when nothing was found."""
    found, truth = _pair(found, truth)
    nf = int(np.count_nonzero(found))
    if nf == 0:
        return 1.0
    return int(np.count_nonzero(found & truth)) / nf


def surface_band(mask: np.ndarray, outside_voxels: int = 1) -> np.ndarray:
    """The boundary voxels of ``mask`` (in the mask, with a 6-neighbour outside it) plus
    the voxels up to ``outside_voxels`` outside it (6-connected steps)."""
    m = np.asarray(mask, dtype=bool)
    if not m.any():
        return np.zeros_like(m)
    inner = m & ~ndi.binary_erosion(m, border_value=1)
    outer = ndi.binary_dilation(m, iterations=max(0, outside_voxels)) & ~m if outside_voxels > 0 else np.zeros_like(m)
    band: np.ndarray = inner | outer
    return band


def surface_contamination(
    labelled: np.ndarray, truth: np.ndarray, exclude: np.ndarray | None = None, outside_voxels: int = 1
) -> float:
    """Fraction of the truth's surface band (:func:`surface_band`) that is ``labelled``.

    Measures the "red fringe on every bone": ``labelled`` is the vessel mask, ``truth``
    the true bone. ``exclude`` removes voxels from the band that may rightly be in
    ``labelled`` (e.g. true vessel voxels lying next to bone). Returns 0.0 for an
    empty band.
    """
    labelled, truth = _pair(labelled, truth)
    band = surface_band(truth, outside_voxels)
    if exclude is not None:
        band &= ~np.asarray(exclude, dtype=bool)
    n = int(np.count_nonzero(band))
    if n == 0:
        return 0.0
    return int(np.count_nonzero(band & labelled)) / n


def component_recall(found: np.ndarray, truth: np.ndarray, min_fraction: float = 0.5) -> tuple[float, int, int]:
    """Per-object recall: of the 26-connected components of ``truth``, the fraction
    with at least ``min_fraction`` of their voxels in ``found``.

    Returns ``(fraction, n_found, n_components)``; ``(1.0, 0, 0)`` for an empty truth.
    """
    found, truth = _pair(found, truth)
    lab, n = ndi.label(truth, structure=np.ones((3, 3, 3), dtype=bool))
    if n == 0:
        return 1.0, 0, 0
    total = np.bincount(lab.ravel(), minlength=n + 1)[1:]
    hit = np.bincount(lab[found].ravel(), minlength=n + 1)[1:]
    ok = int(np.count_nonzero(hit >= min_fraction * total))
    return ok / n, ok, n


__all__ = ["component_recall", "dice", "precision", "recall", "surface_band", "surface_contamination"]
