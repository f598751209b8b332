"""Figures, report sheets and movies rendered offscreen from the small phantom."""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest
from PIL import Image

from viewer.core.errors import LoadCancelled, ViewerError
from viewer.export.image import ExportOptions, FigureContext, export_image, render_figure
from viewer.export.imagefile import read_settings
from viewer.export.movie import export_threshold_sweep, export_turntable
from viewer.export.sheet import export_report_sheet, sheet_cells


def is_red(img: np.ndarray) -> np.ndarray:
    """Vessel-red pixels (shaded arterial red, not ivory, grey or black)."""
    f = img[..., :3].astype(np.int32)
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    return (r >= 50) & (r >= 2 * g) & (r >= 2 * b)


W, H = 200, 150
# Whole strings only: 3-byte fragments turn up by chance in compressed pixel data.
IDENTITY_STRINGS = (b"DOE^JANE", b"XYZ-12345", b"19491231")


def _ctx(small_leg, tf) -> FigureContext:  # type: ignore[no-untyped-def]
    return FigureContext(tf, "Bone + vessels", small_leg.volume, view_name="anterior")


@pytest.mark.parametrize("scale", [1, 2, 3, 4])
def test_exported_size_is_exact(scene, small_leg, bone_vessels, tmp_path: Path, scale: int) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "f.png"
    fig = export_image(scene, p, _ctx(small_leg, bone_vessels), ExportOptions(width=W, height=H, scale=scale))
    with Image.open(p) as im:
        assert im.size == (W * scale, H * scale)
    assert fig.image.shape == (H * scale, W * scale, 3)
    assert is_red(fig.image).sum() > 20 * scale * scale


def test_multiplier_gives_the_same_picture_with_more_pixels(scene, small_leg, bone_vessels) -> None:  # type: ignore[no-untyped-def]
    ctx = _ctx(small_leg, bone_vessels)
    one = render_figure(scene, ctx, ExportOptions(width=W, height=H, scale=1)).image.astype(np.float64)
    two = render_figure(scene, ctx, ExportOptions(width=W, height=H, scale=2)).image.astype(np.float64)
    down = two.reshape(H, 2, W, 2, 3).mean(axis=(1, 3))
    # Same camera, same framing: the 2x image averaged down matches the 1x one
    # (no stretch or shift; small differences from ray sampling only).
    assert np.abs(down - one).mean() < 6.0
    # The red (vessel) footprint is in the same place: within 3 px (the vessels are
    # 1-2 px wide here, so a pixel more or less at a vessel's end moves the centroid;
    # a stretch or shift of the framing would move it by tens of pixels).
    r1, r2 = is_red(one.astype(np.uint8)), is_red(down.astype(np.uint8))
    c1, c2 = np.argwhere(r1).mean(axis=0), np.argwhere(r2).mean(axis=0)
    assert np.abs(c1 - c2).max() < 3.0


def _longest_white_run(img: np.ndarray) -> int:
    white = np.all(img[..., :3] == 255, axis=-1)
    best = 0
    for r in range(white.shape[0]):
        d = np.diff(np.concatenate([[0], white[r].astype(np.int8), [0]]))
        s, e = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
        if len(s):
            best = max(best, int((e - s).max()))
    return best


