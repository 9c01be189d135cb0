# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Scenes of coloured shapes for the synthetic referring-expression benchmark: configuration, sampling, rendering."""

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw


SHAPES = ("circle", "square", "triangle", "diamond", "star")
COLORS = (
    ("red", (220, 50, 47)),
    ("green", (50, 185, 70)),
    ("blue", (45, 100, 235)),
    ("yellow", (240, 210, 40)),
    ("purple", (165, 70, 205)),
)
SIZES = (("small", 0.2), ("large", 0.3))
# one held-out colour per shape and shape per colour: every word is still seen in train, never the pair
HELD_OUT_PAIRS = (
    ("red", "star"),
    ("green", "circle"),
    ("blue", "triangle"),
    ("yellow", "square"),
    ("purple", "diamond"),
)
EXPRESSION_TYPES = (("attribute", 0.4), ("relation", 0.2), ("extreme", 0.25), ("ordinal", 0.15))
_SCENE_TRIES = 100


@dataclass(frozen=True)
class SyntheticGroundingConfig:
    r"""
    Configuration of the synthetic referring-expression benchmark (scenes, language, splits).

    Args:
        image_size (`int`, *optional*, defaults to 64):
            Side of the square images, in pixels.
        min_objects (`int`, *optional*, defaults to 4):
            Fewest objects in a scene.
        max_objects (`int`, *optional*, defaults to 6):
            Most objects in a scene (fewer when they do not fit).
        shapes (`tuple[str, ...]`):
            Shape names; each must be one of `SHAPES` (they are drawn by name).
        colors (`tuple[tuple[str, tuple[int, int, int]], ...]`):
            Colour names with their RGB values.
        sizes (`tuple[tuple[str, float], ...]`):
            Size names with the object side as a fraction of `image_size`.
        size_jitter (`float`, *optional*, defaults to 0.08):
            Relative random variation of an object's side.
        color_jitter (`int`, *optional*, defaults to 18):
            Largest per-channel random offset added to an object's colour.
        max_overlap (`float`, *optional*, defaults to 0.1):
            Largest intersection of two boxes, as a fraction of the smaller box (keeps occlusion small).
        margin (`float`, *optional*, defaults to 0.08):
            Smallest gap between two centre coordinates that a spatial word may rely on, as a fraction of
            `image_size`: expressions whose meaning hinges on a closer call are never generated.
        held_out_pairs (`tuple[tuple[str, str], ...]`):
            (colour, shape) pairs that never appear in train/val scenes; every test target is one of them.
        expression_types (`tuple[tuple[str, float], ...]`):
            Sampling weights of the expression types "attribute", "relation", "extreme" and "ordinal".
        expressions_per_image (`int`, *optional*, defaults to 2):
            Expressions (with distinct targets) generated per scene.
        background_contrast (`float`, *optional*, defaults to 0.12):
            Amplitude of the background's colour gradient, as a fraction of 255.
        supersampling (`int`, *optional*, defaults to 4):
            Shapes are drawn at this multiple of the resolution and downsampled (anti-aliasing).
        crop_fraction (`float`, *optional*, defaults to 0.55):
            Side of the fixed-size window of an object crop (teacher captions), as a fraction of `image_size`.

    Examples:

    ```python
    >>> from processing.data.synthetic import SyntheticGroundingConfig
    >>> config = SyntheticGroundingConfig(image_size=96, max_objects=5)
    ```"""

    image_size: int = 64
    min_objects: int = 4
    max_objects: int = 6
    shapes: tuple[str, ...] = SHAPES
    colors: tuple[tuple[str, tuple[int, int, int]], ...] = COLORS
    sizes: tuple[tuple[str, float], ...] = SIZES
    size_jitter: float = 0.08
    color_jitter: int = 18
    max_overlap: float = 0.1
    margin: float = 0.08
    held_out_pairs: tuple[tuple[str, str], ...] = HELD_OUT_PAIRS
    expression_types: tuple[tuple[str, float], ...] = EXPRESSION_TYPES
    expressions_per_image: int = 2
    background_contrast: float = 0.12
    supersampling: int = 4
    crop_fraction: float = 0.55

    def __post_init__(self):
        if self.image_size < 16:
            raise ValueError(f"image_size={self.image_size} is too small to draw shapes; use 16 or more.")
        if not 1 <= self.min_objects <= self.max_objects:
            raise ValueError(f"Need 1 <= min_objects <= max_objects, got {self.min_objects} and {self.max_objects}.")
        unknown = set(self.shapes) - set(SHAPES)
        if unknown:
            raise ValueError(f"Unknown shapes {sorted(unknown)}: choose among {SHAPES}.")
        color_names = {name for name, _ in self.colors}
        for color, shape in self.held_out_pairs:
            if color not in color_names or shape not in self.shapes:
                raise ValueError(f"Held-out pair ({color!r}, {shape!r}) names an unknown colour or shape.")
        if not self.allowed_pairs:
            raise ValueError("held_out_pairs holds out every (colour, shape) pair: nothing is left for train.")
        unknown_types = {name for name, _ in self.expression_types} - {t for t, _ in EXPRESSION_TYPES}
        if unknown_types:
            raise ValueError(
                f"Unknown expression types {sorted(unknown_types)}: use {[t for t, _ in EXPRESSION_TYPES]}."
            )
        weights = [weight for _, weight in self.expression_types]
        if not weights or min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(f"expression_types weights must be >= 0 with a positive sum, got {weights}.")

    @property
    def allowed_pairs(self) -> list[tuple[str, str]]:
        """(colour, shape) pairs that train/val scenes may contain."""
        held_out = set(map(tuple, self.held_out_pairs))
        return [(c, s) for c, _ in self.colors for s in self.shapes if (c, s) not in held_out]

    @property
    def object_attributes(self) -> dict[str, list[str]]:
        """The annotated attributes of every object and their class names (the dense visual objective's classes)."""
        return {
            "color": [name for name, _ in self.colors],
            "shape": list(self.shapes),
            "size": [name for name, _ in self.sizes],
        }

    @property
    def margin_pixels(self) -> float:
        return self.margin * self.image_size

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "SyntheticGroundingConfig":
        """Inverse of `to_dict` (JSON turns the tuples into lists; they are turned back)."""

        def as_tuple(value):
            return tuple(as_tuple(v) for v in value) if isinstance(value, list | tuple) else value

        return cls(**{key: as_tuple(value) for key, value in values.items()})


