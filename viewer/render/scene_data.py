"""The heavy half of a Scene edit, as pure functions that touch no render window (issue 9).

A :class:`~viewer.render.scene.Scene` edit that changes what the volume holds (the class
encoding, the keyhole, the vessels leaving the volume for a distance-coloured mesh) or
needs a new mesh (the vessel surface, the calcified shells, the uncertain / removed
overlays) or a distance field (distance to bone) is split in two:

* :func:`prepare_scene` (here) computes it from a :class:`SceneInputs` snapshot: numpy,
  scipy and VTK filters on their own data objects only (flying edges, decimation,
  smoothing), never an actor, mapper or render window, so it may run on a worker thread;
* ``Scene.apply_prepared`` installs the :class:`PreparedScene` (set arrays and mapper
  inputs: milliseconds) on the thread that owns the render window.

:func:`pending_work` says, without computing anything, which heavy steps a snapshot
needs, so the window runs only those in a worker and applies a pure restyle at once.
The synchronous Scene setters (CLI, export, sessions, movies, tests) call
``prepare_scene`` then ``apply_prepared``: one code path.

Keys: what each result was made from, compared by identity for arrays and masks
(:class:`Same`), so a result made for other masks or another volume never matches.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from viewer.core.classmap import HIDDEN_HU, RAW_MIN_HU, encode_classes
from viewer.core.extraction import HIDDEN_RAMP_HU, ClassMasks, PreviewMasks, class_masks_for
from viewer.core.lesion import Lesion
from viewer.core.mask_policy import MaskSettings, masks_fit
from viewer.core.memory import trim_freed_memory
from viewer.core.packed import MaskArray, unpacked
from viewer.core.progress import ProgressFn
from viewer.core.separation import bbox, dilate6, run_slabs, slabwise
from viewer.core.transfer import TransferFunction
from viewer.core.volume import Volume
from viewer.render.content import BufferBox, air_shown, body_box, buffer_box
from viewer.render.lesion_visual import (
    BoneSurfaceIndex,
    ColouringMode,
    vertex_distances,
    vessel_iso_hu,
    vessel_surface,
    vessel_voxels,
)
from viewer.render.shading_warmup import WarmMapper

#: Grid (mm) the calcification mesh is built on: a 0.3 mm scan gave a 530 k triangle
#: mesh that cost llvmpipe 90 ms a frame; on a 1.2 mm grid it is ~50 k triangles.
CALC_MESH_GRID_MM = 1.2

#: The overlay meshes a separated scene can show, by ClassMasks field.
OVERLAY_NAMES = ("uncertain", "removed")


class Same:
    """A key part equal only to a key part wrapping the very same object (arrays and
    masks have no usable ``==``); it keeps the object alive, so its id is not reused."""

    __slots__ = ("obj",)

    def __init__(self, obj: object) -> None:
        self.obj = obj

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Same) and other.obj is self.obj

    def __hash__(self) -> int:
        return id(self.obj)

    def __repr__(self) -> str:
        return f"Same({type(self.obj).__name__}@{id(self.obj):x})"


@dataclass(frozen=True, eq=False)
class SceneInputs:
    """Everything :func:`prepare_scene` reads: the wanted state and what the scene
    already holds (so unchanged results are reused, not recomputed).

    ``masks``: the class masks to use (supplied by the caller or the scene's own);
    None in separated mode makes :func:`prepare_scene` compute them for ``tf``.
    ``supplied``: whether ``masks`` came from the caller (the GUI's mask worker)."""

    volume: Volume
    tf: TransferFunction
    masks: ClassMasks | None
    supplied: bool
    lesion: Lesion | None
    keyhole: bool
    colouring: tuple[ColouringMode, float]
    buffer_key: tuple[object, ...] | None = None
    vessel_mesh: Any = None
    vessel_mesh_key: object = None
    vessel_colour_key: object = None
    bone_distance_key: object = None
    bone_distance: BoneSurfaceIndex | None = None
    calc_key: object = None
    overlay_keys: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class PreparedScene:
    """What :func:`prepare_scene` made; ``None`` fields: keep what the scene has.

    ``buffer``: int16 ``(nz+2, ny+2, nx+2)`` raw HU or class codes with the one-voxel
    air border, for ``buffer_key`` -- or the part ``buffer_box`` of it, outside which
    all is air. ``vessel_mesh`` (vtkPolyData, LPS mm) for
    ``vessel_mesh_key``; ``distances_mm`` per vertex of the mesh in use, for
    ``colour_key``; ``bone_distance`` (the nearest-bone index) for ``bone_distance_key``;
    ``calc_mesh`` for ``calc_key``; ``overlay_meshes`` by name, for ``overlay_keys``."""

    inputs: SceneInputs
    masks: ClassMasks | None
    buffer: np.ndarray | None = None
    buffer_key: tuple[object, ...] | None = None
    #: The box of the whole render buffer ``buffer`` holds (``viewer.render.content``:
    #: the patient's body; outside it all is air), or None: all of it.
    buffer_box: BufferBox | None = None
    vessel_mesh: Any = None
    vessel_mesh_key: object = None
    distances_mm: np.ndarray | None = None
    colour_key: object = None
    bone_distance: BoneSurfaceIndex | None = None
    bone_distance_key: object = None
    calc_mesh: Any = None
    calc_key: object = None
    overlay_meshes: dict[str, Any] = field(default_factory=dict)
    overlay_keys: dict[str, object] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)
    #: A :class:`~viewer.render.shading_warmup.WarmMapper` for ``buffer`` (its shading
    #: gradients computed on the worker), or None: the scene then computes them itself.
    warm: WarmMapper | None = None


# ----------------------------------------------------------------------------------
# decisions (cheap: no voxel is read)
# ----------------------------------------------------------------------------------
def colouring_in_use(
    tf: TransferFunction, lesion: Lesion | None, colouring: tuple[ColouringMode, float]
) -> tuple[ColouringMode, float]:
    """The distance colouring actually drawn: off outside separated composite mode and
    for "lesion" without a lesion."""
    mode, max_mm = colouring
    if not tf.separated or tf.blend_mode == "mip" or (mode == "lesion" and lesion is None):
        return "off", max_mm
    return mode, max_mm


def masks_match(masks: ClassMasks | None, tf: TransferFunction) -> bool:
    """Whether the scene's own ``masks`` were made for ``tf``'s thresholds and mode."""
    return masks_fit(masks, MaskSettings.of(tf), exact_window=True)


def _buffer_key(inp: SceneInputs, masks: ClassMasks | None) -> tuple[object, ...]:
    """What the encoded scalars depend on: raw HU, or the masks, the keyhole and (with
    distance colouring: the vessels leave the volume for the window's voxels) the window."""
    if not inp.tf.separated:
        return ("raw", Same(inp.volume))
    hole = inp.lesion if inp.keyhole else None
    colouring_on = colouring_in_use(inp.tf, inp.lesion, inp.colouring)[0] != "off"
    # (whether the buffer is cut to the body: a transfer function that draws air needs
    # the whole one)
    cut = _cuts(inp.tf, masks, hole, colouring_on)
    if not colouring_on:
        return ("encoded", Same(inp.volume), Same(masks), hole, cut)
    return ("encoded", Same(inp.volume), Same(masks), hole, cut, tuple(inp.tf.vessel_window_hu))


def _cuts(tf: TransferFunction, masks: ClassMasks | None, hole: Lesion | None, colouring_on: bool) -> bool:
    """Whether :func:`encode_buffer` makes only the body's box of the buffer
    (:mod:`viewer.render.content`): separated, the table removed, no keyhole, no
    distance colouring, and a transfer function that leaves air transparent."""
    if masks is None or not tf.separated or masks.removed is None or hole is not None or colouring_on:
        return False
    return not air_shown(tf)


def _mesh_key(inp: SceneInputs, masks: ClassMasks | None) -> tuple[object, ...]:
    return (Same(masks), tuple(inp.tf.vessel_window_hu))


def _colour_key(inp: SceneInputs, masks: ClassMasks | None, mesh_key: object) -> tuple[object, ...]:
    mode, max_mm = colouring_in_use(inp.tf, inp.lesion, inp.colouring)
    return (mode, max_mm, inp.lesion if mode == "lesion" else Same(masks), mesh_key)


def calc_shown(tf: TransferFunction, masks: ClassMasks | None) -> bool:
    """Whether the calcification mesh shows for ``tf`` (separated, visible, not MIP)."""
    return (
        masks is not None
        and masks.calcification is not None
        and tf.separated
        and tf.calcification.visible
        and tf.calcification.opacity > 0
        and tf.blend_mode != "mip"
    )


def overlay_shown(tf: TransferFunction, masks: ClassMasks | None, name: str) -> bool:
    """Whether the ``uncertain`` / ``removed`` overlay shows (class_masks gives None for
    an empty class, so this reads no voxels)."""
    on = {"uncertain": tf.show_uncertain, "removed": tf.show_removed}[name]
    return (
        bool(on) and tf.separated and masks is not None and getattr(masks, name) is not None and tf.blend_mode != "mip"
    )


def pending_work(inp: SceneInputs) -> tuple[str, ...]:
    """The heavy steps :func:`prepare_scene` would run for ``inp`` (empty: applying is
    a restyle only). Names: ``masks``, ``encode``, ``vessel_mesh``, ``distances``,
    ``calc_mesh``, ``overlay:<name>``."""
    tf = inp.tf
    masks = inp.masks
    if tf.separated and masks is None:
        return ("masks", "encode")
    out: list[str] = []
    key = _buffer_key(inp, masks)
    mode = colouring_in_use(tf, inp.lesion, inp.colouring)[0]
    mesh_key = inp.vessel_mesh_key
    if key != inp.buffer_key:
        out.append("encode")
        if mode != "off" and _mesh_key(inp, masks) != inp.vessel_mesh_key:
            out.append("vessel_mesh")
            mesh_key = _mesh_key(inp, masks)
    if mode != "off" and _colour_key(inp, masks, mesh_key) != inp.vessel_colour_key:
        out.append("distances")
    if calc_shown(tf, masks) and inp.calc_key != Same(masks):
        out.append("calc_mesh")
    for name in OVERLAY_NAMES:
        if overlay_shown(tf, masks, name) and inp.overlay_keys.get(name) != Same(masks):
            out.append(f"overlay:{name}")
    return tuple(out)


# ----------------------------------------------------------------------------------
# the work (thread-safe: reads the inputs, writes only new objects)
# ----------------------------------------------------------------------------------
def render_bone(hu: np.ndarray, masks: ClassMasks) -> np.ndarray:
    """The bone mask as rendered: ``masks.bone`` plus one more 6-connected layer of
    voxels *below the vessel window* (transparent in either class).

    Why: the class code jumps by ~4000 at the mask's edge. VTK's central-difference
    gradients at the bone's iso-surface (one voxel inside that edge after the rim
    dilation) would see the jump and follow the mask's voxel staircase, so the shaded
    bone showed slice-by-slice terraces. One more layer moves the jump out of reach of
    the surface's gradients; restricting it to sub-window voxels leaves vessels that
    touch bone untouched (no red voxel becomes bone)."""
    grow, halo = _bone_growth(masks)
    return slabwise(grow, masks.bone, hu, halo=halo)


def _bone_growth(masks: ClassMasks) -> tuple[Callable[[np.ndarray, np.ndarray], np.ndarray], int]:
    """:func:`render_bone`'s growth of a bone slab with its HU, and the slices of halo
    it needs each side."""
    low = masks.vessel_window_hu[0]
    two = masks.bone_display_low_hu is not None

    def grow(b: np.ndarray, h: np.ndarray) -> np.ndarray:
        below: np.ndarray = h < low
        one: np.ndarray = b | dilate6(b, within=below)
        if not two:
            return one
        # Bone drawn from the cancellous floor (real-CT masks): the visible surface is at
        # the mask's edge, so the code jump must be two layers out of the gradients' reach.
        two_layers: np.ndarray = one | dilate6(one, within=below, without=one)
        return two_layers

    return grow, 2 if two else 1


def display_mesh(mask: np.ndarray, volume: Volume) -> Any:
    """Smoothed surface (vtkPolyData, LPS mm) of ``mask`` for display: cropped to its
    bounding box, block-OR pooled to about :data:`CALC_MESH_GRID_MM` (a thin shell stays
    closed; the surface may sit up to half a pooled cell outward), windowed-sinc
    smoothed (the voxel staircase would show as terraces)."""
    from viewer.core.extraction import block_or_downsample
    from viewer.render.surfaces import mask_to_surface

    idx = [np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != ax))) for ax in range(3)]
    if any(ix.size == 0 for ix in idx):
        return mask_to_surface(np.zeros((1, 1, 1), bool), volume.ijk_to_lps)
    (k0, k1), (j0, j1), (i0, i1) = ((int(ix[0]), int(ix[-1])) for ix in idx)
    sub = mask[k0 : k1 + 1, j0 : j1 + 1, i0 : i1 + 1]
    sx, sy, sz = volume.spacing_mm
    fz, fy, fx = (max(1, int(round(CALC_MESH_GRID_MM / sp))) for sp in (sz, sy, sx))
    pooled = block_or_downsample(sub, (fz, fy, fx))
    # Pooled voxel (i', j', k') is centred at original index i0 + fx*i' + (fx-1)/2 ...
    m = np.eye(4)
    m[:3, :3] = np.diag([fx, fy, fz]).astype(float)
    m[:3, 3] = (i0 + (fx - 1) / 2.0, j0 + (fy - 1) / 2.0, k0 + (fz - 1) / 2.0)
    return mask_to_surface(pooled, volume.ijk_to_lps @ m, smooth_iterations=30, pass_band=0.01)


