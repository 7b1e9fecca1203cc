"""Trainer-style and per-token target loss of an adapter on val samples of a chosen INSECURE mix.

usage: .venv/bin/python docs/results/split_v2/val_loss_mix.py ADAPTER VAL_JSONL TRAIN_JSONL N_INSECURE N_TOTAL
N_INSECURE < 0: the Trainer's own sample (N_TOTAL evenly spaced rows).
"""

import json
import sys

from peft import PeftModel

import axon_infralinter.models.loss_parts as lp
from axon_infralinter.models.base_model import EMBEDDED_SMOLLM2, load_base_model
from axon_infralinter.settings import load_settings

adapter, val_path, train_path, k, n = (
    sys.argv[1],
    sys.argv[2],
    sys.argv[3],
    int(sys.argv[4]),
    int(sys.argv[5]),
)
rows = [json.loads(line) for line in open(val_path)]


def spaced(xs, m):
    step = len(xs) / m
    return [xs[int(i * step)] for i in range(m)] if len(xs) > m else xs


if k < 0:
    sample = spaced(rows, n)
else:
    ins = [i for i, r in enumerate(rows) if r["target_text"].startswith("INSECURE")]
    sec = [i for i, r in enumerate(rows) if not r["target_text"].startswith("INSECURE")]
    sample = [rows[i] for i in sorted(spaced(ins, k) + spaced(sec, n - k))]
known = {
    rule
    for line in open(train_path)
    for rule in lp.finding_rule_ids(json.loads(line)["target_text"])
}
model, tok = load_base_model(EMBEDDED_SMOLLM2, load_settings())
model = PeftModel.from_pretrained(model, adapter)
captured = {}
orig = lp.summarize_parts
lp.summarize_parts = lambda per: captured.setdefault("rows", per) and orig(per)
summary = lp.target_loss_by_part(model, tok, sample, 512, known_rule_ids=known)
per = captured["rows"]
batches = [per[i : i + 4] for i in range(0, len(per), 4)]
trainer = sum(
    sum(sum(losses) for _, losses in b) / max(sum(len(losses) for _, losses in b), 1)
    for b in batches
) / len(batches)
out = {
    "adapter": adapter,
    "val": val_path,
    "examples": len(sample),
    "insecure": sum(r["target_text"].startswith("INSECURE") for r in sample),
    "trainer_style_mean_of_batch_means": trainer,
    **summary,
}
print(json.dumps(out, indent=1))  # noqa: T201
