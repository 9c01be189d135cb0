# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""EpmVGImageProcessor: letterbox geometry, image inputs of every kind, boxes to and from the canvas, bad input."""

import json

import numpy as np
import PIL.Image
import pytest
import torch
from transformers import AutoImageProcessor
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from modeling_epmvg import EpmVGVisualGroundingOutput
from processing import EpmVGImageProcessor, get_letterbox_geometry


CANVAS = 64


@pytest.fixture
def image_processor() -> EpmVGImageProcessor:
    return EpmVGImageProcessor(size=CANVAS)


def solid(width: int, height: int, colour=(200, 100, 50)) -> PIL.Image.Image:
    return PIL.Image.new("RGB", (width, height), colour)


def normalized(colour) -> np.ndarray:
    """What the processor turns an RGB colour into."""
    return (np.array(colour) / 255 - np.array(IMAGENET_DEFAULT_MEAN)) / np.array(IMAGENET_DEFAULT_STD)


def palette_image(colour) -> PIL.Image.Image:
    """A mode "P" image whose every pixel is palette entry 0 = `colour`."""
    image = PIL.Image.new("P", (8, 6), 0)
    image.putpalette(list(colour) * 256)
    return image


def random_boxes(rng: np.random.Generator, image_sizes: list[tuple[int, int]]) -> np.ndarray:
    """One random xyxy box (at least 0.5 px wide and high) inside each image."""
    boxes = []
    for height, width in image_sizes:
        x1, x2 = np.sort(rng.uniform(0, width, 2)) + [0, 0.5]
        y1, y2 = np.sort(rng.uniform(0, height, 2)) + [0, 0.5]
        boxes.append([x1, y1, min(x2, width), min(y2, height)])
    return np.array(boxes)


# --- letterbox geometry -------------------------------------------------------------------------------------------


def test_geometry_resizes_the_long_side_and_centres():
    assert get_letterbox_geometry((600, 800), 640) == (0.8, 480, 640, 80, 0)
    assert get_letterbox_geometry((800, 600), 640) == (0.8, 640, 480, 0, 80)
    assert get_letterbox_geometry((10, 10), 640) == (64.0, 640, 640, 0, 0)


def test_geometry_keeps_at_least_one_pixel_for_extreme_aspect_ratios():
    _, new_height, new_width, top, left = get_letterbox_geometry((1, 10_000), 640)
    assert (new_height, new_width, top, left) == (1, 640, 319, 0)


def test_geometry_without_resize_and_with_offset():
    assert get_letterbox_geometry((20, 30), 64, do_resize=False) == (1.0, 20, 30, 22, 17)
    assert get_letterbox_geometry((20, 30), 64, do_resize=False, offset=(44, 0)) == (1.0, 20, 30, 44, 0)


@pytest.mark.parametrize("size", [(600, 800), (800, 600), (37, 64), (64, 5), (1, 1), (333, 333)])
def test_canvas_holds_the_resized_image_and_zero_padding(image_processor, size):
    height, width = size
    colour = (200, 100, 50)
    inputs = image_processor(solid(width, height, colour), return_tensors="pt")
    pixel_values, pixel_mask = inputs["pixel_values"][0], inputs["pixel_mask"][0]
    _, new_height, new_width, top, left = get_letterbox_geometry(size, CANVAS)

    assert pixel_values.shape == (3, CANVAS, CANVAS) and pixel_values.dtype == torch.float32
    assert pixel_mask.shape == (CANVAS, CANVAS) and pixel_mask.dtype == torch.int64
    assert pixel_mask.sum() == new_height * new_width
    assert pixel_mask[top : top + new_height, left : left + new_width].all()
    # padding is 0 after normalization, i.e. the mean colour
    assert (pixel_values[:, pixel_mask == 0] == 0).all()
    expected = torch.tensor(normalized(colour), dtype=torch.float32)[:, None]
    torch.testing.assert_close(pixel_values[:, pixel_mask == 1], expected.expand(3, new_height * new_width))


