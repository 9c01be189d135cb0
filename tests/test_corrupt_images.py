# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Corrupt image files (a truncated PNG, a text file): errors naming the row or file, or skipped and counted."""

import json
import logging

import numpy as np
import pytest
from datasets import Dataset, DatasetDict
from PIL import Image as PILImage

from modeling_epmvg.commands import evaluate, predict, train
from modeling_epmvg.commands.checkpoints import load_grounding_pipeline
from processing.data.schema import GROUNDING_FEATURES

from .test_hub_loading import save_model_and_processor
from .training_fixtures import WORDS, train_arguments, write_training_setup


def write_png(path, seed: int, truncated: bool = False) -> str:
    rng = np.random.default_rng(seed)
    PILImage.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(path)
    if truncated:
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])  # the header still reads: only decoding finds it
    return str(path)


def split_with_a_truncated_png(folder, split: str, size: int, bad_index: int | None) -> Dataset:
    rows = {name: [] for name in GROUNDING_FEATURES}
    for index in range(size):
        path = write_png(folder / f"{split}-{index}.png", seed=index, truncated=index == bad_index)
        row = dict(
            image=path, width=64, height=48, bbox=[4.0, 5.0, 30.0, 40.0], expression=WORDS[index % len(WORDS)],
            image_id=f"{split}-{index}", ref_id=str(index), source="fixture", split=split,
        )  # fmt: skip
        for name, value in row.items():
            rows[name].append(value)
    return Dataset.from_dict(rows, features=GROUNDING_FEATURES)


@pytest.fixture(scope="module")
def corrupt(tmp_path_factory):
    root = tmp_path_factory.mktemp("corrupt")
    save_model_and_processor(root / "model")
    splits = {
        "train": split_with_a_truncated_png(root, "train", 6, bad_index=4),
        "val": split_with_a_truncated_png(root, "val", 3, bad_index=1),
    }
    DatasetDict(splits).save_to_disk(root / "data")
    (root / "notes.png").write_text("not an image")
    return root


def evaluate_argv(root, *flags: str) -> list[str]:
    dataset = ["--dataset", str(root / "data"), "--splits", "val"]
    return ["--model", str(root / "model"), *dataset, "--output", str(root / "results.json"), *flags]


def test_evaluate_fails_naming_the_row_of_a_truncated_png(corrupt, capsys):
    assert evaluate.main(evaluate_argv(corrupt)) == 1
    message = capsys.readouterr().err
    assert "epmvg-evaluate: error:" in message
    assert "image_id='val-1'" in message and "val-1.png" in message and "cannot be decoded" in message
    assert "--skip_invalid" in message


def test_evaluate_checks_every_image_up_front_with_verify_images(corrupt, capsys):
    assert evaluate.main(evaluate_argv(corrupt, "--verify-images")) == 1
    message = capsys.readouterr().err
    assert "1 invalid row(s)" in message and "val-1.png cannot be read" in message


def test_evaluate_with_skip_invalid_skips_and_counts_the_row(corrupt, caplog):
    with caplog.at_level(logging.WARNING):
        assert evaluate.main(evaluate_argv(corrupt, "--skip-invalid")) == 0
    assert "skipped 1 invalid row(s) of 3" in caplog.text
    report = json.loads((corrupt / "results.json").read_text())
    assert report["metrics"]["val"]["num_examples"] == 2
    assert [record["image_id"] for record in report["predictions"]["val"]] == ["val-0", "val-2"]


def training_argv(corrupt, tmp_path, **extra) -> list[str]:
    setup = write_training_setup(tmp_path / "setup", train_size=1, eval_size=1)
    arguments = dict(dataset_name=str(corrupt / "data"), max_steps="3", eval_strategy="steps", eval_steps="3")
    return train_arguments(setup, tmp_path / "out", **(arguments | extra))


def test_training_fails_naming_the_row_of_a_truncated_png(corrupt, tmp_path, capsys):
    assert train.main(training_argv(corrupt, tmp_path, augment="true")) == 1
    message = capsys.readouterr().err
    assert "epmvg-train: error:" in message and "image_id='train-4'" in message and "train-4.png" in message
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_training_with_skip_invalid_skips_and_counts_the_rows(corrupt, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        assert train.main(training_argv(corrupt, tmp_path, skip_invalid="true")) == 0
    assert "split 'train': skipped 1 invalid row(s) of 6" in caplog.text
    assert "split 'val': skipped 1 invalid row(s) of 3" in caplog.text
    assert (tmp_path / "out" / "model.safetensors").exists()


@pytest.mark.parametrize("name", ["val-1.png", "notes.png"])
def test_predict_and_the_pipeline_name_an_unreadable_file(corrupt, name, capsys):
    path = str(corrupt / name)
    argv = [str(corrupt / "model"), "--image", path, "--expression", "the dog", "--no-draw", "--device", "cpu"]
    assert predict.main(argv) == 1
    assert f"Cannot read the image file {path!r}" in capsys.readouterr().err
    grounder = load_grounding_pipeline(str(corrupt / "model"), device="cpu")
    with pytest.raises(ValueError, match=f"Cannot read the image file '{path}'"):
        grounder(path, "the dog")
