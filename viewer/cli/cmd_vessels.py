"""``vessel-viewer vessels``: how many vessels run near a point (headless).

The same count as the GUI's Tools > Count vessels near crosshair: separated masks
(bone, calcified shells) from the preset's thresholds, then vessel profiles per slice
and connected segments within a sphere.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from viewer.cli import add_contrast_argument
from viewer.core.errors import ViewerError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "vessels",
        help="count vessels within a radius of a point (e.g. around a bone defect)",
        description=(
            "Count contrast-filled vessels within a sphere: vessel profiles cut by each axial "
            "slice (max, median), connected segments and lumen volume. Vessels are the vessel "
            "window outside the bone and calcification masks (separated mode)."
        ),
    )
    p.add_argument("path", metavar="PATH", help="DICOM folder/file, NIfTI, NRRD, MHA, or phantom[:small|default|large]")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--at", nargs=3, type=float, metavar=("L", "P", "S"), help="centre in LPS mm")
    where.add_argument("--at-lesion", action="store_true", help="phantom only: the centre of its eroded bone segment")
    p.add_argument("--radius", type=float, default=30.0, help="radius in mm (default 30)")
    p.add_argument("--preset", default=None, help="preset whose thresholds to use (default: the default preset)")
    add_contrast_argument(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from viewer.core.extraction import class_masks_for
    from viewer.core.mask_policy import MaskSettings
    from viewer.core.presets import default_preset_name, list_presets
    from viewer.core.vessel_count import count_vessels_near
    from viewer.export.sessions import open_source

    presets = list_presets()
    name = args.preset or default_preset_name()
    if name not in presets:
        raise ViewerError(f"unknown preset {name!r}; known: {', '.join(presets)}")
    tf = presets[name]
    if args.contrast is not None:
        tf = tf.with_changes(contrast=args.contrast)
    if args.at_lesion:
        if not str(args.path).startswith("phantom"):
            raise ViewerError("--at-lesion needs the built-in phantom; give --at L P S for a scan")
        from viewer import phantom
        from viewer.export.sessions import phantom_size

        ph = phantom.generate(phantom_size(args.path))
        vol = ph.volume
        lo, hi = (np.asarray(p, dtype=float) for p in ph.landmarks["erosion_box_lps"])
        centre = tuple(float(v) for v in (lo + hi) / 2)
    else:
        vol = open_source(args.path)
        centre = tuple(float(v) for v in args.at)
    masks = class_masks_for(vol.hu, vol.spacing_mm, MaskSettings.of(tf))
    if masks.contrast is False:
        print(f"note: {masks.message}", file=sys.stderr)
    r = count_vessels_near(vol, centre, args.radius, tf.vessel_window_hu, masks)  # type: ignore[arg-type]
    if args.json:
        out: dict[str, Any] = {
            "center_lps": list(r.center_lps),
            "radius_mm": r.radius_mm,
            "vessel_window_hu": list(r.vessel_window_hu),
            "bone_threshold_hu": tf.bone_threshold_hu,
            "max_profiles_per_slice": r.max_profiles,
            "median_profiles_per_slice": r.median_profiles,
            "segments": r.n_segments,
            "lumen_volume_mm3": round(r.volume_mm3, 1),
        }
        print(json.dumps(out, indent=2))
    else:
        print(r.summary())
    return 0
