"""Exporting the current 3D view as a figure (PNG, JPEG, TIFF) with overlays.

The figure is rendered offscreen at exactly the target size (``width*scale`` x
``height*scale``), from the same camera as the view, rather than upscaled: VTK's view
angle is the *vertical* field of view and its parallel scale is half the viewport
*height* in mm, so keeping both while the aspect ratio is unchanged gives the same
picture with more pixels, undistorted.

Scale-bar rule: a scale bar is only exact in parallel projection (every depth has the
same mm per pixel, ``2 * parallel_scale / height``). When a scale bar is asked for and
the view is in perspective, the figure is rendered in parallel projection with the
parallel scale that shows the focal plane at the same size (``distance *
tan(view_angle / 2)``), unless ``exact_scale=False``, in which case the bar is drawn for
the focal plane and labelled "approx.".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from viewer import __version__
from viewer.core.errors import ViewerError
from viewer.core.presets import preset_to_dict
from viewer.core.transfer import TransferFunction
from viewer.core.volume import Volume
from viewer.export.imagefile import image_format_for, save_image
from viewer.export.overlays import (
    ScaleBar,
    draw_overlays,
    mm_per_pixel_parallel,
    mm_per_pixel_perspective,
    orientation_labels,
    plan_scale_bar,
)
from viewer.render.camera import CameraState

if TYPE_CHECKING:  # pragma: no cover
    from viewer.render.scene import Scene

#: Largest resolution multiplier offered (issue 5: "up to 4x").
MAX_SCALE = 4.0


@dataclass(frozen=True)
class FigureContext:
    """What a figure shows, for its caption and metadata (the scene has the pixels).

    ``volume`` is used for the identity opt-in and the report sheet's side; nothing
    identifying is read from it unless ``ExportOptions.show_identity`` is set."""

    transfer_function: TransferFunction
    preset_name: str = ""
    volume: Volume | None = None
    crop_box_lps: tuple[float, ...] | None = None
    clip_plane: tuple[tuple[float, float, float], tuple[float, float, float]] | None = None
    view_name: str | None = None


@dataclass(frozen=True)
class ExportOptions:
    """How to export a figure.

    ``width`` x ``height`` is the view size in pixels; the file is ``scale`` times that
    (1 to 4). ``transparent`` gives an alpha channel (PNG/TIFF only). Overlays:
    ``orientation_labels`` (A/P/L/R/S/I letters on the edges), ``orientation_marker``
    (the renderer's 3D axes marker), ``scale_bar`` (mm; see the module docstring for
    ``exact_scale``), ``caption`` (preset and thresholds, plus ``caption_text``).
    ``show_identity`` puts the patient's name/ID/birth date in the caption and the
    metadata -- off by default. ``fmt`` overrides the format the extension implies."""

    width: int = 960
    height: int = 540
    scale: float = 1.0
    transparent: bool = False
    orientation_labels: bool = False
    orientation_marker: bool = False
    scale_bar: bool = False
    exact_scale: bool = True
    caption: bool = False
    caption_text: str = ""
    show_identity: bool = False
    fmt: str | None = None

    def __post_init__(self) -> None:
        if int(self.width) < 16 or int(self.height) < 16:
            raise ViewerError(f"image size must be at least 16x16 pixels, got {self.width}x{self.height}")
        if not (1.0 <= float(self.scale) <= MAX_SCALE):
            raise ViewerError(f"resolution multiplier must be between 1 and {MAX_SCALE:g}, got {self.scale}")
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))
        object.__setattr__(self, "scale", float(self.scale))

    @property
    def size_px(self) -> tuple[int, int]:
        """``(width, height)`` of the exported image in pixels."""
        return int(round(self.width * self.scale)), int(round(self.height * self.scale))


@dataclass(frozen=True)
class Figure:
    """A rendered figure: pixels plus what is needed to write and trace it."""

    image: np.ndarray
    settings: Mapping[str, Any]
    identity: Mapping[str, str] | None = None
    scale_bar: ScaleBar | None = None
    camera: CameraState | None = None
    labels: Mapping[str, str] = field(default_factory=dict)


# ----------------------------------------------------------------------------------
# captions and settings
# ----------------------------------------------------------------------------------
def caption_lines(ctx: FigureContext, extra: str = "") -> list[str]:
    """Caption text: preset and the thresholds actually in use (HU)."""
    tf = ctx.transfer_function
    lo, hi = tf.vessel_window_hu
    name = ctx.preset_name or tf.name
    mode = "separated" if tf.separated else "single transfer function"
    if tf.blend_mode == "mip":
        mode = "maximum intensity projection"
    # Whole HU: CT numbers are integers; a sweep's interpolated window would otherwise
    # print as 408.545.
    line = f"{name}: vessels {lo:.0f}-{hi:.0f} HU, bone >= {tf.bone_threshold_hu:.0f} HU ({mode})"
    out = [line]
    if extra:
        out.append(extra)
    return out


def identity_of(volume: Volume | None) -> dict[str, str]:
    """The volume's identity fields (only ever used when the user opted in)."""
    if volume is None:
        return {}
    return {str(k): str(v) for k, v in dict(volume.identity).items() if v not in (None, "")}


