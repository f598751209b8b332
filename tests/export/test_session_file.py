"""Session files: schema, validation messages, paths, atomic writes (no rendering)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from viewer.core.errors import ViewerError
from viewer.core.session import (
    SESSION_SCHEMA_VERSION,
    Session,
    load_session,
    save_session,
    session_from_dict,
)
from viewer.core.transfer import TransferFunction

CAMERA = {
    "position_lps": [10.0, -400.0, 20.0],
    "focal_point_lps": [10.0, 0.0, 20.0],
    "view_up": [0.0, 0.0, 1.0],
    "view_angle_deg": 30.0,
    "parallel_projection": False,
    "parallel_scale_mm": 120.0,
}


def _session(data_path: str) -> Session:
    tf = TransferFunction(name="My preset").with_vessel_window(210, 555).with_bone_threshold(700)
    return Session(
        data_path=data_path,
        series="1.2.3",
        preset_name="My preset",
        transfer_function=tf,
        separated=True,
        camera=CAMERA,
        crop_box_lps=(-50, 50, -40, 40, -100, 100),
        clip_plane=((0, 0, 0), (0, 1, 0)),
        layout="2x2",
    )


@pytest.fixture()
def scan(tmp_path: Path) -> Path:
    p = tmp_path / "data" / "scan.nrrd"
    p.parent.mkdir()
    p.write_bytes(b"not read by these tests")
    return p


def test_round_trip_keeps_every_field(tmp_path: Path, scan: Path) -> None:
    s = _session(str(scan))
    f = save_session(s, tmp_path / "case.json")
    r = load_session(f)
    assert r.data_path == str(scan)
    assert r.series == "1.2.3"
    assert r.preset_name == "My preset"
    assert r.transfer_function == s.transfer_function
    assert r.separated is True
    assert dict(r.camera) == CAMERA  # type: ignore[arg-type]
    assert r.crop_box_lps == (-50, 50, -40, 40, -100, 100)
    assert r.clip_plane == ((0, 0, 0), (0, 1, 0))
    assert r.layout == "2x2"
    d = json.loads(f.read_text())
    assert d["schema_version"] == SESSION_SCHEMA_VERSION
    assert d["data"]["relative_path"] == os.path.join("data", "scan.nrrd")


def test_relative_path_finds_a_moved_folder(tmp_path: Path, scan: Path) -> None:
    f = save_session(_session(str(scan)), tmp_path / "case.json")
    moved = tmp_path.parent / (tmp_path.name + "_moved")
    tmp_path.rename(moved)
    try:
        r = load_session(moved / "case.json")
        assert Path(r.data_path) == (moved / "data" / "scan.nrrd").resolve()
    finally:
        moved.rename(tmp_path)
    assert f.exists()


def test_missing_scan_is_a_clear_error(tmp_path: Path, scan: Path) -> None:
    f = save_session(_session(str(scan)), tmp_path / "case.json")
    scan.unlink()
    with pytest.raises(ViewerError, match="scan this session refers to was not found") as e:
        load_session(f)
    assert str(scan) in str(e.value)
    # Without the check the session itself still reads.
    assert load_session(f, check_data=False).data_path == str(scan)


def test_unknown_version_is_a_clear_error(tmp_path: Path, scan: Path) -> None:
    f = save_session(_session(str(scan)), tmp_path / "case.json")
    d = json.loads(f.read_text())
    d["schema_version"] = SESSION_SCHEMA_VERSION + 1
    d["software"] = "vessel-viewer 9.0"
    f.write_text(json.dumps(d))
    with pytest.raises(ViewerError, match=rf"version {SESSION_SCHEMA_VERSION + 1} is newer.*vessel-viewer 9\.0") as e:
        load_session(f)
    assert str(f) in str(e.value)


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda d: d.pop("schema_version"), "not a vessel-viewer session"),
        (lambda d: d.update(schema_version="1"), "schema_version"),
        (lambda d: d.update(separated="yes"), "'separated' must be true or false"),
        (lambda d: d.update(crop_box_lps=[1, 0, 0, 1, 0, 1]), "crop_box_lps"),
        (lambda d: d.update(zoom=2), "'zoom' is not a known field"),
        (lambda d: d["camera"].pop("view_up"), "camera.view_up' is missing"),
        (lambda d: d["camera"].update(position_lps=[1, "a", 2]), "camera.position_lps"),
        (lambda d: d["transfer_function"].update(bone_threshold_hu="high"), "bone_threshold_hu"),
        (lambda d: d.update(clip_plane={"origin_lps": [0, 0, 0], "normal_lps": [0, 0, 0]}), "normal_lps"),
        (lambda d: d.update(data={"path": ""}), "data.path"),
        (lambda d: d.update(layout=3), "layout"),
        (lambda d: d.update(lesion={"center_lps": [0, 0], "radius_mm": 5}), "'lesion'.*center_lps"),
        (lambda d: d.update(lesion={"center_lps": [0, 0, 0], "radius_mm": 0}), "'lesion'.*radius"),
        (lambda d: d.update(lesion=[1, 2, 3]), "'lesion'"),
        (lambda d: d.update(measurements={"kind": "ruler"}), "'measurements' must be a list"),
        (lambda d: d.update(measurements=[{"kind": "circle"}]), r"'measurements\[0\]'.*kind"),
        (lambda d: d["measurements"][1].pop("vertex_lps"), r"'measurements\[1\]'.*vertex_lps"),
        (lambda d: d.update(vessel_colouring="rainbow"), "'vessel_colouring' must be one of"),
        (lambda d: d.update(lesion=None), "'vessel_colouring' is 'lesion' but the session has no lesion"),
        (lambda d: d.update(keyhole=1), "'keyhole' must be true or false"),
    ],
)
def test_bad_fields_name_the_field(tmp_path: Path, scan: Path, edit, match: str) -> None:  # type: ignore[no-untyped-def]
    d = _planning_session(str(scan)).to_dict()
    edit(d)
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(d))
    with pytest.raises(ViewerError, match=match) as e:
        load_session(f)
    assert "bad.json" in str(e.value)


def test_not_json_and_missing_file(tmp_path: Path) -> None:
    f = tmp_path / "x.json"
    f.write_text("{ nope")
    with pytest.raises(ViewerError, match="not a valid session file"):
        load_session(f)
    with pytest.raises(ViewerError, match="does not exist"):
        load_session(tmp_path / "missing.json")


def test_failed_write_leaves_the_old_session_intact(
    tmp_path: Path, scan: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = save_session(_session(str(scan)), tmp_path / "case.json")
    before = f.read_text()

    def boom(src, dst):  # type: ignore[no-untyped-def]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(ViewerError, match="No space left"):
        save_session(_session(str(scan)).with_changes(layout="3d"), f)
    monkeypatch.undo()
    assert f.read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case.json", "data"]


def test_phantom_needs_no_file(tmp_path: Path) -> None:
    f = save_session(_session("phantom:small"), tmp_path / "p.json")
    r = load_session(f)
    assert r.data_path == "phantom:small"
    assert json.loads(f.read_text())["data"]["relative_path"] is None


def test_session_validates_in_code_too() -> None:
    with pytest.raises(ViewerError, match="clip_plane"):
        Session(data_path="phantom", transfer_function=TransferFunction(), clip_plane=((0, 0, 0), (0, 0, 0)))
    s = session_from_dict(_session("phantom").to_dict())
    assert s.transfer_function.vessel_window_hu == (210.0, 555.0)


# ----- lesion planning (issue 10): lesion, measurements, vessel colouring, keyhole -----
def _planning_session(data_path: str) -> Session:
    from viewer.core.lesion import Lesion
    from viewer.core.measure import Angle, Ruler

    return _session(data_path).with_changes(
        lesion=Lesion.sphere((12.5, -3.0, 40.0), 22.0),
        measurements=(Ruler((0, 0, 0), (30, 40, 0)), Angle((10, 0, 0), (0, 0, 0), (0, 10, 0))),
        vessel_colouring="lesion",
        keyhole=True,
    )


def test_round_trip_keeps_lesion_measurements_and_toggles(tmp_path: Path, scan: Path) -> None:
    from viewer.core.lesion import Lesion
    from viewer.core.measure import Angle, Ruler

    f = save_session(_planning_session(str(scan)), tmp_path / "plan.json")
    r = load_session(f)
    assert r.lesion == Lesion.sphere((12.5, -3.0, 40.0), 22.0)
    assert r.measurements == (Ruler((0, 0, 0), (30, 40, 0)), Angle((10, 0, 0), (0, 0, 0), (0, 10, 0)))
    assert r.measurements[0].length_mm == pytest.approx(50.0)
    assert r.vessel_colouring == "lesion" and r.keyhole is True
    # A box lesion too.
    box = Lesion.box((-10, 10, -5, 5, 0, 30))
    f2 = save_session(r.with_changes(lesion=box), tmp_path / "box.json")
    assert load_session(f2).lesion == box


def test_version_1_session_without_planning_fields_still_loads(tmp_path: Path, scan: Path) -> None:
    d = _session(str(scan)).to_dict()
    for k in ("lesion", "measurements", "vessel_colouring", "keyhole"):
        d.pop(k)
    d["schema_version"] = 1
    f = tmp_path / "old.json"
    f.write_text(json.dumps(d))
    r = load_session(f)
    assert r.lesion is None and r.measurements == () and r.vessel_colouring == "off" and r.keyhole is False
    assert r.schema_version == 1 and r.layout == "2x2"
