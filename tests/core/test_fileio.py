"""Atomic writes: a failed or cancelled write never leaves a half-written file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from viewer.core.errors import LoadCancelled, ViewerError
from viewer.core.fileio import atomic_output, atomic_write, atomic_write_text


def test_write_replaces_and_leaves_no_temporaries(tmp_path: Path) -> None:
    p = tmp_path / "out.json"
    atomic_write_text(p, "one")
    atomic_write_text(p, "two")
    assert p.read_text() == "two"
    assert [q.name for q in tmp_path.iterdir()] == ["out.json"]
    # Permissions of a normal open(), not mkstemp's 0600.
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask


def test_failure_keeps_the_old_file(tmp_path: Path) -> None:
    p = tmp_path / "keep.bin"
    atomic_write(p, lambda fh: fh.write(b"old"))

    def half(fh) -> None:  # type: ignore[no-untyped-def]
        fh.write(b"partial")
        raise LoadCancelled()

    with pytest.raises(LoadCancelled):
        atomic_write(p, half)
    assert p.read_bytes() == b"old"
    assert [q.name for q in tmp_path.iterdir()] == ["keep.bin"]


def test_missing_folder_is_a_clear_error_or_created(tmp_path: Path) -> None:
    with pytest.raises(ViewerError, match="does not exist"):
        atomic_write_text(tmp_path / "no" / "x.txt", "x", "session file")
    p = atomic_write_text(tmp_path / "made" / "x.txt", "x", make_parents=True)
    assert p.read_text() == "x"


def test_atomic_output_gives_a_name_with_the_suffix(tmp_path: Path) -> None:
    target = tmp_path / "mesh.stl"
    with atomic_output(target, suffix=".stl") as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".stl" and tmp != target
        tmp.write_bytes(b"solid")
        assert not target.exists()
    assert target.read_bytes() == b"solid"
