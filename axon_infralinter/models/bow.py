"""`tfidf-logreg`: the bag-of-words baseline that every claim about the model is made beside.

What a user would try first, and what the fine-tuned model must beat: scikit-learn's
`TfidfVectorizer` over code tokens (identifiers, numbers, single punctuation marks; unigrams and
bigrams, sublinear term frequency) feeding a `LogisticRegression`. It reads the same comment-
stripped code the model reads (the code inside each record's `input_text`), is trained on the
training split of the data set being evaluated, picks its regularisation C by validation ROC-AUC
and its decision threshold by validation F1 (`threshold.best_threshold`, as the adapter's
threshold is tuned). Training takes seconds on 2 CPU cores.

The fitted pipeline and what it was fitted on are stored beside the run files
(`<runs_dir>/tfidf-logreg/`: `model.pkl` + `model.json`); a later evaluation on the same
training and validation records reuses it, a rebuilt data set refits it.
"""

from __future__ import annotations

import pickle  # noqa: S403 - our own model file, written below, under the user's runs folder
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from axon_infralinter.data.prompt import split_prompt
from axon_infralinter.files import atomic_write_bytes, atomic_write_json, sha256_text
from axon_infralinter.models.threshold import best_threshold
from axon_infralinter.schema import label_to_int, read_json_object

TFIDF_MODEL = "tfidf-logreg"
CODE_PATTERN = r"[A-Za-z_][A-Za-z0-9_]*|\d+|[^\sA-Za-z0-9_]"
"""Code tokens: identifiers (`aws_s3_bucket`, `acl`), numbers, and each punctuation mark."""
C_GRID = (0.1, 0.3, 1.0, 3.0, 10.0)
"""Inverse regularisation strengths tried; the best validation ROC-AUC wins (ties: smaller C)."""
FORMAT_VERSION = 1
"""Bump when the features or the model change: stored models of another version are refitted."""


@dataclass
class TfidfBaseline:
    """A fitted bag-of-words classifier with its validation-tuned threshold."""

    pipeline: Any
    """scikit-learn Pipeline: TfidfVectorizer -> LogisticRegression."""
    threshold: float
    """P(INSECURE) at or above which a file is INSECURE (max F1 on validation)."""
    info: dict[str, Any]
    """What it was fitted on and with: data hashes, C, validation ROC-AUC and F1, vocabulary."""

    def scores(self, codes: Sequence[str]) -> list[float]:
        """P(INSECURE) of each piece of code."""
        if not codes:
            return []
        return [float(p) for p in self.pipeline.predict_proba(list(codes))[:, 1]]


def code_of(record: dict[str, Any]) -> str:
    """The Terraform code a record's prompt holds (what the model and the scanners read)."""
    return split_prompt(str(record["input_text"]))[1]


def _data_key(records: Sequence[dict[str, Any]]) -> str:
    return sha256_text("\n".join(f"{r['label']}\t{code_of(r)}" for r in records))


def _pipeline(c: float) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(
        TfidfVectorizer(
            token_pattern=CODE_PATTERN,
            lowercase=False,
            ngram_range=(1, 2),
            min_df=2,
            sublinear_tf=True,
        ),
        LogisticRegression(C=c, max_iter=5000, solver="liblinear"),
    )


def fit_tfidf(
    train_records: Sequence[dict[str, Any]], val_records: Sequence[dict[str, Any]]
) -> TfidfBaseline:
    """Fit on the training records; choose C and the threshold on the validation records.

    Raises:
        ValueError: a split holds one class only (nothing to learn or to tune on).
    """
    from sklearn.metrics import roc_auc_score

    x_train, y_train = (
        [code_of(r) for r in train_records],
        [label_to_int(r["label"]) for r in train_records],
    )
    x_val, y_val = (
        [code_of(r) for r in val_records],
        [label_to_int(r["label"]) for r in val_records],
    )
    if len(set(y_train)) < 2 or len(set(y_val)) < 2:
        raise ValueError("tfidf-logreg needs both labels in the training and validation splits")
    best: tuple[float, float, Any] | None = None
    for c in C_GRID:
        pipeline = _pipeline(c).fit(x_train, y_train)
        auc = float(roc_auc_score(y_val, pipeline.predict_proba(x_val)[:, 1]))
        if best is None or auc > best[0]:
            best = (auc, c, pipeline)
    assert best is not None
    auc, c, pipeline = best
    val_scores = [float(p) for p in pipeline.predict_proba(x_val)[:, 1]]
    threshold, f1 = best_threshold(y_val, val_scores)
    info = {
        "format_version": FORMAT_VERSION,
        "train_key": _data_key(train_records),
        "val_key": _data_key(val_records),
        "train_examples": len(train_records),
        "val_examples": len(val_records),
        "C": c,
        "val_roc_auc": round(auc, 4),
        "val_f1": round(f1, 4),
        "threshold": threshold,
        "vocabulary": len(pipeline[0].vocabulary_),
        "token_pattern": CODE_PATTERN,
        "ngram_range": [1, 2],
    }
    return TfidfBaseline(pipeline=pipeline, threshold=threshold, info=info)


def load_or_fit(
    folder: Path, train_records: Sequence[dict[str, Any]], val_records: Sequence[dict[str, Any]]
) -> TfidfBaseline:
    """The stored model in `folder` when it was fitted on these records, else a new fit (stored)."""
    meta_path, model_path = folder / "model.json", folder / "model.pkl"
    if meta_path.is_file() and model_path.is_file():
        info = read_json_object(meta_path)
        same = (
            info.get("format_version") == FORMAT_VERSION
            and info.get("train_key") == _data_key(train_records)
            and info.get("val_key") == _data_key(val_records)
        )
        if same:
            pipeline = pickle.loads(model_path.read_bytes())  # noqa: S301 - written by fit below
            return TfidfBaseline(pipeline=pipeline, threshold=float(info["threshold"]), info=info)
    model = fit_tfidf(train_records, val_records)
    atomic_write_bytes(model_path, pickle.dumps(model.pipeline))
    atomic_write_json(meta_path, model.info)
    return model
