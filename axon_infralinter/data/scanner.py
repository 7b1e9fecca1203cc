"""Run Checkov and tfsec (via `trivy config`) over many files at once -> Finding lists.

Each file is scanned **alone**: a batch lays its files out one per folder (`00000/main.tf`,
`00001/main.tf`, ...) and each tool runs once per batch, so a label depends only on that file's text
while process start-up (Checkov ~2.5 s, Trivy ~0.8 s) is paid once per batch, not per file.

Results are cached per (tool, tool version, sha256 of the text) under `cache_dir`, one JSON file
each, written atomically as soon as a batch finishes: a second run skips finished files and a run
killed halfway resumes with nothing lost. A batch that crashes or times out is split in halves and
retried, down to single files; a file that still fails gets a result with `error` set.

Checkov run offline (`--skip-download`, `BC_SKIP_MAPPING=TRUE`) reports no severities, so its
findings have `severity: null`; Trivy reports LOW/MEDIUM/HIGH/CRITICAL. Nothing is invented.

Label policies map findings to SECURE/INSECURE; see `POLICIES`. All findings are stored, so labels
can be recomputed under another policy without rescanning.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple, TypedDict

from tqdm import tqdm

from axon_infralinter.errors import ConfigError, ScannerError
from axon_infralinter.executor import Executor, LocalExecutor
from axon_infralinter.files import atomic_write_json, read_json, sha256_text
from axon_infralinter.schema import Finding, Label, Tool

TOOLS: tuple[Tool, Tool] = ("checkov", "tfsec")
#: Name of the file each text is written to inside its own folder.
SCAN_FILENAME = "main.tf"


class ToolResult(TypedDict):
    """One tool's result on one text."""

    tool: Tool
    version: str
    sha256: str
    findings: list[Finding]
    error: str | None


@dataclass(frozen=True)
class ScanConfig:
    """How to run the scanners."""

    cache_dir: Path
    """Folder of cached results (usually `Settings.scan_cache`)."""
    workers: int = 1
    """Batches run at once (each is one tool process)."""
    batch_size: int = 100
    """Files per tool process. 100 files take Checkov ~5 s here vs ~250 s one process per file."""
    timeout_s: float = 900.0
    """Wall-clock limit for one tool process, in seconds; a batch past it is split and retried."""
    tools: tuple[Tool, ...] = TOOLS
    """Which scanners to run."""
    executor: Executor | None = field(default=None, compare=False, repr=False)
    """Where the batches run (`--engine dask`: a cluster's workers); None: `workers` threads here."""

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {self.workers}")
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.timeout_s <= 0:
            raise ConfigError(f"--timeout must be > 0, got {self.timeout_s}")
        for tool in self.tools:
            if tool not in TOOLS:
                raise ConfigError(f"unknown scanner {tool!r}; choose from {', '.join(TOOLS)}")


# --------------------------------------------------------------------------------------------
# Running the tools


DEAD_PROXY = "http://127.0.0.1:9"
"""Where scanner processes are told their proxy is: the discard port, closed here."""


def _tool_env() -> dict[str, str]:
    env = dict(os.environ)
    env["BC_SKIP_MAPPING"] = "TRUE"  # Checkov: no download of the guideline/severity mapping
    env["CHECKOV_RUN_SCA_PACKAGE_SCAN_V2"] = "false"
    env["LOG_LEVEL"] = "ERROR"
    env.setdefault("PYTHONWARNINGS", "ignore")
    # No scanner touches the network. Trivy resolves remote `module` sources by default (registry
    # and git): offline that costs a DNS failure or a 5 s timeout per module, online it would make
    # a label depend on what the network served that day (and let a scanned file choose where we
    # connect). A proxy on a closed local port makes every such request fail at once; findings
    # are the same as with no network at all.
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        env[name] = DEAD_PROXY
    for name in ("NO_PROXY", "no_proxy"):
        env[name] = ""
    return env


def _executable(tool: Tool) -> str:
    name = "checkov" if tool == "checkov" else "trivy"
    # Prefer the one installed beside this interpreter (the venv), then PATH.
    import sys

    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if not found:
        raise ScannerError(f"{name} is not installed: run `make setup` (it installs {name})")
    return found


