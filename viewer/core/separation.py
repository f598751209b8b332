"""Bone / vessel / calcification separation that holds on real CT, not only the phantom.

The renderer still colours HU ranges per class with threshold transfer functions; what
this module decides is *which voxels belong to which class*. The earlier method (a fixed
650 HU threshold, in-plane marrow fill, everything else in the vessel window is vessel)
painted ribs, vertebrae and the CT couch red on real scans (issue 8 in the tracker). The
steps here, each measured on the real scans in ``../shared/data`` and on the phantom
(``docs/separation.md`` has the figures and the reasons for each choice):

1. **Body** (:func:`body_mask`): on a ~2.5 mm grid, soft tissue (> -350 HU) is opened
   by one voxel (drops the couch's thin carbon-fibre skins, head holders' shells,
   immobilisation masks, cables), the large pieces are kept (both legs of a run-off
   CTA, arms), grown back within the tissue by the opening's size and filled slice by
   slice (lungs, bowel gas). Everything outside is *removed* (never classified).
2. **Bone as an object** (:func:`bone_object`): cortical seeds (``>= bone threshold``)
   as large connected pieces; the space they enclose is filled in 3D *and* in the
   three orthogonal planes (an oblique rib or a sagittal bone fills too) on a coarse
   grid, so cancellous bone (150-400 HU) inside a cortex becomes bone whatever its HU.
   Small dense pieces (plaques, coronary and vessel-wall calcium) are not bone: they
   are the *calcification* class, so a plaque never cuts a vessel into bone.
3. **Contrast or not** (:func:`detect_contrast`): opacified lumen is a homogeneous
   bright core (all six neighbours above ~230 HU, below the bone threshold) outside
   the bone object; a scan without enough of it has no opacified vessels, and says so.
4. **Vessels** (contrast): the vessel window inside the body, outside bone and
   calcification. Voxels within the partial-volume rim of bone (two voxels) go to bone
   unless they touch a vessel core: those stay visible as the *uncertain* class
   (vessel touching cortex, nutrient vessels entering it), never silently deleted.
   Window pieces that are mostly walled by bone (cancellous bone whose cortex did not
   reach the seed threshold) join the bone. Then the vessel class's shape and lumen:
   at coarse voxels (1.2 mm and over) thin, plate- or shell-shaped pieces on the bone
   with no homogeneous lumen voxel are cortex (:func:`thin_cortex_pieces`); at fine
   voxels what is out of reach of an opacified voxel (vein noise) and the half-maximum
   halo of thin vessels are dropped (:func:`lumen_trim`).
   **No contrast**: every dense piece is bone (or calcification when small); the vessel
   class is empty.

Labels (:data:`LABELS`) are one uint8 volume so that every consumer (renderer, CLI,
sessions, counts) reads the same answer.

Speed (docs/separation.md "Speed"): after the body mask everything runs in the body's
in-plane box (:attr:`Separation.crop`); whole-volume expressions and morphology go slab
by slab on a small thread pool (:func:`voxelwise`, :func:`dilate6`), so their
temporaries stay small and both cores work; the threshold-independent stages (body,
soft-tissue mode, noise) are kept for the last volume, so a bone-threshold edit skips
them.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import cc3d
import numpy as np
from scipy import ndimage as ndi

from viewer.core.errors import ViewerError
from viewer.core.packed import MaskArray, PackedMask
from viewer.core.priority import is_background_thread, lower_this_thread
from viewer.core.progress import ProgressFn, report

#: Class codes of :attr:`Separation.labels`.
NONE, BONE, VESSEL, CALCIFICATION, UNCERTAIN, REMOVED = 0, 1, 2, 3, 4, 5
LABELS: Mapping[str, int] = {
    "none": NONE,
    "bone": BONE,
    "vessel": VESSEL,
    "calcification": CALCIFICATION,
    "uncertain": UNCERTAIN,
    "removed": REMOVED,
}

#: Tissue threshold for the body mask (HU): fat is -100 +- noise, foam pads and the
#: couch's core -500..-900, so -350 keeps the patient and leaves the padding out.
BODY_HU = -350.0
#: Grid (mm) on which the body is found; the skin needs no finer boundary for this.
BODY_GRID_MM = 2.5
#: Body pieces smaller than this (ml) or than :data:`BODY_MIN_FRACTION` of the largest
#: are dropped (cables, the couch's dense rails, a detached pad).
BODY_MIN_ML = 20.0
BODY_MIN_FRACTION = 0.05
#: Outside the strict body (see body_mask) voxels this dense are removed even where a
#: pad joins them to the patient.
BODY_DENSE_HU = 100.0
#: Half-thickness (mm) a body part has somewhere and a holder or couch shell has not.
BODY_THICK_MM = 7.5

#: Cortical seed pieces smaller than this (mm^3) are not bone but calcification
#: (plaque, vessel-wall calcium): a 1 cm long, 4 mm plaque is ~100 mm^3; the smallest
#: bones a CTA shows (sesamoids, a rib tip crossing the threshold) a few hundred.
MIN_BONE_SEED_MM3 = 150.0
#: Dense pieces up to this size (mm^3) whose surroundings are mostly homogeneous lumen
#: are plaque; larger ones are always bone (a vertebra is > 10 ml).
PLAQUE_MAX_MM3 = 20000.0
PLAQUE_LUMEN_SHARE = 0.15
#: Hysteresis floor for cortex connected to confident seeds (thin cortex at bone ends).
#: Off: at 450-500 HU it grew from the spine into the real CTA's aorta (aorta in bone 43-63 %).
WEAK_SEED_HU: float | None = None
#: Grid (mm) for the enclosed-space fill of the bone object.
FILL_GRID_MM = 1.4
#: Enclosed spaces larger than this (ml) with a soft-tissue mean HU are not marrow.
ENCLOSED_SOFT_MAX_ML = 30.0
#: Closing (mm) of the cortical seeds before the fill: bridges gaps in thin cortex.
CLOSING_MM = 2.0
#: The partial-volume rim of bone: vessel-window voxels this many 6-steps from bone.
RIM_STEPS = 2
#: Opacified-lumen core: HU floor of the test and the volume (mm^3) its largest piece
#: needs for "this scan has contrast": 208-362 000 on the phantoms and the real CTA,
#: at most 86 on the real scans without contrast.
CONTRAST_CORE_HU = 230.0
#: From this in-plane voxel size (mm) the lumen test uses its coarse-voxel form.
COARSE_VOXEL_MM = 1.2
CONTRAST_MIN_MM3 = 150.0
#: A lumen piece counts for the verdict only when at least this share of its core is
#: homogeneous and its homogeneous voxels span at least CONTRAST_MIN_Z_MM in z: a
#: lumen's core is homogeneous through most of it (phantoms 0.45-0.94, the real CTA
#: 0.30-0.59 at 1.5-3 mm), while cancellous vertebrae smoothed by 2-3 mm pixels are
#: homogeneous in patches only (real chest averaged to 2-3 mm: 0.02-0.08), and a rib
#: lying in the axial plane is one or two slices thick (docs/separation.md).
CONTRAST_HOMOGENEOUS_SHARE = 0.18
CONTRAST_MIN_Z_MM = 8.0
#: Thin opacified vessels: a run of voxels in the lumen range that are darker on both
#: sides at TUBE_PROBE_MM in every direction but along one axis (a tube, not a plate
#: or a blob), this long (mm) or longer, also says "contrast". Arteries 3-5 mm across
#: at 1.5 mm pixels have no homogeneous core; their tubes run 39-305 mm on the
#: phantoms, 16-73 mm on the real CTA, and at most 17 mm on the real scans without
#: contrast (docs/separation.md).
CONTRAST_TUBE_MM = 25.0
TUBE_PROBE_MM = 4.0
#: A mask slab with fewer than one True voxel in this many is written voxel by voxel
#: (see :func:`split_labels`).
SPARSE_WRITE_SHARE = 8
#: Cancellous bone behind a dim cortex (see shell_enclosed_cancellous): the mean HU
#: range of the enclosed space and its smallest volume.
SHELL_CAVITY_HU = (80.0, 250.0)
SHELL_CAVITY_MIN_ML = 0.5
#: The dim cortex ring taken with such a space stays under this HU (the real CTA's
#: vertebral rings: 170-400 HU; a lumen touching them: 450). Measured on the real CTA:
#: 420 HU -> aorta 94.8 % vessel / 1.0 % bone, vertebrae 33.8 % red; 340 HU -> 95.1 %
#: / 0.7 %, vertebrae 34.9 %.
SHELL_RING_MAX_HU = 340.0
#: ... and the space lies within this many 6-steps of the bone object (on the fill's
#: grid). A vertebral body whose posterior cortex the seeds missed can lie a few voxels
#: from the dense arch: on the real CTA three bodies' spaces at 4-7 steps (the lowest,
#: cut by the scan's end, at 6); the nearest space that is not bone (beside the spine
#: at the scan's start) at 10, the spleen at 22. 2 -> 6: vertebra voxels painted vessel
#: 6.1 % -> 4.7 %, aorta >= 170 HU in vessel 95.06 -> 95.05 %, phantoms unchanged.
SHELL_TOUCH_STEPS = 6
#: Cancellous bone vs lumen by thickness: window parts a ball of this radius (mm) fits
#: in, on a grid of THICK_GRID_MM (see :func:`thick_cancellous`).
THICK_RADIUS_MM = 4.0
THICK_GRID_MM = 1.5
#: A thick part this much darker than the lumen level (HU) is not lumen.
LUMEN_LEVEL_MARGIN_HU = 60.0
#: A thick part whose two-voxel edge is this much brighter (HU) than its inside has a
#: cortex: bone. A lumen's edge is darker than its middle.
BONE_EDGE_CONTRAST_HU = 80.0
#: Inside a cancellous part, voxels down to this HU are bone (noise takes some of the
#: 150-400 HU cancellous bone under the window's low end).
ZONE_FLOOR_HU = 130.0
#: A thick part not enclosed by cortex is called cancellous bone only under this mean
#: HU; an arterial-phase lumen lies above it (the real CTA's dimmest aortic segment:
#: 391 HU). Measured cancellous means: phantom epiphyses 215-276 HU, the real 3 mm
#: abdomen's vertebrae 140-158 HU (median). The real 2 mm chest's vertebrae reach
#: 300-400 HU: in a CTA such bone is found through its cortex, not through this rule.
CANCELLOUS_MAX_HU = 320.0
#: Drop the partial-volume halo outside each vessel's half-maximum edge (see _halo).
#: Off: it raised the phantom's artery Dice 0.78 -> 0.81 but took the real CTA's aorta
#: (>= 170 HU, TotalSegmentator's mask) from 95.6 % to 86.4 % vessel.
HALO_TRIM = False
#: Steps (voxels) a vessel takes back from a cancellous part it lies on.
GIVE_BACK_STEPS = 4
#: Arteries lying on a cancellous part (:func:`bone_side_lumen`, voxels under
#: COARSE_VOXEL_MM in-plane and slices of at most twice this radius): what of the part
#: an in-plane opening of the bone by a diamond of this radius removes -- a bump on the
#: bone's outline narrower than the diamond -- at LUMEN_REACH_HU or over and connected
#: through such voxels to the vessel class, is lumen. Measured on the default phantom
#: (0.7 mm), artery / true bone / other voxels taken back of the 1 408 artery voxels in
#: the part: radius 3 voxels 1 030 / 76 / 152, 4 voxels (this) 1 077 / 93 / 191, 5
#: voxels 1 087 / 937 / 454.
TUBE_CARVE_RADIUS_MM = 2.5
#: ... then this many 6-steps into the part's voxels between LUMEN_REACH_HU and the
#: lumen's top (its level + 2.5 noise; a cortex is brighter): the artery's edge on the
#: bone, which the diamond's tip covers. Phantom artery+collateral Dice 0.9092 / 0.9100
#: / 0.9084 at 0 / 1 / 2 steps (artery voxels in bone 674 / 501 / 450).
TUBE_EDGE_STEPS = 1
#: A lumen is homogeneous: its local (3x3x3) spread is under this many times the
#: scan's noise (on the real CTA the aorta's median spread is 1.4x the noise, the
#: real chest's cancellous vertebrae 4-6x).
LUMEN_SD_FACTOR = 2.0
#: Vessel-window pieces smaller than this (mm^3) are noise.
MIN_VESSEL_MM3 = 2.0
#: A vessel-window piece whose surface touches bone over this share joins the bone.
BONE_WALLED_SHARE = 0.5
#: Without contrast, dense pieces (>= the cancellous floor) at least this big are bone.
MIN_BONE_MM3_NO_CONTRAST = 150.0
#: Lumen reach (see :func:`lumen_trim`): a vessel-class voxel lies within this many
#: 26-connected steps (through the vessel class) of a voxel at CONTRAST_CORE_HU or over.
LUMEN_REACH_STEPS = 3
LUMEN_REACH_HU = CONTRAST_CORE_HU
#: Trim the partial-volume halo (see :func:`_halo`) of vessel parts a ball of
#: THICK_RADIUS_MM does not fit in (limb arteries, collaterals); thick ones keep it.
THIN_HALO_TRIM = True
HALO_THICK_RADIUS_MM = 3.0
#: Thin cortex (:func:`thin_cortex_pieces`): vessel voxels an opening by this many
#: 6-connected steps removes are "thin" -- a rib's cortex ring or a vertebra's posterior
#: elements at 1.5 mm, a shell blurred to two to four voxels; an aorta, a heart chamber
#: and their edges are thick. In voxels, not mm: the blur of a sub-millimetre cortex is
#: a few voxels at any spacing, while an artery's radius in voxels grows as voxels
#: shrink (4 steps at the phantom's 0.7 mm took its whole tibial arteries).
THIN_STEPS = 2
#: A thin piece of at least this volume (mm^3) touching bone with no homogeneous lumen
#: voxel is cortex: the smallest bone piece, as for the seeds (MIN_BONE_SEED_MM3).
#: Smaller pieces stay: the phantom's nutrient arteries are 4-10 mm^3 at 0.7 mm; at
#: 1.5 mm a collateral with its nutrient branch on the tibia is one 98 mm^3 piece (at
#: 50 mm^3 it went to bone: the small phantom's nutrient recall 0.25 -> 0).
THIN_CORTEX_MIN_MM3 = 150.0
#: ... unless more than this share of it lies next to a thick vessel part (the edge of
#: an aorta lying on a vertebra is thin but belongs to the aorta).
THIN_NEAR_THICK_SHARE = 0.25
#: ... or more than this share of its voxels at the contrast core's HU or over are
#: homogeneous (3x3x3 spread under LUMEN_SD_FACTOR x the noise, 25 HU at least, as in
#: :func:`detect_contrast`).
THIN_HOMOGENEOUS_SHARE = 0.01
#: ... judged on the thin voxels within this many 6-connected steps of the bone object
#: only: a rib's or a vertebra's dim cortex lies on the bone, and cutting the thin part
#: there splits it from the thin vessels it touches further out (intercostal arteries,
#: the aorta's edge), which carried homogeneous voxels into its piece. Measured on the
#: real CTA (vertebra voxels painted vessel / aorta >= 170 HU in vessel): no limit
#: 13.8 % / 95.0 %; 3 steps 15.7 / 95.0; 4: 13.0 / 94.95; 6: 9.4 / 95.0; 8: 7.4 / 94.98;
#: 14: 5.9 / 94.5 (the aorta's edge near the spine goes to bone past 6).
THIN_NEAR_BONE_STEPS = 6
#: ... and it is not a line: its second principal extent is at least this share of its
#: first. Measured at 1.5 mm: the small phantom's arteries lying on the tibia 0.02-0.06
#: (they went to bone: main artery recall 0.94 -> 0.76), the rim of its calcified mass
#: 0.16-0.21 (bone Dice 0.931 -> 0.913 at 0.15), the real CTA's cortex pieces 0.27-0.94
#: (vertebrae 0.36 and over).
LINE_RATIO = 0.25
#: Loose cortex (:func:`loose_cortex_pieces`): a whole vessel-class piece with no
#: homogeneous lumen voxel, at least this share of it within this many 6-steps of the
#: bone, and no bigger than this (mm^3), is bone unless it is a line.
LOOSE_NEAR_BONE_SHARE = 0.5
LOOSE_NEAR_BONE_STEPS = 6
LOOSE_MAX_MM3 = 5000.0
LOOSE_MIN_MM3 = 50.0
LOOSE_CORTEX = True
#: ... or, whatever its size and however little of it lies near the bone, when it is
#: *hollow*: the space it encloses (in 3D or across it in an axial, coronal or sagittal
#: plane) that is in no class is at least LOOSE_HOLLOW_SHARE of its voxels, at a mean of
#: at least SHELL_CAVITY_HU's low end (marrow, not fat or muscle). A rib at 1.5 mm is a
#: ring of blurred cortex around its marrow; a lumen is a filled disc. Measured on the
#: real CTA: its red rib segments (0.7-9.3 ml, touching the bone at one end) 0.09-0.19;
#: the 1.5 mm phantoms' artery pieces touching the bone 0.00-0.01 (docs/separation.md,
#: "Hollow rib segments").
LOOSE_HOLLOW_SHARE = 0.06

#: Undiluted contrast (issue 8, the real chest CTA's superior vena cava and right
#: atrium at 800-2000 HU): a dense piece of at least POOL_MIN_MM3 over the bone seed
#: threshold is a contrast pool, not bone, when at least POOL_VESSEL_SHARE of the
#: voxels around it are vessel class (the CTA's atrium: 0.32; every bone of the real
#: scans and the phantoms: 0.00-0.08). Its region of the bone class (the piece, the
#: space it enclosed, its rim) goes back to the window's classes.
POOL_MIN_MM3 = 5000.0
POOL_VESSEL_SHARE = 0.2
#: How far (mm) around a pool its region is looked for.
POOL_MARGIN_MM = 8.0

#: The bone class ends where a voxel of its outer layer holds less than this share of
#: the local bone contrast (HU above soft tissue, against the brightest bone voxel of
#: its 3x3x3 neighbourhood): the faintest partial-volume layer, which the rendering
#: still draws ivory (:func:`bone_edge`). Measured (docs/separation.md "Bone edge"):
#: 0.5 (half maximum, the phantom's own boundary) gives phantom bone Dice 0.991 but
#: leaves 25 % of TotalSegmentator's reference bone (which includes the outer
#: partial-volume layer) on the 3 mm scan out; 0.2 gives 0.974 and keeps 97.8 %.
BONE_EDGE_SHARE = 0.2


@dataclass(frozen=True, eq=False)
class Separation:
    """Result of :func:`separate`: a class label volume ``(nz, ny, nx)`` uint8
    (codes in :data:`LABELS`), the body mask and what was decided.

    ``contrast`` says whether the scan has opacified vessels; ``message`` says it in
    words for the status bar, ``info`` and ``extract``. ``thresholds`` holds the HU used
    (``bone_seed_hu``, ``cancellous_hu``, ``vessel_low_hu``, ``vessel_high_hu``,
    ``soft_tissue_hu``); ``timings_s`` the seconds per stage.
    """

    labels: np.ndarray
    #: The body mask inside :attr:`crop` (the whole volume's when ``crop`` is None);
    #: :attr:`body` gives it whole.
    body_in_crop: np.ndarray
    contrast: bool
    contrast_core_mm3: float
    message: str
    thresholds: Mapping[str, float] = field(default_factory=dict)
    timings_s: Mapping[str, float] = field(default_factory=dict)
    remove_table: bool = True
    #: The box ``(z, y, x)`` slices outside which every voxel is removed (the body's
    #: in-plane box with a margin); None: the whole volume was classified.
    crop: tuple[slice, slice, slice] | None = None

    @property
    def body(self) -> np.ndarray:
        """The body mask of the whole volume (made on demand: a full-size array that
        no stage of the viewer needs, the labels say ``REMOVED`` outside it)."""
        if self.crop is None:
            return self.body_in_crop
        full = np.zeros(self.labels.shape, dtype=bool)
        full[self.crop] = self.body_in_crop
        return full

    def mask(self, name: str) -> np.ndarray:
        """Boolean mask of one class by name (see :data:`LABELS`)."""
        mask: np.ndarray = self.labels == LABELS[name]
        return mask


# --- small helpers ---------------------------------------------------------------------


def _spacing(spacing_mm: tuple[float, float, float] | None) -> tuple[float, float, float]:
    if spacing_mm is None:
        return (1.0, 1.0, 1.0)
    s = tuple(float(v) for v in spacing_mm)
    if len(s) != 3 or not all(np.isfinite(v) and 0 < v < 100 for v in s):
        raise ViewerError(f"voxel spacing must be three positive numbers (x, y, z) mm below 100 mm, got {spacing_mm}")
    return s


def _factors(spacing_zyx: tuple[float, float, float], grid_mm: float) -> tuple[int, int, int]:
    return tuple(max(1, int(round(grid_mm / s))) for s in spacing_zyx)  # type: ignore[return-value]


#: Volumes from this many voxels are processed in z-slabs on a small thread pool: numpy
#: releases the GIL in its loops, so both cores work, and a slab's temporaries stay in
#: the CPU cache (a whole-volume expression on 512^2 x 600 allocates 157 MB temporaries).
_PARALLEL_VOXELS = 2_000_000
#: Voxels per slab (about 8 slices of 512^2).
_SLAB_VOXELS = 2_000_000
_POOL_LOCK = threading.Lock()
#: The slab pools: one for work the user waits for (the window's render buffers, the
#: command line), one at background priority for the window's separation jobs
#: (viewer.core.priority), so that the first never queues behind the second.
_POOLS: dict[bool, ThreadPoolExecutor] = {}


def _workers(background: bool = False) -> ThreadPoolExecutor:
    with _POOL_LOCK:
        pool = _POOLS.get(background)
        if pool is None:
            pool = ThreadPoolExecutor(
                max_workers=max(1, min(4, os.cpu_count() or 1)),
                thread_name_prefix="separation-bg" if background else "separation",
                initializer=lower_this_thread if background else None,
            )
            _POOLS[background] = pool
        return pool


def _slabs(shape: tuple[int, ...]) -> list[tuple[int, int]]:
    per = max(1, _SLAB_VOXELS // max(1, int(np.prod(shape[1:]))))
    return [(z, min(shape[0], z + per)) for z in range(0, shape[0], per)]


def run_slabs(work: Callable[[int, int], None], shape: tuple[int, ...]) -> None:
    """``work(z0, z1)`` for every z-slab of ``shape``; on the thread pool when the volume is
    large. The slabs write disjoint parts of their output, so no locking is needed.
    (Never called from inside a slab's work: the pool is not re-entrant.)"""
    if int(np.prod(shape)) < _PARALLEL_VOXELS or threading.current_thread().name.startswith("separation"):
        for z0, z1 in _slabs(shape):
            work(z0, z1)
        return
    # a background caller's slabs run in the background pool (viewer.core.priority)
    pool = _workers(background=is_background_thread())
    for f in [pool.submit(work, z0, z1) for z0, z1 in _slabs(shape)]:
        f.result()


#: Voxels per ``cc3d`` call in :func:`label`. cc3d holds the GIL while it labels (a
#: 50 M voxel mask: 0.7 s during which the GUI thread of the window could not run one
#: line of Python; ``scipy.ndimage.label`` releases it but takes twice as long), so a
#: larger mask is labelled slab by slab and the pieces are joined across the slabs'
#: faces: the GIL is held for one slab at a time.
LABEL_CHUNK_VOXELS = 4_000_000

#: In-plane offsets (dy, dx) of the next slice's voxels that touch a voxel, per 3D
#: connectivity.
_FACE_OFFSETS = {
    6: ((0, 0),),
    18: ((0, 0), (0, 1), (0, -1), (1, 0), (-1, 0)),
    26: tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)),
}


