"""Sessions: everything needed to reproduce a view, as a versioned JSON file.

A session names the scan (absolute path, and the path relative to the session file
so a folder moved together with its session still opens), the series in a multi-series
folder, the preset name and the *full* transfer function (so a later edit of the preset
file does not change an old session's image), separated mode, the camera, the crop box,
the clip plane, the window layout, and the lesion-planning view: the lesion, the
measurements (rulers and angles), the vessel colouring and the keyhole.

File format (``schema_version`` 2; version 1 files, without the last four fields,
still load)::

    {
      "schema_version": 2,
      "software": "vessel-viewer 0.1.0",
      "data": {"path": "/abs/scan", "relative_path": "../scan", "series": null},
      "preset_name": "Bone + vessels",
      "transfer_function": { ... preset file schema, see viewer.core.presets ... },
      "separated": true,
      "camera": {"position_lps": [x, y, z], "focal_point_lps": [x, y, z],
                 "view_up": [x, y, z], "view_angle_deg": 30.0,
                 "parallel_projection": false, "parallel_scale_mm": 100.0},
      "crop_box_lps": [xmin, xmax, ymin, ymax, zmin, zmax] | null,
      "clip_plane": {"origin_lps": [x, y, z], "normal_lps": [x, y, z]} | null,
      "layout": "3d",
      "lesion": {"center_lps": [x, y, z], "radius_mm": 20.0, "box_lps": null} | null,
      "measurements": [{"kind": "ruler", "a_lps": [...], "b_lps": [...]},
                       {"kind": "angle", "a_lps": [...], "vertex_lps": [...], "b_lps": [...]}],
      "vessel_colouring": "off" | "lesion" | "bone",
      "keyhole": false
    }

The built-in phantom is named ``"phantom"`` or ``"phantom:<size>"`` instead of a path.

Sessions are written atomically (temporary file in the same folder, then
``os.replace``): a crash or a full disk never leaves a half-written session, and the
previous file stays intact. Reading validates every field and raises
:class:`~viewer.core.errors.ViewerError` naming the file and the field.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from viewer import __version__
from viewer.core.errors import ViewerError
from viewer.core.fileio import atomic_write_text
from viewer.core.lesion import Lesion
from viewer.core.measure import Angle, Measurement, Ruler, measurement_from_dict, measurement_to_dict
from viewer.core.presets import preset_from_dict, preset_to_dict
from viewer.core.state import VESSEL_COLOURINGS
from viewer.core.transfer import TransferFunction

#: Version of the session format written by :func:`save_session`.
SESSION_SCHEMA_VERSION = 2

_TOP_FIELDS = (
    "schema_version",
    "software",
    "data",
    "preset_name",
    "transfer_function",
    "separated",
    "camera",
    "crop_box_lps",
    "clip_plane",
    "layout",
    "lesion",
    "measurements",
    "vessel_colouring",
    "keyhole",
)
_DATA_FIELDS = ("path", "relative_path", "series")
_CAMERA_VECTORS = ("position_lps", "focal_point_lps", "view_up")

Vec3 = tuple[float, float, float]


def is_builtin_source(path: str) -> bool:
    """True for ``"phantom"`` / ``"phantom:<size>"``: the built-in phantom, not a file."""
    return path == "phantom" or path.startswith("phantom:")


@dataclass(frozen=True)
class Session:
    """A reproducible view. Units: mm; frame: patient LPS.

    Attributes:
        data_path: absolute path of the scan (file or DICOM folder), or ``"phantom"``
            / ``"phantom:<size>"``.
        series: series key within a multi-series folder (as the loader's ``series``
            argument), or None.
        preset_name: name of the preset the transfer function started from.
        transfer_function: the full transfer function in use.
        separated: separated bone/vessel mode on or off.
        camera: camera state as ``CameraState.to_dict()`` (LPS mm, degrees), or None
            for the default view.
        crop_box_lps: ``(xmin, xmax, ymin, ymax, zmin, zmax)`` in LPS mm, or None.
        clip_plane: ``(origin_lps, normal_lps)``, or None.
        layout: the window layout name (e.g. ``"3d"``, ``"2x2"``).
        lesion: the marked lesion (sphere or box, LPS mm), or None.
        measurements: rulers and angles (LPS mm), in the order they were made.
        vessel_colouring: ``"off"``, ``"lesion"`` or ``"bone"`` (distance colouring).
        keyhole: bone removed inside the lesion region.
        data_path_relative: the scan path relative to the session file's folder, as
            read from a file (filled in by :func:`save_session` when writing).
        schema_version: format version this session was read as.
        software: program and version that wrote it.
    """

    data_path: str
    transfer_function: TransferFunction
    preset_name: str = ""
    series: str | None = None
    separated: bool = False
    camera: Mapping[str, Any] | None = None
    crop_box_lps: tuple[float, float, float, float, float, float] | None = None
    clip_plane: tuple[Vec3, Vec3] | None = None
    layout: str = "3d"
    lesion: Lesion | None = None
    measurements: tuple[Measurement, ...] = ()
    vessel_colouring: str = "off"
    keyhole: bool = False
    data_path_relative: str | None = None
    schema_version: int = SESSION_SCHEMA_VERSION
    software: str = field(default=f"vessel-viewer {__version__}")

    def __post_init__(self) -> None:
        # Validate through the same code as reading a file, so a Session built in code
        # can always be written and read back.
        _validate_fields(self, "<session>")

    def with_changes(self, **changes: Any) -> Session:
        return replace(self, **changes)

    # ----- dict <-> Session -------------------------------------------------------
    def to_dict(self, session_file: str | Path | None = None) -> dict[str, Any]:
        """JSON-able dict; with ``session_file``, the scan path relative to it is filled in."""
        rel = self.data_path_relative
        if session_file is not None and not is_builtin_source(self.data_path):
            try:
                rel = os.path.relpath(self.data_path, Path(session_file).resolve().parent)
            except ValueError:  # different drives on Windows: no relative path exists
                rel = None
        return {
            "schema_version": SESSION_SCHEMA_VERSION,
            "software": f"vessel-viewer {__version__}",
            "data": {"path": self.data_path, "relative_path": rel, "series": self.series},
            "preset_name": self.preset_name,
            "transfer_function": preset_to_dict(self.transfer_function),
            "separated": self.separated,
            "camera": None if self.camera is None else _plain(self.camera),
            "crop_box_lps": None if self.crop_box_lps is None else list(self.crop_box_lps),
            "clip_plane": None
            if self.clip_plane is None
            else {"origin_lps": list(self.clip_plane[0]), "normal_lps": list(self.clip_plane[1])},
            "layout": self.layout,
            "lesion": None if self.lesion is None else _plain(self.lesion.to_dict()),
            "measurements": [measurement_to_dict(m) for m in self.measurements],
            "vessel_colouring": self.vessel_colouring,
            "keyhole": self.keyhole,
        }


def _plain(obj: Any) -> Any:
    """Mappings/tuples/numpy scalars -> plain JSON types."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return obj


