"""The separation reads the HU of the body's box through a view (no copy): the helpers
that gather voxels by flat index or grow masks slab by slab must give what the plain
whole-array code gives, on views as on contiguous arrays."""

from __future__ import annotations

import numpy as np
import pytest

from viewer.core import separation as S


def _view() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    whole = rng.integers(-1000, 2000, size=(9, 40, 50)).astype(np.int16)
    view = whole[:, 5:33, 7:44]
    assert not view.flags.c_contiguous
    return whole, view


def test_flat_reader_of_a_view_reads_the_voxels_a_copy_would() -> None:
    whole, view = _view()
    copy = np.ascontiguousarray(view)
    idx = np.random.default_rng(1).integers(0, view.size, 500)
    reader = S.flat_reader(view)
    assert not isinstance(reader, np.ndarray) and reader.size == view.size
    assert np.array_equal(reader[idx], copy.reshape(-1)[idx])
    assert np.array_equal(reader[idx.reshape(20, 25)], copy.reshape(-1)[idx.reshape(20, 25)])
    flat = S.flat_reader(whole)
    assert isinstance(flat, np.ndarray) and np.shares_memory(flat, whole)  # contiguous: a view
    with pytest.raises(ValueError):
        S.flat_reader(view)[np.array([view.size])]  # out of range is an error, not another voxel


def test_neighbourhoods_and_local_spread_of_a_view_match_the_copy() -> None:
    _whole, view = _view()
    copy = np.ascontiguousarray(view)
    inner = np.zeros(view.shape, bool)
    inner[1:-1, 1:-1, 1:-1] = True
    idx = np.flatnonzero(inner)[::7]
    assert np.array_equal(S._neighbourhoods(view, idx), S._neighbourhoods(copy, idx))
    assert np.array_equal(S._local_sd_at(view, idx), S._local_sd_at(copy, idx))
    assert np.array_equal(S._local_sd_in_range(view, idx, 0, 900), S._local_sd_in_range(copy, idx, 0, 900))
    # the column order: z outermost, x innermost
    z, y, x = np.unravel_index(idx[:1], view.shape)
    want = copy[z[0] - 1 : z[0] + 2, y[0] - 1 : y[0] + 2, x[0] - 1 : x[0] + 2].reshape(-1)
    assert np.array_equal(S._neighbourhoods(view, idx[:1])[0], want.astype(np.float32))


@pytest.mark.parametrize("steps", [1, 2, 3])
def test_growth_slab_by_slab_is_the_whole_array_growth(steps: int) -> None:
    rng = np.random.default_rng(steps)
    shape = (120, 200, 200)  # several slabs of the pool
    assert len(S._slabs(shape)) >= 3
    mask = rng.random(shape) < 0.01
    allowed = rng.random(shape) < 0.6
    want = mask.copy()
    front = mask
    for _ in range(steps):
        front = S.dilate6(front, within=allowed, without=want)
        want |= front
    got = S._grown_through(mask, lambda z0, z1: allowed[z0:z1], steps)
    assert np.array_equal(got, want)
    assert got.sum() > mask.sum()  # it grew
