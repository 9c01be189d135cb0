# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""The synthetic referring-expression benchmark: determinism, schema, unique reference, held-out pairs, CLI."""

import json

import numpy as np
import pytest
from datasets import Image, load_from_disk

from modeling_epmvg.commands.synthetic_data import main as synthetic_main
from processing.data.schema import GROUNDING_FEATURES
from processing.data.synthetic import (
    AmbiguousReferenceError,
    SyntheticGroundingConfig,
    SyntheticObject,
    baseline_accuracies,
    generate_caption_dataset,
    generate_synthetic_dataset,
    load_synthetic_config,
    parse_expression,
    resolve_expression,
    sample_scene,
)
from processing.data.synthetic.scene import SCENE_PAIRS


CONFIG = SyntheticGroundingConfig(image_size=48)


@pytest.fixture(scope="module")
def dataset():
    return generate_synthetic_dataset(num_train=60, num_val=30, num_test=30, config=CONFIG, seed=3)


def _objects(row) -> list[SyntheticObject]:
    return [SyntheticObject(o["shape"], o["color"], o["size"], tuple(o["bbox"])) for o in row["scene_objects"]]


def _metadata(split):
    return split.remove_columns("image")


def test_same_seed_same_dataset_other_seed_differs(dataset):
    again = generate_synthetic_dataset(num_train=60, num_val=30, num_test=30, config=CONFIG, seed=3)
    for split in dataset:
        assert _metadata(dataset[split]).to_dict() == _metadata(again[split]).to_dict()
        raw = [
            list(data.cast_column("image", Image(decode=False))["image"]) for data in (dataset[split], again[split])
        ]
        assert raw[0] == raw[1]
    other = generate_synthetic_dataset(num_train=60, num_val=0, num_test=0, config=CONFIG, seed=4)
    assert list(other["train"]["expression"]) != list(dataset["train"]["expression"])


def test_schema_and_boxes_inside_images(dataset):
    assert set(dataset) == {"train", "val", "test"}
    for split, data in dataset.items():
        for name, feature in GROUNDING_FEATURES.items():
            assert data.features[name] == feature
        row = data[0]
        assert row["image"].size == (48, 48) and row["image"].mode == "RGB"
        assert set(data["source"]) == {"synthetic"} and set(data["split"]) == {split}
        boxes = np.array(data["bbox"])
        assert (boxes[:, 0] >= 0).all() and (boxes[:, 1] >= 0).all()
        assert (boxes[:, 2] <= np.array(data["width"])).all() and (boxes[:, 3] <= np.array(data["height"])).all()
        assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
        assert len(set(data["ref_id"])) == len(data)


def test_every_expression_refers_to_exactly_its_target(dataset):
    for data in dataset.values():
        for row in _metadata(data):
            objects = _objects(row)
            assert list(objects[row["target_index"]].bbox) == pytest.approx(row["bbox"])
            # plain semantics, and without any spatial close call at the generation margin
            assert resolve_expression(row["expression"], objects, config=CONFIG) == [row["target_index"]]
            assert resolve_expression(row["expression"], objects, CONFIG.margin_pixels, CONFIG) == [
                row["target_index"]
            ]
            assert parse_expression(row["expression"], CONFIG).text() == row["expression"]
    assert set(dataset["train"]["expression_type"]) == {"attribute", "relation", "extreme", "ordinal"}


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_held_out_pairs_only_in_test_targets(seed):
    data = generate_synthetic_dataset(num_train=40, num_val=20, num_test=20, config=CONFIG, seed=seed)
    held_out = set(map(tuple, CONFIG.held_out_pairs))
    for split in ("train", "val"):
        for row in _metadata(data[split]):
            assert not {(o["color"], o["shape"]) for o in row["scene_objects"]} & held_out
    for row in _metadata(data["test"]):
        target = row["scene_objects"][row["target_index"]]
        assert (target["color"], target["shape"]) in held_out


def test_resolver_on_a_hand_made_scene():
    scene = [
        SyntheticObject("square", "red", "small", (0, 0, 10, 10)),
        SyntheticObject("square", "blue", "large", (20, 20, 36, 36)),
        SyntheticObject("circle", "red", "small", (40, 0, 50, 10)),
        SyntheticObject("square", "red", "large", (30, 40, 46, 56)),
    ]
    assert resolve_expression("the blue object", scene) == [1]
    assert resolve_expression("the small red square", scene) == [0]
    assert resolve_expression("the square left of the circle", scene) == [0, 1, 3]
    assert resolve_expression("the square above the blue square", scene) == [0]
    assert resolve_expression("the rightmost square", scene) == [3]
    assert resolve_expression("the second square from the left", scene) == [1]
    assert resolve_expression("the third object from the top", scene) == [1]
    with pytest.raises(AmbiguousReferenceError):  # the landmark is not unique
        resolve_expression("the circle right of the square", scene)
    with pytest.raises(AmbiguousReferenceError):  # centres 10 px apart, margin 12
        resolve_expression("the second square from the left", scene, margin=12)
    with pytest.raises(ValueError, match="Cannot parse"):
        resolve_expression("the red hexagon", scene)


