"""Slice-stack geometry: sort, duplicates, gaps, uneven spacing, gantry tilt, resampling.

Pure numpy/scipy, no DICOM: the DICOM loader hands in each slice's
(0020,0032) ImagePositionPatient and the series' (0020,0037) ImageOrientationPatient,
and gets back a plan saying whether the stack is a regular grid (then it is used as
is) or must be resampled onto one, plus the warnings that say why.

Frames: positions are LPS mm. ``row_cos`` is the direction of increasing column index
(along a row), ``col_cos`` of increasing row index (down a column), both from
(0020,0037); ``normal = row_cos x col_cos``. ``w`` is a slice's coordinate along the
normal (mm); ``u, v`` its in-plane offset from the first slice along row_cos/col_cos.

Policy (documented in docs/loading.md):
* slices are sorted by ``w`` ascending, never by file name or InstanceNumber;
* the stack counts as regular when every position is within 10 % of a step of the
  straight regular fit and the in-plane drift is under 10 % of a pixel: the geometry
  error is then below a tenth of a voxel;
* otherwise (uneven spacing, gaps, gantry tilt) it is resampled onto a regular,
  orthogonal grid by linear interpolation along the normal, each acquired slice
  first shifted in-plane by its own offset (that removes the tilt's shear); the
  grid covers the union of all slices' footprints so no acquired voxel is cut off.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from viewer.core.memory import require_memory

#: Positions closer than this along the normal are the same slice position (mm).
DUPLICATE_TOL_MM = 0.01
#: Residual (fraction of a step / of a pixel) below which the stack is taken as regular.
REGULAR_TOL_FRACTION = 0.1
#: A step longer than this many nominal slice thicknesses is a gap (missing slices).
GAP_FACTOR = 1.5
#: Refuse a resampling plan with more output slices than this (a corrupt position).
MAX_RESAMPLED_SLICES = 20000


def slice_frame(iop: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit row cosine, column cosine and normal from (0020,0037) ImageOrientationPatient.

    Re-orthonormalises (some writers store 6-digit cosines) and raises ValueError when
    the two cosines are degenerate or far from orthogonal.
    """
    v = np.asarray(iop, dtype=np.float64).reshape(2, 3)
    row = v[0] / np.linalg.norm(v[0])
    col = v[1] / np.linalg.norm(v[1])
    if not np.all(np.isfinite(row)) or not np.all(np.isfinite(col)) or abs(row @ col) > 1e-2:
        raise ValueError(f"ImageOrientationPatient {list(iop)} is not two orthogonal unit vectors")
    col = col - (row @ col) * row
    col /= np.linalg.norm(col)
    normal = np.cross(row, col)
    return row, col, normal


def orientation_label(iop: Sequence[float]) -> str:
    """'axial', 'coronal', 'sagittal' or 'oblique' from the slice normal (for display)."""
    _, _, n = slice_frame(iop)
    a = int(np.argmax(np.abs(n)))
    if abs(n[a]) < 0.9:
        return "oblique"
    return ("sagittal", "coronal", "axial")[a]


@dataclass
class StackPlan:
    """How to turn a sorted stack of slices into a regular volume.

    Attributes:
        w_mm: slice coordinates along the normal, ascending (after duplicate removal).
        offsets_mm: ``(n, 2)`` in-plane offsets (u along row_cos, v along col_cos) of each
            slice from the first slice's position.
        regular: True when the slices already form a regular orthogonal grid.
        step_mm: slice step of the output grid.
        n_out: number of output slices.
        out_rows, out_cols: in-plane size of the output grid.
        origin_lps: LPS of output voxel (0, 0, 0).
        ijk_to_lps: 4x4 output affine.
        warnings: what was found and what was done.
        gap_slices: estimated number of missing slices (0 when none).
        tilt_deg: shear angle of the stack from the normal (0 when none).
    """

    w_mm: np.ndarray
    offsets_mm: np.ndarray
    regular: bool
    step_mm: float
    n_out: int
    out_rows: int
    out_cols: int
    origin_lps: np.ndarray
    ijk_to_lps: np.ndarray
    warnings: list[str] = field(default_factory=list)
    gap_slices: int = 0
    tilt_deg: float = 0.0
    unif_steps: bool = True


