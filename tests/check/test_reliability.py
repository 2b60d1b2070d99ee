"""No input takes a run down: crashes, stalls, broken caches and neighbours cost one file, never the run.

Each case is rebuilt from a reproducer in ../shared/bugs/reliability (its number in the test's docstring).
gradlint runs in a subprocess, as a user or CI runs it, so that a crash would show as one.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from other_user import needs_other_user, run_as_nobody
from rule_fixtures import FLAGGED

TRAIN_WITH_NEIGHBOUR = """import torch
from model import Net

model = Net()
opt = torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=1e-4)
for x, y in loader:
    opt.zero_grad()
    loss = model(x).mean()
    loss.backward()
    opt.step()
"""
NEIGHBOUR = """import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(10, 20)

    def forward(self, x):
        return self.rnn(x)[0]
"""
# Files without a training marker are not parsed at all: these inputs sit in training code.
TRAINING = "import torch\nloss.backward()\n"
# libcst's native parser overflows its stack on these (segmentation fault); Python reads the first.
AND_CHAIN = TRAINING + "v = " + " and ".join(["a"] * 10_000) + "\n"
DEEP_BRACKETS = TRAINING + "v = " + "(" * 3_000 + "1" + ")" * 3_000 + "\n"
DEEP_ATTRIBUTES = TRAINING + "v = a" + ".b" * 50_000 + "\n"


def gradlint(*args: str, cwd: Path, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gradlint", "check", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def codes(stdout: str) -> list[str]:
    return sorted(f["code"] for f in json.loads(stdout))


def findings(stdout: str) -> list[dict]:
    return sorted(json.loads(stdout), key=lambda f: (f["path"], f["line"]))


def no_traceback(run: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in run.stderr, run.stderr
    assert "Traceback" not in run.stdout


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_parser_crashes_and_a_fifo_cost_one_file_each(tmp_path, jobs):
    """Reproducers 9 and 22: three parser-killing files, a FIFO and a flagged file."""
    (tmp_path / "and_chain.py").write_text(AND_CHAIN)
    (tmp_path / "brackets.py").write_text(DEEP_BRACKETS)
    (tmp_path / "attributes.py").write_text(DEEP_ATTRIBUTES)
    (tmp_path / "train.py").write_text(FLAGGED)
    os.mkfifo(tmp_path / "pipe.py")
    start = time.monotonic()
    run = gradlint("--no-cache", "--jobs", jobs, "--format", "json", ".", cwd=tmp_path)
    elapsed = time.monotonic() - start
    no_traceback(run)
    assert run.returncode == 2, run.stderr
    assert elapsed < 60
    by_path = {}
    for f in findings(run.stdout):
        by_path.setdefault(f["path"], []).append(f["code"])
    assert by_path == {
        "and_chain.py": ["GL001"],
        "attributes.py": ["GL001"],
        "brackets.py": ["GL001"],
        "train.py": ["GL101"],
    }


def test_many_files_with_a_crash_under_two_jobs_keep_every_finding(tmp_path):
    """Reproducer 22: with --jobs 2 and 20 good files, a dead worker was a BrokenProcessPool traceback."""
    for i in range(20):
        (tmp_path / f"f{i:02}.py").write_text(FLAGGED)
    (tmp_path / "and_chain.py").write_text(AND_CHAIN)
    run = gradlint("--no-cache", "--jobs", "2", "--format", "json", ".", cwd=tmp_path)
    no_traceback(run)
    assert run.returncode == 2
    assert codes(run.stdout) == ["GL001"] + ["GL101"] * 20


def test_crash_message_names_the_parser(tmp_path):
    (tmp_path / "and_chain.py").write_text(AND_CHAIN)
    run = gradlint("--no-cache", "and_chain.py", cwd=tmp_path)
    assert run.returncode == 2
    assert "and_chain.py:1:1: GL001" in run.stdout
    assert "parser crashed" in run.stdout


def test_a_neighbour_that_crashes_the_parser_costs_only_itself(tmp_path):
    """Reproducer 22: an imported model.py the user did not name killed the run on train.py."""
    (tmp_path / "model.py").write_text(DEEP_BRACKETS)
    (tmp_path / "train.py").write_text(TRAIN_WITH_NEIGHBOUR)
    (tmp_path / "other.py").write_text(FLAGGED)
    for jobs in ("1", "2"):
        run = gradlint("--no-cache", "--jobs", jobs, "--format", "json", "train.py", "other.py", cwd=tmp_path)
        no_traceback(run)
        assert run.returncode == 2
        result = findings(run.stdout)
        assert [(f["path"], f["code"]) for f in result] == [("model.py", "GL001"), ("other.py", "GL101")]
        assert "train.py" in result[0]["message"]


def test_a_file_past_the_parse_timeout_costs_one_file(tmp_path):
    """Reproducer 1's class (a stall): a file that runs past parse-timeout is GL001, the others are linted."""
    (tmp_path / "gradlint.toml").write_text("parse-timeout = 0.5\n")
    (tmp_path / "slow.py").write_text(TRAINING + "v = " + " + ".join(["a"] * 20_000) + "\n")
    (tmp_path / "train.py").write_text(FLAGGED)
    start = time.monotonic()
    run = gradlint("--no-cache", "--format", "json", ".", cwd=tmp_path)
    no_traceback(run)
    assert time.monotonic() - start < 30
    assert run.returncode == 2
    result = findings(run.stdout)
    assert [(f["path"], f["code"]) for f in result] == [("slow.py", "GL001"), ("train.py", "GL101")]
    assert "longer than 0.5 s" in result[0]["message"]


