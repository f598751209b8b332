"""``vessel-viewer lesion`` and the lesion options of ``vessel-viewer render``: results
on the phantom and the real CTA, the report files, and one-line failures (exit 2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("VTK_SMP_BACKEND_IN_USE", "STDThread")

import numpy as np
import pytest
from PIL import Image

from viewer.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def small_bounds() -> tuple[np.ndarray, np.ndarray]:
    from viewer.phantom import generate

    return generate("small").volume.bounds_lps()


def _blue(img: np.ndarray) -> np.ndarray:
    f = img[..., :3].astype(np.int32)
    return (f[..., 2] >= 80) & (f[..., 2] >= 1.5 * f[..., 0]) & (f[..., 2] >= 1.1 * f[..., 1])


def test_lesion_json_and_report_on_the_phantom(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sheet = tmp_path / "report.png"
    rc = main(
        ["lesion", "phantom:small", "--phantom-lesion", "--json", "-q", "--sheet", str(sheet), "--size", "320x240"]
    )
    out = capsys.readouterr()
    assert rc == 0, out.err
    doc = json.loads(out.out)
    assert doc["branches"], "branches near the phantom's lesion"
    assert all({"length_mm", "diameter_mm"} <= set(b) and b["length_mm"] > 0 for b in doc["branches"])
    assert all(len(e["lps_mm"]) == 3 for e in doc["entry_points"])
    assert doc["lesion"]["box_lps"] is not None
    for name in ("report.png", "report_entry_points.csv", "report_branches.csv", "report.json"):
        assert (tmp_path / name).is_file(), name
    assert json.loads((tmp_path / "report.json").read_text())["branches"] == doc["branches"]
    img = np.asarray(Image.open(sheet).convert("RGB"))
    assert (img.max(axis=-1) > 30).mean() > 0.05 and _blue(img).sum() > 50


def test_lesion_table_and_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from viewer.phantom import generate

    ph = generate("small")
    lo, hi = (np.asarray(p, float) for p in ph.landmarks["erosion_box_lps"])
    c = (lo + hi) / 2
    rc = main(["lesion", "phantom:small", "--lesion", *(f"{v:.2f}" for v in c), "40", "--csv", str(tmp_path / "t.csv")])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "Lesion: centre" in out.out and "sphere radius 40.0 mm" in out.out
    assert "Branches:" in out.out and "Lumen volume in the lesion" in out.out
    assert (tmp_path / "t_entry_points.csv").is_file() and (tmp_path / "t_branches.csv").is_file()


def _bad(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    rc = main(args)
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    return err


def test_bad_lesions_fail_in_one_line(small_bounds, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    lo, hi = small_bounds
    mid = [f"{v:.1f}" for v in (lo + hi) / 2]
    assert "greater than 0" in _bad(["lesion", "phantom:small", "--lesion", *mid, "0", "-q"], capsys)
    outside = [f"{hi[0] + 100:.1f}", mid[1], mid[2]]
    assert "outside the scan" in _bad(["lesion", "phantom:small", "--lesion", *outside, "10", "-q"], capsys)
    assert "larger than the scan" in _bad(["lesion", "phantom:small", "--lesion", *mid, "5000", "-q"], capsys)
    corner = [f"{v:.1f}" for v in lo + 4.0]  # in the air at the scan's corner
    assert "vessel" in _bad(["lesion", "phantom:small", "--lesion", *corner, "3", "-q"], capsys).lower()
    assert "phantom" in _bad(["lesion", str(ROOT / "README.md"), "--phantom-lesion", "-q"], capsys)
    assert "min < max" in _bad(["lesion", "phantom:small", "--lesion-box", "10", "0", "0", "10", "0", "10"], capsys)
    box = [f"{v:.1f}" for v in (hi[0] + 10, hi[0] + 40, lo[1], hi[1], lo[2], hi[2])]
    assert "outside the scan" in _bad(["lesion", "phantom:small", "--lesion-box", *box, "-q"], capsys)
    assert "keyhole" in _bad(["render", "phantom:small", "--keyhole", "--out", "/tmp/x.png", "-q"], capsys)


def test_no_traceback_from_the_command_line() -> None:
    env = {**os.environ, "VTK_SMP_BACKEND_IN_USE": "STDThread"}
    env.pop("DISPLAY", None)
    r = subprocess.run(
        [sys.executable, "-m", "viewer", "lesion", "phantom:small", "--lesion", "0", "0", "0", "0"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [
        "vessel-viewer lesion: error: lesion radius must be greater than 0 mm, got 0 mm"
    ]


def test_render_with_lesion_keyhole_colours_and_rulers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from viewer.phantom import generate

    ph = generate("small")
    lo, hi = (np.asarray(p, float) for p in ph.landmarks["erosion_box_lps"])
    c = [f"{v:.1f}" for v in (lo + hi) / 2]
    out = tmp_path / "fig.png"
    ruler = [c[0], "-40", c[2], f"{float(c[0]) + 50:.1f}", "-40", c[2]]
    args = ["render", "phantom:small", "--lesion", *c, "25", "--keyhole", "--vessel-colour", "lesion"]
    rc = main([*args, "--ruler", *ruler, "--size", "400x400", "--out", str(out), "-q"])
    assert rc == 0, capsys.readouterr().err
    img = np.asarray(Image.open(out).convert("RGB"))
    assert _blue(img).sum() > 100, "vessels far from the lesion drawn blue"
    bar = img[80:320, 328:384]
    assert _blue(bar).sum() > 20, "the colour bar"
    plain = tmp_path / "plain.png"
    assert main(["render", "phantom:small", "--size", "400x400", "--out", str(plain), "-q"]) == 0
    assert _blue(np.asarray(Image.open(plain).convert("RGB"))).sum() < 20


def test_real_cta_and_a_scan_without_contrast(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A lesion on the aorta of the real CTA (centre of the aorta mask at its middle slice).
    rc = main(["lesion", str(shared_data / "cta-aorta-nifti"), "--lesion", "17", "-142", "690", "25", "--json", "-q"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    doc = json.loads(out.out)
    assert doc["branches"] and doc["lumen_volume_ml"] > 5.0, "the aorta's lumen lies in a 25 mm sphere"
    err = _bad(
        ["lesion", str(shared_data / "totalseg-abdomen-3mm" / "ct.nii.gz"), "--lesion", "0", "-80", "140", "20", "-q"],
        capsys,
    )
    assert "contrast" in err.lower()
