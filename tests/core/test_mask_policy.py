"""The one mask policy (viewer.core.mask_policy): when class masks are stale."""

from __future__ import annotations

import numpy as np

from viewer.core.extraction import ClassMasks
from viewer.core.mask_policy import MaskSettings, masks_fit, masks_stale
from viewer.core.transfer import TransferFunction


def _masks(
    bone_hu: float = 650.0,
    window: tuple[float, float] = (170.0, 600.0),
    contrast: bool | None = True,
    remove_table: bool = True,
    shape: tuple[int, int, int] = (4, 5, 6),
    forced: bool = False,
) -> ClassMasks:
    return ClassMasks(
        np.zeros(shape, bool),
        None,
        bone_hu,
        window,
        contrast=contrast,
        remove_table=remove_table,
        contrast_forced=forced,
    )


def _tf(**changes: object) -> TransferFunction:
    base = TransferFunction().with_changes(separated=True, real_ct_separation=True, remove_table=True)
    return base.with_bone_threshold(650.0).with_vessel_window(170.0, 600.0).with_changes(**changes)


def test_settings_of_a_transfer_function_and_from_a_plain_tuple() -> None:
    s = MaskSettings.of(_tf())
    assert s == (650.0, (170.0, 600.0), True, True, None)
    assert MaskSettings.of(_tf(contrast="no")).contrast is False
    assert MaskSettings.of(_tf(contrast="yes")).contrast is True
    assert MaskSettings.coerce((650, (170, 600), 1, 1, True)).contrast is True
    assert MaskSettings.coerce((650, (170, 600), 1, 0)) == MaskSettings(650.0, (170.0, 600.0), True, False)
    assert MaskSettings.coerce(s) is s


def test_no_masks_are_stale() -> None:
    assert masks_stale(None, _tf())
    assert not masks_fit(None, MaskSettings.of(_tf()))


def test_bone_threshold_mode_and_table_make_masks_stale() -> None:
    m = _masks()
    assert not masks_stale(m, _tf())
    assert masks_stale(m, _tf().with_bone_threshold(700.0))
    assert masks_stale(m, _tf(real_ct_separation=False))  # real-CT masks, classic asked
    assert masks_stale(m, _tf(remove_table=False))


def test_the_table_setting_does_not_count_for_classic_masks() -> None:
    classic = _masks(contrast=None, remove_table=True)
    tf = _tf(real_ct_separation=False)
    assert not masks_stale(classic, tf)
    assert not masks_stale(classic, tf.with_changes(remove_table=False))
    assert masks_stale(classic, _tf())  # classic masks, real-CT asked


def test_a_vessel_window_edit_restyles_unless_the_exact_window_is_asked() -> None:
    m = _masks()
    moved = _tf().with_vessel_window(200.0, 650.0)
    assert not masks_stale(m, moved)
    assert masks_stale(m, moved, exact_window=True)
    assert not masks_stale(m, _tf(), exact_window=True)


def test_masks_of_another_shape_do_not_fit() -> None:
    m = _masks(shape=(4, 5, 6))
    s = MaskSettings.of(_tf())
    assert masks_fit(m, s, shape=(4, 5, 6))
    assert not masks_fit(m, s, shape=(4, 5, 7))


def test_class_masks_matches_follows_the_policy() -> None:
    m = _masks()
    assert m.matches(650.0, (170.0, 600.0))
    assert not m.matches(650.0, (171.0, 600.0))  # matches compares the window exactly
    assert not m.matches(651.0, (170.0, 600.0))
    assert m.matches(650.0, (170.0, 600.0), remove_table=True)
    assert not m.matches(650.0, (170.0, 600.0), remove_table=False)
    assert not m.matches(650.0, (170.0, 600.0), real_ct=False)
    classic = _masks(contrast=None)
    assert classic.matches(650.0, (170.0, 600.0), remove_table=False)  # classic ignores the table


def test_the_contrast_setting_makes_masks_stale_when_it_says_otherwise() -> None:
    detected_yes = _masks(contrast=True)
    assert not masks_stale(detected_yes, _tf(contrast="auto"))
    # a verdict set by hand that agrees with the detected one: the same separation
    assert not masks_stale(detected_yes, _tf(contrast="yes"))
    assert masks_stale(detected_yes, _tf(contrast="no"))
    forced_no = _masks(contrast=False, forced=True)
    assert not masks_stale(forced_no, _tf(contrast="no"))
    assert masks_stale(forced_no, _tf(contrast="yes"))
    # back to "auto": masks made with a verdict set by hand must be detected anew
    assert masks_stale(forced_no, _tf(contrast="auto"))
    # classic masks carry no verdict; the setting is for the real-CT separation only
    classic = _masks(contrast=None)
    assert not masks_stale(classic, _tf(real_ct_separation=False, contrast="no"))


def test_a_bad_contrast_setting_is_refused() -> None:
    import pytest

    with pytest.raises(ValueError, match="contrast must be one of"):
        _tf(contrast="maybe")
