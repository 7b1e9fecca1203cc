"""The one place that turns Terraform text into a verdict (used by evaluate and scan).

Two modes:

* score (default for headline numbers): one forward pass over the prompt followed by the "\\n\\n"
  that opens the answer. The two label continuations, `SECURE` and `INSECURE`, differ at their
  first token, so P(INSECURE) = softmax over those two first-token logits. No parsing, no sampling
  noise, and a score that gives ROC and PR curves. The decision threshold is tuned on the
  validation split and saved beside the adapter (`threshold.json`; 0.5 without one).
* generate: `model.generate` with `max_new_tokens=50`, greedy (AXON_EVAL_MODE=deterministic) or
  sampled (stochastic, AXON_EVAL_TEMPERATURE, a seed); `parse_label` reads the label back and
  returns None when it cannot (counted as a parse failure, never as a class).

Prompts are built by `data.prompt.build_prompt` and truncated exactly as in training.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from axon_infralinter.data.prompt import build_prompt, split_prompt
from axon_infralinter.errors import ModelError
from axon_infralinter.models.base_model import (
    EMBEDDED_SMOLLM2,
    cpu_supports_bf16,
    cuda_available,
    load_base_model,
)
from axon_infralinter.models.tokens import code_budget, label_token_ids, prompt_ids
from axon_infralinter.schema import Label, read_adapter_meta
from axon_infralinter.settings import Settings, load_settings
from axon_infralinter.terraform.chunks import plan_chunks

DEFAULT_MAX_LENGTH = 1024
DEFAULT_THRESHOLD = 0.5
_LABEL_RE = re.compile(r"\b(INSECURE|SECURE|NOT\s+SECURE|UNSECURE)\b", re.IGNORECASE)


def parse_label(output: str) -> Label | None:
    """SECURE/INSECURE from a generated answer; None when no label can be read.

    The first label word wins ("INSECURE ... not SECURE" is INSECURE); "not secure" and
    "unsecure" count as INSECURE.
    """
    m = _LABEL_RE.search(output or "")
    if not m:
        return None
    word = re.sub(r"\s+", " ", m.group(1).upper())
    return "SECURE" if word == "SECURE" else "INSECURE"


@dataclass
class Predictor:
    """A loaded model + tokenizer that scores and explains Terraform text."""

    model: Any
    tokenizer: Any
    name: str
    threshold: float = DEFAULT_THRESHOLD
    max_length: int = DEFAULT_MAX_LENGTH
    keep_comments: bool = False
    adapter: Path | None = None
    base_model: str = EMBEDDED_SMOLLM2
    """The base model it was loaded from (`load_base_model` name: embedded, folder or HF id)."""
    bf16_autocast: bool = True
    """On a CPU with bf16 support, run the matmuls in bf16 (False: plain fp32)."""
    max_batch_tokens: int = 2048
    """Score mode: at most this many tokens (rows x longest) in one forward pass. Past about 2,000
    the activations outgrow the CPU's caches and the elementwise work slows down (8 x 1,000
    tokens: 2,170 tokens/s, 2 x 1,000: 3,164, on this project's 2-core Xeon)."""
    tokens_processed: int = 0
    stats: dict[str, float] = field(default_factory=dict)

    @property
    def max_code_tokens(self) -> int:
        """Code tokens that fit beside the instruction and the answer without truncation."""
        return code_budget(self.tokenizer, self.max_length)

    def count_tokens(self, code: str) -> int:
        """Tokens of the code alone."""
        return len(self.tokenizer(code, add_special_tokens=False)["input_ids"])

    def _label_token_ids(self) -> tuple[int, int]:
        return label_token_ids(self.tokenizer)

    def _autocast(self) -> Any:
        import contextlib

        import torch

        if cuda_available():
            return contextlib.nullcontext()  # weights already bf16 / 4-bit on CUDA
        if self.bf16_autocast and cpu_supports_bf16():
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def score_prompts(
        self, prompts: Sequence[str], batch_size: int = 8, progress: bool = False
    ) -> list[float]:
        """P(INSECURE) for ready-built prompts (input_text), batched and length-sorted.

        Every prompt starts with the same instruction (~42 tokens, a quarter of an average
        chunk's prompt), so its keys and values are computed once per call and shared by every
        batch (`shared_prefix_length`, `_shared_prefix_cache`); each batch runs only the rest of its
        prompts, right-padded: causal attention keeps the padding after the last real token out
        of what that token sees, so no attention mask is needed. The same scores as one full
        forward pass per prompt in fp32 (`tests/integration/test_score_mode.py`), and up to
        rounding under bf16 (253 blocks of 50 corpus files: max |change| 0.013, no verdict
        changed; a cold `axon scan` of them 1.22x faster).
        """
        import torch

        secure_id, insecure_id = self._label_token_ids()
        ids = [prompt_ids(p, self.tokenizer, self.max_length) for p in prompts]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        scores: list[float] = [0.0] * len(ids)
        device = self.model.device
        pad = self.tokenizer.pad_token_id
        head = self.model.get_output_embeddings().weight.detach()[[secure_id, insecure_id]].float()
        from peft import PeftModel

        # Unmerged (merge=False, or a 4-bit base): the decoder sits under the PEFT wrapper.
        base = self.model.get_base_model() if isinstance(self.model, PeftModel) else self.model
        decoder = base.get_decoder()
        started = time.perf_counter()
        bar = tqdm(
            total=len(ids),
            desc=f"scoring ({self.name})",
            unit="file",
            disable=not progress,
            leave=False,
        )
        with torch.inference_mode(), self._autocast():
            n_prefix = shared_prefix_length(ids)
            prefix: list[tuple[Any, Any]] = []
            if n_prefix:
                out = decoder(
                    input_ids=torch.tensor([ids[0][:n_prefix]], device=device), use_cache=True
                )
                prefix = [(layer.keys, layer.values) for layer in out.cache.layers]
                self.stats["tokens_computed"] = self.stats.get("tokens_computed", 0) + n_prefix
            for chunk in token_batches(
                [len(ids[i]) - n_prefix for i in order], batch_size, self.max_batch_tokens
            ):
                chunk = [order[k] for k in chunk]
                rest = [ids[i][n_prefix:] for i in chunk]
                width = max(len(r) for r in rest)
                input_ids = torch.full((len(chunk), width), pad, dtype=torch.long)
                for row, seq in enumerate(rest):
                    input_ids[row, : len(seq)] = torch.tensor(seq)
                # The decoder alone (no LM head over 49k tokens, no per-layer hidden states: peak
                # memory stays near the weights). bf16 logits near 30 move in steps of 0.125, which
                # ties different files, so the two label logits are computed here in fp32 from the
                # final (normed) hidden state.
                out = decoder(
                    input_ids=input_ids.to(device),
                    position_ids=torch.arange(n_prefix, n_prefix + width, device=device)
                    .unsqueeze(0)
                    .expand(len(chunk), -1),
                    cache=_shared_prefix_cache(prefix, len(chunk)) if prefix else None,
                    use_cache=bool(prefix),
                )
                last = torch.tensor([len(r) - 1 for r in rest], device=device)
                hidden = out.last_hidden_state[
                    torch.arange(len(chunk), device=device), last
                ].float()
                with torch.autocast(device.type, enabled=False):
                    pair = hidden @ head.T
                probs = torch.softmax(pair, dim=-1)[:, 1].tolist()
                for i, p in zip(chunk, probs, strict=True):
                    scores[i] = float(p)
                real = sum(len(r) for r in rest)
                self.tokens_processed += real + n_prefix * len(chunk)
                self.stats["tokens_computed"] = self.stats.get("tokens_computed", 0) + real
                bar.update(len(chunk))
        bar.close()
        self.stats["score_seconds"] = (
            self.stats.get("score_seconds", 0.0) + time.perf_counter() - started
        )
        return scores

    def document_pieces(self, prompts: Sequence[str]) -> list[list[str]]:
        """The prompts each file is judged by: itself when its code fits, else one per block.

        A file's prompt is rebuilt from its code by `build_prompt`, so prompts stored by an older
        data set (blank lines kept) are judged as `axon scan` judges the file today.
        """
        budget = self.max_code_tokens
        out: list[list[str]] = []
        for prompt in prompts:
            code = split_prompt(prompt)[1]
            chunks = [c for c in plan_chunks(code, budget, self.count_tokens, True) if c.code]
            if len(chunks) <= 1:
                out.append([build_prompt(code, keep_comments=True)])
            else:
                out.append([build_prompt(c.code, keep_comments=True) for c in chunks])
        return out

    def _score_pieces(
        self, pieces: Sequence[Sequence[str]], batch_size: int, progress: bool
    ) -> list[list[float]]:
        flat = [p for group in pieces for p in group]
        scores = iter(self.score_prompts(flat, batch_size=batch_size, progress=progress))
        self.stats["chunks_scored"] = self.stats.get("chunks_scored", 0) + len(flat)
        return [[next(scores) for _ in group] for group in pieces]

    def score_documents(
        self, prompts: Sequence[str], batch_size: int = 8, progress: bool = False
    ) -> list[float]:
        """P(INSECURE) of whole files given as prompts, judged the way `axon scan` judges them.

        A file whose code fits `max_code_tokens` is scored whole; a longer one is split into its
        top-level blocks (`terraform.chunks.plan_chunks`), each block scored alone, and the file gets its
        worst block's score. The model is trained on the same units (`data.chunks`).
        """
        groups = self._score_pieces(self.document_pieces(prompts), batch_size, progress)
        return [max(g) for g in groups]

    def worst_block_prompts(
        self, prompts: Sequence[str], batch_size: int = 8, progress: bool = False
    ) -> list[str]:
        """Per file, the prompt generation should read: the file, or its highest-scoring block.

        Files that fit are returned as they are without scoring; split files cost one forward pass
        per block.
        """
        pieces = self.document_pieces(prompts)
        split = [i for i, group in enumerate(pieces) if len(group) > 1]
        out = [group[0] for group in pieces]
        if split:
            groups = self._score_pieces([pieces[i] for i in split], batch_size, progress)
            for i, scores in zip(split, groups, strict=True):
                out[i] = pieces[i][max(range(len(scores)), key=scores.__getitem__)]
        return out

    def score(
        self, codes: Sequence[str], batch_size: int = 8, progress: bool = False
    ) -> list[float]:
        """P(INSECURE) for Terraform code (prompts built with `build_prompt`)."""
        return self.score_prompts(
            [build_prompt(c, self.keep_comments) for c in codes], batch_size, progress
        )

    def generate_prompts(
        self,
        prompts: Sequence[str],
        max_new_tokens: int = 50,
        do_sample: bool = False,
        temperature: float = 0.7,
        seed: int | None = None,
        batch_size: int = 4,
        progress: bool = False,
    ) -> list[str]:
        """Generated answers (text after the prompt) for ready-built prompts; KV cache on."""
        import torch
        from transformers import set_seed

        if seed is not None:
            set_seed(seed)
        ids = [
            prompt_ids(p, self.tokenizer, self.max_length, reserve=max_new_tokens) for p in prompts
        ]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        outputs: list[str] = [""] * len(ids)
        pad = self.tokenizer.pad_token_id
        device = self.model.device
        bar = tqdm(
            total=len(ids),
            desc=f"generating ({self.name})",
            unit="file",
            disable=not progress,
            leave=False,
        )
        with torch.inference_mode(), self._autocast():
            for start in range(0, len(order), batch_size):
                chunk = order[start : start + batch_size]
                width = max(len(ids[i]) for i in chunk)
                input_ids = torch.full((len(chunk), width), pad, dtype=torch.long)
                mask = torch.zeros((len(chunk), width), dtype=torch.long)
                for row, i in enumerate(chunk):
                    seq = ids[i]
                    input_ids[row, width - len(seq) :] = torch.tensor(seq)
                    mask[row, width - len(seq) :] = 1
                kwargs: dict[str, Any] = {
                    "max_new_tokens": max_new_tokens,
                    "do_sample": do_sample,
                    "pad_token_id": pad,
                    "eos_token_id": self.tokenizer.eos_token_id,
                    "use_cache": True,
                }
                if do_sample:
                    kwargs.update(temperature=temperature, top_p=1.0, top_k=0)
                else:
                    kwargs.update(temperature=None, top_p=None, top_k=None)
                out = self.model.generate(
                    input_ids=input_ids.to(device), attention_mask=mask.to(device), **kwargs
                )
                for row, i in enumerate(chunk):
                    new = out[row, width:]
                    outputs[i] = self.tokenizer.decode(new, skip_special_tokens=True).strip()
                    self.tokens_processed += int(mask[row].sum()) + int((new != pad).sum())
                bar.update(len(chunk))
        bar.close()
        return outputs

    def generate(self, codes: Sequence[str], **kwargs: Any) -> list[str]:
        """Generated answers for Terraform code."""
        return self.generate_prompts([build_prompt(c, self.keep_comments) for c in codes], **kwargs)