def test_default_canvas_is_640_and_centred():
    inputs = EpmVGImageProcessor()(solid(800, 600), return_tensors="pt")
    assert inputs["pixel_values"].shape == (1, 3, 640, 640)
    rows = inputs["pixel_mask"][0].any(dim=1).nonzero().flatten()
    assert (rows.min().item(), rows.max().item()) == (80, 559)


def test_offsets_place_the_image(image_processor):
    images = [solid(40, 20), solid(40, 20)]
    inputs = image_processor(images, offsets=[(0, 0), (32, 0)], return_tensors="pt")
    # a 40x20 image becomes 64x32: it can sit anywhere from top=0 to top=32
    assert inputs["pixel_mask"][0, :32].all() and not inputs["pixel_mask"][0, 32:].any()
    assert inputs["pixel_mask"][1, 32:].all() and not inputs["pixel_mask"][1, :32].any()


def test_offsets_move_the_labels(image_processor):
    box = [0, 0, 40, 20]
    top = image_processor(solid(40, 20), boxes=[box], offsets=[(0, 0)])["labels"]
    bottom = image_processor(solid(40, 20), boxes=[box], offsets=[(32, 0)])["labels"]
    np.testing.assert_allclose(top, [[0.5, 0.25, 1.0, 0.5]])
    np.testing.assert_allclose(bottom, [[0.5, 0.75, 1.0, 0.5]])


def test_do_resize_false_pastes_the_pixels_unchanged(image_processor):
    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    inputs = image_processor(array, do_resize=False, offsets=[(5, 7)], boxes=[[0, 0, 30, 20]])
    assert inputs["pixel_mask"][0].sum() == 20 * 30
    expected = normalized(array.transpose(2, 0, 1).reshape(3, -1).T).T.reshape(3, 20, 30)
    np.testing.assert_allclose(inputs["pixel_values"][0, :, 5:25, 7:37], expected, atol=1e-5)
    np.testing.assert_allclose(inputs["labels"], [[22 / 64, 15 / 64, 30 / 64, 20 / 64]], atol=1e-7)


# --- boxes round trip ----------------------------------------------------------------------------------------------


def test_box_round_trip_through_preprocess_and_post_process(image_processor):
    rng = np.random.default_rng(0)
    image_sizes = [(int(h), int(w)) for h, w in rng.integers(1, 300, (24, 2))] + [(1, 299), (299, 1), (64, 64)]
    boxes = random_boxes(rng, image_sizes)
    images = [solid(width, height) for height, width in image_sizes]

    labels = image_processor(images, boxes=boxes, return_tensors="pt")["labels"]
    assert labels.shape == (len(images), 4) and labels.dtype == torch.float32
    assert ((labels >= 0) & (labels <= 1)).all()

    results = image_processor.post_process_visual_grounding(labels, target_sizes=image_sizes)
    recovered = torch.cat([result["boxes"] for result in results]).numpy()
    np.testing.assert_allclose(recovered, boxes, rtol=0, atol=1e-3)


@pytest.mark.parametrize("canvas", [640, 320])
def test_box_round_trip_for_random_sizes_and_aspect_ratios(canvas):
    image_processor = EpmVGImageProcessor(size=canvas)
    rng = np.random.default_rng(canvas)
    # aspect ratios from 1:50 to 50:1, sides from 1 to 4000 pixels
    long_sides = rng.integers(1, 4000, 500)
    short_sides = np.maximum(1, (long_sides / rng.uniform(1, 50, 500)).astype(int))
    swap = rng.random(500) < 0.5
    image_sizes = np.where(
        swap[:, None], np.stack([long_sides, short_sides], 1), np.stack([short_sides, long_sides], 1)
    )
    boxes = random_boxes(rng, image_sizes.tolist())

    labels = image_processor.boxes_to_canvas(boxes, image_sizes)
    recovered = image_processor.boxes_from_canvas(labels, image_sizes)
    np.testing.assert_allclose(recovered, boxes, rtol=0, atol=1e-3)


