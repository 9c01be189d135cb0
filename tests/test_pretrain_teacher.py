# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""scripts/pretrain_teacher.py on a tiny setting: trains a few steps and saves a teacher that loads offline."""

import json

import pytest
import torch
from PIL import Image
from transformers import AutoProcessor, CLIPModel

from modeling_epmvg.commands.pretrain_teacher import (
    build_teacher_processor,
    load_captions,
    main,
    mentions_pair,
    parse_args,
)
from processing.data.minilm import default_tokenizer_dir
from processing.data.synthetic import SyntheticGroundingConfig, generate_caption_dataset, save_synthetic_dataset


TINY = ["--image-size", "32", "--patch-size", "8", "--hidden-size", "32", "--num-layers", "1", "--num-heads", "2"]
TINY += ["--projection-dim", "16", "--max-text-len", "40", "--batch-size", "8", "--max-steps", "2"]


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    output = tmp_path_factory.mktemp("teacher")
    argv = ["--output-dir", str(output), "--num-train", "16", "--num-val", "24", "--logging-steps", "1"]
    assert main(argv + TINY) == 0
    assert json.loads((output / "teacher_metrics.json").read_text())["num_pairs"] == 24
    return output


def test_saved_teacher_and_processor_load_and_run(teacher_dir):
    model = CLIPModel.from_pretrained(teacher_dir)
    processor = AutoProcessor.from_pretrained(teacher_dir)
    inputs = processor(
        images=[Image.new("RGB", (32, 32))] * 2,
        text=["the second square from the left", "a small green triangle"],
        padding="max_length",
        max_length=20,
        truncation=True,
        return_tensors="pt",
    )
    assert set(inputs) == {"input_ids", "attention_mask", "pixel_values"}
    assert inputs["pixel_values"].shape == (2, 3, 32, 32)
    with torch.no_grad():
        outputs = model(**inputs)
    assert outputs.image_embeds.shape == outputs.text_embeds.shape == (2, 16)
    metrics = json.loads((teacher_dir / "teacher_metrics.json").read_text())
    assert {"image_to_text_top1", "text_to_image_top1", "top1", "chance_top1", "train_seconds"} <= set(metrics)


def test_retrieval_is_also_reported_on_captions_that_name_a_held_out_pair(teacher_dir):
    metrics = json.loads((teacher_dir / "teacher_metrics.json").read_text())
    config = SyntheticGroundingConfig(image_size=32)
    arguments = ["--output-dir", str(teacher_dir), "--num-train", "16", "--num-val", "24"]  # the fixture's captions
    captions = load_captions(parse_args(arguments + TINY))["val"]
    named = [mentions_pair(caption, config.held_out_pairs) for caption in captions["caption"]]
    assert 0 < metrics["held_out_pair_num_queries"] == sum(named) < len(named)
    for prefix in ("", "held_out_pair_"):
        top1 = (metrics[f"{prefix}image_to_text_top1"] + metrics[f"{prefix}text_to_image_top1"]) / 2
        assert metrics[f"{prefix}top1"] == pytest.approx(top1)
        assert 0 <= metrics[f"{prefix}chance_top1"] <= 1
    assert mentions_pair("a small red star left of a large blue circle", config.held_out_pairs)
    assert not mentions_pair("a small red square and a blue star", config.held_out_pairs)


def test_text_pooling_reads_the_sep_token_whatever_the_padding(teacher_dir):
    model = CLIPModel.from_pretrained(teacher_dir).eval()
    processor = AutoProcessor.from_pretrained(teacher_dir)
    assert model.config.text_config.eos_token_id == processor.tokenizer.sep_token_id
    text = ["the topmost star"]
    short = processor(text=text, return_tensors="pt")
    padded = processor(text=text, padding="max_length", max_length=20, return_tensors="pt")
    with torch.no_grad():
        embeds = [model.get_text_features(**batch).pooler_output for batch in (short, padded)]
    torch.testing.assert_close(embeds[0], embeds[1])


def test_saved_caption_dataset_is_accepted(tmp_path):
    config = SyntheticGroundingConfig(image_size=32)
    save_synthetic_dataset(generate_caption_dataset(8, 4, config=config), str(tmp_path / "captions"), config)
    captions = load_captions(parse_args(["--output-dir", str(tmp_path), "--captions", str(tmp_path / "captions")]))
    assert {split: len(data) for split, data in captions.items()} == {"train": 8, "val": 4}


def test_clear_errors_for_missing_inputs(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="Tokenizer folder"):
        build_teacher_processor(32, str(tmp_path / "nope"), 40)
    assert main(["--output-dir", str(tmp_path), "--captions", str(tmp_path / "nope")] + TINY) == 1
    error = capsys.readouterr().err
    assert "epmvg-pretrain-teacher: error:" in error and "--captions" in error
    assert build_teacher_processor(32, default_tokenizer_dir(), 40).tokenizer.model_max_length == 40


def test_a_dataloader_worker_prepares_the_same_batches_so_trains_the_same_teacher(teacher_dir, tmp_path):
    argv = ["--output-dir", str(tmp_path), "--num-train", "16", "--num-val", "24", "--dataloader-workers", "1"]
    assert main(argv + TINY) == 0

    with_worker, in_process = (CLIPModel.from_pretrained(folder).state_dict() for folder in (tmp_path, teacher_dir))
    for name, weight in in_process.items():
        torch.testing.assert_close(with_worker[name], weight, msg=name)
