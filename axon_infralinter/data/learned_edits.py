"""Edits learnt from the scanners' own verdicts, for rules whose metadata names no attribute.

Checkov's value checks say what they inspect (`data.rule_edits`); Trivy's Rego rules, Checkov's
custom checks and its graph checks do not. But the data set holds every file's findings with
their lines, so for each resource type we know which blocks a rule fails (a finding of it starts
inside the block) and which it passes. From those counts (`Contrast`):
- a **fix** for a rule is a setting (attribute path and expression) that at least `MIN_SUPPORT`
  blocks the rule passes write and no block it fails writes (`infrastructure_encryption_enabled =
  true` for Trivy's AZU-0061 on `azurerm_storage_account`);
- a **break** is the reverse: a setting at least `MIN_SUPPORT` failing blocks write and no passing
  block writes (`ingress/cidr_blocks = ["0.0.0.0/0"]`).

A fix is tried on a clean variant still INSECURE (its broken variant puts the key back as it
was); a break is applied to a clean variant that scans SECURE (its broken variant). Every variant
is scanned alone all the same, and its label is what the scanners say: these are proposals, and
the card reports how many did what was intended. Nothing here is written per rule or benchmark.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from axon_infralinter.schema import Tool
from axon_infralinter.terraform import edit
from axon_infralinter.terraform.edit import KeyPath

MIN_SUPPORT = 2
"""Blocks that must write a setting before it is proposed."""
PER_RULE = 2
"""Fixes set at once per rule still firing (the rescan keeps those that mattered)."""
MAX_VALUE_CHARS = 120
MAX_DISTINCT_SHARE = 0.5
"""A key whose values are mostly distinct across the blocks that write it (`name`, `description`)
names a block rather than configures it: it is never proposed as a fix (a clean variant would
carry another block's name). A break may set one (`policy_arn = AdministratorAccess`): it only
gives a pair when the scanners say the rule fires."""

Setting = tuple[KeyPath, str]
EditKind = Literal["fix", "break"]


@dataclass(frozen=True)
class LearnedEdit:
    """A setting proposed for a rule, and how the block held that key before it."""

    kind: EditKind
    rule_id: str
    tool: Tool
    path: KeyPath
    value: str
    """The expression the passing (fix) or failing (break) blocks write."""
    support: int
    """Blocks of the type that write it."""
    before: str | None
    """The key's expression before the edit (None: absent)."""


def settings_of(text: str) -> frozenset[Setting]:
    """Every single-line attribute of a block as (path, expression)."""
    try:
        items = list(edit.walk(text))
    except edit.EditError:
        return frozenset()
    out: set[Setting] = set()
    for path, st, _ in items:
        value = text[st.inner_start : st.inner_end]
        if st.kind == "attribute" and "\n" not in value and len(value) <= MAX_VALUE_CHARS:
            out.add((path, value))
    return frozenset(out)


@dataclass
class Contrast:
    """Blocks per resource type: their settings and the counted rules that fail them."""

    blocks: dict[str, list[tuple[frozenset[Setting], frozenset[str]]]] = field(default_factory=dict)
    tools: dict[str, Tool] = field(default_factory=dict)
    """Rule id -> the scanner that reports it."""
    values: dict[tuple[str, KeyPath], Counter[str]] = field(default_factory=dict)
    """(type, path) -> the expressions blocks write for it."""
    _cache: dict[tuple[str, str, EditKind], list[tuple[Setting, int]]] = field(default_factory=dict)

    def add(self, rtype: str, text: str, fired: dict[str, Tool]) -> None:
        """Record one block and the counted rules (-> tool) that fail it."""
        settings = settings_of(text)
        self.blocks.setdefault(rtype, []).append((settings, frozenset(fired)))
        self.tools.update(fired)
        for path, value in settings:
            self.values.setdefault((rtype, path), Counter())[value] += 1
        self._cache.clear()

    def rules(self, rtype: str) -> list[str]:
        """Counted rules that fail at least `MIN_SUPPORT` blocks of the type, most common first."""
        counts = Counter(rule for _, fired in self.blocks.get(rtype, []) for rule in fired)
        return [rule for rule, n in _most_common(counts) if n >= MIN_SUPPORT]

    def candidates(self, rtype: str, rule_id: str, kind: EditKind) -> list[tuple[Setting, int]]:
        """Fixes (settings of passing blocks only) or breaks (of failing ones), most common first."""
        key = (rtype, rule_id, kind)
        if key not in self._cache:
            own: Counter[Setting] = Counter()
            other: set[Setting] = set()
            for settings, fired in self.blocks.get(rtype, []):
                if (rule_id in fired) == (kind == "break"):
                    own.update(settings)
                else:
                    other |= settings
            self._cache[key] = [
                (s, n)
                for s, n in _most_common(own)
                if n >= MIN_SUPPORT
                and s not in other
                and (kind == "break" or self._configures(rtype, s[0]))
            ]
        return self._cache[key]

    def _configures(self, rtype: str, path: KeyPath) -> bool:
        """Whether the key's values repeat across blocks (see `MAX_DISTINCT_SHARE`)."""
        counts = self.values.get((rtype, path), Counter())
        return len(counts) <= MAX_DISTINCT_SHARE * sum(counts.values())


def _most_common(counts: Counter[Any]) -> list[tuple[Any, int]]:
    """Most common first, ties in sorted order: the same proposals in every run (sets of strings
    iterate in an order that changes with the interpreter's hash seed)."""
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def _usable(
    text: str, candidates: list[tuple[Setting, int]], avoid: set[KeyPath]
) -> list[tuple[Setting, int, str | None]]:
    """Candidates whose key is not avoided and not already at that value, with its value now."""
    out = []
    for (path, value), n in candidates:
        if path in avoid or path[0] in edit.META_ARGUMENTS:
            continue
        try:
            before = edit.value_text(text, path)
        except edit.EditError:
            continue
        if before != value:
            out.append(((path, value), n, before))
    return out


def propose_fixes(
    text: str, rtype: str, blockers: dict[str, Tool], contrast: Contrast, avoid: set[KeyPath]
) -> tuple[str, list[LearnedEdit]]:
    """The text with fixes set for every blocking rule that has some, and the fixes set.

    Args:
        text: A clean variant (or source) that still fails `blockers`.
        rtype: Its resource type.
        blockers: Counted rules failing it -> their tool.
        contrast: What the data set's blocks say.
        avoid: Paths the metadata-driven edits own.
    """
    fixes: list[LearnedEdit] = []
    taken = set(avoid)
    for rule_id, tool in sorted(blockers.items()):
        found = _usable(text, contrast.candidates(rtype, rule_id, "fix"), taken)
        for (path, value), support, before in found[:PER_RULE]:
            if path in taken:  # two candidates for one key: the more common one is set
                continue
            try:
                text = edit.set_attribute(text, path, value)
            except edit.EditError:
                continue
            taken.add(path)
            fixes.append(LearnedEdit("fix", rule_id, tool, path, value, support, before))
    return text, fixes


def propose_breaks(
    text: str, rtype: str, contrast: Contrast, avoid: set[KeyPath], skip: set[str]
) -> list[LearnedEdit]:
    """One break per rule that fails blocks of the type (and is not in `skip`), if it has one."""
    breaks = []
    for rule_id in contrast.rules(rtype):
        if rule_id in skip:
            continue
        found = _usable(text, contrast.candidates(rtype, rule_id, "break"), avoid)
        if found:
            (path, value), support, before = found[0]
            tool = contrast.tools[rule_id]
            breaks.append(LearnedEdit("break", rule_id, tool, path, value, support, before))
    return breaks


def broken_text(text: str, learned: LearnedEdit) -> str:
    """The clean text with the rule failing: a fix undone, or a break applied.

    Raises:
        terraform.edit.EditError: the key is not where it should be.
    """
    if learned.kind == "break":
        return edit.set_attribute(text, learned.path, learned.value)
    if learned.before is None:
        return edit.delete(text, learned.path)
    return edit.set_attribute(text, learned.path, learned.before)
