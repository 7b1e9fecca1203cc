"""The decision threshold on P(INSECURE): tuned on the validation split, saved beside the adapter.

`tune_threshold` scores every validation file the way `axon scan` judges it (worst block), picks
the threshold that maximizes F1 (`best_threshold`) and writes `threshold.json`, which
`predict.load_predictor` reads back (through `schema.read_adapter_meta`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from axon_infralinter.files import atomic_write_json
from axon_infralinter.models.predict import (
    DEFAULT_MAX_LENGTH,
    DEFAULT_THRESHOLD,
    Predictor,
    load_predictor,
)
from axon_infralinter.schema import THRESHOLD_JSON, read_adapter_meta, read_records
from axon_infralinter.settings import Settings


def best_threshold(y_true: Sequence[int], scores: Sequence[float]) -> tuple[float, float]:
    """Threshold on P(INSECURE) that maximizes F1 (ties: the higher threshold); returns (t, f1)."""
    from sklearn.metrics import precision_recall_curve

    if len(set(y_true)) < 2:
        return DEFAULT_THRESHOLD, float("nan")  # undefined: one class only
    precision, recall, thresholds = precision_recall_curve(list(y_true), list(scores))
    best_t, best_f1 = DEFAULT_THRESHOLD, -1.0
    for p, r, t in zip(precision[:-1], recall[:-1], thresholds, strict=True):
        f1 = 0.0 if p + r == 0 else 2 * p * r / (p + r)
        if f1 >= best_f1:
            best_t, best_f1 = float(t), f1
    return best_t, best_f1


def tune_threshold(
    adapter_dir: Path,
    val_path: Path,
    settings: Settings,
    model: Any = None,
    tokenizer: Any = None,
    batch_size: int = 8,
) -> dict[str, Any]:
    """Score the validation split, pick the F1-maximizing threshold, save threshold.json."""
    records = read_records(val_path, ("id", "label", "input_text"))
    if model is not None:
        predictor = Predictor(model=model, tokenizer=tokenizer, name=adapter_dir.name)
        model.eval()
    else:
        predictor = load_predictor(adapter_dir, settings=settings)
    predictor.max_length = read_adapter_meta(adapter_dir).max_length or DEFAULT_MAX_LENGTH
    scores = predictor.score_documents(
        [r["input_text"] for r in records], batch_size=batch_size, progress=True
    )
    y_true = [1 if r["label"] == "INSECURE" else 0 for r in records]
    threshold, f1 = best_threshold(y_true, scores)
    result = {
        "threshold": threshold,
        "val_f1": None if f1 != f1 else round(f1, 4),
        "n": len(records),
        "criterion": "max F1 on val files (file score = worst block, as axon scan judges)",
        "val_scores": {r["id"]: s for r, s in zip(records, scores, strict=True)},
    }
    atomic_write_json(adapter_dir / THRESHOLD_JSON, result)
    return result
