"""The real pre-commit runs this repository's hook: a flagged file fails it, a clean one passes."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FLAGGED = """\
import torch
model = torch.nn.LSTM(4, 4)
opt = torch.optim.AdamW(model.parameters())
for x in data:
    opt.zero_grad()
    model(x)[0].sum().backward()
    opt.step()
"""
CLEAN = "import torch\nprint(torch.ones(1))\n"

pytestmark = pytest.mark.slow


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def source_repo(tmp_path_factory) -> Path:
    """A committed snapshot of this working tree: try-repo installs from a git repository's HEAD."""
    if shutil.which("pre-commit") is None:
        pytest.skip("pre-commit is not installed")
    snapshot = tmp_path_factory.mktemp("gradlint-src")
    for name in ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml"):
        shutil.copy(REPO / name, snapshot / name)
    for folder in ("gradlint", "rules"):
        shutil.copytree(REPO / folder, snapshot / folder, ignore=shutil.ignore_patterns("__pycache__"))
    git(snapshot, "init", "-q")
    git(snapshot, "add", ".")
    git(snapshot, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "snapshot")
    return snapshot


def try_repo(source: Path, work: Path, content: str) -> subprocess.CompletedProcess:
    git(work, "init", "-q")
    (work / "train.py").write_text(content)
    git(work, "add", "train.py")
    return subprocess.run(
        ["pre-commit", "try-repo", str(source), "gradlint", "--files", "train.py"],
        cwd=work, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PRE_COMMIT_HOME": str(work.parent / "pc-home")},
    )


def test_flagged_file_fails_the_hook_and_clean_file_passes(source_repo, tmp_path):
    bad, good = tmp_path / "bad", tmp_path / "good"
    bad.mkdir()
    good.mkdir()
    failed = try_repo(source_repo, bad, FLAGGED)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "GL101" in failed.stdout
    passed = try_repo(source_repo, good, CLEAN)
    assert passed.returncode == 0, passed.stdout + passed.stderr


def test_hook_installs_without_torch(source_repo, tmp_path):
    """Installed as users do, from a config: the hook's own environment holds no torch."""
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=source_repo, capture_output=True, text=True).stdout.strip()
    work = tmp_path / "project"
    work.mkdir()
    git(work, "init", "-q")
    (work / ".pre-commit-config.yaml").write_text(
        f"repos:\n- repo: {source_repo}\n  rev: {sha}\n  hooks:\n  - id: gradlint\n"
    )
    (work / "train.py").write_text(CLEAN)
    git(work, "add", ".")
    home = tmp_path / "home"
    result = subprocess.run(
        ["pre-commit", "run", "--all-files"], cwd=work, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PRE_COMMIT_HOME": str(home)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    envs = list(home.glob("repo*/py_env-*"))
    assert envs, "pre-commit made no environment"
    for env in envs:
        assert list(env.glob("lib/python*/site-packages/libcst")), "the hook environment lacks libcst"
        assert not list(env.glob("lib/python*/site-packages/torch")), "torch was installed into the hook env"