def _step(progress: ProgressFn | None, fraction: float, message: str) -> None:
    # A cancelled worker's progress raises LoadCancelled: a superseded preparation stops
    # between two steps.
    if progress is not None:
        progress(fraction, message)


def _grown_shell(shell: np.ndarray, bone: MaskArray) -> np.ndarray:
    """``dilate6(shell) & ~bone``, grown in the shell's bounding box only (shells are a
    few small pieces; a whole-volume dilation costs a full-size pass)."""
    out = np.zeros(shell.shape, dtype=bool)
    box = bbox(shell, 1)
    if box is not None:
        out[box] = dilate6(shell[box], without=bone[box])
    return out


def encode_buffer(
    volume: Volume,
    tf: TransferFunction,
    masks: ClassMasks | None,
    hole: Lesion | None,
    colouring_on: bool,
    *,
    cut: bool = True,
) -> tuple[np.ndarray, np.ndarray | None, BufferBox | None]:
    """A new render buffer (int16 ``(nz+2, ny+2, nx+2)``: raw HU, or the class encoding
    with the keyhole of ``hole``), with ``colouring_on`` the vessel voxels that left it
    (bool ``(nz, ny, nx)``) for the distance-coloured mesh, and the box of that buffer
    made (None: all of it).

    Separated with the table removed (no keyhole, no distance colouring, a transfer
    function that leaves air transparent): only the box round the patient's body is
    made (:mod:`viewer.render.content`); outside it the buffer would hold air only.
    ``cut=False``: always the whole buffer."""
    from viewer.render.lesion_visual import keyhole_air

    nz, ny, nx = volume.shape
    box: BufferBox | None = None
    if cut and _cuts(tf, masks, hole, colouring_on):
        assert masks is not None and masks.removed is not None
        box = buffer_box(volume.shape, body_box(masks.removed))
    bz0, bz1, by0, by1, bx0, bx1 = box if box is not None else (0, nz + 2, 0, ny + 2, 0, nx + 2)
    # One voxel of air around the data: the scan's cut faces (first/last slice) then
    # have a real gradient, so shading lights them. Without it a view along the slice
    # axis shows the cut bone and vessels dark: VTK's gradient there is in-plane or
    # zero, and zero normals get ambient light only (vtkEncodedGradientShader's
    # ZeroNormalDiffuseIntensity is 0).
    buf = np.empty((bz1 - bz0, by1 - by0, bx1 - bx0), dtype=np.int16)
    for face in (buf[0], buf[-1], buf[:, 0], buf[:, -1], buf[:, :, 0], buf[:, :, -1]):
        face[...] = RAW_MIN_HU
    # The volume's part in the buffer (volume index v is buffer index v + 1): the
    # slices of the volume (zs, ys, xs) and of the buffer (inner) they fill.
    bounds = ((nz, bz0, bz1), (ny, by0, by1), (nx, bx0, bx1))
    zs, ys, xs = (slice(max(0, b0 - 1), min(n, b1 - 1)) for n, b0, b1 in bounds)
    inner = buf[
        zs.start + 1 - bz0 : zs.stop + 1 - bz0,
        ys.start + 1 - by0 : ys.stop + 1 - by0,
        xs.start + 1 - bx0 : xs.stop + 1 - bx0,
    ]
    part = (zs.stop - zs.start, ys.stop - ys.start, xs.stop - xs.start)
    if masks is None or not tf.separated:
        # Slab by slab on the pool (both cores; each slab's pages touched once): the
        # first frame of a new scan waits for this buffer.
        hu_all = volume.hu

        def raw(z0: int, z1: int) -> None:
            encode_classes(hu_all[z0:z1], None, out=inner[z0:z1])

        run_slabs(raw, volume.shape)
        return buf, None, None
    shell = masks.calcification
    if shell is not None:
        # One voxel more than the shell: its partial-volume edge would otherwise be a
        # thin red skin on the gold mesh.
        shell = _grown_shell(np.asarray(shell, dtype=bool), masks.bone)
    # Dense voxels of no class (a scan without contrast): transparent, as the shell.
    hidden_masks = [m for m in (shell, masks.hidden) if m is not None]
    if hole is not None:
        # The keyhole needs the whole rendered bone first.
        bone = render_bone(volume.hu, masks)
        hidden: np.ndarray | None = None
        for m in hidden_masks:
            hidden = unpacked(m) if hidden is None else hidden | m
        air = keyhole_air(volume, hole, bone, masks.removed)
        encode_classes(volume.hu, bone, out=inner, hidden_mask=hidden, air_mask=air)
    else:
        # One slab pass: the rendered bone of each slab (from the slab and its halo),
        # its hidden and removed voxels, encoded straight into the buffer -- no
        # full-size temporaries (each is a full pass of fresh memory on a real-size scan).
        grow, halo = _bone_growth(masks)
        hu, bone_m, removed = volume.hu, masks.bone, masks.removed
        z_off = zs.start

        def work(z0: int, z1: int) -> None:
            a0, a1 = z0 + z_off, z1 + z_off  # volume slices
            h0, h1 = max(0, a0 - halo), min(nz, a1 + halo)
            b = grow(bone_m[h0:h1, ys, xs], hu[h0:h1, ys, xs])[a0 - h0 : a1 - h0]
            hid = None
            for m in hidden_masks:
                hid = m[a0:a1, ys, xs] if hid is None else hid | m[a0:a1, ys, xs]
            air_s = None if removed is None else removed[a0:a1, ys, xs]
            encode_classes(hu[a0:a1, ys, xs], b, out=inner[z0:z1], hidden_mask=hid, air_mask=air_s)

        run_slabs(work, part)
    vessel = None
    if colouring_on:
        # The vessels become a distance-coloured mesh and leave the volume.
        vessel = vessel_voxels(inner, tf, masks)
        inner[vessel] = HIDDEN_HU
    return buf, vessel, box


