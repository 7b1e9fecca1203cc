"""The only reader of the environment.

Variables:
    AXON_HOME: cache and long-run state (scanner cache, verdict cache, dequantized model,
        checkpoints); default `~/.cache/axon`.
    AXON_CORPUS: default corpus folder for `axon dataset build` and `axon demo`.
    LORA_OUTPUT_DIR: default adapter folder for `axon evaluate` (the spec's name).
    AXON_EVAL_MODE: `deterministic` (greedy, default) or `stochastic` (sampling) for generate mode.
    AXON_EVAL_TEMPERATURE: sampling temperature in stochastic mode; default 0.7.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from axon_infralinter.errors import ConfigError

EvalMode = Literal["deterministic", "stochastic"]

#: Where the shared corpus sits beside a checkout of this repository.
SHARED_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "terraform-corpus"


@dataclass(frozen=True)
class Settings:
    """Values read from the environment, with their defaults applied."""

    home: Path
    """Cache and state folder (AXON_HOME)."""
    corpus: Path | None
    """Default corpus (AXON_CORPUS), else the shared corpus beside the checkout when present."""
    lora_output_dir: Path | None
    """Default adapter folder for evaluation (LORA_OUTPUT_DIR)."""
    eval_mode: EvalMode
    """Generate-mode decoding (AXON_EVAL_MODE)."""
    eval_temperature: float
    """Sampling temperature in stochastic mode (AXON_EVAL_TEMPERATURE)."""

    @property
    def scan_cache(self) -> Path:
        """Folder of cached scanner results, one JSON per (tool, version, file sha256)."""
        return self.home / "scan-cache"

    @property
    def verdict_cache(self) -> Path:
        """Folder of `axon scan`'s cached verdicts, one JSON per (judge fingerprint, chunk sha256)."""
        return self.home / "verdict-cache"

    @property
    def anchor_margins(self) -> Path:
        """Folder of the starting model's decision margins for `axon train --anchor-weight`, one
        JSON per (starting weights, tokenized training items) (`pair_train.margins_key`)."""
        return self.home / "anchor-margins"

    @property
    def model_cache(self) -> Path:
        """Folder of dequantized base models (safetensors)."""
        return self.home / "models"


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read the settings from `env` (default: the process environment)."""
    env = os.environ if env is None else env
    home = Path(env.get("AXON_HOME") or Path.home() / ".cache" / "axon").expanduser()
    corpus_raw = env.get("AXON_CORPUS")
    corpus = Path(corpus_raw).expanduser() if corpus_raw else None
    if corpus is None and SHARED_CORPUS.is_dir():
        corpus = SHARED_CORPUS
    lora = env.get("LORA_OUTPUT_DIR")
    mode = env.get("AXON_EVAL_MODE", "deterministic")
    if mode not in ("deterministic", "stochastic"):
        raise ConfigError(f"AXON_EVAL_MODE must be deterministic or stochastic, got {mode!r}")
    temp_raw = env.get("AXON_EVAL_TEMPERATURE", "0.7")
    try:
        temperature = float(temp_raw)
    except ValueError:
        raise ConfigError(f"AXON_EVAL_TEMPERATURE must be a number, got {temp_raw!r}") from None
    if temperature <= 0:
        raise ConfigError(f"AXON_EVAL_TEMPERATURE must be > 0, got {temperature}")
    return Settings(
        home=home,
        corpus=corpus,
        lora_output_dir=Path(lora).expanduser() if lora else None,
        eval_mode=mode,  # type: ignore[arg-type]
        eval_temperature=temperature,
    )
