# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Flickr30k Entities raw files: `Annotations/<id>.xml` (boxes per entity id), `Sentences/<id>.txt` (tagged phrases)
and `<split>.txt` (image ids per split).

One example per phrase whose entity has at least one box; several boxes are merged into their union (the usual
"merged" protocol). Phrases of entities without a box (`nobndbox`, scene, `notvisual`) are not groundable and are
left out. The xml holds 1-based inclusive pixel indices: pixel columns `xmin..xmax` cover `[xmin - 1, xmax)` in
continuous coordinates, which is the box given here.
"""

import logging
import os
import re
import xml.etree.ElementTree as ET

from .common import resolve_image, unified_row


logger = logging.getLogger(__name__)

SOURCE = "flickr30k_entities"
_PHRASE = re.compile(r"\[/EN#(\d+)/([^\s\]]*)\s+([^\]]*)\]")


def is_flickr30k_folder(path: str) -> bool:
    """A folder with `Annotations/` and `Sentences/`."""
    return os.path.isdir(os.path.join(path, "Annotations")) and os.path.isdir(os.path.join(path, "Sentences"))


def available_splits(folder: str) -> list[str]:
    """The `<split>.txt` image-id lists present (train / val / test)."""
    return [split for split in ("train", "val", "test") if os.path.isfile(os.path.join(folder, f"{split}.txt"))]


def parse_annotation(path: str) -> tuple[int, int, dict[str, list[float]]]:
    """(width, height, {entity id: union box xyxy}) from one annotation xml."""
    root = ET.parse(path).getroot()
    width = int(root.findtext("size/width") or 0)
    height = int(root.findtext("size/height") or 0)
    boxes: dict[str, list[float]] = {}
    for obj in root.iter("object"):
        box = obj.find("bndbox")
        if box is None:
            continue
        x1, y1 = float(box.findtext("xmin")) - 1, float(box.findtext("ymin")) - 1
        x2, y2 = float(box.findtext("xmax")), float(box.findtext("ymax"))
        for name in obj.iter("name"):  # one object may stand for several entities
            old = boxes.get(name.text)
            boxes[name.text] = (
                [x1, y1, x2, y2]
                if old is None
                else [min(old[0], x1), min(old[1], y1), max(old[2], x2), max(old[3], y2)]
            )
    return width, height, boxes


def parse_phrases(path: str) -> list[tuple[str, str]]:
    """[(entity id, phrase text)] for every tagged phrase of every sentence, in order."""
    with open(path, encoding="utf-8") as f:
        return [(entity, text.strip()) for line in f for entity, _, text in _PHRASE.findall(line)]


def records(folder: str, *, split: str, image_root: str) -> list[dict]:
    """Unified rows of one split (phrases whose entity has no box are counted and logged, not errors)."""
    with open(os.path.join(folder, f"{split}.txt"), encoding="utf-8") as f:
        image_ids = [line.strip() for line in f if line.strip()]
    rows, without_box = [], 0
    for image_id in image_ids:
        annotation = os.path.join(folder, "Annotations", f"{image_id}.xml")
        sentences = os.path.join(folder, "Sentences", f"{image_id}.txt")
        missing = [path for path in (annotation, sentences) if not os.path.isfile(path)]
        if missing:
            raise FileNotFoundError(f"{SOURCE} split {split!r}, image {image_id}: {missing[0]} not found.")
        width, height, boxes = parse_annotation(annotation)
        image = resolve_image(image_root, f"{image_id}.jpg")
        for entity, phrase in parse_phrases(sentences):
            if entity not in boxes:
                without_box += 1
                continue
            row = unified_row(
                image=image,
                bbox=boxes[entity],
                expression=phrase,
                image_id=image_id,
                ref_id=entity,
                source=SOURCE,
                split=split,
                width=width,
                height=height,
            )
            rows.append(row)
    logger.info("%s split %r: %d phrases, %d without a box left out", SOURCE, split, len(rows), without_box)
    return rows


__all__ = ["available_splits", "is_flickr30k_folder", "parse_annotation", "parse_phrases", "records"]
