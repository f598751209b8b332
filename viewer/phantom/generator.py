"""Voxelising the lower-leg phantom: sizes, the ``Phantom`` value object, ``generate``.

The volume is built in slabs of axial slices (bounded memory, progress and cancel
between slabs). Inside a slab every tissue is composited with its partial-volume
fraction (:mod:`viewer.phantom.raster`), structures are evaluated only inside their own
bounding boxes (each leg's box for skin/fat/muscle, each bone's box, the mass's box,
each vessel segment's box, each plaque's box), then a Gaussian point-spread blur is
applied (the slab carries a few extra slices on each side so the blur has real anatomy
there, not an edge) and finally the noise, drawn per slice from generators seeded with
``(seed, slice index)`` so the result does not depend on the slab size.

Two phantoms share this code. The default one (issue 8) is meant to fail a naive
threshold method the way real run-off CTA does: both legs in the field of view on a CT
couch, calcified plaques in the arteries, enhancing deep veins, nutrient arteries
entering the tibial cortex, low-density cancellous bone with a thin cortex at the knee
and ankle touching arteries, and correlated (CT-like) noise with a weak streak.
``clean=True`` gives the earlier phantom (one leg, none of these, white noise, its own
narrower field of view), bit for bit, for comparison.

The right leg is the left leg's anatomy (without mass, erosion, collaterals and
nutrient arteries) seen through a mirror: it is rendered in left-leg coordinates on
the mirrored, x-reversed grid columns (:func:`viewer.phantom.anatomy.right_of_left`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from viewer.core.errors import ViewerError
from viewer.core.progress import ProgressFn, report
from viewer.core.volume import Volume, axis_aligned_affine
from viewer.phantom import anatomy as A
from viewer.phantom.raster import TubeSet, composite, composite_sparse, ramp

#: Label values of the ground-truth volume. Stable: saved files and other modules rely
#: on them. The clean phantom uses 0-9 only (:data:`CLEAN_LEGEND`).
LEGEND: Mapping[str, int] = {
    "background": 0,
    "skin": 1,
    "fat": 2,
    "muscle": 3,
    "bone": 4,  # mineralised bone: cortex (and, in the clean phantom, trabecular bone)
    "marrow": 5,  # fatty marrow of the diaphyseal medullary cavity
    "artery": 6,  # popliteal, anterior tibial, tibioperoneal trunk, posterior tibial, peroneal
    "collateral": 7,  # collateral branches around the eroded segment
    "calcification": 8,  # calcified rim of the myonecrosis mass
    "mass": 9,  # liquefied contents of the mass
    "table": 10,  # CT couch: carbon-fibre tabletop, foam core, mattress (outside the body)
    "plaque": 11,  # calcified plaques on the arterial walls (both legs)
    "vein": 12,  # deep veins (venae comitantes) and popliteal vein (both legs)
    "nutrient": 13,  # nutrient arteries entering the tibial cortex near the erosion
    "trabecular": 14,  # low-density cancellous bone of the left tibia and fibula ends
    "other_bone": 15,  # right leg: tibia and fibula, cortex and cancellous bone
    "other_artery": 16,  # right leg: main arteries
}
CLEAN_LEGEND: Mapping[str, int] = {k: v for k, v in LEGEND.items() if v <= 9}

#: What each label of the clean phantom holds and its HU before blur and noise.
CLEAN_LEGEND_HU: Mapping[str, str] = {
    "background": f"air, {A.HU_AIR:.0f} HU",
    "skin": f"skin (dermis), {A.HU_SKIN:.0f} HU, {A.SKIN_MM} mm thick",
    "fat": f"subcutaneous fat, {A.HU_FAT:.0f} HU",
    "muscle": f"skeletal muscle, {A.HU_MUSCLE:.0f} HU",
    "bone": (
        "cortical bone 1350-1600 HU (densest mid-shaft); trabecular bone 320-550 HU in the metaphyses and epiphyses"
    ),
    "marrow": f"fatty marrow of the diaphysis, {A.HU_MARROW:.0f} HU",
    "artery": f"contrast-filled main arteries, {A.HU_BLOOD_CONTRAST:.0f} HU, 2.3-5.4 mm",
    "collateral": f"contrast-filled collateral branches, {A.HU_COLLATERAL:.0f} HU, 0.8-2.0 mm",
    "calcification": (
        f"plaque-like calcified rim of the mass, {A.RIM_HU_MIN:.0f}-{A.RIM_HU_MAX:.0f} HU, "
        f"{A.RIM_MIN_MM}-{A.RIM_MAX_MM} mm thick"
    ),
    "mass": f"liquefied contents of the mass, {A.HU_MASS_FLUID - 5:.0f}-{A.HU_MASS_FLUID + 5:.0f} HU",
}

#: The same for the default phantom (all labels).
LEGEND_HU: Mapping[str, str] = {
    **CLEAN_LEGEND_HU,
    "bone": (
        "cortical bone, 1350-1600 HU on the shaft (densest mid-shaft), thinning to "
        f"{A.END_CORTEX_MM} mm at {A.END_CORTEX_HU:.0f} HU at the knee and ankle ends; "
        "the left leg's cancellous bone is label trabecular"
    ),
    "table": (
        f"CT couch under both legs: mattress {A.TABLE_PAD_MM:g} mm at {A.HU_PAD:.0f} HU; curved tabletop "
        f"{A.TABLE_THICKNESS_MM:g} mm, carbon-fibre skins {A.TABLE_SKIN_MM:g} mm at {A.HU_TABLE_SKIN:.0f} HU "
        f"around a foam core at {A.HU_TABLE_FOAM:.0f} HU"
    ),
    "plaque": (
        f"calcified plaques, {A.HU_PLAQUE_MIN:.0f}-{A.HU_PLAQUE_MAX:.0f} HU, 3-6 mm long, eccentric on the wall of "
        "the popliteal, tibioperoneal trunk, posterior tibial and peroneal arteries (both legs); "
        "the lumen stays open"
    ),
    "vein": (
        f"deep veins at venous enhancement: popliteal vein {A.HU_VEIN_POPLITEAL:.0f} HU (6-7 mm), paired venae "
        f"comitantes of the anterior tibial, posterior tibial and peroneal arteries {A.HU_VEIN_DEEP:.0f} HU "
        "(3-4.2 mm); both legs"
    ),
    "nutrient": (
        f"nutrient arteries of the tibia, {A.HU_NUTRIENT:.0f} HU, 0.8-1.4 mm, from the posterior tibial artery or a "
        "collateral obliquely through the cortex into the marrow near the erosion "
        "(entries: landmark nutrient_entry_lps)"
    ),
    "trabecular": (
        f"cancellous bone of the left tibia and fibula (knee and ankle ends), {A.TRAB_LOW_HU:.0f}-"
        f"{A.TRAB_LOW_HU + A.TRAB_LOW_SUBCHONDRAL_HU:.0f} HU, in contact with the popliteal, posterior and "
        "anterior tibial arteries"
    ),
    "other_bone": "right leg: tibia and fibula, cortex and cancellous bone (HU as bone + trabecular)",
    "other_artery": f"right leg: contrast-filled main arteries, {A.HU_BLOOD_CONTRAST:.0f} HU",
}


def legend_hu(clean: bool = False) -> Mapping[str, str]:
    """Label name -> what it holds and its HU, for the default or the clean phantom."""
    return CLEAN_LEGEND_HU if clean else LEGEND_HU


@dataclass(frozen=True)
class PhantomSize:
    """A voxel grid for the phantom: ``shape`` (nz, ny, nx), ``spacing_mm`` (x, y, z)."""

    name: str
    shape: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]
    slab_slices: int


#: Grids of the default phantom: both legs and the couch (252 x 156 mm at small and
#: default size; the large one is a real-size 512 x 512 reconstruction, 348 mm field
#: of view, 1024 thin slices).
SIZES: Mapping[str, PhantomSize] = {
    # about 1.5 mm voxels: fast, for tests
    "small": PhantomSize("small", (218, 104, 168), (1.5, 1.5, 1.75), 64),
    # a typical run-off CTA reconstruction: 0.7 mm in-plane, 1 mm slices
    "default": PhantomSize("default", (380, 224, 360), (0.7, 0.7, 1.0), 48),
    # real size for benchmarks: 512 x 512 x 1024, 0.68 mm in-plane, 0.375 mm slices
    "large": PhantomSize("large", (1024, 512, 512), (0.68, 0.68, 0.375), 32),
}
#: Grids of the clean phantom (one leg): the earlier sizes.
CLEAN_SIZES: Mapping[str, PhantomSize] = {
    "small": PhantomSize("small", (218, 96, 96), (1.5, 1.5, 1.75), 64),
    "default": PhantomSize("default", (380, 224, 224), (0.7, 0.7, 1.0), 48),
    "large": PhantomSize("large", (640, 512, 512), (0.3, 0.3, 0.6), 24),
}

#: Lowest slice centre (mm): 4 mm below the ankle joint.
Z_START_MM = A.ANKLE_Z_MM - 4.0
#: Default phantom: the field of view is centred between the legs (the mirror plane),
#: from just in front of the shins to just under the couch.
FOV_CENTRE_XY_MM = (A.MIRROR_X_MM, 44.0)
#: Clean phantom: centred a little posterior of the leg axis (the calf bulges).
CLEAN_FOV_CENTRE_XY_MM = (A.LEG_AXIS_XY_MM[0], A.LEG_AXIS_XY_MM[1] + 8.0)
#: Point-spread blur, standard deviation in voxels along (z, y, x).
PSF_SIGMA_VOX = (0.5, 0.5, 0.5)
_PSF_TRUNCATE = 4.0
#: CT-like noise: white noise filtered in-plane to the noise power spectrum of
#: filtered back-projection (a ramp, |f|, rolled off by a Hann window that reaches
#: zero at NOISE_CUTOFF of the Nyquist frequency: neighbouring voxels correlate, low
#: frequencies are damped, a faint negative lobe 3-5 voxels out gives the familiar
#: texture) and by a short Gaussian along z (slice overlap), rescaled to
#: NOISE_CT_SIGMA_HU. In voxel units: a coarser grid is reconstructed with a
#: proportionally smoother kernel.
NOISE_CUTOFF = 0.7
NOISE_SIGMA_Z_VOX = 0.6
_NOISE_Z_RADIUS = 2
#: Scanners store CT numbers from -1024 (12-bit range with intercept -1024).
HU_FLOOR = -1024
HU_CEIL = 3071


@dataclass(frozen=True, eq=False)
class Phantom:
    """A synthetic lower-leg CT angiogram with its exact ground truth.

    Attributes:
        volume: the CT (int16 HU, ``(nz, ny, nx)``, ``ijk_to_lps``; the default
            phantom shows both lower legs, the LEFT one with the lesion, on a CT couch;
            the clean one the left leg alone; axial slices; head-first: k runs
            inferior -> superior, slice 0 at the ankle; feet-first: the same anatomy
            with the slice order reversed).
        labels: uint8 ground truth on the same grid; values in ``legend``; a voxel's
            label is the tissue owning the largest share of it before blur.
        legend: label name -> value (see :data:`LEGEND`; clean: :data:`CLEAN_LEGEND`).
        landmarks: positions in LPS mm (see :func:`generate`).
        size, seed, feet_first, clean: how it was made.
        timings_s: seconds spent per stage.
        legend_hu: label name -> what it holds and its HU.
    """

    volume: Volume
    labels: np.ndarray
    legend: Mapping[str, int]
    landmarks: Mapping[str, Any]
    size: str = "default"
    seed: int = 0
    feet_first: bool = False
    timings_s: Mapping[str, float] = field(default_factory=dict)
    clean: bool = False
    legend_hu: Mapping[str, str] = field(default_factory=lambda: dict(LEGEND_HU))
    textured_bone: bool = False


@dataclass(frozen=True)
class _LegLabels:
    """Label values a leg is painted with (the right leg paints its bone and
    arteries with other_bone / other_artery)."""

    bone: int = LEGEND["bone"]
    trabecular: int = LEGEND["trabecular"]
    marrow: int = LEGEND["marrow"]
    artery: int = LEGEND["artery"]
    collateral: int = LEGEND["collateral"]
    calcification: int = LEGEND["calcification"]
    mass: int = LEGEND["mass"]
    vein: int = LEGEND["vein"]
    nutrient: int = LEGEND["nutrient"]
    plaque: int = LEGEND["plaque"]


_LEFT_CLEAN = _LegLabels(trabecular=LEGEND["bone"])
_LEFT = _LegLabels()
_RIGHT = _LegLabels(bone=LEGEND["other_bone"], trabecular=LEGEND["other_bone"], artery=LEGEND["other_artery"])


@dataclass(frozen=True)
class _Model:
    """One leg, in left-leg coordinates."""

    mass: A.MassModel | None
    vessels: tuple[A.Vessel, ...]  # arteries and collaterals
    arteries: TubeSet
    collaterals: TubeSet | None
    veins: tuple[tuple[TubeSet, float], ...] = ()
    nutrients: TubeSet | None = None
    plaques: tuple[A.Plaque, ...] = ()
    bumps: A.ContactBumps | None = None
    realistic_ends: bool = False
    extra_vessels: tuple[A.Vessel, ...] = ()  # veins and nutrient arteries
    exact_sheets: bool = False  # area-conserving thin septa (see _paint_leg)
    #: amplitude (HU, standard deviation before blur) of the trabecular texture of the
    #: cancellous bone (see _trabecular_texture); 0: smooth, as the clean phantom
    trabecular_texture_hu: float = 0.0


@dataclass(frozen=True)
class _Scene:
    left: _Model
    right: _Model | None = None
    table: A.TableModel | None = None

    @property
    def clean(self) -> bool:
        return self.right is None and self.table is None


#: Standard deviation (HU, before the blur) of the cancellous bone's texture in the
#: default phantom (real cancellous bone is textured: local 3x3x3 spread 70-160 HU on
#: the real chest CT at 1 mm; a lumen is homogeneous).
TRABECULAR_TEXTURE_HU = 110.0
#: Wavelengths (mm) of the texture's plane waves (trabeculae and their spacing, 0.5-2 mm).
_TEXTURE_WAVELENGTHS_MM = (1.2, 1.5, 1.8, 2.1, 2.5, 3.0, 1.4, 2.3)


def _texture_waves() -> tuple[np.ndarray, np.ndarray]:
    """Wave vectors (rad/mm, (n, 3)) and phases of the trabecular texture: fixed
    (their own seed), so the texture at a point does not depend on the slab or size."""
    rng = np.random.default_rng(np.random.SeedSequence([0x7E37]))
    n = len(_TEXTURE_WAVELENGTHS_MM)
    d = rng.normal(size=(n, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    k = d * (2.0 * np.pi / np.asarray(_TEXTURE_WAVELENGTHS_MM))[:, None]
    return k, rng.uniform(0.0, 2.0 * np.pi, n)


def _trabecular_texture(x: np.ndarray, y: np.ndarray, z: np.ndarray, sd_hu: float) -> np.ndarray:
    """A deterministic texture of zero mean and standard deviation ``sd_hu`` at the
    points (x, y, z) (mm, broadcastable): a sum of plane waves."""
    k, phase = _texture_waves()
    out = np.zeros(np.broadcast_shapes(x.shape, y.shape, z.shape), dtype=np.float32)
    for (kx, ky, kz), ph in zip(k, phase, strict=True):
        out += np.cos(np.float32(kx) * x + np.float32(ky) * y + np.float32(kz) * z + np.float32(ph))
    out *= np.float32(sd_hu * np.sqrt(2.0 / len(phase)))
    return out


def _tubes(vs) -> TubeSet:
    return TubeSet([(v.points_lps, v.radii_mm) for v in vs])


def _build_model(seed: int) -> _Model:
    """The clean phantom's left leg (its random stream is shared with the default
    phantom, so mass, collaterals and landmarks are the same in both)."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x1E6]))
    mass = A.make_mass(rng)
    arteries = A.main_arteries()
    cols = A.collaterals(arteries, mass, rng)
    return _Model(
        mass=mass,
        vessels=tuple(arteries + cols),
        arteries=_tubes(arteries),
        collaterals=_tubes(cols),
    )


