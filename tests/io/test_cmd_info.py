"""``vessel-viewer info``: text and JSON output, identity hidden unless asked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dicom_factory import PATIENT_ID, PATIENT_NAME, ramp_volume, write_series

from viewer.cli import main


@pytest.fixture()
def series_dir(tmp_path: Path) -> Path:
    write_series(tmp_path / "ct", ramp_volume(nz=6), series_uid="1.9", series_number=4)
    write_series(
        tmp_path / "ct", ramp_volume(nz=2), series_uid="1.8", series_number=5, description="Other", names=["o1", "o2"]
    )
    (tmp_path / "ct" / "readme.txt").write_text("hi")
    return tmp_path / "ct"


def test_info_text(series_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(series_dir)]) == 0
    out = capsys.readouterr().out
    assert "2 series found" in out
    assert "* #4 Synthetic CT" in out and "key=1.9" in out
    assert "10 x 12 x 6" in out
    assert "0.6 x 0.8 x 2 mm" in out
    assert "HU range:             -1000 .. -414" in out
    assert "readme.txt" in out  # warnings are listed
    assert PATIENT_NAME not in out and PATIENT_ID not in out


def test_info_json_and_identity(series_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(series_dir), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["chosen"] == "1.9"
    assert data["dimensions_xyz"] == [10, 12, 6]
    assert data["spacing_mm"] == pytest.approx([0.6, 0.8, 2.0])
    assert data["hu_range"] == [-1000, -414]
    assert [s["key"] for s in data["series"]] == ["1.9", "1.8"]
    assert "identity" not in data
    assert PATIENT_NAME not in json.dumps(data)

    assert main(["info", str(series_dir), "--json", "--show-identity", "--series", "1.8"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["chosen"] == "1.8" and data["dimensions_xyz"][2] == 2
    assert data["identity"]["PatientName"] == PATIENT_NAME

    assert main(["info", str(series_dir), "--show-identity"]) == 0
    assert PATIENT_ID in capsys.readouterr().out


def test_info_bad_path_is_a_clean_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "x.txt").write_text("no")
    assert main(["info", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no DICOM" in err and "Traceback" not in err
