# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""EpmVGProcessor: image processor + tokenizer, text checks, saving, and loading as remote code."""

import ast
import json
import sys
from pathlib import Path

import PIL.Image
import pytest
import torch
from transformers import AutoProcessor

from modeling_epmvg import EpmVGConfig
from processing import EpmVGImageProcessor, EpmVGProcessor


CANVAS = 64
SHIPPED_FILES = ["image_processing_epmvg.py", "processing_epmvg.py"]
PROCESSING_DIR = Path(__file__).resolve().parents[1] / "processing"


@pytest.fixture
def processor(tokenizer) -> EpmVGProcessor:
    return EpmVGProcessor(EpmVGImageProcessor(size=CANVAS), tokenizer, max_text_len=8)


def images() -> list[PIL.Image.Image]:
    return [PIL.Image.new("RGB", (80, 60), (200, 10, 10)), PIL.Image.new("L", (30, 90), 128)]


TEXTS = ["the red circle", "the small green square on the left of the big star"]
BOXES = [[10, 5, 40, 30], [0, 0, 30, 90]]


def test_outputs_have_the_model_input_keys_shapes_and_dtypes(processor):
    inputs = processor(images=images(), text=TEXTS, boxes=BOXES, return_tensors="pt")

    assert set(inputs) == {"pixel_values", "pixel_mask", "input_ids", "token_type_ids", "attention_mask", "labels"}
    assert inputs["pixel_values"].shape == (2, 3, CANVAS, CANVAS) and inputs["pixel_values"].dtype == torch.float32
    assert inputs["pixel_mask"].shape == (2, CANVAS, CANVAS) and inputs["pixel_mask"].dtype == torch.int64
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        assert inputs[key].shape == (2, 8) and inputs[key].dtype == torch.int64
    assert inputs["labels"].shape == (2, 4) and inputs["labels"].dtype == torch.float32
    assert set(inputs) - {"labels"} == set(processor.model_input_names)


def test_text_is_padded_and_truncated_to_max_text_len(processor, tokenizer):
    inputs = processor(images=images(), text=TEXTS, return_tensors="pt")
    # the short expression is padded with [PAD] = 0, the long one truncated and ended with [SEP]
    assert inputs["attention_mask"][0].tolist() == [1, 1, 1, 1, 1, 0, 0, 0]
    assert inputs["input_ids"][0, 5:].tolist() == [0, 0, 0]
    assert inputs["attention_mask"][1].all() and inputs["input_ids"][1, -1] == tokenizer.sep_token_id


def test_a_processor_built_from_a_model_config_takes_its_canvas_and_text_slots(tokenizer):
    processor = EpmVGProcessor.from_model_config(EpmVGConfig(), tokenizer)  # the defaults: 640x640, 20 slots
    assert processor.image_processor.size == {"height": 640, "width": 640} and processor.max_text_len == 20
    assert processor(text="the red circle", return_tensors="pt")["input_ids"].shape == (1, 20)
    with pytest.raises(ValueError, match="needs `max_text_len`, the model's number of text slots"):
        EpmVGProcessor(EpmVGImageProcessor(), tokenizer)
    # a call can still ask for another length
    assert processor(text="the red circle", max_length=40, return_tensors="pt")["input_ids"].shape == (1, 40)


def test_max_text_len_wins_over_a_max_length_saved_with_the_tokenizer(tokenizer):
    tokenizer.init_kwargs["max_length"] = 128  # as sentence-transformers checkpoints save it
    processor = EpmVGProcessor(EpmVGImageProcessor(size=CANVAS), tokenizer, max_text_len=8)
    assert processor(text="the red circle", return_tensors="pt")["input_ids"].shape == (1, 8)


def test_image_and_box_outputs_equal_the_image_processors(processor):
    inputs = processor(images=images(), text=TEXTS, boxes=BOXES, offsets=[(0, 0), (0, 40)], return_tensors="pt")
    expected = processor.image_processor(images(), boxes=BOXES, offsets=[(0, 0), (0, 40)], return_tensors="pt")
    for key in expected:
        assert torch.equal(inputs[key], expected[key])