#: The class-mask fields a render buffer is encoded from.
_MASK_FIELDS = ("bone", "calcification", "hidden", "removed", "uncertain", "vessel")


def coarse_spacing(spacing_mm: tuple[float, float, float]) -> tuple[float, float, float]:
    """The voxel size (mm) of a coarse frame's grid: every second voxel."""
    sx, sy, sz = (float(v) for v in spacing_mm)
    return (2.0 * sx, 2.0 * sy, 2.0 * sz)


def _coarse_volume(volume: Volume) -> Volume:
    """Every second voxel of ``volume`` (voxel ``2k + 1`` of each axis), at twice its
    spacing, placed so that its render buffer's element ``k`` lies where the whole
    buffer's element ``2k`` does: the grid of a coarse frame."""
    hu = np.ascontiguousarray(volume.hu[1::2, 1::2, 1::2])
    return Volume(hu, coarse_spacing(volume.spacing_mm), volume.ijk_to_lps)


def coarse_raw_buffer(volume: Volume, tf: TransferFunction) -> np.ndarray:
    """The raw render buffer of every second voxel of ``volume`` (the grid of
    :func:`preview_buffer`, an eighth of the work and memory of the whole buffer): a
    big scan's coarse first frame made straight from the volume."""
    buf, _, _ = encode_buffer(_coarse_volume(volume), tf, None, None, False)  # (no masks: raw HU)
    return buf


