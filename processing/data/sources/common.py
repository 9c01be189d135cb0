# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Small helpers shared by the source adapters: unified rows, box format, image paths, REFER sentences."""

import os
from collections.abc import Sequence

from ..schema import GROUNDING_FEATURES


PROBLEM_COLUMN = "_problem"


def xywh_to_xyxy(box: Sequence[float]) -> list[float]:
    """COCO (x, y, width, height) -> (x1, y1, x2, y2), all in pixels."""
    x, y, w, h = (float(v) for v in box)
    return [x, y, x + w, y + h]


def unified_row(*, image, bbox, expression, image_id, ref_id, source, split, width=0, height=0, problem="") -> dict:
    """
    One row of the unified schema.

    `width` / `height` 0 mean unknown (read from the image header when the row is checked); `problem` marks a row
    the adapter already knows is invalid (e.g. its annotation is missing), reported like any other problem.
    """
    return {
        "image": image,
        "width": int(width or 0),
        "height": int(height or 0),
        "bbox": [float(v) for v in bbox],
        "expression": expression,
        "image_id": str(image_id),
        "ref_id": str(ref_id),
        "source": source,
        "split": split,
        PROBLEM_COLUMN: problem,
    }


def rows_to_batch(rows) -> dict:
    """A list of unified rows -> a batch (dict of columns) for `datasets.map`."""
    rows = list(rows)
    return {name: [row.get(name, "") for row in rows] for name in [*GROUNDING_FEATURES, PROBLEM_COLUMN]}


def resolve_image(image_root: str, relative_path: str) -> str:
    """`image_root/relative_path`, or `image_root/<file name>` when the folder holds the files flat."""
    candidate = os.path.join(image_root, relative_path)
    if os.path.isfile(candidate):
        return candidate
    flat = os.path.join(image_root, os.path.basename(relative_path))
    # when neither exists the checker reports the first candidate
    return flat if os.path.isfile(flat) else candidate


def require_image_root(image_root: str | None, source: str, what: str) -> None:
    """Fail early, naming the argument, when a source without embedded images gets no usable image folder."""
    if image_root is None:
        raise ValueError(f"{source} does not embed its images: pass image_root=<the folder with {what}>.")
    if not os.path.isdir(image_root):
        raise FileNotFoundError(f"image_root {image_root!r} is not a folder (it should hold {what} for {source}).")


def refer_expressions(sentences) -> list[str]:
    """The REFER `sent` of each sentence dict (lower-cased, tokenised: what TransVG trains on), else its `raw`."""
    return [(s.get("sent") or s.get("raw") or "") if isinstance(s, dict) else str(s) for s in sentences]


__all__ = [
    "PROBLEM_COLUMN",
    "refer_expressions",
    "require_image_root",
    "resolve_image",
    "rows_to_batch",
    "unified_row",
    "xywh_to_xyxy",
]
