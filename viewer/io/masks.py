"""Writing the bone and vessel masks (NRRD or NIfTI) and naming export files.

A mask is written as uint8 (1 = in the class, 0 = not) on the volume's own grid, with
the volume's ``ijk_to_lps`` as its geometry, through :mod:`viewer.io.writers` (which
turns LPS into NRRD's ``space: left-posterior-superior`` / NIfTI's RAS sform), so the
mask overlays the scan exactly in 3D Slicer, ITK-SNAP or any other viewer.

File names say what they hold: ``<stem>_bone_mask.nrrd``, ``<stem>_vessel_mask.nrrd``
(``.nii.gz`` for NIfTI).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import numpy as np

from viewer.core.errors import ViewerError

MaskFormat = Literal["nrrd", "nifti"]
MASK_SUFFIX: dict[str, str] = {"nrrd": ".nrrd", "nifti": ".nii.gz"}

#: Suffixes stripped from a source file's name to make an output stem.
_SOURCE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd", ".dcm")


def output_stem(source: str | Path) -> str:
    """A file-name stem for outputs derived from ``source`` (a file or a folder):
    ``/x/ct_cropped.nii.gz`` -> ``ct_cropped``, ``/x/series1/`` -> ``series1``."""
    name = Path(str(source).rstrip("/")).name or "volume"
    low = name.lower()
    for suf in _SOURCE_SUFFIXES:
        if low.endswith(suf) and len(name) > len(suf):
            name = name[: -len(suf)]
            break
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name).strip("._")
    return safe or "volume"


def mask_path(out_dir: str | Path, stem: str, kind: str, fmt: MaskFormat = "nrrd") -> Path:
    """``out_dir / f"{stem}_{kind}_mask{suffix}"``, e.g. ``leg_bone_mask.nrrd``."""
    if fmt not in MASK_SUFFIX:
        raise ViewerError(f"unknown mask format {fmt!r} (use nrrd or nifti)")
    return Path(out_dir) / f"{stem}_{kind}_mask{MASK_SUFFIX[fmt]}"


def write_mask(
    mask: np.ndarray,
    ijk_to_lps: np.ndarray,
    path: str | Path,
    fmt: MaskFormat | None = None,
    overwrite: bool = True,
) -> Path:
    """Write a boolean ``(nz, ny, nx)`` mask as uint8 0/1 with the volume's geometry.

    ``fmt`` defaults from the suffix (``.nrrd`` / ``.nii`` / ``.nii.gz``). Masks are
    derived outputs with names this program chose, so re-running an extraction into the
    same folder replaces them (``overwrite``); callers keep them out of source folders.
    """
    from viewer.io import writers  # the phantom/loader worker's writers (NRRD, NIfTI)

    p = Path(path)
    if fmt is None:
        low = p.name.lower()
        fmt = "nrrd" if low.endswith(".nrrd") else "nifti" if low.endswith((".nii", ".nii.gz")) else None
        if fmt is None:
            raise ViewerError(f"cannot tell the mask format from {p.name} (use .nrrd, .nii or .nii.gz)", p)
    m = np.asarray(mask)
    if m.ndim != 3:
        raise ViewerError(f"a mask must be 3D, got shape {m.shape}", p)
    data = m.astype(np.uint8, copy=False) if m.dtype == np.bool_ else (m != 0).astype(np.uint8)
    if fmt == "nrrd":
        writers.write_nrrd(data, ijk_to_lps, p, overwrite=overwrite)
    elif fmt == "nifti":
        writers.write_nifti(data, ijk_to_lps, p, overwrite=overwrite)
    else:
        raise ViewerError(f"unknown mask format {fmt!r} (use nrrd or nifti)", p)
    return p


def write_masks(
    masks: Mapping[str, np.ndarray],
    ijk_to_lps: np.ndarray,
    out_dir: str | Path,
    stem: str,
    fmt: MaskFormat = "nrrd",
    overwrite: bool = True,
) -> dict[str, Path]:
    """Write each ``{kind: mask}`` as ``<stem>_<kind>_mask.<fmt>``; returns the paths."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ViewerError(f"cannot create output folder {out}: {exc}", out) from None
    return {
        kind: write_mask(m, ijk_to_lps, mask_path(out, stem, kind, fmt), fmt, overwrite) for kind, m in masks.items()
    }


__all__ = ["MASK_SUFFIX", "MaskFormat", "mask_path", "output_stem", "write_mask", "write_masks"]
