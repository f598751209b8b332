"""Import and export 3D Slicer volume-rendering presets (``presets.xml``).

3D Slicer keeps its presets as an MRML document: a ``<MRML>`` root holding one
``<VolumeProperty>`` element per preset (``Modules/Loadable/VolumeRendering/Resources/
presets.xml``). The attributes used here, as ``vtkMRMLVolumePropertyNode`` writes them:

* ``scalarOpacity="N x1 o1 x2 o2 ..."``: N numbers follow (2 per point), x in the
  volume's scalar units (HU for CT presets);
* ``gradientOpacity="N g1 o1 ..."``: same layout, x is gradient magnitude;
* ``colorTransfer="N x1 r1 g1 b1 ..."``: N numbers follow (4 per point);
* ``shade`` (0/1), ``ambient``, ``diffuse``, ``specular``, ``specularPower``,
  ``interpolation`` (0 nearest, 1 linear), ``effectiveRange="lo hi"`` (the range the
  editor shows; not part of the rendering).

Slicer's own file is not perfectly formed (its CT-X-ray entry has
``effectiveRange="-250.0.0 1550.0"``), so parsing is defensive: an attribute that does
not parse is replaced by its default with a warning, and only a preset whose opacity or
colour curve cannot be read is skipped (also with a warning); the rest of the file
still imports.

Imported presets become ``curves="custom"`` transfer functions (the points are used as
they are). Their vessel window and bone threshold, which drive the separated mode's
masks, are estimated from the opacity curve by :func:`estimate_thresholds`.
"""

from __future__ import annotations

import math
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from viewer.core.errors import ViewerError
from viewer.core.fileio import atomic_write
from viewer.core.transfer import ColorPoint, OpacityPoint, Shading, TransferFunction

#: Used where a lighting attribute is missing or malformed: the values most of 3D
#: Slicer's own CT presets carry (shade 1, ambient 0.1, diffuse 0.9, specular 0.2,
#: specularPower 10).
_DEFAULT_SHADING = Shading(enabled=True, ambient=0.1, diffuse=0.9, specular=0.2, specular_power=10.0)

#: The vessel window and bone threshold given to an imported preset when its curve
#: says nothing usable about them (the built-in default preset's values).
_DEFAULT_WINDOW_HU = (180.0, 600.0)
_DEFAULT_BONE_HU = 650.0


class SlicerPresetWarning(UserWarning):
    """A Slicer preset attribute was malformed and replaced by a default."""


def _floats(text: str) -> list[float]:
    return [float(t) for t in text.split()]


def _point_list(text: str, width: int, what: str) -> list[tuple[float, ...]]:
    """Parse ``"N v1 v2 ..."`` into ``N / width`` tuples of ``width`` numbers."""
    vals = _floats(text)
    if not vals:
        raise ValueError(f"{what} is empty")
    n = vals[0]
    if n != int(n) or int(n) != len(vals) - 1 or int(n) % width:
        raise ValueError(f"{what} says {n:g} numbers follow but {len(vals) - 1} do (need a multiple of {width})")
    if not all(math.isfinite(v) for v in vals):
        raise ValueError(f"{what} holds a non-finite number")
    body = vals[1:]
    pts = [tuple(body[i : i + width]) for i in range(0, len(body), width)]
    return pts


