"""The argparse tree of `axon` (flags only; `cli.py` binds each subcommand to its handler).

Flags default to None ("not given") unless they have no config dataclass: `cli._given` passes only
the flags a user gave, so a default is stated once, on the config.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from axon_infralinter import __version__

Handlers = Mapping[str, Callable[..., int]]
"""Subcommand name (`dataset_build`, `scan`, ...) -> the function that runs it."""


def add_engine_flags(parser: argparse.ArgumentParser) -> None:
    """`--engine local|dask` and `--scheduler ADDR` (docs/scale-out.md)."""
    parser.add_argument(
        "--engine",
        choices=["local", "dask"],
        help="where the work runs: here (default) or on a Dask cluster (the [dask] extra)",
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDR",
        help="with --engine dask: join this scheduler's cluster (default: a LocalCluster on 127.0.0.1)",
    )


def build_parser(handlers: Handlers) -> argparse.ArgumentParser:
    """The argparse tree of `axon`; each subcommand's `func` is `handlers[name]`."""
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
        add(sub, handlers)
    return p


def _add_corpus(sub: Any, handlers: Handlers) -> None:
    corpus = sub.add_parser("corpus", help="collect a Terraform corpus").add_subparsers(
        dest="sub", required=True
    )
    c = corpus.add_parser(
        "collect", help="shallow-clone pinned repositories and copy their .tf files"
    )
    c.add_argument("--sources", type=Path, required=True, help="file of `url commit` lines")
    c.add_argument("--out", type=Path, default="data/corpus")
    c.set_defaults(func=handlers["corpus_collect"])


def _add_dataset(sub: Any, handlers: Handlers) -> None:
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
    add_engine_flags(d)
    d.set_defaults(func=handlers["dataset_build"])
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
    ch.add_argument(
        "--balance-types",
        action="store_true",
        default=None,
        help="with --max-train: draw SECURE chunks first from the resource types of the INSECURE "
        "ones, so a type is not kept INSECURE-only when the pool has SECURE chunks of it",
    )
    ch.add_argument("--base-model", help="tokenizer to count tokens with (default SmolLM2)")
    ch.add_argument("--policy")
    ch.add_argument("--seed", type=int)
    ch.add_argument(
        "--answer-format",
        choices=("titles", "ids"),  # data.prompt.ANSWER_FORMATS
        help="finding lines of the answer: `- ID: title (resource)` or `- ID (resource)`",
    )
    ch.set_defaults(func=handlers["dataset_chunks"])
    mu = dataset.add_parser(
        "mutate", help="minimal pairs: rule-directed edits of blocks, each variant scanned alone"
    )
    mu.add_argument("--data", type=Path, default="data", help="folder with the file-level splits")
    mu.add_argument("--out", type=Path, default="data/pairs")
    mu.add_argument(
        "--corpus", type=Path, help="the corpus the data set was built from (default AXON_CORPUS)"
    )
    mu.add_argument("--splits", nargs="+", help="splits to mutate (default: train val test)")
    mu.add_argument("--limit-sources", type=int, help="try at most N source blocks per split")
    mu.add_argument("--no-neutral", action="store_true", help="skip the neutral variants")
    mu.add_argument(
        "--no-learn", action="store_true", help="no learnt edits (Checkov's metadata only)"
    )
    mu.add_argument("--policy")
    mu.add_argument("--workers", type=int, help="scanner processes at once")
    mu.add_argument("--batch-size", type=int, help="variants per scanner process")
    mu.add_argument("--seed", type=int)
    add_engine_flags(mu)
    mu.set_defaults(func=handlers["dataset_mutate"])


