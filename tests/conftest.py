"""Shared test fixtures.

Real scans live in ``../shared/data`` next to the project (see that folder's README);
tests that need them are skipped, with the reason printed, where it is absent.
"""

from __future__ import annotations

import gc
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("VESSEL_VIEWER_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of real third-party CT scans; skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real CT data folder {SHARED_DATA} is absent (a clone on its own)")
    return SHARED_DATA


# --- the lower-leg phantom (viewer.phantom), shared by every test folder ---------------
@pytest.fixture(scope="session")
def small_phantom():
    """``viewer.phantom.generate("small")``: 96x96x218 voxels, 1.5 mm, seed 0 (about 1 s)."""
    from viewer.phantom import generate

    return generate("small")


@pytest.fixture(scope="session")
def small_phantom_dicom_dir(small_phantom, tmp_path_factory) -> Path:
    """The small phantom written once as a CT DICOM series (218 files); read-only use."""
    from viewer.io.writers import write_dicom_series

    out = tmp_path_factory.mktemp("small_phantom") / "dicom"
    write_dicom_series(small_phantom.volume, out)
    return out


# --- habits checked on every test (README "Testing"; docs/testing.md) -----------------
def _ci() -> bool:
    """``CI=true`` (or 1/yes): GUI tests may not be skipped there."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes", "on")


#: What makes a module outside tests/ui part of the GUI tier.
_USES_QT = re.compile(
    r"pytest\.mark\.gui|^\s*(from|import) (PySide6|pytestqt)|importorskip\(\"(PySide6|pytestqt)",
    re.M,
)


def _is_gui_module(path: Path) -> bool:
    """A test module of the GUI tier: under tests/ui, marked ``gui`` or using Qt."""
    if (ROOT / "tests" / "ui") in path.parents:
        return True
    try:
        return bool(_USES_QT.search(path.read_text(encoding="utf-8")))
    except OSError:
        return False


def _data_absent(reason: str) -> bool:
    """A skip because the real scans of ../shared/data are absent: allowed under CI too
    (a clone on its own has no such folder); only the GUI *environment* may not skip."""
    return str(SHARED_DATA) in reason or "shared/data" in reason


def _skip_reason(rep: pytest.CollectReport | pytest.TestReport) -> str:
    return str(rep.longrepr[2]) if isinstance(rep.longrepr, tuple) else str(rep.longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):  # type: ignore[no-untyped-def]
    """Under CI=true a GUI module skipped as a whole (no X server, no PySide6 or
    pytest-qt) is a collection error, not a silent skip."""
    outcome = yield
    rep = outcome.get_result()
    path = Path(str(getattr(collector, "path", "")))
    if rep.skipped and _ci() and isinstance(collector, pytest.Module) and _is_gui_module(path):
        reason = _skip_reason(rep)
        if _data_absent(reason):
            return
        rep.outcome = "failed"
        rep.longrepr = f"GUI test module skipped under CI=true (GUI tests must run in CI): {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """Under CI=true a skipped test marked ``gui`` fails (unless the real scans are absent)."""
    outcome = yield
    rep = outcome.get_result()
    if not (rep.skipped and _ci()) or hasattr(rep, "wasxfail"):
        return
    reason = _skip_reason(rep)
    if item.get_closest_marker("gui") is not None and not _data_absent(reason):
        rep.outcome = "failed"
        rep.longrepr = f"GUI test skipped under CI=true (GUI tests must run in CI): {reason}"


def _open_scenes() -> list[object]:
    """Scenes alive and not closed (only when viewer.render was imported at all)."""
    mod = sys.modules.get("viewer.render.scene")
    return list(mod.open_scenes()) if mod is not None else []


def _top_level_widgets(settle: bool = True) -> list[object]:
    """Parentless Qt windows still alive, visible or not (none when Qt is not in use).

    ``settle``: run pending ``deleteLater`` calls and collect Python's garbage first, so
    a widget on its way out is not counted (not done for the snapshot before a test,
    which must not deliver the test's events early)."""
    if "PySide6.QtWidgets" not in sys.modules:
        return []
    from PySide6.QtCore import QCoreApplication, QEvent
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        return []
    # Only the deferred deletions, not every pending event (a queued render would cost
    # a frame per test for nothing); twice, for what a deletion or collection releases.
    for _ in range(2 if settle else 0):
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        gc.collect()
    return [w for w in QApplication.topLevelWidgets() if w.parentWidget() is None]


def _describe(objs: list[object]) -> str:
    names = []
    for o in objs:
        title = ""
        if hasattr(o, "windowTitle"):
            title = f" {o.windowTitle()!r}"  # type: ignore[attr-defined]
        names.append(f"{type(o).__module__}.{type(o).__qualname__}{title}")
    return ", ".join(names)


def _release(scenes: list[object], widgets: list[object]) -> None:
    """Close what leaked, so the next test starts clean (its own failure is reported)."""
    for s in scenes:
        s.close()  # type: ignore[attr-defined]
    for w in widgets:
        w.close()  # type: ignore[attr-defined]
        w.deleteLater()  # type: ignore[attr-defined]
    _top_level_widgets()


@pytest.fixture(autouse=True)
def _no_leaked_windows() -> Iterator[None]:
    """Leak check: a test must close every Scene (and so its VTK render window) and
    every top-level Qt widget it made. What a module- or session-scoped fixture made
    before the test (a shared main window) is not the test's; the session check below
    covers those."""
    scenes_before = {id(s) for s in _open_scenes()}
    widgets_before = {id(w) for w in _top_level_widgets(settle=False)}
    yield
    widgets = [w for w in _top_level_widgets() if id(w) not in widgets_before]
    scenes = [s for s in _open_scenes() if id(s) not in scenes_before]
    if scenes:  # a scene in a reference cycle is not a leak once collected
        gc.collect()
        scenes = [s for s in _open_scenes() if id(s) not in scenes_before]
    if scenes or widgets:
        what = []
        if scenes:
            what.append(f"{len(scenes)} open Scene(s) (VTK render windows): call close()")
        if widgets:
            what.append(f"{len(widgets)} top-level Qt widget(s): {_describe(widgets)}; close and delete them")
        _release(scenes, widgets)
        pytest.fail("leak check: the test left " + "; ".join(what), pytrace=False)


@pytest.fixture(autouse=True, scope="session")
def _no_leaks_at_the_end() -> Iterator[None]:
    """The same check once every fixture (shared windows included) was torn down."""
    yield
    gc.collect()
    scenes, widgets = _open_scenes(), _top_level_widgets()
    if scenes or widgets:
        what = f"{len(scenes)} open Scene(s), {len(widgets)} top-level Qt widget(s) ({_describe(widgets)})"
        _release(scenes, widgets)
        pytest.fail(f"leak check at the end of the run: {what}", pytrace=False)