def test_box_round_trip_with_offsets_and_without_resize(image_processor):
    rng = np.random.default_rng(1)
    image_sizes = [(20, 30), (64, 1), (1, 64), (64, 64)]
    offsets = [(44, 34), (0, 63), (63, 0), (0, 0)]
    boxes = random_boxes(rng, image_sizes)
    labels = image_processor.boxes_to_canvas(boxes, image_sizes, offsets=offsets, do_resize=False)
    recovered = image_processor.boxes_from_canvas(labels, image_sizes, offsets=offsets, do_resize=False)
    np.testing.assert_allclose(recovered, boxes, rtol=0, atol=1e-4)


def test_boxes_may_be_flat_list_array_or_tensor(image_processor):
    expected = image_processor(solid(80, 60), boxes=[[10, 20, 30, 40]])["labels"]
    for boxes in ([10, 20, 30, 40], np.array([[10, 20, 30, 40]]), torch.tensor([10.0, 20, 30, 40])):
        np.testing.assert_array_equal(image_processor(solid(80, 60), boxes=boxes)["labels"], expected)


def test_box_slightly_outside_the_image_is_clipped(image_processor):
    labels = image_processor(solid(64, 64), boxes=[[-0.5, -0.5, 64.5, 64.5]])["labels"]
    np.testing.assert_allclose(labels, [[0.5, 0.5, 1.0, 1.0]])


# --- post-processing -----------------------------------------------------------------------------------------------


def test_post_process_accepts_model_output_and_returns_one_box_per_image(image_processor):
    pred_boxes = torch.tensor([[0.5, 0.5, 0.5, 0.25], [0.5, 0.5, 1.0, 1.0]])
    outputs = EpmVGVisualGroundingOutput(pred_boxes=pred_boxes)
    results = image_processor.post_process_visual_grounding(outputs, target_sizes=torch.tensor([[32, 64], [32, 64]]))

    assert len(results) == 2
    for result in results:
        assert set(result) == {"boxes", "scores"}
        assert result["boxes"].shape == (1, 4) and result["boxes"].dtype == torch.float32
        assert torch.equal(result["scores"], torch.ones(1))
    torch.testing.assert_close(results[0]["boxes"], torch.tensor([[16.0, 8.0, 48.0, 24.0]]))
    # a prediction covering the whole canvas, padding included, is clipped to the image
    torch.testing.assert_close(results[1]["boxes"], torch.tensor([[0.0, 0.0, 64.0, 32.0]]))


# --- image inputs ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "colour"),
    [
        (PIL.Image.new("RGB", (8, 6), (10, 20, 30)), (10, 20, 30)),
        (PIL.Image.new("L", (8, 6), 100), (100, 100, 100)),
        (PIL.Image.new("RGBA", (8, 6), (10, 20, 30, 255)), (10, 20, 30)),
        (PIL.Image.new("RGBA", (8, 6), (10, 20, 30, 0)), (255, 255, 255)),  # transparent: composited on white
        (PIL.Image.new("LA", (8, 6), (100, 255)), (100, 100, 100)),
        (PIL.Image.new("CMYK", (8, 6), (0, 0, 0, 0)), (255, 255, 255)),
        (palette_image((10, 20, 30)), (10, 20, 30)),
        (PIL.Image.new("I;16", (8, 6), 100 * 257), (100, 100, 100)),  # 16-bit scaled to 8 bits, not clipped
        (PIL.Image.new("I", (8, 6), 100 * 257), (100, 100, 100)),
        (PIL.Image.new("1", (8, 6), 1), (255, 255, 255)),
    ],
    ids=lambda value: getattr(value, "mode", None),
)
def test_every_pil_mode_becomes_rgb(image_processor, image, colour):
    inputs = image_processor(image, return_tensors="pt")
    pixels = inputs["pixel_values"][0][:, inputs["pixel_mask"][0] == 1]
    torch.testing.assert_close(
        pixels, torch.tensor(normalized(colour), dtype=torch.float32)[:, None].expand_as(pixels)
    )


