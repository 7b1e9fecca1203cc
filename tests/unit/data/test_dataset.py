"""The data set builder with a fake scanner: skips, de-duplication, sampling, split, card."""

import hashlib
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from axon_infralinter.data import dataset, scanner
from axon_infralinter.data.card import reason_kind
from axon_infralinter.data.dataset import DatasetConfig, build_dataset
from axon_infralinter.data.prompt import build_prompt
from axon_infralinter.errors import ConfigError, InputError
from axon_infralinter.files import read_json, read_jsonl

FIXTURES = Path(__file__).parents[2] / "fixtures" / "tf"


def tf_text(key: str, marker: str = "", rtype: str = "aws_s3_bucket") -> str:
    """Valid Terraform whose shingles are unique to `key`: 24 attributes of random hex."""
    values = [hashlib.sha256(f"{key}/{i}".encode()).hexdigest()[:8] for i in range(24)]
    attrs = "\n".join(f'  a{i} = "{v}"' for i, v in enumerate(values))
    return f'resource "{rtype}" "r" {{\n{attrs}\n  note = "{marker}"\n}}\n'


def make_corpus(root: Path, repos: dict[str, list[tuple[str, str]]]) -> Path:
    for repo, files in repos.items():
        for name, text in files:
            path = root / repo / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    return root


def fake_finding(tool: str, path: str) -> dict[str, Any]:
    return {
        "tool": tool,
        "rule_id": "CKV_FAKE_1" if tool == "checkov" else "AVD-FAKE-1",
        "severity": None if tool == "checkov" else "HIGH",
        "resource": "aws_s3_bucket.r",
        "path": path,
        "start_line": 1,
        "end_line": 10,
        "title": f"fake {tool} check",
    }


