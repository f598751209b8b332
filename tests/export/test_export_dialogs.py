"""The File-menu export/session/preset actions in the real window (under Xvfb)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("VTK_SMP_BACKEND_IN_USE", "STDThread")

pytest.importorskip("pytestqt")
from PySide6.QtCore import QEvent, QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

if not os.environ.get("DISPLAY"):
    pytest.skip("needs an X server (run under pytest-xvfb or xvfb-run)", allow_module_level=True)

from PIL import Image  # noqa: E402

from viewer.export.image import ExportOptions  # noqa: E402
from viewer.ui import export_dialogs as ed  # noqa: E402
from viewer.ui.main_window import MainWindow  # noqa: E402

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def window(qapp: QApplication, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MainWindow]:
    from pytestqt.qtbot import QtBot

    cfg = tmp_path_factory.mktemp("config")
    os.environ["VESSEL_VIEWER_CONFIG_DIR"] = str(cfg)
    w = MainWindow(settings=QSettings(str(cfg / "settings.ini"), QSettings.Format.IniFormat))
    w.resize(900, 600)
    w.show()
    w.view3d.initialize()
    bot = QtBot(qapp)
    w.open_phantom("small")
    bot.waitUntil(lambda: w.state.volume is not None and not w.loading, timeout=60_000)
    yield w
    w.close()
    # Closing hides a window; deleting it is what frees it (the leak check counts it).
    w.deleteLater()
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    QApplication.processEvents()


def test_menu_names_exist() -> None:
    for name in ("export_image", "export_report_sheet", "export_movie", "save_session", "open_session", "save_preset"):
        assert callable(getattr(ed, name))


def test_export_image_from_window(window: MainWindow, tmp_path: Path) -> None:
    p = ed.export_image_dialog(
        window, tmp_path / "fig.png", ExportOptions(width=160, height=120, scale=2, orientation_labels=True)
    )
    assert p is not None
    with Image.open(p) as im:
        assert im.size == (320, 240)
        img = np.asarray(im.convert("RGB"))
    assert (img.max(axis=-1) > 40).mean() > 0.02  # not blank


def test_movie_on_worker_thread(window: MainWindow, qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    results = []
    cam = window.scene.camera_state()
    ed.movie_dialog(
        window, tmp_path / "spin.gif", ExportOptions(width=80, height=60), duration_s=1.0, fps=5, on_done=results.append
    )
    qtbot.waitUntil(lambda: bool(results), timeout=60_000)
    assert results[0].n_frames == 5
    with Image.open(tmp_path / "spin.gif") as im:
        assert im.n_frames == 5
    assert window.scene.camera_state() == cam


def test_sweep_movie_dialog_fields_and_range(window: MainWindow, qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The movie dialog offers the sweep's start and end (HU), enabled only for a sweep;
    the range given is the one the movie sweeps (vessels appear as the window opens)."""
    lo, hi = window.state.transfer_function.vessel_window_hu
    dlg = ed.ExportOptionsDialog(window, "Export movie", (80, 60), movie=True)
    qtbot.addWidget(dlg)
    assert dlg.sweep_start.value() == hi - 1 and dlg.sweep_end.value() == lo
    assert not dlg.sweep_start.isEnabled() and dlg.axis.isEnabled()
    dlg.kind.setCurrentIndex(dlg.kind.findData("sweep"))
    assert dlg.sweep_start.isEnabled() and not dlg.axis.isEnabled()
    results = []
    tf0 = window.state.transfer_function
    ed.movie_dialog(
        window,
        tmp_path / "sweep.gif",
        ExportOptions(width=120, height=90),
        kind="sweep",
        duration_s=1.0,
        fps=4,
        sweep_hu=(hi - 1, lo),
        on_done=results.append,
    )
    qtbot.waitUntil(lambda: bool(results), timeout=60_000)
    assert results[0].n_frames == 4
    assert window.state.transfer_function == tf0
    with Image.open(tmp_path / "sweep.gif") as im:
        frames = []
        for i in range(im.n_frames):
            im.seek(i)
            frames.append(np.asarray(im.convert("RGB")).astype(int))
    red = [int(((f[..., 0] > 120) & (f[..., 0] > 2 * f[..., 1])).sum()) for f in frames]
    assert red[-1] > red[0]


def test_session_round_trip_in_window(window: MainWindow, qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    st = window.state
    tf = st.transfer_function.with_vessel_window(230, 590)
    st.transfer_function = tf
    window.scene.azimuth(30)
    cam = window.scene.camera_state()
    f = ed.save_session_dialog(window, tmp_path / "s.json")
    assert f is not None and f.exists()
    # Change everything, then open the session again.
    st.transfer_function = tf.with_vessel_window(300, 400)
    window.scene.set_view("posterior")
    opened = []
    # The callback goes in with the call, so it is connected before the thread starts
    # (connecting to the returned thread's signal raced with a quick load).
    t = ed.open_session_dialog(window, f, on_done=opened.append)
    assert t is not None
    qtbot.waitUntil(lambda: bool(opened) and not t.isRunning(), timeout=60_000)
    assert st.transfer_function.vessel_window_hu == (230.0, 590.0)
    got = window.scene.camera_state()
    assert np.allclose(got.position_lps, cam.position_lps, atol=1e-6)


def test_save_preset_appears_in_picker(window: MainWindow) -> None:
    p = ed.save_preset_dialog(window, "My teaching preset", overwrite=True)
    assert p is not None and p.exists()
    from viewer.core.presets import list_presets

    assert "My teaching preset" in list_presets()
    assert window.controls.preset_combo.findText("My teaching preset") >= 0
    assert window.state.preset_name == "My teaching preset"
