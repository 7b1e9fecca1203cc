"""Where the target-token loss goes: the verdict token vs the finding lines of the answer.

An answer is `SECURE`, or `INSECURE` plus up to three lines `- RULE_ID: title (resource)` or, in the
`ids` answer format, `- RULE_ID (resource)` (`data.prompt.build_target`). The target-token validation loss averages over all of those tokens,
so an INSECURE answer with three finding lines weighs ~30x a SECURE one, and most of the number is
about guessing which rule ids a scanner fired. This module splits the mean per part of the answer:

- `decision`: the first answer token, the one that separates SECURE from INSECURE (what score mode
  reads);
- `rule_id`, `title`, `resource`: the fields of a finding line (no title in the `ids` format);
- `format`: the rest of the label word, `- `, `: `, brackets and newlines;
- `end`: the end-of-sequence token.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

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


def token_parts(
    target_text: str, target_ids: Sequence[int], decode: Callable[[Sequence[int]], str]
) -> list[str]:
    """The answer part of every target token (the label mask's non -100 positions, EOS included).

    Token spans come from decoding growing prefixes of `target_ids` (`decode` skips special
    tokens). The first token is `decision`; a token with no characters (EOS) is `end`; otherwise
    the first of its characters that is not `format` names its part.
    """
    chars = char_parts(target_text)
    out: list[str] = []
    previous = 0
    for i in range(len(target_ids)):
        upto = len(decode(target_ids[: i + 1]))
        span = chars[previous:upto]
        previous = upto
        if i == 0:
            out.append("decision")
        elif not span:
            out.append("end")
        else:
            out.append(next((p for p in span if p != "format"), "format"))
    return out


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
    model: Any, tokenizer: Any, rows: Sequence[dict[str, Any]], max_length: int
) -> dict[str, Any]:
    """Per-part target-token loss of `model` on `{input_text, target_text}` rows.

    Tokenized exactly as in training (`tokenize_example`, loss on the answer); one example per
    forward pass, bf16 autocast on a CPU that supports it, cross-entropy in fp32.
    """
    import torch
    import torch.nn.functional as F  # noqa: N812

    from axon_infralinter.models.base_model import cpu_supports_bf16, cuda_available
    from axon_infralinter.models.train_lora import IGNORE_INDEX, tokenize_example

    def decode(ids: Sequence[int]) -> str:
        return tokenizer.decode(list(ids), skip_special_tokens=True)

    device = next(model.parameters()).device
    autocast = torch.autocast(
        "cpu", dtype=torch.bfloat16, enabled=not cuda_available() and cpu_supports_bf16()
    )
    was_training = model.training
    model.eval()
    per_example: list[tuple[list[str], list[float]]] = []
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
    model.train(was_training)
    return summarize_parts(per_example)
