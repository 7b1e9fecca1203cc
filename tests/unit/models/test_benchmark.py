"""benchmark_multi_run: aggregation, the bootstrap through `summarize`, summary files, the benchmark
loop. The bootstrap and McNemar themselves: test_stats.py."""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
from pathlib import Path
from typing import Any

import pytest

from axon_infralinter.errors import ConfigError, InputError
from axon_infralinter.models import benchmark_multi_run as bm
from axon_infralinter.models.eval_config import EvalConfig
from axon_infralinter.models.metrics import METRICS
from axon_infralinter.models.summary_md import LABELER_CAVEAT
from axon_infralinter.settings import Settings, load_settings

try:
    from .synthetic_runs import make_files, noisy_answers, write_run, write_study
except ImportError:  # tests/ is not a package: pytest puts this folder on sys.path
    from synthetic_runs import make_files, noisy_answers, write_run, write_study


def _row(summary: dict[str, Any], model: str, mode: str) -> dict[str, Any]:
    (row,) = [r for r in summary["rows"] if r["model"] == model and r["mode"] == mode]
    return row


def _balanced_files(n_repos: int) -> list[tuple[str, str, int]]:
    """Every repository holds two SECURE and two INSECURE files."""
    return [(f"o/r{r}::f{j}.tf", f"f{j}.tf", j % 2) for r in range(n_repos) for j in range(4)]


# ----------------------------------------------------------------------------- metrics


# ----------------------------------------------------------------------------- bootstrap


def test_perfect_model_on_every_repo_has_ci_one(tmp_path: Path) -> None:
    files = _balanced_files(6)
    write_run(
        tmp_path, "axon_lora_x", "score", 1, files, [(y, 0.9 if y else 0.1) for *_, y in files]
    )
    row = _row(bm.summarize(tmp_path, n_boot=300), "axon_lora_x", "score")
    for metric in METRICS:
        assert row["metrics"][metric]["ci"] == [1.0, 1.0], metric
        assert row["metrics"][metric]["mean"] == 1.0


def test_ci_resamples_repositories_not_files(tmp_path: Path) -> None:
    # Repo A: 2 files, both right. Repo B: 2 files, one right. Replicates AA/AB/BB give accuracy
    # 1, 0.75, 0.5 with probability 1/4, 1/2, 1/4, so the 95% CI is exactly [0.5, 1.0]. File-level
    # resampling could give 0.25 or 0 (three wrong draws of B's wrong file).
    files = [
        ("o/A::a1.tf", "a1.tf", 1),
        ("o/A::a2.tf", "a2.tf", 0),
        ("o/B::b1.tf", "b1.tf", 1),
        ("o/B::b2.tf", "b2.tf", 0),
    ]
    write_run(tmp_path, "axon_lora_x", "score", 1, files, [(1, 0.9), (0, 0.1), (1, 0.8), (1, 0.7)])
    row = _row(bm.summarize(tmp_path, n_boot=2000, seed=1), "axon_lora_x", "score")
    assert row["metrics"]["accuracy"]["mean"] == 0.75
    assert row["metrics"]["accuracy"]["ci"] == [0.5, 1.0]
    assert row["metrics"]["accuracy"]["sd"] is None  # one run


def test_runs_of_a_row_are_averaged_on_the_same_replicate(tmp_path: Path) -> None:
    files = _balanced_files(5)
    right = [(y, None) for *_, y in files]
    wrong = [(1 - y, None) for *_, y in files]
    write_run(tmp_path, "axon_lora_x", "generate", 1, files, right)
    write_run(tmp_path, "axon_lora_x", "generate", 2, files, wrong)
    acc = _row(bm.summarize(tmp_path, n_boot=400), "axon_lora_x", "generate")["metrics"]["accuracy"]
    assert acc["values"] == [1.0, 0.0]
    assert acc["mean"] == 0.5
    assert acc["sd"] == pytest.approx(math.sqrt(0.5))
    assert acc["ci"] == [0.5, 0.5]  # the average of a perfect and an all-wrong run, every replicate


# ----------------------------------------------------------------------------- McNemar


