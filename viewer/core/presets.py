"""Transfer-function presets as JSON files (all values in HU), validated on load.

File format (``schema_version`` 1; the full description is in
``docs/transfer-functions.md`` and the machine-readable one in
``transfer_functions/schema.json``)::

    {
      "schema_version": 1,
      "name": "Bone + vessels",
      "description": "...",
      "vessel_window_hu": [180, 600],
      "bone_threshold_hu": 650,
      "bone":        {"color": [0.93, 0.88, 0.76], "opacity": 0.9, "visible": true},
      "vessel":      {"color": [0.85, 0.08, 0.06], "opacity": 0.9, "visible": true},
      "soft_tissue": {"color": [0.85, 0.55, 0.45], "opacity": 0.0, "visible": false},
      "soft_tissue_window_hu": [-150, 120],
      "curves": "threshold",                      # or "custom" (then the lists below)
      "scalar_opacity": [[-3024, 0], [150, 0.8]], # [HU, opacity]
      "color": [[-3024, 0, 0, 0], [150, 1, 0, 0]],# [HU, r, g, b]
      "gradient_opacity": [[0, 1], [255, 1]],     # [HU/mm, opacity]
      "shading": {"enabled": true, "ambient": 0.25, "diffuse": 0.8,
                  "specular": 0.25, "specular_power": 20},
      "blend_mode": "composite",                  # or "mip"
      "separated": true,
      "unit_distance_mm": 1.0,
      "mip_window_hu": [0, 800],
      "interpolation": "linear"
    }

Only ``schema_version`` and ``name`` are required; a missing field takes the
:class:`~viewer.core.transfer.TransferFunction` default. Unknown fields are refused
(a typo such as ``"bone_treshold_hu"`` would otherwise be silently ignored).

The modelling follows 3D Slicer's volume-property presets (point lists, lighting,
scalar opacity unit distance) and VolView's "colouring config is plain data checked by
a schema" (see ``/work/shared/DESIGN.md``).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from viewer.core.errors import ViewerError
from viewer.core.fileio import atomic_write_text
from viewer.core.transfer import (
    CONTRAST_SETTINGS,
    ClassAppearance,
    ColorPoint,
    OpacityPoint,
    Shading,
    TransferFunction,
)

#: Version of the preset file format written by :func:`save_preset`.
SCHEMA_VERSION = 1

#: The preset the application opens with.
DEFAULT_PRESET_NAME = "Bone + vessels"

#: Environment variable that overrides the user's configuration folder (tests use it).
CONFIG_DIR_ENV = "VESSEL_VIEWER_CONFIG_DIR"

_TOP_FIELDS = (
    "schema_version",
    "name",
    "description",
    "vessel_window_hu",
    "bone_threshold_hu",
    "bone",
    "vessel",
    "soft_tissue",
    "calcification",
    "soft_tissue_window_hu",
    "curves",
    "scalar_opacity",
    "color",
    "gradient_opacity",
    "shading",
    "blend_mode",
    "separated",
    "unit_distance_mm",
    "mip_window_hu",
    "interpolation",
    "remove_table",
    "real_ct_separation",
    "show_uncertain",
    "show_removed",
    "contrast",
)
_CLASS_FIELDS = ("color", "opacity", "visible")
_SHADING_FIELDS = ("enabled", "ambient", "diffuse", "specular", "specular_power")


# ----------------------------------------------------------------------------------
# dict <-> TransferFunction
# ----------------------------------------------------------------------------------
def preset_to_dict(tf: TransferFunction) -> dict[str, Any]:
    """The JSON-able dict of a transfer function in the preset file schema."""

    def cls(a: ClassAppearance) -> dict[str, Any]:
        return {"color": [float(c) for c in a.color], "opacity": float(a.opacity), "visible": bool(a.visible)}

    d: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "name": tf.name,
        "description": tf.description,
        "vessel_window_hu": list(tf.vessel_window_hu),
        "bone_threshold_hu": tf.bone_threshold_hu,
        "bone": cls(tf.bone),
        "vessel": cls(tf.vessel),
        "soft_tissue": cls(tf.soft_tissue),
        "calcification": cls(tf.calcification),
        "soft_tissue_window_hu": list(tf.soft_tissue_window_hu),
        "curves": tf.curves,
        "scalar_opacity": [[p.x, p.opacity] for p in tf.scalar_opacity],
        "color": [[p.hu, p.r, p.g, p.b] for p in tf.color],
        "gradient_opacity": [[p.x, p.opacity] for p in tf.gradient_opacity],
        "shading": {
            "enabled": tf.shading.enabled,
            "ambient": tf.shading.ambient,
            "diffuse": tf.shading.diffuse,
            "specular": tf.shading.specular,
            "specular_power": tf.shading.specular_power,
        },
        "blend_mode": tf.blend_mode,
        "separated": tf.separated,
        "unit_distance_mm": tf.unit_distance_mm,
        "mip_window_hu": list(tf.mip_window_hu),
        "interpolation": tf.interpolation,
        "remove_table": tf.remove_table,
        "real_ct_separation": tf.real_ct_separation,
        "show_uncertain": tf.show_uncertain,
        "show_removed": tf.show_removed,
        "contrast": tf.contrast,
    }
    return d


class _Checker:
    """Validation helpers that raise ViewerError naming the source and the field."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, field: str, problem: str) -> ViewerError:
        return ViewerError(f"{self.source}: field '{field}' {problem}")

    def number(self, v: Any, field: str, lo: float | None = None, hi: float | None = None) -> float:
        # bool is an int subclass in Python; "true" is never a valid number here.
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise self.fail(field, f"must be a finite number, got {v!r}")
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            rng = f"[{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}]"
            raise self.fail(field, f"must be in {rng}, got {v!r}")
        return float(v)

    def boolean(self, v: Any, field: str) -> bool:
        if not isinstance(v, bool):
            raise self.fail(field, f"must be true or false, got {v!r}")
        return v

    def string(self, v: Any, field: str, allow_empty: bool = True) -> str:
        if not isinstance(v, str) or (not allow_empty and not v.strip()):
            raise self.fail(field, f"must be a {'non-empty ' if not allow_empty else ''}string, got {v!r}")
        return v

    def choice(self, v: Any, field: str, options: tuple[str, ...]) -> str:
        if v not in options:
            raise self.fail(field, f"must be one of {', '.join(repr(o) for o in options)}, got {v!r}")
        return str(v)

    def window(self, v: Any, field: str) -> tuple[float, float]:
        ok = (
            isinstance(v, (list, tuple))
            and len(v) == 2
            and all(not isinstance(x, bool) and isinstance(x, (int, float)) and math.isfinite(x) for x in v)
            and v[0] < v[1]
        )
        if not ok:
            raise self.fail(field, f"must be two numbers low < high, got {v!r}")
        return float(v[0]), float(v[1])

    def mapping(self, v: Any, field: str, allowed: tuple[str, ...]) -> Mapping[str, Any]:
        if not isinstance(v, Mapping):
            raise self.fail(field, f"must be an object, got {type(v).__name__}")
        for k in v:
            if k not in allowed:
                raise self.fail(f"{field}.{k}", f"is not a known field (known: {', '.join(allowed)})")
        return v

    def appearance(self, v: Any, field: str, default: ClassAppearance) -> ClassAppearance:
        m = self.mapping(v, field, _CLASS_FIELDS)
        color = m.get("color", list(default.color))
        if not isinstance(color, (list, tuple)) or len(color) != 3:
            raise self.fail(f"{field}.color", f"must be three numbers r, g, b in [0, 1], got {color!r}")
        rgb = tuple(self.number(c, f"{field}.color", 0.0, 1.0) for c in color)
        opacity = self.number(m.get("opacity", default.opacity), f"{field}.opacity", 0.0, 1.0)
        visible = self.boolean(m.get("visible", default.visible), f"{field}.visible")
        return ClassAppearance(rgb, opacity, visible)  # type: ignore[arg-type]

    def points(self, v: Any, field: str, width: int, value_range: tuple[float, float]) -> list[tuple[float, ...]]:
        """A list of ``[x, v1..]`` points, x non-decreasing (3D Slicer's own presets
        repeat an x to make a step, so equal x is allowed), values in ``value_range``."""
        if not isinstance(v, (list, tuple)):
            raise self.fail(field, f"must be a list of points, got {type(v).__name__}")
        out: list[tuple[float, ...]] = []
        for n, p in enumerate(v):
            f = f"{field}[{n}]"
            if isinstance(p, Mapping):  # also accept TransferFunction.to_dict()'s form
                keys = ("x", "opacity") if width == 2 else ("hu", "r", "g", "b")
                if set(p) != set(keys):
                    raise self.fail(f, f"must have keys {keys}, got {sorted(p)}")
                p = [p[k] for k in keys]
            if not isinstance(p, (list, tuple)) or len(p) != width:
                raise self.fail(f, f"must be a list of {width} numbers, got {p!r}")
            x = self.number(p[0], f)
            vals = tuple(self.number(c, f, *value_range) for c in p[1:])
            if out and x < out[-1][0]:
                raise self.fail(f, f"x = {x} is less than the previous point's {out[-1][0]} (points must be sorted)")
            out.append((x, *vals))
        return out


