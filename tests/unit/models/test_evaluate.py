"""Unit tests of models/evaluate.py and models/baselines.py: the invariance of every evaluator,
resume, labels CSV, evaluate_llms with a fake predictor, baselines with recorded scanner results.
No model, no subprocess. Metrics and run file names: test_metrics.py, test_runs.py."""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from axon_infralinter.data import scanner
from axon_infralinter.data.prompt import build_prompt, split_prompt
from axon_infralinter.errors import ConfigError, InputError
from axon_infralinter.files import read_json, sha256_file, write_jsonl
from axon_infralinter.models import baselines, eval_config, pairwise, predict, runs
from axon_infralinter.models import evaluate as ev
from axon_infralinter.models.baselines import constant_run, cross_labeler_views
from axon_infralinter.models.eval_config import EvalConfig
from axon_infralinter.models.evaluate import (
    evaluate,
    evaluate_baselines,
    evaluate_llms,
    load_labels_csv,
    metrics,
)
from axon_infralinter.models.runs import make_run, relabel_run
from axon_infralinter.settings import load_settings

# ------------------------------------------------------------------------------------- helpers


def finding(tool: str, rule_id: str, severity: str | None = None) -> dict[str, Any]:
    return {
        "tool": tool,
        "rule_id": rule_id,
        "severity": severity,
        "resource": "aws_s3_bucket.b",
        "path": "main.tf",
        "start_line": 1,
        "end_line": 3,
        "title": f"title of {rule_id}",
    }


def code_of(i: int) -> str:
    return f'resource "aws_s3_bucket" "b{i}" {{\n  bucket = "bucket-{i}"\n}}'


def record(i: int, label: str, findings: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    path = f"modules/f{i}.tf"
    return {
        "id": f"acme__repo{i % 3}::{path}",
        "repo": f"acme__repo{i % 3}",
        "path": path,
        "sha256": f"{i:064x}",
        "label": label,
        "input_text": build_prompt(code_of(i)),
        "target_text": label,
        "findings": findings or [],
    }


@dataclass
class FakePredictor:
    """Answers from tables keyed by the code inside the prompt; records every call."""

    scores: dict[str, float] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    name: str = "fake-model"
    threshold: float = 0.5
    tokens_processed: int = 0
    calls: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)

    def score_prompts(
        self, prompts: list[str], batch_size: int = 8, progress: bool = False
    ) -> list[float]:
        self.calls.append(("score", len(prompts), {"batch_size": batch_size}))
        self.tokens_processed += 10 * len(prompts)
        return [self.scores[split_prompt(p)[1]] for p in prompts]

    def score_documents(
        self, prompts: list[str], batch_size: int = 8, progress: bool = False
    ) -> list[float]:
        return self.score_prompts(prompts, batch_size, progress)

    def worst_block_prompts(self, prompts: list[str], **kwargs: Any) -> list[str]:
        return list(prompts)

    def generate_prompts(self, prompts: list[str], **kwargs: Any) -> list[str]:
        self.calls.append(("generate", len(prompts), kwargs))
        self.tokens_processed += 20 * len(prompts)
        return [self.outputs[split_prompt(p)[1]] for p in prompts]


def settings_for(tmp_path: Path, **env: str) -> Any:
    return load_settings({"AXON_HOME": str(tmp_path / "home"), **env})


def config_for(tmp_path: Path, **kwargs: Any) -> EvalConfig:
    return EvalConfig(data_dir=tmp_path / "data", runs_dir=tmp_path / "runs", **kwargs)


# ------------------------------------------------------------------------------------- metrics


def _random_case(seed: int) -> tuple[list[int], list[int | None], list[float | None]]:
    rng = random.Random(seed)
    n = rng.randint(4, 30)
    y_true = [rng.randint(0, 1) for _ in range(n)]
    y_pred: list[int | None] = [rng.choice([0, 1, 1, 0, None]) for _ in range(n)]
    scores: list[float | None] = [round(rng.random(), 1) for _ in range(n)]  # ties on purpose
    return y_true, y_pred, scores


def _via_metrics(y_true: list[int], y_pred: list[int | None], scores: list[float | None]) -> Any:
    return metrics(y_true, y_pred, scores)


def _via_make_run(y_true: list[int], y_pred: list[int | None], scores: list[float | None]) -> Any:
    records = [record(i, "INSECURE" if t else "SECURE") for i, t in enumerate(y_true)]
    n = len(records)
    run = make_run(
        model="m",
        config=EvalConfig(),
        records=records,
        mode="score",
        seed=None,
        labeler=False,
        label_source="both",
        run_config={},
        y_pred=y_pred,
        scores=scores,
        outputs=[None] * n,
        seconds=[0.0] * n,
        runtime={},
    )
    return run["metrics"]


