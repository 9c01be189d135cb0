# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""`load_grounding_dataset`: one entry point for every supported source, Hub id or local path alike."""

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from datasets import Dataset, DatasetDict

from . import flickr30k, refer, transvg
from .common import require_image_root
from .hub import load_parquet_source
from .validation import GroundingRowChecker, convert_records


def _select(names: list[str], requested: list[str] | None, source: str) -> list[str]:
    if requested is None:
        return names
    unknown = [name for name in requested if name not in names]
    if unknown:
        raise ValueError(f"{source} has no split {unknown[0]!r}; its splits are {names}.")
    return requested


def _convert_splits(splits: list[str], rows_of_split, checker, source: str) -> dict[str, Dataset]:
    """Each selected split's unified rows (from `rows_of_split(split)`) converted and checked."""
    return {split: convert_records(rows_of_split(split), checker, source=source, split=split) for split in splits}


def _load_refer(folder, requested, *, image_root, split_by, allow_pickle, checker) -> dict[str, Dataset]:
    split_by, refs, images = refer.load_refer(folder, split_by=split_by, allow_pickle=allow_pickle)
    source = f"refer:{os.path.basename(os.path.normpath(folder))}({split_by})"
    require_image_root(image_root, source, "the images named in instances.json (COCO train2014 / saiapr_tc-12)")
    return _convert_splits(
        _select(refer.split_names(refs), requested, source),
        lambda split: refer.records(refs, images, split=split, image_root=image_root, source=source),
        checker,
        source,
    )


def _load_transvg(path, requested, *, image_root, allow_pickle, truncate_boxes, checker) -> dict[str, Dataset]:
    found = transvg.split_files(path)
    if len(found) > 1:
        raise ValueError(f"{path} holds TransVG split files of {sorted(found)}: pass one dataset's folder or file.")
    ((dataset, files),) = found.items()
    source = f"transvg:{dataset}"
    require_image_root(image_root, source, f"the {dataset} images (or TransVG's data root)")

    def rows(split: str) -> list[dict]:
        entries = transvg.load_entries(files, dataset, split, allow_pickle)
        return transvg.records(
            entries, dataset=dataset, split=split, image_root=image_root, truncate_boxes=truncate_boxes
        )

    return _convert_splits(_select(transvg.available_splits(files, dataset), requested, source), rows, checker, source)


def _load_flickr30k(folder, requested, *, image_root, checker) -> dict[str, Dataset]:
    source = flickr30k.SOURCE
    require_image_root(image_root, source, "the Flickr30k images (flickr30k_images/<id>.jpg)")
    return _convert_splits(
        _select(flickr30k.available_splits(folder), requested, source),
        lambda split: flickr30k.records(folder, split=split, image_root=image_root),
        checker,
        source,
    )


