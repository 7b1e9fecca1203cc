"""`axon scan` for pull requests on a git repository made here: --diff, baselines, the verdict cache
and the GitHub Action's command line, with real git and the real model.

The model is loaded once for the module (in-process `scan()` calls); the action's command line and
the error exits run `axon` in a subprocess (the errors exit before the model loads).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from axon_infralinter.lint.baseline import apply_baseline, read_baseline, write_baseline
from axon_infralinter.lint.cache import VerdictCache, judge_fingerprint
from axon_infralinter.lint.formats import to_json
from axon_infralinter.lint.scan import ScanOptions, ScanReport, exit_code, scan
from axon_infralinter.settings import load_settings

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
SARIF_SCHEMA = REPO / "tests" / "fixtures" / "schemas" / "sarif-schema-2.1.0.json"
SHIPPED_ADAPTER = REPO / "axon_infralinter" / "adapters" / "default"

#: Ten blocks: more code than the shipped adapter's budget (512 tokens), so judged block by block.
STORAGE = "".join(
    f'resource "aws_s3_bucket" "{name}" {{\n  bucket = "acme-{name}"\n  tags = {{\n'
    f'    team = "platform"\n    data = "{name}"\n  }}\n}}\n\n'
    f'resource "aws_s3_bucket_versioning" "{name}" {{\n  bucket = aws_s3_bucket.{name}.id\n'
    f'  versioning_configuration {{\n    status = "Enabled"\n  }}\n}}\n\n'
    for name in ("logs", "data", "backups", "reports", "archive")
)
OK = 'resource "aws_s3_bucket" "site" {\n  bucket = "acme-site"\n}\n'
ADDED = (
    'resource "aws_s3_bucket_acl" "site" {\n  bucket = "acme-site"\n  acl    = "public-read"\n}\n'
)


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_DATE": "2026-01-01T00:00:00", "GIT_COMMITTER_DATE": "2026-01-01T00:00:00"}  # fmt: skip
    proc = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return proc.stdout.strip()


def _make_repo(root: Path) -> tuple[Path, str]:
    """A repository with storage.tf (block by block), network.tf (one open SG) and ok.tf; returns
    it and its one commit's sha."""
    root.mkdir(parents=True)
    (root / "storage.tf").write_text(STORAGE, encoding="utf-8")
    shutil.copy(EXAMPLES / "insecure_open_ssh_security_group.tf", root / "network.tf")
    (root / "ok.tf").write_text(OK, encoding="utf-8")
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", ".")
    _git(root, "commit", "-q", "-m", "base")
    return root, _git(root, "rev-parse", "HEAD")


@pytest.fixture(scope="module")
def predictor() -> Any:
    from axon_infralinter.models.predict import find_default_adapter, load_predictor

    adapter = os.environ.get("AXON_TEST_ADAPTER")
    return load_predictor(Path(adapter) if adapter else find_default_adapter())


@pytest.fixture(scope="module")
def cache(predictor: Any, tmp_path_factory: pytest.TempPathFactory) -> VerdictCache:
    """One cache for the module: a text judged in one test is not judged again in the next."""
    settings = load_settings()
    folder = tmp_path_factory.mktemp("verdicts")
    return VerdictCache(folder, judge_fingerprint(predictor, settings))


def _scan(repo: Path, predictor: Any, cache: VerdictCache | None, **kwargs: Any) -> ScanReport:
    return scan(ScanOptions(paths=[repo], explain=False, **kwargs), predictor, cache=cache)


def _blocks(report: ScanReport) -> dict[str, list[str | None]]:
    return {f.path: [b.resource for b in f.blocks] for f in report.files}


def _edit_one_block(repo: Path) -> None:
    text = (repo / "storage.tf").read_text(encoding="utf-8")
    edited = text.replace('status = "Enabled"\n  }\n}\n\nresource "aws_s3_bucket" "backups"',
                          'status = "Suspended"\n  }\n}\n\nresource "aws_s3_bucket" "backups"')  # fmt: skip
    assert edited != text
    (repo / "storage.tf").write_text(edited, encoding="utf-8")