def _add_train(sub: Any, handlers: Handlers) -> None:
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
        "--pairs",
        type=Path,
        help="minimal pairs folder (`axon dataset mutate`): train its pairs with a ranking term",
    )
    t.add_argument(
        "--pair-weight", type=float, help="weight of the pairs' ranking term (default 1)"
    )
    t.add_argument(
        "--anchor-weight",
        type=float,
        help="with --pairs: hold single examples' verdict margins near the starting model's "
        "(weight of (d - d_start)^2; default 0; the margins are cached under "
        "AXON_HOME/anchor-margins)",
    )
    t.add_argument(
        "--anchor-one-sided",
        action="store_true",
        default=None,
        help="with --anchor-weight: the anchor only resists a margin moving away from the "
        "example's label (toward it is free), so examples the starting model judges wrong can learn",
    )
    t.add_argument(
        "--max-train-examples",
        type=int,
        help="keep at most N single training examples (a seeded sample; pairs all kept)",
    )
    t.add_argument(
        "--resume", nargs="?", const="last", help="resume from PATH or the newest checkpoint"
    )
    t.add_argument("--print-config", action="store_true")
    t.set_defaults(func=handlers["train"])


def _add_evaluate(sub: Any, handlers: Handlers) -> None:
    e = sub.add_parser("evaluate", help="evaluate the model and the scanners on the test split")
    e.add_argument("--adapter", type=Path)
    e.add_argument("--base-model")
    e.add_argument("--mode", choices=["score", "generate"])
    e.add_argument(
        "--baselines",
        action="store_true",
        help="also Checkov, tfsec and tfidf-logreg (trained on --data's train split)",
    )
    e.add_argument(
        "--pairs",
        type=Path,
        metavar="DIR",
        help="score the minimal pairs of DIR/test.jsonl (axon dataset mutate): the pairwise score",
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
    add_engine_flags(e)
    e.set_defaults(func=handlers["evaluate"])


def _add_benchmark(sub: Any, handlers: Handlers) -> None:
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
    b.add_argument(
        "--pairs",
        type=Path,
        metavar="DIR",
        help="also score the minimal pairs of DIR/test.jsonl with every score-mode row",
    )
    b.add_argument("--limit", type=int, help="evaluate N test files (an evenly spaced sample)")
    b.add_argument(
        "--generate-limit", type=int, help="generate-mode runs use N test files (CPU time)"
    )
    b.add_argument("--force", action="store_true")
    b.add_argument("--data", type=Path)
    b.add_argument("--runs-dir", type=Path)
    b.set_defaults(func=handlers["benchmark"])


def _add_plots(sub: Any, handlers: Handlers) -> None:
    pl = sub.add_parser("plots", help="figures and REPORT.md from the run files")
    pl.add_argument("--runs-dir", type=Path)
    pl.add_argument("--out", type=Path, default="figures")
    pl.add_argument("--training-log", type=Path)
    pl.set_defaults(func=handlers["plots"])


def _add_scan(sub: Any, handlers: Handlers) -> None:
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
    s.add_argument(
        "--judge-context-blocks",
        action="store_true",
        help="also judge chunks of only variable/output/locals/terraform blocks (default: SECURE, "
        "no model call: no scanner rule inspects them)",
    )
    # Pull requests (docs/ci.md): changed code only, a baseline, no chunk judged twice.
    s.add_argument(
        "--diff",
        metavar="REF",
        help="judge only files added, modified or renamed since this git ref (working tree vs REF)",
    )
    s.add_argument(
        "--diff-scope",
        choices=["blocks", "files"],
        default="blocks",
        help="with --diff: report only the blocks whose lines changed (default), or whole files",
    )
    s.add_argument(
        "--baseline", metavar="FILE", help="report and fail only on findings not in this baseline"
    )
    s.add_argument(
        "--create-baseline", metavar="FILE", help="write every current finding to a baseline file"
    )
    s.add_argument(
        "--no-cache",
        action="store_true",
        help="judge every chunk again (default: reuse the verdicts cached under AXON_HOME)",
    )
    add_engine_flags(s)
    s.set_defaults(func=handlers["scan"])


def _add_demo(sub: Any, handlers: Handlers) -> None:
    dm = sub.add_parser("demo", help="the whole study, small, on CPU")
    dm.add_argument("--tiny", action="store_true", help="a handful of files and a couple of steps")
    dm.add_argument("--workdir", type=Path)
    dm.set_defaults(func=handlers["demo"])
