"""The viewer's evented state: plain Python, no Qt (napari's model layer, in small).

One :class:`ViewerState` holds what the window shows: the volume, the transfer
function and the preset it came from, the bone mask of separated mode, the crop box
and clip plane, the layout, the crosshair and whether patient identity is shown. Every
field has a change event ``<field>_changed``; widgets and the renderer *subscribe* to
these events and never talk to each other directly, so a slider, a session file and a
test all change the picture the same way: by assigning a field.

Assigning a value equal to the current one emits nothing (so two widgets bound to the
same field cannot ping-pong). :func:`bind` is the one helper that ties a widget to a
field both ways, with a feedback guard.

Frames and units: ``crosshair_lps`` is a point in DICOM patient coordinates (LPS, mm);
``crop_box_lps`` is ``(xmin, xmax, ymin, ymax, zmin, zmax)`` in LPS mm (VTK's bounds
order); ``clip_plane`` is ``(origin_lps, normal_lps)``, each three floats, LPS mm and
a unit vector.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

import numpy as np

from viewer.core.extraction import ClassMasks
from viewer.core.transfer import TransferFunction
from viewer.core.volume import Volume

if TYPE_CHECKING:  # pragma: no cover
    from viewer.core.lesion import Lesion, LesionAnalysis
    from viewer.core.measure import Measurement

log = logging.getLogger(__name__)

T = TypeVar("T")
Callback = Callable[[Any], None]
Layout = Literal["3d", "2x2"]
LAYOUTS: tuple[str, ...] = ("3d", "2x2")
#: Vessel colourings: none, by distance to the lesion, by distance to the bone surface.
VESSEL_COLOURINGS: tuple[str, ...] = ("off", "lesion", "bone")

Bounds6 = tuple[float, float, float, float, float, float]
Vec3 = tuple[float, float, float]
ClipPlane = tuple[Vec3, Vec3]


class Event:
    """A list of callbacks called with the new value, in connection order.

    A callback that raises does not stop the others (one broken subscriber must not
    leave the rest of the window stale), and is not swallowed either: once every
    callback was called, the first exception is raised again from :meth:`emit` (any
    later ones are logged with their tracebacks), so the code that set the field -- a
    test, or the Qt slot, whose exception pytest-qt turns into a failure -- sees it.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._callbacks: list[Callback] = []
        self._blocked = 0

    def connect(self, callback: Callback) -> Callback:
        """Call ``callback(value)`` on every emission; returns it (usable as a decorator)."""
        if callback not in self._callbacks:
            self._callbacks.append(callback)
        return callback

    def disconnect(self, callback: Callback | None = None) -> None:
        """Remove one callback, or all of them when ``callback`` is None."""
        if callback is None:
            self._callbacks.clear()
        elif callback in self._callbacks:
            self._callbacks.remove(callback)

    @property
    def n_callbacks(self) -> int:
        return len(self._callbacks)

    @contextlib.contextmanager
    def blocked(self) -> Iterator[None]:
        """Suppress emissions inside the ``with`` block."""
        self._blocked += 1
        try:
            yield
        finally:
            self._blocked -= 1

    def emit(self, value: Any) -> None:
        """Call every callback with ``value``; then raise the first exception, if any."""
        if self._blocked:
            return
        first: Exception | None = None
        for cb in list(self._callbacks):
            try:
                cb(value)
            except Exception as exc:  # noqa: BLE001 - raised again below, once the others ran
                if first is None:
                    first = exc
                else:
                    log.exception("callback %r for %s failed too", cb, self.name)
        if first is not None:
            raise first


def _replaced_whole(v: Any) -> bool:
    """Values compared by identity: arrays, masks, lesion analyses."""
    return isinstance(v, (np.ndarray, ClassMasks)) or type(v).__name__ == "LesionAnalysis"


def _same(a: Any, b: Any) -> bool:
    """Whether assigning ``b`` over ``a`` is a no-op (no event)."""
    if a is b:
        return True
    if _replaced_whole(a) or _replaced_whole(b):
        # Masks are replaced, never edited in place: identity is the right test, and
        # element-wise comparison of a 0.3 GB array on every assignment is not (an
        # analysis holds centreline arrays: also replaced whole).
        return False
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - incomparable values are different
        return False


