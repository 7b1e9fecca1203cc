"""The card of the mutation stage: what was tried, what was skipped and why, what did as intended.

An edit did what was intended when:
- **rule** (a broken variant from Checkov's metadata), **rule, learned fix undone**, **rule,
  learned break**: the targeted rule fires on it (its clean variant scanned SECURE, so the rule
  does not fire there);
- **clean**, **learned fix**: the rule whose key it changed does not fire on the clean variant;
- **neutral**: the verdict and the set of counted rules are those of the source.

Shares are given by edit kind, by rule, and by cloud (the resource type's provider prefix).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from axon_infralinter.data.rule_edits import Catalog
from axon_infralinter.schema import Label

TRIVY_NOTE = (
    "no edits from Trivy's metadata: its rules are Rego policies embedded in the trivy binary, "
    "and what it reports offline (id, title, severity, cause lines) names no attribute or value "
    "to set; Trivy's rules get learnt edits instead (edit.learned = fix or break), and Trivy "
    "labels every variant"
)
LEARNED_NOTE = (
    "clean variants still INSECURE retried with fixes learnt from the data set's findings "
    "(settings that blocks the rule passes write and blocks it fails do not); intended = the "
    "retry scanned SECURE"
)
TOP = 30
"""How many rules the card lists where it lists the most frequent."""


def _cloud(rtype: str) -> str:
    return rtype.split("_", 1)[0]


def _share(hits: int, n: int) -> dict[str, Any]:
    return {"n": n, "intended": hits, "share": round(hits / n, 4) if n else None}


@dataclass
class _Count:
    n: int = 0
    hits: int = 0

    def add(self, hit: bool) -> None:
        self.n += 1
        self.hits += int(hit)

    def card(self) -> dict[str, Any]:
        return _share(self.hits, self.n)


@dataclass
class Tally:
    """Counts the stage gathers as it goes; `build_card` turns them into the card."""

    files_skipped: dict[str, Counter[str]] = field(default_factory=dict)
    blocks: dict[str, Counter[str]] = field(default_factory=dict)
    """Split -> cloud -> resource blocks seen."""
    skipped: dict[str, Counter[str]] = field(default_factory=dict)
    """Split -> reason -> source blocks not tried."""
    tried_sources: dict[str, Counter[str]] = field(default_factory=dict)
    """Split -> origin (metadata, learned) -> source blocks tried."""
    unfit: dict[str, Counter[str]] = field(default_factory=dict)
    """Rule id -> reason -> times its edit could not be made."""
    clean_secure: dict[str, Counter[str]] = field(default_factory=dict)
    """Split -> cloud -> sources whose clean variant scanned SECURE."""
    clean_insecure: dict[str, Counter[str]] = field(default_factory=dict)
    blocked_by: Counter[str] = field(default_factory=Counter)
    """Counted rules still firing on clean variants that scanned INSECURE."""
    source_labels: Counter[str] = field(default_factory=Counter)
    kinds: dict[str, _Count] = field(default_factory=dict)
    rules: dict[tuple[str, str], _Count] = field(default_factory=dict)
    """(edit kind, rule id) -> intended share."""
    clouds: dict[tuple[str, str], _Count] = field(default_factory=dict)
    """(edit kind, cloud) -> intended share."""
    neutral_ops: dict[str, _Count] = field(default_factory=dict)
    broken_insecure: Counter[str] = field(default_factory=Counter)
    """Rule id -> broken variants that scanned INSECURE (the pairs it gave)."""
    learned: _Count = field(default_factory=_Count)
    """Clean variants retried with learnt fixes, and how many then scanned SECURE."""
    unreadable: Counter[str] = field(default_factory=Counter)
    """Role -> variants a scanner could not read (no verdict, so not written)."""

    def learned_tried(self, secure: bool) -> None:
        """Count a clean variant retried with learnt fixes, and whether it then scanned SECURE."""
        self.learned.add(secure)

    def scan_failed(self, role: str) -> None:
        self.unreadable[role] += 1

    def block(self, split: str, rtype: str) -> None:
        self.blocks.setdefault(split, Counter())[_cloud(rtype)] += 1

    def skip(self, split: str, reason: str, n: int = 1) -> None:
        self.skipped.setdefault(split, Counter())[reason] += n

    def skip_file(self, split: str, reason: str) -> None:
        self.files_skipped.setdefault(split, Counter())[reason] += 1

    def tried(self, split: str, origins: Counter[str]) -> None:
        self.tried_sources[split] = origins

    def rule_unfit(self, rule_id: str, reason: str) -> None:
        self.unfit.setdefault(rule_id, Counter())[reason.split(":", 1)[0]] += 1

    def _intended(self, kind: str, rule_id: str | None, rtype: str, hit: bool) -> None:
        self.kinds.setdefault(kind, _Count()).add(hit)
        if rule_id is not None:
            self.rules.setdefault((kind, rule_id), _Count()).add(hit)
        self.clouds.setdefault((kind, _cloud(rtype)), _Count()).add(hit)

    def clean_scanned(
        self,
        split: str,
        rtype: str,
        changed: Sequence[tuple[str, str]],
        label: Label,
        fired: set[str],
        source_label: Label,
    ) -> None:
        """Count a scanned clean variant: its verdict, and each rule whose key it changed.

        Args:
            split: The source's split.
            rtype: The source's resource type.
            changed: (rule, edit kind: `clean` or `learned fix`) of each key the clean variant
                changed.
            label: The clean variant's verdict.
            fired: Counted rules that fired on it.
            source_label: The source's own verdict.
        """
        self.source_labels[source_label] += 1
        for rule_id, kind in changed:
            self._intended(kind, rule_id, rtype, rule_id not in fired)
        bucket = self.clean_secure if label == "SECURE" else self.clean_insecure
        bucket.setdefault(split, Counter())[_cloud(rtype)] += 1
        if label != "SECURE":
            self.blocked_by.update(fired)

    def broken_scanned(
        self, rule_id: str, rtype: str, label: Label, intended: bool, kind: str = "rule"
    ) -> None:
        """Count a scanned broken variant (`kind`: rule, learned fix undone, learned break)."""
        self._intended(kind, rule_id, rtype, intended)
        if label == "INSECURE":
            self.broken_insecure[rule_id] += 1

    def neutral_scanned(self, op: str, rtype: str, intended: bool) -> None:
        self._intended("neutral", None, rtype, intended)
        self.neutral_ops.setdefault(op, _Count()).add(intended)


def _split_card(tally: Tally, split: str, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    pairs = [r for r in rows if r["role"] == "broken"]
    by_cloud = Counter(_cloud(r["resource_type"]) for r in pairs)
    return {
        "files_skipped": dict(tally.files_skipped.get(split, {})),
        "resource_blocks": dict(tally.blocks.get(split, {})),
        "sources_tried": sum(tally.tried_sources.get(split, Counter()).values()),
        "sources_by_origin": dict(tally.tried_sources.get(split, Counter())),
        "sources_skipped": dict(tally.skipped.get(split, Counter()).most_common()),
        "clean_secure": dict(tally.clean_secure.get(split, {})),
        "clean_insecure": dict(tally.clean_insecure.get(split, {})),
        "pairs": len(pairs),
        "pairs_by_cloud": dict(by_cloud.most_common()),
        "pair_sources": len({r["source_id"] for r in pairs}),
        "pair_repos": len({r["repo"] for r in pairs}),
        "neutral": sum(1 for r in rows if r["role"] == "neutral"),
        "records": len(rows),
    }


def build_card(
    header: Mapping[str, Any],
    catalog: Catalog,
    tally: Tally,
    rows: Mapping[str, Sequence[Mapping[str, Any]]],
    variants_scanned: int,
    started: float,
) -> dict[str, Any]:
    """The `pairs_card.json` of a finished run; `header` (the run's settings) comes first."""
    by_rule: dict[str, dict[str, Any]] = {}
    for (kind, rule_id), count in sorted(tally.rules.items(), key=lambda kv: kv[0][1]):
        by_rule.setdefault(rule_id, {})[kind] = count.card()
    for rule_id, n in tally.broken_insecure.items():
        by_rule.setdefault(rule_id, {})["pairs"] = n
    for rule_id, reasons in tally.unfit.items():
        by_rule.setdefault(rule_id, {})["not_made"] = dict(reasons)
    by_cloud: dict[str, dict[str, Any]] = {}
    for (kind, name), count in sorted(tally.clouds.items()):
        by_cloud.setdefault(name, {})[kind] = count.card()
    seconds = time.perf_counter() - started
    return {
        **header,
        "rules": {
            "checkov_value_checks": len(catalog.rules),
            "resource_types": len(catalog.by_type),
            "checkov_checks_left_out": dict(sorted(catalog.skipped.items())),
            "trivy": TRIVY_NOTE,
        },
        "splits": {
            split: _split_card(tally, split, split_rows) for split, split_rows in rows.items()
        },
        "source_labels": dict(tally.source_labels),
        "intended": {
            "by_kind": {kind: count.card() for kind, count in sorted(tally.kinds.items())},
            "by_cloud": by_cloud,
            "neutral_by_op": {op: c.card() for op, c in sorted(tally.neutral_ops.items())},
            "by_rule": by_rule,
        },
        "clean_blocked_by": dict(tally.blocked_by.most_common(TOP)),
        "learned_fixes": {**tally.learned.card(), "what": LEARNED_NOTE},
        "variants_unreadable": dict(tally.unreadable),
        "variants_scanned": variants_scanned,
        "seconds": round(seconds, 1),
        "variants_per_second": round(variants_scanned / seconds, 3) if seconds else None,
    }
