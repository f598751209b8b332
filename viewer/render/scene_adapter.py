"""The one adapter from the viewer's state to a :class:`~viewer.render.scene.Scene` (issue 9).

napari's layer model, in small: :func:`reset` brings a scene to a whole
:class:`~viewer.core.state.ViewerState` (offscreen stills, movies, session restore, the
command line, the lesion report), and :data:`FIELD_HANDLERS` maps one state field to the
scene call that shows it, for the GUI's incremental edits (a ruler edit touches the
rulers only, a crop edit the crop planes only).

The state's fields reach the scene in two ways:

* **direct** fields (:data:`FIELD_HANDLERS`): crop box, clip plane, the lesion's outline,
  the rulers and angles, the analysis' entry points and centrelines -- a cheap VTK setter
  each, applied at once;
* **prepared** fields (:data:`PREPARED_FIELDS`): transfer function, class masks, lesion,
  keyhole and vessel colouring -- they may need voxels encoded or meshes built, so they
  reach the scene together as one :func:`scene_inputs` snapshot, prepared by
  :func:`viewer.render.scene_data.prepare_scene` (on a worker in the GUI, at once here)
  and installed by ``Scene.apply_prepared``. A vessel-window edit prepares nothing and
  only restyles.

What a scene shows beyond the state -- the camera, which analysis overlays are on, the
distance colour scale -- is passed alongside (:class:`Overlays`, ``camera``,
``colour_max_mm``); it is not part of the state.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from viewer.core.errors import ViewerError
from viewer.core.extraction import ClassMasks
from viewer.core.lesion import Lesion
from viewer.core.state import ViewerState
from viewer.core.transfer import TransferFunction
from viewer.render.camera import CameraState
from viewer.render.scene_data import SceneInputs, prepare_scene

if TYPE_CHECKING:  # pragma: no cover
    from viewer.render.scene import Scene


@dataclass(frozen=True)
class Overlays:
    """Which of the lesion analysis' overlays a scene draws (a view setting, not state)."""

    entry_points: bool = True
    centrelines: bool = True


Handler = Callable[["Scene", ViewerState, Overlays], None]

#: The fields that reach the scene through one prepared snapshot (:func:`scene_inputs`).
PREPARED_FIELDS: frozenset[str] = frozenset(
    {"transfer_function", "class_masks", "lesion", "keyhole", "vessel_colouring"}
)


def shown_colouring(colouring: str, lesion: Lesion | None) -> str:
    """The vessel colouring a scene shows: by distance to the lesion without a lesion
    shows the class colours, and is said so (``"off"``)."""
    return "off" if colouring == "lesion" and lesion is None else str(colouring)


def state_masks(state: ViewerState) -> ClassMasks | None:
    """The state's class masks if they are the state volume's (masks of a previous scan
    may still arrive late), else None."""
    masks, vol = state.class_masks, state.volume
    if masks is None or vol is None or masks.bone.shape != vol.shape:
        return None
    return masks


def scene_transfer_function(state: ViewerState, *, own_masks: bool) -> TransferFunction:
    """The transfer function the scene draws. ``own_masks=False`` (a scene on the GUI
    thread): separated mode without the mask controller's masks shows bone only (one class,
    no vessel colour) until they arrive, as a scene computing them itself would freeze the window
    for seconds on a big scan. ``own_masks=True`` (command line, exports on a worker):
    the scene computes masks for the thresholds when it needs them."""
    tf = state.transfer_function
    if not own_masks and tf.separated and state.class_masks is None:
        # Bone only, by its threshold: until the separation says which voxels are
        # vessel, nothing is painted vessel red (the plain one-class picture painted
        # every bone edge and cancellous bone in the vessel window red).
        hidden = dataclasses.replace(tf.vessel, visible=False)
        return tf.with_changes(separated=False, vessel=hidden, curves="threshold")
    return tf


def scene_inputs(
    scene: Scene, state: ViewerState, *, own_masks: bool, colour_max_mm: float | None = None
) -> SceneInputs:
    """The :data:`PREPARED_FIELDS` of ``state`` as a snapshot for ``prepare_scene``
    (cheap; on the scene's thread; the scene must show the state's volume).
    ``colour_max_mm``: the distance colour scale's top, None keeps the scene's."""
    max_mm = scene.vessel_colouring[1] if colour_max_mm is None else float(colour_max_mm)
    return scene.scene_inputs(
        tf=scene_transfer_function(state, own_masks=own_masks),
        masks=state_masks(state),
        lesion=state.lesion,
        keyhole=state.keyhole,
        colouring=(shown_colouring(state.vessel_colouring, state.lesion), max_mm),
    )


