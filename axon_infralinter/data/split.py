"""The grouped train/val/test split and the seeded sample `--limit` draws.

`split_by_repo` assigns whole repositories to the splits (a greedy pass, then a local search
that lowers `_Problem.cost`); `stratified_sample` picks `n` items round-robin over repositories.
Both are pure functions of their inputs and the seed.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

__all__ = ["SPLITS", "Split", "split_by_repo", "stratified_sample"]

Split = Literal["train", "val", "test"]
SPLITS: tuple[Split, Split, Split] = ("train", "val", "test")
#: Bound of the local search: each step strictly lowers the cost, so it ends long before.
MAX_STEPS = 10_000
T = TypeVar("T")


def stratified_sample(
    items: Sequence[T], repo_of: Callable[[T], str], n: int, seed: int
) -> list[T]:
    """Pick `n` items round-robin over repositories, in a seeded order; keeps the input order.

    Repositories are visited in a seeded shuffled order, each contributing one item (from its own
    seeded shuffle) per round, so a small `n` still covers up to `n` repositories.
    """
    if n >= len(items):
        return list(items)
    rng = random.Random(seed)  # noqa: S311 (a reproducible sample, not a secret)
    by_repo: dict[str, list[int]] = defaultdict(list)
    for i, item in enumerate(items):
        by_repo[repo_of(item)].append(i)
    repos = sorted(by_repo)
    rng.shuffle(repos)
    for repo in repos:
        rng.shuffle(by_repo[repo])
    picked: list[int] = []
    depth = 0
    while len(picked) < n:
        for repo in repos:
            if depth < len(by_repo[repo]) and len(picked) < n:
                picked.append(by_repo[repo][depth])
        depth += 1
    return [items[i] for i in sorted(picked)]


def split_by_repo(
    counts: Mapping[str, tuple[int, int]],
    fractions: tuple[float, float, float] = (0.70, 0.15, 0.15),
    seed: int = 0,
    label_weight: float = 0.2,
    strata: Mapping[str, Mapping[str, tuple[int, int]]] | None = None,
    strata_weight: float = 0.0,
) -> dict[str, Split]:
    """Assign whole repositories to train/val/test.

    A greedy pass takes repositories largest first (seeded order among equal sizes) and puts each
    into the split furthest below its target size, preferring, among the splits it fits in, the
    one whose INSECURE share it brings closest to the overall share. A local search then moves
    single repositories or swaps pairs while that lowers
    `sum |size - target| / N + label_weight * sum |INSECURE share - overall share|`
    (an empty split with a positive target costs 1 more), plus, with `strata`,
    `strata_weight * sum over strata and splits (|files - fraction * stratum files| / N
    + |INSECURE - fraction * stratum INSECURE| / K)`: each stratum (the cloud provider, in
    `build_dataset`) is then spread over the splits in the target fractions as far as whole
    repositories allow, so that val and test hold the clouds train teaches, and the other way round.

    Args:
        counts: repository -> (files, INSECURE files).
        fractions: Target shares of train, val, test.
        seed: Tie-break seed.
        label_weight: Weight of the label-balance term against the size term.
        strata: repository -> stratum -> (files, INSECURE files); None: no stratum term.
        strata_weight: Weight of the stratum term (0: the split of data sets built before
            2026-11-26, which put nearly every AWS file in val and test).

    Returns:
        repository -> split.
    """
    if sum(n for n, _ in counts.values()) == 0:
        return {repo: "train" for repo in counts}
    repos = _seeded_order(counts, seed)
    vec = _vectors(counts, repos, strata if strata_weight else None)
    problem = _Problem.of(repos, vec, fractions, label_weight, strata_weight)
    assign, sums = _greedy(problem)
    assign = _local_search(problem, assign, sums)
    return {repo: SPLITS[assign[repo]] for repo in sorted(assign)}


def _seeded_order(counts: Mapping[str, tuple[int, int]], seed: int) -> list[str]:
    """Repositories largest first, in a seeded order among equal sizes."""
    rng = random.Random(seed)  # noqa: S311 (a reproducible sample, not a secret)
    repos = sorted(counts)
    rng.shuffle(repos)
    repos.sort(key=lambda r: -counts[r][0])  # stable: keeps the seeded order among equal sizes
    return repos


def _vectors(
    counts: Mapping[str, tuple[int, int]],
    repos: Sequence[str],
    strata: Mapping[str, Mapping[str, tuple[int, int]]] | None,
) -> dict[str, list[int]]:
    """Each repository as a vector: files, INSECURE, then (files, INSECURE) per stratum."""
    names = sorted({p for per in (strata or {}).values() for p in per})
    width = 2 + 2 * len(names)

    def vector(repo: str) -> list[int]:
        v = [*counts[repo], *([0] * (width - 2))]
        for j, p in enumerate(names):
            v[2 + 2 * j], v[3 + 2 * j] = (strata or {}).get(repo, {}).get(p, (0, 0))
        return v

    return {repo: vector(repo) for repo in repos}


@dataclass(frozen=True)
class _Problem:
    """The repositories to place, as vectors, and the cost of per-split sums of them."""

    repos: Sequence[str]
    """In the greedy pass's order."""
    vec: Mapping[str, list[int]]
    """repository -> vector (`_vectors`)."""
    fractions: tuple[float, float, float]
    targets: list[float]
    """Target size of each split, in files."""
    total: int
    """Files in all repositories (N)."""
    overall: float
    """INSECURE share of all files."""
    whole: list[int]
    """Sum of all repository vectors."""
    insecure_total: int
    """INSECURE files in all repositories (K), at least 1."""
    label_weight: float
    strata_weight: float

    @classmethod
    def of(
        cls,
        repos: Sequence[str],
        vec: Mapping[str, list[int]],
        fractions: tuple[float, float, float],
        label_weight: float,
        strata_weight: float,
    ) -> _Problem:
        """The problem of placing `repos`, with the targets and totals their vectors give."""
        width = len(next(iter(vec.values())))
        whole = [sum(v[d] for v in vec.values()) for d in range(width)]
        total = whole[0]
        return cls(
            repos=repos,
            vec=vec,
            fractions=fractions,
            targets=[f * total for f in fractions],
            total=total,
            overall=whole[1] / total,
            whole=whole,
            insecure_total=max(whole[1], 1),
            label_weight=label_weight,
            strata_weight=strata_weight,
        )

    def cost(self, sums: Sequence[Sequence[int]]) -> float:
        """Size term + label term + stratum term of a split given as per-split vector sums."""
        c = 0.0
        for s in range(3):
            size, insecure = sums[s][0], sums[s][1]
            c += abs(size - self.targets[s]) / self.total
            if size:
                c += self.label_weight * abs(insecure / size - self.overall)
            elif self.targets[s] > 0:
                c += 1.0
            for d in range(2, len(self.whole), 2):
                c += self.strata_weight * (
                    abs(sums[s][d] - self.fractions[s] * self.whole[d]) / self.total
                    + abs(sums[s][d + 1] - self.fractions[s] * self.whole[d + 1])
                    / self.insecure_total
                )
        return c


