"""Mask surfaces: LPS placement, triangle counts, STL/PLY files read back."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from viewer.core.errors import ViewerError
from viewer.render.surfaces import export_mask_surface, mask_to_surface


def _affine(flip_x: bool = False) -> np.ndarray:
    a = np.eye(4)
    a[:3, :3] = np.diag([-0.6 if flip_x else 0.6, 0.7, 1.5])
    a[:3, 3] = (-40.0, 12.0, 300.0)
    return a


def _read_binary_stl(path: Path) -> np.ndarray:
    raw = path.read_bytes()
    n = struct.unpack("<I", raw[80:84])[0]
    assert len(raw) == 84 + 50 * n  # binary STL: 50 bytes a triangle
    rec = np.frombuffer(raw[84:], dtype=np.dtype([("n", "<f4", 3), ("v", "<f4", (3, 3)), ("a", "<u2")]), count=n)
    return rec["v"].reshape(-1, 3)


@pytest.mark.parametrize("flip_x", [False, True])
def test_box_surface_in_lps(tmp_path: Path, flip_x: bool) -> None:
    m = np.zeros((10, 12, 14), bool)
    m[2:8, 3:9, 4:11] = True  # k 2..7, j 3..8, i 4..10
    A = _affine(flip_x)
    st = export_mask_surface(m, A, tmp_path / "box.stl")
    verts = _read_binary_stl(tmp_path / "box.stl")
    assert len(verts) == 3 * st.n_triangles and st.n_triangles > 100
    # The 0.5 iso-surface lies half a voxel outside the outermost voxel centres.
    lo_ijk, hi_ijk = np.array([3.5, 2.5, 1.5]), np.array([10.5, 8.5, 7.5])
    corners = np.array(
        [[x, y, z] for x in (lo_ijk[0], hi_ijk[0]) for y in (lo_ijk[1], hi_ijk[1]) for z in (lo_ijk[2], hi_ijk[2])]
    )
    lps = corners @ A[:3, :3].T + A[:3, 3]
    assert np.allclose(verts.min(axis=0), lps.min(axis=0), atol=1e-3)
    assert np.allclose(verts.max(axis=0), lps.max(axis=0), atol=1e-3)
    assert np.allclose(st.bounds_min_lps, lps.min(axis=0), atol=1e-3)


def test_ply_and_mask_at_the_volume_edge_is_closed(tmp_path: Path) -> None:
    m = np.ones((4, 5, 6), bool)  # touches every face of the volume
    poly = mask_to_surface(m, np.eye(4))
    from vtkmodules.vtkFiltersCore import vtkFeatureEdges

    fe = vtkFeatureEdges()
    fe.SetInputData(poly)
    fe.BoundaryEdgesOn()
    fe.FeatureEdgesOff()
    fe.ManifoldEdgesOff()
    fe.NonManifoldEdgesOff()
    fe.Update()
    assert fe.GetOutput().GetNumberOfCells() == 0  # watertight
    st = export_mask_surface(m, np.eye(4), tmp_path / "a.ply", smooth_iterations=5)
    head = (tmp_path / "a.ply").read_bytes()[:200]
    assert head.startswith(b"ply") and b"binary" in head
    assert st.n_triangles > 0


def test_empty_and_bad(tmp_path: Path) -> None:
    assert mask_to_surface(np.zeros((3, 3, 3), bool), np.eye(4)).GetNumberOfPoints() == 0
    with pytest.raises(ViewerError, match="empty"):
        export_mask_surface(np.zeros((3, 3, 3), bool), np.eye(4), tmp_path / "e.stl")
    with pytest.raises(ViewerError, match="unknown surface format"):
        export_mask_surface(np.ones((3, 3, 3), bool), np.eye(4), tmp_path / "e.obj")
    assert list(tmp_path.iterdir()) == []
