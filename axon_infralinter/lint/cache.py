"""The verdict cache of `axon scan`: a chunk judged once is never sent to the model again.

    cache = VerdictCache(settings.verdict_cache, judge_fingerprint(predictor, settings))
    report = scan(options, predictor, cache=cache)

An entry is keyed by the judge's fingerprint and the sha256 of the chunk's text (the code the model
reads, `terraform.chunks.Chunk.code`) and holds `{score, explanation}`:

    <AXON_HOME>/verdict-cache/<fingerprint[:32]>/<sha[:2]>/<sha>.json
    {"version": 1, "fingerprint": str, "sha256": str, "score": float, "explanation": str | null}

`explanation` is null until one was generated: `--no-explain` scans and SECURE chunks store the
score alone, and a later scan that wants an explanation for that chunk generates it then and
fills it in. The decision threshold is applied after the cache (it is not part of the key), so
`--threshold` never costs a model call. Identical blocks in different files share one entry.

The fingerprint (`judge_fingerprint`) is the sha256 of
- the base model's weight and tokenizer files (sha256 of each, remembered by path, size and
  modification time so that a 500 MB file is hashed once, not on every scan),
- the adapter's weights and `adapter_config.json` (`threshold.json` is left out on purpose),
- the prompt budget (`max_length`) and the numerics (CUDA, CPU bf16 or CPU fp32),
- `JUDGE_VERSION` and the source of the modules that turn a chunk into model input and a score
  (`_JUDGE_MODULES`: the prompt, the truncation rule, the chunking, the lexer, the predictor), and
  the package version (the rule catalog behind the explanations ships with it).

So a new adapter, base model, prompt or chunking rule starts a new cache and never reads an old
verdict. The same folder remembers which file texts parsed as HCL (`ParseCache`, `hcl-parsed/`), the other
half of a warm re-scan's time. Entries are written atomically (`files.atomic_write_json`): a killed scan leaves whole
entries or none. An entry that cannot be read back (truncated, edited, copied to another key) is
counted as corrupt and rescored, never fatal; so is a cache folder that cannot be written (the scan
goes on without storing).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib import util as importlib_util
from pathlib import Path
from typing import TYPE_CHECKING, Any

from axon_infralinter import __version__
from axon_infralinter.errors import InputError, ModelError
from axon_infralinter.files import atomic_write_json, atomic_write_text, sha256_file, sha256_text

if TYPE_CHECKING:
    from axon_infralinter.models.predict import Predictor
    from axon_infralinter.settings import Settings

ENTRY_VERSION = 1
"""Layout of one entry file; a reader refuses other versions."""
JUDGE_VERSION = 1
"""Bump to invalidate every cached verdict when what the model reads or answers for a given chunk
text changes in a way the hashed sources below do not show (a tokenizer library that tokenizes
differently, generate settings passed from elsewhere). Changes to the modules in `_JUDGE_MODULES`
invalidate the cache by themselves."""
_JUDGE_MODULES = (
    "axon_infralinter.data.prompt",
    "axon_infralinter.models.tokens",
    "axon_infralinter.models.predict",
    "axon_infralinter.terraform.chunks",
    "axon_infralinter.terraform.blocks",
    "axon_infralinter.terraform.lexer",
)
#: Files of a model folder that decide its function: weights, config, tokenizer.
_MODEL_FILES = (
    "*.safetensors", "*.bin", "*.gguf", "*.model", "config.json", "adapter_config.json",
    "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
    "vocab.json", "merges.txt",
)  # fmt: skip


@dataclass(frozen=True)
class CachedVerdict:
    """One cache entry: the model's P(INSECURE) of a chunk and, once generated, its explanation."""

    score: float
    """P(INSECURE), before any threshold."""
    explanation: str | None = None
    """The explanation read from the generated answer ("" when it named nothing); None when
    none was generated yet."""


