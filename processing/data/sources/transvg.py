# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""TransVG / ReSC split files `<dataset>/<dataset>_<split>.pth`: a torch-saved list of tuples, one per expression.

- unc, unc+, gref, gref_umd: `(img_file, mask_file, bbox [x, y, w, h], phrase, attri)`, images in COCO train2014;
- referit: `(img_file, mask_file, bbox [x1, y1, x2, y2], phrase, attri)`, images in `referit/images`;
- flickr: `(img_file, bbox [x1, y1, x2, y2], phrase)`, images in `Flickr30k/flickr30k_images`.

TransVG casts every box to int (`np.array(bbox, dtype=int)`, truncation) before converting xywh -> xyxy; that is
reproduced by default (`truncate_boxes=True`) so numbers match TransVG's. Files are read with
`torch.load(weights_only=True)` (plus plain numpy arrays / scalars, which carry no code); anything else needs
`allow_pickle=True`.
"""

import glob
import os
import pickle

import numpy as np
import torch

from .common import resolve_image, unified_row, xywh_to_xyxy
from .validation import GroundingDataError


XYWH_DATASETS = ("unc", "unc+", "gref", "gref_umd")
XYXY_DATASETS = ("referit", "flickr")
# where TransVG's data_root keeps each dataset's images (image_root may also be that image folder itself)
IMAGE_SUBDIRS = {
    **dict.fromkeys(XYWH_DATASETS, "other/images/mscoco/images/train2014"),
    "referit": "referit/images",
    "flickr": "Flickr30k/flickr30k_images",
}


def _numpy_globals() -> list:
    """numpy's array / scalar / dtype constructors under their numpy 1 and numpy 2 module paths (data only)."""
    from numpy._core import multiarray

    items = [np.ndarray, np.dtype]
    for name in ("_reconstruct", "scalar"):
        function = getattr(multiarray, name)
        items += [(function, f"numpy._core.multiarray.{name}"), (function, f"numpy.core.multiarray.{name}")]
    items += [getattr(np.dtypes, name) for name in getattr(np.dtypes, "__all__", [])]
    return items


def load_split_file(path: str, allow_pickle: bool = False) -> list:
    """The list of tuples in a TransVG `.pth` split file."""
    try:
        with torch.serialization.safe_globals(_numpy_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if not allow_pickle:
            reason = str(err).split("WeightsUnpickler error:")[-1].strip().split("\n")[0]
            raise GroundingDataError(
                f"{path} cannot be read with torch.load(weights_only=True) ({reason}). A full unpickle can run "
                "arbitrary code: if you trust the file, pass allow_pickle=True."
            ) from err
    return torch.load(path, map_location="cpu", weights_only=False)


def split_files(path: str) -> dict[str, dict[str, str]]:
    """{dataset: {split: file}} for a `.pth` file or a folder of them (searched one level down as well)."""
    if os.path.isfile(path):
        paths = [path]
    else:
        root = glob.escape(path)
        paths = glob.glob(os.path.join(root, "*.pth")) + glob.glob(os.path.join(root, "*", "*.pth"))
    found: dict[str, dict[str, str]] = {}
    for file in sorted(paths):
        stem = os.path.basename(file)[: -len(".pth")]
        dataset, _, split = stem.rpartition("_")
        if dataset in IMAGE_SUBDIRS and split:
            found.setdefault(dataset, {})[split] = file
    return found


def is_transvg_path(path: str) -> bool:
    """A TransVG split file, or a folder holding some."""
    return bool(split_files(path))


def available_splits(files: dict[str, str], dataset: str) -> list[str]:
    """The split files present, plus `trainval` (= train + val, as TransVG builds it) where both exist."""
    names = set(files)
    if dataset != "referit" and {"train", "val"} <= names:
        names.add("trainval")
    return sorted(names)


def convert_box(bbox, dataset: str, truncate: bool) -> list[float]:
    """A stored box -> xyxy floats, with TransVG's int truncation when `truncate`."""
    values = np.asarray(bbox, dtype=np.float64).reshape(-1)
    if truncate:
        values = values.astype(int).astype(np.float64)
    return xywh_to_xyxy(values) if dataset in XYWH_DATASETS else [float(v) for v in values]


def records(entries: list, *, dataset: str, split: str, image_root: str, truncate_boxes: bool) -> list[dict]:
    """Unified rows, one per tuple (its position in the file is the row index used in error messages)."""
    rows = []
    for entry in entries:
        if dataset == "flickr":
            img_file, bbox, phrase = entry[:3]
            ref_id = ""
        else:
            img_file, mask_file, bbox, phrase = entry[:4]
            ref_id = os.path.splitext(os.path.basename(str(mask_file)))[0]  # the COCO ann id / referit object
        image = resolve_image(image_root, os.path.join(IMAGE_SUBDIRS[dataset], img_file))
        row = unified_row(
            image=image,
            bbox=convert_box(bbox, dataset, truncate_boxes),
            expression=str(phrase),
            image_id=os.path.splitext(img_file)[0],
            ref_id=ref_id,
            source=f"transvg:{dataset}",
            split=split,
        )
        rows.append(row)
    return rows


def load_entries(files: dict[str, str], dataset: str, split: str, allow_pickle: bool) -> list:
    """The tuples of one split (`trainval` concatenates train and val unless a trainval file exists)."""
    if split in files:
        return list(load_split_file(files[split], allow_pickle))
    if split == "trainval" and dataset != "referit" and {"train", "val"} <= set(files):
        return list(load_split_file(files["train"], allow_pickle)) + list(load_split_file(files["val"], allow_pickle))
    raise ValueError(f"TransVG dataset {dataset!r} has no split {split!r}; found {available_splits(files, dataset)}.")


__all__ = ["available_splits", "is_transvg_path", "load_entries", "load_split_file", "records", "split_files"]