class ViewerState:
    """Everything the window shows, one change event per field.

    Fields (assign to change; each emits ``<field>_changed(new_value)``):

    * ``volume``: :class:`Volume` or None.
    * ``transfer_function``: :class:`TransferFunction` (frozen; edits make new ones).
    * ``preset_name``: name of the preset the transfer function started from.
    * ``class_masks``: :class:`~viewer.core.extraction.ClassMasks` (bone and calcified
      shells, with the thresholds they were made for) for separated mode, or None.
    * ``crop_box_lps``: ``(xmin, xmax, ymin, ymax, zmin, zmax)`` LPS mm, or None.
    * ``clip_plane``: ``((ox, oy, oz), (nx, ny, nz))`` LPS mm / unit normal, or None.
    * ``layout``: ``"3d"`` or ``"2x2"``.
    * ``crosshair_lps``: ``(x, y, z)`` LPS mm, or None.
    * ``show_identity``: whether patient name/ID may be shown (off by default).
    * ``lesion``: the :class:`~viewer.core.lesion.Lesion` the user marked (LPS mm), or None.
    * ``vessel_colouring``: ``"off"``, ``"lesion"`` or ``"bone"``: vessels coloured by
      their distance (mm) to the lesion or to the bone surface.
    * ``keyhole``: bone removed inside the lesion region (vessels stay).
    * ``measurements``: tuple of :class:`~viewer.core.measure.Ruler` /
      :class:`~viewer.core.measure.Angle` (LPS mm), in the order they were made.
    * ``lesion_analysis``: the :class:`~viewer.core.lesion.LesionAnalysis` of the
      current lesion, or None (cleared when the lesion or the volume changes).
    """

    FIELDS: tuple[str, ...] = (
        "volume",
        "transfer_function",
        "preset_name",
        "class_masks",
        "crop_box_lps",
        "clip_plane",
        "layout",
        "crosshair_lps",
        "show_identity",
        "lesion",
        "vessel_colouring",
        "keyhole",
        "measurements",
        "lesion_analysis",
    )

    volume: Volume | None
    transfer_function: TransferFunction
    preset_name: str
    class_masks: ClassMasks | None
    crop_box_lps: Bounds6 | None
    clip_plane: ClipPlane | None
    layout: str
    crosshair_lps: Vec3 | None
    show_identity: bool
    lesion: Lesion | None
    vessel_colouring: str
    keyhole: bool
    measurements: tuple[Measurement, ...]
    lesion_analysis: LesionAnalysis | None

    def __init__(self, transfer_function: TransferFunction | None = None, preset_name: str = "") -> None:
        tf = transfer_function if transfer_function is not None else TransferFunction()
        values: dict[str, Any] = {
            "volume": None,
            "transfer_function": tf,
            "preset_name": preset_name or tf.name,
            "class_masks": None,
            "crop_box_lps": None,
            "clip_plane": None,
            "layout": "2x2",
            "crosshair_lps": None,
            "show_identity": False,
            "lesion": None,
            "vessel_colouring": "off",
            "keyhole": False,
            "measurements": (),
            "lesion_analysis": None,
        }
        object.__setattr__(self, "_values", values)
        for name in self.FIELDS:
            object.__setattr__(self, f"{name}_changed", Event(f"{name}_changed"))

    # Attribute access goes through the value table so that every assignment of a
    # field is seen, whoever makes it.
    def __getattr__(self, name: str) -> Any:
        values = object.__getattribute__(self, "_values")
        if name in values:
            return values[name]
        raise AttributeError(f"{type(self).__name__} has no field {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in self.FIELDS:
            raise AttributeError(f"{type(self).__name__} has no field {name!r}")
        value = self._normalise(name, value)
        values = object.__getattribute__(self, "_values")
        if _same(values[name], value):
            return
        values[name] = value
        self.event(name).emit(value)

    def event(self, name: str) -> Event:
        """The change event of field ``name``."""
        if name not in self.FIELDS:
            raise AttributeError(f"{type(self).__name__} has no field {name!r}")
        event: Event = object.__getattribute__(self, f"{name}_changed")
        return event

    def update(self, **changes: Any) -> None:
        """Assign several fields; each emits its own event, in :attr:`FIELDS` order
        (volume before the things that depend on it)."""
        unknown = set(changes) - set(self.FIELDS)
        if unknown:
            raise AttributeError(f"unknown state fields: {sorted(unknown)}")
        for name in self.FIELDS:
            if name in changes:
                setattr(self, name, changes[name])

    def snapshot(self) -> dict[str, Any]:
        """The current field values (references, not copies)."""
        return dict(object.__getattribute__(self, "_values"))

    @staticmethod
    def _normalise(name: str, value: Any) -> Any:
        # Tuples of floats compare by value, so re-assigning the same point or box
        # from another widget emits nothing.
        if value is None:
            if name in ("transfer_function", "layout", "show_identity", "preset_name", "vessel_colouring", "keyhole"):
                raise ValueError(f"state field {name!r} cannot be None")
            return () if name == "measurements" else None
        if name == "crosshair_lps":
            v = tuple(float(x) for x in value)
            if len(v) != 3:
                raise ValueError(f"crosshair_lps needs 3 numbers, got {value!r}")
            return v
        if name == "crop_box_lps":
            v = tuple(float(x) for x in value)
            if len(v) != 6:
                raise ValueError(f"crop_box_lps needs 6 numbers (xmin, xmax, ...), got {value!r}")
            return v
        if name == "clip_plane":
            origin, normal = value
            o = tuple(float(x) for x in origin)
            n = np.asarray(normal, dtype=np.float64)
            length = float(np.linalg.norm(n))
            if len(o) != 3 or n.shape != (3,) or length == 0:
                raise ValueError(f"clip_plane needs (origin, non-zero normal), got {value!r}")
            return (o, tuple(float(x) for x in n / length))
        if name == "layout":
            if value not in LAYOUTS:
                raise ValueError(f"layout must be one of {LAYOUTS}, got {value!r}")
            return str(value)
        if name in ("show_identity", "keyhole"):
            return bool(value)
        if name == "vessel_colouring":
            if value not in VESSEL_COLOURINGS:
                raise ValueError(f"vessel_colouring must be one of {VESSEL_COLOURINGS}, got {value!r}")
            return str(value)
        if name in ("lesion", "lesion_analysis", "measurements"):
            return ViewerState._normalise_lesion_field(name, value)
        if name == "transfer_function" and not isinstance(value, TransferFunction):
            raise TypeError(f"transfer_function must be a TransferFunction, got {type(value).__name__}")
        if name == "volume" and not isinstance(value, Volume):
            raise TypeError(f"volume must be a Volume, got {type(value).__name__}")
        return value

    @staticmethod
    def _normalise_lesion_field(name: str, value: Any) -> Any:
        # Imported here: the lesion modules import the volume and extraction modules,
        # and state is imported by nearly everything.
        from viewer.core.lesion import Lesion, LesionAnalysis
        from viewer.core.measure import Angle, Ruler

        if name == "lesion" and not isinstance(value, Lesion):
            raise TypeError(f"lesion must be a Lesion, got {type(value).__name__}")
        if name == "lesion_analysis" and not isinstance(value, LesionAnalysis):
            raise TypeError(f"lesion_analysis must be a LesionAnalysis, got {type(value).__name__}")
        if name == "measurements":
            items = tuple(value)
            bad = [type(m).__name__ for m in items if not isinstance(m, (Ruler, Angle))]
            if bad:
                raise TypeError(f"measurements must be Ruler or Angle objects, got {bad[0]}")
            return items
        return value


def _plain(v: Any) -> Any:
    """Lists and tuples compare alike (Qt hands back lists where we store tuples)."""
    return tuple(v) if isinstance(v, list) else v


class Binding(Generic[T]):
    """A two-way link between one state field and one widget (see :func:`bind`)."""

    def __init__(
        self,
        state: ViewerState,
        field: str,
        set_widget: Callable[[T], None],
        connect_widget: Callable[[Callable[..., None]], Any],
        to_widget: Callable[[Any], T | None],
        to_state: Callable[[Any, Any], Any],
    ) -> None:
        self.state = state
        self.field = field
        self._set_widget = set_widget
        self._to_widget = to_widget
        self._to_state = to_state
        self._updating = False  # the feedback guard
        state.event(field).connect(self._on_state_changed)
        connect_widget(self._on_widget_changed)
        self._on_state_changed(getattr(state, field))

    def _on_state_changed(self, value: Any) -> None:
        if self._updating:
            return
        widget_value = self._to_widget(value)
        if widget_value is None:
            return
        self._updating = True
        try:
            self._set_widget(widget_value)
        finally:
            self._updating = False

    def _on_widget_changed(self, *args: Any) -> None:
        if self._updating:
            return
        widget_value = args[0] if len(args) == 1 else args
        new = self._to_state(widget_value, getattr(self.state, self.field))
        self._updating = True
        try:
            setattr(self.state, self.field, new)
            # The state may normalise what the widget gave (a window typed upside
            # down is sorted): show the widget what was actually stored.
            shown = self._to_widget(getattr(self.state, self.field))
            if shown is not None and not _same(_plain(shown), _plain(widget_value)):
                self._set_widget(shown)
        finally:
            self._updating = False

    def disconnect(self) -> None:
        self.state.event(self.field).disconnect(self._on_state_changed)


def bind(
    state: ViewerState,
    field: str,
    set_widget: Callable[[T], None],
    connect_widget: Callable[[Callable[..., None]], Any],
    to_widget: Callable[[Any], T | None] = lambda v: v,
    to_state: Callable[[Any, Any], Any] = lambda w, _current: w,
) -> Binding[T]:
    """Tie ``state.<field>`` and a widget together, both ways.

    ``set_widget(w)`` shows a value in the widget; ``connect_widget(cb)`` subscribes
    ``cb`` to the widget's change signal (pass e.g. ``slider.valueChanged.connect``).
    ``to_widget(field_value)`` converts the field to the widget's value (return None to
    leave the widget alone, e.g. when no volume is loaded); ``to_state(widget_value,
    current_field_value)`` builds the new field value (e.g. a transfer function with a
    new vessel window). The feedback guard stops the widget's own change signal, fired
    while the state pushes a value into it, from being written back to the state.
    The widget shows the field's current value immediately.
    """
    return Binding(state, field, set_widget, connect_widget, to_widget, to_state)


__all__ = ["LAYOUTS", "VESSEL_COLOURINGS", "Binding", "Event", "ViewerState", "bind"]