@dataclass(frozen=True)
class SyntheticObject:
    """One shape in a scene; `bbox` is its tight xyxy box in pixels."""

    shape: str
    color: str
    size: str
    bbox: tuple[float, float, float, float]

    @property
    def center(self) -> tuple[float, float]:
        return ((self.bbox[0] + self.bbox[2]) / 2, (self.bbox[1] + self.bbox[3]) / 2)

    @property
    def area(self) -> float:
        return (self.bbox[2] - self.bbox[0]) * (self.bbox[3] - self.bbox[1])

    def to_dict(self) -> dict:
        return {"shape": self.shape, "color": self.color, "size": self.size, "bbox": list(self.bbox)}


def box_intersection(a, b) -> float:
    """Area of the intersection of two xyxy boxes."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    return max(width, 0.0) * max(height, 0.0)


def _place_object(rng, placed, side, config) -> tuple[float, float, float, float] | None:
    """Random box of side `side` inside the image whose overlap with every placed box stays small."""
    for _ in range(50):
        x0, y0 = rng.uniform(0, config.image_size - side, size=2)
        box = (float(x0), float(y0), float(x0 + side), float(y0 + side))
        if all(box_intersection(box, other.bbox) <= config.max_overlap * min(side**2, other.area) for other in placed):
            return box
    return None


SCENE_PAIRS = ("allowed", "held_out", "all")


def sample_scene(rng: np.random.Generator, config: SyntheticGroundingConfig, pairs: str = "allowed"):
    r"""
    Samples the objects of one scene.

    Args:
        rng (`np.random.Generator`): the random source (the scene is a pure function of its state).
        config (`SyntheticGroundingConfig`): the benchmark configuration.
        pairs (`str`, *optional*, defaults to `"allowed"`): the (colour, shape) pairs the scene may hold, one of
            `SCENE_PAIRS`. `"allowed"`: only `config.allowed_pairs` (train/val). `"held_out"`: any pair, with at
            least one held-out pair (test scenes, whose targets are the held-out objects). `"all"`: any pair
            uniformly (the teacher's captions, which stand in for web data).

    Returns:
        `list[SyntheticObject]` in drawing order (later objects occlude earlier ones).
    """
    if pairs not in SCENE_PAIRS:
        raise ValueError(f"pairs={pairs!r}: choose among {SCENE_PAIRS}.")
    every_pair = [(c, s) for c, _ in config.colors for s in config.shapes]
    choices = config.allowed_pairs if pairs == "allowed" else every_pair
    for _ in range(_SCENE_TRIES):
        count = int(rng.integers(config.min_objects, config.max_objects + 1))
        kinds = [choices[i] for i in rng.integers(len(choices), size=count)]
        if pairs == "held_out":
            kinds[0] = tuple(config.held_out_pairs[int(rng.integers(len(config.held_out_pairs)))])
        objects = []
        for color, shape in kinds:
            size_name, fraction = config.sizes[int(rng.integers(len(config.sizes)))]
            side = fraction * config.image_size * (1 + config.size_jitter * rng.uniform(-1, 1))
            box = _place_object(rng, objects, side, config)
            if box is not None:
                objects.append(SyntheticObject(shape, color, size_name, box))
        # the first object always fits (so a held-out one is always there); too crowded scenes are redrawn
        if len(objects) >= config.min_objects:
            return [objects[i] for i in rng.permutation(len(objects))]
    raise ValueError(
        f"Could not fit {config.min_objects} objects in a {config.image_size}px image: lower min_objects, the sizes "
        "or raise max_overlap."
    )


def _unit_polygon(shape: str) -> list[tuple[float, float]]:
    """Vertices of a polygonal shape filling the unit square (y down)."""
    if shape == "square":
        return [(0, 0), (1, 0), (1, 1), (0, 1)]
    if shape == "triangle":
        return [(0.5, 0), (1, 1), (0, 1)]
    if shape == "diamond":
        return [(0.5, 0), (1, 0.5), (0.5, 1), (0, 0.5)]
    # star: 5 points, inner radius 0.45, stretched to fill the unit square so the box stays tight
    points = [
        (math.sin(k * math.pi / 5) * r, -math.cos(k * math.pi / 5) * r) for k, r in zip(range(10), [1, 0.45] * 5)
    ]
    xs, ys = zip(*points)
    return [((x - min(xs)) / (max(xs) - min(xs)), (y - min(ys)) / (max(ys) - min(ys))) for x, y in points]


def _background(rng, config) -> np.ndarray:
    """A muted base colour with a faint linear gradient and a little noise."""
    size = config.image_size
    base = rng.uniform(70, 150) + rng.uniform(-15, 15, size=3)
    ramp = np.linspace(-0.5, 0.5, size)
    angle = rng.uniform(0, 2 * math.pi)
    gradient = math.cos(angle) * ramp[None, :] + math.sin(angle) * ramp[:, None]
    tint = rng.uniform(-1, 1, size=3) * 255 * config.background_contrast
    noise = rng.normal(0, 3, size=(size, size, 3))
    return np.clip(base + gradient[..., None] * tint + noise, 0, 255).astype(np.uint8)


def render_scene(objects, rng: np.random.Generator, config: SyntheticGroundingConfig) -> Image.Image:
    r"""
    Draws a scene.

    Args:
        objects (`list[SyntheticObject]`): the objects, in drawing order.
        rng (`np.random.Generator`): random source of the background and the colour jitter.
        config (`SyntheticGroundingConfig`): the benchmark configuration.

    Returns:
        `PIL.Image.Image`: an RGB image of side `config.image_size`.
    """
    scale, size = config.supersampling, config.image_size
    image = Image.fromarray(_background(rng, config)).resize((size * scale, size * scale), Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(image)
    rgb = dict(config.colors)
    for obj in objects:
        jitter = rng.integers(-config.color_jitter, config.color_jitter + 1, size=3)
        fill = tuple(int(v) for v in np.clip(np.array(rgb[obj.color]) + jitter, 0, 255))
        x0, y0, x1, y1 = (v * scale for v in obj.bbox)
        if obj.shape == "circle":
            draw.ellipse((x0, y0, x1, y1), fill=fill)
        else:
            draw.polygon([(x0 + u * (x1 - x0), y0 + v * (y1 - y0)) for u, v in _unit_polygon(obj.shape)], fill=fill)
    return image.resize((size, size), Image.Resampling.BOX)


def crop_object(image: Image.Image, obj: SyntheticObject, config: SyntheticGroundingConfig) -> Image.Image:
    """A fixed-size window around `obj` (so small and large objects keep their relative size), resized to the
    image size."""
    side = config.crop_fraction * config.image_size
    cx, cy = obj.center
    left = min(max(cx - side / 2, 0), config.image_size - side)
    top = min(max(cy - side / 2, 0), config.image_size - side)
    box = (round(left), round(top), round(left + side), round(top + side))
    return image.crop(box).resize((config.image_size, config.image_size), Image.Resampling.BILINEAR)


__all__ = [
    "COLORS",
    "EXPRESSION_TYPES",
    "HELD_OUT_PAIRS",
    "SCENE_PAIRS",
    "SHAPES",
    "SIZES",
    "SyntheticGroundingConfig",
    "SyntheticObject",
    "box_intersection",
    "crop_object",
    "render_scene",
    "sample_scene",
]