def test_pick_finetuned_prefers_lora_score_without_seed() -> None:
    keys = [
        ("checkov", "scan"),
        ("axon_lora_p_seed1", "score"),
        ("axon_lora_p", "generate"),
        ("axon_lora_p", "score"),
        ("smollm2-base", "score"),
    ]
    assert bm.pick_finetuned(keys) == ("axon_lora_p", "score")
    assert bm.pick_finetuned([("other-llm", "generate"), ("tfsec", "scan")]) == (
        "other-llm",
        "generate",
    )
    assert bm.pick_finetuned([("tfsec", "scan"), ("constant", "constant")]) is None


# ----------------------------------------------------------------------------- summarize


def test_summarize_study_rows_flags_and_baselines(tmp_path: Path) -> None:
    files = write_study(tmp_path)
    summary = bm.summarize(tmp_path, n_boot=200)
    keys = [(r["model"], r["mode"]) for r in summary["rows"]]
    assert keys == [
        ("axon_lora_smollm2-cpu", "score"),
        ("axon_lora_smollm2-cpu", "generate"),
        ("smollm2-base", "score"),
        ("checkov", "scan"),
        ("tfsec", "scan"),
        ("constant", "constant"),
    ]
    assert {r["model"] for r in summary["rows"] if r["labeler"]} == {"checkov", "tfsec"}
    assert summary["finetuned"] == {"model": "axon_lora_smollm2-cpu", "mode": "score"}
    prevalence = statistics.fmean(y for *_, y in files)
    assert summary["prevalence"] == pytest.approx(prevalence)
    assert summary["constant_f1"] == pytest.approx(2 * prevalence / (1 + prevalence))
    assert (summary["n_files"], summary["n_repos"]) == (96, 12)
    assert summary["warnings"] == []

    generate = _row(summary, "axon_lora_smollm2-cpu", "generate")
    assert generate["runs"] == 5 and generate["run_ids"] == [1, 2, 3, 4, 5]
    assert generate["deterministic"] is False
    f1_values = generate["metrics"]["f1"]["values"]
    assert generate["metrics"]["f1"]["mean"] == pytest.approx(statistics.fmean(f1_values))
    assert generate["metrics"]["f1"]["sd"] == pytest.approx(statistics.stdev(f1_values))
    assert generate["metrics"]["roc_auc"]["mean"] is None  # no scores in generate mode
    assert generate["metrics"]["roc_auc"]["ci"] is None
    assert generate["seconds_per_file"] == pytest.approx(2.4)
    assert generate["parse_failure_rate"] > 0

    score = _row(summary, "axon_lora_smollm2-cpu", "score")
    assert score["deterministic"] is True and score["runs"] == 1
    low, high = score["metrics"]["f1"]["ci"]
    assert low <= score["metrics"]["f1"]["mean"] <= high and high - low > 0.01
    assert _row(summary, "constant", "constant")["metrics"]["recall"]["mean"] == 1.0
    assert _row(summary, "tfsec", "scan")["confusion"] == {
        "tn": 41.0,
        "fp": 0.0,
        "fn": 0.0,
        "tp": 55.0,
    }

    versus = {(c["vs_model"], c["vs_mode"]) for c in summary["mcnemar"]}
    assert versus == {("smollm2-base", "score"), ("checkov", "scan"), ("tfsec", "scan")}
    assert all(c["n_shared"] == 96 for c in summary["mcnemar"])
    tfsec = [c for c in summary["mcnemar"] if c["vs_model"] == "tfsec"][0]
    assert tfsec["only_model_correct"] == 0 and tfsec["p_value"] < 1e-3

    # Cross-labeler view: labels from checkov only, tfsec is not its own judge there.
    assert summary["label_sources"] == ["both", "checkov"]
    cross = summary["cross_labeler"]["checkov"]
    assert [(r["model"], r["labeler"]) for r in cross["rows"]] == [("tfsec", False)]


def test_summarize_filters_by_label_source(tmp_path: Path) -> None:
    write_study(tmp_path)
    summary = bm.summarize(tmp_path, label_source="checkov", n_boot=50)
    assert [r["model"] for r in summary["rows"]] == ["tfsec"]
    assert list(summary["cross_labeler"]) == ["both"]
    with pytest.raises(InputError, match="no run files with label_source 'tfsec'"):
        bm.summarize(tmp_path, label_source="tfsec")


