"""Minimal pairs: rule-directed edits of real resource blocks, each variant labelled by the scanners.

A model trained on whole files learns which resource *types* get flagged; a pair of blocks that
differ in one attribute, one INSECURE and one SECURE, asks it which *value* makes the difference.
Random one-attribute edits rarely touch what a rule inspects (4 verdict flips in 505 rescanned
edits), so the edits here come from the scanners themselves: Checkov's check metadata
(`data.rule_edits`), and, for rules no metadata describes (Trivy's Rego rules, Checkov's custom
and graph checks), the data set's own findings (`data.learned_edits`).

For each source block (`data.mutate_sources`: top-level resource blocks, one split per text):
1. **clean**: every inspected key of its type's counted value checks set to a passing value (kept
   when it passes); for a block with no value check, the learnt fixes of the rules failing it in
   its file (or the block as it is when none fails it). A clean variant still INSECURE is retried
   once with learnt fixes for the rules still firing.
2. **broken**, only for sources whose clean variant scans SECURE (only those can give a pair): per
   rule and way of failing it, the clean variant with exactly one key failing: the boolean
   opposite, a forbidden value, a failing value the corpus writes, or the key deleted when
   absence fails (value checks); a learnt fix undone; a learnt break applied.
3. **neutral**: edits that should not matter, applied to the source: its name label renamed, an
   attribute no counted check names changed or deleted, two attributes swapped.

Every variant (and each source) is scanned *alone* with the real scanners (`scanner.scan_texts`:
batched, cached by content hash, so a killed run resumes), and its label is the verdict on its own
text under the label policy, never the intended one. A pair (`pair_id`) is a broken variant that
scans INSECURE and its clean variant that scans SECURE; neutral variants carry no `pair_id`.

Variants inherit their source's repository, path and split; no source text is in two splits. The
values an edit writes (corpus vocabulary, learnt edits) are counted over the blocks of every split.

Output: `{out}/{train,val,test}.jsonl` (the Record contract plus `pair_id`, `source_id`, `role`,
`edit`; `schema.PairRecord`) and `{out}/pairs_card.json`.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from axon_infralinter.data import learned_edits, mutate_sources, rule_edits, scanner
from axon_infralinter.data.chunks import SPLITS
from axon_infralinter.data.learned_edits import Contrast, LearnedEdit
from axon_infralinter.data.mutate_card import Tally, build_card
from axon_infralinter.data.mutate_sources import Source
from axon_infralinter.data.prompt import build_prompt, build_target
from axon_infralinter.data.rule_edits import RuleEdit, Vocabulary
from axon_infralinter.errors import ConfigError
from axon_infralinter.executor import Executor
from axon_infralinter.files import atomic_write_json, write_jsonl
from axon_infralinter.schema import Finding, Label, Role, Tool
from axon_infralinter.terraform import edit


@dataclass
class MutateConfig:
    """What `build_pairs` reads and writes."""

    data: Path
    """Folder with the file-level train/val/test.jsonl (`axon dataset build`)."""
    corpus: Path
    """The corpus those records were built from."""
    out: Path
    """Output folder for the pair splits and `pairs_card.json`."""
    cache_dir: Path
    """Scanner result cache (`Settings.scan_cache`)."""
    policy: str = scanner.DEFAULT_POLICY
    """Label policy: which findings count, and so which checks are edited."""
    splits: Sequence[str] = SPLITS
    limit_sources: int | None = None
    """Try at most this many source blocks per split (a seeded sample); None: all."""
    neutral: bool = True
    """Also write the neutral variants (rename, attribute, reorder) of each pair's source."""
    learn: bool = True
    """Also use edits learnt from the data set's findings (`learned_edits`); False: metadata only."""
    workers: int = 1
    """Scanner processes at once."""
    batch_size: int = 100
    """Variants per scanner process."""
    seed: int = 0

    def __post_init__(self) -> None:
        if self.policy not in scanner.POLICIES:
            choices = ", ".join(scanner.POLICIES)
            raise ConfigError(f"--policy must be one of {choices}, got {self.policy!r}")
        if self.limit_sources is not None and self.limit_sources < 1:
            raise ConfigError(f"--limit-sources must be >= 1, got {self.limit_sources}")
        if self.workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {self.workers}")
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size must be >= 1, got {self.batch_size}")
        unknown = [s for s in self.splits if s not in SPLITS]
        if unknown or not self.splits:
            raise ConfigError(f"--splits must be among {', '.join(SPLITS)}, got {unknown}")


