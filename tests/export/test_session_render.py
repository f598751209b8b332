"""Session round trip through a file restores the same state and the same image."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from viewer.core.errors import ViewerError
from viewer.core.session import save_session
from viewer.export.sessions import open_session_scene, session_from_scene, source_spec
from viewer.render.offscreen import render_to_array


def test_round_trip_same_state_and_same_image(scene, small_leg, bone_vessels, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # A view that differs from every default: separated, narrowed window, crop, clip,
    # turned and zoomed camera, parallel projection.
    tf = bone_vessels.with_vessel_window(220, 560).with_changes(separated=True)
    scene.set_transfer_function(tf)
    lo, hi = small_leg.volume.bounds_lps()
    crop = (lo[0], hi[0], lo[1], hi[1], lo[2] + 0.2 * (hi[2] - lo[2]), hi[2])
    scene.set_crop_box_lps(crop)
    centre = (lo + hi) / 2
    clip = (tuple(float(v) for v in centre), (0.0, 0.3, 1.0))
    scene.set_clip_plane(*clip)
    scene.azimuth(35)
    scene.elevation(10)
    scene.zoom(1.3)
    before = render_to_array(scene, 160, 120)
    s = session_from_scene(scene, "phantom:small", preset_name="Bone + vessels", clip_plane=clip, layout="3d")
    f = save_session(s, tmp_path / "case.session.json")

    restored, s2, vol = open_session_scene(f)
    try:
        assert s2.transfer_function == tf and s2.separated is True
        assert restored.transfer_function == tf
        assert restored.crop_box_lps == pytest.approx(crop)
        a, b = restored.camera_state(), scene.camera_state()
        for k in ("position_lps", "focal_point_lps", "view_up"):
            assert np.allclose(getattr(a, k), getattr(b, k), atol=1e-6)
        assert a.view_angle_deg == pytest.approx(b.view_angle_deg)
        assert np.allclose(np.ravel(s2.clip_plane), np.ravel(clip))
        after = render_to_array(restored, 160, 120)
    finally:
        restored.close()
    diff = np.abs(before.astype(np.int16) - after.astype(np.int16))
    assert is_not_blank(before)
    # Per-pixel difference statistics: the same image (the phantom is regenerated
    # deterministically; allow for nothing but rounding).
    assert diff.mean() < 0.5
    assert np.percentile(diff, 99.5) <= 8


def is_not_blank(img: np.ndarray) -> bool:
    return bool((img.max(axis=-1) > 30).mean() > 0.02)


def test_missing_scan_message(tmp_path: Path, scene) -> None:  # type: ignore[no-untyped-def]
    scan = tmp_path / "scan.nrrd"
    scan.write_bytes(b"x")
    f = save_session(session_from_scene(scene, str(scan)), tmp_path / "s.json")
    scan.unlink()
    with pytest.raises(ViewerError, match="not found"):
        open_session_scene(f)


def test_unknown_version_message(tmp_path: Path, scene) -> None:  # type: ignore[no-untyped-def]
    f = save_session(session_from_scene(scene, "phantom:small"), tmp_path / "s.json")
    d = json.loads(f.read_text())
    d["schema_version"] = 99
    f.write_text(json.dumps(d))
    with pytest.raises(ViewerError, match="version 99 is newer"):
        open_session_scene(f)


def test_source_spec_from_gui_record(tmp_path: Path) -> None:
    assert source_spec({"kind": "phantom", "size": "small"}) == ("phantom:small", None)
    assert source_spec({"kind": "phantom", "size": "default"}) == ("phantom", None)
    assert source_spec({"kind": "path", "path": str(tmp_path), "series": "7"}) == (str(tmp_path.resolve()), "7")
    with pytest.raises(ViewerError, match="not known which scan"):
        source_spec({})


def test_planning_round_trip_into_an_offscreen_scene(scene, small_leg, bone_vessels, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Lesion, keyhole, distance colouring and measurements saved from a scene come back
    in the scene a session file restores, and draw the same image."""
    from viewer.core.lesion import Lesion
    from viewer.core.measure import Angle, Ruler
    from viewer.core.state import ViewerState
    from viewer.render.scene_adapter import reset

    lo, hi = small_leg.volume.bounds_lps()
    centre = tuple(float(v) for v in (lo + hi) / 2)
    lesion = Lesion.sphere(centre, 30.0)
    ms = (Ruler(centre, (centre[0] + 20, centre[1], centre[2])), Angle((0, 0, centre[2]), centre, (0, 10, centre[2])))
    state = ViewerState(bone_vessels.with_changes(separated=True))
    state.update(volume=small_leg.volume, lesion=lesion, vessel_colouring="lesion", keyhole=True, measurements=ms)
    reset(scene, state)
    before = render_to_array(scene, 160, 120)
    s = session_from_scene(scene, "phantom:small", measurements=ms)
    assert s.lesion == lesion and s.keyhole and s.vessel_colouring == "lesion"
    f = save_session(s, tmp_path / "plan.json")
    restored, s2, _vol = open_session_scene(f)
    try:
        assert s2.measurements == ms
        assert restored.lesion == lesion and restored.keyhole is True
        assert restored.vessel_colouring[0] == "lesion"
        assert restored.lesion_overlay.measurements == ms
        after = render_to_array(restored, 160, 120)
    finally:
        restored.close()
    assert is_not_blank(before)
    diff = np.abs(before.astype(np.int16) - after.astype(np.int16))
    assert diff.mean() < 0.5
