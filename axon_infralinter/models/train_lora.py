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

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from axon_infralinter.data.prompt import split_prompt
from axon_infralinter.errors import ConfigError, InputError, ModelError
from axon_infralinter.files import atomic_write_json, atomic_write_text, iter_jsonl, sha256_file
from axon_infralinter.models.base_model import (
    EMBEDDED_SMOLLM2,
    Precision,
    QuantizationOptions,
    cuda_available,
    load_base_model,
    resolve_dtype,
)
from axon_infralinter.settings import Settings

LossOn = Literal["target", "all"]
Padding = Literal["dynamic", "max_length"]
TRUNCATION_MARKER = "\n...\n"
IGNORE_INDEX = -100


@dataclass
class TrainConfig:
    """Training hyperparameters. Defaults are the spec's; profiles in configs/ override a few."""

    learning_rate: float = 2e-4
    """Peak learning rate (typical for LoRA)."""
    num_train_epochs: float = 3.0
    """Passes over the training split (ignored when max_steps > 0)."""
    per_device_train_batch_size: int = 1
    """Examples per forward pass per device."""
    gradient_accumulation_steps: int = 4
    """Forward passes per optimizer step (effective batch = batch size x this x devices)."""
    resume_from_checkpoint: str | None = None
    """Checkpoint folder to resume from, or "last" for the newest in checkpoint_dir."""

    profile: str = "smollm2-cpu"
    """Profile name; the adapter goes to models/axon_lora_<profile> unless output_dir is set."""
    base_model: str = EMBEDDED_SMOLLM2
    """`embedded:smollm2`, a local folder, or a Hugging Face id already in the local cache."""
    data_dir: Path = Path("data")
    """Folder with train.jsonl and val.jsonl."""
    output_dir: Path | None = None
    """Adapter folder; default models/axon_lora_<profile>."""
    checkpoint_dir: Path | None = None
    """Trainer checkpoints (full state); default AXON_HOME/checkpoints/<adapter folder name>."""
    max_steps: int = -1
    """Stop after this many optimizer steps (-1: train for num_train_epochs)."""
    max_length: int = 1024
    """Tokens per example; longer code is cut in the middle."""
    loss_on: LossOn = "target"
    """"target": loss on answer tokens only; "all": prompt too (the seed's recipe)."""
    label_weight: float = 20.0
    """Loss weight of the decision token (the first answer token: SECURE or INSECURE) relative to
    the explanation tokens. An INSECURE answer has ~60 explanation tokens, so with weight 1 the
    decision is ~2% of its loss and a short CPU run learns the format, not the verdict (measured:
    120 steps left P(INSECURE) < 0.07 on INSECURE training files). Training only; the validation
    loss stays the plain mean over target tokens."""
    padding: Padding = "dynamic"
    """"dynamic": pad to the longest in the batch; "max_length": pad to max_length (the seed)."""
    group_by_length: bool = True
    """Batch examples of similar length together (less padding)."""
    lora_r: int = 16
    """LoRA rank."""
    lora_alpha: int = 32
    """LoRA scaling numerator (scale = alpha / r)."""
    lora_dropout: float = 0.05
    """Dropout on the LoRA input."""
    lora_target_modules: list[str] | str = "all-linear"
    """Modules that get adapters; "all-linear" = every linear projection but the LM head."""
    load_in_4bit: bool = False
    """QLoRA: load the base model in 4-bit NF4 (CUDA + bitsandbytes only)."""
    precision: Precision = "auto"
    """"auto": bf16 on CUDA or a bf16-capable CPU (autocast), else fp32."""
    lr_scheduler_type: str = "cosine"
    """Learning-rate schedule."""
    warmup_ratio: float = 0.03
    """Share of steps spent warming up."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    logging_steps: int = 10
    """Optimizer steps between log lines in training_log.jsonl."""
    eval_steps: int = 100
    """Optimizer steps between target-token validation losses."""
    save_steps: int = 50
    """Optimizer steps between checkpoints."""
    save_total_limit: int = 2
    """Checkpoints kept on disk."""
    per_device_eval_batch_size: int = 4
    """Examples per validation forward pass."""
    max_eval_samples: int | None = 200
    """Validation examples used for the periodic loss (None: all)."""
    gradient_checkpointing: bool = False
    """Trade compute for memory (useful for 7B models)."""
    seed: int = 42
    """Seed for LoRA init, data order and dropout."""
    threads: int | None = None
    """CPU threads (default: all cores)."""
    tune_threshold: bool = True
    """After training, pick the decision threshold that maximizes F1 on the validation split."""
    init_adapter: Path | None = None
    """Start from this adapter's LoRA weights instead of a fresh LoRA init (continued training,
    e.g. on a new answer format). Its LoRA shape (rank, alpha, modules) replaces the lora_* values;
    it must have been trained on the same base model."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Reserved; must stay empty (unknown keys are rejected by the loader)."""

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        self.output_dir = Path(self.output_dir) if self.output_dir else None
        self.checkpoint_dir = Path(self.checkpoint_dir) if self.checkpoint_dir else None
        self.init_adapter = Path(self.init_adapter) if self.init_adapter else None
        checks: list[tuple[bool, str]] = [
            (self.learning_rate > 0, f"--learning-rate must be > 0, got {self.learning_rate}"),
            (self.num_train_epochs > 0, f"--epochs must be > 0, got {self.num_train_epochs}"),
            (self.per_device_train_batch_size >= 1, "--batch-size must be >= 1"),
            (self.gradient_accumulation_steps >= 1, "--grad-accum must be >= 1"),
            (self.max_steps == -1 or self.max_steps > 0, f"--max-steps must be > 0, got {self.max_steps}"),
            (self.max_length >= 64, f"--max-length must be >= 64, got {self.max_length}"),
            (self.loss_on in ("target", "all"), f"loss_on must be target or all, got {self.loss_on!r}"),
            (self.padding in ("dynamic", "max_length"), f"padding must be dynamic or max_length, got {self.padding!r}"),
            (self.lora_r >= 1, f"lora_r must be >= 1, got {self.lora_r}"),
            (self.label_weight > 0, f"--label-weight must be > 0, got {self.label_weight}"),
            (0 <= self.lora_dropout < 1, f"lora_dropout must be in [0, 1), got {self.lora_dropout}"),
            (self.precision in ("auto", "fp32", "bf16"), f"precision must be auto, fp32 or bf16, got {self.precision!r}"),
            (self.eval_steps >= 1 and self.save_steps >= 1 and self.logging_steps >= 1, "eval/save/logging steps must be >= 1"),
            (not self.extra, f"unknown config keys: {sorted(self.extra)}"),
        ]  # fmt: skip
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    @property
    def adapter_dir(self) -> Path:
        """Where the adapter, tokenizer, log and model card go."""
        return self.output_dir or Path("models") / f"axon_lora_{self.profile}"

    def checkpoints(self, settings: Settings) -> Path:
        """Where Trainer checkpoints go (under AXON_HOME so a fresh work tree can resume)."""
        return self.checkpoint_dir or settings.home / "checkpoints" / self.adapter_dir.name


