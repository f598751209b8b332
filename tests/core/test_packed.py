"""Packed class masks (viewer.core.packed): one bit a voxel, read like a bool array
where the code reads masks, and what the separation hands on for its dense classes."""

from __future__ import annotations

import numpy as np
import pytest

from viewer.core.packed import PackedMask, unpacked

KEYS = [
    np.s_[1:3],
    np.s_[1:3, 2:5],
    np.s_[1:3, 2:5, 3:9],
    np.s_[2],
    np.s_[2, 3],
    np.s_[2, 3, 4],
    np.s_[:, 1, ::2],
    np.s_[-2:, :, -3:],
    np.s_[..., 1],
    np.s_[np.array([0, 2])],
]


@pytest.mark.parametrize("shape", [(5, 7, 13), (40, 33, 64), (3, 1, 1), (70, 4, 9)])
def test_a_packed_mask_reads_as_the_bool_array(shape: tuple[int, int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    m = rng.random(shape) < 0.3
    p = PackedMask.pack(m)
    assert p.shape == m.shape and p.ndim == 3 and p.dtype == np.bool_ and p.size == m.size
    assert p.nbytes == shape[0] * shape[1] * ((shape[2] + 7) // 8)
    assert np.array_equal(np.asarray(p), m) and np.array_equal(unpacked(p), m)
    assert p.sum() == int(m.sum()) and p.any() == bool(m.any())
    for key in [*KEYS, m]:
        try:
            want = m[key]
        except IndexError:
            with pytest.raises(IndexError):
                p[key]
            continue
        assert np.array_equal(p[key], want), key
    assert np.array_equal(~p, ~m)
    other = rng.random(shape) < 0.5
    assert np.array_equal(p & other, m & other) and np.array_equal(other & p, m & other)
    assert np.array_equal(p | other, m | other) and np.array_equal(other | p, m | other)
    assert p == PackedMask.pack(m) and p != PackedMask.pack(other)


def test_a_packed_mask_looks_voxels_up_in_its_bits() -> None:
    rng = np.random.default_rng(5)
    m = rng.random((9, 7, 21)) < 0.3
    p = PackedMask.pack(m)
    k, j, i = (rng.integers(0, n, 500) for n in m.shape)
    np.testing.assert_array_equal(p.at(k, j, i), m[k, j, i])
    assert p.at(k, j, i).dtype == np.bool_


def test_a_packed_mask_is_filled_by_slabs_and_then_read_only() -> None:
    m = np.zeros((50, 6, 10), dtype=bool)
    m[10:20, 2, 3:7] = True
    p = PackedMask.zeros(m.shape)
    assert not p.any() and p.sum() == 0
    p.put(10, m[10:20])
    p.freeze()
    assert np.array_equal(np.asarray(p), m)
    with pytest.raises(ValueError):
        p.bits[0, 0, 0] = 1
    with pytest.raises(ValueError):
        PackedMask.zeros((5, 6, 10)).put(0, np.zeros((2, 6, 11), bool))
    with pytest.raises(ValueError):
        PackedMask(np.zeros((5, 6, 3), np.uint8), (5, 6, 10))
    assert PackedMask.zeros((1, 1, 9)).sum() == 0  # the padding bits count for nothing


def test_the_separation_hands_on_its_dense_classes_packed_and_right() -> None:
    """The bone, removed (outside the body) and hidden (classless window voxels)
    classes come packed, an eighth of a bool array's bytes, with the voxels of the
    separation's labels."""
    from viewer.core import separation as S
    from viewer.core.extraction import class_masks_for
    from viewer.core.mask_policy import MaskSettings
    from viewer.phantom import generate

    vol = generate("small").volume
    settings = MaskSettings(650.0, (170.0, 600.0), True, True)
    m = class_masks_for(vol.hu, vol.spacing_mm, settings)
    assert (
        isinstance(m.removed, PackedMask)
        and m.removed.nbytes * 8 < m.removed.size + 8 * m.removed.shape[0] * m.removed.shape[1]
    )
    sep = S.separate(vol.hu, vol.spacing_mm, settings.vessel_window_hu, settings.bone_threshold_hu)
    assert np.array_equal(np.asarray(m.removed), sep.labels == S.REMOVED)
    assert isinstance(m.bone, PackedMask) and m.bone.any()
    assert np.array_equal(np.asarray(m.bone), sep.labels == S.BONE)
    # the exported bone (without its faint outer layer) is the same read packed or not
    hu = vol.hu
    from dataclasses import replace

    assert np.array_equal(m.bone_core(hu), replace(m, bone=unpacked(m.bone)).bone_core(hu))
    assert m.removed.sum() > 0.3 * vol.hu.size  # the air and the couch round the legs
    if m.hidden is not None:
        assert isinstance(m.hidden, PackedMask)
        want = (sep.labels == S.NONE) & (vol.hu >= settings.vessel_window_hu[0])
        assert np.array_equal(np.asarray(m.hidden), want)
