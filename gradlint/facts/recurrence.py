"""Recurrence: names a loop assigns from a call's result and feeds back into the same call next time.

`output, hidden = model(x, hidden)` inside a loop carries `hidden` from one iteration to the next.
Whether the loop also cuts that carry (`hidden = hidden.detach()`, `hidden = repackage_hidden(hidden)`,
`hidden = model.init_hidden(bs)`, `hidden.detach_()`) is recorded too, so rules can tell a truncated
carry from one that keeps the whole history.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

import libcst as cst

from gradlint.facts.index import Binding, Scope, Site
from gradlint.facts.names import lookup

if TYPE_CHECKING:
    from gradlint.facts.file import FileFacts

# In-place methods that cut a tensor from its graph.
DETACH_IN_PLACE = frozenset({"detach_", "requires_grad_"})


@dataclass(eq=False)
class Carried:
    """`name` is assigned from `call` at `site` and passed back into it on the next pass of `loop`."""

    name: str
    site: Site  # the assignment statement
    call: cst.Call
    loop: cst.CSTNode  # the innermost loop around the assignment
    initial: Binding  # the binding in force when the loop starts
    cut: Site | None  # a statement in the loop that rebinds or detaches the name (None: carried whole)


def _names(node: cst.CSTNode) -> Iterator[str]:
    """Bare names of a target or argument: `h`, `(h, c)`, `[h, c]`."""
    t = type(node)
    if t is cst.Name:
        yield node.value
    elif t is cst.Tuple or t is cst.List:
        for element in node.elements:
            yield from _names(element.value)


def _base_name(node: cst.CSTNode) -> str | None:
    """`hidden` for `hidden`, `hidden[0]`, `hidden.data`, `hidden[0].data`."""
    while type(node) in (cst.Subscript, cst.Attribute):
        node = node.value
    return node.value if type(node) is cst.Name else None


def carried_states(facts: "FileFacts") -> list[Carried]:
    """Every name a loop feeds back into the call that produced it, with what (if anything) cuts it."""
    found: list[Carried] = []
    for scope in [facts.index.scope, *facts.index.functions]:
        for site in scope.sites:
            node = site.node
            if type(node) is not cst.Assign or not site.ctx.loops or type(node.value) is not cst.Call:
                continue
            call = node.value
            targets = {n for t in node.targets for n in _names(t.target)}
            fed = []
            for arg in call.args:
                if arg.star:
                    continue
                fed.extend(n for n in _names(arg.value) if n in targets and n not in fed)
            if not fed:
                continue
            loop = site.ctx.loops[-1]
            inside = [s for s in scope.sites if loop in s.ctx.loops]
            first = min(s.seq for s in inside)
            for name in fed:
                initial = lookup(name, scope, first)
                if initial is None or initial.node is node:
                    continue
                found.append(Carried(name, site, call, loop, initial, _cut(facts, scope, site, name, loop, inside)))
    return found


def _cut(facts: "FileFacts", scope: Scope, site: Site, name: str, loop, inside: list[Site]) -> Site | None:
    """A statement of the loop, other than the recurrent assignment, that rebinds `name` or detaches it."""
    first, last = min(s.seq for s in inside), max(s.seq for s in inside)
    for binding in scope.bindings.get(name, []):
        if binding.node is site.node:
            continue
        other = facts.site_of(binding.node)
        if other is not None:
            if loop in other.ctx.loops:
                return other
            continue
        if binding.node is loop or first <= binding.seq <= last + 1:
            return site  # a `for`/`with` target rebinding it inside the loop
    for other in inside:
        n = other.node
        if type(n) is cst.Call and type(n.func) is cst.Attribute and n.func.attr.value in DETACH_IN_PLACE:
            return other  # `hidden.detach_()`, `for h in hidden: h.detach_()`
        if type(n) is cst.Assign and other is not site:
            if any(type(t.target) is not cst.Name and _base_name(t.target) == name for t in n.targets):
                return other  # `hidden[0] = hidden[0].detach()`
    return None
