"""What every bench section shares: sizes, the context, the section result and small helpers.

Holds `Sizes` (how much work each section does) and `QUICK` (the --quick sizes), `Context` (what
the sections share, one loaded predictor included), `Section` (one section's outcome), the table
and verdict printers, the deterministic samples of the corpus and of the data set, the timed
scanner run, the matmul peak and linear-layer size that the train and predict sections measure
against, and the machine description written into the results.

Package imports that load heavy libraries (hcl2, torch, the scanners, the model) stay inside the
functions that need them, so that `bench/run.py --help` is quick and a section whose imports fail
crashes alone.
"""

from __future__ import annotations

import os
import platform
import re
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from axon_infralinter.errors import InputError
from axon_infralinter.files import read_jsonl
from axon_infralinter.settings import Settings
from axon_infralinter.terraform.lexer import strip_comments

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Sizes:
    """How much work each section does."""

    scanner_batch_files: int = 200
    """Corpus files labelled the batch way (scan_texts, batch_size 100, 1 worker and the pipeline's
    default workers)."""
    scanner_single_files: int = 20
    """Of those, files labelled one process per file (every k-th of the batch sample)."""
    scanner_batch_size: int = 100
    """Files per scanner process in the batch way."""
    train_records: int = 32
    """Records of data/train.jsonl both training recipes see (every k-th line)."""
    train_steps: int = 4
    """Optimizer steps per recipe."""
    train_accum: int = 8
    """Gradient accumulation (batch 1 x this examples per step)."""
    seed_max_length: int = 1024
    """The seed's padded length (max_length padding)."""
    matmul_n: int = 2048
    """Side of the square matrices of the matmul peak measurement."""
    matmul_seconds: float = 3.0
    """How long each matmul peak is measured, in seconds."""
    predict_files: int = 20
    """Test files timed in score and generate mode."""
    max_new_tokens: int = 50
    """Generate mode's new-token budget (greedy)."""
    predict_rounds: int = 2
    """Score / generate timings, interleaved; each mode's time is summed over the rounds."""
    scan_files: int = 50
    """Corpus files given to `axon scan`."""
    context_repo: str = "terraform-aws-modules__terraform-aws-eks"
    """Corpus folder scanned whole with and without judging context-only chunks (a module
    repository: variables.tf, outputs.tf and versions.tf beside the resources)."""
    context_files: int = 60
    """At most this many of its .tf files (sorted by path)."""
    injection_files: int = 50
    """INSECURE test files given the injected comment."""
    mutate_sources: int = 30
    """Test-split source blocks the mutation stage is timed on (cold scanner cache)."""


QUICK = Sizes(
    scanner_batch_files=6,
    scanner_single_files=2,
    train_records=2,
    train_steps=2,
    train_accum=1,
    matmul_n=512,
    matmul_seconds=0.5,
    predict_files=2,
    max_new_tokens=8,
    predict_rounds=1,
    scan_files=3,
    context_files=4,
    injection_files=4,
    mutate_sources=2,
)


@dataclass
class Context:
    """What the sections share: sizes, settings, data paths and one loaded predictor."""

    sizes: Sizes
    settings: Settings
    data_dir: Path
    predictor: Any = None
    model_note: str = ""
    corpus_cache: dict[int, list[tuple[str, Path, str]]] = field(default_factory=dict)


@dataclass
class Section:
    """One section's outcome: figures for the JSON, rows for the summary table."""

    figures: dict[str, Any]
    summary: list[tuple[str, str, str, str]]
    """(figure, value, target, verdict) rows."""


# --------------------------------------------------------------------------------------------
# Printing and figures


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a plain aligned table."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            print("  " + "  ".join("-" * w for w in widths))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def verdict(value: float | None, target: float, higher_is_better: bool = True) -> str:
    """ "met", "missed", or "n/a" when the value is undefined."""
    if value is None or value != value:
        return "n/a"
    ok = value >= target if higher_is_better else value <= target
    return "met" if ok else "missed"


def ratio(a: float, b: float) -> float | None:
    """a / b, None when b is 0."""
    return a / b if b else None


def fmt_x(value: float | None) -> str:
    """A ratio as `12.3x`."""
    return "n/a" if value is None else f"{value:.1f}x"


# --------------------------------------------------------------------------------------------
# Samples of the corpus and of the data set


def every_kth(items: Sequence[Any], n: int) -> list[Any]:
    """n items spread evenly over `items` (deterministic: every k-th from the first)."""
    if n >= len(items):
        return list(items)
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


