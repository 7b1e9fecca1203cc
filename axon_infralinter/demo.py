"""`axon demo`: a small but real run of every stage, on CPU.

Stages: build a data set from a sample of the corpus (real Checkov and Trivy) and its block-level
training examples (`data.chunks`) -> train the default
profile for a short run (real SmolLM2 + LoRA) -> benchmark: the fine-tuned model in score mode, the
base model zero-shot, Checkov, tfsec, the constant baseline and sampled generate runs -> figures and
REPORT.md -> `axon scan examples/`. Everything goes under `workdir` (default `demo/`); re-running
reuses what is done (scanner cache, adapter or its checkpoints, finished run files).

Sizes (2 cores): the default took 931 s from a cold cache (`make demo` from a fresh clone: 1,011 s
with set-up); `--tiny` (a handful of files, a couple of steps) is what the test suite runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from axon_infralinter.data.chunks import ChunkConfig, build_chunk_dataset
from axon_infralinter.data.dataset import DatasetConfig, build_dataset
from axon_infralinter.errors import InputError
from axon_infralinter.lint.scan import ScanOptions, exit_code, scan
from axon_infralinter.models.base_model import EMBEDDED_SMOLLM2, load_tokenizer
from axon_infralinter.models.benchmark_multi_run import BenchmarkConfig, run_benchmark
from axon_infralinter.models.predict import SHIPPED_ADAPTER, load_predictor
from axon_infralinter.models.tokens import code_budget
from axon_infralinter.models.train_lora import resolve_config, train
from axon_infralinter.models.visualize_benchmarks import make_plots
from axon_infralinter.schema import read_adapter_meta, read_json_object
from axon_infralinter.settings import Settings

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@dataclass(frozen=True)
class DemoSizes:
    """How big each stage is."""

    files: int
    """Corpus files sampled for the data set (stratified over repositories)."""
    steps: int
    """Optimizer steps of the short training run."""
    grad_accum: int
    """Examples per optimizer step."""
    max_length: int
    """Tokens per training example."""
    runs: int
    """Sampled generate runs in the benchmark."""
    generate_limit: int
    """Test files each generate run judges (generation is the slow part on CPU)."""


FULL = DemoSizes(files=400, steps=40, grad_accum=4, max_length=384, runs=3, generate_limit=12)
TINY = DemoSizes(files=24, steps=2, grad_accum=2, max_length=256, runs=2, generate_limit=3)


@dataclass(frozen=True)
class DemoConfig:
    """What `axon demo` runs."""

    tiny: bool = False
    """Use the TINY sizes (tests)."""
    workdir: Path = Path("demo")
    """Where every output goes."""
    corpus: Path | None = None
    """Corpus folder (default: settings.corpus)."""
    examples: Path = EXAMPLES
    """Folder that the final `axon scan` judges."""


def run_demo(config: DemoConfig, settings: Settings) -> Iterator[str]:
    """Run every stage; yields one line per event for the CLI to print."""
    sizes = TINY if config.tiny else FULL
    corpus = config.corpus or settings.corpus
    if corpus is None or not corpus.is_dir():
        raise InputError(
            "no corpus found: set AXON_CORPUS to a folder of .tf files (e.g. "
            "../shared/datasets/terraform-corpus) or run `axon corpus collect --sources "
            "axon_infralinter/resources/sources.txt --out data/corpus` on a machine with network"
        )
    work = config.workdir
    data_dir, runs_dir = work / "data", work / "eval_runs"
    adapter_dir = work / "models" / "axon_lora_smollm2-cpu"
    started = time.perf_counter()

    def stamp(stage: str) -> str:
        return f"[{time.perf_counter() - started:6.0f} s] {stage}"

    chunks_dir = data_dir / "chunks"
    yield from _data_set(sizes, corpus, data_dir, chunks_dir, settings, stamp)
    yield from _training(config, sizes, chunks_dir, adapter_dir, settings, stamp)
    yield from _evaluation(config, sizes, data_dir, runs_dir, adapter_dir, settings, stamp)
    figures = work / "figures"
    paths = make_plots(runs_dir, figures, training_log=adapter_dir / "training_log.jsonl")
    yield stamp(f"4/5 figures: {len(paths)} files in {figures}/ (open REPORT.md)")
    for line in _scan_examples(config.examples, adapter_dir, settings):
        yield stamp(line)
    yield stamp(f"done; everything is under {work}/")


def _data_set(
    sizes: DemoSizes,
    corpus: Path,
    data_dir: Path,
    chunks_dir: Path,
    settings: Settings,
    stamp: Callable[[str], str],
) -> Iterator[str]:
    """Stage 1: the file-level data set, then its block-level training examples (both reused)."""
    card_path = data_dir / "dataset_card.json"
    if card_path.is_file() and read_json_object(card_path)["config"].get("limit") == sizes.files:
        yield stamp(f"1/5 data set: reusing {data_dir}/ (delete it to rebuild)")
    else:
        yield stamp(
            f"1/5 data set: {sizes.files} files of {corpus}, scanned with Checkov and tfsec"
        )
        card = build_dataset(
            DatasetConfig(
                corpus=corpus,
                out=data_dir,
                limit=sizes.files,
                workers=2,
                cache_dir=settings.scan_cache,
            ),
            progress=True,
        )
        counts = ", ".join(f"{s} {card['splits'][s]['count']}" for s in ("train", "val", "test"))
        yield stamp(f"    wrote {data_dir}/ ({counts}; policy {card['policy']['name']})")
    chunks_card = chunks_dir / "chunks_card.json"
    tokenizer = load_tokenizer(EMBEDDED_SMOLLM2, settings)
    budget = code_budget(tokenizer, sizes.max_length)
    if (
        chunks_card.is_file()
        and read_json_object(chunks_card)["max_code_tokens"] == budget
        and chunks_card.stat().st_mtime >= card_path.stat().st_mtime
    ):
        return
    chunk_card = build_chunk_dataset(
        ChunkConfig(data=data_dir, corpus=corpus, out=chunks_dir, max_code_tokens=budget),
        lambda code: len(tokenizer(code, add_special_tokens=False)["input_ids"]),
    )
    train_info = chunk_card["splits"]["train"]
    yield stamp(
        f"    training examples: {train_info['chunks']} blocks/files of <= {budget} code "
        f"tokens, {train_info['insecure_share']:.0%} INSECURE, in {chunks_dir}/"
    )


def _training(
    config: DemoConfig,
    sizes: DemoSizes,
    chunks_dir: Path,
    adapter_dir: Path,
    settings: Settings,
    stamp: Callable[[str], str],
) -> Iterator[str]:
    """Stage 2: LoRA training on the block-level examples (reused when trained on them)."""
    trained_on = read_adapter_meta(adapter_dir).config.get("data_dir")
    if (adapter_dir / "adapter_model.safetensors").is_file() and trained_on == str(chunks_dir):
        yield stamp(f"2/5 training: reusing {adapter_dir}")
        return
    yield stamp(
        f"2/5 training: SmolLM2-135M + LoRA, {sizes.steps} steps x {sizes.grad_accum} examples"
    )
    train_config = resolve_config(
        "smollm2-cpu",
        data_dir=chunks_dir,
        output_dir=adapter_dir,
        checkpoint_dir=settings.home
        / "checkpoints"
        / f"demo-{'tiny' if config.tiny else 'full'}-blocks",
        max_steps=sizes.steps,
        gradient_accumulation_steps=sizes.grad_accum,
        max_length=sizes.max_length,
        save_steps=max(1, sizes.steps // 4),
        eval_steps=max(1, sizes.steps // 2),
        logging_steps=1,
        max_eval_samples=16 if config.tiny else 48,
        resume_from_checkpoint="last",
    )
    train(train_config, settings, progress=True)
    summary = read_adapter_meta(adapter_dir).summary
    yield stamp(
        f"    adapter in {adapter_dir} (train loss {summary['train_loss']:.3f}, "
        f"target-token val loss {summary['val_loss_target_tokens']:.3f})"
    )


def _evaluation(
    config: DemoConfig,
    sizes: DemoSizes,
    data_dir: Path,
    runs_dir: Path,
    adapter_dir: Path,
    settings: Settings,
    stamp: Callable[[str], str],
) -> Iterator[str]:
    """Stage 3: the benchmark (fine-tuned, base, scanners, constant) with its summary rows."""
    yield stamp(
        f"3/5 evaluation: fine-tuned (score), base model, Checkov, tfsec, constant; "
        f"{sizes.runs} sampled generate runs on {sizes.generate_limit} files"
    )
    result = run_benchmark(
        BenchmarkConfig(
            runs=sizes.runs,
            runs_dir=runs_dir,
            data_dir=data_dir,
            adapter=adapter_dir,
            generate_limit=sizes.generate_limit,
            n_boot=500 if config.tiny else 2000,
        ),
        settings,
        progress=True,
    )
    for row in result["summary"]["rows"]:
        f1 = row["metrics"]["f1"]
        yield f"    {row['model']:<28} {row['mode']:<9} F1 {f1['mean']:.3f}  runs {len(f1['values'])}"
    yield stamp(f"    run files and summary in {runs_dir}/")


def _scan_examples(examples: Path, demo_adapter: Path, settings: Settings) -> list[str]:
    """Stage 5: `axon scan examples/` with the shipped adapter (what `axon scan` uses), then with
    the demo's own minutes-trained adapter beside it, labelled as such; the lines to print."""
    shipped = SHIPPED_ADAPTER
    judges = [("shipped adapter", shipped)] if (shipped / "adapter_config.json").is_file() else []
    judges.append(("the demo's adapter, trained minutes above, for comparison", demo_adapter))
    lines = []
    for k, (name, adapter) in enumerate(judges):
        predictor = load_predictor(adapter, settings=settings)
        report = scan(ScanOptions(paths=[examples], root=examples, explain=False), predictor)
        insecure = [f.path for f in report.files if f.label == "INSECURE"]
        head = "5/5 axon scan" if k == 0 else "    axon scan"
        lines.append(
            f"{head} {examples} ({name} {adapter}): {len(report.files)} files, "
            f"{len(insecure)} INSECURE (exit code {exit_code(report)}): {', '.join(insecure) or '-'}"
        )
    return lines
