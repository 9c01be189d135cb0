# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""One conversion of image modes: 16-bit and RGBA images give the same pixels and boxes everywhere they are read."""

import json

import numpy as np
import PIL.Image
import pytest
import torch
from datasets import Dataset, DatasetDict

from modeling_epmvg.commands import evaluate, predict
from modeling_epmvg.commands.checkpoints import load_grounding_pipeline
from modeling_epmvg.teacher_epmvg import cache_teacher_embeddings
from processing import EpmVGImageProcessor, to_rgb_image
from processing.data.augmentation import EpmVGAugmentation
from processing.data.collator import EpmVGDataCollator
from processing.data.schema import GROUNDING_FEATURES
from processing.data.visualization import draw_grounding

from .conftest import tiny_clip
from .test_hub_loading import save_model_and_processor
from .test_pipeline import as_list


def sixteen_bit_image() -> PIL.Image.Image:
    """A 16-bit grey gradient whose values are all above 255 (PIL's convert("RGB") makes it white)."""
    values = np.linspace(20_000, 60_000, 40 * 56).reshape(40, 56).astype(np.uint16)
    return PIL.Image.fromarray(values)


def rgba_image() -> PIL.Image.Image:
    """Colours with a transparent left half: composited on white, not dropped to their RGB values."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (36, 60, 4), dtype=np.uint8)
    pixels[:, :30, 3] = 0
    return PIL.Image.fromarray(pixels)


def processor_pixels(image: PIL.Image.Image) -> torch.Tensor:
    return EpmVGImageProcessor(size=64)(image, return_tensors="pt")["pixel_values"]


@pytest.mark.parametrize("make_image", [sixteen_bit_image, rgba_image], ids=["I;16", "RGBA"])
def test_to_rgb_image_gives_the_image_processors_pixels(make_image):
    image = make_image()
    converted = to_rgb_image(image)
    assert converted.mode == "RGB" and converted.size == image.size
    torch.testing.assert_close(processor_pixels(converted), processor_pixels(image), atol=0.01, rtol=0)
    assert np.asarray(converted).min() < 200, "the image turned white"
    assert to_rgb_image(converted) is converted


@pytest.mark.parametrize("make_image", [sixteen_bit_image, rgba_image], ids=["I;16", "RGBA"])
def test_augmentation_drawing_and_the_teacher_see_the_converted_pixels(make_image):
    image, expected = make_image(), np.asarray(to_rgb_image(make_image()))
    no_change = EpmVGAugmentation(size=64, scales=(max(image.size),), crop_prob=0, jitter_prob=0, flip_prob=0, seed=0)
    augmented = no_change(image, [1.0, 1.0, 20.0, 20.0], "the dog", index=0)["image"]
    np.testing.assert_array_equal(np.asarray(augmented), expected)
    np.testing.assert_array_equal(np.asarray(draw_grounding(image)), expected)

    seen = []

    def teacher_processor(images, text, **kwargs):
        seen.extend(np.asarray(im) for im in images)
        ids = torch.ones(len(images), 4, dtype=torch.long)
        return {"pixel_values": torch.zeros(len(images), 3, 32, 32), "input_ids": ids, "attention_mask": ids}

    dataset = Dataset.from_dict({"image": [image], "expression": ["the dog"]}, features=None)
    cache_teacher_embeddings(dataset, tiny_clip(), teacher_processor, keep_in_memory=True)
    np.testing.assert_array_equal(seen[0], expected)


def test_the_collator_gives_the_processor_the_image_as_it_is(tmp_path):
    _, processor = save_model_and_processor(tmp_path)
    image = sixteen_bit_image()
    row = {"image": image, "expression": "the dog", "bbox": [1.0, 1.0, 20.0, 20.0]}
    batch = EpmVGDataCollator(processor)([row])
    torch.testing.assert_close(batch["pixel_values"], processor(images=image, return_tensors="pt")["pixel_values"])


@pytest.fixture(scope="module")
def mode_files(tmp_path_factory):
    """A saved model, the 16-bit and RGBA PNG files, and a unified dataset holding them."""
    root = tmp_path_factory.mktemp("modes")
    save_model_and_processor(root / "model")
    paths = {"sixteen": root / "sixteen.png", "rgba": root / "rgba.png"}
    sixteen_bit_image().save(paths["sixteen"])
    rgba_image().save(paths["rgba"])
    rows = {name: [] for name in GROUNDING_FEATURES}
    for index, path in enumerate(paths.values()):
        width, height = PIL.Image.open(path).size
        row = dict(
            image=str(path), width=width, height=height, bbox=[2.0, 3.0, 20.0, 25.0], expression="the red circle",
            image_id=str(index), ref_id=str(index), source="fixture", split="test",
        )  # fmt: skip
        for name, value in row.items():
            rows[name].append(value)
    DatasetDict({"test": Dataset.from_dict(rows, features=GROUNDING_FEATURES)}).save_to_disk(root / "data")
    return root, paths


def test_evaluate_the_pipeline_and_predict_give_identical_boxes_for_16_bit_and_rgba_files(mode_files, capsys):
    root, paths = mode_files
    assert PIL.Image.open(paths["sixteen"]).mode.startswith("I") and PIL.Image.open(paths["rgba"]).mode == "RGBA"
    argv = ["--model", str(root / "model"), "--dataset", str(root / "data"), "--output", str(root / "e.json")]
    assert evaluate.main(argv) == 0
    evaluated = [record["pred_bbox"] for record in json.loads((root / "e.json").read_text())["predictions"]["test"]]

    grounder = load_grounding_pipeline(str(root / "model"), device="cpu")
    piped = [as_list(grounder(str(path), "the red circle")) for path in paths.values()]
    capsys.readouterr()
    argv = [str(root / "model"), "--image", *map(str, paths.values()), "--expression", "the red circle"]
    assert predict.main([*argv, "--output-dir", str(root / "pngs"), "--device", "cpu"]) == 0
    records = json.loads(capsys.readouterr().out)
    predicted = [[record["box"][key] for key in ("xmin", "ymin", "xmax", "ymax")] for record in records]

    np.testing.assert_allclose(evaluated, piped, atol=1e-4)
    np.testing.assert_allclose(predicted, piped, atol=1e-4)
    for record in records:
        drawn = np.asarray(PIL.Image.open(record["visualization"]).convert("RGB"))[: record["image_size"][0]]
        assert drawn.min() < 200 and drawn.std() > 10, "the drawn image is blank"
