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