def label(mask: np.ndarray, connectivity: int = 26) -> np.ndarray:
    """Connected pieces of a 3D bool ``mask`` as ``cc3d.connected_components`` gives
    them (labels 1..N, 0 background; the numbering may differ).

    On a worker thread (the window's mask and scene workers) a large mask is labelled
    in z-slabs of about :data:`LABEL_CHUNK_VOXELS` voxels joined across their faces,
    so the GUI thread waits for the GIL one slab at a time (measured on 512 x 512 x
    600: its longest stall during a bone-threshold change 440 -> 232 ms, the rest one
    render); that costs 0.15-0.8 s more per large mask. On the main thread (the
    command line, the benchmarks) nothing waits: one call."""
    mask = np.asarray(mask, dtype=bool)
    nz = mask.shape[0] if mask.ndim == 3 else 0
    on_main = threading.current_thread() is threading.main_thread()
    if on_main or mask.ndim != 3 or mask.size <= LABEL_CHUNK_VOXELS or nz < 2 or connectivity not in _FACE_OFFSETS:
        out0: np.ndarray = cc3d.connected_components(mask, connectivity=connectivity)  # type: ignore[call-overload]
        return out0
    # Each slab's own labels (1..k) first, then each slab's labels replaced by the
    # pieces they join (:func:`_slab_pieces`).
    out = np.empty(mask.shape, dtype=np.uint32)

    def visit(_i: int, z0: int, z1: int, part: np.ndarray) -> None:
        out[z0:z1] = part

    starts, offsets, piece = _slab_pieces(mask, connectivity, visit)
    if offsets[-1] == 0:
        return out
    for i, z0 in enumerate(starts):
        z1 = starts[i + 1] if i + 1 < len(starts) else nz
        table = np.concatenate([[0], piece[offsets[i] + 1 : offsets[i + 1] + 1]]).astype(np.uint32)
        out[z0:z1] = table[out[z0:z1]]
    return out


#: Slices per slab of :func:`keep_pieces` and :func:`labels_at` at most (and about
#: LABEL_CHUNK_VOXELS voxels each).
KEEP_SLAB_SLICES = 64


