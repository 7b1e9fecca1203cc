"""Fine-tune a base code LLM on the Terraform security data set with LoRA (`axon train`).

Why this recipe and not the naive one: the upstream of this design padded every example to 1024
tokens with EOS as pad and kept pads and the whole prompt inside the loss, so the 1-3 answer tokens
were ~0.1% of what it learned; loss stayed near 8 and it answered INSECURE for everything. Here:

* dynamic padding per batch, pad positions masked with -100;
* loss on the target tokens only (`loss_on="target"`; `"all"` puts the prompt back in, as the seed);
* with it, the LM head runs only on the positions that predict the target (`logits_to_keep`);
* truncation cuts the middle of the Terraform code, never the instruction's end or the answer;
* length-grouped batches; the validation loss is computed on target tokens only.

Examples:
    axon train                                  # smollm2-cpu profile on data/
    axon train --max-steps 20 --output-dir /tmp/adapter
    axon train --resume                         # continue from the newest checkpoint
    axon train --print-config --profile codellama-7b-qlora
    torchrun --nproc_per_node 2 -m axon_infralinter train --max-steps 4   # 2 ranks over gloo
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from axon_infralinter.errors import InputError, ModelError
from axon_infralinter.files import atomic_write_json, sha256_file
from axon_infralinter.models.base_model import (
    cuda_available,
    load_base_model,
    resolve_dtype,
)
from axon_infralinter.models.loss import (
    TargetLogitsCollator,
    finding_rule_ids,
    make_loss_function,
    target_loss_by_part,
)
from axon_infralinter.models.model_card import write_model_card
from axon_infralinter.models.pair_train import (
    Item,
    PairCollator,
    cached_reference_margins,
    make_pair_trainer,
    pair_items,
    reference_margins,
    sample_singles,
    tokenize_items,
)
from axon_infralinter.models.threshold import tune_threshold
from axon_infralinter.models.tokens import (
    IGNORE_INDEX,
    LossOn,
    label_token_ids,
    tokenize_example,
)
from axon_infralinter.models.train_config import (
    TrainConfig,
    config_to_dict,
    resolve_config,
    to_lora_config,
    to_quantization_options,
    to_training_arguments,
)
from axon_infralinter.schema import (
    TRAIN_CONFIG_JSON,
    TRAINING_KEYS,
    read_adapter_meta,
    read_json_object,
    read_records,
)
from axon_infralinter.settings import Settings

# The training stage's public face (the spec's names): the config and its loader live in
# train_config.py, the model card in model_card.py.
__all__ = [
    "TrainConfig",
    "config_to_dict",
    "file_level_split",
    "read_adapter_base",
    "resolve_config",
    "tokenize_function",
    "train",
]

THRESHOLD_KEYS = ("id", "label", "input_text")
"""What threshold tuning reads from each validation file record."""
# --------------------------------------------------------------------------------------------
# Tokenization


def tokenize_function(
    examples: dict[str, Sequence[str]],
    tokenizer: Any,
    max_length: int = 1024,
    loss_on: LossOn = "target",
) -> dict[str, list[list[int]]]:
    """Batched `datasets.map` function (the spec's name): `{input_text}\\n\\n{target_text}`."""
    out: dict[str, list[list[int]]] = {"input_ids": [], "attention_mask": [], "labels": []}
    for input_text, target_text in zip(
        examples["input_text"], examples["target_text"], strict=True
    ):
        row = tokenize_example(input_text, target_text, tokenizer, max_length, loss_on)
        for key in out:
            out[key].append(row[key])
    return out


# --------------------------------------------------------------------------------------------
# Training


def _load_split(data_dir: Path, split: str, required: bool) -> list[dict[str, Any]]:
    """The split's records (checked by `schema.read_records`: a bad line fails before the model)."""
    path = data_dir / f"{split}.jsonl"
    if not path.is_file():
        if required:
            raise InputError(
                f"no {split} split at {path}: run `axon dataset build` first (or pass --data)"
            )
        return []
    rows = read_records(path, TRAINING_KEYS)
    if required and not rows:
        raise InputError(f"the {split} split at {path} is empty")
    return rows


def file_level_split(data_dir: Path, split: str) -> Path:
    """The file-level split behind `data_dir`: itself, or the source of a chunk data set.

    The decision threshold is tuned on whole validation files scored the way `axon scan` scores
    them (worst block), also when training used block-level examples (`axon dataset chunks`).
    """
    card = data_dir / "chunks_card.json"
    if card.is_file():
        source = Path(read_json_object(card)["source_data"])
        if (source / f"{split}.jsonl").is_file():
            return source / f"{split}.jsonl"
    return data_dir / f"{split}.jsonl"


def _check_writable(folder: Path, flag: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".axon-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise InputError(f"{flag} {folder} is not writable ({exc.strerror})") from None


def _check_init_adapter(config: TrainConfig) -> None:
    """--init-adapter must be a PEFT adapter trained on the same base model."""
    folder = config.init_adapter
    assert folder is not None
    if not (folder / "adapter_config.json").is_file():
        raise InputError(f"--init-adapter {folder}: not a LoRA adapter (no adapter_config.json)")
    base = read_adapter_base(folder)
    if base != config.base_model:
        raise InputError(
            f"--init-adapter {folder} was trained on {base}, not on {config.base_model}"
        )


def lineage_repos(records: Sequence[dict[str, Any]], init_adapter: Path | None) -> list[str]:
    """The repositories an adapter has learnt from: its training examples' and, when it continued
    from `--init-adapter`, every repository that adapter recorded (its own lineage included).

    Without the second part an adapter continued from run E on another split would let
    `axon evaluate` count test files from run E's training repositories.
    """
    repos = {str(r["repo"]) for r in records if r.get("repo")}
    if init_adapter is not None:
        repos |= set(read_adapter_meta(init_adapter).training_repos)
    return sorted(repos)


def _find_resume(config: TrainConfig, checkpoints: Path) -> str | None:
    if not config.resume_from_checkpoint:
        return None
    if config.resume_from_checkpoint != "last":
        path = Path(config.resume_from_checkpoint)
        if not (path / "trainer_state.json").is_file():
            raise InputError(f"--resume {path}: not a Trainer checkpoint (no trainer_state.json)")
        return str(path)
    from transformers.trainer_utils import get_last_checkpoint

    last = get_last_checkpoint(str(checkpoints)) if checkpoints.is_dir() else None
    return last  # None: nothing to resume, start fresh


def _make_log_callback(log_path: Path, is_main: bool) -> Any:
    from transformers import TrainerCallback

    class JsonlLog(TrainerCallback):  # type: ignore[misc]
        """Append step, loss, target-token val loss, lr and tokens/s to training_log.jsonl."""

        def __init__(self) -> None:
            self.t0 = time.perf_counter()
            self.tokens0 = 0
            self.last_t = self.t0

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.tokens0 = int(getattr(state, "num_input_tokens_seen", 0) or 0)
            self.t0 = self.last_t = time.perf_counter()

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if not is_main or not logs:
                return
            now = time.perf_counter()
            tokens = int(getattr(state, "num_input_tokens_seen", 0) or 0)
            row: dict[str, Any] = {"step": state.global_step, "epoch": round(state.epoch or 0, 4)}
            if "loss" in logs:
                row["loss"] = logs["loss"]
            if "eval_loss" in logs:
                row["val_loss"] = logs["eval_loss"]
            if "learning_rate" in logs:
                row["lr"] = logs["learning_rate"]
            elapsed = max(now - self.t0, 1e-9)
            row["tokens_seen"] = tokens
            row["tokens_per_s"] = round((tokens - self.tokens0) / elapsed, 2)
            row["elapsed_s"] = round(elapsed, 2)
            log_path.parent.mkdir(parents=True, exist_ok=True)
            with log_path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")

    return JsonlLog()


def train(
    config: TrainConfig,
    settings: Settings,
    progress: bool = True,
    on_ready: Callable[[Path, Path, int], None] | None = None,
) -> Path:
    """Fine-tune with LoRA and save the adapter; returns the adapter folder.

    Every input is checked before the model loads (records, folders, resume point, start adapter).

    Args:
        config: Resolved training config.
        settings: AXON_HOME (checkpoints, model cache).
        progress: Show the Trainer's progress bar.
        on_ready: Called with (adapter_dir, checkpoint_dir, number of training examples) once the
            data is loaded, before the model (so the CLI can say where things go).
    """
    train_rows, val_rows = _load_data(config)
    items = _train_items(config, train_rows)
    adapter_dir, checkpoints = config.adapter_dir, config.checkpoints(settings)
    resume = _check_inputs(config, checkpoints, has_val=bool(val_rows))
    if on_ready:
        on_ready(adapter_dir, checkpoints, sum(map(len, items)) if items else len(train_rows))

    model, tokenizer = _load_model(config, settings)
    trainer = _make_trainer(
        config, model, tokenizer, items or train_rows, val_rows, checkpoints, progress,
        margins_cache=settings.anchor_margins,
    )  # fmt: skip
    log_path = adapter_dir / "training_log.jsonl"
    if resume is None and log_path.exists() and trainer.args.process_index == 0:
        log_path.unlink()  # a fresh run starts a fresh log; a resumed run appends
    trainer.add_callback(_make_log_callback(log_path, trainer.args.process_index == 0))
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=resume)
    seconds = time.perf_counter() - started
    final_val = trainer.evaluate()["eval_loss"] if val_rows else None
    if trainer.args.process_index != 0:
        return adapter_dir

    trainer.model.save_pretrained(adapter_dir)
    tokenizer.save_pretrained(adapter_dir)
    summary = {
        "train_loss": result.training_loss,
        "val_loss_target_tokens": final_val,
        "global_step": trainer.state.global_step,
        "seconds": round(seconds, 1),
        "tokens_seen": int(trainer.state.num_input_tokens_seen or 0),
        "train_examples": sum(map(len, items)) if items else len(train_rows),
        "train_pairs": sum(len(i) == 2 for i in items) if items else 0,
        # `axon evaluate` refuses test files from these repositories (inflated numbers).
        "training_repos": lineage_repos(_members(items, train_rows), config.init_adapter),
        "val_examples_for_loss": len(val_rows),
        "resumed_from": resume,
        "device": "cuda" if cuda_available() else "cpu",
        "dtype": str(resolve_dtype(config.precision)).replace("torch.", ""),
        "val_loss_by_part": None,
    }
    if val_rows:
        summary.update(_loss_by_part(trainer.model, tokenizer, train_rows, val_rows, config))
    data_hashes = {
        split: sha256_file(config.data_dir / f"{split}.jsonl")
        for split in ("train", "val", "test")
        if (config.data_dir / f"{split}.jsonl").is_file()
    }
    atomic_write_json(
        adapter_dir / TRAIN_CONFIG_JSON,
        {"config": config_to_dict(config), "summary": summary, "data_sha256": data_hashes},
    )
    if config.tune_threshold and val_rows:
        val_files = file_level_split(config.data_dir, "val")
        tune_threshold(adapter_dir, val_files, settings, model=trainer.model, tokenizer=tokenizer)
    write_model_card(adapter_dir, config, summary, data_hashes)
    return adapter_dir


def _load_data(config: TrainConfig) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Training records and the validation records of the periodic loss (evenly spaced)."""
    train_rows = _load_split(config.data_dir, "train", required=True)
    if config.pairs_dir is None and config.max_train_examples is not None:
        train_rows = [
            item[0]
            for item in sample_singles(
                [[r] for r in train_rows], config.max_train_examples, config.seed
            )
        ]
    val_rows = _load_split(config.data_dir, "val", required=False)
    if config.max_eval_samples is not None and len(val_rows) > config.max_eval_samples:
        # Evenly spaced, not the first N: splits are ordered by repository and file.
        step = len(val_rows) / config.max_eval_samples
        val_rows = [val_rows[int(i * step)] for i in range(config.max_eval_samples)]
    return train_rows, val_rows


def _train_items(config: TrainConfig, train_rows: list[dict[str, Any]]) -> list[Item] | None:
    """With --pairs: the single examples (data_dir's and the neutral variants, sampled down to
    max_train_examples) and every training pair; None without pairs (plain training)."""
    if config.pairs_dir is None:
        return None
    pairs, neutral = pair_items(config.pairs_dir / "train.jsonl")
    singles = sample_singles(
        [[r] for r in train_rows] + neutral, config.max_train_examples, config.seed
    )
    return singles + pairs


def _members(items: list[Item] | None, train_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every training record: the items' members, else the plain rows."""
    return [r for item in items for r in item] if items else train_rows


def _check_inputs(config: TrainConfig, checkpoints: Path, has_val: bool) -> str | None:
    """Everything that could fail after training, checked before it; returns the resume point."""
    _check_writable(config.adapter_dir, "--output-dir")
    _check_writable(checkpoints, "--checkpoint-dir")
    resume = _find_resume(config, checkpoints)
    if config.init_adapter is not None:
        _check_init_adapter(config)
    if config.tune_threshold and has_val:
        # Threshold tuning reads whole validation files after training: check them now, not
        # after hours of training.
        read_records(file_level_split(config.data_dir, "val"), THRESHOLD_KEYS)
    return resume


def _load_model(config: TrainConfig, settings: Settings) -> tuple[Any, Any]:
    """The base model with a fresh LoRA (or the --init-adapter's weights), and its tokenizer."""
    from peft import PeftModel, get_peft_model, prepare_model_for_kbit_training
    from transformers import set_seed

    set_seed(config.seed)
    model, tokenizer = load_base_model(
        config.base_model, settings, config.precision, to_quantization_options(config)
    )
    if config.load_in_4bit:
        model = prepare_model_for_kbit_training(model, config.gradient_checkpointing)
    elif config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    if config.init_adapter is not None:
        model = PeftModel.from_pretrained(model, str(config.init_adapter), is_trainable=True)
    else:
        model = get_peft_model(model, to_lora_config(config))
    return model, tokenizer


def _make_trainer(
    config: TrainConfig,
    model: Any,
    tokenizer: Any,
    train_rows: list[dict[str, Any]] | list[Item],
    val_rows: list[dict[str, Any]],
    checkpoints: Path,
    progress: bool,
    margins_cache: Path | None = None,
) -> Any:
    """A transformers Trainer over the tokenized splits, with the target-token loss.

    `train_rows` are records, or items (`pair_train`: one record or a pair each) when training
    with pairs: then the collator keeps a pair in one batch and the loss adds the ranking term.
    """
    import torch
    from datasets import Dataset
    from transformers import DataCollatorForSeq2Seq, Trainer

    def tokenized(rows: list[dict[str, Any]], loss_on: LossOn) -> Any:
        ds = Dataset.from_list(
            [{"input_text": r["input_text"], "target_text": r["target_text"]} for r in rows]
        )
        return ds.map(
            tokenize_function,
            batched=True,
            remove_columns=ds.column_names,
            fn_kwargs={"tokenizer": tokenizer, "max_length": config.max_length, "loss_on": loss_on},
            desc="tokenizing",
        )

    with_pairs = config.pairs_dir is not None
    if with_pairs:
        items = [list(i) for i in train_rows]  # type: ignore[arg-type]
        train_ds = Dataset.from_list(
            tokenize_items(items, tokenizer, config.max_length, config.loss_on)
        )
    else:
        train_ds = tokenized(train_rows, config.loss_on)  # type: ignore[arg-type]
    # Validation loss is always on target tokens: that is the number that says whether it learned.
    val_ds = tokenized(val_rows, "target") if val_rows else None
    collator: Any = DataCollatorForSeq2Seq(
        tokenizer,
        padding="max_length" if config.padding == "max_length" else True,
        max_length=config.max_length if config.padding == "max_length" else None,
        label_pad_token_id=IGNORE_INDEX,
        pad_to_multiple_of=None,
    )
    if with_pairs:
        collator = PairCollator(collator)
        if config.anchor_weight:
            # The starting model's margins, before the Trainer exists (and before a resumed
            # checkpoint's weights load): the anchor is always the run's start.
            # Cached under AXON_HOME by starting weights and items: a resumed run, or another
            # weight from the same start, reads them back.
            features, labels = list(train_ds), label_token_ids(tokenizer)
            dtype = resolve_dtype(config.precision)
            refs = (
                cached_reference_margins(
                    model, features, collator, labels, margins_cache, dtype=dtype,
                    progress=progress,
                )
                if margins_cache is not None
                else reference_margins(model, features, collator, labels, dtype=dtype,
                                       progress=progress)
            )  # fmt: skip
            train_ds = train_ds.add_column("ref_margin", refs)
    elif config.loss_on == "target":
        collator = TargetLogitsCollator(collator)
    args = to_training_arguments(config, checkpoints, has_eval=val_ds is not None)
    if not cuda_available():
        # Under torchrun each rank gets its share of the cores, not all of them.
        torch.set_num_threads(config.threads or max(1, (os.cpu_count() or 1) // args.world_size))
    if not progress:
        args.disable_tqdm = True
    kwargs: dict[str, Any] = {
        "model": model,
        "args": args,
        "train_dataset": train_ds,
        "eval_dataset": val_ds,
        "data_collator": collator,
        "compute_loss_func": make_loss_function(config.label_weight)
        if config.loss_on == "target"
        else None,
    }
    if not with_pairs:
        return Trainer(**kwargs)
    items_per_step = config.gradient_accumulation_steps * config.per_device_train_batch_size
    return make_pair_trainer(
        config.pair_weight,
        label_token_ids(tokenizer),
        items_per_step,
        anchor_weight=config.anchor_weight,
        anchor_one_sided=config.anchor_one_sided,
        **kwargs,
    )


def _loss_by_part(
    model: Any,
    tokenizer: Any,
    train_rows: list[dict[str, Any]],
    val_rows: list[dict[str, Any]],
    config: TrainConfig,
) -> dict[str, Any]:
    """The validation loss split into the verdict token and the finding lines, and the same on as
    many training examples, so the card shows the generalization gap per part."""
    known = {rule for row in train_rows for rule in finding_rule_ids(row["target_text"])}
    step = max(1.0, len(train_rows) / len(val_rows))
    train_sample = [train_rows[int(i * step)] for i in range(min(len(val_rows), len(train_rows)))]
    return {
        "val_loss_by_part": target_loss_by_part(
            model, tokenizer, val_rows, config.max_length, known_rule_ids=known
        ),
        "train_loss_by_part": target_loss_by_part(
            model, tokenizer, train_sample, config.max_length, known_rule_ids=known
        ),
    }


def read_adapter_base(adapter_dir: Path) -> str:
    """The base model an adapter was trained on (from train_config.json)."""
    base = read_adapter_meta(adapter_dir).base_model
    if base is None:
        raise ModelError(f"{adapter_dir} has no train_config.json: not an axon adapter")
    return base
