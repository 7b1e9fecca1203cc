"""Top-level blocks of a Terraform file, line counts and `# axon:ignore` suppressions.

Block line ranges come from a brace-aware splitter over the spans of `lexer.lex` on the
comment-stripped text (`strip_comments` keeps every line in place), so braces inside comments,
quoted strings, `${...}` templates and heredocs do not count. (hcl2's `__start_line__` is only
recorded for some block types, so it cannot be the source of ranges.)

Suppressions are comments:

    # axon:ignore <reason>       inside a block (any of its lines): that block is not judged
    # axon:ignore <reason>       on line 1 of a file: the whole file is not judged

`//` comments work the same way; text inside strings and heredocs is never a suppression.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from axon_infralinter.terraform.lexer import lex, strip_comments

_SUPPRESSION = re.compile(r"(?:#|//)\s*axon:ignore\b[ \t]*(?P<reason>.*)$")
_HEADER = re.compile(r'\s*[A-Za-z_][\w-]*(?:\s+(?:"[^"\n]*"|[A-Za-z_][\w-]*))*\s*')
_HEADER_TOKEN = re.compile(r'"([^"\n]*)"|([A-Za-z_][\w-]*)')


@dataclass(frozen=True)
class Block:
    """One top-level block of a Terraform file."""

    start_line: int
    """1-based line of the block's header."""
    end_line: int
    """1-based line of its closing brace."""
    kind: str
    """Block type: `resource`, `data`, `module`, `variable`, `locals`, ..."""
    labels: tuple[str, ...]
    """The header's labels, e.g. `("aws_s3_bucket", "logs")`."""

    @property
    def address(self) -> str:
        """Terraform-style address: `aws_s3_bucket.logs`, `data.x.y`, `module.vpc`, `var.region`."""
        if self.kind == "resource" and self.labels:
            return ".".join(self.labels)
        kind = "var" if self.kind == "variable" else self.kind
        return ".".join((kind, *self.labels))


def count_lines(text: str) -> int:
    """Number of lines of `text` (a final newline does not start a new line)."""
    if not text:
        return 0
    return text.count("\n") + (0 if text.endswith("\n") else 1)


class _Splitter:
    """State of the walk over the stripped text: brace depth, current statement, open block."""

    def __init__(self, code: str) -> None:
        self.code = code
        self.blocks: list[Block] = []
        self.line = 1
        self.depth = 0
        self.stmt_start: int | None = None  # first character of the current top-level statement
        self.stmt_line = 1
        self.open_block: tuple[int, str, tuple[str, ...]] | None = None  # (line, kind, labels)

    def start_statement(self, i: int) -> None:
        if self.depth == 0 and self.stmt_start is None:
            self.stmt_start, self.stmt_line = i, self.line

    def code_span(self, start: int, end: int) -> None:
        for i in range(start, end):
            c = self.code[i]
            if c == "\n":
                self.line += 1
                if self.depth == 0:
                    self.stmt_start = None
                continue
            if not c.isspace():
                self.start_statement(i)
            if c in "{[(":
                self.opening(i, c)
            elif c in "}])":
                self.closing(c)

    def opening(self, i: int, c: str) -> None:
        if c == "{" and self.depth == 0 and self.stmt_start is not None:
            header = self.code[self.stmt_start : i]
            if _HEADER.fullmatch(header):
                tokens = [a or b for a, b in _HEADER_TOKEN.findall(header)]
                self.open_block = (self.stmt_line, tokens[0], tuple(tokens[1:]))
        self.depth += 1

    def closing(self, c: str) -> None:
        self.depth = max(self.depth - 1, 0)
        if self.depth == 0:
            if c == "}" and self.open_block is not None:
                start, kind, labels = self.open_block
                self.blocks.append(Block(start, self.line, kind, labels))
            self.open_block = None
            self.stmt_start = None


def split_blocks(text: str) -> list[Block]:
    """Find the top-level blocks of a Terraform file.

    Args:
        text: Terraform source (comments allowed; they are stripped first).

    Returns:
        Blocks in file order. Top-level attributes (`a = {...}`) are not blocks; an unclosed block
        at the end of the text is dropped.
    """
    code = strip_comments(text)
    walk = _Splitter(code)
    for kind, start, end in lex(code):
        if kind == "code":
            walk.code_span(start, end)
        else:  # a string or heredoc (no comments are left): opaque, but its lines count
            walk.start_statement(start)
            walk.line += code.count("\n", start, end)
    return walk.blocks


def find_suppressions(text: str) -> dict[int, str]:
    """Lines carrying an `axon:ignore` comment.

    Args:
        text: Terraform source.

    Returns:
        1-based line number -> reason text (stripped; empty when none was written). Only comments
        count: `axon:ignore` inside a string or heredoc is ignored.
    """
    found: dict[int, str] = {}
    line_starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]
    for kind, start, end in lex(text):
        if kind != "line_comment" and kind != "block_comment":
            continue
        comment = text[start:end]
        if "axon:ignore" not in comment:
            continue
        first = bisect.bisect_right(line_starts, start)  # 1-based line of the comment's start
        # A block comment spans lines; a `# axon:ignore` on any of them counts for that line.
        for offset, piece in enumerate(comment.split("\n")):
            if m := _SUPPRESSION.search(piece):
                found[first + offset] = m.group("reason").strip()
    return found


def file_suppression(text: str) -> str | None:
    """Reason of an `# axon:ignore` on line 1 (empty when none was written); None when absent."""
    return find_suppressions(text.split("\n", 1)[0]).get(1)
