"""The separation's fast paths (issue 8's speed target) give the answers of the plain
whole-volume operations they replace: slab-wise threaded morphology, gather
upsampling, block means, strided samples, label compose/split in a crop, the body's
crop and the per-volume cache of the threshold-independent stages.

Volumes here are larger than ``_PARALLEL_VOXELS`` where the threaded path matters.
"""

from __future__ import annotations

from pathlib import Path

import cc3d
import numpy as np
import pytest
from scipy import ndimage as ndi

from viewer.core import separation as S

WINDOW = (170.0, 600.0)
CROSS = ndi.generate_binary_structure(3, 1)


@pytest.fixture(scope="module")
def big_mask() -> np.ndarray:
    # 3.2 M voxels: above _PARALLEL_VOXELS, several slabs on the thread pool
    rng = np.random.default_rng(0)
    return ndi.binary_opening(rng.random((50, 256, 250)) > 0.55)


def _axes_structure(axes: tuple[int, ...]) -> np.ndarray:
    st = np.zeros((3, 3, 3), dtype=bool)
    st[1, 1, 1] = True
    for ax in axes:
        idx = [1, 1, 1]
        for v in (0, 2):
            idx[ax] = v
            st[tuple(idx)] = True
    return st


@pytest.mark.parametrize("axes", [(0, 1, 2), (1, 2), (0,), (2,)])
def test_dilate6_and_erode6_match_scipy(big_mask: np.ndarray, axes: tuple[int, ...]) -> None:
    assert big_mask.size > S._PARALLEL_VOXELS
    st = _axes_structure(axes)
    assert np.array_equal(S.dilate6(big_mask, axes), ndi.binary_dilation(big_mask, st))
    # the array's sides do not erode (as ~dilate(~a))
    assert np.array_equal(S.erode6(big_mask, axes), ndi.binary_erosion(big_mask, st, border_value=1))


def test_fused_dilation_within_without(big_mask: np.ndarray) -> None:
    rng = np.random.default_rng(1)
    within = rng.random(big_mask.shape) > 0.3
    without = rng.random(big_mask.shape) > 0.8
    want = ndi.binary_dilation(big_mask, CROSS) & within & ~without
    assert np.array_equal(S.dilate6(big_mask, within=within, without=without), want)


def test_box_erode_matches_scipy(big_mask: np.ndarray) -> None:
    r = (1, 2, 3)
    st = np.ones(tuple(2 * k + 1 for k in r), dtype=bool)
    assert np.array_equal(S._box_dilate(big_mask, r), ndi.binary_dilation(big_mask, st))
    assert np.array_equal(S._box_erode(big_mask, r), ndi.binary_erosion(big_mask, st, border_value=1))


