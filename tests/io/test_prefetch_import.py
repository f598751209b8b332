"""``vessel-viewer PATH`` starts reading the scan at process start (viewer.io.prefetch);
what it imports before the reading thread starts is on the path to the first frame."""

from __future__ import annotations

import subprocess
import sys


def test_the_prefetch_starts_without_importing_pydicom_or_scipy() -> None:
    code = (
        "import sys, viewer.cli, viewer.app, viewer.io.prefetch\n"
        "print(sorted(m for m in ('pydicom', 'scipy', 'vtkmodules', 'PySide6') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_package_names_still_resolve() -> None:
    import viewer.io as io
    from viewer.io import SeriesInfo, load_volume, scan_series

    assert io.load_volume is load_volume and callable(scan_series) and SeriesInfo.__name__ == "SeriesInfo"
    try:
        io.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("an unknown name must raise AttributeError")
