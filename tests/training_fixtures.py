# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Tiny on-disk training set-ups for the script tests: a dataset, a config, a tokenizer and a CLIP teacher."""

import json
from pathlib import Path

import numpy as np
from datasets import Dataset, DatasetDict
from PIL import Image
from transformers import CLIPImageProcessorPil, CLIPProcessor

from processing.data.schema import GROUNDING_FEATURES

from .conftest import tiny_clip, tiny_config, tiny_tokenizer


WORDS = ["the red circle", "the green square on the left", "a big blue star", "the small triangle right of the dog"]


def tiny_grounding_split(split: str, size: int, seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    rows = {name: [] for name in GROUNDING_FEATURES}
    for index in range(size):
        width, height = int(rng.integers(40, 90)), int(rng.integers(40, 90))
        x1, y1 = rng.uniform(0, width / 2), rng.uniform(0, height / 2)
        box = [x1, y1, x1 + rng.uniform(5, width / 2), y1 + rng.uniform(5, height / 2)]
        pixels = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
        row = dict(
            image=Image.fromarray(pixels),
            width=width,
            height=height,
            bbox=box,
            expression=WORDS[index % len(WORDS)],
            image_id=f"{split}-{index}",
            ref_id=str(index),
            source="fixture",
            split=split,
        )
        for name, value in row.items():
            rows[name].append(value)
    return Dataset.from_dict(rows, features=GROUNDING_FEATURES)


def write_training_setup(folder: Path, train_size: int = 8, eval_size: int = 5) -> dict[str, str]:
    """Writes a unified dataset, a tiny EpmVG config, a tokenizer and a tiny CLIP teacher; returns their paths."""
    data = DatasetDict(
        {"train": tiny_grounding_split("train", train_size, 0), "val": tiny_grounding_split("val", eval_size, 1)}
    )
    data.save_to_disk(folder / "data")
    config = tiny_config()
    config.save_pretrained(folder / "config")
    tiny_tokenizer().save_pretrained(folder / "tokenizer")
    teacher_processor = CLIPProcessor(
        image_processor=CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
        tokenizer=tiny_tokenizer(),
    )
    tiny_clip().save_pretrained(folder / "teacher")
    teacher_processor.save_pretrained(folder / "teacher")
    return {name: str(folder / name) for name in ("data", "config", "tokenizer", "teacher")}


def train_arguments(paths: dict[str, str], output_dir: Path, **extra) -> list[str]:
    """scripts/train.py arguments for a few CPU steps on the tiny set-up."""
    arguments = {
        "dataset_name": paths["data"],
        "config_name": paths["config"],
        "tokenizer_name_or_path": paths["tokenizer"],
        "teacher_model_name_or_path": paths["teacher"],
        "output_dir": str(output_dir),
        "per_device_train_batch_size": "2",
        "per_device_eval_batch_size": "4",
        "max_steps": "4",
        "logging_steps": "1",
        "save_strategy": "no",
        "eval_strategy": "no",
        "report_to": "none",
        "use_cpu": "true",
        "seed": "0",
        "disable_tqdm": "true",
        "augment": "false",
        "config_overrides": json.dumps({"dropout": 0.0}),
    } | extra
    return [item for key, value in arguments.items() for item in (f"--{key}", value)]
