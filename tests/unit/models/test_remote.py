"""RemotePredictor: the local predictor's batches, one task each, results back in input order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from axon_infralinter.errors import ModelError
from axon_infralinter.executor import LocalExecutor
from axon_infralinter.models import remote
from axon_infralinter.models.predict import Predictor

PACKAGE_ADAPTER = remote.PACKAGE_ROOT / "adapters" / "default"


class WordTokenizer:
    """One token per whitespace-separated word; pad id 0."""

    pad_token_id = 0
    eos_token_id = 1

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
        return {"input_ids": [2] * len(text.split())}


class Table(Predictor):
    """A predictor whose forward pass is a table: P(INSECURE) = words / 100; records its calls."""

    calls: list[tuple[str, list[str], int]]

    def score_prompts(
        self, prompts: Any, batch_size: int = 8, progress: bool = False
    ) -> list[float]:
        self.calls.append(("score", list(prompts), batch_size))
        self.tokens_processed += 10 * len(prompts)
        return [len(p.split()) / 100 for p in prompts]

    def generate_prompts(self, prompts: Any, **kwargs: Any) -> list[str]:
        self.calls.append(("generate", list(prompts), kwargs["batch_size"]))
        return [f"INSECURE {len(p.split())}" for p in prompts]


def table() -> Table:
    t = Table(model=None, tokenizer=WordTokenizer(), name="t", max_length=4000)
    t.calls = []
    return t


class Recording:
    """A LocalExecutor that records its tasks."""

    name = "recording"
    workers = 1
    torch_threads = 1

    def __init__(self) -> None:
        self.tasks: list[Any] = []

    def map(self, fn: Any, items: Any, on_done: Any = None) -> list[Any]:
        self.tasks.extend(items)
        return LocalExecutor().map(fn, items, on_done)


@pytest.fixture
def on_workers(monkeypatch: pytest.MonkeyPatch) -> tuple[remote.RemotePredictor, Table, Recording]:
    """A RemotePredictor whose 'workers' are this process, each task given the same Table."""
    worker = table()
    monkeypatch.setattr(remote, "worker_predictor", lambda spec: worker)
    executor = Recording()
    return remote.RemotePredictor.wrap(table(), executor), worker, executor


PROMPTS = ["a b c d e", "a", "a b c", "a b", "a b c d e f g", "a b c d"]


def test_scores_come_back_in_input_order_one_task_per_local_batch(
    on_workers: tuple[remote.RemotePredictor, Table, Recording],
) -> None:
    predictor, worker, executor = on_workers
    assert predictor.model is None  # the caller keeps no model of its own
    scores = predictor.score_prompts(PROMPTS, batch_size=2)
    assert scores == [len(p.split()) / 100 for p in PROMPTS]
    # The batches the local predictor runs: sorted by length, 2 each; one task per batch.
    assert [c[1] for c in worker.calls] == [
        ["a", "a b"],
        ["a b c", "a b c d"],
        ["a b c d e", "a b c d e f g"],
    ]
    assert all(c[2] == 2 for c in worker.calls) and len(executor.tasks) == 3
    assert predictor.tokens_processed == 10 * len(PROMPTS)  # the workers' counts come back


def test_greedy_generation_is_one_task_per_batch_sampling_one_task(
    on_workers: tuple[remote.RemotePredictor, Table, Recording],
) -> None:
    predictor, worker, executor = on_workers
    out = predictor.generate_prompts(PROMPTS, batch_size=4, max_new_tokens=0)
    assert out == [f"INSECURE {len(p.split())}" for p in PROMPTS]
    assert len(executor.tasks) == 2
    executor.tasks.clear()
    worker.calls.clear()
    assert predictor.generate_prompts(PROMPTS, do_sample=True, seed=3, batch_size=2) == out
    # One random stream, as on one machine: all prompts in one task, in their order.
    assert len(executor.tasks) == 1 and worker.calls == [("generate", PROMPTS, 2)]


def test_documents_are_judged_by_their_worst_block_on_the_workers(
    on_workers: tuple[remote.RemotePredictor, Table, Recording],
) -> None:
    from axon_infralinter.data.prompt import build_prompt

    predictor, _, _ = on_workers
    local = table()
    prompts = [build_prompt('resource "a" "b" {\n  x = 1\n}\n'), build_prompt("locals {\n}\n")]
    assert predictor.score_documents(prompts) == local.score_documents(prompts)


def test_map_batches_runs_here_without_an_executor() -> None:
    predictor = table()
    seen: list[int] = []
    done = remote.map_batches(
        predictor,
        lambda p, item: p.score_prompts(item),
        [["a b"], ["a", "b c d"]],
        lambda j, _: seen.append(j),
    )
    assert [d.value for d in done] == [[0.02], [0.01, 0.03]]
    assert [d.tokens for d in done] == [10, 20] and all(d.seconds >= 0 for d in done)
    assert seen == [0, 1]


def test_the_shipped_adapter_is_named_inside_the_package(tmp_path: Path) -> None:
    inside = Predictor(model=None, tokenizer=None, name="x", adapter=PACKAGE_ADAPTER)
    spec = remote.predictor_spec(inside, None, torch_threads=3)
    assert spec.adapter == "package:adapters/default"
    assert spec.adapter_path() == PACKAGE_ADAPTER
    assert spec.adapter_sha256 is not None and len(spec.adapter_sha256) == 64
    assert (spec.max_length, spec.torch_threads, spec.keep_comments) == (1024, 3, False)
    outside = Predictor(model=None, tokenizer=None, name="x", adapter=tmp_path)
    assert remote.predictor_spec(outside, "embedded:smollm2", 1).adapter == str(tmp_path.resolve())
    assert (
        remote.predictor_spec(Predictor(model=None, tokenizer=None, name="b"), None, 1).adapter
        is None
    )


def test_a_worker_refuses_an_adapter_that_is_not_the_callers(tmp_path: Path) -> None:
    spec = remote.PredictorSpec(
        adapter=str(tmp_path), adapter_sha256="0" * 64, base_model=None, keep_comments=False,
        max_length=512, torch_threads=1,
    )  # fmt: skip
    with pytest.raises(ModelError, match="same adapter at the same path on every node"):
        remote.worker_predictor(spec)
