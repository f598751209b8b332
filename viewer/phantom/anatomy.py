"""Analytic anatomy of the left lower leg, knee to ankle, in patient millimetres (LPS).

Everything here is a function of position in mm, independent of any voxel grid, so
every phantom size shows the same anatomy at the same LPS positions (and the ground
truth of a small phantom describes the same leg as that of a large one).

Frame: DICOM patient coordinates LPS, x to the patient's Left, y to Posterior, z to
Superior. For a LEFT leg, lateral is +x and medial is -x; anterior is -y.

Shapes are signed distances in mm (negative inside):

* cross-sections (leg outline, tibia, fibula) are star-shaped curves around a centre
  that moves with height; the signed distance used is the *radial* one, ``r - R(theta)``,
  which is exact along each ray from the centre and close to the Euclidean distance for
  these smooth, nearly round shapes; it only drives the sub-voxel partial-volume ramp and
  the thickness of nested layers (skin, fat, cortex), so that accuracy is enough;
* the mass is a smooth union of three ellipsoids (first-order distance estimate
  ``(rho - 1) / |grad rho|``) with a gentle lobulating perturbation;
* vessels are tubes along polylines sampled from smooth splines (see
  :mod:`viewer.phantom.raster`).

Heights are parametrised by ``t = (z - ANKLE_Z_MM) / (KNEE_Z_MM - ANKLE_Z_MM)``: 0 at the
tibial plafond (ankle joint), 1 at the tibial plateau (knee joint line). Key frames are
interpolated with monotone cubic (PCHIP) splines so the shapes change smoothly.

Anatomical proportions follow the sources cited in ``docs/phantom.md`` (tibial and
fibular cross-sections and cortical thickness from pQCT/CT studies; artery courses and
calibres from anatomy texts and angiographic reference values; the mass from reports of
calcific myonecrosis of the leg).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.interpolate import CubicSpline, PchipInterpolator
from scipy.spatial import cKDTree

# ----------------------------------------------------------------------------------
# Placement of the leg in patient space (mm, LPS)
# ----------------------------------------------------------------------------------
#: Tibial plateau (knee joint line) and tibial plafond (ankle joint) heights, mm.
#: A tibia is about 36-38 cm long in an adult; the absolute z values are arbitrary
#: table positions, chosen far below 0 as in a real run-off scan, so that a loader or
#: renderer that ignores the origin shows it.
KNEE_Z_MM = -500.0
ANKLE_Z_MM = -880.0
LEG_LENGTH_MM = KNEE_Z_MM - ANKLE_Z_MM
#: The leg's long axis in the axial plane: a LEFT leg sits at +x (patient's left).
LEG_AXIS_XY_MM = (90.0, 20.0)


def t_of_z(z_mm: np.ndarray | float) -> np.ndarray:
    """Normalised height: 0 at the ankle joint, 1 at the knee joint line."""
    return (np.asarray(z_mm, dtype=np.float64) - ANKLE_Z_MM) / LEG_LENGTH_MM


def z_of_t(t: np.ndarray | float) -> np.ndarray:
    return ANKLE_Z_MM + np.asarray(t, dtype=np.float64) * LEG_LENGTH_MM


def _pchip(rows: list[tuple[float, ...]]) -> PchipInterpolator:
    a = np.asarray(rows, dtype=np.float64)
    return PchipInterpolator(a[:, 0], a[:, 1:], axis=0, extrapolate=True)


# ----------------------------------------------------------------------------------
# Hounsfield units (sources in docs/phantom.md)
# ----------------------------------------------------------------------------------
HU_AIR = -1000.0
HU_SKIN = 40.0  # dermis: soft tissue, 0-60 HU
HU_FAT = -100.0  # subcutaneous fat, -120 to -90 HU
HU_MUSCLE = 50.0  # skeletal muscle, 40-60 HU
HU_MARROW = -70.0  # fatty (yellow) marrow of the adult diaphysis
HU_BLOOD_CONTRAST = 400.0  # arterial-phase lumen, 300-450 HU in run-off CTA
HU_COLLATERAL = 380.0  # same blood pool, slightly later filling
HU_MASS_FLUID = 20.0  # liquefied necrotic contents, 10-30 HU
NOISE_SIGMA_HU = 14.0  # quantum noise of a soft-tissue ROI, 10-20 HU

# ----------------------------------------------------------------------------------
# Cross-sections: key frames (t, centre x, centre y relative to the leg axis, ...)
# ----------------------------------------------------------------------------------
# Leg outline: (t, cx, cy, semi-axis x (medio-lateral), semi-axis y (antero-posterior)).
# Calf largest at about two thirds of the height; slim above the ankle.
_LEG = _pchip(
    [
        (-0.10, 0.0, -2.0, 35.0, 30.0),
        (0.00, 0.0, -2.0, 35.0, 30.0),
        (0.15, 0.0, 0.0, 37.0, 34.0),
        (0.35, 0.0, 5.0, 44.0, 46.0),
        (0.55, 0.0, 9.0, 50.0, 53.0),
        (0.70, 0.0, 10.0, 52.0, 55.0),
        (0.85, 0.0, 8.0, 51.0, 53.0),
        (1.00, 0.0, 4.0, 50.0, 50.0),
        (1.10, 0.0, 4.0, 50.0, 50.0),
    ]
)
SKIN_MM = 1.8
#: Subcutaneous fat thickness = FAT_MEAN_MM + FAT_AP_MM * sin(theta): thin over the
#: subcutaneous anteromedial tibia (anterior), thicker over the calf (posterior).
FAT_MEAN_MM = 6.0
FAT_AP_MM = 3.5

# Tibia: (t, cx, cy, a (ML semi-axis), b (AP semi-axis), cortex mm, crest amplitude).
# Large, anteromedial; triangular diaphysis with the crest anterior; flares into the
# metaphyses (plateau about 75 mm wide at the knee, plafond about 42 mm at the ankle);
# cortex about 5-6 mm thick mid-shaft, 1.5 mm at the ends.
_TIBIA = _pchip(
    [
        (-0.10, -6.0, -6.0, 21.0, 17.0, 1.6, 0.00),
        (0.00, -6.0, -6.0, 21.0, 17.0, 1.6, 0.00),
        (0.08, -7.0, -9.0, 17.0, 15.0, 2.2, 0.02),
        (0.20, -8.0, -16.0, 12.5, 13.0, 4.0, 0.08),
        (0.50, -10.0, -23.0, 11.0, 13.5, 5.5, 0.10),
        (0.72, -10.0, -22.0, 13.0, 15.0, 4.5, 0.10),
        (0.85, -8.0, -15.0, 21.0, 19.0, 2.5, 0.04),
        (0.95, -4.0, -8.0, 35.0, 24.0, 1.6, 0.00),
        (1.00, -3.0, -6.0, 38.0, 25.0, 1.5, 0.00),
        (1.10, -3.0, -6.0, 38.0, 25.0, 1.5, 0.00),
    ]
)
# Fibula: (t, cx, cy, radius, cortex mm). Small, lateral and a little posterior; the
# head lies below the lateral tibial condyle and ends below the joint line.
_FIBULA = _pchip(
    [
        (-0.10, 22.0, 2.0, 8.5, 1.6),
        (0.00, 22.0, 2.0, 8.5, 1.6),
        (0.12, 25.0, 5.0, 7.0, 2.5),
        (0.50, 29.0, 9.0, 7.0, 3.0),
        (0.80, 31.0, 13.0, 7.5, 2.2),
        (0.90, 33.0, 17.0, 10.0, 1.5),
        (0.93, 34.0, 19.0, 12.0, 1.3),
        (0.95, 34.0, 19.0, 10.5, 1.3),
        (0.965, 34.0, 19.0, 5.0, 1.3),
    ]
)
FIBULA_TOP_T = 0.965
# Cortical HU with height: densest mid-shaft.
_CORTEX_HU = _pchip([(-0.1, 1350.0), (0.0, 1350.0), (0.25, 1600.0), (0.70, 1600.0), (1.0, 1350.0), (1.1, 1350.0)])


def smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    u = np.clip((np.asarray(x, dtype=np.float64) - e0) / (e1 - e0), 0.0, 1.0)
    return u * u * (3.0 - 2.0 * u)


def tibia_trabecular_fraction(t: np.ndarray) -> np.ndarray:
    """Share of the medullary space filled with trabecular bone: 1 in the metaphyses
    and epiphyses, 0 in the diaphysis (fatty marrow cavity)."""
    return np.maximum(1.0 - smoothstep(0.10, 0.20, t), smoothstep(0.70, 0.80, t))


def fibula_trabecular_fraction(t: np.ndarray) -> np.ndarray:
    return np.maximum(1.0 - smoothstep(0.08, 0.16, t), smoothstep(0.84, 0.90, t))


def trabecular_hu(t: np.ndarray) -> np.ndarray:
    """Cancellous bone, 300-400 HU, denser (up to ~550) under the joint surfaces."""
    t = np.asarray(t, dtype=np.float64)
    return 320.0 + 230.0 * np.exp(-np.clip(t, 0, None) / 0.035) + 230.0 * np.exp(-np.clip(1.0 - t, 0, None) / 0.035)


#: The confounded phantom's bone ends: thin cortex (before blur), so that the
#: blurred cortex of the knee and ankle stays well below the 650 HU a naive bone
#: threshold would use (real CT of the tibial plateau / plafond looks like this).
END_CORTEX_MM = 0.7
END_CORTEX_HU = 700.0
TRAB_LOW_HU = 180.0  # cancellous bone of the metaphyses, 150-250 HU in adults
TRAB_LOW_SUBCHONDRAL_HU = 170.0  # extra under the joint surfaces (up to ~350 HU)


def trabecular_hu_low(t: np.ndarray) -> np.ndarray:
    """Cancellous bone of the confounded phantom: 180 HU in the metaphyses rising to
    about 350 HU under the joint surfaces (150-400 HU: no higher than contrast)."""
    t = np.asarray(t, dtype=np.float64)
    sub = np.exp(-np.clip(t, 0, None) / 0.035) + np.exp(-np.clip(1.0 - t, 0, None) / 0.035)
    return TRAB_LOW_HU + TRAB_LOW_SUBCHONDRAL_HU * np.minimum(sub, 1.0)


@dataclass(frozen=True)
class SliceParams:
    """Cross-section parameters for a stack of heights (arrays of shape (n,)), mm,
    centres absolute LPS."""

    t: np.ndarray
    leg: np.ndarray  # (n, 4): cx, cy, ax, ay
    tibia: np.ndarray  # (n, 6): cx, cy, a, b, cortex, crest
    fibula: np.ndarray  # (n, 4): cx, cy, r, cortex (r <= 0: no fibula)
    cortex_hu: np.ndarray
    tibia_trab: np.ndarray
    fibula_trab: np.ndarray
    trab_hu: np.ndarray


def end_weight(t: np.ndarray) -> np.ndarray:
    """1 at the bone ends (distal epiphysis below t = 0.06, proximal above t = 0.92),
    0 on the shaft (t = 0.16 .. 0.80): where the thin-cortex / low-density cancellous
    bone of the confounded phantom replaces the clean one's."""
    return np.maximum(1.0 - smoothstep(0.06, 0.16, t), smoothstep(0.80, 0.92, t))


