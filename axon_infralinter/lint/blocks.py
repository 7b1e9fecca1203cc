"""Top-level blocks, `# axon:ignore` suppressions and the chunks `axon scan` sends to the model.

A file whose code fits the model's context is judged whole (one chunk covering the file); a longer one
is split into its top-level blocks (`resource`, `data`, `module`, `variable`, `locals`, ...), each
judged alone. Block line ranges come from a brace-aware splitter that runs on the comment-stripped
text (`data.hcl.strip_comments` keeps every line in place), so braces inside comments, quoted
strings, `${...}` templates and heredocs do not count. (hcl2's `__start_line__` is only recorded
for some block types, so it cannot be the source of ranges.)

Suppressions are comments:

    # axon:ignore <reason>       inside a block (any of its lines): that block is not judged
    # axon:ignore <reason>       on line 1 of a file: the whole file is not judged

`//` comments work the same way; text inside strings and heredocs is never a suppression.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from axon_infralinter.data.hcl import strip_comments

_SUPPRESSION = re.compile(r"(?:#|//)\s*axon:ignore\b[ \t]*(?P<reason>.*)$")
_HEADER = re.compile(r'\s*[A-Za-z_][\w-]*(?:\s+(?:"[^"\n]*"|[A-Za-z_][\w-]*))*\s*')
_HEADER_TOKEN = re.compile(r'"([^"\n]*)"|([A-Za-z_][\w-]*)')
_HEREDOC = re.compile(r"<<-?\s*([A-Za-z_][\w.-]*)[ \t]*\n")


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


@dataclass(frozen=True)
class Chunk:
    """A piece of a file judged (or skipped) as one unit."""

    start_line: int
    """First line (1-based, inclusive)."""
    end_line: int
    """Last line (1-based, inclusive)."""
    resource: str | None
    """Address of the block (None for a whole-file chunk holding several blocks)."""
    code: str
    """Text the model judges (comments stripped unless kept); empty when suppressed."""
    suppressed: bool = False
    """True when an `# axon:ignore` comment skips this chunk."""
    reason: str | None = None
    """The suppression's reason text (None when none was written)."""


def count_lines(text: str) -> int:
    """Number of lines of `text` (a final newline does not start a new line)."""
    if not text:
        return 0
    return text.count("\n") + (0 if text.endswith("\n") else 1)


def split_blocks(text: str) -> list[Block]:
    """Find the top-level blocks of a Terraform file.

    Args:
        text: Terraform source (comments allowed; they are stripped first).

    Returns:
        Blocks in file order. Top-level attributes (`a = {...}`) are not blocks; an unclosed block
        at the end of the text is dropped.
    """
    code = strip_comments(text)
    blocks: list[Block] = []
    i, n, line = 0, len(code), 1
    depth = 0
    stmt_start: int | None = None  # index of the first character of the current top-level statement
    stmt_line = 1
    open_block: tuple[int, str, tuple[str, ...]] | None = None  # (start_line, kind, labels)
    while i < n:
        c = code[i]
        if c == "\n":
            line += 1
            if depth == 0:
                stmt_start = None
            i += 1
            continue
        if depth == 0 and stmt_start is None and not c.isspace():
            stmt_start, stmt_line = i, line
        if c == '"':
            j = _skip_string(code, i)
            line += code.count("\n", i, j)
            i = j
        elif code.startswith("<<", i) and (m := _HEREDOC.match(code, i)):
            j = _skip_heredoc(code, m.end(), m.group(1))
            line += code.count("\n", i, j)
            i = j
        elif c in "{[(":
            if c == "{" and depth == 0 and stmt_start is not None:
                header = code[stmt_start:i]
                if _HEADER.fullmatch(header):
                    tokens = [a or b for a, b in _HEADER_TOKEN.findall(header)]
                    open_block = (stmt_line, tokens[0], tuple(tokens[1:]))
            depth += 1
            i += 1
        elif c in "}])":
            depth = max(depth - 1, 0)
            if depth == 0:
                if c == "}" and open_block is not None:
                    start, kind, labels = open_block
                    blocks.append(Block(start, line, kind, labels))
                open_block = None
                stmt_start = None
            i += 1
        else:
            i += 1
    return blocks