def test_internal_errors_under_fix_and_diff_are_one_line_and_exit_2(tmp_path, monkeypatch):
    """Reproducer 2: an internal error under --diff/--fix was a traceback with exit 1."""
    (tmp_path / "boom.py").write_text(FLAGGED)
    (tmp_path / "good.py").write_text(FLAGGED)
    # A rule that fails on one file stands for any bug of ours.
    plugin = tmp_path / "sitecustomize.py"
    plugin.write_text(
        "import gradlint.facts.loops as loops\n"
        "original = loops.LoopFacts.__init__\n"
        "def broken(self, facts):\n"
        "    if facts.path.endswith('boom.py'):\n"
        "        raise RuntimeError('boom')\n"
        "    original(self, facts)\n"
        "loops.LoopFacts.__init__ = broken\n"
    )
    env = {"PYTHONPATH": str(tmp_path)}
    for mode in ("--diff", "--fix", None):
        args = ["--no-cache", "boom.py", "good.py"] + ([mode] if mode else [])
        run = gradlint(*args, cwd=tmp_path, env=env)
        no_traceback(run)
        assert run.returncode == 2, (mode, run.stderr)
        assert "boom.py: internal error" in run.stderr
        assert len([line for line in run.stderr.splitlines() if "internal error" in line]) == 1
    # --diff showed good.py's fix, --fix wrote it, and the lint after it found nothing left there.
    assert "clip_grad_norm_" in (tmp_path / "good.py").read_text()
    assert "clip_grad_norm_" not in (tmp_path / "boom.py").read_text()


def test_a_fifo_named_on_the_command_line_is_reported(tmp_path):
    os.mkfifo(tmp_path / "pipe.py")
    run = gradlint("--no-cache", "pipe.py", cwd=tmp_path, timeout=30)
    assert run.returncode == 2
    assert "pipe.py:1:1: GL001" in run.stdout
    assert "not a regular file (a FIFO)" in run.stdout


def test_a_link_to_dev_zero_in_a_folder_is_skipped(tmp_path):
    (tmp_path / "zero.py").symlink_to("/dev/zero")
    (tmp_path / "train.py").write_text(FLAGGED)
    run = gradlint("--no-cache", "--format", "json", ".", cwd=tmp_path, timeout=30)
    assert run.returncode == 1
    assert codes(run.stdout) == ["GL101"]


@pytest.mark.parametrize(
    "content",
    ["null", "[]", '{"x": 5}', '{"files": [], "stats": {}}', "5", "a bad entry", "a bad stat"],
)
def test_a_cache_of_the_wrong_shape_is_ignored(tmp_path, content):
    """Reproducer 10."""
    train = tmp_path / "train.py"
    train.write_text(FLAGGED)
    # Old enough that its time and size are recorded with its hash.
    os.utime(train, (time.time() - 3600,) * 2)
    first = gradlint("-q", "train.py", cwd=tmp_path)
    assert first.returncode == 1
    [cache] = (tmp_path / ".gradlint_cache").glob("findings-*.json")
    data = json.loads(cache.read_text())
    [key] = data["files"]
    assert list(data["stats"]) == [key]
    if content == "a bad entry":
        # An entry for the real file with a finding of an unknown severity and no deps.
        data["files"][key]["findings"][0]["severity"] = "fatal"
        del data["files"][key]["deps"]
        cache.write_text(json.dumps(data))
    elif content == "a bad stat":
        # The file's time and size, with no hash or one that is not text.
        data["stats"][key] = data["stats"][key][:2] + [5]
        cache.write_text(json.dumps(data))
        data["stats"][key] = data["stats"][key][:2]
        cache.write_text(json.dumps(data))
    else:
        cache.write_text(content)
    for _ in range(2):
        run = gradlint("-q", "train.py", cwd=tmp_path)
        no_traceback(run)
        assert run.returncode == 1
        assert "GL101" in run.stdout


