"""Shared test setup: markers by folder, an isolated AXON_HOME, the repo and shared paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test by its folder so none can forget a marker."""
    for item in items:
        parts = Path(str(item.fspath)).relative_to(Path(__file__).parent).parts
        if parts and parts[0] in ("unit", "integration"):
            item.add_marker(getattr(pytest.mark, parts[0]))


@pytest.fixture(scope="session", autouse=True)
def axon_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session-wide AXON_HOME under pytest's tmp: caches never touch the user's.

    The dequantized model is made once per session here (~20-30 s), shared by all tests.
    """
    home = tmp_path_factory.mktemp("axon_home")
    old = os.environ.get("AXON_HOME")
    os.environ["AXON_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("AXON_HOME", None)
    else:
        os.environ["AXON_HOME"] = old


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return SHARED


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES
