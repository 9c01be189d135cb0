# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Parquet sources (a Hub id, or a local folder laid out like the Hub repo, or a `save_to_disk` folder): load a
split with `datasets`, recognise its layout by its columns, convert it into the unified schema."""

import os
from functools import partial

import datasets

from . import benchmark, jxu124, lmms_lab, unified
from .common import require_image_root
from .validation import GroundingRowChecker, convert_dataset


# checked in this order: a unified dataset may carry extra columns of another layout
LAYOUTS = {"unified": unified, "lmms-lab": lmms_lab, "jxu124": jxu124, "benchmark": benchmark}


def is_saved_to_disk(path: str) -> bool:
    """A folder written by `Dataset.save_to_disk` / `DatasetDict.save_to_disk`."""
    return any(os.path.isfile(os.path.join(path, name)) for name in ("dataset_dict.json", "state.json"))


def detect_layout(column_names, source: str) -> str:
    """The layout name whose columns a split has."""
    for name, module in LAYOUTS.items():
        if module.matches(column_names):
            return name
    raise ValueError(
        f"{source}: columns {sorted(column_names)} match no supported layout (the unified schema, lmms-lab/RefCOCO*, "
        "jxu124/refcoco*, jxu124/ref*-benchmark). Convert it to the unified schema (processing.data.schema) first."
    )


def hub_split_for(requested: str, hub_splits, source: str) -> str:
    """The repo's split for a requested REFER split name (`val` may be `validation`; jxu124 keeps testA as `test`)."""
    if requested in hub_splits:
        return requested
    aliases = {"val": ["validation"], "validation": ["val"]}
    if "testB" in hub_splits and "testA" not in hub_splits:
        aliases["testA"] = ["test"]
    for alias in aliases.get(requested, []):
        if alias in hub_splits:
            return alias
    raise ValueError(f"{source} has no split {requested!r}; its splits are {sorted(hub_splits)}.")


def _raw_splits(source: str, requested, *, revision, cache_dir) -> tuple[dict[str, datasets.Dataset], list[str]]:
    """({requested or repo split name: raw split}, the repo's split names)."""
    if os.path.isdir(source) and is_saved_to_disk(source):
        loaded = datasets.load_from_disk(source)
        everything = loaded if isinstance(loaded, datasets.DatasetDict) else {"train": loaded}
        hub_splits = list(everything)
        wanted = {name: hub_split_for(name, hub_splits, source) for name in requested or hub_splits}
        return {name: everything[hub] for name, hub in wanted.items()}, hub_splits
    try:
        hub_splits = datasets.get_dataset_split_names(source, revision=revision)
    except FileNotFoundError as err:
        if not os.path.isdir(source):
            raise
        raise FileNotFoundError(
            f"{source} holds no supported grounding source: expected a parquet folder laid out like a Hub repo "
            "(data/<split>-*.parquet), a save_to_disk folder, a REFER folder (refs(<split_by>).p + instances.json), "
            "TransVG <dataset>_<split>.pth files or a Flickr30k Entities folder (Annotations/, Sentences/)."
        ) from err
    wanted = {name: hub_split_for(name, hub_splits, source) for name in requested or hub_splits}
    raw = {
        name: datasets.load_dataset(source, split=hub, revision=revision, cache_dir=cache_dir)
        for name, hub in wanted.items()
    }
    return raw, hub_splits


def source_label(source: str, layout: str) -> str:
    """The `source` column value: the Hub id, or `<layout>:<folder name>` for a local copy."""
    return f"{layout}:{os.path.basename(os.path.normpath(source))}" if os.path.exists(source) else source


def has_embedded_images(dataset: datasets.Dataset) -> bool:
    """Whether the first row's image is stored as bytes (then the conversion goes to a cache file, not RAM)."""
    if "image" not in dataset.column_names or len(dataset) == 0:
        return False
    first = dataset.cast_column("image", datasets.Image(decode=False))[0]["image"]
    return isinstance(first, dict) and first.get("bytes") is not None


def load_parquet_source(
    source: str,
    requested: list[str] | None,
    *,
    checker: GroundingRowChecker,
    image_root: str | None = None,
    revision: str | None = None,
    cache_dir: str | None = None,
) -> dict[str, datasets.Dataset]:
    """{split: unified dataset} for the requested splits (None: all) of a Hub / parquet / saved source."""
    raw, hub_splits = _raw_splits(source, requested, revision=revision, cache_dir=cache_dir)
    out = {}
    for name, dataset in raw.items():
        layout = detect_layout(dataset.column_names, source)
        label = source_label(source, layout)
        split, convert = name, partial(LAYOUTS[layout].convert_batch, source=label, split=name)
        if layout == "jxu124":
            split = jxu124.canonical_split(hub_split_for(name, hub_splits, source), hub_splits)
            if "image" not in dataset.column_names:
                require_image_root(image_root, source, "the COCO train2014 images")
            convert = partial(jxu124.convert_batch, source=label, split=split, image_root=image_root)
        elif layout == "lmms-lab":
            lmms_lab.warn_nonstandard_split(split, hub_splits)
        out[split] = convert_dataset(
            dataset,
            convert,
            checker,
            source=label,
            split=split,
            cache_key=(layout, image_root),
            keep_in_memory=not has_embedded_images(dataset),
            keep_extra_columns=layout == "unified",  # e.g. the synthetic benchmark's metadata columns
        )
    return out


__all__ = ["detect_layout", "hub_split_for", "is_saved_to_disk", "load_parquet_source"]
