"""The references the LLM is measured against: Checkov, tfsec, the constant, the cross-labeler view.

- Checkov and tfsec (`evaluate_baselines`), through `data.scanner.scan_texts` on the exact code
  the records hold, labelled with `data.scanner.apply_policy` restricted to that one tool;
- the constant "always INSECURE" reference (`constant_run`);
- `tfidf-logreg`, the bag-of-words baseline (`tfidf_runs`, `models.bow`), trained on the data
  set's training split and thresholded on its validation split;
- the cross-labeler view (`cross_labeler_views`): every run scored again against labels made by
  one scanner alone, recomputed from the records' stored findings, so a scanner is not only
  graded by labels it made itself. `labeler` is true for a scanner that made the labels it is
  scored against.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Sequence
from typing import Any

from axon_infralinter.data import scanner
from axon_infralinter.data.prompt import split_prompt
from axon_infralinter.models.bow import TFIDF_MODEL, code_of, load_or_fit
from axon_infralinter.models.eval_config import (
    CONSTANT_MODEL,
    SCANNERS,
    EvalConfig,
    resolve_policy,
)
from axon_infralinter.models.runs import (
    Done,
    dataset_info,
    fingerprint,
    make_run,
    peak_rss_mb,
    relabel_run,
    reuse,
    runtime_stats,
    write_run,
    write_unless_finished,
)
from axon_infralinter.schema import EvalRun, label_to_int, read_records
from axon_infralinter.settings import Settings, load_settings


def scanner_labels(records: Sequence[dict[str, Any]], policy: str, tool: str) -> list[int]:
    """Labels one scanner alone gives each record, from the record's stored findings."""
    labels = []
    for r in records:
        label, _ = scanner.apply_policy(r.get("findings", []), policy, tools=(tool,))
        labels.append(label_to_int(label))
    return labels


def cross_labeler_views(
    run: EvalRun,
    records: Sequence[dict[str, Any]],
    policy: str,
    sources: Sequence[str] = SCANNERS,
) -> list[EvalRun]:
    """`run` scored against labels made by each scanner in `sources` alone (not written).

    Labels come from the records' stored findings through `apply_policy(..., tools=(source,))`.
    The view keeps the run's predictions and timestamp; its fingerprint adds the policy and the
    label source to the run's, so a changed policy gives a new view. `labeler` is true where the
    run's model is that scanner.
    """
    if [p["id"] for p in run["predictions"]] != [r["id"] for r in records]:
        raise ValueError("run predictions and records are not in the same order")
    views = []
    for source in sources:
        view = relabel_run(
            run, scanner_labels(records, policy, source), source, labeler=run["model"] == source
        )
        view["config"] = {
            **run["config"],
            "policy": policy,
            "fingerprint": fingerprint(
                {"base": run["config"].get("fingerprint"), "policy": policy, "source": source}
            ),
        }
        views.append(view)
    return views


def constant_run(
    test_records: Sequence[dict[str, Any]], config: EvalConfig, label_source: str | None = None
) -> EvalRun:
    """The "always INSECURE" reference run (not written). Always run 1: it never varies."""
    records = list(test_records)
    n = len(records)
    return make_run(
        model=CONSTANT_MODEL,
        config=config,
        records=records,
        mode="constant",
        seed=None,
        labeler=False,
        label_source=label_source or config.label_source,
        run_config={"fingerprint": fingerprint({"model": CONSTANT_MODEL})},
        y_pred=[1] * n,
        scores=[None] * n,
        outputs=[None] * n,
        seconds=[0.0] * n,
        runtime={**runtime_stats([0.0] * n, 0.0), "tokens_per_s": None, "peak_rss_mb": None},
        run_id=1,
    )


def evaluate_baselines(
    test_records: Sequence[dict[str, Any]],
    config: EvalConfig,
    *,
    settings: Settings | None = None,
    progress: bool = True,
) -> list[EvalRun]:
    """Run Checkov and tfsec on the records' code and write their runs.

    Each record's code is the Terraform inside its `input_text` (what the labels were computed
    on), scanned by `data.scanner.scan_texts` with the shared cache. Per tool: the label is
    `apply_policy(results, policy, tools=(tool,))` and the score is the number of findings the
    policy counted; a scan error is a failure (its message is the prediction's `output`).
    With the data set's own labels ("both"), each tool is also scored against the other tool's
    labels alone (cross-labeler view).

    Returns:
        The runs: checkov, [checkov vs tfsec labels], tfsec, [tfsec vs checkov labels]; each
        written, or reused when finished (unless `config.force`).
    """
    settings = settings or load_settings()
    return [run for run, _ in baseline_runs(test_records, config, settings, progress)]


