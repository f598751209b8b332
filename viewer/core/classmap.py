"""One-component class encoding for the separated bone / vessel rendering (pure numpy).

Why: the CPU ray caster (``vtkFixedPointVolumeRayCastMapper``, the only fast path on
software OpenGL) is 8x slower with two independent components, and VTK's label-map
mask works only in the GPU ray caster (see ``/work/shared/DESIGN.md``). So the class
is folded into the scalar itself and *one* 1D transfer function colours each class.

Encoding (int16, the renderer's only scalar):

* voxels **outside** the bone mask keep their HU, clipped to the *raw range*
  ``[RAW_MIN_HU, RAW_MAX_HU]`` = ``[-1024, 3071]``;
* voxels **inside** the bone mask go to the disjoint *bone range*:
  ``enc = BONE_OFFSET - clip(hu, RAW_MIN_HU, RAW_MAX_HU)`` = ``[-7167, -3072]``
  (higher HU -> more negative code);
* the *gap* ``(-3072, -1024)`` holds no voxel and is transparent.

Why trilinear interpolation does not bring the red fringe back: a bone voxel's
neighbours outside the mask are air, fat, muscle or the mask's dilated rim, all below
the vessel window. Interpolating between a bone code (< -3072) and such a neighbour
(< vessel window) passes only through low-HU bone codes (transparent), the gap
(transparent) and low raw HU (transparent) -- never through the raw vessel window.
Red can only come from samples close to a vessel voxel: a vessel's own edge.

The bone range is kept narrow (HU clipped at 3071, as in 12-bit CT) so the encoded
range spans ~10 k values: ``vtkFixedPointVolumeRayCastMapper`` builds its colour and
opacity tables over the scalar range with at most 32768 entries, so this keeps one
table entry per HU (no visible quantisation of the ramps).

Calcified shells (a third class) cannot get a range of their own: whatever range they
took, trilinear interpolation from them to their neighbours would cross another class's
colours. So their voxels are *hidden* from the volume (set to :data:`HIDDEN_HU`, a
water-like value drawn only when soft tissue is shown) and the renderer draws them as
a surface mesh in their own colour instead (see ``viewer.render.scene``).

MIP in separated mode: bone codes are negative, so a maximum-intensity projection of
the encoded volume shows vessels (and other non-bone tissue) without bone.
"""

from __future__ import annotations

import numpy as np

from viewer.core.errors import ViewerError
from viewer.core.transfer import ColorPoint, OpacityPoint, TransferFunction, threshold_curves

#: Lowest / highest HU kept in the raw (non-bone) range. -1024 is air in CT; 3071 is
#: the top of the 12-bit range most scanners store (real contrast and bone lie below).
RAW_MIN_HU = -1024
RAW_MAX_HU = 3071
#: Bone code = BONE_OFFSET - clip(hu, RAW_MIN_HU, RAW_MAX_HU).
BONE_OFFSET = -4096
#: Encoded values of bone at RAW_MAX_HU / RAW_MIN_HU (ends of the bone range).
BONE_CODE_MIN = BONE_OFFSET - RAW_MAX_HU  # -7167
BONE_CODE_MAX = BONE_OFFSET - RAW_MIN_HU  # -3072
#: Bone drawn from the masks' cancellous floor: opacity there (a share of the class's)
#: and the HU span over which it ramps to full.
BONE_LOW_OPACITY = 0.1
BONE_LOW_RAMP_HU = 250.0
#: Value given to hidden voxels (calcified shells): water, like the liquefied contents
#: such a shell holds; transparent unless soft tissue is shown.
HIDDEN_HU = 0
#: Full encoded scalar range (for MIP windows and table sizes).
ENCODED_RANGE = (BONE_CODE_MIN, RAW_MAX_HU)


def bone_code(hu: float) -> float:
    """Encoded scalar of a bone voxel with this HU (HU clipped to the raw range)."""
    return float(BONE_OFFSET - np.clip(hu, RAW_MIN_HU, RAW_MAX_HU))