def test_summarize_skips_bad_json_and_summary_json(tmp_path: Path) -> None:
    files = _balanced_files(2)
    write_run(tmp_path, "checkov", "scan", 1, files, [(y, 1.0) for *_, y in files])
    (tmp_path / "eval_broken_run1_x.json").write_text("{not json", encoding="utf-8")
    (tmp_path / "notes.json").write_text("[1, 2]", encoding="utf-8")
    (tmp_path / "summary.json").write_text("{}", encoding="utf-8")
    summary = bm.summarize(tmp_path, n_boot=10)
    assert [r["model"] for r in summary["rows"]] == ["checkov"]
    assert len(summary["warnings"]) == 2
    assert summary["warnings"][0].startswith("skipped eval_broken_run1_x.json: not valid JSON")
    assert summary["warnings"][1] == "skipped notes.json: not a run file (no model/predictions)"


def test_summarize_keeps_newest_file_of_a_duplicate_run(tmp_path: Path) -> None:
    files = _balanced_files(2)
    write_run(tmp_path, "tfsec", "scan", 1, files, [(0, 0.0) for _ in files], timestamp="2025a")
    write_run(tmp_path, "tfsec", "scan", 1, files, [(y, 1.0) for *_, y in files], timestamp="2025b")
    summary = bm.summarize(tmp_path, n_boot=10)
    (row,) = summary["rows"]
    assert row["runs"] == 1 and row["metrics"]["accuracy"]["mean"] == 1.0
    assert summary["warnings"] == [
        "eval_tfsec_run1_2025a.json replaced by newer eval_tfsec_run1_2025b.json"
    ]


def test_summarize_keeps_the_run_over_more_files(tmp_path: Path) -> None:
    # The constant written beside a --generate-limit subset must not replace the full-split one.
    files = _balanced_files(4)
    write_run(
        tmp_path, "constant", "constant", 1, files, [(1, 1.0) for _ in files], timestamp="2025a"
    )
    subset = files[:2]
    write_run(
        tmp_path, "constant", "constant", 1, subset, [(1, 1.0) for _ in subset], timestamp="2025b"
    )
    summary = bm.summarize(tmp_path, n_boot=10)
    (row,) = summary["rows"]
    assert row["n"] == len(files)
    assert summary["warnings"] == [
        "eval_constant_run1_2025b.json ignored: eval_constant_run1_2025a.json covers more files"
    ]


@pytest.mark.parametrize("make_dir", [True, False])
def test_no_run_files_is_one_line_input_error(tmp_path: Path, make_dir: bool) -> None:
    runs_dir = tmp_path / "eval_runs"
    if make_dir:
        runs_dir.mkdir()
        (runs_dir / "summary.json").write_text("{}", encoding="utf-8")
    with pytest.raises(InputError) as info:
        bm.summarize(runs_dir)
    assert str(info.value) == (
        f"no run files in {runs_dir}: run `axon evaluate` or `axon benchmark` first"
    )


def test_write_summary_json_and_markdown(tmp_path: Path) -> None:
    write_study(tmp_path)
    summary = bm.summarize(tmp_path, n_boot=100)
    json_path, md_path = bm.write_summary(summary, tmp_path)
    assert (json_path, md_path) == (tmp_path / "summary.json", tmp_path / "summary.md")
    assert json.loads(json_path.read_text(encoding="utf-8")) == json.loads(json.dumps(summary))
    md = md_path.read_text(encoding="utf-8")
    assert (
        "| model | mode | runs | labeler | F1 mean ± sd [95% CI] | precision | recall | accuracy "
        "| ROC-AUC | MCC | s/file |" in md
    )
    assert md.count("| axon_lora_smollm2-cpu | generate | 5 | no | ") == 1
    assert "| checkov | scan | 1 | yes | " in md
    assert "| tfsec | scan | 1 | no | " in md  # the cross-labeler table
    assert "McNemar" in md and "| axon_lora_smollm2-cpu (score) | checkov (scan) | 96 |" in md
    assert f"constant INSECURE baseline scores F1 = {summary['constant_f1']:.3f}" in md
    assert LABELER_CAVEAT in md
    assert "Cross-labeler view: labels from checkov only" in md
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    # A second summarize ignores summary.json.
    assert bm.summarize(tmp_path, n_boot=10)["warnings"] == []


