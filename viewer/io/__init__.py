"""Loading CT data from disk into a Volume: DICOM series, NIfTI, NRRD, MetaImage.

Public API:
    scan_series(paths, progress=None) -> list[SeriesInfo]
    load_volume(paths, series=None, progress=None) -> Volume
See docs/loading.md for what is supported and how geometry problems are handled.

The names are imported on first use (PEP 562): ``viewer.io.prefetch`` starts reading a
scan at process start, and importing this package must not first import pydicom
(0.35 s) on the thread that starts it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from viewer.io.api import load_volume, scan_series
    from viewer.io.series import SeriesInfo

__all__ = ["SeriesInfo", "load_volume", "scan_series"]


def __getattr__(name: str) -> Any:
    if name in ("load_volume", "scan_series"):
        from viewer.io import api

        return getattr(api, name)
    if name == "SeriesInfo":
        from viewer.io.series import SeriesInfo

        return SeriesInfo
    raise AttributeError(f"module 'viewer.io' has no attribute {name!r}")