def encode_classes(
    hu: np.ndarray,
    bone_mask: np.ndarray | None,
    out: np.ndarray | None = None,
    hidden_mask: np.ndarray | None = None,
    air_mask: np.ndarray | None = None,
) -> np.ndarray:
    """Class-encode ``hu`` ``(nz, ny, nx)`` with boolean ``bone_mask`` (same shape).

    Returns an int16 array (``out`` if given, which must be int16 of the same shape):
    raw HU clipped to ``[-1024, 3071]`` outside the mask, ``-4096 - hu`` inside.
    ``bone_mask=None`` encodes no bone (everything raw). Voxels of ``hidden_mask``
    (outside the bone mask) become :data:`HIDDEN_HU`; voxels of ``air_mask`` (outside
    the patient's body) become air, :data:`RAW_MIN_HU`.
    """
    hu = np.asarray(hu)
    if hu.ndim != 3:
        raise ViewerError(f"class encoding needs a 3D HU volume, got shape {hu.shape}")
    if out is None:
        out = np.empty(hu.shape, dtype=np.int16)
    elif out.shape != hu.shape or out.dtype != np.int16:
        raise ViewerError("class encoding output must be int16 with the volume's shape")
    np.clip(hu, RAW_MIN_HU, RAW_MAX_HU, out=out, casting="unsafe")
    if bone_mask is not None:
        mask = np.asarray(bone_mask)
        if mask.shape != hu.shape:
            raise ViewerError(f"bone mask shape {mask.shape} does not match the volume {hu.shape}")
        if mask.dtype != np.bool_:
            mask = mask.astype(bool)
        # In place and only where the mask is set: no full-size temporaries (a
        # 512x512x600 volume is 0.3 GB as int16).
        np.subtract(np.int16(BONE_OFFSET), out, out=out, where=mask)
    if hidden_mask is not None:
        hidden = np.asarray(hidden_mask)
        if hidden.shape != hu.shape:
            raise ViewerError(f"hidden-class mask shape {hidden.shape} does not match the volume {hu.shape}")
        if bone_mask is not None:
            hidden = hidden & ~np.asarray(bone_mask, dtype=bool)
        out[hidden.astype(bool, copy=False)] = HIDDEN_HU
    if air_mask is not None:
        # Outside the patient's body (couch, holders): air, drawn in no class.
        air = np.asarray(air_mask, dtype=bool)
        if air.shape != hu.shape:
            raise ViewerError(f"removed-voxel mask shape {air.shape} does not match the volume {hu.shape}")
        out[air] = RAW_MIN_HU
    return out


#: Distance colouring (issue 10): the colour map of vessels coloured by distance (mm)
#: to a lesion or to bone, as a share of the colour bar's maximum: near red, through
#: orange, yellow and green, to blue far away (hues apart from ivory bone). Those
#: vessels are drawn as a surface mesh, not through this encoding: a band of codes per
#: distance would make every band voxel's edge interpolate across the other bands'
#: colours, and its inside (nearly constant codes) has no gradient to shade by -- tried:
#: the vessels rendered dark, blocky and speckled (see docs/lesion.md).
DISTANCE_COLOUR_STOPS: tuple[tuple[float, tuple[float, float, float]], ...] = (
    (0.0, (1.0, 0.12, 0.08)),
    (0.25, (1.0, 0.55, 0.0)),
    (0.5, (0.95, 0.92, 0.1)),
    (0.75, (0.15, 0.85, 0.35)),
    (1.0, (0.2, 0.45, 1.0)),
)


def distance_rgb(fraction: float | np.ndarray) -> np.ndarray:
    """RGB (0..1) of the distance colour map at ``fraction`` (distance / maximum, clipped
    to 0..1); ``(..., 3)``."""
    f = np.clip(np.asarray(fraction, dtype=np.float64), 0.0, 1.0)
    xs = np.array([s[0] for s in DISTANCE_COLOUR_STOPS])
    rgb = np.array([s[1] for s in DISTANCE_COLOUR_STOPS])
    return np.stack([np.interp(f, xs, rgb[:, c]) for c in range(3)], axis=-1)


