"""Pair-aware training: pairs read broken first, one forward pass per pair, the ranking term."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from axon_infralinter.data.prompt import build_prompt
from axon_infralinter.errors import InputError
from axon_infralinter.models import pair_train as pt
from axon_infralinter.models import tokens
from axon_infralinter.models import train_lora as tl

from .test_train_lora import TOK


def _member(pair: str | None, role: str, code: str, label: str, source: str = "s1") -> dict:
    return {
        "id": f"{source}|{pair}|{role}|{code}",
        "repo": "r/a",
        "path": "main.tf",
        "sha256": "0",
        "label": label,
        "input_text": build_prompt(code),
        "target_text": label,
        "findings": [],
        "pair_id": pair,
        "source_id": source,
        "role": role,
        "edit": {"kind": "rule" if pair else "neutral"},
    }


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_pair_items_put_the_broken_member_first_and_neutrals_alone(tmp_path: Path) -> None:
    rows = [
        _member("p2", "clean", "b = 1", "SECURE", "s2"),
        _member(None, "neutral", "n = 1", "INSECURE"),
        _member("p1", "clean", "a = 1", "SECURE"),
        _member("p1", "broken", "a = 0", "INSECURE"),
        _member("p2", "broken", "b = 0", "INSECURE", "s2"),
    ]
    pairs, neutral = pt.pair_items(_write(tmp_path / "train.jsonl", rows))
    assert [[m["role"] for m in p] for p in pairs] == [["broken", "clean"]] * 2
    assert [p[0]["pair_id"] for p in pairs] == ["p1", "p2"]
    assert [[m["role"] for m in n] for n in neutral] == [["neutral"]]


def test_pair_items_refuse_a_missing_file_and_a_split_without_pairs(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="run `axon dataset mutate` first"):
        pt.pair_items(tmp_path / "train.jsonl")
    only_neutral = _write(tmp_path / "n.jsonl", [_member(None, "neutral", "n = 1", "SECURE")])
    with pytest.raises(InputError, match="holds no pair"):
        pt.pair_items(only_neutral)


def test_sample_singles_is_seeded_and_keeps_the_order() -> None:
    items = [[{"i": i}] for i in range(10)]
    a = pt.sample_singles(items, 4, seed=1)
    assert len(a) == 4 and a == pt.sample_singles(items, 4, seed=1)
    assert [x[0]["i"] for x in a] == sorted(x[0]["i"] for x in a)
    assert pt.sample_singles(items, None, seed=1) == items
    assert pt.sample_singles(items, 50, seed=1) == items


def _right_pad(features: list[dict]) -> dict:
    import torch

    width = max(len(f["input_ids"]) for f in features)
    return {
        key: torch.tensor([f[key] + [fill] * (width - len(f[key])) for f in features])
        for key, fill in (("input_ids", 0), ("attention_mask", 0), ("labels", -100))
    }


def test_collator_flattens_pairs_and_names_their_rows() -> None:
    single = [{"input_text": build_prompt("x = 1"), "target_text": "SECURE"}]
    pair = [
        {"input_text": build_prompt("y = 0"), "target_text": "INSECURE"},
        {"input_text": build_prompt("y = 1"), "target_text": "SECURE"},
    ]
    items = pt.tokenize_items([single, pair], TOK, max_length=2048)
    assert [i["pair"] for i in items] == [0, 1]
    assert items[1]["length"] == sum(len(ids) for ids in items[1]["input_ids"])
    plain = tokens.tokenize_example(build_prompt("z = 1"), "SECURE", TOK, max_length=2048)
    batch = pt.PairCollator(_right_pad)([*items, plain])
    assert batch["input_ids"].shape[0] == 4  # 1 + 2 + the plain validation example
    assert batch["pair_rows"].tolist() == [[1, 2]]
    assert 0 < batch["logits_to_keep"] <= batch["input_ids"].shape[1]
    # A batch without pairs has an empty (0, 2) pair tensor.
    assert pt.PairCollator(_right_pad)(items[:1])["pair_rows"].shape == (0, 2)


def test_decision_margins_read_the_first_target_position_of_kept_logits() -> None:
    import torch

    # Two rows of width 6; targets start at position 3 (row 0) and 4 (row 1).
    labels = torch.tensor([[-100, -100, -100, 7, 8, 9], [-100, -100, -100, -100, 7, 9]])
    vocab, secure, insecure = 10, 2, 5
    full = torch.zeros(2, 6, vocab)
    full[0, 2, insecure], full[0, 2, secure] = 3.0, 1.0  # position 2 predicts token 3
    full[1, 3, insecure], full[1, 3, secure] = -1.0, 1.0
    full[0, 4, insecure] = 100.0  # a later position: must not be read
    margins = pt.decision_margins(full, labels, secure, insecure)
    assert margins.tolist() == [2.0, -2.0]
    kept = full[:, -4:, :]  # logits_to_keep = 4: positions 2..5
    assert pt.decision_margins(kept, labels, secure, insecure).tolist() == [2.0, -2.0]


def test_rank_loss_is_log_two_for_a_tie_and_pushes_broken_above_clean() -> None:
    import torch

    rows = torch.tensor([[0, 1]])
    tie = pt.pair_rank_loss(torch.tensor([0.5, 0.5]), rows)
    assert math.isclose(float(tie), math.log(2), rel_tol=1e-6)
    right = pt.pair_rank_loss(torch.tensor([4.0, -4.0]), rows)
    wrong = pt.pair_rank_loss(torch.tensor([-4.0, 4.0]), rows)
    assert float(right) < 0.001 < 7.9 < float(wrong)
    margins = torch.tensor([0.0, 0.0], requires_grad=True)
    pt.pair_rank_loss(margins, rows).backward()
    assert margins.grad is not None
    g_broken, g_clean = margins.grad.tolist()
    assert g_broken < 0 < g_clean  # gradient descent raises broken, lowers clean


def test_pairs_need_the_target_loss_and_a_non_negative_weight(tmp_path: Path) -> None:
    from axon_infralinter.errors import ConfigError

    with pytest.raises(ConfigError, match="needs loss_on target"):
        tl.resolve_config("smollm2-cpu", pairs_dir=tmp_path, loss_on="all")
    with pytest.raises(ConfigError, match="--pair-weight must be >= 0"):
        tl.resolve_config("smollm2-cpu", pairs_dir=tmp_path, pair_weight=-1.0)


def test_training_items_are_sampled_singles_and_every_pair(tmp_path: Path) -> None:
    pairs_dir = tmp_path / "pairs"
    pairs_dir.mkdir()
    _write(
        pairs_dir / "train.jsonl",
        [
            _member("p1", "broken", "a = 0", "INSECURE"),
            _member("p1", "clean", "a = 1", "SECURE"),
            _member(None, "neutral", "n = 1", "INSECURE"),
        ],
    )
    rows = [{"input_text": build_prompt(f"x = {i}"), "target_text": "SECURE"} for i in range(5)]
    config = tl.resolve_config("smollm2-cpu", pairs_dir=pairs_dir, max_train_examples=3)
    items = tl._train_items(config, rows)
    assert items is not None
    assert sum(len(i) == 1 for i in items) == 3 and sum(len(i) == 2 for i in items) == 1
    assert tl._train_items(tl.resolve_config("smollm2-cpu"), rows) is None


def test_pair_training_samples_at_random_not_by_length(tmp_path: Path) -> None:
    from axon_infralinter.models import train_config as tc

    plain = tc.to_training_arguments(tl.resolve_config("smollm2-cpu"), tmp_path, has_eval=False)
    pairs = tc.to_training_arguments(
        tl.resolve_config("smollm2-cpu", pairs_dir=tmp_path), tmp_path, has_eval=False
    )
    assert str(plain.train_sampling_strategy) == "group_by_length"
    assert str(pairs.train_sampling_strategy) == "random"


def test_anchor_loss_is_zero_at_the_start_and_ignores_rows_without_a_reference() -> None:
    import torch

    reference = torch.tensor([1.0, math.nan, -2.0])
    assert float(pt.anchor_loss(torch.tensor([1.0, 9.0, -2.0]), reference)) == 0.0
    margins = torch.tensor([2.0, 50.0, -2.0], requires_grad=True)
    loss = pt.anchor_loss(margins, reference)
    assert math.isclose(float(loss.detach()), 1.0)  # (2 - 1)^2; the NaN row adds nothing
    loss.backward()
    assert margins.grad is not None and margins.grad.tolist() == [2.0, 0.0, 0.0]


def test_collator_carries_reference_margins_only_when_an_item_has_one() -> None:
    single = [{"input_text": build_prompt("x = 1"), "target_text": "SECURE"}]
    pair = [
        {"input_text": build_prompt("y = 0"), "target_text": "INSECURE"},
        {"input_text": build_prompt("y = 1"), "target_text": "SECURE"},
    ]
    items = pt.tokenize_items([single, pair], TOK, max_length=2048)
    collate = pt.PairCollator(_right_pad)
    assert "ref_margins" not in collate(items)
    items[0]["ref_margin"], items[1]["ref_margin"] = [1.5], [math.nan, math.nan]
    refs = collate(items)["ref_margins"].tolist()
    assert refs[0] == 1.5 and all(math.isnan(v) for v in refs[1:])


class _MarginModel:
    """A stand-in causal LM: the logit of token t at every position is t * (input id sum) / 1000,
    so each row's margin is known in closed form; records the train/eval switches."""

    def __init__(self) -> None:
        import torch

        self.training = True
        self.calls: list[bool] = []
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def parameters(self):  # noqa: ANN201
        yield self.weight

    def named_parameters(self):  # noqa: ANN201
        yield "weight", self.weight

    def eval(self) -> None:
        self.training = False

    def train(self, mode: bool = True) -> None:
        self.training = mode

    def __call__(self, input_ids, attention_mask, logits_to_keep):  # noqa: ANN001, ANN204
        import torch

        self.calls.append(self.training)
        vocab = 128  # CharTokenizer: ASCII code points
        total = (input_ids * attention_mask).sum(dim=1, keepdim=True).float()
        scale = torch.arange(vocab).float().view(1, 1, -1) * total.view(-1, 1, 1) / 1000
        logits = scale.expand(input_ids.size(0), input_ids.size(1), vocab)
        return type("Out", (), {"logits": logits[:, -logits_to_keep:, :]})()


