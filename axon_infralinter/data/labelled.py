"""What the data set builder knows about one corpus file as it goes through `build_dataset`.

`CheckedFile` is a file that passed the input checks (its comment-stripped text and its cloud
provider, `provider_of`); `Labelled` adds its scanner results and label. They live here, below
`dataset.py`, `split.py` and `card.py`, so that each of those can name them without a cycle.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from axon_infralinter.data.scanner import ToolResult
from axon_infralinter.schema import Finding, Label, Tool

__all__ = ["PROVIDER_PREFIXES", "CheckedFile", "Labelled", "provider_of"]

#: Block type prefixes -> cloud provider, for the card's per-provider label shares.
PROVIDER_PREFIXES: dict[str, tuple[str, ...]] = {
    "aws": ("aws_",),
    "azure": ("azurerm_", "azuread_", "azapi_"),
    "gcp": ("google_",),
}


@dataclass
class CheckedFile:
    """A corpus file that passed the input checks."""

    repo: str
    path: str
    sha256: str
    """SHA-256 of the original bytes."""
    text: str
    """Comment-stripped text: what is scanned and what the model sees."""
    provider: str
    """Cloud most of its `resource` and `data` blocks belong to (`provider_of`)."""

    @property
    def id(self) -> str:
        return f"{self.repo}::{self.path}"

    @property
    def display(self) -> str:
        return f"{self.repo}/{self.path}"


class Labelled(NamedTuple):
    """A scanned file and the label its findings give it under the data set's policy."""

    file: CheckedFile
    results: dict[Tool, ToolResult]
    """One `scanner.scan_texts` row: tool -> result."""
    label: Label
    relevant: list[Finding]
    """The findings that made the label (empty for SECURE)."""


def provider_of(types: Iterable[str]) -> str:
    """The cloud (`aws`, `azure`, `gcp`) most of `types` belong to; `other` when none does.

    Ties go to the first in `PROVIDER_PREFIXES` order.
    """
    counts = Counter(
        cloud
        for t in types
        for cloud, prefixes in PROVIDER_PREFIXES.items()
        if t.startswith(prefixes)
    )
    if not counts:
        return "other"
    best = max(counts.values())
    return next(c for c in PROVIDER_PREFIXES if counts[c] == best)
