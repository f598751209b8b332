"""The 3D scene: a CT volume, its transfer function and a camera, drawn with VTK.

No Qt here. The GUI hands its ``QVTKRenderWindowInteractor``'s render window to
:class:`Scene`; tests, export and the CLI let the scene own an offscreen window.

Coordinate placement (one geometry truth, as 3D Slicer does it): the ``vtkImageData``
has origin 0 and the volume's **spacing** (so VTK's gradients, sample distances and
opacity unit distances are in mm), and the ``vtkVolume``'s user matrix is
``ijk_to_lps @ diag(1/spacing)`` -- the direction cosines and the origin. The world
frame is therefore LPS in mm: +x patient left, +y posterior, +z superior.

Mapper: ``vtkFixedPointVolumeRayCastMapper`` (multi-threaded CPU ray caster) on
software OpenGL, ``vtkGPUVolumeRayCastMapper`` on real GPUs (``choose_mapper_kind``).

Separated bone / vessel mode: the volume's scalars are the class-encoded int16 of
``viewer.core.classmap`` and one 1D transfer function colours each class. A vessel
window edit or a class toggle is a transfer-function edit (no re-encode, no gradient
recompute); a bone threshold change re-makes the bone mask and re-encodes -- unless
the GUI supplies the mask itself with :meth:`Scene.set_bone_mask` (computed off the
GUI thread), in which case the threshold edit restyles the current mask at once.

Heavy work off the render thread (issue 9): every edit that needs voxels read or meshes
built is prepared by :func:`viewer.render.scene_data.prepare_scene` from a
:meth:`Scene.scene_inputs` snapshot (thread-safe, no render window touched) and
installed by :meth:`Scene.apply_prepared` (cheap). The setters below do both in turn;
the GUI runs the preparation in a worker and applies the result on its thread.
"""

from __future__ import annotations

import math
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from viewer.core.classmap import class_transfer_points, mip_transfer_points
from viewer.core.errors import ViewerError
from viewer.core.extraction import ClassMasks
from viewer.core.lesion import Branch, EntryPoint, Lesion
from viewer.core.measure import Measurement
from viewer.core.packed import MaskArray, PackedMask
from viewer.core.transfer import ColorPoint, OpacityPoint, TransferFunction
from viewer.core.volume import Volume
from viewer.render._vtk import (
    numpy_to_vtk,
    vtkActor,
    vtkColorTransferFunction,
    vtkCommand,
    vtkFixedPointVolumeRayCastMapper,
    vtkGPUVolumeRayCastMapper,
    vtkImageData,
    vtkMatrix4x4,
    vtkPiecewiseFunction,
    vtkPolyDataMapper,
    vtkRenderer,
    vtkRenderWindow,
    vtkVolume,
    vtkVolumeProperty,
)
from viewer.render.camera import STANDARD_VIEWS, CameraState
from viewer.render.content import MARGIN, BufferBox
from viewer.render.cut import feed_clipped, kept_by_cut, volume_planes
from viewer.render.extent import IndexBox, VisibleExtent
from viewer.render.lesion_visual import (
    BoneDistanceCache,
    ColouringMode,
    LesionOverlay,
    VesselDistanceMesh,
    check_colouring,
    colour_bar_title,
    muted_vessel_window,
)
from viewer.render.marker import OrientationMarker
from viewer.render.offscreen import MapperKind, choose_mapper_kind, gl_renderer_string, grab_window
from viewer.render.scene_data import (
    CALC_MESH_GRID_MM,
    OVERLAY_NAMES,
    PreparedScene,
    Same,
    SceneInputs,
    calc_shown,
    colouring_in_use,
    masks_match,
    overlay_shown,
    prepare_scene,
)
from viewer.render.shading_warmup import WarmMapper
from viewer.render.volume_visual import (
    INTERACTIVE_IMAGE_SAMPLE_DISTANCE,
    apply_cropping,
    apply_sampling,
    full_sample_distance,
    interactive_image_sample_distance,
    make_mapper,
    style_property,
)

Bounds6 = tuple[float, float, float, float, float, float]
RGB = tuple[float, float, float]

#: Every Scene made in this process, weakly (a collected scene frees its VTK objects).
_SCENES: weakref.WeakSet[Scene] = weakref.WeakSet()


def open_scenes() -> list[Scene]:
    """The scenes still open (alive and not closed), offscreen twins left out (their
    scene closes them). The test suite's leak check: every scene, and so every render
    window, that a test or a window makes must be closed by its owner."""
    live = [s for s in list(_SCENES) if not s.closed]
    twins = {id(s._twin) for s in live if s._twin is not None}
    return [s for s in live if id(s) not in twins]


def compute_bone_mask(hu: np.ndarray, spacing_mm: tuple[float, float, float], bone_threshold_hu: float) -> np.ndarray:
    """A bone mask alone (threshold, components, marrow fill, rim dilation), as
    ``viewer.core.extraction.bone_mask`` makes it; for callers that supply masks."""
    from viewer.core.extraction import bone_mask

    return bone_mask(hu, spacing_mm, bone_threshold_hu)


#: Stands for "as the scene has it" in :meth:`Scene.scene_inputs`.
_KEEP: Any = object()


def _set_points(
    otf: vtkPiecewiseFunction,
    ctf: vtkColorTransferFunction,
    opacity: Sequence[OpacityPoint],
    color: Sequence[ColorPoint],
) -> None:
    otf.RemoveAllPoints()
    for p in opacity:
        otf.AddPoint(float(p.x), float(np.clip(p.opacity, 0.0, 1.0)))
    ctf.RemoveAllPoints()
    for c in color:
        ctf.AddRGBPoint(float(c.hu), float(c.r), float(c.g), float(c.b))


def _copy_mesh(mesh: Any) -> Any:
    """A deep copy of a vtkPolyData (None stays None)."""
    if mesh is None:
        return None
    out = mesh.NewInstance()
    out.DeepCopy(mesh)
    return out


