"""Rulers and angles (viewer.core.measure): lengths, angles, labels, serialisation."""

from __future__ import annotations

import math

import pytest

from viewer.core.errors import ViewerError
from viewer.core.measure import Angle, Ruler, measurement_from_dict, measurement_to_dict


def test_ruler_length_and_label() -> None:
    r = Ruler((0.0, 0.0, 0.0), (3.0, 4.0, 12.0))
    assert r.length_mm == pytest.approx(13.0)
    assert r.label() == "13.0 mm"
    assert Ruler((1.0, 1.0, 1.0), (1.0, 1.0, 1.0)).length_mm == 0.0


def test_angle_degrees_and_label() -> None:
    a = Angle((10.0, 0.0, 0.0), (0.0, 0.0, 0.0), (0.0, 5.0, 0.0))
    assert a.angle_deg == pytest.approx(90.0)
    assert a.label() == "90.0\N{DEGREE SIGN}"
    t = math.radians(37.5)
    b = Angle((2.0, 0.0, 1.0), (1.0, 0.0, 1.0), (1.0 + math.cos(t), math.sin(t), 1.0))
    assert b.angle_deg == pytest.approx(37.5)
    assert b.label() == "37.5\N{DEGREE SIGN}"
    straight = Angle((-1.0, 0.0, 0.0), (0.0, 0.0, 0.0), (1.0, 0.0, 0.0))
    assert straight.angle_deg == pytest.approx(180.0)


def test_bad_points_raise_viewer_error() -> None:
    with pytest.raises(ViewerError, match="a_lps"):
        Ruler((float("nan"), 0.0, 0.0), (1.0, 0.0, 0.0))
    with pytest.raises(ViewerError, match="b_lps"):
        Ruler((0.0, 0.0, 0.0), (1.0, 0.0))  # type: ignore[arg-type]
    with pytest.raises(ViewerError, match="zero length"):
        Angle((0.0, 0.0, 0.0), (0.0, 0.0, 0.0), (1.0, 0.0, 0.0))


def test_round_trip_and_field_errors() -> None:
    for m in (Ruler((1.0, 2.0, 3.0), (4.0, 5.0, 6.5)), Angle((1.0, 0.0, 0.0), (0.0, 0.0, 0.0), (0.0, 1.0, 2.0))):
        d = measurement_to_dict(m)
        assert measurement_from_dict(d, "s.json") == m
    with pytest.raises(ViewerError, match="s.json.*'kind'"):
        measurement_from_dict({"kind": "circle"}, "s.json")
    with pytest.raises(ViewerError, match="s.json.*'vertex_lps'"):
        measurement_from_dict({"kind": "angle", "a_lps": [0, 0, 0], "b_lps": [1, 0, 0]}, "s.json")
    with pytest.raises(ViewerError, match="s.json.*'b_lps'"):
        measurement_from_dict({"kind": "ruler", "a_lps": [0, 0, 0], "b_lps": "x"}, "s.json")
    with pytest.raises(ViewerError, match="s.json"):
        measurement_from_dict([1, 2], "s.json")
