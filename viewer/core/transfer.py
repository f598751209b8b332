"""Transfer functions as plain, frozen, serialisable data (all values in HU).

A :class:`TransferFunction` holds what VTK's ``vtkVolumeProperty`` needs (piecewise
linear scalar opacity and colour over HU, optional gradient opacity, shading, blend
mode) plus the two numbers a surgeon thinks in: the **vessel window** ``[low, high]``
HU and the **bone threshold** HU.

Two kinds of curve:

* ``curves="threshold"``: the opacity and colour points are *derived* from the
  thresholds and the per-class appearances (:attr:`bone`, :attr:`vessel`,
  :attr:`soft_tissue`) by :func:`threshold_curves`; moving a threshold moves the curves.
* ``curves="custom"``: the stored points are used as they are (imported 3D Slicer
  presets, hand-made curves); the thresholds still drive the separated mode's masks.

In **separated** mode the renderer does not use the 1D curves on raw HU at all: it
colours a class-encoded volume (see ``viewer.core.classmap``) with one transfer
function per class built from :attr:`bone`, :attr:`vessel` and :attr:`soft_tissue`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

RGB = tuple[float, float, float]
BlendMode = Literal["composite", "mip"]
CurveKind = Literal["threshold", "custom"]
Interpolation = Literal["linear", "nearest"]
#: Separated mode: whether the scan has opacified vessels -- detected from the scan
#: ("auto") or said by the user ("yes" / "no") where the detection is wrong.
ContrastSetting = Literal["auto", "yes", "no"]
CONTRAST_SETTINGS: tuple[ContrastSetting, ...] = ("auto", "yes", "no")


@dataclass(frozen=True)
class ColorPoint:
    """Colour at a HU value; r, g, b in [0, 1]."""

    hu: float
    r: float
    g: float
    b: float


@dataclass(frozen=True)
class OpacityPoint:
    """Opacity in [0, 1] at ``x`` (HU for scalar opacity, HU/mm for gradient opacity)."""

    x: float
    opacity: float


@dataclass(frozen=True)
class Shading:
    """Phong shading coefficients as in ``vtkVolumeProperty``."""

    enabled: bool = True
    ambient: float = 0.25
    diffuse: float = 0.8
    specular: float = 0.25
    specular_power: float = 20.0


@dataclass(frozen=True)
class ClassAppearance:
    """How one tissue class looks: colour, peak opacity, and whether it is shown."""

    color: RGB
    opacity: float = 1.0
    visible: bool = True


#: Defaults a surgeon would recognise: ivory bone, arterial red, pale soft tissue.
IVORY: RGB = (0.93, 0.88, 0.76)
ARTERY_RED: RGB = (0.85, 0.08, 0.06)
SOFT_TISSUE: RGB = (0.85, 0.55, 0.45)
#: Calcification (eggshell rim of a calcified mass): pale gold, so it reads as
#: mineral like bone yet is told apart from both bone and vessels at a glance.
CALCIFICATION_GOLD: RGB = (0.95, 0.78, 0.30)


@dataclass(frozen=True)
class TransferFunction:
    """A complete, serialisable description of how HU become colour and opacity."""

    name: str = "Bone + vessels"
    description: str = ""
    vessel_window_hu: tuple[float, float] = (180.0, 600.0)
    bone_threshold_hu: float = 650.0
    bone: ClassAppearance = ClassAppearance(IVORY, 0.9, True)
    vessel: ClassAppearance = ClassAppearance(ARTERY_RED, 0.9, True)
    soft_tissue: ClassAppearance = ClassAppearance(SOFT_TISSUE, 0.0, False)
    #: Calcified shells found by ``viewer.core.extraction.calcification_mask``; used
    #: in separated mode only (a 1D transfer function cannot tell them from vessels).
    calcification: ClassAppearance = ClassAppearance(CALCIFICATION_GOLD, 1.0, True)
    #: HU range shown as soft tissue when ``soft_tissue.visible``.
    soft_tissue_window_hu: tuple[float, float] = (-150.0, 120.0)
    curves: CurveKind = "threshold"
    #: Used when ``curves == "custom"`` (otherwise derived, see :meth:`opacity_points`).
    scalar_opacity: tuple[OpacityPoint, ...] = ()
    color: tuple[ColorPoint, ...] = ()
    gradient_opacity: tuple[OpacityPoint, ...] = ()
    shading: Shading = Shading()
    blend_mode: BlendMode = "composite"
    separated: bool = False
    #: VTK's scalar opacity unit distance: the ray length (mm) over which the
    #: scalar opacity applies unchanged.
    unit_distance_mm: float = 1.0
    #: HU shown as black / white in maximum-intensity projection.
    mip_window_hu: tuple[float, float] = (0.0, 800.0)
    #: Sample interpolation, as ``vtkVolumeProperty::SetInterpolationType`` (and 3D
    #: Slicer's ``interpolation`` attribute: 0 nearest, 1 linear).
    interpolation: Interpolation = "linear"
    #: Separated mode: drop everything outside the patient's body (CT couch, head
    #: holder, immobilisation mask) before classifying (viewer.core.separation).
    remove_table: bool = True
    #: Separated mode: the real-CT separation (body mask, bone as an object, plaque and
    #: contrast checks; viewer.core.separation) instead of the classic one.
    real_ct_separation: bool = True
    #: Separated mode (real-CT separation): "auto" detects whether the scan has
    #: opacified vessels; "yes" / "no" say it (a wrong verdict paints bone red or hides
    #: the vessels; docs/separation.md says where the detection fails).
    contrast: ContrastSetting = "auto"
    #: Separated mode: draw the voxels whose class is unsure (vessel touching cortex)
    #: in their own colour on top of the rendering.
    show_uncertain: bool = False
    #: Separated mode: draw what the body mask removed (the couch) as a grey ghost.
    show_removed: bool = False

    def __post_init__(self) -> None:
        lo, hi = (float(v) for v in self.vessel_window_hu)
        object.__setattr__(self, "vessel_window_hu", (lo, hi))
        object.__setattr__(self, "bone_threshold_hu", float(self.bone_threshold_hu))
        object.__setattr__(self, "scalar_opacity", tuple(self.scalar_opacity))
        object.__setattr__(self, "color", tuple(self.color))
        object.__setattr__(self, "gradient_opacity", tuple(self.gradient_opacity))
        a, b = (float(v) for v in self.soft_tissue_window_hu)
        object.__setattr__(self, "soft_tissue_window_hu", (a, b))
        a, b = (float(v) for v in self.mip_window_hu)
        object.__setattr__(self, "mip_window_hu", (a, b))
        if self.contrast not in CONTRAST_SETTINGS:
            raise ValueError(f"contrast must be one of {', '.join(CONTRAST_SETTINGS)}, got {self.contrast!r}")

    # ----- edits (new objects) ---------------------------------------------------
    def with_vessel_window(self, low_hu: float, high_hu: float) -> TransferFunction:
        low_hu, high_hu = sorted((float(low_hu), float(high_hu)))
        return replace(self, vessel_window_hu=(low_hu, high_hu))

    def with_bone_threshold(self, hu: float) -> TransferFunction:
        return replace(self, bone_threshold_hu=float(hu))

    def with_changes(self, **changes: Any) -> TransferFunction:
        return replace(self, **changes)

    # ----- derived curves ---------------------------------------------------------
    def opacity_points(self) -> tuple[OpacityPoint, ...]:
        """Scalar opacity over raw HU for the one-component (not separated) path."""
        if self.curves == "custom":
            return self.scalar_opacity
        return threshold_curves(self)[0]

    def color_points(self) -> tuple[ColorPoint, ...]:
        """Colour over raw HU for the one-component (not separated) path."""
        if self.curves == "custom":
            return self.color
        return threshold_curves(self)[1]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (see ``viewer.core.presets`` for the file schema)."""
        return asdict(self)


