"""The training config: `TrainConfig`, the shipped profiles, and its translation to library objects.

One loader: defaults (the dataclass) -> profile (configs/*.yaml, sparse) -> CLI flags
(`resolve_config`). `to_lora_config`, `to_quantization_options` and `to_training_arguments` turn a
config into peft / transformers objects in small pure functions, testable without a model.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from axon_infralinter.errors import ConfigError
from axon_infralinter.models.base_model import (
    EMBEDDED_SMOLLM2,
    Precision,
    QuantizationOptions,
    cuda_available,
    resolve_dtype,
)
from axon_infralinter.models.tokens import LossOn
from axon_infralinter.settings import Settings

Padding = Literal["dynamic", "max_length"]


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
    """Batch examples of similar length together (less padding); not with pairs_dir (random)."""
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
    pairs_dir: Path | None = None
    """Folder of minimal pairs (`axon dataset mutate`): its train.jsonl's pairs are trained with both
    members in one forward pass and a ranking term (`models.pair_train`); its neutral variants
    join the training examples."""
    pair_weight: float = 1.0
    """Weight of the pairs' ranking term softplus(-(d_broken - d_clean)) (0: none)."""
    anchor_weight: float = 0.0
    """Weight of the anchor term (d - d_start)^2 on single examples: d_start is the starting
    model's (the --init-adapter's) decision margin on the same example, computed once before
    training (`models.pair_train`); it keeps real blocks' verdicts while the pairs train (0: none).
    Needs --pairs."""
    anchor_one_sided: bool = False
    """The anchor term only on a move away from the example's label: max(0, s (d_start - d))^2,
    s = +1 for an INSECURE example and -1 for a SECURE one. With the two-sided anchor an example
    the starting model judges wrong is held wrong (e.g. the SECURE blocks of a type it always
    flags); here it may move toward its label, and none may move away from it."""
    max_train_examples: int | None = None
    """Keep at most this many single training examples (data_dir's and the neutral variants;
    a seeded random sample); every pair is kept. None: all."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Reserved; must stay empty (unknown keys are rejected by the loader)."""

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        self.output_dir = Path(self.output_dir) if self.output_dir else None
        self.checkpoint_dir = Path(self.checkpoint_dir) if self.checkpoint_dir else None
        self.init_adapter = Path(self.init_adapter) if self.init_adapter else None
        self.pairs_dir = Path(self.pairs_dir) if self.pairs_dir else None
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
            (self.pairs_dir is None or self.loss_on == "target", "training with pairs needs loss_on target"),
            (self.pair_weight >= 0, f"--pair-weight must be >= 0, got {self.pair_weight}"),
            (self.anchor_weight >= 0, f"--anchor-weight must be >= 0, got {self.anchor_weight}"),
            (not self.anchor_weight or self.pairs_dir is not None, "--anchor-weight needs --pairs"),
            (not self.anchor_one_sided or self.anchor_weight > 0, "--anchor-one-sided needs --anchor-weight"),
            (self.max_train_examples is None or self.max_train_examples >= 1, "--max-train-examples must be >= 1"),
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
        # With pairs, length grouping would order each megabatch of 50 items long to short, and
        # a pair is twice a single's length: optimizer steps of only pairs, then of only single
        # examples (measured: 10 single-only steps pushed P(INSECURE) of val pairs to ~0).
        train_sampling_strategy="group_by_length"
        if config.group_by_length and config.pairs_dir is None
        else "random",
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
