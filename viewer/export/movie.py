"""Teaching movies: a turntable and a threshold sweep, to MP4 or animated GIF.

Both are plain synchronous functions taking ``progress(fraction, message)``; the GUI
runs them on a worker thread and cancels by making ``progress`` raise
:class:`~viewer.core.errors.LoadCancelled` (see ``viewer.core.progress``). A cancelled
or failed movie leaves no file behind (frames go to a temporary file that is moved
onto the target only when complete) and the scene's camera and transfer function are
restored.

Frame counts are exact: ``duration_s * fps`` frames rounded half up (1 s at 12.5
frames/s is 13 frames; Python's ``round`` would give 12 here but 14 for 13.5, rounding
halves to even). The turntable turns the
camera through one full revolution about a patient axis through the focal point,
frame ``i`` at ``360 * i / n`` degrees (so the loop closes without a repeated frame).

MP4 uses H.264 (libx264 through imageio-ffmpeg) in yuv420p, which needs even frame
sizes: odd sizes are rounded down to even. GIF frames are written one by one (each
with its own 256-colour palette) by :class:`GifWriter`, because Pillow's multi-frame
GIF writer merges identical consecutive frames, which would break the frame count.
"""

from __future__ import annotations

import io
import math
import os
import struct
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Literal, Protocol

import numpy as np
from PIL import Image

from viewer.core.errors import ViewerError
from viewer.core.mask_policy import MaskSettings, masks_fit
from viewer.core.progress import ProgressFn, report
from viewer.core.transfer import TransferFunction
from viewer.export.image import ExportOptions, FigureContext, decorate, figure_camera, render_view
from viewer.render.camera import CameraState

if TYPE_CHECKING:  # pragma: no cover
    from viewer.render.scene import Scene

Axis = Literal["superior-inferior", "anterior-posterior", "left-right"]

#: Rotation axes in LPS (DICOM patient coordinates).
AXES_LPS: dict[str, tuple[float, float, float]] = {
    "superior-inferior": (0.0, 0.0, 1.0),
    "anterior-posterior": (0.0, 1.0, 0.0),
    "left-right": (1.0, 0.0, 0.0),
}
_AXIS_ALIASES = {
    "si": "superior-inferior",
    "ap": "anterior-posterior",
    "lr": "left-right",
    "z": "superior-inferior",
    "y": "anterior-posterior",
    "x": "left-right",
}

MAX_FRAMES = 3600


def movie_format(path: str | Path) -> str:
    """``"mp4"`` or ``"gif"`` from the extension; anything else is a ViewerError."""
    suffix = Path(path).suffix.lower()
    if suffix in (".mp4", ".m4v"):
        return "mp4"
    if suffix == ".gif":
        return "gif"
    raise ViewerError(f"a movie must be .mp4 or .gif, got {suffix or 'no extension'!r}", path)


def frame_count(duration_s: float, fps: float) -> int:
    """``duration_s * fps`` rounded half up (12.5 -> 13), validated (1 .. MAX_FRAMES).

    Half up, not Python's ``round`` (halves to even: 12.5 -> 12 but 13.5 -> 14), so the
    count is one rule for every input; the tiny tolerance keeps a product like
    ``0.1 * 25`` (2.5000000000000004 or 2.4999999999999996 in binary) on its half."""
    if not (fps > 0 and math.isfinite(fps)) or fps > 120:
        raise ViewerError(f"frame rate must be in (0, 120] frames/s, got {fps}")
    if not (duration_s > 0 and math.isfinite(duration_s)):
        raise ViewerError(f"duration must be positive seconds, got {duration_s}")
    product = duration_s * fps
    n = math.floor(product + 0.5 + 1e-9 * max(1.0, product))
    if n < 1 or n > MAX_FRAMES:
        raise ViewerError(f"{duration_s:g} s at {fps:g} frames/s is {n} frames; allowed 1..{MAX_FRAMES}")
    return n


def resolve_axis(axis: str) -> str:
    a = _AXIS_ALIASES.get(axis.strip().lower(), axis.strip().lower())
    if a not in AXES_LPS:
        raise ViewerError(f"unknown rotation axis {axis!r} (use {', '.join(AXES_LPS)})")
    return a


def rotate_about(v: np.ndarray, axis: np.ndarray, angle_rad: float) -> np.ndarray:
    """Rodrigues' rotation of vector ``v`` about unit ``axis`` by ``angle_rad``
    (right-handed)."""
    k = axis / np.linalg.norm(axis)
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    return v * c + np.cross(k, v) * s + k * float(np.dot(k, v)) * (1.0 - c)


