"""Pictures of the separation on every real scan in ../shared/data and on the phantom:
anterior and posterior views, separated mode with the default preset (bone ivory,
vessels red, calcification gold, couch removed), one sheet per run.

    .venv/bin/python benchmarks/separation_pictures.py docs/img/separation-real-scans.png
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from viewer.core.presets import default_preset_name, list_presets
from viewer.export.sessions import open_source
from viewer.render.offscreen import render_to_array
from viewer.render.scene import Scene

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SCANS = [
    ("phantom (two legs, couch)", "phantom"),
    ("ct-chest-noncontrast (no contrast)", str(DATA / "ct-chest-noncontrast")),
    ("totalseg-abdomen-3mm (no contrast)", str(DATA / "totalseg-abdomen-3mm" / "ct.nii.gz")),
    ("ct-head-gantry-tilt (no contrast)", str(DATA / "ct-head-gantry-tilt")),
    ("ct-contrast-abdomen-j2k (portal-venous)", str(DATA / "ct-contrast-abdomen-j2k")),
    ("ct-duplicate-positions (KiTS)", str(DATA / "ct-duplicate-positions")),
    ("cta-aorta-nifti (chest CTA)", str(DATA / "cta-aorta-nifti" / "ct_cropped.nii.gz")),
]
W, H = 360, 300


def main(out: str) -> None:
    tf = list_presets()[default_preset_name()].with_changes(separated=True)
    tiles = []
    for title, src in SCANS:
        if src != "phantom" and not Path(src).exists():
            print(f"skip {title}: not found")
            continue
        vol = open_source(src)
        row = []
        with Scene(offscreen=True) as s:
            s.set_volume(vol)
            s.set_transfer_function(tf)
            for view in ("anterior", "posterior"):
                s.set_view(view)
                row.append(render_to_array(s, W, H)[..., :3])
            m = s.class_masks
            verdict = "" if m is None or m.contrast is None else ("contrast" if m.contrast else "no contrast")
        tiles.append((f"{title}: {verdict}", row))
        print(title, verdict, flush=True)
    sheet = Image.new("RGB", (2 * W, len(tiles) * (H + 18)), (255, 255, 255))
    d = ImageDraw.Draw(sheet)
    for i, (title, row) in enumerate(tiles):
        y = i * (H + 18)
        d.text((4, y + 2), f"{title}   (anterior | posterior)", fill=(0, 0, 0))
        for j, img in enumerate(row):
            sheet.paste(Image.fromarray(np.ascontiguousarray(img)), (j * W, y + 18))
    sheet.save(out)
    print("wrote", out)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "separation-real-scans.png")
