"""The one HCL lexer: comments, quoted strings (with templates) and heredocs.

`lex` cuts Terraform text into spans of five kinds; everything that needs to know where a comment,
a string or a heredoc starts and ends (`strip_comments`, the block splitter, the suppression finder)
reads these spans, so they all agree on the grammar:

- `string`: `"..."` with `\\` escapes, `$${` / `%%{` (literal markers) and `${...}` / `%{...}`
  templates, which may nest strings (`"${join(",", x)}"`). An unterminated string ends at its line
  end instead of eating the file.
- `heredoc`: `<<EOF` / `<<-EOF` at the end of a line, its body and the terminator line (the line
  whose stripped text is the marker), without the newline after it.
- `line_comment`: `#` or `//` up to (not including) the line end.
- `block_comment`: `/* ... */` (to the end of the text when unclosed).
- `code`: everything else.

`strip_comments` removes comments while keeping every line in place, so a line number found in the
stripped text is the line number of the original file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Literal, NamedTuple

SpanKind = Literal["code", "string", "heredoc", "line_comment", "block_comment"]
_HEREDOC = re.compile(r"<<-?[ \t]*([A-Za-z_][\w.-]*)[ \t]*\r?\n")
_SPECIAL = re.compile(r'["#/<]')


class Span(NamedTuple):
    """`text[start:end]` is one lexical piece of kind `kind`."""

    kind: SpanKind
    start: int
    end: int


def lex(text: str) -> Iterator[Span]:
    """Cut `text` into consecutive spans that together cover it exactly.

    Args:
        text: Terraform source.

    Yields:
        Spans in text order; adjacent `code` pieces may come as several spans.
    """
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = skip_string(text, i)
            yield Span("string", i, j)
        elif c == "#" or text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            yield Span("line_comment", i, j)
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            yield Span("block_comment", i, j)
        elif text.startswith("<<", i) and (m := _HEREDOC.match(text, i)):
            j = _skip_heredoc(text, m.end(), m.group(1))
            yield Span("heredoc", i, j)
        else:
            m = _SPECIAL.search(text, i + 1)
            j = n if m is None else m.start()
            yield Span("code", i, j)
        i = j


def skip_string(text: str, start: int) -> int:
    """Index just past the string opening at `start`; `${...}` templates may nest strings."""
    i, n = start + 1, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
        elif text.startswith("$${", i) or text.startswith("%%{", i):
            i += 3  # escaped template marker: literal text
        elif text.startswith("${", i) or text.startswith("%{", i):
            i = _skip_template(text, i + 2)
        elif c == '"':
            return i + 1
        elif c == "\n":
            return i  # unterminated: stop at the line end rather than eat the file
        else:
            i += 1
    return n


def _skip_template(text: str, start: int) -> int:
    """Index just past the `}` closing a template interpolation whose body starts at `start`."""
    i, n, depth = start, len(text), 1
    while i < n:
        c = text[i]
        if c == '"':
            i = skip_string(text, i)
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return n


def _skip_heredoc(text: str, body_start: int, marker: str) -> int:
    """Index just past the heredoc terminator line (or the end of the text when there is none)."""
    i, n = body_start, len(text)
    while i < n:
        j = text.find("\n", i)
        end = n if j < 0 else j
        if text[i:end].strip() == marker:
            return end
        i = end + 1
    return n


def strip_comments(text: str) -> str:
    """Return `text` with comments removed and line structure preserved.

    Block comments become as many newlines as they spanned; trailing spaces left behind on a line
    are removed. Lines that held only a comment become empty lines.

    Args:
        text: Terraform source.

    Returns:
        The source without comments, with the same number of lines.
    """
    out: list[str] = []
    for kind, start, end in lex(text):
        if kind == "block_comment":
            out.append("\n" * text.count("\n", start, end))
        elif kind != "line_comment":
            out.append(text[start:end])
    return "\n".join(line.rstrip() for line in "".join(out).split("\n"))


def normalize_whitespace(text: str) -> str:
    """Collapse all whitespace runs to one space: the key for whitespace-normalized de-duplication."""
    return " ".join(text.split())
