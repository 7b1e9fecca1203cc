"""Near-duplicates across splits: token shingles, exact Jaccard, MinHash and LSH banding.

`near_duplicates` finds the val/test files too similar to a file of an earlier split: MinHash LSH
proposes candidate pairs, exact Jaccard on `SHINGLE_TOKENS`-token shingle sets decides.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from tqdm import tqdm

from axon_infralinter.data.split import SPLITS, Split

__all__ = [
    "LSH_BANDS",
    "MINHASH_PERMUTATIONS",
    "SHINGLE_TOKENS",
    "jaccard",
    "near_duplicates",
    "shingles",
]

#: Tokens per shingle for near-duplicate detection.
SHINGLE_TOKENS = 5
#: MinHash signature length and LSH banding (32 bands x 4 rows): a pair at Jaccard 0.8 becomes a
#: candidate with probability 1 - (1 - 0.8**4)**32 > 0.9999999; candidates are then checked exactly.
MINHASH_PERMUTATIONS = 128
LSH_BANDS = 32
_PRIME32 = 4294967311  # smallest prime above 2**32: (a * h) < 2**64 for 32-bit a and h
_HASH_SEED = 20240917  # fixed: the hash family is part of the method
_TOKEN = re.compile(r"\w+|[^\w\s]")

_Buckets = dict[tuple[int, bytes], list[int]]
"""LSH index: (band, band bytes) -> indexes of the texts in that bucket."""


def shingles(text: str, k: int = SHINGLE_TOKENS) -> np.ndarray:
    """Sorted unique 64-bit hashes of the `k`-token shingles of `text` (tokens: words, symbols).

    A text shorter than `k` tokens is one shingle.
    """
    tokens = _TOKEN.findall(text)
    if len(tokens) < k:
        grams = ["\x1f".join(tokens)]
    else:
        grams = ["\x1f".join(tokens[i : i + k]) for i in range(len(tokens) - k + 1)]
    hashes = [
        int.from_bytes(hashlib.blake2b(g.encode("utf-8"), digest_size=8).digest(), "little")
        for g in grams
    ]
    return np.unique(np.array(hashes, dtype=np.uint64))


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard similarity of two sorted unique hash arrays (1.0 for two empty ones)."""
    if a.size == 0 and b.size == 0:
        return 1.0
    inter = np.intersect1d(a, b, assume_unique=True).size
    return inter / (a.size + b.size - inter)


def _minhash(sh: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """MinHash signature: for each (a, b), min over shingles of (a * h + b) mod p, h 32-bit."""
    sig = np.full(a.size, np.iinfo(np.uint64).max, dtype=np.uint64)
    h32 = sh & np.uint64(0xFFFFFFFF)
    for start in range(0, h32.size, 4096):  # chunks bound memory to 4096 x permutations
        chunk = h32[start : start + 4096, None]
        values = ((chunk * a[None, :]) % np.uint64(_PRIME32) + b[None, :]) % np.uint64(_PRIME32)
        sig = np.minimum(sig, values.min(axis=0))
    return sig


def near_duplicates(
    texts: Sequence[str],
    by_split: Mapping[Split, Sequence[int]],
    threshold: float,
    progress: bool = False,
) -> dict[int, tuple[int, float]]:
    """Val/test files too similar to a file of an earlier split.

    A val file is compared with train; a test file with train and the val files that stay. The
    comparison is exact Jaccard on 5-token shingle sets, computed for the candidate pairs that
    MinHash LSH (128 permutations, 32 bands) proposes.

    Args:
        texts: All texts, indexed as in `by_split`.
        by_split: Indexes of the texts of each split.
        threshold: Jaccard similarity at or above which a file is dropped.
        progress: Show a progress bar on stderr.

    Returns:
        Dropped index -> (index of its most similar earlier file, that similarity).
    """
    needed = [i for s in SPLITS for i in by_split.get(s, ())]
    sh, bands = _shingles_and_bands(texts, needed, progress)
    buckets: _Buckets = defaultdict(list)
    _index(buckets, bands, by_split.get("train", ()))
    dropped: dict[int, tuple[int, float]] = {}
    for s in ("val", "test"):
        for i in sorted(by_split.get(s, ())):
            best_j, best = _most_similar(sh, i, _candidates(buckets, bands[i]))
            if best >= threshold:
                dropped[i] = (best_j, best)
        # kept val files join the reference set for test
        _index(buckets, bands, [i for i in sorted(by_split.get(s, ())) if i not in dropped])
    return dropped


def _shingles_and_bands(
    texts: Sequence[str], needed: Sequence[int], progress: bool
) -> tuple[dict[int, np.ndarray], dict[int, list[bytes]]]:
    """Shingle set and LSH band keys of each needed text, by index."""
    rng = np.random.default_rng(_HASH_SEED)
    a = rng.integers(1, _PRIME32, size=MINHASH_PERMUTATIONS, dtype=np.uint64)
    b = rng.integers(0, _PRIME32, size=MINHASH_PERMUTATIONS, dtype=np.uint64)
    rows = MINHASH_PERMUTATIONS // LSH_BANDS
    sh: dict[int, np.ndarray] = {}
    bands: dict[int, list[bytes]] = {}
    for i in tqdm(needed, desc="near-dup", unit="file", disable=not progress, leave=False):
        sh[i] = shingles(texts[i])
        sig = _minhash(sh[i], a, b)
        bands[i] = [sig[r * rows : (r + 1) * rows].tobytes() for r in range(LSH_BANDS)]
    return sh, bands


def _index(buckets: _Buckets, bands: Mapping[int, list[bytes]], indexes: Iterable[int]) -> None:
    """Add each of `indexes` to the bucket of each of its bands."""
    for i in indexes:
        for band, key in enumerate(bands[i]):
            buckets[(band, key)].append(i)


def _candidates(buckets: _Buckets, keys: Sequence[bytes]) -> list[int]:
    """Indexed texts sharing at least one band with `keys`, in index order."""
    return sorted({j for band, key in enumerate(keys) for j in buckets.get((band, key), ())})


def _most_similar(
    sh: Mapping[int, np.ndarray], i: int, candidates: Iterable[int]
) -> tuple[int, float]:
    """The candidate most similar to text `i` (the first on ties) and that similarity."""
    best_j, best = -1, -1.0
    for j in candidates:
        score = jaccard(sh[i], sh[j])
        if score > best:
            best_j, best = j, score
    return best_j, best
