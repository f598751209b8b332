"""The 3D view: VTK's own Qt render widget hosting the renderer's :class:`Scene`.

Why ``vtkmodules.qt.QVTKRenderWindowInteractor`` and not pyvistaqt: measured on this
machine (docs in /work/shared/DESIGN.md), pyvistaqt rendered five times per frame and
crashed without an X server; the plain VTK widget renders once.

Renders are *requested*, never called directly: the scene's ``on_render_request`` hook
starts a zero-delay single-shot timer unless one is pending, so a burst of slider moves
during a 0.25 s software ray cast produces one render of the latest state, not a queue
of stale ones.

Level of detail: the renderer's interactive mode is on while the mouse drags the camera
or the crop box (VTK's ``StartInteractionEvent`` / ``EndInteractionEvent``, fired by the
interactor style and the box widget) or while a control's slider is held
(:meth:`begin_interaction` / :meth:`end_interaction`, counted so overlapping holds work),
then one full-quality render on release.

Picking: while :attr:`View3DWidget.pick_mode` is on (a lesion, ruler or angle tool is
active), a left click does not turn the camera; the point of the rendered surface under
it (:func:`viewer.render.picking.pick_lps`, LPS mm) is emitted as ``point_picked``.

Scene work off the GUI thread (issue 9): a state edit that needs voxels read or meshes
built (class encoding, keyhole, distance colouring, calcification and overlay meshes, a
new scan's scalars) is prepared by ``viewer.render.scene_data.prepare_scene`` in a
latest-only worker (:attr:`View3DWidget.scene_runner`) from a snapshot of the wanted
state, and applied here when it arrives -- unless the state moved on meanwhile, then it
is dropped. An edit that needs none of that (a vessel-window or colour edit) is applied
at once. ``scene_busy_changed`` drives the window's busy label.
"""

from __future__ import annotations

import dataclasses
import functools
import time
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget
from vtkmodules.qt.QVTKRenderWindowInteractor import QVTKRenderWindowInteractor
from vtkmodules.util.numpy_support import vtk_to_numpy
from vtkmodules.vtkCommonCore import vtkCommand
from vtkmodules.vtkInteractionStyle import vtkInteractorStyleTrackballCamera
from vtkmodules.vtkInteractionWidgets import vtkBoxRepresentation, vtkBoxWidget2
from vtkmodules.vtkIOImage import vtkPNGWriter  # noqa: F401 - registers the IO factory
from vtkmodules.vtkRenderingCore import vtkWindowToImageFilter

from viewer.core.extraction import PreviewMasks
from viewer.core.mask_policy import MaskSettings, masks_fit
from viewer.core.state import ViewerState
from viewer.core.transfer import TransferFunction
from viewer.core.volume import Volume
from viewer.render import scene_adapter
from viewer.render.content import origin_mm
from viewer.render.picking import pick_lps
from viewer.render.scene import Scene
from viewer.render.scene_data import (
    PreparedScene,
    SceneInputs,
    coarse_raw_buffer,
    coarse_spacing,
    pending_work,
    prepare_scene,
    preview_buffer,
)
from viewer.render.shading_warmup import WarmMapper, needs_gradients, warm_mapper
from viewer.ui.workers import LatestOnlyRunner


class _VTKWidget(QVTKRenderWindowInteractor):
    """VTK's Qt widget, with :meth:`release` to free the render window early.

    Once released, the Qt events that reach the widget while it is being torn down
    (close, paint, resize) do nothing instead of touching a freed window."""

    def release(self) -> None:
        self._Timer.stop()
        self.hide()
        self.setUpdatesEnabled(False)
        self._RenderWindow = None
        self._Iren = None

    def Finalize(self) -> None:  # noqa: N802 - VTK API
        if self._RenderWindow is not None:
            super().Finalize()

    def paintEvent(self, ev: Any) -> None:  # noqa: N802 - Qt API
        if self._Iren is not None:
            super().paintEvent(ev)

    def resizeEvent(self, ev: Any) -> None:  # noqa: N802 - Qt API
        if self._RenderWindow is not None:
            super().resizeEvent(ev)