def test_diff_reports_only_the_changed_files_and_blocks(tmp_path, predictor, cache) -> None:
    repo, base = _make_repo(tmp_path / "repo")
    whole = _scan(repo, predictor, cache)
    assert len(_blocks(whole)["storage.tf"]) == 10, "storage.tf fits the budget: make it longer"
    _edit_one_block(repo)  # aws_s3_bucket_versioning.data
    (repo / "added.tf").write_text(ADDED, encoding="utf-8")  # untracked: new in the PR too
    _git(repo, "mv", "ok.tf", "moved.tf")  # a pure rename: no changed block
    report = _scan(repo, predictor, cache, diff_ref=base)
    assert _blocks(report) == {
        "added.tf": ["aws_s3_bucket_acl.site"],
        "storage.tf": ["aws_s3_bucket_versioning.data"],
    }
    assert report.stats.chunks == 2
    assert report.diff is not None and report.diff.commit == base
    files = _scan(repo, predictor, cache, diff_ref=base, diff_scope="files")
    assert {p: len(b) for p, b in _blocks(files).items()} == {
        "added.tf": 1,
        "moved.tf": 1,
        "storage.tf": 10,
    }
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "pr")
    clean = _scan(repo, predictor, cache, diff_ref="HEAD")
    assert (clean.files, clean.notifications, exit_code(clean)) == ([], [], 0)


needs_trained_adapter = pytest.mark.skipif(
    not os.environ.get("AXON_TEST_ADAPTER")
    and not (SHIPPED_ADAPTER / "adapter_config.json").is_file(),
    reason="the base model alone judges the open security group SECURE: nothing to baseline",
)


@needs_trained_adapter
def test_baseline_absorbs_old_findings_but_not_the_same_address_elsewhere(
    tmp_path, predictor, cache
) -> None:
    repo, _ = _make_repo(tmp_path / "repo")
    first = _scan(repo, predictor, cache)
    network = next(f for f in first.files if f.path == "network.tf")
    assert network.label == "INSECURE", "the shipped adapter flags the open SSH group"
    baseline = write_baseline(first, tmp_path / "axon-baseline.json")
    again = _scan(repo, predictor, cache)
    apply_baseline(again, read_baseline(tmp_path / "axon-baseline.json"))
    assert exit_code(again) == 0
    assert {b.baseline for f in again.files for b in f.blocks if b.label == "INSECURE"} == {
        "unchanged"
    }
    # the same block, same address (aws_security_group.bastion), in another module's file
    (repo / "modules" / "edge").mkdir(parents=True)
    shutil.copy(repo / "network.tf", repo / "modules" / "edge" / "main.tf")
    later = _scan(repo, predictor, cache)
    apply_baseline(later, baseline)
    states = {
        f.path: [b.baseline for b in f.blocks if b.label == "INSECURE"]
        for f in later.files
        if f.path in ("network.tf", "modules/edge/main.tf")
    }
    assert states == {"modules/edge/main.tf": ["new"], "network.tf": ["unchanged"]}
    assert exit_code(later) == 1


def test_warm_rescan_makes_no_model_call_and_a_corrupt_entry_is_rescored(
    tmp_path, predictor
) -> None:
    repo, _ = _make_repo(tmp_path / "repo")
    own = VerdictCache(tmp_path / "verdicts", judge_fingerprint(predictor, load_settings()))
    cold = _scan(repo, predictor, own)
    assert cold.stats.scored == cold.stats.unique == 12  # 10 blocks + 2 short files
    warm = _scan(repo, predictor, own)
    assert (warm.stats.scored, warm.stats.cache_hits) == (0, 12)
    left, right = to_json(cold), to_json(warm)
    for doc in (left, right):
        doc.pop("seconds"), doc.pop("stats")
    assert left == right
    entry = next(own.folder.rglob("*.json"))
    entry.write_bytes(entry.read_bytes()[:20])  # torn
    third = _scan(repo, predictor, own)
    assert (third.stats.corrupt, third.stats.scored, third.stats.cache_hits) == (1, 1, 11)
    assert [(f.path, f.label) for f in third.files] == [(f.path, f.label) for f in cold.files]
    assert json.loads(entry.read_text(encoding="utf-8"))["version"] == 1  # rewritten whole