# ----------------------------------------------------------------------------- run_benchmark


class FakeEvaluate:
    """Stands in for models.evaluate.evaluate: writes synthetic run files, reuses finished ones
    (as evaluate does, matching model, mode, run_id and seed) and counts the real work."""

    def __init__(self, fail_on_call: int | None = None) -> None:
        self.calls: list[tuple[str, str, int, int | None, bool, str]] = []
        self.configs: list[EvalConfig] = []
        self.computed = 0
        self.fail_on_call = fail_on_call
        self.files = make_files(n_repos=4, files_per_repo=3, prevalence=0.5, seed=7)

    def __call__(self, config: EvalConfig, settings: Settings) -> list[Path]:
        assert isinstance(config, EvalConfig)
        adapter = config.adapter or settings.lora_output_dir
        model = adapter.name if adapter else "smollm2-base"
        self.configs.append(config)
        self.calls.append(
            (model, config.mode, config.run_id, config.seed, config.baselines, settings.eval_mode)
        )
        if self.fail_on_call is not None and len(self.calls) == self.fail_on_call:
            raise KeyboardInterrupt  # killed mid-benchmark
        wanted = [(model, config.mode), ("constant", "constant")]
        if config.baselines:
            wanted += [("checkov", "scan"), ("tfsec", "scan")]
        paths = []
        for name, mode in wanted:
            seed = config.seed if name == model else None
            path = self._existing(config.runs_dir, name, mode, config.run_id, seed)
            if path is None or config.force:
                self.computed += 1
                with_score = mode not in ("generate", "constant")
                answers = noisy_answers(self.files, 0.8, seed=config.run_id, with_score=with_score)
                stamp = f"2025{self.computed:04d}"
                path = write_run(
                    config.runs_dir, name, mode, config.run_id, self.files, answers, timestamp=stamp
                )
                if mode == "generate":
                    run = json.loads(path.read_text(encoding="utf-8"))
                    run["seed"] = seed
                    run["config"]["do_sample"] = settings.eval_mode == "stochastic"
                    path.write_text(json.dumps(run), encoding="utf-8")
            paths.append(path)
        return paths

    @staticmethod
    def _existing(
        runs_dir: Path, model: str, mode: str, run_id: int, seed: int | None
    ) -> Path | None:
        for path in sorted(runs_dir.glob(f"eval_{model}*_run{run_id}_*.json")):
            run = json.loads(path.read_text(encoding="utf-8"))
            if (run["model"], run["mode"], run["seed"]) == (model, mode, seed):
                return path
        return None


def _config(tmp_path: Path, **kw: Any) -> bm.BenchmarkConfig:
    kw.setdefault("adapter", tmp_path / "models" / "axon_lora_smollm2-cpu")
    return bm.BenchmarkConfig(runs_dir=tmp_path / "runs", data_dir=tmp_path, n_boot=50, **kw)


def test_benchmark_config_validates_runs() -> None:
    with pytest.raises(ConfigError, match=r"^--runs must be > 0, got 0$"):
        bm.BenchmarkConfig(runs=0)
    with pytest.raises(ConfigError, match="--limit"):
        bm.BenchmarkConfig(limit=0)