class _Check:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, fld: str, problem: str) -> ViewerError:
        return ViewerError(f"{self.source}: session field '{fld}' {problem}")

    def number(self, v: Any, fld: str) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise self.fail(fld, f"must be a finite number, got {v!r}")
        return float(v)

    def vec(self, v: Any, fld: str, n: int = 3) -> tuple[float, ...]:
        if not isinstance(v, (list, tuple)) or len(v) != n:
            raise self.fail(fld, f"must be a list of {n} numbers, got {v!r}")
        return tuple(self.number(x, fld) for x in v)


def _validate_fields(s: Session, source: str) -> None:
    c = _Check(source)
    if not isinstance(s.data_path, str) or not s.data_path.strip():
        raise c.fail("data.path", f"must be a non-empty string, got {s.data_path!r}")
    if s.series is not None and not isinstance(s.series, str):
        raise c.fail("data.series", f"must be a string or null, got {s.series!r}")
    if not isinstance(s.transfer_function, TransferFunction):
        raise c.fail("transfer_function", "must be a TransferFunction")
    if not isinstance(s.preset_name, str):
        raise c.fail("preset_name", f"must be a string, got {s.preset_name!r}")
    if not isinstance(s.separated, bool):
        raise c.fail("separated", f"must be true or false, got {s.separated!r}")
    if not isinstance(s.layout, str) or not s.layout:
        raise c.fail("layout", f"must be a non-empty string, got {s.layout!r}")
    if s.camera is not None:
        if not isinstance(s.camera, Mapping):
            raise c.fail("camera", f"must be an object or null, got {type(s.camera).__name__}")
        for k in _CAMERA_VECTORS:
            if k not in s.camera:
                raise c.fail(f"camera.{k}", "is missing")
            c.vec(s.camera[k], f"camera.{k}")
        pos = s.camera["position_lps"]
        foc = s.camera["focal_point_lps"]
        if all(abs(float(a) - float(b)) < 1e-9 for a, b in zip(pos, foc, strict=False)):
            raise c.fail("camera", "has its position at its focal point (no view direction)")
        if "view_angle_deg" in s.camera:
            a = c.number(s.camera["view_angle_deg"], "camera.view_angle_deg")
            if not 0 < a < 180:
                raise c.fail("camera.view_angle_deg", f"must be in (0, 180) degrees, got {a}")
        if "parallel_projection" in s.camera and not isinstance(s.camera["parallel_projection"], bool):
            raise c.fail("camera.parallel_projection", "must be true or false")
        if "parallel_scale_mm" in s.camera:
            if c.number(s.camera["parallel_scale_mm"], "camera.parallel_scale_mm") <= 0:
                raise c.fail("camera.parallel_scale_mm", "must be > 0 mm")
    if s.crop_box_lps is not None:
        b = c.vec(s.crop_box_lps, "crop_box_lps", 6)
        if not (b[0] <= b[1] and b[2] <= b[3] and b[4] <= b[5]):
            raise c.fail("crop_box_lps", f"must be [xmin, xmax, ymin, ymax, zmin, zmax] with min <= max, got {list(b)}")
        object.__setattr__(s, "crop_box_lps", b)
    if s.clip_plane is not None:
        if not isinstance(s.clip_plane, (list, tuple)) or len(s.clip_plane) != 2:
            raise c.fail("clip_plane", "must be (origin_lps, normal_lps)")
        o = c.vec(s.clip_plane[0], "clip_plane.origin_lps")
        n = c.vec(s.clip_plane[1], "clip_plane.normal_lps")
        if math.hypot(*n) < 1e-9:
            raise c.fail("clip_plane.normal_lps", "must not be the zero vector")
        object.__setattr__(s, "clip_plane", (o, n))
    if s.lesion is not None and not isinstance(s.lesion, Lesion):
        raise c.fail("lesion", f"must be a Lesion or null, got {type(s.lesion).__name__}")
    if not isinstance(s.measurements, (list, tuple)):
        raise c.fail("measurements", f"must be a list, got {type(s.measurements).__name__}")
    for i, m in enumerate(s.measurements):
        if not isinstance(m, (Ruler, Angle)):
            raise c.fail(f"measurements[{i}]", f"must be a ruler or an angle, got {type(m).__name__}")
    object.__setattr__(s, "measurements", tuple(s.measurements))
    if s.vessel_colouring not in VESSEL_COLOURINGS:
        raise c.fail("vessel_colouring", f"must be one of {', '.join(VESSEL_COLOURINGS)}, got {s.vessel_colouring!r}")
    if s.vessel_colouring == "lesion" and s.lesion is None:
        raise c.fail("vessel_colouring", "is 'lesion' but the session has no lesion")
    if not isinstance(s.keyhole, bool):
        raise c.fail("keyhole", f"must be true or false, got {s.keyhole!r}")