# --------------------------------------------------------------------------------------------
# Profiles


def profile_names() -> list[str]:
    """Names of the shipped profiles (configs/*.yaml)."""
    folder = resources.files("axon_infralinter").joinpath("configs")
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_profile(name: str) -> dict[str, Any]:
    """The sparse overrides of a shipped profile."""
    if name not in profile_names():
        raise ConfigError(f"unknown profile {name!r}; choose from {', '.join(profile_names())}")
    text = resources.files("axon_infralinter").joinpath(f"configs/{name}.yaml").read_text()
    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"profile {name} must be a mapping")
    return data


def resolve_config(profile: str = "smollm2-cpu", **overrides: Any) -> TrainConfig:
    """Defaults -> profile -> overrides (CLI flags; None means "not given")."""
    valid = {f.name for f in dataclasses.fields(TrainConfig)} - {"extra"}
    values: dict[str, Any] = {}
    for source, data in (("profile " + profile, load_profile(profile)), ("flags", overrides)):
        unknown = sorted(set(data) - valid)
        if unknown:
            raise ConfigError(
                f"unknown config keys in {source}: {', '.join(unknown)}; valid: {', '.join(sorted(valid))}"
            )
        values.update({k: v for k, v in data.items() if v is not None})
    values["profile"] = profile
    return TrainConfig(**values)


