"""The model on an executor's workers: each worker process loads the base model and adapter once.

`axon evaluate` and `axon scan` on `--engine dask` hand their scoring to the workers of a cluster:

- `PredictorSpec` says what a worker needs to load the caller's predictor: the adapter (by path,
  or inside the installed package for the shipped one), its weights' sha256, the base model, the
  prompt budget, and the torch threads a task may use there.
- `worker_predictor` is the one per-process cache: the first task of a spec loads the model in that
  worker (~2 s once the dequantized base model is in the worker's `AXON_HOME`); later tasks
  reuse it.
- `RemotePredictor` is a `Predictor` whose `score_prompts` and `generate_prompts` run on the
  executor: the prompts are cut into the very batches the local predictor would run (sorted by
  length, `batch_size` each), one task per batch, so a score is the same computation on either
  engine (equal to float tolerance: the thread count changes the order of float sums).
- `map_batches` runs a task per item with the predictor: on the workers of a `RemotePredictor`,
  else here, one after another (`models.evaluate` uses it for its batches of records).
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from tqdm import tqdm

from axon_infralinter.errors import ModelError
from axon_infralinter.executor import Executor
from axon_infralinter.files import sha256_file
from axon_infralinter.models.predict import Predictor, load_predictor
from axon_infralinter.models.tokens import prompt_ids

T = TypeVar("T")
R = TypeVar("R")

#: The installed package: the shipped adapter is named relative to it, so that every node finds
#: its own copy whatever its install path.
PACKAGE_ROOT = Path(__file__).resolve().parents[1]
PACKAGE_PREFIX = "package:"
WEIGHTS = "adapter_model.safetensors"


@dataclass(frozen=True)
class PredictorSpec:
    """What a worker loads: the same model, adapter and prompt budget as the caller's predictor."""

    adapter: str | None
    """Adapter folder (the same path on every node), `package:<folder>` for one inside the
    installed package, or None for the base model alone."""
    adapter_sha256: str | None
    """sha256 of the adapter's weights; a worker whose copy differs refuses to score."""
    base_model: str | None
    """Base model id or folder; None: the adapter's own, else the embedded SmolLM2."""
    keep_comments: bool
    """Judge code with its comments."""
    max_length: int
    """Prompt token budget (the caller's, so truncation is the same)."""
    torch_threads: int
    """torch intra-op threads of a task on the worker."""

    def adapter_path(self) -> Path | None:
        """The adapter folder on this node."""
        if self.adapter is None:
            return None
        if self.adapter.startswith(PACKAGE_PREFIX):
            return PACKAGE_ROOT / self.adapter.removeprefix(PACKAGE_PREFIX)
        return Path(self.adapter)


def predictor_spec(
    predictor: Predictor, base_model: str | None, torch_threads: int
) -> PredictorSpec:
    """The spec of a loaded predictor (`base_model`: the one it was loaded with, None: default)."""
    adapter: str | None = None
    sha: str | None = None
    if predictor.adapter is not None:
        folder = Path(predictor.adapter).resolve()
        inside = folder.is_relative_to(PACKAGE_ROOT)
        adapter = (
            f"{PACKAGE_PREFIX}{folder.relative_to(PACKAGE_ROOT).as_posix()}"
            if inside
            else str(folder)
        )
        weights = folder / WEIGHTS
        sha = sha256_file(weights) if weights.is_file() else None
    return PredictorSpec(
        adapter=adapter,
        adapter_sha256=sha,
        base_model=base_model,
        keep_comments=predictor.keep_comments,
        max_length=predictor.max_length,
        torch_threads=torch_threads,
    )


_LOADED: dict[PredictorSpec, Predictor] = {}
_LOCK = threading.Lock()


def worker_predictor(spec: PredictorSpec) -> Predictor:
    """This process's predictor for `spec`: loaded by the first task, reused by the rest.

    One spec is kept at a time (a worker holds one model). The torch thread count is set on
    every call: it is per process, and `load_predictor` sets it to every core.

    Raises:
        ModelError: the adapter is missing on this node, or its weights differ from the caller's.
    """
    with _LOCK:
        predictor = _LOADED.get(spec)
        if predictor is None:
            _LOADED.clear()
            adapter = spec.adapter_path()
            if adapter is not None and spec.adapter_sha256 is not None:
                weights = adapter / WEIGHTS
                found = sha256_file(weights) if weights.is_file() else None
                if found != spec.adapter_sha256:
                    what = "missing" if found is None else "another one (its sha256 differs)"
                    raise ModelError(
                        f"adapter {adapter} on this worker is {what}: put the same adapter at the "
                        "same path on every node"
                    )
            predictor = load_predictor(
                adapter,
                base_model=spec.base_model,
                keep_comments=spec.keep_comments,
                max_length=spec.max_length,
            )
            _LOADED[spec] = predictor
        import torch

        torch.set_num_threads(spec.torch_threads)
        return predictor


@dataclass(frozen=True)
class Timed(Generic[R]):
    """A task's result, the seconds it took and the model tokens it processed."""

    value: R
    seconds: float
    tokens: int


def run_on_worker(spec: PredictorSpec, task: Callable[[Predictor, T], R], item: T) -> Timed[R]:
    """`task(worker_predictor(spec), item)`, timed where it runs (the executor's task)."""
    predictor = worker_predictor(spec)
    before = predictor.tokens_processed
    started = time.perf_counter()
    value = task(predictor, item)
    return Timed(value, time.perf_counter() - started, predictor.tokens_processed - before)


