"""A cancel is not an error: LoadCancelled is no ViewerError, and the command line says
"cancelled" (exit code 130) instead of printing it as an error or a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from viewer.cli import cmd_info, main
from viewer.core.errors import LoadCancelled, ViewerError


def test_load_cancelled_is_not_a_viewer_error() -> None:
    assert not issubclass(LoadCancelled, ViewerError)
    assert issubclass(LoadCancelled, Exception)
    # So an `except ViewerError` that shows a dialog or wraps the message lets it pass.
    with pytest.raises(LoadCancelled):
        try:
            raise LoadCancelled()
        except ViewerError as exc:  # pragma: no cover - must not catch it
            raise AssertionError("a cancel was caught as an error") from exc


def test_cli_reports_a_cancel_as_cancelled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def cancelled_load(*_a: object, **_k: object) -> None:
        raise LoadCancelled()

    monkeypatch.setattr(cmd_info, "scan_series", lambda *_a, **_k: [])
    monkeypatch.setattr(cmd_info, "load_volume", cancelled_load)
    assert main(["info", str(tmp_path)]) == 130
    err = capsys.readouterr().err
    assert err.strip() == "vessel-viewer info: cancelled"
    assert "error" not in err and "Traceback" not in err and "internal" not in err


def test_a_real_error_is_still_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def bad_load(*_a: object, **_k: object) -> None:
        raise ViewerError("no readable image series found", tmp_path)

    monkeypatch.setattr(cmd_info, "scan_series", lambda *_a, **_k: [])
    monkeypatch.setattr(cmd_info, "load_volume", bad_load)
    assert main(["info", str(tmp_path)]) == 2
    assert "error:" in capsys.readouterr().err
