"""How score mode cuts its work: the shared instruction run once, and token-bounded batches."""

from __future__ import annotations

from axon_infralinter.models.predict import shared_prefix_length, token_batches


def test_shared_prefix_leaves_every_sequence_a_token_of_its_own() -> None:
    assert shared_prefix_length([[1, 2, 3, 4], [1, 2, 3, 9, 9], [1, 2, 7]]) == 2
    assert shared_prefix_length([[1, 2, 3], [1, 2, 3, 4]]) == 2  # [1, 2, 3] keeps its last token
    assert shared_prefix_length([[5, 6, 7]]) == 2
    assert shared_prefix_length([[1, 2], [3, 4]]) == 0
    assert shared_prefix_length([[1]]) == 0
    assert shared_prefix_length([]) == 0


def test_token_batches_bound_rows_and_tokens() -> None:
    lengths = [10, 10, 10, 40, 60, 100, 300]
    batches = token_batches(lengths, max_rows=3, max_tokens=120)
    assert batches == [[0, 1, 2], [3, 4], [5], [6]]  # 2 x 60 fits; 2 x 100 does not
    assert [k for b in batches for k in b] == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) <= 3
        assert len(batch) == 1 or len(batch) * max(lengths[k] for k in batch) <= 120
    assert token_batches([], 8, 2048) == []
    assert token_batches([5000], 8, 2048) == [[0]]  # longer than the budget: alone