def test_reference_margins_score_single_items_in_eval_mode_and_leave_pairs_out() -> None:
    from axon_infralinter.models.tokens import label_token_ids

    items = [
        [{"input_text": build_prompt("a = 1"), "target_text": "SECURE"}],
        [
            {"input_text": build_prompt("y = 0"), "target_text": "INSECURE"},
            {"input_text": build_prompt("y = 1"), "target_text": "SECURE"},
        ],
        [{"input_text": build_prompt("a_longer = 12"), "target_text": "INSECURE"}],
    ]
    features = pt.tokenize_items(items, TOK, max_length=2048)
    model = _MarginModel()
    secure, insecure = label_token_ids(TOK)
    refs = pt.reference_margins(
        model, features, pt.PairCollator(_right_pad), (secure, insecure), batch_rows=1,
        progress=False,
    )  # fmt: skip
    assert model.calls == [False, False] and model.training  # eval for scoring, then restored
    assert all(math.isnan(v) for v in refs[1]) and len(refs[1]) == 2
    for k in (0, 2):
        # The margin at the decision position of a model whose logits are t * sum(ids) / 1000
        # (the same at every position, so the prompt's total is what counts).
        total = sum(features[k]["input_ids"][0])
        assert math.isclose(refs[k][0], (insecure - secure) * total / 1000, rel_tol=1e-5)


