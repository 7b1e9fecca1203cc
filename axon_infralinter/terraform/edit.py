"""Text-level edits of one Terraform block: read, set, insert and delete attributes and nested blocks.

The mutation stage (`data.mutate`) derives variants of real resource blocks by editing their text,
so a variant differs from its source only where the edit says. Every function here reads the
block through `lexer.lex`: quoted strings (with `${...}` templates), heredocs and comments are
opaque, so a brace, an `=` or a name inside them is never taken for structure.

A *path* names a nested item the way Checkov's inspected keys do without their list indexes:
`("vpc_config", "endpoint_public_access")` is the attribute `endpoint_public_access` inside the
first `vpc_config { ... }` block of the resource. `dynamic "vpc_config"` blocks are not followed
(their content is a template, not the block); `has_dynamic` tells when one is on a path.

All edits are pure: they take the block's text and return the edited text, keeping every other
byte (indentation of inserted lines follows the block's own).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from axon_infralinter.terraform.lexer import lex

KeyPath = tuple[str, ...]
StatementKind = Literal["attribute", "block"]
Scalar = bool | int | float | str
META_ARGUMENTS = frozenset({"count", "for_each", "provider", "depends_on", "lifecycle"})
"""Terraform's meta-arguments: they say how many and where, not how a resource is configured."""
_IDENT = re.compile(r"[A-Za-z_][\w-]*")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_PLAIN_STRING = re.compile(r'"((?:[^"\\$%]|\\.|\$(?!\{)|%(?!\{))*)"')


class EditError(ValueError):
    """An edit cannot be applied to this text (no block, path names an item of the other kind)."""


@dataclass(frozen=True)
class Statement:
    """One attribute (`name = value`) or block (`name "label" { ... }`) inside a body."""

    kind: StatementKind
    name: str
    labels: tuple[str, ...]
    """A block's labels (`resource "aws_s3_bucket" "b"` -> ("aws_s3_bucket", "b"))."""
    label_spans: tuple[tuple[int, int], ...]
    """Where each label's text lies (inside its quotes when quoted)."""
    start: int
    """Offset of the name's first character."""
    end: int
    """Offset just past the value (attribute) or the closing brace (block)."""
    inner_start: int
    """Attribute: first character of the value. Block: just past `{`."""
    inner_end: int
    """Attribute: just past the value (== end). Block: offset of the closing `}`."""


class _Parsed:
    """A text and where its opaque spans (strings, heredocs, comments) end, by start offset."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.jump = {s.start: s.end for s in lex(text) if s.kind != "code"}

    def skip_blank(self, i: int, end: int) -> int:
        """Skip spaces and tabs (not newlines)."""
        while i < end and self.text[i] in " \t":
            i += 1
        return i

    def expression_end(self, i: int, end: int) -> int:
        """End of the expression starting at `i`: a newline outside brackets, or `end`."""
        text, depth = self.text, 0
        while i < end:
            if i in self.jump:
                i = self.jump[i]
                continue
            c = text[i]
            if c in "([{":
                depth += 1
            elif c in ")]}":
                if depth == 0:
                    return i  # the body's own closing brace (a one-line block)
                depth -= 1
            elif c == "\n" and depth == 0:
                return i
            i += 1
        return end

    def matching_brace(self, i: int, end: int) -> int:
        """Offset of the `}` closing the `{` at `i` (strings and heredocs skipped)."""
        text, depth = self.text, 0
        while i < end:
            if i in self.jump:
                i = self.jump[i]
                continue
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    return i
            i += 1
        raise EditError("unclosed block")

    def line_end(self, i: int, end: int) -> int:
        j = self.text.find("\n", i, end)
        return end if j < 0 else j + 1

    def statements(self, start: int, end: int) -> list[Statement]:
        """The statements of the body `text[start:end]`, in order (junk lines skipped)."""
        text, out, i = self.text, [], start
        while i < end:
            if i in self.jump:
                i = self.jump[i]
                continue
            if text[i].isspace():
                i += 1
                continue
            m = _IDENT.match(text, i)
            if m is None or m.end() > end:
                i = self.line_end(i, end)
                continue
            j = self.skip_blank(m.end(), end)
            if text.startswith("=", j) and not text.startswith("==", j):
                value = self.skip_blank(j + 1, end)
                stop = self.expression_end(value, end)
                tail = len(text[value:stop].rstrip())
                out.append(
                    Statement("attribute", m.group(), (), (), i, value + tail, value, value + tail)
                )
                i = stop
                continue
            block = self._block(m.group(), i, j, end)
            if block is None:
                i = self.line_end(i, end)
                continue
            out.append(block)
            i = block.end
        return out

    def _block(self, name: str, start: int, j: int, end: int) -> Statement | None:
        """The block whose header starts at `start` (labels from `j`), or None when it is not one."""
        text = self.text
        labels: list[str] = []
        spans: list[tuple[int, int]] = []
        while j < end and text[j] != "{":
            if text[j] == '"' and j in self.jump:
                spans.append((j + 1, self.jump[j] - 1))
                labels.append(text[j + 1 : self.jump[j] - 1])
                j = self.skip_blank(self.jump[j], end)
            elif m := _IDENT.match(text, j):
                spans.append((j, m.end()))
                labels.append(m.group())
                j = self.skip_blank(m.end(), end)
            else:
                return None
        if j >= end:
            return None
        close = self.matching_brace(j, end)
        return Statement("block", name, tuple(labels), tuple(spans), start, close + 1, j + 1, close)

    def body(self, block: Statement) -> list[Statement]:
        return self.statements(block.inner_start, block.inner_end)


def top_block(text: str) -> Statement:
    """The first top-level block of `text` (the resource a variant is made of).

    Raises:
        EditError: the text holds no block.
    """
    parsed = _Parsed(text)
    for st in parsed.statements(0, len(text)):
        if st.kind == "block":
            return st
    raise EditError("no block in the text")


def body(text: str) -> list[Statement]:
    """The statements directly inside the text's first block."""
    parsed = _Parsed(text)
    for st in parsed.statements(0, len(text)):
        if st.kind == "block":
            return parsed.body(st)
    raise EditError("no block in the text")


