"""Command-line interface: ``hashlearn --help``.

One module per command group (``core``, ``text``, ``crossmodal``, ``apps``, ``funchash``, ``selection``,
``service``), shared helpers in ``_common``. Nothing outside this package imports it.

Every command validates its input and reports a problem as one line on stderr with exit code 2
(never a traceback); output files are written atomically, so a failed command leaves files on disk
as they were.
"""

from __future__ import annotations

import sys
from typing import Optional

import typer

from ._common import CLIError, app, bench_app, err_console

__all__ = ["app", "main", "CLIError"]

from . import apps, core, crossmodal, funchash, selection, service, text  # noqa: E402,F401  (core registers on import)

for _group in (crossmodal, service, text, apps, funchash, selection):
    _group.register(app, bench_app)


def main(argv: Optional[list[str]] = None) -> int:
    """Entry point: run the app, turning expected errors into one-line messages and exit code 2."""
    from hashlearn.errors import HashlearnError

    try:
        app(args=argv, standalone_mode=False)
    except (CLIError, HashlearnError, ValueError, OSError, TypeError) as exc:
        message = str(exc) or type(exc).__name__
        err_console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    except Exception as exc:  # click usage errors and the like
        # typer >= 0.22 vendors click as typer._click: its exceptions are not click's classes.
        if callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()
            return exc.exit_code
        if isinstance(exc, typer.Abort):
            return 1
        raise
    return 0


def _entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    _entry()