def preset_from_dict(d: Any, source: str = "<preset>") -> TransferFunction:
    """Validate a preset dict and build its :class:`TransferFunction`.

    ``source`` (usually the file name) starts every error message, e.g.
    ``"bone_vessels.json: field 'vessel_window_hu' must be two numbers low < high"``.
    """
    c = _Checker(source)
    if not isinstance(d, Mapping):
        raise ViewerError(f"{source}: a preset must be a JSON object, got {type(d).__name__}")
    for k in d:
        if k not in _TOP_FIELDS:
            raise c.fail(str(k), "is not a known field (a typo?)")
    if "schema_version" not in d:
        raise c.fail("schema_version", "is missing")
    ver = d["schema_version"]
    if isinstance(ver, bool) or not isinstance(ver, int) or ver < 1:
        raise c.fail("schema_version", f"must be a positive integer, got {ver!r}")
    if ver > SCHEMA_VERSION:
        raise c.fail(
            "schema_version",
            f"is {ver} but this program reads up to {SCHEMA_VERSION} (written by a newer version)",
        )
    if "name" not in d:
        raise c.fail("name", "is missing")
    base = TransferFunction()
    kw: dict[str, Any] = {"name": c.string(d["name"], "name", allow_empty=False)}
    if "description" in d:
        kw["description"] = c.string(d["description"], "description")
    for f in ("vessel_window_hu", "soft_tissue_window_hu", "mip_window_hu"):
        if f in d:
            kw[f] = c.window(d[f], f)
    if "bone_threshold_hu" in d:
        kw["bone_threshold_hu"] = c.number(d["bone_threshold_hu"], "bone_threshold_hu", -1024.0, 4000.0)
    for f in ("bone", "vessel", "soft_tissue", "calcification"):
        if f in d:
            kw[f] = c.appearance(d[f], f, getattr(base, f))
    curves = c.choice(d.get("curves", base.curves), "curves", ("threshold", "custom"))
    kw["curves"] = curves
    if "scalar_opacity" in d:
        kw["scalar_opacity"] = tuple(
            OpacityPoint(*p) for p in c.points(d["scalar_opacity"], "scalar_opacity", 2, (0.0, 1.0))
        )
    if "color" in d:
        kw["color"] = tuple(ColorPoint(*p) for p in c.points(d["color"], "color", 4, (0.0, 1.0)))
    if "gradient_opacity" in d:
        kw["gradient_opacity"] = tuple(
            OpacityPoint(*p) for p in c.points(d["gradient_opacity"], "gradient_opacity", 2, (0.0, 1.0))
        )
    if curves == "custom":
        # A custom curve is the whole appearance: without points nothing would show.
        for f in ("scalar_opacity", "color"):
            if not kw.get(f):
                raise c.fail(f, "must list at least one point when 'curves' is 'custom'")
    if "shading" in d:
        m = c.mapping(d["shading"], "shading", _SHADING_FIELDS)
        s = base.shading
        kw["shading"] = Shading(
            enabled=c.boolean(m.get("enabled", s.enabled), "shading.enabled"),
            ambient=c.number(m.get("ambient", s.ambient), "shading.ambient", 0.0, 1.0),
            diffuse=c.number(m.get("diffuse", s.diffuse), "shading.diffuse", 0.0, 1.0),
            specular=c.number(m.get("specular", s.specular), "shading.specular", 0.0, 1.0),
            specular_power=c.number(m.get("specular_power", s.specular_power), "shading.specular_power", 0.0, 128.0),
        )
    if "blend_mode" in d:
        kw["blend_mode"] = c.choice(d["blend_mode"], "blend_mode", ("composite", "mip"))
    if "separated" in d:
        kw["separated"] = c.boolean(d["separated"], "separated")
    if "unit_distance_mm" in d:
        u = c.number(d["unit_distance_mm"], "unit_distance_mm")
        if u <= 0:
            raise c.fail("unit_distance_mm", f"must be > 0 mm, got {u}")
        kw["unit_distance_mm"] = u
    if "interpolation" in d:
        kw["interpolation"] = c.choice(d["interpolation"], "interpolation", ("linear", "nearest"))
    for flag in ("remove_table", "real_ct_separation", "show_uncertain", "show_removed"):
        if flag in d:
            kw[flag] = c.boolean(d[flag], flag)
    if "contrast" in d:
        kw["contrast"] = c.choice(d["contrast"], "contrast", CONTRAST_SETTINGS)
    return TransferFunction(**kw)


