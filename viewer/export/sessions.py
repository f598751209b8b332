"""Sessions applied to scenes: open the scan a session names, restore its view.

The session format itself is plain data in :mod:`viewer.core.session`; this module
does what needs the loader, the phantom and the renderer (so it lives above them):
opening the scan (a file, a DICOM folder or the built-in phantom), and putting the
transfer function, separated mode, crop box, clip plane, camera and the lesion-planning
view (lesion, vessel colouring, keyhole, measurements) into a
:class:`~viewer.render.scene.Scene`, as a :class:`~viewer.core.state.ViewerState` that
the one state-to-scene adapter (:mod:`viewer.render.scene_adapter`) shows. The GUI's
session dialogs and ``vessel-viewer render --session`` both go through here, so a
session restores the same image in both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from viewer.core.errors import ViewerError
from viewer.core.progress import ProgressFn
from viewer.core.session import Session, is_builtin_source, load_session
from viewer.core.state import ViewerState
from viewer.core.transfer import TransferFunction
from viewer.core.volume import Volume
from viewer.render.camera import CameraState
from viewer.render.scene_adapter import reset, shown_colouring

if TYPE_CHECKING:  # pragma: no cover
    from viewer.core.measure import Measurement
    from viewer.render.scene import Scene

PHANTOM_SIZES = ("small", "default", "large")


def phantom_size(spec: str) -> str:
    """``"phantom"`` -> ``"default"``, ``"phantom:small"`` -> ``"small"``."""
    size = spec.split(":", 1)[1].strip().lower() if ":" in spec else "default"
    if size not in PHANTOM_SIZES:
        raise ViewerError(f"unknown phantom size {size!r} (use phantom, phantom:small or phantom:large)")
    return size


def open_source(path: str, series: str | None = None, progress: ProgressFn | None = None) -> Volume:
    """Load the volume a path names: ``phantom[:size]`` for the built-in phantom, else a
    file or DICOM folder through the loader. ViewerError if it is missing or bad."""
    if is_builtin_source(path):
        from viewer import phantom

        return phantom.generate(phantom_size(path), progress=progress).volume
    p = Path(path)
    if not p.exists():
        raise ViewerError(f"no such file or folder: {p}", p)
    from viewer import io as vio

    if series is None:
        return vio.load_volume(p, progress=progress)
    return vio.load_volume(p, series=series, progress=progress)


def source_spec(source: Mapping[str, Any] | None, volume: Volume | None = None) -> tuple[str, str | None]:
    """``(data_path, series)`` for a session from the GUI's record of where the volume
    came from (``MainWindow.current_source``: ``{"kind": "path", "path": ...,
    "series": ...}`` or ``{"kind": "phantom", "size": ...}``), else from
    ``Volume.source``."""
    if source:
        kind = source.get("kind")
        if kind == "phantom":
            size = str(source.get("size") or "default")
            return ("phantom" if size == "default" else f"phantom:{size}"), None
        if kind == "path" and source.get("path"):
            series = source.get("series")
            return str(Path(str(source["path"])).resolve()), (None if series is None else str(series))
    if volume is not None and volume.source:
        src = str(volume.source)
        if is_builtin_source(src):
            phantom_size = volume.metadata.get("phantom_size")
            if src == "phantom" and phantom_size and phantom_size != "default":
                src = f"phantom:{phantom_size}"
            return src, None
        if Path(src).exists():
            return str(Path(src).resolve()), None
    raise ViewerError("cannot save a session: it is not known which scan is shown (open a scan first)")


def session_from_scene(
    scene: Scene,
    data_path: str,
    *,
    series: str | None = None,
    preset_name: str = "",
    transfer_function: TransferFunction | None = None,
    crop_box_lps: tuple[float, ...] | None = None,
    clip_plane: Any = None,
    layout: str = "3d",
    measurements: Sequence[Measurement] = (),
) -> Session:
    """A session describing what ``scene`` shows now (its camera and, unless given,
    its transfer function, crop box, lesion, vessel colouring and keyhole)."""
    tf = transfer_function if transfer_function is not None else scene.transfer_function
    crop = crop_box_lps if crop_box_lps is not None else scene.crop_box_lps
    return Session(
        data_path=data_path,
        series=series,
        preset_name=preset_name or tf.name,
        transfer_function=tf,
        separated=tf.separated,
        camera=scene.camera_state().to_dict(),
        crop_box_lps=None if crop is None else tuple(float(v) for v in crop),  # type: ignore[arg-type]
        clip_plane=clip_plane,
        layout=layout,
        lesion=scene.lesion,
        measurements=tuple(measurements),
        vessel_colouring=shown_colouring(scene.vessel_colouring[0], scene.lesion),
        keyhole=scene.keyhole,
    )


def session_transfer_function(session: Session) -> TransferFunction:
    """The session's transfer function with its separated flag applied."""
    tf = session.transfer_function
    if tf.separated != session.separated:
        tf = tf.with_changes(separated=session.separated)
    return tf


