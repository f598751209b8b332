"""Automatic vessel window and bone threshold from a CT angiogram's HU histogram.

The histogram of an arterial-phase CTA has a large soft-tissue mode (muscle, blood,
organs: about 0-100 HU), a small mode for contrast-filled arteries (about 200-600 HU;
the "arterial contrast peak"), and a long high tail of cortical bone (about 700-2000
HU). :func:`suggest_thresholds` finds the first two modes on a subsample of the
volume and places:

* the vessel window's low end above the soft-tissue mode, far enough that most
  soft-tissue noise stays out (``soft + 2.5 sigma``, sigma from the mode's right half
  width) and at least at the midpoint of the two modes (the lumen's half-contrast
  edge), but no higher than the contrast mode's lower half-maximum, and never below
  130 HU (the aortic enhancement that bolus tracking waits for before a CTA starts)
  or above 170 HU (3D Slicer's vessel presets reach half opacity at 143-196 HU,
  median 157; a higher start cuts the partial-volume edge of the lumen and branches
  that enhance less than the aorta. In a real CTA the soft tissue's right flank is
  widened by enhancing organs, which would otherwise push the window up into the
  lumen);
* the bone threshold above the contrast mode, at the contrast mode's upper
  half-maximum plus 2.5 sigma, inside 650-800 HU (cortical bone is 700 HU and more;
  the threshold must stay above contrast and below cortex, see
  docs/transfer-functions.md for the published values). The floor is 650, not lower:
  the bone mask recovers trabecular bone and marrow by filling the cortical shell, so
  the threshold only has to find cortex, and a lower one turns calcifications
  (300-800 HU) into bone seeds -- on the phantom 63 % of the mass's calcified rim went
  into the bone mask at 500 HU, 7 % at 600, 2 % at 650;
* the vessel window's high end at the bone threshold: in separated mode the bone mask
  owns everything it covers, and voxels above the threshold outside the bone mask are
  dense calcifications, which are not vessel lumen.

When no contrast mode is found (a scan without contrast), the defaults of the
built-in "Bone + vessels" preset are returned with the reason saying so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from viewer.core.errors import ViewerError

#: Histogram range and bin width used for the analysis (HU).
HIST_LO_HU = -1024
HIST_HI_HU = 3072
BIN_HU = 5

#: Defaults when the histogram says nothing (the "Bone + vessels" preset's values).
DEFAULT_VESSEL_WINDOW_HU = (170.0, 600.0)
DEFAULT_BONE_THRESHOLD_HU = 650.0

#: Limits for the suggestions (see the module docstring for why).
VESSEL_LOW_RANGE_HU = (130.0, 170.0)
BONE_RANGE_HU = (650.0, 800.0)
CONTRAST_SEARCH_HU = (150.0, 650.0)
SOFT_TISSUE_SEARCH_HU = (-30.0, 150.0)


@dataclass(frozen=True)
class HistogramPeak:
    """A mode of the HU histogram: centre, half width at half maximum, and fraction
    of the (subsampled) voxels in the bin at the centre."""

    hu: float
    half_width_hu: float
    height_fraction: float


@dataclass(frozen=True)
class ThresholdSuggestion:
    """Suggested thresholds (HU) with the histogram modes they came from and why."""

    vessel_window_hu: tuple[float, float]
    bone_threshold_hu: float
    soft_tissue_peak: HistogramPeak | None
    contrast_peak: HistogramPeak | None
    reason: str
    n_samples: int

    @property
    def peaks_hu(self) -> tuple[float, ...]:
        return tuple(p.hu for p in (self.soft_tissue_peak, self.contrast_peak) if p is not None)


def subsample(hu: np.ndarray, max_samples: int = 2_000_000) -> np.ndarray:
    """A strided view of ``hu`` with at most about ``max_samples`` voxels (no copy).

    Strides are equal along the three axes, so every region of the volume is sampled
    (a CTA's contrast is a small, spatially clustered fraction of the voxels).
    """
    a = np.asarray(hu)
    if a.size <= max_samples:
        return a
    step = int(np.ceil((a.size / max_samples) ** (1.0 / a.ndim)))
    return a[(slice(None, None, step),) * a.ndim]


def histogram(
    hu: np.ndarray,
    bins: int | np.ndarray = 256,
    hu_range: tuple[float, float] | None = None,
    max_samples: int = 2_000_000,
) -> tuple[np.ndarray, np.ndarray]:
    """``(counts, edges)`` of the HU histogram on a subsample, for the GUI's histogram.

    ``bins`` as in ``numpy.histogram``; ``hu_range`` defaults to the data's range.
    Counts are scaled back to the full voxel count so they read as voxels.
    """
    a = np.asarray(hu)
    if a.size == 0:
        raise ViewerError("histogram of an empty volume")
    s = subsample(a, max_samples).ravel()
    if hu_range is None:
        hu_range = (float(s.min()), float(s.max()) + 1.0)
    counts, edges = np.histogram(s, bins=bins, range=hu_range)
    scale = a.size / max(1, s.size)
    return counts.astype(np.float64) * scale, edges


def _hist(sample: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Counts in ``BIN_HU`` bins from HIST_LO_HU and the bin centres (HU)."""
    x = np.clip(sample.ravel().astype(np.int32), HIST_LO_HU, HIST_HI_HU - 1)
    counts = np.bincount((x - HIST_LO_HU) // BIN_HU, minlength=(HIST_HI_HU - HIST_LO_HU) // BIN_HU)
    centres = HIST_LO_HU + BIN_HU * (np.arange(counts.size) + 0.5)
    return counts.astype(np.float64), centres


def _half_widths(h: np.ndarray, i: int) -> tuple[int, int]:
    """Bins from peak ``i`` to where ``h`` first drops below half of ``h[i]`` (left, right)."""
    half = h[i] / 2.0
    left = i
    while left > 0 and h[left] >= half:
        left -= 1
    right = i
    while right < h.size - 1 and h[right] >= half:
        right += 1
    return i - left, right - i


def _bin(hu: float) -> int:
    return int((hu - HIST_LO_HU) // BIN_HU)


def suggest_thresholds(
    hu: np.ndarray, spacing_mm: tuple[float, float, float] | None = None, max_samples: int = 2_000_000
) -> ThresholdSuggestion:
    """Suggest a vessel window and bone threshold (HU) from the volume's histogram.

    ``spacing_mm`` is accepted for interface symmetry with the extraction functions;
    the histogram is spacing-independent. Runs on a strided subsample (about
    ``max_samples`` voxels), so it takes well under a second on a 512x512x600 scan.
    """
    a = np.asarray(hu)
    if a.ndim < 1 or a.size == 0:
        raise ViewerError("cannot suggest thresholds for an empty volume")
    s = subsample(a, max_samples)
    counts, centres = _hist(s)
    n = int(counts.sum())
    # Smooth over ~15 HU so single-bin noise makes no modes (sigma 3 bins of 5 HU).
    h = ndi.gaussian_filter1d(counts, 3.0, mode="constant")

    lo_i, hi_i = _bin(SOFT_TISSUE_SEARCH_HU[0]), _bin(SOFT_TISSUE_SEARCH_HU[1])
    seg = h[lo_i : hi_i + 1]
    if seg.max() <= 0:
        return ThresholdSuggestion(
            DEFAULT_VESSEL_WINDOW_HU,
            DEFAULT_BONE_THRESHOLD_HU,
            None,
            None,
            "no soft tissue (-30..150 HU) in the volume: default thresholds",
            n,
        )
    si = lo_i + int(np.argmax(seg))
    s_left, s_right = _half_widths(h, si)
    soft = HistogramPeak(float(centres[si]), s_right * BIN_HU, float(counts[si] / max(1, n)))
    # The right half width is used: the left flank runs into fat (-100 HU) and would
    # widen the estimate. HWHM = 1.1774 sigma for a Gaussian.
    soft_sigma = max(10.0, s_right * BIN_HU / 1.1774)

    # The contrast mode: the most prominent local maximum in the search range that
    # lies above the soft-tissue mode's flank (a real mode, not the flank itself).
    c_lo = max(CONTRAST_SEARCH_HU[0], soft.hu + 2.0 * soft_sigma)
    ci0, ci1 = _bin(c_lo), _bin(CONTRAST_SEARCH_HU[1])
    cand = [
        i for i in range(max(ci0, 1), min(ci1, h.size - 2) + 1) if h[i] > 0 and h[i] >= h[i - 1] and h[i] > h[i + 1]
    ]
    contrast: HistogramPeak | None = None
    best_prom = 0.0
    ci = -1
    for i in cand:
        # Prominence: height above the higher of the two minima towards the nearest
        # higher bins (or the search range's ends).
        left_min = h[max(ci0, i - 60) : i + 1].min()
        right_min = h[i : min(h.size, i + 60)].min()
        prom = h[i] - max(left_min, right_min)
        if prom > best_prom:
            best_prom, ci = prom, i
    # Require the mode to rise at least 5 % above its surroundings; noise ripples on
    # the soft tissue's tail do not.
    if ci >= 0 and best_prom >= 0.05 * h[ci] and counts[ci - 2 : ci + 3].sum() >= 25:
        c_left, c_right = _half_widths(h - (h[ci] - best_prom), ci)
        contrast = HistogramPeak(float(centres[ci]), 0.5 * (c_left + c_right) * BIN_HU, float(counts[ci] / max(1, n)))
    if contrast is None:
        return ThresholdSuggestion(
            DEFAULT_VESSEL_WINDOW_HU,
            DEFAULT_BONE_THRESHOLD_HU,
            soft,
            None,
            f"no arterial contrast mode found in {c_lo:.0f}-{CONTRAST_SEARCH_HU[1]:.0f} HU "
            "(not a contrast-enhanced scan?): default thresholds",
            n,
        )
    c_sigma = max(10.0, contrast.half_width_hu / 1.1774)
    # The lumen's edge (where contrast owns half the voxel) is at the midpoint between
    # the soft-tissue and contrast modes; the window starts there or above the soft
    # tissue's noise, whichever is higher -- then the 130-170 HU clip below (thin
    # vessels lose peak HU to the scanner's blur, so the midpoint is a ceiling's worth
    # too high for them; docs/transfer-functions.md, "Accuracy").
    low = max(soft.hu + 2.5 * soft_sigma, 0.5 * (soft.hu + contrast.hu))
    low = min(low, contrast.hu - contrast.half_width_hu)
    low = float(np.clip(low, *VESSEL_LOW_RANGE_HU))
    bone = contrast.hu + contrast.half_width_hu + 2.5 * c_sigma
    bone = float(np.clip(bone, *BONE_RANGE_HU))
    low, bone = round(low / BIN_HU) * BIN_HU, round(bone / BIN_HU) * BIN_HU
    reason = (
        f"soft-tissue mode {soft.hu:.0f} HU (sigma {soft_sigma:.0f}), arterial contrast mode "
        f"{contrast.hu:.0f} HU (half width {contrast.half_width_hu:.0f}): vessel window from "
        f"{low:.0f} HU, bone from {bone:.0f} HU"
    )
    return ThresholdSuggestion((float(low), float(bone)), float(bone), soft, contrast, reason, n)


__all__ = [
    "HistogramPeak",
    "ThresholdSuggestion",
    "histogram",
    "subsample",
    "suggest_thresholds",
]