def test_numpy_and_torch_inputs_match_pil(image_processor):
    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, (30, 50, 3), dtype=np.uint8)
    expected = image_processor(PIL.Image.fromarray(array))["pixel_values"]
    same_images = [
        array,  # (H, W, C) uint8
        array.astype(np.float32),  # (H, W, C) float on the 0-255 scale
        array.transpose(2, 0, 1),  # (C, H, W)
        torch.from_numpy(array.transpose(2, 0, 1).copy()),  # torch (C, H, W) uint8
    ]
    for image in same_images:
        np.testing.assert_allclose(image_processor(image)["pixel_values"], expected, atol=1e-5)
    # float images in [0, 1] with do_rescale=False
    unit = torch.from_numpy(array.transpose(2, 0, 1) / 255.0)
    np.testing.assert_allclose(image_processor(unit, do_rescale=False)["pixel_values"], expected, atol=1e-5)


def test_grey_and_rgba_arrays_and_batched_arrays(image_processor):
    grey = np.full((30, 50), 100, dtype=np.uint8)
    expected = image_processor(PIL.Image.fromarray(grey))["pixel_values"]
    for image in (
        grey,
        grey[..., None],
        torch.from_numpy(grey),
        np.dstack([grey, grey, grey, np.full_like(grey, 255)]),
    ):
        np.testing.assert_allclose(image_processor(image)["pixel_values"], expected, atol=1e-5)
    batch = np.zeros((3, 30, 50, 3), dtype=np.uint8)
    assert image_processor(batch)["pixel_values"].shape == (3, 3, CANVAS, CANVAS)


def test_non_integer_float_pixels_are_resized_exactly(image_processor):
    # non-integer floats on the 0-255 scale: PIL's uint8 conversion could not hold them
    image = np.full((10, 20, 3), 127.25, dtype=np.float32)
    pixels = image_processor(image)["pixel_values"][0][:, 16:48]
    np.testing.assert_allclose(
        pixels, np.broadcast_to(normalized([127.25] * 3)[:, None, None], pixels.shape), atol=1e-5
    )


# --- bad input -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "image",
    [PIL.Image.new("RGB", (0, 0)), PIL.Image.new("RGB", (5, 0)), np.zeros((0, 5, 3), np.uint8), torch.zeros(3, 5, 0)],
    ids=["pil-0x0", "pil-5x0", "numpy-0x5", "torch-5x0"],
)
def test_empty_image_is_rejected(image_processor, image):
    with pytest.raises(ValueError, match="Got an empty image of shape"):
        image_processor(image)


@pytest.mark.parametrize(
    ("images", "error", "message"),
    [
        ([], ValueError, "non-empty list of images; got an empty list"),
        ([[np.zeros((4, 4, 3), np.uint8)]], ValueError, "non-empty list of images; got list"),
        (np.zeros((2, 2, 4, 4, 3), np.uint8), ValueError, "must be arrays of shape \\(H, W\\), \\(H, W, C\\)"),
        (None, TypeError, "NoneType"),
        ([np.zeros((4, 4, 3), np.uint8), 3], TypeError, "int"),
    ],
)
def test_no_images_or_wrong_types_are_rejected(image_processor, images, error, message):
    with pytest.raises(error, match=message):
        image_processor(images)


@pytest.mark.parametrize(
    ("box", "message"),
    [
        ([10, 10, 90, 40], "lies outside its image \\(width 80, height 60\\)"),
        ([-5, 10, 20, 40], "lies outside its image"),
        ([30, 10, 20, 40], "is empty \\(x2 <= x1 or y2 <= y1"),
        ([10, 40, 20, 40], "is empty"),
        ([10, 10, float("nan"), 40], "lies outside its image"),
        ([81, 10, 81, 20], "is empty"),  # within the tolerance, but empty once clipped
    ],
)
def test_bad_boxes_are_rejected(image_processor, box, message):
    with pytest.raises(ValueError, match=message):
        image_processor(solid(80, 60), boxes=[box])