def test_cached_margins_are_read_back_and_recomputed_for_other_weights_or_a_bad_file(
    tmp_path: Path,
) -> None:
    import torch

    from axon_infralinter.models.tokens import label_token_ids

    items = [
        [{"input_text": build_prompt("a = 1"), "target_text": "SECURE"}],
        [
            {"input_text": build_prompt("y = 0"), "target_text": "INSECURE"},
            {"input_text": build_prompt("y = 1"), "target_text": "SECURE"},
        ],
    ]
    features = pt.tokenize_items(items, TOK, max_length=2048)
    model, labels, collate = _MarginModel(), label_token_ids(TOK), pt.PairCollator(_right_pad)

    def margins() -> list[list[float]]:
        return pt.cached_reference_margins(
            model, features, collate, labels, tmp_path, batch_rows=1, progress=False
        )

    first = margins()
    assert len(model.calls) == 1 and len(list(tmp_path.glob("*.json"))) == 1
    again = margins()
    assert len(model.calls) == 1  # read back: no forward pass
    assert again[0] == first[0] and all(math.isnan(v) for v in again[1])
    with torch.no_grad():
        model.weight += 1  # another starting model: another key
    margins()
    assert len(model.calls) == 2 and len(list(tmp_path.glob("*.json"))) == 2
    for path in tmp_path.glob("*.json"):
        path.write_text("[[1.0", encoding="utf-8")  # a torn or corrupt file
    assert margins()[0] == first[0] and len(model.calls) == 3


