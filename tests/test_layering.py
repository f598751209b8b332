"""Rules import-linter cannot express (it ignores sub-packages of external packages).

DESIGN.md: only ``viewer/ui`` (and the composition root) may use Qt, including VTK's
Qt widget ``vtkmodules.qt``; nowhere may use the ``import vtk`` umbrella (it loads
every VTK module, slow start-up and hidden dependencies).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "viewer"
QT_ALLOWED = {"ui", "app.py"}


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


SOURCES = sorted(p for p in PKG.rglob("*.py") if "transfer_functions" not in p.parts)


def test_sources_found() -> None:
    assert len(SOURCES) > 20


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PKG)))
def test_no_vtk_umbrella_and_qt_only_in_ui(path: Path) -> None:
    rel = path.relative_to(PKG)
    for name in _imports(path):
        assert name != "vtk" and not name.startswith("vtk."), f"{rel}: use vtkmodules.*, not '{name}'"
        if rel.parts[0] not in QT_ALLOWED:
            assert not name.startswith(("PySide6", "vtkmodules.qt", "superqt", "shiboken6")), (
                f"{rel}: Qt import '{name}' outside viewer/ui"
            )