@dataclass
class Variant:
    """A text derived from a source, its edit and (once scanned) its scanners' results."""

    source: Source
    role: Role | None
    """None for the source itself (scanned, not written)."""
    text: str
    edit: dict[str, Any]
    rule: RuleEdit | None = None
    """The Checkov value check a broken variant fails."""
    learned: LearnedEdit | None = None
    """The learnt fix a broken variant undoes, or the learnt break it applies."""
    fixes: list[LearnedEdit] = field(default_factory=list)
    """The learnt fixes a clean variant carries."""
    results: dict[Tool, scanner.ToolResult] = field(default_factory=dict)

    @property
    def target_rule(self) -> str | None:
        """The rule a broken variant is meant to fail."""
        if self.rule is not None:
            return self.rule.rule_id
        return self.learned.rule_id if self.learned is not None else None

    def verdict(self, policy: str) -> tuple[Label, list[Finding]]:
        """The label policy's verdict on the variant's own text, and the findings it counted."""
        return scanner.apply_policy(self.results, policy)

    def counted_rules(self, policy: str) -> dict[str, Tool]:
        """Counted rules that fired on it -> their tool."""
        return {f["rule_id"]: f["tool"] for f in self.verdict(policy)[1]}

    @property
    def scan_error(self) -> str | None:
        """A scanner's error on this text (it could not parse it): then there is no verdict."""
        return next((r["error"] for r in self.results.values() if r["error"]), None)


_LEARNED_KIND = {"fix": "rule, learned fix undone", "break": "rule, learned break"}


def cloud(rtype: str) -> str:
    """The provider prefix of a resource type (`aws_s3_bucket` -> `aws`)."""
    return rtype.split("_", 1)[0]


def counted_checkov_ids(policy: str) -> set[str]:
    """Checkov resource check ids whose failure the label policy counts."""
    rule = scanner.POLICIES[policy].relevant
    return {
        check_id
        for check_id in rule_edits.checkov_check_ids()
        if rule(Finding(tool="checkov", rule_id=check_id, severity=None, resource="", path="",
                        start_line=0, end_line=0, title=""))
    }  # fmt: skip


def build_pairs(
    config: MutateConfig, progress: bool = False, executor: Executor | None = None
) -> dict[str, Any]:
    """Write the pair splits and `pairs_card.json`; returns the card.

    Args:
        config: What to read and write.
        progress: Show tqdm bars on stderr.
        executor: Where scanner batches run (`--engine dask`); None: `config.workers` threads.

    Raises:
        InputError: the data set folder or a split is missing or empty.
    """
    started = time.perf_counter()
    records = mutate_sources.read_splits(config.data, config.corpus, config.splits)
    catalog = rule_edits.read_catalog(counted_checkov_ids(config.policy))
    tally = Tally()
    found = mutate_sources.find_blocks(config.corpus, records, config.policy, tally, progress)
    sources = mutate_sources.choose_sources(
        found, catalog, tally, config.limit_sources, config.seed, config.learn
    )
    scan_config = scanner.ScanConfig(
        cache_dir=config.cache_dir,
        workers=config.workers,
        batch_size=config.batch_size,
        executor=executor,
    )
    first: list[tuple[Variant, Variant]] = []  # (the source as it is, its clean variant)
    for split_sources in sources.values():
        for source in tqdm(split_sources, desc="clean variants", disable=not progress):
            clean = _clean_variant(source, found, tally)
            if clean is not None:
                first.append((Variant(source, None, source.text, {}), clean))
    _scan([v for two in first for v in two], scan_config, progress)
    pending = _secure_cleans(first, config, found.contrast, scan_config, tally, progress)

    second: list[Variant] = []
    for _, clean in pending:
        second += _broken_variants(clean, found, tally)
        if config.neutral:
            inspected = catalog.inspected.get(clean.source.rtype, set())
            try:
                second += _neutral_variants(clean.source, found.vocab, inspected, config.seed)
            except edit.EditError as exc:
                tally.rule_unfit("neutral", f"edit does not fit: {exc}")
    _scan(second, scan_config, progress)

    by_source: dict[str, list[Variant]] = {}
    for variant in second:
        by_source.setdefault(variant.source.id, []).append(variant)
    rows: dict[str, list[dict[str, Any]]] = {split: [] for split in config.splits}
    for source_variant, clean in pending:
        variants = by_source.get(clean.source.id, [])
        rows[clean.source.split] += _source_rows(source_variant, clean, variants, config, tally)
    config.out.mkdir(parents=True, exist_ok=True)
    for split, split_rows in rows.items():
        write_jsonl(config.out / f"{split}.jsonl", split_rows)
    header = {"source_data": str(config.data), "corpus": str(config.corpus),
              "policy": config.policy, "seed": config.seed, "limit_sources": config.limit_sources,
              "learn": config.learn, "answer_format": "ids"}  # fmt: skip
    scanned = 2 * len(first) + tally.learned.n + len(second)
    card = build_card(header, catalog, tally, rows, scanned, started)
    atomic_write_json(config.out / "pairs_card.json", card)
    return card