def test_the_anchor_needs_pairs_and_a_non_negative_weight(tmp_path: Path) -> None:
    from axon_infralinter.errors import ConfigError

    with pytest.raises(ConfigError, match="--anchor-weight needs --pairs"):
        tl.resolve_config("smollm2-cpu", anchor_weight=1.0)
    with pytest.raises(ConfigError, match="--anchor-weight must be >= 0"):
        tl.resolve_config("smollm2-cpu", pairs_dir=tmp_path, anchor_weight=-0.5)
    assert (
        tl.resolve_config("smollm2-cpu", pairs_dir=tmp_path, anchor_weight=1.0).anchor_weight == 1
    )


def test_one_sided_anchor_only_resists_a_move_away_from_the_label() -> None:
    import torch

    # row 0 INSECURE, row 1 SECURE, row 2 SECURE, row 3 INSECURE without a reference
    reference = torch.tensor([1.0, -1.0, -1.0, math.nan])
    signs = torch.tensor([1.0, -1.0, -1.0, 1.0])
    margins = torch.tensor([0.0, -3.0, 1.0, -9.0], requires_grad=True)
    loss = pt.anchor_loss(margins, reference, signs)
    # row 0 fell 1 below its start (away from INSECURE): 1; row 1 moved toward SECURE: 0;
    # row 2 rose 2 above its start (away from SECURE): 4; row 3 has no reference
    assert math.isclose(float(loss.detach()), 5.0)
    loss.backward()
    assert margins.grad is not None and margins.grad.tolist() == [-2.0, 0.0, 4.0, 0.0]
    assert math.isclose(float(pt.anchor_loss(margins.detach(), reference)), 1 + 4 + 4)


def test_decision_signs_read_the_first_target_token() -> None:
    import torch

    ignore = tokens.IGNORE_INDEX
    labels = torch.tensor([[ignore, ignore, 5, 9], [ignore, 7, 5, 9], [ignore, ignore, ignore, 3]])
    assert pt.decision_signs(labels, secure_id=7, insecure_id=5).tolist() == [1.0, -1.0, 0.0]


def test_the_one_sided_anchor_needs_an_anchor_weight(tmp_path: Path) -> None:
    from axon_infralinter.errors import ConfigError

    with pytest.raises(ConfigError, match="--anchor-one-sided needs --anchor-weight"):
        tl.resolve_config("smollm2-cpu", pairs_dir=tmp_path, anchor_one_sided=True)
    config = tl.resolve_config(
        "smollm2-cpu", pairs_dir=tmp_path, anchor_weight=1.0, anchor_one_sided=True
    )
    assert config.anchor_one_sided is True
