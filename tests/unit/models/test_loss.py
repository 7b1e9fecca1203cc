"""Splitting the target-token loss into the parts of the answer (no model needed)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from axon_infralinter.models.loss import (
    char_parts,
    finding_rule_ids,
    summarize_parts,
    summarize_rule_ids,
    token_parts,
    token_rule_ids,
)

TARGET = "INSECURE\n- CKV_AWS_18: Ensure logging (aws_s3_bucket.b)\n- AVD-1: Bad: thing (x.y)"
PIECES = [
    "INS", "ECURE", "\n", "- ", "CKV", "_AWS_18", ": Ensure", " logging", " (", "aws_s3", "_bucket.b",
    ")\n", "- AVD", "-1", ": Bad", ": thing", " (x", ".y)", "<eos>",
]  # fmt: skip


def _decode(ids: Sequence[int]) -> str:
    return "".join(PIECES[i] for i in ids if PIECES[i] != "<eos>")


def test_char_parts_marks_the_three_fields_of_each_finding_line() -> None:
    parts = char_parts(TARGET)
    text = {
        name: "".join(c for c, p in zip(TARGET, parts, strict=True) if p == name)
        for name in set(parts)
    }
    assert text["rule_id"] == "CKV_AWS_18" + "AVD-1"
    assert text["title"] == "Ensure logging" + "Bad: thing"
    assert text["resource"] == "aws_s3_bucket.b" + "x.y"
    assert text["format"] == "INSECURE\n- :  ()\n- :  ()"


def test_char_parts_of_the_ids_format_has_no_title() -> None:
    target = "INSECURE\n- AWS-0086 (aws_s3_bucket.kb)"
    parts = char_parts(target)
    assert "title" not in parts
    assert "".join(c for c, p in zip(target, parts, strict=True) if p == "rule_id") == "AWS-0086"
    assert "".join(c for c, p in zip(target, parts, strict=True) if p == "resource") == (
        "aws_s3_bucket.kb"
    )


def test_secure_answer_is_all_format_characters() -> None:
    assert set(char_parts("SECURE")) == {"format"}


def test_token_parts_first_token_is_the_decision_and_eos_is_the_end() -> None:
    assert _decode(range(len(PIECES))) == TARGET
    parts = token_parts(TARGET, list(range(len(PIECES))), _decode)
    assert parts == [
        "decision", "format", "format", "format", "rule_id", "rule_id", "title", "title", "format",
        "resource", "resource", "format", "rule_id", "rule_id", "title", "title", "resource",
        "resource", "end",
    ]  # fmt: skip


def test_a_line_that_is_not_a_finding_stays_format() -> None:
    pieces = ["INSECURE", "\nsomething else", "<eos>"]
    parts = token_parts(
        "INSECURE\nsomething else",
        [0, 1, 2],
        lambda ids: "".join(pieces[i] for i in ids if pieces[i] != "<eos>"),
    )
    assert parts == ["decision", "format", "end"]


def test_summarize_parts_means_counts_and_shares() -> None:
    summary = summarize_parts(
        [
            (["decision", "end"], [0.5, 0.1]),
            (["decision", "rule_id", "rule_id", "end"], [1.5, 2.0, 4.0, 0.0]),
        ]
    )
    assert summary["target_tokens"] == 6 and summary["examples"] == 2
    assert summary["mean_target_token_loss"] == pytest.approx(8.1 / 6)
    decision = summary["parts"]["decision"]
    assert decision["mean_loss"] == pytest.approx(1.0) and decision["tokens"] == 2
    assert decision["share_of_loss"] == pytest.approx(2.0 / 8.1)
    assert summary["parts"]["rule_id"]["mean_loss"] == pytest.approx(3.0)
    assert summary["parts"]["title"] == {"mean_loss": None, "tokens": 0, "share_of_loss": 0.0}


def test_summarize_parts_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError):
        summarize_parts([(["decision"], [0.1, 0.2])])


def test_finding_rule_ids_in_answer_order() -> None:
    assert finding_rule_ids(TARGET) == ["CKV_AWS_18", "AVD-1"]
    assert finding_rule_ids("INSECURE\n- CKV_GCP_6 (google_sql.x)") == ["CKV_GCP_6"]
    assert finding_rule_ids("SECURE") == []


def test_token_rule_ids_names_the_rule_of_each_rule_id_token() -> None:
    rules = token_rule_ids(TARGET, list(range(len(PIECES))), _decode)
    # "CKV", "_AWS_18" carry the first rule; "- AVD" (starts with format chars), "-1" the second.
    assert [r for r in rules if r] == ["CKV_AWS_18", "CKV_AWS_18", "AVD-1", "AVD-1"]
    assert rules[4] == "CKV_AWS_18" and rules[12] == "AVD-1" and rules[-1] is None


def test_summarize_rule_ids_splits_seen_and_unseen_rules() -> None:
    parts = token_parts(TARGET, list(range(len(PIECES))), _decode)
    rules = token_rule_ids(TARGET, list(range(len(PIECES))), _decode)
    losses = [float(i) for i in range(len(PIECES))]
    summary = summarize_rule_ids([(parts, losses, rules)], known={"CKV_AWS_18"})
    assert summary["seen"] == {"mean_loss": pytest.approx(4.5), "tokens": 2, "finding_lines": 1}
    assert summary["unseen"] == {"mean_loss": pytest.approx(12.5), "tokens": 2, "finding_lines": 1}
    empty = summarize_rule_ids([(["decision"], [0.3], [None])], known=set())
    assert empty["seen"]["mean_loss"] is None and empty["unseen"]["tokens"] == 0
    with pytest.raises(ValueError):
        summarize_rule_ids([(["decision"], [0.3], [])], known=set())
