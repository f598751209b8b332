"""Where the volume can be seen: the voxel box the ray caster needs to visit (issue 9).

The CPU ray caster (``vtkFixedPointVolumeRayCastMapper``) walks every ray through the
whole volume box; its only empty-space skipping is a per-sample look-up of a 4-voxel
min/max block, a memory load that dominates the frame time on mostly transparent CT
(measured: 77 % of a chest frame in the ray loop, most of it in that look-up). Rays
through voxels that no transfer-function value makes visible add nothing to the image.
So the scene tells the mapper (VTK's *cropping region*, sub-volume mode, which tightens
both the screen rectangle it casts rays in and every ray's start and end) to visit only
the box around the voxels that some class shows, intersected with the user's crop box.

Exactness: the box is built from blocks of ``BLOCK`` voxels whose value ranges include
one voxel of the next block, so every interpolation cell lies within one block and every
value a trilinear sample can take lies in that block's ``[min, max]``. A block is kept
when any integer value in its range has non-zero opacity (VTK's fixed-point tables are
indexed by integer value), widened by one value each way for the GPU mapper's sampling.
Voxels outside the box can therefore only contribute zero opacity: the image is the same
(the tests compare it with the uncropped render). Any transfer-function edit, new
scalars, or crop-box change recomputes the box: a class that becomes visible is never
cut off.

Pure numpy; no VTK, no window.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Block edge (voxels) of the value-range grid. 8: 1/512 of the voxels, a box at most
#: 8 voxels looser than the voxel-exact one.
BLOCK = 8

#: (i0, i1, j0, j1, k0, k1): inclusive voxel index bounds (x, y, z) in the render buffer.
IndexBox = tuple[int, int, int, int, int, int]


def _reduce_axis(a: np.ndarray, axis: int, block: int, fn: str) -> np.ndarray:
    """``a.min`` / ``a.max`` (``fn``) over blocks of ``block`` along ``axis``, each block
    also taking the first element of the next one (the one-voxel overlap). A loop over
    blocks of whole slabs: numpy's ``ufunc.reduceat`` was 30x slower here."""
    n = a.shape[axis]
    parts = []
    for start in range(0, n, block):
        sl = [slice(None)] * a.ndim
        sl[axis] = slice(start, min(start + block + 1, n))
        parts.append(getattr(a[tuple(sl)], fn)(axis=axis))
    return np.stack(parts, axis=axis)


class BlockRanges:
    """Per-block ``min`` / ``max`` of a ``(nz, ny, nx)`` scalar array (blocks of
    ``block`` voxels, each including one voxel layer of its + neighbours)."""

    def __init__(self, scalars: np.ndarray, block: int = BLOCK) -> None:
        a = np.asarray(scalars)
        if a.ndim != 3 or a.size == 0:
            raise ValueError(f"need a non-empty 3D array, got shape {a.shape}")
        self.block = int(block)
        self.shape = a.shape
        lo = a
        hi = a
        # Slowest-varying axis first (whole planes, elementwise), the innermost axis
        # last, on an array 1/64 of the size: 0.1 s for 512x512x1000 int16.
        for axis in (0, 1, 2):
            lo = _reduce_axis(lo, axis, self.block, "min")
            hi = _reduce_axis(hi, axis, self.block, "max")
        self.lo = lo.astype(np.int64)
        self.hi = hi.astype(np.int64)

    def visible_box(self, visible_values: np.ndarray, value_min: int) -> IndexBox | None:
        """The voxel box (inclusive, x/y/z) around the blocks whose value range holds a
        visible value; ``visible_values[v - value_min]`` says whether value ``v`` can be
        seen. None when no block can."""
        vis = np.asarray(visible_values, dtype=bool)
        cum = np.concatenate([[0], np.cumsum(vis, dtype=np.int64)])
        n = len(vis)
        lo = np.clip(self.lo - value_min, 0, n)
        hi = np.clip(self.hi - value_min + 1, 0, n)
        keep = cum[hi] > cum[lo]
        if not keep.any():
            return None
        b = self.block
        out: list[int] = []
        for axis_zyx in (2, 1, 0):  # x, y, z
            other = tuple(a for a in (0, 1, 2) if a != axis_zyx)
            idx = np.flatnonzero(keep.any(axis=other))
            n_vox = self.shape[axis_zyx]
            out += [int(idx[0]) * b, min(int(idx[-1] + 1) * b, n_vox - 1)]
        return (out[0], out[1], out[2], out[3], out[4], out[5])