def test_run_benchmark_plan_and_summary(tmp_path: Path) -> None:
    fake = FakeEvaluate()
    settings = load_settings({"AXON_HOME": str(tmp_path / "home")})
    config = _config(tmp_path, runs=3, limit=12)
    adapter = config.adapter
    assert adapter is not None
    adapter.mkdir(parents=True)
    (adapter / "train_config.json").write_text(
        json.dumps({"config": {"base_model": "HuggingFaceTB/SmolLM2-135M"}}), encoding="utf-8"
    )
    result = bm.run_benchmark(config, settings, evaluate_fn=fake, progress=False)
    assert fake.calls == [
        ("axon_lora_smollm2-cpu", "score", 1, None, True, "deterministic"),
        ("smollm2-base", "score", 1, None, False, "deterministic"),
        ("axon_lora_smollm2-cpu", "generate", 1, 1, False, "stochastic"),
        ("axon_lora_smollm2-cpu", "generate", 2, 2, False, "stochastic"),
        ("axon_lora_smollm2-cpu", "generate", 3, 3, False, "stochastic"),
    ]
    base_config = fake.configs[1]
    assert base_config.adapter is None
    assert base_config.base_model == "HuggingFaceTB/SmolLM2-135M"  # the adapter's own base
    assert all(c.limit == 12 and c.runs_dir == tmp_path / "runs" for c in fake.configs)
    assert all(not c.force for c in fake.configs)

    assert result["summary_json"].is_file() and result["summary_md"].is_file()
    rows = {(r["model"], r["mode"]): r for r in result["summary"]["rows"]}
    assert set(rows) == {
        ("axon_lora_smollm2-cpu", "score"),
        ("axon_lora_smollm2-cpu", "generate"),
        ("smollm2-base", "score"),
        ("checkov", "scan"),
        ("tfsec", "scan"),
        ("constant", "constant"),
    }
    assert rows[("axon_lora_smollm2-cpu", "generate")]["runs"] == 3
    assert rows[("axon_lora_smollm2-cpu", "generate")]["deterministic"] is False
    assert all(rows[k]["deterministic"] for k in rows if k[1] != "generate")
    versus = {c["vs_model"] for c in result["summary"]["mcnemar"]}
    assert versus == {"smollm2-base", "checkov", "tfsec"}
    assert len(result["run_files"]) == 4 + 2 + 3 * 2


def test_killed_benchmark_resumes_with_finished_runs_reused(tmp_path: Path) -> None:
    settings = load_settings({"AXON_HOME": str(tmp_path / "home")})
    config = _config(tmp_path, runs=4, base=False)
    first = FakeEvaluate(fail_on_call=3)  # killed during generate run 2
    with pytest.raises(KeyboardInterrupt):
        bm.run_benchmark(config, settings, evaluate_fn=first, progress=False)
    assert first.computed == 5  # score, constant, 2 baselines, generate run 1
    finished = {p: p.read_bytes() for p in config.runs_dir.glob("*.json")}
    assert len(finished) == 5

    second = FakeEvaluate()
    result = bm.run_benchmark(config, settings, evaluate_fn=second, progress=False)
    assert len(second.calls) == 5  # every step asked again ...
    assert second.computed == 3 * 2  # ... but only generate runs 2-4 (+ their constants) computed
    assert all(p.read_bytes() == data for p, data in finished.items())  # reused untouched
    rows = {(r["model"], r["mode"]): r["runs"] for r in result["summary"]["rows"]}
    assert rows[("axon_lora_smollm2-cpu", "generate")] == 4

    forced = FakeEvaluate()
    forced_config = dataclasses.replace(config, force=True)
    bm.run_benchmark(forced_config, settings, evaluate_fn=forced, progress=False)
    assert forced.computed == 4 + 4 * 2


def test_train_seeds_evaluates_one_adapter_per_seed(tmp_path: Path) -> None:
    trained: list[int] = []

    def train_fn(seed: int) -> Path:
        trained.append(seed)
        return tmp_path / "models" / f"axon_lora_smollm2-cpu_seed{seed}"

    fake = FakeEvaluate()
    result = bm.run_benchmark(
        _config(tmp_path, runs=2, train_seeds=True),
        load_settings({}),
        evaluate_fn=fake,
        train_fn=train_fn,
        progress=False,
    )
    assert trained == [1, 2]
    assert fake.calls[-2:] == [
        ("axon_lora_smollm2-cpu_seed1", "score", 1, None, False, "deterministic"),
        ("axon_lora_smollm2-cpu_seed2", "score", 1, None, False, "deterministic"),
    ]
    models = [r["model"] for r in result["summary"]["rows"]]
    assert "axon_lora_smollm2-cpu_seed1" in models and "axon_lora_smollm2-cpu_seed2" in models
    assert result["summary"]["finetuned"] == {"model": "axon_lora_smollm2-cpu", "mode": "score"}


def test_seed_trainer_reuses_a_finished_adapter(tmp_path: Path) -> None:
    adapter = tmp_path / "models" / "axon_lora_smollm2-cpu_seed3"
    adapter.mkdir(parents=True)
    (adapter / "train_config.json").write_text("{}", encoding="utf-8")
    train_fn = bm.seed_trainer(
        load_settings({"AXON_HOME": str(tmp_path)}), models_dir=tmp_path / "models"
    )
    assert train_fn(3) == adapter