def _walk_path(parsed: _Parsed, path: KeyPath) -> tuple[list[Statement], Statement | None]:
    """The blocks along `path` that exist (outermost first) and the item at its end, if any."""
    chain = [top_block(parsed.text)]
    for depth, name in enumerate(path):
        found = next((st for st in parsed.body(chain[-1]) if st.name == name), None)
        if found is None:
            return chain, None
        if depth == len(path) - 1:
            return chain, found
        if found.kind != "block":
            raise EditError(f"{'/'.join(path[: depth + 1])} is an attribute, not a block")
        chain.append(found)
    return chain, chain[-1]


def find(text: str, path: KeyPath) -> Statement | None:
    """The attribute or block at `path` inside the text's first block (None when absent)."""
    if not path:
        raise EditError("empty path")
    return _walk_path(_Parsed(text), path)[1]


def value_text(text: str, path: KeyPath) -> str | None:
    """The expression text of the attribute at `path` (None when absent or a block)."""
    st = find(text, path)
    if st is None or st.kind != "attribute":
        return None
    return text[st.inner_start : st.inner_end]


def has_dynamic(text: str, path: KeyPath) -> bool:
    """Whether a `dynamic "<name>"` block stands for one of the blocks along `path`."""
    parsed = _Parsed(text)
    body = top_block(text)
    for name in path:
        items = parsed.body(body)
        if any(
            st.kind == "block" and st.name == "dynamic" and st.labels[:1] == (name,) for st in items
        ):
            return True
        found = next((st for st in items if st.name == name and st.kind == "block"), None)
        if found is None:
            return False
        body = found
    return False


def walk(text: str, max_depth: int = 3) -> Iterator[tuple[KeyPath, Statement, str]]:
    """Every attribute and static nested block of the text's first block, with its path and text.

    Yields:
        (path, statement, the statement's text) in text order, outer items before their content.
    """
    parsed = _Parsed(text)

    def visit(block: Statement, prefix: KeyPath) -> Iterator[tuple[KeyPath, Statement, str]]:
        for st in parsed.body(block):
            if st.name == "dynamic":
                continue
            path = (*prefix, st.name)
            yield path, st, text[st.start : st.end]
            if st.kind == "block" and len(path) < max_depth:
                yield from visit(st, path)

    yield from visit(top_block(text), ())


# --------------------------------------------------------------------------------------------
# Edits


def _line_indent(text: str, offset: int) -> str:
    start = text.rfind("\n", 0, offset) + 1
    line = text[start:offset]
    return line[: len(line) - len(line.lstrip(" \t"))]


def _indents(parsed: _Parsed, block: Statement) -> tuple[str, str]:
    """(indentation of the block's body, one indentation step) as the text writes them."""
    outer = _line_indent(parsed.text, block.start)
    for st in parsed.body(block):
        inner = _line_indent(parsed.text, st.start)
        if len(inner) > len(outer) and inner.startswith(outer):
            return inner, inner[len(outer) :]
    return outer + "  ", "  "


def _nest(names: Sequence[str], leaf: Sequence[str], step: str) -> list[str]:
    """Lines (relative indentation) of `leaf` wrapped in nested blocks named `names`."""
    lines = list(leaf)
    for name in reversed(names):
        lines = [f"{name} {{", *(step + line for line in lines), "}"]
    return lines


