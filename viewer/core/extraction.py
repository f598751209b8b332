"""Bone and vessel masks from one CT angiogram: separation beyond a single 1D threshold.

Why masks: with one 1D transfer function, contrast-filled vessels (about 200-500 HU),
trabecular bone, the partial-volume rim of cortical bone and calcifications share the
same HU, so every bone surface gets a red fringe and vessels touching bone vanish into
it. Here bone is found first, as an object (threshold -> large connected components
-> marrow cavity filled -> one-voxel dilation over the partial-volume rim), and vessels
are the vessel window *outside* that object. Calcified shells (eggshell calcification
around a low-HU cavity, 300-800 HU, inside the vessel window) are a third class, told
from vessels by shape (:func:`calcification_mask`), so they are neither red nor bone.

Arrays are ``(nz, ny, nx)`` as in :class:`viewer.core.volume.Volume`; spacing is
``(x, y, z)`` mm. The marrow fill works slice by slice in the ``(y, x)`` plane, i.e.
across the scan's slice axis, which for a limb CTA is the bone's long axis.

Speed (target ~2-3 s for the whole extraction of 512x512x600 on a 2-core machine,
measured in ``docs/bench-extract.md``): bone work runs on the bounding box of the voxels
above the bone threshold (plus a margin); thresholds are taken slice by slice into
preallocated buffers; morphology is shifted in-place OR/AND of ``bool`` arrays; the
marrow fill is a single 3D labelling of the background with an in-plane-only structure
instead of a Python loop over slices; the calcification's shape analysis runs on a
pooled grid around the cavities only.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

from viewer.core.errors import ViewerError
from viewer.core.mask_policy import MaskSettings, masks_fit
from viewer.core.memory import trim_freed_memory
from viewer.core.packed import MaskArray, PackedMask, unpacked
from viewer.core.progress import ProgressFn, report
from viewer.core.separation import COARSE_VOXEL_MM, bbox, dilate6, pool_any, upsample

#: Connected bone pieces smaller than this (mm^3) are dropped as specks: vessel-wall
#: calcifications, calcified plaque and noise spikes. A 2 cm long, 4 mm wide calcified
#: arterial segment is about 250 mm^3, a human distal phalanx several hundred.
DEFAULT_MIN_BONE_COMPONENT_MM3 = 200.0

#: Vessel-window pieces smaller than this (mm^3) are dropped as noise specks. Small:
#: a sub-voxel collateral crossing the grid breaks into pieces of a few voxels. On the
#: default phantom (0.7 mm voxels) 2 mm^3 dropped 1.4 % of the collateral voxels and
#: only 6 false ones more than 1 mm^3 does (noise rarely reaches the window's low end).
DEFAULT_MIN_VESSEL_COMPONENT_MM3 = 1.0

#: In-plane closing radius (voxels) before the marrow fill: bridges gaps in a thin or
#: partly eroded cortex so the cavity still closes in that slice.
DEFAULT_CLOSING_VOXELS = 2

#: Dilation (voxels, 6-connected steps) over the partial-volume rim of the bone.
DEFAULT_DILATION_VOXELS = 1


@dataclass(frozen=True)
class Extraction:
    """Result of :func:`extract`: boolean masks ``(nz, ny, nx)`` and how they were made.

    ``bone``, ``vessel`` and ``calcification`` are disjoint. ``thresholds`` holds
    ``bone_threshold_hu``, ``vessel_low_hu``, ``vessel_high_hu``; ``timings_s`` the
    seconds per stage (``bone_s``, ``calcification_s``, ``vessel_s``, ``total_s``).
    """

    bone: np.ndarray
    vessel: np.ndarray
    #: Calcified shells (:func:`calcification_mask`): rendered apart from the vessels.
    calcification: np.ndarray
    thresholds: Mapping[str, float] = field(default_factory=dict)
    timings_s: Mapping[str, float] = field(default_factory=dict)
    #: Vessel voxels touching bone whose class is unsure (included in ``vessel``).
    uncertain: np.ndarray | None = None
    #: Outside the patient's body (couch, holders): in no class.
    removed: np.ndarray | None = None
    #: Whether the scan has opacified vessels, and that in words.
    contrast: bool = True
    message: str = ""

    @property
    def timings(self) -> Mapping[str, float]:
        return self.timings_s


def _check_volume(hu: np.ndarray) -> np.ndarray:
    hu = np.asarray(hu)
    if hu.ndim != 3 or min(hu.shape) < 1:
        raise ViewerError(f"extraction needs a 3D volume, got shape {hu.shape}")
    if not np.issubdtype(hu.dtype, np.number):
        raise ViewerError(f"extraction needs HU numbers, got dtype {hu.dtype}")
    return hu


def _voxel_mm3(spacing_mm: tuple[float, float, float] | None) -> float:
    if spacing_mm is None:
        return 1.0
    s = tuple(float(v) for v in spacing_mm)
    if len(s) != 3 or not all(np.isfinite(v) and v > 0 for v in s):
        raise ViewerError(f"voxel spacing must be three positive numbers (x, y, z) mm, got {spacing_mm}")
    return s[0] * s[1] * s[2]


def threshold_mask(
    hu: np.ndarray, low_hu: float, high_hu: float | None = None, *excluded: np.ndarray | None
) -> np.ndarray:
    """``low_hu <= hu (<= high_hu)`` and in none of the ``excluded`` masks, as bool.

    Slice by slice into preallocated buffers: the whole-volume expression allocates
    several 0.17 GB temporaries on a 512x512x640 scan and took 0.4-0.5 s; this 0.05 s
    (each slice's operands stay in cache)."""
    out = np.empty(hu.shape, dtype=bool)
    tmp = np.empty(hu.shape[1:], dtype=bool)
    masks = [m for m in excluded if m is not None]
    for k in range(hu.shape[0]):
        o = out[k]
        np.greater_equal(hu[k], low_hu, out=o)
        if high_hu is not None:
            np.less_equal(hu[k], high_hu, out=tmp)
            o &= tmp
        for m in masks:
            np.greater(o, m[k], out=o)  # o and not m
    return out


def _keep_large_components(mask: np.ndarray, min_voxels: float) -> np.ndarray:
    """``mask`` without its 6-connected components smaller than ``min_voxels``.

    Sizes come from each piece's bounding box (``find_objects``): a box smaller than
    ``min_voxels`` holds a small piece; only pieces with a larger box are counted, in
    their box. ``bincount`` over the whole label image (it converts it to int64) and a
    keep-table gather took 0.9 s on a 512x512x640 scan; this takes a fraction."""
    if min_voxels <= 1:
        return mask
    lab, n = ndi.label(mask)
    if n == 0:
        return mask
    out = mask
    for i, sl in enumerate(ndi.find_objects(lab), start=1):
        if sl is None:
            continue
        box_voxels = (sl[0].stop - sl[0].start) * (sl[1].stop - sl[1].start) * (sl[2].stop - sl[2].start)
        if box_voxels >= min_voxels:
            piece = lab[sl] == i
            if np.count_nonzero(piece) >= min_voxels:
                continue
        else:
            piece = lab[sl] == i
        if out is mask:
            out = mask.copy()
        out[sl][piece] = False
    return out


def _shifted(axis: int, lo: int | None, hi: int | None) -> tuple[slice, ...]:
    return (slice(None),) * axis + (slice(lo, hi),)


def _max1d(a: np.ndarray, axis: int) -> np.ndarray:
    """Dilation of a bool array by 3 voxels along ``axis`` (outside counts as False).

    Two shifted in-place ORs: 10-25x faster here than ``maximum_filter1d`` on uint8
    (measured on a 640x240x298 box: 0.01-0.02 s vs 0.26 s)."""
    out: np.ndarray = a.copy()
    out[_shifted(axis, 1, None)] |= a[_shifted(axis, None, -1)]
    out[_shifted(axis, None, -1)] |= a[_shifted(axis, 1, None)]
    return out


def _min1d(a: np.ndarray, axis: int) -> np.ndarray:
    """Erosion of a bool array by 3 voxels along ``axis``; outside the array counts as
    False, as ``binary_erosion``'s default ``border_value=0``."""
    out: np.ndarray = a.copy()
    out[_shifted(axis, 1, None)] &= a[_shifted(axis, None, -1)]
    out[_shifted(axis, None, -1)] &= a[_shifted(axis, 1, None)]
    out[_shifted(axis, 0, 1)] = False
    out[_shifted(axis, -1, None)] = False
    return out


def _disk_dilate(a: np.ndarray, radius: int) -> np.ndarray:
    """In-plane dilation by :func:`_disk_structure` (radius 1 or 2): the disk of radius
    2 (x^2 + y^2 <= 6: a 5x5 square without its corners) is the 3x3 square dilated by
    the 4-cross, and the square is two 1D passes -- all separable, no 21-voxel
    structure scanned per voxel."""
    sq = _max1d(_max1d(a, 1), 2)
    if radius == 1:
        return sq
    disk: np.ndarray = _max1d(sq, 1) | _max1d(sq, 2)
    return disk


def _disk_erode(a: np.ndarray, radius: int) -> np.ndarray:
    """In-plane erosion by the same disk: erosion by a union of structures is the
    intersection of the erosions; by a sum, erosion by each in turn."""
    sq = _min1d(_min1d(a, 1), 2)
    if radius == 1:
        return sq
    disk: np.ndarray = _min1d(sq, 1) & _min1d(sq, 2)
    return disk


_IN_PLANE_4 = np.zeros((3, 3, 3), dtype=bool)
_IN_PLANE_4[1] = ndi.generate_binary_structure(2, 1)


def _disk_structure(radius: int) -> np.ndarray:
    """In-plane disk of ``radius`` voxels as a (1, d, d) 3D structure."""
    r = int(radius)
    y, x = np.mgrid[-r : r + 1, -r : r + 1]
    disk: np.ndarray = (x * x + y * y <= r * r + r)[None, :, :]
    return disk


def fill_holes_in_plane(mask: np.ndarray) -> np.ndarray:
    """Fill every enclosed hole of ``mask`` in each ``(y, x)`` slice.

    One 3D labelling of the background with a structure that connects only within a
    slice (4-connected in-plane), instead of ``binary_fill_holes`` per slice: a
    background piece is a hole if it touches none of its slice's four edges.
    """
    bg = ~mask
    lab, n = ndi.label(bg, structure=_IN_PLANE_4)
    if n == 0:
        unchanged: np.ndarray = mask.copy()
        return unchanged
    edge = np.zeros(n + 1, dtype=bool)
    for border in (lab[:, 0, :], lab[:, -1, :], lab[:, :, 0], lab[:, :, -1]):
        edge[np.unique(border)] = True
    edge[0] = True  # label 0 is the mask itself
    filled: np.ndarray = mask | ~edge[lab]
    return filled


def bone_mask(
    hu: np.ndarray,
    spacing_mm: tuple[float, float, float] | None,
    bone_threshold_hu: float,
    progress: ProgressFn | None = None,
    *,
    min_component_mm3: float = DEFAULT_MIN_BONE_COMPONENT_MM3,
    closing_voxels: int = DEFAULT_CLOSING_VOXELS,
    dilation_voxels: int = DEFAULT_DILATION_VOXELS,
    rim_low_hu: float | None = None,
) -> np.ndarray:
    """Boolean mask ``(nz, ny, nx)`` of bone, marrow cavity included.

    Steps: ``hu >= bone_threshold_hu`` (cortical and dense trabecular bone) ->
    6-connected components of at least ``min_component_mm3`` (drops calcified plaque
    and specks) -> in-plane closing by ``closing_voxels`` and in-plane hole filling
    (the marrow cavity, whose fat and trabecular bone sit at -100..400 HU, inside the
    vessel window's range) -> ``dilation_voxels`` 6-connected dilation (the
    partial-volume rim, where bone blurs with soft tissue through the vessel window).
    The closing only adds the holes it closes, not the concavities it rounds off.

    ``rim_low_hu`` (the vessel window's low end, as :func:`extract` passes it) makes the
    dilation *conditional*: it takes only rim voxels with ``hu >= rim_low_hu``, the
    ones that would otherwise be coloured as vessel. Rim voxels below the window are
    invisible in either class, so leaving them out keeps the mask on the bone (bone
    Dice 0.949 -> 0.963 on the default phantom, docs/transfer-functions.md) while every
    non-bone neighbour of the mask still lies below the vessel window -- the property
    the one-pass class encoding (viewer/core/classmap.py) relies on. None: plain
    dilation (every rim voxel).

    Args:
        hu: HU array ``(nz, ny, nx)``.
        spacing_mm: ``(x, y, z)`` voxel size in mm (None: 1 mm isotropic).
        bone_threshold_hu: lowest HU counted as bone.
        progress: optional ``progress(fraction, message)``; may raise LoadCancelled.
    """
    hu = _check_volume(hu)
    vox_mm3 = _voxel_mm3(spacing_mm)
    report(progress, 0.0, "bone: threshold")
    seed_full = threshold_mask(hu, bone_threshold_hu)
    margin = max(0, closing_voxels) + max(0, dilation_voxels) + 1
    box = bbox(seed_full, margin)
    out = np.zeros(hu.shape, dtype=bool)
    if box is None:
        report(progress, 1.0, "bone: none above threshold")
        return out
    seed = seed_full[box]
    del seed_full
    report(progress, 0.2, "bone: connected components")
    seed = _keep_large_components(seed, min_component_mm3 / vox_mm3)
    if not seed.any():
        report(progress, 1.0, "bone: only small specks above threshold")
        return out
    report(progress, 0.45, "bone: marrow cavity")
    if closing_voxels > 0:
        if closing_voxels in (1, 2):
            closed = _disk_erode(_disk_dilate(seed, closing_voxels), closing_voxels)
        else:
            closed = ndi.binary_closing(seed, structure=_disk_structure(closing_voxels), border_value=0)
        # binary_closing erodes at the array border; the box margin keeps bone away
        # from it, so nothing real is lost there.
        filled = fill_holes_in_plane(closed)
        bone = seed | (filled & ~closed)
        # Keep the closing's voxels only where they border a filled hole (the bridge
        # across a cortical gap), not where they round off an outer concavity.
        holes = filled & ~closed
        if holes.any():
            near_hole = holes
            for _ in range(closing_voxels):
                near_hole = _max1d(near_hole, 1) | _max1d(near_hole, 2) | near_hole
            bridge = closed & ~seed & near_hole
            bone |= bridge
    else:
        bone = fill_holes_in_plane(seed)
    report(progress, 0.75, "bone: partial-volume rim")
    if dilation_voxels > 0:
        # Grows only through voxels inside the vessel window's range or above when
        # rim_low_hu is given; each step is one 6-connected voxel.
        allowed = None if rim_low_hu is None else hu[box] >= rim_low_hu
        for _ in range(dilation_voxels):
            grown = dilate6(bone)
            bone = grown if allowed is None else bone | (grown & allowed)
    out[box] = bone
    report(progress, 1.0, "bone: done")
    return out


def vessel_mask(
    hu: np.ndarray,
    bone: np.ndarray | None,
    vessel_window_hu: tuple[float, float],
    *,
    spacing_mm: tuple[float, float, float] | None = None,
    min_component_mm3: float = DEFAULT_MIN_VESSEL_COMPONENT_MM3,
    exclude: np.ndarray | None = None,
) -> np.ndarray:
    """Boolean mask of contrast-filled vessels: ``lo <= hu <= hi`` outside ``bone``
    (and outside ``exclude``, e.g. the calcification mask, when given).

    Pieces smaller than ``min_component_mm3`` (6-connected) are dropped as noise
    specks; pass 0 to keep everything. ``bone`` None means no bone mask.
    """
    hu = _check_volume(hu)
    lo, hi = (float(v) for v in vessel_window_hu)
    if not lo < hi:
        raise ViewerError(f"vessel window must be low < high HU, got {vessel_window_hu}")
    masks = []
    for name, mk in (("bone", bone), ("excluded", exclude)):
        if mk is not None:
            mk = np.asarray(mk, dtype=bool)
            if mk.shape != hu.shape:
                raise ViewerError(f"{name} mask shape {mk.shape} differs from the volume's {hu.shape}")
            masks.append(mk)
    m = threshold_mask(hu, lo, hi, *masks)
    min_vox = min_component_mm3 / _voxel_mm3(spacing_mm)
    if min_vox > 1:
        box = bbox(m, 0)
        if box is None:
            return m
        m[box] = _keep_large_components(m[box], min_vox)
    return m


#: Calcification: a candidate voxel belongs to a calcified shell when it lies within
#: this distance (mm) of an enclosed low-HU cavity. Eggshell calcification is thin;
#: 3 mm covers a 1-2.5 mm plaque plus its partial-volume blur on both sides, and keeps
#: clear of vessels that run past the shell with a few mm of tissue between.
DEFAULT_CALC_MAX_THICKNESS_MM = 3.0

#: Enclosed cavities smaller than this (mm^3) are ignored: pockets of soft tissue
#: trapped between touching vessels and bone, not a calcified mass or sac.
DEFAULT_CALC_MIN_CAVITY_MM3 = 500.0

#: Parts of the candidate thicker than 2x this radius (mm) are tubes or lumens, never
#: shell: a morphological opening with a ball of this radius keeps them out of the
#: calcification where a vessel touches the shell (an aortic lumen around mural
#: thrombus, an artery lying on the calcified rim).
DEFAULT_CALC_TUBE_RADIUS_MM = 2.0

#: Voxel size (mm) of the grid the shape analysis runs on: finer scans are pooled
#: (block OR) to about this size so the cost does not grow with resolution.
DEFAULT_CALC_GRID_MM = 0.8


# Block-OR pooling and its nearest-neighbour inverse live in viewer.core.separation
# (one implementation for the shell search, the separation and the display mesh).
_pool_any = pool_any

#: Public name: the renderer pools the calcification mask for its display mesh.
block_or_downsample = pool_any


def _upsample(mask: np.ndarray, f: tuple[int, int, int], shape: tuple[int, ...]) -> np.ndarray:
    """Nearest-neighbour inverse of :func:`_pool_any`, cropped to ``shape``."""
    return upsample(mask, f, shape)  # type: ignore[arg-type]


def calcification_mask(
    hu: np.ndarray,
    spacing_mm: tuple[float, float, float] | None,
    bone: np.ndarray | None,
    vessel_window_hu: tuple[float, float] | float,
    progress: ProgressFn | None = None,
    *,
    max_thickness_mm: float = DEFAULT_CALC_MAX_THICKNESS_MM,
    min_cavity_mm3: float = DEFAULT_CALC_MIN_CAVITY_MM3,
    tube_radius_mm: float = DEFAULT_CALC_TUBE_RADIUS_MM,
    grid_mm: float = DEFAULT_CALC_GRID_MM,
) -> np.ndarray:
    """Boolean mask ``(nz, ny, nx)`` of calcified shells: eggshell calcification around a
    low-HU cavity (calcific myonecrosis, a calcified cyst, a thrombosed sac's wall).

    Why: such a shell is 300-800 HU, inside the vessel window, so without this class it
    renders as one big red blob that hides the arteries around it. What tells it from a
    vessel is shape, not HU: a vessel tree is tubes; a shell is a thin sheet closed
    around a large space that is *not* in the window. And the shell may touch vessels
    (collaterals wind around such a mass), so one connected component can hold both:
    the decision is per voxel, not per component.

    Steps, on a grid pooled to about ``grid_mm`` (block OR keeps a thin shell closed):

    1. candidate = ``hu >= window low`` outside ``bone``; solid = candidate | bone;
    2. cavities = 6-connected pieces of the non-solid that touch no side of the solid's
       bounding box, of at least ``min_cavity_mm3``, and walled mostly (>= 50 % of the
       voxels around them) by candidate rather than bone -- a marrow cavity or a skull
       is enclosed by bone and is not a calcification;
    3. shell = candidate voxels within ``max_thickness_mm`` of a cavity (Euclidean
       distance, voxel size honoured), minus the *thick* part of the candidate (its
       opening by a ball of ``tube_radius_mm``: lumens and arteries thicker than
       ``2 * tube_radius_mm`` that touch the shell stay vessel); both distances grow
       by half a (pooled) voxel for the partial-volume blur;
    4. back to the full grid: candidate voxels whose pooled cell is shell.

    Args:
        hu: HU array ``(nz, ny, nx)``.
        spacing_mm: ``(x, y, z)`` voxel size in mm (None: 1 mm isotropic).
        bone: the bone mask (same shape) or None; bone voxels are never calcification.
        vessel_window_hu: ``(low, high)`` HU or just ``low``: the candidate threshold
            (calcification above ``high`` is included too: it is not lumen either).
        progress: optional ``progress(fraction, message)``; may raise LoadCancelled.
    """
    hu = _check_volume(hu)
    _voxel_mm3(spacing_mm)  # validates
    sx, sy, sz = (1.0, 1.0, 1.0) if spacing_mm is None else (float(v) for v in spacing_mm)
    lo = float(vessel_window_hu) if np.isscalar(vessel_window_hu) else float(vessel_window_hu[0])  # type: ignore[index, arg-type]
    out = np.zeros(hu.shape, dtype=bool)
    if bone is not None:
        bone = np.asarray(bone, dtype=bool)
        if bone.shape != hu.shape:
            raise ViewerError(f"bone mask shape {bone.shape} differs from the volume's {hu.shape}")
    report(progress, 0.0, "calcification: candidate")
    solid_full = threshold_mask(hu, lo)
    f = tuple(max(1, int(grid_mm / s + 1e-6)) for s in (sz, sy, sx))
    f = (int(f[0]), int(f[1]), int(f[2]))
    box = bbox(solid_full, max(f) + 1)
    if box is None:
        report(progress, 1.0, "calcification: none")
        return out
    solid = solid_full[box]
    del solid_full
    if bone is not None:
        # (slab by slab: no whole-box temporaries)
        from viewer.core.separation import voxelwise

        cand = voxelwise(lambda q, b: q & ~b, solid, bone[box])
        solid = voxelwise(lambda q, b: q | b, solid, bone[box])
    else:
        cand = solid
    if not cand.any():
        report(progress, 1.0, "calcification: none")
        return out
    # --- cavities on the pooled grid -------------------------------------------------
    report(progress, 0.2, "calcification: enclosed cavities")
    solid_c = _pool_any(solid, f)
    cand_c = _pool_any(cand, f)
    spacing_c = (sz * f[0], sy * f[1], sx * f[2])
    vox_c = spacing_c[0] * spacing_c[1] * spacing_c[2]
    lab, n = ndi.label(~solid_c)
    if n == 0:
        report(progress, 1.0, "calcification: no enclosed space")
        return out
    # Pieces touching the box's sides are open to the outside; the others are
    # enclosed. Each is handled in its own bounding box (find_objects): there are few,
    # and no gather over the whole label image is needed.
    open_labels: set[int] = set()
    for face in (lab[0], lab[-1], lab[:, 0], lab[:, -1], lab[:, :, 0], lab[:, :, -1]):
        open_labels.update(int(v) for v in np.unique(face))
    cavity_c = np.zeros(lab.shape, dtype=bool)
    min_cavity_voxels = min_cavity_mm3 / vox_c
    for i, sl in enumerate(ndi.find_objects(lab), start=1):
        if sl is None or i in open_labels:
            continue
        if (sl[0].stop - sl[0].start) * (sl[1].stop - sl[1].start) * (sl[2].stop - sl[2].start) < min_cavity_voxels:
            continue
        # One voxel around the piece (it touches no side, so the grown box fits).
        g = tuple(slice(a.start - 1, a.stop + 1) for a in sl)
        piece = lab[g] == i
        if np.count_nonzero(piece) < min_cavity_voxels:
            continue
        # Wall test: the solid voxels next to the cavity, by what they are.
        wall = dilate6(piece) & ~piece
        n_wall = int(np.count_nonzero(wall))
        if np.count_nonzero(wall & cand_c[g]) < 0.5 * max(n_wall, 1):
            continue  # walled by bone: a marrow cavity, a skull
        cavity_c[g] |= piece
    del lab
    if not cavity_c.any():
        report(progress, 1.0, "calcification: no enclosed cavity walled by candidate")
        return out
    # --- shell: thin candidate next to a cavity -------------------------------------
    report(progress, 0.5, "calcification: shell around cavities")
    # Partial volume blurs every surface over about half a voxel each side, and the
    # pooled grid quantises by as much: both distances grow by that, so the rule
    # means the same at 0.3 mm and at 1.5 mm voxels.
    half_voxel_mm = 0.5 * max(spacing_c)
    thickness_mm = max_thickness_mm + half_voxel_mm
    radius_mm = tube_radius_mm + half_voxel_mm if tube_radius_mm > 0 else 0.0
    margin = [int(np.ceil((thickness_mm + 2 * radius_mm) / s)) + 1 for s in spacing_c]
    sbox_small = bbox(cavity_c, 0)
    assert sbox_small is not None
    sbox = tuple(
        slice(max(0, b.start - m), min(n_ax, b.stop + m))
        for b, m, n_ax in zip(sbox_small, margin, cavity_c.shape, strict=False)
    )
    cav = cavity_c[sbox]
    cnd = cand_c[sbox]
    near = ndi.distance_transform_edt(~cav, sampling=spacing_c) <= thickness_mm
    shell = near & cnd
    if radius_mm > 0 and shell.any():
        # Opening by a ball: centres deeper than r inside the candidate, grown by r.
        # The candidate's inside is measured against everything not candidate
        # (cavity included), so a shell never counts as deep.
        depth = ndi.distance_transform_edt(cnd, sampling=spacing_c)
        core = depth > radius_mm
        if core.any():
            thick = ndi.distance_transform_edt(~core, sampling=spacing_c) <= radius_mm
            shell &= ~thick
    shell_c = np.zeros(cavity_c.shape, dtype=bool)
    shell_c[sbox] = shell
    # --- back to the full grid ---------------------------------------------------------
    report(progress, 0.85, "calcification: full resolution")
    fbox = bbox(shell_c, 0)
    if fbox is not None:
        full_box = tuple(
            slice(b.start * k, min(n_ax, b.stop * k)) for b, k, n_ax in zip(fbox, f, cand.shape, strict=False)
        )
        up = _upsample(shell_c[fbox], f, tuple(s.stop - s.start for s in full_box))
        region = np.zeros(cand.shape, dtype=bool)
        region[full_box] = up & cand[full_box]
        out[box] = region
    report(progress, 1.0, "calcification: done")
    return out


@dataclass(frozen=True, eq=False)
class ClassMasks:
    """What the separated rendering needs, with the thresholds it was computed for (so
    a caller can tell a stale set): the bone mask, the calcification (plaques and
    calcified shells, drawn as a gold mesh), and from :func:`class_masks` also

    * ``hidden``: voxels in the vessel window that belong to no shown class (dense
      tissue of a scan without contrast that is neither bone nor vessel): transparent;
    * ``removed``: outside the patient's body (couch, holders): rendered as air;
    * ``uncertain``: vessel-window voxels touching bone whose class is unsure; they
      render as vessel, and can be drawn in their own colour on top;
    * ``vessel``: the vessel class itself (for exports and counts);
    * ``contrast`` / ``message``: whether the scan has opacified vessels, in words;
      ``contrast_forced``: the verdict was set by the user, not detected;
    * ``bone_display_low_hu``: the HU from which bone-class voxels are drawn (the
      cancellous floor: a bone object holds cancellous bone at 150-400 HU).

    The renderer shows the vessel window *outside* bone, calcification, hidden and
    removed through its transfer function, so a vessel-window edit restyles at once.
    """

    bone: MaskArray
    calcification: np.ndarray | None
    bone_threshold_hu: float
    vessel_window_hu: tuple[float, float]
    hidden: MaskArray | None = None
    removed: MaskArray | None = None
    uncertain: np.ndarray | None = None
    vessel: np.ndarray | None = None
    contrast: bool | None = None
    message: str = ""
    contrast_forced: bool = False
    bone_display_low_hu: float | None = None
    remove_table: bool = True
    timings_s: Mapping[str, float] = field(default_factory=dict)
    #: The scan's soft-tissue HU (real-CT masks), for :meth:`bone_core`.
    soft_tissue_hu: float | None = None

    def bone_core(self, hu: np.ndarray) -> np.ndarray:
        """The bone class as exported and measured: ``bone`` without its faintest
        partial-volume layer (:func:`viewer.core.separation.bone_edge`, voxels of the
        outer layer under a fifth of the local bone contrast), which ``bone`` keeps so
        the rendering draws it ivory instead of red. Masks without a soft-tissue level
        (the classic separation): ``bone`` itself."""
        if self.soft_tissue_hu is None:
            return unpacked(self.bone)
        from viewer.core.separation import bone_edge, voxelwise

        edge = bone_edge(hu, self.bone, self.soft_tissue_hu)
        return voxelwise(lambda b, e: b & ~e, self.bone, edge)

    def matches(
        self,
        bone_threshold_hu: float,
        vessel_window_hu: tuple[float, float],
        remove_table: bool | None = None,
        real_ct: bool | None = None,
    ) -> bool:
        """True when these masks were computed for these settings, the vessel window
        included (:func:`viewer.core.mask_policy.masks_fit` with ``exact_window``: the
        table setting counts for real-CT masks only). ``remove_table`` / ``real_ct``
        None: not compared (nor is the contrast verdict)."""
        real = (self.contrast is not None) if real_ct is None else bool(real_ct)
        table = self.remove_table if remove_table is None else bool(remove_table)
        verdict = self.contrast if self.contrast_forced else None
        settings = MaskSettings(float(bone_threshold_hu), vessel_window_hu, table, real, verdict)
        return masks_fit(self, settings, exact_window=True)


#: How far below the vessel window's low end classless voxels are hidden on a scan
#: without contrast (the separated transfer function's ramp is 40 HU).
HIDDEN_RAMP_HU = 60.0

#: Grid (mm) of the calcified-shell search inside :func:`class_masks` (coarser than
#: the stand-alone default: its distance transforms dominate the cost).
SHELL_GRID_MM = 1.6


def _sub(progress: ProgressFn | None, a: float, b: float) -> ProgressFn | None:
    if progress is None:
        return None
    return lambda f, msg: progress(a + (b - a) * f, msg)


def _classic_class_masks(
    hu: np.ndarray,
    spacing_mm: tuple[float, float, float] | None,
    bone_threshold_hu: float,
    vessel_window_hu: tuple[float, float],
    progress: ProgressFn | None = None,
) -> ClassMasks:
    """Bone (rim dilation conditional on the window's low end, as :func:`extract`)
    and calcified shells, for the separated rendering."""
    hu = _check_volume(hu)
    lo, hi = (float(v) for v in vessel_window_hu)
    if not lo < hi:
        raise ViewerError(f"vessel window must be low < high HU, got {vessel_window_hu}")

    bone = bone_mask(hu, spacing_mm, bone_threshold_hu, _sub(progress, 0.0, 0.6), rim_low_hu=lo)
    calc = calcification_mask(hu, spacing_mm, bone, (lo, hi), _sub(progress, 0.6, 1.0))
    return ClassMasks(bone, calc if calc.any() else None, float(bone_threshold_hu), (lo, hi))


def _packed_class(labels: np.ndarray, code: int) -> PackedMask:
    """``labels == code`` packed (:mod:`viewer.core.packed`), slab by slab."""
    from viewer.core.separation import packed_slabwise

    return packed_slabwise(labels.shape, lambda z0, z1: labels[z0:z1] == code)


def class_masks(
    hu: np.ndarray,
    spacing_mm: tuple[float, float, float] | None,
    bone_threshold_hu: float,
    vessel_window_hu: tuple[float, float],
    progress: ProgressFn | None = None,
    *,
    remove_table: bool = True,
    real_ct: bool = False,
    contrast: bool | None = None,
    source_key: tuple[object, ...] | None = None,
) -> ClassMasks:
    """With ``real_ct`` the separation of :func:`viewer.core.separation.separate` (body, bone object,
    plaques, contrast, vessels, uncertain rim) plus calcified shells, for rendering;
    without it the classic phantom-tuned separation (fixed cortical threshold, in-plane
    marrow fill), which still holds the phantom's accuracy figures at 1.5 mm voxels where
    the real-CT contrast check does not yet find the phantom's lumen (docs/separation.md).
    ``contrast`` (real-CT only): the user's verdict on whether the scan has opacified
    vessels; None detects it. ``source_key``: see :func:`viewer.core.separation.separate`."""
    from viewer.core import separation as S

    if not real_ct:
        return _classic_class_masks(hu, spacing_mm, bone_threshold_hu, vessel_window_hu, progress)
    hu = _check_volume(hu)
    lo, hi = (float(v) for v in vessel_window_hu)
    if not lo < hi:
        raise ViewerError(f"vessel window must be low < high HU, got {vessel_window_hu}")
    t0 = time.perf_counter()
    sep = S.separate(
        hu,
        spacing_mm,
        (lo, hi),
        bone_threshold_hu,
        remove_table=remove_table,
        contrast=contrast,
        progress=_sub(progress, 0.0, 0.8),
        source_key=source_key,
    )
    # The masks are made in the separation's crop (outside it everything is removed),
    # straight into whole-volume arrays (np.zeros leaves the pages outside untouched).
    crop = sep.crop if sep.crop is not None else (slice(None),) * 3
    calc, vessel, uncertain = S.split_labels(sep.labels, (S.CALCIFICATION, S.VESSEL, S.UNCERTAIN), sep.crop)
    # (packed, one bit a voxel: 1-2 % of the voxels, but some in every page of the
    # body's rows, so a bool array would be resident whole)
    bone = _packed_class(sep.labels, S.BONE)
    hc = hu[crop]
    # Window voxels of no class: the rest of the window outside the body is removed
    # anyway; inside it, anything dense that is not vessel (no-contrast scans).
    # Without contrast, also the vessel window's ramp below its low end (the transfer
    # function fades red in over 40 HU there): enhancing organs at 130-170 HU would
    # otherwise show a red haze on a scan that has no opacified vessel.
    floor = lo if sep.contrast else lo - HIDDEN_RAMP_HU
    # (packed, one bit a voxel: few voxels, but in every slice's body rows, so a bool
    # array's pages would all be touched; viewer.core.packed)
    hidden = PackedMask.zeros(hu.shape)
    labels_c = sep.labels[crop]
    z_off = crop[0].start or 0

    def classless(z0: int, z1: int) -> None:
        slab = np.zeros((z1 - z0, *hu.shape[1:]), dtype=bool)
        slab[(slice(None),) + tuple(crop[1:])] = (labels_c[z0:z1] == S.NONE) & (hc[z0:z1] >= floor)
        hidden.put(z0 + z_off, slab)

    S.run_slabs(classless, hc.shape)
    hidden.freeze()
    t1 = time.perf_counter()
    if sep.contrast:
        # Calcified shells (the rim of a calcified mass) sit in the vessel window: only
        # a scan with vessels needs them told apart from vessels.
        vc, uc, cc = vessel[crop], uncertain[crop], calc[crop]
        shell = calcification_mask(
            hc, spacing_mm, (labels_c == S.BONE) | cc, (lo, hi), _sub(progress, 0.8, 1.0), grid_mm=SHELL_GRID_MM
        )
        shell &= vc | uc
        sb = S.bbox(shell, 0)
        if sb is not None:
            # (in the shell's box only: the masks' pages elsewhere stay as they are)
            sh = shell[sb]
            cc[sb] |= sh
            vc[sb] &= ~sh
            uc[sb] &= ~sh
        del shell
    t2 = time.perf_counter()
    removed = _packed_class(sep.labels, S.REMOVED) if remove_table else None
    calc_m = calc if calc[crop].any() else None
    hidden_m = hidden if hidden.any() else None
    uncertain_m = uncertain if uncertain[crop].any() else None
    t3 = time.perf_counter()
    report(progress, 1.0, "separation: done")
    return ClassMasks(
        bone=bone,
        calcification=calc_m,
        bone_threshold_hu=float(bone_threshold_hu),
        vessel_window_hu=(lo, hi),
        hidden=hidden_m,
        removed=removed if removed is not None and removed.any() else None,
        uncertain=uncertain_m,
        vessel=vessel,
        contrast=sep.contrast,
        message=sep.message,
        contrast_forced=contrast is not None,
        bone_display_low_hu=min(lo, float(sep.thresholds["cancellous_hu"])),
        remove_table=remove_table,
        soft_tissue_hu=float(sep.thresholds["soft_tissue_hu"]),
        timings_s={
            **sep.timings_s,
            "shell_s": t2 - t1,
            "masks_s": t3 - t2 + t1 - t0 - sep.timings_s["total_s"],
            "class_masks_s": t3 - t0,
        },
    )


def class_masks_for(
    hu: np.ndarray,
    spacing_mm: tuple[float, float, float] | None,
    settings: MaskSettings,
    progress: ProgressFn | None = None,
    *,
    source_key: tuple[object, ...] | None = None,
) -> ClassMasks:
    """:func:`class_masks` for a :class:`~viewer.core.mask_policy.MaskSettings` (what
    every holder of a transfer function computes its masks with:
    ``class_masks_for(v.hu, v.spacing_mm, MaskSettings.of(tf))``).

    Afterwards the memory its temporaries held goes back to the OS
    (:func:`~viewer.core.memory.trim_freed_memory`): freed on the slab pool's threads,
    glibc kept it in their arenas, and the render that follows (buffer and shading
    gradients) stacked its peak on top (the window at 2000 slices, docs/benchmarks.md)."""
    try:
        return _class_masks_of(hu, spacing_mm, settings, progress, source_key)
    finally:
        trim_freed_memory()


def _class_masks_of(
    hu: np.ndarray,
    spacing_mm: tuple[float, float, float] | None,
    settings: MaskSettings,
    progress: ProgressFn | None,
    source_key: tuple[object, ...] | None,
) -> ClassMasks:
    return class_masks(
        hu,
        spacing_mm,
        settings.bone_threshold_hu,
        settings.vessel_window_hu,
        progress,
        remove_table=settings.remove_table,
        real_ct=settings.real_ct,
        contrast=settings.contrast if settings.real_ct else None,
        source_key=source_key,
    )


#: Slices of a preview separation (:func:`preview_class_masks`) are at most this thick.
PREVIEW_SLICE_MM = 8.0
#: ... and at most this many of the scan's slices apart.
PREVIEW_MAX_STRIDE = 4


def preview_stride(spacing_mm: tuple[float, float, float] | None) -> int:
    """Every how many slices a preview separation takes (1: no preview). Only slices
    are skipped, never pixels: at coarser pixels the coarse-voxel rules take over and
    the classes change (the default phantom at every second pixel agrees 0.63 / 0.65
    with its full separation), with slices up to 8 mm thick they barely do (measured on
    every real scan in ../shared/data and the phantoms: docs/separation.md, "Preview
    separation")."""
    if spacing_mm is None:
        return 1
    sx, sy, sz = (float(s) for s in spacing_mm)
    if min(sx, sy) >= COARSE_VOXEL_MM:
        return 1
    return max(1, min(PREVIEW_MAX_STRIDE, int(PREVIEW_SLICE_MM // sz)))


@dataclass(frozen=True, eq=False)
class PreviewMasks:
    """Class masks of every ``stride``-th slice of a volume, from ``offset``: what a
    big scan's first separated frame is drawn from while its full masks are made.
    ``masks`` are those of ``hu[offset::stride]``; ``settings`` what they were made for."""

    masks: ClassMasks
    stride: int
    offset: int
    settings: MaskSettings

    def bracket(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For slices ``z`` of the volume, the slices of :attr:`masks` below and above
        (the same one at either end)."""
        n = self.masks.bone.shape[0]
        f = (np.asarray(z, dtype=np.float64) - self.offset) / self.stride
        below = np.clip(np.floor(f), 0, n - 1).astype(np.intp)
        above = np.clip(np.ceil(f), 0, n - 1).astype(np.intp)
        return below, above


def preview_class_masks(
    hu: np.ndarray,
    spacing_mm: tuple[float, float, float] | None,
    settings: MaskSettings,
    progress: ProgressFn | None = None,
) -> PreviewMasks | None:
    """:func:`class_masks_for` on every :func:`preview_stride`-th slice (a quarter of
    the work at 2 mm slices), or None when the scan's slices are too thick for it.
    For a first look only: the full masks replace them."""
    hu = _check_volume(hu)
    k = preview_stride(spacing_mm)
    if k < 2 or hu.shape[0] < 4 * k:
        return None
    sx, sy, sz = (float(s) for s in (spacing_mm if spacing_mm is not None else (1.0, 1.0, 1.0)))
    from viewer.core.separation import volume_key

    offset = k // 2
    part = np.ascontiguousarray(hu[offset::k])
    # (the part is a new array each time: named by its source, so that a bone-threshold
    # edit finds its body mask in the cache again)
    key = ("every k-th slice", volume_key(hu), k, offset) if settings.real_ct else None
    masks = class_masks_for(part, (sx, sy, sz * k), settings, progress, source_key=key)
    return PreviewMasks(masks, k, offset, settings)


def _classic_extract(
    hu: np.ndarray,
    spacing_mm: tuple[float, float, float] | None,
    bone_threshold_hu: float,
    vessel_window_hu: tuple[float, float],
    progress: ProgressFn | None = None,
) -> Extraction:
    """Bone, then calcified shells, then vessels outside both.

    Three disjoint boolean masks ``(nz, ny, nx)``: :func:`bone_mask` (its rim dilation
    conditional on the vessel window's low end), :func:`calcification_mask` on the
    voxels outside the bone, and :func:`vessel_mask` outside bone and calcification.
    """
    hu = _check_volume(hu)
    lo, hi = (float(v) for v in vessel_window_hu)
    if not lo < hi:
        raise ViewerError(f"vessel window must be low < high HU, got {vessel_window_hu}")
    t0 = time.perf_counter()

    bone = bone_mask(hu, spacing_mm, bone_threshold_hu, _sub(progress, 0.0, 0.55), rim_low_hu=lo)
    t1 = time.perf_counter()
    calc = calcification_mask(hu, spacing_mm, bone, (lo, hi), _sub(progress, 0.55, 0.85))
    t2 = time.perf_counter()
    report(progress, 0.85, "vessels: window outside bone and calcification")
    vessel = vessel_mask(hu, bone, (lo, hi), spacing_mm=spacing_mm, exclude=calc)
    t3 = time.perf_counter()
    report(progress, 1.0, "done")
    return Extraction(
        bone=bone,
        vessel=vessel,
        calcification=calc,
        thresholds={"bone_threshold_hu": float(bone_threshold_hu), "vessel_low_hu": lo, "vessel_high_hu": hi},
        timings_s={"bone_s": t1 - t0, "calcification_s": t2 - t1, "vessel_s": t3 - t2, "total_s": t3 - t0},
    )


def extract(
    hu: np.ndarray,
    spacing_mm: tuple[float, float, float] | None,
    bone_threshold_hu: float,
    vessel_window_hu: tuple[float, float],
    progress: ProgressFn | None = None,
    *,
    remove_table: bool = True,
    real_ct: bool = False,
    contrast: bool | None = None,
) -> Extraction:
    """Bone, calcification (plaques and calcified shells) and vessels, disjoint boolean
    masks ``(nz, ny, nx)``, from :func:`class_masks` (the same separation the renderer
    shows; ``contrast`` as there). ``uncertain`` voxels (vessel touching cortex) count as vessel here and are
    also given on their own in :attr:`Extraction.uncertain`."""
    if not real_ct:
        return _classic_extract(hu, spacing_mm, bone_threshold_hu, vessel_window_hu, progress)
    t0 = time.perf_counter()
    m = class_masks(
        hu,
        spacing_mm,
        bone_threshold_hu,
        vessel_window_hu,
        progress,
        remove_table=remove_table,
        real_ct=True,
        contrast=contrast,
    )
    lo, hi = m.vessel_window_hu
    zeros = np.zeros(m.bone.shape, dtype=bool)
    uncertain = m.uncertain if m.uncertain is not None else zeros
    vessel = (m.vessel if m.vessel is not None else zeros) | uncertain
    # (the bone class without the faint partial-volume layer the rendering keeps:
    # exported surfaces sit on the bone, not half a voxel outside it)
    t1 = time.perf_counter()
    bone = m.bone_core(hu)
    t = dict(m.timings_s)
    t["bone_edge_s"] = time.perf_counter() - t1
    t["total_s"] = time.perf_counter() - t0
    return Extraction(
        bone=bone,
        vessel=vessel,
        calcification=m.calcification if m.calcification is not None else zeros,
        thresholds={"bone_threshold_hu": float(bone_threshold_hu), "vessel_low_hu": lo, "vessel_high_hu": hi},
        timings_s=t,
        uncertain=uncertain,
        removed=unpacked(m.removed) if m.removed is not None else zeros,
        contrast=bool(m.contrast),
        message=m.message,
    )


__all__ = [
    "DEFAULT_CALC_GRID_MM",
    "DEFAULT_CALC_MAX_THICKNESS_MM",
    "DEFAULT_CALC_MIN_CAVITY_MM3",
    "DEFAULT_CALC_TUBE_RADIUS_MM",
    "DEFAULT_MIN_BONE_COMPONENT_MM3",
    "DEFAULT_MIN_VESSEL_COMPONENT_MM3",
    "ClassMasks",
    "Extraction",
    "block_or_downsample",
    "bone_mask",
    "class_masks",
    "class_masks_for",
    "preview_class_masks",
    "preview_stride",
    "PreviewMasks",
    "calcification_mask",
    "extract",
    "fill_holes_in_plane",
    "threshold_mask",
    "vessel_mask",
]