def _secure_cleans(
    first: Sequence[tuple[Variant, Variant]],
    config: MutateConfig,
    contrast: Contrast,
    scan_config: scanner.ScanConfig,
    tally: Tally,
    progress: bool,
) -> list[tuple[Variant, Variant]]:
    """(source, clean) of each source whose clean variant scans SECURE, after learnt fixes.

    A clean variant still INSECURE and without learnt fixes yet gets those the contrast suggests
    for the rules still firing and is scanned again; the retry replaces it when SECURE.
    """
    policy = config.policy
    readable: list[tuple[Variant, Variant]] = []
    for source_variant, clean in first:
        if source_variant.scan_error or clean.scan_error:
            reason = "a scanner could not read the source or its clean variant"
            tally.skip(clean.source.split, reason)
        else:
            readable.append((source_variant, clean))
    retries: dict[str, Variant] = {}
    for _, clean in readable if config.learn else []:
        blockers = clean.counted_rules(policy)
        if not blockers or clean.fixes:
            continue
        avoid = {rule.path for rule in clean.source.rules}
        text, fixes = learned_edits.propose_fixes(
            clean.text, clean.source.rtype, blockers, contrast, avoid
        )
        if fixes:
            info = {
                **clean.edit,
                "changes": clean.edit["changes"] + [_learned_edit(f) for f in fixes],
            }
            retries[clean.source.id] = Variant(clean.source, "clean", text, info, fixes=fixes)
    _scan(list(retries.values()), scan_config, progress)
    out: list[tuple[Variant, Variant]] = []
    for source_variant, clean in readable:
        retry = retries.get(clean.source.id)
        if retry is not None:
            secure = not retry.scan_error and retry.verdict(policy)[0] == "SECURE"
            tally.learned_tried(secure)
            clean = retry if secure else clean
        label, _ = clean.verdict(policy)
        changed = [(c["rule_id"], "learned fix" if c.get("learned") else "clean")
                   for c in clean.edit["changes"]]  # fmt: skip
        fired = set(clean.counted_rules(policy))
        source = clean.source
        source_label = source_variant.verdict(policy)[0]
        tally.clean_scanned(source.split, source.rtype, changed, label, fired, source_label)
        if label == "SECURE":
            out.append((source_variant, clean))
    return out


def _setting_edit(rule: RuleEdit, setting: rule_edits.Setting) -> dict[str, Any]:
    return {"rule_id": rule.rule_id, "attribute": rule.attribute, "op": setting.op,
            "value": setting.value}  # fmt: skip


def _learned_edit(learned: LearnedEdit, broken: bool = False) -> dict[str, Any]:
    """The `edit` entry of a learnt edit: as set on the clean variant, or as its broken one."""
    value = learned.value
    if broken and learned.kind == "fix":
        value = learned.before
    op = "delete" if value is None else "set"
    return {"rule_id": learned.rule_id, "attribute": "/".join(learned.path), "op": op,
            "value": value, "learned": learned.kind, "tool": learned.tool,
            "support": learned.support}  # fmt: skip


