"""Probe, not part of `make bench`: OpenVINO instead of eager PyTorch for the score pass.

    pip install openvino==2026.4.1   # not a project dependency
    python bench/probe_openvino.py [--chunks 300] [--rows 8] [--tokens 2048]

Scores the first CHUNKS prompts of `data/v2/chunks/test.jsonl` with run E (the shipped adapter)
twice: `Predictor.score_prompts` (PyTorch, bf16 matmuls, the instruction's keys and values shared;
its second, warm pass is timed) and run E's merged fp32 decoder converted with
`openvino.convert_model` (CPU plugin, its default inference precision: bf16 on AMX; whole prompts,
the same length-sorted token batches). Prints both times, the speed-up and how far the scores
and verdicts move. Measured on the 2-core Xeon with AMX (README, "Measured so far"): 1.17x, mean
|score change| 0.011, 1 verdict of 300 flipped; not adopted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=300)
    parser.add_argument("--rows", type=int, default=8, help="rows per OpenVINO batch")
    parser.add_argument("--tokens", type=int, default=2048, help="tokens per OpenVINO batch")
    args = parser.parse_args()
    try:
        import openvino as ov
    except ImportError:
        print("probe_openvino: openvino is not installed (pip install openvino==2026.4.1)")
        return 2
    data = REPO / "data/v2/chunks/test.jsonl"
    if not data.is_file():
        print(f"probe_openvino: no {data} (run `axon dataset chunks` first)")
        return 2
    import torch

    from axon_infralinter.models.predict import load_predictor, prompt_ids, token_batches
    from axon_infralinter.models.tokens import label_token_ids

    with data.open(encoding="utf-8") as fh:
        prompts = [
            json.loads(line)["input_text"] for _, line in zip(range(args.chunks), fh, strict=False)
        ]
    adapter = REPO / "axon_infralinter/adapters/default"
    torch_predictor = load_predictor(adapter)
    torch_predictor.score_prompts(prompts[:8])  # warm-up
    started = time.perf_counter()
    torch_scores = torch_predictor.score_prompts(prompts)
    torch_s = time.perf_counter() - started

    fp32 = load_predictor(adapter, bf16=False)
    decoder = fp32.model.get_decoder()

    class LastHidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.decoder = decoder

        def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
            # An explicit all-ones mask: without one, transformers looks for packed sequences
            # with aten::diff, which OpenVINO cannot convert. Right padding needs no mask.
            mask = torch.ones_like(input_ids)
            return self.decoder(input_ids=input_ids, attention_mask=mask, use_cache=False)[0]

    started = time.perf_counter()
    with torch.no_grad():
        converted = ov.convert_model(
            LastHidden().eval(),
            example_input=(torch.ones((2, 16), dtype=torch.long),),
            input=[ov.PartialShape([-1, -1])],
        )
    convert_s = time.perf_counter() - started
    compiled = ov.Core().compile_model(converted, "CPU", {"INFERENCE_NUM_THREADS": 2})
    request = compiled.create_infer_request()
    tokenizer = fp32.tokenizer
    secure, insecure = label_token_ids(tokenizer)
    head = fp32.model.get_output_embeddings().weight.detach()[[secure, insecure]].float()
    ids = [prompt_ids(p, tokenizer, fp32.max_length) for p in prompts]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    ov_scores = [0.0] * len(ids)
    started = time.perf_counter()
    for batch in token_batches([len(ids[i]) for i in order], args.rows, args.tokens):
        rows = [order[k] for k in batch]
        width = max(len(ids[i]) for i in rows)
        x = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
        for r, i in enumerate(rows):
            x[r, : len(ids[i])] = torch.tensor(ids[i])
        hidden = torch.from_numpy(request.infer({0: x.numpy()})[0].copy())
        last = hidden[torch.arange(len(rows)), torch.tensor([len(ids[i]) - 1 for i in rows])]
        probs = torch.softmax(last.float() @ head.T, dim=-1)[:, 1].tolist()
        for i, p in zip(rows, probs, strict=True):
            ov_scores[i] = p
    ov_s = time.perf_counter() - started
    threshold = torch_predictor.threshold
    moved = [abs(a - b) for a, b in zip(torch_scores, ov_scores, strict=True)]
    flips = sum(
        (a >= threshold) != (b >= threshold) for a, b in zip(torch_scores, ov_scores, strict=True)
    )
    print(f"chunks {len(prompts)}, prompt tokens {sum(map(len, ids)):,}")
    print(f"pytorch  {torch_s:6.1f} s ({torch_predictor.stats['tokens_computed']:,.0f} tokens run)")
    print(f"openvino {ov_s:6.1f} s (+ {convert_s:.1f} s conversion), "
          f"precision {compiled.get_property('INFERENCE_PRECISION_HINT')}")  # fmt: skip
    print(f"speed-up {torch_s / ov_s:.2f}x; |score change| mean {sum(moved) / len(moved):.4f} "
          f"max {max(moved):.4f}; verdicts flipped {flips} of {len(moved)} at {threshold:.3f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
