"""Mapper choice: software GL -> CPU ray caster; the env override; the GPU path renders."""

from __future__ import annotations

import numpy as np
import pytest

from viewer.core.errors import ViewerError
from viewer.core.transfer import TransferFunction
from viewer.core.volume import Volume
from viewer.render.offscreen import choose_mapper_kind, gl_renderer_string, is_software_renderer, render_to_array
from viewer.render.scene import Scene


def test_renderer_string_and_software_detection() -> None:
    name = gl_renderer_string()
    assert name  # an OpenGL context could be made (EGL offscreen)
    soft = any(s in name.lower() for s in ("llvmpipe", "softpipe", "swiftshader"))
    assert is_software_renderer() == soft


def test_env_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VESSEL_VIEWER_MAPPER", "gpu")
    assert choose_mapper_kind() == "gpu"
    monkeypatch.setenv("VESSEL_VIEWER_MAPPER", "cpu")
    assert choose_mapper_kind() == "cpu"
    monkeypatch.setenv("VESSEL_VIEWER_MAPPER", "quantum")
    with pytest.raises(ViewerError):
        choose_mapper_kind()
    monkeypatch.delenv("VESSEL_VIEWER_MAPPER")
    assert choose_mapper_kind() == ("cpu" if is_software_renderer() else "gpu")


@pytest.mark.parametrize("kind", ["cpu", "gpu"])
def test_both_mappers_render_the_separated_classes(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A tiny volume so the GPU ray caster is quick even on llvmpipe."""
    monkeypatch.setenv("VESSEL_VIEWER_MAPPER", kind)
    hu = np.full((16, 16, 24), -1000, np.int16)
    hu[4:12, 4:12, 2:9] = 1300  # bone block on the patient's right (-x side)
    hu[4:12, 6:10, 15:21] = 380  # vessel block on the patient's left
    vol = Volume(hu, (1.0, 1.0, 1.0), np.eye(4))
    with Scene() as s:
        s.set_volume(vol)
        assert s.mapper_kind == kind
        s.set_bone_mask(hu >= 1000)
        s.set_transfer_function(TransferFunction(separated=True))
        img = render_to_array(s, 120, 100).astype(int)
        left, right = img[:, :60], img[:, 60:]
        # Anterior view: the patient's right (bone, ivory) on the image left.
        ivory = (left[..., 0] > 80) & (left[..., 1] > 0.8 * left[..., 0])
        red = (right[..., 0] > 60) & (right[..., 0] > 2 * right[..., 1])
        assert ivory.sum() > 50 and red.sum() > 30
        assert not ((img[..., 0] > 60) & (img[..., 0] > 2 * img[..., 1]))[:, :60].any()
