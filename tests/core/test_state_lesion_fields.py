"""ViewerState's lesion-planning fields: events, normalisation, refusal of bad values."""

from __future__ import annotations

import pytest

from viewer.core.lesion import Lesion
from viewer.core.measure import Angle, Ruler
from viewer.core.state import ViewerState


def test_fields_default_and_emit_once() -> None:
    st = ViewerState()
    assert st.lesion is None and st.vessel_colouring == "off" and st.keyhole is False
    assert st.measurements == () and st.lesion_analysis is None
    seen: list[object] = []
    st.lesion_changed.connect(seen.append)
    st.lesion = Lesion.sphere((1, 2, 3), 10)
    st.lesion = Lesion.sphere((1.0, 2.0, 3.0), 10.0)  # equal: no second event
    assert len(seen) == 1
    keyhole: list[object] = []
    st.keyhole_changed.connect(keyhole.append)
    st.keyhole = 1  # type: ignore[assignment]
    assert keyhole == [True]


def test_measurements_are_a_tuple_and_none_clears() -> None:
    st = ViewerState()
    r = Ruler((0, 0, 0), (3, 4, 0))
    a = Angle((1, 0, 0), (0, 0, 0), (0, 1, 0))
    st.measurements = [r, a]  # type: ignore[assignment]
    assert st.measurements == (r, a)
    st.measurements = None  # type: ignore[assignment]
    assert st.measurements == ()


@pytest.mark.parametrize(
    "field, value, exc",
    [
        ("vessel_colouring", "rainbow", ValueError),
        ("vessel_colouring", None, ValueError),
        ("keyhole", None, ValueError),
        ("lesion", (1, 2, 3), TypeError),
        ("lesion_analysis", "done", TypeError),
        ("measurements", [(0, 0, 0)], TypeError),
    ],
)
def test_bad_values_are_refused_and_state_unchanged(field: str, value: object, exc: type[Exception]) -> None:
    st = ViewerState()
    before = getattr(st, field)
    with pytest.raises(exc):
        setattr(st, field, value)
    assert getattr(st, field) == before
