"""The `gradlint` command: for `check`, a worker starts importing the rules before the command line is read."""
from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:2] == ["check"] and not {"-h", "--help"}.intersection(sys.argv[2:]):
        from gradlint.workers import prestart

        prestart("gradlint.jobs")
    from gradlint.cli import main as cli

    cli()
