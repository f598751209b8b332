"""Movie writers without rendering: exact frame counts, content, cancel, turntable maths."""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest
from PIL import Image

from viewer.core.errors import LoadCancelled, ViewerError
from viewer.core.transfer import TransferFunction
from viewer.export.movie import frame_count, sweep_windows, turntable_cameras, write_movie
from viewer.render.camera import CameraState


def _frames(n: int, w: int = 60, h: int = 40, identical: bool = False) -> list[np.ndarray]:
    out = []
    for i in range(n):
        f = np.zeros((h, w, 3), np.uint8)
        if not identical:
            f[5:15, i % (w - 10) : i % (w - 10) + 10] = (220, 20, 20)
        out.append(f)
    return out


def test_frame_count_is_duration_times_fps() -> None:
    assert frame_count(6.0, 15.0) == 90
    # Halves round up, always (Python's round() would give 12 and 14: halves to even).
    assert frame_count(1.0, 12.5) == 13
    assert frame_count(1.0, 13.5) == 14
    assert frame_count(0.5, 5.0) == 3
    assert frame_count(0.1, 25.0) == 3  # 2.5 in decimal, a hair off it in binary
    assert frame_count(1.0, 12.49) == 12 and frame_count(1.0, 12.51) == 13
    with pytest.raises(ViewerError, match="frame rate"):
        frame_count(1.0, 0.0)
    with pytest.raises(ViewerError, match="duration"):
        frame_count(-1.0, 10.0)


@pytest.mark.parametrize("identical", [False, True])
def test_gif_keeps_every_frame(tmp_path: Path, identical: bool) -> None:
    # Pillow's own multi-frame writer would merge identical frames; ours must not.
    frames = _frames(9, identical=identical)
    res = write_movie(iter(frames), tmp_path / "m.gif", fps=10, n_frames=9)
    assert res.n_frames == 9
    with Image.open(tmp_path / "m.gif") as im:
        assert im.n_frames == 9
        assert im.info.get("loop") == 0
        assert im.info.get("duration") == 100
        for k in (0, 4, 8):
            im.seek(k)
            assert np.array_equal(np.asarray(im.convert("RGB")), frames[k])
    assert len(imageio.mimread(tmp_path / "m.gif")) == 9


def test_mp4_frame_count_and_even_size(tmp_path: Path) -> None:
    frames = _frames(12, w=61, h=41)
    res = write_movie(iter(frames), tmp_path / "m.mp4", fps=12, n_frames=12)
    assert res.size_px == (60, 40)
    r = imageio.get_reader(tmp_path / "m.mp4")
    try:
        assert r.count_frames() == 12
        assert r.get_meta_data()["size"] == (60, 40)
        assert r.get_meta_data()["fps"] == pytest.approx(12.0)
    finally:
        r.close()


@pytest.mark.parametrize("ext", ["gif", "mp4"])
def test_cancel_leaves_no_file(tmp_path: Path, ext: str) -> None:
    calls = []

    def progress(fraction: float, message: str) -> None:
        calls.append(fraction)
        if len(calls) == 3:
            raise LoadCancelled()

    with pytest.raises(LoadCancelled):
        write_movie(iter(_frames(10)), tmp_path / f"m.{ext}", fps=10, n_frames=10, progress=progress)
    assert list(tmp_path.iterdir()) == []


def test_bad_extension(tmp_path: Path) -> None:
    with pytest.raises(ViewerError, match=".avi"):
        write_movie(iter(_frames(2)), tmp_path / "m.avi", fps=10, n_frames=2)


def test_turntable_cameras_make_one_full_turn() -> None:
    start = CameraState((0.0, -300.0, 10.0), (0.0, 0.0, 10.0), (0.0, 0.0, 1.0))
    cams = turntable_cameras(start, 8, "superior-inferior")
    assert len(cams) == 8
    assert np.allclose(cams[0].position_lps, start.position_lps)
    # A quarter turn about +z (right-handed) takes the camera from -y to +x.
    assert np.allclose(cams[2].position_lps, (300.0, 0.0, 10.0), atol=1e-9)
    assert np.allclose(cams[4].position_lps, (0.0, 300.0, 10.0), atol=1e-9)
    for c in cams:
        assert np.allclose(c.focal_point_lps, start.focal_point_lps)
        assert np.linalg.norm(np.subtract(c.position_lps, c.focal_point_lps)) == pytest.approx(300.0)
    # About the left-right axis the view-up turns with the camera.
    cams = turntable_cameras(start, 4, "left-right")
    assert np.allclose(cams[1].view_up, (0.0, -1.0, 0.0), atol=1e-9)
    with pytest.raises(ViewerError, match="axis"):
        turntable_cameras(start, 4, "diagonal")


def test_sweep_opens_the_window_from_high_to_low() -> None:
    tf = TransferFunction().with_vessel_window(200, 600)
    w = sweep_windows(tf, 5)
    assert len(w) == 5
    assert w[0] == (599.0, 600.0) and w[-1] == (200.0, 600.0)
    lows = [lo for lo, _ in w]
    assert lows == sorted(lows, reverse=True)