def _greedy(problem: _Problem) -> tuple[dict[str, int], list[list[int]]]:
    """First assignment: each repository, in order, to the split furthest below its target.

    Returns:
        repository -> split index, and the per-split sums of the repository vectors.
    """
    vec, targets, overall = problem.vec, problem.targets, problem.overall
    sums = [[0] * len(problem.whole) for _ in range(3)]
    assign: dict[str, int] = {}
    for repo in problem.repos:
        n, k = vec[repo][0], vec[repo][1]
        size = [sums[s][0] for s in range(3)]
        insecure = [sums[s][1] for s in range(3)]
        deficits = [targets[s] - size[s] for s in range(3)]
        fits = [s for s in range(3) if deficits[s] >= n and targets[s] > 0]
        if fits:
            s = min(
                fits,
                key=lambda s: (abs((insecure[s] + k) / (size[s] + n) - overall), -deficits[s], s),
            )
        else:
            s = max(range(3), key=lambda s: (deficits[s], -s))
        assign[repo] = s
        sums[s] = [a + b for a, b in zip(sums[s], vec[repo], strict=True)]
    return assign, sums


def _moved(
    sums: Sequence[Sequence[int]],
    vec: Mapping[str, list[int]],
    assign: Mapping[str, int],
    changes: Sequence[tuple[str, int]],
) -> list[list[int]]:
    """The per-split sums once each (repository, split) of `changes` has moved."""
    out = [list(row) for row in sums]
    for repo, t in changes:
        for d, x in enumerate(vec[repo]):
            out[assign[repo]][d] -= x
            out[t][d] += x
    return out


def _best_step(
    problem: _Problem, assign: Mapping[str, int], sums: Sequence[Sequence[int]], current: float
) -> tuple[float, list[tuple[str, int]]] | None:
    """The single move or pair swap that lowers the cost most; None when none lowers it."""
    repos, vec = problem.repos, problem.vec
    best: tuple[float, list[tuple[str, int]]] | None = None
    for a_i, a in enumerate(repos):
        sa = assign[a]
        for t in range(3):
            if t == sa or problem.targets[t] == 0:
                continue
            c = problem.cost(_moved(sums, vec, assign, [(a, t)]))
            if c < current - 1e-12 and (best is None or c < best[0] - 1e-12):
                best = (c, [(a, t)])
        for b in repos[a_i + 1 :]:
            sb = assign[b]
            if sb == sa:
                continue
            c = problem.cost(_moved(sums, vec, assign, [(a, sb), (b, sa)]))
            if c < current - 1e-12 and (best is None or c < best[0] - 1e-12):
                best = (c, [(a, sb), (b, sa)])
    return best


def _local_search(
    problem: _Problem, assign: dict[str, int], sums: list[list[int]]
) -> dict[str, int]:
    """Take the best move or swap while one lowers the cost; updates and returns `assign`."""
    current = problem.cost(sums)
    for _ in range(MAX_STEPS):
        step = _best_step(problem, assign, sums, current)
        if step is None:
            break
        current, changes = step
        sums = _moved(sums, problem.vec, assign, changes)
        for repo, t in changes:
            assign[repo] = t
    return assign
