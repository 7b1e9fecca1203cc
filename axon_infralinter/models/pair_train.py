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

The anchor term (`anchor_weight`, learning without forgetting): the pairs teach which attribute
values matter, but in runs H2 and P05 they also cost the file-level ranking of real blocks
(ROC-AUC 0.871 -> 0.825 / 0.835), while continued training on single examples alone did not
(run S1, 0.861). So each single example may carry the decision margin the starting model gave it
(`reference_margins`, once, before training), and the loss adds

    anchor_weight * (d - d_start)^2

on those rows, summed and divided like the ranking term: real blocks keep their verdicts, the pairs
move what the pairs are about.

Items:
- `pair_items`: the pairs of a `pairs/<split>.jsonl` (`schema.read_pairs`), broken first, and
  its `neutral` variants as single examples;
- `tokenize_items`: every member tokenized as in plain training (`tokens.tokenize_example`);
- `PairCollator`: flattens items into rows, pads them, adds `pair_rows` (the (broken, clean) row
  indices of each pair) and `logits_to_keep`;
- `pair_rank_loss` / `make_pair_trainer`: the ranking term and the Trainer that adds it;
- `reference_margins` / `anchor_loss`: the starting model's margins and the anchor term;
  `cached_reference_margins` keeps them under `AXON_HOME/anchor-margins/`, keyed by the starting
  weights and the tokenized items, so a resumed run or another run from the same start (another
  pair weight, another anchor weight) does not compute them again (2,000 examples: 316 s).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from axon_infralinter.errors import InputError
