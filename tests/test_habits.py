"""The suite's own habits (tests/conftest.py): the leak check and the CI rule that GUI
tests may not skip. Each case runs a small test file in a fresh pytest process with the
project's conftest, and checks what that run reports."""

from __future__ import annotations

from pathlib import Path

import pytest

CONFTEST = (Path(__file__).parent / "conftest.py").read_text(encoding="utf-8")


def _run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, source: str, ci: bool) -> pytest.RunResult:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_case=source)
    if ci:
        monkeypatch.setenv("CI", "true")
    else:
        monkeypatch.delenv("CI", raising=False)
    # Widgets on the offscreen platform; no Xvfb of its own (the case needs no GL).
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    monkeypatch.setenv("VTK_SMP_BACKEND_IN_USE", "STDThread")
    return pytester.runpytest_subprocess("-p", "no:xvfb", "-p", "no:cacheprovider", "-q")


SKIPPED_GUI_MODULE = """
import pytest
pytest.skip("needs an X server", allow_module_level=True)
pytestmark = pytest.mark.gui
def test_x():
    pass
"""

SKIPPED_GUI_TEST = """
import pytest
@pytest.mark.gui
def test_x():
    pytest.skip("no display")
def test_data():
    pytest.skip("real CT data folder /x/shared/data is absent")
"""


@pytest.mark.parametrize("ci", [False, True])
def test_a_gui_module_skipped_fails_only_under_ci(pytester: pytest.Pytester, monkeypatch, ci: bool) -> None:  # type: ignore[no-untyped-def]
    res = _run(pytester, monkeypatch, SKIPPED_GUI_MODULE, ci)
    if ci:
        res.assert_outcomes(errors=1)
        res.stdout.fnmatch_lines(["*GUI test module skipped under CI=true*needs an X server*"])
    else:
        res.assert_outcomes(skipped=1)


@pytest.mark.parametrize("ci", [False, True])
def test_a_gui_test_skipped_fails_only_under_ci(pytester: pytest.Pytester, monkeypatch, ci: bool) -> None:  # type: ignore[no-untyped-def]
    res = _run(pytester, monkeypatch, SKIPPED_GUI_TEST, ci)
    # A skip for absent real scans stays a skip (a clone on its own has none).
    res.assert_outcomes(failed=1, skipped=1) if ci else res.assert_outcomes(skipped=2)


LEAKY_SCENE = """
from viewer.render.scene import Scene
kept = []
def test_leaks_a_scene():
    kept.append(Scene(offscreen=True))
def test_closes_its_scene():
    with Scene(offscreen=True):
        pass
"""


def test_an_unclosed_scene_fails_the_test(pytester: pytest.Pytester, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    res = _run(pytester, monkeypatch, LEAKY_SCENE, ci=False)
    res.assert_outcomes(passed=2, errors=1)
    res.stdout.fnmatch_lines(["*test_leaks_a_scene*", "*leak check*1 open Scene(s)*"])
    assert "test_closes_its_scene" not in "\n".join(line for line in res.outlines if "leak check" in line)


LEAKY_WIDGET = """
from PySide6.QtWidgets import QDialog, QWidget
kept = []
def test_leaks_a_window(qapp):
    w = QDialog()
    w.setWindowTitle("forgotten")
    w.show()
    kept.append(w)
def test_hidden_but_alive(qapp):
    kept.append(QWidget())
def test_closes_and_deletes(qapp, qtbot):
    w = QWidget()
    qtbot.addWidget(w)
    w.show()
def test_child_widgets_are_the_parents(qapp):
    parent = QWidget()
    QWidget(parent)
    parent.deleteLater()
"""


def test_a_left_over_top_level_widget_fails_the_test(pytester: pytest.Pytester, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("pytestqt")
    res = _run(pytester, monkeypatch, LEAKY_WIDGET, ci=False)
    res.assert_outcomes(passed=4, errors=2)
    res.stdout.fnmatch_lines(["*leak check*1 top-level Qt widget(s)*QDialog 'forgotten'*"])
    res.stdout.fnmatch_lines(["*leak check*1 top-level Qt widget(s)*QWidget*"])


LEAKY_FIXTURE = """
import pytest
from viewer.render.scene import Scene
kept = []
@pytest.fixture(scope="module")
def shared():
    s = Scene(offscreen=True)
    kept.append(s)  # never closed by the fixture's teardown
    yield s
def test_uses_the_shared_scene(shared):
    assert not shared.closed
"""


def test_a_fixture_that_never_closes_its_scene_fails_the_run(pytester: pytest.Pytester, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    res = _run(pytester, monkeypatch, LEAKY_FIXTURE, ci=False)
    # The test itself is not blamed (the scene was there before it); the run is.
    res.assert_outcomes(passed=1, errors=1)
    res.stdout.fnmatch_lines(["*leak check at the end of the run: 1 open Scene(s)*"])
