# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""lmms-lab/RefCOCO, RefCOCOplus, RefCOCOg: parquet, images embedded, one row per ref, COCO xywh boxes."""

import logging
import re

from .common import rows_to_batch, unified_row, xywh_to_xyxy


logger = logging.getLogger(__name__)

COLUMNS = {"question_id", "image", "answer", "bbox", "file_name"}
_COCO_FILE = re.compile(r"COCO_[a-z]+\d*_(\d+)(?:_\d+)?\.jpg$")


def matches(column_names) -> bool:
    """Whether a parquet split has the lmms-lab RefCOCO* columns."""
    return COLUMNS <= set(column_names)


def warn_nonstandard_split(split: str, split_names) -> None:
    """lmms-lab RefCOCO val/test and RefCOCOg val merge the Google splits in: warn before anyone reports them."""
    names = set(split_names)
    refcoco = {"test", "testA"} <= names
    refcocog = "test" in names and "testA" not in names
    if (refcoco and split in ("val", "test")) or (refcocog and split == "val"):
        logger.warning(
            "lmms-lab split %r is not the standard UNC/UMD split (its size matches UNC/UMD plus the 5,000 Google "
            "refs): report testA/testB (RefCOCO, RefCOCO+), RefCOCO+ val and RefCOCOg test only.",
            split,
        )


def image_id_of(file_name: str) -> str:
    """COCO image id from a REFER-style file name `COCO_train2014_<12 digits>_<ann_id>.jpg` (else the name)."""
    match = _COCO_FILE.search(file_name or "")
    return str(int(match.group(1))) if match else (file_name or "")


def convert_batch(batch: dict, *, source: str, split: str) -> dict:
    """One row per ref -> one unified row per expression in `answer` (bbox COCO xywh -> xyxy)."""
    rows = []
    for image, answers, bbox, question_id, file_name in zip(
        batch["image"], batch["answer"], batch["bbox"], batch["question_id"], batch["file_name"]
    ):
        for expression in [answers] if isinstance(answers, str) else answers:
            # question_id is the COCO annotation id of the referred object
            row = unified_row(
                image=image,
                bbox=xywh_to_xyxy(bbox),
                expression=expression,
                image_id=image_id_of(file_name),
                ref_id=question_id,
                source=source,
                split=split,
            )
            rows.append(row)
    return rows_to_batch(rows)


__all__ = ["convert_batch", "image_id_of", "matches", "warn_nonstandard_split"]
