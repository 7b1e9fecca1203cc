"""Training with the real SmolLM2: artifacts, changed weights, overfit, resume, reload, DDP."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from axon_infralinter.data.prompt import build_prompt, build_target
from axon_infralinter.files import write_jsonl
from axon_infralinter.models.base_model import EMBEDDED_SMOLLM2, load_tokenizer
from axon_infralinter.models.predict import load_predictor
from axon_infralinter.models.tokens import tokenize_example
from axon_infralinter.models.train_lora import resolve_config, train
from axon_infralinter.settings import load_settings

INSECURE_SG = """resource "aws_security_group" "ssh" {
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}"""
INSECURE_BUCKET = """resource "google_storage_bucket_iam_member" "public" {
  bucket = "data"
  role   = "roles/storage.objectViewer"
  member = "allUsers"
}"""
SECURE_KEY = """resource "aws_kms_key" "main" {
  description         = "app key"
  enable_key_rotation = true
}"""
SECURE_VAR = """resource "aws_ssm_parameter" "name" {
  name  = "/app/name"
  type  = "String"
  value = "demo"
}"""


def _record(i: int, code: str, label: str) -> dict:
    finding = {
        "tool": "tfsec",
        "rule_id": "AWS-0107",
        "severity": "HIGH",
        "resource": "aws_security_group.ssh",
        "path": "x.tf",
        "start_line": 1,
        "end_line": 7,
        "title": "Open ingress",
    }
    return {
        "id": f"fixture/{i}::main.tf",
        "repo": f"fixture/{i}",
        "path": "main.tf",
        "sha256": str(i),
        "label": label,
        "input_text": build_prompt(code),
        "target_text": build_target(label, [finding] if label == "INSECURE" else [], "titles"),
        "findings": [],
    }


@pytest.fixture(scope="module")
def records_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("records")
    recs = [
        _record(0, INSECURE_SG, "INSECURE"),
        _record(1, SECURE_KEY, "SECURE"),
        _record(2, INSECURE_BUCKET, "INSECURE"),
        _record(3, SECURE_VAR, "SECURE"),
    ]
    for split in ("train", "val", "test"):
        write_jsonl(folder / f"{split}.jsonl", recs)
    return folder


def _config(records_dir: Path, out: Path, **kw: object):  # type: ignore[no-untyped-def]
    base = dict(
        data_dir=records_dir,
        output_dir=out / "adapter",
        checkpoint_dir=out / "ckpt",
        max_length=256,
        gradient_accumulation_steps=1,
        logging_steps=1,
        eval_steps=2,
        save_steps=2,
        max_eval_samples=None,
    )
    base.update(kw)
    return resolve_config("smollm2-cpu", **base)


def test_label_mask_on_real_tokenizer() -> None:
    tokenizer = load_tokenizer(EMBEDDED_SMOLLM2, load_settings())
    prompt = build_prompt(INSECURE_SG)
    row = tokenize_example(
        prompt, "INSECURE\n- AWS-0107: Open ingress (aws_security_group.ssh)", tokenizer, 1024
    )
    target = [t for t in row["labels"] if t != -100]
    n_masked = row["labels"].index(target[0])
    assert all(t == -100 for t in row["labels"][:n_masked])
    assert (
        tokenizer.decode(target[:-1])
        == "INSECURE\n- AWS-0107: Open ingress (aws_security_group.ssh)"
    )
    assert target[-1] == tokenizer.eos_token_id
    # Dynamic padding in the collator pads labels with -100 as well.
    from transformers import DataCollatorForSeq2Seq

    short = tokenize_example(build_prompt(SECURE_KEY), "SECURE", tokenizer, 1024)
    batch = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)([row, short])
    pad_positions = batch["attention_mask"][1] == 0
    assert pad_positions.any() and (batch["labels"][1][pad_positions] == -100).all()


def test_few_steps_write_artifacts_and_change_weights(records_dir: Path, tmp_path: Path) -> None:
    adapter = train(_config(records_dir, tmp_path, max_steps=3), load_settings(), progress=False)
    names = {p.name for p in adapter.iterdir()}
    assert {
        "adapter_model.safetensors",
        "adapter_config.json",
        "train_config.json",
        "training_log.jsonl",
        "threshold.json",
        "README.md",
        "tokenizer.json",
    } <= names
    weights = load_file(adapter / "adapter_model.safetensors")
    lora_b = [v for k, v in weights.items() if "lora_B" in k]
    assert lora_b and any(float(v.abs().max()) > 0 for v in lora_b)  # B starts at zero: it moved
    log = [json.loads(line) for line in (adapter / "training_log.jsonl").read_text().splitlines()]
    assert any("loss" in row for row in log) and any("val_loss" in row for row in log)
    assert all(row["tokens_per_s"] >= 0 for row in log)
    card = (adapter / "README.md").read_text()
    assert "embedded:smollm2" in card and "train.jsonl" in card
    # The validation loss split by part of the answer: one verdict and one EOS token per example,
    # the 2 INSECURE fixtures' finding line in the other parts, the same token mean as the Trainer's.
    summary = json.loads((adapter / "train_config.json").read_text())["summary"]
    # `axon evaluate` refuses test files from these (the rows used to lose their `repo` on load,
    # so every adapter trained before 2026-12-01 recorded none).
    assert summary["training_repos"] == [f"fixture/{i}" for i in range(4)]
    by_part = summary["val_loss_by_part"]
    parts = by_part["parts"]
    assert parts["decision"]["tokens"] == 4 and parts["end"]["tokens"] == 4
    assert min(parts[p]["tokens"] for p in ("rule_id", "title", "resource")) >= 2
    assert by_part["mean_target_token_loss"] == pytest.approx(
        summary["val_loss_target_tokens"], rel=0.05
    )
    assert "Validation loss per target token (4 examples, " in card
    assert "by part of the answer: decision" in card
    # Every validation finding names the training answers' rule (the splits are the same records),
    # and the same split is computed on a training sample (the generalization gap).
    rules = by_part["rule_id_tokens_by_training"]
    assert rules["seen"]["finding_lines"] == 2 and rules["unseen"]["finding_lines"] == 0
    assert rules["seen"]["tokens"] == parts["rule_id"]["tokens"]
    assert summary["train_loss_by_part"]["examples"] == 4
    assert "Training-sample loss per target token (4 examples, " in card
    assert "rule-id tokens of rules a training answer names" in card


def test_saved_adapter_reloads_to_the_same_scores(records_dir: Path, tmp_path: Path) -> None:
    adapter = train(_config(records_dir, tmp_path, max_steps=2), load_settings(), progress=False)
    saved = json.loads((adapter / "threshold.json").read_text())[
        "val_scores"
    ]  # in-memory model's scores
    predictor = load_predictor(adapter, merge=False)
    prompts = [
        json.loads(line)["input_text"]
        for line in (records_dir / "val.jsonl").read_text().splitlines()
    ]
    ids = [json.loads(line)["id"] for line in (records_dir / "val.jsonl").read_text().splitlines()]
    reloaded = predictor.score_prompts(prompts)
    assert reloaded == pytest.approx([saved[i] for i in ids], abs=1e-4)
    # The default load folds the LoRA weights into the base weights: a plain transformers model
    # again, and the same function in fp32 (under bf16 autocast the two round differently, and a
    # 2-step adapter's scores are fragile: 0.02 vs 0.08 unfolded / folded, 0.11 in fp32).
    merged = load_predictor(adapter, bf16=False)
    assert not hasattr(merged.model, "peft_config")
    unmerged = load_predictor(adapter, merge=False, bf16=False)
    assert merged.score_prompts(prompts) == pytest.approx(unmerged.score_prompts(prompts), abs=1e-4)


def test_init_adapter_continues_from_its_weights(records_dir: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    shipped = Path(__file__).resolve().parents[2] / "axon_infralinter" / "adapters" / "default"
    config = _config(
        records_dir,
        tmp_path,
        max_steps=1,
        learning_rate=1e-12,  # a step that cannot move the weights
        init_adapter=shipped,
        tune_threshold=False,
    )
    adapter = train(config, load_settings(), progress=False)
    start = load_file(str(shipped / "adapter_model.safetensors"))
    after = load_file(str(adapter / "adapter_model.safetensors"))
    assert after.keys() == start.keys()
    # A fresh LoRA init has lora_B = 0; these are the shipped adapter's trained weights.
    assert max((after[k] - start[k]).abs().max().item() for k in start) < 1e-6
    assert any(start[k].abs().max().item() > 1e-3 for k in start if "lora_B" in k)
    assert "- Started from the LoRA weights of" in (adapter / "README.md").read_text()


def test_four_example_overfit_reaches_low_target_loss(records_dir: Path, tmp_path: Path) -> None:
    config = _config(
        records_dir,
        tmp_path,
        max_steps=40,
        learning_rate=3e-3,
        eval_steps=40,
        save_steps=40,
        per_device_train_batch_size=4,
        warmup_ratio=0.0,
        tune_threshold=False,
    )
    adapter = train(config, load_settings(), progress=False)
    summary = json.loads((adapter / "train_config.json").read_text())["summary"]
    assert summary["val_loss_target_tokens"] < 0.3
    scores = load_predictor(adapter).score_prompts(
        [
            json.loads(line)["input_text"]
            for line in (records_dir / "val.jsonl").read_text().splitlines()
        ]
    )
    assert [s > 0.5 for s in scores] == [True, False, True, False]


def test_killed_run_resumes_to_the_same_weights(records_dir: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    overrides = dict(
        gradient_accumulation_steps=1, save_steps=2, eval_steps=100, tune_threshold=False
    )
    # Straight run.
    straight = train(
        _config(records_dir, tmp_path / "a", max_steps=6, **overrides),
        load_settings(),
        progress=False,
    )
    # Interrupted run: kill -9 once the first checkpoint exists, then resume.
    ckpt = tmp_path / "b" / "ckpt"
    cmd = [
        sys.executable,
        "-c",
        "import sys; from axon_infralinter.models import train_lora as t; from axon_infralinter.settings import load_settings;"
        f"c=t.resolve_config('smollm2-cpu', data_dir=r'{records_dir}', output_dir=r'{tmp_path / 'b' / 'adapter'}',"
        f"checkpoint_dir=r'{ckpt}', max_steps=6, max_length=256, logging_steps=1, max_eval_samples=None,"
        f"gradient_accumulation_steps=1, save_steps=2, eval_steps=100, tune_threshold=False);"
        "t.train(c, load_settings(), progress=False)",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while not (ckpt / "checkpoint-2" / "trainer_state.json").exists():
        assert proc.poll() is None, "training ended before its first checkpoint"
        assert time.time() < deadline
        time.sleep(0.2)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "b" / "adapter" / "adapter_model.safetensors").exists()
    resumed = train(
        _config(
            records_dir, tmp_path / "b", max_steps=6, resume_from_checkpoint="last", **overrides
        ),
        load_settings(),
        progress=False,
    )
    state = json.loads((resumed / "train_config.json").read_text())["summary"]
    assert state["resumed_from"] is not None and state["global_step"] == 6
    a, b = (
        load_file(straight / "adapter_model.safetensors"),
        load_file(resumed / "adapter_model.safetensors"),
    )
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=2e-3, rtol=0)


@pytest.mark.skipif(
    shutil.which("torchrun") is None and not (Path(sys.executable).parent / "torchrun").exists(),
    reason="torchrun not installed",
)
def test_two_process_ddp_over_gloo(records_dir: Path, tmp_path: Path) -> None:
    torchrun = str(Path(sys.executable).parent / "torchrun")
    out = tmp_path / "ddp"
    proc = subprocess.run(
        [
            torchrun,
            "--nproc_per_node",
            "2",
            "--master_port",
            "29533",
            "-m",
            "axon_infralinter",
            "train",
            "--data",
            str(records_dir),
            "--max-steps",
            "2",
            "--max-length",
            "256",
            "--output-dir",
            str(out / "adapter"),
            "--checkpoint-dir",
            str(out / "ckpt"),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    # A rank's own one-line error comes first; torchrun's summary of the failure last.
    assert proc.returncode == 0, proc.stderr[:1500] + "\n...\n" + proc.stderr[-1000:]
    state = json.loads((out / "ckpt" / "checkpoint-2" / "trainer_state.json").read_text())
    assert state["global_step"] == 2
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    args = torch.load(out / "ckpt" / "checkpoint-2" / "training_args.bin", weights_only=False)
    assert args.world_size == 2


OPEN_SG = INSECURE_SG
CLOSED_SG = INSECURE_SG.replace('["0.0.0.0/0"]', '["10.0.0.0/8"]')
PUBLIC_MEMBER = INSECURE_BUCKET
PRIVATE_MEMBER = INSECURE_BUCKET.replace('"allUsers"', '"group:ops@example.com"')


def _pair_dir(tmp_path: Path) -> Path:
    """Two minimal pairs: the same block with one attribute insecure (broken) and fixed (clean)."""
    pairs_dir = tmp_path / "pairs"
    pairs_dir.mkdir()
    rows = []
    for n, (broken, clean) in enumerate(((OPEN_SG, CLOSED_SG), (PUBLIC_MEMBER, PRIVATE_MEMBER))):
        for role, code, label in (("broken", broken, "INSECURE"), ("clean", clean, "SECURE")):
            rec = _record(10 + n, code, label)
            rec.update(
                id=f"{rec['id']}|{role}", pair_id=f"p{n}", source_id=f"s{n}", role=role,
                edit={"kind": "rule" if role == "broken" else "clean"},
            )  # fmt: skip
            rows.append(rec)
    write_jsonl(pairs_dir / "train.jsonl", rows)
    return pairs_dir


def test_pairs_train_with_both_members_in_one_batch(records_dir: Path, tmp_path: Path) -> None:
    # The same 8 steps on the same items, without and with the ranking term: the term is what
    # separates the members of each pair (plain cross-entropy moves both alike at first).
    pairs_dir = _pair_dir(tmp_path)
    prompts = [json.loads(line)["input_text"] for line in (pairs_dir / "train.jsonl").open()]
    gaps = {}
    for weight in (0.0, 8.0):
        config = _config(
            records_dir,
            tmp_path / f"w{weight:g}",
            pairs_dir=pairs_dir,
            pair_weight=weight,
            max_train_examples=1,
            max_steps=8,
            learning_rate=3e-3,
            eval_steps=8,
            save_steps=8,
            per_device_train_batch_size=3,  # one forward pass: the single example and both pairs
            warmup_ratio=0.0,
            tune_threshold=False,
        )
        adapter = train(config, load_settings(), progress=False)
        summary = json.loads((adapter / "train_config.json").read_text())["summary"]
        assert summary["train_pairs"] == 2 and summary["train_examples"] == 5
        s = load_predictor(adapter).score_prompts(prompts)
        gaps[weight] = [s[0] - s[1], s[2] - s[3]]
    assert all(g > 0 for g in gaps[8.0]), gaps
    assert sum(gaps[8.0]) > sum(gaps[0.0]) + 0.1, gaps
