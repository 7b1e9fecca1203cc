"""`axon evaluate`: the LLM and the references on the test set, one run file per result.

What is written (run files: see `models.runs`):

- the LLM (`evaluate_llms`), in score mode (P(INSECURE) >= the predictor's threshold) or generate
  mode (free text parsed by `models.predict.parse_label`);
- Checkov and tfsec (`evaluate_baselines`), the constant "always INSECURE" reference and the
  cross-labeler views (`models.baselines`);
- metrics by `models.metrics.metrics` (re-exported here, with `evaluate_baselines`: the spec's
  names).

A prediction that could not be made (an unparseable answer, a scanner error) is a parse failure:
`y_pred` is null and it is counted as WRONG in every classification metric (a failure on an
INSECURE file is a false negative, on a SECURE file a false positive), never silently as a class,
so a model cannot gain by refusing to answer. Its rate is reported as `parse_failure_rate`.

A finished run is never recomputed unless `force`: `models.runs.find_finished_run` finds it by
model, run id, mode, seed, data set hash, label source and a fingerprint of what else decides the
predictions (adapter weights, threshold, decoding settings, label policy).
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from axon_infralinter.data.prompt import build_prompt, build_target
from axon_infralinter.errors import InputError
from axon_infralinter.executor import Executor
from axon_infralinter.files import sha256_file
from axon_infralinter.models import predict
from axon_infralinter.models.baselines import (
    baseline_runs,
    constant_run,
    cross_labeler_views,
    evaluate_baselines,
)
from axon_infralinter.models.eval_config import EvalConfig, resolve_policy
from axon_infralinter.models.metrics import metrics
from axon_infralinter.models.pairwise import PAIRS_SUBDIR
from axon_infralinter.models.predict import Predictor
from axon_infralinter.models.remote import RemotePredictor, map_batches
from axon_infralinter.models.runs import (
    Done,
    dataset_info,
    fingerprint,
    make_run,
    peak_rss_mb,
    reuse,
    runtime_stats,
    write_run,
    write_unless_finished,
)
from axon_infralinter.schema import (
    LABELS,
    TRAIN_CONFIG_JSON,
    EvalRun,
    Label,
    label_to_int,
    read_adapter_meta,
    read_records,
)
from axon_infralinter.settings import Settings, load_settings

# `evaluate_baselines` and `metrics` are the spec's names for this module (DESIGN.md); they are
# implemented in models/baselines.py and models/metrics.py. `EvalConfig` is the stage's argument.
__all__ = [
    "MAX_NEW_TOKENS",
    "EvalConfig",
    "check_train_overlap",
    "evaluate",
    "evaluate_baselines",
    "evaluate_llms",
    "load_labels_csv",
    "load_test_records",
    "metrics",
    "resolve_adapter",
    "spaced_sample",
]

#: Generated tokens per answer: SECURE/INSECURE and up to 3 short finding lines (the spec's 50).
MAX_NEW_TOKENS = 50


# ---------------------------------------------------------------------------------------------
# Inputs


def load_test_records(data_dir: Path) -> list[dict[str, Any]]:
    """Read `data_dir/test.jsonl`.

    Raises:
        InputError: missing, empty or malformed file.
    """
    path = data_dir / "test.jsonl"
    if not path.is_file():
        raise InputError(f"{path} not found: build the data set first (axon dataset build)")
    records: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
            missing = [k for k in ("id", "path", "label", "input_text") if k not in record]
            if missing:
                raise InputError(f"{path}:{lineno}: record lacks {', '.join(missing)}")
            if record["label"] not in LABELS:
                raise InputError(f"{path}:{lineno}: label must be SECURE or INSECURE")
            records.append(record)
    if not records:
        raise InputError(f"{path} is empty: no test records to evaluate")
    return records


PAIR_RECORD_KEYS = ("id", "path", "repo", "label", "input_text", "pair_id", "role")
"""What `axon evaluate --pairs` reads from each pair member."""
PAIR_ROLES = ("broken", "clean")


def load_pairs(pairs_dir: Path) -> list[dict[str, Any]]:
    """The test pairs of `pairs_dir` (`axon dataset mutate`): the broken and clean members.

    Raises:
        InputError: missing, malformed or empty `test.jsonl`.
    """
    path = pairs_dir / "test.jsonl"
    if not path.is_file():
        raise InputError(f"--pairs {pairs_dir}: no test.jsonl there (run `axon dataset mutate`)")
    # Neutral variants (edits that should not matter) are training data: no pairwise score.
    records = [r for r in read_records(path, PAIR_RECORD_KEYS) if r["role"] in PAIR_ROLES]
    if not records:
        raise InputError(f"{path} holds no broken/clean pair: nothing to rank")
    return records


_CSV_LABELS: dict[str, Label] = {
    "SECURE": "SECURE",
    "INSECURE": "INSECURE",
    "0": "SECURE",
    "1": "INSECURE",
}


def load_labels_csv(csv_path: Path) -> list[dict[str, Any]]:
    """Records for an external folder labelled by a CSV with columns `path,label`.

    Paths are relative to the CSV's folder; labels are SECURE/INSECURE (any case) or 1/0
    (1 = INSECURE). Each record has `id` (`external::<path>`), `repo` = `external`, `path`,
    `sha256` of the file, `label`, `input_text` built by `data.prompt.build_prompt`,
    `target_text` (the bare label) and no `findings`.

    Raises:
        InputError: the CSV is missing or empty, lacks a column, has an unknown label, a
            repeated path, or names a file that does not exist or is not UTF-8 text.
    """
    csv_path = Path(csv_path)
    try:
        text = csv_path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{csv_path}: labels CSV not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{csv_path}: cannot read labels CSV ({e})") from None
    reader = csv.DictReader(text.splitlines())
    columns = {(c or "").strip().lower(): c for c in reader.fieldnames or []}
    missing = [c for c in ("path", "label") if c not in columns]
    if missing:
        raise InputError(f"{csv_path}: missing column(s) {', '.join(missing)} (need path,label)")
    records: list[dict[str, Any]] = []
    seen: set[str] = set()
    for row in reader:
        lineno = reader.line_num
        rel = (row.get(columns["path"]) or "").strip()
        raw = (row.get(columns["label"]) or "").strip()
        if not rel and not raw:
            continue
        label = _CSV_LABELS.get(raw.upper())
        if label is None:
            raise InputError(
                f"{csv_path}:{lineno}: unknown label {raw!r} (use SECURE/INSECURE or 1/0)"
            )
        if not rel:
            raise InputError(f"{csv_path}:{lineno}: empty path")
        if rel in seen:
            raise InputError(f"{csv_path}:{lineno}: path {rel!r} is listed twice")
        seen.add(rel)
        file = csv_path.parent / rel
        try:
            code = file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InputError(f"{csv_path}:{lineno}: no such file {rel!r}") from None
        except IsADirectoryError:
            raise InputError(f"{csv_path}:{lineno}: {rel!r} is a folder, not a file") from None
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"{csv_path}:{lineno}: cannot read {rel!r} ({e})") from None
        records.append(
            {
                "id": f"external::{Path(rel).as_posix()}",
                "repo": "external",
                "path": Path(rel).as_posix(),
                "sha256": sha256_file(file),
                "label": label,
                "input_text": build_prompt(code),
                "target_text": build_target(label, []),
                "findings": [],
            }
        )
    if not records:
        raise InputError(f"{csv_path}: no rows (need a header path,label and one row per file)")
    return records


# ---------------------------------------------------------------------------------------------
# The adapter


def _adapter_sha256(adapter: Path | None) -> str | None:
    weights = adapter / "adapter_model.safetensors" if adapter is not None else None
    return sha256_file(weights) if weights is not None and weights.is_file() else None


def _train_config(adapter: Path | None) -> dict[str, Any] | None:
    """The adapter's `train_config.json` (written by train()), so a run traces back to it."""
    if adapter is None or not (adapter / TRAIN_CONFIG_JSON).is_file():
        return None
    meta = read_adapter_meta(adapter)
    parts = {"config": meta.config, "summary": meta.summary, "data_sha256": meta.data_sha256}
    # train() writes all three; a file written otherwise is copied with the parts it holds.
    return {key: value for key, value in parts.items() if key == "config" or value}


