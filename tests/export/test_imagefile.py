"""Image files: formats, traceable metadata, no identity unless asked, atomic writes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from viewer.core.errors import ViewerError
from viewer.export.imagefile import (
    PNG_IDENTITY_KEY,
    PNG_SETTINGS_KEY,
    atomic_write,
    image_format_for,
    read_settings,
    save_image,
)

SETTINGS = {"preset": "Bone + vessels", "vessel_window_hu": [180.0, 600.0], "bone_threshold_hu": 650.0}
IDENTITY = {"PatientName": "DOE^JANE", "PatientID": "XYZ-12345", "PatientBirthDate": "19491231"}


def _img(alpha: bool = False) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (30, 40, 4 if alpha else 3), dtype=np.uint8)


@pytest.mark.parametrize(
    "name, fmt",
    [
        ("a.png", "PNG"),
        ("a.PNG", "PNG"),
        ("a.jpg", "JPEG"),
        ("a.jpeg", "JPEG"),
        ("a.tif", "TIFF"),
        ("a.tiff", "TIFF"),
        ("a", "PNG"),
    ],
)
def test_format_from_extension(name: str, fmt: str) -> None:
    assert image_format_for(name) == fmt


def test_unknown_extension_is_a_clear_error() -> None:
    with pytest.raises(ViewerError, match=r"\.bmp"):
        image_format_for("figure.bmp")


@pytest.mark.parametrize("ext", ["png", "tif", "jpg"])
def test_settings_round_trip_and_no_identity(tmp_path: Path, ext: str) -> None:
    p = save_image(_img(), tmp_path / f"f.{ext}", SETTINGS)
    assert read_settings(p) == SETTINGS
    data = p.read_bytes()
    for v in IDENTITY.values():
        assert v.encode() not in data
    with Image.open(p) as im:
        assert im.size == (40, 30)


@pytest.mark.parametrize("ext", ["png", "tif", "jpg"])
def test_identity_only_when_opted_in(tmp_path: Path, ext: str) -> None:
    p = save_image(_img(), tmp_path / f"f.{ext}", SETTINGS, identity=IDENTITY)
    data = p.read_bytes()
    assert b"DOE^JANE" in data and b"XYZ-12345" in data
    if ext == "png":
        with Image.open(p) as im:
            assert "DOE^JANE" in im.info[PNG_IDENTITY_KEY]
            assert "Bone + vessels" in im.info[PNG_SETTINGS_KEY]


def test_jpeg_refuses_alpha(tmp_path: Path) -> None:
    with pytest.raises(ViewerError, match="alpha"):
        save_image(_img(alpha=True), tmp_path / "f.jpg", SETTINGS)
    assert not (tmp_path / "f.jpg").exists()


@pytest.mark.parametrize("ext", ["png", "tif"])
def test_alpha_kept_in_png_and_tiff(tmp_path: Path, ext: str) -> None:
    img = _img(alpha=True)
    p = save_image(img, tmp_path / f"f.{ext}", SETTINGS)
    with Image.open(p) as im:
        assert im.mode == "RGBA"
        assert np.array_equal(np.asarray(im), img)


def test_failed_write_leaves_the_old_file_intact(tmp_path: Path) -> None:
    p = tmp_path / "f.png"
    save_image(_img(), p, SETTINGS)
    before = p.read_bytes()

    def half_then_fail(fh) -> None:  # type: ignore[no-untyped-def]
        fh.write(b"\x89PNG half")
        raise OSError(28, "No space left on device")

    with pytest.raises(ViewerError, match="No space left"):
        atomic_write(p, half_then_fail, what="image")
    assert p.read_bytes() == before
    assert [q.name for q in tmp_path.iterdir()] == ["f.png"]  # no temporary left behind


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ViewerError, match="does not exist"):
        save_image(_img(), tmp_path / "nope" / "f.png", SETTINGS)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_folder_is_a_clear_error(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(ViewerError, match="cannot write"):
            save_image(_img(), ro / "f.png", SETTINGS)
    finally:
        ro.chmod(0o700)