def session_from_dict(d: Any, source: str = "<session>") -> Session:
    """Validate a session dict (as read from JSON) and build the :class:`Session`."""
    c = _Check(source)
    if not isinstance(d, Mapping):
        raise ViewerError(f"{source}: a session must be a JSON object, got {type(d).__name__}")
    if "schema_version" not in d:
        raise ViewerError(f"{source}: not a vessel-viewer session (no 'schema_version' field)")
    ver = d["schema_version"]
    if isinstance(ver, bool) or not isinstance(ver, int) or ver < 1:
        raise c.fail("schema_version", f"must be a positive integer, got {ver!r}")
    if ver > SESSION_SCHEMA_VERSION:
        raise ViewerError(
            f"{source}: session format version {ver} is newer than this program understands "
            f"(it reads up to version {SESSION_SCHEMA_VERSION}); "
            f"it was written by {d.get('software', 'a newer vessel-viewer')!s}: update vessel-viewer to open it"
        )
    for k in d:
        if k not in _TOP_FIELDS:
            raise c.fail(str(k), f"is not a known field (known: {', '.join(_TOP_FIELDS)})")
    data = d.get("data")
    if not isinstance(data, Mapping):
        raise c.fail("data", "is missing or not an object (it names the scan)")
    for k in data:
        if k not in _DATA_FIELDS:
            raise c.fail(f"data.{k}", f"is not a known field (known: {', '.join(_DATA_FIELDS)})")
    if "transfer_function" not in d:
        raise c.fail("transfer_function", "is missing")
    try:
        tf = preset_from_dict(d["transfer_function"], source=f"{source}: transfer_function")
    except ViewerError as exc:
        raise ViewerError(str(exc)) from None
    rel = data.get("relative_path")
    if rel is not None and not isinstance(rel, str):
        raise c.fail("data.relative_path", f"must be a string or null, got {rel!r}")
    clip = d.get("clip_plane")
    clip_t = None
    if clip is not None:
        if not isinstance(clip, Mapping) or set(clip) != {"origin_lps", "normal_lps"}:
            raise c.fail("clip_plane", 'must be null or {"origin_lps": [...], "normal_lps": [...]}')
        clip_t = (clip["origin_lps"], clip["normal_lps"])
    lesion = None
    if d.get("lesion") is not None:
        lesion = Lesion.from_dict(d["lesion"], source=f"{source}: session field 'lesion'")
    raw_measurements = d.get("measurements", [])
    if not isinstance(raw_measurements, list):
        raise c.fail("measurements", f"must be a list, got {type(raw_measurements).__name__}")
    measurements = tuple(
        measurement_from_dict(m, source=f"{source}: session field 'measurements[{i}]'")
        for i, m in enumerate(raw_measurements)
    )
    software = d.get("software", "")
    try:
        return Session(
            data_path=data.get("path"),  # type: ignore[arg-type]
            data_path_relative=rel,
            series=data.get("series"),
            preset_name=d.get("preset_name", tf.name),
            transfer_function=tf,
            separated=d.get("separated", tf.separated),
            camera=d.get("camera"),
            crop_box_lps=d.get("crop_box_lps"),
            clip_plane=clip_t,
            layout=d.get("layout", "3d"),
            lesion=lesion,
            measurements=measurements,
            vessel_colouring=d.get("vessel_colouring", "off"),
            keyhole=d.get("keyhole", False),
            schema_version=ver,
            software=software if isinstance(software, str) else "",
        )
    except ViewerError as exc:
        # Re-word "<session>" into the file's name.
        raise ViewerError(str(exc).replace("<session>", source)) from None


