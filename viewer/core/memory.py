"""Refuse work that cannot fit in memory, with a message instead of a crash.

On Linux a huge ``np.empty`` usually *succeeds* (memory is overcommitted) and the
process is killed by the kernel later, while the voxels are written: no dialog, no
message, the surgeon's window just vanishes. So big allocations are checked first
against ``MemAvailable`` from ``/proc/meminfo``.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from viewer.core.errors import ViewerError

#: Fraction of the currently available memory one allocation may take: the rest is
#: for the copies that follow (class encoding for rendering, VTK's gradient tables).
MAX_FRACTION = 0.6


def available_memory_bytes() -> int | None:
    """``MemAvailable`` in bytes, or None where it cannot be read (not Linux)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def require_memory(nbytes: int | float, what: str, path: str | Path | None = None) -> None:
    """Raise :class:`ViewerError` when ``nbytes`` exceed :data:`MAX_FRACTION` of the
    available memory; do nothing when the available memory is unknown."""
    try:
        need = float(nbytes)
    except OverflowError:  # an int beyond float range: certainly too much
        need = float("inf")
    if not need < float("inf"):
        raise ViewerError(
            f"{what} needs more memory than any machine has (a size of "
            f"{str(nbytes)[:30]} bytes); the input's sizes or positions are corrupt",
            path,
        )
    avail = available_memory_bytes()
    if avail is None or need <= MAX_FRACTION * avail:
        return
    gib = 1024.0**3
    nbytes = need
    raise ViewerError(
        f"{what} needs {nbytes / gib:.1f} GiB but only {avail / gib:.1f} GiB of memory is available "
        f"(at most {MAX_FRACTION:.0%} of it is used for one volume, the rest is needed to render it); "
        "crop or downsample the scan, or close other programs",
        path,
    )


def trim_freed_memory() -> bool:
    """Hand memory freed by Python/numpy back to the OS (glibc ``malloc_trim(0)``).

    After a scan is replaced, glibc keeps the freed arenas of the old volume, its masks
    and VTK copies mapped for reuse, so the process's RSS stays at its high-water mark
    (measured in benchmarks/soak_gui.py, docs/bench-soak.md). Call it once after a scan
    replacement, not per frame: it walks the heap (a few ms). Returns False where there
    is no glibc (macOS, Windows, musl), where it does nothing.
    """
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


@functools.cache
def _malloc_trim() -> Any:
    """glibc's ``malloc_trim``, or None where there is none (looked up once: finding
    the C library runs ``ldconfig``)."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


__all__ = ["MAX_FRACTION", "available_memory_bytes", "require_memory", "trim_freed_memory"]
