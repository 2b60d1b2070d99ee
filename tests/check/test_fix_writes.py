"""--fix writes as a careful tool does: links, owner, group and mode kept, read-only files and lossy encodings
left alone, the user's own warnings kept quiet."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gradlint.cli import app
from gradlint.config import Settings
from gradlint.fix.apply import compiles, fix_file, fix_text

from other_user import NOBODY, needs_other_user, run_as_nobody

REPO = Path(__file__).resolve().parents[2]
SOURCE = (REPO / "fixtures/fix/GL402_no_zero_grad.py").read_text()
FIXED = (REPO / "fixtures/fix/GL402_no_zero_grad.fixed").read_text()
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user or give files away")


def cli(*args):
    return CliRunner().invoke(app, ["check", "--no-cache", *args], catch_exceptions=False)


def fix_as_nobody(folder: Path, *names: str) -> subprocess.CompletedProcess:
    return run_as_nobody(["check", "--no-cache", "--fix", *names], folder)


@pytest.fixture
def shared_dir(tmp_path):
    """A folder every user may write, inside one closed to them (as `mktemp -d` makes): paths must stay relative."""
    tmp_path.chmod(0o700)
    folder = tmp_path / "shared"
    folder.mkdir(mode=0o777)
    folder.chmod(0o777)
    return folder


def test_symlink_is_kept_and_its_target_fixed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "real").mkdir()
    (tmp_path / "real/train.py").write_text(SOURCE)
    (tmp_path / "link.py").symlink_to("real/train.py")
    assert cli("--fix", "link.py").exit_code == 0
    assert (tmp_path / "link.py").is_symlink()
    assert os.readlink(tmp_path / "link.py") == "real/train.py"
    assert (tmp_path / "real/train.py").read_text() == FIXED
    assert sorted(p.name for p in (tmp_path / "real").iterdir()) == ["train.py"]


def test_hard_links_keep_sharing_the_fixed_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.py").write_text(SOURCE)
    os.link(tmp_path / "a.py", tmp_path / "b.py")
    inode = (tmp_path / "a.py").stat().st_ino
    assert cli("--fix", "a.py").exit_code == 0
    assert (tmp_path / "a.py").stat().st_ino == inode == (tmp_path / "b.py").stat().st_ino
    assert (tmp_path / "b.py").read_text() == FIXED
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.py", "b.py"]


@needs_root
def test_owner_group_and_mode_are_kept_when_root_fixes_another_users_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "owned.py"
    target.write_text(SOURCE)
    os.chown(target, 1234, 5678)
    target.chmod(0o640)
    assert cli("--fix", "owned.py").exit_code == 0
    st = target.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1234, 5678, 0o640)
    assert target.read_text() == FIXED


@needs_other_user
def test_a_file_whose_owner_cannot_be_kept_is_rewritten_in_place(shared_dir):
    # nobody may write the file (group) but cannot give a new file to root: the rename would change the owner.
    target = shared_dir / "train.py"
    target.write_text(SOURCE)
    os.chown(target, 0, NOBODY)
    target.chmod(0o664)
    inode = target.stat().st_ino
    result = fix_as_nobody(shared_dir, "train.py")
    assert result.returncode == 0, result.stderr
    st = target.stat()
    assert (st.st_ino, st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (inode, 0, NOBODY, 0o664)
    assert target.read_text() == FIXED
    assert sorted(p.name for p in shared_dir.iterdir()) == ["train.py"]


def test_read_only_file_is_left_alone_with_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "ro.py"
    target.write_text(SOURCE)
    target.chmod(0o444)
    result = fix_file(target, Settings())
    assert result is not None and result.changed
    with pytest.raises(OSError) as caught:
        result.write()  # as root too: a rename would ignore the missing write bit
    assert caught.value.strerror == "read-only file, not fixed"
    assert target.read_text() == SOURCE
    assert stat.S_IMODE(target.stat().st_mode) == 0o444
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ro.py"]


@needs_other_user
def test_read_only_file_is_left_alone_for_an_unprivileged_user_in_a_writable_folder(shared_dir):
    target = shared_dir / "ro.py"
    target.write_text(SOURCE)
    os.chown(target, NOBODY, NOBODY)
    target.chmod(0o444)
    result = fix_as_nobody(shared_dir, "ro.py")
    assert "cannot write ro.py: read-only file, not fixed" in result.stderr
    assert "Traceback" not in result.stderr
    assert target.read_text() == SOURCE
    assert sorted(p.name for p in shared_dir.iterdir()) == ["ro.py"]


def test_encoding_that_does_not_round_trip_is_not_fixed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = ("# -*- coding: unicode_escape -*-\n" + SOURCE).encode("ascii")
    target = tmp_path / "ue.py"
    target.write_bytes(data)
    assert fix_file(target, Settings()) is None
    cli("--fix", "ue.py")
    assert target.read_bytes() == data
    compile(target.read_bytes(), "ue.py", "exec")  # still Python, with its newlines


def test_compiles_is_quiet_about_the_users_warnings_even_when_they_are_errors(capsys):
    text = "x = 1\nassert (x, 'always true')\n"  # a SyntaxWarning
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("error")
        assert compiles(text, "a.py")
    assert seen == []
    assert capsys.readouterr().err == ""
    assert not compiles("def f(:\n", "a.py")
    assert not compiles("f(x=1, x=2)\n", "a.py")  # parses, but Python rejects it


def test_fix_is_applied_under_pythonwarnings_error(tmp_path):
    source = SOURCE + "\nassert (1, 'always true')\n"
    (tmp_path / "a.py").write_text(source)
    result = subprocess.run(
        [sys.executable, "-m", "gradlint", "check", "--no-cache", "-q", "--fix", "a.py"],
        cwd=tmp_path, env={**os.environ, "PYTHONWARNINGS": "error"}, capture_output=True, text=True, timeout=120,
    )
    assert "SyntaxWarning" not in result.stderr
    assert (tmp_path / "a.py").read_text() == fix_text(source, "a.py", Settings())[0] != source
