"""The command line's dispatch: the window starts without importing the command modules."""

from __future__ import annotations

import subprocess
import sys

from viewer.cli import _command_names, build_parser, command_names


def test_command_names_from_module_names_match_the_parser() -> None:
    """``main`` tells a sub-command from a scan path by the ``cmd_*`` module names; each
    module must register the command of its own name."""
    assert command_names() == _command_names(build_parser())
    assert {"render", "extract", "info", "vessels", "lesion", "phantom"} <= command_names()


def test_choosing_the_window_imports_no_command_module() -> None:
    """Deciding that ``vessel-viewer PATH`` opens the window does not import the command
    modules (scipy, the lesion analysis: 0.3 s before the scan's read could start)."""
    code = (
        "import sys, viewer.cli as c\n"
        "import viewer.app as a\n"
        "a.run_gui = lambda argv: print(sorted(m for m in sys.modules if m.startswith('viewer.cli.cmd_'))) or 0\n"
        "c.main(['scan.nrrd'])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_running_one_command_imports_no_other_command_module() -> None:
    """``vessel-viewer info ...`` imports ``cmd_info`` only (and its parser still works)."""
    code = (
        "import sys, viewer.cli as c\n"
        "try:\n"
        "    c.main(['info', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('viewer.cli.cmd_')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "['viewer.cli.cmd_info']"
    assert "usage: vessel-viewer info" in out