def _fmt_list(items: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown if len(items) <= limit else f"{shown} and {len(items) - limit} more"


#: A slice separated from the rest of its stack by more than this many median steps
#: (along the normal), or displaced in-plane by more than a field of view from the line
#: through the others, is an outlier: a corrupt or foreign (0020,0032), not a gap.
OUTLIER_STEPS = 10.0


def find_outliers(positions_lps: np.ndarray, iop: Sequence[float], fov_mm: float) -> list[int]:
    """Indices of slices whose (0020,0032) ImagePositionPatient lies far off the stack.

    Along the normal: the sorted stack is cut wherever a step exceeds
    :data:`OUTLIER_STEPS` x the median non-duplicate step; pieces holding at most
    ``max(2, n // 20)`` slices, away from the largest piece, are outliers (a real gap of
    a few missing slices is far shorter; two acquisitions in one series are pieces of
    similar size and are kept). In-plane: the offsets from a robust straight line through
    the stack (a gantry tilt is a straight line) larger than ``fov_mm`` are outliers.
    """
    _, _, normal = slice_frame(iop)
    p = np.asarray(positions_lps, dtype=np.float64).reshape(-1, 3)
    n = len(p)
    if n < 3:
        return []
    with np.errstate(all="ignore"):
        w = p @ normal
        order = np.argsort(w, kind="stable")
        ws = w[order]
        steps = np.diff(ws)
        real = steps[steps > DUPLICATE_TOL_MM]
        out: set[int] = set()
        if len(real):
            med = float(np.median(real))
            cuts = [i + 1 for i, s in enumerate(steps) if not s <= OUTLIER_STEPS * med]
            pieces = np.split(np.arange(n), cuts)
            main = max(range(len(pieces)), key=lambda i: len(pieces[i]))
            small = max(2, n // 20)
            for i, piece in enumerate(pieces):
                if i != main and len(piece) <= small:
                    out.update(int(order[j]) for j in piece)
        keep = np.array([i for i in range(n) if i not in out])
        if len(keep) >= 3:
            row, col, _ = slice_frame(iop)
            rel = p[keep] - p[keep[0]]
            uv = np.stack([rel @ row, rel @ col], axis=1)
            wk = w[keep] - w[keep[0]]
            o = np.argsort(wk, kind="stable")
            dw = np.diff(wk[o])
            ok = dw > DUPLICATE_TOL_MM
            slope = np.median(np.diff(uv[o], axis=0)[ok] / dw[ok, None], axis=0) if np.any(ok) else np.zeros(2)
            icpt = np.median(uv - wk[:, None] * slope, axis=0)
            resid = np.linalg.norm(uv - (icpt + wk[:, None] * slope), axis=1)
            bad = [int(keep[i]) for i in np.nonzero(~(resid <= fov_mm))[0]]
            if len(bad) <= max(2, n // 20):
                out.update(bad)
    return sorted(out)


def plan_stack(
    positions_lps: np.ndarray,
    iop: Sequence[float],
    pixel_spacing_xy_mm: tuple[float, float],
    rows: int,
    cols: int,
    thickness_mm: Sequence[float | None] | None = None,
    names: Sequence[str] | None = None,
    gantry_tilt_deg: float | None = None,
) -> StackPlan:
    """Analyse sorted, duplicate-free slice positions and decide the output grid.

    Args:
        positions_lps: ``(n, 3)`` (0020,0032) of each slice, sorted by ``w`` ascending.
        iop: (0020,0037) shared by the stack.
        pixel_spacing_xy_mm: (column spacing, row spacing) = ((0028,0030)[1], [0]).
        rows, cols: slice size in pixels.
        thickness_mm: (0018,0050) SliceThickness per slice, for telling gaps from
            uneven spacing (None entries or None: use the median step).
        names: per-slice label (file name) used in warnings.
        gantry_tilt_deg: (0018,1120) GantryDetectorTilt if present, quoted in warnings.
    """
    row, col, normal = slice_frame(iop)
    p = np.asarray(positions_lps, dtype=np.float64).reshape(-1, 3)
    n = len(p)
    dx, dy = float(pixel_spacing_xy_mm[0]), float(pixel_spacing_xy_mm[1])
    rel = p - p[0]
    w = p @ normal
    offsets = np.stack([rel @ row, rel @ col], axis=1)
    names = list(names) if names is not None else [f"slice {i}" for i in range(n)]
    warnings: list[str] = []

    if n == 1:
        thick = thickness_mm[0] if thickness_mm else None
        # A step under a micrometre or over a metre is no slice thickness (a corrupt
        # value would make the affine singular or absurd).
        plausible = thick is not None and 1e-3 <= thick <= 1e3
        step = float(thick) if plausible else 1.0  # type: ignore[arg-type]
        m = _affine(row, col, normal, dx, dy, step, p[0])
        if not plausible:
            what = "without" if thick is None else f"with an implausible ({thick:g} mm)"
            warnings.append(f"single slice {names[0]} {what} (0018,0050) SliceThickness: slice step set to 1 mm")
        return StackPlan(w, offsets, True, step, 1, rows, cols, p[0].copy(), m, warnings)

    steps = np.diff(w)
    if np.any(steps <= DUPLICATE_TOL_MM):
        raise ValueError("plan_stack needs distinct positions sorted along the normal")
    span = float(w[-1] - w[0])
    mean_step = span / (n - 1)
    fit_resid = np.abs(w - (w[0] + mean_step * np.arange(n)))
    unif = bool(fit_resid.max() <= REGULAR_TOL_FRACTION * mean_step)

    # In-plane drift of the slice origins = shear of a gantry-tilted acquisition
    # (or a stack whose positions wander). A straight line fit gives the tilt angle.
    drift_px = float(max(np.max(np.abs(offsets[:, 0])) / dx, np.max(np.abs(offsets[:, 1])) / dy))
    tilted = drift_px > REGULAR_TOL_FRACTION
    tilt_deg = 0.0
    if tilted:
        slope_uv = np.polyfit(w - w[0], offsets, 1)[0]  # mm in-plane per mm along normal
        tilt_deg = math.degrees(math.atan(float(np.linalg.norm(slope_uv))))

    # Gaps: a step longer than GAP_FACTOR x the nominal thickness of its two slices
    # (SliceThickness when known, else the median step) means slices are missing.
    med = float(np.median(steps))
    gap_msgs: list[str] = []
    gap_slices = 0
    for i, s in enumerate(steps):
        th = [t for t in (thickness_mm[i], thickness_mm[i + 1])] if thickness_mm else [None, None]
        nominal = max((t for t in th if t and t > 0), default=None) or med
        if s > GAP_FACTOR * nominal:
            missing = max(1, int(round(s / nominal)) - 1)
            gap_slices += missing
            gap_msgs.append(
                f"{s:.2f} mm between {names[i]} and {names[i + 1]} (w {w[i]:.2f}..{w[i + 1]:.2f} mm, "
                f"about {missing} slice(s) of {nominal:.2f} mm missing)"
            )

    if unif and not tilted:
        m = _affine(row, col, normal, dx, dy, mean_step, p[0])
        return StackPlan(w, offsets, True, mean_step, n, rows, cols, p[0].copy(), m, warnings, 0, 0.0, True)

    # --- resample onto a regular orthogonal grid -------------------------------------
    if unif:
        step = mean_step
    else:
        # The smallest acquired step keeps all acquired detail, but one odd close pair
        # (like the 1.08 mm step in a 4/7 mm head series) must not multiply the size:
        # never finer than half the median step.
        step = max(float(steps.min()), 0.5 * med)
    ratio = span / step if step > 0 else math.inf
    if not math.isfinite(ratio) or ratio > MAX_RESAMPLED_SLICES:
        raise ValueError(
            f"slice positions span {span:.6g} mm along the normal ({names[0]} at w = {w[0]:.6g} mm .. "
            f"{names[-1]} at w = {w[-1]:.6g} mm) at a step of {step:.3g} mm: resampling would need "
            f"{ratio:.3g} slices; check (0020,0032) ImagePositionPatient of those files"
        )
    n_out = max(2, int(round(ratio)) + 1)
    step = span / (n_out - 1)  # both ends land exactly on acquired slices

    umin, vmin = offsets.min(axis=0)
    umax, vmax = offsets.max(axis=0)
    if tilted:
        out_cols = cols + int(math.ceil((umax - umin) / dx - 1e-6))
        out_rows = rows + int(math.ceil((vmax - vmin) / dy - 1e-6))
        origin = p[0] + umin * row + vmin * col
    else:
        umin = vmin = 0.0
        out_cols, out_rows = cols, rows
        origin = p[0].copy()
    m = _affine(row, col, normal, dx, dy, step, origin)

    if not unif:
        distinct = _step_histogram(steps)
        # Name the slices at the odd steps: a lone misplaced slice shows up as the two
        # steps around it differing from the rest.
        typical = float(np.median(np.round(steps, 2)))
        odd = [i for i, s in enumerate(steps) if abs(s - typical) > REGULAR_TOL_FRACTION * typical]
        odd_names = [f"{names[i]}..{names[i + 1]} ({steps[i]:.2f} mm)" for i in odd]
        warnings.append(
            f"uneven slice spacing along the slice normal: steps {distinct}"
            + (f", irregular at {_fmt_list(odd_names, 4)}" if odd_names else "")
            + f"; resampled {n} slices onto a regular grid of {n_out} slices at {step:.3f} mm by "
            f"linear interpolation along the normal"
        )
    if gap_msgs:
        warnings.append(
            f"missing slices: {len(gap_msgs)} gap(s), about {gap_slices} slice(s) missing: "
            f"{_fmt_list(gap_msgs, 4)}; voxels in the gaps are interpolated, not measured"
        )
    if tilted:
        # A tilt moves every origin along one straight line; name slices off that line
        # (a single displaced slice rather than a tilted stack).
        fit = np.polyfit(w - w[0], offsets, 1)
        resid = np.linalg.norm(offsets - np.outer(w - w[0], fit[0]) - fit[1], axis=1)
        off_line = [
            f"{names[i]} ({resid[i]:.2f} mm)"
            for i in np.argsort(-resid)
            if resid[i] > REGULAR_TOL_FRACTION * min(dx, dy)
        ]
        if off_line:
            warnings.append(
                f"slice origins off the straight line of the stack (in-plane): "
                f"{_fmt_list(off_line, 4)}; each slice is placed where its "
                f"(0020,0032) ImagePositionPatient says"
            )
        tag = f" ((0018,1120) GantryDetectorTilt = {gantry_tilt_deg:g} deg)" if gantry_tilt_deg else ""
        warnings.append(
            f"gantry tilt / sheared stack: slice origins drift {np.hypot(umax - umin, vmax - vmin):.1f} mm "
            f"in-plane, a shear of {tilt_deg:.1f} deg from the slice normal{tag}; resampled onto an "
            f"orthogonal grid ({out_cols}x{out_rows}x{n_out}, each slice shifted in-plane by its "
            f"offset with linear interpolation, outside the acquired field filled with air)"
        )
    return StackPlan(
        w,
        (offsets - np.array([umin, vmin])) if tilted else np.zeros_like(offsets),
        False,
        step,
        n_out,
        out_rows,
        out_cols,
        origin,
        m,
        warnings,
        gap_slices,
        tilt_deg,
        unif,
    )


def _step_histogram(steps: np.ndarray) -> str:
    vals, counts = np.unique(np.round(steps, 2), return_counts=True)
    order = np.argsort(-counts)
    parts = [f"{vals[i]:.2f} mm x{counts[i]}" for i in order]
    return f"{float(steps.min()):.2f}-{float(steps.max()):.2f} mm ({_fmt_list(parts, 6)})"


def _affine(
    row: np.ndarray, col: np.ndarray, normal: np.ndarray, dx: float, dy: float, dz: float, origin: np.ndarray
) -> np.ndarray:
    """ijk_to_lps: columns row_cos*dx, col_cos*dy, normal*dz; translation origin."""
    m = np.eye(4)
    m[:3, 0] = row * dx
    m[:3, 1] = col * dy
    m[:3, 2] = normal * dz
    m[:3, 3] = origin
    return m


def resample_stack(
    stack: np.ndarray,
    plan: StackPlan,
    pixel_spacing_xy_mm: tuple[float, float],
    fill_hu: int,
    check: Callable[[float], None] | None = None,
) -> np.ndarray:
    """Resample an int16 stack ``(n, rows, cols)`` onto ``plan``'s regular grid.

    Each output slice at normal coordinate ``w`` is the linear blend of the two
    acquired slices around it, each first shifted in-plane by its own offset
    (bilinear, ``fill_hu`` outside). Returns a new int16 array
    ``(plan.n_out, plan.out_rows, plan.out_cols)``. ``check(fraction)`` is called
    once per output slice (progress / cancellation).
    """
    from scipy import ndimage

    dx, dy = pixel_spacing_xy_mm
    n = stack.shape[0]
    require_memory(
        plan.n_out * plan.out_rows * plan.out_cols * 2,
        f"resampling onto a {plan.out_cols}x{plan.out_rows}x{plan.n_out} grid",
    )
    out = np.empty((plan.n_out, plan.out_rows, plan.out_cols), dtype=np.int16)
    shifted_cache: dict[int, np.ndarray] = {}
    tilt = bool(np.any(plan.offsets_mm != 0))

    def placed(i: int) -> np.ndarray:
        if i in shifted_cache:
            return shifted_cache[i]
        src = stack[i].astype(np.float32)
        if tilt:
            u, v = plan.offsets_mm[i]
            # affine_transform: out[o] = in[o + offset]; output pixel (r, c) of the grid
            # sits at in-plane (c*dx, r*dy) from the grid origin, i.e. at
            # (r - v/dy, c - u/dx) in slice i's own pixel grid.
            src = ndimage.affine_transform(
                src,
                np.ones(2),
                offset=(-v / dy, -u / dx),
                output_shape=(plan.out_rows, plan.out_cols),
                order=1,
                cval=float(fill_hu),
            )
        if len(shifted_cache) >= 2:
            shifted_cache.pop(min(shifted_cache))
        shifted_cache[i] = src
        return src

    w0 = plan.w_mm[0]
    for t in range(plan.n_out):
        wt = w0 + t * plan.step_mm
        a = int(np.clip(np.searchsorted(plan.w_mm, wt, side="right") - 1, 0, n - 2)) if n > 1 else 0
        if n == 1:
            blended = placed(0)
        else:
            b = a + 1
            f = float(np.clip((wt - plan.w_mm[a]) / (plan.w_mm[b] - plan.w_mm[a]), 0.0, 1.0))
            if f < 1e-6:
                blended = placed(a)
            elif f > 1 - 1e-6:
                blended = placed(b)
            else:
                blended = placed(a) * (1.0 - f) + placed(b) * f
        out[t] = np.clip(np.rint(blended), -32768, 32767).astype(np.int16)
        if check is not None:
            check((t + 1) / plan.n_out)
    return out
