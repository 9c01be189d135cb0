# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""The synthetic referring-expression benchmark as `datasets` objects: grounding splits, teacher captions,
baselines."""

import io
import json
import multiprocessing
import os

import numpy as np
from datasets import Dataset, DatasetDict, Features, Image, List, Value

from ..metrics import box_iou
from ..schema import GROUNDING_FEATURES
from .expressions import generate_expression, object_caption, scene_caption
from .scene import SyntheticGroundingConfig, crop_object, render_scene, sample_scene


# every random draw of scene i of a stream comes from default_rng([seed, stream, i]): streams never overlap and
# a larger dataset starts with the scenes of a smaller one
_STREAMS = {"train": 0, "val": 1, "test": 2, "captions_train": 3, "captions_val": 4}
CONFIG_NAME = "synthetic_config.json"
_EMPTY_SCENES_LIMIT = 200

SYNTHETIC_METADATA_COLUMNS = ("expression_type", "target_index", "scene_objects")
"""Columns added to the unified schema: the expression's type, the target's index in `scene_objects`, and every
object of the scene (shape, color, size, bbox xyxy pixels). Drop them with `dataset.remove_columns(...)`."""

SYNTHETIC_FEATURES = Features(
    {
        **GROUNDING_FEATURES,
        "expression_type": Value("string"),
        "target_index": Value("int32"),
        "scene_objects": List(
            {
                "shape": Value("string"),
                "color": Value("string"),
                "size": Value("string"),
                "bbox": List(Value("float32"), length=4),
            }
        ),
    }
)
CAPTION_FEATURES = Features({"image": Image(), "caption": Value("string"), "caption_type": Value("string")})


def _png(image) -> dict:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)  # fast; the images are tiny anyway
    return {"bytes": buffer.getvalue(), "path": None}


def _scene(config, seed, stream, index, pairs="allowed"):
    rng = np.random.default_rng([seed, _STREAMS[stream], index])
    objects = sample_scene(rng, config, pairs=pairs)
    return rng, objects, render_scene(objects, rng, config)


def _grounding_split(split: str, num_examples: int, config: SyntheticGroundingConfig, seed: int) -> Dataset:
    rows = {name: [] for name in SYNTHETIC_FEATURES}
    held_out = split == "test"
    held_out_pairs = set(map(tuple, config.held_out_pairs))
    index = 0
    while len(rows["expression"]) < num_examples:
        if index >= _EMPTY_SCENES_LIMIT and not rows["expression"]:
            raise ValueError(f"No expression could be generated in {index} scenes: check expression_types/objects.")
        rng, objects, image = _scene(config, seed, split, index, "held_out" if held_out else "allowed")
        image_id, image_bytes, made = f"synthetic-{split}-{index:06d}", _png(image), 0
        for target in rng.permutation(len(objects)):
            if made == config.expressions_per_image or len(rows["expression"]) == num_examples:
                break
            if held_out and (objects[target].color, objects[target].shape) not in held_out_pairs:
                continue
            found = generate_expression(objects, int(target), rng, config)
            if found is None:
                continue
            row = {
                "image": image_bytes,
                "width": config.image_size,
                "height": config.image_size,
                "bbox": list(objects[target].bbox),
                "expression": found[0].text(),
                "image_id": image_id,
                "ref_id": f"{image_id}-{made}",
                "source": "synthetic",
                "split": split,
                "expression_type": found[1],
                "target_index": int(target),
                "scene_objects": [o.to_dict() for o in objects],
            }
            for name, value in row.items():
                rows[name].append(value)
            made += 1
        index += 1
    return Dataset.from_dict(rows, features=SYNTHETIC_FEATURES)


def generate_synthetic_dataset(
    num_train: int = 4000,
    num_val: int = 500,
    num_test: int = 500,
    config: SyntheticGroundingConfig | None = None,
    seed: int = 0,
) -> DatasetDict:
    r"""
    Generates the synthetic referring-expression benchmark in the unified grounding schema.

    Scenes hold `config.min_objects`-`config.max_objects` coloured shapes; every expression refers to exactly
    one object (checked by `resolve_expression`). "train" and "val" scenes never contain a held-out (colour,
    shape) pair; every "test" target is one (compositional generalization).

    Args:
        num_train (`int`, *optional*, defaults to 4000): expressions (rows) in "train".
        num_val (`int`, *optional*, defaults to 500): expressions in "val".
        num_test (`int`, *optional*, defaults to 500): expressions in "test" (0 leaves the split out).
        config (`SyntheticGroundingConfig`, *optional*): the benchmark configuration (default one if omitted).
        seed (`int`, *optional*, defaults to 0): the same seed and config give the same dataset.

    Returns:
        `datasets.DatasetDict` with `GROUNDING_FEATURES` columns plus `SYNTHETIC_METADATA_COLUMNS`.

    Examples:

    ```python
    >>> from processing.data.synthetic import generate_synthetic_dataset
    >>> data = generate_synthetic_dataset(num_train=8, num_val=4, num_test=4)
    >>> data["train"][0]["expression"]  # e.g. 'the second small square from the left'
    ```"""
    config = config or SyntheticGroundingConfig()
    sizes = {"train": num_train, "val": num_val, "test": num_test}
    for split, size in sizes.items():
        if size < 0:
            raise ValueError(f"num_{split} must be >= 0, got {size}.")
    if num_test > 0 and not config.held_out_pairs:
        raise ValueError("The test split needs held-out (colour, shape) pairs: set held_out_pairs or num_test=0.")
    return DatasetDict({split: _grounding_split(split, n, config, seed) for split, n in sizes.items() if n > 0})


def _caption_rows(stream: str, start: int, stop: int, config: SyntheticGroundingConfig, seed: int) -> dict:
    """The caption pairs of scenes `start` to `stop - 1` of `stream` (each scene's draws are its own)."""
    rows = {"image": [], "caption": [], "caption_type": []}
    for index in range(start, stop):
        # any pair, held-out ones included: the captions stand in for web data, which knows every combination
        rng, objects, image = _scene(config, seed, stream, index, "all")
        # one pair per scene (as many scenes as pairs): whole scenes alternate with object crops
        if index % 2 == 0:
            picture, caption, kind = image, scene_caption(objects, rng, config), "scene"
        else:
            obj = objects[int(rng.integers(len(objects)))]
            picture, caption, kind = crop_object(image, obj, config), object_caption(obj), "object"
        rows["image"].append(_png(picture))
        rows["caption"].append(caption)
        rows["caption_type"].append(kind)
    return rows


def _caption_split(stream: str, num_examples: int, config: SyntheticGroundingConfig, seed: int, num_proc: int):
    bounds = np.linspace(0, num_examples, min(num_proc, num_examples) + 1).round().astype(int).tolist()
    shards = [(stream, start, stop, config, seed) for start, stop in zip(bounds[:-1], bounds[1:])]
    if len(shards) == 1:
        parts = [_caption_rows(*shards[0])]
    else:
        with multiprocessing.Pool(len(shards)) as pool:
            parts = pool.starmap(_caption_rows, shards)
    rows = {name: [value for part in parts for value in part[name]] for name in CAPTION_FEATURES}
    return Dataset.from_dict(rows, features=CAPTION_FEATURES)


def generate_caption_dataset(
    num_train: int = 60000,
    num_val: int = 512,
    config: SyntheticGroundingConfig | None = None,
    seed: int = 0,
    num_proc: int = 1,
) -> DatasetDict:
    r"""
    Image-caption pairs for pretraining the CLIP teacher, standing in for the web data CLIP is trained on: scenes
    drawn from every (colour, shape) pair, the held-out ones included (which the grounding splits show only as
    test targets), in streams of their own (no caption scene is a grounding scene). One pair per scene: whole
    scenes captioned "a large red square, a small blue circle and a green star" (left to right) or "a small red
    square left of a large blue circle", alternating with object crops captioned "a small green triangle".

    Args:
        num_train (`int`, *optional*, defaults to 60000): pairs (and scenes) in "train": three times the scenes of
            the demo's grounding training set.
        num_val (`int`, *optional*, defaults to 512): pairs in "val" (separate scenes).
        config (`SyntheticGroundingConfig`, *optional*): the benchmark configuration.
        seed (`int`, *optional*, defaults to 0): random seed.
        num_proc (`int`, *optional*, defaults to 1): processes drawing the scenes, each a contiguous range of them:
            the same dataset for any number.

    Returns:
        `datasets.DatasetDict` with columns image, caption, caption_type ("scene" | "object").
    """
    config = config or SyntheticGroundingConfig()
    if num_train < 1 or num_val < 1:
        raise ValueError(f"num_train and num_val must be >= 1, got {num_train} and {num_val}.")
    if num_proc < 1:
        raise ValueError(f"num_proc must be >= 1 (processes drawing the scenes), got {num_proc}.")
    return DatasetDict(
        {
            "train": _caption_split("captions_train", num_train, config, seed, num_proc),
            "val": _caption_split("captions_val", num_val, config, seed, num_proc),
        }
    )


def baseline_accuracies(dataset: Dataset, iou_threshold: float = 0.5) -> dict[str, float]:
    r"""
    Acc@`iou_threshold` of two text-free baselines on a synthetic split:
    - "random_object": a uniformly random object of the scene (exact expectation, no sampling);
    - "text_blind_largest": always the most salient (largest) object.

    Args:
        dataset (`datasets.Dataset`): one split of `generate_synthetic_dataset` (needs `bbox`, `scene_objects`).
        iou_threshold (`float`, *optional*, defaults to 0.5): a prediction counts when IoU >= this.

    Returns:
        `dict[str, float]` with the two accuracies in [0, 1] and "num_examples".
    """
    if isinstance(dataset, DatasetDict):
        raise ValueError("baseline_accuracies takes one split: pass e.g. dataset['val'], not the DatasetDict.")
    if "scene_objects" not in dataset.column_names:
        raise ValueError("The dataset has no 'scene_objects' column: pass a split of generate_synthetic_dataset.")
    if len(dataset) == 0:
        raise ValueError("The dataset is empty.")
    columns = dataset.select_columns(["bbox", "scene_objects"]).to_dict()
    random_hits = largest_hits = 0.0
    for gt, objects in zip(columns["bbox"], columns["scene_objects"]):
        boxes = np.array([o["bbox"] for o in objects], dtype=np.float64)
        hits = box_iou(boxes, np.tile(gt, (len(boxes), 1))) >= iou_threshold
        random_hits += hits.mean()
        largest_hits += hits[np.argmax(np.prod(boxes[:, 2:] - boxes[:, :2], axis=1))]
    n = len(dataset)
    return {"random_object": float(random_hits / n), "text_blind_largest": float(largest_hits / n), "num_examples": n}


def save_synthetic_dataset(dataset: DatasetDict, output_dir: str, config: SyntheticGroundingConfig) -> None:
    """`save_to_disk` plus the generating config as `synthetic_config.json` in the same folder (reload with
    `datasets.load_from_disk(output_dir)` and `load_synthetic_config(output_dir)`)."""
    dataset.save_to_disk(output_dir)
    with open(os.path.join(output_dir, CONFIG_NAME), "w") as f:
        json.dump(config.to_dict(), f, indent=2)


def load_synthetic_config(dataset_dir: str) -> SyntheticGroundingConfig:
    """The config saved next to a dataset by `save_synthetic_dataset`."""
    path = os.path.join(dataset_dir, CONFIG_NAME)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No {CONFIG_NAME} in {dataset_dir}: save the dataset with save_synthetic_dataset.")
    with open(path) as f:
        return SyntheticGroundingConfig.from_dict(json.load(f))


__all__ = [
    "CAPTION_FEATURES",
    "CONFIG_NAME",
    "SYNTHETIC_FEATURES",
    "SYNTHETIC_METADATA_COLUMNS",
    "baseline_accuracies",
    "generate_caption_dataset",
    "generate_synthetic_dataset",
    "load_synthetic_config",
    "save_synthetic_dataset",
]