def test_the_cache_reads_a_file_again_when_its_time_or_size_changed(tmp_path):
    train = tmp_path / "train.py"
    train.write_text(FLAGGED)
    old = time.time() - 3600
    os.utime(train, (old, old))
    assert gradlint("-q", "train.py", cwd=tmp_path).returncode == 1
    # The same size, a later time: no LSTM any more.
    same_size = FLAGGED.replace("nn.LSTM(", "nn.Lin4(")
    assert len(same_size) == len(FLAGGED)
    train.write_text(same_size)
    os.utime(train, (old + 1, old + 1))
    assert gradlint("-q", "train.py", cwd=tmp_path).returncode == 0
    # Another size, the time the cache recorded.
    train.write_text(FLAGGED + "# one line more\n")
    os.utime(train, (old + 1, old + 1))
    assert gradlint("-q", "train.py", cwd=tmp_path).returncode == 1


def test_the_cache_trusts_an_old_file_whose_time_and_size_are_unchanged(tmp_path, monkeypatch):
    from gradlint import engine
    from gradlint.config import Settings

    old, fresh = tmp_path / "old.py", tmp_path / "fresh.py"
    old.write_text(FLAGGED)
    fresh.write_text(FLAGGED)
    os.utime(old, (time.time() - 3600,) * 2)
    settings = Settings(root=tmp_path)
    cache = engine.Cache(tmp_path, settings)
    digests = {path: cache.digest(str(path)) for path in (old, fresh)}
    cache.save()

    def read_again(data):
        raise AssertionError("read again")

    monkeypatch.setattr(engine, "_digest", read_again)
    assert engine.Cache(tmp_path, settings).digest(str(old)) == digests[old]
    # Written a moment ago, it may be rewritten within the same tick of the clock: it is read every run.
    with pytest.raises(AssertionError, match="read again"):
        engine.Cache(tmp_path, settings).digest(str(fresh))


def test_fixing_a_broken_or_missing_neighbour_invalidates_the_cache(tmp_path):
    """Reproducer 11."""
    (tmp_path / "train.py").write_text(TRAIN_WITH_NEIGHBOUR)
    (tmp_path / "model.py").write_text(NEIGHBOUR.replace("nn.LSTM(10, 20)", "nn.LSTM(10, 20"))
    assert gradlint("-q", "train.py", cwd=tmp_path).returncode == 0
    (tmp_path / "model.py").write_text(NEIGHBOUR)
    run = gradlint("-q", "train.py", cwd=tmp_path)
    assert run.returncode == 1 and "train.py:10:5: GL101" in run.stdout
    # A neighbour that did not exist at the first run, then appears.
    (tmp_path / "model.py").unlink()
    assert gradlint("-q", "train.py", cwd=tmp_path).returncode == 0
    (tmp_path / "model.py").write_text(NEIGHBOUR)
    assert gradlint("-q", "train.py", cwd=tmp_path).returncode == 1


def test_a_neighbour_with_a_coding_cookie_is_read_in_its_encoding(tmp_path):
    """Reproducer 12."""
    (tmp_path / "train.py").write_text(TRAIN_WITH_NEIGHBOUR)
    latin = "# -*- coding: latin-1 -*-\n# Modèle\n" + NEIGHBOUR
    (tmp_path / "model.py").write_bytes(latin.encode("latin-1"))
    run = gradlint("--no-cache", "-q", "train.py", cwd=tmp_path)
    assert run.returncode == 1
    assert "GL101" in run.stdout


