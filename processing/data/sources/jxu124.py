# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""jxu124/refcoco, refcocoplus, refcocog: parquet, one row per ref, xyxy boxes, images in a local COCO folder."""

import ast
import json

from .common import refer_expressions, resolve_image, rows_to_batch, unified_row


COLUMNS = {"ref_id", "image_id", "sentences", "bbox"}


def matches(column_names) -> bool:
    """Whether a parquet split has the jxu124 ref-row columns."""
    names = set(column_names)
    return COLUMNS <= names and bool({"image_path", "image"} & names)


def canonical_split(hub_split: str, split_names) -> str:
    """Hub split name -> REFER name: `validation` -> `val`, and `test` -> `testA` for refcoco / refcoco+.

    refcoco and refcocoplus are recognised by their splits (`test` and `testB`, no `testA`), so a local copy laid
    out like the Hub repo is renamed the same way whatever its folder is called.
    """
    names = set(split_names)
    if hub_split == "validation":
        return "val"
    if hub_split == "test" and "testB" in names and "testA" not in names:
        return "testA"
    return hub_split


def image_size_of(raw_image_info) -> tuple[int, int]:
    """(width, height) from the `raw_image_info` string (JSON or a Python literal); (0, 0) when absent."""
    if not raw_image_info:
        return 0, 0
    try:
        info = json.loads(raw_image_info)
    except (TypeError, ValueError):
        try:
            info = ast.literal_eval(raw_image_info)
        except (SyntaxError, ValueError):
            return 0, 0
    return int(info.get("width") or 0), int(info.get("height") or 0)


def convert_batch(batch: dict, *, source: str, split: str, image_root: str | None) -> dict:
    """One row per ref -> one unified row per sentence; bbox already xyxy pixels."""
    n = len(batch["ref_id"])
    paths = batch.get("image_path") or [None] * n
    embedded = batch.get("image") or [None] * n
    infos = batch.get("raw_image_info") or [None] * n
    rows = []
    for index in range(n):
        # an embedded image (debug mirrors) wins over the path
        image = embedded[index] or resolve_image(image_root, paths[index])
        width, height = image_size_of(infos[index])
        for expression in refer_expressions(batch["sentences"][index]):
            rows.append(
                unified_row(
                    image=image,
                    bbox=batch["bbox"][index],
                    expression=expression,
                    image_id=batch["image_id"][index],
                    ref_id=batch["ref_id"][index],
                    source=source,
                    split=split,
                    width=width,
                    height=height,
                )
            )
    return rows_to_batch(rows)


__all__ = ["canonical_split", "convert_batch", "image_size_of", "matches"]