def _vein_tubes(veins: list[A.Vessel]) -> tuple[tuple[TubeSet, float], ...]:
    by_hu: dict[float, list[A.Vessel]] = {}
    for v in veins:
        by_hu.setdefault(float(v.meta["hu"]), []).append(v)
    return tuple((_tubes(vs), hu) for hu, vs in sorted(by_hu.items()))


@lru_cache(maxsize=8)
def _build_scene(seed: int, clean: bool, textured_bone: bool = False) -> _Scene:
    """All analytic parts of a phantom (cached: a few tenths of a second to build and
    the same for every size). ``textured_bone``: cancellous bone with a trabecular
    texture (see :func:`generate`)."""
    base = _build_model(seed)
    if clean:
        return _Scene(left=base)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x2E8]))
    arteries = [v for v in base.vessels if v.kind == "artery"]
    cols = [v for v in base.vessels if v.kind == "collateral"]
    bumps = A.contact_bumps(arteries)
    veins = A.deep_veins(arteries, base.mass, bumps, rng)
    plaques = A.make_plaques(arteries, A.PLAQUES_LEFT, base.mass, bumps, rng)
    assert base.mass is not None  # _build_model always makes the left leg's lesion
    nutrients = A.nutrient_arteries(arteries + cols, base.mass, rng)
    left = _Model(
        mass=base.mass,
        vessels=base.vessels,
        arteries=base.arteries,
        collaterals=base.collaterals,
        veins=_vein_tubes(veins),
        nutrients=_tubes(nutrients),
        plaques=tuple(plaques),
        bumps=bumps,
        realistic_ends=True,
        extra_vessels=tuple(veins + nutrients),
        exact_sheets=True,
        trabecular_texture_hu=TRABECULAR_TEXTURE_HU if textured_bone else 0.0,
    )
    r_veins = A.deep_veins(arteries, None, bumps, rng)
    r_plaques = A.make_plaques(arteries, A.PLAQUES_RIGHT, None, bumps, rng)
    right = _Model(
        mass=None,
        vessels=tuple(arteries),
        arteries=base.arteries,
        collaterals=None,
        veins=_vein_tubes(r_veins),
        plaques=tuple(r_plaques),
        bumps=bumps,
        realistic_ends=True,
        extra_vessels=tuple(r_veins),
        exact_sheets=True,
        trabecular_texture_hu=TRABECULAR_TEXTURE_HU if textured_bone else 0.0,
    )
    return _Scene(left=left, right=right, table=A.make_table())