def _via_relabel(y_true: list[int], y_pred: list[int | None], scores: list[float | None]) -> Any:
    run = {
        "predictions": [
            {"y_true": 1 - t, "y_pred": p, "score": s}
            for t, p, s in zip(y_true, y_pred, scores, strict=True)
        ]
    }
    return relabel_run(run, y_true, "checkov", labeler=False)["metrics"]


@pytest.mark.parametrize("evaluator", [_via_metrics, _via_make_run, _via_relabel])
@pytest.mark.parametrize("seed", range(8))
def test_every_evaluator_is_invariant_to_item_order(evaluator: Any, seed: int) -> None:
    y_true, y_pred, scores = _random_case(seed)
    order = list(range(len(y_true)))
    random.Random(100 + seed).shuffle(order)
    base = evaluator(y_true, y_pred, scores)
    permuted = evaluator(
        [y_true[i] for i in order], [y_pred[i] for i in order], [scores[i] for i in order]
    )
    assert_same(permuted, base)
    # Every evaluator agrees with `metrics` itself.
    assert_same(base, metrics(y_true, y_pred, scores))


def assert_same(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Equal keys and values; floats equal up to summation order (1e-12)."""
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], float) and isinstance(b[k], float):
            assert a[k] == pytest.approx(b[k], rel=1e-12, abs=1e-12), k
        else:
            assert a[k] == b[k], k


# ------------------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"limit": 0}, "--limit must be > 0, got 0"),
        ({"run_id": 0}, "--run-id must be >= 1, got 0"),
        ({"mode": "sample"}, "--mode must be score or generate, got 'sample'"),
        ({"batch_size": 0}, "--batch-size must be > 0, got 0"),
        ({"seed": -1}, "--seed must be >= 0, got -1"),
        ({"policy": "nope"}, "--policy must be one of any, security-core, tfsec-high, got 'nope'"),
    ],
)
def test_config_rejects_bad_values_naming_the_flag(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        EvalConfig(**kwargs)
    assert str(info.value) == message


def test_config_coerces_paths() -> None:
    config = EvalConfig(data_dir="d", runs_dir="r", adapter="a", labels_csv="l.csv")  # type: ignore[arg-type]
    assert (config.data_dir, config.runs_dir, config.adapter, config.labels_csv) == (
        Path("d"), Path("r"), Path("a"), Path("l.csv"),
    )  # fmt: skip


# ------------------------------------------------------------------------------------- run files


# ------------------------------------------------------------------------------------- evaluate_llms


SCORES = [0.9, 0.5, 0.49, 0.1, 0.7, 0.2]  # threshold 0.5 is inclusive
LABELS = ["INSECURE", "INSECURE", "INSECURE", "SECURE", "SECURE", "SECURE"]


def score_fixture() -> tuple[list[dict[str, Any]], FakePredictor]:
    records = [record(i, label) for i, label in enumerate(LABELS)]
    predictor = FakePredictor(
        scores={code_of(i): s for i, s in enumerate(SCORES)},
        outputs={code_of(i): f"INSECURE\n- RULE_{i}" for i in range(len(SCORES))},
    )
    return records, predictor


def test_evaluate_llms_score_mode(tmp_path: Path) -> None:
    records, predictor = score_fixture()
    config = config_for(tmp_path, batch_size=4)
    run = evaluate_llms(records, predictor, config, settings=settings_for(tmp_path), progress=False)

    assert [c[:2] for c in predictor.calls] == [("score", 4), ("score", 2)]
    preds = run["predictions"]
    assert [p["y_pred"] for p in preds] == [1, 1, 0, 0, 1, 0]
    assert [p["y_true"] for p in preds] == [1, 1, 1, 0, 0, 0]
    assert [p["score"] for p in preds] == SCORES
    assert all(p["parsed"] and p["output"] is None for p in preds)
    assert [p["id"] for p in preds] == [r["id"] for r in records]
    assert run["metrics"]["confusion"] == {"tn": 2, "fp": 1, "fn": 1, "tp": 2}
    assert run["metrics"]["roc_auc"] == pytest.approx(
        metrics([1, 1, 1, 0, 0, 0], [0] * 6, SCORES)["roc_auc"]
    )
    assert (run["model"], run["mode"], run["run_id"], run["seed"]) == (
        "fake-model",
        "score",
        1,
        None,
    )
    assert (run["labeler"], run["label_source"], run["deterministic"]) == (False, "both", True)
    assert run["config"]["base_model_only"] is True and run["config"]["threshold"] == 0.5
    assert run["dataset"]["path"] == str(tmp_path / "data" / "test.jsonl")
    assert run["dataset"]["size"] == 6 and len(run["dataset"]["sha256"]) == 64
    assert run["repos"] == ["acme__repo0", "acme__repo1", "acme__repo2"]
    rt = run["runtime"]
    assert set(rt) == {"total_s", "per_file_mean_s", "per_file_median_s", "per_file_p95_s",
                       "tokens_per_s", "peak_rss_mb"}  # fmt: skip
    assert rt["tokens_per_s"] > 0 and rt["peak_rss_mb"] > 0

    files = list(config.runs_dir.iterdir())
    assert len(files) == 1
    assert re.fullmatch(r"eval_fake-model_run1_\d{8}T\d{6}Z\.json", files[0].name)
    assert read_json(files[0]) == run
    assert list(run) == ["model", "run_id", "timestamp", "mode", "seed", "deterministic",
                         "labeler", "label_source", "config", "dataset", "repos", "metrics",
                         "predictions", "runtime"]  # fmt: skip


def test_evaluate_llms_nan_score_is_a_failure(tmp_path: Path) -> None:
    records, predictor = score_fixture()
    predictor.scores[code_of(0)] = float("nan")
    run = evaluate_llms(
        records, predictor, config_for(tmp_path), settings=settings_for(tmp_path), progress=False
    )
    first = run["predictions"][0]
    assert (first["y_pred"], first["score"], first["parsed"]) == (None, None, False)
    assert run["metrics"]["parse_failures"] == 1 and run["metrics"]["roc_auc"] is None


def test_evaluate_llms_resumes_finished_run_unless_forced(tmp_path: Path) -> None:
    records, predictor = score_fixture()
    settings = settings_for(tmp_path)
    config = config_for(tmp_path)
    first = evaluate_llms(records, predictor, config, settings=settings, progress=False)
    again = evaluate_llms(records, predictor, config, settings=settings, progress=False)
    assert again == first and len(predictor.calls) == 1

    for changed in (config_for(tmp_path, force=True), config_for(tmp_path, seed=7),
                    config_for(tmp_path, run_id=2), config_for(tmp_path, explain=True)):  # fmt: skip
        before = len(predictor.calls)
        evaluate_llms(records, predictor, changed, settings=settings, progress=False)
        assert len(predictor.calls) > before, changed
    before = len(predictor.calls)
    evaluate_llms(records[:3], predictor, config, settings=settings, progress=False)  # --limit 3
    predictor.threshold = 0.8  # a re-tuned threshold changes predictions
    evaluate_llms(records, predictor, config, settings=settings, progress=False)
    assert len(predictor.calls) == before + 2


# Real-looking generated answers and what parse_label must read from them (its contract).
GENERATED: list[tuple[str, str | None]] = [
    ("SECURE", "SECURE"),
    (
        "INSECURE\n- CKV_AWS_24: Ensure no security groups allow ingress from 0.0.0.0:0 to port 22 "
        "(aws_security_group.bastion)",
        "INSECURE",
    ),  # fmt: skip
    (
        "INSECURE\n- AVD-AWS-0107: An ingress security group rule allows traffic from /0. "
        "(aws_security_group.bastion)\n- CKV2_AWS_5",
        "INSECURE",
    ),  # fmt: skip
    ("secure", "SECURE"),
    ("The configuration is not secure: the bucket is public.", "INSECURE"),
    ("", None),
    ('resource "aws_s3_bucket" "b" {\n  bucket = "logs"\n}', None),
    ('```hcl\nvariable "region" {}\n```', None),
    ("I cannot tell from this snippet.", None),
]


def generate_fixture() -> tuple[list[dict[str, Any]], FakePredictor, list[int | None]]:
    labels = ["SECURE", "INSECURE", "INSECURE", "SECURE", "INSECURE", "SECURE", "INSECURE", "SECURE", "INSECURE"]  # fmt: skip
    records = [record(i, label) for i, label in enumerate(labels)]
    predictor = FakePredictor(outputs={code_of(i): out for i, (out, _) in enumerate(GENERATED)})
    expected = [None if want is None else int(want == "INSECURE") for _, want in GENERATED]
    return records, predictor, expected


def test_parse_label_contract() -> None:
    assert [predict.parse_label(out) for out, _ in GENERATED] == [want for _, want in GENERATED]


def test_evaluate_llms_generate_mode_counts_unparseable_as_failures(tmp_path: Path) -> None:
    records, predictor, expected = generate_fixture()
    config = config_for(tmp_path, mode="generate", batch_size=4)
    run = evaluate_llms(records, predictor, config, settings=settings_for(tmp_path), progress=False)

    preds = run["predictions"]
    assert [p["y_pred"] for p in preds] == expected
    assert [p["parsed"] for p in preds] == [e is not None for e in expected]
    assert [p["output"] for p in preds] == [out for out, _ in GENERATED]
    assert all(p["score"] is None for p in preds)
    m = run["metrics"]
    assert m["parse_failures"] == 4 and m["parse_failure_rate"] == pytest.approx(4 / 9)
    # The 5 parsed answers are right (tn 2, tp 3); the 4 failures are wrong: 2 on SECURE files
    # count as false positives, 2 on INSECURE files as false negatives.
    assert m["confusion"] == {"tn": 2, "fp": 2, "fn": 2, "tp": 3}
    assert m["accuracy"] == pytest.approx(5 / 9)
    assert m["roc_auc"] is None
    # Deterministic by default: greedy, 50 new tokens, one call per batch.
    assert [c[1] for c in predictor.calls] == [4, 4, 1]
    assert all(c[2]["do_sample"] is False and c[2]["max_new_tokens"] == 50 for c in predictor.calls)
    assert run["deterministic"] is True and run["config"]["eval_mode"] == "deterministic"
    assert re.fullmatch(
        r"eval_fake-model-generate_run1_\d{8}T\d{6}Z\.json", next(config.runs_dir.iterdir()).name
    )


def test_evaluate_llms_generate_mode_stochastic_settings(tmp_path: Path) -> None:
    records, predictor, _ = generate_fixture()
    settings = settings_for(tmp_path, AXON_EVAL_MODE="stochastic", AXON_EVAL_TEMPERATURE="0.9")
    config = config_for(tmp_path, mode="generate", batch_size=4, seed=10, run_id=3)
    run = evaluate_llms(records, predictor, config, settings=settings, progress=False)
    kwargs = [c[2] for c in predictor.calls]
    assert [k["seed"] for k in kwargs] == [10, 11, 12]  # one seed per batch
    assert all(k["do_sample"] is True and k["temperature"] == 0.9 for k in kwargs)
    assert (run["seed"], run["run_id"], run["deterministic"]) == (10, 3, False)
    assert run["config"]["temperature"] == 0.9 and run["config"]["do_sample"] is True


def test_evaluate_llms_generate_mode_with_a_stub_parser(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """evaluate_llms' own bookkeeping, independent of parse_label's rules."""
    monkeypatch.setattr(
        predict,
        "parse_label",
        lambda out: {"yes": "INSECURE", "no": "SECURE"}.get(out),
        raising=False,
    )
    records = [record(i, label) for i, label in enumerate(["INSECURE", "SECURE", "INSECURE"])]
    predictor = FakePredictor(outputs={code_of(0): "yes", code_of(1): "yes", code_of(2): "maybe"})
    run = evaluate_llms(
        records,
        predictor,
        config_for(tmp_path, mode="generate"),
        settings=settings_for(tmp_path),
        progress=False,
    )
    assert [p["y_pred"] for p in run["predictions"]] == [1, 1, None]
    assert run["metrics"]["confusion"] == {"tn": 0, "fp": 1, "fn": 1, "tp": 1}


def test_evaluate_llms_explain_generates_for_flagged_files_only(tmp_path: Path) -> None:
    records, predictor = score_fixture()
    run = evaluate_llms(
        records,
        predictor,
        config_for(tmp_path, explain=True),
        settings=settings_for(tmp_path),
        progress=False,
    )
    assert [c[:2] for c in predictor.calls] == [("score", 6), ("generate", 3)]
    assert [p["output"] for p in run["predictions"]] == ["INSECURE\n- RULE_0", "INSECURE\n- RULE_1", None, None, "INSECURE\n- RULE_4", None]  # fmt: skip
    assert [p["y_pred"] for p in run["predictions"]] == [1, 1, 0, 0, 1, 0]


# ------------------------------------------------------------------------------------- labels CSV


def write_tf(folder: Path, name: str, text: str = 'variable "x" {}\n') -> None:
    (folder / name).parent.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")


def test_load_labels_csv(tmp_path: Path) -> None:
    write_tf(tmp_path, "a.tf", '# comment\nresource "aws_s3_bucket" "a" {}\n')
    write_tf(tmp_path, "sub/b.tf")
    write_tf(tmp_path, "c.tf")
    write_tf(tmp_path, "d.tf")
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text(
        "\ufeffpath,label\na.tf, insecure\nsub/b.tf,Secure\nc.tf,1\n\nd.tf,0\n", encoding="utf-8"
    )
    records = load_labels_csv(csv_path)
    assert [(r["id"], r["path"], r["label"]) for r in records] == [
        ("external::a.tf", "a.tf", "INSECURE"),
        ("external::sub/b.tf", "sub/b.tf", "SECURE"),
        ("external::c.tf", "c.tf", "INSECURE"),
        ("external::d.tf", "d.tf", "SECURE"),
    ]
    first = records[0]
    assert first["repo"] == "external" and first["findings"] == []
    assert first["sha256"] == sha256_file(tmp_path / "a.tf")
    assert first["input_text"] == build_prompt((tmp_path / "a.tf").read_text())
    assert "# comment" not in first["input_text"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("file,label\na.tf,SECURE\n", "missing column(s) path (need path,label)"),
        ("path\na.tf\n", "missing column(s) label (need path,label)"),
        ("", "missing column(s) path, label"),
        ("path,label\n", "no rows"),
        (
            "path,label\na.tf,SAFE\n",
            "labels.csv:2: unknown label 'SAFE' (use SECURE/INSECURE or 1/0)",
        ),
        (
            "path,label\na.tf,SECURE\nmissing.tf,INSECURE\n",
            "labels.csv:3: no such file 'missing.tf'",
        ),
        ("path,label\na.tf,SECURE\na.tf,INSECURE\n", "labels.csv:3: path 'a.tf' is listed twice"),
        ("path,label\nsub,SECURE\n", "labels.csv:2: 'sub' is a folder, not a file"),
        ("path,label\n,SECURE\n", "labels.csv:2: empty path"),
    ],
)
def test_load_labels_csv_rejects_bad_input_in_one_line(
    tmp_path: Path, content: str, message: str
) -> None:
    write_tf(tmp_path, "a.tf")
    (tmp_path / "sub").mkdir()
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_labels_csv(csv_path)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_load_labels_csv_missing_csv(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="labels CSV not found"):
        load_labels_csv(tmp_path / "nope.csv")


# ------------------------------------------------------------------------------------- baselines


def fake_scan(results_by_code: dict[str, dict[str, Any]], calls: list[tuple[str, ...]]) -> Any:
    """A scan_texts that answers from recorded results (findings, error) per tool and code."""

    def scan_texts(
        items: Any, config: scanner.ScanConfig, progress: bool = True
    ) -> list[dict[str, Any]]:
        calls.append(config.tools)
        rows = []
        for path, code in items:
            row = {}
            for tool in config.tools:
                findings, error = results_by_code[code][tool]
                row[tool] = {"tool": tool, "version": "9.9.9", "sha256": "x",
                             "findings": [{**f, "path": path} for f in findings], "error": error}  # fmt: skip
            rows.append(row)
        return rows

    return scan_texts


CK = finding("checkov", "CKV_AWS_20")
TF = finding("tfsec", "AVD-AWS-0086", "HIGH")


def baseline_fixture(
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[list[dict[str, Any]], list[tuple[str, ...]]]:
    # (stored findings = the labels, what the scanners report now)
    cases = [
        ([CK, TF], {"checkov": ([CK], None), "tfsec": ([TF, TF], None)}),
        ([CK], {"checkov": ([CK], None), "tfsec": ([], None)}),
        ([TF], {"checkov": ([], None), "tfsec": ([TF], None)}),
        ([], {"checkov": ([], None), "tfsec": ([], "tfsec failed on this file: timed out")}),
    ]
    records = [
        record(i, "INSECURE" if stored else "SECURE", stored) for i, (stored, _) in enumerate(cases)
    ]
    calls: list[tuple[str, ...]] = []
    monkeypatch.setattr(
        scanner,
        "scan_texts",
        fake_scan({code_of(i): now for i, (_, now) in enumerate(cases)}, calls),
    )
    return records, calls


def test_evaluate_baselines_labels_scores_and_cross_views(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records, calls = baseline_fixture(monkeypatch)
    config = config_for(tmp_path, policy="any")
    runs = evaluate_baselines(records, config, settings=settings_for(tmp_path), progress=False)

    assert calls == [("checkov",), ("tfsec",)]
    assert [(r["model"], r["label_source"], r["labeler"]) for r in runs] == [
        ("checkov", "both", True), ("checkov", "tfsec", False),
        ("tfsec", "both", True), ("tfsec", "checkov", False),
    ]  # fmt: skip
    checkov, checkov_vs_tfsec, tfsec, tfsec_vs_checkov = runs
    assert [p["y_pred"] for p in checkov["predictions"]] == [1, 1, 0, 0]
    assert [p["score"] for p in checkov["predictions"]] == [1.0, 1.0, 0.0, 0.0]
    assert [p["y_pred"] for p in tfsec["predictions"]] == [1, 0, 1, None]
    assert [p["score"] for p in tfsec["predictions"]] == [2.0, 0.0, 1.0, None]
    assert tfsec["predictions"][3]["output"] == "tfsec failed on this file: timed out"
    assert tfsec["metrics"]["parse_failures"] == 1
    assert [p["y_true"] for p in checkov["predictions"]] == [1, 1, 1, 0]
    # Cross-labeler: y_true from the stored findings of the other tool alone.
    assert [p["y_true"] for p in checkov_vs_tfsec["predictions"]] == [1, 0, 1, 0]
    assert [p["y_true"] for p in tfsec_vs_checkov["predictions"]] == [1, 1, 0, 0]
    assert checkov_vs_tfsec["metrics"]["confusion"] == {"tn": 1, "fp": 1, "fn": 1, "tp": 1}
    assert checkov["mode"] == "scanner" and checkov["config"]["tool_version"] == ["9.9.9"]
    assert checkov["config"]["policy"] == "any"
    assert len(list(config.runs_dir.glob("eval_*.json"))) == 4

    again = evaluate_baselines(records, config, settings=settings_for(tmp_path), progress=False)
    assert again == runs and len(calls) == 2  # reused, not rescanned
    assert len(list(config.runs_dir.glob("eval_*.json"))) == 4


def test_evaluate_baselines_external_labels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records, _ = baseline_fixture(monkeypatch)
    write_tf(tmp_path, "labels.csv", "path,label\n")
    config = config_for(tmp_path, policy="any", labels_csv=tmp_path / "labels.csv")
    runs = evaluate_baselines(records, config, settings=settings_for(tmp_path), progress=False)
    assert [(r["model"], r["label_source"], r["labeler"]) for r in runs] == [
        ("checkov", "external", False), ("tfsec", "external", False),
    ]  # fmt: skip
    assert runs[0]["dataset"]["path"] == str(tmp_path / "labels.csv")


def test_constant_run_and_views(tmp_path: Path) -> None:
    records = [record(0, "INSECURE", [CK]), record(1, "INSECURE", [TF]), record(2, "SECURE")]
    run = constant_run(records, config_for(tmp_path, run_id=4))
    assert (run["model"], run["mode"], run["run_id"], run["labeler"]) == (
        "constant",
        "constant",
        1,
        False,
    )
    assert [p["y_pred"] for p in run["predictions"]] == [1, 1, 1]
    assert run["metrics"]["f1"] == pytest.approx(run["metrics"]["constant_f1"])
    views = cross_labeler_views(run, records, "any")
    assert [(v["label_source"], [p["y_true"] for p in v["predictions"]]) for v in views] == [
        ("checkov", [1, 0, 0]), ("tfsec", [0, 1, 0]),
    ]  # fmt: skip
    assert views[0]["metrics"]["prevalence"] == pytest.approx(1 / 3)
    assert views[0]["config"]["fingerprint"] != views[1]["config"]["fingerprint"]
    assert [p["y_true"] for p in run["predictions"]] == [1, 1, 0]  # the original is untouched


# ------------------------------------------------------------------------------------- evaluate()


def stage_fixture(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[FakePredictor, list[Any]]:
    records, _ = baseline_fixture(monkeypatch)
    write_jsonl(tmp_path / "data" / "test.jsonl", records)
    predictor = FakePredictor(scores={code_of(i): s for i, s in enumerate([0.8, 0.3, 0.6, 0.1])})
    loads: list[Any] = []

    def load_predictor(adapter: Path | None, **kwargs: Any) -> FakePredictor:
        loads.append((adapter, kwargs.get("base_model")))
        return predictor

    monkeypatch.setattr(predict, "load_predictor", load_predictor)
    return predictor, loads


def test_evaluate_stage_writes_llm_constant_baselines_and_cross_views(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    predictor, loads = stage_fixture(tmp_path, monkeypatch)
    config = config_for(tmp_path, baselines=True, policy="any")
    paths = evaluate(config, settings_for(tmp_path), progress=False)

    assert loads == [(None, None)]
    runs = [read_json(p) for p in paths]
    assert [(r["model"], r["label_source"]) for r in runs] == [
        ("fake-model", "both"), ("constant", "both"),
        ("fake-model", "checkov"), ("fake-model", "tfsec"),
        ("constant", "checkov"), ("constant", "tfsec"),
        ("checkov", "both"), ("checkov", "tfsec"), ("tfsec", "both"), ("tfsec", "checkov"),
    ]  # fmt: skip
    assert sorted(p.name for p in config.runs_dir.iterdir()) == sorted(p.name for p in paths)
    assert runs[0]["config"]["base_model_only"] is True
    assert [p["y_pred"] for p in runs[0]["predictions"]] == [1, 0, 1, 0]
    assert [p["y_true"] for p in runs[2]["predictions"]] == [1, 1, 0, 0]  # LLM vs checkov labels
    assert runs[2]["timestamp"] == runs[0]["timestamp"]

    # A second evaluation reuses every finished run: no model call, no scan, no new file.
    calls = len(predictor.calls)
    assert evaluate(config, settings_for(tmp_path), progress=False) == paths
    assert len(predictor.calls) == calls
    assert len(list(config.runs_dir.iterdir())) == len(paths)


def test_evaluate_stage_limit_and_adapter_from_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, loads = stage_fixture(tmp_path, monkeypatch)
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}", encoding="utf-8")
    (adapter / "train_config.json").write_text(
        '{"config": {"profile": "smollm2-cpu"}}', encoding="utf-8"
    )
    settings = settings_for(tmp_path, LORA_OUTPUT_DIR=str(adapter))
    paths = evaluate(config_for(tmp_path, limit=2, policy="any"), settings, progress=False)
    assert loads == [(adapter, None)]
    llm = read_json(paths[0])
    assert llm["config"]["base_model_only"] is False and llm["config"]["adapter"] == str(adapter)
    assert llm["config"]["train_config"] == {"config": {"profile": "smollm2-cpu"}}
    assert llm["dataset"]["size"] == 2
    assert [p["path"] for p in llm["predictions"]] == ["modules/f0.tf", "modules/f2.tf"]  # spaced


def test_evaluate_stage_refuses_test_files_from_the_adapters_training_repos(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, loads = stage_fixture(tmp_path, monkeypatch)  # records of acme__repo0, 1, 0, 2
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}", encoding="utf-8")

    def trained_on(*repos: str) -> None:
        config = {"config": {}, "summary": {"training_repos": list(repos)}}
        (adapter / "train_config.json").write_text(json.dumps(config), encoding="utf-8")

    trained_on("acme__repo0", "other/repo")
    with pytest.raises(
        InputError, match=r"^2 of 4 test files come from repositories adapter .* \(acme__repo0\)"
    ):
        evaluate(
            config_for(tmp_path, adapter=adapter, policy="any"),
            settings_for(tmp_path),
            progress=False,
        )
    assert loads == []  # refused before the model loads

    trained_on("other/repo")
    paths = evaluate(
        config_for(tmp_path, adapter=adapter, policy="any"), settings_for(tmp_path), progress=False
    )
    assert loads == [(adapter, None)] and read_json(paths[0])["model"] == "fake-model"


def test_evaluate_stage_without_adapter_is_the_base_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No --adapter and no LORA_OUTPUT_DIR: the base model, even when a trained adapter lies in
    ./models (the benchmark's zero-shot row relies on this)."""
    _, loads = stage_fixture(tmp_path, monkeypatch)
    trained = tmp_path / "models" / "axon_lora_smollm2-cpu"
    trained.mkdir(parents=True)
    (trained / "adapter_config.json").write_text("{}", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    paths = evaluate(
        config_for(tmp_path, policy="any", base_model="HuggingFaceTB/SmolLM2-135M"),
        settings_for(tmp_path),
        progress=False,
    )
    assert loads == [(None, "HuggingFaceTB/SmolLM2-135M")]
    assert read_json(paths[0])["config"]["base_model_only"] is True


@pytest.mark.parametrize(
    ("n", "limit", "picked"),
    [
        (10, 3, [0, 3, 6]),
        (4, 2, [0, 2]),
        (5, 5, [0, 1, 2, 3, 4]),
        (3, 9, [0, 1, 2]),
        (3, None, [0, 1, 2]),
    ],
)
def test_spaced_sample(n: int, limit: int | None, picked: list[int]) -> None:
    records = [{"i": i} for i in range(n)]
    assert [r["i"] for r in ev.spaced_sample(records, limit)] == picked


def test_evaluate_stage_on_labels_csv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    predictor, _ = stage_fixture(tmp_path, monkeypatch)
    write_tf(tmp_path / "ext", "a.tf", code_of(0))
    write_tf(tmp_path / "ext", "b.tf", code_of(1))
    (tmp_path / "ext" / "labels.csv").write_text(
        "path,label\na.tf,INSECURE\nb.tf,SECURE\n", encoding="utf-8"
    )
    config = config_for(tmp_path, labels_csv=tmp_path / "ext" / "labels.csv", policy="any")
    runs = [read_json(p) for p in evaluate(config, settings_for(tmp_path), progress=False)]
    assert [(r["model"], r["label_source"]) for r in runs] == [
        ("fake-model", "external"),
        ("constant", "external"),
    ]
    assert [p["id"] for p in runs[0]["predictions"]] == ["external::a.tf", "external::b.tf"]
    assert [p["y_pred"] for p in runs[0]["predictions"]] == [1, 0]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "test.jsonl not found: build the data set first"),
        ("\n", "test.jsonl is empty"),
        ('{"id": "a"\n', "test.jsonl:1: not valid JSON"),
        ('{"id": "a", "path": "p", "label": "SECURE"}\n', "test.jsonl:1: record lacks input_text"),
    ],
)
def test_evaluate_stage_bad_test_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str | None, message: str
) -> None:
    stage_fixture(tmp_path, monkeypatch)
    test_jsonl = tmp_path / "data" / "test.jsonl"
    test_jsonl.unlink()
    if content is not None:
        test_jsonl.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=re.escape(message)):
        evaluate(config_for(tmp_path), settings_for(tmp_path), progress=False)


