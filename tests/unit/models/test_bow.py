"""models/bow.py: the tfidf-logreg baseline learns from code tokens, is stored and reused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from axon_infralinter.data.prompt import build_prompt
from axon_infralinter.models import bow


def _record(i: int, insecure: bool) -> dict[str, Any]:
    cidr = "0.0.0.0/0" if insecure else f"10.{i % 250}.0.0/16"
    code = (
        f'resource "aws_security_group" "sg{i}" {{\n  ingress {{\n    from_port = 22\n'
        f'    cidr_blocks = ["{cidr}"]\n  }}\n  description = "group {i}"\n}}'
    )
    return {"id": f"r{i}", "label": "INSECURE" if insecure else "SECURE",
            "input_text": build_prompt(code)}  # fmt: skip


TRAIN = [_record(i, i % 2 == 0) for i in range(40)]
VAL = [_record(100 + i, i % 3 == 0) for i in range(15)]


def test_it_learns_the_insecure_token_and_tunes_c_and_threshold_on_val() -> None:
    model = bow.fit_tfidf(TRAIN, VAL)
    assert model.info["val_roc_auc"] == 1.0 and model.info["C"] in bow.C_GRID
    assert model.info["train_examples"] == 40 and model.info["val_examples"] == 15
    insecure, secure = model.scores(
        [bow.code_of(_record(500, True)), bow.code_of(_record(501, False))]
    )
    assert insecure >= model.threshold > secure  # INSECURE at or above the threshold
    assert 0 < model.threshold < 1


def test_the_stored_model_is_reused_and_refitted_when_the_data_change(tmp_path: Path) -> None:
    first = bow.load_or_fit(tmp_path, TRAIN, VAL)
    stored = (tmp_path / "model.pkl").read_bytes()
    again = bow.load_or_fit(tmp_path, TRAIN, VAL)
    assert again.info == first.info and (tmp_path / "model.pkl").read_bytes() == stored
    changed = bow.load_or_fit(tmp_path, TRAIN[:-2], VAL)
    assert (
        changed.info["train_examples"] == 38
        and changed.info["train_key"] != first.info["train_key"]
    )


def test_one_class_splits_cannot_be_fitted() -> None:
    with pytest.raises(ValueError, match="both labels"):
        bow.fit_tfidf([r for r in TRAIN if r["label"] == "SECURE"], VAL)
