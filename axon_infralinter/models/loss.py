"""The training loss, and where the target-token loss goes (verdict token vs finding lines).

Training: `make_loss_function` (the decision token weighted `label_weight` times) and
`TargetLogitsCollator` / `logits_to_keep` (the LM head runs only where target tokens are predicted).

Loss parts:

An answer is `SECURE`, or `INSECURE` plus up to three lines `- RULE_ID: title (resource)` or, in the
`ids` answer format, `- RULE_ID (resource)` (`data.prompt.build_target`). The target-token validation loss averages over all of those tokens,
so an INSECURE answer with three finding lines weighs ~30x a SECURE one, and most of the number is
about guessing which rule ids a scanner fired. This module splits the mean per part of the answer:

- `decision`: the first answer token, the one that separates SECURE from INSECURE (what score mode
  reads);
- `rule_id`, `title`, `resource`: the fields of a finding line (no title in the `ids` format);
- `format`: the rest of the label word, `- `, `: `, brackets and newlines;
- `end`: the end-of-sequence token.

`rule_id_tokens_by_training` splits the rule-id tokens once more: ids that some training answer
names vs ids that no training answer names (the model can only guess those from the catalog's
naming pattern). Run on a sample of the training split as well, the same numbers show whether the
validation loss is a fitting problem or a generalization gap.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any

from axon_infralinter.models.base_model import cpu_supports_bf16, cuda_available
from axon_infralinter.models.tokens import IGNORE_INDEX, tokenize_example

PARTS = ("decision", "rule_id", "title", "resource", "format", "end")
_FINDING = re.compile(r"- (?P<rule_id>[^:\s]+)(?:: (?P<title>.*))? \((?P<resource>[^()\n]*)\)$")


def char_parts(target_text: str) -> list[str]:
    """The answer part of every character of `target_text` (the label line is `format`)."""
    parts = ["format"] * len(target_text)
    offset = 0
    for k, line in enumerate(target_text.split("\n")):
        match = _FINDING.match(line) if k > 0 else None
        if match:
            for name in ("rule_id", "title", "resource"):
                if match.group(name) is None:
                    continue
                start, end = match.span(name)
                parts[offset + start : offset + end] = [name] * (end - start)
        offset += len(line) + 1
    return parts


def token_spans(
    target_ids: Sequence[int], decode: Callable[[Sequence[int]], str]
) -> list[tuple[int, int]]:
    """The (start, end) characters of `target_text` each target token decodes to (EOS: empty).

    Spans come from decoding growing prefixes of `target_ids` (`decode` skips special tokens).
    """
    spans: list[tuple[int, int]] = []
    previous = 0
    for i in range(len(target_ids)):
        upto = len(decode(target_ids[: i + 1]))
        spans.append((previous, max(previous, upto)))
        previous = max(previous, upto)
    return spans


def token_parts(
    target_text: str, target_ids: Sequence[int], decode: Callable[[Sequence[int]], str]
) -> list[str]:
    """The answer part of every target token (the label mask's non -100 positions, EOS included).

    The first token is `decision`; a token with no characters (EOS) is `end`; otherwise the first
    of its characters that is not `format` names its part.
    """
    chars = char_parts(target_text)
    out: list[str] = []
    for i, (start, end) in enumerate(token_spans(target_ids, decode)):
        span = chars[start:end]
        if i == 0:
            out.append("decision")
        elif not span:
            out.append("end")
        else:
            out.append(next((p for p in span if p != "format"), "format"))
    return out


def finding_rule_ids(target_text: str) -> list[str]:
    """The rule ids of an answer's finding lines, in order."""
    lines = target_text.split("\n")[1:]
    return [m.group("rule_id") for m in map(_FINDING.match, lines) if m]


def token_rule_ids(
    target_text: str, target_ids: Sequence[int], decode: Callable[[Sequence[int]], str]
) -> list[str | None]:
    """Per target token, the rule id its rule-id characters belong to (None for other tokens)."""
    chars = char_parts(target_text)
    lines = target_text.split("\n")
    out: list[str | None] = []
    for start, end in token_spans(target_ids, decode):
        at = next((i for i in range(start, min(end, len(chars))) if chars[i] == "rule_id"), None)
        match = None if at is None else _FINDING.match(lines[target_text.count("\n", 0, at)])
        out.append(match.group("rule_id") if match else None)
    return out


def summarize_rule_ids(
    rows: Iterable[tuple[Sequence[str], Sequence[float], Sequence[str | None]]],
    known: Collection[str],
) -> dict[str, Any]:
    """Loss of the rule-id tokens whose rule some training answer names (`seen`) vs not (`unseen`).

    Args:
        rows: Per example, (parts, token losses, rule id per token) as `token_parts`,
            the cross-entropy and `token_rule_ids` give them.
        known: Rule ids named in the training split's answers.
    """
    sums = {"seen": 0.0, "unseen": 0.0}
    tokens = {"seen": 0, "unseen": 0}
    lines = {"seen": 0, "unseen": 0}
    for parts, losses, rules in rows:
        if not len(parts) == len(losses) == len(rules):
            raise ValueError("parts, losses and rule ids must have one entry per token")
        last: str | None = None
        for part, loss, rule in zip(parts, losses, rules, strict=True):
            if part != "rule_id" or rule is None:
                continue
            kind = "seen" if rule in known else "unseen"
            sums[kind] += float(loss)
            tokens[kind] += 1
            if rule != last:
                lines[kind] += 1
            last = rule
    return {
        kind: {
            "mean_loss": sums[kind] / tokens[kind] if tokens[kind] else None,
            "tokens": tokens[kind],
            "finding_lines": lines[kind],
        }
        for kind in ("seen", "unseen")
    }


def summarize_parts(rows: Sequence[tuple[Sequence[str], Sequence[float]]]) -> dict[str, Any]:
    """Mean loss, token count and share of the total loss per part, and the overall token mean.

    Args:
        rows: Per example, (parts of its target tokens, cross-entropy of each of those tokens).
    """
    sums = dict.fromkeys(PARTS, 0.0)
    counts = dict.fromkeys(PARTS, 0)
    for parts, losses in rows:
        for part, loss in zip(parts, losses, strict=True):
            sums[part] += float(loss)
            counts[part] += 1
    total, n = sum(sums.values()), sum(counts.values())
    return {
        "mean_target_token_loss": total / n if n else None,
        "target_tokens": n,
        "examples": len(rows),
        "parts": {
            part: {
                "mean_loss": sums[part] / counts[part] if counts[part] else None,
                "tokens": counts[part],
                "share_of_loss": sums[part] / total if total else None,
            }
            for part in PARTS
        },
    }


def target_loss_by_part(
    model: Any,
    tokenizer: Any,
    rows: Sequence[dict[str, Any]],
    max_length: int,
    known_rule_ids: Collection[str] | None = None,
) -> dict[str, Any]:
    """Per-part target-token loss of `model` on `{input_text, target_text}` rows.

    Tokenized exactly as in training (`tokenize_example`, loss on the answer); one example per
    forward pass, bf16 autocast on a CPU that supports it, cross-entropy in fp32. With
    `known_rule_ids` (the rule ids of the training answers), the summary also has
    `rule_id_tokens_by_training` (`summarize_rule_ids`).
    """
    import torch
    import torch.nn.functional as F  # noqa: N812

    def decode(ids: Sequence[int]) -> str:
        return tokenizer.decode(list(ids), skip_special_tokens=True)

    device = next(model.parameters()).device
    autocast = torch.autocast(
        "cpu", dtype=torch.bfloat16, enabled=not cuda_available() and cpu_supports_bf16()
    )
    was_training = model.training
    model.eval()
    per_example: list[tuple[list[str], list[float]]] = []
    rules: list[list[str | None]] = []
    with torch.inference_mode(), autocast:
        for row in rows:
            ex = tokenize_example(row["input_text"], row["target_text"], tokenizer, max_length)
            labels = torch.tensor(ex["labels"])
            first = int((labels != IGNORE_INDEX).float().argmax())
            keep = len(ex["input_ids"]) - first + 1
            out = model(
                input_ids=torch.tensor([ex["input_ids"]], device=device), logits_to_keep=keep
            )
            logits = out.logits[0, :-1].float()
            targets = labels[-(keep - 1) :].to(device)
            losses = F.cross_entropy(logits, targets, reduction="none")
            target_ids = [t for t in ex["labels"] if t != IGNORE_INDEX]
            parts = token_parts(row["target_text"], target_ids, decode)
            per_example.append((parts, losses[targets != IGNORE_INDEX].tolist()))
            if known_rule_ids is not None:
                rules.append(token_rule_ids(row["target_text"], target_ids, decode))
    model.train(was_training)
    summary = summarize_parts(per_example)
    if known_rule_ids is not None:
        summary["rule_id_tokens_by_training"] = summarize_rule_ids(
            [(p, losses, r) for (p, losses), r in zip(per_example, rules, strict=True)],
            known_rule_ids,
        )
    return summary


# --------------------------------------------------------------------------------------------
# The training loss


def make_loss_function(label_weight: float) -> Callable[..., Any]:
    """Causal-LM loss with the decision token weighted `label_weight` times (Trainer's compute_loss_func).

    Training (the Trainer passes `num_items_in_batch`, the target tokens of the whole accumulated
    batch): sum of weighted token losses / num_items_in_batch, so gradient accumulation and DDP
    average exactly as the stock loss does. Evaluation (no gradient; transformers 5 passes
    `num_items_in_batch` there too): the plain, unweighted mean over the batch's target tokens,
    comparable across recipes and with `label_weight` 1.
    """

    def loss_fn(outputs: Any, labels: Any, num_items_in_batch: Any = None) -> Any:
        import torch
        import torch.nn.functional as F  # noqa: N812

        # With `logits_to_keep` (TargetLogitsCollator) the model returned logits for the last
        # positions only: align the labels to them (a no-op for full-length logits).
        labels = labels[:, -outputs.logits.size(1) :]
        logits = outputs.logits[:, :-1, :].float()
        targets = labels[:, 1:].to(logits.device)
        mask = targets != IGNORE_INDEX
        token_loss = F.cross_entropy(
            logits.reshape(-1, logits.size(-1)),
            targets.reshape(-1),
            ignore_index=IGNORE_INDEX,
            reduction="none",
        ).view_as(targets)
        weights = mask.float()
        if num_items_in_batch is None or not torch.is_grad_enabled():
            return (token_loss * weights).sum() / weights.sum().clamp(min=1)
        first = mask & (mask.long().cumsum(dim=1) == 1)  # the first target token of each row
        weights = weights + (label_weight - 1.0) * first.float()
        total = torch.as_tensor(num_items_in_batch, device=logits.device, dtype=logits.dtype)
        return (token_loss * weights).sum() / total.clamp(min=1)

    return loss_fn


class TargetLogitsCollator:
    """Wraps a collator: the model projects only the positions that predict target tokens.

    With the loss on the answer only, the logits of the prompt positions are never used, yet the
    LM head (49,152 x 576 for SmolLM2) and the fp32 cross-entropy would run on every position.
    The batch gets `logits_to_keep` = the positions from the one before the earliest target token
    to the end (transformers' causal LMs slice the hidden states before the LM head); the loss
    function aligns the labels to the logits it gets back. Rows without a target token keep all.
    """

    def __init__(self, collator: Callable[[list[dict[str, Any]]], dict[str, Any]]) -> None:
        self.collator = collator

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        batch = self.collator(features)
        batch["logits_to_keep"] = logits_to_keep(batch["labels"])
        return batch


def logits_to_keep(labels: Any) -> int:
    """How many trailing positions must be projected to score every label that is not -100.

    The logit at position t predicts token t + 1, so the earliest target token at position f needs
    the positions from f - 1 on: `width - f + 1` of them. 0 (keep all) when no row has a target.
    """
    mask = labels != IGNORE_INDEX
    if not bool(mask.any()):
        return 0
    width = int(labels.size(1))
    first = int(mask.float().argmax(dim=1)[mask.any(dim=1)].min())
    return min(width, width - first + 1)