def slice_params(z_mm: np.ndarray, realistic_ends: bool = False) -> SliceParams:
    """Cross-section parameters at heights ``z_mm``. ``realistic_ends``: the bone ends
    of the default (confounded) phantom: a thin cortex of END_CORTEX_MM at
    END_CORTEX_HU and cancellous bone of 150-400 HU (:func:`trabecular_hu_low`), as real
    CT shows the knee and ankle; off, the clean phantom's thicker and denser ends."""
    t = t_of_z(z_mm)
    ox, oy = LEG_AXIS_XY_MM
    leg = _LEG(t)
    leg[:, 0] += ox
    leg[:, 1] += oy
    tib = _TIBIA(t)
    tib[:, 0] += ox
    tib[:, 1] += oy
    fib = _FIBULA(np.minimum(t, FIBULA_TOP_T))
    fib[:, 0] += ox
    fib[:, 1] += oy
    fib[t > FIBULA_TOP_T, 2] = 0.0
    cortex_hu = _CORTEX_HU(t)[:, 0]
    trab_hu = trabecular_hu(t)
    if realistic_ends:
        e = end_weight(t)
        tib[:, 4] = (1.0 - e) * tib[:, 4] + e * END_CORTEX_MM
        fib[:, 3] = (1.0 - e) * fib[:, 3] + e * END_CORTEX_MM
        cortex_hu = (1.0 - e) * cortex_hu + e * END_CORTEX_HU
        trab_hu = trabecular_hu_low(t)
    return SliceParams(
        t=t,
        leg=leg,
        tibia=tib,
        fibula=fib,
        cortex_hu=cortex_hu,
        tibia_trab=tibia_trabecular_fraction(t),
        fibula_trab=fibula_trabecular_fraction(t),
        trab_hu=trab_hu,
    )


