"""Stable rule ids of `axon scan` and the score -> SARIF level table.

Ids never change meaning and are never reused; a new kind of result gets a new id.

AXON001 insecure-terraform-block
    The fine-tuned model judged a Terraform block (or a whole short file) INSECURE: its
    P(INSECURE) is at or above the decision threshold. The result carries the score and, where the
    model gave one, a short explanation naming the likely misconfiguration. The model is a
    statistical judge trained on Checkov and tfsec labels, not a rule engine: read the block,
    fix it, or suppress it with `# axon:ignore <reason>` inside the block.

AXON900 unscannable-input
    A path could not be judged: missing, not UTF-8, binary, empty, over the size limit, unreadable,
    a link that leaves the scan root or loops, or invalid HCL. Reported as a tool execution
    notification (one line each), never as a finding; the rest of the input is still scanned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

SarifLevel = Literal["error", "warning", "note", "none"]

#: Where a SARIF viewer links the tool's name: the project has no public home page yet, so SARIF
#: logs leave `informationUri` out (it is optional in SARIF 2.1.0) until this is set.
INFORMATION_URI: str | None = None


@dataclass(frozen=True)
class Rule:
    """One stable rule id and its help text."""

    id: str
    """Stable id, e.g. `AXON001`."""
    name: str
    """Short kebab-case name, e.g. `insecure-terraform-block`."""
    short: str
    """One-line description."""
    help: str
    """What it means and what to do."""


INSECURE_BLOCK = Rule(
    id="AXON001",
    name="insecure-terraform-block",
    short="The model judged this Terraform block insecure.",
    help=(
        "The fine-tuned model's P(INSECURE) for this block is at or above the decision threshold. "
        "The explanation names the likely misconfiguration (public access, missing encryption, "
        "open ingress, ...). Fix the block, or skip it with `# axon:ignore <reason>` inside it."
    ),
)

UNSCANNABLE_INPUT = Rule(
    id="AXON900",
    name="unscannable-input",
    short="A path could not be scanned.",
    help=(
        "The path is missing, not UTF-8, binary, empty, larger than the size limit, unreadable, a "
        "link that leaves the scan root or loops, or invalid HCL. It was skipped; the rest of the "
        "input was scanned."
    ),
)

#: Result rules (SARIF `tool.driver.rules`), in ruleIndex order.
RULES: tuple[Rule, ...] = (INSECURE_BLOCK,)
#: Notification descriptors (SARIF `tool.driver.notifications`), in index order.
NOTIFICATIONS: tuple[Rule, ...] = (UNSCANNABLE_INPUT,)

#: P(INSECURE) -> SARIF level for an INSECURE block: the first row whose bound the score reaches.
LEVELS: tuple[tuple[float, SarifLevel], ...] = (
    (0.9, "error"),
    (0.0, "warning"),
)


def level_for(score: float) -> SarifLevel:
    """SARIF level of an INSECURE block with P(INSECURE) = `score` (see `LEVELS`)."""
    for bound, level in LEVELS:
        if score >= bound:
            return level
    return LEVELS[-1][1]


def descriptor(rule: Rule, level: SarifLevel = "warning") -> dict[str, Any]:
    """SARIF `reportingDescriptor` of a rule."""
    return {
        "id": rule.id,
        "name": rule.name,
        "shortDescription": {"text": rule.short},
        "fullDescription": {"text": rule.help},
        "help": {"text": rule.help},
        "defaultConfiguration": {"level": level},
    }
