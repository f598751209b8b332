"""Measurements a user places on slices or the 3D view: rulers and angles, in LPS mm.

Both are frozen value objects holding patient-space points (LPS, mm), so the same
measurement shows in every view, survives a re-render and goes into a session file
as plain numbers (:func:`measurement_to_dict` / :func:`measurement_from_dict`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from viewer.core.errors import ViewerError

Vec3 = tuple[float, float, float]


def _as_vec3(value: Any, what: str) -> Vec3:
    """A finite 3-vector (LPS mm) or a ViewerError naming ``what``."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ViewerError(f"{what} must be three numbers (L, P, S in mm), got {value!r}") from None
    if arr.shape != (3,) or not np.all(np.isfinite(arr)):
        raise ViewerError(f"{what} must be three finite numbers (L, P, S in mm), got {value!r}")
    return (float(arr[0]), float(arr[1]), float(arr[2]))


@dataclass(frozen=True)
class Ruler:
    """A straight distance between two points ``a_lps`` and ``b_lps`` (LPS mm)."""

    a_lps: Vec3
    b_lps: Vec3

    def __post_init__(self) -> None:
        object.__setattr__(self, "a_lps", _as_vec3(self.a_lps, "ruler point a_lps"))
        object.__setattr__(self, "b_lps", _as_vec3(self.b_lps, "ruler point b_lps"))

    @property
    def length_mm(self) -> float:
        """Euclidean distance between the two end points, mm."""
        return float(np.linalg.norm(np.subtract(self.b_lps, self.a_lps)))

    def label(self) -> str:
        """Text drawn next to the ruler, e.g. ``"42.3 mm"``."""
        return f"{self.length_mm:.1f} mm"


@dataclass(frozen=True)
class Angle:
    """The angle at ``vertex_lps`` between the arms to ``a_lps`` and ``b_lps`` (LPS mm).

    An arm of zero length has no direction, so constructing one raises
    :class:`ViewerError` (the user picked the vertex twice).
    """

    a_lps: Vec3
    vertex_lps: Vec3
    b_lps: Vec3

    def __post_init__(self) -> None:
        a = _as_vec3(self.a_lps, "angle point a_lps")
        v = _as_vec3(self.vertex_lps, "angle vertex_lps")
        b = _as_vec3(self.b_lps, "angle point b_lps")
        for name, p in (("a_lps", a), ("b_lps", b)):
            if float(np.linalg.norm(np.subtract(p, v))) < 1e-9:
                raise ViewerError(
                    f"angle arm to {name} has zero length (the point equals the vertex {v}): pick a different point"
                )
        object.__setattr__(self, "a_lps", a)
        object.__setattr__(self, "vertex_lps", v)
        object.__setattr__(self, "b_lps", b)

    @property
    def angle_deg(self) -> float:
        """Angle between the two arms in degrees, 0..180."""
        u = np.subtract(self.a_lps, self.vertex_lps)
        w = np.subtract(self.b_lps, self.vertex_lps)
        # atan2 of |u x w| and u . w is accurate near 0 and 180 degrees, where acos is not
        return float(math.degrees(math.atan2(float(np.linalg.norm(np.cross(u, w))), float(np.dot(u, w)))))

    def label(self) -> str:
        """Text drawn at the vertex, e.g. ``"37.5°"``."""
        return f"{self.angle_deg:.1f}\N{DEGREE SIGN}"


Measurement = Ruler | Angle


def measurement_to_dict(m: Measurement) -> dict[str, Any]:
    """Plain JSON-ready form: ``{"kind": "ruler", "a_lps": [...], "b_lps": [...]}`` or
    ``{"kind": "angle", "a_lps": [...], "vertex_lps": [...], "b_lps": [...]}``."""
    if isinstance(m, Ruler):
        return {"kind": "ruler", "a_lps": list(m.a_lps), "b_lps": list(m.b_lps)}
    if isinstance(m, Angle):
        return {"kind": "angle", "a_lps": list(m.a_lps), "vertex_lps": list(m.vertex_lps), "b_lps": list(m.b_lps)}
    raise ViewerError(f"not a measurement: {type(m).__name__}")


def measurement_from_dict(d: Any, source: str = "<measurement>") -> Measurement:
    """Inverse of :func:`measurement_to_dict`; a :class:`ViewerError` names ``source``
    and the field at fault."""
    if not isinstance(d, Mapping):
        raise ViewerError(f"{source}: a measurement must be an object, got {type(d).__name__}")
    kind = d.get("kind")
    fields = {"ruler": ("a_lps", "b_lps"), "angle": ("a_lps", "vertex_lps", "b_lps")}
    if kind not in fields:
        raise ViewerError(f"{source}: measurement field 'kind' must be 'ruler' or 'angle', got {kind!r}")
    values: list[Vec3] = []
    for name in fields[kind]:
        if name not in d:
            raise ViewerError(f"{source}: {kind} measurement has no field '{name}'")
        try:
            values.append(_as_vec3(d[name], f"field '{name}'"))
        except ViewerError as exc:
            raise ViewerError(f"{source}: {kind} measurement {exc}") from None
    try:
        if kind == "ruler":
            return Ruler(values[0], values[1])
        return Angle(values[0], values[1], values[2])
    except ViewerError as exc:
        raise ViewerError(f"{source}: {exc}") from None


__all__ = ["Angle", "Measurement", "Ruler", "Vec3", "measurement_from_dict", "measurement_to_dict"]
