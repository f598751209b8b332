"""Voxelising the lower-leg phantom: sizes, the ``Phantom`` value object, ``generate``.

The volume is built in slabs of axial slices (bounded memory, progress and cancel
between slabs). Inside a slab every tissue is composited with its partial-volume
fraction (:mod:`viewer.phantom.raster`), structures are evaluated only inside their own
bounding boxes (the leg's box for skin/fat/muscle, each bone's box, the mass's box, each
vessel segment's box), then a Gaussian point-spread blur is applied (the slab carries a
few extra slices on each side so the blur has real anatomy there, not an edge) and
finally white Gaussian noise, drawn per slice from a generator seeded with
``(seed, slice index)`` so the result does not depend on the slab size.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import numpy as np
from scipy import ndimage as ndi

from viewer.core.errors import ViewerError
from viewer.core.progress import ProgressFn, report
from viewer.core.volume import Volume, axis_aligned_affine
from viewer.phantom import anatomy as A
from viewer.phantom.raster import TubeSet, composite, ramp

#: Label values of the ground-truth volume. Stable: saved files and other modules rely
#: on them.
LEGEND: Mapping[str, int] = {
    "background": 0,
    "skin": 1,
    "fat": 2,
    "muscle": 3,
    "bone": 4,  # mineralised bone: cortex and trabecular (cancellous) bone
    "marrow": 5,  # fatty marrow of the diaphyseal medullary cavity
    "artery": 6,  # popliteal, anterior tibial, tibioperoneal trunk, posterior tibial, peroneal
    "collateral": 7,  # collateral branches around the eroded segment
    "calcification": 8,  # calcified rim of the myonecrosis mass
    "mass": 9,  # liquefied contents of the mass
}

#: What each label holds and its HU before blur and noise (for legend.json and docs).
LEGEND_HU: Mapping[str, str] = {
    "background": f"air, {A.HU_AIR:.0f} HU",
    "skin": f"skin (dermis), {A.HU_SKIN:.0f} HU, {A.SKIN_MM} mm thick",
    "fat": f"subcutaneous fat, {A.HU_FAT:.0f} HU",
    "muscle": f"skeletal muscle, {A.HU_MUSCLE:.0f} HU",
    "bone": "cortical bone 1350-1600 HU (densest mid-shaft); trabecular bone 320-550 HU in the metaphyses and epiphyses",
    "marrow": f"fatty marrow of the diaphysis, {A.HU_MARROW:.0f} HU",
    "artery": f"contrast-filled main arteries, {A.HU_BLOOD_CONTRAST:.0f} HU, 2.3-5.4 mm",
    "collateral": f"contrast-filled collateral branches, {A.HU_COLLATERAL:.0f} HU, 0.8-2.0 mm",
    "calcification": f"plaque-like calcified rim of the mass, {A.RIM_HU_MIN:.0f}-{A.RIM_HU_MAX:.0f} HU, {A.RIM_MIN_MM}-{A.RIM_MAX_MM} mm thick",
    "mass": f"liquefied contents of the mass, {A.HU_MASS_FLUID - 5:.0f}-{A.HU_MASS_FLUID + 5:.0f} HU",
}


@dataclass(frozen=True)
class PhantomSize:
    """A voxel grid for the phantom: ``shape`` (nz, ny, nx), ``spacing_mm`` (x, y, z)."""

    name: str
    shape: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]
    slab_slices: int


SIZES: Mapping[str, PhantomSize] = {
    # about 1.5 mm voxels: fast, for tests
    "small": PhantomSize("small", (218, 96, 96), (1.5, 1.5, 1.75), 64),
    # a typical run-off CTA reconstruction: 0.7 mm in-plane, 1 mm slices
    "default": PhantomSize("default", (380, 224, 224), (0.7, 0.7, 1.0), 48),
    # 512 x 512 x 640 for benchmarks
    "large": PhantomSize("large", (640, 512, 512), (0.3, 0.3, 0.6), 24),
}

#: Lowest slice centre (mm): 4 mm below the ankle joint.
Z_START_MM = A.ANKLE_Z_MM - 4.0
#: The field of view is centred a little posterior of the leg axis (the calf bulges).
FOV_CENTRE_XY_MM = (A.LEG_AXIS_XY_MM[0], A.LEG_AXIS_XY_MM[1] + 8.0)
#: Point-spread blur, standard deviation in voxels along (z, y, x).
PSF_SIGMA_VOX = (0.5, 0.5, 0.5)
_PSF_TRUNCATE = 4.0
#: Scanners store CT numbers from -1024 (12-bit range with intercept -1024).
HU_FLOOR = -1024
HU_CEIL = 3071


@dataclass(frozen=True, eq=False)
class Phantom:
    """A synthetic lower-leg CT angiogram with its exact ground truth.

    Attributes:
        volume: the CT (int16 HU, ``(nz, ny, nx)``, ``ijk_to_lps`` of a LEFT lower leg,
            axial slices; head-first: k runs inferior -> superior, slice 0 at the ankle;
            feet-first: the same anatomy with the slice order reversed).
        labels: uint8 ground truth on the same grid; values in ``legend``; a voxel's
            label is the tissue owning the largest share of it before blur.
        legend: label name -> value (see :data:`LEGEND`).
        landmarks: positions in LPS mm (see :func:`generate`).
        size, seed, feet_first: how it was made.
        timings_s: seconds spent per stage.
    """

    volume: Volume
    labels: np.ndarray
    legend: Mapping[str, int]
    landmarks: Mapping[str, Any]
    size: str = "default"
    seed: int = 0
    feet_first: bool = False
    timings_s: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class _Model:
    mass: A.MassModel
    vessels: tuple[A.Vessel, ...]
    arteries: TubeSet
    collaterals: TubeSet


def _build_model(seed: int) -> _Model:
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x1E6]))
    mass = A.make_mass(rng)
    arteries = A.main_arteries()
    cols = A.collaterals(arteries, mass, rng)
    return _Model(
        mass=mass,
        vessels=tuple(arteries + cols),
        arteries=TubeSet([(v.points_lps, v.radii_mm) for v in arteries]),
        collaterals=TubeSet([(v.points_lps, v.radii_mm) for v in cols]),
    )


def _axis(origin: float, step: float, n: int) -> np.ndarray:
    return origin + step * np.arange(n, dtype=np.float64)


def _index_range(lo_mm: float, hi_mm: float, coords: np.ndarray) -> tuple[int, int]:
    """Indices ``[i0, i1)`` of ascending ``coords`` inside ``[lo, hi]`` (clipped)."""
    i0 = int(np.searchsorted(coords, lo_mm, side="left"))
    i1 = int(np.searchsorted(coords, hi_mm, side="right"))
    return max(i0, 0), min(i1, len(coords))


def _render_slab(
    model: _Model,
    x_mm: np.ndarray,
    y_mm: np.ndarray,
    z_mm: np.ndarray,
    h_mm: float,
    margin: int,
) -> tuple[np.ndarray, np.ndarray, slice, slice]:
    """HU (float32, blurred, no noise) and labels of the slices ``z_mm`` inside the leg's
    in-plane box. ``z_mm`` includes ``margin`` extra slices each side for the blur,
    which are cut off on return. Returns ``(hu, labels, rows, cols)`` with the box's
    index ranges in the full slice."""
    sp = A.slice_params(z_mm)
    leg = sp.leg
    pad = 4.0 * max(x_mm[1] - x_mm[0], y_mm[1] - y_mm[0]) + h_mm
    i0, i1 = _index_range(float(np.min(leg[:, 0] - leg[:, 2])) - pad, float(np.max(leg[:, 0] + leg[:, 2])) + pad, x_mm)
    j0, j1 = _index_range(float(np.min(leg[:, 1] - leg[:, 3])) - pad, float(np.max(leg[:, 1] + leg[:, 3])) + pad, y_mm)
    xs = x_mm[i0:i1]
    ys = y_mm[j0:j1]
    nz, ny, nx = len(z_mm), len(ys), len(xs)
    f32 = np.float32

    hu = np.full((nz, ny, nx), A.HU_AIR, dtype=f32)
    lab = np.zeros((nz, ny, nx), dtype=np.uint8)
    w = np.ones((nz, ny, nx), dtype=f32)

    def col(a: np.ndarray) -> np.ndarray:
        return np.asarray(a, dtype=f32)[:, None, None]

    # --- skin, subcutaneous fat, muscle: nested shells of the leg outline --------------
    dx = xs.astype(f32)[None, None, :] - col(leg[:, 0])
    dy = ys.astype(f32)[None, :, None] - col(leg[:, 1])
    r, c, s = A.polar(dx, dy)
    del dx, dy
    d_leg = r - A.ellipse_radius(col(leg[:, 2]), col(leg[:, 3]), c, s)
    del r, c
    composite(hu, lab, w, ramp(d_leg, h_mm), A.HU_SKIN, LEGEND["skin"])
    d_leg += f32(A.SKIN_MM)
    composite(hu, lab, w, ramp(d_leg, h_mm), A.HU_FAT, LEGEND["fat"])
    d_leg += f32(A.FAT_MEAN_MM) + f32(A.FAT_AP_MM) * s  # now: signed distance to the deep fascia
    composite(hu, lab, w, ramp(d_leg, h_mm), A.HU_MUSCLE, LEGEND["muscle"])
    d_fascia = d_leg
    del s

    # --- intermuscular septa: thin fat planes inside the muscle -------------------------
    wz = A.septum_weight(sp.t)
    if (wz > 0.05).any():
        for src, a_src, dst, a_dst, thick in A.SEPTA:
            p0 = A.septum_points(sp, src, a_src)
            p1 = A.septum_points(sp, dst, a_dst)
            e = wz > 0.05
            lo_xy = np.minimum(p0, p1)[e].min(axis=0) - 2.0 * h_mm
            hi_xy = np.maximum(p0, p1)[e].max(axis=0) + 2.0 * h_mm
            bi0, bi1 = _index_range(lo_xy[0], hi_xy[0], xs)
            bj0, bj1 = _index_range(lo_xy[1], hi_xy[1], ys)
            if bi0 >= bi1 or bj0 >= bj1:
                continue
            box = (slice(None), slice(bj0, bj1), slice(bi0, bi1))
            ux = col(p1[:, 0] - p0[:, 0])
            uy = col(p1[:, 1] - p0[:, 1])
            inv_l2 = 1.0 / np.maximum(ux * ux + uy * uy, f32(1e-6))
            vx = xs[bi0:bi1].astype(f32)[None, None, :] - col(p0[:, 0])
            vy = ys[bj0:bj1].astype(f32)[None, :, None] - col(p0[:, 1])
            tt = np.clip((vx * ux + vy * uy) * inv_l2, 0.0, 1.0)
            dist = np.sqrt((vx - tt * ux) ** 2 + (vy - tt * uy) ** 2)
            f = ramp(dist - col(0.5 * thick * wz), h_mm)
            f *= (d_fascia[box] < 0.0)  # only inside the muscle compartments
            composite(hu[box], lab[box], w[box], f, A.HU_FAT, LEGEND["fat"])

    mass = model.mass
    m_lo, m_hi = mass.bbox_lps(pad_mm=h_mm)

    def box_of(lo_xy, hi_xy, zmask=None):
        bi0, bi1 = _index_range(lo_xy[0], hi_xy[0], xs)
        bj0, bj1 = _index_range(lo_xy[1], hi_xy[1], ys)
        if zmask is None:
            bk0, bk1 = 0, nz
        else:
            ks = np.nonzero(zmask)[0]
            if ks.size == 0:
                return None
            bk0, bk1 = int(ks[0]), int(ks[-1]) + 1
        if bi0 >= bi1 or bj0 >= bj1:
            return None
        return slice(bk0, bk1), slice(bj0, bj1), slice(bi0, bi1)

    # --- tibia and fibula: cortex, then marrow / trabecular bone inside ----------------
    for bone in ("tibia", "fibula"):
        if bone == "tibia":
            p = sp.tibia
            rmax = np.maximum(p[:, 2], p[:, 3]) * (1.0 + np.abs(p[:, 5])) + pad
            exists = np.ones(nz, dtype=bool)
            trab = sp.tibia_trab
        else:
            p = sp.fibula
            rmax = p[:, 2] + pad
            exists = p[:, 2] > 0
            trab = sp.fibula_trab
        if not exists.any():
            continue
        e = exists
        box = box_of(
            (float(np.min((p[:, 0] - rmax)[e])), float(np.min((p[:, 1] - rmax)[e]))),
            (float(np.max((p[:, 0] + rmax)[e])), float(np.max((p[:, 1] + rmax)[e]))),
            e,
        )
        if box is None:
            continue
        bk, bj, bi = box
        pz = p[bk]
        bx = xs[bi].astype(f32)[None, None, :]
        by = ys[bj].astype(f32)[None, :, None]
        r, c, s = A.polar(bx - col(pz[:, 0]), by - col(pz[:, 1]))
        if bone == "tibia":
            rad = A.tibia_radius(col(pz[:, 2]), col(pz[:, 3]), col(pz[:, 5]), c, s)
        else:
            rad = col(np.maximum(pz[:, 2], 1e-3))
        d_out = r - rad
        del r, c, s, rad
        if bone == "fibula":
            # the fibular head ends below the knee joint line
            top = col(z_mm[bk] - float(A.z_of_t(A.FIBULA_TOP_T)))
            d_out = np.maximum(d_out, top)
        d_endo = d_out + col(pz[:, 4] if bone == "tibia" else pz[:, 3])
        zb = z_mm[bk]
        if zb[-1] >= m_lo[2] and zb[0] <= m_hi[2]:
            # smooth cortical pressure erosion where the mass lies against the bone:
            # the bone surface follows the mass (less a thin gap), and a remodelled
            # cortex of EROSION_LINING_MM lines the defect over the marrow
            d_ind = mass.sd(bx, by, col(zb)).astype(f32) - f32(A.EROSION_GAP_MM)
            np.maximum(d_out, -d_ind, out=d_out)
            np.maximum(d_endo, f32(A.EROSION_LINING_MM) - d_ind, out=d_endo)
        sub = (hu[box], lab[box], w[box])
        composite(*sub, ramp(d_out, h_mm), col(sp.cortex_hu[bk]), LEGEND["bone"])
        rho = trab[bk]
        inner_hu = A.HU_MARROW * (1.0 - rho) + sp.trab_hu[bk] * rho
        inner_cls = np.where(rho >= 0.5, LEGEND["bone"], LEGEND["marrow"]).astype(np.uint8)[:, None, None]
        composite(*sub, ramp(d_endo, h_mm), col(inner_hu), inner_cls)

    # --- the calcific myonecrosis mass: calcified rim over liquefied contents ---------
    box = box_of(m_lo[:2], m_hi[:2], (z_mm >= m_lo[2]) & (z_mm <= m_hi[2]))
    if box is not None:
        bk, bj, bi = box
        mx = xs[bi].astype(f32)[None, None, :]
        my = ys[bj].astype(f32)[None, :, None]
        mz = col(z_mm[bk])
        d = mass.sd(mx, my, mz).astype(f32)
        # it lies within the muscle compartments (under the deep fascia)
        np.maximum(d, d_fascia[box] + f32(0.5), out=d)
        sub = (hu[box], lab[box], w[box])
        composite(*sub, ramp(d, h_mm), mass.rim_hu(mx, my, mz).astype(f32), LEGEND["calcification"])
        d += mass.rim_thickness(mx, my, mz).astype(f32)
        composite(*sub, ramp(d, h_mm), np.broadcast_to(mass.fluid_hu(mx, my, mz), d.shape).astype(f32), LEGEND["mass"])

    # --- contrast-filled vessels: collaterals, then the main arteries over them ---------
    for tubes, value, cls in (
        (model.collaterals, A.HU_COLLATERAL, LEGEND["collateral"]),
        (model.arteries, A.HU_BLOOD_CONTRAST, LEGEND["artery"]),
    ):
        frac = np.zeros((nz, ny, nx), dtype=f32)
        box = tubes.rasterise(frac, xs, ys, z_mm, h_mm)
        if box is not None:
            composite(hu[box], lab[box], w[box], frac[box], value, cls)
        del frac

    del w, d_fascia
    # --- the scanner's point-spread function (partial-volume blur) --------------------
    hu = ndi.gaussian_filter(hu, PSF_SIGMA_VOX, mode="nearest", truncate=_PSF_TRUNCATE)
    keep = slice(margin, nz - margin)
    return hu[keep], lab[keep], slice(j0, j1), slice(i0, i1)


def _landmarks(model: _Model) -> dict[str, Any]:
    """Ground-truth positions (LPS mm) computed from the analytic model, not voxels."""
    mass = model.mass
    lo, hi = mass.bbox_lps()
    step = 1.0
    gx = np.arange(lo[0], hi[0] + step, step)
    gy = np.arange(lo[1], hi[1] + step, step)
    gz = np.arange(lo[2], hi[2] + step, step)
    # (z, y, x) grid; cross-section parameters once per height, broadcast over the plane
    Z, Y, X = np.meshgrid(gz, gy, gx, indexing="ij")
    d_mass = mass.sd(X, Y, Z)
    inside = d_mass < 0
    Pm = np.stack([X[inside], Y[inside], Z[inside]], axis=1)
    centre = Pm.mean(axis=0)
    # largest axial cross-section -> equivalent radius
    area = inside.sum(axis=(1, 2)).max() * step * step
    # where bone was removed by the erosion: inside the intact bone and the indenter
    sp = A.slice_params(gz)
    tb = sp.tibia[:, :, None, None]
    r, c, s = A.polar(X - tb[:, 0], Y - tb[:, 1])
    d_t = r - A.tibia_radius(tb[:, 2], tb[:, 3], tb[:, 5], c, s)
    fb = sp.fibula[:, :, None, None]
    r, _, _ = A.polar(X - fb[:, 0], Y - fb[:, 1])
    d_f = np.where(fb[:, 2] > 0, r - fb[:, 2], np.inf)
    d_ind = d_mass - A.EROSION_GAP_MM
    eroded = (np.minimum(d_t, d_f) < 0) & (d_ind < 0)
    Pe = np.stack([X[eroded], Y[eroded], Z[eroded]], axis=1)
    er_lo, er_hi = Pe.min(axis=0), Pe.max(axis=0)
    cols = [v for v in model.vessels if v.kind == "collateral"]
    box_lo = np.min([er_lo] + [(v.points_lps - v.radii_mm[:, None]).min(axis=0) for v in cols], axis=0)
    box_hi = np.max([er_hi] + [(v.points_lps + v.radii_mm[:, None]).max(axis=0) for v in cols], axis=0)
    tibia_eroded = (d_t < 0) & (d_ind < 0)
    fibula_eroded = (d_f < 0) & (d_ind < 0)
    return {
        "erosion_box_lps": (tuple(float(v) for v in box_lo), tuple(float(v) for v in box_hi)),
        "eroded_bone_box_lps": (tuple(float(v) for v in er_lo), tuple(float(v) for v in er_hi)),
        "eroded_volume_mm3": {
            "tibia": float(tibia_eroded.sum() * step**3),
            "fibula": float(fibula_eroded.sum() * step**3),
        },
        "mass_center_lps": tuple(float(v) for v in centre),
        "mass_radius_mm": float(np.sqrt(area / np.pi)),
        "mass_box_lps": (tuple(float(v) for v in Pm.min(axis=0)), tuple(float(v) for v in Pm.max(axis=0))),
        "mass_volume_ml": float(inside.sum() * step**3 / 1000.0),
        "knee_joint_z_mm": A.KNEE_Z_MM,
        "ankle_joint_z_mm": A.ANKLE_Z_MM,
        "leg_axis_xy_mm": tuple(A.LEG_AXIS_XY_MM),
        "centerlines_lps": {v.name: v.points_lps.copy() for v in model.vessels},
        "vessel_radii_mm": {v.name: v.radii_mm.copy() for v in model.vessels},
        "arteries": [v.name for v in model.vessels if v.kind == "artery"],
        "collaterals": [v.name for v in cols],
        "collateral_parents": {v.name: v.parent for v in cols},
    }


def render_region(
    seed: int,
    x_mm: np.ndarray,
    y_mm: np.ndarray,
    z_mm: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Noise-free HU (float32) and labels of the phantom's anatomy on any axis-aligned
    grid of voxel centres (ascending, evenly spaced LPS coordinates in mm), e.g. a
    fine-resolution crop for checking small structures without building the whole
    volume. Same anatomy and labelling rules as :func:`generate`."""
    x_mm, y_mm, z_mm = (np.asarray(a, dtype=np.float64) for a in (x_mm, y_mm, z_mm))
    steps = [float(a[1] - a[0]) if len(a) > 1 else 1.0 for a in (x_mm, y_mm, z_mm)]
    if min(steps) <= 0:
        raise ViewerError("render_region needs ascending coordinates")
    model = _build_model(seed)
    h_mm = float(np.prod(steps) ** (1.0 / 3.0))
    margin = int(_PSF_TRUNCATE * max(PSF_SIGMA_VOX) + 0.5)
    z_ext = z_mm[0] + steps[2] * np.arange(-margin, len(z_mm) + margin)
    hu_box, lab_box, rows, cols = _render_slab(model, x_mm, y_mm, z_ext, h_mm, margin)
    hu = np.full((len(z_mm), len(y_mm), len(x_mm)), A.HU_AIR, dtype=np.float32)
    lab = np.zeros(hu.shape, dtype=np.uint8)
    hu[:, rows, cols] = hu_box
    lab[:, rows, cols] = lab_box
    return hu, lab


