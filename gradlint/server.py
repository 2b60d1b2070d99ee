"""`gradlint server`: a Language Server over stdio (pygls), with the findings and fixes of `gradlint check`.

Each lint runs in a worker process (gradlint.workers), so a file that crashes the parser or runs past
`parse-timeout` costs one GL001 diagnostic, never the server. Open buffers are linted from their text;
neighbouring files are read from disk, and the configuration is found from the file's folder, as `check` does.
"""
from __future__ import annotations

import asyncio
import bisect
import os
import re
import sys
from functools import partial
from pathlib import Path
from urllib.parse import unquote, urlparse

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from gradlint.version import __version__
from gradlint.checks.registry import RULES
from gradlint.config import ConfigError, Settings, load_settings
from gradlint.facts.project import Project
from gradlint.findings import Edit, Finding, Severity, syntax_finding
from gradlint.fix.apply import fix_text
from gradlint.lint import ParserLimit, check_unit
from gradlint.source import SourceUnit, may_be_training_code
from gradlint.suppression import source_lines
from gradlint.workers import run_isolated

DEBOUNCE_S = 0.3
FIX_ALL = types.CodeActionKind.SourceFixAll
_SEVERITY = {
    Severity.ERROR: types.DiagnosticSeverity.Error,
    Severity.WARNING: types.DiagnosticSeverity.Warning,
    Severity.INFO: types.DiagnosticSeverity.Information,
}


def _path(uri: str) -> Path:
    return Path(unquote(urlparse(uri).path))


def _settings(path: Path) -> tuple[Settings, str | None]:
    try:
        return load_settings(start=path.parent), None
    except ConfigError as exc:
        return Settings(), str(exc)


def _lint_batch(settings: Settings, batch: list, avoid: frozenset, notify) -> None:
    for position, (path, text) in enumerate(batch):
        notify(("start", position))
        try:
            findings = check_unit(SourceUnit(path, text), settings, Project(avoid=avoid, watch=notify), Path(path))
            result = (findings, None)
        except ParserLimit as exc:
            result = ([], f"not checked: {exc}")
        except Exception as exc:  # a bug of ours is logged; the server goes on
            result = ([], f"internal error ({type(exc).__name__}: {exc})")
        notify(("done", position, result))


def lint_text(path: Path, text: str) -> tuple[list[Finding], str | None]:
    """The findings of a buffer, as `gradlint check` gives them for that file, and a problem to log."""
    if not may_be_training_code(text.encode("utf-8", "surrogatepass"), path):
        return [], None
    settings, problem = _settings(path)
    timeout = float(settings.options.get("parse-timeout", 10.0))
    [(_, outcome, failure)] = run_isolated([[(str(path), text)]], partial(_lint_batch, settings), 1, timeout)
    if failure is not None:
        what = "the parser crashed on this file" if failure.reason == "crashed" else f"checking this file took longer than {timeout:g} s (parse-timeout)"
        return [syntax_finding(str(path), f"not checked: {what}", 1, 1)], None
    findings, error = outcome
    return findings, error or problem