def _axis(origin: float, step: float, n: int) -> np.ndarray:
    return origin + step * np.arange(n, dtype=np.float64)


def _index_range(lo_mm: float, hi_mm: float, coords: np.ndarray) -> tuple[int, int]:
    """Indices ``[i0, i1)`` of ascending ``coords`` inside ``[lo, hi]`` (clipped)."""
    i0 = int(np.searchsorted(coords, lo_mm, side="left"))
    i1 = int(np.searchsorted(coords, hi_mm, side="right"))
    return max(i0, 0), min(i1, len(coords))


def _leg_extent(sp: A.SliceParams, pad: float) -> tuple[float, float, float, float]:
    """(x lo, x hi, y lo, y hi) of the leg outline over the slices, grown by ``pad``."""
    leg = sp.leg
    return (
        float(np.min(leg[:, 0] - leg[:, 2])) - pad,
        float(np.max(leg[:, 0] + leg[:, 2])) + pad,
        float(np.min(leg[:, 1] - leg[:, 3])) - pad,
        float(np.max(leg[:, 1] + leg[:, 3])) + pad,
    )


def _paint_leg(
    model: _Model,
    L: _LegLabels,
    hu: np.ndarray,
    lab: np.ndarray,
    w: np.ndarray,
    xs: np.ndarray,
    ys: np.ndarray,
    z_mm: np.ndarray,
    h_mm: float,
    sp: A.SliceParams,
) -> None:
    """Composite one leg over what ``hu``/``lab``/``w`` (views of shape
    ``(len(z), len(ys), len(xs))``) hold, in the leg's own (left-leg) coordinates
    ``xs``, ``ys``, ``z_mm`` (ascending)."""
    nz, ny, nx = len(z_mm), len(ys), len(xs)
    f32 = np.float32
    leg = sp.leg

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
            if model.exact_sheets:
                # a sheet thinner than a voxel: the profile of a voxel-thick sheet scaled
                # by the thickness ratio (its amount of fat is right, and a septum of
                # zero thickness, where it fades out, paints nothing)
                half = col(0.5 * thick * wz)
                he = np.maximum(half, f32(0.5 * h_mm))
                f = ramp(dist - he, h_mm) * (half / he)
            else:
                # the clean phantom's rasterisation, kept bit for bit: a faded-out
                # septum still paints a faint line (up to half a voxel of fat) on the
                # slices of a slab where another slice has septa
                f = ramp(dist - col(0.5 * thick * wz), h_mm)
            f *= d_fascia[box] < 0.0  # only inside the muscle compartments
            composite(hu[box], lab[box], w[box], f, A.HU_FAT, LEGEND["fat"])

    mass = model.mass
    pad = 4.0 * max(xs[1] - xs[0], ys[1] - ys[0]) + h_mm
    if mass is not None:
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
    bumps = model.bumps
    for bone in ("tibia", "fibula"):
        if bone == "tibia":
            p = sp.tibia
            rmax = np.maximum(p[:, 2], p[:, 3]) * (1.0 + np.abs(p[:, 5])) + pad
            if bumps is not None:
                rmax = rmax + _bump_max(bumps, sp.t)
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
            if bumps is not None:
                rad = rad + bumps.radius_add(sp.t[bk], c, s)
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
        if mass is not None and zb[-1] >= m_lo[2] and zb[0] <= m_hi[2]:
            # smooth cortical pressure erosion where the mass lies against the bone:
            # the bone surface follows the mass (less a thin gap), and a remodelled
            # cortex of EROSION_LINING_MM lines the defect over the marrow
            d_ind = mass.sd(bx, by, col(zb)).astype(f32) - f32(A.EROSION_GAP_MM)
            np.maximum(d_out, -d_ind, out=d_out)
            np.maximum(d_endo, f32(A.EROSION_LINING_MM) - d_ind, out=d_endo)
        sub = (hu[box], lab[box], w[box])
        composite(*sub, ramp(d_out, h_mm), col(sp.cortex_hu[bk]), L.bone)
        rho = trab[bk]
        inner_hu = A.HU_MARROW * (1.0 - rho) + sp.trab_hu[bk] * rho
        inner_cls = np.where(rho >= 0.5, L.trabecular, L.marrow).astype(np.uint8)[:, None, None]
        inner = col(inner_hu)
        if model.trabecular_texture_hu > 0 and (rho > 0).any():
            tex = _trabecular_texture(bx, by, col(zb).astype(f32), model.trabecular_texture_hu)
            inner = inner + tex * col(rho).astype(f32)
        composite(*sub, ramp(d_endo, h_mm), inner, inner_cls)

    # --- the calcific myonecrosis mass: calcified rim over liquefied contents ---------
    if mass is not None:
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
            composite(*sub, ramp(d, h_mm), mass.rim_hu(mx, my, mz).astype(f32), L.calcification)
            d += mass.rim_thickness(mx, my, mz).astype(f32)
            composite(*sub, ramp(d, h_mm), np.broadcast_to(mass.fluid_hu(mx, my, mz), d.shape).astype(f32), L.mass)
    del d_fascia

    # --- vessels: veins, collaterals, nutrient arteries, then the main arteries -------
    layers: list[tuple[TubeSet, float, int]] = [(t, hu_v, L.vein) for t, hu_v in model.veins]
    if model.collaterals is not None:
        layers.append((model.collaterals, A.HU_COLLATERAL, L.collateral))
    if model.nutrients is not None:
        layers.append((model.nutrients, A.HU_NUTRIENT, L.nutrient))
    layers.append((model.arteries, A.HU_BLOOD_CONTRAST, L.artery))
    for tubes, value, cls in layers:
        frac = np.zeros((nz, ny, nx), dtype=f32)
        tbox = tubes.rasterise(frac, xs, ys, z_mm, h_mm)
        if tbox is not None:
            composite_sparse(hu[tbox], lab[tbox], w[tbox], frac[tbox], value, cls)
        del frac

    # --- calcified plaques on the arterial walls, over the lumen they reach into ------
    for pl in model.plaques:
        lo, hi = pl.bbox_lps(pad_mm=h_mm)
        box = box_of(lo[:2], hi[:2], (z_mm >= lo[2]) & (z_mm <= hi[2]))
        if box is None:
            continue
        bk, bj, bi = box
        d = pl.sd(xs[bi][None, None, :], ys[bj][None, :, None], z_mm[bk][:, None, None])
        f = ramp(d, h_mm)
        if f.any():
            composite(hu[box], lab[box], w[box], f, pl.hu, L.plaque)