def _command(tool: Tool, folder: Path) -> list[str]:
    if tool == "checkov":
        return [
            _executable(tool), "-d", str(folder), "--framework", "terraform", "-o", "json",
            "--quiet", "--skip-download", "--download-external-modules", "false",
        ]  # fmt: skip
    return [
        _executable(tool), "config", "--skip-check-update", "--skip-version-check", "-f", "json",
        "-q", "--timeout", "30m", str(folder),
    ]  # fmt: skip


@functools.cache
def tool_version(tool: Tool) -> str:
    """The installed version of a scanner, part of every cache key."""
    cmd = [_executable(tool), "--version"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=_tool_env(), timeout=120)
    text = (out.stdout or out.stderr).strip()
    m = re.search(r"(\d+\.\d+\.\d+)", text)
    if out.returncode != 0 or not m:
        raise ScannerError(f"{tool} --version failed: {text[:200]}")
    return m.group(1)


def _parse_checkov(raw: str) -> tuple[dict[int, list[Finding]], set[int]]:
    """Checkov JSON -> findings per folder index, and folder indexes that failed to parse."""
    data: Any = json.loads(raw) if raw.strip() else []
    reports = data if isinstance(data, list) else [data]
    per: dict[int, list[Finding]] = {}
    broken: set[int] = set()
    for report in reports:
        if not isinstance(report, dict) or "results" not in report:
            continue  # an empty report is a summary without results
        results = report["results"]
        for path in results.get("parsing_errors", []) or []:
            idx = _folder_index(str(path))
            if idx is not None:
                broken.add(idx)
        for check in results.get("failed_checks", []) or []:
            idx = _folder_index(check.get("file_path", ""))
            if idx is None:
                continue
            lines = check.get("file_line_range") or [0, 0]
            per.setdefault(idx, []).append(
                Finding(
                    tool="checkov",
                    rule_id=str(check["check_id"]),
                    severity=check.get("severity"),
                    resource=str(check.get("resource") or ""),
                    path="",
                    start_line=int(lines[0]),
                    end_line=int(lines[1]),
                    title=str(check.get("check_name") or ""),
                )
            )
    return per, broken


def _parse_trivy(raw: str) -> tuple[dict[int, list[Finding]], set[int]]:
    """Trivy JSON -> findings per folder index (Trivy reports parse problems only in its log)."""
    data: Any = json.loads(raw)
    per: dict[int, list[Finding]] = {}
    for result in data.get("Results") or []:
        for m in result.get("Misconfigurations") or []:
            if m.get("Status") != "FAIL":
                continue
            cause = m.get("CauseMetadata") or {}
            idx = _folder_index(result.get("Target", ""))
            if idx is None:
                continue
            per.setdefault(idx, []).append(
                Finding(
                    tool="tfsec",
                    rule_id=str(m.get("ID") or m.get("AVDID")),
                    severity=m.get("Severity"),
                    resource=str(cause.get("Resource") or ""),
                    path="",
                    start_line=int(cause.get("StartLine") or 0),
                    end_line=int(cause.get("EndLine") or 0),
                    title=str(m.get("Title") or ""),
                )
            )
    return per, set()


_FOLDER = re.compile(r"(?:^|/)(\d{5})/" + re.escape(SCAN_FILENAME) + "$")


def _folder_index(path: str) -> int | None:
    m = _FOLDER.search(path.replace("\\", "/"))
    return int(m.group(1)) if m else None


def _run_batch(
    tool: Tool, texts: Sequence[str], timeout_s: float
) -> list[tuple[list[Finding], str | None]]:
    """Run one tool process over `texts`, each alone in its own folder. Raises on a failed run."""
    with tempfile.TemporaryDirectory(prefix=f"axon-{tool}-") as tmp:
        root = Path(tmp)
        for i, text in enumerate(texts):
            folder = root / f"{i:05d}"
            folder.mkdir()
            (folder / SCAN_FILENAME).write_text(text, encoding="utf-8")
        proc = subprocess.run(
            _command(tool, root),
            capture_output=True,
            text=True,
            env=_tool_env(),
            timeout=timeout_s,
            cwd=root,
        )
        # Checkov exits 1 when a check failed; Trivy exits 0 unless --exit-code is set.
        if proc.returncode not in (0, 1) or not proc.stdout.strip().startswith(("{", "[")):
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise RuntimeError(f"{tool} exited {proc.returncode}: {tail[0][:300]}")
        per, broken = (_parse_checkov if tool == "checkov" else _parse_trivy)(proc.stdout)
    out: list[tuple[list[Finding], str | None]] = []
    for i in range(len(texts)):
        if i in broken:
            out.append(([], f"{tool} could not parse the file"))
        else:
            found = sorted(
                per.get(i, []), key=lambda f: (f["start_line"], f["rule_id"], f["resource"])
            )
            out.append((found, None))
    return out


