"""Camera state as plain data, and the six standard anatomical views.

All positions are in LPS patient coordinates (mm): the renderer's world frame *is*
LPS (the volume is placed with its ``ijk_to_lps``, see ``viewer.render.scene``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from viewer.core.errors import ViewerError

Vec3 = tuple[float, float, float]

#: view name -> (direction of projection, view up), both in LPS.
#: "anterior": the camera stands in front of the patient (at -Y, anterior) looking
#: posterior (+Y), the patient's head up (+Z); then the image's right is +X, the
#: patient's left -- the radiologist's convention (as if facing the patient).
#: "inferior" looks up from the feet with anterior up: patient's left on image right,
#: like an axial CT slice. "superior" looks down from the head, anterior up.
STANDARD_VIEWS: dict[str, tuple[Vec3, Vec3]] = {
    "anterior": ((0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),
    "posterior": ((0.0, -1.0, 0.0), (0.0, 0.0, 1.0)),
    "left": ((-1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),
    "right": ((1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),
    "superior": ((0.0, 0.0, -1.0), (0.0, -1.0, 0.0)),
    "inferior": ((0.0, 0.0, 1.0), (0.0, -1.0, 0.0)),
}


def _vec3(v: Any, name: str) -> Vec3:
    try:
        t = tuple(float(x) for x in v)
    except (TypeError, ValueError) as exc:
        raise ViewerError(f"camera {name} must be three numbers, got {v!r}") from exc
    if len(t) != 3 or not all(np.isfinite(t)):
        raise ViewerError(f"camera {name} must be three finite numbers, got {v!r}")
    return t


@dataclass(frozen=True)
class CameraState:
    """Where the camera is: LPS mm positions, view-up unit vector, lens.

    ``view_angle_deg`` applies to perspective projection, ``parallel_scale_mm`` (half
    the viewport height in mm) to parallel projection.
    """

    position_lps: Vec3
    focal_point_lps: Vec3
    view_up: Vec3 = (0.0, 0.0, 1.0)
    view_angle_deg: float = 30.0
    parallel_projection: bool = False
    parallel_scale_mm: float = 100.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "position_lps", _vec3(self.position_lps, "position_lps"))
        object.__setattr__(self, "focal_point_lps", _vec3(self.focal_point_lps, "focal_point_lps"))
        object.__setattr__(self, "view_up", _vec3(self.view_up, "view_up"))
        if np.allclose(self.position_lps, self.focal_point_lps):
            raise ViewerError("camera position and focal point coincide")
        if np.linalg.norm(self.view_up) == 0:
            raise ViewerError("camera view_up is the zero vector")
        a = float(self.view_angle_deg)
        if not 0.0 < a < 180.0:
            raise ViewerError(f"camera view angle must be in (0, 180) degrees, got {a}")
        object.__setattr__(self, "view_angle_deg", a)
        object.__setattr__(self, "parallel_projection", bool(self.parallel_projection))
        s = float(self.parallel_scale_mm)
        if not (np.isfinite(s) and s > 0):
            raise ViewerError(f"camera parallel scale must be positive, got {s}")
        object.__setattr__(self, "parallel_scale_mm", s)

    @property
    def direction_of_projection(self) -> np.ndarray:
        d = np.subtract(self.focal_point_lps, self.position_lps)
        unit: np.ndarray = d / np.linalg.norm(d)
        return unit

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CameraState:
        if not isinstance(d, Mapping):
            raise ViewerError(f"camera state must be a mapping, got {type(d).__name__}")
        missing = [k for k in ("position_lps", "focal_point_lps") if k not in d]
        if missing:
            raise ViewerError(f"camera state lacks {', '.join(missing)}")
        known = {
            "position_lps",
            "focal_point_lps",
            "view_up",
            "view_angle_deg",
            "parallel_projection",
            "parallel_scale_mm",
        }
        return cls(**{k: v for k, v in d.items() if k in known})


__all__ = ["CameraState", "STANDARD_VIEWS", "Vec3"]