# ----------------------------------------------------------------------------------
# files
# ----------------------------------------------------------------------------------
def load_preset(path: str | Path) -> TransferFunction:
    """Read and validate one preset file; ViewerError names the file and the field."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ViewerError(f"preset file {p} does not exist", p) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ViewerError(f"cannot read preset file {p}: {exc}", p) from None
    try:
        d = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ViewerError(f"{p.name}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})", p) from None
    try:
        return preset_from_dict(d, source=p.name)
    except ViewerError as exc:
        raise ViewerError(str(exc), p) from None


def _to_json(d: Mapping[str, Any]) -> str:
    """Indented JSON with every list of numbers (a window, a colour, a point) on one
    line, so a preset file reads like a table."""

    def fmt(v: Any, ind: str) -> str:
        if isinstance(v, Mapping):
            if not v:
                return "{}"
            inner = ind + "  "
            items = ",\n".join(f"{inner}{json.dumps(k)}: {fmt(x, inner)}" for k, x in v.items())
            return "{\n" + items + "\n" + ind + "}"
        if isinstance(v, (list, tuple)):
            if all(not isinstance(x, (list, tuple, Mapping)) for x in v):
                return "[" + ", ".join(json.dumps(x) for x in v) + "]"
            inner = ind + "  "
            return "[\n" + ",\n".join(inner + fmt(x, inner) for x in v) + "\n" + ind + "]"
        return json.dumps(v)

    return fmt(d, "") + "\n"


def save_preset(tf: TransferFunction, path: str | Path) -> Path:
    """Write ``tf`` as a preset file atomically (temp file in the same folder, then
    ``os.replace``), so a crash never leaves a half-written preset. Returns the path."""
    p = Path(path)
    atomic_write_text(p, _to_json(preset_to_dict(tf)), "preset file", make_parents=True)
    return p


def preset_file_name(name: str) -> str:
    """A safe file name for a preset name: ``"Bone + vessels"`` -> ``bone_vessels.json``."""
    keep = "".join(ch.lower() if ch.isalnum() else "_" for ch in name)
    stem = "_".join(part for part in keep.split("_") if part) or "preset"
    return f"{stem}.json"


def builtin_preset_dir() -> Path:
    """The folder of the presets that ship with the program.

    In a source checkout (and an editable install) this is the repository's
    ``transfer_functions/``; in an installed wheel the same files are package data
    in ``viewer/transfer_functions/`` (see ``pyproject.toml``).
    """
    pkg = Path(__file__).resolve().parents[1]  # .../viewer
    for cand in (pkg.parent / "transfer_functions", pkg / "transfer_functions"):
        if cand.is_dir() and any(cand.glob("*.json")):
            return cand
    raise ViewerError(f"the built-in presets folder is missing (looked in {pkg.parent / 'transfer_functions'})")


def user_preset_dir() -> Path:
    """The user's preset folder: ``$VESSEL_VIEWER_CONFIG_DIR/presets`` if that is set,
    else ``$XDG_CONFIG_HOME/vessel-viewer/presets`` (default ``~/.config/...``).
    Not created here; :func:`save_preset` creates it when a preset is saved."""
    env = os.environ.get(CONFIG_DIR_ENV)
    if env:
        return Path(env) / "presets"
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(xdg) / "vessel-viewer" / "presets"


def _preset_files(folder: Path) -> list[Path]:
    # schema.json describes the files; it is not a preset.
    return sorted(p for p in folder.glob("*.json") if p.name != "schema.json") if folder.is_dir() else []


def list_presets() -> dict[str, TransferFunction]:
    """All presets by name: the built-in ones first, then the user's.

    A broken built-in preset is a bug and raises; a broken user file is skipped with a
    warning (``warnings.warn``), so one bad file never stops the program. A user preset
    with a built-in's name replaces it (the user's edit wins)."""
    out: dict[str, TransferFunction] = {}
    for p in _preset_files(builtin_preset_dir()):
        tf = load_preset(p)
        out[tf.name] = tf
    for p in _preset_files(user_preset_dir()):
        try:
            tf = load_preset(p)
        except ViewerError as exc:
            warnings.warn(f"skipping user preset: {exc}", stacklevel=2)
            continue
        out[tf.name] = tf
    return out


def default_preset_name() -> str:
    """Name of the preset the application opens with."""
    return DEFAULT_PRESET_NAME


def default_preset() -> TransferFunction:
    """The default preset, loaded from its file."""
    return list_presets()[DEFAULT_PRESET_NAME]


__all__ = [
    "CONFIG_DIR_ENV",
    "DEFAULT_PRESET_NAME",
    "SCHEMA_VERSION",
    "builtin_preset_dir",
    "default_preset",
    "default_preset_name",
    "list_presets",
    "load_preset",
    "preset_file_name",
    "preset_from_dict",
    "preset_to_dict",
    "save_preset",
    "user_preset_dir",
]
