"""The one adapter from state to scene (issue 9, ``viewer.render.scene_adapter``): ``reset``
brings a fresh scene to a whole state; the per-field handlers, applied one edit at a
time as the GUI's 3D view applies them, reach the same scene; a handler changes only
its own field, and a vessel-window edit only restyles."""

from __future__ import annotations

import os

os.environ.setdefault("VTK_SMP_BACKEND_IN_USE", "STDThread")

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from render_helpers import Leg

from viewer.core.errors import ViewerError
from viewer.core.extraction import ClassMasks
from viewer.core.lesion import Lesion
from viewer.core.measure import Ruler
from viewer.core.presets import default_preset
from viewer.core.state import ViewerState
from viewer.core.transfer import TransferFunction
from viewer.export.lesion_report import scene_class_masks
from viewer.render import scene_adapter as sa
from viewer.render.offscreen import render_to_array
from viewer.render.scene import Scene
from viewer.render.scene_data import pending_work, prepare_scene

W, H = 96, 72


#: The default preset in separated mode, and the leg's masks for it.
TF = default_preset().with_changes(separated=True)


@pytest.fixture(scope="module")
def masks(leg: Leg) -> ClassMasks:
    return scene_class_masks(leg.volume, TF)


def _fields(leg: Leg, masks: ClassMasks) -> dict[str, Any]:
    """A planning view with every scene field set."""
    lo, hi = leg.volume.bounds_lps()
    c = tuple(float(v) for v in (lo + hi) / 2.0)
    return {
        "class_masks": masks,
        "crop_box_lps": (lo[0] + 2.0, hi[0] - 2.0, lo[1], hi[1], lo[2] + 5.0, hi[2] - 5.0),
        "clip_plane": (c, (0.0, 1.0, 0.0)),
        "lesion": Lesion.sphere(c, 15.0),
        "keyhole": True,
        "vessel_colouring": "bone",
        "measurements": (Ruler(c, (c[0] + 10.0, c[1], c[2])),),
    }


def _state(leg: Leg, tf: TransferFunction, **fields: Any) -> ViewerState:
    st = ViewerState(tf)
    st.update(volume=leg.volume, **fields)
    return st


@pytest.fixture()
def scenes() -> Iterator[list[Scene]]:
    made: list[Scene] = []
    yield made
    for s in made:
        s.close()


def _new(scenes: list[Scene]) -> Scene:
    s = Scene(offscreen=True)
    scenes.append(s)
    return s


def _shown(scene: Scene) -> dict[str, Any]:
    """What a scene shows, field by field (the scene's view of each state field)."""
    clip = scene._clip
    return {
        "volume": scene.volume,
        "transfer_function": scene.transfer_function,
        "class_masks": scene.class_masks if scene.has_supplied_masks else None,
        "crop_box_lps": scene.crop_box_lps,
        "clip_plane": None if clip is None else (tuple(clip[0]), tuple(clip[1])),
        "lesion": scene.lesion,
        "outline": scene.lesion_overlay.lesion,
        "keyhole": scene.keyhole,
        "vessel_colouring": scene.vessel_colouring,
        "measurements": tuple(scene.lesion_overlay.measurements),
    }


def test_reset_shows_the_whole_state(leg: Leg, masks: ClassMasks, scenes: list[Scene]) -> None:
    fields = _fields(leg, masks)
    st = _state(leg, TF, **fields)
    s = _new(scenes)
    sa.reset(s, st, camera="left", colour_max_mm=20.0)
    got = _shown(s)
    assert got["volume"] is leg.volume and got["transfer_function"] == TF
    assert got["class_masks"] is masks, "the state's masks are used, not recomputed"
    assert got["crop_box_lps"] == st.crop_box_lps and got["clip_plane"] == st.clip_plane
    assert got["lesion"] == got["outline"] == fields["lesion"] and got["keyhole"] is True
    assert got["vessel_colouring"] == ("bone", 20.0)
    assert got["measurements"] == fields["measurements"]
    assert s.has_scalars and s.vtk_volume.GetVisibility()
    cam = s.camera_state()
    assert cam.position_lps[0] > cam.focal_point_lps[0], "seen from the patient's left (+x)"
    # Camera states are taken as they are.
    other = _new(scenes)
    sa.reset(other, st, camera=cam)
    assert np.allclose(other.camera_state().position_lps, cam.position_lps)


