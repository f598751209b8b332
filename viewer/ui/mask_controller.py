"""The mask controller: the one owner of the class masks of the window's state.

It watches the state's volume and transfer function, asks the one mask policy
(:func:`viewer.core.mask_policy.masks_fit`) whether the masks it holds still fit, and
when they do not, computes new ones off the GUI thread: debounced (a slider drag makes
one job, not one per pixel moved), latest request wins (an older job is cancelled and
its result, if it still arrives, dropped), cancellable. The result goes into
``state.class_masks``; the scene receives it from there and never computes masks for
the window itself.

It needs no window: give it a :class:`ViewerState` (tests pass a ``compute`` function
that stands in for the separation). The window shows what it reports:
``busy_changed(bool)``, ``failed(message)`` and ``masks_ready(masks)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from viewer.core.extraction import ClassMasks, PreviewMasks, class_masks_for, preview_class_masks
from viewer.core.mask_policy import MaskSettings, masks_fit
from viewer.core.priority import lower_this_thread
from viewer.core.progress import ProgressFn
from viewer.core.state import ViewerState
from viewer.core.volume import Volume
from viewer.ui.workers import LatestOnlyRunner

#: Delay (ms) after the last threshold change before the masks are recomputed.
MASK_DEBOUNCE_MS = 120

#: ``compute(volume, settings, progress) -> ClassMasks``: the plain synchronous work.
ComputeMasks = Callable[[Volume, MaskSettings, ProgressFn], ClassMasks]
#: ``preview(volume, settings, progress) -> PreviewMasks | None``: masks of a few slices.
ComputePreview = Callable[[Volume, MaskSettings, ProgressFn], PreviewMasks | None]

#: A scan of this many voxels or more whose held masks do not fit (its first
#: separation, a new bone threshold) gets preview masks of every few slices first
#: (:func:`viewer.core.extraction.preview_class_masks`: a quarter of the work at 2 mm
#: slices), so its separated frame need not wait for the whole separation (issue 9:
#: 512 x 512 x 600 takes 3-4 s on 2 cores).
PREVIEW_MASKS_MIN_VOXELS = 60_000_000


def compute_preview(volume: Volume, settings: MaskSettings, progress: ProgressFn | None = None) -> PreviewMasks | None:
    """Preview masks of ``volume`` (None where its slices are too thick for them or the
    classic separation is asked: it is quick anyway)."""
    if not settings.real_ct:
        return None
    return preview_class_masks(volume.hu, volume.spacing_mm, settings, progress)


def compute_masks(volume: Volume, settings: MaskSettings, progress: ProgressFn | None = None) -> ClassMasks:
    """The class masks of ``volume`` for ``settings`` (plain, synchronous: the mask
    controller's jobs and the load worker both call it)."""
    return class_masks_for(volume.hu, volume.spacing_mm, settings, progress)


class MaskController(QObject):
    """Keeps ``state.class_masks`` fitting the state's volume and transfer function
    while separated mode is on.

    Signals: ``masks_ready(masks)`` after new masks went into the state,
    ``failed(message)`` when the latest job failed (a cancelled or superseded job
    reports nothing), ``busy_changed(bool)`` while a job runs, and
    ``preview_ready(volume, preview)`` when a big scan's job made preview masks
    (:class:`~viewer.core.extraction.PreviewMasks`, for a coarse first separated frame)
    on its way to the full ones.
    """

    masks_ready = Signal(object)
    preview_ready = Signal(object, object)
    #: (worker -> GUI thread) preview masks made by the job of this number
    _preview_made = Signal(int, object, object)
    failed = Signal(str)
    busy_changed = Signal(bool)

    def __init__(
        self,
        state: ViewerState,
        parent: QObject | None = None,
        *,
        compute: ComputeMasks | None = None,
        debounce_ms: int = MASK_DEBOUNCE_MS,
        preview: ComputePreview | None = None,
    ) -> None:
        super().__init__(parent)
        self.state = state
        self._compute: ComputeMasks = compute if compute is not None else compute_masks
        self._preview: ComputePreview = preview if preview is not None else compute_preview
        #: Voxels from which a first separation makes preview masks first.
        self.preview_min_voxels = PREVIEW_MASKS_MIN_VOXELS
        #: Whether anyone draws preview masks now (the window: its 3D view uses the CPU
        #: ray caster; a GPU one draws the full masks as fast): None, always.
        self.preview_wanted: Callable[[], bool] | None = None
        self._preview_made.connect(self._on_preview_made)
        #: id() of the volume ``state.class_masks`` were made for (None: no masks of ours).
        self._volume_id: int | None = None
        self.runner = LatestOnlyRunner("class masks", self)
        self.runner.finished_latest.connect(self._on_job_done)
        self.runner.failed_latest.connect(lambda e: self.failed.emit(str(e)))
        self.runner.busy_changed.connect(self.busy_changed)
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(int(debounce_ms))
        self.timer.timeout.connect(self.start_now)
        state.volume_changed.connect(self._on_state_changed)
        state.transfer_function_changed.connect(self._on_state_changed)
        self._shut_down = False

    # ----- what the window asks -----------------------------------------------------
    @property
    def busy(self) -> bool:
        """A job runs or is about to start (the debounce timer runs)."""
        return self.runner.busy or self.timer.isActive()

    def settings_for_load(self) -> MaskSettings | None:
        """The settings to compute masks for along with a load (separated mode), so the
        first frame of a new scan is already separated; None otherwise."""
        tf = self.state.transfer_function
        return MaskSettings.of(tf) if tf.separated else None

    def is_current(self) -> bool:
        """Whether the state's masks fit its volume and transfer function (the policy)."""
        vol = self.state.volume
        if vol is None or self._volume_id != id(vol):
            return False
        return masks_fit(self.state.class_masks, MaskSettings.of(self.state.transfer_function), shape=vol.shape)

    def drop(self) -> None:
        """Forget the masks and every job (a new scan is about to replace the old one:
        nothing may pair it with the old scan's masks)."""
        self.timer.stop()
        self.runner.cancel()
        self._volume_id = None
        self.state.class_masks = None

    def adopt(self, volume: Volume, masks: ClassMasks) -> None:
        """Use ``masks`` made for ``volume`` elsewhere (by the load worker): they are
        shown at once, and newer ones follow when the thresholds moved on meanwhile."""
        if volume is not self.state.volume or masks.bone.shape != volume.shape:
            return
        self._volume_id = id(volume)
        self.state.class_masks = masks
        self.request()

    def request(self) -> None:
        """Schedule new masks if separated mode needs them (debounced)."""
        tf, vol = self.state.transfer_function, self.state.volume
        if self._shut_down or vol is None or not tf.separated:
            self.timer.stop()
            return
        if self.is_current():
            self.timer.stop()
            return
        self.timer.start()

    def start_now(self) -> None:
        """Start the job for the current volume and settings now (latest wins)."""
        self.timer.stop()
        vol = self.state.volume
        if self._shut_down or vol is None:
            return
        settings = MaskSettings.of(self.state.transfer_function)
        compute, vid = self._compute, id(vol)
        held = self.state.class_masks
        # Nothing separated of the scan can be drawn for these settings (its first
        # separation, or a new bone threshold, table or contrast setting -- not a new
        # vessel window, which restyles the masks held): a big one gets preview masks
        # first, in the same job (one after the other: the two would share the cores).
        unusable = self._volume_id != vid or not masks_fit(held, settings, shape=vol.shape)
        wanted = self.preview_wanted is None or self.preview_wanted()
        preview = self._preview if unusable and wanted and vol.hu.size >= self.preview_min_voxels else None
        made = self._preview_made
        job = self.runner.latest + 1  # the number submit gives this job

        def work(progress: ProgressFn) -> tuple[int, ClassMasks]:
            # A new thread per job: its lower priority ends with it (viewer.core.priority)
            lower_this_thread()
            if preview is not None:
                pm = preview(vol, settings, progress)
                if pm is not None:
                    made.emit(job, vol, pm)
            return vid, compute(vol, settings, progress)

        self.runner.submit(work)

    def cancel(self) -> None:
        """Stop the pending and running jobs: no result is applied, no error reported."""
        self.timer.stop()
        self.runner.cancel()

    def shutdown(self) -> None:
        """Cancel everything and wait for the threads (idempotent)."""
        self._shut_down = True
        self.timer.stop()
        self.runner.shutdown()

    # ----- reactions ----------------------------------------------------------------
    def _on_state_changed(self, _value: Any) -> None:
        self.request()

    def _on_preview_made(self, job: int, volume: Volume, preview: PreviewMasks) -> None:
        """Preview masks reach the window only while their job is the latest, their scan
        shown and no masks in the state that may be drawn for their settings."""
        if self._shut_down or job != self.runner.latest or volume is not self.state.volume:
            return
        if masks_fit(self.state.class_masks, preview.settings, shape=volume.shape):
            return
        if preview.settings != MaskSettings.of(self.state.transfer_function):
            return
        self.preview_ready.emit(volume, preview)

    def _on_job_done(self, result: tuple[int, ClassMasks]) -> None:
        vid, masks = result
        vol = self.state.volume
        if self._shut_down or vol is None or id(vol) != vid or masks.bone.shape != vol.shape:
            return  # made for a scan that is gone
        self._volume_id = vid
        self.state.class_masks = masks
        self.masks_ready.emit(masks)
        # The thresholds moved on while the job ran: compute the newer masks.
        self.request()


__all__ = ["MASK_DEBOUNCE_MS", "ComputeMasks", "MaskController", "compute_masks"]
