"""Mapper choice: software GL -> CPU ray caster; the env override; the GPU path renders."""

from __future__ import annotations

import os

import numpy as np
import pytest

from viewer.core.errors import ViewerError
from viewer.core.transfer import TransferFunction
from viewer.core.volume import Volume
from viewer.render import offscreen
from viewer.render.offscreen import (
    choose_mapper_kind,
    gl_renderer_string,
    is_software_renderer,
    is_software_renderer_name,
    mapper_kind_for_renderer,
    render_to_array,
)
from viewer.render.scene import Scene

# GL_RENDERER strings as drivers report them (Mesa, SwiftShader, NVIDIA, AMD, Intel, Apple).
SOFTWARE = [
    "llvmpipe (LLVM 15.0.6, 256 bits)",
    "softpipe",
    "Google SwiftShader",
    "ANGLE (Google, Vulkan 1.3.0 (SwiftShader Device (Subzero) (0x0000C0DE)), SwiftShader driver)",
    "Gallium 0.4 on llvmpipe (LLVM 3.4, 128 bits)",
]
HARDWARE = [
    "NVIDIA H200/PCIe/SSE2",
    "NVIDIA GeForce RTX 3080/PCIe/SSE2",
    "AMD Radeon RX 6800 XT (navi21, LLVM 15.0.7, DRM 3.49, 6.1.0-13-amd64)",
    "Mesa Intel(R) UHD Graphics 620 (KBL GT2)",
    "Apple M1",
]


@pytest.mark.parametrize("name", SOFTWARE)
def test_software_renderers_get_the_cpu_ray_caster(name: str) -> None:
    assert is_software_renderer_name(name)
    assert mapper_kind_for_renderer(name) == "cpu"


@pytest.mark.parametrize("name", HARDWARE)
def test_hardware_renderers_get_the_gpu_ray_caster(name: str) -> None:
    assert not is_software_renderer_name(name)
    assert mapper_kind_for_renderer(name) == "gpu"


def test_no_opengl_gets_the_cpu_ray_caster() -> None:
    assert mapper_kind_for_renderer("") == "cpu"


@pytest.mark.parametrize(("name", "kind"), [(SOFTWARE[0], "cpu"), (HARDWARE[0], "gpu"), ("", "cpu")])
def test_choose_mapper_kind_asks_the_renderer(name: str, kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """choose_mapper_kind reads the GL_RENDERER string (here a stand-in for the probe)."""
    monkeypatch.delenv("VESSEL_VIEWER_MAPPER", raising=False)
    asked: list[object] = []

    def fake(render_window: object = None) -> str:
        asked.append(render_window)
        return name

    monkeypatch.setattr(offscreen, "gl_renderer_string", fake)
    assert choose_mapper_kind() == kind
    assert offscreen.is_software_renderer() == (kind == "cpu" and name != "")
    assert asked


def test_this_machines_renderer_string() -> None:
    name = gl_renderer_string()
    assert name  # an OpenGL context could be made (EGL offscreen)
    assert is_software_renderer() == is_software_renderer_name(name)
    if "llvmpipe" in name.lower():
        assert choose_mapper_kind() == "cpu" or "VESSEL_VIEWER_MAPPER" in os.environ


def test_env_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VESSEL_VIEWER_MAPPER", "gpu")
    assert choose_mapper_kind() == "gpu"
    monkeypatch.setenv("VESSEL_VIEWER_MAPPER", "cpu")
    assert choose_mapper_kind() == "cpu"
    monkeypatch.setenv("VESSEL_VIEWER_MAPPER", "quantum")
    with pytest.raises(ViewerError):
        choose_mapper_kind()
    monkeypatch.delenv("VESSEL_VIEWER_MAPPER")
    assert choose_mapper_kind() == mapper_kind_for_renderer(gl_renderer_string())


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