def identity_line(identity: Mapping[str, str]) -> str:
    return " / ".join(f"{k}: {v}" for k, v in identity.items())


def figure_settings(
    ctx: FigureContext,
    camera: CameraState,
    size_px: tuple[int, int],
    opts: ExportOptions,
    scale_bar: ScaleBar | None,
) -> dict[str, Any]:
    """The viewer settings recorded in the file's metadata (no identity, no path)."""
    tf = ctx.transfer_function
    d: dict[str, Any] = {
        "software": f"vessel-viewer {__version__}",
        "preset": ctx.preset_name or tf.name,
        "vessel_window_hu": list(tf.vessel_window_hu),
        "bone_threshold_hu": tf.bone_threshold_hu,
        "separated": tf.separated,
        "blend_mode": tf.blend_mode,
        "camera": camera.to_dict(),
        "projection": "parallel" if camera.parallel_projection else "perspective",
        "size_px": list(size_px),
        "resolution_multiplier": opts.scale,
        "transparent": opts.transparent,
        "transfer_function": preset_to_dict(tf),
    }
    if ctx.view_name:
        d["view"] = ctx.view_name
    if ctx.crop_box_lps is not None:
        d["crop_box_lps"] = [float(v) for v in ctx.crop_box_lps]
    if ctx.clip_plane is not None:
        d["clip_plane"] = {"origin_lps": list(ctx.clip_plane[0]), "normal_lps": list(ctx.clip_plane[1])}
    if ctx.volume is not None:
        # Grid facts only: enough to match a figure with a scan, nothing identifying.
        d["volume"] = {"dims_xyz": list(ctx.volume.dims_xyz), "spacing_mm": list(ctx.volume.spacing_mm)}
    if scale_bar is not None:
        d["scale_bar"] = {
            "length_mm": scale_bar.length_mm,
            "length_px": scale_bar.length_px,
            "mm_per_px": scale_bar.mm_per_px,
            "exact": scale_bar.exact,
        }
    return d


# ----------------------------------------------------------------------------------
# camera helpers
# ----------------------------------------------------------------------------------
def parallel_equivalent(cam: CameraState) -> CameraState:
    """The parallel-projection camera that shows the focal plane at the size the
    perspective camera does: parallel scale = distance * tan(view_angle / 2)."""
    if cam.parallel_projection:
        return cam
    dist = float(np.linalg.norm(np.subtract(cam.focal_point_lps, cam.position_lps)))
    scale = dist * math.tan(math.radians(cam.view_angle_deg) / 2.0)
    return replace(cam, parallel_projection=True, parallel_scale_mm=scale)


def mm_per_pixel(cam: CameraState, height_px: int) -> tuple[float, bool]:
    """``(mm per pixel, exact)`` of a camera at an image height."""
    if cam.parallel_projection:
        return mm_per_pixel_parallel(cam.parallel_scale_mm, height_px), True
    dist = float(np.linalg.norm(np.subtract(cam.focal_point_lps, cam.position_lps)))
    return mm_per_pixel_perspective(dist, cam.view_angle_deg, height_px), False


class _MarkerOn:
    """Turn the scene's orientation marker on for one render, then back."""

    def __init__(self, scene: Scene, wanted: bool) -> None:
        self.scene = scene
        self.wanted = wanted
        self.before: bool | None = None

    def __enter__(self) -> None:
        if not self.wanted:
            return
        getter = getattr(self.scene, "orientation_marker_visible", None)
        before = getter() if callable(getter) else getter
        self.before = bool(before) if before is not None else False
        self.scene.set_orientation_marker(True)

    def __exit__(self, *exc: object) -> None:
        if self.wanted and self.before is not None and not self.before:
            self.scene.set_orientation_marker(False)


