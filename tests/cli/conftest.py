"""CLI test set-up: no user presets or settings from the real home folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("VTK_SMP_BACKEND_IN_USE", "STDThread")


@pytest.fixture(autouse=True)
def _isolated_config(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    cfg = tmp_path_factory.mktemp("config")
    monkeypatch.setenv("VESSEL_VIEWER_CONFIG_DIR", str(cfg))
    return cfg