def _clean_variant(source: Source, found: mutate_sources.Found, tally: Tally) -> Variant | None:
    """The source with its rules passing (see the module docstring); None when nothing fits."""
    if source.origin == "learned":
        if not source.fired:
            return Variant(source, "clean", source.text, {"kind": "clean", "changes": []})
        text, fixes = learned_edits.propose_fixes(
            source.text, source.rtype, source.fired, found.contrast, set()
        )
        if not fixes:
            tally.skip(source.split, "no learnt fix could be set")
            return None
        info = {"kind": "clean", "changes": [_learned_edit(f) for f in fixes]}
        return Variant(source, "clean", text, info, fixes=fixes)
    text, changes, usable = source.text, [], []
    done: set[tuple[str, ...]] = set()
    for rule in source.rules:
        if rule.path in done:
            usable.append(rule)  # another rule on the same key already set it
            continue
        try:
            setting = rule_edits.passing(text, source.rtype, rule, found.vocab)
            if setting is None:
                tally.rule_unfit(rule.rule_id, "no passing value known")
                continue
            text = rule_edits.apply(text, rule, setting, source.rtype, found.vocab)
        except edit.EditError as exc:
            tally.rule_unfit(rule.rule_id, f"edit does not fit: {exc}")
            continue
        done.add(rule.path)
        usable.append(rule)
        if setting.op != "keep":
            changes.append(_setting_edit(rule, setting))
    if not usable:
        tally.skip(source.split, "no rule's key could be edited")
        return None
    source.rules = usable
    return Variant(source, "clean", text, {"kind": "clean", "changes": changes})


def _broken_variants(clean: Variant, found: mutate_sources.Found, tally: Tally) -> list[Variant]:
    """Per rule and way of failing it, the clean text with exactly one key failing.

    Checkov's value checks fail by their metadata (`rule_edits.failing`); a learnt fix is undone;
    a learnt break is applied for each other rule that fails blocks of the type.
    """
    source, out = clean.source, []
    for rule in source.rules:
        ways = rule_edits.failing(clean.text, source.rtype, rule, found.vocab)
        if not ways:
            tally.rule_unfit(rule.rule_id, "no failing value known")
        for setting in ways:
            try:
                text = rule_edits.apply(clean.text, rule, setting, source.rtype, found.vocab)
            except edit.EditError as exc:
                tally.rule_unfit(rule.rule_id, f"edit does not fit: {exc}")
                continue
            info = {"kind": "rule", "tool": "checkov", **_setting_edit(rule, setting)}
            out.append(Variant(source, "broken", text, info, rule))
    avoid = {rule.path for rule in source.rules} | {fix.path for fix in clean.fixes}
    skip = {rule.rule_id for rule in source.rules} | {fix.rule_id for fix in clean.fixes}
    breaks = learned_edits.propose_breaks(clean.text, source.rtype, found.contrast, avoid, skip)
    for learned in [*clean.fixes, *breaks]:
        try:
            text = learned_edits.broken_text(clean.text, learned)
        except edit.EditError as exc:
            tally.rule_unfit(learned.rule_id, f"edit does not fit: {exc}")
            continue
        info = {"kind": "rule", **_learned_edit(learned, broken=True)}
        out.append(Variant(source, "broken", text, info, learned=learned))
    return out