# ----------------------------------------------------------------------------------
# rendering
# ----------------------------------------------------------------------------------
def render_view(
    scene: Scene,
    camera: CameraState,
    width_px: int,
    height_px: int,
    *,
    transparent: bool = False,
    marker: bool = False,
) -> np.ndarray:
    """Render ``scene`` offscreen from ``camera`` at exactly ``width_px`` x
    ``height_px``; the scene's own camera is restored afterwards."""
    from viewer.render.offscreen import render_to_array

    before = scene.camera_state()
    try:
        scene.set_camera_state(camera)
        with _MarkerOn(scene, marker):
            img = render_to_array(scene, width_px, height_px, transparent=transparent)
    finally:
        scene.set_camera_state(before)
    if img.shape[:2] != (height_px, width_px):
        raise ViewerError(f"the renderer returned {img.shape[1]}x{img.shape[0]} instead of {width_px}x{height_px}")
    return img


def decorate(
    image: np.ndarray,
    camera: CameraState,
    ctx: FigureContext,
    opts: ExportOptions,
    *,
    title: str | None = None,
    caption: bool | None = None,
    identity: bool | None = None,
) -> tuple[np.ndarray, ScaleBar | None, dict[str, str]]:
    """Draw the requested overlays for a camera into ``image``; ``caption`` and
    ``identity`` override ``opts.caption`` / ``opts.show_identity`` for this image."""
    h, w = image.shape[:2]
    labels = orientation_labels(camera.direction_of_projection, camera.view_up) if opts.orientation_labels else {}
    bar = None
    if opts.scale_bar:
        mmpp, exact = mm_per_pixel(camera, h)
        bar = plan_scale_bar(mmpp, w, exact)
    lines: list[str] = []
    if opts.caption if caption is None else caption:
        lines = caption_lines(ctx, opts.caption_text)
    if opts.show_identity if identity is None else identity:
        ident = identity_of(ctx.volume)
        if ident:
            lines.append(identity_line(ident))
    # The renderer's orientation cube fills the bottom-left 20 % of the viewport
    # (Scene's marker renderer viewport): keep the caption above it.
    clear = int(round(0.2 * h)) if opts.orientation_marker else 0
    out, placed = draw_overlays(
        image, labels=labels or None, scale_bar=bar, caption_lines=lines, title=title, caption_clear_bottom_px=clear
    )
    return out, placed, labels


def figure_camera(scene: Scene, opts: ExportOptions) -> CameraState:
    """The camera a figure is rendered from: the scene's, switched to its parallel
    equivalent when an exact scale bar is requested."""
    cam = scene.camera_state()
    if opts.scale_bar and opts.exact_scale:
        cam = parallel_equivalent(cam)
    return cam


def render_figure(scene: Scene, ctx: FigureContext, opts: ExportOptions) -> Figure:
    """Render the scene's current view with the requested overlays (no file written)."""
    if opts.transparent and opts.fmt and image_format_for("x", opts.fmt) == "JPEG":
        raise ViewerError("JPEG has no alpha channel: choose PNG or TIFF for a transparent background")
    w, h = opts.size_px
    cam = figure_camera(scene, opts)
    img = render_view(scene, cam, w, h, transparent=opts.transparent, marker=opts.orientation_marker)
    img, bar, labels = decorate(img, cam, ctx, opts)
    settings = figure_settings(ctx, cam, (w, h), opts, bar)
    if opts.orientation_labels:
        settings["orientation_labels"] = dict(labels)
    identity = identity_of(ctx.volume) if opts.show_identity else None
    return Figure(img, settings, identity or None, bar, cam, labels)


def export_image(scene: Scene, path: str | Path, ctx: FigureContext, opts: ExportOptions) -> Figure:
    """Render and write a figure to ``path`` (format from ``opts.fmt`` or the extension;
    PNG when there is none). JPEG with ``transparent`` is refused before rendering."""
    fmt = image_format_for(path, opts.fmt)
    if fmt == "JPEG" and opts.transparent:
        raise ViewerError("JPEG has no alpha channel: choose PNG or TIFF for a transparent background", path)
    fig = render_figure(scene, ctx, opts)
    save_image(fig.image, path, fig.settings, fmt=fmt, identity=fig.identity)
    return fig


__all__ = [
    "MAX_SCALE",
    "ExportOptions",
    "Figure",
    "FigureContext",
    "caption_lines",
    "decorate",
    "export_image",
    "figure_camera",
    "figure_settings",
    "identity_of",
    "mm_per_pixel",
    "parallel_equivalent",
    "render_figure",
    "render_view",
]
