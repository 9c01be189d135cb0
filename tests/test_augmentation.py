# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""TransVG's training augmentation: boxes follow the pixels, whole-word left/right, seeded per (seed, epoch, example)
(issue 4, acceptance 2; issue 27 item 4)."""

import numpy as np
import PIL.Image
import pytest
from datasets import Dataset

from processing import EpmVGImageProcessor
from processing.data.augmentation import (
    EpmVGAugmentation,
    EpmVGAugmentedDataset,
    crop_window,
    has_direction_word,
    swap_left_right,
)
from processing.data.schema import GROUNDING_FEATURES


BOX = [20.0, 10.0, 50.0, 40.0]


def marked_image(width=80, height=60, box=BOX) -> PIL.Image.Image:
    """Dark image with the box region white and a grey strip on its left (so a flip is visible)."""
    pixels = np.full((height, width, 3), 30, dtype=np.uint8)
    x1, y1, x2, y2 = (int(v) for v in box)
    pixels[y1:y2, x1:x2] = 255
    pixels[y1:y2, x1 : x1 + 5] = 140
    return PIL.Image.fromarray(pixels)


def bright_box(pixels: np.ndarray, threshold: float) -> list[float]:
    """xyxy (pixel edges) of the pixels above `threshold` in an (H, W) array."""
    ys, xs = np.nonzero(pixels > threshold)
    return [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


@pytest.mark.parametrize(
    ("text", "swapped"),
    [
        ("the bright lamp on the left", "the bright lamp on the right"),
        ("Left guy, right of the copyright sign", "Right guy, left of the copyright sign"),
        ("leftmost cake, RIGHT-hand side", "rightmost cake, LEFT-hand side"),
        ("upright bottle", "upright bottle"),
    ],
)
def test_left_right_swap_is_whole_word(text, swapped):
    assert swap_left_right(text) == swapped
    assert swap_left_right(swapped) == text


def test_direction_words_are_whole_words():
    assert (
        has_direction_word("man on the left") and has_direction_word("topmost shelf") and has_direction_word("Middle")
    )
    assert not has_direction_word("bright light") and not has_direction_word("upright stoppers")


def test_same_seed_epoch_and_index_same_output_and_any_other_differs():
    def run(seed, epoch=0, first_index=0):
        augment = EpmVGAugmentation(size=64, seed=seed)
        outs = [augment(marked_image(), BOX, "a dog", index=first_index + i, epoch=epoch) for i in range(6)]
        return [(np.asarray(o["image"]).tobytes(), o["bbox"], o["expression"], o["offset"]) for o in outs]

    assert run(3) == run(3)
    assert run(3) != run(4)
    assert run(3) != run(3, epoch=1)
    assert run(3) != run(3, first_index=6)
    assert run(3, first_index=2)[:4] == run(3)[2:]  # an example's draws do not depend on the ones before it


@pytest.mark.parametrize("text", ["a dog", "dog on the left"])  # with / without the crop branch
def test_box_follows_its_pixels_through_resize_crop_flip_and_placement(text):
    augment = EpmVGAugmentation(size=64, crop_prob=1.0, jitter_prob=0.0, seed=0)
    processor = EpmVGImageProcessor(size=64)
    flips = crops = 0
    for index in range(12):
        out = augment(marked_image(), BOX, text, index=index)
        image, box = np.asarray(out["image"], dtype=np.float32)[..., 0], out["bbox"]
        assert max(out["image"].size) in augment.scales
        # the white region (threshold half-way) is where the box says, to interpolation precision
        assert bright_box(image, 100) == pytest.approx(box, abs=1.0)
        flipped = image[int(box[1]) + 2, int(box[0]) + 1] > 200  # the grey strip moved to the right edge
        flips += flipped
        assert (out["expression"] != text) == (flipped and "left" in text)
        crops += out["image"].size[0] / out["image"].size[1] != pytest.approx(80 / 60, abs=0.03)
        # placement: the processor pastes the image at `offset`; the labels point at the same pixels in the canvas
        inputs = processor(out["image"], boxes=[box], do_resize=False, offsets=[out["offset"]], return_tensors="np")
        cx, cy, w, h = inputs["labels"][0] * 64
        canvas = np.where(inputs["pixel_mask"][0] == 1, inputs["pixel_values"][0, 0], -10.0)  # padding is 0 too
        assert bright_box(canvas, (85 / 255 - 0.485) / 0.229) == pytest.approx(
            [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], abs=1.0
        )
        top, left = out["offset"]
        assert inputs["pixel_mask"][0, top, left] == 1 and inputs["pixel_mask"][0].sum() == image.size
    assert 0 < flips < 12
    if text == "a dog":
        assert crops > 0  # some crops changed the aspect ratio ...
    else:
        assert crops == 0  # ... never with a direction word


def test_crop_window_always_contains_the_box():
    rng = np.random.default_rng(0)
    for _ in range(200):
        width, height = rng.integers(400, 800, size=2)
        x1, y1 = rng.uniform(0, width - 50), rng.uniform(0, height - 50)
        box = [x1, y1, min(width, x1 + rng.uniform(1, 300)), min(height, y1 + rng.uniform(1, 300))]
        window = crop_window(rng, (int(width), int(height)), box, 384, 600)
        if window is None:
            assert box[2] - box[0] > 600 or box[3] - box[1] > 600
            continue
        left, top, w, h = window
        assert 384 <= w <= 600 and 384 <= h <= 600 and left + w <= width and top + h <= height
        assert left <= box[0] and top <= box[1] and box[2] <= left + w and box[3] <= top + h


def test_colour_jitter_keeps_geometry():
    augment = EpmVGAugmentation(size=64, crop_prob=0.0, jitter_prob=1.0, flip_prob=0.0, random_placement=False, seed=1)
    plain = EpmVGAugmentation(size=64, crop_prob=0.0, jitter_prob=0.0, flip_prob=0.0, random_placement=False, seed=1)
    jittered, reference = augment(marked_image(), BOX, "x", index=0), plain(marked_image(), BOX, "x", index=0)
    assert jittered["image"].size == reference["image"].size and jittered["offset"] == reference["offset"]
    assert not np.array_equal(np.asarray(jittered["image"]), np.asarray(reference["image"]))


def unified_rows(expressions: list[str]) -> Dataset:
    rows = {
        "image": [marked_image()] * len(expressions),
        "width": [80] * len(expressions),
        "height": [60] * len(expressions),
        "bbox": [BOX] * len(expressions),
        "expression": expressions,
        "image_id": ["1"] * len(expressions),
        "ref_id": ["r"] * len(expressions),
        "source": ["test"] * len(expressions),
        "split": ["train"] * len(expressions),
    }
    return Dataset.from_dict(rows, features=GROUNDING_FEATURES)


def as_tuple(row: dict) -> tuple:
    return np.asarray(row["image"]).tobytes(), row["bbox"], row["expression"], tuple(row["offset"])


def test_augmented_dataset_is_lazy_and_seeded_on_unified_rows():
    dataset = unified_rows(["left dog", "dog", "bright dog"])
    first, again = (EpmVGAugmentedDataset(dataset, EpmVGAugmentation(size=64, seed=0)) for _ in range(2))
    assert [as_tuple(first[i]) for i in range(3)] == [as_tuple(again[i]) for i in range(3)]
    assert as_tuple(first[1]) == as_tuple(first[1])  # the same example in the same epoch: the same draws
    row = first[1]
    assert max(row["image"].size) <= 64 and len(row["offset"]) == 2 and (row["width"], row["height"]) == (80, 60)
    assert len(first) == 3
    expressions = {"left": set(), "bright": set()}
    for epoch in range(8):
        first.set_epoch(epoch)
        expressions["left"].add(first[0]["expression"])
        expressions["bright"].add(first[2]["expression"])
    assert expressions == {"left": {"left dog", "right dog"}, "bright": {"bright dog"}}  # epochs draw anew


@pytest.mark.parametrize("persistent_workers", [False, True])
def test_dataloader_workers_draw_what_the_main_process_draws_in_every_epoch(persistent_workers):
    from torch.utils.data import DataLoader

    dataset = EpmVGAugmentedDataset(unified_rows(["dog", "cat", "left dog", "a bird"]), EpmVGAugmentation(size=64))
    expected = {}
    for epoch in (0, 1):
        dataset.set_epoch(epoch)
        expected[epoch] = [as_tuple(dataset[index]) for index in (3, 1, 0, 2)]
    assert expected[0] != expected[1]

    loader = DataLoader(
        dataset, sampler=[3, 1, 0, 2], batch_size=2, collate_fn=list, num_workers=2,
        persistent_workers=persistent_workers,
    )  # fmt: skip
    for epoch in (0, 1):
        dataset.set_epoch(epoch)  # after the workers of a persistent loader are started
        assert [as_tuple(row) for batch in loader for row in batch] == expected[epoch]
