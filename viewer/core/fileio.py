"""Atomic file writes: the one place the project replaces a file on disk.

Every output (presets, sessions, images, movies, masks, surfaces, summaries) is
written to a temporary file in the target's folder and then ``os.replace``-d onto the
target, which is atomic on POSIX and Windows within one file system: a crash, a full
disk or a cancel never leaves a half-written file under the final name, and the
previous file stays intact until the new one is complete.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from viewer.core.errors import ViewerError


@contextlib.contextmanager
def atomic_output(
    path: str | Path, what: str = "file", *, make_parents: bool = False, suffix: str = ".tmp"
) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on normal exit it replaces ``path``.

    For writers that need a file *name* (VTK writers, ffmpeg); ``suffix`` for those
    that choose the format by the name's ending. On any exception the
    temporary file is removed, ``path`` is untouched and the exception propagates
    (an ``OSError`` as a :class:`ViewerError` naming ``path`` and ``what``).
    """
    p = Path(path)
    folder = p.parent if str(p.parent) else Path(".")
    try:
        if make_parents:
            folder.mkdir(parents=True, exist_ok=True)
        elif not folder.is_dir():
            raise ViewerError(f"cannot write {what} {p}: the folder {folder} does not exist", p)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{p.name}.", suffix=suffix, dir=folder)
        os.close(fd)
    except OSError as exc:
        raise ViewerError(f"cannot write {what} {p}: {exc.strerror or exc}", p) from None
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp creates 0600; give the file the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, p)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ViewerError(f"cannot write {what} {p}: {exc.strerror or exc}", p) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(
    path: str | Path, write: Callable[[IO[bytes]], object], what: str = "file", *, make_parents: bool = False
) -> Path:
    """Call ``write(fh)`` on a binary temporary file next to ``path``, flush it to disk,
    then replace ``path`` with it (see :func:`atomic_output`). Returns the path."""
    with atomic_output(path, what, make_parents=make_parents) as tmp:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
    return Path(path)


def atomic_write_text(path: str | Path, text: str, what: str = "file", *, make_parents: bool = False) -> Path:
    """:func:`atomic_write` of UTF-8 text."""
    data = text.encode("utf-8")
    return atomic_write(path, lambda fh: fh.write(data), what, make_parents=make_parents)


__all__ = ["atomic_output", "atomic_write", "atomic_write_text"]
