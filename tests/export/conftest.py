"""Fixtures for export tests: the small lower-leg phantom in an offscreen scene."""

from __future__ import annotations

import os

os.environ.setdefault("VTK_SMP_BACKEND_IN_USE", "STDThread")

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest

from viewer.core.presets import list_presets
from viewer.core.transfer import TransferFunction
from viewer.core.volume import Volume


@dataclass(frozen=True)
class SmallLeg:
    volume: Volume
    artery: np.ndarray | None  # truth mask (nz, ny, nx) when the phantom provides it


def _artery_mask(ph) -> np.ndarray | None:  # type: ignore[no-untyped-def]
    legend = dict(getattr(ph, "legend", {}) or {})
    items = [(str(k).lower(), v) if not isinstance(v, str) else (v.lower(), k) for k, v in legend.items()]
    ids = [int(v) for k, v in items if any(w in k for w in ("arter", "collateral"))]
    return np.isin(np.asarray(ph.labels), ids) if ids else None


@pytest.fixture(autouse=True)
def _isolated_config(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No user presets from the real home folder."""
    monkeypatch.setenv("VESSEL_VIEWER_CONFIG_DIR", str(tmp_path_factory.mktemp("config")))


@pytest.fixture(scope="session")
def small_leg() -> SmallLeg:
    """``viewer.phantom.generate("small")`` with an identity that must never leak."""
    from viewer.phantom import generate

    ph = generate("small")
    vol = ph.volume
    # A fake identity: the tests grep exported files for these strings.
    from dataclasses import replace

    vol = replace(vol, identity={"PatientName": "DOE^JANE", "PatientID": "XYZ-12345", "PatientBirthDate": "19491231"})
    return SmallLeg(vol, _artery_mask(ph))


@pytest.fixture(scope="session")
def bone_vessels() -> TransferFunction:
    return list_presets()["Bone + vessels"]


@pytest.fixture()
def scene(small_leg: SmallLeg, bone_vessels: TransferFunction) -> Iterator[object]:
    from viewer.render.scene import Scene

    s = Scene(offscreen=True)
    s.set_volume(small_leg.volume)
    s.set_transfer_function(bone_vessels)
    s.set_view("anterior")
    yield s
    s.close()
