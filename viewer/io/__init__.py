"""Loading CT data from disk into a Volume: DICOM series, NIfTI, NRRD, MetaImage.

Public API:
    scan_series(paths, progress=None) -> list[SeriesInfo]
    load_volume(paths, series=None, progress=None) -> Volume
See docs/loading.md for what is supported and how geometry problems are handled.
"""

from viewer.io.api import load_volume, scan_series
from viewer.io.series import SeriesInfo

__all__ = ["SeriesInfo", "load_volume", "scan_series"]