def _slab_pieces(
    mask: np.ndarray, connectivity: int, visit: Callable[[int, int, int, np.ndarray], None]
) -> tuple[list[int], np.ndarray, np.ndarray]:
    """Label a 3D bool ``mask`` slab by slab without a label image of the whole mask:
    ``visit(i, z0, z1, part)`` sees each slab's own labels (1..k, uint32) while they
    exist. Returns the slabs' first slices, their label offsets into one numbering
    (slab ``i``'s label ``l`` is ``offsets[i] + l``) and, per such label (0:
    background), its piece of the whole mask, numbered 1..N: the slabs' pieces that
    touch across a face joined (scipy's graph components)."""
    if mask.ndim != 3 or connectivity not in _FACE_OFFSETS:
        raise ValueError(f"needs a 3D mask and connectivity 6, 18 or 26, got {mask.shape}, {connectivity}")
    nz, ny, nx = mask.shape
    per = int(min(KEEP_SLAB_SLICES, max(1, LABEL_CHUNK_VOXELS // max(1, ny * nx))))
    starts = list(range(0, nz, per))
    offsets = np.zeros(len(starts) + 1, dtype=np.int64)
    pairs_a: list[np.ndarray] = []
    pairs_b: list[np.ndarray] = []
    last: np.ndarray | None = None  # the previous slab's last plane
    for i, z0 in enumerate(starts):
        z1 = min(nz, z0 + per)
        part = cc3d.connected_components(mask[z0:z1], connectivity=connectivity)  # type: ignore[call-overload]
        offsets[i + 1] = offsets[i] + (int(part.max()) if part.size else 0)
        visit(i, z0, z1, part)
        if last is not None:
            # pieces of neighbouring slabs that touch across the face between them
            first = part[0]
            for dy, dx in _FACE_OFFSETS[connectivity]:
                a = last[max(0, -dy) : ny - max(0, dy), max(0, -dx) : nx - max(0, dx)]
                b = first[max(0, dy) : ny - max(0, -dy), max(0, dx) : nx - max(0, -dx)]
                both = (a > 0) & (b > 0)
                pairs_a.append(a[both].astype(np.int64) + offsets[i - 1])
                pairs_b.append(b[both].astype(np.int64) + offsets[i])
        last = part[-1].copy()
        del part
    n = int(offsets[-1])
    piece = np.arange(n + 1, dtype=np.int64)
    ra = np.concatenate(pairs_a) if pairs_a else np.zeros(0, np.int64)
    if ra.size:
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        rb = np.concatenate(pairs_b)
        graph = coo_matrix((np.ones(ra.size, dtype=np.int8), (ra, rb)), shape=(n + 1, n + 1))
        comp = connected_components(graph, directed=False)[1]
        _, inv = np.unique(comp[1:], return_inverse=True)
        piece[1:] = inv + 1
    return starts, offsets, piece


def keep_pieces(
    mask: np.ndarray,
    marked: Callable[[int, int], np.ndarray],
    keep: Callable[[np.ndarray, np.ndarray], np.ndarray],
    connectivity: int = 26,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """The connected pieces of a 3D bool ``mask`` that ``keep`` keeps, as a bool mask
    (OR-ed into ``out`` when given: a bool array of the mask's shape, e.g. a view),
    without a label image of the whole mask (4 bytes a voxel: on the real chest tiled
    to 2000 slices 1.3x the int16 volume, the no-contrast separation's peak).

    ``marked(z0, z1)`` gives a bool mask of slices ``z0:z1`` (e.g. the voxels bright
    enough to be bone); ``keep(sizes, marks)`` gets each piece's voxel count and count
    of marked voxels (arrays indexed by piece, entry 0 unused) and returns which to keep.
    Each slab keeps only the labels of its mask voxels (4 bytes a mask voxel) until the
    pieces are joined (:func:`_slab_pieces`); a test compares the pieces with those of
    one labelling of the whole mask."""
    mask = np.asarray(mask, dtype=bool)
    if out is None:
        out = np.zeros(mask.shape, dtype=bool)
    elif out.shape != mask.shape or out.dtype != bool:
        raise ValueError(f"keep_pieces: out must be a bool array of shape {mask.shape}")
    if mask.size == 0:
        return out
    values: list[np.ndarray] = []  # each slab's labels at its mask voxels (C order)
    sizes: list[np.ndarray] = []
    marks: list[np.ndarray] = []

    def visit(_i: int, z0: int, z1: int, part: np.ndarray) -> None:
        m = mask[z0:z1]
        k = int(part.max()) if part.size else 0
        vals = part[m]
        values.append(vals)
        sizes.append(np.bincount(vals, minlength=k + 1)[1:])
        marks.append(np.bincount(part[m & marked(z0, z1)], minlength=k + 1)[1:])

    starts, offsets, piece = _slab_pieces(mask, connectivity, visit)
    if offsets[-1] == 0:
        return out
    # each slab label's joined piece -> the piece's totals -> its verdict
    n_pieces = int(piece.max()) + 1
    size_p = np.bincount(piece, weights=np.concatenate([[0], *sizes]), minlength=n_pieces)
    mark_p = np.bincount(piece, weights=np.concatenate([[0], *marks]), minlength=n_pieces)
    size_p[0] = mark_p[0] = 0
    verdict_p = np.asarray(keep(size_p, mark_p), dtype=bool)
    verdict_p[0] = False
    verdict = verdict_p[piece]
    nz = mask.shape[0]
    for i, z0 in enumerate(starts):
        z1 = starts[i + 1] if i + 1 < len(starts) else nz
        table = np.concatenate([[False], verdict[offsets[i] + 1 : offsets[i + 1] + 1]])
        o = out[z0:z1]
        o[mask[z0:z1]] |= table[values[i]]
        values[i] = np.zeros(0, dtype=np.uint32)
    return out


def labels_at(mask: np.ndarray, flat_idx: np.ndarray, connectivity: int = 26) -> tuple[np.ndarray, int]:
    """The piece (1..N, 0 outside the mask) of a 3D bool ``mask`` at each of the flat
    indices ``flat_idx``, and N -- what ``cc3d.connected_components(mask)[...]`` would
    give up to the numbering, without its label image (4 bytes a voxel of the mask's
    shape): the mask is labelled slab by slab (:func:`_slab_pieces`)."""
    mask = np.asarray(mask, dtype=bool)
    idx = np.asarray(flat_idx, dtype=np.int64)
    # (sorted, each slab's points are one run, found by bisection: not a pass over all
    # the points per slab)
    order = None if idx.size < 2 or bool(np.all(idx[1:] >= idx[:-1])) else np.argsort(idx, kind="stable")
    sidx = idx if order is None else idx[order]
    plane = int(mask.shape[1] * mask.shape[2]) if mask.ndim == 3 else 0
    local = np.zeros(sidx.size, dtype=np.int64)  # each point's label in its slab
    runs: list[tuple[int, int, int]] = []  # (slab, first point, end)

    def visit(i: int, z0: int, z1: int, part: np.ndarray) -> None:
        a, b = (int(v) for v in np.searchsorted(sidx, (z0 * plane, z1 * plane)))
        local[a:b] = part.reshape(-1)[sidx[a:b] - z0 * plane]
        runs.append((i, a, b))

    _starts, offsets, piece = _slab_pieces(mask, connectivity, visit)
    for i, a, b in runs:
        seg = local[a:b]
        seg[seg > 0] += offsets[i]
    out = piece[local]
    if order is not None:
        unsorted = np.empty_like(out)
        unsorted[order] = out
        out = unsorted
    return out, int(piece.max()) if piece.size else 0


def voxelwise(
    fn: Callable[..., np.ndarray], *arrays: MaskArray, dtype: type = bool, out: np.ndarray | None = None
) -> np.ndarray:
    """``fn(*arrays)`` for an element-wise ``fn``, evaluated slab by slab (see
    :func:`_run_slabs`) into ``out`` (or a new array): same result as the whole-volume
    expression, without its full-size temporaries, on both cores. An array may be a
    :class:`~viewer.core.packed.PackedMask` (each slab unpacked as it is read)."""
    shape = arrays[0].shape
    if out is None:
        out = np.empty(shape, dtype=dtype)

    def work(z0: int, z1: int) -> None:
        out[z0:z1] = fn(*(a[z0:z1] for a in arrays))

    run_slabs(work, shape)
    return out


def slabwise(
    fn: Callable[..., np.ndarray],
    *arrays: MaskArray,
    halo: int,
    dtype: type = bool,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """:func:`voxelwise` for an ``fn`` that looks ``halo`` slices up and down (a few
    morphology steps): each slab's ``fn`` gets the slab and ``halo`` slices each side
    (fewer at the volume's ends, where outside counts as absent) and returns an array of
    that extent, of which the slab's part is kept. The steps run on slab-sized
    temporaries, so a fused chain of them allocates nothing full-size but ``out``."""
    shape = arrays[0].shape
    n = shape[0]
    if out is None:
        out = np.empty(shape, dtype=dtype)

    def work(z0: int, z1: int) -> None:
        h0, h1 = max(0, z0 - halo), min(n, z1 + halo)
        out[z0:z1] = fn(*(a[h0:h1] for a in arrays))[z0 - h0 : z1 - h0]

    run_slabs(work, shape)
    return out


def _morph6(
    a: np.ndarray,
    axes: tuple[int, ...],
    erode: bool,
    within: np.ndarray | None = None,
    without: np.ndarray | None = None,
) -> np.ndarray:
    """One 6-connected dilation (OR of the neighbours along ``axes``; outside counts as
    False) or erosion (AND of the neighbours inside the array: as ``~dilate(~a)``, the
    array's sides do not erode) of a bool array, slab by slab; then ``& within`` and
    ``& ~without`` when given (fused: no full-size temporaries)."""
    out = np.empty_like(a)
    n = a.shape[0]
    op = np.logical_and if erode else np.logical_or

    def work(z0: int, z1: int) -> None:
        o = out[z0:z1]
        src = a[z0:z1]
        np.copyto(o, src)
        for ax in axes:
            if ax == 0:
                if z0 > 0:
                    op(o, a[z0 - 1 : z1 - 1], out=o)
                else:
                    op(o[1:], src[:-1], out=o[1:])
                if z1 < n:
                    op(o, a[z0 + 1 : z1 + 1], out=o)
                else:
                    op(o[:-1], src[1:], out=o[:-1])
            else:
                lo = (slice(None),) * ax + (slice(1, None),)
                hi = (slice(None),) * ax + (slice(None, -1),)
                op(o[lo], src[hi], out=o[lo])
                op(o[hi], src[lo], out=o[hi])
        if within is not None:
            o &= within[z0:z1]
        if without is not None:
            np.greater(o, without[z0:z1], out=o)

    run_slabs(work, a.shape)
    return out


def dilate6(
    a: np.ndarray,
    axes: tuple[int, ...] = (0, 1, 2),
    *,
    within: np.ndarray | None = None,
    without: np.ndarray | None = None,
) -> np.ndarray:
    """One 6-connected (or, with ``axes``, in-plane 4-connected) dilation step of a bool
    array; outside counts as False. Shifted in-place ORs, slab by slab on the thread
    pool: several times faster than ``binary_dilation``. ``within`` / ``without``: the
    result ``& within & ~without`` in the same pass (a conditional growth step)."""
    return _morph6(np.asarray(a, dtype=bool), axes, False, within, without)


def erode6(a: np.ndarray, axes: tuple[int, ...] = (0, 1, 2)) -> np.ndarray:
    """One 6-connected erosion step, ``~dilate6(~a)`` in one pass (the array's sides do
    not erode)."""
    return _morph6(np.asarray(a, dtype=bool), axes, True)


def _box_dilate(a: np.ndarray, r: tuple[int, int, int]) -> np.ndarray:
    """Dilation by a box of half-sizes ``r`` (z, y, x), separable 1D passes."""
    out = a
    for ax, n in enumerate(r):
        for _ in range(n):
            out = dilate6(out, (ax,))
    return out


def _box_erode(a: np.ndarray, r: tuple[int, int, int]) -> np.ndarray:
    """``~_box_dilate(~a, r)`` (the array's sides do not erode)."""
    out = a
    for ax, n in enumerate(r):
        for _ in range(n):
            out = erode6(out, (ax,))
    return out


def upsample_box(coarse: np.ndarray, f: tuple[int, int, int], box: tuple[slice, slice, slice]) -> np.ndarray:
    """The part ``box`` (full-grid slices with explicit starts and stops) of
    ``upsample(coarse, f, shape)``, without making the rest."""
    idx = [np.minimum(np.arange(b.start, b.stop) // k, n - 1) for b, k, n in zip(box, f, coarse.shape, strict=False)]
    lo = [int(i[0]) if i.size else 0 for i in idx]
    a = coarse[tuple(slice(q, (int(i[-1]) + 1) if i.size else q) for q, i in zip(lo, idx, strict=False))]
    for ax in (2, 1, 0):
        a = np.take(a, idx[ax] - lo[ax], axis=ax)
    return a


def upsample(coarse: np.ndarray, f: tuple[int, int, int], shape: tuple[int, int, int]) -> np.ndarray:
    """Nearest-neighbour upsampling of a grid made by ``[::f]`` striding or block pooling
    (cells past the coarse grid's end repeat its last cell): one gather per axis, x on
    the small grid first, then whole rows and slices (a 6-D broadcast write took 0.22 s
    on 512^2 x 600, this 0.06 s)."""
    a = coarse
    for ax in (2, 1, 0):
        if f[ax] > 1 or a.shape[ax] < shape[ax]:
            idx = np.minimum(np.arange(shape[ax]) // f[ax], a.shape[ax] - 1)
            a = np.take(a, idx, axis=ax)
        elif a.shape[ax] > shape[ax]:
            a = a[(slice(None),) * ax + (slice(0, shape[ax]),)]
    return np.ascontiguousarray(a) if a is not coarse else a.copy()


def pool_any(mask: np.ndarray, f: tuple[int, int, int]) -> np.ndarray:
    """Block-OR downsampling by integer factors ``f`` (the last block may be partial)."""
    if f == (1, 1, 1):
        same: np.ndarray = mask.copy()
        return same
    shape = tuple(-(-n // k) for n, k in zip(mask.shape, f, strict=False))
    out = np.zeros(shape, dtype=bool)
    for i in range(f[0]):
        for j in range(f[1]):
            for k in range(f[2]):
                v = mask[i :: f[0], j :: f[1], k :: f[2]]
                out[: v.shape[0], : v.shape[1], : v.shape[2]] |= v
    return out


def _counts(lab: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Voxels per label of ``lab`` (0 where ``mask`` is False). ``np.bincount`` over a
    whole 512^2 x 600 label image converts it to int64 first (4.6 s here); over the
    labelled voxels only it takes a fraction of that."""
    n = int(lab.max()) + 1 if lab.size else 1
    out = np.bincount(lab[mask], minlength=n)
    out[0] = 0
    return out


def _label_boxes(lab: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, list[tuple[slice, slice, slice]]]:
    """Voxels per label of ``lab`` (as :func:`_counts`) and each label's bounding box,
    from the labelled voxels' indices only (``cc3d.statistics`` reads the whole label
    image: 0.3 s on 512^2 x 600 for a few hundred pieces)."""
    idx = np.flatnonzero(mask)
    return _label_boxes_at(idx, lab.reshape(-1)[idx], lab.shape, int(lab.max()) + 1 if lab.size else 1)


def _label_boxes_at(
    idx: np.ndarray, pl: np.ndarray, shape: tuple[int, ...], n: int
) -> tuple[np.ndarray, list[tuple[slice, slice, slice]]]:
    """:func:`_label_boxes` from the labelled voxels' flat indices ``idx`` and their
    labels ``pl`` (``n`` labels, 0 included)."""
    counts = np.bincount(pl, minlength=n)
    counts[0] = 0
    lo = np.full((3, n), np.iinfo(np.int64).max, dtype=np.int64)
    hi = np.full((3, n), -1, dtype=np.int64)
    for ax, c in enumerate(np.unravel_index(idx, shape)):
        np.minimum.at(lo[ax], pl, c)
        np.maximum.at(hi[ax], pl, c)
    boxes = [
        (
            slice(int(lo[0, i]), int(hi[0, i]) + 1),
            slice(int(lo[1, i]), int(hi[1, i]) + 1),
            slice(int(lo[2, i]), int(hi[2, i]) + 1),
        )
        for i in range(n)
    ]
    return counts, boxes


def _select(table: np.ndarray, lab: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``table[lab]`` for the voxels of ``mask`` (False elsewhere): the lookup gathers
    only the labelled voxels instead of the whole label image."""
    out = np.zeros(lab.shape, dtype=bool)
    out[mask] = table[lab[mask]]
    return out


def _pool_mean(a: np.ndarray, f: tuple[int, int, int]) -> np.ndarray:
    """Block mean (float32) on the grid of :func:`_pool_any` (partial last blocks are
    averaged over what they hold)."""
    if tuple(f) == (1, 1, 1):
        return a.astype(np.float32)
    shape = tuple(-(-n // k) for n, k in zip(a.shape, f, strict=False))
    # Integer block sums, slab by slab: exact (a few int16 values), no float32 copy of
    # the volume (the strided float accumulation took 0.5 s on 512^2 x 600).
    acc = np.zeros(shape, dtype=np.int64 if a.dtype.kind == "f" else np.int32)
    if a.dtype.kind == "f":
        acc = acc.astype(np.float64)
    full = tuple(n // k for n, k in zip(a.shape, f, strict=False))

    def work(z0: int, z1: int) -> None:
        for i in range(f[0]):
            for j in range(f[1]):
                for k in range(f[2]):
                    v = a[z0 * f[0] + i : z1 * f[0] : f[0], j :: f[1], k :: f[2]]
                    acc[z0 : z0 + v.shape[0], : v.shape[1], : v.shape[2]] += v

    run_slabs(work, shape)
    cnt = np.ones(3 * (1,), dtype=np.float32) * float(np.prod(f))
    out = acc.astype(np.float32)
    if full != shape:
        # partial last blocks: divide by what they hold
        cz = np.minimum(f[0], a.shape[0] - np.arange(shape[0]) * f[0]).astype(np.float32)
        cy = np.minimum(f[1], a.shape[1] - np.arange(shape[1]) * f[1]).astype(np.float32)
        cx = np.minimum(f[2], a.shape[2] - np.arange(shape[2]) * f[2]).astype(np.float32)
        cnt = cz[:, None, None] * cy[None, :, None] * cx[None, None, :]
    out /= cnt
    return out


def _cell_labels(lab_c: np.ndarray, f: tuple[int, int, int], mask: np.ndarray) -> np.ndarray:
    """``upsample(lab_c, f, mask.shape)[mask]`` (C order) without the upsampled image."""
    cells = tuple(np.minimum(q // k, m - 1) for q, k, m in zip(np.nonzero(mask), f, lab_c.shape, strict=True))
    out: np.ndarray = lab_c[cells]
    return out


def _cell_means(a: np.ndarray, f: tuple[int, int, int], cells: np.ndarray) -> np.ndarray:
    """``_pool_mean(a, f)[cells]`` (float32, C order) computed at those cells only: a few
    gathers per cell instead of pooling the whole box."""
    cz, cy, cx = np.nonzero(cells)
    acc = np.zeros(cz.size, dtype=np.float64 if a.dtype.kind == "f" else np.int64)
    cnt = np.zeros(cz.size, dtype=np.int32)
    for i in range(f[0]):
        z = cz * f[0] + i
        for j in range(f[1]):
            y = cy * f[1] + j
            for k in range(f[2]):
                x = cx * f[2] + k
                ok = (z < a.shape[0]) & (y < a.shape[1]) & (x < a.shape[2])
                acc[ok] += a[z[ok], y[ok], x[ok]]
                cnt += ok
    return acc.astype(np.float32) / cnt.astype(np.float32)


def bbox(mask: np.ndarray, margin: int | tuple[int, int, int] = 0) -> tuple[slice, slice, slice] | None:
    """Bounding box of ``mask``'s True voxels grown by ``margin`` (one for all axes, or
    per axis z, y, x), clipped to the array; None when ``mask`` is empty."""
    m = (margin,) * 3 if isinstance(margin, int) else margin
    out = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        idx = np.flatnonzero(mask.any(axis=other))
        if idx.size == 0:
            return None
        out.append(slice(max(0, int(idx[0]) - m[axis]), min(mask.shape[axis], int(idx[-1]) + 1 + m[axis])))
    return out[0], out[1], out[2]


def _holes_2d(bg: np.ndarray, axis: int) -> np.ndarray:
    """Voxels of ``bg`` in 4-connected pieces of their slice across ``axis`` that touch
    none of the slice's edges: the holes of each slice, by cc3d per slice (an in-plane
    3D labelling with scipy took ~1 s per orientation on a 512^2 x 600 box)."""
    out = np.zeros(bg.shape, dtype=bool)
    moved = np.moveaxis(bg, axis, 0)
    res = np.moveaxis(out, axis, 0)
    for k in range(moved.shape[0]):
        sl = moved[k]
        if not sl.any() or sl.all():
            continue
        lab = cc3d.connected_components(np.ascontiguousarray(sl), connectivity=4)
        edge = np.zeros(int(lab.max()) + 1, dtype=bool)
        for face in (lab[0], lab[-1], lab[:, 0], lab[:, -1]):
            edge[face] = True
        edge[0] = True
        if not edge.all():
            res[k] = ~edge[lab]
    return out


def _fill_enclosed(solid: np.ndarray) -> np.ndarray:
    """Voxels of ``~solid`` enclosed by ``solid`` in 3D or in any axial, coronal or
    sagittal plane (the background pieces of that plane that touch none of its edges).

    The three plane fills are why an oblique rib or a sagittally running bone fills:
    a tube is closed in the plane across it whatever the slice axis is."""
    bg = ~solid
    lab3 = label(bg, 6)
    open3 = np.zeros(int(lab3.max()) + 1, dtype=bool)
    for ax in range(3):
        for face in (0, -1):
            sl = [slice(None)] * 3
            sl[ax] = face  # type: ignore[call-overload]
            open3[np.unique(lab3[tuple(sl)])] = True
    open3[0] = True
    # (label 0 is the solid, marked open: one table lookup, no mask gather)
    enclosed: np.ndarray = ~open3[lab3]
    del lab3
    for axis in range(3):
        enclosed |= _holes_2d(bg, axis)
    return enclosed


def _hist_mode(values: np.ndarray, lo: float, hi: float) -> float | None:
    v = values[(values >= lo) & (values <= hi)]
    if v.size < 100:
        return None
    h, e = np.histogram(v, bins=int((hi - lo) // 5), range=(lo, hi))
    h = ndi.gaussian_filter1d(h.astype(float), 2.0)
    i = int(np.argmax(h))
    return float(0.5 * (e[i] + e[i + 1]))


# --- stages ----------------------------------------------------------------------------


class _BodyCells(NamedTuple):
    """The body on its coarse grid (factors ``f``): ``keep`` cells are body; ``extra``
    cells are body where the voxel is below :data:`BODY_DENSE_HU` (None: no such cell)."""

    keep: np.ndarray
    extra: np.ndarray | None
    f: tuple[int, int, int]


def body_mask(hu: np.ndarray, spacing_mm: tuple[float, float, float] | None) -> np.ndarray:
    """The patient's body ``(nz, ny, nx)`` bool: everything else (couch, head holder,
    immobilisation mask, cables, air) is outside. See the module docstring, step 1."""
    cells = _body_cells(hu, spacing_mm)
    return _body_in_box(hu, cells, (slice(0, hu.shape[0]), slice(0, hu.shape[1]), slice(0, hu.shape[2])))


def _body_box(
    cells: _BodyCells, shape: tuple[int, ...], margin: tuple[int, int, int]
) -> tuple[slice, slice, slice] | None:
    """A box (full grid) holding every body voxel, grown by ``margin`` (from the coarse
    cells: it may be a cell larger than the body's own box)."""
    m = cells.keep if cells.extra is None else cells.keep | cells.extra
    b = bbox(m, 0)
    if b is None:
        return None
    return tuple(  # type: ignore[return-value]
        slice(max(0, q.start * k - g), min(n, q.stop * k + g))
        for q, k, g, n in zip(b, cells.f, margin, shape, strict=False)
    )


def _body_in_box(hu: np.ndarray, cells: _BodyCells, box: tuple[slice, slice, slice]) -> np.ndarray:
    """The body mask of :func:`body_mask` inside ``box`` (full grid), built slab by slab
    from the coarse cells: no whole-volume upsampling when only the box is needed."""
    shape = tuple(b.stop - b.start for b in box)
    out = np.empty(shape, dtype=bool)
    z_off = box[0].start

    def work(z0: int, z1: int) -> None:
        sb = (slice(z_off + z0, z_off + z1), box[1], box[2])
        out[z0:z1] = upsample_box(cells.keep, cells.f, sb)
        if cells.extra is not None:
            ex = upsample_box(cells.extra, cells.f, sb)
            ex &= np.asarray(hu[sb]) < BODY_DENSE_HU
            out[z0:z1] |= ex

    run_slabs(work, shape)
    return out


def _body_cells(hu: np.ndarray, spacing_mm: tuple[float, float, float] | None) -> _BodyCells:
    """The body's decisions on the coarse grid (see :func:`body_mask`)."""
    sx, sy, sz = _spacing(spacing_mm)
    f = _factors((sz, sy, sx), BODY_GRID_MM)
    sub = np.asarray(hu)[:: f[0], :: f[1], :: f[2]] > BODY_HU
    if not sub.any():
        return _BodyCells(sub, None, f)
    # Opening by one coarse voxel (a 3x3x3 box, across the slices only where they are
    # thin enough that one step is < 2x the in-plane step): thin shells go.
    rz = 1 if sz * f[0] <= 2.0 * sx * f[2] else 0
    r = (rz, 1, 1)
    core = _box_erode(sub, r)
    # cc3d counts 26-connected pieces; small pieces are cables, rails, pads.
    lab = label(core, 6)
    counts = _counts(lab, core)
    # A body part is thick somewhere (a limb, the trunk, the head: > 2 x BODY_THICK_MM
    # across); a head holder, a couch or a mask is a shell a few mm thick everywhere.
    tz, ty, tx = (max(1, int(round(BODY_THICK_MM / c))) for c in (sz * f[0], sy * f[1], sx * f[2]))
    rt = (tz, ty, tx)
    thick = _box_erode(np.pad(core, [(k, k) for k in rt], mode="edge"), rt)[tuple(slice(k, -k) for k in rt)]
    has_thick = np.zeros(counts.size, dtype=bool)
    has_thick[np.unique(lab[thick])] = True
    counts[~has_thick] = 0
    generous = None
    if counts.max() == 0:
        keep = sub  # nothing thick (a thin phantom, a finger): keep the tissue as it is
    else:
        vox_ml = sx * sy * sz * f[0] * f[1] * f[2] / 1000.0
        ok = (counts >= BODY_MIN_FRACTION * counts.max()) & (
            counts * vox_ml >= min(BODY_MIN_ML, 0.5 * counts.max() * vox_ml)
        )
        ok[0] = False
        # Generous body: the kept pieces whole, grown back over the opening. It holds
        # the skin and all of the fat, but also a pad the legs rest on, and with it a
        # strip of the couch under the pad.
        generous = ok[lab]
        for _ in range(2):
            generous = _box_dilate(generous, r) & sub
        # Strict body: what lies within about BODY_THICK_MM of a thick part: a pad or
        # mattress of soft-tissue density under the legs (a slab thinner than
        # 2 x BODY_THICK_MM) is left out beyond its contact line, and with it the
        # couch under the pad.
        keep = thick & ok[lab]
        # Grown back by as many 6-connected steps as the erosion was deep: the opening's
        # octahedron fits inside its cube, so nothing beyond the skin comes back (a
        # pad under the calves stays out), and the inside fill below restores the rest.
        for _ in range(max(rt)):
            keep = dilate6(keep) & sub
        # Then all of the kept pieces' tissue at water density or above that connects to
        # it: a thin chest wall with its ribs, a skull near the skin come back; a pad of
        # fat density under the calves (and the couch beyond it) does not.
        # (block means: noise in a -60 HU pad reaches 0 HU voxel by voxel, not on average)
        # (the strided sample smoothed over its 3x3 in-plane neighbours: the whole-volume
        # block mean cost 1.5 s on 512^2 x 600)
        # (the 3x3 sum in integers, edges mirrored as uniform_filter's "reflect" mode:
        # the same sign as the mean without a float copy; in-plane, so slab by slab)
        strided = np.asarray(hu)[:: f[0], :: f[1], :: f[2]]
        denser = ok[lab]
        kind = strided.dtype.kind
        acc = np.float64 if kind not in "iub" else (np.int32 if strided.dtype.itemsize <= 2 else np.int64)

        def work(z0: int, z1: int) -> None:
            hs = np.pad(strided[z0:z1], ((0, 0), (1, 1), (1, 1)), mode="symmetric")
            sums: np.ndarray = hs[:, :, :-2].astype(acc)  # float64 or an integer type: any dtype
            sums += hs[:, :, 1:-1]
            sums += hs[:, :, 2:]
            rows = sums[:, :-2]
            rows += sums[:, 1:-1]
            rows += sums[:, 2:]
            denser[z0:z1] &= rows >= 0

        run_slabs(work, denser.shape)
        grow = keep | denser
        glab = label(grow, 6)
        hit = np.zeros(int(glab.max()) + 1, dtype=bool)
        hit[np.unique(glab[keep])] = True
        hit[0] = False
        keep = keep | hit[glab]
        # And two steps (5 mm) of any tissue: the thin edge of the body that the opening
        # rounded off (the skin over the shin and the vessels just under it); a pad
        # under the calves gains only its contact strip, below any visible class.
        for _ in range(2):
            keep = keep | (dilate6(keep) & sub)
    # Inside the body = between body voxels along both in-plane axes (lungs, bowel
    # gas, the lung vessels, the trachea). The couch lies below the back and a holder
    # beside the head: outside along one axis. Where the body reaches a side of the
    # image (a scan cropped to the chest), that side counts as body: the lungs of a
    # cropped CTA are not outside.
    # (Per row: between its first and its last body cell, from argmax; a slice whose
    # body touches a side has that side open.)
    inside: np.ndarray | None = None
    for axis in (1, 2):
        n = keep.shape[axis]
        pos = np.arange(n).reshape((1, n, 1) if axis == 1 else (1, 1, n))
        has = keep.any(axis=axis, keepdims=True)
        first = np.where(has, keep.argmax(axis=axis, keepdims=True), n)
        last = np.where(has, n - 1 - np.flip(keep, axis=axis).argmax(axis=axis, keepdims=True), -1)
        side_lo = keep.take([0], axis=axis).any(axis=(1, 2), keepdims=True)
        side_hi = keep.take([n - 1], axis=axis).any(axis=(1, 2), keepdims=True)
        first = np.where(side_lo, 0, first)
        last = np.where(side_hi, n - 1, last)
        inside_axis = (pos >= first) & (pos <= last)
        inside = inside_axis if inside is None else inside & inside_axis
    assert inside is not None
    keep = keep | inside
    if generous is None:
        return _BodyCells(keep, None, f)
    # Everything of the generous body belongs to the patient except what is dense and
    # outside the strict one (a couch's carbon-fibre skin under a pad): fat, skin and
    # a soft-tissue-density pad stay, invisible in any bone or vessel class.
    extra_c = generous & ~keep
    return _BodyCells(keep, extra_c if extra_c.any() else None, f)


@dataclass(frozen=True, eq=False)
class _BoneObject:
    bone: np.ndarray  # cortex + enclosed space (full grid)
    seeds_small: np.ndarray  # dense pieces too small to be bone (calcification)


def _plaque_pieces(
    hu: np.ndarray,
    pieces: tuple[np.ndarray, np.ndarray],
    candidates: np.ndarray,
    volume_mm3: np.ndarray,
    lumen_high_hu: float,
    noise_hu: float | None,
    boxes: list[tuple[slice, slice, slice]],
) -> np.ndarray:
    """Which dense pieces are calcified plaque, not bone: bool per piece. ``pieces``:
    the dense voxels' flat indices in ``hu`` and their pieces (1..N), ``boxes`` each
    piece's box.

    A plaque lies on an opacified lumen; a cortex lies on soft tissue outside and on
    marrow or textured cancellous bone inside. So the test looks at the ring two to three
    voxels around each piece: the share of it that is *homogeneous* lumen (in
    ``[CONTRAST_CORE_HU, lumen_high_hu]``, local spread under LUMEN_SD_FACTOR x noise). A calcified
    aortic ring is a large piece (hundreds of mm^3) that a size rule would call bone;
    this rule keeps it out of the bone, so the lumen it encircles is not filled as
    marrow. Pieces over :data:`PLAQUE_MAX_MM3` are always bone."""
    out = np.zeros(candidates.shape, dtype=bool)
    thr = max(25.0, LUMEN_SD_FACTOR * (20.0 if noise_hu is None else float(noise_hu)))
    dense_idx, pl = pieces
    order = np.argsort(pl, kind="stable")
    starts = np.searchsorted(pl[order], np.arange(candidates.size + 1))
    for i in np.flatnonzero(candidates):
        if volume_mm3[i] > PLAQUE_MAX_MM3:
            continue
        bb = boxes[i]
        g = tuple(slice(max(0, b.start - 4), min(n, b.stop + 4)) for b, n in zip(bb, hu.shape, strict=False))
        piece = np.zeros(tuple(q.stop - q.start for q in g), dtype=bool)
        at = np.unravel_index(dense_idx[order[starts[i] : starts[i + 1]]], hu.shape)
        piece[tuple(c - q.start for c, q in zip(at, g, strict=True))] = True
        d1 = dilate6(piece)
        # Two to three voxels out: one voxel out, the piece's own partial volume and
        # its brightness in every 3x3x3 neighbourhood would hide a lumen.
        ring = dilate6(dilate6(d1)) & ~d1
        h = hu[g]
        # The ring's 3x3x3 neighbourhoods must lie inside this crop.
        ring[[0, -1]] = False
        ring[:, [0, -1]] = False
        ring[:, :, [0, -1]] = False
        idx = np.flatnonzero(ring)
        if idx.size == 0:
            continue
        if idx.size > 20_000:
            idx = idx[:: idx.size // 20_000 + 1]
        hv = flat_reader(h)[idx]
        ok = (hv >= CONTRAST_CORE_HU) & (hv <= lumen_high_hu)
        if not ok.any():
            continue
        sd = _local_sd_at(h, idx[ok])
        lumen = np.count_nonzero(sd < thr)
        if lumen >= PLAQUE_LUMEN_SHARE * idx.size:
            out[i] = True
    return out


def bone_object(
    hu: np.ndarray,
    spacing_mm: tuple[float, float, float] | None,
    seed_hu: float,
    cancellous_hu: float,
    body: np.ndarray | None,
    lumen_high_hu: float | None = None,
    noise_hu: float | None = None,
    weak_hu: float | None = None,
) -> _BoneObject:
    """Cortical seeds (``hu >= seed_hu``, large pieces) and the space they enclose
    (step 2 of the module docstring). Enclosed voxels belong to the bone whatever their
    HU (marrow fat is invisible either way; cancellous bone is ivory); ``cancellous_hu``
    is the floor above which enclosed voxels are also dense bone (kept for the info)."""
    sx, sy, sz = _spacing(spacing_mm)
    vox = sx * sy * sz
    seeds = hu >= seed_hu if body is None else voxelwise(lambda h, b: (h >= seed_hu) & b, hu, body)
    box = bbox(seeds, 4)
    bone = np.zeros(hu.shape, dtype=bool)
    small = np.zeros(hu.shape, dtype=bool)
    if box is None:
        return _BoneObject(bone, small)
    s = seeds[box]
    if weak_hu is not None and weak_hu < seed_hu:
        # Hysteresis: thin cortex at the bone ends (blurred under the seed threshold)
        # joins where it connects to confident cortex.
        w = hu[box] >= weak_hu
        if body is not None:
            w &= body[box]
        wl = label(w, 26)
        strong_labels = np.unique(wl[s])
        hit = np.zeros(int(wl.max()) + 1, dtype=bool)
        hit[strong_labels] = True
        hit[0] = False
        s = hit[wl]
        del wl, w
    # The seed voxels' flat indices and pieces: the pieces' sizes, boxes and the split
    # into large and small are made from these (sparse: a few % of the box), without a
    # label image of the box (4 bytes a voxel: 1.3x the int16 volume on the real chest
    # tiled to 2000 slices, the peak of its bone step) or whole-box passes that would
    # touch every page of new box-size arrays.
    idx = np.flatnonzero(s)
    pl, n_pieces = labels_at(s, idx, 26)
    counts, boxes = _label_boxes_at(idx, pl, s.shape, n_pieces + 1)
    big_ok = counts * vox >= MIN_BONE_SEED_MM3
    big_ok[0] = False
    if lumen_high_hu is not None and big_ok.any():
        big_ok &= ~_plaque_pieces(hu[box], (idx, pl), big_ok, counts * vox, lumen_high_hu, noise_hu, boxes)
    in_big = big_ok[pl]
    big: np.ndarray = np.zeros(s.shape, dtype=bool)
    big.reshape(-1)[idx[in_big]] = True
    small[box][np.unravel_index(idx[~in_big], s.shape)] = True
    del s, seeds, idx, pl, in_big
    if not big.any():
        return _BoneObject(bone, small)
    # Enclosed space on a coarse grid: block-OR keeps thin cortex closed.
    # At least 2x in-plane: a 1 mm scan's fill at full size costs seconds.
    f = _factors((sz, sy, sx), FILL_GRID_MM)
    if sx < 1.2:
        f = (f[0], max(2, f[1]), max(2, f[2]))
    solid = pool_any(big, f)
    cs = (sz * f[0], sy * f[1], sx * f[2])
    rcz, rcy, rcx = (max(0, int(round(CLOSING_MM / c))) for c in cs)
    rc = (rcz, rcy, rcx)
    solid_p = np.pad(solid, [(r + 1, r + 1) for r in rc])
    closed = _box_erode(_box_dilate(solid_p, rc), rc)
    closed = closed[tuple(slice(r + 1, -(r + 1)) for r in rc)]
    enclosed_c = _fill_enclosed(closed)
    # A large enclosed space of soft-tissue density is not marrow: the brain in the
    # skull, pelvic organs inside the pelvic ring. Vessels there must stay vessels.
    if enclosed_c.any():
        elab = label(enclosed_c, 6)
        # Per piece, over the enclosed cells only (label 0 is never used below).
        el = elab[enclosed_c]
        hv_e = _cell_means(hu[box], f, enclosed_c)
        n_e = np.bincount(el, minlength=int(elab.max()) + 1)
        s_e = np.bincount(el, weights=hv_e, minlength=n_e.size)
        mean_e = s_e / np.maximum(n_e, 1)
        vol_ml = n_e * cs[0] * cs[1] * cs[2] / 1000.0
        # Share of the piece's cells at soft-tissue density: the brain is nearly all
        # soft; a marrow cavity is fat (-70) and cancellous bone (150-400).
        soft_e = (hv_e > -20.0) & (hv_e < 80.0)
        share = np.bincount(el, weights=soft_e, minlength=n_e.size) / np.maximum(n_e, 1)
        soft = (vol_ml > ENCLOSED_SOFT_MAX_ML) & (share > 0.8) & (mean_e > -30.0) & (mean_e < 100.0)
        soft[0] = False
        if soft.any():
            enclosed_c &= ~soft[elab]
        # (4 bytes a coarse cell: a fifth of the int16 volume at 2000 slices, not to be
        # held through the full-size pass below)
        del elab, el, hv_e, soft_e
    # Cells the closing added that border the enclosed space: the bridges over gaps.
    bridge_c = closed & ~solid & dilate6(enclosed_c)
    inner_c = enclosed_c | bridge_c
    # Mixed cells (part cortex) next to the enclosed space: their non-cortex voxels lie
    # between the cortex and the cavity (endosteal surface) -- bone too.
    mixed_c = solid & dilate6(enclosed_c)
    out_b = bone[box]
    body_b = body[box] if body is not None else None
    n0 = big.shape[0]

    def work(z0: int, z1: int) -> None:
        # The slab and one slice each side (the neighbours the one-voxel tests need),
        # upsampled from the coarse cells here: no whole-box upsampled copies.
        h0, h1 = max(0, z0 - 1), min(n0, z1 + 1)
        sb = (slice(h0, h1), slice(0, big.shape[1]), slice(0, big.shape[2]))
        bi = big[h0:h1]
        ii = upsample_box(inner_c, f, sb)
        mi = upsample_box(mixed_c, f, sb) & ~bi
        b = bi | ii
        # only the mixed voxels that touch the cavity side, not the outer surface.
        b |= mi & dilate6(ii & ~bi) & ~dilate6(~(bi | ii | mi))
        r = b[z0 - h0 : z1 - h0]
        if body_b is not None:
            r &= body_b[z0:z1]
        out_b[z0:z1] = r

    run_slabs(work, big.shape)
    return _BoneObject(bone, small)


def _strided_flat(a: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    """A read-only 1D view of the memory ``a`` spans (``a`` itself reshaped when it is
    contiguous) and ``a``'s strides in elements: voxel ``(z, y, x)`` of ``a`` is
    ``flat[z * s0 + y * s1 + x * s2]``. For a view of the body's box, which is not
    contiguous: ``reshape(-1)`` would copy it whole (two thirds of the volume on a real
    chest) for a gather of a few voxels."""
    if a.flags.c_contiguous:
        return a.reshape(-1), tuple(int(np.prod(a.shape[i + 1 :])) for i in range(a.ndim))
    es = tuple(st // a.itemsize for st in a.strides)
    if a.size == 0 or any(st <= 0 or st % a.itemsize for st in a.strides):
        c = np.ascontiguousarray(a)
        return c.reshape(-1), tuple(int(np.prod(c.shape[i + 1 :])) for i in range(c.ndim))
    span = sum((n - 1) * e for n, e in zip(a.shape, es, strict=True)) + 1
    flat = np.lib.stride_tricks.as_strided(a, shape=(span,), strides=(a.itemsize,), writeable=False)
    return flat, es


class _FlatReader:
    """``a.reshape(-1)[idx]`` for a non-contiguous ``a`` without copying it (see
    :func:`_strided_flat`): C-order flat indices of ``a`` become indices of the memory
    it spans."""

    __slots__ = ("contiguous", "flat", "shape", "size", "strides")

    def __init__(self, a: np.ndarray) -> None:
        self.flat, self.strides = _strided_flat(a)
        self.contiguous = bool(a.flags.c_contiguous)
        self.shape = a.shape
        self.size = a.size

    def positions(self, idx: np.ndarray) -> np.ndarray:
        """Where in :attr:`flat` the voxels of C-order flat indices ``idx`` lie."""
        idx = np.asarray(idx)
        if self.contiguous:
            return idx
        coords = np.unravel_index(idx, self.shape)
        at: np.ndarray = coords[0] * self.strides[0]
        for c, e in zip(coords[1:], self.strides[1:], strict=True):
            at = at + c * e
        return at

    def __getitem__(self, idx: np.ndarray) -> np.ndarray:
        out: np.ndarray = self.flat[self.positions(idx)]
        return out


def flat_reader(a: np.ndarray) -> np.ndarray | _FlatReader:
    """``a.reshape(-1)`` where that is a view, else a reader of the same indices
    (:class:`_FlatReader`): ``flat_reader(a)[idx]`` is ``a.reshape(-1)[idx]`` for
    indices in range, without copying ``a``."""
    return a.reshape(-1) if a.flags.c_contiguous else _FlatReader(a)


def _neighbourhoods(h: np.ndarray, flat_idx: np.ndarray) -> np.ndarray:
    """The 3x3x3 neighbourhood of each voxel in ``flat_idx`` (C-order flat indices of
    ``h``, at least one voxel from every side) as float32 ``(n, 27)``, z outermost, x
    innermost; of a view, read where it lies (no copy of it)."""
    r = _FlatReader(h)
    s0, s1, s2 = r.strides
    offs = np.array([dz * s0 + dy * s1 + dx * s2 for dz in (-1, 0, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1)])
    out: np.ndarray = r.flat[r.positions(flat_idx)[:, None] + offs[None, :]].astype(np.float32)
    return out


def _local_sd_at(h: np.ndarray, flat_idx: np.ndarray) -> np.ndarray:
    """Standard deviation of the 3x3x3 neighbourhood of each voxel in ``flat_idx``
    (voxels at least one voxel from every side of ``h``). A gather of 27 values per
    sampled voxel: cheaper than two full-volume uniform filters on a 512^2 x 600 scan."""
    v = _neighbourhoods(h, flat_idx)
    sd: np.ndarray = v.std(axis=1)
    return sd


def _local_sd_in_range(h: np.ndarray, flat_idx: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Like :func:`_local_sd_at` over only the neighbours with ``lo <= HU <= hi`` (at
    least 8 of the 27; fewer gives infinity)."""
    v = _neighbourhoods(h, flat_idx)
    ok = (v >= lo) & (v <= hi)
    n = ok.sum(axis=1)
    m = np.where(ok, v, 0).sum(axis=1) / np.maximum(n, 1)
    var = np.where(ok, (v - m[:, None]) ** 2, 0).sum(axis=1) / np.maximum(n, 1)
    out: np.ndarray = np.sqrt(var)
    out[n < 8] = np.inf
    return out


def _interior(mask: np.ndarray) -> np.ndarray:
    """``mask`` eroded by one voxel, and never on the array's sides (so a 3x3x3
    neighbourhood of each voxel is inside the array)."""
    e = erode6(mask)
    e[[0, -1]] = False
    e[:, [0, -1]] = False
    e[:, :, [0, -1]] = False
    return e


def noise_sd(hu: np.ndarray, body: np.ndarray, max_samples: int = 200_000) -> float:
    """The scan's noise (HU): the 25th percentile of the local (3x3x3) standard deviation
    of soft tissue (0..100 HU) inside the body. Homogeneous tissue's local spread is
    noise; the lower quartile keeps edges and texture out."""
    soft = _soft_interior(hu, body)
    idx = strided_nonzero(soft, max_samples)
    if idx.size == 0:
        return 20.0
    return float(np.percentile(_local_sd_at(hu, idx), 25))


def _soft_interior(hu: np.ndarray, body: np.ndarray) -> np.ndarray:
    """``_interior((0 <= hu <= 100) & body)`` slab by slab: each slab's soft-tissue mask
    is made with one slice each side and eroded there (no whole-volume mask first)."""
    out = np.empty(hu.shape, dtype=bool)
    n = hu.shape[0]

    def work(z0: int, z1: int) -> None:
        h0, h1 = max(0, z0 - 1), min(n, z1 + 1)
        h = hu[h0:h1]
        m = (h >= 0) & (h <= 100) & body[h0:h1]
        e = m.copy()
        e[1:] &= m[:-1]
        e[:-1] &= m[1:]
        e[:, 1:] &= m[:, :-1]
        e[:, :-1] &= m[:, 1:]
        e[:, :, 1:] &= m[:, :, :-1]
        e[:, :, :-1] &= m[:, :, 1:]
        r = out[z0:z1]
        r[...] = e[z0 - h0 : z1 - h0]
        # never on the array's sides (a 3x3x3 neighbourhood must fit)
        r[:, [0, -1]] = False
        r[:, :, [0, -1]] = False
        if z0 == 0:
            r[0] = False
        if z1 == n:
            r[-1] = False

    run_slabs(work, hu.shape)
    return out


def strided_nonzero(mask: np.ndarray, max_samples: int) -> np.ndarray:
    """``np.flatnonzero(mask)[::step]`` with ``step = n // max_samples + 1`` when there are
    more than ``max_samples`` True voxels (else all of them), slab by slab: the
    whole-volume index array of tens of millions of soft-tissue voxels (int64) took
    0.2-0.3 GB for a 512^2 x 600 scan."""
    counts = [int(np.count_nonzero(mask[z0:z1])) for z0, z1 in _slabs(mask.shape)]
    n = sum(counts)
    if n <= max_samples:
        return np.flatnonzero(mask)
    step = n // max_samples + 1
    per = int(np.prod(mask.shape[1:]))
    parts = []
    seen = 0
    for (z0, z1), c in zip(_slabs(mask.shape), counts, strict=True):
        if c:
            # the global ranks seen..seen+c-1 of this slab; keep those divisible by step
            first = (-seen) % step
            parts.append(np.flatnonzero(mask[z0:z1])[first::step] + z0 * per)
        seen += c
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.intp)


class LumenCore(NamedTuple):
    """What :func:`detect_contrast` found: the homogeneous lumen core's volume in all
    and in its largest piece (mm^3), its HU level (None when there is none) and the
    flat indices of its sampled voxels (the thin ones among them set the lumen level
    that :func:`thick_cancellous` compares with)."""

    total_mm3: float
    largest_mm3: float
    level_hu: float | None
    samples: np.ndarray
    #: the longest thin opacified tube (:func:`lumen_tubes`), mm; 0 when not looked for
    tube_mm: float = 0.0

    @property
    def found(self) -> bool:
        """Whether this says "contrast": a homogeneous lumen piece of
        CONTRAST_MIN_MM3 or a thin tube of CONTRAST_TUBE_MM."""
        return self.largest_mm3 >= CONTRAST_MIN_MM3 or self.tube_mm >= CONTRAST_TUBE_MM


def detect_contrast(
    hu: np.ndarray,
    spacing_mm: tuple[float, float, float] | None,
    bone: np.ndarray,
    body: np.ndarray,
    high_hu: float,
    noise_hu: float | None = None,
    soft_hu: float = 40.0,
) -> LumenCore:
    """The opacified-lumen core (:class:`LumenCore`); its HU level is the lumen's
    typical HU, from the upper tail of the homogeneous core: voxels in ``[CONTRAST_CORE_HU, high_hu]``
    whose six neighbours are too, outside the bone object grown by two voxels, inside the
    body, **homogeneous** (local 3x3x3 standard deviation under LUMEN_SD_FACTOR x the scan's noise, at
    least 25 HU), counted in pieces of at least 20 mm^3.

    Why homogeneity: at 2 mm voxels cancellous vertebrae are 300-400 HU, as bright as
    arterial blood, and their cortex can stay under any cortical threshold; but
    trabecular bone is textured (local spread 70-160 HU on the real chest CT) and a
    lumen is not (23-43 HU, noise, on the real CTA's aorta): docs/separation.md."""
    sx, sy, sz = _spacing(spacing_mm)
    vox = sx * sy * sz
    near_bone = dilate6(dilate6(bone))
    inrange = voxelwise(lambda h, b, nb: (h >= CONTRAST_CORE_HU) & (h <= high_hu) & b & ~nb, hu, body, near_bone)
    del near_bone
    coarse = min(sx, sy) >= COARSE_VOXEL_MM
    if coarse:
        # At 1.5 mm and more an artery is three or four voxels across: no voxel has all
        # six neighbours in the lumen. Four of six will do, and the spread is taken over
        # the in-range neighbours only (edge voxels out of range do not count as texture).
        n_in = np.zeros(hu.shape, dtype=np.uint8)
        for ax in range(3):
            for sh in (1, -1):
                n_in += np.roll(inrange, sh, axis=ax)
        core = inrange & (n_in >= 4)
        core[[0, -1]] = False
        core[:, [0, -1]] = False
        core[:, :, [0, -1]] = False
    else:
        core = _interior(inrange)
    # At least ~1 mm from the lumen's edge in-plane (a 2 mm plastic shell or a thin
    # plate has no such core), and not in the first or last two slices (partial slices
    # and resampled ends are smooth without being lumen).
    for _ in range(max(0, int(np.ceil(0.9 / min(sx, sy))) - 1)):
        core = erode6(core, (1, 2))
    core[:2] = False
    core[-2:] = False
    idx = np.flatnonzero(core)
    noise = noise_sd(hu, body) if noise_hu is None else float(noise_hu)

    def tubes_only() -> LumenCore:
        # no homogeneous lumen piece that counts: thin tubes decide
        mm, t_idx = lumen_tubes(hu, (sx, sy, sz), inrange, soft_hu)
        if mm < CONTRAST_TUBE_MM:
            return LumenCore(0.0, 0.0, None, np.zeros(0, dtype=np.int64), mm)
        return LumenCore(0.0, 0.0, float(np.percentile(flat_reader(hu)[t_idx], 90) - 1.28 * noise), t_idx, mm)

    if idx.size == 0:
        return tubes_only()
    thr = max(25.0, LUMEN_SD_FACTOR * noise)
    step = max(1, idx.size // 300_000)
    samp = idx[::step]
    sd = _local_sd_in_range(hu, samp, CONTRAST_CORE_HU, high_hu) if coarse else _local_sd_at(hu, samp)
    is_homog = sd < thr
    homog = samp[is_homog]
    if homog.size == 0:
        return tubes_only()
    # The core's pieces at the sampled voxels only (no label image of the core's box, 4
    # bytes a voxel: with the thin-tube test after it, the peak of the separation of
    # the real chest tiled to 2000 slices).
    samp_lab, n_pieces = labels_at(core, samp, 26)
    del core
    pl = samp_lab[is_homog]
    zz = np.unravel_index(homog, hu.shape)[0]
    n_lab = n_pieces + 1
    per_piece = np.bincount(pl, minlength=n_lab) * step * vox
    # A lumen runs on through several slices; a smooth plate in one slice (the vertex
    # of a skull cut flat, a resampled end slice) does not.
    zmin = np.full(n_lab, np.iinfo(np.int64).max)
    zmax = np.full(n_lab, -1)
    np.minimum.at(zmin, pl, zz)
    np.maximum.at(zmax, pl, zz)
    # The share of each piece's core that is homogeneous (of the sampled core voxels).
    core_per_piece = np.bincount(samp_lab, minlength=n_lab)
    share = np.bincount(pl, minlength=n_lab) / np.maximum(core_per_piece, 1)
    ok = (per_piece >= 20.0) & (zmax - zmin >= 1)
    ok[0] = False
    # Only a piece that is homogeneous through much of its core and runs on in z says
    # "contrast"; every piece still gives the lumen level and its samples (the level
    # from the qualified pieces alone cost the small phantom's main arteries 0.88 -> 0.78
    # recall: their own small pieces set the level that thick_cancellous compares with).
    qualified = ok & (share >= CONTRAST_HOMOGENEOUS_SHARE) & ((zmax - zmin) * sz >= CONTRAST_MIN_Z_MM)
    good = ok[pl]
    largest = float(per_piece[qualified].max()) if qualified.any() else 0.0
    total = float(per_piece[qualified].sum())
    if largest < CONTRAST_MIN_MM3:
        # No homogeneous lumen piece that counts: thin opacified vessels may say it.
        tubes = tubes_only()
        if not good.any():
            return tubes._replace(total_mm3=total, largest_mm3=largest)
        tube_mm = tubes.tube_mm
    else:
        tube_mm = 0.0
    # The lumen is the brightest homogeneous population under the cortex: homogeneous
    # cancellous bone or an enhancing organ (smooth, 200-300 HU) may be larger, so the
    # level is the upper tail (90th percentile) less 1.28 noise (a Gaussian's p90).
    level = float(np.percentile(flat_reader(hu)[homog[good]], 90) - 1.28 * noise) if good.any() else None
    return LumenCore(total, largest, level, homog[good], tube_mm)


#: The 13 directions of a voxel's 26-neighbourhood, one of each opposite pair (z, y, x).
_DIRECTIONS = np.array(
    [
        (1, 0, 0),
        (0, 1, 0),
        (0, 0, 1),
        (1, 1, 0),
        (1, -1, 0),
        (1, 0, 1),
        (1, 0, -1),
        (0, 1, 1),
        (0, 1, -1),
        (1, 1, 1),
        (1, 1, -1),
        (1, -1, 1),
        (-1, 1, 1),
    ],
    dtype=np.float64,
)


def lumen_tubes(
    hu: np.ndarray,
    spacing_mm: tuple[float, float, float],
    candidates: np.ndarray,
    soft_hu: float,
    probe_mm: float = TUBE_PROBE_MM,
) -> tuple[float, np.ndarray]:
    """Thin opacified vessels among ``candidates`` (voxels in the lumen range): the
    length (mm, the diagonal of its box) of the longest 26-connected run of *tube*
    voxels, and the flat indices of that run's voxels.

    A voxel is a tube voxel when, probed at ``probe_mm`` on both sides along each of the
    13 directions of its 26-neighbourhood, the directions in which it is *not* darker
    on both sides (under the midpoint between soft tissue and the lumen floor) all lie
    within 60 degrees of one another: it continues along one axis only. A plate (a
    scapula blade, a rib lying in the axial plane) continues along two perpendicular
    directions, a blob (smoothed cancellous bone, a vertebral body) along all, a speck
    along none. Used when the homogeneous-core test finds no lumen: arteries 3-5 mm
    across at 1.5 mm pixels have no homogeneous core, but they are tubes."""
    sx, sy, sz = spacing_mm
    idx = np.flatnonzero(candidates)
    none = (0.0, np.zeros(0, dtype=np.int64))
    if idx.size == 0:
        return none
    dark_hu = 0.5 * (soft_hu + CONTRAST_CORE_HU)
    shape = hu.shape
    flat = flat_reader(hu)
    unit = _DIRECTIONS / np.linalg.norm(_DIRECTIONS, axis=1)[:, None]
    apart = np.abs(unit @ unit.T) < 0.5  # pairs more than 60 degrees apart
    # Direction by direction (the axes first: a blob or a plate continues along two of
    # them and is dropped before the ten diagonals are probed), on the voxels still
    # possibly a tube only.
    alive = idx
    coords = [c.astype(np.int32) for c in np.unravel_index(idx, shape)]
    continues = np.zeros((idx.size, len(unit)), dtype=bool)
    strides = (shape[1] * shape[2], shape[2], 1)
    for j, u in enumerate(unit):
        off = [int(round(probe_mm * c / s)) for c, s in zip(u, (sz, sy, sx), strict=True)]
        if not any(off):
            off = [int(np.sign(c)) for c in u]
        step = sum(o * st for o, st in zip(off, strides, strict=True))
        dark = np.ones(alive.size, dtype=bool)
        for sign in (1, -1):
            inside = np.ones(alive.size, dtype=bool)
            for c, o, n in zip(coords, off, shape, strict=True):
                if o:
                    q = c + sign * o
                    inside &= (q >= 0) & (q < n)
            # (outside the array counts as dark: the scan's edge)
            val = flat[np.where(inside, alive + sign * step, alive)]
            dark &= ~inside | (val < dark_hu)
        continues[:, j] = ~dark
        spread = continues[:, j] & continues[:, : j + 1][:, apart[j, : j + 1]].any(axis=1)
        if spread.any():
            keep = ~spread
            alive, continues = alive[keep], continues[keep]
            coords = [c[keep] for c in coords]
        if alive.size == 0:
            return none
    is_tube = continues.any(axis=1)
    idx = alive
    if not is_tube.any():
        return none
    t_idx = idx[is_tube]
    tc = np.unravel_index(t_idx, shape)
    # (tube voxels are few and scattered: their box can be the whole scan, so they are
    # joined as a graph of their own, not labelled in a volume)
    pl = sparse_components(t_idx, shape)
    length2 = np.sum([(span * s) ** 2 for span, s in zip(_piece_spans(pl, tc), (sz, sy, sx), strict=True)], axis=0)
    best = int(np.argmax(length2))
    return float(np.sqrt(length2[best])), t_idx[pl == best]


def _grown_through(mask: np.ndarray, allowed: Callable[[int, int], np.ndarray], steps: int) -> np.ndarray:
    """``mask`` grown by ``steps`` 6-connected layers through the voxels ``allowed(z0,
    z1)`` says (bool slices z0..z1): a new array, made slab by slab with ``steps``
    slices of halo each side (a voxel ``steps`` layers out depends on nothing further),
    so that no whole-box ``allowed``, front or dilation is held at once (the rim step
    of a scan without contrast was the separation's memory peak)."""
    out = np.empty_like(mask)
    n = mask.shape[0]

    def work(z0: int, z1: int) -> None:
        h0, h1 = max(0, z0 - steps), min(n, z1 + steps)
        grown = mask[h0:h1].copy()
        ok = allowed(h0, h1)
        front = grown
        for _ in range(steps):
            front = dilate6(front, within=ok, without=grown)
            grown |= front
        out[z0:z1] = grown[z0 - h0 : z1 - h0]

    run_slabs(work, mask.shape)
    return out


def _piece_spans(pieces: np.ndarray, coords: tuple[np.ndarray, ...]) -> list[np.ndarray]:
    """Per piece (labels ``pieces`` 0..k-1 of voxels at ``coords``, one array per axis):
    its extent along each axis in voxels, last minus first (0 for one voxel)."""
    n = int(pieces.max()) + 1 if pieces.size else 0
    spans = []
    for c in coords:
        lo_ = np.full(n, np.iinfo(np.int64).max)
        hi_ = np.full(n, -1)
        np.minimum.at(lo_, pieces, c)
        np.maximum.at(hi_, pieces, c)
        spans.append(np.maximum(hi_ - lo_, 0))
    return spans


def sparse_components(flat_idx: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """26-connected pieces of the voxels at the sorted flat indices ``flat_idx`` of a
    volume of ``shape``: one label 0..k-1 per voxel. For a few scattered voxels, where
    labelling their bounding box would cost a volume of 4-byte labels."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = flat_idx.size
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    coords = np.unravel_index(flat_idx, shape)
    strides = (shape[1] * shape[2], shape[2], 1)
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    for d in _DIRECTIONS.astype(np.int64):
        ok = np.ones(n, dtype=bool)
        for c, o, m in zip(coords, d, shape, strict=True):
            if o:
                q = c + o
                ok &= (q >= 0) & (q < m)
        target = flat_idx + int(np.dot(d, strides))
        pos = np.searchsorted(flat_idx, target)
        hit = ok & (pos < n)
        hit[hit] = flat_idx[pos[hit]] == target[hit]
        rows.append(np.flatnonzero(hit))
        cols.append(pos[hit])
    r, c = np.concatenate(rows), np.concatenate(cols)
    graph = coo_matrix((np.ones(r.size, dtype=np.int8), (r, c)), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    return np.asarray(comp, dtype=np.int64)


def _halo(hu: np.ndarray, vessel: np.ndarray, soft_hu: float, *, own_class: bool = False) -> np.ndarray:
    """Vessel voxels darker than half-way between soft tissue and their brightest
    6-neighbour: the partial-volume halo outside a lumen's half-maximum edge.

    Why: a threshold at the window's low end (170 HU) takes voxels that are a third
    lumen and two thirds muscle; the lumen's edge is at half maximum (FWHM), so these
    make every vessel look fatter than it is. A voxel's own neighbourhood sets the
    level, so a faint sub-voxel branch (peak 200-250 HU) keeps all its voxels.
    ``own_class``: only neighbours in ``vessel`` count (a calcified wall or a cortex
    next to the lumen is not the lumen's level)."""
    idx = np.flatnonzero(vessel)
    out = np.zeros(hu.shape, dtype=bool)
    if idx.size == 0:
        return out
    nz, ny, nx = hu.shape
    flat = flat_reader(hu)
    vflat = flat_reader(vessel)
    own = flat[idx].astype(np.float32)
    top = own.copy()
    for off in (1, -1, nx, -nx, ny * nx, -ny * nx):
        nb = np.clip(idx + off, 0, flat.size - 1)
        val = flat[nb]
        if own_class:
            val = np.where(vflat[nb], val, own)
        np.maximum(top, val, out=top)
    halo = own < 0.5 * (top + float(soft_hu))
    out.reshape(-1)[idx[halo]] = True
    return out


def _thick_parts(mask: np.ndarray, spacing_mm: tuple[float, float, float], radius_mm: float) -> np.ndarray:
    """Voxels of ``mask`` in or next to its parts that a ball of ``THICK_RADIUS_MM`` fits
    in (on the THICK_GRID_MM grid, as in :func:`thick_cancellous`): the aorta, heart
    chambers; never a limb artery."""
    sx, sy, sz = spacing_mm
    f = _factors((sz, sy, sx), THICK_GRID_MM)
    cs = (sz * f[0], sy * f[1], sx * f[2])
    cells = _pool_mean(mask.view(np.uint8), f) >= 0.5
    a = tuple(max(1, int(round(radius_mm / (np.sqrt(2.0) * g)))) for g in cs)
    a = (a[0] if cs[0] <= 2.5 else 0, a[1], a[2])
    pad = [(k + 1, k + 1) for k in a]
    core = _box_erode(np.pad(cells, pad), a)[tuple(slice(k + 1, -(k + 1)) for k in a)]
    if not core.any():
        return np.zeros(mask.shape, dtype=bool)
    grown = _box_dilate(core, tuple(k + 1 for k in a))  # type: ignore[arg-type]
    out: np.ndarray = upsample(grown, f, mask.shape) & mask
    # ... and their own partial-volume edge, two voxels on the fine grid.
    for _ in range(2):
        out = dilate6(out, within=mask)
    return out


def lumen_trim(
    hu: np.ndarray,
    spacing_mm: tuple[float, float, float],
    vessel: np.ndarray,
    soft_hu: float,
) -> tuple[tuple[slice, slice, slice], np.ndarray] | None:
    """Vessel-class voxels (``vessel``: vessel and uncertain) that are not opacified
    lumen, to drop (they become classless): ``(box, drop)``, ``drop`` the bool mask
    inside ``box`` (no whole-volume mask), or None when there is nothing to test.

    * **Lumen reach**: a voxel more than ``LUMEN_REACH_STEPS`` 26-connected steps
      (through the vessel class) from any voxel at ``CONTRAST_CORE_HU`` or over is the
      noise tail of an unopacified structure: a vein at 100-170 HU whose noisy voxels
      cross the window's low end, in specks or as a fringe along the artery it runs
      with. An opacified lumen, even a 1 mm collateral blurred to 180-300 HU at 0.7 mm
      voxels, has such a voxel within three steps of all of its voxels.
    * **Halo of thin vessels** (``THIN_HALO_TRIM``): voxels darker than half-way between
      soft tissue and their brightest vessel-class 6-neighbour (:func:`_halo`), outside
      the parts a ball of ``HALO_THICK_RADIUS_MM`` fits in and their two-voxel edge. A
      limb artery 3-5 mm across is made a third fatter by its partial-volume halo above
      170 HU; an aorta's halo is a thin shell and stays (a reference aorta mask holds
      it: trimming it everywhere took the real CTA's aorta >= 170 HU from 95.6 % to
      86.4 % vessel).

    Only at fine voxels (in-plane under ``COARSE_VOXEL_MM``): at 1.5 mm a 1-2 mm
    branch never reaches 230 HU and its voxels are all halo (the small phantom's
    collateral recall 0.47 -> 0.16 with this rule).
    """
    if min(spacing_mm[0], spacing_mm[1]) >= COARSE_VOXEL_MM:
        return None
    box = bbox(vessel, LUMEN_REACH_STEPS + 1)
    if box is None:
        return None
    v = vessel[box]
    h = hu[box]
    reach = voxelwise(lambda a, x: a & (x >= LUMEN_REACH_HU), v, h)
    for _ in range(LUMEN_REACH_STEPS):
        reach = _box_dilate(reach, (1, 1, 1))
        reach &= v
    drop = voxelwise(lambda a, r: a & ~r, v, reach)
    if THIN_HALO_TRIM:
        halo = _halo(h, reach, soft_hu, own_class=True)
        if halo.any():
            thick = _thick_parts(reach, spacing_mm, HALO_THICK_RADIUS_MM)
            drop |= halo & ~thick
    return box, drop


def bone_edge(hu: np.ndarray, bone: MaskArray, soft_hu: float, share: float = BONE_EDGE_SHARE) -> np.ndarray:
    """The voxels of ``bone``'s outer layer (6-connected) whose HU is below ``soft_hu +
    share * (m - soft_hu)``, ``m`` the brightest ``bone`` voxel of their 3x3x3
    neighbourhood: partial-volume voxels holding little bone (see
    :data:`BONE_EDGE_SHARE`). A thin rib or cortex whose outer voxel is its brightest
    keeps it. Slab by slab: no full-size temporaries."""
    floor = np.int16(-32768)

    def work(b: np.ndarray, h: np.ndarray) -> np.ndarray:
        outer = b & ~erode6(b)
        m = ndi.maximum_filter(np.where(b, h, floor), size=3, mode="constant", cval=floor)
        edge: np.ndarray = outer & (h < soft_hu + share * (m.astype(np.float32) - soft_hu))
        return edge

    # (a packed mask is read slab by slab: viewer.core.packed)
    return slabwise(work, bone if isinstance(bone, PackedMask) else np.asarray(bone, dtype=bool), hu, halo=1)


def contrast_pools(
    hu: np.ndarray,
    spacing_mm: tuple[float, float, float],
    bone: np.ndarray,
    vessel_like: np.ndarray,
    seed_hu: float,
) -> tuple[tuple[slice, slice, slice], np.ndarray] | None:
    """The bone-class voxels that belong to a pool of undiluted contrast (see
    :data:`POOL_VESSEL_SHARE`), as ``(box, mask in the box)``, or None. A pool's region
    is the pool and the pieces of the rest of the bone class (within POOL_MARGIN_MM of
    the pool's box) that touch it and hold no other dense piece: a rib or the sternum
    next to the atrium, its marrow and rim included, stays bone."""
    sx, sy, sz = spacing_mm
    vox = sx * sy * sz
    dense = voxelwise(lambda b, h: b & (h >= seed_hu), bone, hu)
    box = bbox(dense, 1)
    if box is None:
        return None
    d = dense[box]
    lab = label(d, 26)
    idx = np.flatnonzero(lab)
    pl = lab.reshape(-1)[idx]
    counts, boxes = _label_boxes_at(idx, pl, lab.shape, int(pl.max()) + 1 if pl.size else 1)
    big = np.flatnonzero(counts * vox >= POOL_MIN_MM3)
    pools = []
    vl = vessel_like[box]
    for j in big:
        g1 = tuple(slice(max(0, q.start - 1), q.stop + 1) for q in boxes[j])
        piece = lab[g1] == j
        shell = dilate6(piece) & ~piece
        n = int(np.count_nonzero(shell))
        if n and np.count_nonzero(shell & vl[g1]) >= POOL_VESSEL_SHARE * n:
            pools.append(int(j))
    if not pools:
        return None
    out_box: tuple[slice, slice, slice] | None = None
    region: np.ndarray | None = None
    steps = [max(1, int(round(POOL_MARGIN_MM / s))) for s in (sz, sy, sx)]
    for i in pools:
        # the pool's box grown by the margin, in volume coordinates
        lo3 = [max(0, box[a].start + boxes[i][a].start - steps[a]) for a in range(3)]
        hi3 = [min(hu.shape[a], box[a].start + boxes[i][a].stop + steps[a]) for a in range(3)]
        g = (slice(lo3[0], hi3[0]), slice(lo3[1], hi3[1]), slice(lo3[2], hi3[2]))
        lab_g = np.zeros(tuple(h - q for q, h in zip(lo3, hi3, strict=True)), dtype=lab.dtype)
        # (the part of the grown box inside the dense box: labels outside it are 0)
        a0 = [max(lo3[a], box[a].start) for a in range(3)]
        a1 = [min(hi3[a], box[a].stop) for a in range(3)]
        dst = tuple(slice(a0[a] - lo3[a], a1[a] - lo3[a]) for a in range(3))
        src = tuple(slice(a0[a] - box[a].start, a1[a] - box[a].start) for a in range(3))
        lab_g[dst] = lab[src]
        pool = lab_g == i
        # The rest of the bone class here, in pieces: a piece holding another dense
        # piece's voxels is that bone's (its marrow, its rim: the manubrium beside the
        # superior vena cava); a piece that touches only the pool is what the pool
        # enclosed or its rim.
        rest = bone[g] & ~pool
        comp = label(rest, 26)
        n_comp = int(comp.max()) + 1
        has_other = np.zeros(n_comp, dtype=bool)
        has_other[comp[(lab_g > 0) & ~pool]] = True
        touches = np.zeros(n_comp, dtype=bool)
        touches[comp[dilate6(pool) & rest]] = True
        take = touches & ~has_other
        take[0] = False
        r = take[comp] | pool
        if region is None:
            out_box, region = g, r
        else:
            # several pools: one box around them all
            assert out_box is not None
            u0 = [min(out_box[a].start, g[a].start) for a in range(3)]
            u1 = [max(out_box[a].stop, g[a].stop) for a in range(3)]
            ub = (slice(u0[0], u1[0]), slice(u0[1], u1[1]), slice(u0[2], u1[2]))
            merged = np.zeros(tuple(q.stop - q.start for q in ub), dtype=bool)
            for bx, m in ((out_box, region), (g, r)):
                merged[tuple(slice(bx[a].start - ub[a].start, bx[a].stop - ub[a].start) for a in range(3))] |= m
            out_box, region = ub, merged
    assert out_box is not None and region is not None
    return out_box, region


def _grown(a: np.ndarray, steps: int) -> np.ndarray:
    """``a`` dilated by ``steps`` 6-connected steps."""
    for _ in range(steps):
        a = dilate6(a)
    return a


def _pieces_on_bone(mask: np.ndarray, bone: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 26-connected pieces of ``mask``: their labels, voxel counts per label and,
    per label, how many of their voxels touch ``bone`` (6-neighbours)."""
    lab = label(mask, 26)
    counts = _counts(lab, mask)
    touch = np.bincount(lab[dilate6(bone) & mask], minlength=counts.size)
    return lab, counts, touch


def thin_cortex_pieces(
    hu: np.ndarray,
    spacing_mm: tuple[float, float, float],
    vessel: np.ndarray,
    bone: np.ndarray,
    noise_hu: float,
) -> np.ndarray:
    """Vessel-class voxels (``vessel``: vessel and uncertain, ``(nz, ny, nx)``) that are
    bone cortex: pieces of the vessel class's *thin* part (what an opening by
    ``THIN_STEPS`` 6-connected steps removes; what it keeps is thick) that touch the
    bone object, hold at least ``THIN_CORTEX_MIN_MM3``, lie mostly away from thick
    vessel parts and have no homogeneous lumen voxel.

    Why: at 1.5 mm voxels a rib's cortex and a vertebra's posterior elements are a
    170-600 HU shell two to four voxels thick, under the seed threshold, drawn red; a
    lumen that thin has no voxel whose 3x3x3 neighbourhood is homogeneous either, but a
    vessel touching bone is rarely that long *and* without one such voxel, while a rib's
    ring (its marrow and its blur around a thin shell) is textured throughout. Voxels
    next to a thick part stay vessel (a lumen's own edge). Only at coarse voxels
    (``COARSE_VOXEL_MM`` in-plane and over): at finer ones a cortex reaches the seed
    threshold, while a small artery's lumen is textured enough by its edges to fail the
    homogeneity test (the phantom's tibial arteries and collaterals at 0.7 mm would go
    to bone: artery Dice 0.78 -> 0.36). Measured on the real CTA:
    vertebra voxels painted vessel 34.9 % -> 15.8 %, aorta unchanged (docs/separation.md,
    "Ribs and posterior elements on a CTA")."""
    sx, sy, sz = spacing_mm
    out = np.zeros(hu.shape, dtype=bool)
    box = bbox(vessel, 1)
    if box is None or min(sx, sy) < COARSE_VOXEL_MM:
        return out
    v = vessel[box]
    h = np.ascontiguousarray(hu[box])
    thick = v
    for _ in range(THIN_STEPS):
        thick = erode6(thick)
    for _ in range(THIN_STEPS):
        thick = dilate6(thick, within=v)
    near_thick = dilate6(thick)
    near_bone = _grown(bone[box], THIN_NEAR_BONE_STEPS)
    thin = voxelwise(lambda a, t, n: a & ~t & n, v, thick, near_bone)
    del near_bone
    if not thin.any():
        return out
    lab, counts, touch = _pieces_on_bone(thin, bone[box])
    adj = np.bincount(lab[near_thick & thin], minlength=counts.size)
    cand = (touch > 0) & (counts * sx * sy * sz >= THIN_CORTEX_MIN_MM3) & (adj <= THIN_NEAR_THICK_SHARE * counts)
    cand[0] = False
    if not cand.any():
        return out
    ok = _cortex_like(h, lab, _select(cand, lab, thin), cand, counts, noise_hu, (sz, sy, sx))
    out[box] = _select(ok, lab, thin) & ~near_thick
    return out


def _cortex_like(
    h: np.ndarray,
    lab: np.ndarray,
    sel: np.ndarray,
    cand: np.ndarray,
    counts: np.ndarray,
    noise_hu: float,
    spacing_zyx: tuple[float, float, float],
    *,
    lines: bool = False,
) -> np.ndarray:
    """Per label (bool table): the ``cand`` pieces (``sel``: their voxels) with no more
    than THIN_HOMOGENEOUS_SHARE of homogeneous lumen voxels (at CONTRAST_CORE_HU or
    over, 3x3x3 spread under LUMEN_SD_FACTOR x the noise, 25 HU at least) that are not
    lines (:func:`_line_pieces`; ``lines``: lines pass too)."""
    n = counts.size
    bright = voxelwise(lambda c, x: c & (x >= CONTRAST_CORE_HU), sel, h)
    bright[[0, -1]] = False
    bright[:, [0, -1]] = False
    bright[:, :, [0, -1]] = False
    idx = np.flatnonzero(bright)
    n_hom = np.zeros(n, dtype=np.int64)
    if idx.size:
        hom = idx[_local_sd_at(h, idx) < max(25.0, LUMEN_SD_FACTOR * noise_hu)]
        n_hom = np.bincount(lab.reshape(-1)[hom], minlength=n)
    ok: np.ndarray = cand & (n_hom <= THIN_HOMOGENEOUS_SHARE * counts)
    if ok.any() and not lines:
        ok &= ~_line_pieces(lab, ok, spacing_zyx)
    return ok


def loose_cortex_pieces(
    hu: np.ndarray,
    spacing_mm: tuple[float, float, float],
    vessel: np.ndarray,
    bone: np.ndarray,
    noise_hu: float,
) -> np.ndarray:
    """Whole pieces of the vessel class (26-connected, ``vessel``: vessel and
    uncertain) that are bone: apart from every lumen (no more than
    THIN_HOMOGENEOUS_SHARE of homogeneous lumen voxels, as in :func:`thin_cortex_pieces`),
    touching the bone, lying mostly on it (at least LOOSE_NEAR_BONE_SHARE of their
    voxels within LOOSE_NEAR_BONE_STEPS 6-steps of it), no bigger than
    LOOSE_MAX_MM3, and not a line (:func:`_line_pieces`).

    Why: at 1.5 mm the real CTA's rib heads, transverse processes and the cortex of
    vertebral bodies the seeds never reached are pieces of 10-500 voxels, cut off from
    the vessel tree, textured throughout and lying on the bone, which
    :func:`thin_cortex_pieces` misses when they are smaller than its floor or thick in
    places. A vessel lying on a bone is joined to its tree or has a homogeneous core,
    and a small artery cut off from it is a line. Coarse voxels only (as the thin
    cortex)."""
    sx, sy, sz = spacing_mm
    out = np.zeros(hu.shape, dtype=bool)
    box = bbox(vessel, LOOSE_NEAR_BONE_STEPS + 1)
    if box is None or min(sx, sy) < COARSE_VOXEL_MM:
        return out
    v = vessel[box]
    b = bone[box]
    lab, counts, touch = _pieces_on_bone(v, b)
    n_near = np.bincount(lab[_grown(b, LOOSE_NEAR_BONE_STEPS) & v], minlength=counts.size)
    mm3 = counts * sx * sy * sz
    base = (touch > 0) & (mm3 >= LOOSE_MIN_MM3)
    base[0] = False
    cand = base & (n_near >= LOOSE_NEAR_BONE_SHARE * counts) & (mm3 <= LOOSE_MAX_MM3)
    if not base.any():
        return out
    h = np.ascontiguousarray(hu[box])
    # Textured pieces first (cheap per voxel): a vessel tree never passes, its lumen is
    # homogeneous. Then those near the bone that are not lines, and the hollow ones
    # (a rib segment is hollow whether it is straight or not).
    tex = _cortex_like(h, lab, _select(base, lab, v), base, counts, noise_hu, (sz, sy, sx), lines=True)
    ok = tex & cand
    if ok.any():
        ok &= ~_line_pieces(lab, ok, (sz, sy, sx))
    rest = tex & ~ok
    if rest.any():
        ok |= _hollow_pieces(h, lab, rest, counts, v, b)
    out[box] = _select(ok, lab, v)
    return out


def _hollow_pieces(
    h: np.ndarray, lab: np.ndarray, which: np.ndarray, counts: np.ndarray, v: np.ndarray, b: np.ndarray
) -> np.ndarray:
    """Per label (bool table like ``which``): the pieces among ``which`` that enclose
    classless space (not ``v``, not ``b``) of at least LOOSE_HOLLOW_SHARE of their
    voxels, at a mean HU of at least SHELL_CAVITY_HU's low end (see
    :data:`LOOSE_HOLLOW_SHARE`). Each piece in its own box."""
    out = np.zeros(which.size, dtype=bool)
    sel = np.flatnonzero(which)
    _, boxes = _label_boxes(lab, _select(which, lab, v))
    for i in sel:
        g = tuple(slice(max(0, q.start - 1), min(n, q.stop + 1)) for q, n in zip(boxes[i], lab.shape, strict=True))
        piece = lab[g] == i
        enc = _fill_enclosed(piece) & ~v[g] & ~b[g]
        n_enc = int(np.count_nonzero(enc))
        if n_enc >= LOOSE_HOLLOW_SHARE * counts[i] and float(h[g][enc].mean()) >= SHELL_CAVITY_HU[0]:
            out[i] = True
    return out


def _line_pieces(lab: np.ndarray, which: np.ndarray, spacing_zyx: tuple[float, float, float]) -> np.ndarray:
    """Per label (bool table like ``which``): the pieces among ``which`` that are lines,
    their second principal extent (standard deviation of their voxels' positions in mm)
    under ``LINE_RATIO`` of their first: a vessel running along a bone. A cortex is a
    shell or a plate, extended in two directions."""
    n = which.size
    out = np.zeros(n, dtype=bool)
    sel = _select(which, lab, lab > 0)
    idx = np.nonzero(sel)
    pl = lab[idx]
    pos = [c.astype(np.float64) * s for c, s in zip(idx, spacing_zyx, strict=True)]
    cnt = np.bincount(pl, minlength=n).astype(np.float64)
    mean = [np.bincount(pl, weights=p, minlength=n) / np.maximum(cnt, 1) for p in pos]
    cov = np.zeros((n, 3, 3))
    for i in range(3):
        for j in range(i, 3):
            m = np.bincount(pl, weights=pos[i] * pos[j], minlength=n) / np.maximum(cnt, 1) - mean[i] * mean[j]
            cov[:, i, j] = cov[:, j, i] = m
    for k in np.flatnonzero(which & (cnt > 3)):
        ev = np.sort(np.linalg.eigvalsh(cov[k]))[::-1]
        out[k] = ev[0] > 0 and np.sqrt(max(ev[1], 0.0) / ev[0]) < LINE_RATIO
    return out


def bone_side_lumen(
    hu: np.ndarray,
    spacing_mm: tuple[float, float, float],
    part: np.ndarray,
    solid: np.ndarray,
    vessel: np.ndarray,
    uncertain: np.ndarray,
    top_hu: float | None = None,
) -> tuple[tuple[slice, slice, slice], np.ndarray] | None:
    """Arteries swallowed by a cancellous part (:func:`thick_cancellous`): ``(box,
    mask)`` of the part's voxels still in the bone class (``part & solid``) that are
    lumen, or None. ``vessel | uncertain`` is the vessel class.

    Where a small artery lies on an epiphysis whose cortex is in the vessel window (the
    phantom's ankle: 2-3 mm arteries at 300-400 HU on a 400-550 HU cortex over 200-300
    HU cancellous bone), the part grows over it for centimetres, out of the give-back's
    reach. In an axial plane such an artery is a bump on the bone's outline: an opening
    of the bone (``solid``) by an in-plane diamond of :data:`TUBE_CARVE_RADIUS_MM` removes
    it, and removes nothing of a smooth bone's surface but its corners. The bump's
    voxels at LUMEN_REACH_HU or over that connect (26-connected, through such voxels) to
    the vessel class where the artery leaves the bone are lumen; bumps of cancellous
    bone do not reach a vessel that way."""
    sx, sy = spacing_mm[0], spacing_mm[1]
    r = max(1, int(round(TUBE_CARVE_RADIUS_MM / min(sx, sy))))
    bright = voxelwise(lambda q, b, h: q & b & (h >= LUMEN_REACH_HU), part, solid, hu)
    box = bbox(bright, 2 * r + 1)
    if box is None:
        return None
    o = solid[box]
    for _ in range(r):
        o = erode6(o, (1, 2))
    for _ in range(r):
        o = dilate6(o, axes=(1, 2))
    cand = bright[box] & ~o
    del o, bright
    if not cand.any():
        return None
    lab = label(cand, 26)
    # A piece is lumen when one of its voxels has a vessel voxel among its 26
    # neighbours (looked up at the piece's voxels only: they are few).
    idx = np.flatnonzero(cand)
    v = np.pad(vessel[box] | uncertain[box], 1)
    st = v.strides
    coords = np.unravel_index(idx, cand.shape)
    base = sum((c + 1) * (s // v.itemsize) for c, s in zip(coords, st, strict=True))
    flat = v.reshape(-1)
    touch = np.zeros(idx.size, dtype=bool)
    for dz in (-1, 0, 1):
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                if dz or dy or dx:
                    off = (dz * st[0] + dy * st[1] + dx * st[2]) // v.itemsize
                    touch |= flat[base + off]
    hit = np.zeros(int(lab.max()) + 1, dtype=bool)
    hit[lab.reshape(-1)[idx[touch]]] = True
    hit[0] = False
    tube = _select(hit, lab, cand)
    del lab
    if TUBE_EDGE_STEPS and top_hu is not None and tube.any():
        # The diamond's tip reaches a voxel or two into the bump from the bone's side:
        # the artery's edge on the bone, taken back up to the lumen's brightness (a
        # cortex it lies on is brighter).
        # (in the tube's box grown by the steps: the growth never leaves it)
        tb = bbox(tube, TUBE_EDGE_STEPS)
        assert tb is not None
        inner = tuple(slice(b.start + t.start, b.start + t.stop) for b, t in zip(box, tb, strict=True))
        edge_ok = voxelwise(
            lambda q, b, h: q & b & (h >= LUMEN_REACH_HU) & (h <= top_hu), part[inner], solid[inner], hu[inner]
        )
        t_in = tube[tb]
        front = t_in
        for _ in range(TUBE_EDGE_STEPS):
            front = dilate6(front, within=edge_ok, without=t_in)
            t_in |= front
        tube[tb] = t_in
    # A lumen piece is a tube no wider than the diamond that carved it: its volume over
    # its length (the diagonal of its box) at most pi r^2. The rough surface of
    # textured cancellous bone is carved too, in many small bumps that join into sheets
    # round the bone's end (the textured phantom's ankle: 25-27 mm^2, its arteries'
    # pieces 0.8-5.0).
    t_idx = np.flatnonzero(tube)
    if t_idx.size:
        t_lab = sparse_components(t_idx, tube.shape)
        spans = _piece_spans(t_lab, np.unravel_index(t_idx, tube.shape))
        length2 = np.sum(
            [((span + 1) * step) ** 2 for span, step in zip(spans, (spacing_mm[2], sy, sx), strict=True)], axis=0
        )
        area = np.bincount(t_lab) * sx * sy * spacing_mm[2] / np.sqrt(length2)
        wide = area > np.pi * TUBE_CARVE_RADIUS_MM**2
        if wide.any():
            tube.reshape(-1)[t_idx[wide[t_lab]]] = False
    return box, tube


def shell_enclosed_cancellous(
    hu: np.ndarray,
    spacing_mm: tuple[float, float, float],
    cand: np.ndarray,
    bone: np.ndarray,
) -> np.ndarray:
    """Cancellous bone inside a cortex too dim for the seed threshold: bool mask.

    Why: on the real chest CTA (1.5 mm) a vertebral body's cortex is a ring at 170-400
    HU -- in the vessel window, under any cortical threshold -- around cancellous bone
    at 80-170 HU, and the ring joins the posterior arch, which is dense. So: spaces
    enclosed (in 3D or in an axial, coronal or sagittal plane) by window voxels or
    bone, whose mean HU is cancellous (SHELL_CAVITY_HU: above muscle and the liquefied
    contents of a calcified mass, below the window), of at least SHELL_CAVITY_MIN_ML,
    next to the bone object, walled by voxels darker than a lumen (a thrombus lining
    the aorta is walled by lumen), are bone, and so is the window ring that holds them.
    (Measured: closing the wall first, or judging axial slices one by one, merged or
    split the vertebral bodies' spaces badly: vertebra voxels painted vessel 72-74 %
    against 35 % this way; docs/separation.md.)"""
    sx, sy, sz = spacing_mm
    empty = np.zeros(hu.shape, dtype=bool)
    box = bbox(bone, 4)
    if box is None:
        return empty
    c = cand[box]
    b = bone[box]
    f = _factors((sz, sy, sx), FILL_GRID_MM)
    if sx < 0.9:
        f = (f[0], max(2, f[1]), max(2, f[2]))
    cs = (sz * f[0], sy * f[1], sx * f[2])
    solid = pool_any(c | b, f)
    enclosed = _fill_enclosed(solid)
    if not enclosed.any():
        return empty
    lab = label(enclosed, 6)
    n = int(lab.max()) + 1
    hu_c = _pool_mean(hu[box], f)
    cnt = np.bincount(lab.ravel(), minlength=n)
    mean = np.bincount(lab.ravel(), weights=hu_c.ravel(), minlength=n) / np.maximum(cnt, 1)
    vol_ml = cnt * cs[0] * cs[1] * cs[2] / 1000.0
    bone_c = pool_any(b, f)
    touches = np.zeros(n, dtype=bool)
    touches[np.unique(lab[_grown(bone_c, int(SHELL_TOUCH_STEPS)) & enclosed])] = True
    ok = (mean >= SHELL_CAVITY_HU[0]) & (mean <= SHELL_CAVITY_HU[1]) & (vol_ml >= SHELL_CAVITY_MIN_ML) & touches
    ok[0] = False
    if not ok.any():
        return empty
    cand_c = pool_any(c, f)
    stats = cc3d.statistics(lab)
    for i in np.flatnonzero(ok):
        bb = stats["bounding_boxes"][i]
        g = tuple(slice(max(0, q.start - 1), min(nn, q.stop + 1)) for q, nn in zip(bb, lab.shape, strict=False))
        piece = lab[g] == i
        ring_c = dilate6(piece) & ~piece & cand_c[g] & ~bone_c[g]
        if ring_c.any() and float(hu_c[g][ring_c].mean()) > CANCELLOUS_MAX_HU:
            ok[i] = False
    if not ok.any():
        return empty
    cav = upsample(ok[lab], f, c.shape)
    cav_full = cav & (hu[box] < SHELL_CAVITY_HU[1] + 100)
    # The ring: window voxels touching the space (a second step only below a lumen's
    # brightness: not into an artery lying on the bone).
    ring = np.zeros(c.shape, dtype=bool)
    front = cav_full
    for step in range(2):
        front = dilate6(front) & c & ~ring
        front &= hu[box] < (CANCELLOUS_MAX_HU if step else SHELL_RING_MAX_HU)
        ring |= front
    out = np.zeros(hu.shape, dtype=bool)
    out[box] = cav_full | ring
    return out


#: :func:`textured_candidates`: the smoothed HU's gradient (HU per voxel) under which a
#: voxel lies inside a region, not on an edge. Measured 15-30 (2026-12-07, evening) on
#: the real CTA resampled to 0.75 mm pixels (it is 1.5 mm, where the rule is off) and
#: the default phantom with textured cancellous bone: at 30 the CTA's aorta >= 170 HU
#: went from 0.6 % to 9.6 % bone (its wall beside the spine joined the vertebra's
#: thick part); at 20 it is unchanged (0.59 %) and the textured phantom's
#: artery+collateral Dice is 0.835 (0.756 at 15).
FLAT_GRADIENT_HU = 20.0
#: ... and only with slices this thin: the 2 x 2 x 2 blocks of a scan with 16 mm slices
#: (KiTS) mix slices 32 mm apart (its dense voxels painted vessel 23.6 -> 25.5 % with
#: the rule).
TEXTURED_MAX_SLICE_MM = 2.5


def textured_candidates(
    hu: np.ndarray, lo: float, hi: float, body: np.ndarray, bone: np.ndarray, calc: np.ndarray
) -> np.ndarray:
    """Voxels inside the body, outside ``bone`` and ``calc``, in 2 x 2 x 2 blocks whose
    smoothed mean HU (the block means' 3 x 3 x 3 mean: about 6 voxels across) is in the
    window ``[lo, hi]`` and whose smoothed mean's gradient is under
    :data:`FLAT_GRADIENT_HU` per voxel: the inside of a region whose voxels straddle the
    window's low end, which is what textured cancellous bone is (real cancellous bone's
    local spread is 70-160 HU at 1 mm, around 150-300 HU: a third or more of its voxels
    fall under 170 HU). Without them :func:`thick_cancellous` sees textured cancellous
    bone as cells under half in the window, and its parts fall apart into thin pieces
    that pass as vessels (the textured phantom: artery+collateral Dice 0.189 without
    them, 0.835 with them). The flatness keeps out the partial-volume ring of a bright
    lumen, whose mean is in the window too. On the 2-voxel grid: an eighth of the work
    (a full-grid first version took 2.5 s on 512 x 512 x 600, this one 0.9 s).

    Used at fine voxels only (in-plane under COARSE_VOXEL_MM). At 1.5 mm the first
    version also lifted the small phantom's artery+collateral Dice from 0.268 to 0.666
    (its trabecular bone in bone 0.737 -> 0.979), but its main arteries' recall fell
    from 0.877 to 0.846 (under the 0.85 of ``test_arteries_survive_at_coarse_voxels``):
    the popliteal on the tibial plateau joins the plateau's thick part. Not decided
    yet (docs/separation.md)."""
    from scipy import ndimage as ndi

    f = (2, 2, 2)
    pooled = _pool_mean(hu, f)
    m = np.empty_like(pooled)

    def smooth(z0: int, z1: int) -> None:
        h0, h1 = max(0, z0 - 1), min(pooled.shape[0], z1 + 1)
        m[z0:z1] = ndi.uniform_filter(pooled[h0:h1], 3, mode="nearest")[z0 - h0 : z1 - h0]

    run_slabs(smooth, pooled.shape)
    ok = (m >= np.float32(lo)) & (m <= np.float32(hi))
    # Central differences inside (the block grid's step is two voxels); the grid's
    # outer layer counts as an edge.
    g2 = np.zeros(m.shape, dtype=np.float32)
    inner = tuple(slice(1, -1) for _ in range(3))
    for ax in range(3):
        hi_s = [slice(1, -1)] * 3
        lo_s = [slice(1, -1)] * 3
        hi_s[ax], lo_s[ax] = slice(2, None), slice(None, -2)
        d = m[tuple(hi_s)] - m[tuple(lo_s)]
        d *= d
        g2[inner] += d
    limit = np.float32((2.0 * 2.0 * FLAT_GRADIENT_HU) ** 2)  # (2x the step, 2 voxels a block)
    flat = np.zeros(m.shape, dtype=bool)
    flat[inner] = g2[inner] < limit
    ok &= flat
    del g2, flat
    out = upsample(ok, f, hu.shape)
    voxelwise(lambda o, b, bo, c: o & b & ~bo & ~c, out, body, bone, calc, out=out)
    return out


def thick_cancellous(
    hu: np.ndarray,
    spacing_mm: tuple[float, float, float],
    cand: np.ndarray,
    bone: np.ndarray,
    lumen_hu: float | None,
    noise_hu: float,
    homogeneous: np.ndarray | None = None,
    hu_hi: float = 600.0,
    soft_hu: float = 40.0,
) -> tuple[np.ndarray, float]:
    """Cancellous bone the cortical seeds did not enclose, told from lumen by thickness,
    brightness and texture: ``(bone, touching)`` boolean masks (full grid).

    At the knee and ankle a thin subchondral cortex blurs under any cortical threshold,
    so the epiphysis (150-400 HU, inside the vessel window) is not enclosed and would
    be painted red, with the popliteal artery lying on it. What tells them apart:

    * thickness: the parts of the window that a ball of :data:`THICK_RADIUS_MM` fits
      in are epiphyses, vertebral bodies, the aorta, heart chambers -- never a limb
      artery (the popliteal is 5-6 mm across);
    * a thick part is *lumen* when its HU is at the scan's own lumen level (the median
      of the homogeneous lumen core found by :func:`detect_contrast`) and it is
      homogeneous; it is *bone* when it touches the bone object and is darker than the
      lumen by more than :data:`LUMEN_LEVEL_MARGIN_HU` (or 3x the noise), or textured
      (trabecular bone: local spread over 2x the noise in most of it);
    * the bone part is grown back to its boundary within the window.

    Returns the bone part and the lumen level used (-1e9 when there was none); the
    caller gives back to the vessels what of the part touches them at lumen brightness.
    """
    sx, sy, sz = spacing_mm
    f = _factors((sz, sy, sx), THICK_GRID_MM)
    cs = (sz * f[0], sy * f[1], sx * f[2])
    empty = np.zeros(hu.shape, dtype=bool)
    nolevel = lumen_hu if lumen_hu is not None else -1e9
    box = bbox(cand, max(f) * 3)
    if box is None:
        return empty, nolevel
    c = cand[box]
    # Coarse cells mostly in the window.
    frac = _pool_mean(c.view(np.uint8), f)
    cand_c = frac >= 0.5
    a = tuple(max(1, int(round(THICK_RADIUS_MM / (np.sqrt(2.0) * g)))) for g in cs)
    a = (a[0] if cs[0] <= 2.5 else 0, a[1], a[2])
    pad = [(k + 1, k + 1) for k in a]
    core = _box_erode(np.pad(cand_c, pad), a)[tuple(slice(k + 1, -(k + 1)) for k in a)]
    if not core.any():
        return empty, nolevel
    # Each thick part grown back to its boundary within the window (the erosion's size
    # + 1), then labelled: a piece is a thick part with its edge.
    zone_c = core
    # (Stopping this growth at cells as bright as the lumen was measured and dropped:
    # it stopped at the phantom's brighter cancellous cells too; see docs/separation.md.
    # Arteries on the bone get their lumen back through the give-back in separate.)
    grow_c = cand_c
    for _ in range(max(a) + 1):
        zone_c = _box_dilate(zone_c, (min(1, a[0]), 1, 1)) & (grow_c | core)
    lab_c = label(zone_c, 26)
    n = int(lab_c.max()) + 1
    # A voxel's part is its cell's label where it is in the window (0 elsewhere): read
    # at the voxels that need it (_cell_labels), no full-grid label image.
    hb = np.ascontiguousarray(hu[box])
    zone_all = upsample(lab_c > 0, f, c.shape)
    zone_all &= c
    # Edge layer (two voxels) vs interior: cortex is brighter than what it holds; a
    # lumen's edge is darker than its middle (partial volume with the wall).
    inner = erode6(erode6(zone_all))
    edge = zone_all & ~inner
    deep = erode6(inner)
    l_edge = _cell_labels(lab_c, f, edge)
    n_edge = np.bincount(l_edge, minlength=n)
    m_edge = np.bincount(l_edge, weights=hb[edge], minlength=n) / np.maximum(n_edge, 1)
    del l_edge
    l_deep = _cell_labels(lab_c, f, deep)
    n_deep = np.bincount(l_deep, minlength=n)
    m_deep = np.bincount(l_deep, weights=hb[deep], minlength=n) / np.maximum(n_deep, 1)
    del l_deep, inner, edge
    bright_edge = (n_deep > 0) & (m_edge - m_deep >= max(BONE_EDGE_CONTRAST_HU, 3.0 * noise_hu))
    # Texture in the interior (sampled): trabecular bone's spread is several x noise.
    dl = deep.copy()
    dl[[0, -1]] = False
    dl[:, [0, -1]] = False
    dl[:, :, [0, -1]] = False
    idx = np.flatnonzero(dl)
    textured_share = np.zeros(n)
    if idx.size:
        idx = idx[:: max(1, idx.size // 200_000)]
        sd = _local_sd_at(hb, idx)
        pl = lab_c[
            tuple(
                np.minimum(q // k, m - 1)
                for q, k, m in zip(np.unravel_index(idx, c.shape), f, lab_c.shape, strict=True)
            )
        ]
        tex = sd >= LUMEN_SD_FACTOR * max(noise_hu, 12.5)
        textured_share = np.bincount(pl, weights=tex, minlength=n) / np.maximum(np.bincount(pl, minlength=n), 1)
    # The lumen level from homogeneous lumen cores *outside* the thick parts (vessels,
    # not a smooth epiphysis that may be as large as all the arteries together).
    if homogeneous is not None and homogeneous.size:
        zz, yy, xx = np.unravel_index(homogeneous, hu.shape)
        inb = (zz >= box[0].start) & (zz < box[0].stop) & (yy >= box[1].start) & (yy < box[1].stop)
        inb &= (xx >= box[2].start) & (xx < box[2].stop)
        thin = np.ones(homogeneous.size, dtype=bool)
        thin[inb] = ~zone_all[zz[inb] - box[0].start, yy[inb] - box[1].start, xx[inb] - box[2].start]
        if np.count_nonzero(thin) >= 50:
            lumen_hu = float(np.median(flat_reader(hu)[homogeneous[thin]]))
    # Contact with the bone object, directly or through window voxels darker than the
    # lumen (the cancellous bone of a metaphysis joins the end to the shaft).
    near = dilate6(dilate6(bone[box]))
    if lumen_hu is not None:
        dark = c & (hb < min(lumen_hu - 2.5 * noise_hu, CANCELLOUS_MAX_HU))
        dl_lab = label(dark | zone_all, 26)
        hit = np.zeros(int(dl_lab.max()) + 1, dtype=bool)
        hit[np.unique(dl_lab[near & (dark | zone_all)])] = True
        hit[0] = False
        near = near | hit[dl_lab]
    touches = np.zeros(n, dtype=bool)
    touches[np.unique(_cell_labels(lab_c, f, near & zone_all))] = True
    if lumen_hu is None:
        darker = np.ones(n, dtype=bool)
    else:
        darker = m_deep < lumen_hu - max(LUMEN_LEVEL_MARGIN_HU, 3.0 * noise_hu)
    # A lumen's edge is darker than its middle; cancellous bone's is not (its cortex).
    not_lumen_edge = (n_deep > 0) & (m_edge >= m_deep)
    # Darker than the lumen *and* in cancellous bone's range: the lumen level drifts
    # along a scan with the bolus (the real CTA's thin vessels 532 HU, its lower aorta
    # 391), so darkness alone does not make bone.
    much_darker = darker & (m_deep < CANCELLOUS_MAX_HU)
    if lumen_hu is not None:
        # At coarse voxels the thin vessels' cores are dimmed by partial volume (the
        # 1.5 mm phantom: 310 HU for 400 HU arteries), so a part in cancellous bone's
        # range needs only to be a little darker than them.
        much_darker |= (m_deep < CANCELLOUS_MAX_HU) & (m_deep < lumen_hu - max(15.0, 1.5 * noise_hu))
    is_bone = bright_edge | (touches & (much_darker | (darker & not_lumen_edge) | (textured_share >= 0.5)))
    is_bone[0] = False
    if not is_bone.any():
        return empty, lumen_hu if lumen_hu is not None else -1e9
    # The zone's cells hold cancellous voxels that noise took under the window too.
    # (is_bone of a voxel's part is is_bone of its cell's label where it is in the window)
    zone_cells = upsample(is_bone[lab_c], f, c.shape)
    out_b = np.zeros(hu.shape, dtype=bool)
    voxelwise(lambda z, w, h: z & (w | ((h >= ZONE_FLOOR_HU) & (h <= hu_hi))), zone_cells, c, hb, out=out_b[box])
    return out_b, (lumen_hu if lumen_hu is not None else -1e9)


#: Margin (voxels, in-plane) of the body's box: more than any box margin the stages use
#: (4 around the bone seeds, 3 coarse cells around the window voxels), so every box a
#: stage takes inside the crop is the box it would take in the whole volume.
CROP_MARGIN = 12
#: The crop is used when it leaves out at least this share of the voxels (it costs a
#: copy of the HU inside it).
CROP_MIN_SAVING = 0.1


@dataclass(frozen=True, eq=False)
class _Prepared:
    """What the separation needs before the thresholds matter (see :func:`_prepare`):
    the body in its box, the box, and the scan's soft-tissue mode, cancellous floor and
    noise (HU)."""

    key: tuple[object, ...]
    #: (packed in the cache, a bool array where a separation uses it)
    body_c: MaskArray
    crop: tuple[slice, slice, slice] | None
    soft_hu: float
    cancellous_hu: float
    noise_hu: float
    cached: bool = False


_PREP_LOCK = threading.Lock()
#: The last volumes' threshold-independent stages, most recent first: two, so a big
#: scan's preview separation (every k-th slice, a volume of its own) does not push the
#: whole scan's body out before its full masks are made.
_PREP_CACHE: list[_Prepared] = []
_PREP_CACHE_SIZE = 2


def release_prepare_cache() -> None:
    """Drop the cached threshold-independent stages (each holds its volume's body mask
    in the body's box: a third of the int16 volume's bytes on a real chest). For a
    one-shot caller, e.g. ``vessel-viewer render``, once its masks are made: no
    threshold edit will follow, and its render needs the memory."""
    with _PREP_LOCK:
        _PREP_CACHE.clear()


def volume_key(hu: np.ndarray) -> tuple[object, ...]:
    """Identity of a volume's voxels for the threshold-independent cache: its buffer,
    layout and a sparse sample of its voxels (a few thousand; a volume is not edited in
    place, but a new one may reuse a freed buffer). A volume derived from it (e.g. every
    k-th slice, made anew for each preview separation) names its source by this plus
    how it was derived, as ``source_key`` of :func:`separate`."""
    sample = hu[:: max(1, hu.shape[0] // 16), :: max(1, hu.shape[1] // 32), :: max(1, hu.shape[2] // 32)]
    return (
        hu.__array_interface__["data"][0],
        hu.shape,
        hu.strides,
        hu.dtype.str,
        hash(np.ascontiguousarray(sample).tobytes()),
    )


def _fingerprint(
    hu: np.ndarray,
    spacing: tuple[float, float, float],
    remove_table: bool,
    source_key: tuple[object, ...] | None = None,
) -> tuple[object, ...]:
    """Identity of a volume for the cache (:func:`volume_key`, or the caller's
    ``source_key`` for a volume made from another), its shape, spacing and the table
    setting."""
    ident = volume_key(hu) if source_key is None else ("derived", source_key, hu.shape, hu.dtype.str)
    return (ident, spacing, remove_table)


def _box_view(hu: np.ndarray, box: tuple[slice, slice, slice] | None) -> np.ndarray:
    """The HU inside ``box`` as a read-only view, not a copy: the separation works in the
    body's box, and a copy of it was two thirds of the volume's bytes more at the
    separation's memory peak (512 x 512 x 2000: 4.0x -> 3.7x the volume; the same
    labels, no slower: its slab operations read whole rows either way)."""
    view = hu[box] if box is not None else hu[...]
    view.setflags(write=False)
    return view


def _prepare(
    hu: np.ndarray,
    spacing: tuple[float, float, float],
    remove_table: bool,
    source_key: tuple[object, ...] | None = None,
) -> tuple[_Prepared, np.ndarray]:
    """Body mask, crop box, soft-tissue mode, cancellous floor and noise of a volume, and
    the HU inside the crop (a read-only view): none depends on the thresholds, so a threshold
    edit on the same volume takes them from a one-entry cache (the body is the most
    expensive stage after the bone). ``source_key``: see :func:`separate`."""
    key = _fingerprint(hu, spacing, remove_table, source_key)
    with _PREP_LOCK:
        found = next((p for p in _PREP_CACHE if p.key == key), None)
        if found is not None:
            _PREP_CACHE.remove(found)
            _PREP_CACHE.insert(0, found)
    if found is not None:
        body = _unpacked_slabwise(found.body_c)
        hit = _Prepared(found.key, body, found.crop, found.soft_hu, found.cancellous_hu, found.noise_hu, cached=True)
        return hit, _box_view(hu, found.crop)
    whole = (slice(0, hu.shape[0]), slice(0, hu.shape[1]), slice(0, hu.shape[2]))
    crop = None
    if remove_table:
        cells = _body_cells(hu, spacing)
        b = _body_box(cells, hu.shape, (0, CROP_MARGIN, CROP_MARGIN))
        if b is not None:
            b = (whole[0], b[1], b[2])
            kept = (b[1].stop - b[1].start) * (b[2].stop - b[2].start) / (hu.shape[1] * hu.shape[2])
            crop = b if kept <= 1.0 - CROP_MIN_SAVING else None
        body_c = _body_in_box(hu, cells, crop if crop is not None else whole)
    else:
        body_c = np.ones(hu.shape, dtype=bool)
    body_c.setflags(write=False)  # (nothing writes the body mask)
    # Soft-tissue mode and the cancellous floor from the scan's own histogram (a strided
    # sample of the body; the body outside the crop is empty).
    step = max(1, int(round((hu.size / 2_000_000) ** (1 / 3))))
    grid = [np.arange(0, n, step) for n in hu.shape]
    box = crop if crop is not None else whole
    body_s = np.zeros(tuple(g.size for g in grid), dtype=bool)
    inb = [(g >= q.start) & (g < q.stop) for g, q in zip(grid, box, strict=False)]
    body_s[np.ix_(*inb)] = body_c[np.ix_(*[g[m] - q.start for g, m, q in zip(grid, inb, box, strict=False)])]
    samp = hu[::step, ::step, ::step][body_s]
    mode = _hist_mode(samp.astype(np.float32), -60.0, 120.0) if samp.size else None
    soft = 40.0 if mode is None else mode
    cancellous = float(np.clip(soft + 100.0, 120.0, 160.0))
    hu_c = _box_view(hu, crop)
    noise = noise_sd(hu_c, body_c)
    prep = _Prepared(key, body_c, crop, soft, cancellous, noise)
    # The cache keeps the body packed, one bit a voxel (viewer.core.packed): it stays
    # while the scan is shown, through the render's memory peak; a separation that
    # finds it unpacks it for its own run (0.36x the int16 volume as a bool array, 0.04x
    # packed, for the chest tiled to 2000 slices; docs/benchmarks.md).
    kept = replace(prep, body_c=packed_slabwise(body_c.shape, lambda z0, z1: body_c[z0:z1]))
    with _PREP_LOCK:
        _PREP_CACHE[:] = [kept, *_PREP_CACHE][:_PREP_CACHE_SIZE]
    return prep, hu_c


def packed_slabwise(shape: tuple[int, ...], slab_at: Callable[[int, int], np.ndarray]) -> PackedMask:
    """A :class:`~viewer.core.packed.PackedMask` of ``shape`` made on the slab pool
    from ``slab_at(z0, z1)`` (bool slices z0..z1): no bool array of the whole volume on
    the way."""
    out = PackedMask.zeros(shape)

    def work(z0: int, z1: int) -> None:
        out.put(z0, slab_at(z0, z1))

    run_slabs(work, shape)
    return out.freeze()


def _unpacked_slabwise(mask: MaskArray) -> np.ndarray:
    """``np.asarray(mask)`` on the slab pool (read-only: callers share nothing, but
    nothing writes a body mask)."""
    if not isinstance(mask, PackedMask):
        return mask
    out = np.empty(mask.shape, dtype=bool)

    def work(z0: int, z1: int) -> None:
        out[z0:z1] = mask[z0:z1]

    run_slabs(work, mask.shape)
    out.setflags(write=False)
    return out


def compose_labels(
    bone: np.ndarray,
    calcification: np.ndarray,
    vessel: np.ndarray | None,
    uncertain: np.ndarray | None,
    body: np.ndarray | None,
    shape: tuple[int, ...] | None = None,
    crop: tuple[slice, slice, slice] | None = None,
) -> np.ndarray:
    """The label volume (codes of :data:`LABELS`) from the class masks, in one slab pass:
    bone over calcification over uncertain over vessel; outside ``body`` (when given)
    everything is removed. With ``shape`` and ``crop`` the masks are the part ``crop``
    of a volume of ``shape`` (all slices: the crop is in-plane), outside which every
    voxel is removed."""
    full = np.empty(shape if shape is not None else bone.shape, dtype=np.uint8)
    labels = full
    if crop is not None:
        # outside the crop: removed (the slabs of the crop are written below)
        labels = full[crop]
        y, x = crop[1], crop[2]
        full[:, : y.start] = REMOVED
        full[:, y.stop :] = REMOVED
        full[:, y, : x.start] = REMOVED
        full[:, y, x.stop :] = REMOVED

    def work(z0: int, z1: int) -> None:
        out = labels[z0:z1]
        out[...] = NONE
        for m, code in ((vessel, VESSEL), (uncertain, UNCERTAIN), (calcification, CALCIFICATION), (bone, BONE)):
            if m is not None:
                np.copyto(out, code, where=m[z0:z1])
        if body is not None:
            np.copyto(out, REMOVED, where=~body[z0:z1])

    run_slabs(work, bone.shape)
    return full


def write_sparse(dst: np.ndarray, mask: np.ndarray) -> None:
    """``dst[...] = mask`` for a ``dst`` that is all False (fresh ``np.zeros``): nothing
    when ``mask`` is empty, voxel by voxel when it is sparse (under one True in
    SPARSE_WRITE_SHARE), so the pages of ``dst`` that hold no True voxel are never
    written and stay unmapped."""
    n = int(np.count_nonzero(mask))
    if n == 0:
        return
    if n * SPARSE_WRITE_SHARE < mask.size:
        dst[mask] = True
    else:
        np.copyto(dst, mask)


def split_labels(
    labels: np.ndarray, codes: tuple[int, ...], crop: tuple[slice, slice, slice] | None = None
) -> list[np.ndarray]:
    """``[labels == c for c in codes]`` in one slab pass over ``labels``; with ``crop``
    only inside it (False outside). A class that is sparse in a slab is written voxel
    by voxel, so the pages of its mask it never reaches stay untouched (``np.zeros``
    maps them only when written): an empty or sparse class (the vessel class of a scan
    without contrast, calcification, hidden voxels) costs next to no resident memory."""
    out = [np.zeros(labels.shape, dtype=bool) for _ in codes]
    box = crop if crop is not None else (slice(None),) * 3
    lab = labels[box]
    views = [o[box] for o in out]

    def work(z0: int, z1: int) -> None:
        sl = lab[z0:z1]
        for o, c in zip(views, codes, strict=True):
            write_sparse(o[z0:z1], sl == c)

    run_slabs(work, lab.shape)
    return out


#: Added to the verdict at coarse pixels (COARSE_VOXEL_MM or more), where the check
#: rests on fewer voxels and has failed both ways (smoothed cancellous bone taken for
#: lumen before the homogeneous-share and tube tests; docs/separation.md, "What does
#: not hold yet"): which setting overrules it.
COARSE_VERDICT_HINT_YES = (
    "; at pixels this coarse the check can take smooth dense tissue for lumen: if bone shows red, set Contrast to no"
)
COARSE_VERDICT_HINT_NO = (
    "; at pixels this coarse the check can miss short or faint arteries: "
    "if the scan is an angiogram, set Contrast to yes"
)


def _verdict_words(lumen: LumenCore) -> str:
    """What :func:`detect_contrast` alone concludes, and from what."""
    words = f"{'contrast' if lumen.found else 'no contrast'}: largest lumen-like piece {lumen.largest_mm3:.0f} mm^3"
    if lumen.largest_mm3 < CONTRAST_MIN_MM3:
        words += f", longest thin opacified tube {lumen.tube_mm:.0f} mm"
    return words


def separate(
    hu: np.ndarray,
    spacing_mm: tuple[float, float, float] | None,
    vessel_window_hu: tuple[float, float],
    bone_threshold_hu: float | None = None,
    *,
    remove_table: bool = True,
    contrast: bool | None = None,
    progress: ProgressFn | None = None,
    source_key: tuple[object, ...] | None = None,
) -> Separation:
    """Classify every voxel (see the module docstring for the steps and the reasons).

    Args:
        hu: HU array ``(nz, ny, nx)``.
        spacing_mm: ``(x, y, z)`` voxel size in mm (None: 1 mm isotropic).
        vessel_window_hu: the vessel window ``(low, high)``; its low end is also where the
            bone's partial-volume rim stops mattering.
        bone_threshold_hu: cortical seed threshold; None takes it from the scan (above
            the vessel window's high end and the lumen's HU, at least 450 HU).
        remove_table: drop everything outside the body (couch, holders) first.
        contrast: force the contrast decision (None: detect it).
        progress: optional ``progress(fraction, message)``; may raise LoadCancelled.
        source_key: where ``hu`` is a volume made anew from another each time (a
            preview's every k-th slice), the source's :func:`volume_key` and how it was
            derived: the threshold-independent stages are then found in the cache
            again on the next call (its buffer differs each time).
    """
    hu = np.asarray(hu)
    if hu.ndim != 3 or min(hu.shape) < 1:
        raise ViewerError(f"separation needs a 3D volume, got shape {hu.shape}")
    if not np.issubdtype(hu.dtype, np.number):
        raise ViewerError(f"separation needs HU numbers, got dtype {hu.dtype}")
    if np.issubdtype(hu.dtype, np.floating) and not np.isfinite(hu).all():
        raise ViewerError("separation needs finite HU values (the volume holds NaN or infinity)")
    sx, sy, sz = _spacing(spacing_mm)
    vox = sx * sy * sz
    lo, hi = (float(v) for v in vessel_window_hu)
    if not lo < hi:
        raise ViewerError(f"vessel window must be low < high HU, got {vessel_window_hu}")
    t: dict[str, float] = {}
    t0 = time.perf_counter()
    report(progress, 0.0, "separation: body")
    prep, hu_c = _prepare(hu, (sx, sy, sz), remove_table, source_key)
    t["body_s"] = time.perf_counter() - t0
    if prep.cached:
        t["cached_body"] = 1.0
    full_shape, crop = hu.shape, prep.crop
    # Everything from here on runs in the body's box (what lies outside is removed).
    body, hu = _unpacked_slabwise(prep.body_c), hu_c
    soft, cancellous, noise = prep.soft_hu, prep.cancellous_hu, prep.noise_hu
    seed = float(bone_threshold_hu) if bone_threshold_hu is not None else max(450.0, hi + 50.0)

    report(progress, 0.2, "separation: bone")
    t1 = time.perf_counter()
    bo = bone_object(
        hu, (sx, sy, sz), seed, cancellous, body, lumen_high_hu=min(hi, seed), noise_hu=noise, weak_hu=WEAK_SEED_HU
    )
    bone = bo.bone
    calc = bo.seeds_small
    # (not kept: the bone mask is replaced by a grown copy below, and a second
    # reference would hold the first one, a box-sized array, until the end)
    del bo
    t["bone_s"] = time.perf_counter() - t1

    report(progress, 0.5, "separation: contrast")
    t2 = time.perf_counter()
    lumen = detect_contrast(hu, (sx, sy, sz), bone, body, min(hi, seed), noise, soft)
    core_mm3, lumen_hu = lumen.total_mm3, lumen.level_hu
    # The largest single piece decides, not the sum: a long scan without contrast adds
    # up specks (the real chest tiled to 600 slices: 343 mm^3 in all, 86 in one piece).
    has_contrast = lumen.found if contrast is None else bool(contrast)
    t["contrast_s"] = time.perf_counter() - t2

    report(progress, 0.6, "separation: vessels")
    t3 = time.perf_counter()
    vessel = uncertain = None
    if has_contrast:
        cand = voxelwise(lambda h, b, bo, c: (h >= lo) & (h <= hi) & b & ~bo & ~c, hu, body, bone, calc)
        t_thick = time.perf_counter()
        # (textured cancellous bone dips under the window's low end: its flat, smoothed
        # window voxels count too, so its thick parts hold together; fine voxels and
        # slices of 2.5 mm or less only, see textured_candidates)
        cand_t = cand
        if min(sx, sy) < COARSE_VOXEL_MM and sz <= TEXTURED_MAX_SLICE_MM:
            cand_t = textured_candidates(hu, lo, hi, body, bone, calc) | cand
        thick_bone, level = thick_cancellous(hu, (sx, sy, sz), cand_t, bone, lumen_hu, noise, lumen.samples, hi, soft)
        t["thick_s"] = time.perf_counter() - t_thick
        if thick_bone.any():
            bone |= thick_bone
            cand &= ~thick_bone
        t_sh = time.perf_counter()
        shell_bone = shell_enclosed_cancellous(hu, (sx, sy, sz), cand, bone)
        t["shell_bone_s"] = time.perf_counter() - t_sh
        if shell_bone.any():
            bone |= shell_bone
            cand &= ~shell_bone
        # The partial-volume rim of bone, grown only through window voxels.
        rim = np.zeros(hu.shape, dtype=bool)
        front = bone
        lumen_bright = None if level < -1e8 else level - 3.0 * noise
        # Past the first voxel the bone's partial volume has faded; what is still as
        # bright as the lumen there is a vessel lying on the bone.
        later = cand if lumen_bright is None else voxelwise(lambda c, h: c & (h < lumen_bright), cand, hu)
        for step in range(RIM_STEPS):
            front = dilate6(front, within=later if step > 0 else cand, without=rim)
            rim |= front
        core = cand & ~rim
        box = bbox(core, RIM_STEPS + 1)
        vessel = np.zeros(hu.shape, dtype=bool)
        uncertain = np.zeros(hu.shape, dtype=bool)
        if box is not None:
            c = core[box]
            lab = label(c, 26)
            counts = _counts(lab, c)
            keep = counts * vox >= MIN_VESSEL_MM3
            keep[0] = False
            # Pieces walled mostly by bone: cancellous bone whose cortex stayed under
            # the seed threshold (thin ribs, 3 mm scans) -- bone, not vessel.
            near_bone = dilate6(bone[box] | rim[box])
            # Per piece: its outer surface (voxels of the piece with a non-piece
            # neighbour) and how much of it faces bone or rim.
            surf = c & ~erode6(c)
            s_all = np.bincount(lab[surf], minlength=counts.size)
            s_bone = np.bincount(lab[surf & near_bone], minlength=counts.size)
            walled = (s_bone >= BONE_WALLED_SHARE * np.maximum(s_all, 1)) & (counts > 0)
            walled[0] = False
            v = _select(keep & ~walled, lab, c)
            to_bone = _select(walled, lab, c)
            vessel[box] = v
            bone[box] |= to_bone
            # Rim voxels touching a vessel core (two steps through the rim) stay
            # visible as uncertain; the rest of the rim is bone.
            r = rim[box]
            u = np.zeros_like(r)
            front = v
            for _ in range(RIM_STEPS):
                front = dilate6(front, within=r, without=u)
                u |= front
            uncertain[box] = u
        voxelwise(lambda b, r, u: b | (r & ~u), bone, rim, uncertain, out=bone)
        # Window voxels of no class next to bone (the cortex's blur past the rim's first
        # voxel that did not join a vessel, pieces too small to be one): bone's edge.
        # Left classless they would be hidden, pits in the bone's surface.
        # (Above the window too: the cortex's blur between the window's top and the seed
        # threshold, 600-650 HU, is in no class otherwise.)
        stray = voxelwise(
            lambda h, b, bo, v, u, c: (h >= lo) & b & ~bo & ~v & ~u & ~c, hu, body, bone, vessel, uncertain, calc
        )
        if stray.any():
            bone |= dilate6(dilate6(bone), within=stray)
        if thick_bone.any():
            # Where an artery lies on cancellous bone the bone part took some of its
            # lumen: give back, as uncertain, what is brighter than cancellous bone (or
            # at the lumen's brightness) within GIVE_BACK_STEPS of the vessel.
            floor_hu = min(level - 2.5 * noise, CANCELLOUS_MAX_HU)
            bright = voxelwise(lambda t, h: t & (h >= floor_hu) & (h <= hi), thick_bone, hu)
            # (in the bright part's box grown by one: the growth never leaves it)
            gb = bbox(bright, 1)
            if gb is not None:
                br = bright[gb]
                front = vessel[gb] | uncertain[gb]
                back = np.zeros(br.shape, dtype=bool)
                for _ in range(GIVE_BACK_STEPS):
                    front = dilate6(front, within=br, without=back)
                    back |= front
                uncertain[gb] |= back
                bone[gb] &= ~back
            # (fine voxels in-plane, and slices thin enough for a 26-connected run of
            # bumps to follow one artery: 16 mm slices join unrelated bumps)
            if min(sx, sy) < COARSE_VOXEL_MM and sz <= 2.0 * TUBE_CARVE_RADIUS_MM:
                t_tube = time.perf_counter()
                found_tube = bone_side_lumen(hu, (sx, sy, sz), thick_bone, bone, vessel, uncertain, level + 2.5 * noise)
                if found_tube is not None:
                    tb_box, tube = found_tube
                    uncertain[tb_box] |= tube
                    bone[tb_box] &= ~tube
                t["tube_s"] = time.perf_counter() - t_tube
        # Shape and lumen checks of the vessel class: the thin cortex at coarse voxels,
        # the lumen reach and the thin vessels' halo at fine ones (each measured to
        # harm the other grid: docs/separation.md).
        t_shape = time.perf_counter()
        if min(sx, sy) >= COARSE_VOXEL_MM:
            cortex = thin_cortex_pieces(hu, (sx, sy, sz), vessel | uncertain, bone, noise)
            if cortex.any():
                bone |= cortex
                vessel &= ~cortex
                uncertain &= ~cortex
            t["thin_cortex_s"] = time.perf_counter() - t_shape
            if LOOSE_CORTEX:
                t_loose = time.perf_counter()
                loose = loose_cortex_pieces(hu, (sx, sy, sz), vessel | uncertain, bone, noise)
                if loose.any():
                    bone |= loose
                    vessel &= ~loose
                    uncertain &= ~loose
                t["loose_cortex_s"] = time.perf_counter() - t_loose
        else:
            found = lumen_trim(hu, (sx, sy, sz), voxelwise(np.logical_or, vessel, uncertain), soft)
            if found is not None:
                tb, drop = found
                vessel[tb] &= ~drop
                uncertain[tb] &= ~drop
            t["lumen_trim_s"] = time.perf_counter() - t_shape
        if HALO_TRIM:
            halo = _halo(hu, vessel | uncertain, soft)
            vessel &= ~halo
            uncertain &= ~halo
        t_pool = time.perf_counter()
        found_pool = contrast_pools(hu, (sx, sy, sz), bone, voxelwise(np.logical_or, vessel, uncertain), seed)
        if found_pool is not None:
            pb, pool = found_pool
            # Out of the bone: its window voxels are vessel, the rest (the undiluted
            # core above the window, fat) no class.
            bone[pb] &= ~pool
            vessel[pb] |= pool & (hu[pb] >= lo) & (hu[pb] <= hi) & body[pb]
            calc[pb] &= ~pool
        t["pool_s"] = time.perf_counter() - t_pool
        if contrast is None:
            if lumen.largest_mm3 >= CONTRAST_MIN_MM3:
                msg = f"contrast-filled vessels found ({core_mm3 / 1000:.1f} ml of opacified lumen)"
            else:
                msg = f"contrast-filled vessels found (thin opacified vessels, the longest {lumen.tube_mm:.0f} mm)"
            if min(sx, sy) >= COARSE_VOXEL_MM:
                msg += COARSE_VERDICT_HINT_YES
        else:
            msg = (
                "contrast set by hand: the vessel window outside bone is drawn as vessel (the "
                f"check alone would say {_verdict_words(lumen)})"
            )
    else:
        # No opacified vessels: every dense piece is bone, small very dense specks are
        # calcification, and nothing is painted vessel.
        dense = voxelwise(lambda h, b, c: (h >= cancellous) & b & ~c, hu, body, calc)
        box = bbox(dense, 0)
        if box is not None:
            # Bone has some mineral over 300 HU; an enhancing organ or a venous-phase
            # aorta (150-200 HU) has none, and is not bone. (Piece by piece without a
            # label image of the box, 4 bytes a voxel: it was the separation's peak on
            # a scan without contrast, see keep_pieces.)
            hb = hu[box]
            keep_pieces(
                dense[box],
                lambda z0, z1: hb[z0:z1] >= 300,
                lambda size, bright: (size * vox >= MIN_BONE_MM3_NO_CONTRAST) & (bright >= 3),
                out=bone[box],
            )
        del dense
        # The rim over the window's low end goes with the bone (no red fringe).
        bone = _grown_through(bone, lambda z0, z1: (hu[z0:z1] >= lo) & body[z0:z1], RIM_STEPS)
        if contrast is None:
            msg = (
                "no contrast-filled vessels found: this scan looks like a CT without arterial "
                f"contrast (largest lumen-like piece {lumen.largest_mm3:.0f} mm^3, a contrast-filled "
                f"artery gives {CONTRAST_MIN_MM3:.0f} or more; longest thin opacified tube "
                f"{lumen.tube_mm:.0f} mm, a thin artery gives {CONTRAST_TUBE_MM:.0f} or more); "
                "the vessel class is empty"
            )
            if min(sx, sy) >= COARSE_VOXEL_MM:
                msg += COARSE_VERDICT_HINT_NO
        else:
            msg = (
                "no contrast set by hand: the vessel class is empty (the check alone would say "
                f"{_verdict_words(lumen)})"
            )
    labels = compose_labels(bone, calc, vessel, uncertain, body if remove_table else None, full_shape, crop)
    del bone, calc, vessel, uncertain
    t["vessel_s"] = time.perf_counter() - t3
    t["total_s"] = time.perf_counter() - t0
    report(progress, 1.0, "separation: done")
    return Separation(
        labels=labels,
        body_in_crop=body,
        contrast=has_contrast,
        contrast_core_mm3=core_mm3,
        message=msg,
        thresholds={
            "bone_seed_hu": seed,
            "cancellous_hu": cancellous,
            "vessel_low_hu": lo,
            "vessel_high_hu": hi,
            "soft_tissue_hu": soft,
            "noise_hu": noise,
        },
        timings_s=t,
        remove_table=remove_table,
        crop=crop,
    )


__all__ = [
    "BONE",
    "CALCIFICATION",
    "LABELS",
    "NONE",
    "REMOVED",
    "release_prepare_cache",
    "UNCERTAIN",
    "VESSEL",
    "Separation",
    "bbox",
    "body_mask",
    "bone_edge",
    "bone_object",
    "LumenCore",
    "detect_contrast",
    "lumen_trim",
    "dilate6",
    "erode6",
    "pool_any",
    "upsample",
    "upsample_box",
    "label",
    "packed_slabwise",
    "keep_pieces",
    "labels_at",
    "run_slabs",
    "separate",
    "slabwise",
    "compose_labels",
    "split_labels",
    "write_sparse",
    "strided_nonzero",
    "thin_cortex_pieces",
    "voxelwise",
    "volume_key",
]