def test_baselines_match_their_definition(dataset):
    val = _metadata(dataset["val"])
    result = baseline_accuracies(dataset["val"])
    # occlusion is small, so no other object overlaps the target with IoU >= 0.5
    assert result["random_object"] == pytest.approx(np.mean([1 / len(r["scene_objects"]) for r in val]))
    largest = [
        np.argmax([(b[2] - b[0]) * (b[3] - b[1]) for b in (o["bbox"] for o in r["scene_objects"])]) for r in val
    ]
    assert result["text_blind_largest"] == pytest.approx(np.mean(np.array(largest) == np.array(val["target_index"])))
    with pytest.raises(ValueError, match="one split"):
        baseline_accuracies(dataset)


def test_captions_know_every_pair_one_scene_each_and_are_deterministic():
    captions = generate_caption_dataset(num_train=300, num_val=6, config=CONFIG, seed=1)
    assert captions["train"].column_names == ["image", "caption", "caption_type"]
    assert list(captions["train"]["caption_type"][:4]) == ["scene", "object", "scene", "object"]
    assert len(captions["val"]) == 6 and captions["train"][1]["image"].size == (48, 48)
    text = " ".join(captions["train"]["caption"])
    # the teacher's corpus stands in for web data: the pairs held out of the grounding data are in it too
    for color, shape in [(c, s) for c, _ in CONFIG.colors for s in CONFIG.shapes]:
        assert f"{color} {shape}" in text
    again = generate_caption_dataset(num_train=300, num_val=6, config=CONFIG, seed=1)
    assert list(again["train"]["caption"]) == list(captions["train"]["caption"])


def test_scene_pairs_modes():
    rng = np.random.default_rng(0)
    every = {(c, s) for c, _ in CONFIG.colors for s in CONFIG.shapes}
    seen = {mode: set() for mode in SCENE_PAIRS}
    for mode in SCENE_PAIRS:
        for _ in range(60):
            kinds = {(o.color, o.shape) for o in sample_scene(rng, CONFIG, pairs=mode)}
            assert mode != "held_out" or kinds & set(CONFIG.held_out_pairs)
            seen[mode] |= kinds
    assert seen["allowed"] == set(CONFIG.allowed_pairs) and seen["all"] == every
    with pytest.raises(ValueError, match="choose among"):
        sample_scene(rng, CONFIG, pairs="test")


def test_config_validation_and_round_trip():
    assert SyntheticGroundingConfig.from_dict(json.loads(json.dumps(CONFIG.to_dict()))) == CONFIG
    with pytest.raises(ValueError, match="min_objects"):
        SyntheticGroundingConfig(min_objects=5, max_objects=3)
    with pytest.raises(ValueError, match="Unknown shapes"):
        SyntheticGroundingConfig(shapes=("hexagon",))
    with pytest.raises(ValueError, match="Held-out pair"):
        SyntheticGroundingConfig(held_out_pairs=(("pink", "star"),))
    with pytest.raises(ValueError, match="weights"):
        SyntheticGroundingConfig(expression_types=(("attribute", 0.0),))
    with pytest.raises(ValueError, match="test split needs held-out"):
        generate_synthetic_dataset(1, 1, 1, config=SyntheticGroundingConfig(held_out_pairs=()))


def test_cli_saves_a_loadable_dataset_with_config_and_baselines(tmp_path, capsys):
    output = tmp_path / "synthetic"
    argv = ["--output", str(output), "--num-train", "8", "--num-val", "6", "--num-test", "4", "--image-size", "32"]
    assert synthetic_main(argv + ["--captions-output", str(tmp_path / "captions"), "--num-caption-train", "4"]) == 0
    baselines = json.loads((output / "baselines.json").read_text())
    loaded = load_from_disk(str(output))
    assert {split: len(data) for split, data in loaded.items()} == {"train": 8, "val": 6, "test": 4}
    assert load_synthetic_config(str(output)).image_size == 32
    assert set(baselines) == {"train", "val", "test"}
    assert "text-blind" in capsys.readouterr().out
    assert len(load_from_disk(str(tmp_path / "captions"))["train"]) == 4


def test_captions_drawn_by_several_processes_are_the_captions_drawn_by_one():
    config = SyntheticGroundingConfig(image_size=32)
    one, two = (generate_caption_dataset(9, 3, config=config, seed=4, num_proc=n) for n in (1, 2))
    for split in ("train", "val"):
        assert one[split].data.equals(two[split].data)
    with pytest.raises(ValueError, match="num_proc must be >= 1"):
        generate_caption_dataset(4, 2, config=config, num_proc=0)
