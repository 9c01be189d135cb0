# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Datasets already in the unified schema (e.g. saved by `save_to_disk` / `to_parquet`): validated, kept as is
(extra columns included)."""

from ..schema import GROUNDING_FEATURES


def matches(column_names) -> bool:
    """Whether a split already has every unified column."""
    return set(GROUNDING_FEATURES) <= set(column_names)


def convert_batch(batch: dict, **_) -> dict:
    """Identity on the unified columns (the other columns pass through `map` untouched)."""
    return {name: batch[name] for name in GROUNDING_FEATURES}


__all__ = ["convert_batch", "matches"]
