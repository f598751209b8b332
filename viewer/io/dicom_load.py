"""Pixel pass of the DICOM loader: decode a grouped series into one int16 HU volume.

Performance design (measured in benchmarks/bench_load.py, results in docs/bench-load.md):
the int16 output is allocated once; native little-endian 16-bit slices are read with
``readinto`` straight into their slot of it (the header pass already found the byte
offset), then fixed up in place (unused high bits, rescale with integer math when
(0028,1053) RescaleSlope is 1); only compressed or unusual slices go through
pydicom's decoders. Files are read by a small thread pool: file reads, numpy and the
GDCM / OpenJPEG decoders release the GIL.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TypeVar

import numpy as np
import pydicom

from viewer.core.errors import ViewerError
from viewer.core.memory import require_memory
from viewer.core.progress import ProgressFn, report
from viewer.core.volume import Volume
from viewer.io.dicom_headers import SliceHeader, read_metadata
from viewer.io.geometry import DUPLICATE_TOL_MM, find_outliers, plan_stack, resample_stack, slice_frame
from viewer.io.series import DicomGroup

T = TypeVar("T")
R = TypeVar("R")

#: Threads for file reading/decoding. More than a few only adds contention for the
#: GIL during the Python parts; 4 keeps the disk queue busy on a cold cache.
MAX_WORKERS = max(2, min(4, os.cpu_count() or 2))


def parallel_map(
    fn: Callable[[T], R], items: Sequence[T], progress: ProgressFn | None, lo: float, hi: float, message: str
) -> list[R]:
    """``[fn(x) for x in items]`` on the thread pool, reporting progress from this thread.

    ``progress`` is called only from the calling thread, so a GUI callback needs no
    locking; when it raises (LoadCancelled) the queued work is cancelled, the running
    items finish, and the exception propagates.
    """
    n = len(items)
    if n == 0:
        return []
    results: list[R | None] = [None] * n
    # Chunks of a few items keep the per-future overhead small.
    chunk = max(1, min(16, n // (MAX_WORKERS * 8) or 1))
    chunks = [range(i, min(n, i + chunk)) for i in range(0, n, chunk)]

    def run(r: range) -> range:
        for i in r:
            results[i] = fn(items[i])
        return r

    done_items = 0
    with ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="viewer-io") as ex:
        pending: set[Future] = {ex.submit(run, r) for r in chunks}
        try:
            while pending:
                finished, pending = wait(pending, timeout=0.1, return_when=FIRST_EXCEPTION)
                for f in finished:
                    done_items += len(f.result())  # re-raises a worker's exception
                report(progress, lo + (hi - lo) * done_items / n, f"{message} {done_items}/{n}")
        except BaseException:
            for f in pending:
                f.cancel()
            raise
    return results  # type: ignore[return-value]


# ----------------------------------------------------------------------------- HU
def rescale_in_place(buf: np.ndarray, h: SliceHeader) -> int:
    """Turn the stored 16-bit values in ``buf`` (int16 view) into HU, in place.

    Applies (0028,0101) BitsStored (mask unused high bits, or sign-extend), then
    (0028,1053) RescaleSlope and (0028,1052) RescaleIntercept, rounding to the nearest
    integer. Returns how many voxels had to be clipped to the int16 range.
    """
    bs = h.bits_stored
    if h.pixel_rep == 0:
        raw = buf.view(np.uint16)
        if bs < 16:
            np.bitwise_and(raw, (1 << bs) - 1, out=raw)
    else:
        raw = buf
        if bs < 16:
            # Sign-extend from bit bs-1: shift it to the top, arithmetic-shift back.
            np.left_shift(buf, 16 - bs, out=buf)
            np.right_shift(buf, 16 - bs, out=buf)
    slope, icpt = float(h.slope), float(h.intercept)
    if slope == 1.0 and icpt == int(icpt):
        icpt_i = int(icpt)
        if h.pixel_rep == 1 and icpt_i == 0:
            return 0
        lo, hi = int(raw.min()), int(raw.max())
        if lo + icpt_i >= -32768 and hi + icpt_i <= 32767:
            # Integer math on the int16 bit pattern: (u + icpt) mod 2^16 read as int16
            # is exact whenever the true result fits int16, which was just checked.
            if icpt_i:
                np.add(buf, icpt_i, out=buf, casting="unsafe")
            return 0
    f = raw.astype(np.float64)
    if slope != 1.0:
        f *= slope
    f += icpt
    np.rint(f, out=f)
    n_clip = int(np.count_nonzero(f < -32768) + np.count_nonzero(f > 32767))
    np.clip(f, -32768, 32767, out=f)
    buf[...] = f
    return n_clip


def store_hu(raw: np.ndarray, h: SliceHeader, dst: np.ndarray) -> int:
    """Rescale a decoded slice (any integer dtype) into ``dst`` (int16 HU)."""
    if raw.dtype.itemsize == 2 and raw.dtype.kind in "iu":
        dst[...] = raw.view(np.int16)
        return rescale_in_place(dst, h)
    f = raw.astype(np.float64) * float(h.slope) + float(h.intercept)
    np.rint(f, out=f)
    n_clip = int(np.count_nonzero(f < -32768) + np.count_nonzero(f > 32767))
    np.clip(f, -32768, 32767, out=f)
    dst[...] = f
    return n_clip


# -------------------------------------------------------------------------- decode
class _SliceError(Exception):
    pass


def _read_native16(h: SliceHeader, dst: np.ndarray) -> None:
    """readinto the preallocated slot: the fast path for uncompressed 16-bit data."""
    assert h.pixel_offset is not None
    mv = dst.data.cast("B")
    with open(h.path, "rb", buffering=0) as f:
        f.seek(h.pixel_offset)
        got = f.readinto(mv)
        while got is not None and got < len(mv):  # short reads are legal for raw files
            more = f.readinto(mv[got:])
            if not more:
                break
            got += more
    if got != len(mv):
        raise _SliceError(f"file truncated: {got} of {len(mv)} pixel bytes")


def decode_file(path: Path, items: Sequence[tuple[SliceHeader, np.ndarray]]) -> int:
    """Decode the given frames of one file into their int16 destinations; returns the
    clipped-voxel count. Raises _SliceError with a reason on any failure."""
    try:
        h0 = items[0][0]
        if h0.pixel_offset is not None and h0.bits_allocated == 16 and h0.samples == 1:
            clipped = 0
            for h, dst in items:
                _read_native16(h, dst)
                clipped += rescale_in_place(dst, h)
            return clipped
        ds = pydicom.dcmread(path, force=True)
        arr = ds.pixel_array  # GDCM / pylibjpeg plugins for compressed syntaxes
        if h0.n_frames == 1 and arr.ndim == 2:
            arr = arr[None]
        if arr.shape[1:] != (h0.rows, h0.cols) or arr.shape[0] < h0.n_frames:
            raise _SliceError(
                f"decoded pixel array has shape {arr.shape}, header says {h0.n_frames}x{h0.rows}x{h0.cols}"
            )
        clipped = 0
        for h, dst in items:
            clipped += store_hu(arr[h.frame or 0], h, dst)
        return clipped
    except _SliceError:
        raise
    except (MemoryError, KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - any decoder failure = unreadable file
        # BaseException, not Exception: pylibjpeg-rle (Rust, pyo3) reports a corrupt RLE
        # segment as pyo3's PanicException, which derives from BaseException.
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise _SliceError(f"{type(exc).__name__}: {msg[:200]}") from None


# ---------------------------------------------------------------------------- load
def _names(labels: Iterable[str], limit: int = 5) -> str:
    ls = list(labels)
    shown = ", ".join(ls[:limit])
    return shown if len(ls) <= limit else f"{shown} and {len(ls) - limit} more"


def _fmt_pos(ipp: object) -> str:
    if not isinstance(ipp, Iterable):
        return "(?)"
    try:
        return "(" + ", ".join(f"{float(x):.6g}" for x in ipp) + ")"
    except (TypeError, ValueError):
        return "(?)"


def _rescale_warnings(hs: Sequence[SliceHeader]) -> list[str]:
    """Say where (0028,1053)/(0028,1052) are absent, or where a few images differ from the
    series' usual pair (each image is still rescaled with its own values, as PS3.3 says;
    a lone different intercept is more often a corrupt header than a real change)."""
    out: list[str] = []
    absent = [h for h in hs if not h.rescale_given]
    if absent:
        out.append(
            f"{len(absent)} image(s) without (0028,1052) RescaleIntercept / (0028,1053) "
            f"RescaleSlope: stored values taken as HU (slope 1, intercept 0): "
            f"{_names(h.label for h in absent)}"
        )
    pairs: dict[tuple[float, float], list[SliceHeader]] = {}
    for h in hs:
        pairs.setdefault((h.slope, h.intercept), []).append(h)
    if len(pairs) > 1:
        main = max(pairs, key=lambda k: len(pairs[k]))
        if len(pairs[main]) * 2 > len(hs):
            odd = [f"{h.label} ({h.slope:g}, {h.intercept:g})" for k, v in pairs.items() if k != main for h in v]
            out.append(
                f"rescale differs within the series: {len(pairs[main])} images have slope "
                f"{main[0]:g}, intercept {main[1]:g}; {_names(odd)} (each rescaled with its own)"
            )
    return out


def load_group(
    group: DicomGroup, source: str, extra_warnings: Sequence[str], progress: ProgressFn | None, lo: float = 0.0
) -> Volume:
    """Load one grouped DICOM series as a Volume (see docs/loading.md for the policy)."""
    warnings: list[str] = list(group.warnings) + list(extra_warnings)
    hs = list(group.headers)
    where = hs[0].path.parent

    no_geom = [h for h in hs if h.ipp is None or h.iop is None or h.pixel_spacing is None]
    if no_geom:
        if len(no_geom) == len(hs):
            raise ViewerError(
                f"series {group.key}: images lack (0020,0032) ImagePositionPatient, (0020,0037) "
                f"ImageOrientationPatient or (0028,0030) PixelSpacing, so they cannot be placed "
                f"in space ({_names(h.label for h in no_geom)})",
                path=no_geom[0].path,
            )
        warnings.append(
            f"skipped {len(no_geom)} image(s) without position/orientation/pixel "
            f"spacing: {_names(h.label for h in no_geom)}"
        )
        hs = [h for h in hs if h not in no_geom]
    h0 = hs[0]
    if h0.samples != 1:
        raise ViewerError(
            f"series {group.key} has {h0.samples} samples per pixel (colour); a CT volume needs greyscale", path=h0.path
        )
    if h0.bits_allocated not in (8, 16, 32):
        raise ViewerError(f"series {group.key}: BitsAllocated {h0.bits_allocated} is not supported", path=h0.path)
    try:
        row, col, normal = slice_frame(h0.iop)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ViewerError(f"series {group.key}: {exc}", path=h0.path) from None

    # Sort along the slice normal: w = (0020,0032) . (row x col). The label breaks ties
    # so duplicates come out in a deterministic order.
    hs.sort(key=lambda h: (float(np.dot(h.ipp, normal)), h.instance_number or 0, h.label))  # type: ignore[arg-type]

    # ---- outliers: a position far off the stack is a corrupt header, not a gap ---------
    ps0 = h0.pixel_spacing
    assert ps0 is not None
    fov = max(h0.cols * float(ps0[1]), h0.rows * float(ps0[0]))
    out_i = find_outliers(np.array([h.ipp for h in hs], dtype=np.float64), h0.iop, fov)  # type: ignore[arg-type]
    if out_i:
        bad = [hs[i] for i in out_i]
        warnings.append(
            f"skipped {len(bad)} image(s) whose (0020,0032) ImagePositionPatient lies far off the "
            f"rest of the stack: {_names(f'{h.label} at {_fmt_pos(h.ipp)}' for h in bad)}"
        )
        hs = [h for i, h in enumerate(hs) if i not in set(out_i)]
    ws = np.array([float(np.dot(h.ipp, normal)) for h in hs])  # type: ignore[arg-type]

    # ---- duplicate positions ---------------------------------------------------------
    clusters: list[list[int]] = [[0]]
    for i in range(1, len(hs)):
        if ws[i] - ws[clusters[-1][0]] <= DUPLICATE_TOL_MM:
            clusters[-1].append(i)
        else:
            clusters.append([i])
    predecoded: dict[int, np.ndarray] = {}
    chosen: list[SliceHeader] = []
    exact_dups: list[str] = []
    conflicts: list[str] = []
    for cl in clusters:
        if len(cl) == 1:
            chosen.append(hs[cl[0]])
            continue
        arrays = []
        for i in cl:
            a = np.empty((h0.rows, h0.cols), dtype=np.int16)
            try:
                decode_file(hs[i].path, [(hs[i], a)])
                arrays.append((i, a))
            except _SliceError as exc:
                warnings.append(f"skipped unreadable file {hs[i].label}: {exc}")
        if not arrays:
            continue
        keep_i, keep_a = arrays[0]
        for i, a in arrays[1:]:
            if np.array_equal(a, keep_a):
                exact_dups.append(f"{hs[i].label} = {hs[keep_i].label}")
            else:
                diff = int(np.max(np.abs(a.astype(np.int32) - keep_a)))
                conflicts.append(
                    f"{hs[keep_i].label} kept, {hs[i].label} dropped "
                    f"(w = {ws[i]:.2f} mm, voxels differ by up to {diff} HU)"
                )
        chosen.append(hs[keep_i])
        predecoded[len(chosen) - 1] = keep_a
    if exact_dups:
        warnings.append(
            f"duplicate slice positions: dropped {len(exact_dups)} exact duplicate "
            f"image(s) with identical pixels: {_names(exact_dups)}"
        )
    if conflicts:
        if len(conflicts) * 2 > len(chosen):
            raise ViewerError(
                f"series {group.key}: {len(conflicts)} of {len(chosen)} slice positions hold two "
                f"different images (two volumes mixed in one series, e.g. two reconstructions "
                f"or phases); cannot build one volume: {_names(conflicts, 3)}",
                path=where,
            )
        warnings.append(
            f"duplicate slice positions with DIFFERENT pixels: kept the first image "
            f"(by InstanceNumber) at each position: {_names(conflicts)}"
        )

    if not chosen:  # every image sat at a shared position and none of them decoded
        labels = sorted({h.label for h in hs})
        raise ViewerError(
            f"series {group.key}: no image could be decoded ({_names(labels)}): {'; '.join(warnings[-3:])}",
            path=hs[0].path if len(hs) == 1 else where,
        )

    # ---- pixel pass -------------------------------------------------------------------
    n = len(chosen)
    require_memory(n * h0.rows * h0.cols * 2, f"a {h0.cols}x{h0.rows}x{n} volume", where)
    hu = np.empty((n, h0.rows, h0.cols), dtype=np.int16)
    by_file: dict[Path, list[tuple[SliceHeader, int]]] = {}
    for k, h in enumerate(chosen):
        if k in predecoded:
            hu[k] = predecoded[k]
        else:
            by_file.setdefault(h.path, []).append((h, k))
    del predecoded
    tasks = list(by_file.items())

    def work(task: tuple[Path, list[tuple[SliceHeader, int]]]) -> tuple[int, str | None]:
        path, items = task
        try:
            return decode_file(path, [(h, hu[k]) for h, k in items]), None
        except _SliceError as exc:
            return 0, str(exc)

    results = parallel_map(work, tasks, progress, lo, lo + (0.95 - lo) * 0.9, "reading slices")
    clipped = sum(r[0] for r in results)
    clipped_files = [f"{path.name} ({r[0]})" for (path, _), r in zip(tasks, results, strict=False) if r[0]]
    failed_k: set[int] = set()
    failed_msgs: list[str] = []
    failed_paths: list[Path] = []
    for (path, items), (_, err) in zip(tasks, results, strict=False):
        if err is not None:
            failed_k.update(k for _, k in items)
            failed_msgs.append(f"{path.name} ({err})")
            failed_paths.append(path)
    if failed_k:
        # Half the series unreadable is not "a bad file in a sound series": refuse.
        if len(failed_k) * 2 > n:
            raise ViewerError(
                f"series {group.key}: {len(failed_k)} of {n} images could not be decoded: {_names(failed_msgs, 3)}",
                path=failed_paths[0] if len(failed_paths) == 1 else where,
            )
        warnings.append(f"skipped {len(failed_msgs)} unreadable file(s) of the series: {_names(failed_msgs)}")
        keep = np.array([k not in failed_k for k in range(n)])
        hu = hu[keep]
        chosen = [h for h, ok in zip(chosen, keep, strict=False) if ok]
    if clipped:
        warnings.append(
            f"{clipped} voxel(s) outside the int16 range after rescale were clipped "
            f"to -32768..32767 HU, in {_names(clipped_files)}"
        )
    warnings.extend(_rescale_warnings(chosen))

    # ---- geometry ---------------------------------------------------------------------
    ps = chosen[0].pixel_spacing
    assert ps is not None
    spacing_xy = (float(ps[1]), float(ps[0]))  # (0028,0030) is (row spacing, column spacing)
    try:
        plan = plan_stack(
            np.array([h.ipp for h in chosen], dtype=np.float64),
            chosen[0].iop,  # type: ignore[arg-type]
            spacing_xy,
            chosen[0].rows,
            chosen[0].cols,
            thickness_mm=[h.thickness for h in chosen],
            names=[h.label for h in chosen],
            gantry_tilt_deg=chosen[0].gantry_tilt,
        )
    except ValueError as exc:
        raise ViewerError(f"series {group.key}: {exc}", path=where) from None
    warnings.extend(plan.warnings)
    if not plan.regular:
        require_memory(
            plan.n_out * plan.out_rows * plan.out_cols * 2,
            f"resampling {len(chosen)} slices ({chosen[0].label} at {_fmt_pos(chosen[0].ipp)} .. "
            f"{chosen[-1].label} at {_fmt_pos(chosen[-1].ipp)}) onto a "
            f"{plan.out_cols}x{plan.out_rows}x{plan.n_out} grid",
            where,
        )
        fill = max(int(hu.min()), -1024)  # air, or the darkest value when there is no air
        hu = resample_stack(
            hu,
            plan,
            spacing_xy,
            fill,
            check=lambda f: report(progress, 0.95 + 0.05 * f, "resampling onto a regular grid"),
        )

    meta, identity = read_metadata(chosen[0].path)
    meta.update(
        {
            "format": "DICOM",
            "n_images": n,
            "resampled": not plan.regular,
            "gantry_tilt_deg": round(plan.tilt_deg, 2),
            "missing_slices": plan.gap_slices,
        }
    )
    spacing = (spacing_xy[0], spacing_xy[1], float(plan.step_mm))
    desc = chosen[0].description or where.name
    report(progress, 1.0, "loaded")
    try:
        return Volume(
            hu=hu,
            spacing_mm=spacing,
            ijk_to_lps=plan.ijk_to_lps,
            description=desc,
            source=str(where),
            warnings=tuple(warnings),
            metadata=meta,
            identity=identity,
        )
    except ViewerError as exc:  # the geometry the headers describe is unusable: say whose
        raise ViewerError(
            f"series {group.key} ({_names(h.label for h in chosen)}): {exc}",
            path=chosen[0].path if len(chosen) == 1 else where,
        ) from None