def check_train_overlap(records: Sequence[dict[str, Any]], adapter: Path | None) -> None:
    """Refuse to evaluate an adapter on files of repositories it was trained on.

    `train()` records the repositories of its training examples (`summary.training_repos` in
    `train_config.json`). A test record whose `repo` is among them would flatter the adapter: the
    data set was rebuilt with another split (e.g. `--provider-weight`) since the adapter was
    trained. Records without `repo` (a `--labels` CSV) and adapters that predate the field pass.

    Raises:
        InputError: some records come from the adapter's training repositories, or the adapter's
            train_config.json is malformed.
    """
    trained = set(read_adapter_meta(adapter).training_repos) if adapter is not None else set()
    overlap = [r for r in records if r.get("repo") in trained]
    if overlap:
        hits = sorted({str(r["repo"]) for r in overlap})
        shown = ", ".join(hits[:3]) + (f" and {len(hits) - 3} more" if len(hits) > 3 else "")
        raise InputError(
            f"{len(overlap)} of {len(records)} test files come from repositories adapter {adapter} was "
            f"trained on ({shown}): evaluate it on the data set it was trained with, or train an "
            "adapter on this one"
        )


# ---------------------------------------------------------------------------------------------
# The LLM


def evaluate_llms(
    test_records: Sequence[dict[str, Any]],
    predictor: Predictor,
    config: EvalConfig,
    *,
    settings: Settings | None = None,
    progress: bool = True,
) -> EvalRun:
    """Evaluate the LLM on `test_records`, write its run file and return the run.

    Score mode: `predictor.score_documents` (the worst block of a long file), INSECURE when
    P(INSECURE) >= `predictor.threshold` (a non-finite score is a failure). Generate mode:
    `predictor.generate_prompts` with greedy or sampled decoding from AXON_EVAL_MODE /
    AXON_EVAL_TEMPERATURE, answers parsed by `models.predict.parse_label`; an unparseable answer
    is a failure (see `metrics`). A finished identical run is returned from its file instead,
    unless `config.force`.

    Args:
        test_records: Records (`id`, `path`, `label`, `input_text`).
        predictor: A `models.predict.Predictor`.
        config: Evaluation config; `config.adapter` is recorded and fingerprinted.
        settings: Environment settings (default: `load_settings()`).
        progress: Show a progress bar on stderr.

    Returns:
        The run dict, as written to its run file.
    """
    return _evaluate_llm(test_records, predictor, config, settings or load_settings(), progress)[0]