class FakeScanner:
    """Findings from markers in the text: ck_bad -> Checkov, tf_bad -> tfsec, scan_error."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(
        self, items: Sequence[tuple[str, str]], config: scanner.ScanConfig, progress: bool = True
    ) -> list[dict[str, Any]]:
        self.calls.append([path for path, _ in items])
        rows = []
        for path, text in items:
            row = {}
            for tool, marker in (("checkov", "ck_bad"), ("tfsec", "tf_bad")):
                error = "boom" if tool == "checkov" and "scan_error" in text else None
                row[tool] = {
                    "tool": tool,
                    "version": "9.9.9",
                    "sha256": hashlib.sha256(text.encode()).hexdigest(),
                    "findings": [fake_finding(tool, path)] if marker in text and not error else [],
                    "error": error,
                }
            rows.append(row)
        return rows


@pytest.fixture
def fake_scan(monkeypatch: pytest.MonkeyPatch) -> FakeScanner:
    fake = FakeScanner()
    monkeypatch.setattr(scanner, "scan_texts", fake)
    return fake


def config(corpus: Path, out: Path, **kw: Any) -> DatasetConfig:
    return DatasetConfig(corpus=corpus, out=out, cache_dir=out / "cache", policy="any", **kw)


def skipped_map(card: dict[str, Any]) -> dict[str, str]:
    return {s["path"]: s["reason"] for s in card["skipped"]}


# --------------------------------------------------------------------------------------------
# Config


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"workers": 0}, "--workers must be >= 1"),
        ({"limit": 0}, "--limit must be >= 1"),
        ({"policy": "nope"}, "--policy must be one of"),
        ({"near_dup_threshold": 0.0}, "--near-dup-threshold must be in"),
        ({"provider_weight": -1.0}, "--provider-weight must be >= 0"),
        ({"train_fraction": 0.5}, r"split fractions \(train, val, test\) must sum to 1"),
        ({"val_fraction": -0.1, "test_fraction": 0.4}, r"split fractions must be in \[0, 1\]"),
        ({"max_bytes": 0}, "max_bytes must be >= 1"),
    ],
)
def test_config_validation_names_the_flag(tmp_path: Path, kw: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DatasetConfig(corpus=tmp_path, cache_dir=tmp_path, **kw)


def test_config_defaults(tmp_path: Path) -> None:
    cfg = DatasetConfig(corpus=tmp_path)
    assert (cfg.out, cfg.workers, cfg.limit, cfg.seed) == (Path("data"), 2, None, 0)
    assert cfg.policy == scanner.DEFAULT_POLICY
    assert (cfg.train_fraction, cfg.val_fraction, cfg.test_fraction) == (0.70, 0.15, 0.15)
    assert cfg.near_dup_threshold == 0.8
    assert cfg.cache_dir.name == "scan-cache"


def test_prompt_functions_are_reexported() -> None:
    from axon_infralinter.data import prompt

    assert dataset.build_prompt is prompt.build_prompt
    assert dataset.build_target is prompt.build_target


# --------------------------------------------------------------------------------------------
# Reading, skipping, de-duplication


def test_bad_inputs_are_skipped_with_one_line_reasons(
    tmp_path: Path, fake_scan: FakeScanner
) -> None:
    repo = tmp_path / "corpus" / "acme__bad"
    repo.mkdir(parents=True)
    for name in (
        "binary.tf",
        "non_utf8.tf",
        "empty.tf",
        "comments_only.tf",
        "invalid_hcl.tf",
        "variables_only.tf",
        "kms_key_secure.tf",
    ):
        shutil.copy(FIXTURES / name, repo / name)
    (repo / "err.tf").write_text(tf_text("err", "scan_error"))
    card = build_dataset(config(tmp_path / "corpus", tmp_path / "out"), progress=False)
    reasons = skipped_map(card)
    assert {p: reason_kind(r) for p, r in reasons.items()} == {
        "acme__bad/binary.tf": "binary",
        "acme__bad/non_utf8.tf": "not UTF-8",
        "acme__bad/empty.tf": "empty",
        "acme__bad/comments_only.tf": "empty",
        "acme__bad/invalid_hcl.tf": "invalid HCL",
        "acme__bad/variables_only.tf": "no resource",
        "acme__bad/err.tf": "scanner error",
    }
    assert all("\n" not in r for r in reasons.values())
    assert reasons["acme__bad/err.tf"] == "scanner error: checkov: boom"
    assert card["skipped_by_kind"] == {
        "binary": 1,
        "empty": 2,
        "invalid HCL": 1,
        "no resource": 1,
        "not UTF-8": 1,
        "scanner error": 1,
    }
    assert card["counts"] == {
        "tf_files": 8,
        "readable": 2,
        "unique": 2,
        "scanned": 2,
        "labelled": 1,
        "kept": 1,
        "skipped": 7,
    }
    (record,) = read_jsonl(tmp_path / "out" / "train.jsonl")
    assert record["id"] == "acme__bad::kms_key_secure.tf"
    assert (
        record["sha256"]
        == hashlib.sha256((FIXTURES / "kms_key_secure.tf").read_bytes()).hexdigest()
    )
    # the scanner saw the comment-stripped text under "<repo>/<path>"
    assert fake_scan.calls == [["acme__bad/err.tf", "acme__bad/kms_key_secure.tf"]]


def test_exact_whitespace_and_comment_duplicates_are_dropped(
    tmp_path: Path, fake_scan: FakeScanner
) -> None:
    base = tf_text("same")
    corpus = make_corpus(
        tmp_path / "corpus",
        {
            "o__a": [("a.tf", base), ("b.tf", base)],
            "o__b": [
                ("c.tf", base.replace("  a0 =", "\ta0   =")),
                ("d.tf", "# a comment\n" + base),
                ("e.tf", tf_text("other")),
            ],
        },
    )
    card = build_dataset(config(corpus, tmp_path / "out"), progress=False)
    assert skipped_map(card) == {
        "o__a/b.tf": "duplicate: same text as o__a/a.tf",
        "o__b/c.tf": "duplicate: same text up to whitespace as o__a/a.tf",
        "o__b/d.tf": "duplicate: same text up to whitespace as o__a/a.tf",
    }
    assert card["counts"]["unique"] == 2


def test_missing_or_unusable_corpus_is_an_input_error(
    tmp_path: Path, fake_scan: FakeScanner
) -> None:
    with pytest.raises(InputError, match="does not exist"):
        build_dataset(config(tmp_path / "nope", tmp_path / "out"), progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no .tf files"):
        build_dataset(config(tmp_path / "empty", tmp_path / "out"), progress=False)
    corpus = make_corpus(tmp_path / "bad", {"o__r": [("v.tf", 'variable "x" {}\n')]})
    with pytest.raises(InputError, match="no usable Terraform file"):
        build_dataset(config(corpus, tmp_path / "out"), progress=False)


# --------------------------------------------------------------------------------------------
# Sampling


def test_limit_samples_across_repositories(tmp_path: Path, fake_scan: FakeScanner) -> None:
    corpus = make_corpus(
        tmp_path / "corpus",
        {f"o__r{r}": [(f"f{i}.tf", tf_text(f"{r}-{i}")) for i in range(6)] for r in range(4)},
    )
    card = build_dataset(config(corpus, tmp_path / "out", limit=4), progress=False)
    scanned = fake_scan.calls[0]
    assert len(scanned) == 4
    assert sorted(p.split("/")[0] for p in scanned) == ["o__r0", "o__r1", "o__r2", "o__r3"]
    assert card["counts"]["scanned"] == 4


# --------------------------------------------------------------------------------------------
# Grouped split


def test_built_splits_are_disjoint_by_repository(tmp_path: Path, fake_scan: FakeScanner) -> None:
    sizes = {"o__big": 14, "o__m1": 3, "o__m2": 3}
    corpus = make_corpus(
        tmp_path / "corpus",
        {
            repo: [(f"f{i}.tf", tf_text(f"{repo}{i}", "ck_bad" if i % 2 else "")) for i in range(n)]
            for repo, n in sizes.items()
        },
    )
    card = build_dataset(config(corpus, tmp_path / "out"), progress=False)
    repos = {}
    for s in ("train", "val", "test"):
        records = read_jsonl(tmp_path / "out" / f"{s}.jsonl")
        repos[s] = {r["repo"] for r in records}
        assert card["splits"][s]["count"] == len(records)
        assert card["splits"][s]["repos"] == sorted(repos[s])
    assert repos["train"] == {"o__big"}
    assert {*repos["val"], *repos["test"]} == {"o__m1", "o__m2"}
    assert not repos["val"] & repos["test"]
    assert [card["splits"][s]["count"] for s in ("train", "val", "test")] == [14, 3, 3]
    assert card["splits"]["train"]["insecure_share"] == 0.5


# --------------------------------------------------------------------------------------------
# Near-duplicates


def test_near_duplicates_are_dropped_from_built_splits(
    tmp_path: Path, fake_scan: FakeScanner
) -> None:
    big = [(f"f{i}.tf", tf_text(f"big{i}")) for i in range(14)]
    twin = big[0][1].replace('a7 = "', 'a7 = "q')
    corpus = make_corpus(
        tmp_path / "corpus",
        {
            "o__big": big,
            "o__m1": [("twin.tf", twin), ("u1.tf", tf_text("u1")), ("u2.tf", tf_text("u2"))],
            "o__m2": [("w1.tf", tf_text("w1")), ("w2.tf", tf_text("w2")), ("w3.tf", tf_text("w3"))],
        },
    )
    card = build_dataset(config(corpus, tmp_path / "out"), progress=False)
    reasons = skipped_map(card)
    assert list(reasons) == ["o__m1/twin.tf"]
    assert reasons["o__m1/twin.tf"].startswith("near-duplicate: ")
    assert reasons["o__m1/twin.tf"].endswith("with train file o__big::f0.tf")
    m1_split = "val" if "o__m1" in card["splits"]["val"]["repos"] else "test"
    assert card["splits"][m1_split]["before_near_dup"] == 3
    assert card["splits"][m1_split]["count"] == 2
    ids = {
        r["id"]
        for s in ("train", "val", "test")
        for r in read_jsonl(tmp_path / "out" / f"{s}.jsonl")
    }
    assert "o__m1::twin.tf" not in ids and len(ids) == 19


# --------------------------------------------------------------------------------------------
# Records, card, determinism


def build_mixed(tmp_path: Path, out: Path, seed: int = 0) -> dict[str, Any]:
    repos: dict[str, list[tuple[str, str]]] = {}
    markers = ["", "ck_bad", "tf_bad", "ck_bad tf_bad"]
    rtypes = ["aws_s3_bucket", "azurerm_storage_account", "google_storage_bucket"]
    for r, n in enumerate([12, 4, 3, 3, 2]):
        repos[f"o__r{r}"] = [
            (f"m{i}/main.tf", tf_text(f"{r}/{i}", markers[(r + i) % 4], rtypes[(r + i) % 3]))
            for i in range(n)
        ]
    corpus = make_corpus(tmp_path / "corpus", repos)
    return build_dataset(config(corpus, out, seed=seed), progress=False, count_tokens=len)


def test_records_follow_the_contract(tmp_path: Path, fake_scan: FakeScanner) -> None:
    build_mixed(tmp_path, tmp_path / "out")
    records = [
        r for s in ("train", "val", "test") for r in read_jsonl(tmp_path / "out" / f"{s}.jsonl")
    ]
    assert len(records) == 24
    for r in records:
        assert list(r) == [
            "id",
            "repo",
            "path",
            "sha256",
            "label",
            "input_text",
            "target_text",
            "findings",
        ]
        assert r["id"] == f"{r['repo']}::{r['path']}"
        text = (tmp_path / "corpus" / r["repo"] / r["path"]).read_text()
        assert r["sha256"] == hashlib.sha256(text.encode()).hexdigest()
        assert r["input_text"] == build_prompt(text)
        tools = sorted(f["tool"] for f in r["findings"])
        expected = (["checkov"] if "ck_bad" in text else []) + (
            ["tfsec"] if "tf_bad" in text else []
        )
        assert tools == expected
        assert r["label"] == ("INSECURE" if expected else "SECURE")
        if r["label"] == "SECURE":
            assert r["target_text"] == "SECURE"
        else:
            assert r["target_text"].startswith("INSECURE\n- ")
        assert all(f["path"] == f"{r['repo']}/{r['path']}" for f in r["findings"])
    findings = read_jsonl(tmp_path / "out" / "findings.jsonl")
    assert [f["id"] for f in findings] == [r["id"] for r in records]
    assert all(f["scanners"] == {"checkov": "9.9.9", "tfsec": "9.9.9"} for f in findings)
    assert [f["findings"] for f in findings] == [r["findings"] for r in records]


def test_card_fields(tmp_path: Path, fake_scan: FakeScanner) -> None:
    card = build_mixed(tmp_path, tmp_path / "out")
    assert read_json(tmp_path / "out" / "dataset_card.json") == card
    assert card["policy"] == {"name": "any", "description": scanner.POLICIES["any"].description}
    assert card["scanners"] == {"checkov": ["9.9.9"], "tfsec": ["9.9.9"]}
    assert card["corpus"]["kind"] == "sorted sha256 of the scanned files"
    assert sum(card["splits"][s]["count"] for s in ("train", "val", "test")) == 24
    # markers cycle "", ck, tf, ck+tf: INSECURE = 3 of 4 under "any"
    records = [
        r for s in ("train", "val", "test") for r in read_jsonl(tmp_path / "out" / f"{s}.jsonl")
    ]
    insecure = sum(r["label"] == "INSECURE" for r in records)
    assert card["insecure_share_all_labelled"] == round(insecure / 24, 4)
    for s in ("train", "val", "test"):
        entry = card["splits"][s]
        assert entry["SECURE"] + entry["INSECURE"] == entry["count"]
        assert entry["target_fraction"] in (0.7, 0.15)
        assert (
            card["files"][s]["sha256"]
            == hashlib.sha256((tmp_path / "out" / f"{s}.jsonl").read_bytes()).hexdigest()
        )
    assert sum(card["providers"][p]["all"]["count"] for p in ("aws", "azure", "gcp", "other")) == 24
    assert card["providers"]["other"]["all"]["count"] == 0
    # Checkov-only and tfsec-only labels: each marker appears in 12 of 24 files, jointly in 6
    checkov = [int("ck_bad" in r["input_text"]) for r in records]
    tfsec = [int("tf_bad" in r["input_text"]) for r in records]
    from sklearn.metrics import cohen_kappa_score

    assert card["scanner_agreement"]["cohen_kappa"] == round(cohen_kappa_score(checkov, tfsec), 4)
    assert card["scanner_agreement"]["checkov_insecure_share"] == round(sum(checkov) / 24, 4)
    lengths = [len(r["input_text"] + "\n\n" + r["target_text"]) for r in records]
    assert card["token_lengths"]["tokenizer"] == "len"
    assert card["token_lengths"]["max"] == max(lengths)
    assert card["token_lengths"]["p50"] == int(np.ceil(np.percentile(lengths, 50)))
    assert set(card["timings"]) == {
        "find",
        "read_parse_dedup",
        "scan",
        "label",
        "split",
        "near_dup",
        "write",
    }


def test_same_seed_gives_identical_files(tmp_path: Path, fake_scan: FakeScanner) -> None:
    a = build_mixed(tmp_path, tmp_path / "out_a")
    b = build_mixed(tmp_path, tmp_path / "out_b")
    for name in ("train.jsonl", "val.jsonl", "test.jsonl", "findings.jsonl"):
        assert (tmp_path / "out_a" / name).read_bytes() == (tmp_path / "out_b" / name).read_bytes()

    def stable(card: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in card.items() if k not in ("timings", "config", "files")}

    assert stable(a) == stable(b)
    assert [a["files"][s]["sha256"] for s in ("train", "val", "test")] == [
        b["files"][s]["sha256"] for s in ("train", "val", "test")
    ]