# ----------------------------------------------------------------------------------
# Radial signed distances of the cross-sections (vectorised, float32 friendly)
# ----------------------------------------------------------------------------------
def polar(dx: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(r, cos theta, sin theta)`` of offsets, without atan2 (slow in numpy)."""
    r = np.sqrt(dx * dx + dy * dy)
    inv = 1.0 / np.maximum(r, 1e-6)
    return r, dx * inv, dy * inv


def ellipse_radius(a, b, c, s):
    """Radius of an ellipse with semi-axes a (x), b (y) in direction (c, s)."""
    return a * b / np.sqrt((b * c) ** 2 + (a * s) ** 2)


def tibia_radius(a, b, crest, c, s):
    """Tibial outline: an ellipse with a three-fold bulge whose main lobe points
    anteriorly (-y): the anterior crest, the medial border and the interosseous border
    of the triangular diaphysis. sin(3 theta) = 3 s - 4 s^3 peaks at theta = -90 deg."""
    return ellipse_radius(a, b, c, s) * (1.0 + crest * (3.0 * s - 4.0 * s**3))


# ----------------------------------------------------------------------------------
# Intermuscular septa: thin fat planes that divide the leg into its compartments
# ----------------------------------------------------------------------------------
#: (from, angle deg, to, angle deg, thickness mm). "tibia"/"fibula": a point on that
#: bone's surface in the given direction; "leg": the deep fascia in that direction;
#: "mid": a fixed point (x, y relative to the leg axis) given as the angle pair.
SEPTA = (
    ("fibula", -60.0, "leg", -35.0, 1.0),  # anterior intermuscular septum
    ("fibula", 45.0, "leg", 30.0, 1.0),  # posterior intermuscular septum
    ("tibia", 25.0, "fibula", 200.0, 0.8),  # interosseous membrane
    ("tibia", 150.0, "mid", (-2.0, 28.0), 1.0),  # transverse intermuscular septum,
    ("mid", (-2.0, 28.0), "fibula", 100.0, 1.0),  # deep vs superficial posterior
    ("mid", (-30.0, 20.0), "mid", (30.0, 34.0), 1.0),  # soleus / gastrocnemius plane
)
SEPTA_T_RANGE = (0.12, 0.86)


def septum_points(sp: SliceParams, which, angle) -> np.ndarray:
    """Per-slice end point (n, 2) of a septum, absolute LPS x, y."""
    n = len(sp.t)
    if which == "mid":
        ox, oy = LEG_AXIS_XY_MM
        return np.tile([ox + angle[0], oy + angle[1]], (n, 1))
    th = np.deg2rad(angle)
    c, s = np.cos(th), np.sin(th)
    if which == "tibia":
        tb = sp.tibia
        r = tibia_radius(tb[:, 2], tb[:, 3], tb[:, 5], c, s)
        return np.stack([tb[:, 0] + r * c, tb[:, 1] + r * s], axis=1)
    if which == "fibula":
        fb = sp.fibula
        r = np.maximum(fb[:, 2], 0.0)
        return np.stack([fb[:, 0] + r * c, fb[:, 1] + r * s], axis=1)
    lg = sp.leg
    r = ellipse_radius(lg[:, 2], lg[:, 3], c, s) - SKIN_MM - (FAT_MEAN_MM + FAT_AP_MM * s) + 1.0
    return np.stack([lg[:, 0] + r * c, lg[:, 1] + r * s], axis=1)


def septum_weight(t: np.ndarray) -> np.ndarray:
    """Septa fade out towards the knee and the ankle (tendons and bone take over)."""
    lo, hi = SEPTA_T_RANGE
    return smoothstep(lo, lo + 0.05, t) * (1.0 - smoothstep(hi - 0.05, hi, t))


# ----------------------------------------------------------------------------------
# The calcific myonecrosis mass (anterolateral compartment, middle third)
# ----------------------------------------------------------------------------------
# Fusiform mass: every point within MASS_HALF_THICKNESS_MM of an axial segment from the
# lateral surface of the tibia (end A, tibialis anterior) to the front of the fibula
# (end C, peroneal muscles), tapering along z like an ellipsoid of half-length
# MASS_HALF_LENGTH_MM. (x, y) relative to the leg axis; both ends overlap the bones,
# which are eroded where the mass presses on them. Reports describe fusiform masses of
# the anterior and lateral compartments, up to 25 cm long (docs/phantom.md).
MASS_END_A = (6.0, -28.0)
MASS_END_C = (31.0, -4.0)
MASS_CENTRE_T = 0.49
MASS_HALF_THICKNESS_MM = 10.0
MASS_HALF_LENGTH_MM = 64.0
#: Gap of soft tissue left between the mass and the pressure-eroded bone, mm.
EROSION_GAP_MM = 0.6
#: Remodelled cortex lining the erosion (the marrow stays this far from the mass), mm.
EROSION_LINING_MM = 1.4
RIM_MIN_MM = 1.2
RIM_MAX_MM = 2.4
RIM_HU_MIN = 380.0
RIM_HU_MAX = 720.0


@dataclass(frozen=True)
class MassModel:
    end_a: tuple[float, float]  # absolute LPS x, y
    end_c: tuple[float, float]
    centre_z: float
    half_thickness: float
    half_length: float
    phases: tuple[float, ...]  # lobulation / rim pattern phases (from the seed)

    def bbox_lps(self, pad_mm: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        e = self.half_thickness + 1.5 + pad_mm
        lo = np.array(
            [
                min(self.end_a[0], self.end_c[0]) - e,
                min(self.end_a[1], self.end_c[1]) - e,
                self.centre_z - self.half_length - 1.5 - pad_mm,
            ]
        )
        hi = np.array(
            [
                max(self.end_a[0], self.end_c[0]) + e,
                max(self.end_a[1], self.end_c[1]) + e,
                self.centre_z + self.half_length + 1.5 + pad_mm,
            ]
        )
        return lo, hi

    def sd(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Signed distance (mm, negative inside) of the mass surface; broadcasting.

        ``q`` = in-plane distance to the segment A-C, ``w`` = height from the centre;
        ``rho = |(q / a, w / c)|`` is 1 on the surface; the first-order estimate
        ``(rho - 1) / |grad rho|`` is the distance near the surface."""
        ax, ay = self.end_a
        ux, uy = self.end_c[0] - ax, self.end_c[1] - ay
        l2 = ux * ux + uy * uy
        vx = x - ax
        vy = y - ay
        tt = np.clip((vx * ux + vy * uy) / l2, 0.0, 1.0)
        qx = vx - tt * ux
        qy = vy - tt * uy
        q = np.sqrt(qx * qx + qy * qy)
        a, c = self.half_thickness, self.half_length
        u = q / a
        w = (z - self.centre_z) / c
        rho = np.sqrt(u * u + w * w)
        g = np.sqrt((u / a) ** 2 + (w / c) ** 2)
        d = (rho - 1.0) * rho / np.maximum(g, 1e-6)
        p = self.phases
        # gentle lobulation of the outline (+-0.8 mm), smooth at the scale of the mass
        return d + 0.8 * np.sin(x / 11.0 + p[0]) * np.sin(y / 13.0 + p[1]) * np.sin(z / 23.0 + p[2])

    def rim_thickness(self, x, y, z) -> np.ndarray:
        """Plaque-like calcified rim: thickness varies smoothly between RIM_MIN and MAX."""
        p = self.phases
        q = 0.5 + 0.5 * np.sin(x / 5.0 + p[3]) * np.cos(z / 9.0 + p[4]) * np.cos(y / 6.0 + p[5])
        return RIM_MIN_MM + (RIM_MAX_MM - RIM_MIN_MM) * q

    def rim_hu(self, x, y, z) -> np.ndarray:
        p = self.phases
        q = 0.5 + 0.5 * np.sin(z / 7.0 + p[6]) * np.sin(x / 8.0 + y / 9.0 + p[7])
        return RIM_HU_MIN + (RIM_HU_MAX - RIM_HU_MIN) * q

    def fluid_hu(self, x, y, z) -> np.ndarray:
        """Liquefied contents, 15-25 HU, a little denser in the dependent (posterior,
        +y, the patient lies supine) part where debris settles."""
        cy = 0.5 * (self.end_a[1] + self.end_c[1])
        return HU_MASS_FLUID + np.clip((y - cy) / 10.0, -1.0, 1.0) * 5.0


def make_mass(rng: np.random.Generator) -> MassModel:
    ox, oy = LEG_AXIS_XY_MM
    phases = tuple(float(v) for v in rng.uniform(0.0, 2.0 * np.pi, 8))
    return MassModel(
        end_a=(ox + MASS_END_A[0], oy + MASS_END_A[1]),
        end_c=(ox + MASS_END_C[0], oy + MASS_END_C[1]),
        centre_z=float(z_of_t(MASS_CENTRE_T)),
        half_thickness=MASS_HALF_THICKNESS_MM,
        half_length=MASS_HALF_LENGTH_MM,
        phases=phases,
    )


# ----------------------------------------------------------------------------------
# Bone signed distances at arbitrary points (used for vessel clearance and tests)
# ----------------------------------------------------------------------------------
def bone_sd_points(p_lps: np.ndarray, mass: MassModel | None, bumps: ContactBumps | None = None) -> np.ndarray:
    """Signed distance (mm) of points ``(N, 3)`` to the outer surface of the (eroded)
    tibia and fibula together. Same model as the raster, evaluated pointwise.
    ``mass`` None: no erosion (the right leg); ``bumps``: the confounded phantom's
    contact bulges of the tibial ends (:class:`ContactBumps`)."""
    p = np.asarray(p_lps, dtype=np.float64)
    sp = slice_params(p[:, 2])
    x, y = p[:, 0], p[:, 1]
    tib = sp.tibia
    r, c, s = polar(x - tib[:, 0], y - tib[:, 1])
    rad = tibia_radius(tib[:, 2], tib[:, 3], tib[:, 5], c, s)
    if bumps is not None:
        rad = rad + bumps.radius_add(sp.t, c, s)
    d_t = r - rad
    fib = sp.fibula
    r, c, s = polar(x - fib[:, 0], y - fib[:, 1])
    d_f = np.where(fib[:, 2] > 0, r - fib[:, 2], np.inf)
    d_f = np.maximum(d_f, p[:, 2] - float(z_of_t(FIBULA_TOP_T)))
    if mass is None:
        return np.minimum(d_t, d_f)
    d_ind = mass.sd(x, y, p[:, 2]) - EROSION_GAP_MM
    return np.maximum(np.minimum(d_t, d_f), -d_ind)


def unit_gradient(fn, p: np.ndarray, eps: float = 0.05) -> np.ndarray:
    """Central-difference unit gradient of a pointwise scalar field ``fn(P)``."""
    g = np.zeros_like(p)
    for ax in range(3):
        e = np.zeros(3)
        e[ax] = eps
        g[:, ax] = (fn(p + e) - fn(p - e)) / (2 * eps)
    n = np.linalg.norm(g, axis=1, keepdims=True)
    return g / np.maximum(n, 1e-9)


# ----------------------------------------------------------------------------------
# Arteries
# ----------------------------------------------------------------------------------
@dataclass
class Vessel:
    """A tube: centre line ``points_lps`` (N, 3) and radius ``radii_mm`` (N,)."""

    name: str
    kind: str  # "artery" or "collateral"
    points_lps: np.ndarray
    radii_mm: np.ndarray
    parent: str = ""
    meta: dict = field(default_factory=dict)


def _spline_polyline(ctrl: np.ndarray, diam: np.ndarray, step_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Smooth curve through control points (chord-length parametrised natural cubic
    spline) sampled every ``step_mm``; the radius is interpolated linearly."""
    seg = np.linalg.norm(np.diff(ctrl, axis=0), axis=1)
    u = np.concatenate([[0.0], np.cumsum(seg)])
    cs = CubicSpline(u, ctrl, axis=0, bc_type="natural")
    # Sample densely, then re-sample at even arc length.
    uu = np.linspace(0.0, u[-1], max(8, int(u[-1] / (step_mm * 0.25)) + 2))
    pts = cs(uu)
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
    n = max(2, int(np.ceil(arc[-1] / step_mm)) + 1)
    s = np.linspace(0.0, arc[-1], n)
    out = np.stack([np.interp(s, arc, pts[:, k]) for k in range(3)], axis=1)
    # radius along the original parameter
    u_of_s = np.interp(s, arc, uu)
    r = np.interp(u_of_s, u, diam) * 0.5
    return out, r


# Control points (x, y relative to the leg axis, t) and diameters (mm).
# Popliteal artery: in the popliteal fossa, behind the tibial plateau; ends at the lower
# border of popliteus (about 5 cm below the joint line) by dividing into the anterior
# tibial artery and the tibioperoneal trunk.
_POPLITEAL = [((3.0, 26.0, 1.03), 5.4), ((2.0, 24.5, 0.97), 5.2), ((0.5, 23.0, 0.91), 5.0), ((-1.0, 23.5, 0.87), 4.8)]
# Anterior tibial artery: forward above the upper border of the interosseous membrane,
# between tibia and fibula, then down on the front of the membrane (deep to the mass,
# which displaces it), and in front of the distal tibia to the ankle (-> dorsalis pedis).
_ANTERIOR_TIBIAL = [
    ((-1.0, 23.5, 0.87), 3.4),
    ((6.0, 20.0, 0.862), 3.2),
    ((14.0, 12.0, 0.852), 3.1),
    ((16.0, 1.0, 0.835), 3.0),
    ((16.0, -1.5, 0.78), 2.9),
    ((16.0, -1.0, 0.62), 2.8),
    ((15.0, -0.5, 0.50), 2.7),
    ((14.0, -2.5, 0.36), 2.6),
    ((11.0, -9.0, 0.22), 2.5),
    ((9.0, -21.0, 0.09), 2.4),
    ((6.0, -27.0, 0.00), 2.3),
    ((5.0, -28.0, -0.03), 2.3),
]
# Tibioperoneal trunk: 2-3 cm, then divides.
_TIBIOPERONEAL = [((-1.0, 23.5, 0.87), 4.2), ((-2.0, 25.0, 0.84), 4.0), ((-3.0, 24.0, 0.81), 3.8)]
# Posterior tibial artery: deep posterior compartment, behind the tibia, to the space
# behind the medial malleolus.
_POSTERIOR_TIBIAL = [
    ((-3.0, 24.0, 0.81), 3.2),
    ((-6.0, 19.0, 0.74), 3.1),
    ((-9.0, 5.0, 0.60), 3.0),
    ((-11.0, 2.5, 0.45), 2.9),
    ((-13.0, 3.0, 0.30), 2.8),
    ((-15.0, 6.0, 0.15), 2.7),
    ((-19.0, 13.0, 0.04), 2.6),
    ((-21.0, 14.0, -0.03), 2.5),
]
# Peroneal (fibular) artery: along the posteromedial fibula, ends above the ankle in
# calcaneal and perforating branches.
_PERONEAL = [
    ((-3.0, 24.0, 0.81), 3.0),
    ((5.0, 23.0, 0.76), 2.9),
    ((15.0, 19.0, 0.66), 2.8),
    ((20.0, 15.0, 0.50), 2.7),
    ((19.0, 13.0, 0.32), 2.5),
    ((17.0, 12.0, 0.15), 2.3),
    ((16.0, 10.0, 0.06), 2.1),
    ((15.0, 9.0, 0.03), 2.0),
]

MAIN_ARTERIES = {
    "popliteal": _POPLITEAL,
    "anterior_tibial": _ANTERIOR_TIBIAL,
    "tibioperoneal_trunk": _TIBIOPERONEAL,
    "posterior_tibial": _POSTERIOR_TIBIAL,
    "peroneal": _PERONEAL,
}


def _abs_ctrl(rows) -> tuple[np.ndarray, np.ndarray]:
    ox, oy = LEG_AXIS_XY_MM
    ctrl = np.array([(ox + x, oy + y, float(z_of_t(t))) for (x, y, t), _ in rows])
    diam = np.array([d for _, d in rows], dtype=np.float64)
    return ctrl, diam


def main_arteries(step_mm: float = 1.0) -> list[Vessel]:
    out = []
    for name, rows in MAIN_ARTERIES.items():
        ctrl, diam = _abs_ctrl(rows)
        pts, r = _spline_polyline(ctrl, diam, step_mm)
        out.append(Vessel(name=name, kind="artery", points_lps=pts, radii_mm=r))
    return out


# ----------------------------------------------------------------------------------
# Collateral branches around the eroded segment
# ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CollateralSpec:
    parent: str  # "posterior_tibial" or "peroneal"
    bone: str  # "tibia" or "fibula": the bone it winds around
    t0: float
    t1: float
    theta0_deg: float  # angle around the bone axis (LPS: 0 lateral, 90 posterior, 180 medial, 270 anterior)
    theta1_deg: float
    clearance_mm: float  # target gap between the vessel wall and the bone / mass surface
    d0_mm: float
    d1_mm: float
    join: str = ""  # name of an artery it reconnects to at t1 ("" = ends in muscle)


#: At least 12 branches (issue 2) of 0.8-2 mm from the posterior tibial and peroneal
#: arteries, winding around the eroded tibia and fibula. Most keep >= 1 mm of tissue
#: from bone and mass; the "periosteal" ones (clearance 0.3 mm) hug the cortex.
COLLATERALS = (
    # around the tibia, from the posterior tibial artery
    CollateralSpec("posterior_tibial", "tibia", 0.40, 0.47, 100, 205, 2.0, 1.9, 1.0),
    CollateralSpec("posterior_tibial", "tibia", 0.45, 0.55, 95, 250, 1.5, 1.8, 0.9),
    CollateralSpec("posterior_tibial", "tibia", 0.53, 0.61, 100, 235, 3.0, 1.7, 1.0),
    CollateralSpec("posterior_tibial", "tibia", 0.27, 0.31, 95, 345, 2.5, 1.8, 1.4, join="anterior_tibial"),
    CollateralSpec("posterior_tibial", "tibia", 0.69, 0.73, 95, 345, 2.5, 1.8, 1.4, join="anterior_tibial"),
    CollateralSpec("posterior_tibial", "tibia", 0.36, 0.43, 80, 25, 2.0, 1.6, 0.9),
    CollateralSpec("posterior_tibial", "tibia", 0.57, 0.65, 85, 30, 1.2, 1.5, 0.8),
    CollateralSpec("posterior_tibial", "tibia", 0.47, 0.53, 120, 215, 0.3, 1.4, 0.9),
    CollateralSpec("posterior_tibial", "tibia", 0.38, 0.62, 95, 160, 1.0, 1.6, 1.0),
    # around the fibula, from the peroneal artery
    CollateralSpec("peroneal", "fibula", 0.40, 0.47, 140, -20, 2.0, 1.8, 1.0),
    CollateralSpec("peroneal", "fibula", 0.50, 0.58, 135, 0, 1.5, 1.7, 0.9),
    CollateralSpec("peroneal", "fibula", 0.60, 0.66, 130, -40, 2.5, 1.6, 0.9),
    CollateralSpec("peroneal", "fibula", 0.30, 0.34, 135, -140, 2.0, 1.7, 1.3, join="anterior_tibial"),
    CollateralSpec("peroneal", "fibula", 0.66, 0.70, 135, -140, 2.0, 1.7, 1.3, join="anterior_tibial"),
    CollateralSpec("peroneal", "fibula", 0.44, 0.50, 150, 60, 0.3, 1.4, 0.9),
    CollateralSpec("peroneal", "tibia", 0.52, 0.56, 45, 85, 2.0, 1.5, 1.2, join="posterior_tibial"),
)


#: R(c, s): a bone cross-section's radius (mm) in the direction (cos, sin) = (c, s).
RadiusFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _bone_frame(bone: str, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, RadiusFn]:
    """Centre (n, 2) and radius function R(c, s) of a bone's cross-section at heights t."""
    z = z_of_t(t)
    sp = slice_params(z)
    if bone == "tibia":
        tb = sp.tibia
        return tb[:, :2], tb, lambda c, s: tibia_radius(tb[:, 2], tb[:, 3], tb[:, 5], c, s)
    fb = sp.fibula
    return fb[:, :2], fb, lambda c, s: fb[:, 2] + 0 * c


def _nearest_on(v: Vessel, z_mm: float) -> np.ndarray:
    k = int(np.argmin(np.abs(v.points_lps[:, 2] - z_mm)))
    return v.points_lps[k]


def collaterals(
    arteries: list[Vessel], mass: MassModel, rng: np.random.Generator, step_mm: float = 1.0
) -> list[Vessel]:
    """Smooth 3D collateral curves winding around the bones at the eroded segment.

    Each starts inside its parent artery, runs around the bone at a chosen clearance
    (angle and height changing together, plus a seeded wiggle), and ends in muscle or
    joins another artery. A final relaxation pushes any sample that came closer than
    its target clearance to bone or mass back out along the distance gradient."""
    by_name = {v.name: v for v in arteries}
    out: list[Vessel] = []
    for n, spec in enumerate(COLLATERALS):
        k = 14
        s = np.linspace(0.0, 1.0, k)
        wig_amp = rng.uniform(0.004, 0.010)  # in t units (1.5-4 mm)
        wig_ph = rng.uniform(0, 2 * np.pi)
        t = (
            spec.t0
            + (spec.t1 - spec.t0) * s
            + wig_amp * np.sin(np.pi * s * rng.uniform(1.5, 3.0) + wig_ph) * np.sin(np.pi * s)
        )
        theta = np.deg2rad(spec.theta0_deg + (spec.theta1_deg - spec.theta0_deg) * s)
        c, sn = np.cos(theta), np.sin(theta)
        centre, _, radius_fn = _bone_frame(spec.bone, t)
        diam = spec.d0_mm + (spec.d1_mm - spec.d0_mm) * s
        drift = rng.uniform(0.0, 1.0)  # drawn for every branch: keeps the stream stable
        # periosteal branches (clearance < 1 mm) stay on the cortex; others drift a little
        extra = spec.clearance_mm + 0.5 * diam + (0.8 * np.sin(np.pi * s) * drift if spec.clearance_mm >= 1.0 else 0.0)
        rad = radius_fn(c, sn) + extra
        pts = np.stack([centre[:, 0] + rad * c, centre[:, 1] + rad * sn, z_of_t(t)], axis=1)
        parent = by_name[spec.parent]
        start = _nearest_on(parent, float(pts[0, 2]))
        ctrl = [start]
        dia = [spec.d0_mm]
        ctrl.extend(pts[1:-1])
        dia.extend(diam[1:-1])
        if spec.join:
            ctrl.append(_nearest_on(by_name[spec.join], float(pts[-1, 2])))
        else:
            ctrl.append(pts[-1])
        dia.append(spec.d1_mm)
        ctrl_a = np.asarray(ctrl)
        # Drop control points that crowd the start (keeps the spline from looping).
        keep = [0]
        for i in range(1, len(ctrl_a)):
            if np.linalg.norm(ctrl_a[i] - ctrl_a[keep[-1]]) > 3.0 or i == len(ctrl_a) - 1:
                keep.append(i)
        ctrl_a = ctrl_a[keep]
        dia_a = np.asarray(dia)[keep]
        p, r = _spline_polyline(ctrl_a, dia_a, step_mm)
        p = _relax_clearance(p, r, spec.clearance_mm, mass, protect=(6.0, 6.0 if spec.join else 0.0))
        out.append(
            Vessel(
                name=f"collateral_{n + 1:02d}",
                kind="collateral",
                points_lps=p,
                radii_mm=r,
                parent=spec.parent,
                meta={"bone": spec.bone, "join": spec.join, "clearance_mm": spec.clearance_mm},
            )
        )
    return out


def _relax_clearance(p: np.ndarray, r: np.ndarray, clearance: float, mass: MassModel, protect=(0.0, 0.0)) -> np.ndarray:
    """Push centre-line samples out of bone / mass until wall-to-surface distance >=
    ``clearance`` (within ``protect`` mm of the ends, where the branch leaves or joins
    its parent artery, samples stay put)."""
    p = p.copy()
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(p, axis=0), axis=1))])
    free = (arc >= protect[0]) & (arc <= arc[-1] - protect[1])

    def fields(q):
        return np.minimum(bone_sd_points(q, mass), mass.sd(q[:, 0], q[:, 1], q[:, 2]))

    for it in range(8):
        d = fields(p)
        need = r + clearance - d
        move = free & (need > 0)
        if not move.any():
            break
        g = unit_gradient(fields, p[move])
        p[move] += g * (need[move] + 0.05)[:, None]
        if it < 5:
            # light smoothing keeps the curve smooth after the push; the last passes
            # only push, so the clearance holds at the end
            q = p.copy()
            q[1:-1] = 0.25 * p[:-2] + 0.5 * p[1:-1] + 0.25 * p[2:]
            p[free] = q[free]
    return p


