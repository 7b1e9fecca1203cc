"""The scanners' rule catalog: rule id -> tool, title and severity, as the scanners reported them.

In the `ids` answer format (`data.prompt.build_target`) the model writes `- RULE_ID (resource)` and
the title is looked up here, so the wording a user reads is always the scanner's own and never a
paraphrase the model made up. A rule id the catalog does not know (one the model invented, or one
the data set never saw) is shown as the model wrote it, without a title.

The catalog is built from the findings of the data set (`axon dataset build` writes
`rule_titles.json` beside `findings.jsonl`); the packaged copy, `resources/rule_titles.json`, comes
from the corpus data set (Checkov 3.3.30, Trivy 0.76.0).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from axon_infralinter.files import atomic_write_json
from axon_infralinter.schema import Finding

CatalogEntry = dict[str, str | None]
#: A finding line of a generated answer: `- RULE_ID (resource)` or `- RULE_ID: title (resource)`.
_LINE = re.compile(r"^(?P<rule_id>[^:\s()]+)(?::\s*(?P<title>.*?))?\s*\((?P<resource>[^()]*)\)$")


def build_catalog(findings: Iterable[Finding]) -> dict[str, CatalogEntry]:
    """Rule id -> {tool, title, severity} from findings (the first title seen wins), sorted by id."""
    out: dict[str, CatalogEntry] = {}
    for f in findings:
        out.setdefault(
            f["rule_id"], {"tool": f["tool"], "title": f["title"], "severity": f["severity"]}
        )
    return dict(sorted(out.items()))


def catalog_from_rows(rows: Iterable[Mapping[str, Any]]) -> dict[str, CatalogEntry]:
    """The catalog of `findings.jsonl` rows (each with a `findings` list)."""
    return build_catalog(f for row in rows for f in row.get("findings", []))


def write_catalog(path: Path, rows: Sequence[Mapping[str, Any]]) -> dict[str, CatalogEntry]:
    """Write `rule_titles.json` (`{source, scanners, rules}`) for `findings.jsonl` rows."""
    catalog = catalog_from_rows(rows)
    versions = next((dict(row["scanners"]) for row in rows if row.get("scanners")), {})
    atomic_write_json(
        path, {"source": "findings.jsonl of the data set", "scanners": versions, "rules": catalog}
    )
    return catalog


@functools.cache
def packaged_catalog() -> dict[str, CatalogEntry]:
    """The catalog shipped with the package (`resources/rule_titles.json`)."""
    text = resources.files("axon_infralinter").joinpath("resources/rule_titles.json").read_text()
    return dict(json.loads(text)["rules"])


def expand_finding(item: str, catalog: Mapping[str, CatalogEntry] | None = None) -> str:
    """`RULE_ID (resource)` -> `RULE_ID: title (resource)` when the catalog knows the id.

    A line that already has a title, or that is not a finding line, is returned unchanged.
    """
    match = _LINE.match(item.strip())
    if match is None or match.group("title"):
        return item
    entry = (packaged_catalog() if catalog is None else catalog).get(match.group("rule_id"))
    if not entry or not entry.get("title"):
        return item
    return f"{match.group('rule_id')}: {entry['title']} ({match.group('resource')})"
