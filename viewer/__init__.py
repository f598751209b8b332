"""Vessel-bone CTA viewer: bone and contrast-filled vessels from one CT angiogram,
separated by threshold transfer functions and rendered together in 3D."""

__version__ = "0.1.0"


def _no_huge_pages() -> None:
    """Ask numpy not to back its large arrays with transparent huge pages (unless the
    user's environment says otherwise with ``NUMPY_MADVISE_HUGEPAGE``).

    Why: the class masks are large arrays of which few voxels are set, and pages never
    written stay unmapped (``viewer.core.separation.write_sparse``). With huge pages one
    set voxel maps 2 MiB: measured on this project's 2-core VM (THP "madvise"), 500
    writes one megabyte apart into a 500 MB ``np.zeros`` made 474 MiB resident, against
    2 MiB without; the separation of the chest tiled to 512 x 512 x 2000 peaked at 3.00x
    the int16 volume against 2.64x without, no slower (docs/benchmarks.md)."""
    import os

    if os.environ.get("NUMPY_MADVISE_HUGEPAGE") is not None:
        return
    os.environ["NUMPY_MADVISE_HUGEPAGE"] = "0"  # read by numpy when it is first imported
    import numpy as np

    core = getattr(np, "_core", None) or getattr(np, "core", None)
    setter = getattr(getattr(core, "multiarray", None), "_set_madvise_hugepage", None)
    if setter is not None:  # numpy imported before this package: switch it off now
        setter(False)


_no_huge_pages()
