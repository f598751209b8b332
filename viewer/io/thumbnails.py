"""A small picture of a series for the series picker: its middle image, windowed.

Reads one file (pydicom, with the installed decoders for compressed data), applies the
rescale to HU, windows it for soft tissue and contrast (W 800 / L 200, as the slice
views start) and shrinks it. Anything that goes wrong gives None: a thumbnail is a
convenience and must never stop a load.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from viewer.io.series import SeriesInfo

WINDOW_HU = (200.0 - 400.0, 200.0 + 400.0)


def series_thumbnail(info: SeriesInfo, size: int = 64) -> np.ndarray | None:
    """uint8 ``(h, w)`` image at most ``size`` pixels on its longer side, or None."""
    if info.kind != "dicom" or not info.files:
        return None
    files = list(info.files)
    path = Path(files[len(files) // 2])
    try:
        import pydicom

        ds = pydicom.dcmread(path)
        px = np.asarray(ds.pixel_array, dtype=np.float32)
        if px.ndim == 3:  # multi-frame: its middle frame
            px = px[px.shape[0] // 2]
        if px.ndim != 2:
            return None
        px = px * float(getattr(ds, "RescaleSlope", 1) or 1) + float(getattr(ds, "RescaleIntercept", 0) or 0)
    except (MemoryError, KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # noqa: BLE001 - see module docstring; pylibjpeg-rle's Rust
        return None  # decoder raises pyo3's PanicException (a BaseException) on corrupt RLE
    lo, hi = WINDOW_HU
    img = np.clip((px - lo) / (hi - lo) * 255.0, 0, 255).astype(np.uint8)
    step = max(1, int(np.ceil(max(img.shape) / float(size))))
    return np.ascontiguousarray(img[::step, ::step])


__all__ = ["series_thumbnail"]