def test_jobs_are_capped_by_the_work(tmp_path):
    """Reproducer 19: --jobs 100000 forked thousands of processes."""
    for i in range(40):
        (tmp_path / f"f{i:02}.py").write_text(FLAGGED)
    start = time.monotonic()
    run = gradlint("--no-cache", "-q", "--jobs", "100000", ".", cwd=tmp_path, timeout=60)
    assert time.monotonic() - start < 30
    assert run.returncode == 1
    assert run.stdout.count("GL101") == 40


def test_an_unchecked_file_is_not_all_checks_passed(tmp_path):
    """Reproducers 20 and 21: a valid file libcst cannot parse is said not checked, without exit 2."""
    strings = TRAINING + "v = (\n" + "".join(f"    'a{i}'\n" for i in range(100_000)) + ")\n"
    (tmp_path / "strcat.py").write_text(strings)
    run = gradlint("--no-cache", "strcat.py", cwd=tmp_path)
    no_traceback(run)
    if run.returncode == 0 and "not checked" not in run.stderr:
        pytest.skip("this libcst reads the file")
    assert run.returncode == 0
    assert "All checks passed" not in run.stdout
    assert "gradlint: warning: strcat.py: not checked: libcst's parser cannot read this file" in run.stderr


def test_a_form_feed_in_an_indentation_is_linted(tmp_path):
    """Reproducer 21: Python ignores a form feed in the indentation, libcst rejects it."""
    body = "".join("    " + line + "\n" for line in FLAGGED.splitlines()[3:])
    text = "import torch\nfrom torch import nn\n\n\ndef train(loader):\n" + body
    text = text.replace("        opt.zero_grad()", "\x0c        opt.zero_grad()")
    compile(text, "ff.py", "exec")
    (tmp_path / "ff.py").write_text(text)
    run = gradlint("--no-cache", "--format", "json", "ff.py", cwd=tmp_path)
    assert run.returncode == 1, run.stdout
    [finding] = findings(run.stdout)
    assert finding["code"] == "GL101" and finding["fix"] is None


REFUSED = {
    # Reproducer 29: parses, does not compile.
    "return outside a function": ("return 3\n", "'return' outside function"),
    # libcst's parser reads these; only its node checks (which gradlint skips on parsed trees) refused them,
    # as an internal error.
    "string and bytes": ("x = 'a' b'b'\n", "cannot mix bytes and nonbytes literals"),
    "bare except before another": ("try:\n    pass\nexcept:\n    pass\nexcept ValueError:\n    pass\n", "must be last"),
}


@pytest.mark.parametrize("tail, message", REFUSED.values(), ids=REFUSED.keys())
def test_a_file_python_refuses_to_compile_is_gl001(tmp_path, tail, message):
    (tmp_path / "a.py").write_text(FLAGGED + tail)
    run = gradlint("--no-cache", "--format", "json", "a.py", cwd=tmp_path)
    assert run.returncode == 2, run.stderr
    [finding] = findings(run.stdout)
    assert finding["code"] == "GL001"
    assert message in finding["message"] and finding["line"] >= 12
    fix = gradlint("--no-cache", "--fix", "a.py", cwd=tmp_path)
    assert fix.returncode == 2
    assert "clip_grad" not in (tmp_path / "a.py").read_text()


def test_named_files_honour_exclude_with_force_exclude(tmp_path):
    """Reproducer 24: pre-commit names the files; exclude applied only to folder walks."""
    (tmp_path / "pyproject.toml").write_text('[tool.gradlint]\nexclude = ["legacy/"]\n')
    (tmp_path / "legacy").mkdir()
    (tmp_path / "legacy" / "old.py").write_text(FLAGGED)
    run = gradlint("--no-cache", "--fix", "--force-exclude", "legacy/old.py", cwd=tmp_path)
    assert run.returncode == 0
    assert "clip_grad" not in (tmp_path / "legacy" / "old.py").read_text()
    assert gradlint("--no-cache", "legacy/old.py", cwd=tmp_path).returncode == 1
    hooks = (Path(__file__).resolve().parents[2] / ".pre-commit-hooks.yaml").read_text()
    assert hooks.count("--force-exclude") == 2


@pytest.mark.parametrize(
    "args,message",
    [
        (["--select", ""], "--select: no code given"),
        (["--select", ",,"], "--select: no code given"),
        (["--ignore", "GL001"], "GL001 cannot be ignored"),
    ],
)
def test_bad_code_options_are_one_line_errors(tmp_path, args, message):
    """Reproducer 25 (command line side)."""
    (tmp_path / "train.py").write_text(FLAGGED)
    run = gradlint(*args, "train.py", cwd=tmp_path)
    assert run.returncode == 2
    assert message in run.stderr and len(run.stderr.strip().splitlines()) == 1