def session_camera(session: Session) -> CameraState | None:
    if session.camera is None:
        return None
    try:
        return CameraState.from_dict(session.camera)
    except ViewerError as exc:
        raise ViewerError(f"session camera: {exc}") from None


def planning_fields(source: Any) -> dict[str, Any]:
    """The lesion-planning fields of a :class:`~viewer.core.state.ViewerState` or a
    :class:`Session` (``lesion``, ``measurements``, ``vessel_colouring``, ``keyhole``),
    as keyword arguments for the other. Colouring by distance to the lesion without a
    lesion shows the class colours, and is said so ("off")."""
    return {
        "lesion": source.lesion,
        "measurements": tuple(source.measurements),
        "vessel_colouring": shown_colouring(str(source.vessel_colouring), source.lesion),
        "keyhole": bool(source.keyhole),
    }


def session_fields(session: Session) -> dict[str, Any]:
    """The :class:`~viewer.core.state.ViewerState` fields a session restores (all but
    the volume, the layout and the camera), as keyword arguments for ``state.update``."""
    return {
        "transfer_function": session_transfer_function(session),
        "preset_name": session.preset_name or session.transfer_function.name,
        "crop_box_lps": session.crop_box_lps,
        "clip_plane": session.clip_plane,
        **planning_fields(session),
    }


def session_state(session: Session, volume: Volume) -> ViewerState:
    """A viewer state showing ``volume`` as the session left it (for an offscreen scene:
    :func:`viewer.render.scene_adapter.reset`)."""
    state = ViewerState()
    state.update(volume=volume, **session_fields(session))
    return state


def apply_session_to_scene(scene: Scene, session: Session, volume: Volume | None = None) -> None:
    """Put the session's view into ``scene``: the volume (the scene's own when not
    given), transfer function, crop box, clip plane, camera (the anterior view when it
    has none) and the lesion, vessel colouring, keyhole and measurements."""
    vol = volume if volume is not None else scene.volume
    if vol is None:
        raise ViewerError("a session needs its scan: give the volume")
    reset(scene, session_state(session, vol), camera=session_camera(session) or "anterior")


def open_session_scene(
    path: str | Path, progress: ProgressFn | None = None, scene: Scene | None = None
) -> tuple[Scene, Session, Volume]:
    """Read a session file, load its scan and build an offscreen scene showing it.
    Returns ``(scene, session, volume)``; the caller closes the scene."""
    session = load_session(path)
    volume = open_source(session.data_path, session.series, progress)
    if scene is None:
        from viewer.render.scene import Scene

        scene = Scene(offscreen=True)
    try:
        apply_session_to_scene(scene, session, volume)
    except BaseException:
        scene.close()
        raise
    return scene, session, volume


__all__ = [
    "PHANTOM_SIZES",
    "apply_session_to_scene",
    "planning_fields",
    "open_session_scene",
    "open_source",
    "phantom_size",
    "session_camera",
    "session_fields",
    "session_from_scene",
    "session_state",
    "session_transfer_function",
    "source_spec",
]
