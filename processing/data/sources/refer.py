# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""REFER toolkit files (lichengunc/refer): `refs(<split_by>).p` + `instances.json` (COCO, xywh boxes).

Covers RefCOCO / RefCOCO+ / RefCOCOg (images: COCO train2014) and RefCLEF = ReferItGame (images: saiapr_tc-12).
The refs file is a Python pickle of plain lists / dicts; it is read with an unpickler that refuses every
global (so it cannot run code). A file that needs more is loaded only with `allow_pickle=True`.
"""

import glob
import io
import json
import os
import pickle
import re

from .common import refer_expressions, resolve_image, unified_row, xywh_to_xyxy
from .validation import GroundingDataError


_REFS_FILE = re.compile(r"refs\((\w+)\)\.p$")


class _DataOnlyUnpickler(pickle.Unpickler):
    """Unpickles lists, dicts, strings and numbers only: any class or function reference is refused."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"global '{module}.{name}' is not allowed")


def load_pickle(path: str, allow_pickle: bool = False):
    """Read a (Python 2 or 3) pickle of plain data; full pickle only when `allow_pickle=True`."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        return _DataOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()
    except pickle.UnpicklingError as err:
        if not allow_pickle:
            raise GroundingDataError(
                f"{path} holds more than plain data ({err}). Unpickling it can run arbitrary code: if you trust the "
                "file, pass allow_pickle=True."
            ) from err
    return pickle.loads(data, encoding="latin1")  # noqa: S301 - the user allowed it explicitly


def is_refer_folder(path: str) -> bool:
    """A folder with a `refs(<split_by>).p` file."""
    return os.path.isdir(path) and bool(refs_files(path))


def refs_files(folder: str) -> dict[str, str]:
    """{split_by: path} of the refs pickles in `folder`."""
    found = {}
    for path in glob.glob(os.path.join(glob.escape(folder), "refs(*).p")):
        match = _REFS_FILE.search(os.path.basename(path))
        if match:
            found[match.group(1)] = path
    return found


def pick_split_by(folder: str, split_by: str | None) -> str:
    """The refs file to use: `split_by` if given, else the only one present."""
    files = refs_files(folder)
    if split_by is None and len(files) == 1:
        return next(iter(files))
    if split_by in files:
        return split_by
    raise ValueError(f"{folder} has refs files for split_by in {sorted(files)}: pass split_by= one of them.")


def split_matches(requested: str, ref_split: str) -> bool:
    """REFER's `getRefIds(split=...)` rule: testA/testB/testC also take the combined refclef splits (testAB...)."""
    if requested in ("testA", "testB", "testC"):
        return ref_split.startswith("test") and requested[-1] in ref_split[4:]
    if requested == "test":
        return "test" in ref_split
    return ref_split == requested


def split_names(refs) -> list[str]:
    """Split names in a refs list (testA/testB/testC for combined refclef splits)."""
    names = set()
    for ref in refs:
        split = ref["split"]
        if split.startswith("test") and len(split) > 4:
            names.update(f"test{letter}" for letter in split[4:])  # testAB belongs to testA and testB
        else:
            names.add(split)
    return sorted(names)


def load_refer(folder: str, split_by: str | None = None, allow_pickle: bool = False) -> tuple[str, list, dict]:
    """(split_by, refs, {image id: image info + `_anns` {annotation id: annotation}}) from a REFER folder."""
    split_by = pick_split_by(folder, split_by)
    refs = load_pickle(refs_files(folder)[split_by], allow_pickle=allow_pickle)
    instances_path = os.path.join(folder, "instances.json")
    if not os.path.isfile(instances_path):
        raise FileNotFoundError(f"{instances_path} not found: a REFER folder needs instances.json next to the refs.")
    with open(instances_path, encoding="utf-8") as f:
        instances = json.load(f)
    # ids as strings: refclef mixes string annotation ids with int ones
    images = {str(image["id"]): dict(image, _anns={}) for image in instances["images"]}
    for ann in instances["annotations"]:
        if str(ann["image_id"]) in images:
            images[str(ann["image_id"])]["_anns"][str(ann["id"])] = ann
    return split_by, refs, images


def records(refs, images: dict, *, split: str, image_root: str, source: str) -> list[dict]:
    """Unified rows of one split: one per sentence of each matching ref (box: the annotation's xywh -> xyxy)."""
    rows = []
    for ref in refs:
        if not split_matches(split, ref["split"]):
            continue
        image = images.get(str(ref["image_id"]), {"_anns": {}, "file_name": ""})
        ann = image["_anns"].get(str(ref["ann_id"]))
        bbox = xywh_to_xyxy(ann["bbox"]) if ann else [0.0] * 4
        problem = "" if ann else f"annotation {ref['ann_id']!r} of image {ref['image_id']!r} is not in instances.json"
        path = resolve_image(image_root, image["file_name"])  # file checks once per ref, not per sentence
        for expression in refer_expressions(ref["sentences"]):
            rows.append(
                unified_row(
                    image=path,
                    bbox=bbox,
                    expression=expression,
                    image_id=ref["image_id"],
                    ref_id=ref["ref_id"],
                    source=source,
                    split=split,
                    width=image.get("width", 0),
                    height=image.get("height", 0),
                    problem=problem,
                )
            )
    return rows


__all__ = ["is_refer_folder", "load_pickle", "load_refer", "records", "split_matches", "split_names"]
