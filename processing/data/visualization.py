# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Drawing grounding results with PIL: boxes on the image, the expression as a caption, and grids of such panels."""

from collections.abc import Mapping, Sequence

import numpy as np
import PIL.Image
import PIL.ImageDraw
import PIL.ImageFont
import torch

from ..image_processing_epmvg import to_rgb_image


GROUND_TRUTH_COLOR = (0, 200, 0)
PREDICTION_COLOR = (255, 215, 0)
CAPTION_BACKGROUND = (255, 255, 255)
CAPTION_COLOR = (0, 0, 0)

Box = Sequence[float] | Mapping[str, float] | np.ndarray | torch.Tensor


def box_to_xyxy(box: Box) -> tuple[float, float, float, float]:
    """
    A box as `(xmin, ymin, xmax, ymax)` floats. Accepts 4 numbers (list, tuple, array, tensor) in that order, or a
    dict with `xmin`, `ymin`, `xmax`, `ymax` keys (the pipeline's format).
    """
    if isinstance(box, Mapping):
        try:
            return tuple(float(box[key]) for key in ("xmin", "ymin", "xmax", "ymax"))
        except KeyError as error:
            raise ValueError(f"A box dict needs the keys xmin, ymin, xmax, ymax; got {sorted(box)}.") from error
    if isinstance(box, torch.Tensor):
        box = box.detach().cpu().numpy()
    values = np.asarray(box, dtype=np.float64).reshape(-1)
    if values.shape != (4,) or not np.isfinite(values).all():
        raise ValueError(f"A box must be 4 finite numbers (xmin, ymin, xmax, ymax) in pixels; got {box!r}.")
    return tuple(values.tolist())


def _font(size: int) -> PIL.ImageFont.ImageFont:
    try:
        return PIL.ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):
        # Pillow without FreeType only has a fixed-size bitmap font
        return PIL.ImageFont.load_default()


def _default_line_width(image: PIL.Image.Image) -> int:
    return max(2, round(max(image.size) / 160))


def draw_boxes(
    image: PIL.Image.Image,
    boxes: Sequence[Box],
    colors: Sequence[tuple[int, int, int]] | tuple[int, int, int] = PREDICTION_COLOR,
    line_width: int | None = None,
) -> PIL.Image.Image:
    """
    Draw rectangles on a copy of `image` (converted to RGB). Boxes are `(xmin, ymin, xmax, ymax)` in pixels of
    `image`; corners are rounded to whole pixels and the outline grows inwards, so the outer edge of each drawn
    rectangle lies on the box.

    Args:
        image (`PIL.Image.Image`):
            The image, left unchanged.
        boxes (`Sequence`):
            Boxes, each as accepted by [`box_to_xyxy`].
        colors (`tuple[int, int, int]` or a sequence of them, *optional*, defaults to yellow):
            One RGB colour for all boxes or one per box.
        line_width (`int`, *optional*):
            Outline width in pixels. Defaults to about 1/160 of the long side, at least 2.

    Returns:
        `PIL.Image.Image`: the RGB image with the boxes.
    """
    canvas = to_rgb_image(image)
    if canvas is image:
        canvas = image.copy()
    if colors and isinstance(colors[0], int):
        colors = [colors] * len(boxes)
    if len(colors) != len(boxes):
        raise ValueError(f"Got {len(colors)} colours for {len(boxes)} boxes: give one colour, or one per box.")
    line_width = line_width or _default_line_width(canvas)
    draw = PIL.ImageDraw.Draw(canvas)
    width, height = canvas.size
    for box, color in zip(boxes, colors):
        xmin, ymin, xmax, ymax = (round(value) for value in box_to_xyxy(box))
        # PIL's rectangle includes its end pixel: keep it on the image
        xmin, ymin = min(max(xmin, 0), width - 1), min(max(ymin, 0), height - 1)
        xmax, ymax = min(max(xmax, xmin), width - 1), min(max(ymax, ymin), height - 1)
        draw.rectangle((xmin, ymin, xmax, ymax), outline=tuple(color), width=line_width)
    return canvas


def _wrap(text: str, font, max_width: int, draw: PIL.ImageDraw.ImageDraw) -> list[str]:
    """Greedy word wrap of `text` to lines at most `max_width` pixels wide (a longer single word keeps its line)."""
    lines, current = [], ""
    for word in text.split():
        candidate = f"{current} {word}".strip()
        if current and draw.textlength(candidate, font=font) > max_width:
            lines.append(current)
            current = word
        else:
            current = candidate
    return lines + [current] if current else lines


