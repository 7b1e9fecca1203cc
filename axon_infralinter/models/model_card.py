"""The model card: README.md beside an adapter (base model, data hashes, config, losses, threshold)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from axon_infralinter.files import atomic_write_text
from axon_infralinter.models.train_config import TrainConfig, config_to_dict
from axon_infralinter.schema import read_adapter_meta, read_json_object


def write_model_card(
    adapter_dir: Path, config: TrainConfig, summary: dict[str, Any], data_hashes: dict[str, str]
) -> Path:
    """README.md beside the adapter: base model, data hashes, config, losses, time, threshold."""
    meta = read_adapter_meta(adapter_dir)
    threshold, evaluation = meta.tuning, meta.evaluation
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
        fmt = read_json_object(card).get("answer_format", "titles")
        lines.append(f"- Answer format: `{fmt}` (`data.prompt.build_target`)")
    if config.init_adapter is not None:
        lines.append(
            f"- Started from the LoRA weights of `{config.init_adapter}` (continued training), "
            "not from a fresh LoRA init"
        )
    if config.pairs_dir is not None:
        lines.append(
            f"- Minimal pairs from `{config.pairs_dir}/train.jsonl`, both members in one batch, "
            f"ranking term weight {config.pair_weight} (`models.pair_train`); single examples "
            f"capped at {config.max_train_examples or 'all'}"
        )
        if config.anchor_weight:
            lines.append(
                f"- Anchor term weight {config.anchor_weight}: single examples' decision margins "
                "held near the starting model's, (d - d_start)^2 (`models.pair_train`)"
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