# ==================================================================================
# Confounders of the default phantom (issue 8): what makes a naive threshold method
# fail on real run-off CTA. None of this exists in the ``clean`` phantom.
# ==================================================================================
HU_VEIN_POPLITEAL = 175.0  # venous enhancement in the arterial phase, 120-200 HU
HU_VEIN_DEEP = 150.0
HU_NUTRIENT = HU_COLLATERAL
HU_PLAQUE_MIN = 850.0  # calcified plaque, 800-1500 HU before blur
HU_PLAQUE_MAX = 1450.0
NOISE_CT_SIGMA_HU = 18.0  # correlated quantum noise, soft-tissue ROI (15-25 HU)
STREAK_HU = -18.0  # weak beam-hardening dark band between the two tibiae

# ----------------------------------------------------------------------------------
# The other (right) leg: a mirror image of the left leg (without mass, erosion and
# collaterals) about the sagittal plane x = MIRROR_X_MM, RIGHT_LEG_Z_SHIFT_MM lower.
# A right-leg point (x, y, z) shows the left-leg anatomy of (2 MIRROR_X_MM - x, y,
# z - RIGHT_LEG_Z_SHIFT_MM).
# ----------------------------------------------------------------------------------
MIRROR_X_MM = 22.0
RIGHT_LEG_Z_SHIFT_MM = -6.0
RIGHT_LEG_AXIS_XY_MM = (2.0 * MIRROR_X_MM - LEG_AXIS_XY_MM[0], LEG_AXIS_XY_MM[1])


