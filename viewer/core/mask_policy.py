"""The one mask policy: which settings class masks depend on, and when a set is stale.

Class masks (:class:`~viewer.core.extraction.ClassMasks`) cost seconds on a real scan,
so every place that holds them asks the same question before computing new ones: do
the masks it has still fit the transfer function it draws? This module answers it, for
the GUI's mask controller (:mod:`viewer.ui.mask_controller`), for
:meth:`ClassMasks.matches` (and so the scene's own masks) and for the threshold-sweep
movie (:mod:`viewer.export.movie`). Nothing else decides it.

The settings the masks are computed for (:class:`MaskSettings`):

* ``bone_threshold_hu``: the cortical seed threshold. A change always makes the masks stale.
* ``real_ct``: the real-CT separation (body mask, bone object, contrast check) or the
  classic phantom-tuned one. Masks of the other kind are stale. Real-CT masks carry a
  contrast verdict (``contrast`` is True or False); classic ones carry None.
* ``contrast``: the contrast verdict the user set (True / False), or None to let the
  separation detect it. Masks made with a verdict set carry ``contrast_forced``; they fit
  a setting that says the same verdict, and auto-detected masks fit a set verdict
  they agree with (the separation is the same), but forced masks never fit "auto".
* ``remove_table``: whether the couch was dropped. Only the real-CT separation uses it,
  so it is compared only for real-CT masks.
* ``vessel_window_hu``: the window's low end shapes the masks a little (rim dilation,
  calcified shells), but a window edit must restyle at once, not re-encode the volume
  and make the CPU ray caster recompute its gradients (about 1 s on 224x224x380, 6 s on
  512x512x640) on every tweak. So by default (``exact_window=False``) the window does not
  make masks stale; the masks keep the window they were made with until the bone
  threshold, the mode or the scan changes. ``exact_window=True`` asks whether the masks
  were made for exactly this window too (what :meth:`ClassMasks.matches` answers).

Which *volume* the masks belong to is not recorded in the masks; whoever holds them
tracks it (the mask controller keeps the volume's identity, the scene drops its masks
with its volume). :func:`masks_fit` checks the shape when given the volume's shape.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:
    from viewer.core.transfer import TransferFunction


class MaskedSettings(Protocol):
    """What a set of class masks records about how it was made (ClassMasks has these)."""

    @property
    def bone_threshold_hu(self) -> float: ...

    @property
    def vessel_window_hu(self) -> tuple[float, float]: ...

    @property
    def remove_table(self) -> bool: ...

    @property
    def contrast(self) -> bool | None: ...

    @property
    def contrast_forced(self) -> bool: ...


class MaskSettings(NamedTuple):
    """The settings :func:`viewer.core.extraction.class_masks` is called with.

    A tuple, so ``(bone, (lo, hi), remove_table, real_ct)`` works where one is expected
    (``contrast`` then None: detected).
    """

    bone_threshold_hu: float
    vessel_window_hu: tuple[float, float]
    remove_table: bool
    real_ct: bool
    contrast: bool | None = None

    @classmethod
    def of(cls, tf: TransferFunction) -> MaskSettings:
        """The mask settings of a transfer function (whether or not it is separated)."""
        lo, hi = tf.vessel_window_hu
        return cls(
            float(tf.bone_threshold_hu),
            (float(lo), float(hi)),
            bool(tf.remove_table),
            bool(tf.real_ct_separation),
            contrast_verdict(tf.contrast),
        )

    @classmethod
    def coerce(cls, value: MaskSettings | tuple[Any, ...]) -> MaskSettings:
        """A :class:`MaskSettings` from one or from a plain 4- or 5-tuple."""
        if isinstance(value, MaskSettings):
            return value
        bone, (lo, hi), remove_table, real_ct, *rest = value
        contrast = None if not rest or rest[0] is None else bool(rest[0])
        return cls(float(bone), (float(lo), float(hi)), bool(remove_table), bool(real_ct), contrast)


def contrast_verdict(setting: str) -> bool | None:
    """The transfer function's contrast setting as the separation takes it: "yes" True,
    "no" False, "auto" None (detect)."""
    return {"auto": None, "yes": True, "no": False}[setting]


def masks_fit(
    masks: MaskedSettings | None,
    settings: MaskSettings,
    *,
    exact_window: bool = False,
    shape: tuple[int, ...] | None = None,
) -> bool:
    """Whether ``masks`` may be drawn for ``settings`` without computing new ones.

    False for no masks, another bone threshold, another separation kind (real-CT masks
    carry a contrast verdict, classic ones None), real-CT masks made with the other
    table setting, and (``exact_window``) another vessel window. With ``shape``, masks
    of another shape (another volume) are stale too."""
    if masks is None:
        return False
    if shape is not None:
        bone = getattr(masks, "bone", None)
        if bone is None or tuple(bone.shape) != tuple(shape):
            return False
    if float(masks.bone_threshold_hu) != float(settings.bone_threshold_hu):
        return False
    real_ct_masks = masks.contrast is not None
    if real_ct_masks != settings.real_ct:
        return False
    if real_ct_masks and bool(masks.remove_table) != settings.remove_table:
        return False
    if real_ct_masks:
        if settings.contrast is None and masks.contrast_forced:
            return False
        if settings.contrast is not None and bool(masks.contrast) != settings.contrast:
            return False
    if exact_window:
        lo, hi = settings.vessel_window_hu
        if tuple(float(v) for v in masks.vessel_window_hu) != (float(lo), float(hi)):
            return False
    return True


def masks_stale(masks: MaskedSettings | None, tf: TransferFunction, *, exact_window: bool = False) -> bool:
    """Whether ``tf`` in separated mode needs masks other than ``masks`` (the negation
    of :func:`masks_fit` for the transfer function's settings)."""
    return not masks_fit(masks, MaskSettings.of(tf), exact_window=exact_window)


__all__ = ["MaskSettings", "MaskedSettings", "contrast_verdict", "masks_fit", "masks_stale"]