@pytest.mark.parametrize("scale", [1, 3])
def test_scale_bar_matches_its_label_in_parallel_projection(
    scene, small_leg, bone_vessels, tmp_path: Path, scale: int
) -> None:  # type: ignore[no-untyped-def]
    assert not scene.camera_state().parallel_projection  # the view is perspective...
    p = tmp_path / "bar.png"
    fig = export_image(
        scene, p, _ctx(small_leg, bone_vessels), ExportOptions(width=W, height=H, scale=scale, scale_bar=True)
    )
    settings = read_settings(p)
    cam = settings["camera"]
    assert cam["parallel_projection"] is True  # ...the figure is parallel, so the bar is exact
    assert not scene.camera_state().parallel_projection  # and the view is left as it was
    h = H * scale
    mm_per_px = 2.0 * cam["parallel_scale_mm"] / h
    label_mm = settings["scale_bar"]["length_mm"]
    assert fig.scale_bar is not None and fig.scale_bar.label == f"{label_mm:g} mm"
    with Image.open(p) as im:
        measured_px = _longest_white_run(np.asarray(im))
    assert measured_px == pytest.approx(label_mm / mm_per_px, rel=0.02)

    # And the formula is VTK's: two LPS points label_mm apart across the view project
    # label_mm / mm_per_px pixels apart.
    from viewer.render.camera import CameraState

    before = scene.camera_state()
    scene.set_camera_state(CameraState.from_dict(cam))
    try:
        f = np.asarray(cam["focal_point_lps"])
        px = scene.world_to_pixel(np.array([f, f + [label_mm, 0.0, 0.0]]), W * scale, h)
    finally:
        scene.set_camera_state(before)
    assert np.linalg.norm(px[1] - px[0]) == pytest.approx(label_mm / mm_per_px, rel=0.01)


def test_perspective_scale_bar_is_labelled_approximate(scene, small_leg, bone_vessels) -> None:  # type: ignore[no-untyped-def]
    fig = render_figure(
        scene, _ctx(small_leg, bone_vessels), ExportOptions(width=W, height=H, scale_bar=True, exact_scale=False)
    )
    assert fig.scale_bar is not None and not fig.scale_bar.exact and "approx" in fig.scale_bar.label
    assert fig.settings["projection"] == "perspective"


@pytest.mark.parametrize("ext", ["png", "tif"])
def test_transparent_background(scene, small_leg, bone_vessels, tmp_path: Path, ext: str) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / f"t.{ext}"
    export_image(
        scene,
        p,
        _ctx(small_leg, bone_vessels),
        ExportOptions(width=W, height=H, transparent=True, orientation_labels=True),
    )
    with Image.open(p) as im:
        assert im.mode == "RGBA"
        a = np.asarray(im)
    alpha = a[..., 3]
    assert alpha[2:10, 2:10].max() == 0  # a background corner is fully transparent
    assert (alpha == 0).mean() > 0.3
    assert (alpha > 200).sum() > 100  # the leg (and the labels) are opaque


def test_transparent_jpeg_is_refused(scene, small_leg, bone_vessels, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ViewerError, match="alpha"):
        export_image(
            scene, tmp_path / "t.jpg", _ctx(small_leg, bone_vessels), ExportOptions(width=W, height=H, transparent=True)
        )
    assert not (tmp_path / "t.jpg").exists()


@pytest.mark.parametrize("ext", ["png", "jpg", "tif"])
def test_no_identity_in_file_unless_opted_in(scene, small_leg, bone_vessels, tmp_path: Path, ext: str) -> None:  # type: ignore[no-untyped-def]
    opts = ExportOptions(width=W, height=H, caption=True, orientation_labels=True, scale_bar=True)
    p = tmp_path / f"f.{ext}"
    export_image(scene, p, _ctx(small_leg, bone_vessels), opts)
    data = p.read_bytes()
    for s in IDENTITY_STRINGS:
        assert s not in data
    # Nor the scan's path (folder names often hold the patient's name).
    assert small_leg.volume.source.encode() not in data or not small_leg.volume.source
    settings = read_settings(p)
    assert settings["preset"] == "Bone + vessels"
    assert settings["vessel_window_hu"] == list(bone_vessels.vessel_window_hu)
    assert "identity" not in settings
    # Opted in: the identity is in the metadata (and drawn in the caption).
    q = tmp_path / f"id.{ext}"
    fig = export_image(
        scene, q, _ctx(small_leg, bone_vessels), opts.__class__(**{**opts.__dict__, "show_identity": True})
    )
    assert b"DOE^JANE" in q.read_bytes()
    assert fig.identity and fig.identity["PatientID"] == "XYZ-12345"


