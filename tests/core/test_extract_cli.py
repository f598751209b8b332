"""``vessel-viewer extract`` and mask export on the small phantom."""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

import numpy as np
import pytest

from viewer.cli import main


def test_refuses_out_dir_inside_the_source_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "series"
    src.mkdir()
    (src / "a.dcm").write_bytes(b"x")
    assert main(["extract", str(src), "--out-dir", str(src / "out")]) == 2
    assert "inside the source folder" in capsys.readouterr().err
    assert main(["extract", str(src), "--out-dir", str(src)]) == 2
    assert sorted(p.name for p in src.iterdir()) == ["a.dcm"]  # nothing written there
    f = tmp_path / "x.nrrd"
    f.write_bytes(b"x")
    assert main(["extract", str(f), "--out-dir", str(f)]) == 2


def _need_phantom_and_writers():
    """The phantom and the writers (project modules: imported, never skipped)."""
    from viewer import phantom
    from viewer.io import writers

    return phantom, writers


def _read_nrrd(path: Path) -> tuple[dict[str, str], np.ndarray]:
    """Minimal NRRD reader (attached raw/gzip data), independent of the project's loader."""
    raw = path.read_bytes()
    head, _, body = raw.partition(b"\n\n")
    fields = {}
    for line in head.decode("ascii").splitlines()[1:]:
        if line.startswith("#") or ":" not in line:
            continue
        k, _, v = line.partition(":")
        fields[k.strip()] = v.lstrip("=").strip()
    assert raw.startswith(b"NRRD000")
    if fields.get("encoding") in ("gzip", "gz"):
        body = gzip.decompress(body)
    sizes = [int(s) for s in fields["sizes"].split()]
    dt = {"uint8": "u1", "unsigned char": "u1", "uchar": "u1", "int16": "i2", "short": "i2"}[fields["type"]]
    endian = "<" if fields.get("endian", "little") == "little" else ">"
    data = np.frombuffer(body, dtype=endian + dt, count=int(np.prod(sizes))).reshape(sizes[::-1])
    return fields, data


def _read_binary_stl(path: Path) -> np.ndarray:
    raw = path.read_bytes()
    n = struct.unpack("<I", raw[80:84])[0]
    assert len(raw) == 84 + 50 * n
    rec = np.frombuffer(raw[84:], dtype=np.dtype([("n", "<f4", 3), ("v", "<f4", (3, 3)), ("a", "<u2")]), count=n)
    return rec["v"].reshape(-1, 3)


def test_extract_small_phantom(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    phantom, _ = _need_phantom_and_writers()
    out = tmp_path / "new" / "out"
    rc = main(["extract", "phantom:small", "--out-dir", str(out)])
    assert rc == 0, capsys.readouterr().err
    names = sorted(p.name for p in out.iterdir())
    stem = "phantom_small"
    for n in (
        f"{stem}_bone_mask.nrrd",
        f"{stem}_vessel_mask.nrrd",
        f"{stem}_bone.stl",
        f"{stem}_vessels.stl",
        f"{stem}_extraction.json",
    ):
        assert n in names, names
    vol = phantom.generate("small").volume
    summary = json.loads((out / f"{stem}_extraction.json").read_text())
    fields, bone = _read_nrrd(out / f"{stem}_bone_mask.nrrd")
    assert bone.shape == vol.shape
    assert set(np.unique(bone)) <= {0, 1}
    assert int(bone.sum()) == summary["classes"]["bone"]["voxels"] > 0
    assert "left-posterior-superior" in fields.get("space", "")
    # The STL bounding box of the bone surface lies within the volume's LPS bounds
    # (plus half a voxel: the iso-surface sits between voxel centres).
    verts = _read_binary_stl(out / f"{stem}_bone.stl")
    lo, hi = vol.bounds_lps()
    half = 0.5 * np.abs(vol.ijk_to_lps[:3, :3]).sum(axis=1) + 1e-3
    assert np.all(verts.min(axis=0) >= lo - half) and np.all(verts.max(axis=0) <= hi + half)
    assert len(verts) // 3 == summary["classes"]["bone"]["triangles"] > 1000
    # The mesh sits where the mask is: its LPS bounding box is the mask voxels' box
    # within a voxel. (Not the centroids: a surface's vertex mean weights the
    # intricate epiphyses more than the solid shafts -- 14 mm off in z here.)
    k, j, i = np.nonzero(bone)
    corners = np.array([[a, b, c] for a in (i.min(), i.max()) for b in (j.min(), j.max()) for c in (k.min(), k.max())])
    c_lps = np.array([vol.lps_of_ijk(c) for c in corners])
    voxel = np.abs(vol.ijk_to_lps[:3, :3]).sum(axis=1)
    assert np.allclose(verts.min(axis=0), c_lps.min(axis=0), atol=voxel.max())
    assert np.allclose(verts.max(axis=0), c_lps.max(axis=0), atol=voxel.max())
    # The mass's calcified rim is exported as its own class, around the mass centre.
    assert f"{stem}_calcification_mask.nrrd" in names and f"{stem}_calcification.stl" in names
    _, calc = _read_nrrd(out / f"{stem}_calcification_mask.nrrd")
    assert int(calc.sum()) == summary["classes"]["calcification"]["voxels"] > 0
    assert not (calc.astype(bool) & bone.astype(bool)).any()
    cverts = _read_binary_stl(out / f"{stem}_calcification.stl")
    centre = np.asarray(phantom.generate("small").landmarks["mass_center_lps"], dtype=float)
    assert np.all(cverts.min(axis=0) < centre) and np.all(cverts.max(axis=0) > centre)


def test_extract_nifti_no_surfaces_and_overrides(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _need_phantom_and_writers()
    rc = main(
        [
            "extract",
            "phantom",
            "--out-dir",
            str(tmp_path),
            "--format",
            "nifti",
            "--no-surfaces",
            "--bone-threshold",
            "700",
            "--vessel-window",
            "200",
            "650",
            "--quiet",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    names = sorted(p.name for p in tmp_path.iterdir())
    assert "phantom_bone_mask.nii.gz" in names and not any(n.endswith(".stl") for n in names)
    s = json.loads((tmp_path / "phantom_extraction.json").read_text())
    assert s["thresholds"] == {"bone_threshold_hu": 700.0, "vessel_low_hu": 200.0, "vessel_high_hu": 650.0}
    raw = gzip.open(tmp_path / "phantom_vessel_mask.nii.gz").read()
    assert struct.unpack("<i", raw[:4])[0] == 348
    assert main(["extract", "phantom", "--out-dir", str(tmp_path), "--preset", "No such"]) == 2
    assert "unknown preset" in capsys.readouterr().err
    assert main(["extract", "phantom", "--out-dir", str(tmp_path), "--vessel-window", "600", "200"]) == 2