def token_batches(lengths: Sequence[int], max_rows: int, max_tokens: int) -> list[list[int]]:
    """Consecutive batches of positions of `lengths` (sorted ascending): at most `max_rows` rows
    and rows x the batch's longest length <= `max_tokens` (a longer one goes alone)."""
    batches: list[list[int]] = []
    for k, n in enumerate(lengths):
        if batches and len(batches[-1]) < max_rows and (len(batches[-1]) + 1) * n <= max_tokens:
            batches[-1].append(k)
        else:
            batches.append([k])
    return batches


def shared_prefix_length(ids: Sequence[Sequence[int]]) -> int:
    """Tokens every sequence starts with, leaving each at least one token of its own (whose hidden
    state gives the verdict); 0 for no sequences."""
    if not ids:
        return 0
    first, n = ids[0], min(len(seq) for seq in ids) - 1
    for seq in ids[1:]:
        k = 0
        while k < n and seq[k] == first[k]:
            k += 1
        n = k
    return max(n, 0)


def _shared_prefix_cache(prefix: Sequence[tuple[Any, Any]], batch: int) -> Any:
    """A KV cache holding the shared prefix for `batch` rows, which a forward pass reads but does
    not grow: nothing is decoded after scoring, so the batch's own keys and values are not kept."""
    from transformers.cache_utils import Cache

    layers = []
    for keys, values in prefix:
        layer = _shared_prefix_layer_class()()
        layer.lazy_initialization(keys, values)
        layer.keys = keys.expand(batch, -1, -1, -1)
        layer.values = values.expand(batch, -1, -1, -1)
        layers.append(layer)
    return Cache(layers=layers)


