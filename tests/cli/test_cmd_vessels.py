"""``vessel-viewer vessels``: the count around the phantom's bone defect, and clean errors."""

from __future__ import annotations

import json

import pytest

from viewer.cli import main


def test_counts_the_collaterals_around_the_defect(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["vessels", "phantom:small", "--at-lesion", "--radius", "40", "--json"]) == 0
    near = json.loads(capsys.readouterr().out)
    assert near["radius_mm"] == 40.0 and near["vessel_window_hu"] == [170.0, 600.0]
    # Three main arteries plus the collaterals winding round the eroded bone.
    assert near["max_profiles_per_slice"] >= 6
    assert near["lumen_volume_mm3"] > 100
    assert main(["vessels", "phantom:small", "--at-lesion", "--radius", "40"]) == 0
    assert "vessels cut by one axial slice" in capsys.readouterr().out


def test_bad_input_fails_cleanly(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    assert main(["vessels", str(tmp_path / "missing"), "--at", "0", "0", "0"]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert main(["vessels", str(tmp_path), "--at-lesion"]) == 2
    assert "--at-lesion needs the built-in phantom" in capsys.readouterr().err
    assert main(["vessels", "phantom:small", "--at", "0", "0", "0", "--preset", "nope"]) == 2
    assert "unknown preset" in capsys.readouterr().err
