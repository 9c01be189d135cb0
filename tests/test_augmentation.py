"""TransVG's training augmentation: boxes follow the pixels, whole-word left/right, seeded (issue 4, acceptance 2)."""

import numpy as np
import PIL.Image
import pytest
from datasets import Dataset

from processing import EpmVGImageProcessor
from processing.data.augmentation import EpmVGAugmentation, crop_window, has_direction_word, swap_left_right
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


def test_same_seed_same_output_and_different_seed_differs():
    def run(seed):
        augment = EpmVGAugmentation(size=64, seed=seed)
        outs = [augment(marked_image(), BOX, "a dog") for _ in range(6)]
        return [(np.asarray(o["image"]).tobytes(), o["bbox"], o["expression"], o["offset"]) for o in outs]

    assert run(3) == run(3)
    assert run(3) != run(4)


@pytest.mark.parametrize("text", ["a dog", "dog on the left"])  # with / without the crop branch
def test_box_follows_its_pixels_through_resize_crop_flip_and_placement(text):
    augment = EpmVGAugmentation(size=64, crop_prob=1.0, jitter_prob=0.0, seed=0)
    processor = EpmVGImageProcessor(size=64)
    flips = crops = 0
    for _ in range(12):
        out = augment(marked_image(), BOX, text)
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
    jittered, reference = augment(marked_image(), BOX, "x"), plain(marked_image(), BOX, "x")
    assert jittered["image"].size == reference["image"].size and jittered["offset"] == reference["offset"]
    assert not np.array_equal(np.asarray(jittered["image"]), np.asarray(reference["image"]))


def test_with_transform_on_unified_rows():
    rows = {
        "image": [marked_image()] * 3,
        "width": [80] * 3,
        "height": [60] * 3,
        "bbox": [BOX] * 3,
        "expression": ["left dog", "dog", "bright dog"],
        "image_id": ["1"] * 3,
        "ref_id": ["r"] * 3,
        "source": ["test"] * 3,
        "split": ["train"] * 3,
    }
    dataset = Dataset.from_dict(rows, features=GROUNDING_FEATURES)
    first, again = (dataset.with_transform(EpmVGAugmentation(size=64, seed=0).transform_batch) for _ in range(2))
    assert first[:3]["bbox"] == again[:3]["bbox"] and first[:3]["offset"] == again[:3]["offset"]  # lazy and seeded
    row = first[1]
    assert max(row["image"].size) <= 64 and len(row["offset"]) == 2 and (row["width"], row["height"]) == (80, 60)
    assert {first[2]["expression"] for _ in range(8)} == {"bright dog"}
    assert {first[0]["expression"] for _ in range(8)} == {"left dog", "right dog"}


def test_each_dataloader_worker_and_epoch_draws_its_own_stream(monkeypatch):
    from types import SimpleNamespace

    import torch.utils.data

    def first_draws(worker_seed):
        monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda: SimpleNamespace(id=0, seed=worker_seed))
        return EpmVGAugmentation(size=64, seed=0).generator().random(3).tolist()

    assert first_draws(100) == first_draws(100)  # torch seeds workers deterministically: so are we
    assert first_draws(100) != first_draws(101)  # another worker, or the same worker in the next epoch
