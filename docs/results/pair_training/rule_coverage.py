"""How the test pairs' rules are covered by training pairs, and the pairwise ceiling that implies.

    python docs/results/pair_training/rule_coverage.py data/v2/pairs/train.jsonl data/v2_noE/pairs/test.jsonl

A test pair is covered when its rule has at least MIN_TRAIN training pairs (as in
`compare_runs.py`). If the uncovered pairs stay at chance (0.5) while every covered pair is ranked
right, the pairwise score is at most (covered + uncovered / 2) / pairs: the ceiling printed last.
Writes JSON to stdout.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pairs_by_rule_coverage import MIN_TRAIN, broken_rules  # noqa: E402


def main(train_path: str, test_path: str) -> dict:
    train = Counter(broken_rules(Path(train_path)).values())
    test = Counter(broken_rules(Path(test_path)).values())
    uncovered = {rule: n for rule, n in test.items() if train.get(rule, 0) < MIN_TRAIN}
    n_pairs, n_uncovered = sum(test.values()), sum(uncovered.values())
    top = train.most_common(10)
    return {
        "min_train_pairs": MIN_TRAIN,
        "train_pairs": sum(train.values()),
        "train_rules": len(train),
        "train_share_of_top_10_rules": round(sum(n for _, n in top) / sum(train.values()), 3),
        "top_10_train_rules": dict(top),
        "test_pairs": n_pairs,
        "test_rules": len(test),
        "uncovered_test_rules": len(uncovered),
        "uncovered_test_pairs": n_uncovered,
        "test_pairs_with_no_training_pair": sum(n for r, n in uncovered.items() if r not in train),
        "uncovered_by_rule": dict(sorted(uncovered.items(), key=lambda kv: -kv[1])),
        "ceiling_if_uncovered_at_chance": round((n_pairs - n_uncovered / 2) / n_pairs, 3),
    }


if __name__ == "__main__":
    sys.stdout.write(json.dumps(main(sys.argv[1], sys.argv[2]), indent=1) + "\n")
