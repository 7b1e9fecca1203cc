"""The pairwise (minimal-pair) score: does a judge rank the broken member of a pair above the fixed one?

A pair is two variants of one source block (`data.mutate`): `broken` (the scanners call it
INSECURE) and `clean` (SECURE), differing in the attributes a rule inspects. A judge that learnt
which resource types tend to be flagged, not which attribute values make them insecure, scores
both alike and lands at 0.5.

- pairwise score: the share of pairs whose broken member gets the higher score, ties counting one
  half. The score is P(INSECURE) for a model in score mode, the number of counted findings for a
  scanner, the predicted label (0/1) where a run has no scores (generate mode, the constant).
- both correct: the share of pairs where the run's verdicts are INSECURE for the broken member and
  SECURE for the clean one (at the run's own threshold).
- 95% CI: percentile bootstrap over repositories (a replicate draws as many repositories as the
  pairs come from, with replacement; `stats.cluster_counts`).

The run files of a pairs evaluation are ordinary eval runs over the pair members whose
predictions carry `pair_id` and `role`; they live in `<runs_dir>/pairs/`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from axon_infralinter.models.runs import repo_of, row_mode
from axon_infralinter.models.stats import cluster_counts
from axon_infralinter.schema import EvalRun

PAIRS_SUBDIR = "pairs"
"""Subfolder of a runs folder that holds the runs over pair members."""


def pair_outcomes(run: EvalRun) -> list[tuple[str, float, bool]]:
    """Per complete pair of `run`: (repository, 1 / ½ / 0 for broken above / tied / below clean,
    both verdicts right). Pairs missing a member are left out."""
    members: dict[str, dict[str, dict[str, Any]]] = {}
    for p in run["predictions"]:
        pair_id, role = p.get("pair_id"), p.get("role")
        if pair_id is not None and role in ("broken", "clean"):
            members.setdefault(str(pair_id), {})[str(role)] = dict(p)
    out = []
    for pair_id in sorted(members):
        pair = members[pair_id]
        if "broken" not in pair or "clean" not in pair:
            continue
        broken, clean = pair["broken"], pair["clean"]
        a, b = _rank_value(broken), _rank_value(clean)
        value = 1.0 if a > b else 0.5 if a == b else 0.0
        both = broken.get("y_pred") == 1 and clean.get("y_pred") == 0
        out.append((repo_of(broken), value, both))
    return out


def _rank_value(prediction: dict[str, Any]) -> float:
    """What a pair is ranked by: the score, else the verdict (a parse failure ranks lowest)."""
    if prediction.get("score") is not None:
        return float(prediction["score"])
    y_pred = prediction.get("y_pred")
    return float(y_pred) if y_pred is not None else -1.0


def pairwise_metrics(
    outcomes: Sequence[tuple[str, float, bool]], n_boot: int = 2000, seed: int = 0
) -> dict[str, Any]:
    """Pairwise score, its repository-bootstrap 95% CI, ties and both-correct share.

    Returns:
        `{pairs, repos, pairwise, ci: [low, high] | None, ties, both_correct}`; the values are None
        when there is no pair.
    """
    if not outcomes:
        return {"pairs": 0, "repos": 0, "pairwise": None, "ci": None, "ties": None,
                "both_correct": None}  # fmt: skip
    repos = sorted({repo for repo, _, _ in outcomes})
    index = {repo: j for j, repo in enumerate(repos)}
    values = np.array([v for _, v, _ in outcomes])
    sums, counts = np.zeros(len(repos)), np.zeros(len(repos))
    np.add.at(sums, [index[r] for r, _, _ in outcomes], values)
    np.add.at(counts, [index[r] for r, _, _ in outcomes], 1.0)
    draws = cluster_counts(len(repos), n_boot, seed).astype(np.float64)
    replicate = (draws @ sums) / np.maximum(draws @ counts, 1.0)
    low, high = np.quantile(replicate, [0.025, 0.975])
    return {
        "pairs": len(outcomes),
        "repos": len(repos),
        "pairwise": float(values.mean()),
        "ci": [float(low), float(high)],
        "ties": float(np.mean(values == 0.5)),
        "both_correct": float(np.mean([both for _, _, both in outcomes])),
    }


def pairwise_rows(
    runs: Sequence[EvalRun], n_boot: int = 2000, seed: int = 0
) -> list[dict[str, Any]]:
    """One row per (model, mode) of the pairs runs (run 1 of each; pairs are scored once).

    Rows keep the runs' order of appearance; a run whose predictions carry no pair is left out.
    """
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for run in sorted(runs, key=lambda r: int(r.get("run_id") or 1)):
        key = (str(run["model"]), row_mode(run))
        if key in rows or run.get("label_source", "both") != "both":
            continue
        outcomes = pair_outcomes(run)
        if outcomes:
            rows[key] = {
                "model": key[0],
                "mode": key[1],
                **pairwise_metrics(outcomes, n_boot, seed),
            }
    return list(rows.values())