def phantom_grid(size: str = "default") -> tuple[PhantomSize, np.ndarray]:
    """The size record and the head-first ``ijk_to_lps`` of a phantom size."""
    if size not in SIZES:
        raise ViewerError(f"unknown phantom size {size!r}; choose one of {', '.join(SIZES)}")
    spec = SIZES[size]
    nz, ny, nx = spec.shape
    sx, sy, sz = spec.spacing_mm
    origin = (
        round(FOV_CENTRE_XY_MM[0] - 0.5 * (nx - 1) * sx, 6),
        round(FOV_CENTRE_XY_MM[1] - 0.5 * (ny - 1) * sy, 6),
        Z_START_MM,
    )
    return spec, axis_aligned_affine(spec.spacing_mm, origin)


def generate(
    size: str = "default",
    seed: int = 0,
    feet_first: bool = False,
    progress: Optional[ProgressFn] = None,
) -> Phantom:
    """Generate the lower-leg CTA phantom.

    Args:
        size: ``"small"`` (96x96x218, 1.5 mm in-plane, 1.75 mm slices; for tests),
            ``"default"`` (224x224x380, 0.7 mm in-plane, 1 mm slices) or ``"large"``
            (512x512x640, 0.3 mm, 0.6 mm slices; for benchmarks). All cover the same
            380 mm, from 4 mm below the ankle joint to the knee joint line.
        seed: seeds the noise and the small random variations (mass lobulation, rim
            pattern, collateral wiggles). Same seed, same arrays.
        feet_first: store the same anatomy as a feet-first scan would: slice 0 at the
            knee, ``ijk_to_lps``'s k column pointing inferior (decreasing z).
        progress: ``progress(fraction, message)``; may raise
            :class:`~viewer.core.errors.LoadCancelled` to stop.

    Landmarks (LPS mm): ``erosion_box_lps`` ((min x, y, z), (max x, y, z)) around the
    eroded bone and all collaterals; ``eroded_bone_box_lps`` around the eroded bone
    alone; ``mass_center_lps``; ``mass_radius_mm`` (radius of a circle with the area of
    the mass's largest axial cross-section); ``mass_box_lps``; ``centerlines_lps``
    (vessel name -> (N, 3) centre-line points) and ``vessel_radii_mm`` (name -> (N,));
    ``arteries`` and ``collaterals`` (names); joint heights and the leg axis.
    """
    t_start = time.perf_counter()
    spec, affine = phantom_grid(size)
    report(progress, 0.0, f"phantom ({size}): building the anatomy")
    model = _build_model(seed)
    t_model = time.perf_counter()
    nz, ny, nx = spec.shape
    sx, sy, sz = spec.spacing_mm
    x_mm = _axis(affine[0, 3], sx, nx)
    y_mm = _axis(affine[1, 3], sy, ny)
    h_mm = float((sx * sy * sz) ** (1.0 / 3.0))
    margin = int(_PSF_TRUNCATE * max(PSF_SIGMA_VOX) + 0.5)
    hu_out = np.empty(spec.shape, dtype=np.int16)
    lab_out = np.zeros(spec.shape, dtype=np.uint8)
    slab = spec.slab_slices
    n_slabs = (nz + slab - 1) // slab
    sigma = np.float32(A.NOISE_SIGMA_HU)
    for n, k0 in enumerate(range(0, nz, slab)):
        k1 = min(nz, k0 + slab)
        z_mm = Z_START_MM + sz * np.arange(k0 - margin, k1 + margin, dtype=np.float64)
        hu_box, lab_box, rows, cols = _render_slab(model, x_mm, y_mm, z_mm, h_mm, margin)
        out = np.full((k1 - k0, ny, nx), A.HU_AIR, dtype=np.float32)
        out[:, rows, cols] = hu_box
        for k in range(k0, k1):
            rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5EED, k]))
            out[k - k0] += rng.standard_normal((ny, nx), dtype=np.float32) * sigma
        np.rint(out, out=out)
        np.clip(out, HU_FLOOR, HU_CEIL, out=out)
        hu_out[k0:k1] = out
        lab_out[k0:k1, rows, cols] = lab_box
        report(progress, 0.02 + 0.96 * (n + 1) / n_slabs, f"phantom ({size}): slices {k1}/{nz}")
    t_raster = time.perf_counter()
    landmarks = _landmarks(model)
    if feet_first:
        # A feet-first scanner stores slice 0 at the knee: same LPS anatomy, k reversed.
        hu_out = np.ascontiguousarray(hu_out[::-1])
        lab_out = np.ascontiguousarray(lab_out[::-1])
        m = affine.copy()
        m[:3, 3] = affine[:3, :3] @ np.array([0.0, 0.0, nz - 1.0]) + affine[:3, 3]
        m[:3, 2] = -affine[:3, 2]
        affine = m
    volume = Volume(
        hu=hu_out,
        spacing_mm=spec.spacing_mm,
        ijk_to_lps=affine,
        description=f"Lower-leg CTA phantom ({size}, seed {seed})",
        source="phantom",
        metadata={
            "modality": "CT",
            "manufacturer": "vessel-viewer phantom",
            "body_part": "LEG",
            "laterality": "L",
            "patient_position": "FFS" if feet_first else "HFS",
            "phantom_size": size,
            "phantom_seed": int(seed),
            "synthetic": True,
        },
    )
    t_end = time.perf_counter()
    report(progress, 1.0, f"phantom ({size}): done")
    return Phantom(
        volume=volume,
        labels=lab_out,
        legend=dict(LEGEND),
        landmarks=landmarks,
        size=size,
        seed=int(seed),
        feet_first=bool(feet_first),
        timings_s={
            "model_s": t_model - t_start,
            "voxels_s": t_raster - t_model,
            "landmarks_s": t_end - t_raster,
            "total_s": t_end - t_start,
        },
    )
