"""TrainConfig, profiles, tokenization and label masks, with a character-level fake tokenizer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from axon_infralinter.data.prompt import build_prompt, split_prompt
from axon_infralinter.errors import ConfigError
from axon_infralinter.models import loss as loss_mod
from axon_infralinter.models import model_card, tokens
from axon_infralinter.models import train_config as tc
from axon_infralinter.models import train_lora as tl


class CharTokenizer:
    """One token per character; EOS = 0. Enough to check masks and truncation exactly."""

    eos_token_id = 0
    pad_token_id = 0

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
        return {"input_ids": [ord(c) for c in text]}

    def decode(self, ids: list[int]) -> str:
        return "".join(chr(i) for i in ids if i)


TOK = CharTokenizer()


def test_spec_defaults() -> None:
    c = tl.TrainConfig()
    assert (
        c.learning_rate,
        c.num_train_epochs,
        c.per_device_train_batch_size,
        c.gradient_accumulation_steps,
    ) == (2e-4, 3.0, 1, 4)
    assert c.resume_from_checkpoint is None and c.loss_on == "target"
    assert c.adapter_dir == Path("models/axon_lora_smollm2-cpu")


def test_every_shipped_profile_loads() -> None:
    names = tc.profile_names()
    assert {"smollm2-cpu", "codellama-7b-qlora"} <= set(names)
    for name in names:
        config = tl.resolve_config(name)
        assert config.profile == name
    assert tl.resolve_config("codellama-7b-qlora").load_in_4bit is True


def test_unknown_keys_and_bad_values_are_errors() -> None:
    with pytest.raises(ConfigError, match="unknown config keys in flags: nonsense"):
        tl.resolve_config("smollm2-cpu", nonsense=1)
    with pytest.raises(ConfigError, match="--max-steps must be > 0"):
        tl.resolve_config("smollm2-cpu", max_steps=0)
    with pytest.raises(ConfigError, match="unknown profile"):
        tl.resolve_config("gpt-17")
    # None means "flag not given": the profile value stays.
    assert (
        tl.resolve_config("smollm2-cpu", max_length=None).max_length
        == tc.load_profile("smollm2-cpu")["max_length"]
    )


def test_label_mask_covers_prompt_and_separator_only() -> None:
    prompt = build_prompt('resource "aws_s3_bucket" "b" {}')
    row = tokens.tokenize_example(prompt, "INSECURE\n- X", TOK, max_length=2048)
    ids, labels = row["input_ids"], row["labels"]
    n_prompt = len(prompt) + 2  # the "\n\n" that opens the answer is prompt format
    assert labels[:n_prompt] == [-100] * n_prompt
    assert TOK.decode(labels[n_prompt:]) == "INSECURE\n- X"
    assert labels[-1] == TOK.eos_token_id and ids[-1] == TOK.eos_token_id
    assert row["attention_mask"] == [1] * len(ids)


def test_loss_on_all_keeps_prompt_in_labels() -> None:
    row = tokens.tokenize_example(
        build_prompt("x = 1"), "SECURE", TOK, max_length=2048, loss_on="all"
    )
    assert row["labels"] == row["input_ids"]


def test_truncation_cuts_the_middle_of_the_code_only() -> None:
    code = "resource a {\n" + "\n".join(f"  line{i} = {i}" for i in range(400)) + "\n}"
    prompt = build_prompt(code)
    row = tokens.tokenize_example(prompt, "SECURE", TOK, max_length=600)
    text = TOK.decode(row["input_ids"])
    assert len(row["input_ids"]) == 600
    assert text.startswith(split_prompt(prompt)[0])  # the instruction is whole
    assert text.endswith("```\n\nAnswer:\n\nSECURE")  # the prompt's end and the answer are whole
    assert tokens.TRUNCATION_MARKER in text and "line0 " in text and "line399" in text
    assert "line200 " not in text


def test_prompt_ids_match_training_prefix() -> None:
    prompt = build_prompt("x = 1")
    ids = tokens.prompt_ids(prompt, TOK, max_length=2048)
    row = tokens.tokenize_example(prompt, "SECURE", TOK, max_length=2048)
    assert row["input_ids"][: len(ids)] == ids  # scoring sees exactly what training saw


@pytest.mark.parametrize("target", ["SECURE", "INSECURE\n- CKV_AWS_20 (aws_s3_bucket.logs)"])
def test_prompt_ids_match_training_prefix_when_truncated(target: str) -> None:
    code = "resource a {\n" + "\n".join(f"  line{i} = {i}" for i in range(400)) + "\n}"
    prompt = build_prompt(code)
    row = tokens.tokenize_example(prompt, target, TOK, max_length=600)
    answer = len("\n\n" + target) + 1  # one token per character, plus EOS
    sep = len(tokens.answer_prefix_ids(TOK))
    ids = tokens.prompt_ids(prompt, TOK, max_length=600, reserve=answer - sep)
    assert tokens.TRUNCATION_MARKER in TOK.decode(ids)  # the truncation path was taken
    assert len(row["input_ids"]) == 600
    assert row["input_ids"][: len(ids)] == ids  # one rule: scoring truncates as training did


def test_tokenize_function_is_batched() -> None:
    batch = {
        "input_text": [build_prompt("a = 1"), build_prompt("b = 2")],
        "target_text": ["SECURE", "INSECURE"],
    }
    out = tl.tokenize_function(batch, TOK, max_length=512)
    assert set(out) == {"input_ids", "attention_mask", "labels"} and len(out["labels"]) == 2


def test_config_to_library_objects() -> None:
    config = tl.resolve_config("smollm2-cpu", lora_r=8, lora_alpha=16)
    lora = tc.to_lora_config(config)
    assert (lora.r, lora.lora_alpha, lora.target_modules) == (8, 16, "all-linear")
    assert tc.to_quantization_options(config) is None
    args = tc.to_training_arguments(config, Path("/tmp/x"), has_eval=True)
    assert args.train_sampling_strategy == "group_by_length" and args.report_to == []
    assert args.eval_strategy == "steps" and args.save_steps == config.save_steps


def test_loss_weights_only_the_decision_token_in_training() -> None:
    from types import SimpleNamespace

    import torch

    # Two rows: row 0 targets at positions 2..4 (after the shift: 1..3), row 1 at 3..4.
    labels = torch.tensor([[-100, -100, 5, 6, 7], [-100, -100, -100, 8, 9]])
    logits = torch.zeros(2, 5, 10)  # uniform: every token costs log(10)
    logits[0, 1, 5] = 5.0  # the decision token of row 0 is cheap
    out = SimpleNamespace(logits=logits)
    ln10 = torch.log(torch.tensor(10.0))
    cheap = torch.nn.functional.cross_entropy(logits[0, 1][None], torch.tensor([5]))
    loss = loss_mod.make_loss_function(4.0)
    # Evaluation (no num_items_in_batch): plain mean over the 5 target tokens.
    assert float(loss(out, labels)) == pytest.approx(float((cheap + 4 * ln10) / 5))
    # Training: decision tokens (row 0 pos 1, row 1 pos 2) weigh 4, normalized by the item count.
    expected = (4 * cheap + 2 * ln10 + 4 * ln10 + ln10) / 5
    assert float(loss(out, labels, num_items_in_batch=5)) == pytest.approx(float(expected))
    # The Trainer's evaluation (no gradient) passes num_items_in_batch too: still the plain mean.
    with torch.no_grad():
        assert float(loss(out, labels, num_items_in_batch=5)) == pytest.approx(
            float((cheap + 4 * ln10) / 5)
        )
    # Weight 1 is the stock loss.
    assert float(
        loss_mod.make_loss_function(1.0)(out, labels, num_items_in_batch=5)
    ) == pytest.approx(float((cheap + 4 * ln10) / 5))


def test_logits_to_keep_starts_one_before_the_earliest_target() -> None:
    import torch

    # Earliest target at position 2 (row 0): positions 1..4 are needed, 4 of 5.
    assert (
        loss_mod.logits_to_keep(torch.tensor([[-100, -100, 5, 6, 7], [-100, -100, -100, 8, 9]]))
        == 4
    )
    # Right padding after the answer does not matter; only where the answer starts does.
    assert loss_mod.logits_to_keep(torch.tensor([[-100, -100, -100, 8, -100, -100]])) == 4
    assert loss_mod.logits_to_keep(torch.tensor([[-100, 5, 6]])) == 3
    assert loss_mod.logits_to_keep(torch.tensor([[-100, -100]])) == 0  # no target: keep all


def test_loss_on_kept_logits_equals_loss_on_all_logits() -> None:
    from types import SimpleNamespace

    import torch

    torch.manual_seed(0)
    labels = torch.tensor([[-100, -100, 5, 6, 7, -100], [-100, -100, -100, 8, 9, 3]])
    logits = torch.randn(2, 6, 10)
    keep = loss_mod.logits_to_keep(labels)
    assert keep == 5
    loss = loss_mod.make_loss_function(20.0)
    full = SimpleNamespace(logits=logits)
    kept = SimpleNamespace(logits=logits[:, -keep:, :])
    for n in (None, 6):
        assert float(loss(kept, labels, num_items_in_batch=n)) == pytest.approx(
            float(loss(full, labels, num_items_in_batch=n))
        )
    # One position fewer drops the prediction of row 0's decision token: the loss changes.
    short = SimpleNamespace(logits=logits[:, -(keep - 1) :, :])
    assert float(loss(short, labels, num_items_in_batch=6)) != pytest.approx(
        float(loss(full, labels, num_items_in_batch=6))
    )


def test_target_logits_collator_adds_logits_to_keep() -> None:
    import torch

    rows = [
        tokens.tokenize_example(build_prompt("x = 1"), "SECURE", TOK, max_length=2048),
        tokens.tokenize_example(
            build_prompt("x = 1\ny = 2\nz = 3"), "INSECURE", TOK, max_length=2048
        ),
    ]

    def right_pad(features: list[dict]) -> dict:
        width = max(len(f["input_ids"]) for f in features)
        return {
            key: torch.tensor([f[key] + [fill] * (width - len(f[key])) for f in features])
            for key, fill in (("input_ids", 0), ("attention_mask", 0), ("labels", -100))
        }

    batch = loss_mod.TargetLogitsCollator(right_pad)(rows)
    firsts = [next(i for i, x in enumerate(row["labels"]) if x != -100) for row in rows]
    assert batch["logits_to_keep"] == batch["input_ids"].shape[1] - min(firsts) + 1
    assert 0 < batch["logits_to_keep"] < batch["input_ids"].shape[1]


def test_init_adapter_must_be_an_adapter_of_the_same_base(tmp_path: Path) -> None:
    from axon_infralinter.errors import InputError

    config = tl.resolve_config("smollm2-cpu", init_adapter=tmp_path)
    with pytest.raises(InputError, match="not a LoRA adapter"):
        tl._check_init_adapter(config)
    (tmp_path / "adapter_config.json").write_text("{}")
    (tmp_path / "train_config.json").write_text('{"config": {"base_model": "other/model"}}')
    with pytest.raises(InputError, match="was trained on other/model, not on embedded:smollm2"):
        tl._check_init_adapter(config)
    shipped = Path(tl.__file__).resolve().parents[1] / "adapters" / "default"
    tl._check_init_adapter(tl.resolve_config("smollm2-cpu", init_adapter=shipped))


def test_model_card_names_the_answer_format_and_the_starting_adapter(tmp_path: Path) -> None:
    data = tmp_path / "chunks"
    data.mkdir()
    (data / "chunks_card.json").write_text('{"answer_format": "ids"}')
    config = tl.resolve_config(
        "smollm2-cpu", data_dir=data, output_dir=tmp_path / "out", init_adapter=tmp_path / "D"
    )
    (tmp_path / "out").mkdir()
    summary = {
        "global_step": 3,
        "train_examples": 4,
        "seconds": 1.0,
        "device": "cpu",
        "dtype": "bfloat16",
        "train_loss": 0.5,
        "val_loss_target_tokens": 0.25,
    }
    card = model_card.write_model_card(tmp_path / "out", config, summary, {}).read_text()
    assert "- Answer format: `ids`" in card
    assert f"- Started from the LoRA weights of `{tmp_path / 'D'}`" in card
    assert "target-token validation loss: 0.2500" in card


def test_records_without_id_fail_in_one_line_before_the_model_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Records that train fine but cannot be scored for threshold tuning (no `id`, no `label`):
    # this once trained for 28 minutes and then died with a KeyError traceback.
    import json

    from axon_infralinter import cli

    data = tmp_path / "data"
    data.mkdir()
    row = {"input_text": build_prompt("x = 1"), "target_text": "SECURE"}
    for split in ("train", "val"):
        (data / f"{split}.jsonl").write_text(json.dumps(row) + "\n", encoding="utf-8")

    def no_model(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was loaded before the data was checked")

    monkeypatch.setattr(tl, "load_base_model", no_model)
    code = cli.main(["train", "--data", str(data), "--output-dir", str(tmp_path / "adapter")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("axon: ")
    assert str(data / "val.jsonl") in err[0] and "'id'" in err[0]


def test_an_adapter_continued_from_another_records_that_adapters_repositories(
    tmp_path: Path,
) -> None:
    """`axon evaluate` must refuse test files run E learnt from in an adapter continued from E."""
    init = tmp_path / "E"
    init.mkdir()
    (init / "train_config.json").write_text(
        json.dumps({"config": {}, "summary": {"training_repos": ["e/one", "shared/repo"]}})
    )
    records = [{"repo": "v2/new"}, {"repo": "shared/repo"}, {"repo": ""}, {}]
    assert tl.lineage_repos(records, init) == ["e/one", "shared/repo", "v2/new"]
    assert tl.lineage_repos(records, None) == ["shared/repo", "v2/new"]
