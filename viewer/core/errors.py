"""The project's one exception type for input a user can act on.

Every error caused by bad input (a corrupt file, an unknown preset field, a missing
scan) is raised as :class:`ViewerError` with a message that names the file and the
problem. The GUI shows ``str(error)`` in a dialog and the CLI prints it and exits
non-zero; neither ever shows a raw traceback for these.

A cancel is not an error: :class:`LoadCancelled` deliberately does *not* derive from
``ViewerError``, so an ``except ViewerError`` that shows a dialog (or wraps the message
with the file's name) lets a cancel pass through to the code that reports it as
"cancelled".
"""

from __future__ import annotations

from pathlib import Path


class ViewerError(Exception):
    """Bad input or an operation that cannot be done, explained for a user.

    ``path`` is the file or folder at fault, when there is one; the message already
    contains it, it is kept separately so callers can highlight it.
    """

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = None if path is None else Path(path)
        if path is not None and str(path) not in message:
            message = f"{path}: {message}"
        super().__init__(message)


class LoadCancelled(Exception):
    """The user cancelled a long operation (load, extraction, export, movie).

    Not a :class:`ViewerError` (see the module docstring): workers report it as their
    ``cancelled`` outcome, the command line as "cancelled" (exit code 130).
    """

    def __init__(self, message: str = "cancelled by the user") -> None:
        super().__init__(message)