@dataclass
class _Answers:
    """What the model said about each file, in record order."""

    y_pred: list[int | None]
    scores: list[float | None]
    outputs: list[str | None]
    seconds: list[float]

    @classmethod
    def empty(cls, n: int) -> _Answers:
        return cls([None] * n, [None] * n, [None] * n, [0.0] * n)


def _evaluate_llm(
    test_records: Sequence[dict[str, Any]],
    predictor: Predictor,
    config: EvalConfig,
    settings: Settings,
    progress: bool,
) -> Done:
    records = list(test_records)
    do_sample = config.mode == "generate" and settings.eval_mode == "stochastic"
    run_config = _llm_run_config(predictor, config, settings, do_sample)
    found = reuse(
        config,
        predictor.name,
        run_id=config.run_id,
        mode=config.mode,
        seed=config.seed,
        dataset_sha256=dataset_info(records, config.source_path)["sha256"],
        label_source=config.label_source,
        fingerprint=run_config["fingerprint"],
    )
    if found is not None:
        return found

    tokens_before = predictor.tokens_processed
    start = time.perf_counter()
    answers = _answer(records, predictor, config, settings, do_sample, progress)
    total_s = time.perf_counter() - start
    runtime = runtime_stats(answers.seconds, total_s)
    # Tokens the model read and wrote (prompt + generated, padding excluded).
    tokens = predictor.tokens_processed - tokens_before
    runtime["tokens_per_s"] = tokens / total_s if total_s > 0 else None
    runtime["peak_rss_mb"] = peak_rss_mb()
    run = make_run(
        model=predictor.name,
        config=config,
        records=records,
        mode=config.mode,
        seed=config.seed,
        labeler=False,
        label_source=config.label_source,
        run_config=run_config,
        y_pred=answers.y_pred,
        scores=answers.scores,
        outputs=answers.outputs,
        seconds=answers.seconds,
        runtime=runtime,
        deterministic=not do_sample,
    )
    return run, write_run(config.runs_dir, run)