def read_cache_entry(path: Path, fingerprint: str, sha: str) -> CachedVerdict:
    """The typed reader of one entry file.

    Raises:
        InputError: the file is unreadable, not JSON, of another version or key, or its values are
            not a score in [0, 1] and a string or null.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: unreadable cache entry ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: not a JSON object")
    if data.get("version") != ENTRY_VERSION:
        raise InputError(
            f"{path}: cache entry version {data.get('version')!r}, not {ENTRY_VERSION}"
        )
    if data.get("fingerprint") != fingerprint or data.get("sha256") != sha:
        raise InputError(f"{path}: entry of another key")
    score, explanation = data.get("score"), data.get("explanation")
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0.0 <= score <= 1.0:
        raise InputError(f"{path}: 'score' must be a number in [0, 1], got {score!r}")
    if explanation is not None and not isinstance(explanation, str):
        raise InputError(f"{path}: 'explanation' must be a string or null")
    return CachedVerdict(float(score), explanation)


@dataclass
class CacheCounts:
    """What one scan did with the cache."""

    hits: int = 0
    """Lookups answered from the cache."""
    misses: int = 0
    """Lookups with no entry."""
    corrupt: int = 0
    """Entries that could not be read back (rescored; counted in misses too)."""
    write_errors: int = 0
    """Entries that could not be written (the scan went on)."""


class ParseCache:
    """The file texts that parsed as HCL, remembered so that a re-scan does not parse them again.

    One empty marker file per text, named by its sha256, under a folder per HCL parser version
    (`<folder>/<parser version>/<sha[:2]>/<sha>`): another parser starts afresh. Only texts that
    parsed are marked (a file that does not parse is parsed again, to say why). A marker that
    cannot be written is skipped: the text is parsed again next time.
    """

    def __init__(self, folder: Path) -> None:
        from importlib import metadata

        try:
            parser = metadata.version("bc-python-hcl2")
        except metadata.PackageNotFoundError:
            parser = "unknown"
        self.folder = folder / f"bc-python-hcl2-{parser}"

    def _marker(self, text: str) -> Path:
        sha = sha256_text(text)
        return self.folder / sha[:2] / sha

    def holds(self, text: str) -> bool:
        """Whether this exact text parsed before."""
        return self._marker(text).is_file()

    def add(self, text: str) -> None:
        """Remember that this text parsed."""
        try:
            atomic_write_text(self._marker(text), "")
        except OSError:
            pass


class VerdictCache:
    """Entries of one judge (one fingerprint) under a cache folder."""

    def __init__(self, folder: Path, fingerprint: str) -> None:
        self.folder = folder
        self.fingerprint = fingerprint
        self.counts = CacheCounts()
        self.parsed = ParseCache(folder / "hcl-parsed")
        """Texts known to parse (judge-independent): `lint.inputs.read_terraform` skips them."""

    def path(self, sha: str) -> Path:
        """Where the entry of a chunk text's sha256 lives."""
        return self.folder / self.fingerprint[:32] / sha[:2] / f"{sha}.json"

    def get(self, sha: str) -> CachedVerdict | None:
        """The entry of a chunk text's sha256; None when absent or corrupt (then counted)."""
        path = self.path(sha)
        if not path.is_file():
            self.counts.misses += 1
            return None
        try:
            verdict = read_cache_entry(path, self.fingerprint, sha)
        except InputError:
            self.counts.misses += 1
            self.counts.corrupt += 1
            return None
        self.counts.hits += 1
        return verdict

    def put(self, sha: str, verdict: CachedVerdict) -> None:
        """Store an entry atomically; a failed write is counted, never raised."""
        entry = {
            "version": ENTRY_VERSION,
            "fingerprint": self.fingerprint,
            "sha256": sha,
            "score": verdict.score,
            "explanation": verdict.explanation,
        }
        try:
            atomic_write_json(self.path(sha), entry, indent=None)
        except OSError:
            self.counts.write_errors += 1


# --------------------------------------------------------------------------------------------
# The judge's fingerprint


def judge_fingerprint(predictor: Predictor, settings: Settings) -> str:
    """sha256 naming everything but the threshold that decides a chunk's score and explanation.

    Args:
        predictor: The loaded predictor (its base model name, adapter folder, max_length and
            numerics are read).
        settings: Where the base model lives and where file digests are remembered.

    Raises:
        ModelError: the base model cannot be found offline (as when loading it).
    """
    from axon_infralinter.models.base_model import cuda_available

    memo = settings.verdict_cache / "file-digests"
    if cuda_available():
        numerics = "cuda"
    else:
        numerics = "cpu-bf16" if predictor.bf16_autocast else "cpu-fp32"
    parts: dict[str, Any] = {
        "judge_version": JUDGE_VERSION,
        "package": __version__,
        "sources": _sources_digest(),
        "base_model": _folder_digest(_base_model_folder(predictor.base_model, settings), memo),
        "adapter": None if predictor.adapter is None else _folder_digest(predictor.adapter, memo),
        "max_length": predictor.max_length,
        "numerics": numerics,
    }
    return sha256_text(json.dumps(parts, sort_keys=True))


def _sources_digest() -> str:
    """sha256 of the source files of `_JUDGE_MODULES`."""
    digests = []
    for name in _JUDGE_MODULES:
        spec = importlib_util.find_spec(name)
        origin = spec.origin if spec is not None else None
        digests.append(f"{name}={sha256_file(Path(origin)) if origin else 'missing'}")
    return sha256_text("\n".join(digests))


def _base_model_folder(name: str, settings: Settings) -> Path:
    """The folder the base model's files are read from (resolved as `load_base_model` does)."""
    from axon_infralinter.models.base_model import resolve_base_model

    source = resolve_base_model(name, settings)
    if isinstance(source, Path):
        return source
    # A Hugging Face id: a lookup in the local cache only (nothing is fetched at run time).
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(source, "config.json")
    if not isinstance(found, str):
        raise ModelError(f"base model {source!r} is not in the local Hugging Face cache")
    return Path(found).parent


def _folder_digest(folder: Path, memo: Path) -> str:
    """sha256 over the names and contents of a model folder's files that decide its function."""
    files = sorted({p for pattern in _MODEL_FILES for p in folder.glob(pattern) if p.is_file()})
    return sha256_text("\n".join(f"{p.name}={_file_digest(p, memo)}" for p in files))


def _file_digest(path: Path, memo: Path) -> str:
    """sha256 of a file, remembered under `memo` by its real path, size and modification time."""
    real = Path(os.path.realpath(path))
    stat = real.stat()
    key = sha256_text(f"{real}\0{stat.st_size}\0{stat.st_mtime_ns}\0{stat.st_ino}")
    note = memo / f"{key}.txt"
    try:
        known = note.read_text(encoding="utf-8").strip()
        if len(known) == 64:
            return known
    except OSError:
        pass
    digest = sha256_file(real)
    try:
        atomic_write_text(note, digest + "\n")
    except OSError:
        pass  # read-only cache: hash again next time
    return digest