def test_xywh_box_error_says_how_to_convert(image_processor):
    with pytest.raises(ValueError, match="x2 = x \\+ width"):
        image_processor(solid(80, 60), boxes=[[40, 30, 20, 10]])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"boxes": [[0, 0, 5, 5]]}, "Got 1 boxes for 2 images"),
        ({"boxes": [[0, 0, 5, 5, 1]] * 2}, "one \\(x1, y1, x2, y2\\) box per image"),
        ({"boxes": [[0, 0, 5, 5], [0, 0, 5]]}, "one \\(x1, y1, x2, y2\\) box per image"),
        ({"offsets": [(0, 0)]}, "Got 1 offsets for 2 images"),
        ({"offsets": [(0, 0), (33, 0)]}, "offset \\(top=33, left=0\\) does not fit.*0 <= top <= 32"),
        ({"offsets": [(0, 0), (-1, 0)]}, "does not fit"),
        ({"offsets": [(0, 0), (0.5, 0)]}, "whole numbers of pixels"),
        ({"do_resize": False, "size": 16}, "does not fit in the 16x16 canvas with do_resize=False"),
        ({"size": {"height": 64, "width": 32}}, "square canvas"),
    ],
)
def test_bad_arguments_are_rejected(image_processor, kwargs, message):
    with pytest.raises(ValueError, match=message):
        image_processor([solid(40, 20), solid(40, 20)], **kwargs)


def test_non_square_canvas_is_rejected_at_construction():
    with pytest.raises(ValueError, match="square canvas"):
        EpmVGImageProcessor(size={"height": 640, "width": 480})


@pytest.mark.parametrize(
    ("target_sizes", "message"),
    [
        ([(60, 80)], "Got 2 boxes for 1 images"),
        ([(60, 80), (0, 80)], "must be positive"),
        ([60, 80, 70], "one \\(height, width\\) pair per image"),
    ],
)
def test_post_process_rejects_bad_target_sizes(image_processor, target_sizes, message):
    with pytest.raises(ValueError, match=message):
        image_processor.post_process_visual_grounding(torch.full((2, 4), 0.5), target_sizes=target_sizes)


def test_post_process_rejects_boxes_of_the_wrong_shape(image_processor):
    with pytest.raises(ValueError, match="one \\(center_x, center_y, width, height\\) box per image"):
        image_processor.post_process_visual_grounding(torch.full((2, 3), 0.5), target_sizes=[(60, 80)] * 2)


# --- saving and loading --------------------------------------------------------------------------------------------


def test_save_and_load_round_trip(tmp_path):
    image_processor = EpmVGImageProcessor(size=320, image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5])
    image_processor.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert config["size"] == {"height": 320, "width": 320}
    assert config["image_processor_type"] == "EpmVGImageProcessor"
    assert config["auto_map"] == {"AutoImageProcessor": "image_processing_epmvg.EpmVGImageProcessor"}
    assert (tmp_path / "image_processing_epmvg.py").exists()

    for loaded in (EpmVGImageProcessor.from_pretrained(tmp_path), AutoImageProcessor.from_pretrained(tmp_path)):
        assert type(loaded) is EpmVGImageProcessor
        assert loaded.to_dict() == image_processor.to_dict()
        image = solid(50, 30)
        np.testing.assert_array_equal(loaded(image)["pixel_values"], image_processor(image)["pixel_values"])


def test_a_datasets_image_column_is_accepted_as_a_list_of_images():
    from datasets import Dataset
    from datasets import Image as ImageFeature

    column = Dataset.from_dict({"image": [PIL.Image.new("RGB", (10, 20))] * 3}).cast_column("image", ImageFeature())
    assert EpmVGImageProcessor(size=32)(column["image"], return_tensors="pt")["pixel_values"].shape == (3, 3, 32, 32)
