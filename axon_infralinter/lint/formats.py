"""Writers for `axon scan` reports: text, JSON and SARIF 2.1.0, one signature `(report, out)`.

text: one line per INSECURE block (with a baseline: per new one), then a summary line; colour
only when `out` is a terminal.

    main.tf:12-30  INSECURE  0.93  aws_s3_bucket.logs  CKV_AWS_20: S3 bucket has a public ACL (...)
    3 files, 1 insecure, 1 suppressed, 1 error            (+ ", N baselined" with a baseline)

json: a stable document; fields are only ever added (then `schema_version` stays) or changed (then
it is bumped). `schema_version` 1:

    {
      "schema_version": 1,
      "tool": {"name": "axon-infralinter", "version": "0.1.0"},
      "model": str,                 predictor name
      "threshold": float,           P(INSECURE) at or above which a block is INSECURE
      "seconds": float,             scan wall time (model loading excluded)
      "exit_code": 0 | 1 | 2,       what `axon scan` exits with (see lint.scan.exit_code)
      "summary": {"files": int,     files listed below
                  "scanned": int,   files judged by the model
                  "insecure": int,  files judged INSECURE
                  "suppressed": int,  suppressed files + suppressed blocks of scanned files
                  "errors": int,    notifications (inputs that could not be scanned)
                  "findings": int,  INSECURE blocks
                  "baselined": int},  of those, the ones the baseline holds (0 without one)
      "stats": {"chunks": int,      chunks judged; "unique": int, distinct texts among them
                "cache_hits": int,  distinct texts answered by the verdict cache
                "scored": int,      distinct texts the model scored (forward passes)
                "explained": int,   distinct texts the model explained (generate calls)
                "corrupt": int,     cache entries unreadable, rescored
                "context": int,     chunks of only variable/output/locals/terraform blocks:
                                    SECURE without a model call (not in "chunks")
                "model_tokens": int,  prompt tokens the model ran (shared instruction once per call)
                "cache": bool},     whether the verdict cache was used (lint.scan.ScanStats)
      "diff": null | {"ref": str, "commit": str, "scope": "blocks" | "files",
                      "changed_files": int},   what --diff compared
      "baseline": str | null,       the --baseline file applied
      "files": [{
        "path": str,                relative to the scan root, posix separators
        "status": "scanned" | "suppressed" | "error",
        "label": "SECURE" | "INSECURE" | null,   worst judged block; null when nothing was judged
        "score": float | null,      highest P(INSECURE) of the judged blocks (null: none judged)
        "reason": str | null,       suppression reason ("axonignore" for .axonignore)
        "error": str | null,        why it could not be scanned
        "blocks": [{
          "start_line": int, "end_line": int,    1-based, inclusive
          "resource": str | null,   e.g. "aws_s3_bucket.logs"; null for a whole file of many blocks
          "label": "SECURE" | "INSECURE" | null, null when suppressed
          "score": float | null,    P(INSECURE); null when suppressed or context
          "context": bool,          only variable/output/locals/terraform blocks: SECURE unjudged
          "explanation": str,       the model's short explanation ("" when none)
          "suppressed": bool,
          "reason": str | null,     the `# axon:ignore` reason
          "fingerprint": str | null,  baseline fingerprint of an INSECURE block (lint.baseline)
          "baseline": "new" | "unchanged" | null   INSECURE block vs the baseline; null without
        }]
      }],
      "notifications": [{"path": str, "kind": str, "level": "error" | "warning",
                         "rule_id": "AXON900", "message": str}]
    }

sarif: SARIF 2.1.0 for GitHub code scanning. One result (rule AXON001) per INSECURE block, level
from `rules.LEVELS`, location = relative URI + `uriBaseId` `%SRCROOT%` and the block's lines,
`properties.score` and `partialFingerprints["axonFinding/v1"]` (the baseline fingerprint).
Suppressed blocks and files are results of kind `notApplicable`, level `none`, with `suppressions`
(`inSource` for `# axon:ignore`, `external` for `.axonignore`). With a baseline every result has a
`baselineState`: `unchanged` for a finding the baseline holds, `new` for any other. Bad inputs are
`invocations[0].toolExecutionNotifications` (descriptor AXON900). URIs are relative to the scan
root (the repository's top by default), as GitHub code scanning expects.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any, TextIO
from urllib.parse import quote

from axon_infralinter import __version__
from axon_infralinter.lint.baseline import fingerprint
from axon_infralinter.lint.rules import (
    INFORMATION_URI,
    INSECURE_BLOCK,
    NOTIFICATIONS,
    RULES,
    UNSCANNABLE_INPUT,
    descriptor,
    level_for,
)
from axon_infralinter.lint.scan import (
    AXONIGNORE_REASON,
    BlockVerdict,
    FileVerdict,
    ScanReport,
    exit_code,
)

TOOL_NAME = "axon-infralinter"
JSON_SCHEMA_VERSION = 1
SARIF_SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
_RED, _GREEN, _BOLD, _DIM, _RESET = "\033[31m", "\033[32m", "\033[1m", "\033[2m", "\033[0m"

Writer = Callable[[ScanReport, TextIO], None]


def summary(report: ScanReport) -> dict[str, int]:
    """Counts shown in the text summary line and the JSON `summary`."""
    scanned = [f for f in report.files if f.status == "scanned"]
    suppressed_blocks = sum(b.suppressed for f in scanned for b in f.blocks)
    insecure = [b for f in report.files for b in f.blocks if b.label == "INSECURE"]
    return {
        "files": len(report.files),
        "scanned": len(scanned),
        "insecure": sum(f.label == "INSECURE" for f in report.files),
        "suppressed": sum(f.status == "suppressed" for f in report.files) + suppressed_blocks,
        "errors": len(report.notifications),
        "findings": len(insecure),
        "baselined": sum(b.baseline == "unchanged" for b in insecure),
    }


def write_text(report: ScanReport, out: TextIO) -> None:
    """Human output: one line per INSECURE block and a summary line; colour on a terminal."""
    colour = out.isatty()

    def paint(text: str, code: str) -> str:
        return f"{code}{text}{_RESET}" if colour else text

    for f in report.files:
        for b in f.blocks:
            if b.label != "INSECURE" or b.score is None or b.baseline == "unchanged":
                continue
            fields = [
                paint(f"{f.path}:{b.start_line}-{b.end_line}", _BOLD),
                paint("INSECURE", _RED + _BOLD),
                f"{b.score:.2f}",
                b.resource or "",
                paint(b.explanation, _DIM) if b.explanation else "",
            ]
            out.write("  ".join(x for x in fields if x) + "\n")
    counts = summary(report)
    line = (
        f"{_plural(counts['files'], 'file')}, {counts['insecure']} insecure, "
        f"{counts['suppressed']} suppressed, {_plural(counts['errors'], 'error')}"
    )
    if report.baseline is not None:
        line += f", {counts['baselined']} baselined"
    out.write(paint(line, _RED if counts["insecure"] else _GREEN) + "\n")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def to_json(report: ScanReport) -> dict[str, Any]:
    """The JSON document (schema in the module docstring)."""
    return {
        "schema_version": JSON_SCHEMA_VERSION,
        "tool": {"name": TOOL_NAME, "version": __version__},
        "model": report.model,
        "threshold": report.threshold,
        "seconds": report.seconds,
        "exit_code": exit_code(report),
        "summary": summary(report),
        "stats": dataclasses.asdict(report.stats),
        "diff": None if report.diff is None else dataclasses.asdict(report.diff),
        "baseline": report.baseline,
        "files": [
            {
                "path": f.path,
                "status": f.status,
                "label": f.label,
                "score": f.score,
                "reason": f.reason,
                "error": f.error,
                "blocks": [
                    {
                        "start_line": b.start_line,
                        "end_line": b.end_line,
                        "resource": b.resource,
                        "label": b.label,
                        "score": b.score,
                        "explanation": b.explanation,
                        "suppressed": b.suppressed,
                        "context": b.context,
                        "reason": b.reason,
                        "fingerprint": fingerprint(f, b) if b.label == "INSECURE" else None,
                        "baseline": b.baseline,
                    }
                    for b in f.blocks
                ],
            }
            for f in report.files
        ],
        "notifications": [
            {
                "path": n.path,
                "kind": n.kind,
                "level": n.level,
                "rule_id": UNSCANNABLE_INPUT.id,
                "message": n.message,
            }
            for n in report.notifications
        ],
    }


def write_json(report: ScanReport, out: TextIO) -> None:
    """The JSON document, indented, with a final newline."""
    json.dump(to_json(report), out, indent=2, ensure_ascii=False)
    out.write("\n")


def to_sarif(report: ScanReport) -> dict[str, Any]:
    """The SARIF 2.1.0 log of a report."""
    results: list[dict[str, Any]] = []
    states: list[str] = []  # baselineState of each result: only findings can be unchanged
    for f in report.files:
        if f.status == "suppressed" and not f.blocks:  # .axonignore: never read
            results.append(_suppressed_result(f, None, "external"))
            states.append("new")
        for b in f.blocks:
            if b.suppressed:
                results.append(_suppressed_result(f, b, "inSource"))
                states.append("new")
            elif b.label == "INSECURE" and b.score is not None:
                results.append(_insecure_result(f, b, b.score))
                states.append(b.baseline or "new")
    if report.baseline is not None:  # SARIF 2.1.0 3.27.24; matching is lint.baseline's
        for result, state in zip(results, states, strict=True):
            result["baselineState"] = state
    notifications = [
        {
            "level": n.level,
            "message": {"text": str(n)},
            "descriptor": {"id": UNSCANNABLE_INPUT.id, "index": 0},
            "properties": {"kind": n.kind},
            **(
                {"locations": [{"physicalLocation": {"artifactLocation": _artifact(n.path)}}]}
                if n.kind not in ("missing", "no-match")
                else {}
            ),
        }
        for n in report.notifications
    ]
    driver = {
        "name": TOOL_NAME,
        "version": __version__,
        "semanticVersion": __version__,
        **({"informationUri": INFORMATION_URI} if INFORMATION_URI else {}),
        "rules": [descriptor(r, "warning") for r in RULES],
        "notifications": [descriptor(r, "error") for r in NOTIFICATIONS],
    }
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": driver},
                "invocations": [
                    {
                        "executionSuccessful": exit_code(report) != 2,
                        "toolExecutionNotifications": notifications,
                    }
                ],
                "results": results,
                "properties": {
                    "model": report.model,
                    "threshold": report.threshold,
                    "seconds": report.seconds,
                    "stats": dataclasses.asdict(report.stats),
                    **({"diff": dataclasses.asdict(report.diff)} if report.diff else {}),
                    **({"baseline": report.baseline} if report.baseline is not None else {}),
                },
            }
        ],
    }


def write_sarif(report: ScanReport, out: TextIO) -> None:
    """The SARIF 2.1.0 log, indented, with a final newline."""
    json.dump(to_sarif(report), out, indent=2, ensure_ascii=False)
    out.write("\n")


def _artifact(path: str) -> dict[str, str]:
    """artifactLocation: a relative URI under %SRCROOT%, or a file: URI for an absolute path."""
    posix = PurePosixPath(path)
    if posix.is_absolute():
        return {"uri": posix.as_uri()}
    return {"uri": quote(posix.as_posix()), "uriBaseId": "%SRCROOT%"}


def _location(f: FileVerdict, b: BlockVerdict | None) -> dict[str, Any]:
    physical: dict[str, Any] = {"artifactLocation": _artifact(f.path)}
    if b is not None:
        physical["region"] = {"startLine": b.start_line, "endLine": b.end_line}
    location: dict[str, Any] = {"physicalLocation": physical}
    if b is not None and b.resource:
        location["logicalLocations"] = [{"name": b.resource, "kind": "resource"}]
    return location


def _insecure_result(f: FileVerdict, b: BlockVerdict, score: float) -> dict[str, Any]:
    subject = b.resource or "This file"
    text = f"{subject} judged INSECURE (P(INSECURE) = {score:.2f})"
    if b.explanation:
        text += f": {b.explanation}"
    return {
        "ruleId": INSECURE_BLOCK.id,
        "ruleIndex": 0,
        "level": level_for(score),
        "message": {"text": text},
        "locations": [_location(f, b)],
        "partialFingerprints": {"axonFinding/v1": fingerprint(f, b)},
        "properties": {"score": score, "resource": b.resource},
    }


def _suppressed_result(f: FileVerdict, b: BlockVerdict | None, kind: str) -> dict[str, Any]:
    reason = b.reason if b is not None else f.reason
    how = ".axonignore" if kind == "external" else "# axon:ignore"
    subject = (b.resource if b is not None else None) or f.path
    suppression: dict[str, Any] = {"kind": kind, "status": "accepted"}
    if reason:
        suppression["justification"] = (
            "listed in .axonignore"
            if reason == AXONIGNORE_REASON and kind == "external"
            else reason
        )
    return {
        "ruleId": INSECURE_BLOCK.id,
        "ruleIndex": 0,
        "kind": "notApplicable",
        "level": "none",
        "message": {"text": f"{subject} not judged: suppressed by {how}"},
        "locations": [_location(f, b)],
        "suppressions": [suppression],
    }


FORMATS: dict[str, Writer] = {"text": write_text, "json": write_json, "sarif": write_sarif}
