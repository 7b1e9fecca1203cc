"""The units the model judges: a whole file when it fits the code budget, else block by block.

Training (`data.chunks`), evaluation (`models.predict.Predictor.document_pieces`) and `axon scan`
(`lint.scan`) all cut files here, so the model is trained on the units it is later asked about.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from axon_infralinter.terraform.blocks import Block, count_lines, find_suppressions, split_blocks
from axon_infralinter.terraform.lexer import strip_comments

CONTEXT_KINDS = frozenset({"variable", "output", "locals", "terraform"})
"""Top-level block types that no Checkov or Trivy rule inspects on their own: inputs, outputs,
local values and settings. None of the 13,469 findings Checkov and Trivy report on the 2,957
corpus files with a resource (most of which declare such blocks too) is on one, yet on the
corpus's 6,981 files chunks of only these blocks hold 39% of the tokens `axon scan` would judge
(18,738 of 32,319 chunks). Providers, modules and data sources are inspected, so not here."""


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
    context_only: bool = False
    """True when every block it holds is of a `CONTEXT_KINDS` type: nothing a scanner rule
    inspects, so `axon scan` reports it SECURE without a model call (training and evaluation
    judge it as any other chunk)."""


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
    suppressed, judged = _suppressed_and_judged(blocks, find_suppressions(text))

    skip = {ln for c in suppressed for ln in range(c.start_line, c.end_line + 1)}
    whole = "\n".join(line for ln, line in enumerate(lines, 1) if ln not in skip).strip()
    if not whole:
        return suppressed
    if not blocks or count_tokens(whole) <= max_code_tokens:
        resource = judged[0].address if len(judged) == 1 else None
        context = bool(judged) and all(b.kind in CONTEXT_KINDS for b in judged)
        return [
            Chunk(1, max(n_lines, 1), resource, whole, context_only=context),
            *suppressed,
        ]
    chunks = [
        Chunk(
            b.start_line,
            b.end_line,
            b.address,
            "\n".join(lines[b.start_line - 1 : b.end_line]),
            context_only=b.kind in CONTEXT_KINDS,
        )
        for b in judged
    ]
    return sorted(chunks + suppressed, key=lambda c: c.start_line)


def _suppressed_and_judged(
    blocks: list[Block], suppressions: dict[int, str]
) -> tuple[list[Chunk], list[Block]]:
    """Blocks holding an `axon:ignore` line become suppressed chunks; the others are judged."""
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
    return suppressed, judged
