# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""A synthetic referring-expression benchmark (coloured shapes, expressions that need reading) and the captions
for pretraining its CLIP teacher: the embedded default that runs offline on a CPU."""

from .dataset import (
    CAPTION_FEATURES,
    CONFIG_NAME,
    SYNTHETIC_FEATURES,
    SYNTHETIC_METADATA_COLUMNS,
    baseline_accuracies,
    generate_caption_dataset,
    generate_synthetic_dataset,
    load_synthetic_config,
    save_synthetic_dataset,
)
from .expressions import generate_expression, object_caption, scene_caption
from .grammar import (
    AmbiguousReferenceError,
    Descriptor,
    ReferringExpression,
    parse_expression,
    resolve_expression,
)
from .scene import SyntheticGroundingConfig, SyntheticObject, crop_object, render_scene, sample_scene


__all__ = [
    "AmbiguousReferenceError",
    "CAPTION_FEATURES",
    "CONFIG_NAME",
    "Descriptor",
    "ReferringExpression",
    "SYNTHETIC_FEATURES",
    "SYNTHETIC_METADATA_COLUMNS",
    "SyntheticGroundingConfig",
    "SyntheticObject",
    "baseline_accuracies",
    "crop_object",
    "generate_caption_dataset",
    "generate_expression",
    "generate_synthetic_dataset",
    "load_synthetic_config",
    "object_caption",
    "parse_expression",
    "render_scene",
    "resolve_expression",
    "sample_scene",
    "save_synthetic_dataset",
    "scene_caption",
]
