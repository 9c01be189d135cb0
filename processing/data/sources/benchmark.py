# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""jxu124/refcoco-benchmark and refclef-benchmark (ReferItGame): parquet, one row per image, images embedded.

Each row holds `ref_list` (per ref: `ann_info` with a COCO xywh `bbox`, `ref_info` with the REFER sentences) and
`image_info`. Split names name the dataset and the REFER split, e.g. `refcoco_unc_testA`, `refclef_berkeley_test`.
"""

from .common import refer_expressions, rows_to_batch, unified_row, xywh_to_xyxy


COLUMNS = {"ref_list", "image"}


def matches(column_names) -> bool:
    """Whether a parquet split has the per-image benchmark columns."""
    return COLUMNS <= set(column_names)


def convert_batch(batch: dict, *, source: str, split: str) -> dict:
    """One row per image -> one unified row per (ref, sentence)."""
    rows = []
    infos = batch.get("image_info") or [None] * len(batch["ref_list"])
    for image, refs, info in zip(batch["image"], batch["ref_list"], infos):
        info = info or {}
        for ref in refs:
            ann, ref_info = ref["ann_info"], ref["ref_info"]
            for expression in refer_expressions(ref_info["sentences"]):
                rows.append(
                    unified_row(
                        image=image,
                        bbox=xywh_to_xyxy(ann["bbox"]),
                        expression=expression,
                        image_id=ref_info.get("image_id", ann.get("image_id")),
                        ref_id=ref_info["ref_id"],
                        source=source,
                        split=split,
                        width=int(info.get("width") or 0),
                        height=int(info.get("height") or 0),
                    )
                )
    return rows_to_batch(rows)


__all__ = ["convert_batch", "matches"]
