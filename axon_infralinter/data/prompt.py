"""The one prompt: training, evaluation and `axon scan` all build model input here.

`input_text` = INSTRUCTION + the Terraform code (comments stripped by default, see
`terraform.lexer.strip_comments`; blank lines dropped) inside a fenced block + `Answer:`. Dropping the blank
lines makes a comment on a line of its own invisible to the model: stripping leaves its line empty,
and an empty line would still change the prompt (session 6: one injected note inside a block moved a
file across the threshold). Adapters up to run E were trained with the blank lines kept; run E
judges the validation split as well either way (ROC-AUC 0.873 without, 0.871 with). `target_text` = `SECURE`, or `INSECURE`
followed by up to 3 finding lines. Training joins them as `{input_text}\n\n{target_text}` (the
spec's format).

Two answer formats (`ANSWER_FORMATS`), chosen when the data set is built:
- `titles`: `- RULE_ID: title (resource)` (runs A-D, adapters trained before 2026-11-25). The model has to recall the scanner's wording
  of each rule: 80% of run D's validation loss was title tokens.
- `ids` (the default): `- RULE_ID (resource)`. The title is a function of the rule id, so `axon scan` looks it up
  in the scanners' catalog (`lint.rules.rule_title`) instead of having the model write it: the
  wording is then always the scanner's, and generation is shorter.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from axon_infralinter.schema import Finding, Label
from axon_infralinter.terraform.lexer import strip_comments

INSTRUCTION = (
    "You are a cloud security reviewer. Read the Terraform code below and answer SECURE if it has "
    "no security misconfiguration, or INSECURE followed by up to three findings."
)
CODE_OPEN = "\n\n```hcl\n"
CODE_CLOSE = "\n```\n\nAnswer:"
MAX_EXPLANATION_LINES = 3
AnswerFormat = Literal["titles", "ids"]
ANSWER_FORMATS: tuple[AnswerFormat, ...] = ("titles", "ids")


def build_prompt(code: str, keep_comments: bool = False) -> str:
    """Build `input_text` from Terraform code.

    Args:
        code: Terraform source text.
        keep_comments: Keep comments (default strips them: comments can carry prompt injection,
            and labels are computed on the stripped text). Blank lines are dropped either way.
    """
    body = code if keep_comments else strip_comments(code)
    body = "\n".join(line for line in body.split("\n") if line.strip()).strip()
    return f"{INSTRUCTION}{CODE_OPEN}{body}{CODE_CLOSE}"


def split_prompt(input_text: str) -> tuple[str, str, str]:
    """Split a prompt into (head, code, tail) so truncation can cut the code only."""
    start = input_text.find(CODE_OPEN)
    end = input_text.rfind(CODE_CLOSE)
    if start < 0 or end < start:
        return "", input_text, ""
    start += len(CODE_OPEN)
    return input_text[:start], input_text[start:end], input_text[end:]


def build_target(
    label: Label, findings: Sequence[Finding], answer_format: AnswerFormat = "ids"
) -> str:
    """Build `target_text`: the label, and for INSECURE up to 3 finding lines.

    `findings` are those the label policy counted; they are listed by line, then rule id, one line
    per rule id (the first resource it hit). `answer_format` "titles" writes
    `- RULE_ID: title (resource)`, "ids" writes `- RULE_ID (resource)`.
    """
    if answer_format not in ANSWER_FORMATS:
        raise ValueError(f"answer format must be one of {ANSWER_FORMATS}, got {answer_format!r}")
    if label == "SECURE":
        return "SECURE"
    lines = ["INSECURE"]
    seen: set[str] = set()
    for f in sorted(findings, key=lambda f: (f["start_line"], f["rule_id"], f["resource"])):
        if f["rule_id"] in seen:
            continue
        seen.add(f["rule_id"])
        title = f": {f['title']}" if answer_format == "titles" else ""
        lines.append(f"- {f['rule_id']}{title} ({f['resource']})")
        if len(lines) > MAX_EXPLANATION_LINES:
            break
    return "\n".join(lines)
