"""The mutation stage without scanner processes: Checkov's metadata, value choice, records, splits.

The metadata tests read the installed Checkov's real check classes (no subprocess). The stage
tests replace `scanner.scan_texts` by a stand-in that fails the four public-access-block checks
when their attribute is not `true`, to test the plumbing; `tests/integration/test_mutate.py`
runs the real scanners.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from axon_infralinter import cli
from axon_infralinter.data import learned_edits, mutate, rule_edits, scanner
from axon_infralinter.data.mutate import MutateConfig, build_pairs
from axon_infralinter.data.rule_edits import Setting, Vocabulary
from axon_infralinter.errors import ConfigError
from axon_infralinter.schema import read_pairs
from axon_infralinter.terraform import edit

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "mutate"
PAB_RULES = {
    "CKV_AWS_53": "block_public_acls",
    "CKV_AWS_54": "block_public_policy",
    "CKV_AWS_55": "ignore_public_acls",
    "CKV_AWS_56": "restrict_public_buckets",
}


@pytest.fixture(scope="module")
def catalog() -> rule_edits.Catalog:
    return rule_edits.read_catalog(scanner.security_core_ids())


def _rule(catalog: rule_edits.Catalog, rule_id: str) -> rule_edits.RuleEdit:
    return next(r for r in catalog.rules if r.rule_id == rule_id)


# --------------------------------------------------------------------------------------------
# Checkov's metadata


def test_key_path_drops_list_indexes() -> None:
    assert rule_edits.key_path("vpc_config/[0]/endpoint_public_access") == (
        "vpc_config",
        "endpoint_public_access",
    )
    assert rule_edits.key_path("https_only/[0]") == ("https_only",)
    assert rule_edits.key_path("key_vault_secrets_provider/secret_rotation_enabled") == (
        "key_vault_secrets_provider",
        "secret_rotation_enabled",
    )


def test_value_checks_and_their_values(catalog: rule_edits.Catalog) -> None:
    eks = _rule(catalog, "CKV_AWS_39")
    assert (eks.kind, eks.path, eks.values, eks.any_value, eks.missing_passes) == (
        "value",
        ("vpc_config", "endpoint_public_access"),
        (False,),
        False,
        False,
    )
    assert eks.passes(False) and not eks.passes(True)
    assert _rule(catalog, "CKV_AWS_58").values == (["secrets"],)
    tls = _rule(catalog, "CKV_AWS_228")
    assert "Policy-Min-TLS-1-2-2019-07" in tls.values and not tls.passes(
        "Policy-Min-TLS-1-0-2019-07"
    )
    networks = _rule(catalog, "CKV_GCP_20")
    assert networks.any_value and networks.values == () and networks.passes("anything")


def test_negative_value_checks(catalog: rule_edits.Catalog) -> None:
    public = _rule(catalog, "CKV_AWS_17")
    assert (public.kind, public.path, public.values, public.missing_passes) == (
        "negative",
        ("publicly_accessible",),
        (True,),
        True,
    )
    assert public.passes(False) and not public.passes(True)
    external_ip = _rule(catalog, "CKV_GCP_40")
    assert external_ip.any_value and external_ip.path == ("network_interface", "access_config")
    assert "aws_db_instance" in public.resource_types
    assert public in catalog.by_type["aws_rds_cluster_instance"]


def test_checks_left_out_and_why(catalog: rule_edits.Catalog) -> None:
    # CloudFront's TLS check names `[True]` for a protocol version and tests a regex instead.
    assert catalog.skipped["CKV_AWS_174"] == "custom scan logic that does not use its metadata"
    assert catalog.skipped["CKV_AWS_24"] == "not a value check (custom scan logic)"
    assert catalog.skipped["CKV_AWS_88"] == "no inspected key"
    # A guard in front of the value check's own logic keeps it (RDS IAM auth: mysql/postgres only).
    assert _rule(catalog, "CKV_AWS_161").path == ("iam_database_authentication_enabled",)
    counted = scanner.security_core_ids()
    assert {r.rule_id for r in catalog.rules} <= counted
    assert len(catalog.rules) >= 80
    assert (
        "security_groups" in catalog.inspected["aws_security_group"]
        or catalog.inspected["aws_security_group"] == set()
    )


def test_counted_checkov_ids_follow_the_policy() -> None:
    assert mutate.counted_checkov_ids("tfsec-high") == set()
    core = mutate.counted_checkov_ids("security-core")
    assert "CKV_AWS_39" in core and core <= scanner.security_core_ids()
    assert len(mutate.counted_checkov_ids("any")) > len(core)


# --------------------------------------------------------------------------------------------
# Choosing passing and failing values

EKS = """resource "aws_eks_cluster" "main" {
  name = "main"
  vpc_config {
    endpoint_public_access = true
  }
}
"""


def test_passing_and_failing_settings(catalog: rule_edits.Catalog) -> None:
    vocab = Vocabulary()
    eks = _rule(catalog, "CKV_AWS_39")
    assert rule_edits.passing(EKS, "aws_eks_cluster", eks, vocab) == Setting("set", "false")
    clean = rule_edits.apply(EKS, eks, Setting("set", "false"), "aws_eks_cluster", vocab)
    assert rule_edits.passing(clean, "aws_eks_cluster", eks, vocab) == Setting("keep")
    # The boolean opposite first; deleting the key fails too (absence fails this check).
    assert rule_edits.failing(clean, "aws_eks_cluster", eks, vocab) == [
        Setting("set", "true"),
        Setting("delete"),
    ]
    secrets = _rule(catalog, "CKV_AWS_58")
    assert rule_edits.passing(EKS, "aws_eks_cluster", secrets, vocab) == Setting(
        "set", '["secrets"]'
    )
    fixed = rule_edits.apply(EKS, secrets, Setting("set", '["secrets"]'), "aws_eks_cluster", vocab)
    # No boolean opposite and no failing value in the corpus: absence fails, so delete.
    assert rule_edits.failing(fixed, "aws_eks_cluster", secrets, vocab) == [Setting("delete")]
    public = _rule(catalog, "CKV_AWS_17")
    db = 'resource "aws_db_instance" "db" {\n  publicly_accessible = true\n}\n'
    assert rule_edits.passing(db, "aws_db_instance", public, vocab) == Setting("set", "false")
    # Absence passes a negative check: only the forbidden value fails it.
    assert rule_edits.failing(db, "aws_db_instance", public, vocab) == [Setting("set", "true")]


def test_corpus_vocabulary_gives_blocks_and_failing_strings(catalog: rule_edits.Catalog) -> None:
    vocab = Vocabulary()
    gke = 'resource "google_container_cluster" "c" {\n  master_authorized_networks_config {\n    cidr_blocks {\n      cidr_block = "10.0.0.0/8"\n    }\n  }\n}\n'
    vocab.add("google_container_cluster", gke)
    es = 'resource "aws_elasticsearch_domain" "d" {\n  domain_endpoint_options {\n    tls_security_policy = "Policy-Min-TLS-1-0-2019-07"\n  }\n}\n'
    vocab.add("aws_elasticsearch_domain", es)
    networks = _rule(catalog, "CKV_GCP_20")
    bare = 'resource "google_container_cluster" "d" {\n  name = "d"\n}\n'
    setting = rule_edits.passing(bare, "google_container_cluster", networks, vocab)
    assert setting == Setting("block", 'cidr_blocks {\n  cidr_block = "10.0.0.0/8"\n}')
    out = rule_edits.apply(bare, networks, setting, "google_container_cluster", vocab)
    assert edit.value_text(out, ("master_authorized_networks_config", "cidr_blocks", "cidr_block"))
    tls = _rule(catalog, "CKV_AWS_228")
    assert rule_edits.failing(es, "aws_elasticsearch_domain", tls, vocab) == [
        Setting("set", '"Policy-Min-TLS-1-0-2019-07"'),
        Setting("delete"),
    ]
    assert vocab.names["aws_elasticsearch_domain"] == {"d": 1}


# --------------------------------------------------------------------------------------------
# The stage, with a stand-in scanner


def _fake_scan(
    items: list[tuple[str, str]], config: scanner.ScanConfig, progress: bool = True
) -> list[dict[str, Any]]:
    rows = []
    for path, text in items:
        block = edit.top_block(text)
        findings = [
            {"tool": "checkov", "rule_id": rule_id, "severity": None,
             "resource": ".".join(block.labels), "path": path, "start_line": 1,
             "end_line": 1, "title": f"{attr} must be true"}
            for rule_id, attr in PAB_RULES.items()
            if block.labels[0] == "aws_s3_bucket_public_access_block"
            and edit.value_text(text, (attr,)) != "true"
        ]  # fmt: skip
        rows.append(
            {tool: {"tool": tool, "version": "0", "sha256": "", "findings": findings
                    if tool == "checkov" else [], "error": None} for tool in scanner.TOOLS}
        )  # fmt: skip
    return rows


def make_dataset(root: Path, layout: dict[str, list[tuple[str, str]]]) -> tuple[Path, Path]:
    """A corpus and a data set folder: split -> [(repo, fixture file)]; returns (data, corpus)."""
    corpus, data = root / "corpus", root / "data"
    for split, files in layout.items():
        lines = []
        for repo, name in files:
            raw = (FIXTURES / name).read_bytes()
            target = corpus / repo.replace("/", "__") / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(raw)
            lines.append(
                json.dumps({"id": f"{repo}/{name}", "repo": repo, "path": name,
                            "sha256": hashlib.sha256(raw).hexdigest(), "label": "INSECURE",
                            "input_text": "", "target_text": "", "findings": []})
            )  # fmt: skip
        data.mkdir(parents=True, exist_ok=True)
        (data / f"{split}.jsonl").write_text("".join(line + "\n" for line in lines))
    return data, corpus


def test_pairs_records_and_splits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scanner, "scan_texts", _fake_scan)
    layout = {
        "train": [("a/one", "public_access_block_open.tf")],
        "val": [("b/two", "eks_public_endpoint.tf")],
        "test": [("c/three", "public_access_block_open.tf")],  # the same block text as train's
    }
    data, corpus = make_dataset(tmp_path, layout)
    config = MutateConfig(data=data, corpus=corpus, out=tmp_path / "pairs", cache_dir=tmp_path)
    card = build_pairs(config)
    splits = {s: read_pairs(tmp_path / "pairs" / f"{s}.jsonl") for s in ("train", "val", "test")}
    # The block text is a source in test only (test first): train gets nothing from it.
    assert card["splits"]["train"]["pairs"] == 0
    assert card["splits"]["train"]["sources_skipped"] == {
        "same block text already a source (this or an earlier split)": 1
    }
    test = splits["test"]
    pairs: dict[str, list[dict[str, Any]]] = {}
    for row in test:
        if row["pair_id"] is not None:
            pairs.setdefault(row["pair_id"], []).append(dict(row))
    # Each rule fails two ways: its attribute false, or deleted (absence fails these checks).
    assert sorted(p.split("|", 1)[1] for p in pairs) == sorted(
        f"{rule_id}|{op}|{attr}" for rule_id, attr in PAB_RULES.items() for op in ("set", "delete")
    )
    for pair_id, (a, b) in pairs.items():
        clean, broken = sorted((a, b), key=lambda r: r["role"] != "clean")
        assert (clean["role"], clean["label"], broken["role"], broken["label"]) == (
            "clean", "SECURE", "broken", "INSECURE",
        )  # fmt: skip
        _, rule_id, op, _ = pair_id.split("|")
        assert broken["edit"] == {
            "kind": "rule", "tool": "checkov", "rule_id": rule_id, "attribute": PAB_RULES[rule_id],
            "op": op, "value": "false" if op == "set" else None, "intended": True,
        }  # fmt: skip
        assert (PAB_RULES[rule_id] in broken["input_text"]) == (op == "set")
        assert {f["rule_id"] for f in broken["findings"]} == {rule_id}
        assert broken["target_text"] == (
            f"INSECURE\n- {rule_id} (aws_s3_bucket_public_access_block.logs)"
        )
        assert (
            clean["source_id"] == broken["source_id"] == "c/three/public_access_block_open.tf#L2-8"
        )
        assert clean["repo"] == broken["repo"] == "c/three"
    neutral = [r for r in test if r["role"] == "neutral"]
    assert {r["edit"]["op"] for r in neutral} <= {"rename", "change", "delete", "reorder"}
    assert all(r["pair_id"] is None and r["label"] == "INSECURE" for r in neutral)
    # No source, and no text, in two splits.
    sources = [{r["source_id"] for r in rows} for rows in splits.values()]
    assert sum(len(s) for s in sources) == len(set().union(*sources))
    for rule_id in PAB_RULES:
        assert card["intended"]["by_rule"][rule_id]["rule"] == {"n": 2, "intended": 2, "share": 1.0}
        assert card["intended"]["by_rule"][rule_id]["pairs"] == 2


def test_limit_sources_and_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--limit-sources must be >= 1"):
        MutateConfig(
            data=tmp_path, corpus=tmp_path, out=tmp_path, cache_dir=tmp_path, limit_sources=0
        )
    with pytest.raises(ConfigError, match="--splits"):
        MutateConfig(
            data=tmp_path, corpus=tmp_path, out=tmp_path, cache_dir=tmp_path, splits=["dev"]
        )


def test_cli_missing_data_set_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(
        ["dataset", "mutate", "--data", str(tmp_path / "nope"), "--corpus", str(tmp_path)]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "no such data set folder" in err


def test_cli_empty_split_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, corpus = make_dataset(tmp_path, {"train": [("a/b", "public_access_block_open.tf")]})
    (data / "val.jsonl").write_text("")
    (data / "test.jsonl").write_text("")
    code = cli.main(["dataset", "mutate", "--data", str(data), "--corpus", str(corpus)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "val.jsonl: empty split" in err


# --------------------------------------------------------------------------------------------
# Fixes learnt from the scanned blocks


def test_learned_fix_and_break_from_the_contrast_of_blocks() -> None:
    contrast = learned_edits.Contrast()
    passing = 'resource "azurerm_storage_account" "{n}" {{\n  name = "{n}"\n  infrastructure_encryption_enabled = true\n  location = var.location\n}}\n'
    failing = 'resource "azurerm_storage_account" "{n}" {{\n  name = "{n}"\n  infrastructure_encryption_enabled = false\n  location = var.location\n}}\n'
    for n in ("a", "b", "c"):
        contrast.add("azurerm_storage_account", passing.format(n=n), {})
    for n in ("d", "e"):
        contrast.add("azurerm_storage_account", failing.format(n=n), {"AZU-0061": "tfsec"})
    fix = (("infrastructure_encryption_enabled",), "true")
    brk = (("infrastructure_encryption_enabled",), "false")
    # `location` is written by both kinds of block, each `name` by one block only.
    assert contrast.candidates("azurerm_storage_account", "AZU-0061", "fix") == [(fix, 3)]
    assert contrast.candidates("azurerm_storage_account", "AZU-0061", "break") == [(brk, 2)]
    assert contrast.rules("azurerm_storage_account") == ["AZU-0061"]
    clean = failing.format(n="f")
    text, fixes = learned_edits.propose_fixes(
        clean, "azurerm_storage_account", {"AZU-0061": "tfsec"}, contrast, avoid=set()
    )
    assert fixes == [
        learned_edits.LearnedEdit(
            "fix", "AZU-0061", "tfsec", ("infrastructure_encryption_enabled",), "true", 3, "false"
        )
    ]
    assert edit.value_text(text, ("infrastructure_encryption_enabled",)) == "true"
    assert learned_edits.broken_text(text, fixes[0]) == clean  # the fix undone
    (broken,) = learned_edits.propose_breaks(
        text, "azurerm_storage_account", contrast, avoid=set(), skip=set()
    )
    assert (broken.kind, broken.value, broken.before) == ("break", "false", "true")
    assert learned_edits.broken_text(text, broken) == clean
    # A path the metadata-driven edits own, or a rule they handle, is left to them.
    owned = {("infrastructure_encryption_enabled",)}
    assert (
        learned_edits.propose_breaks(text, "azurerm_storage_account", contrast, owned, set()) == []
    )
    assert (
        learned_edits.propose_breaks(text, "azurerm_storage_account", contrast, set(), {"AZU-0061"})
        == []
    )


def test_learned_candidates_break_ties_in_sorted_order() -> None:
    # Sets of strings iterate in an order that changes with the hash seed: ties must not.
    contrast = learned_edits.Contrast()
    for n in ("a", "b"):
        text = f'resource "aws_x" "{n}" {{\n  zeta = true\n  alpha = true\n  mid = 1\n}}\n'
        contrast.add("aws_x", text, {})
    contrast.add("aws_x", 'resource "aws_x" "c" {\n  mid = 1\n}\n', {"R": "tfsec"})
    fixes = contrast.candidates("aws_x", "R", "fix")
    assert fixes == [((("alpha",), "true"), 2), ((("zeta",), "true"), 2)]


def test_keys_that_name_a_block_are_never_proposed() -> None:
    # `description` takes a different value in most blocks: it names them, not configures them.
    contrast = learned_edits.Contrast()
    for n, note in (("a", "same"), ("b", "same"), ("c", "x"), ("d", "y"), ("e", "z")):
        text = f'resource "aws_x" "{n}" {{\n  description = "{note}"\n  tls = "1.2"\n}}\n'
        contrast.add("aws_x", text, {} if n in "ab" else {"R": "tfsec"})
    fixes = contrast.candidates("aws_x", "R", "fix")
    assert fixes == []  # `tls` is written by failing blocks too; `description` names blocks
    for n in "fgh":  # now 4 distinct values over 8 blocks: a setting, no longer a name
        contrast.add("aws_x", f'resource "aws_x" "{n}" {{\n  description = "same"\n}}\n', {})
    assert contrast.candidates("aws_x", "R", "fix") == [((("description",), '"same"'), 5)]