def turntable_cameras(start: CameraState, n_frames: int, axis: str = "superior-inferior") -> list[CameraState]:
    """``n_frames`` cameras one full turn about ``axis`` (LPS) through the focal point;
    the first is ``start``. Position and view-up rotate together, so a turn about the
    view direction itself rolls the image instead of degenerating."""
    ax = np.asarray(AXES_LPS[resolve_axis(axis)], dtype=np.float64)
    focal = np.asarray(start.focal_point_lps, dtype=np.float64)
    offset = np.asarray(start.position_lps, dtype=np.float64) - focal
    up = np.asarray(start.view_up, dtype=np.float64)
    out = []
    for i in range(n_frames):
        a = 2.0 * math.pi * i / n_frames
        pos = focal + rotate_about(offset, ax, a)
        vu = rotate_about(up, ax, a)
        out.append(replace(start, position_lps=tuple(pos), view_up=tuple(vu)))
    return out


def sweep_windows(
    tf: TransferFunction, n_frames: int, start_low_hu: float | None = None, end_low_hu: float | None = None
) -> list[tuple[float, float]]:
    """Vessel windows for a threshold sweep: the low end moves from ``start_low_hu``
    (default: just below the window's high end, so almost nothing shows) down to
    ``end_low_hu`` (default: the transfer function's own low end), the high end fixed.
    The vessels appear as the window opens."""
    lo, hi = tf.vessel_window_hu
    start = hi - 1.0 if start_low_hu is None else float(start_low_hu)
    end = lo if end_low_hu is None else float(end_low_hu)
    if not (start < hi and end < hi):
        raise ViewerError(f"sweep low ends must be below the window's high end {hi:g} HU")
    if n_frames == 1:
        return [(end, hi)]
    return [(start + (end - start) * i / (n_frames - 1), hi) for i in range(n_frames)]


# ----------------------------------------------------------------------------------
# writers
# ----------------------------------------------------------------------------------
class _FrameWriter(Protocol):
    """What write_movie needs of a writer: imageio's (MP4) and :class:`GifWriter`."""

    def append_data(self, im: np.ndarray, /) -> None: ...

    def close(self) -> None: ...