def _insert(parsed: _Parsed, block: Statement, lines: Sequence[str]) -> str:
    """Insert `lines` (relative indentation) as the last statement(s) of `block`'s body."""
    text = parsed.text
    indent, _ = _indents(parsed, block)
    close = block.inner_end
    close_line = text.rfind("\n", 0, close) + 1
    if close_line > block.inner_start and not text[close_line:close].strip():
        added = "".join(indent + line + "\n" for line in lines)
        return text[:close_line] + added + text[close_line:]
    # A one-line block (`x { a = 1 }`, `x {}`): rewrite it over several lines.
    outer = _line_indent(text, block.start)
    existing = text[block.inner_start : close].strip()
    body = ([indent + existing] if existing else []) + [indent + line for line in lines]
    return text[: block.inner_start] + "\n" + "\n".join(body) + "\n" + outer + text[close:]


def set_attribute(text: str, path: KeyPath, value: str) -> str:
    """Set the attribute at `path` to the expression `value`, inserting it (and blocks) if absent.

    Args:
        text: The block's text.
        path: Where the attribute lives; missing blocks along it are created.
        value: HCL expression text (see `hcl_value`).

    Raises:
        EditError: the path names a block, or goes through an attribute.
    """
    parsed = _Parsed(text)
    chain, found = _walk_path(parsed, path)
    if found is not None:
        if found.kind != "attribute":
            raise EditError(f"{'/'.join(path)} is a block, not an attribute")
        return text[: found.inner_start] + value + text[found.inner_end :]
    _, step = _indents(parsed, chain[-1])
    missing = path[len(chain) - 1 :]
    value_lines = value.split("\n")
    leaf = [f"{missing[-1]} = {value_lines[0]}", *value_lines[1:]]
    return _insert(parsed, chain[-1], _nest(missing[:-1], leaf, step))


def insert_block(text: str, path: KeyPath, body: Sequence[str] = ()) -> str:
    """Add a block at `path` with the given body lines (relative indentation; empty: `name {}`).

    Raises:
        EditError: an item already has that path, or the path goes through an attribute.
    """
    parsed = _Parsed(text)
    chain, found = _walk_path(parsed, path)
    if found is not None:
        raise EditError(f"{'/'.join(path)} already exists")
    _, step = _indents(parsed, chain[-1])
    missing = path[len(chain) - 1 :]
    if body:
        lines = _nest(missing, body, step)
    else:
        lines = _nest(missing[:-1], [f"{missing[-1]} {{}}"], step)
    return _insert(parsed, chain[-1], lines)


def delete(text: str, path: KeyPath) -> str:
    """Remove the attribute or block at `path` (its whole lines when it stands on its own lines).

    Raises:
        EditError: nothing has that path.
    """
    found = find(text, path)
    if found is None:
        raise EditError(f"{'/'.join(path)} is not there")
    return _cut(text, found.start, found.end)


def _cut(text: str, start: int, end: int) -> str:
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    line_end = len(text) if line_end < 0 else line_end
    if not text[line_start:start].strip() and not text[end:line_end].strip():
        return text[:line_start] + text[min(line_end + 1, len(text)) :]
    return text[:start] + text[end:]


def rename(text: str, name: str) -> str:
    """Give the text's first block a new name label (`resource "t" "old"` -> `resource "t" "name"`).

    Raises:
        EditError: the block has fewer than two labels.
    """
    block = top_block(text)
    if len(block.label_spans) < 2:
        raise EditError("the block has no name label")
    start, end = block.label_spans[-1]
    return text[:start] + name + text[end:]


def swap(text: str, first: KeyPath, second: KeyPath) -> str:
    """Exchange the text of two items of one body (reordering; indentation stays in place).

    Raises:
        EditError: either is absent, or they do not share a body.
    """
    a, b = find(text, first), find(text, second)
    if a is None or b is None or first[:-1] != second[:-1]:
        raise EditError("swap needs two items of the same body")
    if a.start > b.start:
        a, b = b, a
    return (
        text[: a.start]
        + text[b.start : b.end]
        + text[a.end : b.start]
        + text[a.start : a.end]
        + text[b.end :]
    )


# --------------------------------------------------------------------------------------------
# Values


def hcl_value(value: Scalar | Sequence[Scalar]) -> str:
    """HCL expression text of a Python value: `true`, `2`, `"x"`, `["a", "b"]`.

    A `${` or `%{` inside a string is escaped (`$${`), so it stays literal text.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value).replace("${", "$${").replace("%{", "%%{")
    return "[" + ", ".join(hcl_value(v) for v in value) + "]"


def parse_literal(expr: str) -> Scalar | None:
    """The value of a literal expression (`true`, `3`, `"x"` without templates); None otherwise.

    References, function calls, lists and templates are not literals: a scanner cannot know
    their value from the block alone.
    """
    expr = expr.strip()
    if expr in ("true", "false"):
        return expr == "true"
    if _NUMBER.fullmatch(expr):
        return float(expr) if "." in expr else int(expr)
    if _PLAIN_STRING.fullmatch(expr):
        decoded: str = json.loads(expr)
        return decoded
    return None
