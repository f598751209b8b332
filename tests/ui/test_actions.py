"""The window's action helpers without a window: add_action and the recent-files list."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtGui import QKeySequence  # noqa: E402
from PySide6.QtWidgets import QMenu, QWidget  # noqa: E402

from viewer.ui.actions import RecentFiles, add_action  # noqa: E402

pytestmark = pytest.mark.gui


def test_add_action_calls_its_slot_and_keeps_its_shortcut_on_the_owner(qapp) -> None:  # type: ignore[no-untyped-def]
    owner = QWidget()
    try:
        calls: list[bool] = []
        a = add_action(owner, "&Toggle", lambda on: calls.append(on), "Ctrl+T", "Toggle it", checkable=True)
        assert a in owner.actions()  # the shortcut works with the menu bar hidden
        assert a.shortcut() == QKeySequence("Ctrl+T") and a.statusTip() == "Toggle it"
        a.trigger()
        assert calls == [True] and a.isChecked()
    finally:
        owner.deleteLater()


def test_recent_files_newest_first_once_and_trimmed(qapp, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    menu = QMenu()
    try:
        opened: list[str] = []
        recent = RecentFiles(settings, menu, lambda p: opened.append(p), max_items=3)
        assert recent.items() == [] and not menu.isEnabled()
        for p in ("/a", "/b", "/c", "/a", "/d"):
            recent.add(p)
        assert recent.items() == ["/d", "/a", "/c"]
        assert [a.text() for a in menu.actions()] == ["/d", "/a", "/c"] and menu.isEnabled()
        menu.actions()[1].trigger()
        assert opened == ["/a"]
        # One item comes back from QSettings as a plain string.
        settings.setValue("recent_files", "/only")
        assert RecentFiles(settings, QMenu(menu), opened.append).items() == ["/only"]
    finally:
        menu.deleteLater()
