"""The `axon` command: thin; parses flags, builds configs, calls stages; the only printer.

Examples:
    axon dataset build --corpus ../shared/datasets/terraform-corpus --workers 2
    axon train --profile smollm2-cpu --max-steps 200
    axon evaluate --baselines
    axon benchmark --runs 5
    axon plots
    axon scan examples/ --format sarif --output axon.sarif
    axon demo --tiny

Exit codes: 0 success (scan: everything SECURE), 1 scan found something INSECURE, 2 error.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from axon_infralinter import cli_parser
from axon_infralinter.errors import AxonError, ConfigError
from axon_infralinter.executor import Executor
from axon_infralinter.files import atomic_write_text
from axon_infralinter.schema import read_eval_run
from axon_infralinter.settings import Settings, load_settings


def _err(message: str) -> None:
    print(f"axon: {message}", file=sys.stderr)


def _info(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# corpus / dataset


def _cmd_corpus_collect(args: argparse.Namespace, settings: Settings) -> int:
    from axon_infralinter.data.corpus import collect

    out = collect(Path(args.sources), Path(args.out), progress=True)
    _info(f"corpus written to {out} (manifest: {out / 'MANIFEST.csv'})")
    return 0


def _cmd_dataset_build(args: argparse.Namespace, settings: Settings) -> int:
    from axon_infralinter.data.dataset import DatasetConfig, build_dataset

    corpus = Path(args.corpus) if args.corpus else settings.corpus
    if corpus is None:
        raise AxonError(
            "no corpus: pass --corpus DIR, set AXON_CORPUS, or run `axon corpus collect` first"
        )
    flags = {"out": "out", "workers": "workers", "limit": "limit", "seed": "seed",
             "policy": "policy", "near_dup_threshold": "near_dup_threshold",
             "provider_weight": "provider_weight"}  # fmt: skip
    config = DatasetConfig(corpus=corpus, cache_dir=settings.scan_cache, **_given(args, flags))
    started = time.perf_counter()
    with _engine(args, workers=config.workers) as executor:
        card = build_dataset(config, progress=True, executor=executor)
    skipped = card["skipped"]
    if len(skipped) <= 20:
        for item in skipped:
            _info(f"skipped {item['path']}: {item['reason']}")
    else:
        for kind, count in sorted(card["skipped_by_kind"].items(), key=lambda kv: -kv[1]):
            _info(f"skipped {count} files: {kind}")
        _info(
            f"every skipped file and its reason: {config.out / 'dataset_card.json'} (key `skipped`)"
        )
    for split in ("train", "val", "test"):
        info = card["splits"][split]
        share = "-" if info["insecure_share"] is None else f"{info['insecure_share']:.1%}"
        _info(
            f"{split:>5}: {info['count']:5d} files ({info['before_near_dup']} before near-dup removal), "
            f"{share} INSECURE, {len(info['repos'])} repositories"
        )
    _info(f"policy {card['policy']['name']}: {card['policy']['description']}")
    kappa = card["scanner_agreement"]["cohen_kappa"]
    if kappa is not None:
        _info(f"Cohen's kappa, Checkov-only vs tfsec-only labels: {kappa:.3f}")
    _info(
        f"data set written to {config.out}/ (train/val/test.jsonl, dataset_card.json) "
        f"in {time.perf_counter() - started:.0f} s"
    )
    return 0


def _cmd_dataset_chunks(args: argparse.Namespace, settings: Settings) -> int:
    from axon_infralinter.data.chunks import ChunkConfig, build_chunk_dataset
    from axon_infralinter.models.base_model import EMBEDDED_SMOLLM2, load_tokenizer
    from axon_infralinter.models.tokens import code_budget

    corpus = Path(args.corpus) if args.corpus else settings.corpus
    if corpus is None:
        raise AxonError(
            "no corpus: pass --corpus DIR or set AXON_CORPUS (the one the data set used)"
        )
    tokenizer = load_tokenizer(args.base_model or EMBEDDED_SMOLLM2, settings)
    config = ChunkConfig(
        data=Path(args.data),
        corpus=corpus,
        out=Path(args.out),
        max_code_tokens=code_budget(tokenizer, args.max_length),
        **_given(args, {"policy": "policy", "max_train": "max_train", "seed": "seed",
                        "balance_types": "balance_types",
                        "answer_format": "answer_format"}),
    )  # fmt: skip

    def count(code: str) -> int:
        return len(tokenizer(code, add_special_tokens=False)["input_ids"])

    card = build_chunk_dataset(config, count, progress=True)
    for item in card["skipped"][:20]:
        _info(f"skipped {item['id']}: {item['reason']}")
    for split, info in card["splits"].items():
        share = "-" if info["insecure_share"] is None else f"{info['insecure_share']:.1%}"
        _info(
            f"{split:>5}: {info['chunks']:5d} chunks from {info['files']} files "
            f"({info['block_chunks']} single blocks), {share} INSECURE"
        )
    _info(
        f"chunk data set written to {args.out}/ (code budget {config.max_code_tokens} tokens); "
        f"train on it with `axon train --data {args.out}`"
    )
    return 0


def _cmd_dataset_mutate(args: argparse.Namespace, settings: Settings) -> int:
    from axon_infralinter.data.mutate import MutateConfig, build_pairs

    corpus = Path(args.corpus) if args.corpus else settings.corpus
    if corpus is None:
        raise AxonError(
            "no corpus: pass --corpus DIR or set AXON_CORPUS (the one the data set used)"
        )
    flags = {"policy": "policy", "splits": "splits", "limit_sources": "limit_sources",
             "workers": "workers", "batch_size": "batch_size", "seed": "seed"}  # fmt: skip
    config = MutateConfig(
        data=Path(args.data), corpus=corpus, out=Path(args.out), cache_dir=settings.scan_cache,
        neutral=not args.no_neutral, learn=not args.no_learn, **_given(args, flags),
    )  # fmt: skip
    with _engine(args, workers=config.workers) as executor:
        card = build_pairs(config, progress=True, executor=executor)
    for split, info in card["splits"].items():
        clouds = ", ".join(f"{k} {v}" for k, v in info["pairs_by_cloud"].items()) or "-"
        _info(
            f"{split:>5}: {info['pairs']:5d} pairs ({clouds}) from {info['pair_sources']} of "
            f"{info['sources_tried']} source blocks tried, {info['neutral']} neutral variants"
        )
    for kind, share in card["intended"]["by_kind"].items():
        value = "-" if share["share"] is None else f"{share['share']:.1%}"
        _info(f"{kind} edits that did as intended: {share['intended']}/{share['n']} ({value})")
    _info(
        f"pairs written to {args.out}/ (train/val/test.jsonl, pairs_card.json); "
        f"{card['variants_scanned']} texts scanned in {card['seconds']:.0f} s"
    )
    return 0


# --------------------------------------------------------------------------------------------
# train


def _cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    from axon_infralinter.models.train_lora import config_to_dict, resolve_config, train

    data = args.data
    if data is None and (Path("data") / "chunks" / "chunks_card.json").is_file():
        data = Path("data") / "chunks"  # the block-level examples (`axon dataset chunks`)
    overrides: dict[str, Any] = {
        "data_dir": data,
        "max_steps": args.max_steps,
        "output_dir": args.output_dir,
        "checkpoint_dir": args.checkpoint_dir,
        "base_model": args.base_model,
        "seed": args.seed,
        "num_train_epochs": args.epochs,
        "learning_rate": args.learning_rate,
        "max_length": args.max_length,
        "loss_on": args.loss_on,
        "label_weight": args.label_weight,
        "resume_from_checkpoint": args.resume,
        "init_adapter": args.init_adapter,
        "pairs_dir": args.pairs,
        "pair_weight": args.pair_weight,
        "anchor_weight": args.anchor_weight,
        "anchor_one_sided": args.anchor_one_sided,
        "max_train_examples": args.max_train_examples,
    }
    config = (
        resolve_config(args.profile, **overrides) if args.profile else resolve_config(**overrides)
    )
    if args.print_config:
        print(json.dumps(config_to_dict(config), indent=2))
        return 0

    def ready(adapter: Path, checkpoints: Path, n: int) -> None:
        _info(f"training {config.profile} on {n} examples from {config.data_dir}/")
        _info(f"checkpoints: {checkpoints}  (resume with `axon train --resume`)")

    adapter = train(config, settings, progress=True, on_ready=ready)
    _info(f"adapter written to {adapter} (training_log.jsonl, README.md, threshold.json)")
    return 0


# --------------------------------------------------------------------------------------------
# evaluate / benchmark / plots


def _cmd_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    from axon_infralinter.models.evaluate import EvalConfig, evaluate
    from axon_infralinter.models.predict import find_default_adapter

    adapter = Path(args.adapter) if args.adapter else None
    if adapter is None and settings.lora_output_dir is None:
        adapter = find_default_adapter()  # models/axon_lora_smollm2-cpu, else the shipped one
        if adapter is not None:
            _info(f"using adapter {adapter}")
    flags = {"data": "data_dir", "runs_dir": "runs_dir", "base_model": "base_model",
             "mode": "mode", "run_id": "run_id", "limit": "limit", "baselines": "baselines",
             "labels": "labels_csv", "force": "force", "seed": "seed", "explain": "explain",
             "batch_size": "batch_size", "policy": "policy", "pairs": "pairs_dir"}  # fmt: skip
    config = EvalConfig(adapter=adapter, **_given(args, flags))
    with _engine(args) as executor:
        paths = evaluate(config, settings, executor=executor)
    _print_runs(paths)
    if paths and read_eval_run(paths[0])["config"].get("base_model_only"):
        _info("note: no trained adapter found: evaluated the base model zero-shot")
    return 0


def _print_runs(paths: Sequence[Path]) -> None:
    header = (
        f"{'model':<28} {'mode':<9} {'labels':<8} {'labeler':<7} {'n':>5} {'acc':>6} {'prec':>6} "
        f"{'rec':>6} {'F1':>6} {'AUC':>6} {'parse!':>6} {'s/file':>7}"
    )
    print(header)
    print("-" * len(header))
    for path in paths:
        run = read_eval_run(Path(path))
        m = run["metrics"]

        def f(key: str, m: dict[str, Any] = m) -> str:
            value = m.get(key)
            return f"{value:6.3f}" if isinstance(value, (int, float)) else f"{'-':>6}"

        per_file = run.get("runtime", {}).get("per_file_mean_s")
        print(
            f"{run['model']:<28} {run['mode']:<9} {run.get('label_source', 'both'):<8} "
            f"{'yes' if run.get('labeler') else 'no':<7} {m.get('n', 0):5d} {f('accuracy')} "
            f"{f('precision')} {f('recall')} {f('f1')} {f('roc_auc')} "
            f"{f('parse_failure_rate')} {per_file if per_file is None else f'{per_file:7.3f}'}"
        )
    _print_pairwise([read_eval_run(Path(path)) for path in paths])
    if paths:
        _info(f"run files in {Path(paths[0]).parent}/")


def _print_pairwise(runs: Sequence[Any]) -> None:
    """The pairwise score of runs over minimal pairs (`--pairs`), one line per run."""
    from axon_infralinter.models.pairwise import pair_outcomes, pairwise_metrics

    rows = [(run, pair_outcomes(run)) for run in runs if run.get("label_source") == "both"]
    rows = [(run, outcomes) for run, outcomes in rows if outcomes]
    if not rows:
        return
    print()
    print(
        f"{'model':<28} {'mode':<9} {'pairs':>5} {'pairwise [95% CI]':<24} {'ties':>5} {'both ok':>7}"
    )
    for run, outcomes in rows:
        m = pairwise_metrics(outcomes)
        ci = f"{m['pairwise']:.3f} [{m['ci'][0]:.3f}, {m['ci'][1]:.3f}]"
        print(
            f"{run['model']:<28} {run['mode']:<9} {m['pairs']:5d} {ci:<24} {m['ties']:5.2f} "
            f"{m['both_correct']:7.3f}"
        )


def _cmd_benchmark(args: argparse.Namespace, settings: Settings) -> int:
    from axon_infralinter.models.benchmark_multi_run import BenchmarkConfig, run_benchmark

    flags = {"runs": "runs", "train_seeds": "train_seeds", "runs_dir": "runs_dir",
             "data": "data_dir", "adapter": "adapter", "base_model": "base_model",
             "limit": "limit", "generate_limit": "generate_limit", "force": "force",
             "profile": "profile", "pairs": "pairs_dir"}  # fmt: skip
    config = BenchmarkConfig(base=not args.no_base, **_given(args, flags))
    if config.adapter is None and settings.lora_output_dir is None:
        default = Path("models") / f"axon_lora_{config.profile}"
        if (default / "adapter_config.json").is_file():
            config = dataclasses.replace(config, adapter=default)
    result = run_benchmark(config, settings, progress=True)
    print(Path(result["summary_md"]).read_text(encoding="utf-8"))
    _info(f"summary written to {result['summary_json']} and {result['summary_md']}")
    return 0


def _cmd_plots(args: argparse.Namespace, settings: Settings) -> int:
    from axon_infralinter.models.evaluate import EvalConfig
    from axon_infralinter.models.visualize_benchmarks import make_plots

    log = Path(args.training_log) if args.training_log else None
    if log is None:
        for folder in (settings.lora_output_dir, Path("models") / "axon_lora_smollm2-cpu"):
            if folder is not None and (folder / "training_log.jsonl").is_file():
                log = folder / "training_log.jsonl"
                break
    runs_dir = Path(args.runs_dir) if args.runs_dir else EvalConfig().runs_dir
    for path in make_plots(runs_dir, Path(args.out), training_log=log):
        _info(f"wrote {path}")
    return 0


# --------------------------------------------------------------------------------------------
# scan


def _cmd_scan(args: argparse.Namespace, settings: Settings) -> int:
    from axon_infralinter.lint.baseline import apply_baseline, read_baseline, write_baseline
    from axon_infralinter.lint.cache import VerdictCache, judge_fingerprint
    from axon_infralinter.lint.diff import git_changes
    from axon_infralinter.lint.formats import FORMATS
    from axon_infralinter.lint.inputs import default_root
    from axon_infralinter.lint.scan import ScanOptions, exit_code, scan
    from axon_infralinter.models.predict import find_default_adapter, load_predictor
    from axon_infralinter.models.remote import RemotePredictor

    if args.create_baseline and args.diff:
        raise AxonError("--create-baseline records every finding: it cannot be used with --diff")
    paths = [Path(p) for p in args.paths]
    options = ScanOptions(
        paths=paths,
        threshold=args.threshold,
        keep_comments=args.keep_comments,
        root=default_root(paths),  # the git work tree holding the paths, else their folder
        explain=not args.no_explain,
        diff_ref=args.diff,
        diff_scope=args.diff_scope,
        judge_context=args.judge_context_blocks,
    )
    # Bad input is one line before the model loads: the ref, the baseline file.
    if options.diff_ref is not None and options.root is not None:
        git_changes(options.root, options.diff_ref)
    baseline = read_baseline(Path(args.baseline)) if args.baseline else None
    adapter = Path(args.adapter) if args.adapter else find_default_adapter()
    predictor = load_predictor(
        adapter, base_model=args.base_model, keep_comments=args.keep_comments, settings=settings
    )
    if adapter is None:
        _info("no trained adapter found: judging with the base model alone (zero-shot)")
    cache = None
    if not args.no_cache:
        cache = VerdictCache(settings.verdict_cache, judge_fingerprint(predictor, settings))
    with _engine(args) as executor:
        # --engine dask: the workers judge, each with its own copy of the model (scan() unchanged).
        if executor is not None:
            predictor = RemotePredictor.wrap(predictor, executor, args.base_model)
        report = scan(options, predictor, progress=sys.stderr.isatty(), cache=cache)
    for note in report.notifications:
        _err(str(note))
    if cache is not None and cache.counts.corrupt:
        _info(f"verdict cache: {cache.counts.corrupt} unreadable entries rescored")
    if args.create_baseline:
        baseline = write_baseline(report, Path(args.create_baseline))
        _info(f"baseline of {len(baseline.findings)} findings written to {args.create_baseline}")
    if baseline is not None:
        apply_baseline(report, baseline)
    writer = FORMATS[args.format]
    if args.output:
        buffer = io.StringIO()
        writer(report, buffer)
        try:
            atomic_write_text(Path(args.output), buffer.getvalue())
        except OSError as exc:
            raise AxonError(f"--output {args.output}: {exc.strerror}") from None
        _info(f"report written to {args.output}")
    else:
        writer(report, sys.stdout)
    return exit_code(report)


# --------------------------------------------------------------------------------------------
# demo


def _cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from axon_infralinter.demo import DemoConfig, run_demo

    config = DemoConfig(
        tiny=args.tiny, corpus=settings.corpus, **_given(args, {"workdir": "workdir"})
    )
    for line in run_demo(config, settings):
        _info(line)
    return 0


# --------------------------------------------------------------------------------------------
# parser


def _given(args: argparse.Namespace, fields: dict[str, str]) -> dict[str, Any]:
    """Config keyword arguments from the flags the user gave (flag dest -> config field).

    Flags default to None ("not given"), so a default is stated once, on its config dataclass.
    """
    return {
        field: getattr(args, dest)
        for dest, field in fields.items()
        if getattr(args, dest) is not None
    }


@contextlib.contextmanager
def _engine(args: argparse.Namespace, workers: int | None = None) -> Iterator[Executor | None]:
    """The executor of `--engine`/`--scheduler`, closed (with any cluster it started) at the end.

    None for the local engine (each stage's own default); for `--engine dask` a Dask executor on a
    new loopback LocalCluster of `workers` processes (default one per core), or on the cluster of
    `--scheduler ADDR`. The one place the CLI reaches `axon_infralinter.engine`.
    """
    if args.engine != "dask":
        if args.scheduler is not None:
            raise ConfigError("--scheduler needs --engine dask")
        yield None
        return
    from axon_infralinter.engine import DaskConfig, dask_executor

    with dask_executor(DaskConfig(scheduler=args.scheduler, n_workers=workers)) as executor:
        _info(executor.describe())
        yield executor


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree of `axon` (`cli_parser`), each subcommand bound to its handler."""
    return cli_parser.build_parser(HANDLERS)


HANDLERS: dict[str, Callable[[argparse.Namespace, Settings], int]] = {
    "corpus_collect": _cmd_corpus_collect,
    "dataset_build": _cmd_dataset_build,
    "dataset_chunks": _cmd_dataset_chunks,
    "dataset_mutate": _cmd_dataset_mutate,
    "train": _cmd_train,
    "evaluate": _cmd_evaluate,
    "benchmark": _cmd_benchmark,
    "plots": _cmd_plots,
    "scan": _cmd_scan,
    "demo": _cmd_demo,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run `axon`; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        return int(args.func(args, settings))
    except AxonError as exc:
        _err(str(exc))
        return 2
    except KeyboardInterrupt:
        _err(
            "interrupted; finished work is kept (caches, checkpoints, run files): re-run to resume"
        )
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
