"""The data set card (`dataset_card.json`): counts, label shares, scanner agreement, lengths.

`build_card` assembles it from what `build_dataset` computed, one small function per section;
`reason_kind` and `approx_token_count` are the two pieces others use on their own.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from axon_infralinter.data import scanner
from axon_infralinter.data.corpus import MANIFEST_NAME, Skipped
from axon_infralinter.data.labelled import PROVIDER_PREFIXES, Labelled
from axon_infralinter.data.prompt import build_prompt, build_target
from axon_infralinter.data.split import SPLITS, Split
from axon_infralinter.files import sha256_bytes, sha256_file
from axon_infralinter.schema import Tool, label_to_int

__all__ = ["approx_token_count", "build_card", "insecure_share", "label_stats", "reason_kind"]

_APPROX_TOKEN = re.compile(r"[A-Za-z]+|\d|[^\sA-Za-z\d]|\s+")
#: Percentiles of the token lengths the card reports.
LENGTH_PERCENTILES = (50, 90, 95, 99)


def approx_token_count(text: str) -> int:
    """A tokenizer-free proxy for BPE token counts of code: letter runs, digits, symbols, spaces."""
    return len(_APPROX_TOKEN.findall(text))


def reason_kind(reason: str) -> str:
    """The kind of a skip reason: the text before its first colon."""
    return reason.split(":", 1)[0]


def insecure_share(labels: Sequence[str]) -> float | None:
    """Share of INSECURE among `labels`, to 4 places; None for no labels."""
    return round(sum(1 for x in labels if x == "INSECURE") / len(labels), 4) if labels else None


def label_stats(labels: Sequence[str]) -> dict[str, Any]:
    """Count, SECURE, INSECURE and INSECURE share of `labels`."""
    return {
        "count": len(labels),
        "SECURE": sum(1 for x in labels if x == "SECURE"),
        "INSECURE": sum(1 for x in labels if x == "INSECURE"),
        "insecure_share": insecure_share(labels),
    }


def _kappa(a: Sequence[int], b: Sequence[int]) -> float | None:
    """Cohen's kappa; None where undefined (no items, or both raters constant and equal)."""
    if not a or (len(set(a)) == 1 and set(a) == set(b)):
        return None
    from sklearn.metrics import cohen_kappa_score  # slow to import; only the card needs it

    value = float(cohen_kappa_score(a, b))
    return None if math.isnan(value) else round(value, 4)


def build_card(
    *,
    config: Mapping[str, Any],
    corpus: Path,
    policy: str,
    fractions: tuple[float, float, float],
    labelled: Sequence[Labelled],
    by_split: Mapping[Split, Sequence[int]],
    sizes_before_near_dup: Mapping[str, int],
    split_of_repo: Mapping[str, Split],
    files: Mapping[str, Any],
    counts: Mapping[str, int],
    versions: Mapping[str, set[str]],
    skipped: Sequence[Skipped],
    count_tokens: Callable[[str], int] | None,
    timings: Mapping[str, float],
) -> dict[str, Any]:
    """The data set card, as `build_dataset` returns and writes it.

    Args:
        config: The data set config as JSON (paths as strings).
        corpus: Corpus folder.
        policy: Label policy, a key of `scanner.POLICIES`.
        fractions: Target shares of train, val, test.
        labelled: Every labelled file; `by_split` indexes into it.
        by_split: Indexes of the kept files of each split.
        sizes_before_near_dup: Files per split before near-duplicates were dropped.
        split_of_repo: repository -> split.
        files: The files written: split name or `findings` -> {path, sha256[, count]}.
        counts: Files found, readable, unique and scanned.
        versions: tool -> every version that scanned a file.
        skipped: Every file left out, with its reason.
        count_tokens: Tokenizer of the length percentiles; None: `approx_token_count`.
        timings: Seconds per step.
    """
    kept = [i for s in SPLITS for i in by_split[s]]
    return {
        "config": dict(config),
        "corpus": {"path": str(corpus), **_corpus_fingerprint(corpus, labelled)},
        "policy": {
            "name": scanner.POLICIES[policy].name,
            "description": scanner.POLICIES[policy].description,
        },
        "scanners": {tool: sorted(v) for tool, v in sorted(versions.items())},
        "counts": {
            **counts,
            "labelled": len(labelled),
            "kept": len(kept),
            "skipped": len(skipped),
        },
        "insecure_share_all_labelled": insecure_share([x.label for x in labelled]),
        "splits": _split_stats(labelled, by_split, fractions, sizes_before_near_dup, split_of_repo),
        "providers": _provider_stats(labelled, by_split, kept),
        "scanner_agreement": _scanner_agreement(labelled, kept, policy),
        "token_lengths": _token_lengths(labelled, kept, count_tokens),
        "files": dict(files),
        "timings": dict(timings),
        "skipped_by_kind": dict(sorted(Counter(reason_kind(s.reason) for s in skipped).items())),
        "skipped": [
            {"path": s.path, "reason": s.reason} for s in sorted(skipped, key=lambda s: s.path)
        ],
    }