def _resource_text(path: Path) -> str | None:
    """The data set's text of a corpus file (comments stripped) when it parses and declares a
    resource; None otherwise."""
    import hcl2

    try:
        raw = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    text = strip_comments(raw.removeprefix("\ufeff"))
    if not re.search(r'^\s*resource\s+"', text, re.MULTILINE):
        return None
    try:
        parsed = hcl2.loads(text if text.endswith("\n") else text + "\n")
    except Exception:  # the parser raises many lark and Python error types
        return None
    return text if isinstance(parsed, dict) and parsed.get("resource") else None


def corpus_sample(ctx: Context, n: int) -> list[tuple[str, Path, str]]:
    """n corpus files that parse and declare a resource: (relative path, path, stripped text).

    Deterministic: the sorted file list is cut into n equal windows and the first qualifying file
    of each window is taken; short windows are made up from the remaining qualifying files.
    """
    if n in ctx.corpus_cache:
        return ctx.corpus_cache[n]
    from axon_infralinter.data.corpus import find_terraform_files

    corpus = ctx.settings.corpus
    if corpus is None or not corpus.is_dir():
        raise InputError(
            "no corpus: set AXON_CORPUS or place the shared corpus beside the checkout"
        )
    files, _ = find_terraform_files(corpus)
    step = max(1, len(files) // n)
    picked: list[tuple[str, Path, str]] = []
    taken: set[int] = set()
    for start in range(0, len(files), step):
        for i in range(start, min(start + step, len(files))):
            text = _resource_text(files[i].path)
            if text is not None:
                picked.append((files[i].rel, files[i].path, text))
                taken.add(i)
                break
        if len(picked) == n:
            break
    for i, tf in enumerate(files):
        if len(picked) >= n:
            break
        if i not in taken and (text := _resource_text(tf.path)) is not None:
            picked.append((tf.rel, tf.path, text))
    if len(picked) < n:
        raise InputError(f"the corpus at {corpus} has only {len(picked)} usable files, need {n}")
    ctx.corpus_cache[n] = picked
    return picked


def split_records(ctx: Context, split: str) -> list[dict[str, Any]]:
    """Records of data/<split>.jsonl."""
    path = ctx.data_dir / f"{split}.jsonl"
    if not path.is_file():
        raise InputError(f"no {path}: run `axon dataset build` first")
    return read_jsonl(path)


# --------------------------------------------------------------------------------------------
# The predictor, the scanners and the machine


def get_predictor(ctx: Context) -> Any:
    """The trained adapter when there is one, else the base model; loaded once."""
    if ctx.predictor is None:
        from axon_infralinter.models.predict import find_default_adapter, load_predictor

        adapter = find_default_adapter()
        ctx.predictor = load_predictor(adapter, settings=ctx.settings)
        if adapter is None:
            ctx.model_note = "no trained adapter found: BASE MODEL, zero-shot"
        else:
            ctx.model_note = f"adapter {adapter}"
        ctx.model_note += f" (threshold {ctx.predictor.threshold:.3f})"
    return ctx.predictor


def timed_scan(
    items: list[tuple[str, str]], tool: str, batch_size: int, workers: int = 1
) -> tuple[float, list[Any]]:
    """Seconds and rows of scan_texts with one tool on a fresh, temporary cache."""
    from axon_infralinter.data.scanner import ScanConfig, scan_texts, tool_version

    tool_version(tool)  # paid once per run, not per batch: keep it out of the timing
    with tempfile.TemporaryDirectory(prefix="axon-bench-cache-") as cache:
        config = ScanConfig(
            cache_dir=Path(cache), workers=workers, batch_size=batch_size, tools=(tool,)
        )  # type: ignore[arg-type]
        started = time.perf_counter()
        rows = scan_texts(items, config, progress=False)
        return time.perf_counter() - started, rows


def matmul_peak_gflops(n: int, dtype: Any, seconds: float) -> float:
    """Measured GFLOP/s of repeated n x n matmuls in `dtype` (2 n^3 FLOPs each)."""
    import torch

    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    for _ in range(2):
        torch.matmul(a, b)
    count, started = 0, time.perf_counter()
    while True:
        torch.matmul(a, b)
        count += 1
        elapsed = time.perf_counter() - started
        if elapsed >= seconds and count >= 3:
            break
    return 2 * n**3 * count / elapsed / 1e9


def linear_params(model: Any) -> int:
    """Weights a forward pass multiplies per token in its linear layers, LM head excluded.

    Score mode reads two rows of the head only; embeddings are a lookup. LoRA A/B matrices count
    when present (unfolded adapters run them).
    """
    import torch

    return sum(
        m.weight.numel()
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.Linear) and not name.endswith("lm_head")
    )


def machine_info() -> dict[str, Any]:
    """What the figures were measured on."""
    import torch

    from axon_infralinter.models.base_model import cpu_supports_bf16, cuda_available

    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_bf16": cpu_supports_bf16(),
        "cuda": cuda_available(),
        "load_avg_at_start": os.getloadavg(),
    }