def _llm_run_config(
    predictor: Predictor, config: EvalConfig, settings: Settings, do_sample: bool
) -> dict[str, Any]:
    """What the LLM's run file records of its setup, and the fingerprint of what decides it."""
    # Greedy decoding ignores the temperature: keep it out of the run's identity.
    temperature = settings.eval_temperature if do_sample else None
    run_config: dict[str, Any] = {
        "base_model_only": config.adapter is None,
        "adapter_sha256": _adapter_sha256(config.adapter),
        "threshold": float(predictor.threshold),
        "eval_mode": settings.eval_mode if config.mode == "generate" else None,
        "do_sample": do_sample,
        "temperature": temperature,
        "max_new_tokens": MAX_NEW_TOKENS if config.mode == "generate" or config.explain else None,
        "train_config": _train_config(config.adapter),
    }
    run_config["fingerprint"] = fingerprint(
        {
            "model": predictor.name,
            "base_model": config.base_model,
            "adapter_sha256": run_config["adapter_sha256"],
            "threshold": run_config["threshold"],
            "mode": config.mode,
            "explain": config.explain,
            "do_sample": do_sample,
            "temperature": temperature,
            "max_new_tokens": run_config["max_new_tokens"],
            "batch_size": config.batch_size,
            "unit": "worst-block",
        }
    )
    return run_config


def _chunks(n: int, size: int) -> list[range]:
    return [range(i, min(i + size, n)) for i in range(0, n, size)]


def _answer(
    records: list[dict[str, Any]],
    predictor: Predictor,
    config: EvalConfig,
    settings: Settings,
    do_sample: bool,
    progress: bool,
) -> _Answers:
    """Ask the model about every record, a batch at a time; parse or explain the answers."""
    n = len(records)
    prompts = [r["input_text"] for r in records]
    answers = _Answers.empty(n)
    bar = tqdm(total=n, desc=f"{predictor.name} ({config.mode})", unit="file", disable=not progress)
    chunks = _chunks(n, config.batch_size)
    # One task per batch: here, or on the workers of a RemotePredictor (--engine dask).
    asked = map_batches(
        predictor,
        functools.partial(_ask_batch, config, settings, do_sample),
        [(k, [prompts[i] for i in chunk]) for k, chunk in enumerate(chunks)],
        lambda k, _: bar.update(len(chunks[k])),
    )
    for chunk, done in zip(chunks, asked, strict=True):
        got = done.value
        if len(got) != len(chunk):
            raise RuntimeError(f"predictor returned {len(got)} results for {len(chunk)} prompts")
        per_file = done.seconds / len(chunk)
        for i, value in zip(chunk, got, strict=True):
            answers.seconds[i] = per_file
            if config.mode == "score":
                score = float(value)
                finite = math.isfinite(score)
                answers.scores[i] = score if finite else None
                answers.y_pred[i] = int(score >= predictor.threshold) if finite else None
            else:
                answers.outputs[i] = value
    bar.close()
    if config.mode == "generate":
        for i, output in enumerate(answers.outputs):
            label = predict.parse_label(output or "")
            answers.y_pred[i] = None if label is None else label_to_int(label)
    elif config.explain:
        _explain(prompts, predictor, config, answers)
    return answers


def _ask_batch(
    config: EvalConfig,
    settings: Settings,
    do_sample: bool,
    predictor: Predictor,
    job: tuple[int, list[str]],
) -> list[Any]:
    """`_ask` on batch `job` = (k, prompts): the task `map_batches` runs, here or on a worker."""
    k, batch = job
    return _ask(predictor, batch, config, settings, do_sample, k)


def _ask(
    predictor: Predictor,
    batch: list[str],
    config: EvalConfig,
    settings: Settings,
    do_sample: bool,
    k: int,
) -> list[Any]:
    """One model call on batch `k`: scores in score mode, generated answers in generate mode."""
    if config.mode == "score":
        # Whole files, judged like `axon scan`: split by block when too long, worst block wins.
        return list(predictor.score_documents(batch, batch_size=config.batch_size))
    return list(
        predictor.generate_prompts(
            # A long file: generate on its worst block, the unit the model judges.
            predictor.worst_block_prompts(batch, batch_size=config.batch_size),
            max_new_tokens=MAX_NEW_TOKENS,
            do_sample=do_sample,
            temperature=settings.eval_temperature,
            # One seed per batch, so batches do not replay the same random stream.
            seed=None if config.seed is None else config.seed + k,
            batch_size=config.batch_size,
        )
    )