def estimate_thresholds(opacity: Sequence[OpacityPoint]) -> tuple[tuple[float, float], float, str]:
    """Estimate ``(vessel_window_hu, bone_threshold_hu, reason)`` from a HU opacity curve.

    Heuristic, documented in docs/transfer-functions.md: the vessel window starts where
    the opacity first reaches half its maximum (the curve's "onset"), if that lies in
    the range where contrast-filled arteries sit (100-450 HU; 3D Slicer's vessel presets
    rise between 129 and 150 HU). The bone threshold stays at the default 650 HU but is
    kept at least 150 HU above the window's start; the window ends 50 HU below the
    bone threshold (as in the default preset, 600 / 650 HU). Curves whose onset lies elsewhere (soft tissue,
    lung, MR presets) keep the default thresholds.
    """
    pts = [(p.x, p.opacity) for p in opacity]
    top = max((o for _, o in pts), default=0.0)
    if top <= 0 or len(pts) < 2:
        return _DEFAULT_WINDOW_HU, _DEFAULT_BONE_HU, "opacity curve is flat: default thresholds"
    half = 0.5 * top
    onset = None
    for (x0, o0), (x1, o1) in zip(pts, pts[1:], strict=False):
        if o0 < half <= o1:
            onset = x0 if x1 == x0 else x0 + (half - o0) * (x1 - x0) / (o1 - o0)
            break
    if onset is None and pts[0][1] >= half:
        onset = pts[0][0]
    if onset is None or not (100.0 <= onset <= 450.0):
        where = "none" if onset is None else f"{onset:.0f} HU"
        return (
            _DEFAULT_WINDOW_HU,
            _DEFAULT_BONE_HU,
            (
                f"opacity half-maximum onset ({where}) is outside the arterial contrast range "
                "100-450 HU: default thresholds"
            ),
        )
    bone = max(_DEFAULT_BONE_HU, onset + 150.0)
    return (
        (round(onset, 1), bone - 50.0),
        bone,
        f"vessel window starts at the opacity half-maximum onset {onset:.0f} HU",
    )


def _attr_float(el: ET.Element, name: str, default: float, preset: str, src: str) -> float:
    raw = el.get(name)
    if raw is None:
        return default
    try:
        v = float(raw)
        if not math.isfinite(v):
            raise ValueError
        return v
    except ValueError:
        warnings.warn(
            f"{src}: preset '{preset}': attribute '{name}'={raw!r} is not a number; using {default:g}",
            SlicerPresetWarning,
            stacklevel=3,
        )
        return default


def import_slicer_presets(path: str | Path) -> list[TransferFunction]:
    """Read every ``VolumeProperty`` of a 3D Slicer presets file as a TransferFunction.

    Raises ViewerError if the file is unreadable, is not XML, or holds no preset that
    could be read. Individual malformed attributes or presets produce a
    :class:`SlicerPresetWarning` and are defaulted or skipped.
    """
    p = Path(path)
    src = p.name
    try:
        root = ET.parse(p).getroot()
    except FileNotFoundError:
        raise ViewerError(f"Slicer presets file {p} does not exist", p) from None
    except ET.ParseError as exc:
        raise ViewerError(f"{src}: not a valid XML file ({exc})", p) from None
    except OSError as exc:
        raise ViewerError(f"cannot read Slicer presets file {p}: {exc}", p) from None
    elements = root.findall("VolumeProperty") if root.tag != "VolumeProperty" else [root]
    if not elements:
        raise ViewerError(f"{src}: no <VolumeProperty> elements (is this a 3D Slicer presets.xml?)", p)
    out: list[TransferFunction] = []
    for n, el in enumerate(elements):
        name = el.get("name") or f"Slicer preset {n + 1}"
        try:
            so = [OpacityPoint(x, o) for x, o in _point_list(el.get("scalarOpacity", ""), 2, "scalarOpacity")]
            co = [ColorPoint(*pt) for pt in _point_list(el.get("colorTransfer", ""), 4, "colorTransfer")]
        except ValueError as exc:
            warnings.warn(f"{src}: skipping preset '{name}': {exc}", SlicerPresetWarning, stacklevel=2)
            continue
        go: list[OpacityPoint] = []
        if el.get("gradientOpacity"):
            try:
                go = [OpacityPoint(x, o) for x, o in _point_list(el.get("gradientOpacity", ""), 2, "gradientOpacity")]
            except ValueError as exc:
                warnings.warn(
                    f"{src}: preset '{name}': {exc}; ignoring its gradient opacity", SlicerPresetWarning, stacklevel=2
                )
        rng = el.get("effectiveRange")
        if rng is not None:
            try:
                lo_hi = _floats(rng)
                if len(lo_hi) != 2:
                    raise ValueError
            except ValueError:
                # Slicer's own CT-X-ray has "-250.0.0 1550.0". The range is only an
                # editor hint, so the preset is still fully usable.
                warnings.warn(
                    f"{src}: preset '{name}': malformed effectiveRange {rng!r} ignored",
                    SlicerPresetWarning,
                    stacklevel=2,
                )
        shading = Shading(
            enabled=_attr_float(el, "shade", 1.0, name, src) != 0.0,
            ambient=_attr_float(el, "ambient", _DEFAULT_SHADING.ambient, name, src),
            diffuse=_attr_float(el, "diffuse", _DEFAULT_SHADING.diffuse, name, src),
            specular=_attr_float(el, "specular", _DEFAULT_SHADING.specular, name, src),
            specular_power=_attr_float(el, "specularPower", _DEFAULT_SHADING.specular_power, name, src),
        )
        interp = "nearest" if _attr_float(el, "interpolation", 1.0, name, src) == 0.0 else "linear"
        window, bone, reason = estimate_thresholds(so)
        out.append(
            TransferFunction(
                name=name,
                description=f"Imported from 3D Slicer {src}; {reason}.",
                vessel_window_hu=window,
                bone_threshold_hu=bone,
                curves="custom",
                scalar_opacity=tuple(so),
                color=tuple(co),
                gradient_opacity=tuple(go),
                shading=shading,
                blend_mode="composite",
                separated=False,
                interpolation=interp,  # type: ignore[arg-type]
            )
        )
    if not out:
        raise ViewerError(f"{src}: none of its {len(elements)} presets could be read", p)
    return out


