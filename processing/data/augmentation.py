# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""TransVG's training augmentation (random resize / box-safe crop, colour jitter, flip with left <-> right swapped in
the text, random placement in the canvas), and `EpmVGAugmentedDataset`, which applies it lazily to a training set.

Each example draws from its own random stream, derived from (seed, epoch, example index) only: what a batch sees
depends neither on the process that loads it (main process, DataLoader worker, distributed rank) nor on what was loaded
before it, so a run resumed from a checkpoint sees the images of the run that was never interrupted.

Fixes of TransVG's code (datasets/transforms.py), on purpose:
- direction words are matched as whole words, and left / right are swapped as whole words on flip: TransVG's
  substring tests turn "bright" into "bleft" and treat it as a direction word. Compounds that name a direction
  (leftmost, right-hand, topside, ...) still count, and swap (leftmost <-> rightmost), with their case kept;
- the random crop always contains the whole box: TransVG compares the box's x with the crop's top row (and y with
  its left column) and then clamps the box to the crop, which can cut the referred object;
- boxes are scaled by the exact per-axis factors of the resized image (TransVG uses the unrounded ratio);
- the text is not lower-cased here (TransVG does it in its loader, for evaluation too): the tokenizer decides.
TransVG's optional Gaussian blur (off in its released recipe) is not included. No torchvision needed.
"""

import re
from dataclasses import dataclass

import numpy as np
import PIL.Image
import torch
from PIL import ImageEnhance

from ..image_processing_epmvg import get_letterbox_geometry, to_rgb_image
from .sources.validation import decode_row_image


# a direction word, alone or as the head of a compound (leftmost, left-hand, rightside, topmost, ...)
_SUFFIXES = r"(?:most|side|sides|ward|wards|hand|handed)?"
_DIRECTION = re.compile(rf"\b(?:left|right|top|bottom|middle){_SUFFIXES}\b", re.IGNORECASE)
_LEFT_RIGHT = re.compile(rf"\b(left|right)({_SUFFIXES})\b", re.IGNORECASE)


def has_direction_word(text: str) -> bool:
    """Whether `text` names a position (left, right, top, bottom, middle, as whole words or compounds)."""
    return _DIRECTION.search(text) is not None


def swap_left_right(text: str) -> str:
    """Swap the whole words left <-> right (and their compounds), keeping the case: "bright" stays "bright"."""

    def swap(match: re.Match) -> str:
        word, suffix = match.group(1), match.group(2)
        other = "right" if word.lower() == "left" else "left"
        if word.isupper():
            other = other.upper()
        elif word[0].isupper():
            other = other.capitalize()
        return other + suffix

    return _LEFT_RIGHT.sub(swap, text)


def resize_with_box(image: PIL.Image.Image, box: list[float], scale: float) -> tuple[PIL.Image.Image, list[float]]:
    """Resize by `scale` (sides rounded), the box by the exact per-axis factors of the result."""
    width, height = image.size
    new_width, new_height = max(1, round(width * scale)), max(1, round(height * scale))
    image = image.resize((new_width, new_height), PIL.Image.BILINEAR)
    sx, sy = new_width / width, new_height / height
    return image, [box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy]


def flip_with_box(image: PIL.Image.Image, box: list[float]) -> tuple[PIL.Image.Image, list[float]]:
    """Mirror left-right, with the box."""
    width = image.size[0]
    return image.transpose(PIL.Image.FLIP_LEFT_RIGHT), [width - box[2], box[1], width - box[0], box[3]]


def crop_window(
    rng: np.random.Generator, image_size: tuple[int, int], box: list[float], min_size: int, max_size: int
) -> tuple[int, int, int, int] | None:
    """A random (left, top, width, height) window with sides in [min_size, max_size] that contains `box`, or None."""
    window = []
    for extent, low, high in ((image_size[0], box[0], box[2]), (image_size[1], box[1], box[3])):
        smallest = max(min_size, int(np.ceil(high - low)))
        largest = min(extent, max_size)
        if smallest > largest:
            return None
        side = int(rng.integers(smallest, largest + 1))
        first, last = max(0, int(np.ceil(high)) - side), min(int(np.floor(low)), extent - side)
        if first > last:
            return None
        window.append((int(rng.integers(first, last + 1)), side))
    (left, width), (top, height) = window
    return left, top, width, height


def jitter_colour(image: PIL.Image.Image, rng: np.random.Generator, strength: float) -> PIL.Image.Image:
    """Brightness, contrast and saturation, each by a factor in [1 - strength, 1 + strength], in random order."""
    enhancers = [ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color]
    for index in rng.permutation(3):
        image = enhancers[index](image).enhance(float(rng.uniform(1 - strength, 1 + strength)))
    return image


@dataclass
class EpmVGAugmentation:
    r"""
    TransVG's training augmentation for one (image, box, expression), seeded.

    1. If the expression names a position (whole words), or with probability `1 - crop_prob`: resize the long side
       to a random scale in `scales`. Otherwise: resize the short side to one of `crop_short_sides`, crop a random
       window of sides in [`crop_min`, `crop_max`] that contains the whole box, then the random long-side resize.
    2. Colour jitter with probability `jitter_prob` (brightness, contrast, saturation by `jitter`).
    3. Horizontal flip with probability `flip_prob`, left <-> right swapped in the expression.
    4. A random (top, left) position of the resized image in the `size` x `size` canvas (centred if
       `random_placement=False`).

    The output goes to the processor with `do_resize=False, offsets=[offset]`: it normalizes and pads only.

    Args:
        size (`int`, *optional*, defaults to 640):
            Canvas side (`EpmVGConfig.image_size`).
        scales (`tuple[int, ...]`, *optional*):
            Long-side sizes to draw from. Defaults to TransVG's `size - 32 * i`, i = 0..6, i.e. 640, 608, ..., 448
            at 640 (steps of `size // 20` for other sizes).
        crop_prob (`float`, *optional*, defaults to 0.5):
            Probability of the crop branch for expressions without direction words.
        crop_short_sides (`tuple[int, ...]`, *optional*, defaults to `(400, 500, 600)`):
            Short-side sizes before cropping.
        crop_min (`int`, *optional*, defaults to 384), crop_max (`int`, *optional*, defaults to 600):
            Crop side range.
        jitter (`float`, *optional*, defaults to 0.4), jitter_prob (`float`, *optional*, defaults to 0.8):
            Colour jitter strength and probability.
        flip_prob (`float`, *optional*, defaults to 0.5):
            Horizontal flip probability.
        random_placement (`bool`, *optional*, defaults to `True`):
            Random position in the canvas (TransVG's `aug_translate`); else centred.
        seed (`int`, *optional*):
            Seed of every example's stream, which is derived from `(seed, epoch, index)`. Without one, a seed is drawn
            once, when the object is made (a run that cannot be repeated).

    Examples:

    ```python
    >>> from PIL import Image
    >>> from processing.data.augmentation import EpmVGAugmentation, EpmVGAugmentedDataset

    >>> augment = EpmVGAugmentation(size=640, seed=0)
    >>> out = augment(Image.new("RGB", (800, 600)), [100, 50, 300, 250], "the bright lamp on the left", index=0)
    >>> sorted(out)
    ['bbox', 'expression', 'image', 'offset']
    >>> train_dataset = EpmVGAugmentedDataset(train_dataset, augment)  # doctest: +SKIP
    ```
    """

    size: int = 640
    scales: tuple[int, ...] | None = None
    crop_prob: float = 0.5
    crop_short_sides: tuple[int, ...] = (400, 500, 600)
    crop_min: int = 384
    crop_max: int = 600
    jitter: float = 0.4
    jitter_prob: float = 0.8
    flip_prob: float = 0.5
    random_placement: bool = True
    seed: int | None = None

    def __post_init__(self):
        if self.seed is None:
            self.seed = int(np.random.SeedSequence().entropy % 2**63)
        if self.scales is None:
            step = max(1, self.size // 20)
            self.scales = tuple(s for s in (self.size - step * i for i in range(7)) if s > 0)
        if max(self.scales) > self.size:
            raise ValueError(f"scales {self.scales} must not exceed the canvas size {self.size}.")

    def generator(self, index: int, epoch: int = 0) -> np.random.Generator:
        """The random stream of example `index` in `epoch`: a function of `(seed, epoch, index)` only."""
        return np.random.default_rng([self.seed, epoch, index])

    def __call__(self, image: PIL.Image.Image, box, text: str, index: int, epoch: int = 0) -> dict[str, object]:
        """
        Augment example `index` (its position in the training set) in `epoch`.

        Args:
            image (`PIL.Image.Image`): the original image.
            box (`list[float]`): its box, `(x1, y1, x2, y2)` pixels.
            text (`str`): the referring expression.
            index (`int`): the example's index; with `epoch`, it selects the example's random stream.
            epoch (`int`, *optional*, defaults to 0): the training epoch.

        Returns:
            `dict` with `image` (resized PIL image, long side in `scales`), `bbox` (xyxy in its pixels),
            `expression` and `offset` (`(top, left)` in the canvas).
        """
        rng = self.generator(index, epoch)
        image = to_rgb_image(image)
        box = [float(v) for v in box]
        if not has_direction_word(text) and rng.random() < self.crop_prob:
            short_side = int(rng.choice(self.crop_short_sides))
            image, box = resize_with_box(image, box, short_side / min(image.size))
            window = crop_window(rng, image.size, box, self.crop_min, self.crop_max)
            if window is not None:
                left, top, width, height = window
                image = image.crop((left, top, left + width, top + height))
                box = [box[0] - left, box[1] - top, box[2] - left, box[3] - top]
        long_side = int(rng.choice(self.scales))
        image, box = resize_with_box(image, box, long_side / max(image.size))
        if rng.random() < self.jitter_prob:
            image = jitter_colour(image, rng, self.jitter)
        if rng.random() < self.flip_prob:
            image, box = flip_with_box(image, box)
            text = swap_left_right(text)
        width, height = image.size
        if self.random_placement:
            offset = (int(rng.integers(0, self.size - height + 1)), int(rng.integers(0, self.size - width + 1)))
        else:
            offset = get_letterbox_geometry((height, width), self.size, do_resize=False)[3:]
        return {"image": image, "bbox": box, "expression": text, "offset": offset}

    def augment_row(self, row: dict, index: int, epoch: int = 0) -> dict:
        """A unified row with `image`, `bbox`, `expression` augmented and an `offset` added; other columns kept."""
        example = self(decode_row_image(row), row["bbox"], row["expression"], index=index, epoch=epoch)
        return {**row, **example, "offset": list(example["offset"])}


class EpmVGAugmentedDataset(torch.utils.data.Dataset):
    r"""
    A map-style training set of unified grounding rows, augmented lazily by an [`EpmVGAugmentation`]: row `index`
    in epoch `epoch` draws from the stream of `(augmentation.seed, epoch, index)`, in whichever process loads it.
    [`EpmVGDistillationTrainer`] calls `set_epoch` before each epoch; other loops call it themselves.

    Args:
        dataset (`datasets.Dataset` or any map-style dataset of row dicts): the unaugmented rows.
        augmentation ([`EpmVGAugmentation`]): the augmentation.
    """

    def __init__(self, dataset, augmentation: EpmVGAugmentation):
        self.dataset = dataset
        self.augmentation = augmentation
        # in shared memory: persistent DataLoader workers, which keep their copy of the dataset, see the new epoch
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        self._epoch.fill_(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        return self.augmentation.augment_row(self.dataset[index], index, self.epoch)


__all__ = [
    "EpmVGAugmentation",
    "EpmVGAugmentedDataset",
    "crop_window",
    "flip_with_box",
    "has_direction_word",
    "resize_with_box",
    "swap_left_right",
]