class GifWriter:
    """Animated GIF89a written frame by frame, looping forever.

    Each frame is quantised by Pillow to its own 256-colour palette and written as an
    image with a local colour table after a Graphic Control Extension carrying its
    delay (GIF89a spec, sections 20-23); a NETSCAPE2.0 application extension makes it
    loop. Delays are in 1/100 s: ``round(100 / fps)``, at least 2 (browsers treat
    0-1 as 10).
    """

    def __init__(self, fh: IO[bytes], width: int, height: int, fps: float) -> None:
        self.fh = fh
        self.width = int(width)
        self.height = int(height)
        self.delay_cs = max(2, int(round(100.0 / fps)))
        self.n_frames = 0
        # Header, logical screen descriptor (no global colour table), loop extension.
        fh.write(b"GIF89a")
        fh.write(struct.pack("<HHBBB", self.width, self.height, 0x70, 0, 0))
        fh.write(b"\x21\xff\x0bNETSCAPE2.0\x03\x01" + struct.pack("<H", 0) + b"\x00")

    def append(self, frame: np.ndarray) -> None:
        arr = np.ascontiguousarray(frame[..., :3])
        if arr.shape[:2] != (self.height, self.width):
            raise ValueError(f"GIF frame is {arr.shape[1]}x{arr.shape[0]}, expected {self.width}x{self.height}")
        im = Image.fromarray(arr, "RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        buf = io.BytesIO()
        im.save(buf, format="GIF", optimize=False, interlace=False)
        data = buf.getvalue()
        # Pillow's single-frame GIF: header(6) + LSD(7) + global colour table, then
        # extensions, then the image descriptor (0x2C) and its LZW data.
        packed = data[10]
        if not packed & 0x80:
            raise ViewerError("internal error: Pillow wrote a GIF frame without a colour table")
        size_bits = packed & 0x07
        table_len = 3 * (2 ** (size_bits + 1))
        table = data[13 : 13 + table_len]
        pos = 13 + table_len
        while data[pos] == 0x21:  # skip extension blocks
            pos += 2
            while data[pos] != 0:
                pos += data[pos] + 1
            pos += 1
        if data[pos] != 0x2C:
            raise ViewerError("internal error: unexpected GIF block from Pillow")
        left, top, w, h, img_packed = struct.unpack("<HHHHB", data[pos + 1 : pos + 10])
        if img_packed & 0x80:  # already a local table: keep the frame as it is
            local = data[pos + 10 :]
            descriptor = data[pos : pos + 10]
        else:
            # Keep the interlace flag (0x40); add the local-table flag and its size.
            descriptor = data[pos : pos + 9] + bytes([0x80 | (img_packed & 0x40) | size_bits])
            local = table + data[pos + 10 :]
        body = local[:-1] if local.endswith(b"\x3b") else local  # drop the trailer
        # Graphic control extension: disposal 1 (leave in place), the delay, no transparency.
        self.fh.write(b"\x21\xf9\x04" + struct.pack("<BHB", 0x04, self.delay_cs, 0) + b"\x00")
        self.fh.write(descriptor)
        self.fh.write(body)
        self.n_frames += 1

    def append_data(self, im: np.ndarray, /) -> None:
        """:meth:`append` under imageio's writer method name."""
        self.append(im)

    def close(self) -> None:
        self.fh.write(b"\x3b")


@dataclass(frozen=True)
class MovieResult:
    path: Path
    n_frames: int
    fps: float
    size_px: tuple[int, int]


def write_movie(
    frames: Iterable[np.ndarray],
    path: str | Path,
    fps: float,
    n_frames: int,
    progress: ProgressFn | None = None,
    message: str = "frame",
) -> MovieResult:
    """Write ``frames`` (uint8 RGB/RGBA, all the same size) to an MP4 or GIF at
    ``path`` atomically: nothing exists at ``path`` unless every frame was written.

    ``progress`` is called after each frame; raising LoadCancelled from it stops the
    movie and removes the partial file."""
    p = Path(path)
    kind = movie_format(p)
    folder = p.parent if str(p.parent) else Path(".")
    if not folder.is_dir():
        raise ViewerError(f"cannot write movie {p}: the folder {folder} does not exist", p)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{p.stem}.", suffix=p.suffix, dir=folder)
    except OSError as exc:
        raise ViewerError(f"cannot write movie {p}: {exc.strerror or exc}", p) from None
    tmp = Path(tmp_name)
    written = 0
    size: tuple[int, int] | None = None
    writer: _FrameWriter | None = None
    fh: IO[bytes] | None = None
    try:
        if kind == "gif":
            fh = os.fdopen(fd, "wb")
        else:
            os.close(fd)
        for frame in frames:
            h, w = frame.shape[:2]
            if kind == "mp4":
                # yuv420p subsamples chroma 2x2: H.264 needs even sizes.
                w, h = w - w % 2, h - h % 2
                frame = frame[:h, :w, :3]
            if writer is None:
                size = (w, h)
                if fh is not None:  # GIF: our writer on the open temporary file
                    writer = GifWriter(fh, w, h, fps)
                else:
                    import imageio.v2 as imageio

                    writer = imageio.get_writer(
                        str(tmp),
                        format="FFMPEG",
                        mode="I",
                        fps=fps,
                        codec="libx264",
                        pixelformat="yuv420p",
                        quality=8,
                        macro_block_size=2,
                        ffmpeg_log_level="error",
                    )
            writer.append_data(np.ascontiguousarray(frame))
            written += 1
            report(progress, written / n_frames, f"{message} {written} of {n_frames}")
        if writer is None:
            raise ViewerError("no frames to write", p)
        writer.close()
        writer = None
        if fh is not None:
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
            fh = None
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, p)
    except OSError as exc:
        _discard(writer, fh, tmp)
        raise ViewerError(f"cannot write movie {p}: {exc.strerror or exc}", p) from None
    except BaseException:
        _discard(writer, fh, tmp)
        raise
    return MovieResult(p, written, float(fps), size or (0, 0))


def _discard(writer: _FrameWriter | None, fh: IO[bytes] | None, tmp: Path) -> None:
    for obj in (writer, fh):
        if obj is not None and not isinstance(obj, GifWriter):
            try:
                obj.close()
            except Exception:  # noqa: BLE001 - already failing; the file is removed below
                pass
    tmp.unlink(missing_ok=True)


