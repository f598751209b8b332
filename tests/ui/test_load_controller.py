"""The load controller without a window: one load at a time, a load replaced by
another, cancel, errors that name the file, the masks that come with a load."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from viewer.core.errors import LoadCancelled  # noqa: E402
from viewer.core.mask_policy import MaskSettings  # noqa: E402
from viewer.core.volume import Volume, axis_aligned_affine  # noqa: E402
from viewer.ui.load_controller import (  # noqa: E402
    LoadController,
    finish_volume,
    serious_geometry_warnings,
)

pytestmark = pytest.mark.gui

TIMEOUT_MS = 20_000


def _volume(nz: int = 6, warnings: tuple[str, ...] = ()) -> Volume:
    hu = np.full((nz, 16, 16), -1000, np.int16)
    hu[:, 4:12, 4:12] = 40
    return Volume(hu, (1.0, 1.0, 1.0), axis_aligned_affine((1.0, 1.0, 1.0)), warnings=warnings)


class Outcomes:
    """Everything a controller reports, in order."""

    def __init__(self, ctl: LoadController) -> None:
        self.events: list[tuple[str, Any]] = []
        ctl.loaded.connect(lambda r, src: self.events.append(("loaded", (r, src))))
        ctl.failed.connect(lambda msg: self.events.append(("failed", msg)))
        ctl.cancelled.connect(lambda: self.events.append(("cancelled", None)))

    def kinds(self) -> list[str]:
        return [k for k, _ in self.events]


class FakeLoader:
    """Stands in for ``viewer.io.load_volume``: a file named in ``hold`` reports
    progress until its event is set (so a cancel reaches it)."""

    def __init__(self) -> None:
        self.hold: dict[str, threading.Event] = {}
        self.started: list[str] = []

    def __call__(self, path: Path, series: Any = None, progress: Any = None) -> Volume:
        name = Path(path).name
        self.started.append(name)
        gate = self.hold.get(name)
        while gate is not None and not gate.wait(0.01):
            progress(0.5, f"reading {name}")  # raises LoadCancelled after a cancel
        return _volume(nz=5 + len(name))

    def release_all(self) -> None:
        for g in self.hold.values():
            g.set()


@pytest.fixture
def fake_io(monkeypatch: pytest.MonkeyPatch) -> FakeLoader:
    fake = FakeLoader()
    monkeypatch.setattr("viewer.io.load_volume", fake)
    return fake


@pytest.fixture
def ctl(qapp, qtbot) -> Iterator[LoadController]:  # type: ignore[no-untyped-def]
    c = LoadController()
    yield c
    c.shutdown()
    c.deleteLater()


def _files(tmp_path: Path, *names: str) -> list[Path]:
    out = []
    for n in names:
        p = tmp_path / n
        p.write_bytes(b"x")
        out.append(p)
    return out


def test_a_file_loads_in_the_background(ctl: LoadController, fake_io: FakeLoader, tmp_path: Path, qtbot) -> None:  # type: ignore[no-untyped-def]
    (a,) = _files(tmp_path, "a.nrrd")
    seen = Outcomes(ctl)
    busy: list[bool] = []
    ctl.busy_changed.connect(busy.append)
    ctl.open_path(a)
    assert ctl.loading
    qtbot.waitUntil(lambda: bool(seen.events), timeout=TIMEOUT_MS)
    assert seen.kinds() == ["loaded"]
    (volume, (counts, edges), masks), source = seen.events[0][1]
    assert isinstance(volume, Volume) and masks is None  # not in separated mode
    assert counts.sum() == volume.hu.size and len(edges) == len(counts) + 1
    assert source == {"kind": "path", "path": str(a), "series": None}
    assert busy == [True, False] and not ctl.loading
    qtbot.waitUntil(lambda: ctl.background_threads == 0, timeout=TIMEOUT_MS)


def test_a_load_replaced_by_another_load(ctl: LoadController, fake_io: FakeLoader, tmp_path: Path, qtbot) -> None:  # type: ignore[no-untyped-def]
    slow, fast = _files(tmp_path, "slow.nrrd", "fast.nrrd")
    fake_io.hold["slow.nrrd"] = threading.Event()
    seen = Outcomes(ctl)
    ctl.open_path(slow)
    qtbot.waitUntil(lambda: "slow.nrrd" in fake_io.started, timeout=TIMEOUT_MS)
    ctl.open_path(fast)  # the user opens another scan meanwhile
    qtbot.waitUntil(lambda: bool(seen.events), timeout=TIMEOUT_MS)
    fake_io.release_all()
    qtbot.waitUntil(lambda: ctl.background_threads == 0, timeout=TIMEOUT_MS)
    qtbot.wait(50)
    # Only the second load's result; the replaced one is neither loaded nor "cancelled".
    assert seen.kinds() == ["loaded"]
    assert seen.events[0][1][1]["path"] == str(fast)
    assert not ctl.loading


def test_cancel_reports_once_and_applies_nothing(
    ctl: LoadController, fake_io: FakeLoader, tmp_path: Path, qtbot
) -> None:  # type: ignore[no-untyped-def]
    (slow,) = _files(tmp_path, "slow.nrrd")
    fake_io.hold["slow.nrrd"] = threading.Event()
    seen = Outcomes(ctl)
    progress: list[float] = []
    ctl.progressed.connect(lambda f, _m: progress.append(f))
    ctl.open_path(slow)
    qtbot.waitUntil(lambda: bool(progress), timeout=TIMEOUT_MS)
    ctl.cancel()
    assert not ctl.loading and seen.kinds() == ["cancelled"]
    # The worker stops at its next progress report, without being released.
    qtbot.waitUntil(lambda: ctl.background_threads == 0, timeout=TIMEOUT_MS)
    qtbot.wait(50)
    assert seen.kinds() == ["cancelled"]
    ctl.cancel()  # nothing to cancel: nothing reported
    assert seen.kinds() == ["cancelled"]


def test_a_failed_load_names_the_file(ctl: LoadController, tmp_path: Path, qtbot) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "broken_scan.nii.gz"
    bad.write_bytes(b"this is not a NIfTI file at all")
    seen = Outcomes(ctl)
    ctl.open_path(bad)
    qtbot.waitUntil(lambda: bool(seen.events), timeout=TIMEOUT_MS)
    kind, message = seen.events[0]
    assert kind == "failed"
    assert "broken_scan.nii.gz" in message and "Traceback" not in message
    assert not ctl.loading


def test_a_missing_path_and_an_empty_folder_fail_naming_them(ctl: LoadController, tmp_path: Path, qtbot) -> None:  # type: ignore[no-untyped-def]
    seen = Outcomes(ctl)
    ctl.open_path(tmp_path / "nowhere")
    assert seen.events == [("failed", f"{tmp_path / 'nowhere'}: no such file or folder")]
    empty = tmp_path / "empty_folder"
    empty.mkdir()
    ctl.open_path(empty)
    qtbot.waitUntil(lambda: len(seen.events) == 2, timeout=TIMEOUT_MS)
    kind, message = seen.events[1]
    assert kind == "failed" and "empty_folder" in message


def test_the_load_brings_the_masks_of_separated_mode(qapp, fake_io: FakeLoader, tmp_path: Path, qtbot) -> None:  # type: ignore[no-untyped-def]
    settings = MaskSettings(650.0, (180.0, 600.0), True, False)
    ctl = LoadController(mask_settings=lambda: settings)
    try:
        (a,) = _files(tmp_path, "a.nrrd")
        seen = Outcomes(ctl)
        ctl.open_path(a)
        qtbot.waitUntil(lambda: bool(seen.events), timeout=TIMEOUT_MS)
        (volume, _hist, masks), _src = seen.events[0][1]
        assert masks is not None and masks.bone.shape == volume.shape
        assert masks.bone_threshold_hu == 650.0 and masks.contrast is None  # classic separation
    finally:
        ctl.shutdown()
        ctl.deleteLater()


def test_finish_volume_passes_a_cancel_through() -> None:
    def progress(fraction: float, message: str) -> None:
        if fraction >= 0.9:
            raise LoadCancelled()

    with pytest.raises(LoadCancelled):
        finish_volume(_volume(), (650.0, (180.0, 600.0), True, False), progress)
    vol, _hist, masks = finish_volume(_volume(), None, lambda f, m: None)
    assert masks is None


def test_serious_geometry_warnings_are_the_ones_that_change_voxels() -> None:
    vol = _volume(warnings=("2 missing slices interpolated", "series description is empty"))
    assert serious_geometry_warnings(vol) == ["2 missing slices interpolated"]


# ----- a load that the application started before the window (viewer.io.prefetch) -----
def _nrrd(tmp_path: Path) -> Path:
    from viewer.io.writers import write_nrrd

    v = _volume(nz=7)
    p = tmp_path / "scan.nrrd"
    write_nrrd(v.hu, v.ijk_to_lps, p)
    return p


def test_a_prefetched_scan_is_adopted_not_read_again(ctl: LoadController, tmp_path: Path, qtbot) -> None:  # type: ignore[no-untyped-def]
    from viewer.io.prefetch import PrefetchedLoad

    p = _nrrd(tmp_path)
    pre = PrefetchedLoad(p)
    got = pre.wait()
    assert got is not None
    seen = Outcomes(ctl)
    ctl.open_path(p, pre)
    qtbot.waitUntil(lambda: bool(seen.events), timeout=TIMEOUT_MS)
    assert seen.kinds() == ["loaded"]
    (volume, (counts, _edges), _masks), source = seen.events[0][1]
    assert volume is got[0]  # the prefetched volume itself
    assert counts.sum() == volume.hu.size
    assert source == {"kind": "path", "path": str(p), "series": None}
    # a prefetch of another path is not used for this one
    other = tmp_path / "other.nrrd"
    other.write_bytes(p.read_bytes())
    ctl.open_path(other, pre)
    qtbot.waitUntil(lambda: len(seen.events) == 2, timeout=TIMEOUT_MS)
    assert seen.events[1][1][0][0] is not got[0] and seen.events[1][1][1]["path"] == str(other)


def test_a_prefetch_that_fails_names_the_file(ctl: LoadController, tmp_path: Path, qtbot) -> None:  # type: ignore[no-untyped-def]
    from viewer.io.prefetch import PrefetchedLoad

    bad = tmp_path / "broken.nrrd"
    bad.write_bytes(b"NRRD0004\ntype: short\ndimension: 3\nsizes: 4 4 4\nencoding: raw\n\n" + b"\0" * 10)
    seen = Outcomes(ctl)
    ctl.open_path(bad, PrefetchedLoad(bad))
    qtbot.waitUntil(lambda: bool(seen.events), timeout=TIMEOUT_MS)
    assert seen.kinds() == ["failed"]
    assert "broken.nrrd" in seen.events[0][1] and "truncated" in seen.events[0][1]


def test_cancel_while_waiting_for_a_prefetch_stops_the_read(
    ctl: LoadController, tmp_path: Path, qtbot, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    from viewer.io import api
    from viewer.io.prefetch import PrefetchedLoad

    p = _nrrd(tmp_path)
    stopped = threading.Event()

    def endless(path: Any, series: Any = None, progress: Any = None) -> Volume:
        try:
            while True:
                progress(0.3, "reading slowly")
                threading.Event().wait(0.01)
        except LoadCancelled:
            stopped.set()
            raise

    monkeypatch.setattr(api, "load_volume", endless)
    pre = PrefetchedLoad(p)
    seen = Outcomes(ctl)
    progress: list[str] = []
    ctl.progressed.connect(lambda _f, m: progress.append(m))
    ctl.open_path(p, pre)
    qtbot.waitUntil(lambda: "reading slowly" in progress, timeout=TIMEOUT_MS)  # its progress is shown
    ctl.cancel()
    assert seen.kinds() == ["cancelled"]
    assert stopped.wait(10.0)  # the prefetch's read stopped too
    qtbot.waitUntil(lambda: ctl.background_threads == 0, timeout=TIMEOUT_MS)


def test_a_prefetched_folder_of_several_series_goes_to_the_picker(
    tmp_path: Path, qtbot, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    from types import SimpleNamespace

    from viewer import io as vio
    from viewer.io import api, thumbnails
    from viewer.io.prefetch import PrefetchedLoad

    two = [SimpleNamespace(key="s1"), SimpleNamespace(key="s2")]
    monkeypatch.setattr(api, "scan_series", lambda *a, **k: two)
    monkeypatch.setattr(vio, "scan_series", lambda *a, **k: two)
    monkeypatch.setattr(thumbnails, "series_thumbnail", lambda s: None)
    asked: list[Any] = []
    c = LoadController(choose_series=lambda folder, series, thumbs: asked.append(list(series)))
    try:
        pre = PrefetchedLoad(tmp_path)
        assert pre.wait() is None  # it stopped at the choice
        c.open_path(tmp_path, pre)
        qtbot.waitUntil(lambda: bool(asked), timeout=TIMEOUT_MS)
        assert asked[0] == two
    finally:
        c.shutdown()
        c.deleteLater()
