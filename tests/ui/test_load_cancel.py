"""Cancel during the load's separation step (the masks computed with a load in
separated mode) stops the load: the worker's progress function raises and the
separation passes it on instead of finishing first."""

from __future__ import annotations

import numpy as np
import pytest

# No QApplication and no platform setting here: _finish_volume is a plain function, and
# setting QT_QPA_PLATFORM at import would switch the whole test run's GUI tests (which
# need the xcb platform for the VTK widget) to offscreen.
pytest.importorskip("PySide6")

from viewer.core.errors import LoadCancelled  # noqa: E402
from viewer.core.volume import Volume, axis_aligned_affine  # noqa: E402
from viewer.ui.main_window import _finish_volume  # noqa: E402


def test_cancel_reaches_the_mask_step() -> None:
    hu = np.full((40, 64, 64), -1000, np.int16)
    hu[:, 16:48, 16:48] = 40
    hu[:, 28:36, 20:28] = 1200  # a bone
    hu[:, 28:32, 40:44] = 400  # a vessel
    vol = Volume(hu, (1.0, 1.0, 1.0), axis_aligned_affine((1.0, 1.0, 1.0)))
    seen: list[str] = []

    def progress(fraction: float, message: str) -> None:
        seen.append(message)
        if message.startswith("separation: bone"):
            raise LoadCancelled("cancelled by the user")

    with pytest.raises(LoadCancelled):
        _finish_volume(vol, (650.0, (170.0, 600.0), True, True), progress)
    assert any(m.startswith("separation:") for m in seen)
