"""The Qt binding itself must not corrupt reference counts.

PySide6 6.12.0 on CPython 3.11 dropped one reference to ``True`` on every
``Signal.emit()`` and one to ``None`` on every Python slot called from C++: the GUI
then aborted (``bool_dealloc`` / ``none_dealloc``) after a few thousand renders or
mouse moves. pyproject.toml excludes that version; this test catches a relapse.
"""

from __future__ import annotations

import sys

import pytest

pytest.importorskip("PySide6")
from PySide6.QtCore import QCoreApplication, QObject, QTimer, Signal  # noqa: E402


class _Emitter(QObject):
    changed = Signal(int)


def test_signal_emit_and_slot_calls_keep_refcounts(qapp) -> None:
    if sys.version_info >= (3, 12):
        pytest.skip("True/None are immortal from CPython 3.12: the bug cannot show")
    n = 500
    e = _Emitter()
    got: list[int] = []
    e.changed.connect(lambda v: got.append(v) and None)
    t0, n0 = sys.getrefcount(True), sys.getrefcount(None)
    for i in range(n):
        e.changed.emit(i)
    calls = [0]

    def tick() -> None:
        calls[0] += 1

    timer = QTimer()
    timer.setInterval(0)
    timer.timeout.connect(tick)  # C++ signal -> Python slot returning None
    timer.start()
    while calls[0] < n:
        QCoreApplication.processEvents()
    timer.stop()
    assert len(got) == n
    # Allow a little drift from unrelated allocations; the bug loses one per call.
    assert sys.getrefcount(True) - t0 > -n // 10, "Signal.emit() leaks references to True"
    assert sys.getrefcount(None) - n0 > -n // 10, "Python slots leak references to None"
