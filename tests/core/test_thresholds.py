"""Automatic threshold suggestion: real CTA (aorta), analytic leg, no-contrast scan."""

from __future__ import annotations

import gzip
import struct
import time
from pathlib import Path

import numpy as np
import pytest

from viewer.core.errors import ViewerError
from viewer.core.thresholds import DEFAULT_BONE_THRESHOLD_HU, histogram, suggest_thresholds


def _read_nifti(path: Path) -> np.ndarray:
    """Minimal NIfTI-1 reader for the test data (little/big endian, scl_slope/inter),
    independent of the project's loader; returns ``(nz, ny, nx)``."""
    raw = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
    e = "<" if struct.unpack("<i", raw[:4])[0] == 348 else ">"
    dim = struct.unpack(e + "8h", raw[40:56])
    dtype = {2: "u1", 4: "i2", 8: "i4", 16: "f4", 64: "f8", 256: "i1", 512: "u2"}[struct.unpack(e + "h", raw[70:72])[0]]
    off = int(struct.unpack(e + "f", raw[108:112])[0])
    slope, inter = struct.unpack(e + "2f", raw[112:120])
    shape = dim[1 : 1 + dim[0]]
    a = np.frombuffer(raw[off:], dtype=e + dtype, count=int(np.prod(shape))).reshape(shape[::-1])
    if slope not in (0.0, 1.0) or inter != 0.0:
        a = a * slope + inter
    return a


@pytest.fixture(scope="module")
def aorta(shared_data: Path) -> tuple[np.ndarray, np.ndarray]:
    d = shared_data / "cta-aorta-nifti"
    return _read_nifti(d / "ct_cropped.nii.gz"), _read_nifti(d / "aorta.nii.gz") > 0


def test_aorta_lies_in_the_suggested_window(aorta) -> None:
    ct, mask = aorta
    s = suggest_thresholds(ct, (1.5, 1.5, 1.5))
    lo, hi = s.vessel_window_hu
    a = ct[mask]
    inside = (a >= lo) & (a <= hi)
    # The contrast mode found is the aorta's own (its HU mode is about 460-490).
    assert s.contrast_peak is not None and 420 <= s.contrast_peak.hu <= 520, s.reason
    assert lo <= np.median(a) <= hi
    # The mask includes unenhanced blood / thrombus (about 20 % of its voxels are
    # below 130 HU, the bolus-tracking trigger; docs/transfer-functions.md). Of the
    # enhanced aorta (>= 130 HU) at least 90 % is in the window; of all of it >= 72 %.
    enhanced = a >= 130
    assert inside[enhanced].mean() >= 0.90, (s.reason, inside[enhanced].mean())
    assert inside.mean() >= 0.72, (s.reason, inside.mean())
    assert 500 <= s.bone_threshold_hu <= 800
    assert "contrast mode" in s.reason


def test_leg_suggestion(synthetic_leg, leg_labels) -> None:
    hu, lab = synthetic_leg
    s = suggest_thresholds(hu)
    lo, hi = s.vessel_window_hu
    art = hu[lab == leg_labels["artery"]]
    assert lo < np.percentile(art, 5) and np.percentile(art, 95) < hi
    assert lo > 45 + 3 * 12  # above muscle and its noise
    assert s.bone_threshold_hu < 1300  # below the cortex


def test_no_contrast_gives_defaults_and_says_why() -> None:
    rng = np.random.default_rng(0)
    hu = (rng.normal(40, 15, (20, 40, 40))).astype(np.int16)
    hu[:, :5] = -1000
    hu[:, 30:34, 10:20] = 1200
    s = suggest_thresholds(hu)
    assert s.contrast_peak is None
    assert s.bone_threshold_hu == DEFAULT_BONE_THRESHOLD_HU
    assert "no arterial contrast" in s.reason
    with pytest.raises(ViewerError):
        suggest_thresholds(np.zeros((0, 3, 3), np.int16))


def test_fast_on_a_big_volume_and_histogram() -> None:
    big = np.broadcast_to(np.arange(-1000, 1000, 2, dtype=np.int16)[None, None, :], (300, 512, 1000))
    t = time.perf_counter()
    suggest_thresholds(big)
    counts, edges = histogram(big, 100, (-1000, 1000))
    assert time.perf_counter() - t < 2.0
    assert counts.shape == (100,) and edges.shape == (101,)
    assert counts.sum() == pytest.approx(big.size, rel=1e-6)
    # Uniform ramp -> flat histogram.
    assert counts.std() / counts.mean() < 0.05


def test_aorta_not_taken_as_calcification(aorta) -> None:
    """Real CTA (1.5 mm): the calcified-shell class takes none of the enhanced aorta,
    whose lumen lies against unenhanced thrombus (measured: 0 voxels of calcification,
    86 % of the enhanced aorta in the vessel mask, 7.7 % in the bone mask where it
    touches the spine)."""
    from viewer.core.extraction import extract

    ct, mask = aorta
    s = suggest_thresholds(ct)
    ex = extract(np.asarray(ct, dtype=np.int16), (1.5, 1.5, 1.5), s.bone_threshold_hu, s.vessel_window_hu)
    enhanced = mask & (ct >= 130)
    assert ex.calcification[enhanced].mean() < 0.01
    assert ex.vessel[enhanced].mean() > 0.80