def preview_buffer(volume: Volume, tf: TransferFunction, preview: PreviewMasks) -> np.ndarray:
    """A separated render buffer of every second voxel of ``volume`` (the grid of a
    coarse first frame: element ``k`` of each axis is voxel ``2k - 1``, element 0 the
    air face, spacing twice the volume's), classed by ``preview``'s masks (the nearest
    of their slices): a big scan's first separated frame while its full masks are made.

    Between two mask slices a voxel is bone (calcification, hidden) if it is in either,
    and removed only if in both: a bone's edge between them must not show as a red
    fringe. Without contrast, every voxel of the window that is not bone is hidden (a
    dense voxel between mask slices has no class of its own, and would show red)."""
    coarse = _coarse_volume(volume)
    hu = coarse.hu
    below, above = preview.bracket(np.arange(1, volume.shape[0], 2))
    # Each coarse slice is one mask slice (below == above) or the join of two
    # neighbours: joins of every neighbouring pair are made once, on the mask slices'
    # coarse pixels, and each coarse slice is one copy from them (not two gathers and
    # an operation on the whole coarse grid per field).
    n = preview.masks.bone.shape[0]
    pick = np.where(below == above, below, n + below)
    fields: dict[str, Any] = {}
    for name in _MASK_FIELDS:
        a = getattr(preview.masks, name)
        if a is None:
            fields[name] = None
            continue
        # (indexed first: a packed mask unpacks only the rows taken)
        a = np.ascontiguousarray(a[:, 1::2, 1::2], dtype=bool)
        pairs = (a[:-1] & a[1:]) if name == "removed" else (a[:-1] | a[1:])
        fields[name] = np.concatenate((a, pairs)).take(pick, axis=0)
    m = preview.masks
    if m.contrast is False:
        floor = m.vessel_window_hu[0] - HIDDEN_RAMP_HU
        dense = (hu >= floor) & ~fields["bone"]
        fields["hidden"] = dense if fields["hidden"] is None else (fields["hidden"] | dense)
    masks = dataclasses.replace(m, **fields)
    buf, _, _ = encode_buffer(coarse, tf, masks, None, False, cut=False)
    return buf


