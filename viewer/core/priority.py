"""Background work yields the cores to what the user is waiting for.

On this project's reference machine (two cores, software OpenGL) the window's renders
and the coarse frame after a bone-threshold edit share the cores with the full
separation that runs behind them. The separation's threads run at a lower scheduling
priority (a higher nice value), so that while something else wants a core, the kernel
gives it most of the time (nice 10 against 0: about 9 to 1), and when nothing else
runs, the separation has the cores to itself at full speed.

Linux schedules threads one by one, so the nice value of one thread can be raised
without touching the others (``setpriority`` with the thread's id). Elsewhere this
does nothing: there ``setpriority`` would lower the whole process, the GUI with it.
A raised nice value cannot be lowered again without privileges, so it is only set on
threads that do background work for the rest of their lives (the separation's pool)
or that end with their job (the mask controller's jobs).
"""

from __future__ import annotations

import os
import sys
import threading

#: The nice value of background threads (0 is the default; 19 the lowest priority).
BACKGROUND_NICE = 10


def thread_nice() -> int | None:
    """The calling thread's nice value (None where threads have none of their own)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    except OSError:
        return None


def lower_this_thread(nice: int = BACKGROUND_NICE) -> bool:
    """Raise the calling thread's nice value to ``nice`` (never lower it). Returns
    whether the thread now runs at ``nice`` or lower priority."""
    now = thread_nice()
    if now is None:
        return False
    if now >= nice:
        return True
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), int(nice))
    except OSError:
        return False
    return True


def is_background_thread() -> bool:
    """Whether the calling thread runs at background priority (:func:`lower_this_thread`)."""
    now = thread_nice()
    return now is not None and now >= BACKGROUND_NICE


__all__ = ["BACKGROUND_NICE", "is_background_thread", "lower_this_thread", "thread_nice"]
