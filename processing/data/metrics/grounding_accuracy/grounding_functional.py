# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Grounding accuracy as plain numpy functions (the `evaluate` module next to this file only wraps them)."""

import numpy as np


DEFAULT_THRESHOLDS = (0.25, 0.5, 0.75)
# IoU computed in floating point may land a hair under an exact boundary (e.g. 0.49999999999999994 for 0.5)
IOU_EPSILON = 1e-9


def _as_boxes(values, name: str) -> np.ndarray:
    boxes = np.asarray(values, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"`{name}` must be boxes of shape (num_examples, 4) as (x1, y1, x2, y2); got {boxes.shape}.")
    return boxes


def box_iou(predictions, references) -> np.ndarray:
    """
    IoU of each prediction with its reference (continuous areas, no +1 pixel convention).

    Args:
        predictions, references (array-like of shape `(num_examples, 4)`): `(x1, y1, x2, y2)` boxes, same frame.

    Returns:
        `np.ndarray` of shape `(num_examples,)`: IoU in [0, 1]; 0 when both boxes are empty.
    """
    predictions, references = _as_boxes(predictions, "predictions"), _as_boxes(references, "references")
    if len(predictions) != len(references):
        raise ValueError(f"Got {len(predictions)} predictions for {len(references)} references: give one each.")
    top_left = np.maximum(predictions[:, :2], references[:, :2])
    bottom_right = np.minimum(predictions[:, 2:], references[:, 2:])
    intersection = np.prod(np.clip(bottom_right - top_left, 0, None), axis=1)

    def area(boxes):
        return np.prod(np.clip(boxes[:, 2:] - boxes[:, :2], 0, None), axis=1)

    union = area(predictions) + area(references) - intersection
    return np.divide(intersection, union, out=np.zeros_like(union), where=union > 0)


def compute_grounding_metrics(predictions, references, iou_thresholds=DEFAULT_THRESHOLDS) -> dict[str, float]:
    """
    Accuracy at IoU thresholds (a prediction counts when IoU >= threshold, TransVG's convention) and mean IoU.

    Args:
        predictions, references (array-like of shape `(num_examples, 4)`):
            One predicted and one ground-truth `(x1, y1, x2, y2)` box per referring expression, in the same frame
            (e.g. original-image pixels).
        iou_thresholds (`Sequence[float]`, *optional*, defaults to `(0.25, 0.5, 0.75)`):
            Thresholds reported as `accuracy@<t>`; 0.5 is always included.

    Returns:
        `dict`: `accuracy` (= Acc@0.5, the standard metric), `accuracy@<t>` per threshold, `mean_iou` and
        `num_examples`.

    Example:

    ```python
    >>> metrics = compute_grounding_metrics([[0, 0, 10, 10], [0, 0, 10, 10]], [[0, 0, 10, 20], [20, 20, 30, 30]])
    >>> metrics["accuracy"], metrics["accuracy@0.75"], metrics["mean_iou"], metrics["num_examples"]
    (0.5, 0.0, 0.25, 2)
    ```
    """
    iou = box_iou(predictions, references)
    if len(iou) == 0:
        raise ValueError("No predictions to score: the metric needs at least one (prediction, reference) pair.")
    thresholds = sorted({*(float(t) for t in iou_thresholds), 0.5})
    metrics = {"accuracy": float(np.mean(iou >= 0.5 - IOU_EPSILON))}
    for threshold in thresholds:
        metrics[f"accuracy@{threshold:g}"] = float(np.mean(iou >= threshold - IOU_EPSILON))
    metrics.update(mean_iou=float(np.mean(iou)), num_examples=int(len(iou)))
    return metrics


__all__ = ["DEFAULT_THRESHOLDS", "box_iou", "compute_grounding_metrics"]