def visible_values(
    opacity_points: Sequence[tuple[float, float]], value_min: int, value_max: int, margin: int = 1
) -> np.ndarray:
    """Bool per integer value in ``[value_min, value_max]``: whether the piecewise-linear
    opacity through ``(x, opacity)`` points (clamped at its ends, as VTK does) is non-zero
    there, or within ``margin`` values, or a point between the neighbours is."""
    pts = sorted((float(x), float(o)) for x, o in opacity_points)
    v = np.arange(value_min, value_max + 1, dtype=np.float64)
    if not pts:
        return np.zeros(len(v), dtype=bool)
    xs = np.array([p[0] for p in pts])
    os_ = np.array([p[1] for p in pts])
    vis = np.interp(v, xs, os_) > 0.0
    # Segments: opaque anywhere inside (x_i, x_i+1) if an end is; mark their integer span.
    for i in range(len(pts) - 1):
        if os_[i] > 0.0 or os_[i + 1] > 0.0:
            a = int(np.floor(xs[i])) - value_min
            b = int(np.ceil(xs[i + 1])) - value_min
            if b >= 0 and a < len(v):
                vis[max(a, 0) : min(b, len(v) - 1) + 1] = True
    if margin > 0 and vis.any():
        k = np.ones(2 * margin + 1)
        vis = np.convolve(vis.astype(np.float64), k, mode="same") > 0.0
    out: np.ndarray = np.asarray(vis, dtype=bool)
    return out


def mip_exact(opacity_points: Sequence[tuple[float, float]]) -> bool:
    """Whether cropping to the visible box keeps a maximum-intensity projection exact:
    true when every invisible value lies below every visible one (a ramp that is zero
    below a level and positive above), so a ray's maximum over dropped voxels can never
    beat a kept visible value."""
    pts = sorted((float(x), float(o)) for x, o in opacity_points)
    seen_visible = False
    for _, o in pts:
        if o > 0.0:
            seen_visible = True
        elif seen_visible:
            return False
    return True


def box_of_points(points_ijk: np.ndarray, dims_xyz: Sequence[int]) -> IndexBox:
    """The voxel box (inclusive, clamped to the volume) around fractional index points."""
    p = np.asarray(points_ijk, dtype=np.float64).reshape(-1, 3)
    lo = np.floor(p.min(axis=0)).astype(int) - 1
    hi = np.ceil(p.max(axis=0)).astype(int) + 1
    out: list[int] = []
    for a in range(3):
        n = int(dims_xyz[a])
        out += [int(np.clip(lo[a], 0, n - 1)), int(np.clip(hi[a], 0, n - 1))]
    return (out[0], out[1], out[2], out[3], out[4], out[5])


def intersect(a: IndexBox, b: IndexBox) -> IndexBox | None:
    """The common part of two inclusive boxes, or None."""
    out: list[int] = []
    for i in range(3):
        lo, hi = max(a[2 * i], b[2 * i]), min(a[2 * i + 1], b[2 * i + 1])
        if lo > hi:
            return None
        out += [lo, hi]
    return (out[0], out[1], out[2], out[3], out[4], out[5])


class VisibleExtent:
    """The cropping box for one scene: caches the block ranges of the current render
    buffer (recomputed only for a new buffer) and turns the transfer function's opacity
    and the crop box into a voxel box. ``enabled = False`` turns it off (the full
    volume; tests and the benchmark compare the two)."""

    def __init__(self) -> None:
        self.enabled = True
        self._ranges: BlockRanges | None = None
        self._for: np.ndarray | None = None
        #: The last box computed (inclusive buffer voxel indices, x/y/z), or None when
        #: the whole volume is kept.
        self.box: IndexBox | None = None

    def ranges(self, buffer: np.ndarray) -> BlockRanges:
        if self._ranges is None or self._for is not buffer:
            self._ranges = BlockRanges(buffer)
            self._for = buffer
        return self._ranges

    def has_ranges_for(self, buffer: np.ndarray) -> bool:
        """Whether the block ranges of ``buffer`` are made (no pass over it to ask)."""
        return self._ranges is not None and self._for is buffer

    def prime(self, buffer: np.ndarray, ranges: BlockRanges) -> None:
        """Use ``ranges`` (made elsewhere, e.g. on a worker thread) for ``buffer``."""
        self._ranges = ranges
        self._for = buffer

    def clear(self) -> None:
        self._ranges = None
        self._for = None
        self.box = None

    def index_box(
        self,
        buffer: np.ndarray | None,
        opacity_points: Sequence[tuple[float, float]],
        mip: bool,
        crop_corners_ijk: np.ndarray | None,
    ) -> IndexBox | None:
        """The voxel box of ``buffer`` (``(nz, ny, nx)``) the rays must visit, or None
        for all of it. ``crop_corners_ijk``: the crop box's corners as fractional buffer
        indices (x, y, z), or None. An empty view gives a one-cell box."""
        self.box = None
        if buffer is None or not self.enabled:
            return None
        nz, ny, nx = buffer.shape
        full: IndexBox = (0, nx - 1, 0, ny - 1, 0, nz - 1)
        box: IndexBox | None = full
        if not mip or mip_exact(opacity_points):
            br = self.ranges(buffer)
            vmin, vmax = int(br.lo.min()), int(br.hi.max())
            box = br.visible_box(visible_values(opacity_points, vmin, vmax), vmin)
        if box is not None and crop_corners_ijk is not None:
            box = intersect(box, box_of_points(crop_corners_ijk, (nx, ny, nz)))
        if box is None:
            box = (0, min(1, nx - 1), 0, min(1, ny - 1), 0, min(1, nz - 1))
        if box == full:
            return None
        self.box = box
        return box


__all__ = [
    "BLOCK",
    "BlockRanges",
    "IndexBox",
    "VisibleExtent",
    "box_of_points",
    "intersect",
    "mip_exact",
    "visible_values",
]