def _run_batch_safely(
    tool: Tool, texts: Sequence[str], timeout_s: float
) -> list[tuple[list[Finding], str | None]]:
    """Run a batch; on a crash or timeout split it in halves and retry, down to single files."""
    try:
        return _run_batch(tool, texts, timeout_s)
    except (RuntimeError, subprocess.TimeoutExpired, json.JSONDecodeError, OSError) as exc:
        if len(texts) == 1:
            reason = "timed out" if isinstance(exc, subprocess.TimeoutExpired) else str(exc)
            return [([], f"{tool} failed on this file: {reason}")]
        mid = len(texts) // 2
        return _run_batch_safely(tool, texts[:mid], timeout_s) + _run_batch_safely(
            tool, texts[mid:], timeout_s
        )


class BatchTask(NamedTuple):
    """One scanner batch: the unit of work an executor runs (plain data, so it pickles)."""

    tool: Tool
    version: str
    """The caller's version of the tool: a worker with another one refuses the batch."""
    texts: list[str]
    timeout_s: float


def scan_batch(task: BatchTask) -> list[tuple[list[Finding], str | None]]:
    """Run one batch where the executor puts it (this process, or a cluster worker).

    Raises:
        ScannerError: the tool is missing here, or its version is not the caller's (a cache key
            names the version, so a label must not come from another one).
    """
    version = tool_version(task.tool)
    if version != task.version:
        raise ScannerError(
            f"{task.tool} {version} on a worker, {task.version} here: install the same scanner "
            "versions on every node"
        )
    return _run_batch_safely(task.tool, task.texts, task.timeout_s)


# --------------------------------------------------------------------------------------------
# Cache


def _cache_path(cache_dir: Path, tool: Tool, version: str, sha: str) -> Path:
    return cache_dir / tool / version / sha[:2] / f"{sha}.json"


def _load_cached(path: Path) -> ToolResult | None:
    try:
        data: ToolResult = read_json(path)
    except (OSError, ValueError):
        return None
    return data