def baseline_runs(
    test_records: Sequence[dict[str, Any]],
    config: EvalConfig,
    settings: Settings,
    progress: bool,
) -> list[Done]:
    """`evaluate_baselines`, with the file each run is in."""
    records = list(test_records)
    policy = resolve_policy(config.policy)
    label_source = config.label_source
    dataset_sha = dataset_info(records, config.source_path)["sha256"]
    out: list[Done] = []
    for tool in SCANNERS:
        run_fingerprint = fingerprint({"model": tool, "policy": policy})
        found = reuse(
            config,
            tool,
            run_id=config.run_id,
            mode="scanner",
            seed=None,
            dataset_sha256=dataset_sha,
            label_source=label_source,
            fingerprint=run_fingerprint,
        )
        if found is None:
            run = _scanner_run(tool, records, config, settings, policy, run_fingerprint, progress)
            found = (run, write_run(config.runs_dir, run))
        out.append(found)
        if label_source == "both" and config.pairs_dir is None:  # pairs: the pairwise score only
            other = [s for s in SCANNERS if s != tool]
            for view in cross_labeler_views(found[0], records, policy, other):
                out.append(write_unless_finished(config, view))
    if (config.data_dir / "train.jsonl").is_file():
        out.extend(tfidf_runs(records, config, policy))
    return out


def tfidf_runs(records: list[dict[str, Any]], config: EvalConfig, policy: str) -> list[Done]:
    """The tfidf-logreg run on `records` (and its cross-labeler views), written or reused.

    Trained on `config.data_dir`'s train split, C and threshold chosen on its val split; the
    fitted model is stored in `<runs_dir>/tfidf-logreg/` (`models.bow.load_or_fit`).
    `baseline_runs` calls it when the data set has a train split (an external `--labels` folder
    without one gets the scanner baselines only).

    Raises:
        InputError: no val split, or a malformed split.
    """
    required = ("id", "label", "input_text")
    train = read_records(config.data_dir / "train.jsonl", required)
    val = read_records(config.data_dir / "val.jsonl", required)
    started = time.perf_counter()
    model = load_or_fit(config.runs_dir / TFIDF_MODEL, train, val)
    fit_s = time.perf_counter() - started
    started = time.perf_counter()
    scores = model.scores([code_of(r) for r in records])
    total_s = time.perf_counter() - started
    seconds = [total_s / max(len(records), 1)] * len(records)
    runtime = runtime_stats(seconds, total_s)
    runtime.update(tokens_per_s=None, peak_rss_mb=peak_rss_mb(), fit_seconds=round(fit_s, 3))
    info = {k: v for k, v in model.info.items() if not k.endswith("_key")}
    run = make_run(
        model=TFIDF_MODEL,
        config=config,
        records=records,
        mode="score",
        seed=None,
        labeler=False,
        label_source=config.label_source,
        run_config={
            "threshold": model.threshold,
            "tfidf": info,
            "fingerprint": fingerprint({"model": TFIDF_MODEL, **model.info}),
        },
        y_pred=[int(s >= model.threshold) for s in scores],
        scores=scores,
        outputs=[None] * len(records),
        seconds=seconds,
        runtime=runtime,
    )
    done = [write_unless_finished(config, run)]
    if config.label_source == "both" and config.pairs_dir is None:
        done.extend(
            write_unless_finished(config, view)
            for view in cross_labeler_views(done[0][0], records, policy)
        )
    return done


def _scanner_run(
    tool: str,
    records: list[dict[str, Any]],
    config: EvalConfig,
    settings: Settings,
    policy: str,
    run_fingerprint: str,
    progress: bool,
) -> EvalRun:
    """Scan the records' code with one tool and make its run (not written)."""
    items = [(r["path"], split_prompt(r["input_text"])[1]) for r in records]
    scan_config = scanner.ScanConfig(cache_dir=settings.scan_cache, tools=(tool,))
    start = time.perf_counter()
    results = scanner.scan_texts(items, scan_config, progress=progress)
    total_s = time.perf_counter() - start
    y_pred: list[int | None] = []
    scores: list[float | None] = []
    outputs: list[str | None] = []
    for result in results:
        error = result[tool]["error"]
        if error:
            y_pred.append(None)
            scores.append(None)
            outputs.append(error)
            continue
        label, relevant = scanner.apply_policy(result, policy, tools=(tool,))
        y_pred.append(label_to_int(label))
        scores.append(float(len(relevant)))
        outputs.append(None)
    # One tool process scans a whole batch: its time is spread evenly over the files.
    # Cached files cost ~0 s, so compare speed on a fresh AXON_HOME (see bench/).
    seconds = [total_s / len(records)] * len(records)
    runtime = runtime_stats(seconds, total_s)
    runtime.update(
        tokens_per_s=None,
        # Scanners are child processes: this is the largest one's peak.
        peak_rss_mb=peak_rss_mb(resource.RUSAGE_CHILDREN),
        scan_cache=str(settings.scan_cache),
    )
    versions = sorted({r[tool]["version"] for r in results})
    return make_run(
        model=tool,
        config=config,
        records=records,
        mode="scanner",
        seed=None,
        labeler=config.label_source in ("both", tool),
        label_source=config.label_source,
        run_config={"policy": policy, "tool_version": versions, "fingerprint": run_fingerprint},
        y_pred=y_pred,
        scores=scores,
        outputs=outputs,
        seconds=seconds,
        runtime=runtime,
    )
