"""Whole-file judgement: a long file is split by block and gets its worst block's score."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from axon_infralinter.data.prompt import build_prompt, split_prompt
from axon_infralinter.models.predict import Predictor
from axon_infralinter.models.tokens import code_budget
from axon_infralinter.models.train_lora import file_level_split


class WordTokenizer:
    """One token per whitespace-separated word."""

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
        return {"input_ids": list(range(len(text.split())))}


BUCKET = 'resource "aws_s3_bucket" "a" {\n  acl = "public-read"\n}\n'
ROLE = 'resource "aws_iam_role" "r" {\n  name = "r"\n}\n'


class Scored(Predictor):
    """A Predictor whose forward pass is a table: P(INSECURE) by the code inside the prompt."""

    table: dict[str, float] = {}
    seen: list[list[str]] = []

    def score_prompts(
        self, prompts: Any, batch_size: int = 8, progress: bool = False
    ) -> list[float]:
        codes = [split_prompt(p)[1] for p in prompts]
        self.seen.append(codes)
        return [self.table.get(c, 0.1) for c in codes]


def predictor(max_length: int) -> Scored:
    p = Scored(model=None, tokenizer=WordTokenizer(), name="t", max_length=max_length)
    p.seen = []
    p.table = {BUCKET.strip(): 0.9, ROLE.strip(): 0.2}
    return p


def test_code_budget_leaves_room_for_instruction_answer_and_margin() -> None:
    overhead = len(build_prompt("").split())
    assert code_budget(WordTokenizer(), 200) == 200 - overhead - 64


def test_file_that_fits_is_scored_whole() -> None:
    p = predictor(max_length=1000)
    whole = build_prompt(ROLE + "\n" + BUCKET)
    assert p.score_documents([whole]) == [0.1]  # the whole file is one unknown prompt
    assert p.seen == [[split_prompt(whole)[1]]]
    assert p.worst_block_prompts([whole]) == [whole]


def test_long_file_takes_its_worst_block() -> None:
    overhead = len(build_prompt("").split())
    p = predictor(max_length=overhead + 64 + 8)  # 8 words of code: each block fits, not both
    long = build_prompt(ROLE + "\n" + BUCKET)
    short = build_prompt(ROLE)
    assert p.score_documents([long, short]) == [0.9, 0.2]
    assert p.stats["chunks_scored"] == 3
    assert p.worst_block_prompts([long]) == [build_prompt(BUCKET)]


def test_threshold_is_tuned_on_the_file_level_split_behind_chunks(tmp_path: Path) -> None:
    chunks, files = tmp_path / "chunks", tmp_path / "data"
    chunks.mkdir()
    files.mkdir()
    (files / "val.jsonl").write_text("")
    assert file_level_split(chunks, "val") == chunks / "val.jsonl"
    (chunks / "chunks_card.json").write_text(json.dumps({"source_data": str(files)}))
    assert file_level_split(chunks, "val") == files / "val.jsonl"