@functools.cache
def _shared_prefix_layer_class() -> type:
    from transformers.cache_utils import DynamicLayer

    class SharedPrefixLayer(DynamicLayer):  # type: ignore[misc]
        """A cache layer that returns prefix + new keys/values without storing the new ones."""

        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> Any:
            import torch

            return (
                torch.cat([self.keys, key_states], dim=-2),
                torch.cat([self.values, value_states], dim=-2),
            )

    return SharedPrefixLayer


SHIPPED_ADAPTER = Path(__file__).resolve().parents[1] / "adapters" / "default"
"""The adapter shipped in the package (what `axon scan` judges with when nothing was trained)."""


def find_default_adapter() -> Path | None:
    """The trained adapter a user most likely means: models/axon_lora_smollm2-cpu, else the shipped one."""
    for candidate in (
        Path("models") / "axon_lora_smollm2-cpu",
        SHIPPED_ADAPTER,
    ):
        if (candidate / "adapter_config.json").is_file():
            return candidate
    return None


def load_predictor(
    adapter: Path | None,
    *,
    base_model: str | None = None,
    keep_comments: bool = False,
    settings: Settings | None = None,
    max_length: int | None = None,
    merge: bool = True,
    bf16: bool = True,
) -> Predictor:
    """Load the base model (and the LoRA adapter when given) for inference.

    Args:
        adapter: Adapter folder (adapter_config.json + adapter_model.safetensors), or None for the
            base model alone (zero-shot).
        base_model: Base model to use; default: the one the adapter was trained on, else SmolLM2.
        keep_comments: Judge code with its comments (default strips them).
        settings: Where the model cache lives.
        max_length: Prompt token budget; default the adapter's training max_length, else 1024.
        merge: Fold the LoRA weights into the base weights (W + BA): one matmul per projection
            instead of three, ~1.2-1.4x faster scoring and generation on CPU. The same function in
            fp32; under bf16 autocast both ways round differently (run D, 443 test files: mean
            |score change| 0.005, no verdict changed; on 40 val files both are 0.003 from fp32 on
            average). Never done on a quantized (4-bit) base.
        bf16: On a CPU with bf16 support, run the matmuls in bf16 under autocast, with the
            projection weights stored in bf16 (the LM head, embeddings and norms stay fp32).
            Autocast would round them to bf16 anyway, but it does not cache the cast of frozen
            weights, so every forward pass (every decoding step) re-cast ~106M parameters. The
            same scores and text bit for bit; generation and scoring ~1.2x faster (4 interleaved
            rounds on 8 test files: 48.2 vs 39.8 s and 17.8 vs 14.3 s). Peak memory does not
            drop: the cast happens after the fp32 load. False: plain fp32.

    Raises:
        ModelError: the adapter is missing or does not fit the base model.
    """
    settings = settings or load_settings()
    meta = None
    if adapter is not None:
        adapter = Path(adapter)
        if not (adapter / "adapter_config.json").is_file():
            raise ModelError(
                f"--adapter {adapter}: no adapter_config.json there (train one with `axon train`)"
            )
        meta = read_adapter_meta(adapter)
    base = base_model or (meta and meta.base_model) or EMBEDDED_SMOLLM2
    model, tokenizer = load_base_model(base, settings)
    name = "smollm2-base" if base == EMBEDDED_SMOLLM2 else f"{Path(base).name}-base"
    threshold = DEFAULT_THRESHOLD
    if adapter is not None:
        model = _attach_adapter(model, adapter, base, merge)
        name = adapter.name if adapter.name != "default" else "axon_lora_default"
        if meta is not None and meta.threshold is not None:
            threshold = meta.threshold
    model.eval()
    use_bf16 = bf16 and not cuda_available() and cpu_supports_bf16()
    if use_bf16:
        _store_projections_in_bf16(model)
    if not cuda_available():
        import os

        import torch

        torch.set_num_threads(os.cpu_count() or 1)
    return Predictor(
        model=model,
        tokenizer=tokenizer,
        name=name,
        threshold=threshold,
        max_length=max_length or (meta and meta.max_length) or DEFAULT_MAX_LENGTH,
        keep_comments=keep_comments,
        adapter=adapter,
        base_model=base,
        bf16_autocast=use_bf16,
    )


