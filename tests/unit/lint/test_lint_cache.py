"""The verdict cache (lint/cache.py) through `scan()`, with the fake predictor: what reaches the model."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from axon_infralinter.errors import InputError
from axon_infralinter.files import sha256_text
from axon_infralinter.lint.cache import (
    CachedVerdict,
    VerdictCache,
    judge_fingerprint,
    read_cache_entry,
)
from axon_infralinter.lint.formats import to_json
from axon_infralinter.lint.scan import ScanOptions, ScanReport, scan
from axon_infralinter.settings import load_settings

BAD_ACL = 'resource "aws_s3_bucket_acl" "b" {\n  acl = "public-read"\n}\n'
GOOD = 'resource "aws_s3_bucket" "b" {\n  bucket = "b"\n}\n'


def _scan(root: Path, predictor, cache: VerdictCache | None, **kwargs) -> ScanReport:
    return scan(ScanOptions(paths=[root], root=root, **kwargs), predictor, cache=cache)


def _same(a: ScanReport, b: ScanReport) -> dict:
    """The parts of two JSON reports that must be equal (timings and cache counts aside)."""
    left, right = to_json(a), to_json(b)
    for doc in (left, right):
        doc.pop("seconds")
        doc.pop("stats")
    assert left == right
    return left


@pytest.fixture
def cache(tmp_path: Path) -> VerdictCache:
    return VerdictCache(tmp_path / "verdict-cache", "f" * 64)


def test_warm_rescan_makes_no_model_call_and_gives_the_same_report(tree, predictor, cache) -> None:
    predictor.max_code_tokens = 200  # long_mixed_blocks.tf is judged block by block
    cold = _scan(tree, predictor, cache)
    calls = (len(predictor.score_calls), len(predictor.generate_calls))
    assert cold.stats.scored == cold.stats.unique > 0
    assert cold.stats.cache_hits == 0 and cold.stats.cache is True
    warm = _scan(tree, predictor, cache)
    assert (len(predictor.score_calls), len(predictor.generate_calls)) == calls
    assert (warm.stats.scored, warm.stats.explained, warm.stats.corrupt) == (0, 0, 0)
    assert warm.stats.cache_hits == warm.stats.unique == cold.stats.unique
    doc = _same(cold, warm)
    assert any(b["explanation"] for f in doc["files"] for b in f["blocks"])  # cached too


def test_identical_blocks_in_different_files_are_scored_once(tmp_path: Path, predictor) -> None:
    (tmp_path / "a.tf").write_text(BAD_ACL, encoding="utf-8")
    (tmp_path / "b.tf").write_text("# another copy\n" + BAD_ACL, encoding="utf-8")
    report = _scan(tmp_path, predictor, None)  # no cache: still judged once per scan
    assert predictor.score_calls == [[BAD_ACL.strip()]]
    assert predictor.generate_calls == [[BAD_ACL.strip()]]
    assert (report.stats.chunks, report.stats.unique, report.stats.scored) == (2, 1, 1)
    assert [f.label for f in report.files] == ["INSECURE", "INSECURE"]
    a, b = (f.blocks[0] for f in report.files)
    assert (a.score, a.explanation, a.text_sha256) == (b.score, b.explanation, b.text_sha256)


def test_no_cache_judges_again(tree, predictor) -> None:
    _scan(tree, predictor, None)
    _scan(tree, predictor, None)
    assert len(predictor.score_calls) == 2
    assert _scan(tree, predictor, None).stats.cache is False


def test_a_corrupt_entry_is_rescored_not_fatal(tmp_path: Path, predictor, cache) -> None:
    (tmp_path / "a.tf").write_text(BAD_ACL, encoding="utf-8")
    (tmp_path / "b.tf").write_text(GOOD, encoding="utf-8")
    cold = _scan(tmp_path, predictor, cache)
    entries = sorted(p.name for p in cache.folder.rglob("*"))
    assert len([e for e in entries if e.endswith(".json")]) == 2  # one per distinct chunk text
    assert not [e for e in entries if e.endswith(".tmp")]  # atomic writes leave no temp file
    bad = cache.path(sha256_text(GOOD.strip()))
    bad.write_text('{"version": 1, "fingerp', encoding="utf-8")  # a torn write
    predictor.score_calls.clear()
    warm = _scan(tmp_path, predictor, cache)
    assert predictor.score_calls == [[GOOD.strip()]]
    assert (warm.stats.corrupt, warm.stats.scored, warm.stats.cache_hits) == (1, 1, 1)
    assert cache.counts.corrupt == 1
    _same(cold, warm)
    assert json.loads(bad.read_text())["score"] == 0.05  # rewritten whole


def test_threshold_is_applied_after_the_cache(tmp_path: Path, predictor, cache) -> None:
    (tmp_path / "tls.tf").write_text('resource "x" "t" {\n  mode = "weak-tls"\n}\n', "utf-8")
    assert _scan(tmp_path, predictor, cache, explain=False).files[0].label == "INSECURE"  # 0.6
    predictor.score_calls.clear()
    report = _scan(tmp_path, predictor, cache, threshold=0.7)
    assert report.files[0].label == "SECURE"
    assert report.files[0].blocks[0].explanation == ""
    assert predictor.score_calls == [] and predictor.generate_calls == []


def test_explanations_are_generated_once_and_only_when_asked(tmp_path: Path, predictor, cache):
    (tmp_path / "a.tf").write_text(BAD_ACL, encoding="utf-8")
    (tmp_path / "b.tf").write_text(GOOD, encoding="utf-8")
    quiet = _scan(tmp_path, predictor, cache, explain=False)
    assert predictor.generate_calls == []
    stored = {json.loads(p.read_text())["explanation"] for p in cache.folder.rglob("*.json")}
    assert stored == {None}  # the score alone
    explained = _scan(tmp_path, predictor, cache)
    assert predictor.generate_calls == [[BAD_ACL.strip()]]  # the SECURE block is not explained
    assert (explained.stats.scored, explained.stats.explained) == (0, 1)
    assert explained.files[0].blocks[0].explanation.startswith("CKV_AWS_20")
    again = _scan(tmp_path, predictor, cache)
    assert len(predictor.generate_calls) == 1 and again.stats.explained == 0
    # --no-explain shows no explanation even when one is cached: the report never depends on it
    assert _same(quiet, _scan(tmp_path, predictor, cache, explain=False))


def test_judges_do_not_share_entries(tmp_path: Path, predictor) -> None:
    (tmp_path / "a.tf").write_text(GOOD, encoding="utf-8")
    folder = tmp_path / "cache"
    _scan(tmp_path, predictor, VerdictCache(folder, "a" * 64))
    other = _scan(tmp_path, predictor, VerdictCache(folder, "b" * 64))
    assert other.stats.cache_hits == 0 and len(predictor.score_calls) == 2


def test_an_unwritable_cache_does_not_stop_the_scan(tmp_path: Path, predictor) -> None:
    (tmp_path / "a.tf").write_text(GOOD, encoding="utf-8")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x", encoding="utf-8")
    cache = VerdictCache(blocker, "c" * 64)
    report = _scan(tmp_path, predictor, cache)
    assert report.files[0].label == "SECURE"
    assert cache.counts.write_errors == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"version": 1, "score"', "unreadable cache entry"),
        ("[]", "not a JSON object"),
        ('{"version": 2}', "cache entry version 2"),
        ('{"version": 1, "fingerprint": "x", "sha256": "s", "score": 0.5}', "entry of another key"),
        ('{"version": 1, "fingerprint": "f", "sha256": "s", "score": 1.5}', "'score' must be"),
        ('{"version": 1, "fingerprint": "f", "sha256": "s", "score": true}', "'score' must be"),
        (
            '{"version": 1, "fingerprint": "f", "sha256": "s", "score": 0.5, "explanation": 3}',
            "'explanation' must be a string or null",
        ),
    ],
)
def test_read_cache_entry_rejects_malformed_entries(tmp_path: Path, content, message) -> None:
    path = tmp_path / "e.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        read_cache_entry(path, "f", "s")


def test_read_cache_entry_reads_what_put_writes(cache) -> None:
    cache.put("ab" * 32, CachedVerdict(0.25, ""))
    assert read_cache_entry(cache.path("ab" * 32), cache.fingerprint, "ab" * 32) == CachedVerdict(
        0.25, ""
    )
    assert cache.get("cd" * 32) is None and cache.counts.misses == 1


def test_judge_fingerprint_follows_weights_not_threshold(tmp_path: Path) -> None:
    settings = load_settings({"AXON_HOME": str(tmp_path / "home")})
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text("{}", encoding="utf-8")
    (base / "model.safetensors").write_bytes(b"base weights")
    (base / "README.md").write_text("not part of the function", encoding="utf-8")
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text('{"r": 16}', encoding="utf-8")
    (adapter / "adapter_model.safetensors").write_bytes(b"lora weights")
    (adapter / "threshold.json").write_text('{"threshold": 0.1}', encoding="utf-8")

    def fp(**changes) -> str:
        fields = {"base_model": str(base), "adapter": adapter, "max_length": 512,
                  "bf16_autocast": False, **changes}  # fmt: skip
        return judge_fingerprint(SimpleNamespace(**fields), settings)  # type: ignore[arg-type]

    first = fp()
    assert len(first) == 64 and fp() == first
    assert list((settings.verdict_cache / "file-digests").glob("*.txt"))  # digests remembered
    (adapter / "threshold.json").write_text('{"threshold": 0.9}', encoding="utf-8")
    (base / "README.md").write_text("edited", encoding="utf-8")
    assert fp() == first
    assert fp(max_length=1024) != first
    assert fp(bf16_autocast=True) != first
    assert fp(adapter=None) != first
    (adapter / "adapter_model.safetensors").write_bytes(b"other lora weights")
    assert fp() != first


def test_a_warm_rescan_does_not_parse_a_file_again(tmp_path: Path, predictor, cache, monkeypatch):
    (tmp_path / "a.tf").write_text(GOOD, encoding="utf-8")
    (tmp_path / "bad.tf").write_text('resource "x" "y" {\n  a = \n', encoding="utf-8")
    import axon_infralinter.lint.inputs as inputs

    parsed: list[str] = []
    real = inputs.hcl2.loads

    def counting(text: str):
        parsed.append(text)
        return real(text)

    monkeypatch.setattr(inputs.hcl2, "loads", counting)
    cold = _scan(tmp_path, predictor, cache)
    assert len(parsed) == 2
    warm = _scan(tmp_path, predictor, cache)
    assert parsed[2:] == [(tmp_path / "bad.tf").read_text()]  # only the file that did not parse
    assert [f.status for f in warm.files] == [f.status for f in cold.files] == ["scanned", "error"]
    _scan(tmp_path, predictor, None)  # --no-cache parses every file
    assert len(parsed) == 5


def test_an_edited_file_is_parsed_again(tmp_path: Path, predictor, cache) -> None:
    target = tmp_path / "a.tf"
    target.write_text(GOOD, encoding="utf-8")
    _scan(tmp_path, predictor, cache)
    target.write_text(GOOD.replace('"b"\n}', '"b"\n'), encoding="utf-8")  # now invalid
    report = _scan(tmp_path, predictor, cache)
    assert report.files[0].status == "error" and "invalid HCL" in (report.files[0].error or "")


def test_parse_cache_survives_an_unwritable_folder(tmp_path: Path) -> None:
    from axon_infralinter.lint.cache import ParseCache

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x", encoding="utf-8")
    parsed = ParseCache(blocker)
    parsed.add(GOOD)  # no error raised
    assert not parsed.holds(GOOD)
    ok = ParseCache(tmp_path / "ok")
    ok.add(GOOD)
    assert ok.holds(GOOD) and not ok.holds(BAD_ACL)