# ----- direct fields: one scene call each ------------------------------------------------
def _crop(scene: Scene, state: ViewerState, _o: Overlays) -> None:
    scene.set_crop_box_lps(state.crop_box_lps)


def _clip(scene: Scene, state: ViewerState, _o: Overlays) -> None:
    plane = state.clip_plane
    if plane is None:
        scene.set_clip_plane(None)
    else:
        scene.set_clip_plane(plane[0], plane[1])


def _lesion_outline(scene: Scene, state: ViewerState, _o: Overlays) -> None:
    # The outline follows at once; the keyhole and the colours come prepared.
    scene.lesion_overlay.set_lesion(state.lesion)


def _measurements(scene: Scene, state: ViewerState, _o: Overlays) -> None:
    scene.set_measurements(state.measurements)


def _analysis(scene: Scene, state: ViewerState, overlays: Overlays) -> None:
    a = state.lesion_analysis
    scene.set_entry_points(a.entry_points if a is not None and overlays.entry_points else ())
    scene.set_centrelines(a.branches if a is not None and overlays.centrelines else ())


#: State field -> the scene call that shows it at once (the direct fields).
FIELD_HANDLERS: Mapping[str, Handler] = MappingProxyType(
    {
        "crop_box_lps": _crop,
        "clip_plane": _clip,
        "lesion": _lesion_outline,
        "measurements": _measurements,
        "lesion_analysis": _analysis,
    }
)

#: Every field the scene shows (``volume`` is placed by :func:`place`).
SCENE_FIELDS: tuple[str, ...] = tuple(f for f in ViewerState.FIELDS if f in FIELD_HANDLERS or f in PREPARED_FIELDS)


def apply_field(scene: Scene, state: ViewerState, field: str, overlays: Overlays = Overlays()) -> bool:
    """Show ``state.<field>`` in ``scene`` by its direct handler (if it has one).
    Returns whether the field also needs the prepared path (:func:`scene_inputs`)."""
    handler = FIELD_HANDLERS.get(field)
    if handler is not None:
        handler(scene, state, overlays)
    return field in PREPARED_FIELDS


def place(scene: Scene, state: ViewerState, overlays: Overlays = Overlays()) -> None:
    """Put the state's volume into the scene (placed only: its scalars come with the
    prepared fields) and apply every direct field."""
    vol = state.volume
    if vol is None:
        raise ViewerError("no volume to show: the state has none")
    scene.set_volume(vol, prepare=False)
    for handler in FIELD_HANDLERS.values():
        handler(scene, state, overlays)


def reset(
    scene: Scene,
    state: ViewerState,
    *,
    camera: CameraState | str | None = None,
    overlays: Overlays = Overlays(),
    own_masks: bool = True,
    colour_max_mm: float | None = None,
    like: Scene | None = None,
) -> None:
    """Bring ``scene`` to the whole ``state``, synchronously: :func:`place`, then the
    prepared fields in one preparation on this thread.

    ``camera``: a :class:`CameraState`, a standard view name (``"anterior"``...), or None
    to keep the scene's camera (a scene's first volume is shown from the front).
    ``own_masks``: see :func:`scene_transfer_function`. ``colour_max_mm``: see
    :func:`scene_inputs`. ``like``: a scene already showing this state's volume (the
    window's, for an offscreen copy): its scalars and meshes are shared first
    (:meth:`Scene.share_parts_of`), so the preparation makes only what differs -- the
    volume is not encoded a second time."""
    place(scene, state, overlays)
    if like is not None and like is not scene:
        scene.share_parts_of(like)
    inputs = scene_inputs(scene, state, own_masks=own_masks, colour_max_mm=colour_max_mm)
    if not scene.apply_prepared(prepare_scene(inputs)):
        raise ViewerError("the 3D scene changed while it was being reset")  # pragma: no cover - one thread
    if isinstance(camera, str):
        scene.set_view(camera)
    elif camera is not None:
        scene.set_camera_state(camera)


__all__ = [
    "FIELD_HANDLERS",
    "PREPARED_FIELDS",
    "SCENE_FIELDS",
    "Handler",
    "Overlays",
    "apply_field",
    "place",
    "reset",
    "scene_inputs",
    "scene_transfer_function",
    "shown_colouring",
    "state_masks",
]