def test_report_sheet(scene, small_leg, bone_vessels, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cells = sheet_cells(small_leg.volume)
    views = [c.view for c in cells]
    assert views[:2] == ["anterior", "posterior"]
    # The phantom is a left leg (at +x): lateral is the view from the patient's left.
    assert cells[3].view == "left" and cells[3].label.startswith("Lateral")
    assert cells[2].view == "right" and cells[2].label.startswith("Medial")
    p = tmp_path / "sheet.png"
    before = scene.camera_state()
    fig = export_report_sheet(
        scene, p, _ctx(small_leg, bone_vessels), ExportOptions(width=W, height=H, orientation_labels=True, caption=True)
    )
    assert scene.camera_state() == before
    img = fig.image
    assert img.shape[0] > 2 * H and img.shape[1] >= 2 * W
    # Each cell shows the leg with vessels.
    for r in range(2):
        for c in range(2):
            cell = img[r * (H + 2) : r * (H + 2) + H, c * (W + 2) : c * (W + 2) + W]
            assert is_red(cell).sum() > 20, (r, c)
    s = read_settings(p)
    assert [c["view"] for c in s["sheet"]["cells"]] == views
    assert s["sheet"]["leg_side"] == "left"


def test_report_sheet_uses_laterality_metadata(small_leg) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    right = replace(small_leg.volume, metadata={**dict(small_leg.volume.metadata), "laterality": "R"})
    cells = sheet_cells(right)
    assert cells[3].view == "right" and "right leg" in cells[3].label and "assumed" not in cells[3].label


@pytest.mark.parametrize("ext", ["gif", "mp4"])
def test_turntable_frame_count(scene, small_leg, bone_vessels, tmp_path: Path, ext: str) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / f"spin.{ext}"
    before = scene.camera_state()
    seen = []
    res = export_turntable(
        scene,
        p,
        _ctx(small_leg, bone_vessels),
        duration_s=1.0,
        fps=8,
        opts=ExportOptions(width=96, height=64),
        progress=lambda f, m: seen.append(f),
    )
    assert res.n_frames == 8 and seen[-1] == 1.0
    assert scene.camera_state() == before
    if ext == "gif":
        with Image.open(p) as im:
            assert im.n_frames == 8
    else:
        r = imageio.get_reader(p)
        try:
            assert r.count_frames() == 8
        finally:
            r.close()
    r = imageio.get_reader(p)
    try:
        f0, f2 = r.get_data(0), r.get_data(2)
    finally:
        r.close()
    # It turns: the first and the quarter-turn frames differ.
    assert np.abs(f0[..., :3].astype(int) - f2[..., :3].astype(int)).mean() > 1.0


def test_turntable_cancel_restores_camera_and_leaves_no_file(scene, small_leg, bone_vessels, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    before = scene.camera_state()
    n = []

    def progress(f: float, m: str) -> None:
        n.append(f)
        if len(n) == 3:
            raise LoadCancelled()

    with pytest.raises(LoadCancelled):
        export_turntable(
            scene,
            tmp_path / "c.mp4",
            _ctx(small_leg, bone_vessels),
            duration_s=1,
            fps=10,
            opts=ExportOptions(width=64, height=48),
            progress=progress,
        )
    assert scene.camera_state() == before
    assert list(tmp_path.iterdir()) == []


def test_threshold_sweep_vessels_appear(scene, small_leg, bone_vessels, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tf0 = scene.transfer_function
    p = tmp_path / "sweep.gif"
    res = export_threshold_sweep(
        scene, p, _ctx(small_leg, bone_vessels), duration_s=1.0, fps=6, opts=ExportOptions(width=192, height=144)
    )
    assert res.n_frames == 6
    assert scene.transfer_function == tf0
    frames = imageio.mimread(p)
    assert len(frames) == 6
    red = [int(is_red(f).sum()) for f in frames]
    assert red[-1] > red[0] + 20  # vessels appear as the window opens
