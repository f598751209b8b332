"""``scan_series`` and ``load_volume``: the two entry points of ``viewer.io``.

The loader chain, in order (each step says why it sits where it does):
1. collect files: a folder is searched recursively; dot-files are skipped (OS litter);
2. volume files (.nii/.nii.gz, .nrrd/.nhdr, .mha/.mhd) are recognised by name first:
   their formats have fixed extensions, and their data files must not be mistaken for
   DICOM candidates;
3. every other file is a DICOM candidate whatever its name (many archives have no
   .dcm ending): the DICM magic or a successful header parse decides;
4. DICOM images are grouped into series (viewer.io.series) and the CT series with the
   most images is chosen unless the caller names one.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from viewer.core.errors import ViewerError
from viewer.core.progress import ProgressFn, report
from viewer.core.volume import Volume
from viewer.io.dicom_headers import BadDicom, NotDicom, SliceHeader, read_slice_headers
from viewer.io.dicom_load import load_group, parallel_map
from viewer.io.series import DicomGroup, SeriesInfo, describe_group, group_series
from viewer.io.volume_files import VolumeFileKind, kind_of, read_volume_file


@dataclass
class _Scan:
    infos: list[SeriesInfo]
    groups: dict[str, DicomGroup]
    volume_files: dict[str, tuple[VolumeFileKind, Path]]
    warnings: list[str] = field(default_factory=list)
    n_files: int = 0
    source: str = ""


# The GUI scans a folder, shows the list, then loads one series: keep the last scan
# (keyed by every file's path, size and mtime) so the headers are not parsed twice.
_cache_lock = threading.Lock()
_cache: tuple[tuple, _Scan] | None = None


def _names(items: Iterable[str], limit: int = 5) -> str:
    ls = list(items)
    shown = ", ".join(ls[:limit])
    return shown if len(ls) <= limit else f"{shown} and {len(ls) - limit} more"


def _other(info: SeriesInfo) -> str:
    """A series not loaded, for the warning: a small one (often one image split off by a
    corrupt header) is named by its files, so the user can find them."""
    files = f" (file(s) {_names([f.name for f in info.files], 3)})" if len(info.files) <= 3 else ""
    return f"{info.summary()} key={info.key}{files}"


def _collect(paths: object) -> tuple[list[Path], str]:
    if isinstance(paths, (str, os.PathLike)):
        plist = [Path(paths)]
    else:
        try:
            if not isinstance(paths, Iterable):
                raise TypeError
            plist = [Path(p) for p in paths]
        except TypeError:
            raise ViewerError(f"expected a path or a list of paths, got {type(paths).__name__}") from None
    if not plist:
        raise ViewerError("no files given")
    files: list[Path] = []
    for p in plist:
        if p.is_dir():
            for root, dirs, names in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                files.extend(Path(root) / n for n in sorted(names) if not n.startswith("."))
        elif p.is_file():
            files.append(p)
        else:
            raise ViewerError("no such file or folder", path=p)
    source = str(plist[0]) if len(plist) == 1 else f"{len(plist)} paths"
    if not files:
        raise ViewerError("folder is empty: no files to load", path=plist[0])
    return files, source


def _scan(paths: object, progress: ProgressFn | None, hi: float) -> _Scan:
    global _cache
    files, source = _collect(paths)
    try:
        sig = tuple((str(f), st.st_size, st.st_mtime_ns) for f in files for st in [f.stat()])
    except OSError as exc:
        raise ViewerError(f"cannot read: {exc}", path=getattr(exc, "filename", None)) from None
    with _cache_lock:
        if _cache is not None and _cache[0] == sig:
            return _cache[1]

    volume_files: dict[str, tuple[VolumeFileKind, Path]] = {}
    candidates: list[Path] = []
    for f in files:
        k = kind_of(f)
        if k is not None:
            volume_files[f"{k}:{f.resolve()}"] = (k, f)
        else:
            candidates.append(f)
    # Data files of detached headers (.mhd/.nhdr) are not DICOM candidates.
    data_names = {f.with_suffix(ext).name for _, f in volume_files.values() for ext in (".raw", ".zraw", ".img")}
    candidates = [f for f in candidates if not (f.suffix.lower() in (".raw", ".zraw", ".img") and f.name in data_names)]

    def read(f: Path) -> tuple[list[SliceHeader], str | None, str | None]:
        try:
            return read_slice_headers(f), None, None
        except NotDicom as exc:
            return [], str(exc), None
        except BadDicom as exc:
            return [], None, str(exc)

    results = parallel_map(read, candidates, progress, 0.0, hi, "reading headers")
    headers: list[SliceHeader] = []
    not_dicom: list[str] = []
    bad: list[str] = []
    for f, (hs, nd, bd) in zip(candidates, results, strict=False):
        headers.extend(hs)
        if nd:
            not_dicom.append(f"{f.name} ({nd})")
        if bd:
            bad.append(f"{f.name} ({bd})")
    warnings: list[str] = []
    if bad:
        warnings.append(f"skipped {len(bad)} unreadable DICOM file(s): {_names(bad)}")
    if not_dicom:
        warnings.append(f"skipped {len(not_dicom)} file(s) that are not DICOM images: {_names(not_dicom)}")
    groups, dropped = group_series(headers)
    warnings.extend(dropped)

    infos: list[SeriesInfo] = [describe_group(g, warnings) for g in groups]
    infos.sort(key=lambda i: (not i.is_ct, -i.n_slices, i.series_number or 0, i.key))
    vinfos = [_describe_volume_file(key, kind, f) for key, (kind, f) in sorted(volume_files.items())]
    infos.extend(sorted(vinfos, key=lambda i: (not i.is_ct, -i.n_slices, i.key)))
    if not infos:
        where = source
        if bad:
            raise ViewerError(f"no loadable image series: every DICOM file is unreadable: {_names(bad)}", path=where)
        raise ViewerError(
            f"no DICOM images (or NIfTI/NRRD/MetaImage files) found among {len(files)} file(s)"
            + (f"; skipped: {_names(not_dicom)}" if not_dicom else ""),
            path=where,
        )
    scan = _Scan(infos, {g.key: g for g in groups}, volume_files, warnings, len(files), source)
    with _cache_lock:
        _cache = (sig, scan)
    return scan


def _describe_volume_file(key: str, kind: VolumeFileKind, f: Path) -> SeriesInfo:
    """SeriesInfo of a NIfTI / NRRD / MetaImage file from its header alone.

    These formats carry no modality: a file is taken as CT unless its voxels are 8-bit
    integers (a mask or label map, like the aorta.nii.gz next to the CTA test scan).
    """
    try:
        raw = read_volume_file(f, kind, header_only=True)
    except ViewerError as exc:
        return SeriesInfo(
            key=key,
            description=f.name,
            modality="",
            n_slices=0,
            rows=0,
            columns=0,
            spacing_mm=None,
            files=(f,),
            warnings=(str(exc),),
            is_ct=False,
            series_number=None,
            kind=kind,
        )
    nz, ny, nx = raw.shape_zyx
    sx, sy, sz = (float(s) for s in np.linalg.norm(raw.ijk_to_lps[:3, :3], axis=0))
    sp = (sx, sy, sz)
    ws = list(raw.warnings)
    if raw.looks_like_labels:
        ws.append(f"{raw.dtype} voxels: looks like a mask or label map, not a CT")
    return SeriesInfo(
        key=key,
        description=f.name,
        modality="",
        n_slices=nz,
        rows=ny,
        columns=nx,
        spacing_mm=sp,
        files=(f,),
        warnings=tuple(ws),
        is_ct=not raw.looks_like_labels,
        series_number=None,
        kind=kind,
        orientation="",
    )


def scan_series(paths: object, progress: ProgressFn | None = None) -> list[SeriesInfo]:
    """List the series found under ``paths`` (a folder searched recursively, a file, or
    a list of files), CT series with most images first. Reads headers only.

    Volume files (NIfTI/NRRD/MetaImage) are listed as one series each, with sizes filled
    in from their header. Raises ViewerError when nothing loadable is found.
    """
    scan = _scan(paths, progress, 1.0)
    report(progress, 1.0, f"found {len(scan.infos)} series")
    return list(scan.infos)


def load_volume(paths: object, series: str | None = None, progress: ProgressFn | None = None) -> Volume:
    """Load a CT volume in HU from a DICOM folder/files or a NIfTI/NRRD/MetaImage file.

    Args:
        paths: folder (searched recursively), file, or list of files.
        series: a ``SeriesInfo.key`` from :func:`scan_series`; None picks the CT
            series with the most images (other series are named in the warnings).
            A non-CT series is loaded only when named here.
        progress: ``progress(fraction, message)``; raising LoadCancelled cancels.

    Returns a Volume (int16 HU, spacing_mm (x, y, z), ijk_to_lps) whose ``warnings`` list
    everything skipped, dropped, interpolated or clipped. Source files are only read.

    Raises:
        ViewerError: nothing loadable, unknown ``series``, no CT series, or a series too
            damaged to form a volume; the message names the file(s) and the problem.
        LoadCancelled: ``progress`` raised it.
    """
    report(progress, 0.0, "scanning files")
    scan = _scan(paths, progress, 0.15)
    infos = scan.infos
    warnings: list[str] = []
    if series is not None:
        match = [i for i in infos if i.key == series]
        if not match:
            raise ViewerError(
                f"no series with key {series!r}; found: "
                f"{_names([f'{i.key} ({i.description or i.kind})' for i in infos], 8)}",
                path=scan.source,
            )
        chosen = match[0]
        if not chosen.is_ct:
            warnings.append(
                f"modality {chosen.modality or 'unknown'}: not CT, so the values are "
                f"not Hounsfield units; loaded because this series was asked for"
            )
    else:
        cts = [i for i in infos if i.is_ct]
        if not cts:
            found = _names(
                [
                    f"{i.modality or '?'} series {i.key} ({i.description or 'no description'}, {i.n_slices} images)"
                    for i in infos
                ],
                6,
            )
            raise ViewerError(
                f"no CT series found (found {found}); this viewer expects CT in "
                f"Hounsfield units; choose a series explicitly to load it anyway",
                path=scan.source,
            )
        chosen = max(cts, key=lambda i: (i.n_slices, i.kind == "dicom"))
        others = [i for i in infos if i.key != chosen.key]
        if others:
            warnings.append(
                f"{len(others)} other series found and not loaded: {_names([_other(o) for o in others], 6)}"
            )

    if chosen.kind == "dicom":
        group = scan.groups[chosen.key]
        vol = load_group(group, scan.source, scan.warnings, progress, 0.15)
        from dataclasses import replace

        return replace(
            vol, warnings=tuple(warnings) + vol.warnings, metadata={**vol.metadata, "series_key": chosen.key}
        )
    kind, f = scan.volume_files[chosen.key]
    report(progress, 0.2, f"reading {f.name}")
    raw = read_volume_file(f, kind)
    assert raw.data is not None
    report(progress, 0.8, "converting to HU")
    hu, clip_warn = _to_int16_hu(raw.data)
    m = raw.ijk_to_lps
    sx, sy, sz = (float(s) for s in np.linalg.norm(m[:3, :3], axis=0))
    spacing = (sx, sy, sz)
    ws = warnings + list(chosen.warnings) + ([clip_warn] if clip_warn else [])
    ws.append(f"{raw.metadata.get('format', kind)} files carry no modality: assumed to be CT in HU")
    report(progress, 1.0, "loaded")
    return Volume(
        hu=hu,
        spacing_mm=spacing,
        ijk_to_lps=m,
        description=f.name,
        source=str(f),
        warnings=tuple(ws),
        metadata={**raw.metadata, "series_key": chosen.key},
        identity={},
    )


def _own_memory(a: np.ndarray) -> bool:
    """Whether ``a`` views memory numpy allocated (a chain of array views ending in an
    array that owns its data), not a ``bytes`` object or a file's buffer."""
    base: object = a
    while isinstance(base, np.ndarray):
        if base.base is None:
            return bool(base.flags.owndata)
        base = base.base
    return False


