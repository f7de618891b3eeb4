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

from hashlearn.errors import HashlearnError

from ._common import CLIError, app, bench_app, console, err_console

__all__ = ["app", "main", "CLIError"]


def _show_version(value: bool) -> None:
    if value:
        from hashlearn import __version__

        console.print(f"hashlearn {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", "-V", is_eager=True, callback=_show_version,
                                 help="Print the version and exit."),
) -> None:
    """Compact similarity search with hashing and clustering: learn codes, index, search, evaluate."""

from . import apps, core, crossmodal, discover, funchash, nn, quantize, recsys, represent, robust, selection, service, text, textbench  # noqa: E402,F401  (core registers on import)

for _group in (crossmodal, service, text, apps, funchash, selection, recsys, quantize, textbench, discover, nn, robust, represent):
    _group.register(app, bench_app)


_PLACEHOLDERS = {"int": "INTEGER", "float": "FLOAT", "str": "TEXT", "path": "PATH", "bool": ""}


def _placeholder(param) -> str:
    """One placeholder style for every option: nothing for flags, else an upper-case word (INTEGER, PATH)."""
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return ""
    label = param.display_type(None).strip("<>")
    label = label.removeprefix("list[").removesuffix("]").split("|")[0]
    return _PLACEHOLDERS.get(label, label.upper())


def _without_placeholder(make_help_option):
    def get_help_option(ctx):
        option = make_help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option

    return get_help_option


def _normalise_help(command) -> None:
    for param in command.params:
        if param.param_type_name == "option":
            param.metavar = _placeholder(param)
        else:  # arguments keep their name (DATA) and show the same type word as options
            param.display_type_rich = (lambda word: lambda ctx: word)(_placeholder(param))
    command.get_help_option = _without_placeholder(command.get_help_option)
    for sub in getattr(command, "commands", {}).values():
        _normalise_help(sub)


def build_command():
    """The click command of the app, with one placeholder style in every help page."""
    command = typer.main.get_command(app)
    _normalise_help(command)
    return command


def main(argv: Optional[list[str]] = None) -> int:
    """Entry point: run the app, turning expected errors into one-line messages and exit code 2."""
    try:
        result = build_command().main(args=argv, prog_name="hashlearn", standalone_mode=False)
    except (HashlearnError, OSError) as exc:  # deliberate failures and the environment; anything else is a bug
        err_console.print(f"[red]error:[/red] {_one_line(exc)}", highlight=False, soft_wrap=True)
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
    return result if isinstance(result, int) else 0


def _one_line(exc: BaseException) -> str:
    """The message of an error, with OSError's ``[Errno N] text: 'path'`` turned into ``path: text``."""
    if isinstance(exc, OSError) and not isinstance(exc, HashlearnError) and exc.strerror:
        where = exc.filename if exc.filename is not None else ""
        return f"{where}: {exc.strerror}" if where else exc.strerror
    return str(exc) or type(exc).__name__


def _entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    _entry()