# ----------------------------------------------------------------------------- real run files


def _evaluate_style_runs(runs_dir: Path) -> list[dict[str, Any]]:
    """Run files written by the helpers models.evaluate uses (no model, no scanner process)."""
    from axon_infralinter.models import baselines
    from axon_infralinter.models import runs as run_files

    def finding(tool: str) -> dict[str, Any]:
        return {"tool": tool, "rule_id": "R1", "severity": None, "resource": "r", "path": "f",
                "start_line": 1, "end_line": 2, "title": "t"}  # fmt: skip

    records = []
    for i in range(12):
        tools = [["checkov", "tfsec"], ["checkov"], ["tfsec"], []][i % 4]
        records.append({
            "id": f"o/r{i % 4}::m/f{i}.tf", "repo": f"o/r{i % 4}", "path": f"m/f{i}.tf",
            "label": "INSECURE" if tools else "SECURE", "input_text": f"code {i}",
            "findings": [finding(t) for t in tools],
        })  # fmt: skip
    config = EvalConfig(runs_dir=runs_dir)
    n = len(records)

    def run(model: str, mode: str, y_pred: list[int | None], labeler: bool) -> dict[str, Any]:
        scores = [None if p is None else 0.2 + 0.6 * p for p in y_pred]
        return run_files.make_run(
            model=model, config=config, records=records, mode=mode, seed=None,
            labeler=labeler, label_source="both", run_config={"fingerprint": model},
            y_pred=y_pred, scores=scores, outputs=[None] * n, seconds=[0.5] * n,
            runtime=run_files.runtime_stats([0.5] * n, 0.5 * n),
        )  # fmt: skip

    truth = [1 if r["findings"] else 0 for r in records]
    llm = run("axon_lora_smollm2-cpu", "score", [1 - t if i == 0 else t for i, t in
                                                 enumerate(truth)], False)  # fmt: skip
    checkov = run("checkov", "scan", [1 if i % 4 in (0, 1) else 0 for i in range(n)], True)
    tfsec = run("tfsec", "scan", [1 if i % 4 in (0, 2) else 0 for i in range(n)], True)
    constant = baselines.constant_run(records, config, "both")
    runs = [llm, checkov, tfsec, constant]
    runs += baselines.cross_labeler_views(llm, records, "any")
    runs += baselines.cross_labeler_views(checkov, records, "any", ["tfsec"])
    runs += baselines.cross_labeler_views(tfsec, records, "any", ["checkov"])
    for r in runs:
        run_files.write_run(runs_dir, r)
    return runs


def test_summarize_reads_run_files_written_by_evaluate(tmp_path: Path) -> None:
    runs = _evaluate_style_runs(tmp_path)
    summary = bm.summarize(tmp_path, n_boot=100)
    assert summary["warnings"] == []
    assert [(r["model"], r["mode"], r["labeler"]) for r in summary["rows"]] == [
        ("axon_lora_smollm2-cpu", "score", False),
        ("checkov", "scan", True),
        ("tfsec", "scan", True),
        ("constant", "constant", False),
    ]
    checkov = _row(summary, "checkov", "scan")
    stored = runs[1]["metrics"]
    confusion = stored.get("confusion") or stored["confusion_matrix"]
    assert checkov["confusion"] == {k: float(v) for k, v in confusion.items()}
    assert checkov["metrics"]["f1"]["mean"] == pytest.approx(stored["f1"])
    assert summary["prevalence"] == pytest.approx(9 / 12)
    # Cross-labeler views: on checkov's labels tfsec is an independent baseline, and back.
    cross = summary["cross_labeler"]
    assert set(cross) == {"checkov", "tfsec"}
    assert {(r["model"], r["labeler"]) for r in cross["checkov"]["rows"]} == {
        ("axon_lora_smollm2-cpu", False),
        ("tfsec", False),
    }
    assert {c["vs_model"] for c in cross["checkov"]["mcnemar"]} == {"tfsec"}
    assert cross["tfsec"]["prevalence"] == pytest.approx(6 / 12)
