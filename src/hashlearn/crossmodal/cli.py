"""CLI commands of ``hashlearn.crossmodal``, added to the main app by :func:`register`."""

from __future__ import annotations


def register(app, bench_app) -> None:
    """Add this package's commands to the hashlearn typer app (and its bench group)."""