#: Render buffers from this many voxels get a coarse first frame (every second voxel,
#: Scene.show_preview) while the full one is warmed: 512 x 512 x 600 is 159 M; the
#: default phantom (20 M) warms in 0.1-0.2 s and needs none.
PREVIEW_MIN_VOXELS = 60_000_000


class View3DWidget(QWidget):
    """The 3D view bound to a :class:`ViewerState`.

    Signals:
      frame_rendered(full_quality: bool, seconds: float): after every render of the
        window (``full_quality`` is False for interactive level-of-detail frames).
      interaction_changed(active: bool)
    """

    frame_rendered = Signal(bool, float)
    interaction_changed = Signal(bool)
    #: "start" / "progress" / "end" of VTK's shading-gradient computation, emitted
    #: synchronously from inside a render (see :meth:`Scene.on_gradient_progress`).
    shading_progress = Signal(str)
    #: A left click in pick mode hit the rendered surface at this LPS point (mm) ...
    point_picked = Signal(object)
    #: ... or hit nothing.
    pick_missed = Signal()
    #: True while a scene preparation runs in the worker, False when it is applied.
    scene_busy_changed = Signal(bool)
    #: A scene preparation failed (a ViewerError).
    scene_failed = Signal(object)
    #: (inputs, WarmMapper) of a coarse first frame, from the scene worker.
    _preview_ready = Signal(object, object)

    def __init__(self, state: ViewerState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("view3d")
        self.state = state
        self.vtk_widget = _VTKWidget(self)
        self.vtk_widget.setToolTip("")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.vtk_widget)

        self.render_window = self.vtk_widget.GetRenderWindow()
        self.scene = Scene(render_window=self.render_window)
        self.scene.on_render_request = self.request_render
        self.scene.on_gradient_progress = self._on_gradient_progress
        self._last_gradient_emit = 0.0
        self.scene.set_orientation_marker(True)
        self.scene_runner = LatestOnlyRunner("3D scene", self)
        self.scene_runner.finished_latest.connect(self._on_scene_prepared)
        self.scene_runner.failed_latest.connect(self._on_scene_failed)
        self._preview_ready.connect(self._on_preview)
        self._pending_inputs: SceneInputs | None = None
        #: How many coarse first frames were shown (see PREVIEW_MIN_VOXELS).
        self.n_previews = 0
        # A big scan's first separated frame, from preview masks (the mask controller's
        # preview_ready): encoded on every second voxel and warmed here.
        self.separated_preview_runner = LatestOnlyRunner("separated preview", self)
        self.separated_preview_runner.finished_latest.connect(self._on_separated_preview)
        #: How many coarse separated frames were shown (see show_preview_masks).
        self.n_separated_previews = 0
        #: A coarse separated frame that came before the scan's first full scalars: shown
        #: once they are in (their arrival would otherwise replace it at once).
        self._separated_preview_held: tuple[Volume, TransferFunction, PreviewMasks, WarmMapper | None] | None = None
        #: The volume whose masks failed (its bone-only scalars are then made in full);
        #: weak, so a replaced scan is not kept alive by it.
        self._masks_failed_for: weakref.ref[Volume] | None = None
        # New scalars are drawn at once, unshaded, while this worker computes their
        # shading gradients (viewer.render.shading_warmup); the buffer it works for.
        self.shading_runner = LatestOnlyRunner("3D shading", self)
        self.shading_runner.finished_latest.connect(self._on_shading_ready)
        self.shading_runner.failed_latest.connect(self._on_shading_failed)
        self._shading_for: np.ndarray | None = None
        #: Scalars drawn unshaded whose gradients wait for the class masks on their way
        #: (:meth:`masks_settled`), and the hook that says whether masks are on their way
        #: (the window sets it: its mask controller is busy).
        self._shading_waiting: PreparedScene | None = None
        self.masks_expected: Callable[[], bool] | None = None
        #: Prepared results dropped because the state had moved on (for tests).
        self.n_stale_dropped = 0
        self.interactor = self.render_window.GetInteractor()
        style = vtkInteractorStyleTrackballCamera()
        self.interactor.SetInteractorStyle(style)
        self._style = style
        self._observers: list[tuple[Any, int]] = []
        self._observe(style, vtkCommand.StartInteractionEvent, self._on_vtk_start_interaction)
        self._observe(style, vtkCommand.EndInteractionEvent, self._on_vtk_end_interaction)
        self._observe(self.render_window, vtkCommand.StartEvent, self._on_render_start)
        self._observe(self.render_window, vtkCommand.EndEvent, self._on_render_end)
        # An observer of a style's button event replaces the style's own handling
        # (vtkInteractorStyle's HandleObservers), so these decide between picking and
        # the default camera rotation.
        self.pick_mode = False
        self._picking = False
        self._observe(style, vtkCommand.LeftButtonPressEvent, self._on_left_press)
        self._observe(style, vtkCommand.LeftButtonReleaseEvent, self._on_left_release)

        self._render_timer = QTimer(self)
        self._render_timer.setSingleShot(True)
        self._render_timer.setInterval(0)
        self._render_timer.timeout.connect(self._render_now)
        self._holds = 0
        self._render_started = 0.0
        self.n_renders = 0
        self.last_full_frame_time: float | None = None  # time.perf_counter() of it
        self._closed = False

        # Crop box: VTK's box widget with handles on the faces; rotation off so the
        # box stays axis-aligned in LPS (a cropping region is axis-aligned).
        self._box_rep = vtkBoxRepresentation()
        self._box_rep.SetPlaceFactor(1.0)
        self._box_rep.GetOutlineProperty().SetColor(1.0, 0.85, 0.1)
        self._box_widget = vtkBoxWidget2()
        self._box_widget.SetInteractor(self.interactor)
        self._box_widget.SetRepresentation(self._box_rep)
        self._box_widget.SetRotationEnabled(False)
        self._observe(self._box_widget, vtkCommand.StartInteractionEvent, self._on_vtk_start_interaction)
        self._observe(self._box_widget, vtkCommand.InteractionEvent, self._on_box_moved)
        self._observe(self._box_widget, vtkCommand.EndInteractionEvent, self._on_box_released)
        self._box_placed_for: int | None = None

        # Which of the lesion analysis' overlays are drawn (a view setting).
        self.show_entry_points = True
        self.show_centrelines = True
        state.volume_changed.connect(self._on_volume_changed)
        # One handler per field, through the state-to-scene adapter: a field's own scene
        # call at once, and the fields that may need voxels or meshes prepared
        # (transfer function, masks, lesion, keyhole, colouring) through sync_scene --
        # a ruler edit does not re-encode the volume, a vessel-window edit only restyles.
        for field in scene_adapter.SCENE_FIELDS:
            state.event(field).connect(functools.partial(self._on_field_changed, field))

    def _observe(self, obj: Any, event: int, cb: Any) -> None:
        self._observers.append((obj, obj.AddObserver(event, lambda *_a, _cb=cb: _cb())))

    # ----- rendering --------------------------------------------------------------
    def initialize(self) -> None:
        """Start the interactor (call once the widget is shown)."""
        self.vtk_widget.Initialize()

    def request_render(self) -> None:
        """Coalesced render: at most one pending, run from the event loop."""
        if not self._closed and not self._render_timer.isActive():
            self._render_timer.start()

    def _render_now(self) -> None:
        if self._closed:
            return
        self.scene.render()

    def _on_gradient_progress(self, stage: str) -> None:
        # Throttled: VTK reports progress many times a second.
        now = time.perf_counter()
        if stage == "progress" and now - self._last_gradient_emit < 0.1:
            return
        self._last_gradient_emit = now
        self.shading_progress.emit(stage)

    def _on_render_start(self) -> None:
        self._render_started = time.perf_counter()

    def _on_render_end(self) -> None:
        now = time.perf_counter()
        self.n_renders += 1
        full = self._holds == 0 and self.state.volume is not None
        if full:
            self.last_full_frame_time = now
        self.frame_rendered.emit(full, now - self._render_started)

    @property
    def interactive(self) -> bool:
        return self._holds > 0

    def begin_interaction(self) -> None:
        """Reduced level of detail until the matching :meth:`end_interaction`."""
        self._holds += 1
        if self._holds == 1:
            self.scene.set_interactive(True)
            self.interaction_changed.emit(True)

    def end_interaction(self) -> None:
        if self._holds == 0:
            return
        self._holds -= 1
        if self._holds == 0:
            self.scene.set_interactive(False)
            self.interaction_changed.emit(False)
            self.request_render()

    def _on_vtk_start_interaction(self) -> None:
        self.begin_interaction()

    def _on_vtk_end_interaction(self) -> None:
        self.end_interaction()

    def grab_image(self) -> np.ndarray:
        """The render window's pixels as ``(h, w, 3)`` uint8, top row first.

        Read through ``vtkWindowToImageFilter``: ``QWidget.grab()`` of the native VTK
        widget returns garbage (see DESIGN.md)."""
        f = vtkWindowToImageFilter()
        f.SetInput(self.render_window)
        f.SetInputBufferTypeToRGB()
        f.ReadFrontBufferOff()
        f.Update()
        img = f.GetOutput()
        w, h, _ = img.GetDimensions()
        arr = vtk_to_numpy(img.GetPointData().GetScalars()).reshape(h, w, -1)
        return np.ascontiguousarray(arr[::-1, :, :3])

    # ----- state -> scene ---------------------------------------------------------
    @property
    def overlays(self) -> scene_adapter.Overlays:
        """The analysis overlays this view draws (see :meth:`set_planning_overlays`)."""
        return scene_adapter.Overlays(self.show_entry_points, self.show_centrelines)

    def _on_volume_changed(self, volume: Any) -> None:
        if volume is None:
            return
        # Placed only: its scalars are prepared in the worker (a raw copy of a big CTA
        # alone is a few hundred ms), like every later encoding.
        self.shading_runner.cancel()
        self._shading_for = None
        self._separated_preview_held = None
        scene_adapter.place(self.scene, self.state, self.overlays)
        self.scene.set_view("anterior")
        self._place_box()
        self.sync_scene()

    def _on_field_changed(self, field: str, value: Any) -> None:
        if field == "class_masks":
            vol = self.state.volume
            if vol is None or (value is not None and value.bone.shape != vol.shape):
                return  # no scan yet, or masks of a previous scan arriving late
        prepared = scene_adapter.apply_field(self.scene, self.state, field, self.overlays)
        if field == "crop_box_lps" and value is None:
            self._place_box()
        if field in scene_adapter.FIELD_HANDLERS:
            self.request_render()
        if prepared:
            self.sync_scene()

    # ----- scene preparation off the GUI thread -----------------------------------------
    @property
    def scene_busy(self) -> bool:
        """Whether a scene preparation or the shading of new scalars is running (its
        result not yet applied), or the shading waits for the class masks."""
        return self._pending_inputs is not None or self.shading_pending

    @property
    def scene_busy_preparing(self) -> bool:
        """Whether a scene preparation (new scalars or meshes) is on its way."""
        return self._pending_inputs is not None

    @property
    def shading_pending(self) -> bool:
        """Whether the volume is drawn unshaded while its gradients are computed (or
        wait for the class masks on their way)."""
        return self._shading_for is not None or self._shading_waiting is not None

    def _busy_edge(self, was: bool) -> None:
        if was != self.scene_busy:
            self.scene_busy_changed.emit(self.scene_busy)

    def _set_pending(self, inputs: SceneInputs | None) -> None:
        was = self.scene_busy
        self._pending_inputs = inputs
        self._busy_edge(was)

    def _start_shading(self, prepared: PreparedScene, *, wait_for_masks: bool = True) -> None:
        """New scalars are shown: draw them unshaded now and compute their shading
        gradients in the shading worker (CPU ray caster only; the GPU one shades in
        its shader, and a transfer function without shading needs no gradients).

        Separated scalars made without class masks while the masks are on their way
        (a real-size scan is drawn bone-only first) are replaced within seconds: their
        gradients (seconds of both cores at 512 x 512 x 600, which the separation needs
        meanwhile) wait for :meth:`masks_settled` instead, and are made only if the masks
        did not come."""
        buffer, inputs = prepared.buffer, prepared.inputs
        if buffer is None or inputs.volume is None:
            return
        was = self.scene_busy
        self._shading_waiting = None
        if self.scene.mapper_kind != "cpu" or not needs_gradients(inputs.tf):
            self._busy_edge(was)
            return
        expected = self.masks_expected
        # (the state's transfer function: the scene's is one-class until the masks come)
        waits = self.state.transfer_function.separated and self.state.class_masks is None
        if wait_for_masks and waits and expected is not None and expected():
            self._shading_waiting = prepared
            self.scene.defer_shading(True)
            self._busy_edge(was)
            return
        self._shading_for = buffer
        self.scene.defer_shading(True)
        spacing, tf = inputs.volume.spacing_mm, inputs.tf
        box = prepared.buffer_box

        def work(_progress: Any) -> tuple[np.ndarray, WarmMapper | None]:
            return buffer, warm_mapper(buffer, spacing, tf, box=box)

        self.shading_runner.submit(work)
        self._busy_edge(was)

    def masks_settled(self) -> None:
        """The class masks stopped coming (the mask worker went idle): scalars whose
        shading waited for them get it now, unless new scalars are on their way (the
        masks came: their preparation starts its own shading). A coarse frame that
        stood in for a big scan's bone-only scalars while its masks were made
        (:meth:`_interim_scalars`) and is still all there is (the masks failed or were
        cancelled): those scalars are made now."""
        if (
            not self._closed
            and self._pending_inputs is None
            and not self.scene.has_scalars
            and self.scene.previewing
            and self.state.volume is not None
            and self.state.class_masks is None
        ):
            self.sync_scene()
            return
        waiting = self._shading_waiting
        if waiting is None or self._closed or self._pending_inputs is not None:
            return
        was = self.scene_busy
        self._shading_waiting = None
        if waiting.buffer is self.scene.buffer:
            self._start_shading(waiting, wait_for_masks=False)
        elif self._shading_for is None:
            self.scene.defer_shading(False)  # (other scalars, no shading of theirs running)
        self._busy_edge(was)

    def _on_shading_ready(self, result: tuple[np.ndarray, WarmMapper | None]) -> None:
        buffer, warm = result
        if self._closed or buffer is not self._shading_for:
            return  # made for scalars the scene no longer shows
        was = self.scene_busy
        self._shading_for = None
        if not self.scene.adopt_shading(warm):
            # No offscreen EGL here (or other scalars): the next render shades, on this
            # thread, as VTK does by default.
            self.scene.defer_shading(False)
        self._busy_edge(was)
        self.request_render()

    def _on_shading_failed(self, error: Any) -> None:
        was = self.scene_busy
        self._shading_for = None
        if not self._closed:
            self.scene.defer_shading(False)
            self.request_render()
        self._busy_edge(was)

    def wanted_inputs(self) -> SceneInputs | None:
        """The scene snapshot for the state now (None before the scene has its volume)."""
        vol = self.state.volume
        if vol is None or self.scene.closed or self.scene.volume is not vol:
            return None
        # Masks only from the mask controller: never computed on this thread.
        return scene_adapter.scene_inputs(self.scene, self.state, own_masks=False)

    def sync_scene(self) -> None:
        """Bring the scene to the state: at once when that is a restyle, else in the
        worker (a newer request supersedes a running one)."""
        inputs = self.wanted_inputs()
        if inputs is None:
            return
        if self._edit_waits_for_masks(inputs):
            return
        if not pending_work(inputs):
            if self._pending_inputs is not None:
                self.scene_runner.cancel()
                self._set_pending(None)
            self.scene.apply_prepared(prepare_scene(inputs))
            self.request_render()
            return
        self._set_pending(inputs)
        cpu = self.scene.mapper_kind == "cpu"
        # Nothing of this volume drawn yet: a big one gets a coarse first frame.
        preview = self._preview_ready.emit if cpu and not self.scene.has_scalars else None
        coarse_only = preview is not None and self._interim_scalars(inputs)
        self.scene_runner.submit(
            functools.partial(self._prepare, inputs, cpu, preview=preview, coarse_only=coarse_only)
        )

    def _edit_waits_for_masks(self, inputs: SceneInputs) -> bool:
        """A bone-threshold edit in separated mode, the masks it needs on their way (the
        window's mask controller makes masks whenever the held ones do not fit): the
        picture stays as it is until they (or their coarse preview) come. The threshold
        only picks the separation's cortical seeds; drawn with the masks held, the frame
        would look the same and its full-quality render (0.1-0.4 s on a real-size scan)
        would share the two cores with the preview separation. Not once the masks of
        this scan have failed: the edit is then drawn with the masks held."""
        cur = self.scene.transfer_function
        masks = inputs.masks
        vol = inputs.volume
        return (
            self.masks_expected is not None
            and vol is not None
            and masks is not None
            and masks is self.scene.class_masks
            and cur.separated
            and inputs.tf.separated
            and inputs.tf.bone_threshold_hu != cur.bone_threshold_hu
            and inputs.tf.with_bone_threshold(cur.bone_threshold_hu) == cur
            and not masks_fit(masks, MaskSettings.of(inputs.tf), shape=vol.shape)
            and not self._masks_failed(vol)
        )

    def _masks_failed(self, volume: Volume) -> bool:
        """Whether the masks of ``volume`` failed (see :meth:`drop_separated_preview`)."""
        return self._masks_failed_for is not None and self._masks_failed_for() is volume

    def _interim_scalars(self, inputs: SceneInputs) -> bool:
        """Whether the scalars ``inputs`` ask for would only stand in until separated
        ones come: a big scan (PREVIEW_MIN_VOXELS or more) in separated mode whose
        masks are on their way. Its coarse first frame then stands in for them instead
        (the full-size bone-only buffer, its warm-up and block ranges -- a volume's
        worth of memory and about a second of a core -- would be drawn for a few
        seconds while the separation needs both cores)."""
        st = self.state
        return (
            inputs.volume is not None
            and inputs.volume.hu.size >= PREVIEW_MIN_VOXELS
            and st.transfer_function.separated
            and st.class_masks is None
            and inputs.masks is None
            and not self._masks_failed(inputs.volume)
        )

    @staticmethod
    def _prepare(
        inputs: SceneInputs,
        cpu: bool,
        progress: Any,
        preview: Callable[[Any, Any], None] | None = None,
        coarse_only: bool = False,
    ) -> PreparedScene:
        """On the worker: the scene's heavy half; with new scalars for the CPU ray
        caster, also a mapper that has drawn them once unshaded (what a first render
        builds, 0.7 s at 360 x 224 x 380, is then not built on the GUI thread).

        ``preview(inputs, warm)``: called first, for scalars of PREVIEW_MIN_VOXELS or
        more, with a mapper warmed for every second voxel of them (an eighth of the
        work): the view draws it as a coarse first frame while the full one warms.

        ``coarse_only`` (with ``preview``; :meth:`_interim_scalars`): the coarse frame
        is made straight from the volume and is all: the result brings no scalars (the
        separated ones replace the coarse frame when their masks come). Where no
        coarse mapper can be warmed (no offscreen EGL), the full scalars are made."""
        if coarse_only and preview is not None and inputs.volume is not None:
            vol = inputs.volume
            sp = vol.spacing_mm
            coarse = coarse_raw_buffer(vol, inputs.tf)
            pw = warm_mapper(coarse, coarse_spacing(sp), inputs.tf, shade=False)
            if pw is not None:
                preview(inputs, pw)
                return PreparedScene(inputs, inputs.masks)
        prepared = prepare_scene(inputs, progress)
        if cpu and prepared.buffer is not None and inputs.volume is not None:
            spacing = inputs.volume.spacing_mm
            box = prepared.buffer_box  # (a buffer cut to the body: viewer.render.content)
            if preview is not None and prepared.buffer.size >= PREVIEW_MIN_VOXELS:
                coarse = np.ascontiguousarray(prepared.buffer[::2, ::2, ::2])
                double = coarse_spacing(spacing)
                # (every second voxel of the box: its corner is the same point)
                corner = origin_mm(box, spacing)
                pw = warm_mapper(coarse, double, inputs.tf, shade=False, origin=corner)
                if pw is not None:
                    preview(inputs, pw)
            warm = warm_mapper(prepared.buffer, spacing, inputs.tf, shade=False, box=box)
            if warm is not None:
                prepared = dataclasses.replace(prepared, warm=warm)
        return prepared

    def _on_preview(self, inputs: SceneInputs, warm: WarmMapper) -> None:
        """A coarse first frame, while the same preparation is still the one wanted and
        nothing of its volume is drawn yet (unshaded: it has no gradients)."""
        if self._closed or inputs is not self._pending_inputs or self.scene.has_scalars:
            return
        if needs_gradients(inputs.tf):
            self.scene.defer_shading(True)
        if self.scene.show_preview(warm, inputs.volume, inputs.tf):
            self.n_previews += 1
            self.request_render()

    def show_preview_masks(self, volume: Volume, preview: PreviewMasks) -> None:
        """Draw a coarse separated frame of ``volume`` from ``preview`` (masks of every
        few slices, :func:`viewer.core.extraction.preview_class_masks`) while its full
        masks are made: every second voxel, encoded and warmed on a worker, drawn over
        the bone-only frame until the separated scalars come (CPU ray caster only)."""
        tf = self.state.transfer_function
        if self._closed or volume is not self.state.volume or self.scene.mapper_kind != "cpu" or not tf.separated:
            return
        spacing = volume.spacing_mm

        def work(_progress: Any) -> tuple[Volume, TransferFunction, PreviewMasks, WarmMapper | None]:
            buf = preview_buffer(volume, tf, preview)
            coarse = coarse_spacing(spacing)
            return volume, tf, preview, warm_mapper(buf, coarse, tf, shade=False)

        self.separated_preview_runner.submit(work)

    def _on_separated_preview(self, result: tuple[Volume, TransferFunction, PreviewMasks, WarmMapper | None]) -> None:
        volume, tf, preview, warm = result
        shape = volume.shape
        if (
            warm is None
            or self._closed
            or volume is not self.state.volume
            or tf != self.state.transfer_function
            or masks_fit(self.state.class_masks, preview.settings, shape=shape)
            or masks_fit(self.scene.class_masks, preview.settings, shape=shape)
        ):
            return  # the separated scalars came first, or the state moved on
        if not self.scene.has_scalars and not (self.scene.previewing and self._pending_inputs is None):
            self._separated_preview_held = result
            return
        if needs_gradients(tf):
            self.scene.defer_shading(True)
        # over the bone-only scalars; or, where a coarse frame stands in for them
        # (_interim_scalars), in its place
        over = self.scene.has_scalars
        if self.scene.show_preview(warm, volume, tf, over=over, masks=preview.masks):
            self.n_separated_previews += 1
            self.request_render()

    def drop_separated_preview(self) -> None:
        """The full masks failed: take back a coarse separated frame; where a coarse
        frame stood in for the bone-only scalars (:meth:`_interim_scalars`), those are
        made now."""
        vol = self.state.volume
        self._masks_failed_for = None if vol is None else weakref.ref(vol)
        if self.scene.previewing_over and self.scene.drop_preview():
            self.request_render()
        if self.state.volume is not None and (
            not self.scene.has_scalars
            # a bone-threshold edit waited for these masks (_edit_waits_for_masks)
            or self.scene.transfer_function != self.state.transfer_function
        ):
            QTimer.singleShot(0, self.sync_scene)

    def _on_scene_prepared(self, prepared: PreparedScene) -> None:
        if self._closed or prepared.inputs is not self._pending_inputs:
            self.n_stale_dropped += 1  # made for a state that has moved on
            return
        self._set_pending(None)
        if not self.scene.apply_prepared(prepared):
            self.n_stale_dropped += 1
            self.sync_scene()
            return
        if prepared.buffer is not None or (self.scene.previewing and not self.scene.has_scalars):
            if prepared.buffer is not None:
                self._start_shading(prepared)
            held, self._separated_preview_held = self._separated_preview_held, None
            if held is not None:
                self._on_separated_preview(held)
        elif self._shading_waiting is not None and not (self.masks_expected is not None and self.masks_expected()):
            self.masks_settled()
        self.request_render()

    def _on_scene_failed(self, error: Any) -> None:
        self._set_pending(None)
        # A coarse first frame stands for scalars that will not come: not left on show.
        if self.scene.drop_preview():
            self.request_render()
        self.scene_failed.emit(error)

    # ----- lesion planning ------------------------------------------------------------
    def set_planning_overlays(self, show_entry_points: bool, show_centrelines: bool) -> None:
        """Show or hide the analysis' entry-point markers and branch centrelines."""
        self.show_entry_points = bool(show_entry_points)
        self.show_centrelines = bool(show_centrelines)
        scene_adapter.apply_field(self.scene, self.state, "lesion_analysis", self.overlays)
        self.request_render()

    # ----- picking ----------------------------------------------------------------
    def _on_left_press(self) -> None:
        if not self.pick_mode or self.state.volume is None:
            self._style.OnLeftButtonDown()
            return
        self._picking = True
        x, y = self.interactor.GetEventPosition()
        self.pick_at(x, y)

    def _on_left_release(self) -> None:
        if self._picking:
            self._picking = False
            return
        self._style.OnLeftButtonUp()

    def pick_at(self, x_px: float, y_px: float) -> tuple[float, float, float] | None:
        """Pick the rendered surface at VTK display pixel ``(x_px, y_px)`` (origin at
        the bottom left); emits ``point_picked(lps)`` or ``pick_missed()``."""
        lps = pick_lps(self.scene.renderer, x_px, y_px)
        if lps is None:
            self.pick_missed.emit()
        else:
            self.point_picked.emit(lps)
        return lps

    # ----- camera -----------------------------------------------------------------
    def set_view(self, name: str) -> None:
        self.scene.set_view(name)
        self.request_render()

    def reset_camera(self) -> None:
        self.scene.reset_camera()
        self.request_render()

    # ----- crop box ---------------------------------------------------------------
    def _full_bounds(self) -> tuple[float, ...] | None:
        vol = self.state.volume
        if vol is None:
            return None
        lo, hi = vol.bounds_lps()
        return (lo[0], hi[0], lo[1], hi[1], lo[2], hi[2])

    def _place_box(self) -> None:
        b = self.state.crop_box_lps or self._full_bounds()
        if b is not None:
            self._box_rep.PlaceWidget(list(b))

    def set_crop_handles_visible(self, on: bool) -> None:
        """Show or hide the crop box's handles in the view."""
        if on:
            self._place_box()
        self._box_widget.SetEnabled(1 if on and self.state.volume is not None else 0)
        self.request_render()

    @property
    def crop_handles_visible(self) -> bool:
        return bool(self._box_widget.GetEnabled())

    def _box_bounds(self) -> tuple[float, float, float, float, float, float]:
        x0, x1, y0, y1, z0, z1 = (float(v) for v in self._box_rep.GetBounds())
        return x0, x1, y0, y1, z0, z1

    def _on_box_moved(self) -> None:
        self.state.crop_box_lps = self._box_bounds()

    def _on_box_released(self) -> None:
        self.state.crop_box_lps = self._box_bounds()
        self.end_interaction()

    # ----- teardown ---------------------------------------------------------------
    def close_view(self) -> None:
        """Release VTK resources: stop timers, drop observers, close the scene, and
        finalize the render window (VTK otherwise touches a dead X window at exit)."""
        if self._closed:
            return
        self._closed = True
        self._render_timer.stop()
        self.scene_runner.shutdown()
        self.shading_runner.shutdown()
        self.separated_preview_runner.shutdown()
        self._shading_for = None
        self._set_pending(None)
        for obj, tag in self._observers:
            obj.RemoveObserver(tag)
        self._observers.clear()
        self._box_widget.SetEnabled(0)
        self._box_widget.SetInteractor(None)  # type: ignore[arg-type]  # VTK takes None (detach); its stubs do not say so
        self.scene.on_render_request = None
        self.scene.close()
        self.vtk_widget.Finalize()
        # QVTKRenderWindowInteractor's own observers (timers, cursor) hold bound
        # methods of the widget: a Python <-> VTK reference cycle that the garbage
        # collector cannot see, which would keep the render window -- and the X
        # display connection VTK opened for it -- alive until the interpreter exits
        # (where Xlib aborts the process if the X server is already gone).
        self.interactor.RemoveAllObservers()
        self.render_window.RemoveAllObservers()
        # And drop the widget's own references, so the render window is freed now
        # rather than whenever Qt deletes the (C++-owned) widget.
        self.vtk_widget.release()
        # Dropped, not set to None: nothing may use them once the view is closed.
        del self._style, self._box_widget, self._box_rep
        self.interactor = None
        self.render_window = None


__all__ = ["View3DWidget"]