@dataclass(kw_only=True)
class RemotePredictor(Predictor):
    """A predictor whose forward passes run on an executor's workers (`--engine dask`).

    Holds the tokenizer (to plan chunks and cut batches) but no model: `model` is None here.
    """

    executor: Executor
    """Where the tasks run."""
    spec: PredictorSpec
    """What each worker loads."""

    @classmethod
    def wrap(
        cls, predictor: Predictor, executor: Executor, base_model: str | None = None
    ) -> RemotePredictor:
        """The remote twin of a loaded predictor; the model stays with the workers, not here."""
        spec = predictor_spec(predictor, base_model, executor.torch_threads)
        fields = {f.name: getattr(predictor, f.name) for f in dataclasses.fields(Predictor)}
        fields.update(model=None, stats=dict(predictor.stats))
        return cls(**fields, executor=executor, spec=spec)

    @staticmethod
    def _batches(ids: Sequence[list[int]], batch_size: int) -> list[list[int]]:
        """Indexes of the batches the local predictor runs on `ids`: by length, `batch_size` each."""
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        return [order[s : s + batch_size] for s in range(0, len(order), batch_size)]

    def _run(
        self,
        task: Callable[[Predictor, list[str]], list[R]],
        prompts: Sequence[str],
        groups: list[list[int]],
        desc: str,
        progress: bool,
    ) -> list[R]:
        """Run `task` on the prompts of each group on the workers; results in prompt order."""
        bar = tqdm(total=len(prompts), desc=desc, unit="file", disable=not progress, leave=False)
        items = [[prompts[i] for i in group] for group in groups]
        done = map_batches(self, task, items, lambda j, _: bar.update(len(groups[j])))
        bar.close()
        out: list[Any] = [None] * len(prompts)
        for group, result in zip(groups, done, strict=True):
            if len(result.value) != len(group):
                raise RuntimeError(
                    f"a worker returned {len(result.value)} results for {len(group)}"
                )
            for i, value in zip(group, result.value, strict=True):
                out[i] = value
        return out

    def score_prompts(
        self, prompts: Sequence[str], batch_size: int = 8, progress: bool = False
    ) -> list[float]:
        """P(INSECURE) of each prompt, one task per length-sorted batch; see `Predictor`."""
        started = time.perf_counter()
        # Tokenized as `Predictor.score_prompts` does, so the batches are the local ones.
        ids = [prompt_ids(p, self.tokenizer, self.max_length) for p in prompts]
        groups = self._batches(ids, batch_size)
        scores = self._run(
            functools.partial(_score_batch, batch_size),
            prompts,
            groups,
            f"scoring ({self.name}, dask)",
            progress,
        )
        self.stats["score_seconds"] = (
            self.stats.get("score_seconds", 0.0) + time.perf_counter() - started
        )
        return [float(s) for s in scores]

    def generate_prompts(
        self,
        prompts: Sequence[str],
        max_new_tokens: int = 50,
        do_sample: bool = False,
        temperature: float = 0.7,
        seed: int | None = None,
        batch_size: int = 4,
        progress: bool = False,
    ) -> list[str]:
        """Generated answers, one task per batch (greedy); sampled ones in one task, one seed."""
        options = _Generate(max_new_tokens, do_sample, temperature, seed, batch_size)
        if do_sample:  # one random stream over all batches, as here: keep them in one task
            groups = [list(range(len(prompts)))] if prompts else []
        else:
            reserve = max_new_tokens
            ids = [prompt_ids(p, self.tokenizer, self.max_length, reserve=reserve) for p in prompts]
            groups = self._batches(ids, batch_size)
        task = functools.partial(_generate_batch, options)
        return [
            str(s)
            for s in self._run(task, prompts, groups, f"generating ({self.name}, dask)", progress)
        ]


def map_batches(
    predictor: Predictor,
    task: Callable[[Predictor, T], R],
    items: Sequence[T],
    on_done: Callable[[int, Timed[R]], None] | None = None,
) -> list[Timed[R]]:
    """`task(predictor, item)` for every item, timed, results in order.

    On a `RemotePredictor` each item is a task on its executor's workers (with the worker's own
    predictor); on any other predictor the items run here, one after another.
    """
    if isinstance(predictor, RemotePredictor):
        before = predictor.tokens_processed
        done = predictor.executor.map(
            functools.partial(run_on_worker, predictor.spec, task), items, on_done
        )
        predictor.tokens_processed = before + sum(d.tokens for d in done)
        return done
    out: list[Timed[R]] = []
    for j, item in enumerate(items):
        before = predictor.tokens_processed
        started = time.perf_counter()
        value = task(predictor, item)
        out.append(Timed(value, time.perf_counter() - started, predictor.tokens_processed - before))
        if on_done is not None:
            on_done(j, out[-1])
    return out


@dataclass(frozen=True)
class _Generate:
    """Decoding options of one `generate_prompts` call."""

    max_new_tokens: int
    do_sample: bool
    temperature: float
    seed: int | None
    batch_size: int


def _score_batch(batch_size: int, predictor: Predictor, prompts: list[str]) -> list[float]:
    return predictor.score_prompts(prompts, batch_size=batch_size)


def _generate_batch(options: _Generate, predictor: Predictor, prompts: list[str]) -> list[str]:
    return predictor.generate_prompts(
        prompts,
        max_new_tokens=options.max_new_tokens,
        do_sample=options.do_sample,
        temperature=options.temperature,
        seed=options.seed,
        batch_size=options.batch_size,
    )