@pytest.mark.parametrize("f", [(1, 3, 3), (2, 2, 2), (3, 1, 2)])
def test_upsample_and_upsample_box_repeat_cells(f: tuple[int, int, int]) -> None:
    rng = np.random.default_rng(2)
    shape = (31, 40, 47)
    coarse = rng.random(tuple(-(-n // k) for n, k in zip(shape, f, strict=True))) > 0.5
    want = coarse.repeat(f[0], 0).repeat(f[1], 1).repeat(f[2], 2)[: shape[0], : shape[1], : shape[2]]
    assert np.array_equal(S.upsample(coarse, f, shape), want)
    box = (slice(3, 29), slice(7, 40), slice(0, 11))
    assert np.array_equal(S.upsample_box(coarse, f, box), want[box])
    # a coarse grid one cell short repeats its last cell
    short = coarse[:-1]
    got = S.upsample(short, f, shape)
    assert np.array_equal(got[-1], got[(short.shape[0] * f[0]) - 1])


def test_block_means_exact_and_at_cells() -> None:
    rng = np.random.default_rng(3)
    a = rng.integers(-1024, 3000, (21, 30, 35)).astype(np.int16)
    f = (2, 3, 2)
    want = np.zeros(tuple(-(-n // k) for n, k in zip(a.shape, f, strict=True)), dtype=np.float64)
    for idx in np.ndindex(want.shape):
        block = a[tuple(slice(i * k, (i + 1) * k) for i, k in zip(idx, f, strict=True))]
        want[idx] = block.mean()
    got = S._pool_mean(a, f)
    assert got.dtype == np.float32
    assert np.allclose(got, want, atol=1e-3)
    cells = rng.random(want.shape) > 0.6
    assert np.array_equal(S._cell_means(a, f, cells), got[cells])


def test_strided_nonzero_is_flatnonzero_strided(big_mask: np.ndarray) -> None:
    idx = np.flatnonzero(big_mask)
    for m in (1000, 77_777, idx.size + 1):
        want = idx[:: idx.size // m + 1] if idx.size > m else idx
        assert np.array_equal(S.strided_nonzero(big_mask, m), want)


def test_compose_and_split_labels_in_a_crop() -> None:
    rng = np.random.default_rng(4)
    shape = (12, 40, 50)
    crop = (slice(0, 12), slice(5, 31), slice(9, 44))
    part = tuple(s.stop - s.start for s in crop)
    bone, calc, vessel, unc, body = (rng.random(part) > p for p in (0.7, 0.9, 0.8, 0.9, 0.2))
    labels = S.compose_labels(bone, calc, vessel, unc, body, shape, crop)
    want = np.full(shape, S.REMOVED, dtype=np.uint8)
    w = np.zeros(part, dtype=np.uint8)
    w[vessel] = S.VESSEL
    w[unc] = S.UNCERTAIN
    w[calc] = S.CALCIFICATION
    w[bone] = S.BONE
    w[~body] = S.REMOVED
    want[crop] = w
    assert np.array_equal(labels, want)
    codes = (S.BONE, S.VESSEL, S.NONE)
    for got, c in zip(S.split_labels(labels, codes, crop), codes, strict=True):
        inside = np.zeros(shape, dtype=bool)
        inside[crop] = True
        assert np.array_equal(got, (labels == c) & inside)


@pytest.fixture(scope="module")
def small_phantom():  # type: ignore[no-untyped-def]
    from viewer.phantom import generate

    return generate("small").volume


def test_crop_changes_no_label(small_phantom, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    v = small_phantom
    monkeypatch.setattr(S, "CROP_MIN_SAVING", -1.0)  # always crop
    cropped = S.separate(v.hu, v.spacing_mm, WINDOW, 650.0)
    assert cropped.crop is not None
    monkeypatch.setattr(S, "CROP_MIN_SAVING", 2.0)  # never crop
    S._PREP_CACHE.clear()
    whole = S.separate(v.hu, v.spacing_mm, WINDOW, 650.0)
    assert whole.crop is None
    assert np.array_equal(cropped.labels, whole.labels)
    assert np.array_equal(cropped.body, whole.body)
    assert cropped.thresholds == whole.thresholds


def test_threshold_change_reuses_the_body_and_matches_a_fresh_run(small_phantom) -> None:  # type: ignore[no-untyped-def]
    v = small_phantom
    S._PREP_CACHE.clear()
    first = S.separate(v.hu, v.spacing_mm, WINDOW, 650.0)
    assert "cached_body" not in first.timings_s
    again = S.separate(v.hu, v.spacing_mm, WINDOW, 700.0)
    assert again.timings_s.get("cached_body") == 1.0
    S._PREP_CACHE.clear()
    fresh = S.separate(v.hu, v.spacing_mm, WINDOW, 700.0)
    assert "cached_body" not in fresh.timings_s
    assert np.array_equal(again.labels, fresh.labels)
    assert again.thresholds == fresh.thresholds
    # the cache holds the body packed (it stays while the scan is shown); a cached run
    # gets the same body as a bool array of its own, read-only
    from viewer.core.packed import PackedMask

    held = S._PREP_CACHE[0].body_c
    assert isinstance(held, PackedMask) and held.nbytes * 7 < held.size
    assert again.body_in_crop is not held and again.body_in_crop.dtype == np.bool_
    assert np.array_equal(np.asarray(held), fresh.body_in_crop) and not again.body_in_crop.flags.writeable


def test_cache_does_not_serve_another_volume_or_setting(small_phantom) -> None:  # type: ignore[no-untyped-def]
    v = small_phantom
    S._PREP_CACHE.clear()
    S.separate(v.hu, v.spacing_mm, WINDOW, 650.0)
    other = v.hu.copy()
    other[other > 0] += 40  # another volume (another buffer, other voxels)
    assert "cached_body" not in S.separate(other, v.spacing_mm, WINDOW, 650.0).timings_s
    assert "cached_body" not in S.separate(other, v.spacing_mm, WINDOW, 650.0, remove_table=False).timings_s
    spacing = tuple(s * 1.5 for s in v.spacing_mm)
    assert "cached_body" not in S.separate(other, spacing, WINDOW, 650.0, remove_table=False).timings_s


def test_float_hu_gives_the_labels_of_the_same_int16_volume(small_phantom) -> None:  # type: ignore[no-untyped-def]
    v = small_phantom
    a = S.separate(v.hu, v.spacing_mm, WINDOW, 650.0)
    b = S.separate(v.hu.astype(np.float32), v.spacing_mm, WINDOW, 650.0)
    assert b.crop == a.crop
    assert np.array_equal(a.labels, b.labels)


def _same_pieces(a: np.ndarray, b: np.ndarray) -> bool:
    """Same partition into pieces (labels may be numbered differently)."""
    m = a > 0
    if not np.array_equal(m, b > 0):
        return False
    pairs = np.unique(np.stack([a[m], b[m]], axis=1), axis=0)
    return len(pairs) == len(np.unique(pairs[:, 0])) == len(np.unique(pairs[:, 1]))


@pytest.mark.parametrize("connectivity", [6, 18, 26])
def test_labelling_in_slabs_on_a_worker_gives_cc3ds_pieces(connectivity: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a worker thread :func:`label` labels slab by slab (the GIL is held for one
    slab at a time) and joins the pieces across the slabs' faces: the pieces must be
    cc3d's, for every connectivity, sparse and dense masks, slabs of 1-3 slices."""
    from concurrent.futures import ThreadPoolExecutor

    from viewer.core import separation as S

    rng = np.random.default_rng(connectivity)
    with ThreadPoolExecutor(1) as pool:
        for share, slab_voxels in ((0.15, 17 * 19), (0.45, 2 * 17 * 19), (0.75, 3 * 17 * 19)):
            m = rng.random((23, 17, 19)) < share
            monkeypatch.setattr(S, "LABEL_CHUNK_VOXELS", slab_voxels)
            got = pool.submit(S.label, m, connectivity).result()
            want = cc3d.connected_components(m, connectivity=connectivity)
            assert _same_pieces(got, want), (share, slab_voxels)
            assert int(got.max()) == int(want.max())
        # a strided view (the separation labels boxes cut out of larger masks)
        big = rng.random((23, 21, 25)) < 0.5
        view = big[:, 2:-2, 3:-3]
        monkeypatch.setattr(S, "LABEL_CHUNK_VOXELS", 2 * 17 * 19)
        got = pool.submit(S.label, view, connectivity).result()
        assert _same_pieces(got, cc3d.connected_components(np.ascontiguousarray(view), connectivity=connectivity))
    # on the main thread: cc3d's own call, numbering included
    np.testing.assert_array_equal(S.label(m, connectivity), cc3d.connected_components(m, connectivity=connectivity))


def test_write_sparse_writes_the_mask_and_leaves_empty_pages_unmapped() -> None:
    """:func:`write_sparse` gives ``dst == mask`` for empty, sparse and dense masks; an
    empty or sparse class leaves the pages of its fresh ``np.zeros`` mask unmapped
    (Linux: its resident memory grows by the pages its voxels reach only)."""
    rng = np.random.default_rng(5)
    for share in (0.0, 0.01, 0.5):
        mask = rng.random((8, 64, 64)) < share
        dst = np.zeros(mask.shape, dtype=bool)
        S.write_sparse(dst, mask)
        assert np.array_equal(dst, mask)
    status = Path("/proc/self/status")
    if not status.exists():
        pytest.skip("resident memory is read from /proc (Linux)")

    def rss_mb() -> float:
        line = next(x for x in status.read_text().splitlines() if x.startswith("VmRSS"))
        return int(line.split()[1]) / 1024

    big = np.zeros((400, 512, 512), dtype=bool)  # 105 MB, not yet mapped
    sparse = np.zeros(big.shape, dtype=bool)
    sparse[200, 100, 100:110] = True  # one page's worth
    before = rss_mb()
    S.write_sparse(big, sparse)
    grown = rss_mb() - before
    assert big[200, 100, 100:110].all() and big.sum() == 10
    # the temporaries of the call are freed; the mask itself holds a page or two
    assert grown < 20.0, f"resident memory grew by {grown:.0f} MB"


@pytest.mark.parametrize("connectivity", [6, 18, 26])
def test_keep_pieces_keeps_the_pieces_one_labelling_keeps(connectivity: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """keep_pieces (slabs of 1-3 slices, no label image of the whole mask) keeps exactly
    the pieces a single cc3d labelling of the whole mask would keep by the same rule
    (size and marked-voxel count of the whole piece, across slab faces), and ORs them
    into ``out`` when given."""
    import cc3d

    rng = np.random.default_rng(100 + connectivity)
    for per in (1, 2, 3):
        monkeypatch.setattr(S, "KEEP_SLAB_SLICES", per)
        monkeypatch.setattr(S, "LABEL_CHUNK_VOXELS", 10**9)
        for density in (0.08, 0.3, 0.55):
            mask = rng.random((11, 23, 19)) < density
            hu = rng.integers(0, 400, size=mask.shape)

            def rule(size: np.ndarray, bright: np.ndarray) -> np.ndarray:
                return (size >= 4) & (bright >= 2)

            got = S.keep_pieces(mask, lambda z0, z1, hu=hu: hu[z0:z1] >= 300, rule, connectivity)
            lab = cc3d.connected_components(mask, connectivity=connectivity)
            n = int(lab.max()) + 1
            size = np.bincount(lab[mask], minlength=n)
            bright = np.bincount(lab[mask & (hu >= 300)], minlength=n)
            ok = rule(size, bright)
            ok[0] = False
            assert np.array_equal(got, ok[lab] & mask), (per, density)
            assert got.any() and not got.all()
            prior = rng.random(mask.shape) < 0.1
            out = prior.copy()
            S.keep_pieces(mask, lambda z0, z1, hu=hu: hu[z0:z1] >= 300, rule, connectivity, out=out)
            assert np.array_equal(out, prior | got)


@pytest.mark.parametrize("connectivity", [6, 26])
def test_labels_at_gives_the_pieces_of_one_labelling_at_the_points(
    connectivity: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """labels_at (slabs of 1-3 slices) names the same pieces at the asked voxels as one
    cc3d labelling of the whole mask, up to the numbering; 0 outside the mask."""
    import cc3d

    rng = np.random.default_rng(7 + connectivity)
    monkeypatch.setattr(S, "LABEL_CHUNK_VOXELS", 10**9)
    for per in (1, 2, 3):
        monkeypatch.setattr(S, "KEEP_SLAB_SLICES", per)
        mask = rng.random((9, 17, 21)) < 0.35
        pts = np.sort(rng.choice(mask.size, size=600, replace=False))
        got, n = S.labels_at(mask, pts, connectivity)
        ref = cc3d.connected_components(mask, connectivity=connectivity).reshape(-1)[pts]
        assert n == int(cc3d.connected_components(mask, connectivity=connectivity).max())
        assert np.array_equal(got == 0, ref == 0)
        pairs = np.unique(np.stack([got[ref > 0], ref[ref > 0]], axis=1), axis=0)
        assert len(pairs) == len(np.unique(pairs[:, 0])) == len(np.unique(pairs[:, 1])), per
        # points in any order: the same piece at each
        shuffle = rng.permutation(pts.size)
        again, _ = S.labels_at(mask, pts[shuffle], connectivity)
        assert np.array_equal(again, got[shuffle])