from axon_infralinter.files import atomic_write_text
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

    The batch gets `pair_rows`, a (pairs, 2) tensor of the (broken, clean) row indices,
    `logits_to_keep` (the LM head runs only where target tokens are predicted) and, when an item
    carries `ref_margin` (`reference_margins`), `ref_margins`: one float per row, NaN where none.
    """

    def __init__(self, collator: Callable[[list[dict[str, Any]]], dict[str, Any]]) -> None:
        self.collator = collator

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        rows: list[dict[str, Any]] = []
        pairs: list[tuple[int, int]] = []
        refs: list[float] = []
        keys = ("input_ids", "attention_mask", "labels")
        for feature in features:
            start = len(rows)
            ids = feature["input_ids"]
            if ids and not isinstance(ids[0], (list, tuple)):  # a plain example (validation)
                rows.append({key: feature[key] for key in keys})
                refs.append(math.nan)
                continue
            for k in range(len(ids)):
                rows.append({key: feature[key][k] for key in keys})
            ref = feature.get("ref_margin")
            refs.extend(float(v) for v in ref) if ref else refs.extend([math.nan] * len(ids))
            if feature.get("pair"):
                pairs.append((start, start + 1))
        batch = self.collator(rows)
        batch["logits_to_keep"] = logits_to_keep(batch["labels"])
        batch["pair_rows"] = torch.tensor(pairs, dtype=torch.long).reshape(-1, 2)
        if any(not math.isnan(v) for v in refs):
            batch["ref_margins"] = torch.tensor(refs, dtype=torch.float32)
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


def anchor_loss(margins: Any, reference: Any, signs: Any = None) -> Any:
    """Sum of (d - d_start)^2 over the rows with a reference margin (NaN: no term for that row).

    With `signs` (+1 for an INSECURE row, -1 for a SECURE one: `decision_signs`), one-sided: only
    a move away from the label counts, max(0, s (d_start - d))^2.
    """
    keep = ~reference.isnan()
    diff = margins[keep] - reference[keep].to(margins.device, margins.dtype)
    if signs is not None:
        diff = (-signs[keep].to(margins.device, margins.dtype) * diff).clamp(min=0)
    return (diff * diff).sum()


def decision_signs(labels: Any, secure_id: int, insecure_id: int) -> Any:
    """Per row: +1 when its first target token is INSECURE, -1 when SECURE, 0 otherwise."""
    import torch

    mask = labels != IGNORE_INDEX
    first = (mask & (mask.long().cumsum(dim=1) == 1)).float().argmax(dim=1)
    token = labels.gather(1, first.view(-1, 1))[:, 0]
    zero = torch.zeros_like(token, dtype=torch.float32)
    return torch.where(
        token == insecure_id, zero + 1, torch.where(token == secure_id, zero - 1, zero)
    )


def reference_margins(
    model: Any,
    features: Sequence[dict[str, Any]],
    collator: PairCollator,
    label_ids: tuple[int, int],
    dtype: Any = None,
    batch_rows: int = 8,
    progress: bool = True,
) -> list[list[float]]:
    """Per tokenized item (`tokenize_items`): the model's decision margin on each member as it is
    now, in eval mode (no dropout) and under the training's autocast `dtype`; single items only,
    the members of pairs get NaN (they are meant to move).

    Items go through in length order, `batch_rows` at a time, through the training collator.
    """
    import torch
    from tqdm import tqdm

    secure_id, insecure_id = label_ids
    out = [[math.nan] * len(f["input_ids"]) for f in features]
    singles = sorted(
        (i for i, f in enumerate(features) if not f["pair"]), key=lambda i: features[i]["length"]
    )
    device = next(model.parameters()).device
    autocast = dtype is not None and str(dtype) == "torch.bfloat16"
    was_training = model.training
    model.eval()
    bar = tqdm(total=len(singles), desc="anchor margins", unit="example", disable=not progress)
    try:
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            for start in range(0, len(singles), batch_rows):
                chosen = singles[start : start + batch_rows]
                batch = collator([{**features[i], "ref_margin": None} for i in chosen])
                logits = model(
                    input_ids=batch["input_ids"].to(device),
                    attention_mask=batch["attention_mask"].to(device),
                    logits_to_keep=batch["logits_to_keep"],
                ).logits
                margins = decision_margins(logits, batch["labels"], secure_id, insecure_id)
                for i, value in zip(chosen, margins.tolist(), strict=True):
                    out[i][0] = float(value)
                bar.update(len(chosen))
    finally:
        bar.close()
        model.train(was_training)
    return out


MARGINS_VERSION = 1
"""Bumped when `reference_margins` computes its numbers differently (the cache key includes it)."""


def margins_key(model: Any, features: Sequence[dict[str, Any]], dtype: Any, batch_rows: int) -> str:
    """sha256 of what `reference_margins` depends on: every parameter of the starting model (name,
    dtype, shape, bytes), the tokenized items (members' ids and labels, pair flags), the autocast
    dtype and the batch size (under bf16 the padding of a batch moves the last bits)."""
    import torch

    digest = hashlib.sha256(f"anchor-margins-v{MARGINS_VERSION}|{dtype}|{batch_rows}".encode())
    for name, param in sorted(model.named_parameters(), key=lambda kv: kv[0]):
        data = param.detach().cpu().contiguous()
        digest.update(f"|{name}|{data.dtype}|{tuple(data.shape)}|".encode())
        digest.update(data.view(torch.uint8).numpy().tobytes())
    for feature in features:
        digest.update(
            json.dumps([feature["pair"], feature["input_ids"], feature["labels"]]).encode()
        )
    return digest.hexdigest()


def cached_reference_margins(
    model: Any,
    features: Sequence[dict[str, Any]],
    collator: PairCollator,
    label_ids: tuple[int, int],
    cache_dir: Path,
    dtype: Any = None,
    batch_rows: int = 8,
    progress: bool = True,
) -> list[list[float]]:
    """`reference_margins`, read from `cache_dir/<margins_key>.json` when an earlier run stored
    them (a missing, unreadable or mis-shaped file is computed again and rewritten atomically)."""
    path = cache_dir / f"{margins_key(model, features, dtype, batch_rows)}.json"
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        if (
            isinstance(stored, list)
            and len(stored) == len(features)
            and all(
                isinstance(m, list) and len(m) == len(f["input_ids"])
                for m, f in zip(stored, features, strict=True)
            )
        ):
            return [[float(v) for v in m] for m in stored]
    except (OSError, ValueError):
        pass
    margins = reference_margins(
        model, features, collator, label_ids, dtype=dtype, batch_rows=batch_rows, progress=progress
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(margins))
    return margins


def make_pair_trainer(
    pair_weight: float,
    label_ids: tuple[int, int],
    items_per_step: int,
    anchor_weight: float = 0.0,
    anchor_one_sided: bool = False,
    **trainer_kwargs: Any,
) -> Any:
    """A transformers Trainer whose training loss adds the pairs' ranking term (and the anchor
    term on the rows that carry a reference margin).

    Args:
        pair_weight: Weight of the ranking term (0: pairs are two plain examples in one batch).
        label_ids: Token ids of SECURE and INSECURE at the decision position.
        items_per_step: Items per optimizer step per device (accumulation x batch size): the
            divisor that makes each term a mean per item.
        anchor_weight: Weight of the anchor term (0: none).
        anchor_one_sided: Anchor only a move away from the row's label (`anchor_loss`).
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
            reference = inputs.pop("ref_margins", None)
            labels = inputs.get("labels")
            loss, outputs = super().compute_loss(
                model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch
            )
            rank_on = bool(pair_weight and pair_rows is not None and pair_rows.numel())
            anchor_on = bool(anchor_weight and reference is not None)
            if labels is not None and (rank_on or anchor_on):
                margins = decision_margins(outputs.logits, labels, secure_id, insecure_id)
                if rank_on:
                    rank = pair_rank_loss(margins, pair_rows.to(margins.device))
                    loss = loss + pair_weight * rank / items_per_step
                if anchor_on:
                    signs = (
                        decision_signs(labels, secure_id, insecure_id) if anchor_one_sided else None
                    )
                    anchor = anchor_loss(margins, reference, signs)
                    loss = loss + anchor_weight * anchor / items_per_step
            return (loss, outputs) if return_outputs else loss

    return PairTrainer(**trainer_kwargs)
