"""The import contract of ../shared/DESIGN.md fails on a reversed import or a cycle.

`lint-imports` runs on a copy of the package with one import added, so the check is shown to bite,
not just to pass on today's tree. Imports inside functions count.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(tmp_path: Path, edits: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """lint-imports on a copy of the package with `edits` (path -> appended code) applied."""
    shutil.copytree(REPO / "axon_infralinter", tmp_path / "axon_infralinter",
                    ignore=shutil.ignore_patterns("adapters", "__pycache__"))  # fmt: skip
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    for relative, code in edits.items():
        with (tmp_path / "axon_infralinter" / relative).open("a", encoding="utf-8") as f:
            f.write("\n" + code + "\n")
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_package_keeps_its_contracts(tmp_path: Path) -> None:
    result = _lint(tmp_path, {})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "code", "contract"),
    [
        # data is below lint: the data set may not import the linter, not even inside a function
        ("data/prompt.py", "from axon_infralinter.lint import scan  # noqa", "One-way layers"),
        ("data/chunks.py", "def _f():\n    from axon_infralinter.lint import scan  # noqa",
         "One-way layers"),
        # terraform is the bottom of the package's own layers
        ("terraform/lexer.py", "import axon_infralinter.data.prompt  # noqa", "One-way layers"),
        # a cycle between two model modules, hidden in a function
        ("models/tokens.py", "def _f():\n    from axon_infralinter.models import train_lora  # noqa",
         "No import cycles"),
    ],
)  # fmt: skip
def test_a_reversed_import_or_a_cycle_breaks_the_build(
    tmp_path: Path, module: str, code: str, contract: str
) -> None:
    result = _lint(tmp_path, {module: code})
    assert result.returncode != 0
    broken = [line for line in result.stdout.splitlines() if line.endswith("BROKEN")]
    assert any(line.startswith(contract) for line in broken), result.stdout
