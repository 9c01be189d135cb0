# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Row validation shared by every source adapter: image readable, sizes consistent, box inside its image."""

import hashlib
import io
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from datasets import Dataset, Features, Image, Value
from PIL import Image as PILImage
from PIL import UnidentifiedImageError

# the image processor's tolerance: a box may poke out of its image by this many pixels (then it is clipped)
from ...image_processing_epmvg import BOX_TOLERANCE
from ..schema import GROUNDING_FEATURES
from .common import PROBLEM_COLUMN, rows_to_batch


logger = logging.getLogger(__name__)

# the unified columns plus one string per row that is empty when the row is valid
CHECKED_FEATURES = Features({**GROUNDING_FEATURES, PROBLEM_COLUMN: Value("string")})
# bump when an adapter's output changes, so cached conversions are not reused
ADAPTER_VERSION = "1"


class GroundingDataError(ValueError):
    """Raised when a data source holds a row that cannot give a correct training / evaluation example."""


def box_problem(box: Sequence[float], width: int, height: int) -> str | None:
    """Why `box` (xyxy pixels) is not a valid box of a `width` x `height` image, or None when it is."""
    try:
        x1, y1, x2, y2 = (float(v) for v in box)
    except (TypeError, ValueError):
        return f"box {box!r} is not 4 numbers"
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
        return f"box {list(box)} is not finite"
    if x2 <= x1 or y2 <= y1:
        return f"box {list(box)} (xyxy) has zero or negative area"
    t = BOX_TOLERANCE
    if x1 < -t or y1 < -t or x2 > width + t or y2 > height + t:
        return f"box {list(box)} (xyxy) lies outside its {width}x{height} image"
    return None


def clip_box(box: Sequence[float], width: int, height: int) -> list[float]:
    """Clip a box that passed `box_problem` (at most `BOX_TOLERANCE` px outside) to the image."""
    x1, y1, x2, y2 = box
    return [max(0.0, x1), max(0.0, y1), min(float(width), x2), min(float(height), y2)]


@dataclass
class GroundingRowChecker:
    """
    Validates unified rows and turns problems into a clear error or a logged skip count.

    Args:
        skip_invalid (`bool`, *optional*, defaults to `False`):
            Drop invalid rows (and log how many) instead of raising [`GroundingDataError`].
        verify_images (`bool`, *optional*, defaults to `False`):
            Decode every image fully (catches truncated files). By default only the header is read, which
            catches missing, empty and non-image files and gives the true image size.
    """

    skip_invalid: bool = False
    verify_images: bool = False
    _sizes: dict = field(default_factory=dict, repr=False)

    def image_size(self, image) -> tuple[tuple[int, int] | None, str | None]:
        """((width, height), None) for a readable image (path string or {"bytes", "path"} dict), else (None, why)."""
        if isinstance(image, dict):
            data, path = image.get("bytes"), image.get("path")
        else:
            data, path = None, image
        if data is None and not path:
            return None, "no image"
        if data is None and path in self._sizes:
            return self._sizes[path]
        result = self._read_size(io.BytesIO(data) if data is not None else path, path)
        if data is None:
            self._sizes[path] = result
        return result

    def _read_size(self, fp, path) -> tuple[tuple[int, int] | None, str | None]:
        if isinstance(fp, str) and not os.path.isfile(fp):
            return None, f"image file not found: {fp}"
        try:
            with PILImage.open(fp) as im:
                if self.verify_images:
                    im.load()
                return im.size, None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
            return None, f"image {path or '(embedded)'} cannot be read ({type(err).__name__}: {err})"

    def check_row(self, row: dict) -> str:
        """Fill width/height from the image, clip a tolerated box overshoot (in place); return the problem or ""."""
        size, problem = self.image_size(row["image"])
        if problem is None:
            width, height = size
            declared = (row["width"] or 0, row["height"] or 0)
            if declared != (0, 0) and declared != (width, height):
                problem = f"image is {width}x{height} but the annotation says {declared[0]}x{declared[1]}"
            else:
                row["width"], row["height"] = width, height
                problem = box_problem(row["bbox"], width, height)
                if problem is None:
                    row["bbox"] = clip_box(row["bbox"], width, height)
        return problem or ""

    def check_batch(self, batch: dict) -> dict:
        """A batched `datasets.map` function over unified columns (+ optional problem column set by the adapter)."""
        columns = list(GROUNDING_FEATURES)
        known = batch.get(PROBLEM_COLUMN) or [""] * len(batch["bbox"])
        out = {name: [] for name in [*columns, PROBLEM_COLUMN]}
        for values, problem in zip(zip(*(batch[name] for name in columns)), known):
            row = dict(zip(columns, values))
            problem = problem or self.check_row(row)
            for name in columns:
                out[name].append(row[name])
            out[PROBLEM_COLUMN].append(f"{_describe(row)}: {problem}" if problem else "")
        return out

    def finalize(self, dataset: Dataset, source: str, split: str) -> Dataset:
        """Raise on (or drop and count) the rows whose problem column is set; return the unified dataset."""
        problems = list(dataset[PROBLEM_COLUMN])
        bad = [index for index, problem in enumerate(problems) if problem]
        where = f"{source} split {split!r}"
        if bad and not self.skip_invalid:
            shown = "\n".join(f"  row {index}: {problems[index]}" for index in bad[:5])
            more = f"\n  ... and {len(bad) - 5} more" if len(bad) > 5 else ""
            raise GroundingDataError(
                f"{len(bad)} invalid row(s) in {where}:\n{shown}{more}\nFix the data (or `image_root`), or pass "
                "skip_invalid=True to skip such rows (the skip count is logged)."
            )
        if bad:
            logger.warning(
                "%s: skipped %d invalid row(s) of %d (first: row %d: %s)",
                where,
                len(bad),
                len(problems),
                bad[0],
                problems[bad[0]],
            )
            dataset = dataset.select(sorted(set(range(len(problems))) - set(bad)))
        return dataset.remove_columns(PROBLEM_COLUMN)


