"""Build a data set from the Terraform fixtures with the real Checkov and Trivy."""

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from axon_infralinter.data import scanner
from axon_infralinter.data.card import reason_kind
from axon_infralinter.data.dataset import DatasetConfig, build_dataset
from axon_infralinter.files import read_jsonl

FIXTURES = Path(__file__).parents[1] / "fixtures" / "tf"
SPLIT_NAMES = ("train", "val", "test")

#: Fixture corpus: three fake repositories, so the grouped split has one per split.
LAYOUT = {
    "acme__aws": [
        "aws_s3_public_insecure.tf",
        "aws_s3_private_secure.tf",
        "kms_key_secure.tf",
        "binary.tf",
        "empty.tf",
    ],
    "acme__azure": [
        "azure_storage_http_insecure.tf",
        "azure_storage_secure.tf",
        "invalid_hcl.tf",
        "non_utf8.tf",
    ],
    "acme__gcp": [
        "gcp_bucket_public_insecure.tf",
        "gcp_bucket_secure.tf",
        "variables_only.tf",
        "comments_only.tf",
    ],
}

#: Expected labels under the default policy, named by the fixtures themselves.
EXPECTED_LABELS = {
    "acme__aws::aws_s3_public_insecure.tf": "INSECURE",
    "acme__aws::aws_s3_private_secure.tf": "SECURE",
    "acme__aws::kms_key_secure.tf": "SECURE",
    "acme__azure::azure_storage_http_insecure.tf": "INSECURE",
    "acme__azure::azure_storage_secure.tf": "SECURE",
    "acme__gcp::gcp_bucket_public_insecure.tf": "INSECURE",
    "acme__gcp::gcp_bucket_secure.tf": "SECURE",
}
EXPECTED_SKIPS = {
    "acme__aws/binary.tf": "binary",
    "acme__aws/empty.tf": "empty",
    "acme__azure/invalid_hcl.tf": "invalid HCL",
    "acme__azure/non_utf8.tf": "not UTF-8",
    "acme__gcp/variables_only.tf": "no resource",
    "acme__gcp/comments_only.tf": "empty",
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("dataset")
    corpus = root / "corpus"
    for repo, names in LAYOUT.items():
        (corpus / repo).mkdir(parents=True)
        for name in names:
            shutil.copy(FIXTURES / name, corpus / repo / name)
    config = DatasetConfig(corpus=corpus, out=root / "out", cache_dir=root / "cache", workers=1)
    card = build_dataset(config, progress=False)
    return {"root": root, "config": config, "card": card}


def records(out: Path) -> list[dict[str, Any]]:
    return [r for s in SPLIT_NAMES for r in read_jsonl(out / f"{s}.jsonl")]


def test_fixture_labels_under_the_default_policy(built: dict[str, Any]) -> None:
    rows = records(built["config"].out)
    assert {r["id"]: r["label"] for r in rows} == EXPECTED_LABELS
    card = built["card"]
    assert card["policy"]["name"] == scanner.DEFAULT_POLICY
    assert {s["path"]: reason_kind(s["reason"]) for s in card["skipped"]} == EXPECTED_SKIPS
    for r in rows:
        tools = {f["tool"] for f in r["findings"]}
        if r["id"].endswith("_secure.tf"):
            assert r["findings"] == [] and r["target_text"] == "SECURE"
        else:
            assert tools == {"checkov", "tfsec"}  # both scanners flag every insecure fixture
            assert r["target_text"].startswith("INSECURE\n- ")


def test_one_repository_per_split(built: dict[str, Any]) -> None:
    card = built["card"]
    assert sorted(r for s in SPLIT_NAMES for r in card["splits"][s]["repos"]) == sorted(LAYOUT)
    assert all(len(card["splits"][s]["repos"]) == 1 for s in SPLIT_NAMES)
    assert card["scanners"]["checkov"] == [scanner.tool_version("checkov")]
    assert card["scanners"]["tfsec"] == [scanner.tool_version("tfsec")]
    assert card["scanner_agreement"]["agreement"] == 1.0


def test_second_build_is_served_from_the_cache(
    built: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = built["root"] / "cache"
    cached_files = sorted(p for p in cache.rglob("*.json"))
    assert len(cached_files) == 2 * len(EXPECTED_LABELS)  # one per (tool, text)
    started: list[list[str]] = []
    real_run = subprocess.run

    def spy(cmd: list[str], *args: Any, **kwargs: Any) -> Any:
        if "--version" not in cmd:  # a version query is not a scan
            started.append(list(cmd))
        return real_run(cmd, *args, **kwargs)

    monkeypatch.setattr(scanner.subprocess, "run", spy)
    out2 = built["root"] / "out2"
    config2 = DatasetConfig(corpus=built["config"].corpus, out=out2, cache_dir=cache, workers=1)
    card2 = build_dataset(config2, progress=False)
    assert started == []
    assert sorted(p for p in cache.rglob("*.json")) == cached_files
    for name in ("train.jsonl", "val.jsonl", "test.jsonl", "findings.jsonl"):
        assert (out2 / name).read_bytes() == (built["config"].out / name).read_bytes()
    assert card2["splits"] == built["card"]["splits"]
