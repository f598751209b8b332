"""``vessel-viewer render``: figures of the phantom, clean failures, --help."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("VTK_SMP_BACKEND_IN_USE", "STDThread")

import numpy as np
import pytest
from PIL import Image

from viewer.cli import main

ROOT = Path(__file__).resolve().parents[2]


def is_red(img: np.ndarray) -> np.ndarray:
    f = img[..., :3].astype(np.int32)
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    return (r >= 50) & (r >= 2 * g) & (r >= 2 * b)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VTK_SMP_BACKEND_IN_USE": "STDThread"}
    env.pop("DISPLAY", None)  # the command must work with no display at all
    return subprocess.run(
        [sys.executable, "-m", "viewer", "render", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )


@pytest.fixture(scope="module")
def clean_phantom_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The clean small phantom (one leg, no couch, plaques or veins, dense bone ends)
    as an NRRD file: the colour tests below check the render command, not how the
    separation copes with the confounders of the default phantom (that is measured in
    tests/core and the phantom's own tests)."""
    from viewer.io.writers import write_nrrd
    from viewer.phantom import generate

    vol = generate("small", clean=True).volume
    return write_nrrd(vol.hu, vol.ijk_to_lps, tmp_path_factory.mktemp("clean") / "clean_small.nrrd")


def _projected_labels(size: tuple[int, int], view: str = "anterior") -> dict[str, np.ndarray]:
    """Where the clean phantom's labelled structures project in a standard view
    (truth): ``{"arteries": mask, "mass": mask}`` as (h, w) bool images."""
    from scipy import ndimage

    from viewer.phantom import generate
    from viewer.render.scene import Scene

    ph = generate("small", clean=True)
    legend = {str(k).lower(): int(v) for k, v in dict(ph.legend).items()}
    labels = np.asarray(ph.labels)
    groups = {
        "arteries": [v for k, v in legend.items() if "arter" in k or "collateral" in k],
        # The calcified mass: its rim's HU overlap the vessel window.
        "mass": [v for k, v in legend.items() if "mass" in k or "calcif" in k],
    }
    w, h = size
    out = {}
    with Scene(offscreen=True) as s:
        s.set_volume(ph.volume)
        s.set_view(view)
        for name, ids in groups.items():
            ijk = np.argwhere(np.isin(labels, ids))[:, ::-1]  # (k, j, i) -> (i, j, k)
            px = s.world_to_pixel(ph.volume.lps_of_ijk(ijk), w, h)
            m = np.zeros((h, w), bool)
            c = np.clip(np.rint(px).astype(int), 0, [w - 1, h - 1])
            m[c[:, 1], c[:, 0]] = True
            out[name] = ndimage.binary_dilation(m, iterations=2)
    return out


def test_renders_phantom_with_red_vessels_where_the_arteries_are(tmp_path: Path, clean_phantom_file: Path) -> None:
    # Default preset (bone + vessels, separated) and default view (anterior).
    out = tmp_path / "figure.png"
    rc = main(["render", str(clean_phantom_file), "--size", "160x240", "--out", str(out), "--quiet"])
    assert rc == 0
    with Image.open(out) as im:
        assert im.size == (160, 240)
        img = np.asarray(im.convert("RGB"))
    red = is_red(img)
    assert red.sum() > 150
    truth = _projected_labels((160, 240))
    arteries, mass = truth["arteries"], truth["mass"]
    # Red pixels lie on the projected arteries, never on the calcified mass (gold).
    assert (red & ~arteries).sum() / red.sum() < 0.05
    assert (red & arteries & ~mass).sum() > 150
    assert (red & mass & ~arteries).sum() < 0.02 * mass.sum()
    r, g, b = (img[..., i].astype(int) for i in range(3))
    gold = (r > 120) & (g > 0.6 * r) & (b < 0.6 * g) & (r - b > 60)
    assert (gold & mass).sum() > 0.25 * mass.sum()


