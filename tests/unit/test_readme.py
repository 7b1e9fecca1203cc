"""Every `axon ...` command shown in the README parses with the real CLI (the README stays true)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from axon_infralinter.cli import build_parser

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_commands() -> list[list[str]]:
    text = README.read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    commands = []
    for block in blocks:
        for line in block.splitlines():
            line = line.split("#", 1)[0].strip()

            if line.startswith("axon ") or "-m axon_infralinter" in line:
                args = shlex.split(
                    line.split("axon_infralinter", 1)[1]
                    if "-m axon_infralinter" in line
                    else line[len("axon ") :]
                )
                commands.append(args)

    return commands


def test_readme_shows_every_subcommand() -> None:
    shown = {args[0] for args in readme_commands()}
    assert shown == {"corpus", "dataset", "train", "evaluate", "benchmark", "plots", "scan", "demo"}
    assert "make demo" in README.read_text() and "make test" in README.read_text()


def test_every_readme_command_parses() -> None:
    parser = build_parser()
    for args in readme_commands():
        parsed = parser.parse_args(args)
        assert callable(parsed.func), args


SUMMARY = README.parent / "docs" / "results" / "summary.json"


def _headline_rows(summary: dict) -> list[str]:
    """The README's results table, row by row, as it must read from docs/results/summary.json."""
    rows = []
    for row in summary["rows"]:
        f1 = row["metrics"]["f1"]
        sd = f" ± {f1['sd']:.3f}" if f1.get("sd") else ""
        ci = f" [{f1['ci'][0]:.3f}, {f1['ci'][1]:.3f}]" if f1.get("ci") else ""

        def cell(key: str, row: dict = row) -> str:
            value = row["metrics"].get(key, {})
            value = value.get("mean") if isinstance(value, dict) else value
            return "–" if value is None else f"{value:.3f}"

        spf = row["seconds_per_file"]
        spf = spf.get("mean") if isinstance(spf, dict) else spf
        labeler = "**yes**" if row["labeler"] else "no"
        # A row measured on a subset says so in the row itself.
        n = (
            row["n"]
            if row["n"] == summary["n_files"]
            else f"**{row['n']} of {summary['n_files']}**"
        )
        rows.append(
            f"| {row['model']} | {row['mode']} | {row['runs']} | {n} | {labeler} | {f1['mean']:.3f}{sd}{ci} "
            f"| {cell('roc_auc')} | {cell('mcc')} | {spf:.3g} |"
        )
    return rows


def test_readme_results_table_matches_the_published_summary() -> None:
    import json

    summary = json.loads(SUMMARY.read_text())
    text = README.read_text()
    missing = [row for row in _headline_rows(summary) if row not in text]
    assert missing == []
    assert f'Constant "always INSECURE": F1 {summary["constant_f1"]:.3f}.' in text


def _pairwise_rows(summary: dict) -> list[str]:
    """The README's minimal-pairs table, row by row, as it must read from summary.json."""
    rows = []
    for row in (summary.get("pairwise") or {}).get("rows", []):
        low, high = row["ci"]
        rows.append(
            f"| {row['model']} | {row['mode']} | {row['pairs']} | {row['pairwise']:.3f} "
            f"[{low:.3f}, {high:.3f}] | {row['ties']:.2f} | {row['both_correct']:.3f} |"
        )
    return rows


def test_readme_pairwise_table_and_differences_match_the_published_summary() -> None:
    import json

    summary = json.loads(SUMMARY.read_text())
    text = README.read_text()
    assert [row for row in _pairwise_rows(summary) if row not in text] == []
    for d in summary.get("differences", []):
        low, high = d["ci"]
        assert f"{d['metric']} {d['difference']:+.3f} [{low:+.3f}, {high:+.3f}]" in text
