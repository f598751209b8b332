"""A 3D bool mask stored one bit a voxel: for the class masks that touch every memory
page of a full-size bool array though few of their voxels are set, or that are mostly
set (issue 9: "peak memory <= 3x the int16 volume").

Measured on the real chest tiled to 512 x 512 x 2000 (a 1000 MiB int16 volume): the
``removed`` mask (everything outside the body: 62 % of the voxels) and the ``hidden``
one (2.2 million voxels, yet spread over every slice's body rows, so every 4 KiB page
of its 500 MB holds one) were 1.0 GB resident between them; packed, 125 MB.

:class:`PackedMask` reads like a read-only bool array where the code reads masks:
``mask[z0:z1, ys, xs]`` (a slab: only its bits are unpacked), ``np.asarray(mask)``
(the whole mask, a new array), ``mask.at(k, j, i)`` (voxels by index arrays, read from
the bits), ``mask.any()``, ``mask.sum()``, ``mask.shape``; any
other index unpacks the whole mask first. It is never written after it is made.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

#: Slices unpacked or packed at a time by the whole-mask operations (bounded
#: temporaries: 32 slices of 512^2 are 8 MB of bool).
_CHUNK_SLICES = 32


class PackedMask:
    """A read-only 3D bool mask ``(nz, ny, nx)``, eight voxels a byte along x
    (``np.packbits(mask, axis=-1)``)."""

    __slots__ = ("bits", "shape")

    ndim = 3
    dtype = np.dtype(bool)

    def __init__(self, bits: np.ndarray, shape: tuple[int, int, int]) -> None:
        nz, ny, nx = (int(n) for n in shape)
        if bits.dtype != np.uint8 or bits.shape != (nz, ny, (nx + 7) // 8):
            raise ValueError(f"packed bits {bits.shape} {bits.dtype} do not fit a mask of shape {shape}")
        bits.setflags(write=False)
        self.bits = bits
        self.shape = (nz, ny, nx)

    # ----- making one ---------------------------------------------------------------
    @classmethod
    def pack(cls, mask: np.ndarray) -> PackedMask:
        """The packed copy of a 3D bool ``mask``."""
        m = np.asarray(mask)
        if m.ndim != 3:
            raise ValueError(f"need a 3D mask, got shape {m.shape}")
        out = cls.zeros(m.shape)
        out.fill(lambda z0, z1: m[z0:z1])
        return out

    @classmethod
    def zeros(cls, shape: tuple[int, ...]) -> PackedMask:
        """An empty mask, to be filled slab by slab with :meth:`fill` or :meth:`put`."""
        nz, ny, nx = (int(n) for n in shape)
        bits = np.zeros((nz, ny, (nx + 7) // 8), dtype=np.uint8)
        mask = cls.__new__(cls)
        mask.bits, mask.shape = bits, (nz, ny, nx)
        return mask

    def put(self, z0: int, slab: np.ndarray) -> None:
        """Write the bool ``slab`` (slices ``z0 ..``, whole slices) while the mask is
        being made (callers on several threads write disjoint slabs)."""
        s = np.asarray(slab, dtype=bool)
        if s.shape[1:] != self.shape[1:]:
            raise ValueError(f"slab {s.shape} does not fit a mask of shape {self.shape}")
        self.bits[z0 : z0 + s.shape[0]] = np.packbits(s, axis=-1)

    def fill(self, slab_at: Callable[[int, int], np.ndarray]) -> None:
        """Write every slab from ``slab_at(z0, z1)`` (bool slices z0..z1), a few
        slices at a time."""
        for z0 in range(0, self.shape[0], _CHUNK_SLICES):
            z1 = min(self.shape[0], z0 + _CHUNK_SLICES)
            self.put(z0, slab_at(z0, z1))

    def freeze(self) -> PackedMask:
        """Mark the mask read-only once made; returns it."""
        self.bits.setflags(write=False)
        return self

    # ----- reading it -----------------------------------------------------------------
    @property
    def size(self) -> int:
        nz, ny, nx = self.shape
        return nz * ny * nx

    @property
    def nbytes(self) -> int:
        """The bytes the mask holds (an eighth of a bool array's)."""
        return int(self.bits.nbytes)

    def _unpack(self, part: np.ndarray) -> np.ndarray:
        out: np.ndarray = np.unpackbits(part, axis=-1, count=self.shape[2]).view(bool)
        return out

    def __getitem__(self, key: Any) -> Any:
        k = key if isinstance(key, tuple) else (key,)
        if len(k) <= 3 and all(isinstance(s, (slice, int, np.integer)) for s in k):
            # z and y index the packed bits as they are (ints drop their axis); the
            # last axis stays the packed x, unpacked, then indexed
            unpacked = self._unpack(self.bits[k[:2]])
            return unpacked[..., k[2]] if len(k) == 3 else unpacked
        return np.asarray(self)[key]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = np.empty(self.shape, dtype=bool)
        for z0 in range(0, self.shape[0], _CHUNK_SLICES):
            out[z0 : z0 + _CHUNK_SLICES] = self._unpack(self.bits[z0 : z0 + _CHUNK_SLICES])
        return out if dtype is None else out.astype(dtype, copy=False)

    def at(self, k: np.ndarray, j: np.ndarray, i: np.ndarray) -> np.ndarray:
        """The voxels at integer index arrays ``(k, j, i)`` (z, y, x; in range), as a
        bool array: read from the bits, nothing unpacked."""
        kk, jj, ii = (np.asarray(a, dtype=np.intp) for a in (k, j, i))
        byte = self.bits[kk, jj, ii >> 3]
        out: np.ndarray = ((byte >> (7 - (ii & 7)).astype(np.uint8)) & 1).astype(bool)
        return out

    def any(self) -> bool:
        """Whether any voxel is set (the padding bits are never set)."""
        return bool(self.bits.any())

    def sum(self) -> int:
        """How many voxels are set."""
        return int(np.bitwise_count(self.bits).sum(dtype=np.int64))

    def __invert__(self) -> np.ndarray:
        out: np.ndarray = np.logical_not(np.asarray(self))
        return out

    def __and__(self, other: Any) -> np.ndarray:
        out: np.ndarray = np.logical_and(np.asarray(self), other)
        return out

    def __or__(self, other: Any) -> np.ndarray:
        out: np.ndarray = np.logical_or(np.asarray(self), other)
        return out

    # (both commutative)
    __rand__ = __and__
    __ror__ = __or__

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PackedMask):
            return self.shape == other.shape and bool(np.array_equal(self.bits, other.bits))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"PackedMask(shape={self.shape}, set={self.sum()})"


#: What a class mask may be: a bool array, or the same packed.
MaskArray = np.ndarray | PackedMask


def unpacked(mask: MaskArray) -> np.ndarray:
    """``mask`` as a bool array (a packed mask unpacked; a bool array as it is)."""
    return np.asarray(mask, dtype=bool)


__all__ = ["MaskArray", "PackedMask", "unpacked"]