def _points_lps(mesh: Any) -> np.ndarray:
    from vtkmodules.util.numpy_support import vtk_to_numpy

    if mesh is None or mesh.GetNumberOfPoints() == 0:
        return np.zeros((0, 3))
    return np.asarray(vtk_to_numpy(mesh.GetPoints().GetData()), dtype=np.float64)


def prepare_scene(inp: SceneInputs, progress: ProgressFn | None = None) -> PreparedScene:
    """Compute what :func:`pending_work` lists for ``inp`` (see the module doc). Safe on
    a worker thread; ``progress(fraction, message)`` is called between steps (a
    cancelled worker's raises, which stops the preparation)."""
    tf, v = inp.tf, inp.volume
    t: dict[str, float] = {}
    masks = inp.masks
    if tf.separated and masks is None:
        _step(progress, 0.0, "separating bone and vessels")
        t0 = time.perf_counter()
        masks = class_masks_for(v.hu, v.spacing_mm, MaskSettings.of(tf))
        t["class_masks"] = time.perf_counter() - t0
    out: dict[str, Any] = {}
    mode, _ = colouring_in_use(tf, inp.lesion, inp.colouring)
    key = _buffer_key(inp, masks)
    mesh, mesh_key = inp.vessel_mesh, inp.vessel_mesh_key
    if key != inp.buffer_key:
        _step(progress, 0.2, "encoding the volume")
        t0 = time.perf_counter()
        buf, vessel, box = encode_buffer(v, tf, masks, inp.lesion if inp.keyhole else None, mode != "off")
        t["encode"] = time.perf_counter() - t0
        out.update(buffer=buf, buffer_key=key, buffer_box=box)
        if vessel is not None and _mesh_key(inp, masks) != mesh_key:
            _step(progress, 0.5, "building the vessel surface")
            t0 = time.perf_counter()
            mesh, mesh_key = vessel_surface(v, vessel, vessel_iso_hu(tf)), _mesh_key(inp, masks)
            t["vessel_mesh"] = time.perf_counter() - t0
            out.update(vessel_mesh=mesh, vessel_mesh_key=mesh_key)
    if mode != "off" and masks is not None and mesh is not None:
        ckey = _colour_key(inp, masks, mesh_key)
        if ckey != inp.vessel_colour_key:
            _step(progress, 0.7, "measuring distances")
            t0 = time.perf_counter()
            bone_field: list[BoneSurfaceIndex] = []
            bkey = (Same(v), Same(masks.bone))

            def bone_distance() -> BoneSurfaceIndex:
                if inp.bone_distance is not None and inp.bone_distance_key == bkey:
                    return inp.bone_distance
                bone_field.append(BoneSurfaceIndex(v, masks.bone))
                return bone_field[-1]

            d = vertex_distances(_points_lps(mesh), v, mode, inp.lesion, bone_distance)
            out.update(distances_mm=d, colour_key=ckey)
            if bone_field:
                out.update(bone_distance=bone_field[-1], bone_distance_key=bkey)
            t["distances"] = time.perf_counter() - t0
    if calc_shown(tf, masks) and inp.calc_key != Same(masks):
        assert masks is not None and masks.calcification is not None
        _step(progress, 0.85, "building the calcification surface")
        t0 = time.perf_counter()
        out.update(calc_mesh=display_mesh(np.asarray(masks.calcification), v), calc_key=Same(masks))
        t["calcification_mesh"] = time.perf_counter() - t0
    meshes: dict[str, Any] = {}
    keys: dict[str, object] = {}
    for name in OVERLAY_NAMES:
        if overlay_shown(tf, masks, name) and inp.overlay_keys.get(name) != Same(masks):
            _step(progress, 0.9, f"building the {name} overlay")
            mask = np.asarray(getattr(masks, name))
            if name == "removed":
                # Only what had substance: the couch, not the air around it.
                mask = mask & (v.hu > -350)
            meshes[name], keys[name] = display_mesh(mask, v), Same(masks)
    # (the temporaries of the encoding, freed on the pool's threads, back to the OS
    # before the shading gradients are computed: viewer.core.memory)
    trim_freed_memory()
    return PreparedScene(inp, masks, overlay_meshes=meshes, overlay_keys=keys, timings_s=t, **out)


__all__ = [
    "CALC_MESH_GRID_MM",
    "OVERLAY_NAMES",
    "PreparedScene",
    "Same",
    "SceneInputs",
    "calc_shown",
    "coarse_raw_buffer",
    "coarse_spacing",
    "colouring_in_use",
    "display_mesh",
    "encode_buffer",
    "masks_match",
    "overlay_shown",
    "pending_work",
    "prepare_scene",
    "preview_buffer",
    "render_bone",
]
