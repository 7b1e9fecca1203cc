"""The data contracts of ../shared/DESIGN.md, in code.

Label: `SECURE` or `INSECURE`; as a number INSECURE = 1 is the positive class everywhere.
Finding: one failed check of one scanner, normalized across Checkov and Trivy.
Record: one line of `data/{train,val,test}.jsonl`.
EvalRun: one evaluation run file in `data/eval_runs/`.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

Label = Literal["SECURE", "INSECURE"]
Tool = Literal["checkov", "tfsec"]
LABELS: tuple[Label, Label] = ("SECURE", "INSECURE")


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