@pytest.mark.parametrize("module", [ev, baselines, eval_config, runs])
def test_module_reads_no_environment(module: Any) -> None:
    source = Path(module.__file__).read_text(encoding="utf-8")
    assert "os.environ" not in source and "getenv" not in source


# ------------------------------------------------------------------ pairs and the bag of words


def test_evaluate_pairs_scores_every_row_on_the_pair_members(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same four codes as the baseline fixture, now two pairs: (0 broken, 3 clean) and
    # (1 broken, 2 clean); the train/val splits let tfidf-logreg train.
    predictor, _ = stage_fixture(tmp_path, monkeypatch)
    records = [
        json.loads(line) for line in (tmp_path / "data" / "test.jsonl").read_text().splitlines()
    ]
    roles = {0: ("p0", "broken"), 3: ("p0", "clean"), 1: ("p1", "broken"), 2: ("p1", "clean")}
    pairs = [{**r, "label": "INSECURE" if roles[i][1] == "broken" else "SECURE",
              "pair_id": roles[i][0], "role": roles[i][1]} for i, r in enumerate(records)]  # fmt: skip
    write_jsonl(tmp_path / "pairs" / "test.jsonl", pairs)
    write_jsonl(
        tmp_path / "data" / "train.jsonl",
        [record(10 + i, "INSECURE" if i % 2 else "SECURE") for i in range(8)],
    )
    write_jsonl(
        tmp_path / "data" / "val.jsonl",
        [record(30 + i, "INSECURE" if i % 2 else "SECURE") for i in range(4)],
    )
    config = config_for(tmp_path, baselines=True, pairs_dir=tmp_path / "pairs")
    paths = evaluate(config, settings_for(tmp_path), progress=False)

    assert {p.parent for p in paths} == {tmp_path / "runs" / "pairs"}
    runs_by_model = {r["model"]: r for r in map(read_json, paths)}
    assert set(runs_by_model) == {"fake-model", "constant", "checkov", "tfsec", "tfidf-logreg"}
    llm = runs_by_model["fake-model"]
    assert [(p["pair_id"], p["role"]) for p in llm["predictions"]] == [roles[i] for i in range(4)]
    assert llm["dataset"]["path"] == str(tmp_path / "pairs" / "test.jsonl")
    # Scores 0.8 / 0.1 (p0) and 0.3 / 0.6 (p1): one pair right, one wrong.
    values = [v for _, v, _ in pairwise.pair_outcomes(llm)]
    assert values == [1.0, 0.0]
    assert [v for _, v, _ in pairwise.pair_outcomes(runs_by_model["constant"])] == [0.5, 0.5]
    assert (tmp_path / "runs" / "pairs" / "tfidf-logreg" / "model.json").is_file()
    assert not list((tmp_path / "runs").glob("eval_*.json"))  # file-level runs untouched


def test_evaluate_pairs_bad_input_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no test.jsonl there"):
        ev.load_pairs(tmp_path)
    write_jsonl(
        tmp_path / "test.jsonl", [{**record(0, "SECURE"), "pair_id": "p", "role": "neutral"}]
    )
    with pytest.raises(InputError, match="no broken/clean pair"):
        ev.load_pairs(tmp_path)
    with pytest.raises(ConfigError, match="--pairs and --labels"):
        EvalConfig(pairs_dir=tmp_path, labels_csv=tmp_path / "x.csv")
