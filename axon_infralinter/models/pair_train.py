"""Pair-aware training: both members of a minimal pair in one batch, and a ranking term on them.

A minimal pair (`axon dataset mutate`) is one source block written twice: `broken` (the scanners
call it INSECURE) and `clean` (SECURE), differing only in the attributes a rule inspects. Plain
cross-entropy on the two members separately lets a model that only learnt which resource *types*
get flagged score both alike (the shipped adapter's median |P(broken) - P(clean)| was 0.006).
Here a training item is either one example or one pair; a pair's two members go through the same
forward pass, and the loss adds

    pair_weight * softplus(-(d_broken - d_clean)),   d = logit(INSECURE) - logit(SECURE)

at the decision position (the first answer token, the one score mode reads): the logistic
(RankNet) loss of ranking the broken member above the clean one. It is summed over a micro
batch's pairs and divided by the items of an accumulated batch (gradient accumulation steps x
per-device batch size), so it is a mean per item whatever the accumulation, as the
cross-entropy is a mean per target token (`loss.make_loss_function`).

Items:
- `pair_items`: the pairs of a `pairs/<split>.jsonl` (`schema.read_pairs`), broken first, and
  its `neutral` variants as single examples;
- `tokenize_items`: every member tokenized as in plain training (`tokens.tokenize_example`);
- `PairCollator`: flattens items into rows, pads them, adds `pair_rows` (the (broken, clean) row
  indices of each pair) and `logits_to_keep`;
- `pair_rank_loss` / `make_pair_trainer`: the ranking term and the Trainer that adds it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from axon_infralinter.errors import InputError
from axon_infralinter.models.loss import logits_to_keep
from axon_infralinter.models.tokens import IGNORE_INDEX, LossOn, tokenize_example
from axon_infralinter.schema import read_pairs

Item = list[dict[str, Any]]
"""One training item: one record, or the two members of a pair (broken, clean)."""


def pair_items(path: Path) -> tuple[list[Item], list[Item]]:
    """The pairs of a pairs split (broken member first) and its neutral variants (one each).

    Raises:
        InputError: the file is missing, malformed (`read_pairs`), or holds no pair.
    """
    if not path.is_file():
        raise InputError(f"no pairs split at {path}: run `axon dataset mutate` first")
    rows = read_pairs(path)
    members: dict[str, dict[str, dict[str, Any]]] = {}
    neutral: list[Item] = []
    for row in rows:
        if row["pair_id"] is None:
            neutral.append([dict(row)])
        else:
            members.setdefault(str(row["pair_id"]), {})[str(row["role"])] = dict(row)
    pairs = [[m["broken"], m["clean"]] for _, m in sorted(members.items())]
    if not pairs:
        raise InputError(f"the pairs split at {path} holds no pair")
    return pairs, neutral


def sample_singles(items: Sequence[Item], limit: int | None, seed: int) -> list[Item]:
    """At most `limit` of `items`, a seeded random sample in the original order (None: all)."""
    if limit is None or len(items) <= limit:
        return list(items)
    keep = sorted(random.Random(seed).sample(range(len(items)), limit))  # noqa: S311 (sampling)
    return [items[i] for i in keep]


def tokenize_items(
    items: Sequence[Item], tokenizer: Any, max_length: int, loss_on: LossOn = "target"
) -> list[dict[str, Any]]:
    """Per item: the members' `input_ids` / `attention_mask` / `labels` (one list per member),
    `pair` (1 for a pair) and `length` (all its tokens, for length-grouped sampling)."""
    out = []
    for item in items:
        rows = [
            tokenize_example(r["input_text"], r["target_text"], tokenizer, max_length, loss_on)
            for r in item
        ]
        out.append(
            {
                "input_ids": [r["input_ids"] for r in rows],
                "attention_mask": [r["attention_mask"] for r in rows],
                "labels": [r["labels"] for r in rows],
                "pair": int(len(rows) == 2),
                "length": sum(len(r["input_ids"]) for r in rows),
            }
        )
    return out


class PairCollator:
    """Flattens items (one or two members each) into padded rows for one forward pass.

    Plain tokenized examples (the validation split) pass through as one row each.

    The batch gets `pair_rows`, a (pairs, 2) tensor of the (broken, clean) row indices, and
    `logits_to_keep` (the LM head runs only where target tokens are predicted).
    """

    def __init__(self, collator: Callable[[list[dict[str, Any]]], dict[str, Any]]) -> None:
        self.collator = collator

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        rows: list[dict[str, Any]] = []
        pairs: list[tuple[int, int]] = []
        keys = ("input_ids", "attention_mask", "labels")
        for feature in features:
            start = len(rows)
            ids = feature["input_ids"]
            if ids and not isinstance(ids[0], (list, tuple)):  # a plain example (validation)
                rows.append({key: feature[key] for key in keys})
                continue
            for k in range(len(ids)):
                rows.append({key: feature[key][k] for key in keys})
            if feature.get("pair"):
                pairs.append((start, start + 1))
        batch = self.collator(rows)
        batch["logits_to_keep"] = logits_to_keep(batch["labels"])
        batch["pair_rows"] = torch.tensor(pairs, dtype=torch.long).reshape(-1, 2)
        return batch


def decision_margins(logits: Any, labels: Any, secure_id: int, insecure_id: int) -> Any:
    """logit(INSECURE) - logit(SECURE) at each row's first target token (the decision).

    `logits` may cover only the last positions (`logits_to_keep`); labels are aligned to them as
    in `loss.make_loss_function`. Every row must have a target token.
    """
    labels = labels[:, -logits.size(1) :]
    targets = labels[:, 1:].to(logits.device)
    mask = targets != IGNORE_INDEX
    first = (mask & (mask.long().cumsum(dim=1) == 1)).float().argmax(dim=1)
    rows = logits[:, :-1, :].gather(1, first.view(-1, 1, 1).expand(-1, 1, logits.size(-1)))
    rows = rows[:, 0, :].float()
    return rows[:, insecure_id] - rows[:, secure_id]


def pair_rank_loss(margins: Any, pair_rows: Any) -> Any:
    """Sum over pairs of softplus(-(d_broken - d_clean)): log 2 for a tie, -> 0 when ranked right."""
    import torch.nn.functional as F  # noqa: N812

    diff = margins[pair_rows[:, 0]] - margins[pair_rows[:, 1]]
    return F.softplus(-diff).sum()


def make_pair_trainer(
    pair_weight: float, label_ids: tuple[int, int], items_per_step: int, **trainer_kwargs: Any
) -> Any:
    """A transformers Trainer whose training loss adds the pairs' ranking term.

    Args:
        pair_weight: Weight of the ranking term (0: pairs are two plain examples in one batch).
        label_ids: Token ids of SECURE and INSECURE at the decision position.
        items_per_step: Items per optimizer step per device (accumulation x batch size): the
            divisor that makes the term a mean per item.
        trainer_kwargs: As for `transformers.Trainer`.
    """
    from transformers import Trainer

    secure_id, insecure_id = label_ids

    class PairTrainer(Trainer):  # type: ignore[misc]
        def compute_loss(
            self,
            model: Any,
            inputs: dict[str, Any],
            return_outputs: bool = False,
            num_items_in_batch: Any = None,
        ) -> Any:
            pair_rows = inputs.pop("pair_rows", None)
            labels = inputs.get("labels")
            loss, outputs = super().compute_loss(
                model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch
            )
            if pair_weight and pair_rows is not None and pair_rows.numel() and labels is not None:
                margins = decision_margins(outputs.logits, labels, secure_id, insecure_id)
                rank = pair_rank_loss(margins, pair_rows.to(margins.device))
                loss = loss + pair_weight * rank / items_per_step
            return (loss, outputs) if return_outputs else loss

    return PairTrainer(**trainer_kwargs)
