"""Lesion-centred planning in the 3D scene (issue 10): what :class:`viewer.render.scene.Scene`
draws for a marked lesion, and how it changes the class-encoded volume.

Two kinds of visual:

* **in the volume** (one-component scalars, the same mapper): the *keyhole* turns
  bone-class voxels inside the lesion region into air, so vessels, plaques and the
  calcified mass inside stay; with *distance colouring* the vessel voxels are hidden
  from the volume (like calcified shells) and drawn instead as a smooth surface mesh
  coloured per vertex by its distance (mm) to the lesion or to bone (see
  ``viewer.core.classmap`` for why not a band of codes). A new lesion only re-colours
  the mesh; the mesh is rebuilt when the masks or the vessel window change;
* **on top of the volume**, in an overlay renderer on layer 1 that shares the main
  camera (so they are never hidden inside bone and cost the ray caster nothing): the
  lesion outline (wire sphere or box), numbered entry-point markers, branch centrelines,
  rulers and angles with their labels, and the distance colour bar. Markers and
  centrelines are cut by the scene's crop box and clip plane; the lesion outline and
  measurements are always shown (they are what the user placed).

Everything is drawn by VTK into the render window, so stills, sheets and movies show it.
All positions are LPS mm (the scene's world frame).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

from viewer.core.classmap import DISTANCE_COLOUR_STOPS, RAW_MIN_HU
from viewer.core.errors import ViewerError
from viewer.core.extraction import ClassMasks
from viewer.core.lesion import Branch, EntryPoint, Lesion
from viewer.core.measure import Angle, Measurement, Ruler
from viewer.core.packed import MaskArray, PackedMask
from viewer.core.separation import dilate6
from viewer.core.transfer import ColorPoint, TransferFunction
from viewer.core.volume import Volume
from viewer.render._vtk import vtkActor, vtkColorTransferFunction, vtkPolyDataMapper, vtkRenderer, vtkRenderWindow

ColouringMode = Literal["off", "lesion", "bone"]
COLOURING_MODES: tuple[str, ...] = ("off", "lesion", "bone")

#: Overlay colours (RGB 0..1): lesion outline yellow, entry markers cyan with white
#: numbers, centrelines white, measurements light green.
LESION_RGB = (1.0, 0.9, 0.2)
ENTRY_RGB = (0.1, 0.95, 1.0)
CENTRELINE_RGB = (1.0, 1.0, 1.0)
MEASURE_RGB = (0.45, 1.0, 0.45)
#: Entry-point marker sphere radius (mm).
ENTRY_RADIUS_MM = 2.5

Cutter = Callable[[object, object], object]
InsideTest = Callable[[np.ndarray], np.ndarray]


def check_colouring(mode: str, max_mm: float) -> tuple[ColouringMode, float]:
    """``(mode, max_mm)`` checked: mode one of ``off, lesion, bone``; max a positive mm."""
    m = str(mode).strip().lower()
    if m not in COLOURING_MODES:
        raise ViewerError(f"vessel colouring must be one of {', '.join(COLOURING_MODES)}, got {mode!r}")
    try:
        mx = float(max_mm)
    except (TypeError, ValueError):
        raise ViewerError(f"the colour bar's maximum must be a number of mm, got {max_mm!r}") from None
    if not (np.isfinite(mx) and mx > 0):
        raise ViewerError(f"the colour bar's maximum must be a positive number of mm, got {max_mm!r}")
    return m, mx  # type: ignore[return-value]


# ----------------------------------------------------------------------------------
# the volume: keyhole and distance band
# ----------------------------------------------------------------------------------
def keyhole_air(volume: Volume, lesion: Lesion, render_bone: np.ndarray, removed: MaskArray | None) -> np.ndarray:
    """The voxels to render as air with the keyhole on: bone-class voxels (as rendered)
    whose centre lies in the lesion region, plus what the body mask removed."""
    hole = lesion.region_mask(volume) & np.asarray(render_bone, dtype=bool)
    return np.asarray(hole if removed is None else hole | np.asarray(removed, dtype=bool))


#: The separated transfer function's ramp (``class_transfer_points``' default): the
#: vessel colour starts this far (HU) below the window's low end and ends this far above
#: its high end.
VESSEL_RAMP_HU = 40.0


def vessel_voxels(inner: np.ndarray, tf: TransferFunction, masks: ClassMasks | None = None) -> np.ndarray:
    """bool: the voxels of the class-encoded ``inner`` drawn in the vessel colour (raw
    codes in ``tf.vessel_window_hu`` widened by its ramps; bone, hidden and removed
    voxels have other codes) -- and, where the masks hold a vessel class (the real-CT
    separation), only those within one voxel of it: on a real scan the window also
    holds enhancing organs (heart, liver, kidneys), which are no vessels to colour."""
    lo_hu, hi_hu = (float(v) for v in tf.vessel_window_hu)
    lo_hu = max(lo_hu - VESSEL_RAMP_HU, float(RAW_MIN_HU) + 1.0)
    out = (inner > lo_hu) & (inner < min(hi_hu + VESSEL_RAMP_HU, float(tf.bone_threshold_hu)))
    if masks is not None and masks.vessel is not None:
        out &= dilate6(np.asarray(masks.vessel, dtype=bool))
    return np.asarray(out)


#: Colour of what stays in the vessel window outside the vessel class while vessels are
#: coloured by distance (enhancing tissue, partial-volume specks): a muted grey-rose,
#: so nothing but the distance map reads as "near" red.
OTHER_WINDOW_RGB = (0.55, 0.48, 0.48)


def muted_vessel_window(color: Sequence[ColorPoint], tf: TransferFunction) -> tuple[ColorPoint, ...]:
    """The separated colour points with the raw vessel window (and its ramps) recoloured
    :data:`OTHER_WINDOW_RGB`; the encoded bone range and the gap are untouched."""
    lo_hu, hi_hu = (float(v) for v in tf.vessel_window_hu)
    lo, hi = (
        max(lo_hu - VESSEL_RAMP_HU, float(RAW_MIN_HU)),
        min(hi_hu + VESSEL_RAMP_HU, float(tf.bone_threshold_hu) - 1.0),
    )
    return tuple(ColorPoint(c.hu, *OTHER_WINDOW_RGB) if lo <= c.hu <= hi else c for c in color)


def vessel_iso_hu(tf: TransferFunction) -> float:
    """HU of the vessel mesh's surface: where the volume's vessel opacity is half."""
    return float(tf.vessel_window_hu[0]) - VESSEL_RAMP_HU / 2.0


#: Most triangles the distance-coloured vessel mesh keeps (more are decimated away):
#: llvmpipe draws ~1 M triangles/s on 2 cores (frame cost in docs/benchmarks.md).
VESSEL_MESH_MAX_TRIANGLES = 60_000


def _max_pool(a: np.ndarray, f: tuple[int, int, int]) -> np.ndarray:
    """Block maximum of ``a`` ``(nz, ny, nx)`` over ``f`` = (fz, fy, fx) blocks (edge
    blocks padded with the array's minimum)."""
    if f == (1, 1, 1):
        return a
    pad = [(0, (-n) % k) for n, k in zip(a.shape, f, strict=True)]
    p = np.pad(a, pad, constant_values=a.min())
    nz, ny, nx = (n // k for n, k in zip(p.shape, f, strict=True))
    return np.asarray(p.reshape(nz, f[0], ny, f[1], nx, f[2]).max(axis=(1, 3, 5)))


def vessel_surface(volume: Volume, vessel: np.ndarray, iso_hu: float, max_triangles: int | None = None) -> object:
    """Smooth surface (vtkPolyData, LPS mm, with normals) of the vessel voxels: the
    ``iso_hu`` iso-surface of the HU, with every non-vessel voxel capped just below the
    iso (so no surface forms round bone or plaque that touches a vessel). Flying edges
    on the vessels' bounding box. A surface much larger than ``max_triangles`` (default
    :data:`VESSEL_MESH_MAX_TRIANGLES`) is made
    on a coarser grid (block maximum: thin vessels survive, a little fatter) rather
    than decimated hard (decimating ~90 % away left shards on a real CTA); the rest is
    decimated to ``max_triangles``."""
    from vtkmodules.util.numpy_support import numpy_to_vtk
    from vtkmodules.vtkCommonDataModel import vtkImageData, vtkPolyData
    from vtkmodules.vtkCommonTransforms import vtkTransform
    from vtkmodules.vtkFiltersCore import vtkDecimatePro, vtkFlyingEdges3D, vtkPolyDataNormals
    from vtkmodules.vtkFiltersGeneral import vtkTransformFilter

    max_triangles = VESSEL_MESH_MAX_TRIANGLES if max_triangles is None else int(max_triangles)
    idx = [np.flatnonzero(vessel.any(axis=tuple(x for x in range(3) if x != ax))) for ax in range(3)]
    if any(ix.size == 0 for ix in idx):
        return vtkPolyData()
    (k0, k1), (j0, j1), (i0, i1) = (
        (max(0, int(ix[0]) - 1), min(n, int(ix[-1]) + 2)) for ix, n in zip(idx, vessel.shape, strict=True)
    )
    win = (slice(k0, k1), slice(j0, j1), slice(i0, i1))
    iso = float(iso_hu)
    field = np.minimum(volume.hu[win], np.int16(np.floor(iso) - 1))
    np.copyto(field, volume.hu[win], where=vessel[win])
    # Flying edges makes about 2 triangles per boundary voxel face; estimate from the
    # vessel voxels' faces against non-vessel voxels along each axis.
    sub = vessel[win]
    faces = sum(int(np.count_nonzero(np.diff(sub, axis=ax))) for ax in range(3))
    sx, sy, sz = volume.spacing_mm
    f = (1, 1, 1)
    if 2 * faces > 2.5 * max_triangles:
        grid = min(sx, sy, sz) * float(np.sqrt(2 * faces / max_triangles))
        f = tuple(max(1, int(round(grid / sp))) for sp in (sz, sy, sx))  # type: ignore[assignment]
        field = _max_pool(field, f)
    # One capped layer all round: vessels cut by the scan's edge get a cap, so the
    # surface is closed everywhere and its back faces can be culled (never seen).
    field = np.pad(field, 1, constant_values=np.int16(np.floor(iso) - 1))
    m = np.eye(4)
    m[:3, :3] = np.diag([f[2], f[1], f[0]]).astype(float)
    # Pooled voxel (i', j', k') is centred at original index i0 + fx*i' + (fx-1)/2,
    # and padded index i'' = i' + 1.
    m[:3, 3] = (i0 - f[2] + (f[2] - 1) / 2.0, j0 - f[1] + (f[1] - 1) / 2.0, k0 - f[0] + (f[0] - 1) / 2.0)
    img = vtkImageData()
    img.SetDimensions(field.shape[2], field.shape[1], field.shape[0])
    img.GetPointData().SetScalars(numpy_to_vtk(np.ascontiguousarray(field).reshape(-1), deep=True))
    fe = vtkFlyingEdges3D()
    fe.SetInputData(img)
    fe.SetValue(0, iso)
    fe.ComputeNormalsOff()
    fe.ComputeGradientsOff()
    fe.ComputeScalarsOff()
    tr = vtkTransform()
    tr.SetMatrix([float(v) for v in (np.asarray(volume.ijk_to_lps, dtype=np.float64) @ m).reshape(-1)])
    place = vtkTransformFilter()
    place.SetTransform(tr)
    place.SetInputConnection(fe.GetOutputPort())
    place.Update()
    mesh = place.GetOutput()
    n = mesh.GetNumberOfPolys()
    if n > max_triangles:
        dec = vtkDecimatePro()
        dec.SetInputData(mesh)
        dec.SetTargetReduction(1.0 - max_triangles / n)
        dec.PreserveTopologyOff()
        dec.BoundaryVertexDeletionOn()
        dec.Update()
        mesh = dec.GetOutput()
    normals = vtkPolyDataNormals()
    normals.SplittingOff()
    normals.AutoOrientNormalsOff()
    out = _output_of(normals, mesh)
    if _signed_volume(out) < 0.0:
        # Triangles wound inwards (the LPS matrix may mirror the grid): turn them, so
        # that the front faces are the outside ones (back faces are culled).
        from vtkmodules.vtkFiltersCore import vtkReverseSense

        rev = vtkReverseSense()
        rev.ReverseCellsOn()
        rev.ReverseNormalsOn()
        out = _output_of(rev, out)
    return out


def _output_of(alg: Any, mesh: object) -> object:
    """``alg`` run on ``mesh``: its output, detached from the pipeline."""
    from vtkmodules.vtkCommonDataModel import vtkPolyData

    alg.SetInputData(mesh)
    alg.Update()
    out = vtkPolyData()
    out.ShallowCopy(alg.GetOutput())
    return out


def _signed_volume(mesh: object) -> float:
    """Signed volume (mm^3) enclosed by a triangle mesh: positive when its triangles
    are wound counter-clockwise seen from outside (their fronts face out)."""
    from vtkmodules.util.numpy_support import vtk_to_numpy

    polys = mesh.GetPolys()  # type: ignore[attr-defined]
    if mesh.GetNumberOfPoints() == 0 or polys.GetNumberOfCells() == 0:  # type: ignore[attr-defined]
        return 0.0
    pts = np.asarray(vtk_to_numpy(mesh.GetPoints().GetData()), dtype=np.float64)  # type: ignore[attr-defined]
    offsets = np.asarray(vtk_to_numpy(polys.GetOffsetsArray()))
    conn = np.asarray(vtk_to_numpy(polys.GetConnectivityArray()))
    tri = np.diff(offsets) == 3
    first = offsets[:-1][tri]
    a, b, c = (pts[conn[first + k]] for k in range(3))
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


class VesselDistanceMesh:
    """The vessel class as a mesh coloured by distance (mm): in the main renderer, so
    the volume's bone hides it where it should (the ray caster reads its depth)."""

    def __init__(self) -> None:
        self.mapper = vtkPolyDataMapper()
        self.mapper.ScalarVisibilityOn()
        self.mapper.SetScalarModeToUsePointData()
        self.actor = vtkActor()
        self.actor.SetMapper(self.mapper)
        self.actor.VisibilityOff()
        self.mesh: object | None = None
        self.mesh_key: object = None
        self.masks: ClassMasks | None = None
        self.colour_key: object = None
        self._clip: object | None = None
        self._lut = vtkColorTransferFunction()
        # The surface is closed (see vessel_surface): its back faces are always behind
        # its front faces. Not drawing them cut the frame-rate loss against plain
        # separated mode from 23 to 5-9 % on the phantom (llvmpipe rasterises both).
        self.actor.GetProperty().BackfaceCullingOn()

    @property
    def clip(self) -> object | None:
        """The crop box / clip plane filter feeding the mapper (None: the whole mesh)."""
        return self._clip

    @clip.setter
    def clip(self, value: object | None) -> None:
        # A cut opens the tubes: their inner walls (back faces) must show then.
        self._clip = value
        self.actor.GetProperty().SetBackfaceCulling(1 if value is None else 0)

    @property
    def visible(self) -> bool:
        return bool(self.actor.GetVisibility())

    def set_mesh(self, mesh: object | None, key: object, masks: ClassMasks | None) -> None:
        """Use ``mesh``, built for ``key`` (``id(masks)`` and the vessel window; the
        masks are kept so that id stays theirs)."""
        self.mesh, self.mesh_key, self.masks, self.colour_key = mesh, key, masks, None

    def colour(self, distances_mm: np.ndarray, max_mm: float, key: object) -> None:
        """Per-vertex distances (mm), coloured red (0) to blue (``max_mm`` and beyond)."""
        from vtkmodules.util.numpy_support import numpy_to_vtk

        if self.mesh is None:
            return
        arr = numpy_to_vtk(np.ascontiguousarray(distances_mm, dtype=np.float32), deep=True)
        arr.SetName("distance_mm")
        self.mesh.GetPointData().SetScalars(arr)  # type: ignore[attr-defined]
        self.mesh.Modified()  # type: ignore[attr-defined]
        self._lut.RemoveAllPoints()
        for f, rgb in DISTANCE_COLOUR_STOPS:
            self._lut.AddRGBPoint(f * float(max_mm), *rgb)
        self._lut.ClampingOn()
        self.mapper.SetLookupTable(self._lut)
        self.mapper.UseLookupTableScalarRangeOn()
        self.colour_key = key

    def points_lps(self) -> np.ndarray:
        from vtkmodules.util.numpy_support import vtk_to_numpy

        if self.mesh is None or self.mesh.GetNumberOfPoints() == 0:  # type: ignore[attr-defined]
            return np.zeros((0, 3))
        return np.asarray(vtk_to_numpy(self.mesh.GetPoints().GetData()), dtype=np.float64)  # type: ignore[attr-defined]

    def style(self, tf: TransferFunction) -> None:
        prop = self.actor.GetProperty()
        sh = tf.shading
        prop.SetAmbient(sh.ambient)
        prop.SetDiffuse(sh.diffuse)
        prop.SetSpecular(sh.specular)
        prop.SetSpecularPower(sh.specular_power)
        prop.SetOpacity(1.0)


def vertex_distances(
    points_lps: np.ndarray,
    volume: Volume,
    mode: ColouringMode,
    lesion: Lesion | None,
    bone_index: Callable[[], BoneSurfaceIndex],
) -> np.ndarray:
    """Distance (mm) of mesh vertices to the lesion region (exact) or to bone (to the
    nearest bone voxel centre, see :class:`BoneSurfaceIndex`)."""
    if mode == "lesion":
        if lesion is None:
            raise ViewerError("colouring vessels by distance to the lesion needs a lesion: mark one first")
        return lesion.distance_lps(points_lps)
    return bone_index().distances_mm(points_lps)


class BoneSurfaceIndex:
    """Distance (mm) from LPS points to the nearest voxel centre of a bone mask: a
    KD-tree of the mask's boundary voxels (bone voxels with a non-bone 6-neighbour;
    the bone voxel nearest to an outside point is always one of them), 0 for points in
    a bone voxel; the scan's diagonal where it holds no bone.

    Why not a distance transform of the whole scan: the ``edt`` package holds the GIL
    (measured: a 10 ms heartbeat thread stalled 760 ms while it ran on a 360x224x380
    mask), so on the window's worker it froze the GUI all the same; scipy's releases it
    but took 5.8 s. Building this index and querying 30 k vertices took 0.63 s on the
    default phantom with no heartbeat gap over 9 ms (docs/benchmarks.md, issue 9)."""

    def __init__(self, volume: Volume, bone: MaskArray) -> None:
        from scipy.spatial import cKDTree

        # (a packed mask stays packed: read a few slices at a time, looked up by voxel)
        b = bone if isinstance(bone, PackedMask) else np.asarray(bone, dtype=bool)
        if b.shape != volume.shape:
            raise ViewerError(f"bone mask shape {b.shape} does not match the scan's {volume.shape}")
        self._volume, self._bone = volume, b
        lo, hi = volume.bounds_lps()
        self._diagonal_mm = float(np.linalg.norm(hi - lo))
        k, j, i = _boundary_voxels(b)
        self._tree = cKDTree(volume.lps_of_ijk(np.stack([i, j, k], axis=1).astype(np.float64))) if k.size else None

    def distances_mm(self, points_lps: np.ndarray) -> np.ndarray:
        """float64 ``(N,)``: distance (mm) of each ``(N, 3)`` LPS point to bone."""
        p = np.asarray(points_lps, dtype=np.float64).reshape(-1, 3)
        if self._tree is None:
            return np.full(len(p), self._diagonal_mm)
        d, _ = self._tree.query(p, workers=-1)
        d = np.asarray(d, dtype=np.float64)
        ijk = np.rint(self._volume.ijk_of_lps(p)).astype(np.int64)
        nx, ny, nz = self._volume.dims_xyz
        ok = np.all((ijk >= 0) & (ijk < (nx, ny, nz)), axis=1)
        inside = np.zeros(len(p), dtype=bool)
        kji = (ijk[ok, 2], ijk[ok, 1], ijk[ok, 0])
        inside[ok] = self._bone.at(*kji) if isinstance(self._bone, PackedMask) else self._bone[kji]
        d[inside] = 0.0
        return d


#: Slices of a bone mask read at a time by :func:`_boundary_voxels`.
_BOUNDARY_SLICES = 32


def _boundary_voxels(bone: MaskArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``np.nonzero(bone & dilate6(~bone))``: the bone voxels with a non-bone
    6-neighbour (outside the array counts as bone, as there), a few slices at a time
    with one slice of halo each side, so a packed mask is never unpacked whole."""
    n = bone.shape[0]
    ks, js, is_ = [], [], []
    for z0 in range(0, n, _BOUNDARY_SLICES):
        z1 = min(n, z0 + _BOUNDARY_SLICES)
        h0, h1 = max(0, z0 - 1), min(n, z1 + 1)
        b = np.asarray(bone[h0:h1], dtype=bool)
        edge = (b & dilate6(~b))[z0 - h0 : z1 - h0]
        k, j, i = np.nonzero(edge)
        ks.append(k + z0)
        js.append(j)
        is_.append(i)
    return np.concatenate(ks), np.concatenate(js), np.concatenate(is_)


class BoneDistanceCache:
    """The :class:`BoneSurfaceIndex` of one bone mask, built once by
    ``viewer.render.scene_data.prepare_scene`` and kept here for the next edits."""

    def __init__(self) -> None:
        self._key: object = None
        self._value: BoneSurfaceIndex | None = None

    def peek(self) -> tuple[object, BoneSurfaceIndex | None]:
        """``(key, index)`` held now (``(None, None)`` when empty)."""
        return self._key, self._value

    def put(self, key: object, value: BoneSurfaceIndex) -> None:
        """Hold ``value``, the index made for ``key``."""
        self._key, self._value = key, value

    def clear(self) -> None:
        self._key, self._value = None, None


# ----------------------------------------------------------------------------------
# VTK geometry helpers
# ----------------------------------------------------------------------------------
def _polylines(lines: Sequence[np.ndarray]) -> object:
    """vtkPolyData holding each ``(N, 3)`` LPS array of ``lines`` as one polyline."""
    from vtkmodules.util.numpy_support import numpy_to_vtk, numpy_to_vtkIdTypeArray
    from vtkmodules.vtkCommonCore import vtkPoints
    from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkPolyData

    keep = [np.asarray(p, dtype=np.float64).reshape(-1, 3) for p in lines]
    keep = [p for p in keep if len(p) >= 2]
    pd = vtkPolyData()
    pts = vtkPoints()
    cells = vtkCellArray()
    if keep:
        allp = np.concatenate(keep)
        pts.SetData(numpy_to_vtk(np.ascontiguousarray(allp), deep=True))
        offsets = np.cumsum([0] + [len(p) for p in keep]).astype(np.int64)
        conn = np.arange(len(allp), dtype=np.int64)
        cells.SetData(numpy_to_vtkIdTypeArray(offsets, deep=True), numpy_to_vtkIdTypeArray(conn, deep=True))
    pd.SetPoints(pts)
    pd.SetLines(cells)
    return pd


def _line_actor(rgb: tuple[float, float, float], width: float) -> tuple[vtkActor, vtkPolyDataMapper]:
    mapper = vtkPolyDataMapper()
    mapper.ScalarVisibilityOff()
    actor = vtkActor()
    actor.SetMapper(mapper)
    prop = actor.GetProperty()
    prop.SetColor(*rgb)
    prop.SetLineWidth(width)
    prop.LightingOff()
    return actor, mapper


def _label(text: str, pos_lps: Sequence[float], rgb: tuple[float, float, float], size_px: int) -> object:
    from vtkmodules.vtkRenderingCore import vtkBillboardTextActor3D

    a = vtkBillboardTextActor3D()
    a.SetInput(text)
    a.SetPosition(*(float(v) for v in pos_lps))
    tp = a.GetTextProperty()
    tp.SetFontSize(int(size_px))
    tp.SetColor(*rgb)
    tp.BoldOn()
    tp.SetFrame(0)
    tp.SetBackgroundColor(0.0, 0.0, 0.0)
    tp.SetBackgroundOpacity(0.55)
    tp.SetJustificationToCentered()
    tp.SetVerticalJustificationToCentered()
    return a


def sphere_circles(center_lps: np.ndarray, radius_mm: float, n: int = 72) -> list[np.ndarray]:
    """The three great circles of a sphere in the LPS axis planes (axial, coronal,
    sagittal), each ``(n + 1, 3)`` and closed: a wire that hides little of what is inside."""
    t = np.linspace(0.0, 2.0 * np.pi, n + 1)
    c, s = radius_mm * np.cos(t), radius_mm * np.sin(t)
    z = np.zeros_like(t)
    return [center_lps + np.stack(v, axis=1) for v in ((c, s, z), (c, z, s), (z, c, s))]


def arc_points(vertex: np.ndarray, a: np.ndarray, b: np.ndarray, n: int = 24) -> np.ndarray:
    """``(n, 3)`` points of the arc at ``vertex`` from the arm towards ``a`` to the arm
    towards ``b``, of radius 30 % of the shorter arm (LPS mm)."""
    u, w = a - vertex, b - vertex
    r = 0.3 * min(float(np.linalg.norm(u)), float(np.linalg.norm(w)))
    u1 = u / np.linalg.norm(u)
    w1 = w / np.linalg.norm(w)
    ang = float(np.arctan2(np.linalg.norm(np.cross(u1, w1)), np.dot(u1, w1)))
    perp = w1 - np.dot(w1, u1) * u1
    if np.linalg.norm(perp) < 1e-9:  # a straight angle: any perpendicular
        perp = np.cross(u1, [1.0, 0.0, 0.0] if abs(u1[0]) < 0.9 else [0.0, 1.0, 0.0])
    perp /= np.linalg.norm(perp)
    t = np.linspace(0.0, ang, n)
    return np.asarray(vertex + r * (np.cos(t)[:, None] * u1 + np.sin(t)[:, None] * perp))


class LesionOverlay:
    """The overlay renderer (layer 1, sharing the main camera) and its props.

    The scene calls :meth:`apply_cut` whenever its crop box or clip plane changes, with
    its mesh cutter and a point-inside test."""

    def __init__(self, render_window: vtkRenderWindow, main: vtkRenderer) -> None:
        self.renderer = vtkRenderer()
        self.renderer.SetLayer(1)
        self.renderer.InteractiveOff()
        self.renderer.SetActiveCamera(main.GetActiveCamera())
        render_window.AddRenderer(self.renderer)
        self._rw: vtkRenderWindow | None = render_window
        self.lesion: Lesion | None = None
        self.entry_points: tuple[EntryPoint, ...] = ()
        self.branches: tuple[Branch, ...] = ()
        self.measurements: tuple[Measurement, ...] = ()
        self.colour_bar: tuple[str, float] | None = None
        self._outline, self._outline_mapper = _line_actor(LESION_RGB, 2.0)
        self._centre, self._centre_mapper = _line_actor(CENTRELINE_RGB, 3.0)
        self._measure, self._measure_mapper = _line_actor(MEASURE_RGB, 2.5)
        self._entry = vtkActor()
        self._entry_mapper = vtkPolyDataMapper()
        self._entry_mapper.ScalarVisibilityOff()
        self._entry.SetMapper(self._entry_mapper)
        self._entry.GetProperty().SetColor(*ENTRY_RGB)
        for a in (self._outline, self._centre, self._measure, self._entry):
            a.VisibilityOff()
            self.renderer.AddActor(a)
        self._entry_labels: list[object] = []
        self._measure_labels: list[object] = []
        self._bar: object | None = None
        self._centre_mesh: object | None = None
        self._centre_clip: object | None = None
        self._entry_mesh: object | None = None
        self._entry_clip: object | None = None
        self._cut: Cutter | None = None
        self._inside: InsideTest | None = None

    # ----- state ------------------------------------------------------------------
    def set_lesion(self, lesion: Lesion | None) -> None:
        """Wire sphere (three great circles per axis-aligned plane and a lat/long wire)
        or box outline of the region, LPS mm."""
        from vtkmodules.vtkFiltersSources import vtkOutlineSource

        self.lesion = lesion
        if lesion is None:
            self._outline.VisibilityOff()
            return
        if lesion.box_lps is not None:
            src = vtkOutlineSource()
            src.SetBounds(*lesion.box_lps)
            src.Update()
            mesh = src.GetOutput()
        else:
            mesh = _polylines(sphere_circles(np.asarray(lesion.center_lps), lesion.radius_mm))
        self._outline_mapper.SetInputData(mesh)
        self._outline.VisibilityOn()

    def set_entry_points(self, points: Sequence[EntryPoint]) -> None:
        """Numbered markers: a sphere at each entry and its number beside it."""
        from vtkmodules.vtkFiltersCore import vtkAppendPolyData
        from vtkmodules.vtkFiltersSources import vtkSphereSource

        self.entry_points = tuple(points)
        append = vtkAppendPolyData()
        for e in self.entry_points:
            s = vtkSphereSource()
            s.SetCenter(*e.lps_mm)
            s.SetRadius(ENTRY_RADIUS_MM)
            s.SetThetaResolution(12)
            s.SetPhiResolution(8)
            s.Update()
            append.AddInputData(s.GetOutput())
        if self.entry_points:
            append.Update()
            self._entry_mesh = append.GetOutput()
        else:
            self._entry_mesh = None
        for lab in self._entry_labels:
            self.renderer.RemoveActor(lab)  # type: ignore[arg-type]
        self._entry_labels = [
            _label(str(e.number), tuple(np.add(e.lps_mm, (0.0, 0.0, 2.5 * ENTRY_RADIUS_MM))), (1.0, 1.0, 1.0), 16)
            for e in self.entry_points
        ]
        for lab in self._entry_labels:
            self.renderer.AddActor(lab)  # type: ignore[arg-type]
        self._refresh_cut()

    def set_centrelines(self, branches: Sequence[Branch]) -> None:
        """Each branch's centreline as a polyline (LPS mm)."""
        self.branches = tuple(branches)
        self._centre_mesh = _polylines([b.points_lps for b in self.branches]) if self.branches else None
        self._refresh_cut()

    def set_measurements(self, measurements: Sequence[Measurement]) -> None:
        """Rulers (a line and its length) and angles (two arms, an arc and the angle)."""
        ms = tuple(measurements)
        for m in ms:
            if not isinstance(m, (Ruler, Angle)):
                raise ViewerError(f"not a measurement: {type(m).__name__} (expected a Ruler or an Angle)")
        self.measurements = ms
        lines: list[np.ndarray] = []
        for lab in self._measure_labels:
            self.renderer.RemoveActor(lab)  # type: ignore[arg-type]
        self._measure_labels = []
        for m in ms:
            if isinstance(m, Ruler):
                a, b = np.asarray(m.a_lps), np.asarray(m.b_lps)
                lines.append(np.stack([a, b]))
                pos = (a + b) / 2.0
            else:
                a, v, b = np.asarray(m.a_lps), np.asarray(m.vertex_lps), np.asarray(m.b_lps)
                lines.append(np.stack([a, v, b]))
                arc = arc_points(v, a, b)
                lines.append(arc)
                pos = arc[len(arc) // 2] + 0.6 * (arc[len(arc) // 2] - v)
            self._measure_labels.append(_label(m.label(), pos, MEASURE_RGB, 16))
        for lab in self._measure_labels:
            self.renderer.AddActor(lab)  # type: ignore[arg-type]
        if lines:
            self._measure_mapper.SetInputData(_polylines(lines))
            self._measure.VisibilityOn()
        else:
            self._measure.VisibilityOff()

    def set_colour_bar(self, title: str | None, max_mm: float = 30.0) -> None:
        """A colour bar (mm) at the right edge, or none with ``title=None``."""
        from vtkmodules.vtkRenderingAnnotation import vtkScalarBarActor

        if title is None:
            self.colour_bar = None
            if self._bar is not None:
                self._bar.VisibilityOff()  # type: ignore[attr-defined]
            return
        if self.colour_bar == (title, float(max_mm)):
            return
        self.colour_bar = (title, float(max_mm))
        lut = vtkColorTransferFunction()
        for f, rgb in DISTANCE_COLOUR_STOPS:
            lut.AddRGBPoint(f * float(max_mm), *rgb)
        if self._bar is None:
            bar = vtkScalarBarActor()
            bar.SetOrientationToVertical()
            # Far enough from the right edge that the title fits in a 480 px cell.
            bar.SetPosition(0.83, 0.2)
            bar.SetWidth(0.12)
            bar.SetHeight(0.6)
            bar.SetNumberOfLabels(4)
            bar.SetLabelFormat("%.0f")
            bar.SetUnconstrainedFontSize(True)
            for tp in (bar.GetTitleTextProperty(), bar.GetLabelTextProperty()):
                tp.SetColor(1.0, 1.0, 1.0)
                tp.BoldOn()
                tp.ShadowOn()
                tp.SetFontSize(14)
            bar.GetTitleTextProperty().SetFontSize(13)
            self.renderer.AddViewProp(bar)
            self._bar = bar
        self._bar.SetLookupTable(lut)  # type: ignore[attr-defined]
        self._bar.SetTitle(title)  # type: ignore[attr-defined]
        self._bar.VisibilityOn()  # type: ignore[attr-defined]
        self._bar_lut = lut

    # ----- crop / clip ------------------------------------------------------------
    def apply_cut(self, cut: Cutter, inside: InsideTest) -> None:
        """Cut centrelines and entry markers with the scene's crop box / clip plane:
        ``cut(mapper, mesh)`` feeds a mapper (see ``Scene._feed_clipped``); ``inside``
        tells which LPS points are kept (labels of cut-away markers are hidden)."""
        self._cut, self._inside = cut, inside
        self._refresh_cut()

    def _refresh_cut(self) -> None:
        if self._cut is None:
            self._centre_mapper.SetInputData(self._centre_mesh)
            self._entry_mapper.SetInputData(self._entry_mesh)
        else:
            self._centre_clip = self._cut(self._centre_mapper, self._centre_mesh)
            self._entry_clip = self._cut(self._entry_mapper, self._entry_mesh)
        self._centre.SetVisibility(1 if self._centre_mesh is not None else 0)
        self._entry.SetVisibility(1 if self._entry_mesh is not None else 0)
        if self.entry_points:
            pts = np.array([e.lps_mm for e in self.entry_points], dtype=np.float64)
            keep = np.ones(len(pts), bool) if self._inside is None else self._inside(pts)
            for lab, k in zip(self._entry_labels, keep, strict=True):
                lab.SetVisibility(1 if k else 0)  # type: ignore[attr-defined]

    def copy_from(self, other: LesionOverlay) -> None:
        """Take ``other``'s lesion, markers, centrelines, measurements and colour bar."""
        if self.lesion != other.lesion:
            self.set_lesion(other.lesion)
        if self.entry_points != other.entry_points:
            self.set_entry_points(other.entry_points)
        if self.branches is not other.branches:
            self.set_centrelines(other.branches)
        if self.measurements != other.measurements:
            self.set_measurements(other.measurements)
        if self.colour_bar != other.colour_bar:
            if other.colour_bar is None:
                self.set_colour_bar(None)
            else:
                self.set_colour_bar(*other.colour_bar)

    def close(self) -> None:
        self.renderer.RemoveAllViewProps()
        if self._rw is not None:
            self._rw.RemoveRenderer(self.renderer)
        self._rw = None
        self._centre_mapper.RemoveAllInputs()
        self._entry_mapper.RemoveAllInputs()
        self._centre_clip = self._entry_clip = None


def colour_bar_title(mode: ColouringMode) -> str | None:
    """The colour bar's title for a colouring mode (None when off)."""
    return {"lesion": "mm to lesion", "bone": "mm to bone"}.get(mode)


__all__ = [
    "COLOURING_MODES",
    "BoneDistanceCache",
    "BoneSurfaceIndex",
    "ColouringMode",
    "LesionOverlay",
    "VesselDistanceMesh",
    "vertex_distances",
    "vessel_surface",
    "vessel_iso_hu",
    "vessel_voxels",
    "arc_points",
    "sphere_circles",
    "check_colouring",
    "colour_bar_title",
    "keyhole_air",
    "muted_vessel_window",
]
