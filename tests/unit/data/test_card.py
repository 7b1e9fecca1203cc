"""The data set card's pieces on hand-computable cases; the whole card is in test_dataset.py."""

from axon_infralinter.data.card import (
    _kappa,
    approx_token_count,
    insecure_share,
    label_stats,
    reason_kind,
)


def test_reason_kind_is_the_text_before_the_first_colon() -> None:
    assert reason_kind("invalid HCL: line 3: unexpected token") == "invalid HCL"
    assert reason_kind("no colon") == "no colon"


def test_approx_token_count_counts_letter_runs_digits_symbols_and_spaces() -> None:
    # "ab", " ", "1", "2", " ", "=", "=", "\n"
    assert approx_token_count("ab 12 ==\n") == 8
    assert approx_token_count("") == 0


def test_label_stats_and_insecure_share() -> None:
    labels = ["SECURE", "INSECURE", "INSECURE"]
    assert label_stats(labels) == {
        "count": 3,
        "SECURE": 1,
        "INSECURE": 2,
        "insecure_share": 0.6667,
    }
    assert insecure_share([]) is None
    assert label_stats([])["insecure_share"] is None


def test_kappa_is_none_where_undefined() -> None:
    assert _kappa([], []) is None
    assert _kappa([1, 1], [1, 1]) is None  # both raters constant and equal
    assert _kappa([0, 1, 0, 1], [0, 1, 0, 1]) == 1.0
    assert _kappa([0, 1], [1, 0]) == -1.0
