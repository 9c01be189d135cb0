# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""The unified visual-grounding example schema that every data source is converted into."""

from datasets import Features, Image, Sequence, Value


GROUNDING_FEATURES = Features(
    {
        # decoded lazily; a path string is accepted by datasets' Image feature as well
        "image": Image(),
        "width": Value("int32"),
        "height": Value("int32"),
        # one box per expression, xyxy in original-image pixels
        "bbox": Sequence(Value("float32"), length=4),
        "expression": Value("string"),
        "image_id": Value("string"),
        "ref_id": Value("string"),
        "source": Value("string"),
        "split": Value("string"),
    }
)
"""Columns of a unified grounding dataset: one row per referring expression."""

__all__ = ["GROUNDING_FEATURES"]