def right_of_left(p_lps: np.ndarray) -> np.ndarray:
    """Map left-frame points ``(N, 3)`` to where the right leg shows them (LPS mm)."""
    q = np.array(p_lps, dtype=np.float64, copy=True)
    q[..., 0] = 2.0 * MIRROR_X_MM - q[..., 0]
    q[..., 2] = q[..., 2] + RIGHT_LEG_Z_SHIFT_MM
    return q


# ----------------------------------------------------------------------------------
# Contact of arteries and low-density bone ends
# ----------------------------------------------------------------------------------
#: (artery, t where the contact fades in / out, ...): the popliteal artery lies on the
#: back of the tibial plateau; the posterior tibial artery behind the medial malleolus
#: and the anterior tibial artery on the front of the distal tibia. A smooth bulge of
#: the tibial outline (posterior condylar lip, malleolar ridges) brings the bone to
#: CONTACT_GAP_MM of the artery wall there.
CONTACTS = (
    ("popliteal", 0.89, 0.93, 1.20, 1.20),
    ("posterior_tibial", -0.20, -0.20, 0.06, 0.11),
    ("anterior_tibial", -0.20, -0.20, 0.06, 0.11),
)
CONTACT_GAP_MM = 0.15
_BUMP_POWER = 6.0


@dataclass(frozen=True)
class ContactBumps:
    """Radial bulges of the tibial outline towards arteries: for bulge ``i`` at height
    ``t``, ``R += amp_i(t) * max(0, cos(theta - theta_i(t)))^p``."""

    t: np.ndarray  # (m,) ascending heights
    amp: np.ndarray  # (k, m) mm
    cos0: np.ndarray  # (k, m)
    sin0: np.ndarray  # (k, m)

    def radius_add(self, t: np.ndarray, c: np.ndarray, s: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)
        extra = (1,) * (np.ndim(c) - t.ndim)
        out = np.zeros(np.broadcast(c, s).shape, dtype=np.result_type(c, np.float32))
        for k in range(len(self.amp)):
            a = np.interp(t, self.t, self.amp[k], left=0.0, right=0.0)
            if not (a > 0).any():
                continue
            c0 = np.interp(t, self.t, self.cos0[k]).reshape(t.shape + extra)
            s0 = np.interp(t, self.t, self.sin0[k]).reshape(t.shape + extra)
            q = np.maximum(c * c0.astype(out.dtype) + s * s0.astype(out.dtype), 0.0)
            out += a.reshape(t.shape + extra).astype(out.dtype) * q**_BUMP_POWER
        return out


