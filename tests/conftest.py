"""Shared test fixtures.

Real scans live in ``../shared/data`` next to the project (see that folder's README);
tests that need them are skipped, with the reason printed, where it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("VESSEL_VIEWER_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of real third-party CT scans; skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real CT data folder {SHARED_DATA} is absent (a clone on its own)")
    return SHARED_DATA


# --- the lower-leg phantom (viewer.phantom), shared by every test folder ---------------
@pytest.fixture(scope="session")
def small_phantom():
    """``viewer.phantom.generate("small")``: 96x96x218 voxels, 1.5 mm, seed 0 (about 1 s)."""
    from viewer.phantom import generate

    return generate("small")


@pytest.fixture(scope="session")
def small_phantom_dicom_dir(small_phantom, tmp_path_factory) -> Path:
    """The small phantom written once as a CT DICOM series (218 files); read-only use."""
    from viewer.io.writers import write_dicom_series

    out = tmp_path_factory.mktemp("small_phantom") / "dicom"
    write_dicom_series(small_phantom.volume, out)
    return out
