"""The `gradlint` command: for `check`, a worker starts importing the rules before the command line is read."""
from __future__ import annotations

import sys


def main() -> None:
    check = sys.argv[1:2] == ["check"] and not {"-h", "--help"}.intersection(sys.argv[2:])
    if check:
        from gradlint.prefork import fork

        fork("gradlint.jobs")
    from gradlint.cli import main as cli

    cli()
