"""3D Slicer presets.xml: import keeps every control point, export round-trips."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

from viewer.core.errors import ViewerError
from viewer.core.presets import list_presets, preset_from_dict, preset_to_dict
from viewer.core.slicer_presets import (
    SlicerPresetWarning,
    estimate_thresholds,
    export_slicer_presets,
    import_slicer_presets,
)


def _slicer_file(shared_data: Path) -> Path:
    return shared_data / "slicer-presets" / "presets.xml"


def _raw_presets(path: Path) -> dict[str, dict[str, str]]:
    """Attributes of each <VolumeProperty .../> read with a regex, independently of the
    importer's ElementTree parsing."""
    text = path.read_text(encoding="utf-8")
    out = {}
    for el in re.findall(r"<VolumeProperty\s(.*?)/>", text, flags=re.S):
        attrs = dict(re.findall(r'(\w+)="([^"]*)"', el))
        out[attrs["name"]] = attrs
    return out


def _nums(s: str) -> list[float]:
    return [float(t) for t in s.split()]


def _import(path: Path) -> list:
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        tfs = import_slicer_presets(path)
    return tfs, [str(w.message) for w in rec if issubclass(w.category, SlicerPresetWarning)]


def test_import_gives_the_source_control_points(shared_data: Path) -> None:
    src = _slicer_file(shared_data)
    raw = _raw_presets(src)
    tfs, warns = _import(src)
    assert len(raw) == 31
    assert len(tfs) == 31
    # CT-X-ray's effectiveRange "-250.0.0 1550.0" is malformed: a warning, not a failure.
    assert any("CT-X-ray" in w and "effectiveRange" in w for w in warns), warns
    assert len(warns) == 1
    for tf in tfs:
        a = raw[tf.name]
        so, co, go = _nums(a["scalarOpacity"]), _nums(a["colorTransfer"]), _nums(a["gradientOpacity"])
        assert (
            so[0] == 2 * len(tf.scalar_opacity) and co[0] == 4 * len(tf.color) and go[0] == 2 * len(tf.gradient_opacity)
        )
        assert [v for p in tf.scalar_opacity for v in (p.x, p.opacity)] == so[1:], tf.name
        assert [v for p in tf.color for v in (p.hu, p.r, p.g, p.b)] == co[1:], tf.name
        assert [v for p in tf.gradient_opacity for v in (p.x, p.opacity)] == go[1:], tf.name
        assert tf.curves == "custom"
        assert tf.shading.enabled == (a["shade"] == "1")
        assert tf.shading.ambient == float(a["ambient"])
        assert tf.shading.diffuse == float(a["diffuse"])
        assert tf.shading.specular == float(a["specular"])
        assert tf.shading.specular_power == float(a["specularPower"])
        assert tf.interpolation == ("linear" if a["interpolation"] == "1" else "nearest")
        lo, hi = tf.vessel_window_hu
        assert lo < hi <= tf.bone_threshold_hu


def test_thresholds_estimated_from_the_curves(shared_data: Path) -> None:
    tfs = {tf.name: tf for tf in _import(_slicer_file(shared_data))[0]}
    # CT-AAA's opacity rises from 0 at 143.6 HU to 0.686 at 166.2 HU: the vessel
    # window starts at the half-maximum crossing between them.
    lo = tfs["CT-AAA"].vessel_window_hu[0]
    assert 143.6 < lo < 166.3
    assert 150 <= tfs["CT-Liver-Vasculature"].vessel_window_hu[0] <= 160
    # A lung preset says nothing about contrast: defaults.
    assert tfs["CT-Lung"].vessel_window_hu == (180.0, 600.0)
    window, bone, reason = estimate_thresholds(())
    assert "flat" in reason


def test_round_trip_export_import(shared_data: Path, tmp_path: Path) -> None:
    tfs, _ = _import(_slicer_file(shared_data))
    out = export_slicer_presets(tfs, tmp_path / "presets.xml")
    again, warns = _import(out)
    assert warns == []  # our writer produces a well-formed effectiveRange
    assert len(again) == 31
    for a, b in zip(tfs, again, strict=False):
        assert a.name == b.name
        assert a.scalar_opacity == b.scalar_opacity
        assert a.color == b.color
        assert a.gradient_opacity == b.gradient_opacity
        assert a.shading == b.shading
        assert a.interpolation == b.interpolation
    # The exported file has Slicer's shape: the same attribute set per element.
    raw_src = _raw_presets(_slicer_file(shared_data))
    raw_out = _raw_presets(out)
    need = {
        "name",
        "scalarOpacity",
        "colorTransfer",
        "gradientOpacity",
        "shade",
        "ambient",
        "diffuse",
        "specular",
        "specularPower",
        "interpolation",
        "effectiveRange",
        "id",
    }
    for name, attrs in raw_out.items():
        assert need <= set(attrs), name
        assert set(attrs) <= set(raw_src["CT-AAA"]) | {"references"}


def test_our_presets_export_to_slicer_and_back(tmp_path: Path) -> None:
    ours = list(list_presets().values())
    out = export_slicer_presets(ours, tmp_path / "ours.xml")
    back, _ = _import(out)
    for a, b in zip(ours, back, strict=False):
        assert b.name == a.name
        assert b.scalar_opacity == a.opacity_points()
        assert b.color == a.color_points()
        # Imported back it is a valid preset too.
        assert preset_from_dict(preset_to_dict(b)) == b


def test_defensive_parsing(tmp_path: Path) -> None:
    f = tmp_path / "p.xml"
    f.write_text(
        "<MRML>"
        '<VolumeProperty name="Good" scalarOpacity="4 0 0 300 1" colorTransfer="8 0 0 0 0 300 1 0 0" ambient="x"/>'
        '<VolumeProperty name="BadCount" scalarOpacity="6 0 0 300 1" colorTransfer="8 0 0 0 0 300 1 0 0"/>'
        '<VolumeProperty name="BadGrad" scalarOpacity="4 0 0 300 1" colorTransfer="8 0 0 0 0 300 1 0 0" '
        'gradientOpacity="3 0 1 2"/>'
        "</MRML>"
    )
    tfs, warns = _import(f)
    assert [t.name for t in tfs] == ["Good", "BadGrad"]
    assert tfs[0].shading.ambient == 0.1
    assert any("'ambient'" in w for w in warns)
    assert any("BadCount" in w for w in warns)
    assert tfs[1].gradient_opacity == ()
    f.write_text("<MRML><Other/></MRML>")
    with pytest.raises(ViewerError, match="no <VolumeProperty>"):
        import_slicer_presets(f)
    f.write_text("<MRML><VolumeProperty")
    with pytest.raises(ViewerError, match="p.xml: not a valid XML"):
        import_slicer_presets(f)
    f.write_text('<MRML><VolumeProperty name="A" scalarOpacity="" colorTransfer=""/></MRML>')
    with pytest.raises(ViewerError, match="none of its 1 presets"), pytest.warns(SlicerPresetWarning):
        import_slicer_presets(f)
