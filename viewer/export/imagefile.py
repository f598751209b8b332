"""Writing figures to PNG, JPEG or TIFF with traceable, identity-free metadata.

Identity policy (see ``docs/export.md``): a figure carries the viewer settings that
made it (preset, thresholds, separated mode, camera, software version), never the
patient's name, ID or birth date, nor the scan's path, series description or UIDs,
unless the user opts in (``identity`` argument). The DICOM basic de-identification
profile (PS3.15 Annex E, Table E.1-1) removes those same attributes: Patient's Name
(0010,0010), Patient ID (0010,0020), Birth Date (0010,0030), Series Description
(0008,103E) and the instance UIDs; a folder path often holds the patient's name too.

Files are written atomically: to a temporary file in the target folder, then
``os.replace`` onto the target, so a failed export never leaves a half-written image
and never destroys an older file of the same name.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from viewer import __version__
from viewer.core.errors import ViewerError
from viewer.core.fileio import atomic_write

#: PNG text chunk keyword holding the settings as JSON (iTXt, UTF-8).
PNG_SETTINGS_KEY = "vessel-viewer.settings"
#: PNG text chunk keyword holding the opted-in identity (only when asked for).
PNG_IDENTITY_KEY = "vessel-viewer.identity"

SOFTWARE = f"vessel-viewer {__version__}"

_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}

#: TIFF tags (TIFF 6.0 section 8): ImageDescription and Software.
_TIFF_IMAGE_DESCRIPTION = 270
_TIFF_SOFTWARE = 305


def image_format_for(path: str | Path, fmt: str | None = None) -> str:
    """``"PNG"``, ``"JPEG"`` or ``"TIFF"`` from an explicit ``fmt`` or the file
    extension; a file without an extension is PNG (the default)."""
    if fmt:
        f = fmt.upper()
        f = {"JPG": "JPEG", "TIF": "TIFF"}.get(f, f)
        if f not in ("PNG", "JPEG", "TIFF"):
            raise ViewerError(f"unknown image format {fmt!r} (use PNG, JPEG or TIFF)")
        return f
    suffix = Path(path).suffix.lower()
    if not suffix:
        return "PNG"
    if suffix not in _FORMATS:
        raise ViewerError(
            f"cannot tell the image format from the extension {suffix!r} (use .png, .jpg/.jpeg or .tif/.tiff)",
            path,
        )
    return _FORMATS[suffix]


def _json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, default=_json_default)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, (tuple, set)):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def encode_image(
    image: np.ndarray,
    fmt: str,
    settings: Mapping[str, Any],
    identity: Mapping[str, str] | None = None,
    jpeg_quality: int = 95,
) -> bytes:
    """Encode ``image`` (uint8 RGB or RGBA) as ``fmt`` with the settings metadata.

    RGBA is refused for JPEG (the format has no alpha channel)."""
    arr = np.ascontiguousarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ValueError(f"expected a uint8 (h, w, 3|4) image, got {arr.dtype} {arr.shape}")
    has_alpha = arr.shape[2] == 4
    if fmt == "JPEG" and has_alpha:
        raise ViewerError("JPEG has no alpha channel: choose PNG or TIFF for a transparent background")
    im = Image.fromarray(arr, "RGBA" if has_alpha else "RGB")
    settings_json = _json(dict(settings))
    description = _json({"settings": dict(settings), **({"identity": dict(identity)} if identity else {})})
    buf = io.BytesIO()
    if fmt == "PNG":
        info = PngInfo()
        info.add_itxt("Software", SOFTWARE)
        info.add_itxt(PNG_SETTINGS_KEY, settings_json)
        if identity:
            info.add_itxt(PNG_IDENTITY_KEY, _json(dict(identity)))
        im.save(buf, format="PNG", pnginfo=info, optimize=False)
    elif fmt == "TIFF":
        im.save(
            buf,
            format="TIFF",
            compression="tiff_deflate",
            tiffinfo={_TIFF_IMAGE_DESCRIPTION: description, _TIFF_SOFTWARE: SOFTWARE},
        )
    elif fmt == "JPEG":
        # The JPEG COM marker carries the same JSON as the PNG/TIFF description.
        im.save(buf, format="JPEG", quality=int(jpeg_quality), comment=description.encode("utf-8"))
    else:
        raise ViewerError(f"unknown image format {fmt!r}")
    return buf.getvalue()


def save_image(
    image: np.ndarray,
    path: str | Path,
    settings: Mapping[str, Any],
    *,
    fmt: str | None = None,
    identity: Mapping[str, str] | None = None,
) -> Path:
    """Encode and write ``image`` atomically; the format comes from ``fmt`` or the
    extension. Returns the path written."""
    f = image_format_for(path, fmt)
    data = encode_image(image, f, settings, identity)
    return atomic_write(path, lambda fh: fh.write(data), what="image")


def read_settings(path: str | Path) -> dict[str, Any]:
    """The settings a figure was made with, read back from a PNG, TIFF or JPEG
    written by :func:`save_image` (for tracing a figure back, and for tests)."""
    p = Path(path)
    try:
        with Image.open(p) as im:
            im.load()
            if im.format == "PNG":
                text = im.info.get(PNG_SETTINGS_KEY)
                return json.loads(text) if text else {}
            if im.format == "TIFF":
                desc = im.tag_v2.get(_TIFF_IMAGE_DESCRIPTION)
                return json.loads(desc)["settings"] if desc else {}
            if im.format == "JPEG":
                com = im.info.get("comment")
                return json.loads(com.decode("utf-8"))["settings"] if com else {}
    except (OSError, ValueError, KeyError) as exc:
        raise ViewerError(f"cannot read the settings of image {p}: {exc}", p) from None
    return {}


__all__ = [
    "PNG_IDENTITY_KEY",
    "PNG_SETTINGS_KEY",
    "SOFTWARE",
    "atomic_write",
    "encode_image",
    "image_format_for",
    "read_settings",
    "save_image",
]