def _corpus_fingerprint(corpus: Path, labelled: Sequence[Labelled]) -> dict[str, str]:
    """The manifest's hash, or without one the hash of the scanned files' sorted hashes."""
    manifest = corpus / MANIFEST_NAME
    if manifest.is_file():
        return {"kind": "MANIFEST.csv", "sha256": sha256_file(manifest)}
    hashes = "\n".join(sorted(x.file.sha256 for x in labelled))
    return {"kind": "sorted sha256 of the scanned files", "sha256": sha256_bytes(hashes.encode())}


def _split_stats(
    labelled: Sequence[Labelled],
    by_split: Mapping[Split, Sequence[int]],
    fractions: tuple[float, float, float],
    sizes_before_near_dup: Mapping[str, int],
    split_of_repo: Mapping[str, Split],
) -> dict[str, Any]:
    """Per split: label stats, target and actual share, size before near-dup, repositories."""
    total = sum(len(by_split[s]) for s in SPLITS)
    splits: dict[str, Any] = {}
    for s, target in zip(SPLITS, fractions, strict=True):
        labels = [labelled[i].label for i in by_split[s]]
        splits[s] = {
            **label_stats(labels),
            "target_fraction": target,
            "fraction": round(len(labels) / total, 4) if total else None,
            "before_near_dup": sizes_before_near_dup[s],
            "repos": sorted(r for r, rs in split_of_repo.items() if rs == s),
        }
    return splits


def _provider_stats(
    labelled: Sequence[Labelled], by_split: Mapping[Split, Sequence[int]], kept: Sequence[int]
) -> dict[str, Any]:
    """Per cloud provider: label stats of all kept files and of each split."""
    providers: dict[str, Any] = {}
    for p in (*PROVIDER_PREFIXES, "other"):
        entry = {
            "all": label_stats([labelled[i].label for i in kept if labelled[i].file.provider == p])
        }
        for s in SPLITS:
            entry[s] = label_stats(
                [labelled[i].label for i in by_split[s] if labelled[i].file.provider == p]
            )
        providers[p] = entry
    return providers


def _scanner_agreement(
    labelled: Sequence[Labelled], kept: Sequence[int], policy: str
) -> dict[str, Any]:
    """How far Checkov-only and tfsec-only labels of the kept files agree."""

    def labels_of(tool: Tool) -> list[int]:
        return [
            label_to_int(scanner.apply_policy(labelled[i].results, policy, tools=(tool,))[0])
            for i in kept
        ]

    checkov, tfsec = labels_of("checkov"), labels_of("tfsec")
    total = len(kept)
    agreement = (
        round(sum(x == y for x, y in zip(checkov, tfsec, strict=True)) / total, 4)
        if total
        else None
    )
    return {
        "cohen_kappa": _kappa(checkov, tfsec),
        "agreement": agreement,
        "checkov_insecure_share": insecure_share(
            [("INSECURE" if x else "SECURE") for x in checkov]
        ),
        "tfsec_insecure_share": insecure_share([("INSECURE" if x else "SECURE") for x in tfsec]),
    }


def _token_lengths(
    labelled: Sequence[Labelled], kept: Sequence[int], count_tokens: Callable[[str], int] | None
) -> dict[str, Any]:
    """Percentiles and maximum of the prompt + target length of the kept files, in tokens."""
    tok = count_tokens or approx_token_count
    lengths = np.array(
        [
            tok(build_prompt(x.file.text) + "\n\n" + build_target(x.label, x.relevant))
            for x in (labelled[i] for i in kept)
        ]
        or [0]
    )
    # a plain function names itself; a partial or callable object has no __name__
    name = getattr(count_tokens, "__name__", "custom") if count_tokens else "approx_token_count"
    return {
        "tokenizer": name,
        **{f"p{q}": int(np.ceil(np.percentile(lengths, q))) for q in LENGTH_PERCENTILES},
        "max": int(lengths.max()),
    }
