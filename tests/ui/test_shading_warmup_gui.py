"""The window's renders compute no shading gradients (issue 9): the 3D view's worker
computes them with the new scalars (viewer.render.shading_warmup), so the GUI thread's
first render after a new scan or a re-encode does not freeze for them.

Real window under Xvfb (pytest-xvfb), small phantom."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import numpy as np
import pytest

os.environ.setdefault("VTK_SMP_BACKEND_IN_USE", "STDThread")

pytest.importorskip("pytestqt")
from PySide6.QtCore import QEvent, QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

if not os.environ.get("DISPLAY"):
    pytest.skip("needs an X server (run under pytest-xvfb or xvfb-run)", allow_module_level=True)

from viewer.ui.main_window import MainWindow  # noqa: E402

pytestmark = pytest.mark.gui

TIMEOUT_MS = 60_000


@pytest.fixture()
def window(qapp: QApplication, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MainWindow]:
    cfg = tmp_path_factory.mktemp("config")
    os.environ["VESSEL_VIEWER_CONFIG_DIR"] = str(cfg)
    w = MainWindow(settings=QSettings(str(cfg / "settings.ini"), QSettings.Format.IniFormat))
    w.resize(900, 650)
    w.show()
    w.view3d.initialize()
    yield w
    w.close()
    w.deleteLater()
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


def test_gui_thread_renders_compute_no_gradients(window: MainWindow, qtbot) -> None:  # type: ignore[no-untyped-def]
    w = window
    gui = threading.get_ident()
    starts: list[int] = []
    hook = w.view3d.scene.on_gradient_progress

    def spy(stage: str) -> None:
        if stage == "start":
            starts.append(threading.get_ident())
        if hook is not None:
            hook(stage)

    w.view3d.scene.on_gradient_progress = spy

    def full_frame() -> np.ndarray:
        qtbot.waitUntil(
            lambda: w.state.volume is not None and not w.loading and not w.view3d.scene_busy, timeout=TIMEOUT_MS
        )
        n = w.view3d.n_renders
        w.view3d.request_render()
        qtbot.waitUntil(lambda: w.view3d.n_renders > n and not w.view3d.interactive, timeout=TIMEOUT_MS)
        qtbot.wait(30)
        return w.view3d.grab_image()

    w.action_phantom_small.trigger()
    first = full_frame()
    assert (first.astype(int).sum(axis=2) > 60).mean() > 0.01, "black 3D view"
    assert "shading_warmup_s" in w.view3d.scene.last_timings_s, "the worker did not compute the gradients"
    # A re-encode (separated mode on, then off) brings new scalars: again on the worker.
    w.set_separated(not w.state.transfer_function.separated)
    qtbot.waitUntil(lambda: not w.view3d.scene_busy, timeout=TIMEOUT_MS)
    second = full_frame()
    assert np.abs(first.astype(int) - second.astype(int)).mean() > 0.5, "the mode switch changed nothing"
    assert gui not in starts, f"{starts.count(gui)} gradient computations on the GUI thread"


def test_new_scalars_show_at_once_unshaded_then_shaded(window: MainWindow, qtbot, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A coarse first frame that refines by itself: while the shading worker runs, the
    new volume is drawn unshaded (nothing for the GUI's render to compute); when the
    gradients arrive, the same view is drawn shaded."""
    import viewer.ui.view3d as view3d_mod

    w = window
    gate = threading.Event()
    real = view3d_mod.warm_mapper

    def held(*args, **kwargs):  # type: ignore[no-untyped-def]
        if kwargs.get("shade", True):  # the shading job waits; the unshaded first draw does not
            assert gate.wait(TIMEOUT_MS / 1000), "the test never opened the gate"
        return real(*args, **kwargs)

    monkeypatch.setattr(view3d_mod, "warm_mapper", held)
    w.action_phantom_small.trigger()
    v = w.view3d
    try:
        qtbot.waitUntil(lambda: v.shading_pending and not w.loading, timeout=TIMEOUT_MS)
        assert v.scene_busy and v.scene.shading_deferred and v.scene.has_scalars
        n = v.n_renders
        v.request_render()
        qtbot.waitUntil(lambda: v.n_renders > n and not v.interactive, timeout=TIMEOUT_MS)
        qtbot.wait(30)
        flat = v.grab_image()
        assert (flat.astype(int).sum(axis=2) > 60).mean() > 0.01, "nothing drawn while the shading is made"
    finally:
        gate.set()
    qtbot.waitUntil(lambda: not v.scene_busy, timeout=TIMEOUT_MS)
    assert not v.scene.shading_deferred and "shading_warmup_s" in v.scene.last_timings_s
    n = v.n_renders
    v.request_render()
    qtbot.waitUntil(lambda: v.n_renders > n and not v.interactive, timeout=TIMEOUT_MS)
    qtbot.wait(30)
    shaded = v.grab_image()
    assert np.abs(flat.astype(int) - shaded.astype(int)).mean() > 0.5, "shading changed nothing"
