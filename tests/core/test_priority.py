"""Background priority (viewer.core.priority): a thread can lower its own priority
without touching the others, and the separation's slabs run at the priority of the
thread that asked for them (a window's separation job in the background pool, the
window's render buffers and the command line in the normal one)."""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

from viewer.core import separation as S
from viewer.core.priority import BACKGROUND_NICE, is_background_thread, lower_this_thread, thread_nice

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")


def _in_thread(fn):  # type: ignore[no-untyped-def]
    out: list[object] = []
    t = threading.Thread(target=lambda: out.append(fn()))
    t.start()
    t.join(30)
    assert not t.is_alive()
    return out[0]


@linux_only
def test_a_thread_lowers_its_own_priority_only() -> None:
    before = thread_nice()
    assert before is not None

    def work() -> tuple[object, ...]:
        was = is_background_thread()
        ok = lower_this_thread()
        again = lower_this_thread()  # idempotent: never lowered below, never raised back
        return was, ok, again, thread_nice(), is_background_thread()

    was, ok, again, nice, bg = _in_thread(work)
    assert (was, ok, again, bg) == (before >= BACKGROUND_NICE, True, True, True)
    assert nice == max(before, BACKGROUND_NICE)
    assert thread_nice() == before  # this thread is untouched


@linux_only
def test_slabs_run_at_the_priority_of_the_thread_that_asks() -> None:
    shape = (64, 256, 256)  # above the pool's size limit, several slabs
    assert int(np.prod(shape)) >= S._PARALLEL_VOXELS and len(S._slabs(shape)) > 1

    def nices() -> set[int | None]:
        seen: set[int | None] = set()
        lock = threading.Lock()

        def work(_z0: int, _z1: int) -> None:
            with lock:
                seen.add(thread_nice())

        S.run_slabs(work, shape)
        return seen

    def background() -> set[int | None]:
        lower_this_thread()
        return nices()

    base = thread_nice()
    assert base is not None
    assert nices() == {base}
    assert _in_thread(background) == {max(base, BACKGROUND_NICE)}
    assert nices() == {base}  # the normal pool kept its priority