class Scene:
    """A volume, its transfer function, crop/clip, camera and orientation marker.

    Args:
        render_window: a window to draw into (the GUI's); None makes the scene own
            its own window.
        offscreen: for an owned window, render offscreen (default True: no display
            needed, EGL). Ignored when ``render_window`` is given.

    Attributes:
        on_render_request: hook :meth:`request_render` calls instead of rendering
            (the GUI installs a coalescing timer here).
        sample_distance_mm: ray step at full quality (None: from the voxel spacing).
        interactive_image_sample_distance: pixels per ray while interacting.
    """

    def __init__(self, render_window: vtkRenderWindow | None = None, offscreen: bool | None = None) -> None:
        self._owns_window = render_window is None
        if render_window is None:
            render_window = vtkRenderWindow()
            render_window.SetOffScreenRendering(0 if offscreen is False else 1)
            render_window.SetSize(300, 300)
        self._rw: vtkRenderWindow | None = render_window
        self._closed = False
        _SCENES.add(self)
        self.on_render_request: Callable[[], None] | None = None
        #: Hook called with ``"start"``, ``"progress"`` or ``"end"`` while the CPU ray
        #: caster computes its shading gradients (the one long, blocking step of a
        #: render after new data: ~0.7 s at 224x224x380, ~6 s at 512x512x640), so a
        #: GUI can show that it is busy. Called on the rendering thread, mid-render:
        #: it must not touch the scene.
        self.on_gradient_progress: Callable[[str], None] | None = None
        self.sample_distance_mm: float | None = None
        self.interactive_image_sample_distance = INTERACTIVE_IMAGE_SAMPLE_DISTANCE

        if render_window.GetNumberOfLayers() < 2:
            render_window.SetNumberOfLayers(2)
        self._mapper_kind: MapperKind | None = None
        if self.mapper_kind == "cpu":
            # No multisample anti-aliasing on software OpenGL (issue 9): llvmpipe clears
            # and resolves every sample on the CPU -- an empty 4x-MSAA frame took 40 ms
            # at 800x600 and 200 ms at 1920x1080 against 0.3 / 2.4 ms without. The
            # volume is a ray-cast image drawn as one textured quad: MSAA never touched it.
            render_window.SetMultiSamples(0)
        self.renderer = vtkRenderer()
        self.renderer.SetLayer(0)
        self.renderer.SetBackground(0.0, 0.0, 0.0)
        render_window.AddRenderer(self.renderer)

        self._otf = vtkPiecewiseFunction()
        self._ctf = vtkColorTransferFunction()
        self._gof = vtkPiecewiseFunction()
        self._property = vtkVolumeProperty()
        self._property.SetColor(self._ctf)
        self._property.SetScalarOpacity(self._otf)
        self._property.SetInterpolationTypeToLinear()
        self._actor = vtkVolume()
        self._actor.SetProperty(self._property)
        self._image = vtkImageData()
        self._mapper: vtkFixedPointVolumeRayCastMapper | vtkGPUVolumeRayCastMapper | None = None
        # A coarse first frame of a big new scan (show_preview): its own actor and
        # mapper on a decimated image, dropped when the full scalars are installed.
        self._preview: tuple[vtkVolume, vtkFixedPointVolumeRayCastMapper] | None = None
        #: The transfer function of the scalars a coarse frame is drawn over (None: it
        #: stands for the first scalars, nothing is under it).
        self._preview_over: TransferFunction | None = None
        #: The class masks the coarse frame's scalars were made from (their bone
        #: display floor styles it), when they are not the scene's.
        self._preview_masks: ClassMasks | None = None

        self._volume: Volume | None = None
        self._tf: TransferFunction = TransferFunction()
        # int16 (nz+2, ny+2, nx+2): raw HU or class codes, with a one-voxel air border.
        self._buffer: np.ndarray | None = None
        #: The box of the whole render buffer that ``_buffer`` holds (z0, z1, y0, y1,
        #: x0, x1; ``viewer.render.content``), or None: all of it.
        self._buffer_box: BufferBox | None = None
        self._buffer_key: tuple[object, ...] | None = None
        # Masks handed in by the caller (the GUI computes them off its thread), or
        # computed here on demand for the current thresholds (CLI, export, tests).
        self._manual_masks: ClassMasks | None = None
        self._auto_masks: ClassMasks | None = None
        # Calcified shells are drawn as a mesh (see viewer.core.classmap for why).
        self._calc_mapper = vtkPolyDataMapper()
        self._calc_mapper.ScalarVisibilityOff()
        self._calc_actor = vtkActor()
        self._calc_actor.SetMapper(self._calc_mapper)
        self._calc_actor.VisibilityOff()
        self._calc_key: object = None  # Same(masks) the mesh was built from
        # Uncertain / removed overlay meshes: (actor, mapper, Same(masks)) by name.
        self._overlay: dict[str, tuple[Any, Any, object]] = {}
        self._overlay_mesh: dict[str, object] = {}
        self._overlay_clip: dict[str, object] = {}
        self._crop_lps: Bounds6 | None = None
        self._clip: tuple[np.ndarray, np.ndarray] | None = None
        self._interactive = False
        # Drawn unshaded while a worker computes the shading gradients (defer_shading).
        self._shading_deferred = False
        self._first_volume = True
        self._twin: Scene | None = None
        #: Everything the prepared results applied so far hold (scalars, meshes, their
        #: keys), merged: what another scene of the same volume may share
        #: (:attr:`prepared_parts`).
        self._parts: PreparedScene | None = None
        self.last_timings_s: dict[str, float] = {}
        # Rays visit only the box of voxels some class shows (issue 9, viewer.render.extent).
        self._extent = VisibleExtent()
        self._opacity_pts: list[tuple[float, float]] = []
        self._mip = False

        # Orientation marker (viewer.render.marker): its own renderer on layer 1,
        # turned with the main camera at every render.
        self._marker = OrientationMarker()
        self._observer = self.renderer.AddObserver(vtkCommand.StartEvent, self._on_start_render)
        # Lesion planning (issue 10, viewer.render.lesion_visual): overlays on layer 1,
        # and the keyhole / distance colouring in the class encoding.
        self._lesion_overlay = LesionOverlay(render_window, self.renderer)
        self._lesion: Lesion | None = None
        self._colouring: tuple[ColouringMode, float] = ("off", 30.0)
        self._keyhole = False
        self._bone_distance = BoneDistanceCache()
        self._vessel_mesh = VesselDistanceMesh()
        self.renderer.AddActor(self._vessel_mesh.actor)

    # ----- properties --------------------------------------------------------------
    @property
    def render_window(self) -> vtkRenderWindow:
        self._check_open()
        assert self._rw is not None
        return self._rw

    @property
    def owns_window(self) -> bool:
        return self._owns_window

    @property
    def volume(self) -> Volume | None:
        return self._volume

    @property
    def transfer_function(self) -> TransferFunction:
        return self._tf

    @property
    def mapper_kind(self) -> MapperKind:
        """``"cpu"`` or ``"gpu"`` (decided once, on first use)."""
        if self._mapper_kind is None:
            self._mapper_kind = choose_mapper_kind(self._rw)
        return self._mapper_kind

    @property
    def renderer_info(self) -> str:
        """The OpenGL renderer string, e.g. ``"llvmpipe (LLVM 15.0.6, 256 bits)"``."""
        return gl_renderer_string(self._rw)

    @property
    def mapper(self) -> vtkFixedPointVolumeRayCastMapper | vtkGPUVolumeRayCastMapper | None:
        return self._mapper

    @property
    def vtk_volume(self) -> vtkVolume:
        return self._actor

    @property
    def interactive(self) -> bool:
        return self._interactive

    @property
    def has_scalars(self) -> bool:
        """Whether the volume's scalars are in place (False between
        ``set_volume(..., prepare=False)`` and the prepared result)."""
        return self._buffer is not None

    @property
    def class_masks(self) -> ClassMasks | None:
        """The masks separated mode uses now (supplied or computed), or None."""
        return self._manual_masks if self._manual_masks is not None else self._auto_masks

    @property
    def bone_mask(self) -> MaskArray | None:
        """The bone mask separated mode uses now (supplied or computed), or None."""
        m = self.class_masks
        return None if m is None else m.bone

    @property
    def has_supplied_masks(self) -> bool:
        return self._manual_masks is not None

    def _check_open(self) -> None:
        if self._closed:
            raise ViewerError("the 3D scene has been closed")

    # ----- volume -------------------------------------------------------------------
    def set_volume(self, volume: Volume, *, prepare: bool = True) -> None:
        """Show ``volume``; placed in LPS by its ``ijk_to_lps`` (see module doc).

        ``prepare=False``: place it only; the volume stays hidden until a prepared
        result (:meth:`scene_inputs`, ``prepare_scene`` in a worker,
        :meth:`apply_prepared`) brings its scalars."""
        self._check_open()
        if not isinstance(volume, Volume):
            raise ViewerError(f"set_volume needs a Volume, got {type(volume).__name__}")
        self._drop_preview()
        self._volume = volume
        self._manual_masks = None
        self._auto_masks = None
        self._shading_deferred = False
        self._buffer = None
        self._buffer_key = None
        self._buffer_box = None
        self._parts = None
        self._actor.SetVisibility(0)
        nx, ny, nz = volume.dims_xyz
        self._image = vtkImageData()
        # +2: the air border of the render buffer (see scene_data.encode_buffer).
        self._image.SetDimensions(nx + 2, ny + 2, nz + 2)
        self._image.SetSpacing(*volume.spacing_mm)
        self._image.SetOrigin(0.0, 0.0, 0.0)
        # Image point (0,0,0) is voxel (-1,-1,-1) of the volume; the user matrix takes
        # image coordinates (mm along i, j, k) to LPS: rotation = direction cosines.
        m = np.eye(4)
        m[:3, :3] = volume.direction
        m[:3, 3] = volume.lps_of_ijk((-1.0, -1.0, -1.0))
        vm = vtkMatrix4x4()
        for r in range(4):
            for c in range(4):
                vm.SetElement(r, c, float(m[r, c]))
        self._actor.SetUserMatrix(vm)
        self._ensure_mapper()
        if prepare:
            self._sync()
        self._apply_sampling()
        if self.renderer.GetVolumes().GetNumberOfItems() == 0:
            self.renderer.AddVolume(self._actor)
        if self._first_volume:
            self._first_volume = False
            self.set_view("anterior")
        else:
            self.reset_camera()

    def _ensure_mapper(self, adopt: vtkFixedPointVolumeRayCastMapper | None = None) -> None:
        """Make the scene's mapper (or configure ``adopt``, a CPU mapper made
        elsewhere, as the scene's mapper) unless it has one."""
        if self._mapper is not None:
            return
        m = make_mapper(self.mapper_kind, self._gradient_event, adopt)
        self._mapper = m
        self._actor.SetMapper(m)

    def _adopt_warm(self, warm: WarmMapper | None, buffer: np.ndarray) -> bool:
        """Use ``warm`` (a :class:`~viewer.render.shading_warmup.WarmMapper` made on a
        worker for ``buffer``): its image and its mapper, whose shading gradients are
        already computed, replace the scene's, configured as the scene's own (see
        :mod:`viewer.render.shading_warmup`). False, changing nothing, when ``warm``
        is None or does not fit (another buffer, or the scene uses the GPU mapper)."""
        if warm is None or warm.buffer is not buffer or warm.box != self._buffer_box or self.mapper_kind != "cpu":
            return False
        old = self._mapper
        if warm.block_ranges is not None:
            self._extent.prime(buffer, warm.block_ranges)
        self._image = warm.image
        self._mapper = None
        self._ensure_mapper(warm.mapper)
        self._apply_sampling()
        self._apply_planes()
        if old is not None and old is not warm.mapper:
            old.RemoveAllObservers()
            if self._rw is not None:
                old.ReleaseGraphicsResources(self._rw)
        self._actor.SetVisibility(1)
        return True

    def show_preview(
        self,
        warm: WarmMapper,
        volume: Volume,
        tf: TransferFunction,
        *,
        over: bool = False,
        masks: ClassMasks | None = None,
    ) -> bool:
        """Draw ``warm`` -- a mapper warmed on a worker for a decimated copy of the new
        scalars (every second voxel of the render buffer, twice the spacing: the same
        image coordinates) -- until :meth:`apply_prepared` installs the full ones: a
        coarse first frame of a big scan while its full-size mapper is warmed (0.85 s
        at 512 x 512 x 600, VTK's min/max blocks on one thread). Styled by ``tf``, the
        transfer function the scalars were made for (the scene's from now on, as
        apply_prepared would make it), placed as the volume, cut by the crop box and
        clip plane (not limited to the visible extent). False, showing nothing, when
        the scene shows another volume, already has scalars for this one, uses the GPU
        mapper, or is closed.

        ``over=True``: also over scalars already shown (a big scan's first *separated*
        frame, drawn from preview masks over its bone-only scalars): they are hidden
        until the next :meth:`apply_prepared`, and come back as they were when the
        coarse frame is dropped (:meth:`drop_preview`). ``masks``: the class masks its
        scalars were made from, when they are not the scene's."""
        if self._closed or volume is not self._volume or self.mapper_kind != "cpu":
            return False
        if self._buffer is not None and not over:
            return False
        self._drop_preview()
        if self._buffer is not None:
            self._preview_over = self._tf
            self._actor.SetVisibility(0)
        self._preview_masks = masks
        m = make_mapper("cpu", self._gradient_event, warm.mapper)
        assert isinstance(m, vtkFixedPointVolumeRayCastMapper)
        actor = vtkVolume()
        actor.SetMapper(m)
        actor.SetProperty(self._property)
        actor.SetUserMatrix(self._actor.GetUserMatrix())
        self.renderer.AddVolume(actor)
        self._preview = (actor, m)
        self._tf = tf
        self._apply_property()
        # the crop box and clip plane; the steps of the full scalars (the coarse image
        # only thins the data)
        self._apply_planes()
        self._apply_sampling()
        return True

    @property
    def previewing(self) -> bool:
        """Whether a coarse first frame (:meth:`show_preview`) stands in for the scalars."""
        return self._preview is not None

    @property
    def previewing_over(self) -> bool:
        """Whether a coarse frame is drawn over scalars already in place
        (``show_preview(..., over=True)``)."""
        return self._preview is not None and self._preview_over is not None

    @property
    def previewing_classes(self) -> bool:
        """Whether the coarse frame shown is a separated one (drawn with the preview
        masks it was made from: ``show_preview(..., masks=...)``)."""
        return self._preview is not None and self._preview_masks is not None

    def drop_preview(self) -> bool:
        """Remove the coarse first frame (:meth:`show_preview`), if one is shown (for
        example when the scalars it stands for failed). Returns whether one was."""
        shown = self._preview is not None
        self._drop_preview()
        return shown

    def _drop_preview(self) -> None:
        if self._preview is None:
            return
        actor, m = self._preview
        self._preview = None
        under, self._preview_over = self._preview_over, None
        self._preview_masks = None
        if under is not None and self._buffer is not None:
            self._tf = under
            self._apply_property()
            self._actor.SetVisibility(1)
        self.renderer.RemoveVolume(actor)
        actor.SetMapper(None)  # type: ignore[arg-type]  # VTK takes None (detach)
        m.RemoveAllObservers()
        if self._rw is not None:
            m.ReleaseGraphicsResources(self._rw)

    @property
    def shading_deferred(self) -> bool:
        """Whether the volume is drawn unshaded until :meth:`adopt_shading`."""
        return self._shading_deferred

    def defer_shading(self, on: bool) -> None:
        """Draw the volume without shading and gradient opacity (so a render computes no
        gradients) while a worker computes them (``shading_warmup.warm_mapper``); off:
        shade again (computing the gradients in the next render if nothing was adopted)."""
        self._shading_deferred = bool(on)
        self._apply_property()

    def adopt_shading(self, warm: WarmMapper | None) -> bool:
        """Take the worker's warmed mapper for the scalars shown now and shade again.
        False, changing nothing, when it was made for other scalars (or is None)."""
        if warm is None or not warm.computed or self._buffer is None or not self._adopt_warm(warm, self._buffer):
            return False
        self._shading_deferred = False
        self._apply_property()
        self.last_timings_s["shading_warmup_s"] = warm.seconds
        return True

    def _gradient_event(self, stage: str) -> None:
        hook = self.on_gradient_progress
        if hook is not None:
            try:
                hook(stage)
            except Exception:  # noqa: BLE001 - a display hook must never break a render
                pass

    def _full_sample_distance(self) -> float:
        spacing = None if self._volume is None else self._volume.spacing_mm
        return full_sample_distance(spacing, self.sample_distance_mm)

    def _volume_mappers(self) -> list[vtkFixedPointVolumeRayCastMapper | vtkGPUVolumeRayCastMapper]:
        """The scene's volume mapper and, while one is shown, the coarse first frame's
        (:meth:`show_preview`): what sampling, planes and blend mode are set on."""
        ms: list[vtkFixedPointVolumeRayCastMapper | vtkGPUVolumeRayCastMapper] = []
        if self._mapper is not None:
            ms.append(self._mapper)
        if self._preview is not None:
            ms.append(self._preview[1])
        return ms

    def _apply_sampling(self) -> None:
        for m in self._volume_mappers():
            apply_sampling(m, self._full_sample_distance(), self._interactive, self._interactive_isd())

    # ----- classes -----------------------------------------------------------------
    def set_bone_mask(self, mask: MaskArray | None) -> None:
        """Use ``mask`` (bool ``(nz, ny, nx)``) as the bone class in separated mode,
        with no calcification class; see :meth:`set_class_masks`."""
        if mask is None:
            self.set_class_masks(None)
            return
        tf = self._tf
        bone = mask if isinstance(mask, PackedMask) else np.asarray(mask)
        self.set_class_masks(ClassMasks(bone, None, tf.bone_threshold_hu, tf.vessel_window_hu))

    def set_class_masks(self, masks: ClassMasks | None) -> None:
        """Use ``masks`` (bone, calcified shells) in separated mode.

        The GUI computes them off the GUI thread and hands them here; with supplied
        masks a later threshold change only restyles (instant) until new masks
        arrive. ``None`` returns to masks the scene computes itself, for the current
        thresholds, when it needs them.
        """
        self._check_open()
        self._manual_masks = self._checked_masks(masks)
        if self._volume is not None:
            self._sync()

    def _checked_masks(self, masks: ClassMasks | None) -> ClassMasks | None:
        if masks is None:
            return None
        if self._volume is None:
            raise ViewerError("set a volume before its class masks")
        # (a packed bone mask, viewer.core.packed, stays packed)
        bone = masks.bone if isinstance(masks.bone, PackedMask) else np.asarray(masks.bone)
        if bone.shape != self._volume.shape:
            raise ViewerError(f"bone mask shape {bone.shape} does not match the volume {self._volume.shape}")
        calc = masks.calcification
        if calc is not None and np.asarray(calc).shape != self._volume.shape:
            raise ViewerError(f"calcification mask shape {np.asarray(calc).shape} does not match the volume")
        if isinstance(bone, np.ndarray) and (bone.dtype != np.bool_ or bone is not masks.bone):
            # (every other class and setting kept: only the bone mask is made an array)
            masks = replace(masks, bone=bone.astype(bool, copy=False))
        return masks

    # ----- prepare (any thread) / apply (the render thread) ------------------------------
    def scene_inputs(
        self,
        *,
        tf: TransferFunction = _KEEP,
        masks: ClassMasks | None = _KEEP,
        lesion: Lesion | None = _KEEP,
        keyhole: bool = _KEEP,
        colouring: tuple[str, float] = _KEEP,
    ) -> SceneInputs:
        """A snapshot of this scene with the given changes, for
        :func:`viewer.render.scene_data.prepare_scene` (cheap; call it on the thread
        that owns the scene). ``masks=None`` asks for masks the scene computes itself;
        ``colouring`` is ``(mode, max_mm)`` as :meth:`set_vessel_colouring` takes."""
        self._check_open()
        if self._volume is None:
            raise ViewerError("set a volume before preparing the 3D scene")
        tf = self._tf if tf is _KEEP else tf
        if not isinstance(tf, TransferFunction):
            raise ViewerError(f"the 3D scene needs a TransferFunction, got {type(tf).__name__}")
        manual = self._manual_masks if masks is _KEEP else self._checked_masks(masks)
        lesion = self._lesion if lesion is _KEEP else lesion
        if lesion is not None and not isinstance(lesion, Lesion):
            raise ViewerError(f"set_lesion needs a Lesion or None, got {type(lesion).__name__}")
        use = manual if manual is not None else (self._auto_masks if masks_match(self._auto_masks, tf) else None)
        vm = self._vessel_mesh
        bkey, bvalue = self._bone_distance.peek()
        return SceneInputs(
            volume=self._volume,
            tf=tf,
            masks=use,
            supplied=manual is not None,
            lesion=lesion,
            keyhole=self._keyhole if keyhole is _KEEP else bool(keyhole),
            colouring=self._colouring if colouring is _KEEP else check_colouring(*colouring),
            buffer_key=self._buffer_key,
            vessel_mesh=vm.mesh,
            vessel_mesh_key=vm.mesh_key,
            vessel_colour_key=vm.colour_key,
            bone_distance_key=bkey,
            bone_distance=bvalue,
            calc_key=self._calc_key,
            overlay_keys={name: e[2] for name, e in self._overlay.items()},
        )

    def apply_prepared(self, prepared: PreparedScene) -> bool:
        """Install ``prepared`` (made from :meth:`scene_inputs` by ``prepare_scene``):
        the state it was made for, its scalars and meshes, then the restyle. Cheap;
        call it on the thread that owns the render window. Returns False, changing
        nothing, when the scene moved on since the snapshot (another volume, or scalars
        or meshes the result relies on were replaced): a stale result is dropped."""
        self._check_open()
        p, inp = prepared, prepared.inputs
        vm = self._vessel_mesh
        held = (
            (p.buffer is None, self._buffer_key, inp.buffer_key),
            (p.vessel_mesh_key is None, vm.mesh_key, inp.vessel_mesh_key),
            (p.colour_key is None, vm.colour_key, inp.vessel_colour_key),
            (p.calc_key is None, self._calc_key, inp.calc_key),
        )
        if inp.volume is not self._volume or any(kept and now != then for kept, now, then in held):
            return False
        if any(self._overlay.get(n, (None, None, None))[2] != k for n, k in inp.overlay_keys.items()):
            return False
        if self._preview_over is not None:
            # a coarse frame over the scalars: styled for other scalars than these
            self._drop_preview()
        if inp.supplied:
            self._manual_masks = inp.masks
        else:
            self._manual_masks = None
            if p.masks is not None:
                self._auto_masks = p.masks
        self._tf = inp.tf
        if inp.lesion != self._lesion_overlay.lesion:
            self._lesion_overlay.set_lesion(inp.lesion)
        self._lesion, self._keyhole, self._colouring = inp.lesion, inp.keyhole, inp.colouring
        if p.buffer is not None:
            self._drop_preview()
            self._buffer, self._buffer_key, self._buffer_box = p.buffer, p.buffer_key, p.buffer_box
            if not self._adopt_warm(p.warm, p.buffer):
                self._set_scalars(p.buffer)
        if p.vessel_mesh_key is not None:
            vm.set_mesh(p.vessel_mesh, p.vessel_mesh_key, p.masks)
            vm.clip = self._feed_clipped(vm.mapper, vm.mesh)
        if p.distances_mm is not None:
            vm.colour(p.distances_mm, inp.colouring[1], p.colour_key)
        if p.bone_distance is not None:
            self._bone_distance.put(p.bone_distance_key, p.bone_distance)
        if p.calc_key is not None:
            self._set_calc_mesh(p.calc_mesh)
            self._calc_key = p.calc_key
        for name, mesh in p.overlay_meshes.items():
            self._install_overlay(name, mesh, p.overlay_keys[name])
        self._apply_property()
        self._update_calcification()
        self.last_timings_s.update(p.timings_s)
        self._merge_parts(p)
        return True

    def _merge_parts(self, p: PreparedScene) -> None:
        """Fold what ``p`` brought into :attr:`prepared_parts`: each part with its key,
        taken from ``p`` where :meth:`apply_prepared` installed it, else kept."""
        old = self._parts
        if old is None or old.inputs.volume is not p.inputs.volume:
            old = PreparedScene(inputs=p.inputs, masks=None)
        take_buffer = p.buffer is not None
        take_mesh = p.vessel_mesh_key is not None
        take_colour = p.distances_mm is not None
        take_bone = p.bone_distance is not None
        take_calc = p.calc_key is not None
        self._parts = PreparedScene(
            inputs=p.inputs,
            masks=p.masks if p.masks is not None else old.masks,
            buffer=p.buffer if take_buffer else old.buffer,
            buffer_key=p.buffer_key if take_buffer else old.buffer_key,
            buffer_box=p.buffer_box if take_buffer else old.buffer_box,
            vessel_mesh=p.vessel_mesh if take_mesh else old.vessel_mesh,
            vessel_mesh_key=p.vessel_mesh_key if take_mesh else old.vessel_mesh_key,
            distances_mm=p.distances_mm if take_colour else old.distances_mm,
            colour_key=p.colour_key if take_colour else old.colour_key,
            bone_distance=p.bone_distance if take_bone else old.bone_distance,
            bone_distance_key=p.bone_distance_key if take_bone else old.bone_distance_key,
            calc_mesh=p.calc_mesh if take_calc else old.calc_mesh,
            calc_key=p.calc_key if take_calc else old.calc_key,
            overlay_meshes={**old.overlay_meshes, **p.overlay_meshes},
            overlay_keys={**old.overlay_keys, **p.overlay_keys},
        )

    def share_parts_of(self, other: Scene) -> bool:
        """Install ``other``'s :attr:`prepared_parts` here (``other`` shows the volume
        this scene has placed): the same scalars buffer (shared, not copied), meshes and
        keys, so a following preparation for the same state has nothing left to make.
        Returns False, changing nothing, when there is nothing to share."""
        parts = other.prepared_parts
        if parts is None or self._volume is None or parts.inputs.volume is not self._volume:
            return False
        vm = self._vessel_mesh
        held = replace(
            parts.inputs,
            buffer_key=self._buffer_key,
            vessel_mesh=vm.mesh,
            vessel_mesh_key=vm.mesh_key,
            vessel_colour_key=vm.colour_key,
            calc_key=self._calc_key,
            overlay_keys={name: e[2] for name, e in self._overlay.items()},
        )
        # The buffer is shared (read only), and so are its block value ranges when the
        # other scene has made them (the visible extent's: 0.1-0.65 s at real size);
        # the meshes are copied, since the two scenes may render on two threads (a
        # movie or still on a worker): each mapper then reads its own polydata.
        if parts.buffer is not None and other._extent.has_ranges_for(parts.buffer):
            self._extent.prime(parts.buffer, other._extent.ranges(parts.buffer))
        return self.apply_prepared(
            replace(
                parts,
                inputs=held,
                vessel_mesh=_copy_mesh(parts.vessel_mesh),
                calc_mesh=_copy_mesh(parts.calc_mesh),
                overlay_meshes={name: _copy_mesh(m) for name, m in parts.overlay_meshes.items()},
            )
        )

    @property
    def buffer(self) -> np.ndarray | None:
        """The scalars buffer drawn now (None before a volume's first): the whole render
        buffer, or the part :attr:`buffer_box` of it."""
        return self._buffer

    @property
    def buffer_box(self) -> BufferBox | None:
        """The box (z0, z1, y0, y1, x0, x1, half-open) of the whole render buffer that
        :attr:`buffer` holds, or None: all of it (``viewer.render.content``)."""
        return self._buffer_box

    @property
    def prepared_parts(self) -> PreparedScene | None:
        """The scalars, meshes and their keys this scene shows, as one prepared result
        (None before its volume's first): another scene that placed the same volume can
        :meth:`apply_prepared` it and then prepare only what differs (an offscreen copy
        for stills and movies: no second encoding of the volume)."""
        return self._parts

    def _sync(self) -> None:
        """Prepare and apply now, on this thread (the synchronous setters' one path)."""
        if self._volume is None:
            self._apply_property()
            return
        self.apply_prepared(prepare_scene(self.scene_inputs()))

    def _update_calcification(self) -> None:
        """Show the calcification mesh (built by ``prepare_scene``) when the separated
        transfer function shows that class, styled like it; the overlays likewise."""
        tf = self._tf
        masks = self.class_masks if (tf.separated and self._volume is not None) else None
        show = calc_shown(tf, masks) and self._calc_key == Same(masks)
        prop = self._calc_actor.GetProperty()
        prop.SetColor(*(float(c) for c in tf.calcification.color))
        prop.SetOpacity(float(np.clip(tf.calcification.opacity, 0.0, 1.0)))
        sh = tf.shading
        prop.SetAmbient(sh.ambient)
        prop.SetDiffuse(sh.diffuse)
        prop.SetSpecular(sh.specular)
        prop.SetSpecularPower(sh.specular_power)
        self._calc_actor.SetVisibility(1 if show else 0)
        if show and not self.renderer.HasViewProp(self._calc_actor):
            self.renderer.AddActor(self._calc_actor)
        overlays = False
        for name, (actor, _mapper, key) in self._overlay.items():
            on = overlay_shown(tf, masks, name) and key == Same(masks)
            actor.SetVisibility(1 if on else 0)
            overlays = overlays or on
        if isinstance(self._mapper, vtkFixedPointVolumeRayCastMapper):
            # The CPU ray caster stops its rays at opaque geometry only when told to
            # read the depth buffer (costs a read-back per frame: only when needed).
            self._mapper.SetIntermixIntersectingGeometry(1 if (show or overlays or self._vessel_mesh.visible) else 0)

    #: Overlay colours: uncertain voxels (vessel touching cortex) magenta, what the body
    #: mask removed (the couch) a translucent grey ghost.
    OVERLAY_STYLE = {"uncertain": ((0.95, 0.2, 0.95), 1.0), "removed": ((0.55, 0.6, 0.7), 0.35)}

    def _install_overlay(self, name: str, mesh: object, key: object) -> None:
        """Use ``mesh`` (built for ``key``) as the ``uncertain`` / ``removed`` overlay."""
        assert name in OVERLAY_NAMES
        entry = self._overlay.get(name)
        if entry is None:
            mapper = vtkPolyDataMapper()
            mapper.ScalarVisibilityOff()
            actor = vtkActor()
            actor.SetMapper(mapper)
            self.renderer.AddActor(actor)
            color, opacity = self.OVERLAY_STYLE[name]
            actor.GetProperty().SetColor(*color)
            actor.GetProperty().SetOpacity(opacity)
        else:
            actor, mapper = entry[0], entry[1]
        self._overlay_mesh[name] = mesh
        # Cut by the crop box and clip plane like the calcification mesh.
        self._overlay_clip[name] = self._feed_clipped(mapper, mesh)
        self._overlay[name] = (actor, mapper, key)

    def _buffer_offset(self) -> tuple[int, int, int]:
        """Index (x, y, z) in the whole render buffer of the buffer's first voxel."""
        b = self._buffer_box
        return (0, 0, 0) if b is None else (b[4], b[2], b[0])

    def _set_scalars(self, arr: np.ndarray) -> None:
        # A buffer cut to the body lies at its box's corner (viewer.render.content):
        # image coordinates stay those of the whole buffer.
        nz, ny, nx = arr.shape
        self._image.SetDimensions(nx, ny, nz)
        sp = self._image.GetSpacing()
        self._image.SetOrigin(*(float(o) * s for o, s in zip(self._buffer_offset(), sp, strict=True)))
        # numpy_to_vtk(deep=False) shares the buffer (0.3 GB for a big CTA: no copy);
        # the vtk array keeps a reference to it. A new array object (rather than
        # Modified() on the old one) also resets VTK's cached scalar range.
        vtk_arr = numpy_to_vtk(arr.reshape(-1), deep=False)
        vtk_arr.SetName("scalars")
        self._image.GetPointData().SetScalars(vtk_arr)
        self._image.Modified()
        assert self._mapper is not None
        self._mapper.SetInputData(self._image)
        self._actor.SetVisibility(1)

    # ----- transfer function ---------------------------------------------------------
    def set_transfer_function(self, tf: TransferFunction) -> None:
        """Apply ``tf``. Re-uses the VTK transfer-function objects; re-encodes only
        when the separated flag or (with a self-computed mask) the bone threshold
        changes."""
        self._check_open()
        if not isinstance(tf, TransferFunction):
            raise ViewerError(f"set_transfer_function needs a TransferFunction, got {type(tf).__name__}")
        self._tf = tf
        self._sync()

    def _apply_property(self) -> None:
        tf = self._tf
        p = self._property
        mip = tf.blend_mode == "mip"
        if mip:
            op, col = mip_transfer_points(tf)
        elif tf.separated:
            m = self.class_masks if self._volume is not None else None
            if self._preview is not None and self._preview_masks is not None:
                m = self._preview_masks
            op, col = class_transfer_points(tf, bone_low_hu=None if m is None else m.bone_display_low_hu)
            if colouring_in_use(tf, self._lesion, self._colouring)[0] != "off":
                col = muted_vessel_window(col, tf)
        else:
            op, col = tf.opacity_points(), tf.color_points()
        _set_points(self._otf, self._ctf, op, col)
        self._opacity_pts = [(float(q.x), float(np.clip(q.opacity, 0.0, 1.0))) for q in op]
        self._mip = mip
        self._update_vessel_colours()
        style_property(p, self._gof, tf, mip=mip, unshaded=self._shading_deferred)
        for vm in self._volume_mappers():
            if mip:
                vm.SetBlendModeToMaximumIntensity()
            else:
                vm.SetBlendModeToComposite()
        self._apply_extent()

    # ----- the visible extent (issue 9) -------------------------------------------------
    @property
    def skip_invisible(self) -> bool:
        """Whether rays visit only the box around the voxels the transfer function shows
        (and the crop box): the same image, fewer samples (``viewer.render.extent``)."""
        return self._extent.enabled

    @skip_invisible.setter
    def skip_invisible(self, on: bool) -> None:
        self._extent.enabled = bool(on)
        self._apply_extent()

    @property
    def visible_box(self) -> IndexBox | None:
        """The voxel box the rays visit now (inclusive indices x, y, z of the render
        buffer, which has a one-voxel border), or None for the whole buffer the mapper
        holds."""
        return self._shifted(self._extent.box)

    def _shifted(self, box: IndexBox | None) -> IndexBox | None:
        """``box`` in indices of :attr:`buffer` as indices of the whole render buffer."""
        if box is None:
            return None
        ox, oy, oz = self._buffer_offset()
        return (box[0] + ox, box[1] + ox, box[2] + oy, box[3] + oy, box[4] + oz, box[5] + oz)

    def _apply_extent(self) -> None:
        """Set the mapper's cropping region (sub-volume) to the visible box."""
        m = self._mapper
        if m is None:
            return
        t0 = time.perf_counter()
        box = self._shifted(self._visible_box())
        apply_cropping(
            m,
            None if self._volume is None else box,
            (1.0, 1.0, 1.0) if self._volume is None else self._volume.spacing_mm,
        )
        self.last_timings_s["extent"] = time.perf_counter() - t0

    def _visible_box(self) -> IndexBox | None:
        """The voxel box (indices of :attr:`_buffer`) the rays must visit: what the
        transfer function shows, within the crop box; None for all of it."""
        corners = None
        if self._crop_lps is not None and self._volume is not None:
            b = self._crop_lps
            pts = np.array([(x, y, z) for x in b[0:2] for y in b[2:4] for z in b[4:6]])
            # buffer index = voxel index + 1, less the corner of a buffer cut to the body
            corners = self._volume.ijk_of_lps(pts) + 1.0 - np.asarray(self._buffer_offset(), dtype=float)
        return self._extent.index_box(self._buffer, self._opacity_pts, self._mip, corners)

    def trim_to_visible(self) -> bool:
        """For a one-shot render (``vessel-viewer render``: no edit follows): cut the
        render buffer to the box the rays visit (:meth:`_visible_box`: what the transfer
        function shows, within the crop box) widened by
        :data:`~viewer.render.content.MARGIN` voxels, before the first render computes
        its shading gradients (3 bytes a voxel of the buffer) and min/max blocks.

        The picture stays the same, as with the cut to the body
        (viewer.render.content): every voxel left out has zero opacity, and every
        sample and gradient of a visible voxel reads neighbours inside the cut. What
        moves is where along each ray the samples fall (the ray caster steps from the
        volume's faces): thin structures can differ by a pixel or two (the chest tiled
        to 600 slices, 1920 x 1080: mean difference 0.06 %). An edit that shows more (a wider
        window, another class, a larger crop box) would not see the voxels cut off: the
        scene is then one for stills of this state only, so the window never calls
        this. False, changing nothing, where there is nothing worth cutting (under a
        tenth of the buffer), no buffer yet, a coarse frame shown or the GPU mapper."""
        self._check_open()
        buf = self._buffer
        if buf is None or self._volume is None or self._preview is not None or self.mapper_kind != "cpu":
            return False
        box = self._visible_box()
        if box is None:
            return False
        i0, i1, j0, j1, k0, k1 = box
        nz, ny, nx = buf.shape
        m = MARGIN
        z0, z1 = max(0, k0 - m), min(nz, k1 + 1 + m)
        y0, y1 = max(0, j0 - m), min(ny, j1 + 1 + m)
        x0, x1 = max(0, i0 - m), min(nx, i1 + 1 + m)
        if (z1 - z0) * (y1 - y0) * (x1 - x0) > 0.9 * buf.size:
            return False
        part = np.ascontiguousarray(buf[z0:z1, y0:y1, x0:x1])
        ox, oy, oz = self._buffer_offset()
        new_box: BufferBox = (oz + z0, oz + z1, oy + y0, oy + y1, ox + x0, ox + x1)
        self._buffer, self._buffer_box = part, new_box
        if self._parts is not None:
            self._parts = replace(self._parts, buffer=part, buffer_box=new_box)
        self._extent.clear()
        self._set_scalars(part)
        self._apply_sampling()
        self._apply_planes()
        return True

    # ----- crop and clip ---------------------------------------------------------------
    def set_crop_box_lps(self, bounds: Bounds6 | Sequence[float] | None) -> None:
        """Show only ``(xmin, xmax, ymin, ymax, zmin, zmax)`` (LPS mm); None: all.

        Implemented as six world-space clipping planes rather than VTK's cropping
        region (which is in voxel coordinates) so the box stays aligned with the
        patient axes for oblique scans too.
        """
        self._check_open()
        if bounds is None:
            self._crop_lps = None
        else:
            b = tuple(float(x) for x in bounds)
            if len(b) != 6 or not all(math.isfinite(x) for x in b):
                raise ViewerError(f"crop box must be six finite numbers, got {bounds!r}")
            if b[0] > b[1] or b[2] > b[3] or b[4] > b[5]:
                raise ViewerError(f"crop box needs min <= max on each axis, got {b}")
            self._crop_lps = b
        self._apply_planes()

    @property
    def crop_box_lps(self) -> Bounds6 | None:
        return self._crop_lps

    def set_clip_plane(self, origin_lps: Sequence[float] | None, normal_lps: Sequence[float] | None = None) -> None:
        """Cut the volume with a plane; the half the normal points into is kept.
        ``set_clip_plane(None)`` removes it."""
        self._check_open()
        if origin_lps is None:
            self._clip = None
        else:
            o = np.asarray(origin_lps, dtype=np.float64)
            n = np.asarray(normal_lps, dtype=np.float64) if normal_lps is not None else None
            if (
                o.shape != (3,)
                or n is None
                or n.shape != (3,)
                or not np.all(np.isfinite(o))
                or not np.all(np.isfinite(n))
                or np.linalg.norm(n) == 0
            ):
                raise ViewerError("clip plane needs an LPS origin and a non-zero LPS normal (3 numbers each)")
            self._clip = (o, n / np.linalg.norm(n))
        self._apply_planes()

    def _apply_planes(self) -> None:
        planes = volume_planes(self._crop_lps, self._clip)
        if self._mapper is None:
            self._ensure_mapper()
        assert self._mapper is not None
        for m in self._volume_mappers():
            if planes.GetNumberOfItems():
                m.SetClippingPlanes(planes)
            else:
                m.RemoveAllClippingPlanes()
        self._apply_calc_clip()
        self._apply_extent()

    # The calcification mesh is cut by a filter, not by mapper clipping planes: OpenGL
    # polydata mappers take at most 6 planes, and the crop box alone is 6, so VTK dropped
    # the clip plane ("OpenGL has a limit of 6 clipping planes", every frame) and the
    # shells showed in the half that was cut away. vtkClipPolyData with one implicit
    # function (box AND half-space) has no such limit and cuts the triangles exactly.
    _calc_mesh = None
    _calc_clip = None

    def _set_calc_mesh(self, mesh: object) -> None:
        self._calc_mesh = mesh
        self._apply_calc_clip()

    def _apply_calc_clip(self) -> None:
        self._calc_clip = self._feed_clipped(self._calc_mapper, self._calc_mesh)
        self._lesion_overlay.apply_cut(self._feed_clipped, self._kept_by_cut)
        self._vessel_mesh.clip = self._feed_clipped(self._vessel_mesh.mapper, self._vessel_mesh.mesh)
        for name, entry in getattr(self, "_overlay", {}).items():
            mesh = getattr(self, "_overlay_mesh", {}).get(name)
            clip = self._feed_clipped(entry[1], mesh)
            self._overlay_clip[name] = clip

    def _feed_clipped(self, mapper: object, mesh: object) -> object:
        """Give ``mapper`` the ``mesh`` cut to the crop box and the clip plane
        (:func:`viewer.render.cut.feed_clipped`); returns the filter to keep alive."""
        return feed_clipped(mapper, mesh, self._crop_lps, self._clip)

    def _kept_by_cut(self, points_lps: np.ndarray) -> np.ndarray:
        """``(N, 3)`` LPS points -> bool: inside the crop box and on the clip plane's kept side."""
        return kept_by_cut(points_lps, self._crop_lps, self._clip)

    # ----- lesion planning (issue 10; see viewer.render.lesion_visual) ------------------
    @property
    def lesion(self) -> Lesion | None:
        return self._lesion

    @property
    def vessel_colouring(self) -> tuple[ColouringMode, float]:
        """``(mode, max_mm)`` as set (see :meth:`set_vessel_colouring`)."""
        return self._colouring

    @property
    def keyhole(self) -> bool:
        return self._keyhole

    @property
    def lesion_overlay(self) -> LesionOverlay:
        return self._lesion_overlay

    def set_lesion(self, lesion: Lesion | None) -> None:
        """Show ``lesion`` (LPS mm) as a wire sphere or box outline; it is also the
        region of the keyhole and of the "lesion" distance colouring. None removes it."""
        self._check_open()
        if lesion is not None and not isinstance(lesion, Lesion):
            raise ViewerError(f"set_lesion needs a Lesion or None, got {type(lesion).__name__}")
        self._lesion = lesion
        self._lesion_overlay.set_lesion(lesion)
        self._sync()

    def set_vessel_colouring(self, mode: str, max_mm: float = 30.0) -> None:
        """Colour the vessel class by distance (mm) to the lesion region (``"lesion"``,
        shown once a lesion is set) or to the bone mask (``"bone"``), from red (0 mm) to
        blue (``max_mm`` and beyond), with a colour bar; ``"off"``: the preset's colour.
        Separated, composite mode only (a MIP shows no classes)."""
        self._check_open()
        self._colouring = check_colouring(mode, max_mm)
        self._sync()

    def set_keyhole(self, enabled: bool) -> None:
        """Remove the bone class inside the lesion region (vessels, plaques and the
        calcified mass stay); separated mode, with a lesion set."""
        self._check_open()
        self._keyhole = bool(enabled)
        self._sync()

    def set_entry_points(self, points: Sequence[EntryPoint]) -> None:
        """Numbered entry-point markers (cut by the crop box and clip plane)."""
        self._check_open()
        self._lesion_overlay.set_entry_points(points)

    def set_centrelines(self, branches: Sequence[Branch]) -> None:
        """Branch centrelines as polylines (cut by the crop box and clip plane)."""
        self._check_open()
        self._lesion_overlay.set_centrelines(branches)

    def set_measurements(self, measurements: Sequence[Measurement]) -> None:
        """Rulers and angles with their labels ("42.3 mm", "37.5°")."""
        self._check_open()
        self._lesion_overlay.set_measurements(measurements)

    def _update_vessel_colours(self) -> None:
        """Colour bar; the vessel mesh (coloured by ``prepare_scene``) shown and styled."""
        mode, max_mm = colouring_in_use(self._tf, self._lesion, self._colouring)
        self._lesion_overlay.set_colour_bar(colour_bar_title(mode), max_mm)
        vm = self._vessel_mesh
        on = mode != "off" and self.class_masks is not None and vm.mesh is not None and vm.colour_key is not None
        if on:
            vm.style(self._tf)
        vm.actor.SetVisibility(1 if (on and self._tf.vessel.visible) else 0)

    # ----- camera -----------------------------------------------------------------------
    def set_view(self, name: str) -> None:
        """One of ``anterior, posterior, left, right, superior, inferior`` (see
        ``viewer.render.camera.STANDARD_VIEWS``), framed on the volume."""
        self._check_open()
        key = str(name).strip().lower()
        if key not in STANDARD_VIEWS:
            raise ViewerError(f"unknown view {name!r}; choose one of {', '.join(STANDARD_VIEWS)}")
        dop, up = STANDARD_VIEWS[key]
        cam = self.renderer.GetActiveCamera()
        center = self._center_lps()
        cam.SetFocalPoint(*center)
        cam.SetPosition(*(center - 100.0 * np.asarray(dop)))
        cam.SetViewUp(*up)
        self.reset_camera()

    def _center_lps(self) -> np.ndarray:
        if self._volume is None:
            return np.zeros(3)
        lo, hi = self._volume.bounds_lps()
        return np.asarray((lo + hi) / 2.0)

    def reset_camera(self) -> None:
        """Frame the whole volume, keeping the viewing direction."""
        self._check_open()
        if self._volume is not None:
            lo, hi = self._volume.bounds_lps()
            self.renderer.ResetCamera(lo[0], hi[0], lo[1], hi[1], lo[2], hi[2])
        else:
            self.renderer.ResetCamera()
        self.renderer.ResetCameraClippingRange()

    def camera_state(self) -> CameraState:
        cam = self.renderer.GetActiveCamera()
        return CameraState(
            position_lps=cam.GetPosition(),
            focal_point_lps=cam.GetFocalPoint(),
            view_up=cam.GetViewUp(),
            view_angle_deg=cam.GetViewAngle(),
            parallel_projection=bool(cam.GetParallelProjection()),
            parallel_scale_mm=cam.GetParallelScale(),
        )

    def set_camera_state(self, state: CameraState) -> None:
        self._check_open()
        if not isinstance(state, CameraState):
            raise ViewerError(f"set_camera_state needs a CameraState, got {type(state).__name__}")
        cam = self.renderer.GetActiveCamera()
        cam.SetPosition(*state.position_lps)
        cam.SetFocalPoint(*state.focal_point_lps)
        cam.SetViewUp(*state.view_up)
        cam.OrthogonalizeViewUp()
        cam.SetViewAngle(state.view_angle_deg)
        cam.SetParallelProjection(1 if state.parallel_projection else 0)
        cam.SetParallelScale(state.parallel_scale_mm)
        self.renderer.ResetCameraClippingRange()

    def azimuth(self, deg: float) -> None:
        """Turn the camera about the view-up axis through the focal point (degrees)."""
        cam = self.renderer.GetActiveCamera()
        cam.Azimuth(float(deg))
        cam.OrthogonalizeViewUp()
        self.renderer.ResetCameraClippingRange()

    def elevation(self, deg: float) -> None:
        """Tilt the camera about the horizontal axis through the focal point."""
        cam = self.renderer.GetActiveCamera()
        cam.Elevation(float(deg))
        cam.OrthogonalizeViewUp()
        self.renderer.ResetCameraClippingRange()

    def zoom(self, factor: float) -> None:
        """Magnify by ``factor`` (>1 closer)."""
        f = float(factor)
        if not (math.isfinite(f) and f > 0):
            raise ViewerError(f"zoom factor must be positive, got {factor}")
        self.renderer.GetActiveCamera().Zoom(f)
        self.renderer.ResetCameraClippingRange()

    def world_to_pixel(self, points_lps: np.ndarray, width: int, height: int) -> np.ndarray:
        """Project LPS points ``(..., 3)`` to image pixels ``(..., 2)`` as (col, row),
        row 0 at the top, for an image of ``width`` x ``height`` rendered now."""
        cam = self.renderer.GetActiveCamera()
        aspect = width / float(height)
        vtk_m = cam.GetCompositeProjectionTransformMatrix(aspect, -1.0, 1.0)
        m = np.array([[vtk_m.GetElement(r, c) for c in range(4)] for r in range(4)])
        p = np.asarray(points_lps, dtype=np.float64)
        ph = np.concatenate([p, np.ones(p.shape[:-1] + (1,))], axis=-1) @ m.T
        ndc = ph[..., :2] / ph[..., 3:4]
        col = (ndc[..., 0] + 1.0) * 0.5 * width - 0.5
        row = (1.0 - (ndc[..., 1] + 1.0) * 0.5) * height - 0.5
        return np.stack([col, row], axis=-1)

    # ----- look -------------------------------------------------------------------------
    def set_background(self, rgb: RGB | Sequence[float]) -> None:
        c = tuple(float(x) for x in rgb)
        if len(c) != 3 or not all(0.0 <= x <= 1.0 for x in c):
            raise ViewerError(f"background must be three numbers in [0, 1], got {rgb!r}")
        self.renderer.SetBackground(*c)

    def set_orientation_marker(self, visible: bool) -> None:
        """Show a cube labelled L/R, A/P, S/I in the lower-left corner."""
        self._check_open()
        assert self._rw is not None
        self._marker.set_visible(self._rw, visible)

    @property
    def orientation_marker_visible(self) -> bool:
        return self._marker.visible

    def _interactive_isd(self) -> float:
        """Pixels per ray while interacting: the set distance, or coarser where the
        window would need more than :data:`INTERACTIVE_RAY_BUDGET` rays."""
        w, h = self._rw.GetSize() if self._rw is not None else (0, 0)
        return interactive_image_sample_distance(self.interactive_image_sample_distance, w, h)

    def _on_start_render(self, *_: object) -> None:
        m = self._mapper
        if self._interactive and m is not None:
            isd = self._interactive_isd()  # the window may have been resized
            if m.GetImageSampleDistance() != isd:
                m.SetImageSampleDistance(isd)
        if self._marker.visible:
            self._marker.follow(self.renderer.GetActiveCamera())

    # ----- rendering --------------------------------------------------------------------
    def set_interactive(self, interactive: bool) -> None:
        """Level of detail: while True, cast fewer, coarser rays (for camera drags and
        slider moves); False restores full quality. The caller renders afterwards."""
        self._check_open()
        self._interactive = bool(interactive)
        self._apply_sampling()

    def bind_interactor(self, interactor: object) -> None:
        """Switch to the interactive level of detail while ``interactor`` (a
        vtkRenderWindowInteractor, e.g. the Qt widget) drags the camera; full quality
        and one render on release."""

        def start(*_: object) -> None:
            self.set_interactive(True)

        def end(*_: object) -> None:
            self.set_interactive(False)
            self.request_render()

        interactor.AddObserver(vtkCommand.StartInteractionEvent, start)  # type: ignore[attr-defined]
        interactor.AddObserver(vtkCommand.EndInteractionEvent, end)  # type: ignore[attr-defined]

    def render(self) -> None:
        """Render now (synchronously)."""
        self._check_open()
        assert self._rw is not None
        self.renderer.ResetCameraClippingRange()
        t0 = time.perf_counter()
        self._rw.Render()
        self.last_timings_s["render"] = time.perf_counter() - t0

    def request_render(self) -> None:
        """Ask for a render: the GUI's coalescing hook if installed, else render now."""
        if self._closed:
            return
        if self.on_render_request is not None:
            self.on_render_request()
        else:
            self.render()

    def render_still(self, width: int, height: int, *, transparent: bool = False) -> np.ndarray:
        """Full-quality render of this scene's own window at ``width`` x ``height``;
        see :func:`viewer.render.offscreen.render_to_array`."""
        self._check_open()
        assert self._rw is not None
        if not self._owns_window:
            raise ViewerError("render_still needs a scene that owns its window; use render_to_array")
        was_interactive = self._interactive
        if was_interactive:
            self.set_interactive(False)
        self._rw.SetSize(int(width), int(height))
        alpha = self.renderer.GetBackgroundAlpha()
        if transparent:
            self._rw.SetAlphaBitPlanes(1)
            self.renderer.SetBackgroundAlpha(0.0)
        try:
            self.render()
            img = grab_window(self._rw, transparent=transparent)
        finally:
            if transparent:
                self.renderer.SetBackgroundAlpha(alpha)
            if was_interactive:
                self.set_interactive(True)
        return img

    def offscreen_twin(self) -> Scene:
        """An offscreen scene with this scene's state (for stills of a GUI scene)."""
        self._check_open()
        if self._twin is None:
            self._twin = Scene(offscreen=True)
        t = self._twin
        if self._volume is not None and t._volume is not self._volume:
            t.set_volume(self._volume)
        if t._manual_masks is not self._manual_masks:
            t.set_class_masks(self._manual_masks)
        if self._manual_masks is None and self._auto_masks is not None and t._auto_masks is not self._auto_masks:
            # Share the already computed masks instead of recomputing them.
            t._auto_masks = self._auto_masks
        t.sample_distance_mm = self.sample_distance_mm
        t.skip_invisible = self.skip_invisible
        t.set_transfer_function(self._tf)
        t.set_crop_box_lps(self._crop_lps)
        t.set_clip_plane(*(self._clip if self._clip is not None else (None, None)))
        t.renderer.SetBackground(*self.renderer.GetBackground())
        t.set_orientation_marker(self._marker.visible)
        t._bone_distance = self._bone_distance
        vm = self._vessel_mesh
        if vm.mesh is not None and t._vessel_mesh.mesh_key != vm.mesh_key:
            t._vessel_mesh.set_mesh(vm.mesh, vm.mesh_key, vm.masks)
            t._vessel_mesh.clip = t._feed_clipped(t._vessel_mesh.mapper, vm.mesh)
        t.set_lesion(self._lesion)
        t.set_keyhole(self._keyhole)
        t.set_vessel_colouring(*self._colouring)
        t._lesion_overlay.copy_from(self._lesion_overlay)
        t.set_camera_state(self.camera_state())
        return t

    def close(self) -> None:
        """Release VTK objects (and the window if the scene owns it). Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._twin is not None:
            self._twin.close()
            self._twin = None
        rw = self._rw
        try:
            self._drop_preview()
            self.renderer.RemoveObserver(self._observer)
            self.renderer.RemoveAllViewProps()
            self._lesion_overlay.close()
            self._bone_distance.clear()
            self._vessel_mesh.set_mesh(None, None, None)
            self._vessel_mesh.mapper.RemoveAllInputs()
            if rw is not None:
                if self._mapper is not None:
                    self._mapper.ReleaseGraphicsResources(rw)
                rw.RemoveRenderer(self.renderer)
                self._marker.close(rw)
                if self._owns_window:
                    rw.Finalize()
        finally:
            self._actor.SetMapper(None)  # type: ignore[arg-type]  # VTK takes None (detach)
            self._mapper = None
            self._rw = None
            self._image = vtkImageData()
            self._buffer = None
            self._buffer_box = None
            self._extent.clear()
            self._auto_masks = None
            self._manual_masks = None
            self._set_calc_mesh(None)
            self._volume = None
            self.on_render_request = None
            self.on_gradient_progress = None

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> Scene:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["CALC_MESH_GRID_MM", "Bounds6", "CameraState", "Scene", "compute_bone_mask", "open_scenes"]
