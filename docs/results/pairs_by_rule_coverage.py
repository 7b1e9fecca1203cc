"""The pairwise score split by whether a pair's rule is covered by the training pairs.

A pair is `covered` when its rule (the edit's `rule_id`) has at least MIN_TRAIN training pairs.
Pair training can only teach rules it has pairs for. On the split of runs A-E the training
repositories hold few AWS blocks (224 of 7,153 resource blocks; val 1,124 of 1,280, test 1,095 of
1,974), so most val and test pairs are on rules with no training pair; this split says how much
of a pairwise score is bounded by coverage, not by the recipe.

    python docs/results/pairs_by_rule_coverage.py data/pairs test RUN_FILE... > out.json
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

MIN_TRAIN = 5


def broken_rules(path: Path) -> dict[str, str | None]:
    """pair_id -> the rule its broken member was edited to fail."""
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["role"] == "broken":
            out[row["pair_id"]] = row["edit"].get("rule_id")
    return out


def main(pairs_dir: Path, split: str, runs: list[Path]) -> dict:
    train = Counter(broken_rules(pairs_dir / "train.jsonl").values())
    rules = broken_rules(pairs_dir / f"{split}.jsonl")
    rows = []
    for path in runs:
        run = json.loads(path.read_text(encoding="utf-8"))
        members: dict[str, dict[str, float]] = {}
        for p in run["predictions"]:
            if p.get("pair_id") and p.get("role") in ("broken", "clean"):
                value = p["score"] if p.get("score") is not None else p.get("y_pred") or 0
                members.setdefault(p["pair_id"], {})[p["role"]] = float(value)
        groups: dict[str, list[float]] = {"covered": [], "uncovered": []}
        for pair_id, m in members.items():
            if len(m) < 2 or pair_id not in rules:
                continue
            d = m["broken"] - m["clean"]
            kind = "covered" if train.get(rules[pair_id], 0) >= MIN_TRAIN else "uncovered"
            groups[kind].append(1.0 if d > 0 else 0.5 if d == 0 else 0.0)
        rows.append(
            {
                "model": run["model"],
                "mode": run["mode"],
                **{
                    kind: {"pairs": len(v), "pairwise": sum(v) / len(v) if v else None}
                    for kind, v in groups.items()
                },
            }
        )
    return {"split": split, "min_train_pairs": MIN_TRAIN, "rows": rows}


if __name__ == "__main__":
    result = main(Path(sys.argv[1]), sys.argv[2], [Path(p) for p in sys.argv[3:]])
    sys.stdout.write(json.dumps(result, indent=2) + "\n")
