"""The main window's menus and actions, and the recent-files list.

:func:`build_menus` makes the File, View, Tools and Help menus and sets the window's
``action_*`` attributes (tests and the lesion-planning module use them);
:func:`add_action` makes one action whose shortcut works even with the menu bar hidden;
:class:`RecentFiles` keeps the "Open recent" list in the settings and its menu in step.
:func:`add_action` and :class:`RecentFiles` need no main window.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QSettings
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMenu, QMessageBox, QWidget

from viewer.core.errors import ViewerError
from viewer.ui.dialogs import show_about

if TYPE_CHECKING:
    from viewer.ui.main_window import MainWindow

#: Shown in message boxes of the actions.
APP_TITLE = "Vessel-bone CTA viewer"
#: How many recently opened paths File > Open recent keeps.
MAX_RECENT = 8

#: Export/session actions: (menu text, function name in viewer.ui.export_dialogs,
#: shortcut, tooltip).
EXPORT_ACTIONS = (
    ("Export &image...", "export_image_dialog", "Ctrl+E", "Save the 3D view as PNG, JPEG or TIFF"),
    (
        "Export &report sheet...",
        "report_sheet_dialog",
        "",
        "Anterior, posterior, medial and lateral views in one image",
    ),
    ("Export &movie...", "movie_dialog", "", "Turntable or threshold sweep as MP4 or GIF"),
)
SESSION_ACTIONS = (
    (
        "&Save session...",
        "save_session_dialog",
        "Ctrl+S",
        "Save data path, preset, thresholds, camera, crop and layout",
    ),
    ("Open s&ession...", "open_session_dialog", "", "Restore a saved session"),
    ("Save &preset...", "save_preset_dialog", "", "Save the current transfer function as a named preset"),
)


def add_action(
    owner: QWidget,
    text: str,
    slot: Callable[..., Any],
    shortcut: str | QKeySequence | QKeySequence.StandardKey = "",
    tip: str = "",
    checkable: bool = False,
) -> QAction:
    """An action of ``owner`` calling ``slot``; added to ``owner`` too, so that its
    shortcut works even when the menu bar is hidden."""
    a = QAction(text, owner)
    if shortcut:
        a.setShortcut(QKeySequence(shortcut))
    if tip:
        a.setToolTip(tip)
        a.setStatusTip(tip)
    a.setCheckable(checkable)
    a.triggered.connect(slot)
    owner.addAction(a)
    return a


class RecentFiles:
    """The recently opened paths, newest first, kept in ``settings`` ("recent_files")
    and shown in ``menu``; choosing one calls ``open_path(path)``."""

    def __init__(
        self, settings: QSettings, menu: QMenu, open_path: Callable[[str], Any], max_items: int = MAX_RECENT
    ) -> None:
        self.settings = settings
        self.menu = menu
        self.open_path = open_path
        self.max_items = int(max_items)
        self.rebuild()

    def items(self) -> list[str]:
        v = self.settings.value("recent_files", [])
        if isinstance(v, str):  # QSettings gives one item back as a plain string
            return [v]
        return [str(x) for x in v] if isinstance(v, (list, tuple)) else []

    def add(self, path: str) -> None:
        """Put ``path`` first (once) and trim the list."""
        items = [p for p in self.items() if p != path]
        items.insert(0, path)
        self.settings.setValue("recent_files", items[: self.max_items])
        self.rebuild()

    def rebuild(self) -> None:
        self.menu.clear()
        items = self.items()
        for p in items:
            a = self.menu.addAction(p)
            a.triggered.connect(lambda _c=False, path=p: self.open_path(path))
        self.menu.setEnabled(bool(items))


def call_export_dialog(window: MainWindow, name: str) -> None:
    """Run one of the export/session dialogs (``viewer.ui.export_dialogs.<name>``)."""
    try:
        mod = importlib.import_module("viewer.ui.export_dialogs")
        fn = getattr(mod, name)
    except (ImportError, AttributeError) as exc:
        QMessageBox.information(window, APP_TITLE, f"This action is not available in this build ({exc}).")
        return
    try:
        fn(window)
    except ViewerError as exc:
        QMessageBox.critical(window, APP_TITLE, str(exc))


def build_menus(w: MainWindow) -> None:
    """The File, View, Tools and Help menus of ``w``, with its ``action_*`` attributes
    (the lesion-planning items are added by :func:`viewer.ui.lesion_panel.install_lesion_planning`)."""

    act = functools.partial(add_action, w)

    mb = w.menuBar()
    m = mb.addMenu("&File")
    w.action_open_folder = act(
        "Open DICOM &folder...",
        w.choose_folder,
        QKeySequence.StandardKey.Open,
        "Open a DICOM series from a folder",
    )
    w.action_open_file = act(
        "Open &file...", w.choose_file, "Ctrl+Shift+O", "Open a NIfTI, NRRD, MHA/MHD or DICOM file"
    )
    m.addAction(w.action_open_folder)
    m.addAction(w.action_open_file)
    w.recent_menu = m.addMenu("Open &recent")
    w.recent = RecentFiles(w.settings, w.recent_menu, w.open_path)
    sample = m.addMenu("&Sample data")
    w.action_phantom = act(
        "Lower-leg phantom",
        lambda: w.open_phantom("default"),
        "",
        "Built-in synthetic lower-leg CTA (no download)",
    )
    w.action_phantom_small = act(
        "Lower-leg phantom (small)",
        lambda: w.open_phantom("small"),
        "",
        "A smaller, faster version of the phantom",
    )
    sample.addAction(w.action_phantom)
    sample.addAction(w.action_phantom_small)
    m.addSeparator()
    w.export_actions = {}
    for text, fn, key, tip in EXPORT_ACTIONS + SESSION_ACTIONS:
        if fn == "save_session_dialog":
            m.addSeparator()
        a = act(text, lambda _c=False, f=fn: call_export_dialog(w, f), key, tip)
        m.addAction(a)
        w.export_actions[fn] = a
    m.addSeparator()
    w.action_import_slicer = act(
        "Import 3D Slicer presets...",
        lambda: w.import_slicer_presets(),
        "",
        "Add the volume-rendering presets of a 3D Slicer presets.xml to the preset picker",
    )
    w.action_export_slicer = act(
        "Export presets for 3D Slicer...",
        lambda: w.export_slicer_presets(),
        "",
        "Write all presets as a 3D Slicer presets.xml",
    )
    m.addAction(w.action_import_slicer)
    m.addAction(w.action_export_slicer)
    m.addSeparator()
    w.action_quit = act("&Quit", w.close, QKeySequence.StandardKey.Quit, "Quit")
    m.addAction(w.action_quit)

    m = mb.addMenu("&View")
    group = QActionGroup(w)
    w.action_layout_3d = act("3D &only", lambda: w.set_layout("3d"), "Ctrl+1", "Only the 3D view", True)
    w.action_layout_2x2 = act(
        "&2 x 2 (3D + slices)",
        lambda: w.set_layout("2x2"),
        "Ctrl+2",
        "3D view with axial, coronal, sagittal",
        True,
    )
    for a in (w.action_layout_3d, w.action_layout_2x2):
        group.addAction(a)
        m.addAction(a)
    w.action_toggle_layout = act(
        "Toggle &layout",
        lambda: w.set_layout("3d" if w.state.layout == "2x2" else "2x2"),
        "F11",
        "Switch between 3D only and 2 x 2",
    )
    m.addAction(w.action_toggle_layout)
    m.addSeparator()
    w.view_actions = {}
    for i, name in enumerate(("anterior", "posterior", "left", "right", "superior", "inferior"), start=1):
        a = act(f"{name.capitalize()} view", lambda _c=False, n=name: w.view3d.set_view(n), str(i))
        m.addAction(a)
        w.view_actions[name] = a
    w.action_reset_camera = act("&Reset camera", w.view3d.reset_camera, "R", "Show the whole volume")
    m.addAction(w.action_reset_camera)
    m.addSeparator()
    w.action_crop = act("&Crop box handles", w.controls.crop_check.setChecked, "C", "Show the crop box handles", True)
    w.controls.crop_check.toggled.connect(w.action_crop.setChecked)
    m.addAction(w.action_crop)
    w.action_reset_crop = act("Reset cro&p", w.reset_crop, "Shift+C", "Show the whole volume again")
    m.addAction(w.action_reset_crop)
    m.addSeparator()
    w.action_show_identity = act(
        "Show patient &identity",
        lambda on: setattr(w.state, "show_identity", bool(on)),
        "",
        "Show the patient's name and ID in the title bar (off by default)",
        True,
    )
    m.addAction(w.action_show_identity)

    m = mb.addMenu("&Tools")
    w.action_separated = act(
        "&Separated mode", w.set_separated, "S", "Separate bone from vessels with a bone mask", True
    )
    w.state.transfer_function_changed.connect(lambda tf: w.action_separated.setChecked(tf.separated))
    w.action_separated.setChecked(w.state.transfer_function.separated)
    m.addAction(w.action_separated)
    w.action_suggest = act(
        "Suggest &thresholds", w.suggest_thresholds, "T", "Vessel window and bone threshold from the histogram"
    )
    m.addAction(w.action_suggest)
    w.action_count_vessels = act(
        "Count &vessels near crosshair...",
        lambda: w.count_vessels_dialog(),  # triggered(bool) must not become the radius
        "V",
        "How many vessels run within a radius of the crosshair (e.g. around a bone defect)",
    )
    m.addAction(w.action_count_vessels)
    w.action_cancel = act("Cancel loading", w.cancel_load, "Esc")

    m = mb.addMenu("&Help")
    w.action_about = act("&About", lambda: show_about(w), "", "Version, licences, data sources")
    m.addAction(w.action_about)


__all__ = [
    "EXPORT_ACTIONS",
    "MAX_RECENT",
    "SESSION_ACTIONS",
    "RecentFiles",
    "add_action",
    "build_menus",
    "call_export_dialog",
]
