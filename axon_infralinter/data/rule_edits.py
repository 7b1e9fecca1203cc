"""Which attribute a scanner rule inspects, and which values pass or fail it: from Checkov itself.

Checkov's value checks say what they inspect in their metadata, so rule-directed edits need no
list written by hand:
- `BaseResourceValueCheck`: `get_inspected_key()` (e.g. `vpc_config/[0]/endpoint_public_access`)
  must hold one of `get_expected_values()`; `ANY_VALUE` there means "must be present". When the key
  is absent the check returns its `missing_block_result` (usually FAILED).
- `BaseResourceNegativeValueCheck`: the key must not hold one of `get_forbidden_values()`
  (`ANY_VALUE`: must be absent); absent gives `missing_attribute_result` (usually PASSED).

Only the label policy's counted rules are read (`scanner.security_core_ids` for `security-core`).
A check that overrides `scan_resource_conf` without calling the value check's logic or reading
its own metadata (e.g. CloudFront's TLS check, whose metadata names `[True]` for a protocol
version and which tests a regex) is left out: its metadata does not describe what it tests.

Trivy's rules are Rego policies compiled into the `trivy` binary; their metadata (id, title,
severity) names no attribute or value, so no rule-directed edit is derived from them. Trivy still
labels every variant.

Values the metadata cannot give (a failing string for an expected-value check, a present value for
an `ANY_VALUE` key, whether a key is a block) come from the corpus: `Vocabulary` counts how the
resource blocks of the data set write each key (`terraform.edit.walk`).
"""

from __future__ import annotations

import functools
import inspect
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from axon_infralinter.terraform import edit
from axon_infralinter.terraform.edit import KeyPath, Scalar

RuleKind = Literal["value", "negative"]
Op = Literal["keep", "set", "delete", "block"]
MAX_VALUE_CHARS = 120
"""Longest corpus value (one line) used as an edit's value."""
MAX_BODY_LINES = 8
"""Longest corpus block body used when a block must be inserted."""


@dataclass(frozen=True)
class RuleEdit:
    """What one Checkov value check inspects and which values pass it."""

    rule_id: str
    resource_types: tuple[str, ...]
    key: str
    """The inspected key as Checkov writes it (`vpc_config/[0]/endpoint_public_access`)."""
    path: KeyPath
    """The key's names without list indexes (`("vpc_config", "endpoint_public_access")`)."""
    kind: RuleKind
    values: tuple[Any, ...]
    """Expected values (kind "value") or forbidden values (kind "negative"), `ANY_VALUE` dropped."""
    any_value: bool
    """`ANY_VALUE` was among them: any present value passes ("value") or fails ("negative")."""
    missing_passes: bool
    """The check passes when the key is absent."""

    @property
    def attribute(self) -> str:
        """The key as a slash-joined path of names (`vpc_config/endpoint_public_access`)."""
        return "/".join(self.path)

    def passes(self, value: Scalar) -> bool:
        """Whether a literal value passes the check (Checkov also accepts `str(value)`)."""
        hit = value in self.values or (not isinstance(value, str) and str(value) in self.values)
        if self.kind == "value":
            return self.any_value or hit
        return not self.any_value and not hit


@dataclass(frozen=True)
class Setting:
    """How an edit leaves one key: as it is, set to an expression, deleted, or inserted as a block."""

    op: Op
    value: str | None = None
    """HCL expression (op "set") or the block's body lines joined by newlines (op "block")."""


