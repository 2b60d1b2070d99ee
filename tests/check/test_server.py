"""`gradlint server` with a real LSP client (pytest-lsp) talking to the real server process over stdio."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pygls")
pytest_lsp = pytest.importorskip("pytest_lsp")

from lsprotocol import types  # noqa: E402
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities  # noqa: E402
from rule_fixtures import FLAGGED  # noqa: E402

pytestmark = pytest.mark.asyncio(loop_scope="function")


@pytest_lsp.fixture(
    loop_scope="function",
    config=ClientServerConfig(server_command=[sys.executable, "-m", "gradlint", "server"]),
)
async def client(lsp_client: LanguageClient, tmp_path):
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"),
            root_uri=tmp_path.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=tmp_path.as_uri(), name="tmp")],
        )
    )
    yield
    await lsp_client.shutdown_session()


def open_document(client: LanguageClient, path: Path, text: str, version: int = 1) -> str:
    uri = path.as_uri()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="python", version=version, text=text)
        )
    )
    return uri


async def diagnostics_for(client: LanguageClient, uri: str) -> list[types.Diagnostic]:
    """The next diagnostics published for `uri` (a test fails rather than hangs when none come)."""
    while True:
        params = await asyncio.wait_for(client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS), 60)
        if params.uri == uri:
            return list(params.diagnostics)


def check_json(path: Path) -> list[dict]:
    run = subprocess.run(
        [sys.executable, "-m", "gradlint", "check", "--no-cache", "--format", "json", path.name],
        cwd=path.parent, capture_output=True, text=True, check=False,
    )
    return json.loads(run.stdout)


async def test_diagnostics_match_check_and_the_quick_fix_is_what_fix_writes(client: LanguageClient, tmp_path):
    path = tmp_path / "train.py"
    path.write_text(FLAGGED)
    uri = open_document(client, path, FLAGGED)
    diagnostics = await diagnostics_for(client, uri)
    expected = check_json(path)
    assert [(d.code, d.range.start.line + 1, d.range.start.character + 1) for d in diagnostics] == [
        (f["code"], f["line"], f["column"]) for f in expected
    ]
    [diag] = diagnostics
    assert diag.severity == types.DiagnosticSeverity.Warning and diag.source == "gradlint"
    assert diag.code_description is not None and diag.code_description.href.endswith("GL101.md")

    actions = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=diag.range,
            context=types.CodeActionContext(diagnostics=[diag], only=[types.CodeActionKind.QuickFix]),
        )
    )
    [action] = actions
    [edit] = action.edit.changes[uri]
    line = edit.range.start.line
    lines = FLAGGED.splitlines(keepends=True)
    fixed = "".join(lines[:line]) + edit.new_text + "".join(lines[line:])
    subprocess.run([sys.executable, "-m", "gradlint", "check", "--no-cache", "--fix", "-q", path.name], cwd=tmp_path)
    assert fixed == path.read_text()

    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=fixed)],
        )
    )
    assert await diagnostics_for(client, uri) == []


async def test_fix_all_gives_the_text_fix_writes(client: LanguageClient, tmp_path):
    path = tmp_path / "train.py"
    path.write_text(FLAGGED)
    uri = open_document(client, path, FLAGGED)
    await diagnostics_for(client, uri)
    actions = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=types.Range(start=types.Position(line=0, character=0), end=types.Position(line=0, character=0)),
            context=types.CodeActionContext(diagnostics=[], only=[types.CodeActionKind.SourceFixAll]),
        )
    )
    [action] = actions
    [edit] = action.edit.changes[uri]
    subprocess.run([sys.executable, "-m", "gradlint", "check", "--no-cache", "--fix", "-q", path.name], cwd=tmp_path)
    assert edit.new_text == path.read_text()


async def test_a_syntax_error_is_one_diagnostic_and_the_server_goes_on(client: LanguageClient, tmp_path):
    broken = tmp_path / "broken.py"
    uri = open_document(client, broken, "import torch\nloss.backward()\nx = (\n")
    [diag] = await diagnostics_for(client, uri)
    assert diag.code == "GL001" and diag.severity == types.DiagnosticSeverity.Error
    # A file that crashes libcst's parser costs one diagnostic too.
    crash = tmp_path / "crash.py"
    uri = open_document(client, crash, "import torch\nloss.backward()\nv = " + " and ".join(["a"] * 10_000) + "\n")
    [diag] = await diagnostics_for(client, uri)
    assert diag.code == "GL001" and "parser crashed" in diag.message
    good = tmp_path / "train.py"
    uri = open_document(client, good, FLAGGED)
    assert [d.code for d in await diagnostics_for(client, uri)] == ["GL101"]


async def test_an_unsaved_buffer_is_linted_from_its_text(client: LanguageClient, tmp_path):
    path = tmp_path / "new.py"  # never written to disk
    uri = open_document(client, path, FLAGGED.replace("lr=0.1", "lr=5.0"))
    codes = sorted(d.code for d in await diagnostics_for(client, uri))
    assert codes == ["GL101"] or codes == ["GL101", "GL405"]
    assert "GL405" in codes


async def test_diagnostics_follow_the_config(client: LanguageClient, tmp_path):
    path = tmp_path / "train.py"
    path.write_text(FLAGGED)
    uri = open_document(client, path, FLAGGED)
    assert [d.code for d in await diagnostics_for(client, uri)] == ["GL101"]
    config = tmp_path / "pyproject.toml"
    config.write_text('[tool.gradlint]\nignore = ["GL101"]\n')
    client.workspace_did_change_watched_files(
        types.DidChangeWatchedFilesParams(changes=[types.FileEvent(uri=config.as_uri(), type=types.FileChangeType.Created)])
    )
    assert await diagnostics_for(client, uri) == []
    # noqa is honoured as in check.
    config.unlink()
    text = FLAGGED.replace("    opt.step()", "    opt.step()  # noqa: GL101")
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
        )
    )
    assert await diagnostics_for(client, uri) == []


async def test_columns_are_utf16_units(client: LanguageClient, tmp_path):
    path = tmp_path / "train.py"
    text = FLAGGED.replace("    opt.step()", "    é = 1; opt.step()")
    uri = open_document(client, path, text)
    [diag] = await diagnostics_for(client, uri)
    assert diag.range.start.character == len("    é = 1; ")


async def test_check_does_not_import_the_server():
    code = "import sys, gradlint.cli, gradlint.engine; print('pygls' in sys.modules or 'gradlint.server' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


@pytest.mark.slow
async def test_diagnostics_match_check_on_every_fixture(client: LanguageClient):
    repo = Path(__file__).resolve().parents[2]
    run = subprocess.run(
        [sys.executable, "-m", "gradlint", "check", "--no-cache", "--format", "json", "fixtures"],
        cwd=repo, capture_output=True, text=True, check=False,
    )
    expected: dict[str, list[tuple]] = {}
    for f in json.loads(run.stdout):
        if f["cell"] is None:
            expected.setdefault(str((repo / f["path"]).resolve()), []).append(f)
    files = sorted((repo / "fixtures").rglob("*.py"))
    assert len(files) > 100
    for path in files:
        text = path.read_text(encoding="utf-8")
        uri = open_document(client, path, text)
        got = await diagnostics_for(client, uri)
        lines = text.splitlines()

        def utf16(line: int, column: int) -> int:
            return len(lines[line - 1][: column - 1].encode("utf-16-le")) // 2 if line <= len(lines) else column - 1

        want = sorted(
            (f["code"], f["line"] - 1, utf16(f["line"], f["column"]), f["end_line"] - 1) for f in expected.get(str(path), [])
        )
        assert sorted((d.code, d.range.start.line, d.range.start.character, d.range.end.line) for d in got) == want, path
        client.text_document_did_close(types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri)))
        await diagnostics_for(client, uri)  # the close clears them