def test_image_processor_options_pass_through(processor):
    image = PIL.Image.new("RGB", (50, 20))
    inputs = processor(images=image, text="the red circle", do_resize=False, return_tensors="pt")
    assert inputs["pixel_mask"].sum() == 50 * 20


def test_text_only_and_images_only(processor):
    assert set(processor(text=TEXTS)) == {"input_ids", "token_type_ids", "attention_mask"}
    assert set(processor(images=images())) == {"pixel_values", "pixel_mask"}


def test_a_single_image_with_a_single_string(processor):
    inputs = processor(images=images()[0], text="the red circle", boxes=BOXES[0], return_tensors="pt")
    assert inputs["input_ids"].shape == (1, 8) and inputs["labels"].shape == (1, 4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"text": ["the red circle", ""]}, "Expression 1 is empty \\(''\\)"),
        ({"text": ["the red circle", " \t\n"]}, "Expression 1 is empty"),
        ({"text": ["the red circle"]}, "Got 1 texts for 2 images: give exactly one referring expression per image"),
        ({"text": TEXTS + ["a dog"]}, "Got 3 texts for 2 images"),
        ({"text": ["the red circle", 3]}, "`text` must be a string or a non-empty list of strings"),
        ({"text": []}, "`text` must be a string or a non-empty list of strings"),
        ({"text": TEXTS, "boxes": BOXES[:1]}, "Got 1 boxes for 2 images"),
    ],
)
def test_bad_input_is_rejected(processor, kwargs, message):
    with pytest.raises(ValueError, match=message):
        processor(images=images(), **kwargs)


def test_boxes_need_images_and_something_must_be_given(processor):
    with pytest.raises(ValueError, match="pass the `images` together with the `boxes`"):
        processor(text=TEXTS, boxes=BOXES)
    with pytest.raises(ValueError, match="Nothing to process"):
        processor()


def test_post_process_delegates_to_the_image_processor(processor):
    labels = processor(images=images(), text=TEXTS, boxes=BOXES, return_tensors="pt")["labels"]
    results = processor.post_process_visual_grounding(labels, target_sizes=[(60, 80), (90, 30)])
    assert [set(result) for result in results] == [{"boxes", "scores"}] * 2
    recovered = torch.cat([result["boxes"] for result in results])
    torch.testing.assert_close(recovered, torch.tensor(BOXES, dtype=torch.float32), rtol=0, atol=1e-3)


def test_save_and_load_round_trip(processor, tmp_path):
    processor.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "processor_config.json").read_text())
    assert config["max_text_len"] == 8
    assert config["auto_map"] == {"AutoProcessor": "processing_epmvg.EpmVGProcessor"}
    assert all((tmp_path / name).exists() for name in SHIPPED_FILES)

    expected = processor(images=images(), text=TEXTS, boxes=BOXES, return_tensors="pt")
    for loaded in (EpmVGProcessor.from_pretrained(tmp_path), AutoProcessor.from_pretrained(tmp_path)):
        assert type(loaded) is EpmVGProcessor and type(loaded.image_processor) is EpmVGImageProcessor
        assert loaded.max_text_len == 8
        inputs = loaded(images=images(), text=TEXTS, boxes=BOXES, return_tensors="pt")
        assert all(torch.equal(inputs[key], expected[key]) for key in expected)


@pytest.mark.parametrize("name", SHIPPED_FILES)
def test_shipped_files_import_only_runtime_dependencies_and_siblings(name):
    """These files are copied to the Hub as remote code: no absolute imports of this package, no training deps."""
    allowed = {"numpy", "PIL", "torch", "transformers"} | set(sys.stdlib_module_names)
    for node in ast.walk(ast.parse((PROCESSING_DIR / name).read_text())):
        if isinstance(node, ast.Import):
            assert {alias.name.split(".")[0] for alias in node.names} <= allowed, ast.unparse(node)
        elif isinstance(node, ast.ImportFrom):
            sibling = node.level == 1
            assert sibling or (node.level == 0 and node.module.split(".")[0] in allowed), ast.unparse(node)