def _balanced_batches(
    keys: Sequence[str], sizes: Sequence[int], batch_size: int
) -> list[list[str]]:
    """Cut `keys` into the fewest batches of <= batch_size, dealt out largest first.

    A file's cost grows with its size, and one slow batch holds up the whole run when batches
    run in parallel; dealing the files round-robin in size order gives every batch a similar share
    of large and small files.
    """
    if not keys:
        return []
    n = -(-len(keys) // batch_size)
    order = sorted(range(len(keys)), key=lambda i: (-sizes[i], keys[i]))
    return [[keys[i] for i in order[b::n]] for b in range(n)]


def scan_texts(
    items: Sequence[tuple[str, str]], config: ScanConfig, progress: bool = True
) -> list[dict[Tool, ToolResult]]:
    """Scan each text alone with every configured tool, many texts per tool process, cached.

    Each batch is one task of `config.executor` (`scan_batch`); its results are written to the
    cache here, as soon as it finishes, whichever engine ran it, so a killed run resumes on either.

    Args:
        items: (display_path, terraform_text) pairs; display_path becomes each Finding's `path`.
        config: How to run the scanners and where the cache lives.
        progress: Show a tqdm bar per tool on stderr.

    Returns:
        One dict per item, in order: tool -> ToolResult.
    """
    shas = [sha256_text(text) for _, text in items]
    text_of = {sha: text for sha, (_, text) in zip(shas, items, strict=True)}
    run_on = config.executor or LocalExecutor(config.workers)
    by_tool = {tool: _scan_tool(tool, text_of, config, progress, run_on) for tool in config.tools}

    out: list[dict[Tool, ToolResult]] = []
    for (path, _), sha in zip(items, shas, strict=True):
        row: dict[Tool, ToolResult] = {}
        for tool, done in by_tool.items():
            result = done[sha]
            findings = [Finding(**{**f, "path": path}) for f in result["findings"]]  # type: ignore[typeddict-item]
            row[tool] = ToolResult(**{**result, "findings": findings})  # type: ignore[typeddict-item]
        out.append(row)
    return out


def _scan_tool(
    tool: Tool, text_of: dict[str, str], config: ScanConfig, progress: bool, executor: Executor
) -> dict[str, ToolResult]:
    """sha256 -> result of one tool on every text: from the cache, else scanned and cached."""
    version = tool_version(tool)
    done: dict[str, ToolResult] = {}
    todo: list[str] = []
    for sha in text_of:
        cached = _load_cached(_cache_path(config.cache_dir, tool, version, sha))
        if cached is not None:
            done[sha] = cached
        else:
            todo.append(sha)
    batches = _balanced_batches(todo, [len(text_of[sha]) for sha in todo], config.batch_size)
    bar = tqdm(
        total=len(text_of),
        initial=len(done),
        desc=f"{tool} {version}",
        unit="file",
        disable=not progress,
        leave=False,
    )

    def store(j: int, outcome: list[tuple[list[Finding], str | None]]) -> None:
        # Here, in the caller's process, as each batch finishes: the cache is the caller's.
        for sha, (findings, error) in zip(batches[j], outcome, strict=True):
            result = ToolResult(
                tool=tool, version=version, sha256=sha, findings=findings, error=error
            )
            atomic_write_json(_cache_path(config.cache_dir, tool, version, sha), result, None)
            done[sha] = result
        bar.update(len(batches[j]))

    tasks = [BatchTask(tool, version, [text_of[s] for s in b], config.timeout_s) for b in batches]
    executor.map(scan_batch, tasks, store)
    bar.close()
    return done


# --------------------------------------------------------------------------------------------
# Label policies


@dataclass(frozen=True)
class LabelPolicy:
    """A named rule from findings to a label: INSECURE iff at least one finding is `relevant`."""

    name: str
    description: str
    """One sentence, shown in the data set card and the README."""
    relevant: Callable[[Finding], bool] = field(repr=False)


@functools.cache
def security_core_ids() -> frozenset[str]:
    """Rule ids of the `security-core` allow-list (resources/security_core.txt)."""
    text = resources.files("axon_infralinter").joinpath("resources/security_core.txt").read_text()
    return frozenset(
        line.split("#", 1)[0].strip() for line in text.splitlines() if line.split("#", 1)[0].strip()
    )


def _is_high(f: Finding) -> bool:
    return f["tool"] == "tfsec" and f["severity"] in ("HIGH", "CRITICAL")


POLICIES: dict[str, LabelPolicy] = {
    p.name: p
    for p in (
        LabelPolicy(
            "any", "INSECURE when Checkov or tfsec reports any failed check.", lambda f: True
        ),
        LabelPolicy(
            "tfsec-high",
            "INSECURE when tfsec (Trivy) reports a HIGH or CRITICAL misconfiguration.",
            _is_high,
        ),
        LabelPolicy(
            "security-core",
            "INSECURE when Checkov or tfsec reports a check from the shipped allow-list of "
            "exposure, encryption, access-control and secret checks (resources/security_core.txt).",
            lambda f: f["rule_id"] in security_core_ids(),
        ),
    )
}
DEFAULT_POLICY = "security-core"


def apply_policy(
    results: dict[Tool, ToolResult] | Iterable[Finding],
    policy: str = DEFAULT_POLICY,
    tools: tuple[Tool, ...] | None = None,
) -> tuple[Label, list[Finding]]:
    """Label a file from its findings.

    Args:
        results: A `scan_texts` row (tool -> ToolResult) or a flat list of findings.
        policy: A key of `POLICIES`.
        tools: Only count these scanners' findings (per-scanner baselines, cross-labeler view).

    Returns:
        The label and the findings that made it (empty for SECURE).
    """
    if policy not in POLICIES:
        raise ConfigError(f"unknown label policy {policy!r}; choose from {', '.join(POLICIES)}")
    if isinstance(results, dict):
        findings: list[Finding] = [f for r in results.values() for f in r["findings"]]
    else:
        findings = list(results)
    rule = POLICIES[policy].relevant
    relevant = [f for f in findings if (tools is None or f["tool"] in tools) and rule(f)]
    return ("INSECURE" if relevant else "SECURE"), relevant
