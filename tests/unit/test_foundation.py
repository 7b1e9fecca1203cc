"""settings, files and the CLI's error contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from axon_infralinter import cli
from axon_infralinter.errors import ConfigError
from axon_infralinter.files import atomic_write_json, read_jsonl, sha256_text, write_jsonl
from axon_infralinter.settings import load_settings


def test_settings_defaults_and_overrides(tmp_path: Path) -> None:
    s = load_settings(
        {"AXON_HOME": str(tmp_path), "AXON_EVAL_MODE": "stochastic", "AXON_EVAL_TEMPERATURE": "0.3"}
    )
    assert s.home == tmp_path and s.scan_cache == tmp_path / "scan-cache"
    assert s.eval_mode == "stochastic" and s.eval_temperature == 0.3
    assert load_settings({}).home == Path.home() / ".cache" / "axon"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"AXON_EVAL_MODE": "greedy"}, "AXON_EVAL_MODE"),
        ({"AXON_EVAL_TEMPERATURE": "hot"}, "AXON_EVAL_TEMPERATURE"),
        ({"AXON_EVAL_TEMPERATURE": "0"}, "AXON_EVAL_TEMPERATURE"),
    ],
)
def test_settings_reject_bad_values(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(env)


def test_atomic_writes_leave_no_temp_files(tmp_path: Path) -> None:
    atomic_write_json(tmp_path / "a" / "x.json", {"k": [1, 2]})
    assert json.loads((tmp_path / "a" / "x.json").read_text()) == {"k": [1, 2]}
    assert write_jsonl(tmp_path / "r.jsonl", [{"a": 1}, {"b": "é"}]) == 2
    assert read_jsonl(tmp_path / "r.jsonl") == [{"a": 1}, {"b": "é"}]
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "r.jsonl", "x.json"]
    assert sha256_text("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_cli_errors_are_one_line_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert cli.main(["train", "--profile", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown profile 'nope'" in err
    assert cli.main(["train", "--data", str(tmp_path), "--max-steps", "1"]) == 2
    assert "no train split" in capsys.readouterr().err
    assert cli.main(["train", "--max-steps", "0", "--print-config"]) == 2
    assert "--max-steps must be > 0" in capsys.readouterr().err


def test_cli_print_config_resolves_profile(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["train", "--print-config", "--max-steps", "7"]) == 0
    config = json.loads(capsys.readouterr().out)
    assert config["max_steps"] == 7 and config["base_model"] == "embedded:smollm2"
    assert config["loss_on"] == "target" and config["learning_rate"] == 5e-4
