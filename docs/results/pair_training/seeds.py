"""Run H2's recipe, shortened, with training seeds 1-3: the spread of the pairwise score across seeds.

Each seed continues from the shipped adapter for STEPS steps of 8 items (`data/v2/chunks` and
`data/v2/pairs`, pair weight 2, lr 1e-4, the cosine schedule over STEPS), without threshold tuning
(the pairwise score needs no threshold), into `~/.cache/axon/runs/seeds/seed-N`. Then score those
adapters with `axon evaluate --adapter ... --pairs data/v2_noE/pairs`.

    python docs/results/pair_training/seeds.py STEPS SEED...
"""

from __future__ import annotations

import sys
from pathlib import Path

from axon_infralinter.models.train_lora import resolve_config, train
from axon_infralinter.settings import load_settings

HOME = Path.home() / ".cache" / "axon"


def main(steps: int, seeds: list[int]) -> None:
    for seed in seeds:
        config = resolve_config(
            data_dir=Path("data/v2/chunks"),
            pairs_dir=Path("data/v2/pairs"),
            init_adapter=Path("axon_infralinter/adapters/default"),
            max_train_examples=2000,
            max_steps=steps,
            pair_weight=2.0,
            learning_rate=1e-4,
            seed=seed,
            tune_threshold=False,
            eval_steps=10_000,
            output_dir=HOME / "runs" / "seeds" / f"seed-{seed}",
            checkpoint_dir=HOME / "checkpoints" / "seeds" / f"seed-{seed}",
        )
        train(config, load_settings())


if __name__ == "__main__":
    main(int(sys.argv[1]), [int(s) for s in sys.argv[2:]])