def _to_int16_hu(data: np.ndarray) -> tuple[np.ndarray, str | None]:
    """Round, clip and store as native int16 (contiguous, writable copy when needed)."""
    if data.dtype == np.int16 and data.dtype.isnative:
        if data.flags.c_contiguous and data.flags.writeable and _own_memory(data):
            return data, None  # (a reader's own new array: no second copy)
        return np.ascontiguousarray(data).copy(), None
    if data.dtype.kind in "iu" and data.dtype.itemsize <= 2 and not (data.dtype == np.uint16 and data.max() > 32767):
        return data.astype(np.int16), None
    f = data.astype(np.float64)
    if not np.all(np.isfinite(f)):
        n_bad = int(np.count_nonzero(~np.isfinite(f)))
        f = np.nan_to_num(f, nan=-1024.0, posinf=32767.0, neginf=-32768.0)
        warn_nan = f"{n_bad} non-finite voxel(s) (NaN/inf) set to -1024 / the int16 limits; "
    else:
        warn_nan = ""
    np.rint(f, out=f)
    n_clip = int(np.count_nonzero(f < -32768) + np.count_nonzero(f > 32767))
    np.clip(f, -32768, 32767, out=f)
    msg = None
    if n_clip or warn_nan:
        msg = f"{warn_nan}{n_clip} voxel(s) outside -32768..32767 clipped to int16"
    return f.astype(np.int16), msg
