"""Suppression comments: lines numbered as Python numbers them, disable-file codes kept to their comment."""
from __future__ import annotations

import pytest

from gradlint import lint_source
from gradlint.suppression import file_disabled, source_lines, suppressed
from rule_fixtures import FLAGGED

# The flagged LSTM loop without its imports, with a place for a comment on the step's line.
LOOP = FLAGGED.split("\n\n", 1)[1].replace("opt.step()", "opt.step(){noqa}")
# A form-feed page break on line 4: the step is line 12 for Python, line 13 for str.splitlines.
PAGED = "import torch\nfrom torch import nn\n\n\f\n" + LOOP


def gl101(text: str):
    return [f for f in lint_source(text, "train.py") if f.code == "GL101"]


@pytest.mark.parametrize("separator", ["\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029", "\v"])
def test_source_lines_end_lines_only_at_newlines(separator):
    assert source_lines(f"a = 1\r\nb = '{separator}'\rc = 2\nd") == ["a = 1", f"b = '{separator}'", "c = 2", "d"]


def test_noqa_on_the_reported_line_after_a_form_feed_suppresses_and_the_line_above_does_not():
    (finding,) = gl101(PAGED.format(noqa=""))
    assert finding.line == 12
    on_line = source_lines(PAGED.format(noqa="  # noqa: GL101"))
    above = source_lines(PAGED.format(noqa="").replace("    loss.backward()", "    loss.backward()  # noqa: GL101"))
    assert suppressed(finding, on_line, set())
    assert not suppressed(finding, above, set())


def test_lint_honours_noqa_on_the_reported_line_after_a_form_feed():
    assert gl101(PAGED.format(noqa="  # noqa: GL101")) == []
    assert len(gl101(PAGED.format(noqa="").replace("    loss.backward()", "    loss.backward()  # noqa"))) == 1


def test_disable_file_codes_stop_at_the_end_of_the_comment():
    assert file_disabled("# gradlint: disable-file=GL301\ng = 9.81\n") == {"GL301"}
    assert file_disabled("# gradlint: disable-file=\nGL101\n") == set()
    assert file_disabled("# gradlint: disable-file = GL301, gl302\r\nG = 1\n") == {"GL301", "GL302"}
    text = "# gradlint: disable-file=GL301\ng = 9.81\nimport torch\nfrom torch import nn\n\n" + LOOP.format(noqa="")
    assert len(gl101(text)) == 1
