"""Score mode with the real model: sharing the instruction's keys and values across a call and
right-padding token-bounded batches gives the scores of one full forward pass per prompt."""

from __future__ import annotations

import pytest

from axon_infralinter.data.prompt import build_prompt
from axon_infralinter.models.predict import SHIPPED_ADAPTER, load_predictor
from axon_infralinter.models.tokens import prompt_ids

CODES = [
    'resource "aws_s3_bucket_acl" "b" {\n  acl = "public-read"\n}',
    'resource "aws_s3_bucket" "b" {\n  bucket = "b"\n}',
    'variable "x" {}',
    'resource "aws_db_instance" "db" {\n  engine = "mysql"\n  storage_encrypted = false\n'
    "  publicly_accessible = true\n  backup_retention_period = 0\n}",
    'resource "google_storage_bucket" "g" {\n  name = "g"\n  uniform_bucket_level_access = true\n}',
]


def test_batched_scores_equal_one_full_forward_pass_per_prompt() -> None:
    import torch

    predictor = load_predictor(SHIPPED_ADAPTER, bf16=False)  # fp32: equal up to float rounding
    predictor.max_batch_tokens = 120  # several batches of different widths
    prompts = [build_prompt(code) for code in CODES]
    batched = predictor.score_prompts(prompts, batch_size=3)
    assert predictor.stats["tokens_computed"] < predictor.tokens_processed  # the prefix ran once
    secure, insecure = predictor._label_token_ids()
    reference = []
    with torch.inference_mode():
        for prompt in prompts:
            ids = torch.tensor([prompt_ids(prompt, predictor.tokenizer, predictor.max_length)])
            logits = predictor.model(input_ids=ids).logits[0, -1, [secure, insecure]]
            reference.append(float(torch.softmax(logits.float(), -1)[1]))
    assert batched == pytest.approx(reference, abs=1e-4)
    assert predictor.score_prompts(prompts[:1]) == pytest.approx(reference[:1], abs=1e-4)
