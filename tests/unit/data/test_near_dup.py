"""Shingles, Jaccard and near-duplicates against earlier splits, on made-up texts."""

import hashlib

import numpy as np
import pytest

from axon_infralinter.data.near_dup import jaccard, near_duplicates, shingles


def tf_text(key: str) -> str:
    """Valid Terraform whose shingles are unique to `key`: 24 attributes of random hex.

    The text `test_dataset.tf_text` gives with no marker, so the thresholds hold for both.
    """
    values = [hashlib.sha256(f"{key}/{i}".encode()).hexdigest()[:8] for i in range(24)]
    attrs = "\n".join(f'  a{i} = "{v}"' for i, v in enumerate(values))
    return f'resource "aws_s3_bucket" "r" {{\n{attrs}\n  note = ""\n}}\n'


def test_shingles_and_jaccard() -> None:
    a = shingles("a b c d e f")
    assert a.dtype == np.uint64 and a.size == 2
    assert shingles("a b").size == 1  # shorter than 5 tokens: one shingle
    assert jaccard(a, a) == 1.0
    assert jaccard(a, shingles("a b c d e g")) == pytest.approx(1 / 3)
    assert jaccard(a, shingles("z y x w v")) == 0.0


def test_near_duplicates_against_earlier_splits() -> None:
    texts = [tf_text(f"t{i}") for i in range(6)]
    near = texts[0].replace('a7 = "', 'a7 = "x')  # one token changed out of ~50
    texts += [near, near.replace('a6 = "', 'a6 = "y'), tf_text("other")]
    # 0-5 train, 6 val (near 0), 7 test (near 6 and 0), 8 test (unique)
    split = {"train": list(range(6)), "val": [6], "test": [7, 8]}
    assert jaccard(shingles(texts[6]), shingles(texts[0])) >= 0.8
    dropped = near_duplicates(texts, split, 0.8)
    assert set(dropped) == {6, 7}
    assert dropped[6][0] == 0 and dropped[6][1] == pytest.approx(
        jaccard(shingles(texts[6]), shingles(texts[0]))
    )
    assert dropped[7][0] == 0  # val file 6 was dropped, so test is compared with train only
    assert near_duplicates(texts, split, 1.0) == {}


def test_near_duplicate_of_a_kept_val_file_is_dropped_from_test() -> None:
    texts = [tf_text("train"), tf_text("val"), tf_text("val").replace('a5 = "', 'a5 = "z')]
    dropped = near_duplicates(texts, {"train": [0], "val": [1], "test": [2]}, 0.8)
    assert list(dropped) == [2] and dropped[2][0] == 1
