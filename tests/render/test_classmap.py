"""The one-component class encoding (viewer.core.classmap)."""

from __future__ import annotations

import numpy as np
import pytest

from viewer.core.classmap import (
    BONE_CODE_MAX,
    BONE_CODE_MIN,
    RAW_MAX_HU,
    RAW_MIN_HU,
    bone_code,
    class_transfer_points,
    decode_hu,
    encode_classes,
)
from viewer.core.errors import ViewerError
from viewer.core.transfer import IVORY, ClassAppearance, TransferFunction


def curve(tf: TransferFunction):
    op, col = class_transfer_points(tf)
    xs = np.array([p.x for p in op])
    assert np.all(np.diff(xs) > 0)
    assert [c.hu for c in col] == list(xs)
    o = np.array([p.opacity for p in op])
    rgb = np.array([[c.r, c.g, c.b] for c in col])
    return (lambda x: np.interp(x, xs, o)), (lambda x: np.array([np.interp(x, xs, rgb[:, i]) for i in range(3)]))


def test_encode_round_trip_and_ranges() -> None:
    rng = np.random.default_rng(0)
    hu = rng.integers(-2000, 4000, size=(6, 7, 8)).astype(np.int16)
    mask = rng.random(hu.shape) > 0.5
    enc = encode_classes(hu, mask)
    assert enc.dtype == np.int16
    assert enc[mask].max() <= BONE_CODE_MAX and enc[mask].min() >= BONE_CODE_MIN
    assert enc[~mask].min() >= RAW_MIN_HU and enc[~mask].max() <= RAW_MAX_HU
    back, bmask = decode_hu(enc)
    assert np.array_equal(bmask, mask)
    assert np.array_equal(back, np.clip(hu, RAW_MIN_HU, RAW_MAX_HU))
    assert np.array_equal(encode_classes(hu, None), np.clip(hu, RAW_MIN_HU, RAW_MAX_HU))
    out = np.zeros((8, 9, 10), np.int16)
    encode_classes(hu, mask, out=out[1:-1, 1:-1, 1:-1])
    assert np.array_equal(out[1:-1, 1:-1, 1:-1], enc) and out[0].max() == 0
    with pytest.raises(ViewerError):
        encode_classes(hu, mask[:-1])


def test_class_curves_colour_each_class() -> None:
    tf = TransferFunction(separated=True, vessel_window_hu=(180, 600), bone_threshold_hu=650)
    op, rgb = curve(tf)
    # Vessel window in the raw range: red and opaque.
    assert op(400) == pytest.approx(tf.vessel.opacity)
    assert rgb(400)[0] > 0.8 and rgb(400)[1] < 0.2
    # Dense bone: ivory; bone-class voxels in the vessel window's HU (trabecular,
    # marrow, rim): transparent -- that is what removes the fringe.
    assert op(bone_code(1200)) == pytest.approx(tf.bone.opacity)
    assert np.allclose(rgb(bone_code(1200)), IVORY, atol=1e-6)
    for h in (-1000, 0, 250, 400, 600):
        assert op(bone_code(h)) == 0.0, h
    # The gap and low raw HU: transparent.
    for x in np.linspace(BONE_CODE_MAX, RAW_MIN_HU, 9):
        assert op(x) == 0.0
    assert op(-500) == 0.0 and op(40) == 0.0


def test_interpolating_bone_with_its_neighbours_never_meets_red() -> None:
    """Linear interpolation between any bone code and a non-bone value below the
    vessel window crosses only transparent or ivory values -- never red."""
    tf = TransferFunction(separated=True)
    op, rgb = curve(tf)
    lo = tf.vessel_window_hu[0]
    for bone_hu in (200, 650, 1200, 2500):
        for other in (-1000, -100, 40, lo - 60):
            for x in np.linspace(bone_code(bone_hu), other, 400):
                c = rgb(x)
                red = op(x) > 0.01 and c[0] > 2 * c[1]
                assert not red, (bone_hu, other, x)


def test_class_toggles_are_curve_edits() -> None:
    tf = TransferFunction(separated=True)
    op, _ = curve(tf.with_changes(bone=ClassAppearance(IVORY, 0.9, False)))
    assert op(bone_code(1500)) == 0.0 and op(1500) == 0.0 and op(400) > 0
    op, _ = curve(tf.with_changes(vessel=ClassAppearance((1, 0, 0), 0.0, True)))
    assert op(400) == 0.0 and op(bone_code(1500)) > 0
    op, rgb = curve(tf.with_changes(soft_tissue=ClassAppearance((0.8, 0.5, 0.4), 0.2, True)))
    assert op(0) == pytest.approx(0.2) and op(bone_code(0)) == 0.0
