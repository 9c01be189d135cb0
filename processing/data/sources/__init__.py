# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Adapters from the public visual-grounding formats into the unified schema (`processing.data.schema`)."""

from .common import refer_expressions, resolve_image, unified_row, xywh_to_xyxy
from .loader import GroundingSourceArguments, load_grounding_dataset
from .validation import GroundingDataError, GroundingRowChecker, box_problem, decode_row_image, encode_images


__all__ = [
    "GroundingDataError",
    "GroundingRowChecker",
    "GroundingSourceArguments",
    "box_problem",
    "decode_row_image",
    "encode_images",
    "load_grounding_dataset",
    "refer_expressions",
    "resolve_image",
    "unified_row",
    "xywh_to_xyxy",
]
