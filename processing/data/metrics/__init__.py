# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Grounding metrics: plain functions, and the local `evaluate` module that wraps them."""

import os

from .grounding_accuracy.grounding_functional import DEFAULT_THRESHOLDS, box_iou, compute_grounding_metrics


def grounding_accuracy_path() -> str:
    """The folder of the `grounding_accuracy` evaluate module: `evaluate.load(grounding_accuracy_path())`."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "grounding_accuracy")


def load_grounding_accuracy(**kwargs):
    """`evaluate.load` of the local grounding-accuracy module (offline; kwargs go to `evaluate.load`)."""
    import evaluate

    return evaluate.load(grounding_accuracy_path(), **kwargs)


__all__ = [
    "DEFAULT_THRESHOLDS",
    "box_iou",
    "compute_grounding_metrics",
    "grounding_accuracy_path",
    "load_grounding_accuracy",
]
