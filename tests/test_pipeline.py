# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""The "visual-grounding" pipeline: same boxes as model + processor + post-processing, single and batched."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import pipeline

from processing import EpmVGProcessor, VisualGroundingPipeline

from .remote_code import run_without_package
from .test_hub_loading import save_model_and_processor


IMAGES = {
    "wide": (48, 80),
    "tall": (60, 30),
    "square": (40, 40),
}
EXPRESSIONS = ["the red circle", "the small square left of the star", "a big blue triangle", "the dog"]


def make_image(height: int, width: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("checkpoint")
    model, processor = save_model_and_processor(folder)
    return folder, model, processor


@pytest.fixture(scope="module")
def grounder(saved):
    # the saved config names the folder's own pipeline file: pipeline_class= picks the installed one instead
    return pipeline("visual-grounding", model=str(saved[0]), pipeline_class=VisualGroundingPipeline, device="cpu")


def reference_boxes(model, processor, pairs: list[tuple[Image.Image, str]]) -> list[list[float]]:
    """Boxes from model + processor + post-processing, one (image, expression) pair at a time."""
    boxes = []
    for image, expression in pairs:
        inputs = processor(images=image, text=expression, return_tensors="pt")
        with torch.inference_mode():
            outputs = model(**inputs)
        result = processor.post_process_visual_grounding(outputs, target_sizes=[(image.height, image.width)])[0]
        boxes.append(result["boxes"][0].tolist())
    return boxes


def as_list(result: dict) -> list[float]:
    assert set(result) == {"box", "score", "expression"}
    assert result["score"] == 1.0
    return [result["box"][key] for key in ("xmin", "ymin", "xmax", "ymax")]


def test_task_is_registered_and_loads_the_processor(grounder):
    assert isinstance(grounder, VisualGroundingPipeline)
    assert isinstance(grounder.processor, EpmVGProcessor) and grounder.processor.max_text_len == 8


def test_pipeline_from_objects_in_memory(saved):
    _, model, processor = saved
    image = make_image(30, 50, seed=5)
    in_memory = pipeline("visual-grounding", model=model, processor=processor, device="cpu")
    np.testing.assert_allclose(
        as_list(in_memory(image, "the dog")), reference_boxes(model, processor, [(image, "the dog")])[0], atol=1e-4
    )


def test_single_image_single_and_several_expressions(saved, grounder):
    _, model, processor = saved
    image = make_image(*IMAGES["wide"], seed=0)
    single = grounder(image, EXPRESSIONS[0])
    assert isinstance(single, dict) and single["expression"] == EXPRESSIONS[0]
    expected = reference_boxes(model, processor, [(image, text) for text in EXPRESSIONS])
    np.testing.assert_allclose(as_list(single), expected[0], atol=1e-4)

    several = grounder(image, EXPRESSIONS, batch_size=3)
    assert [result["expression"] for result in several] == EXPRESSIONS
    np.testing.assert_allclose([as_list(result) for result in several], expected, atol=1e-4)


def test_batched_images_of_different_sizes_with_several_expressions_each(saved, grounder, tmp_path):
    _, model, processor = saved
    images = [make_image(*size, seed=index) for index, size in enumerate(IMAGES.values())]
    # one image as a local file, to cover paths too
    images[1].save(tmp_path / "tall.png")
    inputs = [images[0], str(tmp_path / "tall.png"), images[2]]
    expressions = [EXPRESSIONS[:3], EXPRESSIONS[3], EXPRESSIONS[1:]]
    pairs = [(images[0], text) for text in EXPRESSIONS[:3]] + [(images[1], EXPRESSIONS[3])]
    pairs += [(images[2], text) for text in EXPRESSIONS[1:]]
    expected = reference_boxes(model, processor, pairs)

    for batch_size in (1, 4):
        results = grounder(inputs, expressions, batch_size=batch_size)
        assert [type(result) for result in results] == [list, dict, list]
        flat = results[0] + [results[1]] + results[2]
        assert [result["expression"] for result in flat] == [text for _, text in pairs]
        np.testing.assert_allclose([as_list(result) for result in flat], expected, atol=1e-4)
        # boxes are in each original image's pixels
        for (image, _), result in zip(pairs, flat):
            assert 0 <= result["box"]["xmin"] <= result["box"]["xmax"] <= image.width
            assert 0 <= result["box"]["ymin"] <= result["box"]["ymax"] <= image.height

    broadcast = grounder(images, "the dog", batch_size=2)
    np.testing.assert_allclose(
        [as_list(result) for result in broadcast],
        reference_boxes(model, processor, [(image, "the dog") for image in images]),
        atol=1e-4,
    )
    dicts = grounder([{"image": images[2], "expressions": ["the dog"]}], batch_size=2)
    np.testing.assert_allclose(as_list(dicts[0][0]), expected[-1], atol=1e-4)


def test_bad_inputs_are_named(grounder, tmp_path):
    image = make_image(20, 20, seed=0)
    with pytest.raises(FileNotFoundError, match="missing.png"):
        grounder(str(tmp_path / "missing.png"), "the dog")
    with pytest.raises(ValueError, match="2 images and 3 expressions"):
        grounder([image, image], ["a", "b", "c"])
    with pytest.raises(ValueError, match="Expression 1 is empty"):
        grounder(image, ["the dog", "  "])
    with pytest.raises(ValueError, match="referring expression"):
        grounder(image)


# Runs where the repository's packages cannot be imported: the pipeline code comes from the saved folder.
REMOTE_PIPELINE_SCRIPT = """
import json, sys
for name in ("modeling_epmvg", "processing", "scripts"):
    sys.modules[name] = None
from PIL import Image
from transformers import pipeline

grounder = pipeline("visual-grounding", model=sys.argv[1], trust_remote_code=True, device="cpu")
image = Image.open(sys.argv[2])
results = grounder(image, json.loads(sys.argv[3]))
print(json.dumps({"module": type(grounder).__module__, "results": results}))
"""


def remote_pipeline_boxes(folder, image: Image.Image, expressions: list[str], tmp_path) -> list[list[float]]:
    """Boxes of `pipeline("visual-grounding", model=folder, trust_remote_code=True)` without the package."""
    image.save(tmp_path / "image.png")
    remote = run_without_package(
        REMOTE_PIPELINE_SCRIPT, str(folder), str(tmp_path / "image.png"), json.dumps(expressions), cwd=tmp_path
    )
    assert remote["module"].startswith("transformers_modules.")
    return [as_list(result) for result in remote["results"]]


def test_a_saved_model_and_processor_folder_runs_as_the_pipeline_without_the_package(saved, grounder, tmp_path):
    folder, model, processor = saved
    assert (folder / "pipeline_epmvg.py").is_file()
    assert json.loads((folder / "config.json").read_text())["custom_pipelines"]["visual-grounding"]["impl"] == (
        "pipeline_epmvg.VisualGroundingPipeline"
    )
    image = make_image(36, 52, seed=7)
    expected = [as_list(result) for result in grounder(image, EXPRESSIONS)]
    np.testing.assert_allclose(remote_pipeline_boxes(folder, image, EXPRESSIONS, tmp_path), expected, atol=1e-4)
    np.testing.assert_allclose(
        expected, reference_boxes(model, processor, [(image, t) for t in EXPRESSIONS]), atol=1e-4
    )


def test_a_folder_written_by_pipeline_save_pretrained_loads_back_the_same_way(saved, grounder, tmp_path):
    _, model, processor = saved
    grounder.save_pretrained(tmp_path / "pipe")
    assert (tmp_path / "pipe" / "processor_config.json").is_file()
    image = make_image(36, 52, seed=7)
    np.testing.assert_allclose(
        remote_pipeline_boxes(tmp_path / "pipe", image, EXPRESSIONS, tmp_path),
        reference_boxes(model, processor, [(image, text) for text in EXPRESSIONS]),
        atol=1e-4,
    )