def _bump_max(bumps: A.ContactBumps, t: np.ndarray) -> np.ndarray:
    """Largest radial bulge at each height (for bounding boxes)."""
    return np.sum([np.interp(t, bumps.t, a, left=0.0, right=0.0) for a in bumps.amp], axis=0)


def _paint_table(
    table: A.TableModel, xs: np.ndarray, ys: np.ndarray, h_mm: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The couch on one axial plane: (hu, labels, weights) of shape (len(ys), len(xs));
    it is the same on every slice."""
    f32 = np.float32
    rho = table.rho(xs[None, :], ys[:, None]).astype(f32)
    hu = np.full(rho.shape, A.HU_AIR, dtype=f32)
    lab = np.zeros(rho.shape, dtype=np.uint8)
    w = np.ones(rho.shape, dtype=f32)
    for radius, value, name in table.layers():
        # a layer fills everything beyond its radius (posterior of the arc)
        composite(hu, lab, w, ramp(f32(radius) - rho, h_mm), value, LEGEND[name])
    return hu, lab, w


def _render_slab(
    scene: _Scene,
    x_mm: np.ndarray,
    y_mm: np.ndarray,
    z_mm: np.ndarray,
    h_mm: float,
    margin: int,
) -> tuple[np.ndarray, np.ndarray, slice, slice]:
    """HU (float32, blurred, no noise) and labels of the slices ``z_mm`` inside the
    box that holds everything that is not air (the leg's box for the clean phantom;
    both legs and the couch otherwise). ``z_mm`` includes ``margin`` extra slices each
    side for the blur, which are cut off on return. Returns ``(hu, labels, rows,
    cols)`` with the box's index ranges in the full slice."""
    nz = len(z_mm)
    f32 = np.float32
    pad = 4.0 * max(x_mm[1] - x_mm[0], y_mm[1] - y_mm[0]) + h_mm
    sp_l = A.slice_params(z_mm, realistic_ends=scene.left.realistic_ends)
    ex = _leg_extent(sp_l, pad)
    i0, i1 = _index_range(ex[0], ex[1], x_mm)
    j0, j1 = _index_range(ex[2], ex[3], y_mm)
    boxes = [(i0, i1, j0, j1)]
    if scene.right is not None:
        z_r = z_mm - A.RIGHT_LEG_Z_SHIFT_MM  # the left-leg heights the right leg shows
        sp_r = A.slice_params(z_r, realistic_ends=scene.right.realistic_ends)
        er = _leg_extent(sp_r, pad)
        ri0, ri1 = _index_range(2.0 * A.MIRROR_X_MM - er[1], 2.0 * A.MIRROR_X_MM - er[0], x_mm)
        rj0, rj1 = _index_range(er[2], er[3], y_mm)
        boxes.append((ri0, ri1, rj0, rj1))
    table_planes = None
    if scene.table is not None:
        t_hu, t_lab, t_w = _paint_table(scene.table, x_mm, y_mm, h_mm)
        rows = np.nonzero((t_lab != 0).any(axis=1) | (t_hu != f32(A.HU_AIR)).any(axis=1))[0]
        if rows.size:
            tj0 = max(int(rows[0]) - 4, 0)
            tj1 = min(int(rows[-1]) + 5, len(y_mm))
            boxes.append((0, len(x_mm), tj0, tj1))
            table_planes = (t_hu, t_lab, t_w)
    boxes = [b for b in boxes if b[0] < b[1] and b[2] < b[3]]
    if not boxes:
        boxes = [(0, 1, 0, 1)]
    c0 = min(b[0] for b in boxes)
    c1 = max(b[1] for b in boxes)
    r0 = min(b[2] for b in boxes)
    r1 = max(b[3] for b in boxes)
    shape = (nz, r1 - r0, c1 - c0)
    hu = np.full(shape, A.HU_AIR, dtype=f32)
    lab = np.zeros(shape, dtype=np.uint8)
    w = np.ones(shape, dtype=f32)
    if table_planes is not None:
        t_hu, t_lab, t_w = (a[r0:r1, c0:c1] for a in table_planes)
        hu[:] = t_hu
        lab[:] = t_lab
        w[:] = t_w

    def view(a, b):
        return a[:, b[2] - r0 : b[3] - r0, b[0] - c0 : b[1] - c0]

    left_box = (i0, i1, j0, j1)
    if i0 < i1 and j0 < j1:
        L = _LEFT_CLEAN if scene.clean else _LEFT
        _paint_leg(
            scene.left,
            L,
            view(hu, left_box),
            view(lab, left_box),
            view(w, left_box),
            x_mm[i0:i1],
            y_mm[j0:j1],
            z_mm,
            h_mm,
            sp_l,
        )
    if scene.right is not None and ri0 < ri1 and rj0 < rj1:
        rb = (ri0, ri1, rj0, rj1)
        # mirrored: grid column i shows left-leg x = 2 MIRROR_X - x_i; reversed, the
        # left-leg coordinates ascend, and so do the views' columns
        xs_l = 2.0 * A.MIRROR_X_MM - x_mm[ri0:ri1][::-1]
        _paint_leg(
            scene.right,
            _RIGHT,
            view(hu, rb)[:, :, ::-1],
            view(lab, rb)[:, :, ::-1],
            view(w, rb)[:, :, ::-1],
            xs_l,
            y_mm[rj0:rj1],
            z_r,
            h_mm,
            sp_r,
        )
    del w
    # --- the scanner's point-spread function (partial-volume blur) --------------------
    hu = ndi.gaussian_filter(hu, PSF_SIGMA_VOX, mode="nearest", truncate=_PSF_TRUNCATE)
    keep = slice(margin, nz - margin)
    return hu[keep], lab[keep], slice(r0, r1), slice(c0, c1)


def _landmarks(scene: _Scene) -> dict[str, Any]:
    """Ground-truth positions (LPS mm) computed from the analytic model, not voxels."""
    out = _clean_landmarks(scene.left)
    if scene.clean:
        return out
    left, right, table = scene.left, scene.right, scene.table
    assert right is not None and table is not None
    veins = [v for v in left.extra_vessels if v.kind == "vein"]
    nutrients = [v for v in left.extra_vessels if v.kind == "nutrient"]
    for v in veins + nutrients:
        out["centerlines_lps"][v.name] = v.points_lps.copy()
        out["vessel_radii_mm"][v.name] = v.radii_mm.copy()
    out["veins"] = [v.name for v in veins]
    out["nutrients"] = [v.name for v in nutrients]
    out["nutrient_parents"] = {v.name: v.parent for v in nutrients}
    out["nutrient_entry_lps"] = [tuple(float(c) for c in v.meta["entry_lps"]) for v in nutrients]

    def plaque_doc(p: A.Plaque, leg: str) -> dict[str, Any]:
        c, on = p.centre_lps, p.on_centerline_lps
        if leg == "right":
            c, on = A.right_of_left(c), A.right_of_left(on)
        return {
            "leg": leg,
            "vessel": p.vessel,
            "center_lps": tuple(float(v) for v in c),
            "centerline_point_lps": tuple(float(v) for v in on),
            "length_mm": float(2.0 * p.semi_mm[0]),
            "thickness_mm": float(2.0 * p.semi_mm[1]),
            "intrusion_mm": p.intrusion_mm,
            "lumen_radius_mm": float(p.lumen_radius_mm),
            "hu": float(p.hu),
        }

    plaques = [plaque_doc(p, "left") for p in left.plaques] + [plaque_doc(p, "right") for p in right.plaques]
    out["plaques"] = plaques
    out["plaque_centers_lps"] = [p["center_lps"] for p in plaques]
    xl = A.LEG_AXIS_XY_MM[0]
    out["table_top_y_mm"] = float(table.top_y(xl))
    out["table"] = {
        "arc_centre_xy_mm": tuple(float(v) for v in table.centre_xy),
        "mattress_radius_mm": float(table.radius_mm),
        "mattress_mm": float(table.pad_mm),
        "tabletop_mm": float(table.thickness_mm),
        "skin_mm": float(table.skin_mm),
        "mattress_top_y_at_legs_mm": float(table.top_y(xl)),
        "mattress_top_y_midline_mm": float(table.top_y(A.MIRROR_X_MM)),
        "tabletop_y_midline_mm": float(table.tabletop_y(A.MIRROR_X_MM)),
        "bottom_y_midline_mm": float(table.bottom_y(A.MIRROR_X_MM)),
    }
    out["right_leg_axis_xy_mm"] = tuple(float(v) for v in A.RIGHT_LEG_AXIS_XY_MM)
    out["right_leg_z_shift_mm"] = float(A.RIGHT_LEG_Z_SHIFT_MM)
    out["mirror_x_mm"] = float(A.MIRROR_X_MM)
    out["right_centerlines_lps"] = {
        v.name: A.right_of_left(v.points_lps) for v in list(right.vessels) + list(right.extra_vessels)
    }
    out["right_vessel_radii_mm"] = {v.name: v.radii_mm.copy() for v in list(right.vessels) + list(right.extra_vessels)}
    out["right_arteries"] = [v.name for v in right.vessels]
    out["right_veins"] = [v.name for v in right.extra_vessels]
    # where the low-density bone ends touch arteries: heights (inside the field of
    # view) where the artery wall is within 1 mm of the bone surface
    contacts = {}
    by_name = {v.name: v for v in left.vessels}
    for name, *_rest in A.CONTACTS:
        v = by_name[name]
        gap = A.bone_sd_points(v.points_lps, left.mass, left.bumps) - v.radii_mm
        zz = v.points_lps[(gap <= 1.0), 2]
        zz = zz[(zz >= Z_START_MM) & (zz <= A.KNEE_Z_MM)]
        if zz.size:
            contacts[name] = (float(zz.min()), float(zz.max()))
    out["bone_contact_z_mm"] = contacts
    return out


def _clean_landmarks(model: _Model) -> dict[str, Any]:
    """Ground-truth positions (LPS mm) computed from the analytic model, not voxels."""
    mass = model.mass
    assert mass is not None  # the left leg (the one these landmarks describe) has the lesion
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
    clean: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Noise-free HU (float32) and labels of the phantom's anatomy on any axis-aligned
    grid of voxel centres (ascending, evenly spaced LPS coordinates in mm), e.g. a
    fine-resolution crop for checking small structures without building the whole
    volume. Same anatomy and labelling rules as :func:`generate` (no noise, no
    streak)."""
    x_mm, y_mm, z_mm = (np.asarray(a, dtype=np.float64) for a in (x_mm, y_mm, z_mm))
    steps = [float(a[1] - a[0]) if len(a) > 1 else 1.0 for a in (x_mm, y_mm, z_mm)]
    if min(steps) <= 0:
        raise ViewerError("render_region needs ascending coordinates")
    scene = _build_scene(int(seed), bool(clean))
    h_mm = float(np.prod(steps) ** (1.0 / 3.0))
    margin = int(_PSF_TRUNCATE * max(PSF_SIGMA_VOX) + 0.5)
    z_ext = z_mm[0] + steps[2] * np.arange(-margin, len(z_mm) + margin)
    hu_box, lab_box, rows, cols = _render_slab(scene, x_mm, y_mm, z_ext, h_mm, margin)
    hu = np.full((len(z_mm), len(y_mm), len(x_mm)), A.HU_AIR, dtype=np.float32)
    lab = np.zeros(hu.shape, dtype=np.uint8)
    hu[:, rows, cols] = hu_box
    lab[:, rows, cols] = lab_box
    return hu, lab


def phantom_grid(size: str = "default", clean: bool = False) -> tuple[PhantomSize, np.ndarray]:
    """The size record and the head-first ``ijk_to_lps`` of a phantom size."""
    sizes = CLEAN_SIZES if clean else SIZES
    if size not in sizes:
        raise ViewerError(f"unknown phantom size {size!r}; choose one of {', '.join(sizes)}")
    spec = sizes[size]
    nz, ny, nx = spec.shape
    sx, sy, sz = spec.spacing_mm
    centre = CLEAN_FOV_CENTRE_XY_MM if clean else FOV_CENTRE_XY_MM
    origin = (
        round(centre[0] - 0.5 * (nx - 1) * sx, 6),
        round(centre[1] - 0.5 * (ny - 1) * sy, 6),
        Z_START_MM,
    )
    return spec, axis_aligned_affine(spec.spacing_mm, origin)


@lru_cache(maxsize=8)
def _noise_spectrum(ny: int, nx: int) -> tuple[np.ndarray, float]:
    """In-plane amplitude response of the CT-noise filter on an (ny, nx) slice (for
    ``rfft2``) and the standard deviation it gives unit white noise after the z
    filter too. Noise power ~ |f| W(f)^2: the ramp of filtered back-projection rolled
    off by a Hann window reaching zero at NOISE_CUTOFF of the Nyquist frequency."""
    fy = np.fft.fftfreq(ny)[:, None]
    fx = np.fft.fftfreq(nx)[None, :]
    f = np.sqrt(fx**2 + fy**2) / 0.5  # 1 at the (axis) Nyquist frequency
    fc = NOISE_CUTOFF
    h_full = np.sqrt(f) * np.where(f < fc, 0.5 * (1.0 + np.cos(np.pi * f / fc)), 0.0)
    var_xy = float(np.mean(h_full**2))  # Parseval: variance of filtered unit white noise
    d = np.zeros(2 * _NOISE_Z_RADIUS + 1)
    d[_NOISE_Z_RADIUS] = 1.0
    var_z = float(np.sum(_noise_z(d[:, None, None]) ** 2))
    h = np.ascontiguousarray(h_full[:, : nx // 2 + 1]).astype(np.float32)
    return h, float(np.sqrt(var_xy * var_z))


def _noise_z(white: np.ndarray) -> np.ndarray:
    """The z part of the noise filter: a short Gaussian (slice overlap of a helical
    reconstruction) reaching exactly _NOISE_Z_RADIUS slices."""
    return ndi.gaussian_filter1d(
        white, NOISE_SIGMA_Z_VOX, axis=0, mode="reflect", truncate=_NOISE_Z_RADIUS / NOISE_SIGMA_Z_VOX
    )


def _ct_noise(seed: int, k0: int, k1: int, nz: int, ny: int, nx: int) -> np.ndarray:
    """Correlated noise (HU, float32) for slices ``k0:k1`` of ``nz``: each slice's white
    noise comes from its own generator, seeded ``(seed, slice)``, the z filter reaches
    only _NOISE_Z_RADIUS slices and the in-plane filter works on whole slices, so any
    slab size gives the same values."""
    from scipy import fft as sfft

    m = _NOISE_Z_RADIUS
    a0, a1 = max(0, k0 - m), min(nz, k1 + m)
    white = np.empty((a1 - a0, ny, nx), dtype=np.float32)
    for k in range(a0, a1):
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xC7, k]))
        white[k - a0] = rng.standard_normal((ny, nx), dtype=np.float32)
    n = _noise_z(white)[k0 - a0 : k1 - a0]
    h, gain = _noise_spectrum(ny, nx)
    spec = sfft.rfft2(n, axes=(1, 2), workers=1)
    spec *= h
    n = sfft.irfft2(spec, s=(ny, nx), axes=(1, 2), workers=1).astype(np.float32, copy=False)
    n *= np.float32(A.NOISE_CT_SIGMA_HU / gain)
    return n


def _add_streak(out: np.ndarray, scene: _Scene, x_mm: np.ndarray, y_mm: np.ndarray, z_mm: np.ndarray) -> None:
    """A weak beam-hardening artifact: a dark band along the line joining the two
    tibiae (the densest pair of objects in the slice), stronger where the cortex is
    thick. ``out``: (len(z), ny, nx) HU, in place."""
    sp_l = A.slice_params(z_mm)
    sp_r = A.slice_params(z_mm - A.RIGHT_LEG_Z_SHIFT_MM)
    sigma = 2.5
    for k in range(len(z_mm)):
        p = np.array(sp_l.tibia[k, :2])
        q = np.array([2.0 * A.MIRROR_X_MM - sp_r.tibia[k, 0], sp_r.tibia[k, 1]])
        amp = A.STREAK_HU * min(sp_l.tibia[k, 4], sp_r.tibia[k, 4]) / 5.5
        j0, j1 = _index_range(min(p[1], q[1]) - 4 * sigma, max(p[1], q[1]) + 4 * sigma, y_mm)
        i0, i1 = _index_range(min(p[0], q[0]), max(p[0], q[0]), x_mm)
        if j0 >= j1 or i0 >= i1:
            continue
        u = q - p
        l2 = float(u @ u)
        vx = x_mm[i0:i1][None, :] - p[0]
        vy = y_mm[j0:j1][:, None] - p[1]
        tt = (vx * u[0] + vy * u[1]) / l2
        d2 = (vx - tt * u[0]) ** 2 + (vy - tt * u[1]) ** 2
        taper = A.smoothstep(0.08, 0.25, tt) * (1.0 - A.smoothstep(0.75, 0.92, tt))
        out[k, j0:j1, i0:i1] += (amp * taper * np.exp(-0.5 * d2 / sigma**2)).astype(np.float32)


def generate(
    size: str = "default",
    seed: int = 0,
    feet_first: bool = False,
    progress: ProgressFn | None = None,
    clean: bool = False,
    textured_bone: bool = False,
) -> Phantom:
    """Generate the lower-leg CTA phantom.

    Args:
        size: ``"small"`` (168x104x218, 1.5 mm in-plane, 1.75 mm slices; for tests),
            ``"default"`` (360x224x380, 0.7 mm in-plane, 1 mm slices) or ``"large"``
            (512x512x1024, 0.68 mm, 0.375 mm slices; real size, for benchmarks). All
            cover the same 380 mm, from 4 mm below the ankle joint to the knee joint
            line. (``clean``: 96x96x218, 224x224x380, 512x512x640 at 0.3 mm.)
        seed: seeds the noise and the small random variations (mass lobulation, rim
            pattern, collateral wiggles, vein meanders, plaque and nutrient placement).
            Same seed, same arrays.
        feet_first: store the same anatomy as a feet-first scan would: slice 0 at the
            knee, ``ijk_to_lps``'s k column pointing inferior (decreasing z).
        progress: ``progress(fraction, message)``; may raise
            :class:`~viewer.core.errors.LoadCancelled` to stop.
        clean: the earlier phantom without the confounders (one leg, no couch,
            plaques, veins, nutrient arteries; dense bone ends; white noise), on its
            own narrower grid, labels 0-9 only. Kept for comparison.
        textured_bone: give the cancellous bone a trabecular texture
            (:data:`TRABECULAR_TEXTURE_HU`; median local 3x3x3 spread 64 HU in the
            ``trabecular`` voxels of the default size, real cancellous bone 70-160 HU
            at 1 mm). Not the default yet: the separation holds on it at fine voxels,
            not yet at 1.5 mm (docs/separation.md, "What does not hold yet").
            Ignored with ``clean``.

    Landmarks (LPS mm): ``erosion_box_lps`` ((min x, y, z), (max x, y, z)) around the
    eroded bone and all collaterals; ``eroded_bone_box_lps`` around the eroded bone
    alone; ``mass_center_lps``; ``mass_radius_mm`` (radius of a circle with the area of
    the mass's largest axial cross-section); ``mass_box_lps``; ``centerlines_lps``
    (vessel name -> (N, 3) centre-line points) and ``vessel_radii_mm`` (name -> (N,));
    ``arteries`` and ``collaterals`` (names); joint heights and the leg axis. The
    default phantom adds ``veins``, ``nutrients``, ``nutrient_entry_lps`` (where each
    nutrient artery enters the cortex), ``plaques`` / ``plaque_centers_lps``,
    ``table_top_y_mm`` (mattress surface under the left leg) and ``table``,
    ``right_leg_axis_xy_mm``, ``right_leg_z_shift_mm``, ``mirror_x_mm``,
    ``right_centerlines_lps``, ``right_arteries``, ``right_veins`` and
    ``bone_contact_z_mm``.
    """
    t_start = time.perf_counter()
    spec, affine = phantom_grid(size, clean)
    report(progress, 0.0, f"phantom ({size}): building the anatomy")
    scene = _build_scene(int(seed), bool(clean), bool(textured_bone) and not clean)
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
        hu_box, lab_box, rows, cols = _render_slab(scene, x_mm, y_mm, z_mm, h_mm, margin)
        out = np.full((k1 - k0, ny, nx), A.HU_AIR, dtype=np.float32)
        out[:, rows, cols] = hu_box
        if clean:
            for k in range(k0, k1):
                rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5EED, k]))
                out[k - k0] += rng.standard_normal((ny, nx), dtype=np.float32) * sigma
        else:
            _add_streak(out, scene, x_mm, y_mm, z_mm[margin : len(z_mm) - margin])
            out += _ct_noise(int(seed), k0, k1, nz, ny, nx)
        np.rint(out, out=out)
        np.clip(out, HU_FLOOR, HU_CEIL, out=out)
        hu_out[k0:k1] = out
        lab_out[k0:k1, rows, cols] = lab_box
        report(progress, 0.02 + 0.96 * (n + 1) / n_slabs, f"phantom ({size}): slices {k1}/{nz}")
    t_raster = time.perf_counter()
    landmarks = _landmarks(scene)
    if feet_first:
        # A feet-first scanner stores slice 0 at the knee: same LPS anatomy, k reversed.
        hu_out = np.ascontiguousarray(hu_out[::-1])
        lab_out = np.ascontiguousarray(lab_out[::-1])
        m = affine.copy()
        m[:3, 3] = affine[:3, :3] @ np.array([0.0, 0.0, nz - 1.0]) + affine[:3, 3]
        m[:3, 2] = -affine[:3, 2]
        affine = m
    what = "clean phantom, left leg" if clean else "both legs on the couch"
    if textured_bone and not clean:
        what += ", textured cancellous bone"
    volume = Volume(
        hu=hu_out,
        spacing_mm=spec.spacing_mm,
        ijk_to_lps=affine,
        description=f"Lower-leg CTA phantom ({size}, seed {seed})"
        if clean
        else f"Lower-leg CTA phantom ({size}, seed {seed}, {what})",
        source="phantom",
        metadata={
            "modality": "CT",
            "manufacturer": "vessel-viewer phantom",
            "body_part": "LEG",
            # the leg of interest (the lesion) is the left one in both variants
            "laterality": "L",
            "patient_position": "FFS" if feet_first else "HFS",
            "phantom_size": size,
            "phantom_seed": int(seed),
            "phantom_clean": bool(clean),
            "synthetic": True,
        },
    )
    t_end = time.perf_counter()
    report(progress, 1.0, f"phantom ({size}): done")
    return Phantom(
        volume=volume,
        labels=lab_out,
        legend=dict(CLEAN_LEGEND if clean else LEGEND),
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
        clean=bool(clean),
        textured_bone=bool(textured_bone) and not clean,
        legend_hu=dict(legend_hu(clean)),
    )