def test_fixed_count_is_told_even_when_another_file_fails(tmp_path):
    """Reproducer 28: a GL001 elsewhere hid that a.py had been rewritten."""
    (tmp_path / "a.py").write_text(FLAGGED)
    (tmp_path / "b.py").write_text(TRAINING + "x = (\n")
    run = gradlint("--no-cache", "--fix", ".", cwd=tmp_path)
    assert run.returncode == 2
    assert "Fixed 1 file." in run.stderr
    assert "clip_grad_norm_" in (tmp_path / "a.py").read_text()


@needs_other_user
def test_an_unwritable_file_does_not_stop_the_other_fixes():
    """Reproducer 16: the first unwritable file ended the run; later files were neither fixed nor reported."""
    # Under /tmp, not pytest's root-only folder, so that the other user can reach it by its full path.
    tmp_path = Path(tempfile.mkdtemp(prefix="gradlint-"))
    try:
        _check_unwritable(tmp_path)
    finally:
        shutil.rmtree(tmp_path)


def _check_unwritable(tmp_path: Path) -> None:
    (tmp_path / "a_first.py").write_text(FLAGGED)
    locked = tmp_path / "m_locked"
    locked.mkdir()
    (locked / "train.py").write_text(FLAGGED)
    (tmp_path / "z").mkdir()
    (tmp_path / "z" / "broken.py").write_text(TRAINING + "x = (\n")
    (tmp_path / "z" / "train.py").write_text(FLAGGED)
    for path in [tmp_path, tmp_path / "z", tmp_path / "a_first.py", tmp_path / "z" / "train.py", tmp_path / "z" / "broken.py"]:
        os.chown(path, 65534, 65534)
    os.chmod(tmp_path, 0o777)
    run = run_as_nobody(["check", "--no-cache", "--fix", "."], tmp_path)
    no_traceback(run)
    assert run.returncode == 2
    assert "cannot write m_locked/train.py" in run.stderr
    assert "Fixed 2 files." in run.stderr
    assert "clip_grad_norm_" in (tmp_path / "a_first.py").read_text()
    assert "clip_grad_norm_" in (tmp_path / "z" / "train.py").read_text()
    assert "z/broken.py:3:" in run.stdout
    assert "m_locked/train.py" in run.stdout  # its GL101 is still reported


def test_a_file_fix_would_re_encode_claims_no_fix(tmp_path):
    """Reproducer 23's other half: --fix leaves a unicode_escape file alone, so its finding is not [*]."""
    (tmp_path / "esc.py").write_bytes(("# -*- coding: unicode_escape -*-\n" + FLAGGED).encode("ascii"))
    run = gradlint("--no-cache", "--format", "json", "esc.py", cwd=tmp_path)
    assert run.returncode == 1
    [finding] = findings(run.stdout)
    assert finding["code"] == "GL101" and finding["fix"] is None


def test_a_chain_deeper_than_pythons_default_recursion_limit_is_linted(tmp_path):
    """Valid files with a chain of a thousand `and`s, `+`s or attributes were internal errors (RecursionError)."""
    for name, expression in [("ands", " and ".join(["a"] * 1_000)), ("plus", " + ".join(["a"] * 1_000)), ("attrs", "a" + ".b" * 1_000)]:
        (tmp_path / f"{name}.py").write_text(FLAGGED + f"v = {expression}\n")
    run = gradlint("--no-cache", "--format", "json", ".", cwd=tmp_path, timeout=300)
    no_traceback(run)
    assert "internal error" not in run.stderr
    assert codes(run.stdout) == ["GL101"] * 3


def test_a_files_findings_do_not_depend_on_the_files_before_it():
    """A helper linted after the entry point that calls it (one worker batch) was judged with that caller's
    arguments, so its findings changed with --jobs and with which files were named."""
    from gradlint.engine import lint_paths

    project = Path(__file__).resolve().parents[2] / "fixtures" / "static" / "projects" / "loop_in_trainer" / "flagged"
    together = [f for f in lint_paths([project], jobs=1).findings if f.path.endswith("trainer.py")]
    alone = lint_paths([project / "trainer.py"], jobs=1).findings
    assert [(f.code, f.line) for f in together] == [(f.code, f.line) for f in alone]