def load_grounding_dataset(
    source: str | os.PathLike,
    split: str | Sequence[str] | None = None,
    *,
    image_root: str | os.PathLike | None = None,
    skip_invalid: bool = False,
    verify_images: bool = False,
    split_by: str | None = None,
    allow_pickle: bool = False,
    truncate_boxes: bool = True,
    revision: str | None = None,
    cache_dir: str | None = None,
) -> Dataset | DatasetDict:
    """
    Load any supported visual-grounding source into the unified schema (`processing.data.schema.GROUNDING_FEATURES`):
    one row per referring expression, box xyxy in original-image pixels, every row validated.

    Supported sources (a Hub id and a local folder laid out like the Hub repo behave the same):
    - `lmms-lab/RefCOCO`, `lmms-lab/RefCOCOplus`, `lmms-lab/RefCOCOg` (embedded images, xywh boxes);
    - `jxu124/refcoco`, `jxu124/refcocoplus`, `jxu124/refcocog` (xyxy, images from `image_root`; Hub `test` of
      refcoco / refcoco+ is testA, `validation` is val);
    - `jxu124/refcoco-benchmark`, `jxu124/refclef-benchmark` (per-image rows, embedded images; Google splits and
      ReferItGame = RefCLEF);
    - a folder saved with `save_to_disk` / parquet files already in the unified schema;
    - a REFER toolkit folder (`refs(<split_by>).p` + `instances.json`: refcoco, refcoco+, refcocog, refclef);
    - TransVG / ReSC split files (`<dataset>_<split>.pth`, a file or its folder: unc, unc+, gref, gref_umd,
      referit, flickr);
    - a Flickr30k Entities folder (`Annotations/`, `Sentences/`, `<split>.txt`).

    Args:
        source (`str` or `os.PathLike`):
            A Hub dataset id or a local path.
        split (`str` or `list[str]`, *optional*):
            One split (returns a `Dataset`), several or None for all of them (returns a `DatasetDict`). REFER
            names: `train`, `val`, `test`, `testA`, `testB`, ... (`trainval` for TransVG files).
        image_root (`str`, *optional*):
            Folder of the images, for sources that do not embed them.
        skip_invalid (`bool`, *optional*, defaults to `False`):
            Skip rows with a missing / unreadable image or a box that is zero-area or outside its image, and log
            how many, instead of raising `GroundingDataError` naming the rows.
        verify_images (`bool`, *optional*, defaults to `False`):
            Decode every image fully while validating (slow; catches truncated files).
        split_by (`str`, *optional*):
            REFER split scheme (`unc`, `umd`, `google`, `berkeley`) when the folder holds several refs files.
        allow_pickle (`bool`, *optional*, defaults to `False`):
            Allow full unpickling of REFER / TransVG files that hold more than plain data (can run code).
        truncate_boxes (`bool`, *optional*, defaults to `True`):
            TransVG files: cast boxes to int as TransVG's loader does (needed to reproduce its numbers).
        revision (`str`, *optional*), cache_dir (`str`, *optional*):
            Passed to `datasets.load_dataset` for Hub / parquet sources.

    Returns:
        `Dataset` (one split requested) or `DatasetDict`.

    Example:

    ```python
    >>> from processing.data.sources import load_grounding_dataset

    >>> test_a = load_grounding_dataset("lmms-lab/RefCOCO", split="testA")
    >>> train = load_grounding_dataset("jxu124/refcoco", split="train", image_root="/data/coco/train2014")
    >>> refer = load_grounding_dataset("refer/data/refcocog", split="val", split_by="umd", image_root="train2014")
    ```
    """
    source = os.fspath(source)
    image_root = os.fspath(image_root) if image_root is not None else None
    requested = None if split is None else [split] if isinstance(split, str) else list(split)
    checker = GroundingRowChecker(skip_invalid=skip_invalid, verify_images=verify_images)
    if os.path.isdir(source) and refer.is_refer_folder(source):
        splits = _load_refer(
            source, requested, image_root=image_root, split_by=split_by, allow_pickle=allow_pickle, checker=checker
        )
    elif os.path.isdir(source) and flickr30k.is_flickr30k_folder(source):
        splits = _load_flickr30k(source, requested, image_root=image_root, checker=checker)
    elif os.path.exists(source) and transvg.is_transvg_path(source):
        splits = _load_transvg(
            source,
            requested,
            image_root=image_root,
            allow_pickle=allow_pickle,
            truncate_boxes=truncate_boxes,
            checker=checker,
        )
    elif os.path.isfile(source):
        raise ValueError(f"{source}: not a recognised file (expected a TransVG <dataset>_<split>.pth).")
    elif not os.path.exists(source) and (os.path.isabs(source) or source.startswith(".") or source.count("/") > 1):
        raise FileNotFoundError(f"{source} does not exist (and is not a Hub dataset id like 'lmms-lab/RefCOCO').")
    else:
        splits = load_parquet_source(
            source, requested, checker=checker, image_root=image_root, revision=revision, cache_dir=cache_dir
        )
    if isinstance(split, str):
        return next(iter(splits.values()))
    return DatasetDict(splits)


@dataclass
class GroundingSourceArguments:
    """
    How [`load_grounding_dataset`] reads a source, as the data flags that epmvg-train and epmvg-evaluate share (with
    `HfArgumentParser` each flag takes both spellings, e.g. `--allow_pickle` and `--allow-pickle`).
    """

    image_root: str | None = field(default=None, metadata={"help": "Image folder, for sources without images."})
    split_by: str | None = field(default=None, metadata={"help": "REFER split scheme (unc, umd, google, berkeley)."})
    skip_invalid: bool = field(
        default=False,
        metadata={
            "help": "Skip (and count) invalid rows instead of failing; decodes every image up front, so rows with a "
            "truncated or corrupt image file are skipped too."
        },
    )
    verify_images: bool = field(
        default=False,
        metadata={"help": "Decode every image up front (slow): an undecodable file fails before the run, by row."},
    )
    allow_pickle: bool = field(
        default=False, metadata={"help": "Allow full unpickling of REFER / TransVG files (can run code)."}
    )
    truncate_boxes: bool = field(
        default=True, metadata={"help": "TransVG files: cast boxes to int as TransVG does (--no-truncate-boxes)."}
    )
    cache_dir: str | None = field(default=None, metadata={"help": "datasets cache folder."})

    @classmethod
    def load_kwargs(cls, arguments) -> dict:
        """The [`load_grounding_dataset`] keyword arguments held by `arguments` (these fields, or a namespace)."""
        kwargs = {item.name: getattr(arguments, item.name) for item in dataclasses.fields(cls)}
        # only decoding finds a truncated file: skipping invalid rows has to decode them all
        kwargs["verify_images"] = kwargs["verify_images"] or kwargs["skip_invalid"]
        return kwargs


__all__ = ["GroundingSourceArguments", "load_grounding_dataset"]
