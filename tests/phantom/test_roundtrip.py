"""Phantom -> DICOM -> viewer.io.load_volume: exact HU, spacing, positions; shuffled
files; feet-first; a marker voxel lands at its known LPS position. And the CLI."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from viewer.cli import main
from viewer.core.volume import Volume
from viewer.io import load_volume
from viewer.io.writers import write_dicom_series
from viewer.phantom import CLEAN_LEGEND, LEGEND, generate


def test_dicom_round_trip_exact(small_phantom, small_phantom_dicom_dir: Path) -> None:
    vol = small_phantom.volume
    back = load_volume(small_phantom_dicom_dir)
    assert back.shape == vol.shape
    assert np.array_equal(back.hu, vol.hu)
    assert np.allclose(back.spacing_mm, vol.spacing_mm, atol=1e-6)
    assert np.allclose(back.ijk_to_lps, vol.ijk_to_lps, atol=1e-6)


def test_shuffled_file_names_load_the_same(small_phantom, small_phantom_dicom_dir: Path, tmp_path: Path) -> None:
    files = sorted(small_phantom_dicom_dir.glob("*.dcm"))
    order = list(range(len(files)))
    random.Random(7).shuffle(order)
    out = tmp_path / "shuffled"
    out.mkdir()
    # file names no longer follow the slice order (and carry no .dcm ending)
    for new, old in enumerate(order):
        shutil.copy(files[old], out / f"x{new:04d}")
    back = load_volume(out)
    assert np.array_equal(back.hu, small_phantom.volume.hu)
    assert np.allclose(back.ijk_to_lps, small_phantom.volume.ijk_to_lps, atol=1e-6)


def test_feet_first_and_marker_voxel(tmp_path: Path) -> None:
    for feet_first in (False, True):
        ph = generate("small", feet_first=feet_first)
        vol = ph.volume
        hu = vol.hu.copy()
        # a marker at a known patient position: 5 mm lateral of the mass centre
        target = np.asarray(ph.landmarks["mass_center_lps"]) + (5.0, 0.0, 0.0)
        i, j, k = np.rint(vol.ijk_of_lps(target)).astype(int)
        hu[k, j, i] = 3000
        marked = Volume(hu=hu, spacing_mm=vol.spacing_mm, ijk_to_lps=vol.ijk_to_lps, metadata=vol.metadata)
        out = tmp_path / ("ff" if feet_first else "hf")
        write_dicom_series(marked, out)
        back = load_volume(out)
        kk, jj, ii = np.argwhere(back.hu == 3000)[0]
        found = back.lps_of_ijk((ii, jj, kk))
        assert np.linalg.norm(found - target) <= 0.5 * np.linalg.norm(vol.spacing_mm) + 1e-6
        assert np.allclose(found, vol.lps_of_ijk((i, j, k)), atol=1e-6)
        # the same anatomy at the same place, whatever the slice order on disk
        assert back.hu_at_lps(tuple(ph.landmarks["mass_center_lps"])) == vol.hu_at_lps(
            tuple(ph.landmarks["mass_center_lps"])
        )


def test_cli_writes_series_labels_and_legend(tmp_path: Path, capsys) -> None:
    out = tmp_path / "ph"
    assert main(["phantom", str(out), "--small", "--labels-format", "nifti"]) == 0
    text = capsys.readouterr().out
    assert "collateral" in text and "168 x 104 x 218" in text and "plaque" in text
    assert len(list((out / "dicom").glob("IM_*.dcm"))) == 218
    assert (out / "labels.nii.gz").is_file()
    legend = json.loads((out / "legend.json").read_text())
    assert legend["labels"] == dict(LEGEND)
    assert set(legend["hu"]) == set(LEGEND) and not legend["clean"]
    assert len(legend["landmarks"]["collaterals"]) >= 12
    assert len(legend["landmarks"]["erosion_box_lps"]) == 2
    assert len(legend["landmarks"]["nutrient_entry_lps"]) >= 2
    assert len(legend["landmarks"]["nutrient_entry_lps"][0]) == 3
    assert isinstance(legend["landmarks"]["table_top_y_mm"], float)
    # a second run refuses to overwrite and changes nothing
    stamp = (out / "legend.json").stat().st_mtime_ns
    assert main(["phantom", str(out), "--size", "small", "--labels-format", "nifti"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (out / "legend.json").stat().st_mtime_ns == stamp
    # the DICOM loads back onto the labels' grid
    back = load_volume(out / "dicom")
    assert np.allclose(back.ijk_to_lps, np.asarray(legend["grid"]["ijk_to_lps"]), atol=1e-6)


def test_cli_clean(tmp_path: Path, capsys) -> None:
    out = tmp_path / "clean"
    assert main(["phantom", str(out), "--small", "--clean"]) == 0
    assert "96 x 96 x 218" in capsys.readouterr().out
    legend = json.loads((out / "legend.json").read_text())
    assert legend["clean"] and legend["labels"] == dict(CLEAN_LEGEND) and set(legend["hu"]) == set(CLEAN_LEGEND)
    assert "table_top_y_mm" not in legend["landmarks"]


@pytest.mark.parametrize("fmt", ["nrrd"])
def test_cli_overwrite(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / "ph"
    assert main(["phantom", str(out), "--size", "small", "--labels-format", fmt]) == 0
    assert main(["phantom", str(out), "--size", "small", "--labels-format", fmt, "--feet-first", "--overwrite"]) == 0
    assert json.loads((out / "legend.json").read_text())["patient_position"] == "FFS"
    assert len(list((out / "dicom").iterdir())) == 218