def convert_dataset(
    dataset: Dataset,
    convert_batch,
    checker: GroundingRowChecker,
    *,
    source: str,
    split: str,
    cache_key: tuple = (),
    keep_in_memory: bool = True,
    keep_extra_columns: bool = False,
) -> Dataset:
    """
    Map a source split into the unified schema with one pass, validate every row, and finalize.

    Args:
        dataset (`Dataset`): the source split, in its own columns.
        convert_batch (`Callable[[dict], dict]`): batch of source rows -> batch of unified columns (any length).
        checker (`GroundingRowChecker`): validation settings.
        source (`str`), split (`str`): names used in error messages.
        cache_key (`tuple`): everything the conversion depends on besides the data (e.g. `image_root`).
        keep_in_memory (`bool`): keep the result in RAM (rows with image paths) rather than in a cache file
            (rows with embedded image bytes).
        keep_extra_columns (`bool`): keep the source's other columns (only for a one-to-one `convert_batch`).
    """
    image_feature = dataset.features.get("image")
    if isinstance(image_feature, Image) and image_feature.decode:
        # the adapters need the encoded bytes / path, not decoded pixels
        dataset = dataset.cast_column("image", Image(decode=False))
    extra = [name for name in dataset.column_names if name not in GROUNDING_FEATURES] if keep_extra_columns else []
    converted = dataset.map(
        lambda batch: checker.check_batch(convert_batch(batch)),
        batched=True,
        remove_columns=[name for name in dataset.column_names if name not in extra],
        features=Features({**{name: dataset.features[name] for name in extra}, **CHECKED_FEATURES}),
        keep_in_memory=keep_in_memory,
        new_fingerprint=fingerprint(dataset._fingerprint, source, split, checker.verify_images, extra, *cache_key),
        desc=f"Converting {source} [{split}]",
    )
    return checker.finalize(converted, source, split)


def convert_records(records: list[dict], checker: GroundingRowChecker, *, source: str, split: str) -> Dataset:
    """Validate a list of unified rows (image given as a path) and build the dataset."""
    batch = checker.check_batch(rows_to_batch(records))
    return checker.finalize(Dataset.from_dict(batch, features=CHECKED_FEATURES), source, split)


def decode_row_image(row: dict) -> PILImage.Image:
    """
    The image of a unified row, decoded: a PIL image as it is, or the `{"bytes", "path"}` of an image column left
    encoded (see [`encode_images`]). A missing, truncated or non-image file raises [`GroundingDataError`] naming
    the row and the file, instead of a bare PIL error in the middle of a run.
    """
    image = row["image"]
    if isinstance(image, PILImage.Image):
        return image
    if not isinstance(image, dict):
        raise GroundingDataError(
            f"Row {_describe(row)}: expected an image (PIL image or {{'bytes', 'path'}}), got {type(image).__name__}."
        )
    try:
        # the Image feature's own decoding (EXIF orientation applied), as a decoding column would give
        return Image().decode_example(image)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, TypeError) as err:
        raise GroundingDataError(
            f"Row {_describe(row)}: image {image.get('path') or '(embedded)'} cannot be decoded "
            f"({type(err).__name__}: {err}). "
            "Fix or remove the file, or pass --skip_invalid to skip such rows (it decodes every image up front)."
        ) from err


def encode_images(dataset: Dataset) -> Dataset:
    """`dataset` with its image column left encoded, for readers that decode each row with [`decode_row_image`]."""
    return dataset.cast_column("image", Image(decode=False))


def _describe(row: dict) -> str:
    return f"image_id={row.get('image_id')!r}, ref_id={row.get('ref_id')!r}, expression={row.get('expression')!r}"


def fingerprint(*parts) -> str:
    """A deterministic `datasets` fingerprint for a conversion (so `map` never has to hash our closures)."""
    return hashlib.sha256(repr((ADAPTER_VERSION, *parts)).encode()).hexdigest()[:32]


__all__ = [
    "CHECKED_FEATURES",
    "GroundingDataError",
    "GroundingRowChecker",
    "box_problem",
    "clip_box",
    "convert_dataset",
    "convert_records",
    "decode_row_image",
    "encode_images",
    "fingerprint",
]
