"""`EvalConfig`, what `axon evaluate` runs, and the names of the baseline models.

It sits below `runs.py`, `baselines.py` and `evaluate.py`, which all need it: a run file copies
the config it was made with, the baselines read its label source and policy, and the stage takes
it as its argument.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from axon_infralinter.data import scanner
from axon_infralinter.errors import ConfigError

Mode = Literal["score", "generate"]
LabelSource = Literal["both", "checkov", "tfsec", "external"]

#: The two scanners, in the order their runs are written.
SCANNERS: tuple[Literal["checkov"], Literal["tfsec"]] = ("checkov", "tfsec")
#: Model name of the constant "always INSECURE" reference run.
CONSTANT_MODEL = "constant"


@dataclass
class EvalConfig:
    """What `axon evaluate` runs. Defaults are the CLI defaults."""

    data_dir: Path = Path("data")
    """Folder holding `test.jsonl` (--data)."""
    runs_dir: Path = Path("data/eval_runs")
    """Where run files are written and looked up for resuming (--runs-dir)."""
    adapter: Path | None = None
    """LoRA adapter folder (--adapter); None: see `resolve_adapter` (else the base model)."""
    base_model: str | None = None
    """Base model id or folder (--base-model); None: the adapter's own, else the default."""
    mode: Mode = "score"
    """`score`: P(INSECURE) from the answer token; `generate`: parse a generated answer (--mode)."""
    run_id: int = 1
    """Run number N in the file name; repeated runs of one setup differ by it (--run-id)."""
    limit: int | None = None
    """Evaluate only N records, evenly spaced over the file (--limit; see `spaced_sample`)."""
    baselines: bool = False
    """Also run Checkov and tfsec (--baselines)."""
    labels_csv: Path | None = None
    """Evaluate an external folder labelled by a `path,label` CSV instead of test.jsonl (--labels)."""
    force: bool = False
    """Recompute runs that are already finished (--force)."""
    seed: int | None = None
    """Sampling seed for generate mode in stochastic AXON_EVAL_MODE (--seed)."""
    explain: bool = False
    """Score mode: also generate the explanation of files predicted INSECURE (--explain)."""
    batch_size: int = 8
    """Prompts per model call (--batch-size); the predictor's own default."""
    policy: str | None = scanner.DEFAULT_POLICY
    """Label policy name for baselines and cross-labeler views (--policy); None: the default."""
    pairs_dir: Path | None = None
    """Evaluate on the minimal pairs of this folder's `test.jsonl` (`axon dataset mutate`) instead
    of the test files (--pairs); runs go to `<runs_dir>/pairs/`, baselines still train on
    `data_dir`'s splits."""

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        self.runs_dir = Path(self.runs_dir)
        self.adapter = Path(self.adapter) if self.adapter is not None else None
        self.labels_csv = Path(self.labels_csv) if self.labels_csv is not None else None
        self.pairs_dir = Path(self.pairs_dir) if self.pairs_dir is not None else None
        if self.pairs_dir is not None and self.labels_csv is not None:
            raise ConfigError("--pairs and --labels cannot be combined")
        if self.mode not in ("score", "generate"):
            raise ConfigError(f"--mode must be score or generate, got {self.mode!r}")
        if self.run_id < 1:
            raise ConfigError(f"--run-id must be >= 1, got {self.run_id}")
        if self.limit is not None and self.limit <= 0:
            raise ConfigError(f"--limit must be > 0, got {self.limit}")
        if self.batch_size <= 0:
            raise ConfigError(f"--batch-size must be > 0, got {self.batch_size}")
        if self.seed is not None and self.seed < 0:
            raise ConfigError(f"--seed must be >= 0, got {self.seed}")
        if self.policy is not None:
            resolve_policy(self.policy)

    @property
    def label_source(self) -> LabelSource:
        """Labels of test.jsonl come from both scanners; a CSV's labels come from outside."""
        return "external" if self.labels_csv is not None else "both"

    @property
    def source_path(self) -> Path:
        """The file the evaluated records come from (recorded as `dataset.path`)."""
        if self.pairs_dir is not None:
            return self.pairs_dir / "test.jsonl"
        return self.labels_csv if self.labels_csv is not None else self.data_dir / "test.jsonl"


def resolve_policy(name: str | None) -> str:
    """Return the label policy name to use, checked against `data.scanner.POLICIES`.

    Raises:
        ConfigError: unknown policy name.
    """
    resolved = scanner.DEFAULT_POLICY if name is None else name
    if resolved not in scanner.POLICIES:
        valid = ", ".join(sorted(scanner.POLICIES))
        raise ConfigError(f"--policy must be one of {valid}, got {resolved!r}")
    return resolved