def test_render_lets_the_separation_cache_go_before_it_draws(
    tmp_path: Path, clean_phantom_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A one-shot render drops the separation's cached body mask once its masks are
    made (memory for the shading gradients); the masks were made through the cache."""
    from viewer.core import separation
    from viewer.render import scene

    held: list[int] = []
    real = scene.Scene.render_still

    def render_still(self: scene.Scene, *a: object, **k: object) -> np.ndarray:
        held.append(len(separation._PREP_CACHE))
        return real(self, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(scene.Scene, "render_still", render_still)
    separation.release_prepare_cache()
    out = tmp_path / "figure.png"
    assert main(["render", str(clean_phantom_file), "--size", "80x120", "--out", str(out), "--quiet"]) == 0
    assert held == [0]
    # (the separation did fill it: a separation of its own leaves an entry)
    from viewer.core.extraction import class_masks_for
    from viewer.core.mask_policy import MaskSettings
    from viewer.core.presets import default_preset
    from viewer.io.api import load_volume

    vol = load_volume(clean_phantom_file)
    class_masks_for(vol.hu, vol.spacing_mm, MaskSettings.of(default_preset().with_changes(separated=True)))
    assert len(separation._PREP_CACHE) == 1
    separation.release_prepare_cache()


def test_contrast_no_renders_no_red_and_extract_writes_an_empty_vessel_mask(
    tmp_path: Path, clean_phantom_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--contrast no`` (the user's verdict where the check is wrong): the figure has
    bone and no red, ``extract`` writes an empty vessel mask and says why."""
    out = tmp_path / "no.png"
    args = ["render", str(clean_phantom_file), "--size", "160x240", "--quiet"]
    assert main([*args, "--out", str(out), "--contrast", "no"]) == 0
    with Image.open(out) as im:
        img = np.asarray(im.convert("RGB"))
    assert is_red(img).sum() == 0
    assert (img.astype(int).sum(axis=2) > 300).sum() > 500  # the bone is there
    assert main(["extract", str(clean_phantom_file), "--out-dir", str(tmp_path / "x"), "--no-surfaces"]) == 0
    capsys.readouterr()
    rc = main(
        ["extract", str(clean_phantom_file), "--out-dir", str(tmp_path / "n"), "--no-surfaces", "--contrast", "no"]
    )
    assert rc == 0
    said = capsys.readouterr().out
    assert "no contrast set by hand" in said
    import json

    auto = json.loads(next((tmp_path / "x").glob("*.json")).read_text())
    no = json.loads(next((tmp_path / "n").glob("*.json")).read_text())
    assert auto["contrast"] is True and auto["contrast_setting"] == "auto"
    assert no["contrast"] is False and no["contrast_setting"] == "no"
    assert auto["classes"]["vessel"]["voxels"] > 100 and no["classes"]["vessel"]["voxels"] == 0


def test_posterior_view_shows_the_arteries(tmp_path: Path, clean_phantom_file: Path) -> None:
    # The leg's arteries run behind the bones: from behind they cover their projection.
    out = tmp_path / "post.png"
    rc = main(
        ["render", str(clean_phantom_file), "--view", "posterior", "--size", "160x240", "--out", str(out), "--quiet"]
    )
    assert rc == 0
    with Image.open(out) as im:
        img = np.asarray(im.convert("RGB"))
    red = is_red(img)
    arteries = _projected_labels((160, 240), "posterior")["arteries"]
    assert (red & ~arteries).sum() / red.sum() < 0.05
    assert (red & arteries).sum() / arteries.sum() > 0.2  # thin vessels vs. a 2-px dilated truth


def test_all_options_sheet_and_turntable(tmp_path: Path) -> None:
    sheet = tmp_path / "sheet.png"
    movie = tmp_path / "spin.gif"
    rc = main(
        [
            "render",
            "phantom:small",
            "--preset",
            "vessels only",
            "--separated",
            "--view",
            "left",
            "--size",
            "120x90",
            "--scale",
            "2",
            "--scale-bar",
            "--orientation-labels",
            "--caption",
            "test",
            "--sheet",
            "--out",
            str(sheet),
            "--turntable",
            str(movie),
            "--frames",
            "5",
            "--fps",
            "5",
            "--quiet",
        ]
    )
    assert rc == 0
    with Image.open(sheet) as im:
        assert im.width >= 480 and im.height >= 360
    with Image.open(movie) as im:
        assert im.n_frames == 5 and im.size == (120, 90)


def test_session_option(tmp_path: Path) -> None:
    from viewer.core.presets import list_presets
    from viewer.core.session import Session, save_session

    tf = list_presets()["Bone + vessels"].with_changes(separated=True)
    f = save_session(
        Session(data_path="phantom:small", transfer_function=tf, preset_name="Bone + vessels"), tmp_path / "s.json"
    )
    out = tmp_path / "s.png"
    assert main(["render", "--session", str(f), "--size", "100x80", "--out", str(out), "-q"]) == 0
    assert Image.open(out).size == (100, 80)


@pytest.mark.parametrize(
    "args, message",
    [
        (["/no/such/scan", "--out", "{tmp}/x.png"], "no such file or folder"),
        (["phantom:small", "--size", "big", "--out", "{tmp}/x.png"], "size must be WIDTHxHEIGHT"),
        (
            ["phantom:small", "--preset", "Nonexistent", "--out", "{tmp}/x.png"],
            "known presets: 'Bone only', 'Bone + vessels'",
        ),
        (["phantom:small", "--out", "/no/such/folder/x.png"], "does not exist"),
        (["phantom:small", "--out", "{tmp}/x.jpg", "--transparent"], "alpha"),
        (["phantom:small", "--out", "{tmp}/x.bmp"], ".bmp"),
        (["phantom:small", "--turntable", "{tmp}/x.avi"], "mp4 or .gif"),
        (["phantom:small", "--scale", "5", "--out", "{tmp}/x.png"], "scale must be from 1 to 4"),
        (["phantom:small"], "nothing to write"),
        (["phantom:huge", "--out", "{tmp}/x.png"], "unknown phantom size"),
        (["--session", "{tmp}/none.json", "--out", "{tmp}/x.png"], "does not exist"),
    ],
)
def test_bad_input_fails_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    try:
        rc = main(["render", *[a.replace("{tmp}", str(tmp_path)) for a in args]])
    except SystemExit as exc:  # argparse's own errors (bad --size, --scale)
        rc = exc.code
    err = capsys.readouterr().err
    assert rc == 2, err
    assert message in err
    assert not list(tmp_path.glob("x.*"))


def test_bad_path_in_a_fresh_process_no_display(tmp_path: Path) -> None:
    r = _run("/no/such/scan", "--out", str(tmp_path / "x.png"))
    assert r.returncode == 2
    assert "no such file or folder: /no/such/scan" in r.stderr
    assert "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1  # one clear line


def test_help() -> None:
    r = _run("--help")
    assert r.returncode == 0
    for opt in (
        "--preset",
        "--separated",
        "--view",
        "--size",
        "--out",
        "--session",
        "--sheet",
        "--turntable",
        "--scale",
        "--transparent",
        "--scale-bar",
        "--orientation-labels",
        "--caption",
        "--show-identity",
    ):
        assert opt in r.stdout
