"""A tiny fake predictor for the linter's unit tests (no model)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "lint"


@dataclass
class FakePredictor:
    """Scores code by keywords: public ACLs and 0.0.0.0/0 are insecure, `weak-tls` is borderline.

    Follows the part of `models.predict.Predictor` that `lint.scan` uses, and records its calls.
    """

    name: str = "fake-predictor"
    threshold: float = 0.5
    max_code_tokens: int = 10_000
    score_calls: list[list[str]] = field(default_factory=list)
    generate_calls: list[list[str]] = field(default_factory=list)

    def count_tokens(self, code: str) -> int:
        return len(code.split())

    def score(self, codes: list[str], batch_size: int = 8, progress: bool = False) -> list[float]:
        self.score_calls.append(list(codes))
        return [self._score(c) for c in codes]

    def generate(self, codes: list[str], **kwargs: object) -> list[str]:
        self.generate_calls.append(list(codes))
        return [
            "INSECURE\n- CKV_AWS_20: S3 bucket ACL allows public access (fake)"
            if self._score(c) >= 0.9
            else "INSECURE\n- FAKE_001: looks risky (fake)"
            for c in codes
        ]

    @staticmethod
    def _score(code: str) -> float:
        if "public-read" in code or "0.0.0.0/0" in code:
            return 0.95
        if "weak-tls" in code:
            return 0.6
        return 0.05


@pytest.fixture
def predictor() -> FakePredictor:
    return FakePredictor()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of tests/fixtures/lint under tmp_path/repo (the scan root)."""
    root = tmp_path / "repo"
    shutil.copytree(FIXTURES, root)
    return root