def test_incremental_handlers_reach_the_scene_reset_builds(leg: Leg, masks: ClassMasks, scenes: list[Scene]) -> None:
    """The GUI path: the volume placed, then one edit at a time -- each field's direct
    handler, and for the prepared fields a snapshot prepared and applied -- ends where
    ``reset`` of the final state does, in what the scene holds and in the picture."""
    fields = _fields(leg, masks)
    st = _state(leg, TF)
    gui = _new(scenes)
    sa.place(gui, st)
    gui.apply_prepared(prepare_scene(sa.scene_inputs(gui, st, own_masks=False)))

    def on_edit(field: str, _value: object) -> None:
        if sa.apply_field(gui, st, field):
            gui.apply_prepared(prepare_scene(sa.scene_inputs(gui, st, own_masks=False)))

    for f in sa.SCENE_FIELDS:
        st.event(f).connect(lambda v, _f=f: on_edit(_f, v))
    for name, value in fields.items():
        setattr(st, name, value)

    fresh = _new(scenes)
    sa.reset(fresh, st, camera=gui.camera_state(), own_masks=False)
    assert _shown(fresh) == _shown(gui)
    a, b = render_to_array(gui, W, H), render_to_array(fresh, W, H)
    assert np.abs(a.astype(np.int16) - b.astype(np.int16)).mean() < 0.5


def test_a_field_handler_changes_only_its_field(leg: Leg, masks: ClassMasks, scenes: list[Scene]) -> None:
    st = _state(leg, TF, **_fields(leg, masks))
    s = _new(scenes)
    sa.reset(s, st)
    buffer = s._buffer
    lo, hi = leg.volume.bounds_lps()
    edits: dict[str, Any] = {
        "measurements": (),
        "crop_box_lps": None,
        "clip_plane": None,
    }
    for field, value in edits.items():
        before = _shown(s)
        setattr(st, field, value)
        assert sa.apply_field(s, st, field) is False, f"{field} is a direct field"
        after = _shown(s)
        changed = {k for k in before if before[k] != after[k]}
        assert changed == {field}, f"{field} edit changed {changed}"
        assert s._buffer is buffer, f"{field} edit re-encoded the volume"
    # The lesion's direct handler moves the outline only; keyhole and colours follow prepared.
    before = _shown(s)
    st.lesion = Lesion.sphere(tuple(float(v) for v in (lo + hi) / 2.0 + 3.0), 12.0)
    assert sa.apply_field(s, st, "lesion") is True
    after = _shown(s)
    assert {k for k in before if before[k] != after[k]} == {"outline"}


def test_a_vessel_window_edit_only_restyles(leg: Leg, masks: ClassMasks, scenes: list[Scene]) -> None:
    st = _state(leg, TF, class_masks=masks)
    s = _new(scenes)
    sa.reset(s, st)
    buffer = s._buffer
    lo_hu, hi_hu = TF.vessel_window_hu
    st.transfer_function = TF.with_changes(vessel_window_hu=(lo_hu + 40.0, hi_hu))
    assert sa.apply_field(s, st, "transfer_function") is True
    inputs = sa.scene_inputs(s, st, own_masks=False)
    assert pending_work(inputs) == (), "nothing to prepare: a restyle"
    assert s.apply_prepared(prepare_scene(inputs))
    assert s._buffer is buffer and s.transfer_function == st.transfer_function
    assert s.class_masks is masks