def threshold_curves(
    tf: TransferFunction, ramp_hu: float = 40.0
) -> tuple[tuple[OpacityPoint, ...], tuple[ColorPoint, ...]]:
    """Derive 1D opacity and colour points over raw HU from the thresholds.

    Vessel window ``[lo, hi]`` -> vessel colour, bone threshold and above -> bone
    colour; each class ramps in over ``ramp_hu`` so edges are smooth rather than
    aliased. Where the vessel window reaches past the bone threshold, bone wins
    above the threshold. Hidden classes get zero opacity.
    """
    lo, hi = tf.vessel_window_hu
    bt = tf.bone_threshold_hu
    v_op = tf.vessel.opacity if tf.vessel.visible else 0.0
    b_op = tf.bone.opacity if tf.bone.visible else 0.0
    s_op = tf.soft_tissue.opacity if tf.soft_tissue.visible else 0.0
    s_lo, s_hi = tf.soft_tissue_window_hu
    pts: list[tuple[float, float, RGB]] = [(-3024.0, 0.0, (0.0, 0.0, 0.0))]
    if s_op > 0:
        pts += [
            (s_lo - ramp_hu, 0.0, tf.soft_tissue.color),
            (s_lo, s_op, tf.soft_tissue.color),
            (min(s_hi, lo - 2 * ramp_hu), s_op, tf.soft_tissue.color),
        ]
    v_hi = min(hi, bt - 1.0)
    if v_hi > lo:
        pts += [
            (lo - ramp_hu, 0.0, tf.vessel.color),
            (lo, v_op, tf.vessel.color),
            (v_hi, v_op, tf.vessel.color),
        ]
        if hi < bt - ramp_hu:
            pts += [(min(hi + ramp_hu, bt - 1.0), 0.0, tf.vessel.color)]
    pts += [
        (bt - 0.5, 0.0 if hi < bt - ramp_hu or v_hi <= lo else v_op, tf.bone.color),
        (bt, b_op * 0.5, tf.bone.color),
        (bt + ramp_hu * 4, b_op, tf.bone.color),
        (4000.0, b_op, tf.bone.color),
    ]
    # Keep x strictly increasing (vtkPiecewiseFunction replaces equal-x points).
    out: list[tuple[float, float, RGB]] = []
    for x, o, c in sorted(pts, key=lambda p: p[0]):
        if out and x <= out[-1][0]:
            x = out[-1][0] + 0.01
        out.append((x, o, c))
    opacity = tuple(OpacityPoint(x, o) for x, o, _ in out)
    color = tuple(ColorPoint(x, *c) for x, _, c in out)
    return opacity, color


__all__ = [
    "ARTERY_RED",
    "CALCIFICATION_GOLD",
    "IVORY",
    "SOFT_TISSUE",
    "BlendMode",
    "ClassAppearance",
    "CurveKind",
    "Interpolation",
    "ColorPoint",
    "OpacityPoint",
    "Shading",
    "TransferFunction",
    "threshold_curves",
]
