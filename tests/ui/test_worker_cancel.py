"""A cancelled worker reports ``cancelled``, never ``failed``, and the export/session
progress dialog then says "cancelled" in the status bar without an error dialog."""

from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")
from PySide6.QtWidgets import QMainWindow, QMessageBox  # noqa: E402

from viewer.core.errors import LoadCancelled, ViewerError  # noqa: E402
from viewer.core.progress import ProgressFn  # noqa: E402
from viewer.ui import export_dialogs as ed  # noqa: E402
from viewer.ui.workers import TaskThread  # noqa: E402

pytestmark = pytest.mark.gui


def _outcomes(thread: TaskThread) -> list[str]:
    seen: list[str] = []
    thread.succeeded.connect(lambda _r: seen.append("succeeded"))
    thread.failed.connect(lambda e: seen.append(f"failed: {e}"))
    thread.cancelled.connect(lambda: seen.append("cancelled"))
    return seen


def test_a_cancel_raised_by_the_work_is_cancelled_not_failed(qapp) -> None:  # type: ignore[no-untyped-def]
    def work(progress: ProgressFn) -> None:
        progress(0.5, "half")
        raise LoadCancelled()

    t = TaskThread(work, "t")
    seen = _outcomes(t)
    t.run()  # synchronously, on this thread: the signals are delivered directly
    assert seen == ["cancelled"]


def test_cancel_through_the_token_stops_at_the_next_progress(qapp) -> None:  # type: ignore[no-untyped-def]
    calls: list[float] = []

    def work(progress: ProgressFn) -> str:
        for i in range(10):
            calls.append(i)
            if i == 2:
                t.cancel()
            progress(i / 10, "")
        return "done"

    t = TaskThread(work, "t")
    seen = _outcomes(t)
    t.run()
    assert seen == ["cancelled"] and calls == [0, 1, 2]


def test_an_error_is_still_failed(qapp) -> None:  # type: ignore[no-untyped-def]
    def work(progress: ProgressFn) -> None:
        raise ViewerError("bad file")

    t = TaskThread(work, "t")
    seen = _outcomes(t)
    t.run()
    assert seen == ["failed: bad file"]


def test_a_cancelled_export_shows_no_error_dialog(qapp, qtbot, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    dialogs: list[str] = []
    monkeypatch.setattr(QMessageBox, "critical", staticmethod(lambda *a, **k: dialogs.append(str(a[2]))))
    window = QMainWindow()
    qtbot.addWidget(window)
    done: list[object] = []

    def work(progress: ProgressFn) -> None:
        progress(0.1, "frame 1 of 10")
        raise LoadCancelled()

    thread = ed._run_with_progress(window, "Exporting movie", work, done.append)
    qtbot.waitUntil(lambda: thread.isFinished(), timeout=10_000)
    qtbot.waitUntil(lambda: window.statusBar().currentMessage() != "", timeout=5_000)
    assert window.statusBar().currentMessage() == "Exporting movie: cancelled"
    assert dialogs == [] and done == []

    def failing(progress: ProgressFn) -> None:
        raise ViewerError("disk full")

    thread = ed._run_with_progress(window, "Exporting movie", failing, done.append)
    qtbot.waitUntil(lambda: bool(dialogs), timeout=10_000)
    assert dialogs == ["disk full"] and window.statusBar().currentMessage() == "Exporting movie: failed"
    thread.wait()
