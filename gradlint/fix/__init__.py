"""Autofixes: safe edits that rules attach to their findings, applied by `check --fix` or shown by `--diff`."""