class Positions:
    """Code-point offsets and columns (as findings give them) to LSP positions (UTF-16 code units)."""

    def __init__(self, text: str) -> None:
        self.lines = source_lines(text)
        self.starts = [0]
        for line, ending in zip(self.lines, _endings(text)):
            self.starts.append(self.starts[-1] + len(line) + len(ending))

    def at(self, line: int, column: int) -> types.Position:
        """A 1-based line and column."""
        index = min(max(line, 1), len(self.lines)) - 1
        text = self.lines[index] if self.lines else ""
        prefix = text[: max(column - 1, 0)]
        return types.Position(line=index, character=len(prefix.encode("utf-16-le")) // 2)

    def offset(self, offset: int) -> types.Position:
        line = max(bisect.bisect_right(self.starts, offset, hi=len(self.lines)) - 1, 0)
        return self.at(line + 1, offset - self.starts[line] + 1)


def _endings(text: str) -> list[str]:
    return [m.group() for m in re.finditer(r"\r\n|\r|\n", text)] + [""]


def diagnostic(finding: Finding, positions: Positions) -> types.Diagnostic:
    rule = RULES.get(finding.code)
    start = positions.at(finding.line, finding.column)
    end = positions.at(finding.end_line, finding.end_column)
    return types.Diagnostic(
        range=types.Range(start=start, end=end),
        # Editors show the message as it is, lines and all: the fix goes on a line of its own.
        message=finding.message if finding.help is None else f"{finding.message}\nhelp: {finding.help}",
        severity=_SEVERITY[finding.severity],
        code=finding.code,
        code_description=types.CodeDescription(href=rule.help_uri) if rule is not None and rule.help_uri else None,
        source="gradlint",
        data={"fix": [[e.start, e.end, e.text] for e in finding.fix.edits], "title": finding.fix.description}
        if finding.fix is not None
        else None,
    )


def text_edits(text: str, edits: list[Edit]) -> list[types.TextEdit]:
    positions = Positions(text)
    return [
        types.TextEdit(range=types.Range(start=positions.offset(e.start), end=positions.offset(e.end)), new_text=e.text)
        for e in sorted(edits, key=lambda e: (e.start, e.end))
    ]


def whole_document(text: str, new_text: str) -> types.TextEdit:
    positions = Positions(text)
    return types.TextEdit(
        range=types.Range(start=types.Position(line=0, character=0), end=positions.offset(len(text))), new_text=new_text
    )


def create_server() -> LanguageServer:
    server = LanguageServer("gradlint", __version__)
    pending: dict[str, asyncio.TimerHandle] = {}

    async def publish(uri: str) -> None:
        document = server.workspace.get_text_document(uri)
        path = _path(uri)
        if path.suffix != ".py":
            return
        text = document.source
        # In the server's own thread: a worker forked from another thread can deadlock on a lock that thread
        # held at the fork. Debouncing keeps these calls rare; the worker bounds each one.
        findings, problem = lint_text(path, text)
        if problem:
            server.window_log_message(types.LogMessageParams(type=types.MessageType.Warning, message=f"gradlint: {path}: {problem}"))
        if server.workspace.get_text_document(uri).source != text:
            return  # edited meanwhile: the next lint publishes
        positions = Positions(text)
        server.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, version=document.version, diagnostics=[diagnostic(f, positions) for f in findings])
        )

    def later(uri: str) -> None:
        if uri in pending:
            pending[uri].cancel()
        loop = asyncio.get_running_loop()
        pending[uri] = loop.call_later(DEBOUNCE_S, lambda: asyncio.ensure_future(publish(uri)))

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    async def did_open(params: types.DidOpenTextDocumentParams) -> None:
        await publish(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(params: types.DidChangeTextDocumentParams) -> None:
        later(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    async def did_save(params: types.DidSaveTextDocumentParams) -> None:
        await publish(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(params: types.DidCloseTextDocumentParams) -> None:
        server.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[]))

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    async def did_change_watched(params: types.DidChangeWatchedFilesParams) -> None:
        # A config or a neighbouring file changed: every open document may read differently now.
        for uri in list(server.workspace.text_documents):
            await publish(uri)

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix, types.CodeActionKind.SourceFixAll]),
    )
    async def code_action(params: types.CodeActionParams) -> list[types.CodeAction]:
        uri = params.text_document.uri
        text = server.workspace.get_text_document(uri).source
        actions = []
        wanted = params.context.only
        if wanted is None or types.CodeActionKind.QuickFix in wanted:
            for diag in params.context.diagnostics:
                if diag.source != "gradlint" or not isinstance(diag.data, dict) or not diag.data.get("fix"):
                    continue
                edits = [Edit(start, end, new) for start, end, new in diag.data["fix"]]
                actions.append(
                    types.CodeAction(
                        title=f"gradlint: {diag.data.get('title') or 'apply the fix'} ({diag.code})",
                        kind=types.CodeActionKind.QuickFix,
                        diagnostics=[diag],
                        is_preferred=True,
                        edit=types.WorkspaceEdit(changes={uri: text_edits(text, edits)}),
                    )
                )
        if wanted is None or any(kind in (FIX_ALL, types.CodeActionKind.Source) for kind in wanted):
            path = _path(uri)
            settings, _ = _settings(path)
            fixed = _fix_all(text, path, settings)
            if fixed is not None and fixed != text:
                actions.append(
                    types.CodeAction(
                        title="gradlint: fix all gradlint findings",
                        kind=types.CodeActionKind.SourceFixAll,
                        edit=types.WorkspaceEdit(changes={uri: [whole_document(text, fixed)]}),
                    )
                )
        return actions

    return server


def _fix_batch(text: str, settings: Settings, batch: list, avoid: frozenset, notify) -> None:
    notify(("start", 0))
    try:
        result = fix_text(text, batch[0], settings)[0]
    except Exception:  # no fix is offered; the diagnostics say what is wrong
        result = None
    notify(("done", 0, result))


def _fix_all(text: str, path: Path, settings: Settings) -> str | None:
    """What `--fix` writes for this buffer (in a worker: a crash costs the action, not the server)."""
    timeout = float(settings.options.get("parse-timeout", 10.0))
    # Fixes re-lint the file a few times: a few parse-timeouts in all.
    [(_, fixed, failure)] = run_isolated([[str(path)]], partial(_fix_batch, text, settings), 1, timeout * 4)
    return None if failure is not None else fixed


def main() -> None:
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    # Workers are forked while a thread of the server blocks reading stdin: multiprocessing closes the
    # child's sys.stdin, which would wait forever for that thread's lock. And a stray print must never
    # reach the protocol stream.
    sys.stdin = open(os.devnull)
    sys.stdout = sys.stderr
    create_server().start_io(stdin, stdout)

