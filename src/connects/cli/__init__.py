"""The ``connects`` command line (Typer + Rich): one module per kind of command, each
registering itself on the one ``app`` of ``connects.cli.common``."""

from __future__ import annotations

from connects.cli import demo, ledger, serve  # noqa: F401  (each registers its commands)
from connects.cli.common import EXIT_NO_DATABASE, EXIT_NO_PORT, app
from connects.services.views import CSV_FIELDS, entries_csv

__all__ = ["CSV_FIELDS", "EXIT_NO_DATABASE", "EXIT_NO_PORT", "app", "entries_csv", "main"]


def main() -> None:  # pragma: no cover
    app()