def _attach_adapter(model: Any, adapter: Path, base: str, merge: bool) -> Any:
    """The base model with the LoRA adapter loaded (and folded in when `merge`, never on 4-bit)."""
    from peft import PeftModel

    # transformers sets `hf_quantizer` on a model only when it loaded quantized (bitsandbytes 4-bit).
    quantized = getattr(model, "hf_quantizer", None) is not None
    try:
        model = PeftModel.from_pretrained(model, str(adapter))
    except (ValueError, RuntimeError, KeyError, OSError) as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"--adapter {adapter} does not fit base model {base!r}: {first}") from None
    if merge and not quantized:
        model = model.merge_and_unload()
    return model


def _store_projections_in_bf16(model: Any) -> None:
    """Cast every nn.Linear but the LM head (tied to the embeddings) to bf16, in place.

    The weights that stay fp32 (embeddings, norms) are first copied out of the safetensors file
    mapping they were loaded as views of: once the last projection is cast, nothing refers to the
    mapping, so it is released with the merged fp32 projections that the LoRA merge wrote into it
    (copy-on-write, ~425 MB for SmolLM2). Without the copy the mapping lived on: the process held
    1,035 MiB after loading instead of 736, and `axon scan` with explanations on 50 corpus files
    peaked at 1,566 MiB instead of 1,255 (`make bench` section 4). The same values bit for bit.
    """
    import torch

    head = model.get_output_embeddings()
    projections = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m is not head]
    cast = {id(p) for m in projections for p in m.parameters(recurse=False)}
    with torch.no_grad():
        for param in model.parameters():
            if id(param) not in cast:
                param.data = param.data.clone()
    for module in projections:
        module.to(torch.bfloat16)
