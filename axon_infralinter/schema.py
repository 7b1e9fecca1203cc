"""The data contracts of ../shared/DESIGN.md, in code.

Label: `SECURE` or `INSECURE`; as a number INSECURE = 1 is the positive class everywhere.
Finding: one failed check of one scanner, normalized across Checkov and Trivy.
Record: one line of `data/{train,val,test}.jsonl`.
EvalRun: one evaluation run file in `data/eval_runs/`.
AdapterMeta: an adapter's train_config.json + threshold.json.

Each file the project writes and reads again has one typed reader here (`read_records`,
`read_eval_run`, `read_adapter_meta`), used wherever it is read, so a malformed input is one line
before any long work starts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NotRequired, TypedDict, cast

from axon_infralinter.errors import InputError

Label = Literal["SECURE", "INSECURE"]
Tool = Literal["checkov", "tfsec"]
LABELS: tuple[Label, Label] = ("SECURE", "INSECURE")
TRAIN_CONFIG_JSON = "train_config.json"
THRESHOLD_JSON = "threshold.json"
EVAL_SUMMARY_JSON = "eval_summary.json"


def label_to_int(label: Label) -> int:
    """INSECURE -> 1, SECURE -> 0."""
    return 1 if label == "INSECURE" else 0


def int_to_label(value: int) -> Label:
    """1 -> INSECURE, 0 -> SECURE."""
    return "INSECURE" if value else "SECURE"


class Finding(TypedDict):
    """One failed check. `severity` is null where the tool reports none (Checkov offline)."""

    tool: Tool
    rule_id: str
    severity: str | None
    resource: str
    path: str
    start_line: int
    end_line: int
    title: str


class Record(TypedDict):
    """One data set example. `input_text` = instruction + Terraform text; `target_text` = answer."""

    id: str
    repo: str
    path: str
    sha256: str
    label: Label
    input_text: str
    target_text: str
    findings: list[Finding]


Role = Literal["broken", "clean", "neutral"]
ROLES: tuple[Role, ...] = ("broken", "clean", "neutral")


class PairRecord(Record):
    """One line of `pairs/{train,val,test}.jsonl` (`axon dataset mutate`): a Record of a variant.

    `pair_id` is shared by a pair's two members (role `broken`, scanned INSECURE, and `clean`,
    scanned SECURE), both from the source block `source_id`; null for a `neutral` variant.
    `edit` says what was changed (`kind`: rule, clean or neutral; `rule_id`, `attribute`, `op`,
    `value`, `intended`).
    """

    pair_id: str | None
    source_id: str
    role: Role
    edit: dict[str, Any]


class Prediction(TypedDict):
    """One file's prediction inside an eval run file."""

    id: str
    path: str
    y_true: int
    y_pred: int | None
    score: float | None
    output: str | None
    parsed: bool
    seconds: float
    pair_id: NotRequired[str]
    """Pair members only (`axon evaluate --pairs`): the pair, and the member's role in it."""
    role: NotRequired[str]


class EvalRun(TypedDict):
    """An evaluation run file `data/eval_runs/eval_<model>_run<N>_<timestamp>.json`."""

    model: str
    run_id: int
    timestamp: str
    mode: str
    seed: int | None
    config: dict[str, Any]
    dataset: dict[str, Any]
    metrics: dict[str, Any]
    predictions: list[Prediction]
    runtime: dict[str, Any]


# --------------------------------------------------------------------------------------------
# Typed readers: each JSON/JSONL file the project writes is read here, checked before long work.

RECORD_KEYS: tuple[str, ...] = ("id", "label", "input_text", "target_text")
"""What every data set record must hold for training and threshold tuning."""
TRAINING_KEYS: tuple[str, ...] = ("input_text", "target_text")
RUN_KEYS: tuple[str, ...] = ("model", "run_id", "mode", "metrics", "predictions")


def _bad(path: Path, what: str) -> InputError:
    return InputError(f"{path}: {what}")