def _neutral_variants(
    source: Source, vocab: Vocabulary, inspected: set[str], seed: int
) -> list[Variant]:
    """Edits that should not change the verdict: rename, an uninspected attribute, a swap."""
    rng = random.Random(f"{seed}:{source.id}")  # noqa: S311 (a reproducible choice)
    out: list[Variant] = []
    names = [
        n for n in vocab.names.get(source.rtype, {}) if n != edit.top_block(source.text).labels[-1]
    ]
    if names:
        name = rng.choice(sorted(names))
        out.append(_neutral(source, edit.rename(source.text, name), "rename", None, name))
    inspected = inspected | {rule.path[0] for rule in source.rules}
    attrs = [
        st for st in edit.body(source.text)
        if st.kind == "attribute" and st.name not in edit.META_ARGUMENTS
    ]  # fmt: skip
    free = [st for st in attrs if st.name not in inspected]
    if free:
        st = rng.choice(free)
        now = source.text[st.inner_start : st.inner_end]
        others = [e for e, _ in vocab.literals(source.rtype, (st.name,)) if e != now]
        if others and edit.parse_literal(now) is not None:
            text, op, value = (
                edit.set_attribute(source.text, (st.name,), others[0]),
                "change",
                others[0],
            )
        else:
            text, op, value = edit.delete(source.text, (st.name,)), "delete", None
        out.append(_neutral(source, text, op, st.name, value))
    if len(attrs) >= 2:
        a, b = rng.sample(attrs, 2)
        text = edit.swap(source.text, (a.name,), (b.name,))
        out.append(_neutral(source, text, "reorder", f"{a.name},{b.name}", None))
    return out


def _neutral(
    source: Source, text: str, op: str, attribute: str | None, value: str | None
) -> Variant:
    info = {"kind": "neutral", "op": op, "attribute": attribute, "value": value}
    return Variant(source, "neutral", text, info)


def _scan(variants: Sequence[Variant], config: scanner.ScanConfig, progress: bool) -> None:
    """Scan each variant's text alone (cached); results are stored on the variants."""
    if not variants:
        return
    items = [(v.source.path, v.text) for v in variants]
    for variant, result in zip(variants, scanner.scan_texts(items, config, progress), strict=True):
        variant.results = result


def _source_rows(
    source_variant: Variant,
    clean: Variant,
    variants: Sequence[Variant],
    config: MutateConfig,
    tally: Tally,
) -> list[dict[str, Any]]:
    """The pair and neutral records of one source whose clean variant scanned SECURE."""
    policy, rows = config.policy, []
    source_label, _ = source_variant.verdict(policy)
    source_rules = source_variant.counted_rules(policy)
    for variant in variants:
        if variant.scan_error:
            tally.scan_failed(variant.role or "source")
            continue
        label, _ = variant.verdict(policy)
        if variant.role == "broken":
            rule_id = variant.target_rule
            assert rule_id is not None  # every broken variant names its rule
            intended = rule_id in variant.counted_rules(policy)
            kind = "rule" if variant.learned is None else _LEARNED_KIND[variant.learned.kind]
            tally.broken_scanned(rule_id, variant.source.rtype, label, intended, kind)
            if label != "INSECURE":
                continue
            op, attribute = variant.edit["op"], variant.edit["attribute"]
            pair_id = f"{source_variant.source.id}|{rule_id}|{op}|{attribute}"
            clean_edit = {**clean.edit, "rule_id": rule_id}
            rows.append(_record(clean, policy, pair_id, clean_edit, f"{pair_id}|clean"))
            broken_edit = {**variant.edit, "intended": intended}
            rows.append(_record(variant, policy, pair_id, broken_edit, f"{pair_id}|broken"))
        else:
            intended = label == source_label and variant.counted_rules(policy) == source_rules
            tally.neutral_scanned(variant.edit["op"], variant.source.rtype, intended)
            info = {**variant.edit, "intended": intended, "source_label": source_label}
            rid = f"{source_variant.source.id}|neutral|{variant.edit['op']}"
            rows.append(_record(variant, policy, None, info, rid))
    return rows


def _record(
    variant: Variant, policy: str, pair_id: str | None, info: dict[str, Any], record_id: str
) -> dict[str, Any]:
    """A pair record (`schema.PairRecord`) of a scanned variant."""
    label, counted = variant.verdict(policy)
    findings = [f for r in variant.results.values() for f in r["findings"]]
    source = variant.source
    return {
        "id": record_id,
        "repo": source.repo,
        "path": source.path,
        "sha256": hashlib.sha256(variant.text.encode()).hexdigest(),
        "label": label,
        "input_text": build_prompt(variant.text, keep_comments=True),
        "target_text": build_target(label, counted, "ids"),
        "findings": findings,
        "pair_id": pair_id,
        "source_id": source.id,
        "role": variant.role,
        "edit": info,
        "resource_type": source.rtype,
    }
