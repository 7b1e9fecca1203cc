"""visualize_benchmarks: every figure written, readable size, REPORT.md, one palette."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.colors import to_rgb
from PIL import Image

from axon_infralinter.errors import InputError
from axon_infralinter.models import visualize_benchmarks as vb
from axon_infralinter.models.summary_md import LABELER_CAVEAT

try:
    from .synthetic_runs import (
        make_files,
        noisy_answers,
        write_run,
        write_study,
        write_training_log,
    )
except ImportError:  # tests/ is not a package: pytest puts this folder on sys.path
    from synthetic_runs import make_files, noisy_answers, write_run, write_study, write_training_log

FIGURES = [
    "f1_boxplot.png",
    "metrics_comparison.png",
    "runtime_comparison.png",
    "confusion_matrices.png",
    "pr_curve.png",
    "training_loss.png",
]


def _pixels(path: Path) -> tuple[tuple[int, int], float]:
    with Image.open(path) as image:
        return image.size, float(np.asarray(image.convert("L")).std())


def test_make_plots_writes_every_figure_and_report(tmp_path: Path) -> None:
    runs_dir, out = tmp_path / "runs", tmp_path / "figures"
    write_study(runs_dir)
    log = write_training_log(tmp_path / "training_log.jsonl")
    paths = vb.make_plots(runs_dir, out, training_log=log, n_boot=100)
    assert [p.name for p in paths] == [*FIGURES, "REPORT.md"]
    assert all(p.parent == out for p in paths)
    # 5 box rows (constant is the dashed line), 6 rows in all, 5 of them timed; 150 dpi.
    expected = {
        "f1_boxplot.png": (1500, int((1.6 + 0.55 * 5) * 150)),
        "metrics_comparison.png": (1800, 825),
        "runtime_comparison.png": (1500, int((1.6 + 0.5 * 5) * 150)),
        "confusion_matrices.png": (int(3.4 * 4 * 150), int((3.3 * 2 + 0.4) * 150)),
        "pr_curve.png": (1800, 900),
        "training_loss.png": (2250, 675),
    }
    for path in paths[:-1]:
        size, spread = _pixels(path)
        assert size == expected[path.name], path.name
        assert spread > 10, f"{path.name} looks blank"
    assert sorted(p.name for p in out.iterdir()) == sorted([*FIGURES, "REPORT.md"])


def test_report_embeds_every_figure_and_explains_rows(tmp_path: Path) -> None:
    runs_dir, out = tmp_path / "runs", tmp_path / "figures"
    write_study(runs_dir)
    paths = vb.make_plots(runs_dir, out, n_boot=50)
    assert "training_loss.png" not in [p.name for p in paths]  # no log, no figure
    report = (out / "REPORT.md").read_text(encoding="utf-8")
    for name in FIGURES[:-1]:
        assert f"]({name})" in report  # relative link beside REPORT.md
    assert "training_loss.png" not in report
    assert "| model | mode | runs | labeler | F1 mean ± sd [95% CI]" in report
    assert LABELER_CAVEAT in report
    assert "Cross-labeler view: labels from checkov only" in report
    assert "## What the rows mean" in report


def test_training_log_missing_is_an_error_and_empty_is_skipped(tmp_path: Path) -> None:
    runs_dir = tmp_path / "runs"
    write_study(runs_dir)
    with pytest.raises(InputError, match="training log not found"):
        vb.make_plots(runs_dir, tmp_path / "out", training_log=tmp_path / "nope.jsonl")
    empty = tmp_path / "empty.jsonl"
    empty.write_text('not json\n{"loss": 1.0}\n', encoding="utf-8")
    names = [p.name for p in vb.make_plots(runs_dir, tmp_path / "out", empty, n_boot=20)]
    assert "training_loss.png" not in names


def test_read_training_log_keeps_rows_with_a_step(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text(
        '{"step": 10, "loss": 1.5, "lr": 0.0002, "tokens_per_s": 150.0}\n'
        "garbage\n"
        '{"epoch": 1}\n'
        '{"step": 10, "val_loss": 1.7, "tokens_per_s": 149.0}\n',
        encoding="utf-8",
    )
    rows = vb.read_training_log(log)
    assert [r.get("loss", r.get("val_loss")) for r in rows] == [1.5, 1.7]


def test_no_run_files_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no run files in"):
        vb.make_plots(tmp_path / "runs", tmp_path / "out")


def test_minimal_folder_without_scores_or_both_labels_still_plots(tmp_path: Path) -> None:
    runs_dir = tmp_path / "runs"
    files = make_files(n_repos=3, files_per_repo=4, prevalence=0.5, seed=2)
    for k in (1, 2):
        answers = noisy_answers(files, 0.7, seed=k, with_score=False)
        write_run(runs_dir, "axon_lora_x", "generate", k, files, answers, label_source="tfsec")
    paths = vb.make_plots(runs_dir, tmp_path / "out", n_boot=20)
    assert [p.name for p in paths] == [*FIGURES[:-1], "REPORT.md"]
    assert "(labels: tfsec)" in paths[-1].read_text(encoding="utf-8")
    for path in paths[:-1]:
        assert _pixels(path)[1] > 10


def test_palette_is_one_function_keyed_by_model_name() -> None:
    for scanner in ("checkov", "tfsec"):
        r, g, b = to_rgb(vb.model_color(scanner))
        assert r == g == b and 0.2 < r < 0.8  # grey tone
    assert vb.model_color("checkov") != vb.model_color("tfsec")
    assert vb.model_color("constant") == "#000000"
    assert vb.model_color("axon_lora_smollm2-cpu") == "#1f5fbf"
    assert vb.model_color("smollm2-base") == "#ff7f0e"
    seeds = [vb.model_color(f"axon_lora_smollm2-cpu_seed{k}") for k in range(1, 6)]
    assert len(set(seeds)) == 5
    assert all(to_rgb(c)[2] > to_rgb(c)[0] for c in seeds)  # blues
    other = vb.model_color("codellama-7b-instruct")
    assert other == vb.model_color("codellama-7b-instruct")
    assert other not in (*seeds, "#1f5fbf", "#ff7f0e", "#000000")