def decode_hu(encoded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`encode_classes`: ``(hu int16, bone_mask bool)`` (HU clipped)."""
    enc = np.asarray(encoded)
    bone = enc <= BONE_CODE_MAX
    hu = enc.astype(np.int16, copy=True)
    np.subtract(np.int16(BONE_OFFSET), hu, out=hu, where=bone)
    return hu, bone


def _eval_pw(xs: np.ndarray, ys: np.ndarray, x: float) -> float:
    return float(np.interp(x, xs, ys))


def _restrict(
    points: list[tuple[float, float, tuple[float, float, float]]], lo: float, hi: float
) -> list[tuple[float, float, tuple[float, float, float]]]:
    """Piecewise-linear curve (x, opacity, rgb) restricted to ``[lo, hi]`` with its
    values at both ends inserted, so nothing of it leaks into a neighbouring range."""
    xs = np.array([p[0] for p in points], dtype=float)
    op = np.array([p[1] for p in points], dtype=float)
    rgb = np.array([p[2] for p in points], dtype=float)

    def at(x: float) -> tuple[float, float, tuple[float, float, float]]:
        c = tuple(float(np.interp(x, xs, rgb[:, i])) for i in range(3))
        return (x, _eval_pw(xs, op, x), c)  # type: ignore[return-value]

    inner = [p for p in points if lo < p[0] < hi]
    return [at(lo), *inner, at(hi)]


def class_transfer_points(
    tf: TransferFunction, ramp_hu: float = 40.0, bone_low_hu: float | None = None
) -> tuple[tuple[OpacityPoint, ...], tuple[ColorPoint, ...]]:
    """Opacity and colour points over the **encoded** scalar for separated mode.

    * bone range: the bone appearance from ``bone_low_hu`` (the masks' cancellous
      floor; else ``tf.bone_threshold_hu``) upward (ramping in over ``ramp_hu``),
      transparent below it (marrow);
    * gap: transparent;
    * raw range: the threshold curves of ``tf`` (soft tissue, vessel window, and
      non-bone voxels at or above the bone threshold -- calcified plaque, bone specks
      dropped from the mask -- drawn with the bone appearance).

    Class visibility / opacity come from ``tf.bone``, ``tf.vessel``, ``tf.soft_tissue``,
    so toggling a class is a transfer-function edit, not a re-encode. The points'
    ``x`` / ``hu`` fields hold encoded scalars, strictly increasing.
    """
    # The bone class is drawn from ``bone_low_hu`` when the masks say where bone
    # starts (a bone object holds cancellous bone at 150-400 HU, which a cortical
    # threshold would leave transparent), else from the bone threshold.
    bt = float(tf.bone_threshold_hu) if bone_low_hu is None else float(bone_low_hu)
    b_op = tf.bone.opacity if tf.bone.visible else 0.0
    r, g, b = (float(c) for c in tf.bone.color)
    bone_rgb = (r, g, b)
    black = (0.0, 0.0, 0.0)

    # Bone range, written in HU and mapped to codes (code decreases as HU rises).
    if bone_low_hu is None:
        bone_hu_pts: list[tuple[float, float]] = [
            (RAW_MIN_HU, 0.0),
            (bt - 0.5, 0.0),
            (bt, 0.5 * b_op),
            (bt + 4.0 * ramp_hu, b_op),
            (RAW_MAX_HU, b_op),
        ]
    else:
        # From the cancellous floor a gentle ramp: the bone object's edge voxels (its
        # partial-volume rim, noisy at 150-300 HU) add a little opacity each, so the
        # surface forms where they add up, inside the mask, not on its voxel staircase.
        bone_hu_pts = [
            (RAW_MIN_HU, 0.0),
            (bt - 0.5, 0.0),
            (bt, BONE_LOW_OPACITY * b_op),
            (bt + BONE_LOW_RAMP_HU, b_op),
            (RAW_MAX_HU, b_op),
        ]
    bone_pts = []
    for h, o in bone_hu_pts:
        h = float(np.clip(h, RAW_MIN_HU, RAW_MAX_HU))
        bone_pts.append((bone_code(h), o, bone_rgb))
    bone_pts.sort(key=lambda p: p[0])

    raw_op, raw_col = threshold_curves(tf, ramp_hu=ramp_hu)
    raw = [(p.x, p.opacity, (c.r, c.g, c.b)) for p, c in zip(raw_op, raw_col, strict=False)]
    raw_pts = _restrict(raw, float(RAW_MIN_HU), float(RAW_MAX_HU))

    pts: list[tuple[float, float, tuple[float, float, float]]] = [
        *bone_pts,
        # The gap: transparent on both sides so neither class's colour bleeds into it.
        (BONE_CODE_MAX + 0.5, 0.0, black),
        (RAW_MIN_HU - 0.5, 0.0, black),
        *raw_pts,
    ]
    out: list[tuple[float, float, tuple[float, float, float]]] = []
    for x, o, c in sorted(pts, key=lambda p: p[0]):
        if out and x <= out[-1][0]:
            # vtkPiecewiseFunction keeps one point per x; nudge duplicates.
            x = out[-1][0] + 0.01
        out.append((x, o, c))
    return (
        tuple(OpacityPoint(x, o) for x, o, _ in out),
        tuple(ColorPoint(x, *c) for x, _, c in out),
    )


def mip_transfer_points(
    tf: TransferFunction,
) -> tuple[tuple[OpacityPoint, ...], tuple[ColorPoint, ...]]:
    """Grey ramp for maximum-intensity projection over ``tf.mip_window_hu``.

    Valid for both raw HU and encoded volumes: bone codes are below -3072, i.e. black
    and transparent, so a separated-mode MIP shows vessels without bone.
    """
    lo, hi = tf.mip_window_hu
    if hi <= lo:
        hi = lo + 1.0
    start = min(float(BONE_CODE_MIN), lo) - 1.0
    # Opaque from just above the window's bottom: the grey ramp alone sets brightness
    # (an opacity ramp too would square it); below it the background shows.
    op = (OpacityPoint(start, 0.0), OpacityPoint(lo, 0.0), OpacityPoint(lo + 0.01 * (hi - lo), 1.0))
    col = (ColorPoint(start, 0, 0, 0), ColorPoint(lo, 0, 0, 0), ColorPoint(hi, 1, 1, 1))
    return op, col


__all__ = [
    "HIDDEN_HU",
    "BONE_CODE_MAX",
    "BONE_CODE_MIN",
    "BONE_OFFSET",
    "DISTANCE_COLOUR_STOPS",
    "ENCODED_RANGE",
    "RAW_MAX_HU",
    "RAW_MIN_HU",
    "bone_code",
    "class_transfer_points",
    "decode_hu",
    "distance_rgb",
    "encode_classes",
    "mip_transfer_points",
]