# --- the command line ----------------------------------------------------------------------------


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def _action_scan_step(inputs: dict[str, str]) -> tuple[str, dict[str, str]]:
    """The action's `axon scan` step: its script and its environment with `inputs` filled in."""
    action = yaml.safe_load((REPO / "action.yml").read_text(encoding="utf-8"))
    values = {name: str(spec.get("default", "")) for name, spec in action["inputs"].items()}
    values.update(inputs)
    (step,) = [s for s in action["runs"]["steps"] if s.get("id") == "scan"]
    assert action["runs"]["using"] == "composite" and step["shell"] == "bash"

    def fill(text: str) -> str:
        return re.sub(r"\$\{\{\s*inputs\.([\w-]+)\s*\}\}", lambda m: values[m.group(1)], text)

    env = {name: fill(str(value)) for name, value in step["env"].items()}
    assert "${{" not in step["run"], "inputs reach the script through env only (no injection)"
    return step["run"], env


def test_the_action_command_line_on_a_pull_request(tmp_path) -> None:
    repo, base = _make_repo(tmp_path / "repo")
    _edit_one_block(repo)
    (repo / "added.tf").write_text(ADDED, encoding="utf-8")
    adapter = os.environ.get("AXON_TEST_ADAPTER")
    script, env = _action_scan_step(
        {
            "base-ref": base,  # ${{ github.event.pull_request.base.sha }}
            "sarif-file": "axon.sarif",
            "args": f"--adapter {adapter}" if adapter else "",
        }
    )
    outputs = tmp_path / "github_output"
    env = {**_env(), **env, "GITHUB_OUTPUT": str(outputs)}
    proc = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        cwd=repo, env=env, capture_output=True, text=True, timeout=850,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr  # 1 (findings) is left to the last step
    code = int(outputs.read_text(encoding="utf-8").strip().removeprefix("exit-code="))
    log = json.loads((repo / "axon.sarif").read_text(encoding="utf-8"))
    import jsonschema

    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    errors = list(jsonschema.Draft4Validator(schema).iter_errors(log))
    assert errors == [], [e.message for e in errors[:5]]
    (run,) = log["runs"]
    located = {
        (
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uriBaseId"],
            r["locations"][0]["logicalLocations"][0]["name"],
        )
        for r in run["results"]
    }
    assert located <= {
        ("added.tf", "%SRCROOT%", "aws_s3_bucket_acl.site"),
        ("storage.tf", "%SRCROOT%", "aws_s3_bucket_versioning.data"),
    }
    assert code == (1 if run["results"] else 0)
    assert run["properties"]["diff"]["commit"] == base
    assert run["properties"]["stats"]["chunks"] == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--diff", "no-such-ref"], "--diff no-such-ref: no such commit in"),
        (["--baseline", "missing.json"], "--baseline missing.json: no such file"),
        (["--diff", "main", "--create-baseline", "b.json"], "cannot be used with --diff"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args: list[str], message: str) -> None:
    repo, _ = _make_repo(tmp_path / "repo")
    proc = subprocess.run(
        [sys.executable, "-m", "axon_infralinter", "scan", ".", *args],
        cwd=repo, env=_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr


def test_diff_outside_a_git_work_tree_is_one_line_and_exit_2(tmp_path) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "main.tf").write_text(OK, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "axon_infralinter", "scan", "plain", "--diff", "main"],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"axon: --diff main: {tmp_path / 'plain'} is not inside a git work tree"
    ]
