"""Baselines: accept today's findings, fail only on new ones.

    axon scan . --create-baseline .axon-baseline.json     # record every current finding
    axon scan . --baseline .axon-baseline.json            # exit 1 only on findings not in it

A finding is an INSECURE block (rule AXON001). Its fingerprint is the sha256 of

    path (relative to the scan root) + resource address + rule id + sha256 of the block's text
                                       (comments stripped, whitespace collapsed)

so a finding stays baselined while its block is only moved within the file, reindented or
re-commented, and never absorbs another: the same address in another file, or the same block once
edited, is new (Checkov's baseline matches on address + check id alone, checkov #7647). Baselined
findings stay in the report, marked `unchanged` (SARIF `baselineState`), new ones `new`.

The file (`BASELINE_VERSION` 1), written atomically:

    {
      "version": 1,
      "tool": {"name": "axon-infralinter", "version": str},
      "findings": [{"fingerprint": str, "path": str, "resource": str | null, "rule_id": "AXON001",
                    "start_line": int, "end_line": int}]     sorted by path, then line
    }

Only `fingerprint` decides; the other fields are there for a reviewer of the file.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from axon_infralinter import __version__
from axon_infralinter.errors import InputError
from axon_infralinter.files import atomic_write_json, sha256_text
from axon_infralinter.lint.rules import INSECURE_BLOCK
from axon_infralinter.lint.scan import BlockVerdict, FileVerdict, ScanReport

BASELINE_VERSION = 1
TOOL_NAME = "axon-infralinter"


@dataclass(frozen=True)
class BaselineFinding:
    """One accepted finding."""

    fingerprint: str
    """What matching uses (see the module docstring)."""
    path: str
    resource: str | None
    rule_id: str
    start_line: int
    end_line: int


@dataclass(frozen=True)
class Baseline:
    """The findings of a baseline file."""

    path: Path
    """Where it was read from."""
    findings: tuple[BaselineFinding, ...]


def fingerprint(f: FileVerdict, b: BlockVerdict, rule_id: str = INSECURE_BLOCK.id) -> str:
    """The baseline fingerprint of an INSECURE block of a file."""
    parts = (f.path, b.resource or "", rule_id, b.text_sha256 or "")
    return sha256_text("\0".join(parts))


def findings(report: ScanReport) -> list[tuple[FileVerdict, BlockVerdict]]:
    """The report's findings (INSECURE blocks), by path and line."""
    return [(f, b) for f in report.files for b in f.blocks if b.label == "INSECURE"]


def apply_baseline(report: ScanReport, baseline: Baseline) -> int:
    """Mark each finding `unchanged` (in the baseline) or `new`; returns how many are unchanged.

    Matching counts: a fingerprint recorded once absorbs one finding.
    """
    left = Counter(x.fingerprint for x in baseline.findings)
    unchanged = 0
    for f, b in findings(report):
        key = fingerprint(f, b)
        if left[key] > 0:
            left[key] -= 1
            b.baseline = "unchanged"
            unchanged += 1
        else:
            b.baseline = "new"
    report.baseline = str(baseline.path)
    return unchanged


def write_baseline(report: ScanReport, path: Path) -> Baseline:
    """Write every finding of `report` to a baseline file (atomically); returns it as read back.

    Raises:
        InputError: the file cannot be written.
    """
    rows = [
        BaselineFinding(
            fingerprint(f, b), f.path, b.resource, INSECURE_BLOCK.id, b.start_line, b.end_line
        )
        for f, b in findings(report)
    ]
    document = {
        "version": BASELINE_VERSION,
        "tool": {"name": TOOL_NAME, "version": __version__},
        "findings": [
            {
                "fingerprint": r.fingerprint,
                "path": r.path,
                "resource": r.resource,
                "rule_id": r.rule_id,
                "start_line": r.start_line,
                "end_line": r.end_line,
            }
            for r in rows
        ],
    }
    try:
        atomic_write_json(path, document)
    except OSError as exc:
        raise InputError(f"--create-baseline {path}: {exc.strerror or exc}") from None
    return Baseline(path, tuple(rows))


def read_baseline(path: Path) -> Baseline:
    """The typed reader of a baseline file.

    Raises:
        InputError: missing, unreadable, not JSON, another version, or a finding without a string
            fingerprint; one line naming the file.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(
            f"--baseline {path}: no such file (write one with --create-baseline)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"--baseline {path}: unreadable ({exc})") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"--baseline {path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict) or not isinstance(data.get("findings"), list):
        raise InputError(f"--baseline {path}: not a baseline file (no 'findings' list)")
    if data.get("version") != BASELINE_VERSION:
        raise InputError(
            f"--baseline {path}: version {data.get('version')!r}, this axon reads {BASELINE_VERSION}"
        )
    out: list[BaselineFinding] = []
    for i, row in enumerate(data["findings"]):
        if not isinstance(row, dict) or not isinstance(row.get("fingerprint"), str):
            raise InputError(f"--baseline {path}: finding {i} has no string 'fingerprint'")
        out.append(
            BaselineFinding(
                row["fingerprint"],
                str(row.get("path", "")),
                row.get("resource") if isinstance(row.get("resource"), str) else None,
                str(row.get("rule_id", INSECURE_BLOCK.id)),
                _int(row.get("start_line")),
                _int(row.get("end_line")),
            )
        )
    return Baseline(path, tuple(out))


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