def _fmt(v: float) -> str:
    # Shortest round-tripping form (repr of a float), as Slicer's writer uses %g-like text.
    s = repr(float(v))
    return s[:-2] if s.endswith(".0") else s


def _list_attr(points: Sequence[Sequence[float]], width: int) -> str:
    nums = [c for pt in points for c in pt]
    return " ".join([str(len(nums))] + [_fmt(c) for c in nums])


def to_volume_property_element(tf: TransferFunction, node_id: str) -> ET.Element:
    """One MRML ``VolumeProperty`` element for ``tf`` (threshold curves are exported as
    the points they derive, so the preset looks the same in 3D Slicer)."""
    so = [(p.x, p.opacity) for p in tf.opacity_points()]
    co = [(p.hu, p.r, p.g, p.b) for p in tf.color_points()]
    # Slicer's presets use "4 0 1 255 1" (opacity 1 at every gradient) for "no
    # gradient opacity"; write the same so Slicer shows what we show.
    go = [(p.x, p.opacity) for p in tf.gradient_opacity] or [(0.0, 1.0), (255.0, 1.0)]
    visible = [p.x for p in tf.opacity_points() if p.opacity > 0]
    eff = (min(visible), max(visible)) if visible else (so[0][0], so[-1][0])
    s = tf.shading
    attrs = {
        "selected": "false",
        "hideFromEditors": "false",
        "name": tf.name,
        "gradientOpacity": _list_attr(go, 2),
        "userTags": "",
        "specularPower": _fmt(s.specular_power),
        "scalarOpacity": _list_attr(so, 2),
        "id": node_id,
        "specular": _fmt(s.specular),
        "shade": "1" if s.enabled else "0",
        "ambient": _fmt(s.ambient),
        "colorTransfer": _list_attr(co, 4),
        "selectable": "true",
        "diffuse": _fmt(s.diffuse),
        "interpolation": "0" if tf.interpolation == "nearest" else "1",
        "effectiveRange": f"{_fmt(eff[0])} {_fmt(eff[1])}",
    }
    return ET.Element("VolumeProperty", attrs)


def export_slicer_presets(tfs: Sequence[TransferFunction], path: str | Path) -> Path:
    """Write transfer functions as a 3D Slicer ``presets.xml`` (atomic replace)."""
    p = Path(path)
    root = ET.Element("MRML")
    for n, tf in enumerate(tfs, start=1):
        root.append(to_volume_property_element(tf, f"vtkMRMLVolumePropertyNode{n}"))
    ET.indent(root, space="  ")
    data = ET.tostring(root, encoding="UTF-8", xml_declaration=True) + b"\n"
    atomic_write(p, lambda fh: fh.write(data), "Slicer presets file", make_parents=True)
    return p


__all__ = [
    "SlicerPresetWarning",
    "estimate_thresholds",
    "export_slicer_presets",
    "import_slicer_presets",
    "to_volume_property_element",
]
