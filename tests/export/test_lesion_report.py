"""The lesion report (issue 10): a four-view sheet with the lesion, entry points,
distance colours, scale bars and side letters, plus CSV and JSON tables; no patient
identity unless asked."""

from __future__ import annotations

import csv
import json
import os
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("VTK_SMP_BACKEND_IN_USE", "STDThread")

import numpy as np
import pytest
from PIL import Image

from viewer.core.errors import ViewerError
from viewer.core.extraction import ClassMasks
from viewer.core.lesion import LesionAnalysis, analyse_lesion, lesion_from_phantom
from viewer.core.presets import default_preset
from viewer.core.volume import Volume
from viewer.export.imagefile import read_settings
from viewer.export.lesion_report import (
    close_up_camera,
    report_cells,
    report_paths,
    scene_class_masks,
    show_lesion,
    write_lesion_report,
)

CELL = (320, 240)
IDENTITY = {"PatientName": "DOE^JANE", "PatientID": "XYZ-12345"}


@pytest.fixture(scope="module")
def case(small_phantom) -> tuple[Volume, ClassMasks, LesionAnalysis]:  # type: ignore[no-untyped-def]
    vol = replace(small_phantom.volume, identity=IDENTITY)
    masks = scene_class_masks(vol, default_preset())
    lesion = lesion_from_phantom(small_phantom.landmarks)
    return vol, masks, analyse_lesion(vol, masks, lesion)


def _is_blue(img: np.ndarray) -> np.ndarray:
    f = img[..., :3].astype(np.int32)
    return (f[..., 2] >= 80) & (f[..., 2] >= 1.5 * f[..., 0]) & (f[..., 2] >= 1.1 * f[..., 1])


def _is_red(img: np.ndarray) -> np.ndarray:
    f = img[..., :3].astype(np.int32)
    return (f[..., 0] >= 80) & (f[..., 0] >= 2 * f[..., 1]) & (f[..., 0] >= 2 * f[..., 2])


def test_report_writes_sheet_and_tables_without_identity(case, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    vol, masks, analysis = case
    paths = write_lesion_report(vol, masks, analysis, tmp_path / "rep.png", tf=default_preset(), cell_px=CELL)
    sheet, entries_csv, branches_csv, js = paths
    assert [p.name for p in paths] == ["rep.png", "rep_entry_points.csv", "rep_branches.csv", "rep.json"]
    assert all(p.is_file() for p in paths)
    img = np.asarray(Image.open(sheet).convert("RGB"))
    w, h = CELL
    assert img.shape[1] > 2 * w and img.shape[0] > 2 * h
    for r in range(2):
        for c in range(2):
            cell = img[r * (h + 2) : r * (h + 2) + h, c * (w + 2) : c * (w + 2) + w]
            assert (cell.max(axis=-1) > 30).mean() > 0.05, f"cell {r},{c} is not black"
            # The distance colour bar at the cell's right edge holds both ends of the map.
            bar = cell[int(0.2 * h) : int(0.8 * h), int(0.82 * w) : int(0.96 * w)]
            assert _is_blue(bar).sum() > 10 and _is_red(bar).sum() > 10
    settings = read_settings(sheet)
    assert settings["lesion_report"]["lesion"] == analysis.lesion.to_dict()
    assert [c["view"] for c in settings["sheet"]["cells"]][:2] == ["anterior", "posterior"]
    assert settings["sheet"]["cells"][3]["view"] == "close-up"
    assert "scale_bar" in settings
    doc = json.loads(js.read_text())
    assert doc == {**analysis.to_json_dict(), "sheet": "rep.png"}
    assert all("length_mm" in b and "diameter_mm" in b for b in doc["branches"]) and doc["branches"]
    assert all(len(e["lps_mm"]) == 3 for e in doc["entry_points"])
    with branches_csv.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(analysis.branches)
    assert [float(r["length_mm"]) for r in rows] == pytest.approx([b.length_mm for b in analysis.branches], abs=0.01)
    with entries_csv.open() as fh:
        assert len(list(csv.DictReader(fh))) == len(analysis.entry_points)
    for p in paths:
        data = p.read_bytes()
        assert b"DOE" not in data and b"XYZ-12345" not in data, f"identity leaked into {p.name}"


def test_identity_only_when_asked(case, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    vol, masks, analysis = case
    paths = write_lesion_report(
        vol, masks, analysis, tmp_path, tf=default_preset(), cell_px=CELL, show_identity=True, colouring="bone"
    )
    assert paths[0] == tmp_path / "lesion_report.png"
    doc = json.loads(paths[-1].read_text())
    assert doc["identity"]["PatientName"] == "DOE^JANE"
    assert read_settings(paths[0])["lesion_report"]["vessel_colouring"] == "bone"


def test_report_output_paths_and_bad_folder(case, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    vol, masks, analysis = case
    assert report_paths(tmp_path / "a.tif") == (tmp_path / "a.tif", tmp_path / "a.csv", tmp_path / "a.json")
    assert report_paths(tmp_path / "out")[0] == tmp_path / "out" / "lesion_report.png"
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ViewerError, match="not a folder"):
        write_lesion_report(vol, masks, analysis, blocker / "r.png", tf=default_preset(), cell_px=CELL)


def test_close_up_looks_at_the_lesion_from_its_side(case) -> None:  # type: ignore[no-untyped-def]
    vol, _, analysis = case
    les = analysis.lesion
    cam = close_up_camera(vol, les)
    np.testing.assert_allclose(cam.focal_point_lps, les.center_lps)
    assert cam.parallel_projection and cam.parallel_scale_mm >= 0.5 * max(np.diff(les.bounds_lps())[0::2])
    # The phantom's lesion is on the left leg (+x): the close-up looks from the patient's left.
    lo, hi = vol.bounds_lps()
    side = np.sign(les.center_lps[0] - (lo[0] + hi[0]) / 2)
    assert np.sign(cam.position_lps[0] - cam.focal_point_lps[0]) == side
    cells = report_cells(vol, les)
    assert [c.view for c in cells][:2] == ["anterior", "posterior"] and cells[3].camera == cam


def test_turntable_movie_shows_the_lesion_visuals(case, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from viewer.export.image import ExportOptions, FigureContext
    from viewer.export.movie import export_turntable
    from viewer.render.scene import Scene

    vol, masks, analysis = case
    tf = default_preset().with_changes(separated=True)
    with Scene(offscreen=True) as scene:
        show_lesion(scene, vol, masks, analysis, tf=tf, keyhole=True)
        res = export_turntable(
            scene, tmp_path / "spin.gif", FigureContext(tf), opts=ExportOptions(width=200, height=200), n_frames=3
        )
    assert res.n_frames == 3
    with Image.open(tmp_path / "spin.gif") as im:
        for n in range(3):
            im.seek(n)
            frame = np.asarray(im.convert("RGB"))
            assert _is_blue(frame).sum() > 20, f"frame {n}: distance colours and colour bar in the movie"
