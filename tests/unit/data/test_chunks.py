"""Block-level examples: chunk planning, per-block labels from finding lines, dedupe, sampling."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from axon_infralinter.data.chunks import ChunkConfig, build_chunk_dataset, chunk_record
from axon_infralinter.data.prompt import build_prompt, split_prompt
from axon_infralinter.errors import InputError
from axon_infralinter.files import read_jsonl, write_jsonl

BUCKET = """resource "aws_s3_bucket" "logs" {
  bucket = "logs"
  acl    = "public-read"
}
"""
VARIABLE = """# the region
variable "region" {
  default = "eu-west-1"
}
"""
TEXT = BUCKET + "\n" + VARIABLE  # bucket: lines 1-4, variable: lines 7-9


def words(code: str) -> int:
    return len(code.split())


def finding(rule: str, line: int, resource: str = "aws_s3_bucket.logs") -> dict[str, Any]:
    return {
        "tool": "checkov",
        "rule_id": rule,
        "severity": None,
        "resource": resource,
        "path": "main.tf",
        "start_line": line,
        "end_line": line + 3,
        "title": "Ensure the bucket is not public",
    }


def record(text: str, label: str, findings: list[dict[str, Any]], i: int = 0) -> dict[str, Any]:
    return {
        "id": f"acme/repo::m{i}/main.tf",
        "repo": "acme/repo",
        "path": f"m{i}/main.tf",
        "sha256": hashlib.sha256(text.encode()).hexdigest(),
        "label": label,
        "input_text": build_prompt(text),
        "target_text": label,
        "findings": findings,
    }


# CKV_AWS_20 (public ACL) is in the security-core policy; CKV_AWS_18 (access logging) is not.
PUBLIC = finding("CKV_AWS_20", 1)


def test_short_file_stays_whole_with_the_file_label() -> None:
    rows = chunk_record(record(TEXT, "INSECURE", [PUBLIC]), TEXT, 1000, words)
    assert len(rows) == 1
    row = rows[0]
    assert row["whole_file"] and row["label"] == "INSECURE"
    assert (row["start_line"], row["end_line"]) == (1, 9)
    assert "CKV_AWS_20" in row["target_text"]
    assert "# the region" not in row["input_text"]  # comments stripped, like every prompt


def test_ids_answer_format_reaches_the_chunk_targets() -> None:
    rows = chunk_record(record(TEXT, "INSECURE", [PUBLIC]), TEXT, 1000, words, answer_format="ids")
    assert rows[0]["target_text"] == "INSECURE\n- CKV_AWS_20 (aws_s3_bucket.logs)"


def test_long_file_is_split_and_each_block_labelled_by_its_own_findings() -> None:
    rows = chunk_record(record(TEXT, "INSECURE", [PUBLIC]), TEXT, 12, words)
    assert [(r["start_line"], r["end_line"]) for r in rows] == [(1, 4), (7, 9)]
    assert [r["label"] for r in rows] == ["INSECURE", "SECURE"]
    assert [r["resource"] for r in rows] == ["aws_s3_bucket.logs", "var.region"]
    assert split_prompt(rows[1]["input_text"])[1].startswith('variable "region"')
    assert rows[1]["target_text"] == "SECURE"
    assert all(
        r["file_id"] == "acme/repo::m0/main.tf" and r["file_label"] == "INSECURE" for r in rows
    )
    assert rows[0]["id"].endswith("#L1-4")


def test_findings_outside_the_policy_do_not_make_a_block_insecure() -> None:
    logging = finding("CKV_AWS_18", 1)
    rows = chunk_record(record(TEXT, "SECURE", [logging]), TEXT, 12, words)
    assert [r["label"] for r in rows] == ["SECURE", "SECURE"]


def layout(tmp_path: Path, records: list[tuple[str, dict[str, Any]]], split: str) -> None:
    corpus = tmp_path / "corpus"
    for text, rec in records:
        target = corpus / rec["repo"].replace("/", "__") / rec["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    write_jsonl(data / f"{split}.jsonl", [rec for _, rec in records])


def test_build_dedupes_training_chunks_and_skips_changed_files(tmp_path: Path) -> None:
    other = BUCKET.replace('"logs"', '"site"') + "\n" + VARIABLE  # same variable block again
    changed = record(TEXT, "INSECURE", [PUBLIC], i=2)
    changed["sha256"] = "0" * 64  # the corpus file no longer matches the record
    layout(
        tmp_path,
        [
            (TEXT, record(TEXT, "INSECURE", [PUBLIC], i=0)),
            (other, record(other, "SECURE", [], i=1)),
            (TEXT, changed),
        ],
        "train",
    )
    for split in ("val", "test"):
        write_jsonl(tmp_path / "data" / f"{split}.jsonl", [])
    card = build_chunk_dataset(
        ChunkConfig(tmp_path / "data", tmp_path / "corpus", tmp_path / "out", max_code_tokens=12),
        words,
    )
    train = read_jsonl(tmp_path / "out" / "train.jsonl")
    # 2 files x 2 blocks, the identical variable block kept once
    assert len(train) == 3
    assert card["splits"]["train"]["dropped"] == {"duplicate": 1, "conflicting_labels": 0}
    assert card["splits"]["train"]["INSECURE"] == 1
    assert card["skipped"] == [{"id": changed["id"], "reason": "sha256 differs from record"}]
    saved = json.loads((tmp_path / "out" / "chunks_card.json").read_text())
    assert saved["source_data"] == str(tmp_path / "data")


def test_max_train_keeps_insecure_chunks_first(tmp_path: Path) -> None:
    recs = []
    for i in range(6):
        text = BUCKET.replace('"logs"', f'"b{i}"')
        label = "INSECURE" if i < 2 else "SECURE"
        recs.append((text, record(text, label, [PUBLIC] if i < 2 else [], i=i)))
    layout(tmp_path, recs, "train")
    for split in ("val", "test"):
        write_jsonl(tmp_path / "data" / f"{split}.jsonl", [])
    card = build_chunk_dataset(
        ChunkConfig(
            tmp_path / "data", tmp_path / "corpus", tmp_path / "out", 1000, max_train=4, seed=1
        ),
        words,
    )
    assert card["splits"]["train"]["chunks"] == 4
    assert card["splits"]["train"]["INSECURE"] == 2


def test_missing_split_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="axon dataset build"):
        build_chunk_dataset(ChunkConfig(tmp_path, tmp_path, tmp_path / "out", 100), words)


def _typed(kind: str, name: str, label: str) -> dict[str, Any]:
    code = f'resource "{kind}" "{name}" {{\n  name = "{name}"\n}}\n'
    return {"id": f"{kind}.{name}", "label": label, "input_text": build_prompt(code)}


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_balance_types_draws_secure_chunks_of_the_insecure_types_first(seed: int) -> None:
    from axon_infralinter.data.chunks import _sample_types, resource_types

    rows = [
        _typed("aws_s3_bucket", "i1", "INSECURE"),
        _typed("aws_s3_bucket", "i2", "INSECURE"),
        _typed("google_storage_bucket", "i3", "INSECURE"),
        *[_typed("azurerm_resource_group", f"s{i}", "SECURE") for i in range(10)],
        _typed("google_storage_bucket", "s1", "SECURE"),
        _typed("aws_s3_bucket", "s2", "SECURE"),
        _typed("aws_s3_bucket", "s3", "SECURE"),
        _typed("aws_s3_bucket", "s4", "SECURE"),  # one more than the INSECURE side needs
    ]
    assert resource_types(rows[0]) == {"aws_s3_bucket"}
    kept = _sample_types(rows, 6, seed)
    secure = [r for r in kept if r["label"] == "SECURE"]
    assert len(kept) == 6 and len(secure) == 3
    types = sorted(t for r in secure for t in resource_types(r))
    # two of the three aws_s3_bucket ones and the google_storage_bucket one, no resource group
    assert types == ["aws_s3_bucket", "aws_s3_bucket", "google_storage_bucket"]
    # the rest of the budget is drawn at random when the typed SECURE chunks run out
    assert len(_sample_types(rows, 14, seed)) == 14
    assert [r["id"] for r in kept] == [r["id"] for r in rows if r in kept]  # order kept


def test_build_records_balance_types_on_the_card(tmp_path: Path) -> None:
    layout(tmp_path, [(BUCKET, record(BUCKET, "INSECURE", [PUBLIC]))], "train")
    for split in ("val", "test"):
        write_jsonl(tmp_path / "data" / f"{split}.jsonl", [])
    config = ChunkConfig(
        tmp_path / "data", tmp_path / "corpus", tmp_path / "out", 1000, max_train=4,
        balance_types=True,
    )  # fmt: skip
    assert build_chunk_dataset(config, words)["balance_types"] is True
