"""`axon dataset mutate` with the real Checkov and Trivy on two tiny fixture files.

One S3 public access block (test split) and an EKS cluster plus an RDS instance (train split):
each variant is scanned alone, so a broken variant must fire its rule and its clean variant must
scan SECURE. About 30 s cold (two rounds of one Checkov and one Trivy process).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from axon_infralinter import cli
from axon_infralinter.data import scanner
from axon_infralinter.schema import read_pairs

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "mutate"
PAB_RULES = {
    "CKV_AWS_53": "block_public_acls",
    "CKV_AWS_54": "block_public_policy",
    "CKV_AWS_55": "ignore_public_acls",
    "CKV_AWS_56": "restrict_public_buckets",
}


def _dataset(root: Path) -> tuple[Path, Path]:
    corpus, data = root / "corpus", root / "data"
    layout = {
        "train": ("other/eks", "eks_public_endpoint.tf"),
        "test": ("acme/infra", "public_access_block_open.tf"),
    }
    data.mkdir()
    for split, (repo, name) in layout.items():
        raw = (FIXTURES / name).read_bytes()
        target = corpus / repo.replace("/", "__") / name
        target.parent.mkdir(parents=True)
        target.write_bytes(raw)
        record = {"id": f"{repo}/{name}", "repo": repo, "path": name, "label": "INSECURE",
                  "sha256": hashlib.sha256(raw).hexdigest(), "input_text": "",
                  "target_text": "", "findings": []}  # fmt: skip
        (data / f"{split}.jsonl").write_text(json.dumps(record) + "\n")
    return data, corpus


def test_broken_fires_its_rule_clean_does_not(tmp_path: Path) -> None:
    data, corpus = _dataset(tmp_path)
    out = tmp_path / "pairs"
    argv = ["dataset", "mutate", "--data", str(data), "--corpus", str(corpus), "--out", str(out),
            "--splits", "train", "test"]  # fmt: skip
    assert cli.main(argv) == 0
    rows = {split: read_pairs(out / f"{split}.jsonl") for split in ("train", "test")}
    card = json.loads((out / "pairs_card.json").read_text())

    pairs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for split, split_rows in rows.items():
        for row in split_rows:
            if row["pair_id"] is not None:
                pairs[row["pair_id"]].append({**row, "split": split})
    test_pairs = {
        p.split("|", 1)[1] for p, members in pairs.items() if members[0]["split"] == "test"
    }
    # Each public-access-block rule fails two ways: set to false, or deleted.
    assert test_pairs == {f"{r}|{op}|{a}" for r, a in PAB_RULES.items() for op in ("set", "delete")}
    for pair_id, members in pairs.items():
        by_role = {m["role"]: m for m in members}
        broken, clean = by_role["broken"], by_role["clean"]
        rule_id = broken["edit"]["rule_id"]
        fired = {f["rule_id"] for f in broken["findings"]}
        counted = scanner.apply_policy(clean["findings"])
        assert broken["label"] == "INSECURE" and clean["label"] == "SECURE", pair_id
        assert rule_id in fired and counted == ("SECURE", []), pair_id
        assert broken["split"] == clean["split"] and broken["source_id"] == clean["source_id"]
        assert broken["repo"] == clean["repo"]
    # Each split's sources are its own files' blocks.
    for split, split_rows in rows.items():
        expected = "acme/infra" if split == "test" else "other/eks"
        assert {r["repo"] for r in split_rows} <= {expected}
    # The EKS cluster's public endpoint was fixed by the clean variant (the rule stopped firing).
    assert card["intended"]["by_rule"]["CKV_AWS_39"]["clean"]["intended"] == 1
    assert card["splits"]["test"]["pairs"] == 8
    for rule_id in PAB_RULES:
        assert card["intended"]["by_rule"][rule_id]["rule"]["share"] == 1.0