# ----------------------------------------------------------------------------------
# movies from a scene
# ----------------------------------------------------------------------------------
def export_turntable(
    scene: Scene,
    path: str | Path,
    ctx: FigureContext,
    *,
    duration_s: float = 6.0,
    fps: float = 15.0,
    axis: str = "superior-inferior",
    opts: ExportOptions | None = None,
    n_frames: int | None = None,
    progress: ProgressFn | None = None,
) -> MovieResult:
    """A full revolution of the camera about ``axis`` (a patient axis through the focal
    point), ``n_frames`` frames (default :func:`frame_count`), written to MP4/GIF.

    ``opts`` gives the frame size and overlays (orientation labels follow the rotation;
    the caption is drawn on every frame). The scene's camera is restored afterwards."""
    movie_format(path)
    opts = opts or ExportOptions(width=640, height=480)
    if opts.transparent:
        raise ViewerError("movies have no alpha channel: turn off the transparent background", path)
    n = frame_count(duration_s, fps) if n_frames is None else int(n_frames)
    if n < 1 or n > MAX_FRAMES:
        raise ViewerError(f"frame count must be 1..{MAX_FRAMES}, got {n}")
    w, h = opts.size_px
    start = figure_camera(scene, opts)
    cams = turntable_cameras(start, n, axis)

    def frames() -> Iterable[np.ndarray]:
        for cam in cams:
            img = render_view(scene, cam, w, h, marker=opts.orientation_marker)
            img, _, _ = decorate(img, cam, ctx, opts)
            yield img

    report(progress, 0.0, "turntable: rendering")
    return write_movie(frames(), path, fps, n, progress, "turntable frame")


def export_threshold_sweep(
    scene: Scene,
    path: str | Path,
    ctx: FigureContext,
    *,
    duration_s: float = 4.0,
    fps: float = 15.0,
    start_low_hu: float | None = None,
    end_low_hu: float | None = None,
    opts: ExportOptions | None = None,
    n_frames: int | None = None,
    progress: ProgressFn | None = None,
) -> MovieResult:
    """The vessel window's low end sweeps from high to low (see :func:`sweep_windows`)
    so the vessels appear as it opens; each frame's caption states its window. The
    scene's transfer function is restored afterwards (also on cancel)."""
    movie_format(path)
    opts = opts or ExportOptions(width=640, height=480)
    if opts.transparent:
        raise ViewerError("movies have no alpha channel: turn off the transparent background", path)
    n = frame_count(duration_s, fps) if n_frames is None else int(n_frames)
    tf0 = ctx.transfer_function
    windows = sweep_windows(tf0, n, start_low_hu, end_low_hu)
    w, h = opts.size_px
    cam = figure_camera(scene, opts)

    def frames() -> Iterable[np.ndarray]:
        for lo, hi in windows:
            tf = tf0.with_vessel_window(lo, hi)
            scene.set_transfer_function(tf)
            img = render_view(scene, cam, w, h, marker=opts.orientation_marker)
            fctx = replace(ctx, transfer_function=tf)
            # The caption is the point of a sweep: always show the current window.
            img, _, _ = decorate(img, cam, fctx, replace(opts, caption=True))
            yield img

    # Separated mode: keep the class masks of the user's thresholds for every frame.
    # A sweep moves only the vessel window, which under the one mask policy
    # (viewer.core.mask_policy) restyles and never makes masks stale; the scene's own
    # masks follow the exact window, so they are pinned as supplied ones for the sweep
    # (masks recomputed per window would cost a re-encode and gradient pass each frame
    # and make the shells flicker).
    pinned = False
    if not scene.has_supplied_masks and tf0.separated and scene.volume is not None:
        scene.set_transfer_function(tf0)  # the scene's masks for the user's thresholds
        pinned = masks_fit(scene.class_masks, MaskSettings.of(tf0))
        if pinned:
            scene.set_class_masks(scene.class_masks)
    report(progress, 0.0, "threshold sweep: rendering")
    try:
        return write_movie(frames(), path, fps, n, progress, "sweep frame")
    finally:
        if pinned:
            scene.set_class_masks(None)
        scene.set_transfer_function(tf0)


__all__ = [
    "AXES_LPS",
    "GifWriter",
    "MAX_FRAMES",
    "MovieResult",
    "export_threshold_sweep",
    "export_turntable",
    "frame_count",
    "movie_format",
    "resolve_axis",
    "rotate_about",
    "sweep_windows",
    "turntable_cameras",
    "write_movie",
]
