"""Fixtures for the render tests; the helpers live in render_helpers.py (a unique
module name: several test folders have a conftest.py, so ``from conftest import``
would pick whichever was imported first)."""

from __future__ import annotations

import numpy as np
import pytest
from render_helpers import Leg, _from_phantom  # noqa: F401


@pytest.fixture(scope="session")
def leg() -> Leg:
    got = _from_phantom()
    if got is not None:
        return got
    from render_synthetic import ARTERY, BONE, make_synthetic

    s = make_synthetic()
    return Leg(
        s.volume,
        s.labels == BONE,
        s.labels == ARTERY,
        np.zeros_like(s.labels, bool),
        s.landmarks["erosion_box_lps"],
        "synthetic",
    )  # type: ignore[arg-type]
