"""The version is written once (viewer/__init__.py); pyproject.toml and the installed
package metadata take it from there."""

from __future__ import annotations

import importlib.metadata
import re
import sys
from pathlib import Path

import pytest

import viewer

ROOT = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        tomllib = pytest.importorskip("tomli")
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_pyproject_takes_the_version_from_the_package() -> None:
    cfg = _pyproject()
    assert "version" not in cfg["project"], "pyproject.toml must not repeat the version"
    assert "version" in cfg["project"]["dynamic"]
    assert cfg["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "viewer.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+([a-z]+\d+)?", viewer.__version__)


def test_installed_metadata_matches_the_package() -> None:
    try:
        installed = importlib.metadata.version("vessel-viewer")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("vessel-viewer is not installed (run from a plain source tree)")
    assert installed == viewer.__version__


def test_cli_reports_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    from viewer.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"vessel-viewer {viewer.__version__}"