@dataclass
class Catalog:
    """The counted value checks, by resource type, and why other counted checks were left out."""

    by_type: dict[str, list[RuleEdit]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    """Rule id -> reason it gives no edit."""
    inspected: dict[str, set[str]] = field(default_factory=dict)
    """Resource type -> top-level keys some counted check names (inspected or evaluated keys)."""

    @property
    def rules(self) -> list[RuleEdit]:
        """Every usable rule once."""
        seen: dict[str, RuleEdit] = {}
        for rules in self.by_type.values():
            for rule in rules:
                seen.setdefault(rule.rule_id, rule)
        return list(seen.values())


def key_path(key: str) -> KeyPath:
    """Checkov's JSONPath-like key without its list indexes: `a/[0]/b/[0]` -> ("a", "b")."""
    return tuple(p for p in key.split("/") if p and not p.strip("[]").isdigit())


@functools.cache
def _checkov_checks() -> dict[str, Any]:
    """Every Checkov Terraform resource check, by id (imports Checkov: ~2 s, no subprocess)."""
    from checkov.terraform.checks.resource.registry import resource_registry

    return {c.id: c for checks in resource_registry.checks.values() for c in checks}


def checkov_check_ids() -> set[str]:
    """Ids of every installed Checkov Terraform resource check."""
    return set(_checkov_checks())


def read_catalog(counted: Iterable[str]) -> Catalog:
    """The value checks among `counted` rule ids, read from the installed Checkov.

    Args:
        counted: Rule ids the label policy counts (`scanner.security_core_ids()`).

    Returns:
        Usable rules by resource type, and the reason each other counted Checkov resource check
        gives no edit (rules of other scanners and graph checks are not listed).
    """
    from checkov.common.models.consts import ANY_VALUE
    from checkov.common.models.enums import CheckResult
    from checkov.terraform.checks.resource.base_resource_negative_value_check import (
        BaseResourceNegativeValueCheck,
    )
    from checkov.terraform.checks.resource.base_resource_value_check import (
        BaseResourceValueCheck,
    )

    catalog = Catalog()
    checks = _checkov_checks()
    for rule_id in sorted(set(counted) & checks.keys()):
        check = checks[rule_id]
        _note_inspected(catalog, check)
        if isinstance(check, BaseResourceNegativeValueCheck):
            kind: RuleKind = "negative"
            base: type = BaseResourceNegativeValueCheck
            raw = list(check.get_forbidden_values())
            missing_passes = check.missing_attribute_result == CheckResult.PASSED
        elif isinstance(check, BaseResourceValueCheck):
            kind, base = "value", BaseResourceValueCheck
            raw = list(check.get_expected_values())
            missing_passes = check.missing_block_result == CheckResult.PASSED
        else:
            catalog.skipped[rule_id] = "not a value check (custom scan logic)"
            continue
        reason = _unusable(check, base, raw)
        if reason:
            catalog.skipped[rule_id] = reason
            continue
        key = str(check.get_inspected_key())
        rule = RuleEdit(
            rule_id=rule_id,
            resource_types=tuple(check.supported_resources),
            key=key,
            path=key_path(key),
            kind=kind,
            values=tuple(v for v in raw if v != ANY_VALUE),
            any_value=ANY_VALUE in raw,
            missing_passes=missing_passes,
        )
        for rtype in rule.resource_types:
            catalog.by_type.setdefault(rtype, []).append(rule)
    return catalog


def _note_inspected(catalog: Catalog, check: Any) -> None:
    """Record the top-level keys a check names, so neutral edits can keep away from them."""
    try:
        keys = [str(k) for k in check.get_evaluated_keys() or []]
    except Exception:  # a third-party helper; a failure only loses a hint
        keys = []
    names = {key_path(k)[0] for k in keys if key_path(k)}
    for rtype in check.supported_resources:
        catalog.inspected.setdefault(rtype, set()).update(names)


_USES_METADATA = (
    "super().scan_resource_conf",
    "self.get_inspected_key()",
    "self.get_expected_value",
    "self.get_forbidden_values()",
)
"""Calls that show an overriding `scan_resource_conf` still tests the check's own metadata."""


def _unusable(check: Any, base: type, raw: Sequence[Any]) -> str | None:
    """Why a value check's metadata cannot drive an edit (None when it can)."""
    key = check.get_inspected_key()
    if not isinstance(key, str) or not key_path(key):
        return "no inspected key"
    if not raw:
        return "no expected or forbidden values"
    own = type(check).scan_resource_conf
    if own is not base.scan_resource_conf:  # type: ignore[attr-defined]
        source = inspect.getsource(own)
        if not any(use in source for use in _USES_METADATA):
            return "custom scan logic that does not use its metadata"
    return None


# --------------------------------------------------------------------------------------------
# Corpus vocabulary


@dataclass
class Vocabulary:
    """How the corpus writes each (resource type, key path): as a block or attribute, and values."""

    kinds: dict[tuple[str, KeyPath], Counter[str]] = field(default_factory=dict)
    values: dict[tuple[str, KeyPath], Counter[str]] = field(default_factory=dict)
    bodies: dict[tuple[str, KeyPath], Counter[str]] = field(default_factory=dict)
    names: dict[str, Counter[str]] = field(default_factory=dict)
    """Resource type -> block name labels seen."""

    def add(self, rtype: str, text: str) -> None:
        """Count the keys of one resource block of type `rtype`."""
        try:
            block = edit.top_block(text)
            items = list(edit.walk(text))
        except edit.EditError:
            return
        if len(block.labels) >= 2:
            self.names.setdefault(rtype, Counter())[block.labels[-1]] += 1
        for path, st, _ in items:
            key = (rtype, path)
            self.kinds.setdefault(key, Counter())[st.kind] += 1
            if st.kind == "attribute":
                value = text[st.inner_start : st.inner_end]
                if "\n" not in value and len(value) <= MAX_VALUE_CHARS:
                    self.values.setdefault(key, Counter())[value] += 1
            else:
                body = _dedent(text[st.inner_start : st.inner_end])
                if len(body) <= MAX_BODY_LINES:
                    self.bodies.setdefault(key, Counter())["\n".join(body)] += 1

    def is_block(self, rtype: str, path: KeyPath) -> bool:
        """Whether the corpus writes this key as a block more often than as an attribute."""
        seen = self.kinds.get((rtype, path), Counter())
        return seen["block"] > seen["attribute"]

    def literals(self, rtype: str, path: KeyPath) -> list[tuple[str, Scalar]]:
        """Literal values written for the key, most common first, as (expression, value)."""
        out: list[tuple[str, Scalar]] = []
        for expr, _ in self.values.get((rtype, path), Counter()).most_common():
            value = edit.parse_literal(expr)
            if value is not None:
                out.append((expr, value))
        return out

    def common_value(self, rtype: str, path: KeyPath) -> str | None:
        """The most common expression written for the key (literal or not)."""
        counts = self.values.get((rtype, path))
        return counts.most_common(1)[0][0] if counts else None

    def common_body(self, rtype: str, path: KeyPath) -> str | None:
        """The most common body of the key's block (lines joined), None when never seen."""
        counts = self.bodies.get((rtype, path))
        return counts.most_common(1)[0][0] if counts else None


def _dedent(body: str) -> list[str]:
    lines = [line.rstrip() for line in body.split("\n") if line.strip()]
    if not lines:
        return []
    cut = min(len(line) - len(line.lstrip()) for line in lines)
    return [line[cut:] for line in lines]


# --------------------------------------------------------------------------------------------
# Choosing values


def current(text: str, rule: RuleEdit) -> tuple[Literal["absent", "attribute", "block"], str]:
    """How the block now holds the rule's key, and the attribute's expression."""
    st = edit.find(text, rule.path)
    if st is None:
        return "absent", ""
    if st.kind == "block":
        return "block", ""
    return "attribute", text[st.inner_start : st.inner_end]


def passing(text: str, rtype: str, rule: RuleEdit, vocab: Vocabulary) -> Setting | None:
    """How to make the rule pass on `text` (op "keep" when it already does); None: no way known."""
    state, expr = current(text, rule)
    literal = edit.parse_literal(expr) if state == "attribute" else None
    if rule.kind == "value" and rule.any_value:
        if state == "block" or (state == "attribute" and expr.strip() not in ('""', "null")):
            return Setting("keep")
        return _present(rtype, rule, vocab)
    if literal is not None and rule.passes(literal):
        return Setting("keep")
    if rule.kind == "negative" and rule.missing_passes and (rule.any_value or state == "block"):
        return Setting("keep") if state == "absent" else Setting("delete")
    value = _passing_value(rtype, rule, vocab)
    if value is not None:
        return Setting("set", value)
    if rule.missing_passes:
        return Setting("keep") if state == "absent" else Setting("delete")
    return None


def _passing_value(rtype: str, rule: RuleEdit, vocab: Vocabulary) -> str | None:
    if rule.kind == "value":
        return edit.hcl_value(rule.values[0]) if rule.values else None
    bools = [v for v in rule.values if isinstance(v, bool)]
    if bools and (not bools[0]) not in rule.values:
        return edit.hcl_value(not bools[0])
    for expr, value in vocab.literals(rtype, rule.path):
        if rule.passes(value):
            return expr
    return None


def failing(text: str, rtype: str, rule: RuleEdit, vocab: Vocabulary) -> list[Setting]:
    """The ways to make the rule fail on `text` (the clean variant), preferred first.

    A failing value (the boolean opposite, a forbidden value, a failing value the corpus writes)
    comes first; deleting the key comes too (or alone) when absence fails: both are one-key
    edits, and "the setting is missing" is how most real blocks fail. Empty when no way is known.
    """
    state, _ = current(text, rule)
    ways: list[Setting] = []
    if rule.kind == "negative":
        if rule.values:
            ways.append(Setting("set", edit.hcl_value(rule.values[0])))
        elif state == "absent":
            ways.append(_present(rtype, rule, vocab))
        return ways
    bools = [v for v in rule.values if isinstance(v, bool)]
    if bools and (not bools[0]) not in rule.values:
        ways.append(Setting("set", edit.hcl_value(not bools[0])))
    elif not rule.any_value:
        for expr, value in vocab.literals(rtype, rule.path):
            if not rule.passes(value):
                ways.append(Setting("set", expr))
                break
    if not rule.missing_passes and state != "absent":
        ways.append(Setting("delete"))
    return ways


def _present(rtype: str, rule: RuleEdit, vocab: Vocabulary) -> Setting:
    """A present value for the key, written as the corpus writes it."""
    if vocab.is_block(rtype, rule.path):
        return Setting("block", vocab.common_body(rtype, rule.path) or "")
    value = vocab.common_value(rtype, rule.path)
    return Setting("set", value if value is not None else f"var.{rule.path[-1]}")


def apply(text: str, rule: RuleEdit, setting: Setting, rtype: str, vocab: Vocabulary) -> str:
    """The text with the rule's key left as `setting` says.

    A block the key needs that the text lacks is inserted with the body the corpus most often
    gives it (`vpc_config` with its `subnet_ids`), then the key is set: a bare block with only the
    inspected key would be a shape no real configuration has.

    Raises:
        terraform.edit.EditError: the edit does not fit the text.
    """
    if setting.op == "keep":
        return text
    if setting.op == "delete":
        return edit.delete(text, rule.path)
    if setting.op == "block":
        if edit.find(text, rule.path) is not None:
            text = edit.delete(text, rule.path)
        body = setting.value.split("\n") if setting.value else []
        return edit.insert_block(text, rule.path, body)
    assert setting.value is not None  # op "set" always carries a value
    for depth in range(1, len(rule.path)):
        if edit.find(text, rule.path[:depth]) is None:
            body = vocab.common_body(rtype, rule.path[:depth])
            if body:
                text = edit.insert_block(text, rule.path[:depth], body.split("\n"))
            break
    return edit.set_attribute(text, rule.path, setting.value)
