"""The render buffer cut to the patient's body (issue 9).

The CPU ray caster (``vtkFixedPointVolumeRayCastMapper``) computes a shading gradient
for **every voxel of its input** (a normal index and a magnitude: 3 bytes a voxel,
1.5x an int16 volume) in the first render after new scalars, and its space-leaping
min/max blocks too: 2.1 + 0.7 s for a 512 x 512 x 550 input on this 2-core machine.
The visible extent (:mod:`viewer.render.extent`) only shortens the rays; gradients,
blocks and the buffer itself were still made for the whole scan.

In separated mode with the table removed, everything outside the patient's body
(:attr:`viewer.core.extraction.ClassMasks.removed`) is encoded as air
(:data:`~viewer.core.classmap.RAW_MIN_HU`), and so is the buffer's one-voxel border.
Air is transparent under every transfer function that does not itself give opacity to
-1024 HU (:func:`air_shown`). So the render buffer is made for the body's box only (:func:`body_box`),
widened by :data:`MARGIN` voxels of air, and placed where it lies: its image origin is
the box corner, so image coordinates -- the user matrix, the cropping region, the
camera -- are those of the whole buffer.

Why the image stays the same: every voxel left out is air of zero opacity. Two voxels
of air are kept on each side, so every gradient that reads a non-air neighbour, and
every sample between a non-air voxel and air, lies inside the box with the neighbours
it has in the whole buffer; what changes is where the rays start sampling (the box's
faces), as with the visible extent's cropping (tests: mean difference under 0.5 %).
A transfer function that draws air (opacity at -1024) gets the whole buffer again
(:func:`air_shown` is part of the buffer's key).

Not cut: raw (one-class) buffers, the keyhole and distance colouring (they keep the
whole buffer, as before).
"""

from __future__ import annotations

import numpy as np

from viewer.core.classmap import RAW_MIN_HU, class_transfer_points, mip_transfer_points
from viewer.core.packed import MaskArray, PackedMask
from viewer.core.transfer import TransferFunction

#: Voxels of air kept round the body box on each side (see the module doc).
MARGIN = 2

#: (z0, z1, y0, y1, x0, x1): half-open index ranges of the render buffer.
BufferBox = tuple[int, int, int, int, int, int]


def air_shown(tf: TransferFunction) -> bool:
    """Whether ``tf``, as the scene draws it (class encoding, MIP or raw), gives air
    (:data:`RAW_MIN_HU`, and the next integer, which VTK's tables may round to) any
    opacity."""
    if tf.blend_mode == "mip":
        pts, _ = mip_transfer_points(tf)
    elif tf.separated:
        pts, _ = class_transfer_points(tf, bone_low_hu=None)
    else:
        pts = tf.opacity_points()
    if not pts:
        return False
    xs = np.array([float(p.x) for p in pts])
    ops = np.array([float(p.opacity) for p in pts])
    order = np.argsort(xs, kind="stable")
    probe = np.array([RAW_MIN_HU, RAW_MIN_HU + 1], dtype=float)
    # Outside its points VTK holds the end values (clamping on), as np.interp does.
    return bool(np.any(np.interp(probe, xs[order], ops[order]) > 0.0))


#: Slices per step of :func:`body_box` (a few MB of bools at a time).
_CHUNK_SLICES = 16


def body_box(removed: MaskArray) -> tuple[slice, slice, slice] | None:
    """Index slices (z, y, x) of the box round the voxels ``removed`` (bool ``(nz, ny,
    nx)``, or packed) does not hold; None when it holds every voxel."""
    r = removed if isinstance(removed, PackedMask) else np.asarray(removed)
    if r.ndim != 3 or r.size == 0:
        raise ValueError(f"need a non-empty 3D mask, got shape {r.shape}")
    nz, ny, nx = r.shape
    zs = np.zeros(nz, dtype=bool)
    ys = np.zeros(ny, dtype=bool)
    xs = np.zeros(nx, dtype=bool)
    for z0 in range(0, nz, _CHUNK_SLICES):
        kept = ~r[z0 : z0 + _CHUNK_SLICES]
        z_any = kept.any(axis=(1, 2))
        zs[z0 : z0 + kept.shape[0]] = z_any
        if z_any.any():
            ys |= kept.any(axis=(0, 2))
            xs |= kept.any(axis=(0, 1))
    if not zs.any():
        return None

    def span(flags: np.ndarray) -> slice:
        idx = np.flatnonzero(flags)
        return slice(int(idx[0]), int(idx[-1]) + 1)

    return (span(zs), span(ys), span(xs))


def buffer_box(volume_shape: tuple[int, int, int], crop: tuple[slice, slice, slice] | None) -> BufferBox | None:
    """The part of the render buffer (``volume_shape`` + 2 each way: the air border) to
    make when everything of the volume outside ``crop`` (volume index slices z, y, x)
    is air: ``crop`` shifted by the border and widened by :data:`MARGIN`, clipped; None
    when there is no crop or it would keep the whole buffer."""
    if crop is None:
        return None
    out: list[int] = []
    for n, sl in zip(volume_shape, crop, strict=True):
        start, stop, _ = sl.indices(n)
        if stop <= start:
            start, stop = 0, 1
        # volume index v is buffer index v + 1
        out += [max(0, start + 1 - MARGIN), min(n + 2, stop + 1 + MARGIN)]
    full = [0, volume_shape[0] + 2, 0, volume_shape[1] + 2, 0, volume_shape[2] + 2]
    if out == full:
        return None
    return (out[0], out[1], out[2], out[3], out[4], out[5])


def whole_buffer(buffer: np.ndarray, box: BufferBox | None, volume_shape: tuple[int, int, int]) -> np.ndarray:
    """The whole render buffer (``volume_shape`` + 2 each way) of ``buffer``, the part
    ``box`` of it (a new array, air outside ``box``; ``buffer`` itself when ``box`` is
    None). For checks and tests: the scene never needs it."""
    if box is None:
        return buffer
    out = np.full(tuple(n + 2 for n in volume_shape), RAW_MIN_HU, dtype=buffer.dtype)
    out[box[0] : box[1], box[2] : box[3], box[4] : box[5]] = buffer
    return out


def origin_mm(box: BufferBox | None, spacing_mm: tuple[float, float, float]) -> tuple[float, float, float]:
    """Image origin (x, y, z, mm in image coordinates) of a buffer that is the part
    ``box`` of the whole render buffer (whose origin is 0)."""
    if box is None:
        return (0.0, 0.0, 0.0)
    return (box[4] * float(spacing_mm[0]), box[2] * float(spacing_mm[1]), box[0] * float(spacing_mm[2]))


__all__ = ["MARGIN", "BufferBox", "air_shown", "body_box", "buffer_box", "origin_mm", "whole_buffer"]
