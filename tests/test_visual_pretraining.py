# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""The visual pretraining stage: dense labels from scene annotations, the pretraining command, and loading its
checkpoint as a grounding model's visual branch."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import BertModel

from modeling_epmvg import EpmVGForVisualGrounding, EpmVGForVisualPretraining
from modeling_epmvg.commands.pretrain_visual import main as pretrain_visual
from modeling_epmvg.commands.pretrain_visual import unique_scenes
from processing import EpmVGImageProcessor
from processing.data.collator import EpmVGDataCollator, EpmVGSceneCollator
from processing.data.dense_labels import EpmVGDenseLabeler
from processing.data.synthetic import SyntheticGroundingConfig, generate_synthetic_dataset, save_synthetic_dataset
from tests.conftest import tiny_config, tiny_tokenizer


ATTRIBUTES = {"color": ["red", "blue"], "shape": ["circle", "square", "star"]}


def test_each_object_labels_the_cell_holding_its_centre_with_its_box_and_classes():
    labeler = EpmVGDenseLabeler(ATTRIBUTES, grid_size=4)
    objects = [
        {"bbox": [0, 0, 16, 16], "color": "blue", "shape": "star"},
        {"bbox": [40, 8, 56, 24], "color": "red", "shape": "circle"},
    ]
    labels = labeler([{"scene_objects": objects}], [(64, 64)], EpmVGImageProcessor(size=64))
    assert labels.shape == (1, 16, 6)
    assert labels[0, 0].tolist() == [0.125, 0.125, 0.25, 0.25, 1, 2]  # centre (8, 8): cell 0
    assert labels[0, 7].tolist() == [0.75, 0.25, 0.25, 0.25, 0, 0]  # centre (48, 16): row 1, column 3
    assert (labels[0, [1, 2, 3, 4, 5, 6, 8]] == -1).all()


def test_letterboxed_objects_land_where_the_processor_puts_the_image():
    # a 64x32 (width x height) image is centred vertically in the 64x64 canvas: y shifts by 16 pixels
    processor = EpmVGImageProcessor(size=64)
    obj = {"bbox": [0, 0, 16, 16], "color": "red", "shape": "square"}
    labels = EpmVGDenseLabeler(ATTRIBUTES, grid_size=4)([{"scene_objects": [obj]}], [(32, 64)], processor)
    expected = processor.boxes_to_canvas([obj["bbox"]], [(32, 64)])[0]
    cell = int(expected[1] * 4) * 4 + int(expected[0] * 4)
    assert np.allclose(labels[0, cell, :4].numpy(), expected) and cell == 4


def test_the_first_object_wins_a_shared_cell():
    objects = [
        {"bbox": [0, 0, 10, 10], "color": "red", "shape": "circle"},
        {"bbox": [2, 2, 12, 12], "color": "blue", "shape": "star"},
    ]
    labels = EpmVGDenseLabeler(ATTRIBUTES, grid_size=2)(
        [{"scene_objects": objects}], [(64, 64)], EpmVGImageProcessor(size=64)
    )
    assert labels[0, 0, 4:].tolist() == [0, 0]


@pytest.mark.parametrize(
    "row, message",
    [
        ({"scene_objects": []}, "no 'scene_objects'"),
        ({"scene_objects": [{"bbox": [0, 0, 9, 9], "color": "teal", "shape": "star"}]}, "teal"),
    ],
)
def test_rows_without_usable_annotations_are_named(row, message):
    with pytest.raises(ValueError, match=message):
        EpmVGDenseLabeler(ATTRIBUTES, grid_size=2)([row], [(64, 64)], EpmVGImageProcessor(size=64))