def config_to_dict(config: TrainConfig) -> dict[str, Any]:
    """JSON-friendly view of a config."""
    out = dataclasses.asdict(config)
    out.pop("extra", None)
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in out.items()}


# --------------------------------------------------------------------------------------------
# Tokenization


def tokenize_example(
    input_text: str,
    target_text: str,
    tokenizer: Any,
    max_length: int = 1024,
    loss_on: LossOn = "target",
) -> dict[str, list[int]]:
    """Tokenize one `{input_text}\\n\\n{target_text}` example with a label mask.

    The prompt is tokenized as head / code / tail pieces so that, when the example is too long, the
    middle of the code is replaced by a marker; the instruction, the prompt's end and the answer are
    never cut. Labels are -100 on every prompt position when loss_on="target".
    """
    head, code, tail = split_prompt(input_text)
    enc = _encode(tokenizer)
    head_ids, code_ids, tail_ids = enc(head), enc(code), enc(tail)
    answer_ids = enc("\n\n" + target_text) + [tokenizer.eos_token_id]
    budget = max_length - len(head_ids) - len(tail_ids) - len(answer_ids)
    if len(code_ids) > budget:
        marker = enc(TRUNCATION_MARKER)
        keep = max(budget - len(marker), 0)
        front = keep - keep // 2
        code_ids = (
            code_ids[:front] + marker + (code_ids[len(code_ids) - keep // 2 :] if keep // 2 else [])
        )
    prompt_ids = head_ids + code_ids + tail_ids
    input_ids = (prompt_ids + answer_ids)[: max(max_length, len(answer_ids))]
    if loss_on == "target":
        labels = [IGNORE_INDEX] * len(prompt_ids) + answer_ids
        # The "\n\n" that opens the answer is prompt format, not a target token.
        n_sep = len(answer_prefix_ids(tokenizer))
        labels[len(prompt_ids) : len(prompt_ids) + n_sep] = [IGNORE_INDEX] * n_sep
    else:
        labels = list(input_ids)
    return {
        "input_ids": input_ids,
        "attention_mask": [1] * len(input_ids),
        "labels": labels[: len(input_ids)],
    }


def prompt_ids(
    input_text: str, tokenizer: Any, max_length: int = 1024, reserve: int = 8
) -> list[int]:
    """Token ids of a prompt followed by the "\\n\\n" that opens the answer, truncated like training."""
    head, code, tail = split_prompt(input_text)
    enc = _encode(tokenizer)
    head_ids, code_ids, tail_ids = enc(head), enc(code), enc(tail)
    sep = answer_prefix_ids(tokenizer)
    budget = max_length - reserve - len(head_ids) - len(tail_ids) - len(sep)
    if len(code_ids) > budget:
        marker = enc(TRUNCATION_MARKER)
        keep = max(budget - len(marker), 0)
        front = keep - keep // 2
        code_ids = (
            code_ids[:front] + marker + (code_ids[len(code_ids) - keep // 2 :] if keep // 2 else [])
        )
    return head_ids + code_ids + tail_ids + sep


def answer_prefix_ids(tokenizer: Any) -> list[int]:
    """Tokens of the "\n\n" that opens an answer, as tokenized *before a label*.

    BPE tokenizes "\n\n" alone differently from "\n\nSECURE" (SmolLM2: [1116] vs [198, 198, ...]),
    so the prefix is the common start of the two label encodings, as seen in training.
    """
    enc = _encode(tokenizer)
    secure, insecure = enc("\n\nSECURE"), enc("\n\nINSECURE")
    n = 0
    while n < min(len(secure), len(insecure)) and secure[n] == insecure[n]:
        n += 1
    return secure[:n]


def _encode(tokenizer: Any) -> Callable[[str], list[int]]:
    def enc(text: str) -> list[int]:
        return list(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []

    return enc


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


def make_loss_function(label_weight: float) -> Callable[..., Any]:
    """Causal-LM loss with the decision token weighted `label_weight` times (Trainer's compute_loss_func).

    Training (the Trainer passes `num_items_in_batch`, the target tokens of the whole accumulated
    batch): sum of weighted token losses / num_items_in_batch, so gradient accumulation and DDP
    average exactly as the stock loss does. Evaluation (no gradient; transformers 5 passes
    `num_items_in_batch` there too): the plain, unweighted mean over the batch's target tokens,
    comparable across recipes and with `label_weight` 1.
    """

    def loss_fn(outputs: Any, labels: Any, num_items_in_batch: Any = None) -> Any:
        import torch
        import torch.nn.functional as F  # noqa: N812

        # With `logits_to_keep` (TargetLogitsCollator) the model returned logits for the last
        # positions only: align the labels to them (a no-op for full-length logits).
        labels = labels[:, -outputs.logits.size(1) :]
        logits = outputs.logits[:, :-1, :].float()
        targets = labels[:, 1:].to(logits.device)
        mask = targets != IGNORE_INDEX
        token_loss = F.cross_entropy(
            logits.reshape(-1, logits.size(-1)),
            targets.reshape(-1),
            ignore_index=IGNORE_INDEX,
            reduction="none",
        ).view_as(targets)
        weights = mask.float()
        if num_items_in_batch is None or not torch.is_grad_enabled():
            return (token_loss * weights).sum() / weights.sum().clamp(min=1)
        first = mask & (mask.long().cumsum(dim=1) == 1)  # the first target token of each row
        weights = weights + (label_weight - 1.0) * first.float()
        total = torch.as_tensor(num_items_in_batch, device=logits.device, dtype=logits.dtype)
        return (token_loss * weights).sum() / total.clamp(min=1)

    return loss_fn


class TargetLogitsCollator:
    """Wraps a collator: the model projects only the positions that predict target tokens.

    With the loss on the answer only, the logits of the prompt positions are never used, yet the
    LM head (49,152 x 576 for SmolLM2) and the fp32 cross-entropy would run on every position.
    The batch gets `logits_to_keep` = the positions from the one before the earliest target token
    to the end (transformers' causal LMs slice the hidden states before the LM head); the loss
    function aligns the labels to the logits it gets back. Rows without a target token keep all.
    """

    def __init__(self, collator: Callable[[list[dict[str, Any]]], dict[str, Any]]) -> None:
        self.collator = collator

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        batch = self.collator(features)
        batch["logits_to_keep"] = logits_to_keep(batch["labels"])
        return batch


def logits_to_keep(labels: Any) -> int:
    """How many trailing positions must be projected to score every label that is not -100.

    The logit at position t predicts token t + 1, so the earliest target token at position f needs
    the positions from f - 1 on: `width - f + 1` of them. 0 (keep all) when no row has a target.
    """
    mask = labels != IGNORE_INDEX
    if not bool(mask.any()):
        return 0
    width = int(labels.size(1))
    first = int(mask.float().argmax(dim=1)[mask.any(dim=1)].min())
    return min(width, width - first + 1)


# --------------------------------------------------------------------------------------------
# Config -> library objects (pure, testable without a model)


def to_lora_config(config: TrainConfig) -> Any:
    """peft LoraConfig from a TrainConfig."""
    from peft import LoraConfig, TaskType

    return LoraConfig(
        task_type=TaskType.CAUSAL_LM,
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=config.lora_target_modules,
        bias="none",
    )


def to_quantization_options(config: TrainConfig) -> QuantizationOptions | None:
    """4-bit options when the config asks for QLoRA."""
    return QuantizationOptions(load_in_4bit=True) if config.load_in_4bit else None


def to_training_arguments(config: TrainConfig, output_dir: Path, has_eval: bool) -> Any:
    """transformers TrainingArguments from a TrainConfig."""
    from transformers import TrainingArguments

    bf16 = str(resolve_dtype(config.precision)) == "torch.bfloat16"
    return TrainingArguments(
        output_dir=str(output_dir),
        learning_rate=config.learning_rate,
        num_train_epochs=config.num_train_epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.per_device_train_batch_size,
        per_device_eval_batch_size=config.per_device_eval_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        lr_scheduler_type=config.lr_scheduler_type,
        warmup_steps=config.warmup_ratio,
        weight_decay=config.weight_decay,
        logging_steps=config.logging_steps,
        logging_first_step=True,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=config.eval_steps,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        train_sampling_strategy="group_by_length" if config.group_by_length else "random",
        bf16=bf16,
        use_cpu=not cuda_available(),
        seed=config.seed,
        data_seed=config.seed,
        report_to="none",
        remove_unused_columns=False,
        include_num_input_tokens_seen="non_padding",
        ddp_find_unused_parameters=False,
        disable_tqdm=False,
        dataloader_num_workers=0,
    )


# --------------------------------------------------------------------------------------------
# Training


def _load_split(data_dir: Path, split: str, required: bool) -> list[dict[str, Any]]:
    path = data_dir / f"{split}.jsonl"
    if not path.is_file():
        if required:
            raise InputError(
                f"no {split} split at {path}: run `axon dataset build` first (or pass --data)"
            )
        return []
    rows = [
        {"input_text": r["input_text"], "target_text": r["target_text"]} for r in iter_jsonl(path)
    ]
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
        source = Path(json.loads(card.read_text())["source_data"])
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

    Args:
        config: Resolved training config.
        settings: AXON_HOME (checkpoints, model cache).
        progress: Show the Trainer's progress bar.
        on_ready: Called with (adapter_dir, checkpoint_dir, number of training examples) once the
            data is loaded, before the model (so the CLI can say where things go).
    """
    import torch
    from datasets import Dataset
    from peft import get_peft_model, prepare_model_for_kbit_training
    from transformers import DataCollatorForSeq2Seq, Trainer, set_seed

    train_rows = _load_split(config.data_dir, "train", required=True)
    val_rows = _load_split(config.data_dir, "val", required=False)
    if config.max_eval_samples is not None and len(val_rows) > config.max_eval_samples:
        # Evenly spaced, not the first N: splits are ordered by repository and file.
        step = len(val_rows) / config.max_eval_samples
        val_rows = [val_rows[int(i * step)] for i in range(config.max_eval_samples)]
    adapter_dir, checkpoints = config.adapter_dir, config.checkpoints(settings)
    _check_writable(adapter_dir, "--output-dir")
    _check_writable(checkpoints, "--checkpoint-dir")
    resume = _find_resume(config, checkpoints)
    if config.init_adapter is not None:
        _check_init_adapter(config)
    if on_ready:
        on_ready(adapter_dir, checkpoints, len(train_rows))

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
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(config.init_adapter), is_trainable=True)
    else:
        model = get_peft_model(model, to_lora_config(config))

    def tokenized(rows: list[dict[str, Any]], loss_on: LossOn) -> Any:
        ds = Dataset.from_list(rows)
        return ds.map(
            tokenize_function,
            batched=True,
            remove_columns=ds.column_names,
            fn_kwargs={"tokenizer": tokenizer, "max_length": config.max_length, "loss_on": loss_on},
            desc="tokenizing",
        )

    train_ds = tokenized(train_rows, config.loss_on)
    # Validation loss is always on target tokens: that is the number that says whether it learned.
    val_ds = tokenized(val_rows, "target") if val_rows else None
    collator = DataCollatorForSeq2Seq(
        tokenizer,
        padding="max_length" if config.padding == "max_length" else True,
        max_length=config.max_length if config.padding == "max_length" else None,
        label_pad_token_id=IGNORE_INDEX,
        pad_to_multiple_of=None,
    )
    if config.loss_on == "target":
        collator = TargetLogitsCollator(collator)
    args = to_training_arguments(config, checkpoints, has_eval=val_ds is not None)
    if not cuda_available():
        # Under torchrun each rank gets its share of the cores, not all of them.
        torch.set_num_threads(config.threads or max(1, (os.cpu_count() or 1) // args.world_size))
    if not progress:
        args.disable_tqdm = True
    log_path = adapter_dir / "training_log.jsonl"
    if resume is None and log_path.exists() and args.process_index == 0:
        log_path.unlink()  # a fresh run starts a fresh log; a resumed run appends
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=val_ds,
        data_collator=collator,
        callbacks=[_make_log_callback(log_path, args.process_index == 0)],
        compute_loss_func=make_loss_function(config.label_weight)
        if config.loss_on == "target"
        else None,
    )
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=resume)
    seconds = time.perf_counter() - started
    final_val = trainer.evaluate()["eval_loss"] if val_ds is not None else None
    if args.process_index != 0:
        return adapter_dir
    trainer.model.save_pretrained(adapter_dir)
    tokenizer.save_pretrained(adapter_dir)
    summary = {
        "train_loss": result.training_loss,
        "val_loss_target_tokens": final_val,
        "global_step": trainer.state.global_step,
        "seconds": round(seconds, 1),
        "tokens_seen": int(getattr(trainer.state, "num_input_tokens_seen", 0) or 0),
        "train_examples": len(train_rows),
        # `axon evaluate` refuses test files from these repositories (inflated numbers).
        "training_repos": sorted({str(r["repo"]) for r in train_rows if r.get("repo")}),
        "val_examples_for_loss": len(val_rows),
        "resumed_from": resume,
        "device": "cuda" if cuda_available() else "cpu",
        "dtype": str(resolve_dtype(config.precision)).replace("torch.", ""),
        "val_loss_by_part": None,
    }
    if val_rows:
        # The same validation examples, the loss split into the verdict token and the finding
        # lines; and as many training examples, so the card shows the generalization gap per part.
        from axon_infralinter.models.loss_parts import finding_rule_ids, target_loss_by_part

        known = {rule for row in train_rows for rule in finding_rule_ids(row["target_text"])}
        step = max(1.0, len(train_rows) / len(val_rows))
        train_sample = [
            train_rows[int(i * step)] for i in range(min(len(val_rows), len(train_rows)))
        ]
        summary["val_loss_by_part"] = target_loss_by_part(
            trainer.model, tokenizer, val_rows, config.max_length, known_rule_ids=known
        )
        summary["train_loss_by_part"] = target_loss_by_part(
            trainer.model, tokenizer, train_sample, config.max_length, known_rule_ids=known
        )
    data_hashes = {
        split: sha256_file(config.data_dir / f"{split}.jsonl")
        for split in ("train", "val", "test")
        if (config.data_dir / f"{split}.jsonl").is_file()
    }
    atomic_write_json(
        adapter_dir / "train_config.json",
        {"config": config_to_dict(config), "summary": summary, "data_sha256": data_hashes},
    )
    if config.tune_threshold and val_rows:
        from axon_infralinter.models.predict import tune_threshold

        tune_threshold(
            adapter_dir,
            file_level_split(config.data_dir, "val"),
            settings,
            model=trainer.model,
            tokenizer=tokenizer,
        )
    write_model_card(adapter_dir, config, summary, data_hashes)
    return adapter_dir


def write_model_card(
    adapter_dir: Path, config: TrainConfig, summary: dict[str, Any], data_hashes: dict[str, str]
) -> Path:
    """README.md beside the adapter: base model, data hashes, config, losses, time, threshold."""
    threshold_file = adapter_dir / "threshold.json"
    threshold = json.loads(threshold_file.read_text()) if threshold_file.is_file() else None
    eval_file = adapter_dir / "eval_summary.json"
    evaluation = json.loads(eval_file.read_text()) if eval_file.is_file() else None
    lines = [
        f"# axon_lora_{config.profile}",
        "",
        "LoRA adapter for Axon InfraLinter: judges a Terraform file SECURE or INSECURE.",
        "",
        f"- Base model: `{config.base_model}`",
        f"- LoRA: r={config.lora_r}, alpha={config.lora_alpha}, dropout={config.lora_dropout}, "
        f"targets={config.lora_target_modules}",
        f"- Loss on: {config.loss_on} tokens; max length {config.max_length} tokens; "
        f"lr {config.learning_rate}; effective batch "
        f"{config.per_device_train_batch_size * config.gradient_accumulation_steps}",
        *_start_lines(config),
        f"- Steps: {summary['global_step']}; train examples: {summary['train_examples']}; "
        f"time: {summary['seconds']} s on {summary['device']} ({summary['dtype']})",
        f"- Final train loss: {_fmt(summary['train_loss'])}; target-token validation loss: "
        f"{_fmt(summary['val_loss_target_tokens'])} (the Trainer's: mean of per-batch means, "
        f"batches of {config.per_device_eval_batch_size})",
    ]
    lines += _loss_part_lines(summary.get("val_loss_by_part"))
    lines += _loss_part_lines(summary.get("train_loss_by_part"), "Training-sample")
    if threshold:
        lines.append(
            f"- Decision threshold on P(INSECURE): {threshold['threshold']:.3f} "
            f"(max F1 {_fmt(threshold['val_f1'])} on {threshold['n']} validation files)"
        )
    if evaluation:
        lines.append(f"- Test split: {json.dumps(evaluation)}")
    lines += ["", "## Data set (sha256)", ""]
    lines += [f"- {split}.jsonl: `{h}`" for split, h in data_hashes.items()]
    lines += [
        "",
        "## Config",
        "",
        "```json",
        json.dumps(config_to_dict(config), indent=2),
        "```",
        "",
    ]
    path = adapter_dir / "README.md"
    atomic_write_text(path, "\n".join(lines))
    return path


def _start_lines(config: TrainConfig) -> list[str]:
    """Model-card lines: the answer format of the data and where the LoRA weights started."""
    lines = []
    card = config.data_dir / "chunks_card.json"
    if card.is_file():
        fmt = json.loads(card.read_text()).get("answer_format", "titles")
        lines.append(f"- Answer format: `{fmt}` (`data.prompt.build_target`)")
    if config.init_adapter is not None:
        lines.append(
            f"- Started from the LoRA weights of `{config.init_adapter}` (continued training), "
            "not from a fresh LoRA init"
        )
    return lines


def _loss_part_lines(by_part: dict[str, Any] | None, split: str = "Validation") -> list[str]:
    """Model-card lines: the target-token loss per part of the answer, and of the rule ids whose
    rule the training answers name or not."""
    if not by_part:
        return []
    cells = [
        f"{name} {_fmt(part['mean_loss'])} ({part['tokens']} tokens, "
        f"{100 * (part['share_of_loss'] or 0):.0f}% of the loss)"
        for name, part in by_part["parts"].items()
        if part["tokens"]
    ]
    lines = [
        f"- {split} loss per target token ({by_part['examples']} examples, "
        f"{by_part['target_tokens']} tokens): {_fmt(by_part['mean_target_token_loss'])}; "
        "by part of the answer: " + "; ".join(cells)
    ]
    rules = by_part.get("rule_id_tokens_by_training")
    if rules and (rules["seen"]["tokens"] or rules["unseen"]["tokens"]):
        lines.append(
            f"  - rule-id tokens of rules a training answer names: {_fmt(rules['seen']['mean_loss'])} "
            f"({rules['seen']['finding_lines']} finding lines); of rules none names: "
            f"{_fmt(rules['unseen']['mean_loss'])} ({rules['unseen']['finding_lines']} lines)"
        )
    return lines


def _fmt(value: float | None) -> str:
    return (
        "n/a"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else f"{value:.4f}"
    )


def read_adapter_base(adapter_dir: Path) -> str:
    """The base model an adapter was trained on (from train_config.json)."""
    path = adapter_dir / "train_config.json"
    if not path.is_file():
        raise ModelError(f"{adapter_dir} has no train_config.json: not an axon adapter")
    return str(json.loads(path.read_text())["config"]["base_model"])
