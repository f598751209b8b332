"""The ``vessel-viewer`` command.

``vessel-viewer``               start the GUI on the built-in lower-leg phantom
``vessel-viewer PATH``          start the GUI on a scan (DICOM folder/file, NIfTI, NRRD, MHA)
``vessel-viewer COMMAND ...``   a headless sub-command (``vessel-viewer --help`` lists them)

Sub-commands live in this package as ``cmd_<name>.py`` modules, each defining
``register(subparsers)`` which adds its parser and sets ``func`` (a callable taking
the parsed ``argparse.Namespace`` and returning an exit code). They are discovered
automatically, so adding a command touches no shared file.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from viewer import __version__
from viewer.core.errors import LoadCancelled, ViewerError

#: ``--contrast`` of the separating commands (the transfer function's ``contrast``).
CONTRAST_HELP = (
    "real-CT separation: whether the scan has opacified vessels -- 'auto' detects it "
    "(default), 'yes' / 'no' say it where the detection is wrong (e.g. a scan without "
    "contrast at 2-3 mm voxels shown with red bone)"
)


def add_contrast_argument(p: argparse.ArgumentParser, default: str | None = None) -> None:
    """Add ``--contrast {auto,yes,no}`` to a command's parser (``default`` None: the
    preset's or session's setting stays unless given)."""
    p.add_argument("--contrast", choices=("auto", "yes", "no"), default=default, help=CONTRAST_HELP)


def _command_modules() -> list[str]:
    pkg = importlib.import_module("viewer.cli")
    return sorted(f"viewer.cli.{m.name}" for m in pkgutil.iter_modules(pkg.__path__) if m.name.startswith("cmd_"))


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line's parser; with ``only`` (a command name) just that
    command's module is imported and registered (running one command need not import
    the others: 0.2 s of scipy, lesion-analysis and DICOM imports)."""
    parser = argparse.ArgumentParser(
        prog="vessel-viewer",
        description=(
            "Vessel-bone CTA viewer. With no command, opens the desktop application "
            "(on PATH if given, else on the built-in lower-leg phantom)."
        ),
        epilog=(
            "desktop application: vessel-viewer [PATH] [--small] [--layout {3d,2x2}] "
            "[--separated] [--screenshot FILE] [--quit-after-ms N] "
            "(`vessel-viewer --gui-help` for details). "
            "Each COMMAND has its own --help."
        ),
    )
    parser.add_argument("--version", action="version", version=f"vessel-viewer {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _command_modules():
        if only is None or name == f"viewer.cli.cmd_{only}":
            importlib.import_module(name).register(sub)
    return parser


def _command_names(parser: argparse.ArgumentParser) -> set[str]:
    """The sub-command names ``parser`` knows (its sub-parsers action's choices)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    return set()


def command_names() -> set[str]:
    """The sub-command names, from the ``cmd_*`` module names alone (no import: the
    command modules pull in scipy and the lesion analysis, 0.3 s that a window start
    need not wait for). Each module registers the command of its own name
    (``tests/cli`` checks it against :func:`build_parser`)."""
    return {m.rsplit(".", 1)[1][len("cmd_") :] for m in _command_modules()}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = command_names()
    if argv and argv[0] == "--gui-help":
        argv = ["--help"]
        from viewer.app import run_gui

        return run_gui(argv)
    if not argv or (argv[0] not in commands and argv[0] not in ("-h", "--help", "--version")):
        # No sub-command: the GUI, optionally on a path (and GUI options).
        from viewer.app import run_gui

        return run_gui(argv)
    args = build_parser(argv[0] if argv[0] in commands else None).parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ViewerError as exc:
        print(f"vessel-viewer {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except LoadCancelled:
        # A cancel is not an error (LoadCancelled is no ViewerError): said as such.
        print(f"vessel-viewer {args.command}: cancelled", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print(f"vessel-viewer {args.command}: interrupted", file=sys.stderr)
        return 130


__all__ = ["build_parser", "command_names", "main"]
