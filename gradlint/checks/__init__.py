"""The rules, grouped by family. Importing this package registers every rule."""
from gradlint.checks import clipping  # noqa: F401
from gradlint.checks import loop  # noqa: F401
from gradlint.checks import architecture  # noqa: F401
from gradlint.checks import regularization  # noqa: F401
from gradlint.checks import data  # noqa: F401