def read_records(path: Path, required: Sequence[str] = RECORD_KEYS) -> list[dict[str, Any]]:
    """The records of a data set jsonl file, each checked for `required` keys and its label.

    Raises:
        InputError: the file is missing, a line is not a JSON object, a key is missing, or a label
            is neither SECURE nor INSECURE; the message names the file and the line.
    """
    if not path.is_file():
        raise _bad(path, "no such file")
    rows: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise _bad(path, f"line {number} is not JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise _bad(path, f"line {number} is not a JSON object")
            missing = [key for key in required if key not in row]
            if missing:
                raise _bad(
                    path,
                    f"line {number} has no {', '.join(repr(k) for k in missing)} "
                    f"(a record needs {', '.join(required)})",
                )
            if "label" in row and row["label"] not in LABELS:
                raise _bad(path, f"line {number}: label {row['label']!r} is not SECURE or INSECURE")
            rows.append(row)
    return rows


PAIR_KEYS: tuple[str, ...] = (*RECORD_KEYS, "pair_id", "source_id", "role", "edit")


def read_pairs(path: Path) -> list[PairRecord]:
    """The records of a pairs jsonl file, checked as records and as pairs.

    Raises:
        InputError: a record is malformed (see `read_records`), its role is unknown, or a
            `pair_id` is not held by exactly one broken and one clean record of one source.
    """
    rows = read_records(path, PAIR_KEYS)
    members: dict[str, list[dict[str, Any]]] = {}
    for number, row in enumerate(rows, 1):
        if row["role"] not in ROLES:
            raise _bad(path, f"record {number}: role {row['role']!r} is not one of {ROLES}")
        if row["pair_id"] is not None:
            members.setdefault(str(row["pair_id"]), []).append(row)
    for pair_id, pair in members.items():
        roles = sorted(r["role"] for r in pair)
        if roles != ["broken", "clean"] or len({r["source_id"] for r in pair}) != 1:
            raise _bad(
                path, f"pair {pair_id!r} is not one broken and one clean record of one source"
            )
    return cast(list[PairRecord], rows)


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON file that must hold an object (a data set or chunks card); one line if it does not."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise _bad(path, f"unreadable ({exc})") from None
    except json.JSONDecodeError as exc:
        raise _bad(path, f"not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise _bad(path, "not a JSON object")
    return data


@dataclass(frozen=True)
class AdapterMeta:
    """What `axon train` writes beside an adapter: train_config.json and threshold.json."""

    folder: Path
    config: dict[str, Any]
    """The resolved TrainConfig (`config_to_dict`)."""
    summary: dict[str, Any]
    """Losses, steps, time, `training_repos`."""
    data_sha256: dict[str, str]
    threshold: float | None
    """Decision threshold on P(INSECURE) tuned on validation (None: no threshold.json)."""
    tuning: dict[str, Any]
    """The whole threshold.json (`val_f1`, `n`, `criterion`, `val_scores`); empty without one."""
    evaluation: dict[str, Any] | None
    """eval_summary.json: test-split metrics written for the model card (None: absent)."""

    @property
    def base_model(self) -> str | None:
        """The base model the adapter was trained on (None: no train_config.json)."""
        value = self.config.get("base_model")
        return str(value) if value else None

    @property
    def max_length(self) -> int | None:
        """Training max_length (the prompt budget scoring must use)."""
        value = self.config.get("max_length")
        return int(value) if value is not None else None

    @property
    def training_repos(self) -> list[str]:
        """Repositories of its training examples (empty when not recorded)."""
        return [str(repo) for repo in self.summary.get("training_repos") or []]


def read_adapter_meta(folder: Path) -> AdapterMeta:
    """An adapter folder's train_config.json, threshold.json and eval_summary.json, each optional.

    Raises:
        InputError: a file is there but malformed.
    """
    config: dict[str, Any] = {}
    summary: dict[str, Any] = {}
    hashes: dict[str, str] = {}
    train_file = folder / TRAIN_CONFIG_JSON
    if train_file.is_file():
        data = read_json_object(train_file)
        if not isinstance(data.get("config"), dict):
            raise _bad(train_file, "no 'config' object (not written by `axon train`)")
        config = data["config"]
        summary = data.get("summary") or {}
        hashes = data.get("data_sha256") or {}
    threshold: float | None = None
    tuning: dict[str, Any] = {}
    threshold_file = folder / THRESHOLD_JSON
    if threshold_file.is_file():
        tuning = read_json_object(threshold_file)
        value = tuning.get("threshold")
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise _bad(threshold_file, f"'threshold' must be a number, got {value!r}")
        threshold = float(value)
    eval_file = folder / EVAL_SUMMARY_JSON
    evaluation = read_json_object(eval_file) if eval_file.is_file() else None
    return AdapterMeta(folder, config, summary, hashes, threshold, tuning, evaluation)


def read_eval_run(path: Path) -> EvalRun:
    """One eval run file, checked for the keys every reader uses.

    Raises:
        InputError: not JSON, not an object, or a required key is missing.
    """
    data = read_json_object(path)
    missing = [key for key in RUN_KEYS if key not in data]
    if missing:
        raise _bad(path, f"not an eval run file (no {', '.join(missing)})")
    if not isinstance(data["predictions"], list):
        raise _bad(path, "'predictions' must be a list")
    return cast(EvalRun, data)
