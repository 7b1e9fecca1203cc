"""The source blocks of the mutation stage: which top-level resource blocks are tried, and why not.

Every top-level `resource` block of a split's files (read from the corpus, comments stripped, as
`axon dataset chunks` cuts them) is a candidate. It is tried as a source when
- its type has counted Checkov value checks (`data.rule_edits`): origin `metadata`; or
- the blocks of the data set suggest an edit for it (`data.learned_edits`): a fix for every
  counted rule that fails it in its file, or, when none does, a break for some rule that fails
  other blocks of its type: origin `learned`.

A block text (whitespace-normalized) is a source in one split only, test first, then val, then
train, so no source text crosses splits. The counts of why blocks were not tried go to the card.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tqdm.auto import tqdm

from axon_infralinter.data import scanner
from axon_infralinter.data.chunks import FILE_RECORD_KEYS, corpus_path
from axon_infralinter.data.learned_edits import Contrast
from axon_infralinter.data.mutate_card import Tally
from axon_infralinter.data.rule_edits import Catalog, RuleEdit, Vocabulary
from axon_infralinter.errors import InputError
from axon_infralinter.schema import Tool, read_records
from axon_infralinter.terraform import edit
from axon_infralinter.terraform.blocks import split_blocks
from axon_infralinter.terraform.lexer import normalize_whitespace, strip_comments

Origin = Literal["metadata", "learned"]
PRIORITY = ("test", "val", "train")
"""The split that keeps a block text found in several (the test split's pairs are scored)."""


@dataclass
class Source:
    """One top-level resource block of a split, as the model would judge it alone."""

    split: str
    id: str
    """`{file record id}#L{start}-{end}`, the id `axon dataset chunks` gives the same block."""
    repo: str
    path: str
    rtype: str
    text: str
    fired: dict[str, Tool] = field(default_factory=dict)
    """Counted rules (-> tool) whose finding starts inside the block in its file's scan."""
    rules: list[RuleEdit] = field(default_factory=list)
    """The counted Checkov value checks of its type whose key it can take."""
    origin: Origin = "metadata"


def read_splits(data: Path, corpus: Path, splits: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """The file-level records of each split, checked before any work starts.

    Raises:
        InputError: the data set or corpus folder is missing, or a split is missing or empty.
    """
    if not data.is_dir():
        raise InputError(f"{data}: no such data set folder (run `axon dataset build`)")
    if not corpus.is_dir():
        raise InputError(f"{corpus}: no such corpus folder (pass --corpus)")
    records: dict[str, list[dict[str, Any]]] = {}
    for split in splits:
        path = data / f"{split}.jsonl"
        if not path.is_file():
            raise InputError(f"{path} not found: run `axon dataset build` first")
        rows = read_records(path, FILE_RECORD_KEYS)
        if not rows:
            raise InputError(f"{path}: empty split (no records)")
        records[split] = rows
    return records


@dataclass
class Found:
    """What reading the splits gives: the candidate blocks, the vocabulary and the contrast."""

    blocks: dict[str, list[Source]]
    vocab: Vocabulary = field(default_factory=Vocabulary)
    contrast: Contrast = field(default_factory=Contrast)


def find_blocks(
    corpus: Path,
    records: dict[str, list[dict[str, Any]]],
    policy: str,
    tally: Tally,
    progress: bool,
) -> Found:
    """Every top-level resource block of every split, with the counted rules its file's scan
    places inside it; the corpus vocabulary and the contrast are counted over all of them."""
    found = Found({split: [] for split in records})
    for split, rows in records.items():
        for record in tqdm(rows, desc=f"blocks of {split}", disable=not progress):
            text = _corpus_text(corpus, record, tally, split)
            if text is None:
                continue
            _, counted = scanner.apply_policy(record.get("findings", []), policy)
            lines = strip_comments(text).split("\n")
            for block in split_blocks(text):
                if block.kind != "resource" or len(block.labels) != 2:
                    continue
                code = "\n".join(lines[block.start_line - 1 : block.end_line])
                rtype = block.labels[0]
                fired = {f["rule_id"]: f["tool"] for f in counted
                         if block.start_line <= f["start_line"] <= block.end_line}  # fmt: skip
                found.vocab.add(rtype, code)
                found.contrast.add(rtype, code, fired)
                source_id = f"{record['id']}#L{block.start_line}-{block.end_line}"
                found.blocks[split].append(
                    Source(split, source_id, record["repo"], record["path"], rtype, code, fired)
                )
    return found


def choose_sources(
    found: Found,
    catalog: Catalog,
    tally: Tally,
    limit: int | None,
    seed: int,
    learn: bool,
) -> dict[str, list[Source]]:
    """The sources of each split (see the module docstring); at most `limit` per split."""
    sources: dict[str, list[Source]] = {}
    seen: set[str] = set()
    for split in sorted(found.blocks, key=PRIORITY.index):
        kept = [s for s in found.blocks[split] if _usable(s, found, catalog, seen, tally, learn)]
        if limit is not None and len(kept) > limit:
            rng = random.Random(f"{seed}:{split}")  # noqa: S311 (a reproducible sample)
            keep = set(rng.sample(range(len(kept)), limit))
            tally.skip(split, "over --limit-sources", len(kept) - len(keep))
            kept = [s for i, s in enumerate(kept) if i in keep]
        sources[split] = kept
        tally.tried(split, Counter(s.origin for s in kept))
    return {split: sources[split] for split in found.blocks}


def _usable(
    source: Source, found: Found, catalog: Catalog, seen: set[str], tally: Tally, learn: bool
) -> bool:
    """Whether a block is tried as a source (sets its `rules` and `origin`); counts why not."""
    tally.block(source.split, source.rtype)
    key = normalize_whitespace(source.text)
    if key in seen:
        tally.skip(source.split, "same block text already a source (this or an earlier split)")
        return False
    try:
        source.rules = [
            r
            for r in catalog.by_type.get(source.rtype, [])
            if not edit.has_dynamic(source.text, r.path)
        ]
    except edit.EditError as exc:
        tally.skip(source.split, f"block not understood: {exc}")
        return False
    if not source.rules:
        reason = _learnable(source, found.contrast) if learn else "no counted value check"
        if reason:
            tally.skip(source.split, reason)
            return False
        source.origin = "learned"
    seen.add(key)
    return True


def _learnable(source: Source, contrast: Contrast) -> str | None:
    """None when the contrast suggests an edit for the block, else why not."""
    if source.fired:
        lacking = [r for r in source.fired if not contrast.candidates(source.rtype, r, "fix")]
        return (
            "no counted value check, and no learnt fix for a rule failing it" if lacking else None
        )
    if any(contrast.candidates(source.rtype, r, "break") for r in contrast.rules(source.rtype)):
        return None
    return "no counted value check, and no learnt edit for its type"


def _corpus_text(corpus: Path, record: dict[str, Any], tally: Tally, split: str) -> str | None:
    """The record's corpus file (None, with a reason, when unreadable or changed)."""
    try:
        raw = corpus_path(corpus, record).read_bytes()
    except OSError as exc:
        tally.skip_file(split, f"unreadable: {exc.strerror}")
        return None
    if hashlib.sha256(raw).hexdigest() != record["sha256"]:
        tally.skip_file(split, "sha256 differs from record")
        return None
    return raw.decode("utf-8", errors="replace").replace("\r\n", "\n")