def _skip_string(code: str, start: int) -> int:
    """Index just past the string opening at `start`; `${...}` templates may nest strings."""
    i, n = start + 1, len(code)
    while i < n:
        c = code[i]
        if c == "\\":
            i += 2
        elif code.startswith("$${", i) or code.startswith("%%{", i):
            i += 3  # escaped template marker: literal text
        elif code.startswith("${", i) or code.startswith("%{", i):
            i = _skip_template(code, i + 2)
        elif c == '"':
            return i + 1
        elif c == "\n":
            return i  # unterminated: stop at the line end rather than eat the file
        else:
            i += 1
    return n


def _skip_template(code: str, start: int) -> int:
    """Index just past the `}` closing a template interpolation whose body starts at `start`."""
    i, n, depth = start, len(code), 1
    while i < n:
        c = code[i]
        if c == '"':
            i = _skip_string(code, i)
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return n


def _skip_heredoc(code: str, body_start: int, marker: str) -> int:
    """Index just past the heredoc terminator line (or the end of the text when there is none)."""
    i, n = body_start, len(code)
    while i < n:
        j = code.find("\n", i)
        end = n if j < 0 else j
        if code[i:end].strip() == marker:
            return end
        i = end + 1
    return n


def find_suppressions(text: str) -> dict[int, str]:
    """Lines carrying an `axon:ignore` comment.

    Args:
        text: Terraform source.

    Returns:
        1-based line number -> reason text (stripped; empty when none was written). Only comments
        count: `axon:ignore` inside a string or heredoc is ignored.
    """
    found: dict[int, str] = {}
    stripped = strip_comments(text).split("\n")
    for number, (original, code) in enumerate(zip(text.split("\n"), stripped, strict=True), 1):
        # strip_comments keeps the code part of a line and drops the comment after it, so what
        # follows the code is the comment (if the line still starts with the code).
        comment = original[len(code) :] if original.startswith(code) else original
        if "axon:ignore" in comment and (m := _SUPPRESSION.search(comment)):
            found[number] = m.group("reason").strip()
    return found


def file_suppression(text: str) -> str | None:
    """Reason of an `# axon:ignore` on line 1 (empty when none was written); None when absent."""
    return find_suppressions(text.split("\n", 1)[0]).get(1)


def plan_chunks(
    text: str,
    max_code_tokens: int,
    count_tokens: Callable[[str], int],
    keep_comments: bool = False,
) -> list[Chunk]:
    """Split a file into the chunks the model judges.

    Suppressed blocks become suppressed chunks. The remaining code is judged whole (one chunk from
    line 1 to the last line, suppressed blocks' lines left out of its code) when it has at most
    `max_code_tokens` tokens, else block by block. A file without top-level blocks is judged whole
    (the predictor truncates it if needed).

    Args:
        text: Terraform source with `\\n` line ends.
        max_code_tokens: The predictor's code budget.
        count_tokens: Token count of a piece of code.
        keep_comments: Send comments to the model (default strips them).

    Returns:
        Chunks sorted by start line; a whole-file chunk comes first.
    """
    lines = (text if keep_comments else strip_comments(text)).split("\n")
    n_lines = count_lines(text)
    blocks = split_blocks(text)
    suppressions = find_suppressions(text)

    suppressed: list[Chunk] = []
    judged: list[Block] = []
    for block in blocks:
        reasons = [r for ln, r in suppressions.items() if block.start_line <= ln <= block.end_line]
        if reasons:
            suppressed.append(
                Chunk(block.start_line, block.end_line, block.address, "", True, reasons[0] or None)
            )
        else:
            judged.append(block)

    skip = {ln for c in suppressed for ln in range(c.start_line, c.end_line + 1)}
    whole = "\n".join(line for ln, line in enumerate(lines, 1) if ln not in skip).strip()
    if not whole:
        return suppressed
    if not blocks or count_tokens(whole) <= max_code_tokens:
        resource = judged[0].address if len(judged) == 1 else None
        return [Chunk(1, max(n_lines, 1), resource, whole), *suppressed]
    chunks = [
        Chunk(b.start_line, b.end_line, b.address, "\n".join(lines[b.start_line - 1 : b.end_line]))
        for b in judged
    ]
    return sorted(chunks + suppressed, key=lambda c: c.start_line)