def _explain(
    prompts: list[str], predictor: Predictor, config: EvalConfig, answers: _Answers
) -> None:
    """Score mode with --explain: generate the explanation of each file predicted INSECURE."""
    flagged = [i for i, y in enumerate(answers.y_pred) if y == 1]
    for chunk in _chunks(len(flagged), config.batch_size):
        ids = [flagged[j] for j in chunk]
        t0 = time.perf_counter()
        texts = predictor.generate_prompts(
            predictor.worst_block_prompts([prompts[i] for i in ids], batch_size=config.batch_size),
            max_new_tokens=MAX_NEW_TOKENS,
            do_sample=False,
            batch_size=config.batch_size,
        )
        per_file = (time.perf_counter() - t0) / len(ids)
        for i, text in zip(ids, texts, strict=True):
            answers.outputs[i] = text
            answers.seconds[i] += per_file


# ---------------------------------------------------------------------------------------------
# The stage


def resolve_adapter(config: EvalConfig, settings: Settings) -> Path | None:
    """The adapter to evaluate: --adapter, else LORA_OUTPUT_DIR when it holds an adapter, else
    None: the base model zero-shot.

    No folder is searched beyond these two, so "no adapter" reliably means the base model (the
    benchmark's zero-shot row relies on it); `axon evaluate` may pass its own default adapter.
    """
    if config.adapter is not None:
        return config.adapter
    default = settings.lora_output_dir
    if default is not None and (default / "adapter_config.json").is_file():
        return default
    return None


def spaced_sample(records: Sequence[dict[str, Any]], limit: int | None) -> list[dict[str, Any]]:
    """`limit` records evenly spaced over the file (all of them when `limit` is None or larger).

    The test file is grouped by repository, so its first N records would come from a few
    repositories only; items i * n // limit cover the whole file, in order, deterministically.
    """
    n = len(records)
    if limit is None or limit >= n:
        return list(records)
    return [records[i * n // limit] for i in range(limit)]


def evaluate(
    config: EvalConfig,
    settings: Settings | None = None,
    *,
    progress: bool = True,
    executor: Executor | None = None,
) -> list[Path]:
    """`axon evaluate`: the LLM, the constant reference, optionally the baselines; write runs.

    Loads test.jsonl (or the `--labels` CSV), keeps `--limit` evenly spaced records, loads the
    predictor and evaluates it. With the data set's labels it also writes the cross-labeler
    views (the LLM and the constant against each scanner's labels alone; each scanner against
    the other's). Finished runs are reused unless `--force`.

    The first path is always the LLM's run; its `config.base_model_only` is true when no adapter
    was given or found and the base model was evaluated zero-shot.

    Args:
        config: What to evaluate.
        settings: Environment settings (default: `load_settings()`).
        progress: Show progress bars on stderr.
        executor: Score on its workers, each loading the model once (`--engine dask`;
            `models.remote`); None: here. The predictions are the same either way.

    Returns:
        Paths of all run files of this evaluation (written now or reused), LLM first.

    Raises:
        InputError: missing/empty test set or bad labels CSV.
        ModelError: the adapter or base model cannot be loaded.
        ConfigError: unknown label policy.
    """
    settings = settings or load_settings()
    if config.pairs_dir is not None:
        records = load_pairs(config.pairs_dir)
        config = dataclasses.replace(config, runs_dir=config.runs_dir / PAIRS_SUBDIR)
    elif config.labels_csv is not None:
        records = load_labels_csv(config.labels_csv)
    else:
        records = load_test_records(config.data_dir)
    records = spaced_sample(records, config.limit)
    # Pairs are scored for the pairwise metric only: no cross-labeler views of them.
    cross = config.label_source == "both" and config.pairs_dir is None
    # Fail on a bad policy before minutes of model work, not after.
    policy = resolve_policy(config.policy) if cross or config.baselines else None
    config = dataclasses.replace(config, adapter=resolve_adapter(config, settings))
    check_train_overlap(records, config.adapter)

    predictor = predict.load_predictor(
        config.adapter, base_model=config.base_model, settings=settings
    )
    if executor is not None:
        predictor = RemotePredictor.wrap(predictor, executor, base_model=config.base_model)
    llm = _evaluate_llm(records, predictor, config, settings, progress)
    constant = write_unless_finished(config, constant_run(records, config, config.label_source))
    done = [llm, constant]
    if policy is not None and cross:
        for run in (llm[0], constant[0]):
            done.extend(
                write_unless_finished(config, v) for v in cross_labeler_views(run, records, policy)
            )
    if config.baselines:
        done.extend(baseline_runs(records, config, settings, progress))
    return [path for _, path in done]
