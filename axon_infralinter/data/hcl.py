"""Terraform text helpers shared by the data set, the predictor and the linter.

`strip_comments` removes `#`, `//` and `/* */` comments while keeping every line in place, so line
numbers found in the stripped text are the line numbers of the original file. It understands quoted
strings (with escapes and `${...}` templates) and heredocs, so a `#` inside `"arn:...#frag"` or a
heredoc body survives.
"""

from __future__ import annotations

import re

_HEREDOC = re.compile(r"<<-?\s*([A-Za-z_][A-Za-z0-9_-]*)\s*$")


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
    i, n = 0, len(text)
    heredoc_end: str | None = None
    while i < n:
        if heredoc_end is not None:
            # Inside a heredoc body: copy whole lines until the terminator line.
            j = text.find("\n", i)
            line = text[i:] if j < 0 else text[i : j + 1]
            out.append(line)
            i = n if j < 0 else j + 1
            if line.strip() == heredoc_end:
                heredoc_end = None
            continue
        c = text[i]
        if c == '"':
            j = _end_of_string(text, i)
            out.append(text[i:j])
            i = j
        elif c == "#" or text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            end = n if j < 0 else j + 2
            out.append("\n" * text.count("\n", i, end))
            i = end
        elif text.startswith("<<", i):
            j = text.find("\n", i)
            head = text[i:] if j < 0 else text[i:j]
            m = _HEREDOC.match(head)
            if m and j >= 0:
                heredoc_end = m.group(1)
                out.append(head + "\n")
                i = j + 1
            else:
                out.append("<<")
                i += 2
        else:
            j = i
            while j < n and text[j] not in '"#/<':
                j += 1
            if j == i:
                j = i + 1
            out.append(text[i:j])
            i = j
    stripped = "".join(out)
    return "\n".join(line.rstrip() for line in stripped.split("\n"))


def _end_of_string(text: str, start: int) -> int:
    """Index just past the closing quote of the string opening at `start` (handles `\\` and `${}`)."""
    i, n, depth = start + 1, len(text), 0
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if text.startswith("${", i) or text.startswith("%{", i):
            depth += 1
            i += 2
            continue
        if c == "}" and depth:
            depth -= 1
        elif c == '"' and not depth:
            return i + 1
        elif c == "\n" and not depth:
            return i  # unterminated string: stop at the line end rather than eat the file
        i += 1
    return n


def normalize_whitespace(text: str) -> str:
    """Collapse all whitespace runs to one space: the key for whitespace-normalized de-duplication."""
    return " ".join(text.split())