def test_masks_the_scene_may_make_itself(leg: Leg, scenes: list[Scene]) -> None:
    """Without the mask controller's masks: a scene on the GUI thread shows one class
    (never computes masks there); a command-line or export scene computes them."""
    st = _state(leg, TF)
    assert sa.scene_transfer_function(st, own_masks=False).separated is False
    assert sa.scene_transfer_function(st, own_masks=True) == TF
    gui, cli = _new(scenes), _new(scenes)
    sa.reset(gui, st, own_masks=False)
    assert not gui.transfer_function.separated and gui.class_masks is None
    sa.reset(cli, st)
    assert cli.transfer_function.separated and cli.class_masks is not None
    assert not cli.has_supplied_masks


def test_colouring_and_masks_as_shown(leg: Leg, masks: ClassMasks) -> None:
    assert sa.shown_colouring("lesion", None) == "off"
    assert sa.shown_colouring("bone", None) == "bone"
    lesion = Lesion.sphere((0.0, 0.0, 0.0), 5.0)
    assert sa.shown_colouring("lesion", lesion) == "lesion"
    st = _state(leg, TF, class_masks=masks)
    assert sa.state_masks(st) is masks
    late = ClassMasks(np.zeros((2, 2, 2), bool), None, 300.0, (150.0, 500.0))
    st.class_masks = late  # masks of a previous scan, arriving late
    assert sa.state_masks(st) is None
    assert set(sa.SCENE_FIELDS) == set(sa.FIELD_HANDLERS) | sa.PREPARED_FIELDS


def test_reset_needs_a_volume(scenes: list[Scene]) -> None:
    with pytest.raises(ViewerError, match="no volume"):
        sa.reset(_new(scenes), ViewerState())


def test_a_copy_like_another_scene_shares_its_scalars_and_draws_the_same(
    leg: Leg, masks: ClassMasks, scenes: list[Scene]
) -> None:
    """``reset(..., like=window_scene)`` (the offscreen copy for stills and movies) takes
    the window scene's scalars buffer itself (not a second encoding of the volume) and
    copies of its meshes, and draws what a copy prepared from scratch draws."""
    from viewer.render import scene_data

    fields = _fields(leg, masks)
    st = _state(leg, TF, **fields)
    src = _new(scenes)
    sa.reset(src, st, camera="anterior", colour_max_mm=20.0)
    parts = src.prepared_parts
    assert parts is not None and parts.buffer is not None and parts.vessel_mesh is not None
    encodes: list[int] = []
    real_encode = scene_data.encode_buffer

    def counting(*a: Any, **k: Any) -> Any:
        encodes.append(1)
        return real_encode(*a, **k)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(scene_data, "encode_buffer", counting)
        shared = _new(scenes)
        sa.reset(shared, st, camera=src.camera_state(), colour_max_mm=20.0, like=src)
        assert encodes == [], "the copy encoded the volume again"
        fresh = _new(scenes)
        sa.reset(fresh, st, camera=src.camera_state(), colour_max_mm=20.0)
        assert encodes == [1]
    assert shared._buffer is src._buffer
    # its block value ranges too (the visible extent's), not made a second time
    assert src._extent.has_ranges_for(src._buffer)
    assert shared._extent.ranges(shared._buffer) is src._extent.ranges(src._buffer)
    assert shared._vessel_mesh.mesh is not src._vessel_mesh.mesh  # its own copy
    assert shared._vessel_mesh.mesh.GetNumberOfPoints() == src._vessel_mesh.mesh.GetNumberOfPoints()
    a = render_to_array(shared, W, H).astype(int)
    b = render_to_array(fresh, W, H).astype(int)
    assert (a.max(axis=-1) > 30).mean() > 0.02  # not blank
    assert np.abs(a - b).mean() < 0.5
    # nothing to share with a scene that has not placed that volume
    assert not _new(scenes).share_parts_of(src)
