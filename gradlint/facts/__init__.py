"""The facts layer: the semantic model of one file's training code, built once and read by every rule.

The flow: the parsed module is indexed once (index.py); names (names.py) and values (values.py) are
resolved over the index; models, loops, optimizers, frameworks, data, inits, architecture and
regularization are facts built on those, each in its module, all hanging off one FileFacts (file.py).
"""
from gradlint.facts.file import FileFacts

__all__ = ["FileFacts"]
