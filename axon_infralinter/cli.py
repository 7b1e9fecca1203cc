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
import dataclasses
import io
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from axon_infralinter import __version__
from axon_infralinter.errors import AxonError
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
    card = build_dataset(config, progress=True)
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
             "batch_size": "batch_size", "policy": "policy"}  # fmt: skip
    config = EvalConfig(adapter=adapter, **_given(args, flags))
    paths = evaluate(config, settings)
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
    if paths:
        _info(f"run files in {Path(paths[0]).parent}/")


def _cmd_benchmark(args: argparse.Namespace, settings: Settings) -> int:
    from axon_infralinter.models.benchmark_multi_run import BenchmarkConfig, run_benchmark

    flags = {"runs": "runs", "train_seeds": "train_seeds", "runs_dir": "runs_dir",
             "data": "data_dir", "adapter": "adapter", "base_model": "base_model",
             "limit": "limit", "generate_limit": "generate_limit", "force": "force",
             "profile": "profile"}  # fmt: skip
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
    from axon_infralinter.lint.formats import FORMATS
    from axon_infralinter.lint.scan import ScanOptions, exit_code, scan
    from axon_infralinter.models.predict import find_default_adapter, load_predictor

    options = ScanOptions(
        paths=[Path(p) for p in args.paths],
        threshold=args.threshold,
        keep_comments=args.keep_comments,
        root=Path.cwd(),
        explain=not args.no_explain,
    )
    adapter = Path(args.adapter) if args.adapter else find_default_adapter()
    predictor = load_predictor(
        adapter, base_model=args.base_model, keep_comments=args.keep_comments, settings=settings
    )
    if adapter is None:
        _info("no trained adapter found: judging with the base model alone (zero-shot)")
    report = scan(options, predictor, progress=sys.stderr.isatty())
    for note in report.notifications:
        _err(str(note))
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


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree of `axon`."""
    p = argparse.ArgumentParser(
        prog="axon",
        description="Axon InfraLinter: Terraform security linting by a LoRA-fine-tuned LLM, and a study against Checkov and tfsec.",
    )
    p.add_argument("--version", action="version", version=f"axon {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    for add in (
        _add_corpus,
        _add_dataset,
        _add_train,
        _add_evaluate,
        _add_benchmark,
        _add_plots,
        _add_scan,
        _add_demo,
    ):
        add(sub)
    return p


def _add_corpus(sub: Any) -> None:
    corpus = sub.add_parser("corpus", help="collect a Terraform corpus").add_subparsers(
        dest="sub", required=True
    )
    c = corpus.add_parser(
        "collect", help="shallow-clone pinned repositories and copy their .tf files"
    )
    c.add_argument("--sources", type=Path, required=True, help="file of `url commit` lines")
    c.add_argument("--out", type=Path, default="data/corpus")
    c.set_defaults(func=_cmd_corpus_collect)


def _add_dataset(sub: Any) -> None:
    dataset = sub.add_parser("dataset", help="build the data set").add_subparsers(
        dest="sub", required=True
    )
    d = dataset.add_parser("build", help="scan, label, de-duplicate and split a corpus")
    d.add_argument(
        "--corpus",
        type=Path,
        help="corpus folder (default: AXON_CORPUS or ../shared/datasets/terraform-corpus)",
    )
    d.add_argument("--out", type=Path)
    d.add_argument("--workers", type=int)
    d.add_argument("--limit", type=int)
    d.add_argument("--seed", type=int)
    d.add_argument(
        "--policy",
        help="label policy: security-core (default), any, tfsec-high",
    )
    d.add_argument(
        "--near-dup-threshold",
        type=float,
        help="Jaccard on 5-token shingles",
    )
    d.add_argument(
        "--provider-weight",
        type=float,
        help="weight of the split's per-cloud balance (0: the split of runs A-E)",
    )
    d.set_defaults(func=_cmd_dataset_build)
    ch = dataset.add_parser(
        "chunks", help="split each file into the blocks the model judges, labelled per block"
    )
    ch.add_argument("--data", type=Path, default="data", help="folder with the file-level splits")
    ch.add_argument("--out", type=Path, default="data/chunks")
    ch.add_argument(
        "--corpus", type=Path, help="the corpus the data set was built from (default AXON_CORPUS)"
    )
    ch.add_argument("--max-length", type=int, default=512, help="the training max_length")
    ch.add_argument("--max-train", type=int, help="keep at most N training chunks")
    ch.add_argument("--base-model", help="tokenizer to count tokens with (default SmolLM2)")
    ch.add_argument("--policy")
    ch.add_argument("--seed", type=int)
    ch.add_argument(
        "--answer-format",
        choices=("titles", "ids"),  # data.prompt.ANSWER_FORMATS
        help="finding lines of the answer: `- ID: title (resource)` or `- ID (resource)`",
    )
    ch.set_defaults(func=_cmd_dataset_chunks)


def _add_train(sub: Any) -> None:
    # No defaults here: None means "not given", and resolve_config layers defaults -> profile -> flags.
    t = sub.add_parser("train", help="fine-tune the base model with LoRA")
    t.add_argument("--profile")
    t.add_argument(
        "--data",
        type=Path,
        help="folder with train/val.jsonl (default data/chunks/ when built, else data/)",
    )
    t.add_argument("--max-steps", type=int)
    t.add_argument("--epochs", type=float)
    t.add_argument("--learning-rate", type=float)
    t.add_argument("--max-length", type=int)
    t.add_argument("--loss-on", choices=["target", "all"])
    t.add_argument(
        "--label-weight",
        type=float,
        help="loss weight of the SECURE/INSECURE token (TrainConfig.label_weight)",
    )
    t.add_argument("--seed", type=int)
    t.add_argument("--base-model")
    t.add_argument("--output-dir", type=Path)
    t.add_argument("--checkpoint-dir", type=Path)
    t.add_argument(
        "--init-adapter",
        type=Path,
        help="start from this adapter's LoRA weights (continued training) instead of a fresh init",
    )
    t.add_argument(
        "--resume", nargs="?", const="last", help="resume from PATH or the newest checkpoint"
    )
    t.add_argument("--print-config", action="store_true")
    t.set_defaults(func=_cmd_train)


def _add_evaluate(sub: Any) -> None:
    e = sub.add_parser("evaluate", help="evaluate the model and the scanners on the test split")
    e.add_argument("--adapter", type=Path)
    e.add_argument("--base-model")
    e.add_argument("--mode", choices=["score", "generate"])
    e.add_argument(
        "--baselines", action="store_true", help="also Checkov, tfsec and the constant baseline"
    )
    e.add_argument(
        "--labels", type=Path, help="CSV of path,label to evaluate on instead of test.jsonl"
    )
    e.add_argument("--run-id", type=int)
    e.add_argument("--limit", type=int)
    e.add_argument("--seed", type=int)
    e.add_argument("--force", action="store_true", help="recompute finished runs")
    e.add_argument(
        "--explain", action="store_true", help="also generate explanations in score mode"
    )
    e.add_argument(
        "--batch-size",
        type=int,
        help="prompts per model call",
    )
    e.add_argument(
        "--policy",
        help="label policy for baselines and cross-labeler views (default security-core)",
    )
    e.add_argument("--data", type=Path)
    e.add_argument("--runs-dir", type=Path)
    e.set_defaults(func=_cmd_evaluate)


def _add_benchmark(sub: Any) -> None:
    b = sub.add_parser(
        "benchmark", help="repeat evaluations and aggregate with confidence intervals"
    )
    b.add_argument(
        "--runs",
        type=int,
        help="sampling seeds in generate mode (and adapters with --train-seeds)",
    )
    b.add_argument(
        "--train-seeds",
        action="store_true",
        help="also train --runs adapters (seeds 1..N) and evaluate each",
    )
    b.add_argument(
        "--profile",
        help="training profile for --train-seeds",
    )
    b.add_argument("--adapter", type=Path)
    b.add_argument("--base-model")
    b.add_argument("--no-base", action="store_true", help="skip the zero-shot base-model row")
    b.add_argument("--limit", type=int, help="evaluate N test files (an evenly spaced sample)")
    b.add_argument(
        "--generate-limit", type=int, help="generate-mode runs use N test files (CPU time)"
    )
    b.add_argument("--force", action="store_true")
    b.add_argument("--data", type=Path)
    b.add_argument("--runs-dir", type=Path)
    b.set_defaults(func=_cmd_benchmark)


def _add_plots(sub: Any) -> None:
    pl = sub.add_parser("plots", help="figures and REPORT.md from the run files")
    pl.add_argument("--runs-dir", type=Path)
    pl.add_argument("--out", type=Path, default="figures")
    pl.add_argument("--training-log", type=Path)
    pl.set_defaults(func=_cmd_plots)


def _add_scan(sub: Any) -> None:
    s = sub.add_parser("scan", help="lint Terraform files with the fine-tuned model")
    s.add_argument(
        "paths", nargs="+", metavar="PATH", help="files, folders (searched for *.tf) or globs"
    )
    s.add_argument("--format", choices=["text", "json", "sarif"], default="text")
    s.add_argument("--output", metavar="FILE", help="write the report here instead of stdout")
    s.add_argument(
        "--adapter",
        type=Path,
        metavar="DIR",
        help="LoRA adapter (default: models/axon_lora_smollm2-cpu, else the shipped one)",
    )
    s.add_argument(
        "--base-model", metavar="ID", help="HF id or local folder (default: the adapter's)"
    )
    s.add_argument(
        "--threshold",
        type=float,
        metavar="P",
        help="P(INSECURE) at or above which a block is INSECURE",
    )
    s.add_argument(
        "--keep-comments",
        action="store_true",
        help="judge code with its comments (default strips them)",
    )
    s.add_argument("--no-explain", action="store_true", help="skip generated explanations (faster)")
    s.set_defaults(func=_cmd_scan)


def _add_demo(sub: Any) -> None:
    dm = sub.add_parser("demo", help="the whole study, small, on CPU")
    dm.add_argument("--tiny", action="store_true", help="a handful of files and a couple of steps")
    dm.add_argument("--workdir", type=Path)
    dm.set_defaults(func=_cmd_demo)


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
