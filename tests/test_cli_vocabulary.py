"""Every command follows the README's option vocabulary: one name per meaning, the same short flags.

The table under "### Option vocabulary" in README.md is the reference; this test walks every command of
``hashlearn`` and checks each option against it, and that every option, argument and command has help.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hashlearn.cli import build_command

README = Path(__file__).resolve().parents[1] / "README.md"


def _vocabulary() -> dict[str, str | None]:
    """``{"--bits": "-b", "--json": None, ...}`` from the README table."""
    text = README.read_text()
    section = text.split("### Option vocabulary", 1)[1]
    table: dict[str, str | None] = {}
    for line in section.splitlines():
        if not line.startswith("| `"):
            if table:
                break  # the table ended
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        names = re.findall(r"`(--[a-z0-9-]+)`", cells[0])
        short = re.findall(r"`(-[a-zA-Z])`", cells[1])
        assert names, f"README vocabulary row without an option name: {line}"
        for name in names:
            assert name not in table, f"{name} appears twice in the README vocabulary"
            table[name] = short[0] if short else None
    return table


def _commands(command, path=()):
    subs = getattr(command, "commands", None)
    if subs:
        yield path, command
        for name, sub in subs.items():
            yield from _commands(sub, path + (name,))
    else:
        yield path, command


VOCABULARY = _vocabulary()
COMMANDS = list(_commands(build_command()))


def _options(command):
    import click  # noqa: F401  (typer's vendored click has the same interface)

    params = list(command.params)
    for param in params:
        if param.param_type_name == "option":
            yield param


def test_vocabulary_table_parses():
    assert {"--method", "--bits", "--param", "--output", "--json", "--seed", "--k"} <= set(VOCABULARY)
    assert VOCABULARY["--method"] == "-m" and VOCABULARY["--bits"] == "-b" and VOCABULARY["--output"] == "-o"


@pytest.mark.parametrize("path, command", COMMANDS, ids=[" ".join(p) or "hashlearn" for p, _ in COMMANDS])
def test_command_follows_vocabulary(path, command):
    assert (command.help or "").strip(), f"'{' '.join(path)}' has no help text"
    for option in _options(command):
        longs = [o for o in option.opts + option.secondary_opts if o.startswith("--")]
        shorts = [o for o in option.opts + option.secondary_opts if not o.startswith("--")]
        assert longs, f"{' '.join(path)}: option {option.name} has no long name"
        for name in longs:
            if name.startswith("--no-") and name[5:] and f"--{name[5:]}" in longs[:1]:
                continue  # the negative half of a --flag/--no-flag pair
            assert name in VOCABULARY, (
                f"'{' '.join(path)} {name}' is not in the README's option vocabulary: use the table's name for this "
                f"meaning, or add a row")
        expected = {VOCABULARY[n] for n in longs if n in VOCABULARY} - {None}
        assert set(shorts) == expected, (
            f"'{' '.join(path)} {longs[0]}': short flag(s) {shorts or 'none'}, the vocabulary says {sorted(expected) or 'none'}")
        assert (option.help or "").strip(), f"'{' '.join(path)} {longs[0]}' has no help text"
    for argument in (p for p in command.params if p.param_type_name == "argument"):
        assert (getattr(argument, "help", None) or "").strip(), f"'{' '.join(path)}' argument {argument.name} has no help"


def test_short_flags_mean_one_thing():
    seen: dict[str, str] = {}
    for path, command in COMMANDS:
        for option in _options(command):
            longs = [o for o in option.opts if o.startswith("--")]
            for short in (o for o in option.opts + option.secondary_opts if not o.startswith("--")):
                seen.setdefault(short, longs[0])
                assert seen[short] == longs[0], f"{short} means {seen[short]} and {longs[0]} ({' '.join(path)})"


def test_help_pages_read_as_one_tool(capsys):
    from hashlearn.cli import main

    for path, _ in COMMANDS:
        assert main([*path, "--help"]) == 0
        out = capsys.readouterr().out
        assert "<bool>" not in out and "<str>" not in out and "<int>" not in out, f"typer placeholders in {path}"
        assert "``" not in out, f"raw reStructuredText markup in the help of {' '.join(path)}"
    assert main(["-h"]) == 0 and "Usage" in capsys.readouterr().out
    assert main(["--version"]) == 0 and capsys.readouterr().out.startswith("hashlearn ")