def test_the_collator_refuses_dense_labels_for_augmented_rows():
    from processing import EpmVGProcessor

    collator = EpmVGDataCollator(EpmVGProcessor.from_model_config(tiny_config(), tiny_tokenizer()),
                                 dense_labeler=EpmVGDenseLabeler(ATTRIBUTES, grid_size=2))  # fmt: skip
    row = {"image": Image.new("RGB", (64, 64)), "bbox": [0, 0, 9, 9], "expression": "the red circle", "offset": (0, 0)}
    with pytest.raises(ValueError, match="--augment false"):
        collator([row | {"scene_objects": [{"bbox": [0, 0, 9, 9], "color": "red", "shape": "circle"}]}])


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """A saved 32x32 synthetic benchmark and a tiny student config whose visual grid is 4x4."""
    folder = tmp_path_factory.mktemp("synthetic")
    config = SyntheticGroundingConfig(image_size=32, max_objects=4)
    save_synthetic_dataset(generate_synthetic_dataset(24, 8, 0, config=config), str(folder / "data"), config)
    tiny_config(image_size=32, backbone_stride=8, backbone_config={"model_type": "resnet", "embedding_size": 8,
                "hidden_sizes": [8, 16], "depths": [1, 1], "layer_type": "basic", "out_features": ["stage2"]},
                freeze_backbone_stages=0).save_pretrained(folder / "config")  # fmt: skip
    return folder


@pytest.fixture(scope="module")
def pretrained(synthetic):
    output = synthetic / "visual"
    status = pretrain_visual(["--dataset", str(synthetic / "data"), "--config-name", str(synthetic / "config"),
                              "--output-dir", str(output), "--max-steps", "3", "--batch-size", "4"])  # fmt: skip
    assert status == 0
    return output, json.loads((output / "visual_pretraining_metrics.json").read_text())


def test_pretraining_saves_a_checkpoint_and_its_dense_accuracies(pretrained):
    output, metrics = pretrained
    assert set(metrics) == {f"dense_{name}_accuracy" for name in ("objectness", "color", "shape", "size")}
    assert all(0 <= value <= 1 for value in metrics.values())
    model = EpmVGForVisualPretraining.from_pretrained(output)
    assert model.config.dense_attribute_classes == [5, 5, 2]
    assert model.config.distillation_image_coefficient == model.config.distillation_text_coefficient == 0


def test_pretraining_sees_each_scene_once_per_epoch(synthetic):
    from datasets import load_from_disk

    train = load_from_disk(str(synthetic / "data"))["train"]
    scenes = unique_scenes(train)
    assert len(set(scenes["image_id"])) == len(scenes) == len(set(train["image_id"])) < len(train)


def test_the_checkpoint_initializes_the_whole_visual_branch_of_a_grounding_model(pretrained, tmp_path, caplog):
    output, _ = pretrained
    BertModel(tiny_config().text_config).save_pretrained(tmp_path / "text")
    model = EpmVGForVisualGrounding.from_backbone_text_pretrained(
        str(output), str(tmp_path / "text"), image_size=32, max_text_len=8, d_model=16, fusion_layers=2,
        fusion_attention_heads=2, fusion_ffn_dim=32, auxiliary_dense_loss_coefficient=0.5,
    )  # fmt: skip
    pretraining = EpmVGForVisualPretraining.from_pretrained(output)
    grounding = model.state_dict()
    for name, tensor in pretraining.state_dict().items():
        assert torch.equal(grounding[name], tensor), name
    assert (
        "from " + str(output) + ": backbone, dense_head, input_projection, vision_encoder, vision_projection"
        in caplog.text
    )
    assert "newly initialized (train them): bbox_predictor, fusion_encoder" in caplog.text


def test_the_scene_collator_batches_images_and_dense_labels(synthetic):
    from datasets import load_from_disk

    rows = [load_from_disk(str(synthetic / "data"))["val"][index] for index in range(2)]
    labeler = EpmVGDenseLabeler(SyntheticGroundingConfig().object_attributes, grid_size=4)
    batch = EpmVGSceneCollator(EpmVGImageProcessor(size=32), labeler)(rows)
    assert batch["pixel_values"].shape == (2, 3, 32, 32) and batch["dense_labels"].shape == (2, 16, 7)
    assert ((batch["dense_labels"][..., 4] >= 0).sum(1) == torch.tensor([len(r["scene_objects"]) for r in rows])).all()