def add_caption(image: PIL.Image.Image, caption: str, font_size: int | None = None) -> PIL.Image.Image:
    """
    `image` (RGB) with a white band below it holding `caption` in black, word-wrapped to the image width. The image
    keeps its pixel position (top-left), so boxes drawn on it stay where they are.

    Args:
        image (`PIL.Image.Image`):
            The image.
        caption (`str`):
            The text, e.g. the referring expression.
        font_size (`int`, *optional*):
            Font size in pixels. Defaults to about 1/20 of the image width, between 10 and 32.

    Returns:
        `PIL.Image.Image`: a new, taller RGB image.
    """
    image = to_rgb_image(image)
    font_size = font_size or int(min(32, max(10, image.width / 20)))
    font = _font(font_size)
    measure = PIL.ImageDraw.Draw(image)
    margin = max(2, font_size // 4)
    lines = _wrap(caption, font, image.width - 2 * margin, measure) or [""]
    line_height = font_size + margin
    captioned = PIL.Image.new(
        "RGB", (image.width, image.height + len(lines) * line_height + margin), CAPTION_BACKGROUND
    )
    captioned.paste(image, (0, 0))
    draw = PIL.ImageDraw.Draw(captioned)
    for index, line in enumerate(lines):
        draw.text((margin, image.height + margin + index * line_height), line, fill=CAPTION_COLOR, font=font)
    return captioned


def draw_grounding(
    image: PIL.Image.Image,
    prediction: Box | Sequence[Box] | None = None,
    ground_truth: Box | Sequence[Box] | None = None,
    caption: str | None = None,
    scale: float = 1.0,
    line_width: int | None = None,
    font_size: int | None = None,
) -> PIL.Image.Image:
    """
    One grounding panel: the ground-truth box(es) in green, the predicted box(es) in yellow (drawn on top), and the
    expression as a caption below the image.

    Args:
        image (`PIL.Image.Image`):
            The original image; boxes are in its pixels.
        prediction (box or list of boxes, *optional*):
            Predicted `(xmin, ymin, xmax, ymax)` box(es) or the pipeline's `{"xmin", ...}` dict(s). Yellow.
        ground_truth (box or list of boxes, *optional*):
            Ground-truth box(es), same formats. Green.
        caption (`str`, *optional*):
            Text under the image (e.g. the expression, or `"IoU 0.71: the man on the left"`).
        scale (`float`, *optional*, defaults to 1.0):
            Resize factor applied to the image and the boxes before drawing (e.g. 2.0 to enlarge small images).
        line_width (`int`, *optional*):
            Box outline width in pixels of the drawn image.
        font_size (`int`, *optional*):
            Caption font size in pixels.

    Returns:
        `PIL.Image.Image`: the panel, RGB. With `scale=1` the image occupies its original pixels at the top left,
        so a drawn box lies exactly at the (rounded) coordinates given.

    Example:

    ```python
    >>> from PIL import Image
    >>> from processing.data.visualization import draw_grounding

    >>> panel = draw_grounding(Image.new("RGB", (200, 100), "grey"), prediction=[20, 10, 120, 90],
    ...                        ground_truth=[25, 12, 110, 95], caption="the grey box")
    >>> panel.width
    200
    ```
    """
    if scale <= 0:
        raise ValueError(f"`scale` must be positive, got {scale}.")
    if scale != 1.0:
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
    boxes, colors = [], []
    for group, color in ((ground_truth, GROUND_TRUTH_COLOR), (prediction, PREDICTION_COLOR)):
        for box in _as_box_list(group):
            boxes.append([value * scale for value in box_to_xyxy(box)])
            colors.append(color)
    panel = draw_boxes(image, boxes, colors, line_width) if boxes else to_rgb_image(image)
    return add_caption(panel, caption, font_size) if caption is not None else panel


def _as_box_list(boxes) -> list:
    """None, one box, or a list of boxes, as a list of boxes."""
    if boxes is None:
        return []
    if isinstance(boxes, Mapping):
        return [boxes]
    if isinstance(boxes, (np.ndarray, torch.Tensor)):
        return list(boxes.reshape(-1, 4))
    if len(boxes) and isinstance(boxes[0], (int, float, np.number)):
        return [boxes]
    return list(boxes)


def make_grid(
    panels: Sequence[PIL.Image.Image], columns: int = 4, padding: int = 8, background=(255, 255, 255)
) -> PIL.Image.Image:
    """
    Tile panels (e.g. from [`draw_grounding`]) row by row into one image; each cell is as large as the largest panel,
    and panels sit at the top left of their cell.

    Args:
        panels (`Sequence[PIL.Image.Image]`):
            The panels, in reading order.
        columns (`int`, *optional*, defaults to 4):
            Panels per row.
        padding (`int`, *optional*, defaults to 8):
            Pixels between cells and around the grid.
        background (*optional*, defaults to white):
            Colour of the gaps.

    Returns:
        `PIL.Image.Image`: the grid, RGB.
    """
    if not panels:
        raise ValueError("make_grid needs at least one panel.")
    if columns < 1:
        raise ValueError(f"`columns` must be at least 1, got {columns}.")
    columns = min(columns, len(panels))
    rows = -(-len(panels) // columns)
    cell_width, cell_height = max(panel.width for panel in panels), max(panel.height for panel in panels)
    grid = PIL.Image.new(
        "RGB",
        (columns * cell_width + (columns + 1) * padding, rows * cell_height + (rows + 1) * padding),
        tuple(background),
    )
    for index, panel in enumerate(panels):
        row, column = divmod(index, columns)
        grid.paste(
            to_rgb_image(panel), (padding + column * (cell_width + padding), padding + row * (cell_height + padding))
        )
    return grid


__all__ = [
    "GROUND_TRUTH_COLOR",
    "PREDICTION_COLOR",
    "add_caption",
    "box_to_xyxy",
    "draw_boxes",
    "draw_grounding",
    "make_grid",
]
