"""Pictures of the lesion visuals for docs/lesion.md (issue 10).

Run by hand: ``.venv/bin/python benchmarks/lesion_pictures.py`` (writes docs/img/lesion-*.png):

* ``lesion-phantom-colours.png``: default phantom, posterior close-up of the phantom
  legend's lesion: vessels coloured by distance to the lesion, keyhole, entry markers
  and centrelines from the analysis, colour bar, a ruler and an angle;
* ``lesion-phantom-bone-distance.png``: the same view coloured by distance to bone;
* ``lesion-report-phantom.png``: the report sheet (four cells of 480 x 360);
* ``lesion-cta.png``: the real CTA (``../shared/data/cta-aorta-nifti``), a 25 mm lesion on
  the aorta, distance colours and keyhole, cropped to 50 mm around it, from the left.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("VTK_SMP_BACKEND_IN_USE", "STDThread")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from viewer.core.lesion import Lesion, analyse_lesion, lesion_from_phantom  # noqa: E402
from viewer.core.measure import Angle, Ruler  # noqa: E402
from viewer.core.presets import default_preset  # noqa: E402
from viewer.export.lesion_report import close_up_camera, scene_class_masks, write_lesion_report  # noqa: E402
from viewer.render.scene import Scene  # noqa: E402

IMG = ROOT / "docs" / "img"
DATA = ROOT.parent / "shared" / "data"


def main() -> int:
    from dataclasses import replace

    from viewer.cli.cmd_lesion import named_arteries
    from viewer.phantom import generate

    tf = default_preset().with_changes(separated=True)
    ph = generate("default")
    vol = ph.volume
    masks = scene_class_masks(vol, tf)
    lesion = lesion_from_phantom(ph.landmarks)
    analysis = analyse_lesion(vol, masks, lesion, artery_centerlines_lps=named_arteries(ph.landmarks))
    print(f"phantom: {len(analysis.entry_points)} entry points, {len(analysis.branches)} branches")
    c = np.asarray(lesion.center_lps)
    with Scene(offscreen=True) as s:
        s.set_volume(vol)
        s.set_transfer_function(tf)
        s.set_class_masks(masks)
        s.set_lesion(lesion)
        s.set_keyhole(True)
        s.set_vessel_colouring("lesion", 30.0)
        s.set_entry_points(analysis.entry_points)
        s.set_centrelines(analysis.branches)
        s.set_measurements(
            [
                Ruler(tuple(c + [-30.0, 40.0, 60.0]), tuple(c + [30.0, 40.0, 60.0])),  # type: ignore[arg-type]
                Angle(tuple(c + [-25.0, 40.0, -70.0]), tuple(c + [0.0, 40.0, -100.0]), tuple(c + [25.0, 40.0, -70.0])),  # type: ignore[arg-type]
            ]
        )
        cam = close_up_camera(vol, lesion, margin=1.3)
        cam = replace(cam, position_lps=tuple(c + [0.0, 600.0, 0.0]))  # from posterior
        s.set_camera_state(cam)
        Image.fromarray(s.render_still(900, 900)).save(IMG / "lesion-phantom-colours.png")
        s.set_centrelines([])
        s.set_measurements([])
        s.set_vessel_colouring("bone", 15.0)
        Image.fromarray(s.render_still(900, 900)).save(IMG / "lesion-phantom-bone-distance.png")
    write_lesion_report(vol, masks, analysis, IMG / "lesion-report-phantom.png", tf=tf, cell_px=(480, 360))
    for p in IMG.glob("lesion-report-phantom*"):
        if p.suffix != ".png":
            p.unlink()  # the tables are not pictures; the report's own test checks them
    cta = DATA / "cta-aorta-nifti"
    if cta.is_dir():
        from viewer.io import load_volume

        v = load_volume(cta)
        m = scene_class_masks(v, tf)
        with Scene(offscreen=True) as s:
            s.set_volume(v)
            s.set_transfer_function(tf)
            s.set_class_masks(m)
            les = Lesion.sphere((17.0, -142.0, 690.0), 25.0)
            s.set_lesion(les)
            s.set_keyhole(True)
            s.set_vessel_colouring("lesion", 40.0)
            # The crop box cuts the mesh too: 50 mm around the lesion, from the left.
            c = np.asarray(les.center_lps)
            s.set_crop_box_lps(tuple(np.ravel(np.stack([c - 50.0, c + 50.0], axis=1))))
            s.set_view("left")
            cam = s.camera_state()
            shift = c - np.asarray(cam.focal_point_lps)
            cam = replace(cam, focal_point_lps=tuple(c), position_lps=tuple(np.asarray(cam.position_lps) + shift))
            s.set_camera_state(cam)  # type: ignore[arg-type]
            s.zoom(1.6)
            Image.fromarray(s.render_still(900, 900)).save(IMG / "lesion-cta.png")
    for p in sorted(IMG.glob("lesion-*.png")):
        print(p.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
