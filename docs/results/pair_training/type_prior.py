"""How much of the training label a block's resource type gives away: the types whose training
blocks are never SECURE, and what the pairs add for them.

    python docs/results/pair_training/type_prior.py data/v2/chunks/train.jsonl data/v2/pairs/train.jsonl

A type is one-sided when at least MIN_BLOCKS single training examples declare it and none of them
is SECURE. A model that learns "this type is INSECURE" is right on every one of those examples,
and wrong on a secure block of that type, such as the secure examples in `examples/`. Per type,
also the SECURE pair members (clean variants) the pair data add. Writes JSON to stdout.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

MIN_BLOCKS = 3
RESOURCE = re.compile(r'resource\s+"([A-Za-z0-9_]+)"')


def _rows(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _label(row: dict[str, Any]) -> str:
    return "INSECURE" if row["target_text"].startswith("INSECURE") else "SECURE"


def _types(row: dict[str, Any]) -> set[str]:
    return set(RESOURCE.findall(row["input_text"]))


def by_type(rows: list[dict[str, Any]]) -> dict[str, Counter[str]]:
    """Per resource type: how many rows declaring it carry each label."""
    out: dict[str, Counter[str]] = defaultdict(Counter)
    for row in rows:
        for kind in _types(row):
            out[kind][_label(row)] += 1
    return out


def main(singles_path: Path, pairs_path: Path) -> dict[str, Any]:
    singles, pairs = _rows(singles_path), _rows(pairs_path)
    single_types, pair_types = by_type(singles), by_type(pairs)
    one_sided = sorted(
        (k for k, c in single_types.items() if c["SECURE"] == 0 and c["INSECURE"] >= MIN_BLOCKS),
        key=lambda k: -single_types[k]["INSECURE"],
    )
    insecure = [r for r in singles if _label(r) == "INSECURE"]
    held = sum(1 for r in insecure if _types(r) & set(one_sided))
    return {
        "min_blocks": MIN_BLOCKS,
        "single_examples": len(singles),
        "insecure_single_examples": len(insecure),
        "resource_types": len(single_types),
        "one_sided_types": len(one_sided),
        "insecure_examples_with_a_one_sided_type": held,
        "one_sided": {
            k: {
                "single_insecure": single_types[k]["INSECURE"],
                "pair_secure_members": pair_types.get(k, Counter())["SECURE"],
                "pair_insecure_members": pair_types.get(k, Counter())["INSECURE"],
            }
            for k in one_sided
        },
        "one_sided_types_with_no_secure_pair_member": sum(
            1 for k in one_sided if pair_types.get(k, Counter())["SECURE"] == 0
        ),
    }


if __name__ == "__main__":
    sys.stdout.write(json.dumps(main(Path(sys.argv[1]), Path(sys.argv[2])), indent=1) + "\n")