def _points_at_z(v: Vessel, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre (x, y) and radius of a vessel at heights ``z`` (it is monotonic in z
    over the part used); NaN outside its z range."""
    p, r = v.points_lps, v.radii_mm
    order = np.argsort(p[:, 2])
    zz = p[order, 2]
    inside = (z >= zz[0]) & (z <= zz[-1])
    x = np.where(inside, np.interp(z, zz, p[order, 0]), np.nan)
    y = np.where(inside, np.interp(z, zz, p[order, 1]), np.nan)
    rr = np.where(inside, np.interp(z, zz, r[order]), np.nan)
    return x, y, rr


def contact_bumps(arteries: list[Vessel]) -> ContactBumps:
    """Calibrate the bulges so that the tibial surface comes to CONTACT_GAP_MM of
    each contact artery's wall (radially, as the raster measures it)."""
    by = {v.name: v for v in arteries}
    t = np.linspace(-0.12, 1.12, 1241)  # 0.38 mm steps
    z = z_of_t(t)
    sp = slice_params(z)
    tb = sp.tibia
    amps, c0s, s0s = [], [], []
    for name, t_in0, t_in1, t_out0, t_out1 in CONTACTS:
        x, y, r = _points_at_z(by[name], z)
        ok = np.isfinite(x)
        rho, c, s = polar(np.where(ok, x - tb[:, 0], 1.0), np.where(ok, y - tb[:, 1], 0.0))
        base = tibia_radius(tb[:, 2], tb[:, 3], tb[:, 5], c, s)
        need = rho - np.nan_to_num(r) - CONTACT_GAP_MM - base
        if t_in0 == t_in1:
            w_in = np.ones_like(t)
        else:
            w_in = smoothstep(t_in0, t_in1, t)
        w_out = 1.0 - smoothstep(t_out0, t_out1, t) if t_out1 > t_out0 else np.ones_like(t)
        amp = np.where(ok, np.maximum(need, 0.0), 0.0) * w_in * w_out
        # fill the direction outside the artery's range with the nearest valid one
        idx = np.nonzero(ok)[0]
        c = np.interp(np.arange(len(t)), idx, c[idx])
        s = np.interp(np.arange(len(t)), idx, s[idx])
        amps.append(amp)
        c0s.append(c)
        s0s.append(s)
    return ContactBumps(t=t, amp=np.array(amps), cos0=np.array(c0s), sin0=np.array(s0s))


# ----------------------------------------------------------------------------------
# The CT couch: a curved carbon-fibre tabletop (thin dense skins over a foam core)
# with a thin mattress on it; the legs (supine, +y posterior) rest on the mattress.
# ----------------------------------------------------------------------------------
HU_PAD = -60.0  # foam mattress in a vinyl cover
HU_TABLE_SKIN = 550.0  # carbon-fibre laminate (with resin), 300-600 HU on CT
HU_TABLE_FOAM = -900.0  # rigid foam core
TABLE_PAD_MM = 6.0
TABLE_SKIN_MM = 1.5
TABLE_THICKNESS_MM = 20.0
TABLE_RADIUS_MM = 500.0  # radius of curvature of the mattress surface (a shallow cradle)


@dataclass(frozen=True)
class TableModel:
    """Circular-arc couch under both legs: every layer is an annulus around
    ``centre_xy`` (far anterior), the mattress top at ``radius_mm``."""

    centre_xy: tuple[float, float]
    radius_mm: float
    pad_mm: float = TABLE_PAD_MM
    skin_mm: float = TABLE_SKIN_MM
    thickness_mm: float = TABLE_THICKNESS_MM

    def rho(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.sqrt((x - self.centre_xy[0]) ** 2 + (y - self.centre_xy[1]) ** 2)

    def layers(self) -> tuple[tuple[float, float, str], ...]:
        """(radius where the layer starts, HU, label name), outermost last: each
        layer fills everything beyond its radius (composited in order)."""
        r0 = self.radius_mm
        r1 = r0 + self.pad_mm
        r2 = r1 + self.thickness_mm
        return (
            (r0, HU_PAD, "table"),
            (r1, HU_TABLE_SKIN, "table"),
            (r1 + self.skin_mm, HU_TABLE_FOAM, "table"),
            (r2 - self.skin_mm, HU_TABLE_SKIN, "table"),
            (r2, HU_AIR, "background"),
        )

    def top_y(self, x: np.ndarray | float) -> np.ndarray:
        """y of the mattress surface at ``x`` (LPS mm)."""
        return self.centre_xy[1] + np.sqrt(
            self.radius_mm**2 - (np.asarray(x, dtype=np.float64) - self.centre_xy[0]) ** 2
        )

    def tabletop_y(self, x: np.ndarray | float) -> np.ndarray:
        return self.centre_xy[1] + np.sqrt(
            (self.radius_mm + self.pad_mm) ** 2 - (np.asarray(x, dtype=np.float64) - self.centre_xy[0]) ** 2
        )

    def bottom_y(self, x: np.ndarray | float) -> np.ndarray:
        r = self.radius_mm + self.pad_mm + self.thickness_mm
        return self.centre_xy[1] + np.sqrt(r**2 - (np.asarray(x, dtype=np.float64) - self.centre_xy[0]) ** 2)


def make_table(z_lo_mm: float = KNEE_Z_MM - LEG_LENGTH_MM * 1.02, z_hi_mm: float = KNEE_Z_MM) -> TableModel:
    """The couch centred under both legs (x = MIRROR_X_MM), its mattress touching the
    most posterior point of the legs' skin (the calf) between ``z_lo`` and ``z_hi``."""
    z = np.linspace(z_lo_mm, z_hi_mm, 200)
    sp = slice_params(z)
    th = np.linspace(0.0, np.pi, 361)  # the posterior half of the outline
    c, s = np.cos(th), np.sin(th)
    lg = sp.leg[:, :, None]
    r = ellipse_radius(lg[:, 2], lg[:, 3], c, s)
    px = (lg[:, 0] + r * c).ravel()
    py = (lg[:, 1] + r * s).ravel()
    xc = MIRROR_X_MM
    R = TABLE_RADIUS_MM
    # choose the centre height so that max |P - C| over the skin is R (one contact)
    lo, hi = float(py.max()) - R - 50.0, float(py.max()) - R + 50.0
    for _ in range(60):
        cy = 0.5 * (lo + hi)
        if np.sqrt((px - xc) ** 2 + (py - cy) ** 2).max() > R:
            lo = cy
        else:
            hi = cy
    return TableModel(centre_xy=(xc, hi), radius_mm=R)


# ----------------------------------------------------------------------------------
# Deep veins (venae comitantes) and the popliteal vein
# ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class VeinSpec:
    name: str
    along: tuple[str, ...]  # arteries it follows, in order
    ref_xy: tuple[float, float]  # in-plane direction of the offset from the artery
    t_range: tuple[float, float]  # (top, bottom) heights it spans
    d0_mm: float
    d1_mm: float
    hu: float


#: Paired veins beside the anterior tibial, posterior tibial and peroneal arteries
#: (medial and lateral of each), and the single large popliteal vein behind (posterior
#: and a little lateral of) the popliteal artery, which the venae comitantes join near
#: the tibioperoneal trunk.
VEINS = (
    VeinSpec(
        "popliteal_vein", ("popliteal", "tibioperoneal_trunk"), (0.35, 0.94), (1.04, 0.80), 7.0, 6.0, HU_VEIN_POPLITEAL
    ),
    VeinSpec(
        "posterior_tibial_vein_medial", ("posterior_tibial",), (-1.0, 0.15), (0.79, -0.04), 4.2, 3.2, HU_VEIN_DEEP
    ),
    VeinSpec(
        "posterior_tibial_vein_lateral", ("posterior_tibial",), (1.0, 0.15), (0.79, -0.04), 4.0, 3.0, HU_VEIN_DEEP
    ),
    VeinSpec("peroneal_vein_medial", ("peroneal",), (-1.0, 0.3), (0.79, 0.04), 4.0, 3.0, HU_VEIN_DEEP),
    VeinSpec("peroneal_vein_lateral", ("peroneal",), (0.6, 0.8), (0.79, 0.04), 3.8, 3.0, HU_VEIN_DEEP),
    VeinSpec("anterior_tibial_vein_medial", ("anterior_tibial",), (-1.0, 0.0), (0.83, -0.04), 3.4, 3.0, HU_VEIN_DEEP),
    VeinSpec("anterior_tibial_vein_lateral", ("anterior_tibial",), (1.0, 0.0), (0.83, -0.04), 3.4, 3.0, HU_VEIN_DEEP),
)
VEIN_GAP_MM = 0.8  # tissue between a vein's wall and its artery's wall
VEIN_CLEARANCE_MM = 0.6  # ... and between a vein and bone or mass


def _tangents(p: np.ndarray) -> np.ndarray:
    t = np.gradient(p, axis=0)
    return t / np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-9)


def _transport_frame(p: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A rotation-minimising frame (n, b) along a polyline, n starting as close to
    ``ref`` as the first tangent allows."""
    T = _tangents(p)
    n = np.empty_like(p)
    v = ref - (ref @ T[0]) * T[0]
    if np.linalg.norm(v) < 1e-6:
        v = np.array([0.0, 0.0, 1.0]) - T[0, 2] * T[0]
    n[0] = v / np.linalg.norm(v)
    for i in range(1, len(p)):
        v = n[i - 1] - (n[i - 1] @ T[i]) * T[i]
        n[i] = v / max(np.linalg.norm(v), 1e-9)
    b = np.cross(T, n)
    return n, b


def _dist_to_polyline(q: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Distance of points (N, 3) to a polyline (M, 3)."""
    p0, p1 = pts[:-1], pts[1:]
    u = p1 - p0
    l2 = np.maximum((u * u).sum(axis=1), 1e-12)
    v = q[:, None, :] - p0[None]
    tt = np.clip((v * u[None]).sum(axis=2) / l2[None], 0.0, 1.0)
    d = v - tt[..., None] * u[None]
    return np.sqrt((d * d).sum(axis=2)).min(axis=1)


def deep_veins(
    arteries: list[Vessel],
    mass: MassModel | None,
    bumps: ContactBumps | None,
    rng: np.random.Generator,
    step_mm: float = 1.0,
) -> list[Vessel]:
    """Vein centre lines offset from their arteries (wall to wall VEIN_GAP_MM) in a
    transported frame, with a gentle seeded meander, then pushed out of bone, mass
    and their own artery where the offset alone came too close."""
    by = {v.name: v for v in arteries}
    walls = _WallDistance(arteries)
    out: list[Vessel] = []
    for spec in VEINS:
        pts = np.concatenate([by[a].points_lps for a in spec.along])
        rad = np.concatenate([by[a].radii_mm for a in spec.along])
        z_top, z_bot = float(z_of_t(spec.t_range[0])), float(z_of_t(spec.t_range[1]))
        keep = (pts[:, 2] <= z_top) & (pts[:, 2] >= z_bot)
        pts, rad = pts[keep], rad[keep]
        # drop repeated junction points, keep the order along the course
        d = np.linalg.norm(np.diff(pts, axis=0), axis=1)
        ok = np.concatenate([[True], d > 1e-6])
        pts, rad = pts[ok], rad[ok]
        n, b = _transport_frame(pts, np.array([spec.ref_xy[0], spec.ref_xy[1], 0.0]))
        arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
        s = arc / arc[-1]
        rv = 0.5 * (spec.d0_mm + (spec.d1_mm - spec.d0_mm) * s)
        ph = rng.uniform(0, 2 * np.pi, 2)
        wl = rng.uniform(45.0, 70.0)
        off = rad + rv + VEIN_GAP_MM + 0.4 * (1 + np.sin(2 * np.pi * arc / wl + ph[0]))
        side = 1.2 * np.sin(2 * np.pi * arc / (1.3 * wl) + ph[1])
        centre = pts + off[:, None] * n + side[:, None] * b
        # control points every ~8 mm, then a smooth curve
        kk = np.unique(np.concatenate([np.arange(0, len(centre), 8), [len(centre) - 1]]))
        p, r = _spline_polyline(centre[kk], 2.0 * rv[kk], step_mm)

        def fields(q):
            f = walls.distance(q) - (VEIN_GAP_MM - VEIN_CLEARANCE_MM)
            bone = bone_sd_points(q, mass, bumps)
            f = np.minimum(f, bone)
            if mass is not None:
                f = np.minimum(f, mass.sd(q[:, 0], q[:, 1], q[:, 2]))
            return f

        p = _relax(p, r, VEIN_CLEARANCE_MM, fields)
        out.append(
            Vessel(name=spec.name, kind="vein", points_lps=p, radii_mm=r, parent=spec.along[0], meta={"hu": spec.hu})
        )
    return out


class _WallDistance:
    """Distance (mm) from points to the nearest wall of a set of tubes, from their
    centre lines resampled every 0.25 mm (a k-d tree: fast for many points)."""

    def __init__(self, vessels: list[Vessel]) -> None:
        pts, rad = [], []
        for v in vessels:
            p, r = v.points_lps, v.radii_mm
            arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(p, axis=0), axis=1))])
            s = np.linspace(0.0, arc[-1], max(2, int(arc[-1] / 0.25) + 1))
            pts.append(np.stack([np.interp(s, arc, p[:, k]) for k in range(3)], axis=1))
            rad.append(np.interp(s, arc, r))
        self.r = np.concatenate(rad)
        self.tree = cKDTree(np.concatenate(pts))

    def distance(self, q: np.ndarray) -> np.ndarray:
        d, i = self.tree.query(q, k=8)
        return (d - self.r[i]).min(axis=1)


