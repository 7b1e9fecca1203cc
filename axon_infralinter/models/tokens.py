"""The one encode/truncate rule shared by training and scoring.

A prompt is tokenized as head / code / tail pieces (`data.prompt.split_prompt`). When it does not fit,
the middle of the code is replaced by `TRUNCATION_MARKER`: the instruction, the prompt's end and the
answer are never cut. `tokenize_example` (training) and `prompt_ids` (scoring, generation) both go
through `fit_code`, so a prompt the model is asked about is tokenized exactly as it was in training.

`code_budget` is how many code tokens fit beside the instruction and the answer: files with more are
judged block by block (`terraform.chunks.plan_chunks`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from axon_infralinter.data.prompt import build_prompt, split_prompt
from axon_infralinter.errors import ModelError

LossOn = Literal["target", "all"]
TRUNCATION_MARKER = "\n...\n"
IGNORE_INDEX = -100
"""Label of a position that is not in the loss (the value transformers and PyTorch skip)."""
CODE_MARGIN = 64
"""Tokens `code_budget` leaves free beside the instruction and the answer."""


def encoder(tokenizer: Any) -> Callable[[str], list[int]]:
    """Text -> token ids without special tokens ("" -> [])."""

    def enc(text: str) -> list[int]:
        return list(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []

    return enc


def fit_code(code_ids: list[int], budget: int, enc: Callable[[str], list[int]]) -> list[int]:
    """`code_ids` when they fit `budget`, else their front and back around the truncation marker.

    The front keeps the odd token: with `keep` tokens kept, `keep - keep // 2` come from the front.
    """
    if len(code_ids) <= budget:
        return code_ids
    marker = enc(TRUNCATION_MARKER)
    keep = max(budget - len(marker), 0)
    front, back = keep - keep // 2, keep // 2
    return code_ids[:front] + marker + (code_ids[len(code_ids) - back :] if back else [])


def answer_prefix_ids(tokenizer: Any) -> list[int]:
    """Tokens of the "\\n\\n" that opens an answer, as tokenized *before a label*.

    BPE tokenizes "\\n\\n" alone differently from "\\n\\nSECURE" (SmolLM2: [1116] vs [198, 198, ...]),
    so the prefix is the common start of the two label encodings, as seen in training.
    """
    enc = encoder(tokenizer)
    secure, insecure = enc("\n\nSECURE"), enc("\n\nINSECURE")
    n = 0
    while n < min(len(secure), len(insecure)) and secure[n] == insecure[n]:
        n += 1
    return secure[:n]


def label_token_ids(tokenizer: Any) -> tuple[int, int]:
    """The ids of the SECURE and INSECURE tokens at the decision position (after the separator).

    Score mode reads P(INSECURE) from these two logits; pair training ranks on their difference.
    """
    enc = encoder(tokenizer)
    secure, insecure = enc("\n\nSECURE"), enc("\n\nINSECURE")
    sep = len(answer_prefix_ids(tokenizer))
    if sep >= min(len(secure), len(insecure)) or secure[sep] == insecure[sep]:
        raise ModelError("this tokenizer does not separate SECURE and INSECURE")
    return secure[sep], insecure[sep]


def prompt_ids(
    input_text: str, tokenizer: Any, max_length: int = 1024, reserve: int = 8
) -> list[int]:
    """Token ids of a prompt followed by the "\\n\\n" that opens the answer, truncated like training.

    Args:
        input_text: A prompt built by `data.prompt.build_prompt`.
        tokenizer: The model's tokenizer.
        max_length: Token budget of prompt + answer.
        reserve: Tokens kept free for the answer after the separator.
    """
    head, code, tail = split_prompt(input_text)
    enc = encoder(tokenizer)
    head_ids, tail_ids, sep = enc(head), enc(tail), answer_prefix_ids(tokenizer)
    budget = max_length - reserve - len(head_ids) - len(tail_ids) - len(sep)
    return head_ids + fit_code(enc(code), budget, enc) + tail_ids + sep


def tokenize_example(
    input_text: str,
    target_text: str,
    tokenizer: Any,
    max_length: int = 1024,
    loss_on: LossOn = "target",
) -> dict[str, list[int]]:
    """Tokenize one `{input_text}\\n\\n{target_text}` example with a label mask.

    Truncated by `fit_code` as `prompt_ids` truncates (the answer's tokens are what is reserved), so
    the prompt part equals `prompt_ids(input_text, ..., reserve=len(answer) - len(separator))`.
    Labels are -100 on every prompt position and on the separator when loss_on="target".
    """
    head, code, tail = split_prompt(input_text)
    enc = encoder(tokenizer)
    head_ids, tail_ids = enc(head), enc(tail)
    answer_ids = enc("\n\n" + target_text) + [tokenizer.eos_token_id]
    budget = max_length - len(head_ids) - len(tail_ids) - len(answer_ids)
    prompt = head_ids + fit_code(enc(code), budget, enc) + tail_ids
    input_ids = (prompt + answer_ids)[: max(max_length, len(answer_ids))]
    if loss_on == "target":
        labels = [IGNORE_INDEX] * len(prompt) + answer_ids
        # The "\n\n" that opens the answer is prompt format, not a target token.
        n_sep = len(answer_prefix_ids(tokenizer))
        labels[len(prompt) : len(prompt) + n_sep] = [IGNORE_INDEX] * n_sep
    else:
        labels = list(input_ids)
    return {
        "input_ids": input_ids,
        "attention_mask": [1] * len(input_ids),
        "labels": labels[: len(input_ids)],
    }


def code_budget(tokenizer: Any, max_length: int) -> int:
    """Code tokens that fit in `max_length` beside the instruction, the answer and a margin."""
    overhead = len(tokenizer(build_prompt(""), add_special_tokens=False)["input_ids"])
    return max_length - overhead - CODE_MARGIN
