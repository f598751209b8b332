"""Memory given back: numpy's huge pages off (sparse masks stay unmapped), freed
memory returned after the mask and scene work (issue 9: peak <= 3x the volume)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from viewer.core import extraction, memory
from viewer.core.mask_policy import MaskSettings


def _huge_pages_on() -> bool:
    """numpy's current setting (the setter returns the previous one; put back)."""
    setter = np._core.multiarray._set_madvise_hugepage
    was = bool(setter(False))
    setter(was)
    return was


def test_importing_the_viewer_turns_numpys_huge_pages_off() -> None:
    """One set voxel would map a 2 MiB page of a mask that is mostly unwritten."""
    import viewer  # noqa: F401 - the import is what is tested

    assert os.environ.get("NUMPY_MADVISE_HUGEPAGE", "0") != "0" or not _huge_pages_on()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="resident pages are read from /proc")
def test_a_sparse_mask_stays_unmapped_after_importing_the_viewer() -> None:
    """In a fresh process, numpy imported first, then the viewer: 500 writes 1 MB apart
    into a 500 MB ``np.zeros`` leave it nearly unmapped (with huge pages: all of it)."""
    code = (
        "import numpy as np\n"
        "import viewer\n"
        "def rss():\n"
        "    for l in open('/proc/self/status'):\n"
        "        if l.startswith('VmRSS'): return int(l.split()[1]) // 1024\n"
        "r0 = rss()\n"
        "a = np.zeros(500_000_000, bool)\n"
        "a[::1_000_000] = True\n"
        "print(rss() - r0)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert int(out.stdout.strip()) < 64  # MiB (474 with huge pages on this project's VM)


def test_the_class_masks_give_freed_memory_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every mask computation ends by handing freed memory back (also when it fails)."""
    calls: list[int] = []
    monkeypatch.setattr(extraction, "trim_freed_memory", lambda: calls.append(1) or True)
    hu = np.full((8, 16, 16), -1000, dtype=np.int16)
    hu[2:6, 4:12, 4:12] = 900
    extraction.class_masks_for(hu, (1.0, 1.0, 1.0), MaskSettings(650.0, (170.0, 600.0), False, False))
    assert calls == [1]
    with pytest.raises(Exception, match="vessel window"):
        extraction.class_masks_for(hu, (1.0, 1.0, 1.0), MaskSettings(650.0, (600.0, 170.0), False, False))
    assert calls == [1, 1]


def test_trimming_is_harmless_and_says_whether_it_could() -> None:
    assert memory.trim_freed_memory() is (memory._malloc_trim() is not None)