def _relax(p: np.ndarray, r: np.ndarray, clearance: float, fields, iters: int = 8, smooth: int = 3) -> np.ndarray:
    """Push centre-line samples along the gradient of ``fields`` until the wall is at
    least ``clearance`` from every surface it measures (light smoothing after the
    first ``smooth`` pushes; the last ones only push, so the clearance holds)."""
    p = p.copy()
    for it in range(iters):
        d = fields(p)
        need = r + clearance - d
        move = need > 0
        if not move.any():
            break
        g = unit_gradient(fields, p[move])
        p[move] += g * (need[move] + 0.1)[:, None]
        if it < smooth:
            q = p.copy()
            q[1:-1] = 0.25 * p[:-2] + 0.5 * p[1:-1] + 0.25 * p[2:]
            p = q
    return p


# ----------------------------------------------------------------------------------
# Calcified plaques in the main arteries
# ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Plaque:
    """An eccentric calcified plaque: an ellipsoid centred just outside the lumen on
    the arterial wall, so part of it reaches into the lumen (which stays open)."""

    vessel: str
    centre_lps: np.ndarray  # (3,)
    axes: np.ndarray  # (3, 3) rows: along the vessel, radial (towards the plaque), around
    semi_mm: np.ndarray  # (3,) semi-axes along those rows
    hu: float
    on_centerline_lps: np.ndarray  # the centre-line point it sits at
    lumen_radius_mm: float

    def sd(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Signed distance estimate (mm, negative inside), broadcasting."""
        dx, dy, dz = x - self.centre_lps[0], y - self.centre_lps[1], z - self.centre_lps[2]
        qs = [self.axes[k, 0] * dx + self.axes[k, 1] * dy + self.axes[k, 2] * dz for k in range(3)]
        a = self.semi_mm
        rho = np.sqrt(sum((q / ak) ** 2 for q, ak in zip(qs, a, strict=False)))
        g = np.sqrt(sum((q / ak**2) ** 2 for q, ak in zip(qs, a, strict=False)))
        return (rho - 1.0) * rho / np.maximum(g, 1e-6)

    def bbox_lps(self, pad_mm: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        e = float(self.semi_mm.max()) + pad_mm
        return self.centre_lps - e, self.centre_lps + e

    @property
    def intrusion_mm(self) -> float:
        """How far it reaches into the lumen from the wall."""
        return float(
            self.semi_mm[1] - (np.linalg.norm(self.centre_lps - self.on_centerline_lps) - self.lumen_radius_mm)
        )


#: (artery, fraction of its length) of each plaque, left leg; the seed jitters them.
PLAQUES_LEFT = (
    ("popliteal", 0.30),
    ("popliteal", 0.72),
    ("tibioperoneal_trunk", 0.5),
    ("posterior_tibial", 0.22),
    ("posterior_tibial", 0.78),
    ("peroneal", 0.35),
    ("peroneal", 0.70),
)
PLAQUES_RIGHT = (("popliteal", 0.5), ("posterior_tibial", 0.45), ("peroneal", 0.55))
PLAQUE_WALL_OFFSET_MM = 0.25  # ellipsoid centre outside the lumen wall


def make_plaques(
    arteries: list[Vessel], which, mass: MassModel | None, bumps: ContactBumps | None, rng: np.random.Generator
) -> list[Plaque]:
    by = {v.name: v for v in arteries}
    out = []
    for name, frac in which:
        v = by[name]
        p, r = v.points_lps, v.radii_mm
        arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(p, axis=0), axis=1))])
        s = float(np.clip(frac + rng.uniform(-0.06, 0.06), 0.1, 0.9)) * arc[-1]
        k = int(np.argmin(np.abs(arc - s)))
        T = _tangents(p)[k]
        e1 = np.cross(T, [0.0, 0.0, 1.0]) if abs(T[2]) < 0.9 else np.cross(T, [1.0, 0.0, 0.0])
        e1 /= np.linalg.norm(e1)
        e2 = np.cross(T, e1)
        phi = rng.uniform(0, 2 * np.pi)
        length = rng.uniform(3.0, 6.0)
        hu = rng.uniform(HU_PLAQUE_MIN, HU_PLAQUE_MAX)
        rl = float(r[k])
        semi = np.array([0.5 * length, 0.35 * rl + PLAQUE_WALL_OFFSET_MM, rng.uniform(0.8, 1.1) * rl])
        for _ in range(8):
            n = np.cos(phi) * e1 + np.sin(phi) * e2
            c = p[k] + (rl + PLAQUE_WALL_OFFSET_MM) * n
            # keep it off the bone: the outer side of the plaque must stay in soft tissue
            tip = c + semi[1] * n
            if bone_sd_points(tip[None], mass, bumps)[0] > 0.8:
                break
            phi += np.pi / 4
        axes = np.stack([T, n, np.cross(T, n)])
        out.append(
            Plaque(
                vessel=name,
                centre_lps=c,
                axes=axes,
                semi_mm=semi,
                hu=float(hu),
                on_centerline_lps=p[k].copy(),
                lumen_radius_mm=rl,
            )
        )
    return out


# ----------------------------------------------------------------------------------
# Nutrient arteries of the tibia near the erosion
# ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class NutrientSpec:
    parent: str  # an artery or a collateral name
    t_entry: float  # height where it enters the cortex
    theta_deg: float  # angle around the tibial axis (0 lateral, 90 posterior)
    d0_mm: float
    d1_mm: float


#: The tibial nutrient artery enters the posterior surface and runs obliquely
#: downwards through the cortex into the medullary cavity; here three small ones near
#: the erosion: two from the posterior tibial artery, one from a collateral.
NUTRIENTS = (
    NutrientSpec("posterior_tibial", 0.62, 100.0, 1.4, 1.0),
    NutrientSpec("posterior_tibial", 0.38, 115.0, 1.2, 0.9),
    NutrientSpec("collateral_09", 0.52, 140.0, 1.1, 0.8),
)
NUTRIENT_OBLIQUE_DEG = 40.0  # canal direction below the horizontal, inward and distal


def nutrient_arteries(
    vessels: list[Vessel], mass: MassModel, rng: np.random.Generator, step_mm: float = 0.5
) -> list[Vessel]:
    """Small branches from a parent vessel to the posterior tibial cortex, through an
    oblique canal into the marrow. ``meta['entry_lps']``: where the centre line
    crosses the outer bone surface."""
    by = {v.name: v for v in vessels}
    out = []
    for n, spec in enumerate(NUTRIENTS):
        t_e = spec.t_entry + rng.uniform(-0.01, 0.01)
        th = np.deg2rad(spec.theta_deg + rng.uniform(-8.0, 8.0))
        z_e = float(z_of_t(t_e))
        sp = slice_params(np.array([z_e]))
        tb = sp.tibia[0]
        c, s = np.cos(th), np.sin(th)
        R = float(tibia_radius(tb[2], tb[3], tb[5], c, s))
        radial = np.array([c, s, 0.0])
        surf = np.array([tb[0] + R * c, tb[1] + R * s, z_e])
        cortex = float(tb[4])
        par = by[spec.parent]
        # leave the parent a little above the entry, at its point nearest the canal
        dist = np.linalg.norm(par.points_lps - (surf + np.array([0.0, 0.0, 6.0])), axis=1)
        start = par.points_lps[int(np.argmin(dist))]
        outside = surf + 2.5 * radial + np.array([0.0, 0.0, 1.8])
        a = np.deg2rad(NUTRIENT_OBLIQUE_DEG)
        inward = np.array([-c * np.cos(a), -s * np.cos(a), -np.sin(a)])
        depth = (cortex + 2.5) / np.cos(a)
        mid = surf + 0.5 * depth * inward
        end = surf + depth * inward
        ctrl = np.array([start, outside, surf, mid, end])
        diam = np.array([spec.d0_mm, 0.5 * (spec.d0_mm + spec.d1_mm), spec.d1_mm, spec.d1_mm, spec.d1_mm])
        p, r = _spline_polyline(ctrl, diam, step_mm)
        d = bone_sd_points(p, mass)
        inside = np.nonzero(d < 0)[0]
        k = int(inside[0])
        w = d[k - 1] / (d[k - 1] - d[k])
        entry = p[k - 1] + w * (p[k] - p[k - 1])
        out.append(
            Vessel(
                name=f"nutrient_{n + 1}",
                kind="nutrient",
                points_lps=p,
                radii_mm=r,
                parent=spec.parent,
                meta={"entry_lps": entry, "cortex_mm": cortex, "end_depth_mm": float(-bone_sd_points(p[-1:], mass)[0])},
            )
        )
    return out
