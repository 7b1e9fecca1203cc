"""Block splitting, suppression comments and chunk planning (terraform/blocks.py, terraform/chunks.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import hcl2

from axon_infralinter.terraform.blocks import (
    count_lines,
    file_suppression,
    find_suppressions,
    split_blocks,
)
from axon_infralinter.terraform.chunks import Chunk, plan_chunks

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "lint"


def _words(code: str) -> int:
    return len(code.split())


def _long_fixture() -> tuple[str, list[list[Any]]]:
    text = (FIXTURES / "long_mixed_blocks.tf").read_text(encoding="utf-8")
    expected = json.loads((FIXTURES / "long_mixed_blocks.blocks.json").read_text(encoding="utf-8"))
    return text, expected


def _hcl2_ranges(obj: Any, acc: list[tuple[int, int]]) -> list[tuple[int, int]]:
    if isinstance(obj, dict):
        if "__start_line__" in obj:
            acc.append((obj["__start_line__"], obj["__end_line__"]))
        for value in obj.values():
            _hcl2_ranges(value, acc)
    elif isinstance(obj, list):
        for value in obj:
            _hcl2_ranges(value, acc)
    return acc


def test_split_blocks_long_fixture_exact_ranges_and_addresses() -> None:
    text, expected = _long_fixture()
    got = [[b.start_line, b.end_line, b.address] for b in split_blocks(text)]
    assert got == expected
    assert len(got) == 37


def test_split_blocks_agrees_with_hcl2_line_numbers() -> None:
    # hcl2 records lines for resource/data/module/provider/variable/locals/terraform (not output).
    text, expected = _long_fixture()
    hcl2_ranges = sorted(_hcl2_ranges(hcl2.loads(text), []))
    ours = sorted((s, e) for s, e, address in expected if not address.startswith("output."))
    assert hcl2_ranges == ours


def test_split_blocks_ignores_braces_in_strings_comments_and_heredocs() -> None:
    text = (
        "# { not a block\n"  # 1
        "locals {\n"  # 2
        '  a = "}"\n'  # 3
        '  b = "${jsonencode({x = "}"})}"\n'  # 4
        "  /* } */ c = 1 // }\n"  # 5
        "  d = <<EOT\n"  # 6
        "}\n"  # 7
        "EOT\n"  # 8
        "}\n"  # 9
        "top = { a = 1 }\n"  # 10: a top-level attribute, not a block
        'module "m" { source = "./m" }\n'  # 11
    )
    blocks = split_blocks(text)
    assert [(b.start_line, b.end_line, b.kind, b.labels) for b in blocks] == [
        (2, 9, "locals", ()),
        (11, 11, "module", ("m",)),
    ]


def test_block_addresses() -> None:
    text = (
        'resource "aws_s3_bucket" "logs" {}\n'
        'data "aws_iam_policy_document" "p" {}\n'
        'module "vpc" {}\n'
        'variable "region" {}\n'
        'output "arn" {}\n'
        'provider "aws" {}\n'
        "locals {}\n"
        "terraform {}\n"
    )
    assert [b.address for b in split_blocks(text)] == [
        "aws_s3_bucket.logs",
        "data.aws_iam_policy_document.p",
        "module.vpc",
        "var.region",
        "output.arn",
        "provider.aws",
        "locals",
        "terraform",
    ]


def test_split_blocks_drops_unclosed_block() -> None:
    assert split_blocks('resource "a" "b" {\n  x = 1\n') == []


def test_find_suppressions_only_in_comments() -> None:
    text = (
        'a = "# axon:ignore in a string"\n'  # 1
        "# axon:ignore   reviewed by security  \n"  # 2
        "b = 1 // axon:ignore\n"  # 3
        "c = <<EOT\n"  # 4
        "# axon:ignore inside a heredoc\n"  # 5
        "EOT\n"  # 6
        "d = 2 # axon:ignorex not the keyword\n"  # 7
        "e = 3 # AXON:IGNORE wrong case\n"  # 8
    )
    assert find_suppressions(text) == {2: "reviewed by security", 3: ""}


def test_file_suppression_line_one_only() -> None:
    assert file_suppression("# axon:ignore generated\nresource {}\n") == "generated"
    assert file_suppression("# axon:ignore\n") == ""
    assert file_suppression("\n# axon:ignore generated\n") is None
    assert file_suppression('resource "a" "b" {}\n') is None


def test_count_lines() -> None:
    assert count_lines("") == 0
    assert count_lines("a") == 1
    assert count_lines("a\n") == 1
    assert count_lines("a\nb") == 2
    assert count_lines("a\n\n") == 2


def test_plan_chunks_short_file_is_one_chunk_over_all_lines() -> None:
    text = (FIXTURES / "secure_private_bucket.tf").read_text(encoding="utf-8")
    chunks = plan_chunks(text, max_code_tokens=10_000, count_tokens=_words)
    assert len(chunks) == 1
    assert (chunks[0].start_line, chunks[0].end_line, chunks[0].resource) == (1, 11, None)
    assert chunks[0].code == text.strip()
    assert not chunks[0].suppressed


def test_plan_chunks_single_block_file_names_its_resource() -> None:
    chunks = plan_chunks('# c\nresource "aws_s3_bucket" "x" {\n}\n', 100, _words)
    assert [(c.start_line, c.end_line, c.resource, c.code) for c in chunks] == [
        (1, 3, "aws_s3_bucket.x", 'resource "aws_s3_bucket" "x" {\n}')
    ]


def test_plan_chunks_short_file_leaves_suppressed_block_out() -> None:
    text = (FIXTURES / "suppressed_block.tf").read_text(encoding="utf-8")
    chunks = plan_chunks(text, 10_000, _words)
    assert chunks == [
        Chunk(
            1,
            15,
            "aws_s3_bucket.logs",
            'resource "aws_s3_bucket" "logs" {\n  bucket = "example-logs"\n}',
        ),
        Chunk(
            1,
            11,
            "aws_security_group.bastion",
            "",
            True,
            "bastion is reachable only through the corporate VPN",
        ),
    ]
    assert "0.0.0.0/0" not in chunks[0].code


def test_plan_chunks_long_file_splits_by_block() -> None:
    text, expected = _long_fixture()
    chunks = plan_chunks(text, max_code_tokens=200, count_tokens=_words)
    assert [[c.start_line, c.end_line, c.resource] for c in chunks] == expected
    suppressed = [c for c in chunks if c.suppressed]
    assert [(c.start_line, c.resource) for c in suppressed] == [(313, "aws_security_group.admin")]
    assert suppressed[0].reason == (
        "admin access is limited by the VPN gateway in front of this VPC"
    )
    locals_chunk = next(c for c in chunks if c.resource == "locals")
    # comments are stripped from the code the model sees, lines kept
    assert "opening brace" not in locals_chunk.code
    assert locals_chunk.code.count("\n") == 47 - 38


def test_plan_chunks_keep_comments() -> None:
    text = "# note\nlocals {\n  a = 1 # why\n}\n"
    assert plan_chunks(text, 100, _words)[0].code == "locals {\n  a = 1\n}"
    assert plan_chunks(text, 100, _words, keep_comments=True)[0].code == text.strip()


def test_plan_chunks_threshold_is_inclusive() -> None:
    text = "locals {\n  a = 1\n}\nlocals {\n  b = 2\n}\n"
    words = _words(text)  # 12
    assert len(plan_chunks(text, words, _words)) == 1
    assert len(plan_chunks(text, words - 1, _words)) == 2


def test_plan_chunks_long_file_without_blocks_is_judged_whole() -> None:
    text = "a = 1\nb = 2\nc = 3\n"
    chunks = plan_chunks(text, 1, _words)
    assert [(c.start_line, c.end_line, c.resource) for c in chunks] == [(1, 3, None)]


def test_plan_chunks_everything_suppressed() -> None:
    text = 'resource "a" "b" {\n  # axon:ignore ok\n}\n'
    assert plan_chunks(text, 100, _words) == [Chunk(1, 3, "a.b", "", True, "ok")]


def test_plan_chunks_marks_chunks_of_only_inputs_outputs_and_settings() -> None:
    # Judged whole: context-only when every block is a variable/output/locals/terraform block.
    only = 'terraform {\n  required_version = ">= 1.0"\n}\nvariable "a" {}\noutput "b" {\n  value = 1\n}\n'
    assert [c.context_only for c in plan_chunks(only, 10_000, _words)] == [True]
    mixed = only + 'resource "aws_s3_bucket" "x" {\n}\n'
    assert [c.context_only for c in plan_chunks(mixed, 10_000, _words)] == [False]
    for kind in ("provider", "module", "data"):  # inspected by scanner rules: judged
        block = f'{kind} "p" {{\n  x = 1\n}}\n' if kind != "data" else 'data "t" "n" {\n}\n'
        assert [c.context_only for c in plan_chunks(block, 10_000, _words)] == [False]
    # Block by block: each block on its own.
    chunks = plan_chunks(mixed, 3, _words)
    assert [(c.resource, c.context_only) for c in chunks] == [
        ("terraform", True), ("var.a", True), ("output.b", True), ("aws_s3_bucket.x", False),
    ]  # fmt: skip