def resolve_data_path(session: Session, session_file: str | Path | None = None) -> str:
    """The scan to open: the absolute path if it exists, else the relative path
    resolved against the session file's folder; the phantom as is.

    Raises ViewerError naming both places looked at when the scan is missing."""
    if is_builtin_source(session.data_path):
        return session.data_path
    tried = [session.data_path]
    if Path(session.data_path).exists():
        return session.data_path
    if session.data_path_relative and session_file is not None:
        cand = (Path(session_file).resolve().parent / session.data_path_relative).resolve()
        tried.append(str(cand))
        if cand.exists():
            return str(cand)
    where = " nor at ".join(tried)
    src = f"{session_file}: " if session_file is not None else ""
    raise ViewerError(f"{src}the scan this session refers to was not found at {where}", session_file)


def load_session(path: str | Path, check_data: bool = True) -> Session:
    """Read and validate a session file.

    With ``check_data`` the scan must exist (absolute or relative path, see
    :func:`resolve_data_path`) and the returned session's ``data_path`` is the one
    found. Raises ViewerError naming the file and the problem."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ViewerError(f"session file {p} does not exist", p) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ViewerError(f"cannot read session file {p}: {exc}", p) from None
    try:
        d = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ViewerError(
            f"{p}: not a valid session file (JSON error at line {exc.lineno}, column {exc.colno}: {exc.msg})", p
        ) from None
    s = session_from_dict(d, source=str(p))
    if check_data:
        s = replace(s, data_path=resolve_data_path(s, p))
    return s


def save_session(session: Session, path: str | Path) -> Path:
    """Write ``session`` to ``path`` atomically (temporary file in the same folder, then
    ``os.replace``); on failure the previous file is untouched. Returns the path."""
    p = Path(path)
    if not is_builtin_source(session.data_path) and not Path(session.data_path).is_absolute():
        session = replace(session, data_path=str(Path(session.data_path).resolve()))
    text = json.dumps(session.to_dict(session_file=p), indent=2) + "\n"
    atomic_write_text(p, text, "session file")
    return p


__all__ = [
    "SESSION_SCHEMA_VERSION",
    "Session",
    "is_builtin_source",
    "load_session",
    "resolve_data_path",
    "save_session",
    "session_from_dict",
]
