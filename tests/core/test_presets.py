"""Preset files: the shipped ones validate, each bad field is named, saving round-trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from viewer.core.errors import ViewerError
from viewer.core.presets import (
    CONFIG_DIR_ENV,
    SCHEMA_VERSION,
    builtin_preset_dir,
    default_preset_name,
    list_presets,
    load_preset,
    preset_file_name,
    preset_from_dict,
    preset_to_dict,
    save_preset,
    user_preset_dir,
)
from viewer.core.transfer import ARTERY_RED, IVORY, TransferFunction

REQUIRED = {"Bone + vessels", "Vessels only", "Bone only", "Vessel MIP", "Soft tissue + bone + vessels"}


@pytest.fixture(autouse=True)
def _private_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CONFIG_DIR_ENV, str(tmp_path / "config"))


def test_builtin_presets_validate_and_cover_the_required_set() -> None:
    folder = builtin_preset_dir()
    files = sorted(p for p in folder.glob("*.json") if p.name != "schema.json")
    assert len(files) >= 5
    names = set()
    for p in files:
        raw = json.loads(p.read_text())
        assert raw["schema_version"] == SCHEMA_VERSION
        tf = load_preset(p)
        names.add(tf.name)
        assert p.name == preset_file_name(tf.name)
    assert REQUIRED <= names
    presets = list_presets()
    assert default_preset_name() in presets


def test_builtin_thresholds_suit_arterial_phase_cta() -> None:
    for tf in list_presets().values():
        lo, hi = tf.vessel_window_hu
        assert 130 <= lo <= 250, tf.name
        assert 450 <= hi <= 700, tf.name
        assert 500 <= tf.bone_threshold_hu <= 700, tf.name
        assert hi <= tf.bone_threshold_hu, tf.name


def test_builtin_preset_appearances() -> None:
    p = list_presets()
    bv = p["Bone + vessels"]
    assert bv.bone.color == IVORY and bv.bone.visible
    assert bv.vessel.color == ARTERY_RED and bv.vessel.visible
    assert not p["Vessels only"].bone.visible and p["Vessels only"].vessel.visible
    assert p["Bone only"].bone.visible and not p["Bone only"].vessel.visible
    assert p["Vessel MIP"].blend_mode == "mip"
    st = p["Soft tissue + bone + vessels"]
    assert st.soft_tissue.visible and st.soft_tissue.opacity > 0
    # Threshold curves put vessel colour in the window and bone colour above it.
    pts = {round(c.hu): (c.r, c.g, c.b) for c in bv.color_points()}
    lo = round(bv.vessel_window_hu[0])
    assert pts[lo] == ARTERY_RED


GOOD = preset_to_dict(TransferFunction(name="Test preset"))


@pytest.mark.parametrize(
    ("field", "value", "path"),
    [
        ("vessel_window_hu", [600, 200], "vessel_window_hu"),
        ("vessel_window_hu", [200], "vessel_window_hu"),
        ("vessel_window_hu", "wide", "vessel_window_hu"),
        ("bone_threshold_hu", "high", "bone_threshold_hu"),
        ("bone_threshold_hu", True, "bone_threshold_hu"),
        ("bone_threshold_hu", 99999, "bone_threshold_hu"),
        ("schema_version", 99, "schema_version"),
        ("schema_version", "1", "schema_version"),
        ("name", "", "name"),
        ("bone", {"color": [1, 1], "opacity": 1, "visible": True}, "bone.color"),
        ("vessel", {"color": [1, 0, 0], "opacity": 1.5, "visible": True}, "vessel.opacity"),
        ("vessel", {"color": [1, 0, 0], "opacity": 1, "visible": "yes"}, "vessel.visible"),
        ("vessel", {"colour": [1, 0, 0]}, "vessel.colour"),
        ("curves", "spline", "curves"),
        ("blend_mode", "average", "blend_mode"),
        ("separated", 1, "separated"),
        ("scalar_opacity", [[0, 0.5], [-10, 0.2]], "scalar_opacity[1]"),
        ("scalar_opacity", [[0, 2.0]], "scalar_opacity[0]"),
        ("color", [[0, 1, 0]], "color[0]"),
        ("shading", {"ambient": -1}, "shading.ambient"),
        ("unit_distance_mm", 0, "unit_distance_mm"),
        ("mip_window_hu", [5, 5], "mip_window_hu"),
        ("interpolation", "cubic", "interpolation"),
        ("bone_treshold_hu", 650, "bone_treshold_hu"),
    ],
)
def test_each_bad_field_is_named_with_the_file(tmp_path: Path, field: str, value: object, path: str) -> None:
    d = dict(GOOD)
    d[field] = value
    f = tmp_path / "bone_vessels.json"
    f.write_text(json.dumps(d))
    with pytest.raises(ViewerError) as exc:
        load_preset(f)
    msg = str(exc.value)
    assert "bone_vessels.json" in msg
    assert f"field '{path}'" in msg
    assert exc.value.path == f


def test_message_format_for_the_vessel_window(tmp_path: Path) -> None:
    d = dict(GOOD, vessel_window_hu=[600, 200])
    f = tmp_path / "bone_vessels.json"
    f.write_text(json.dumps(d))
    with pytest.raises(
        ViewerError, match=r"bone_vessels.json: field 'vessel_window_hu' must be two numbers low < high"
    ):
        load_preset(f)


def test_missing_required_and_custom_without_points(tmp_path: Path) -> None:
    with pytest.raises(ViewerError, match="field 'schema_version' is missing"):
        preset_from_dict({"name": "x"}, source="a.json")
    with pytest.raises(ViewerError, match="field 'name' is missing"):
        preset_from_dict({"schema_version": 1}, source="a.json")
    with pytest.raises(ViewerError, match="field 'scalar_opacity'"):
        preset_from_dict({"schema_version": 1, "name": "x", "curves": "custom"}, source="a.json")
    # Minimal file: defaults fill the rest.
    tf = preset_from_dict({"schema_version": 1, "name": "x"}, source="a.json")
    assert tf.vessel_window_hu == TransferFunction().vessel_window_hu


def test_not_json_and_missing_file(tmp_path: Path) -> None:
    f = tmp_path / "broken.json"
    f.write_text("{ not json")
    with pytest.raises(ViewerError, match=r"broken.json: not valid JSON \(line 1"):
        load_preset(f)
    with pytest.raises(ViewerError, match="does not exist"):
        load_preset(tmp_path / "nope.json")
    f.write_text("[1, 2]")
    with pytest.raises(ViewerError, match="must be a JSON object"):
        load_preset(f)


def test_save_round_trip_is_atomic_and_exact(tmp_path: Path) -> None:
    tf = list_presets()["Bone + vessels"].with_vessel_window(210, 560).with_bone_threshold(700)
    p = save_preset(tf, tmp_path / "sub" / "mine.json")
    assert load_preset(p) == tf
    # No temporary files left next to it.
    assert [q.name for q in p.parent.iterdir()] == ["mine.json"]
    # A custom curve round-trips too, point for point.
    from viewer.core.transfer import ColorPoint, OpacityPoint

    c = TransferFunction(
        name="Custom",
        curves="custom",
        scalar_opacity=(OpacityPoint(-1000, 0), OpacityPoint(150.5, 0.7)),
        color=(ColorPoint(-1000, 0, 0, 0), ColorPoint(150.5, 1, 0.2, 0.1)),
        gradient_opacity=(OpacityPoint(0, 0.5), OpacityPoint(100, 1)),
    )
    assert load_preset(save_preset(c, tmp_path / "c.json")) == c
    # TransferFunction.to_dict()'s point form is accepted too.
    d = c.to_dict()
    d["schema_version"] = 1
    assert preset_from_dict(d) == c


def test_user_presets_listed_after_builtins_and_broken_ones_skipped(tmp_path: Path) -> None:
    udir = user_preset_dir()
    assert udir == tmp_path / "config" / "presets"
    save_preset(TransferFunction(name="My vessels", vessel_window_hu=(200, 500)), udir / "my_vessels.json")
    (udir / "broken.json").write_text('{"schema_version": 1, "name": "B", "bone_threshold_hu": "x"}')
    with pytest.warns(UserWarning, match=r"broken.json: field 'bone_threshold_hu'"):
        presets = list_presets()
    names = list(presets)
    assert names[-1] == "My vessels"
    assert REQUIRED <= set(names[:-1])
    assert "B" not in presets


def test_user_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(CONFIG_DIR_ENV)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert user_preset_dir() == tmp_path / "xdg" / "vessel-viewer" / "presets"


def test_schema_file_lists_the_same_fields() -> None:
    schema = json.loads((builtin_preset_dir() / "schema.json").read_text())
    assert set(schema["properties"]) == set(GOOD)
    assert set(schema["required"]) == {"schema_version", "name"}
