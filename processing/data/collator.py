# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""`EpmVGDataCollator`: unified grounding rows -> the model's batch (+ the teacher's inputs or cached embeddings)."""

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from modeling_epmvg.teacher_epmvg import TEACHER_EMBED_KEYS, TEACHER_INPUT_KEYS
from modeling_epmvg.text_cache_epmvg import TEXT_HIDDEN_STATES, EpmVGTextStateCache

from ..image_processing_epmvg import to_rgb_image
from .dense_labels import EpmVGDenseLabeler
from .sources.validation import decode_row_image


@dataclass
class EpmVGDataCollator:
    r"""
    Turns a list of unified grounding rows (`image`, `bbox` xyxy pixels, `expression`, ...) into the model's batch.
    Images may be decoded or left encoded (an undecodable file then raises an error naming its row).

    - Training: rows augmented by an [`EpmVGAugmentedDataset`] (they carry an `offset`) are letterboxed at their
      offset, without resizing again.
    - Evaluation: rows without an `offset` are resized and centred, and with `return_target_sizes=True` the
      batch carries `target_sizes` (original `(height, width)`) for `post_process_visual_grounding` (pop it before
      calling the model).
    - Dense auxiliary term: with a `dense_labeler`, the batch gets `dense_labels` built from each row's annotated
      objects (unaugmented rows only: augmentation moves the target box, not the other objects).
    - Distillation: with a `teacher_processor` (e.g. a `CLIPProcessor`) the batch gets `teacher_pixel_values`,
      `teacher_input_ids`, `teacher_attention_mask` for the same (augmented) image and text; cached
      `teacher_image_embeds` / `teacher_text_embeds` columns are stacked and passed through.
    - Frozen text encoder: with `text_states` (an [`EpmVGTextStateCache`]) the batch gets `text_hidden_states`,
      and the model skips its text encoder.

    Args:
        processor ([`EpmVGProcessor`]): the student's processor.
        teacher_processor (*optional*): the teacher's processor, called as `processor(images=, text=)`.
        dense_labeler ([`EpmVGDenseLabeler`], *optional*): adds `dense_labels` (scene annotations needed).
        return_target_sizes (`bool`, *optional*, defaults to `False`): add `target_sizes` (int64 `(B, 2)`).
        text_states ([`EpmVGTextStateCache`], *optional*): the frozen text encoder's cached states of the expressions.

    Example:

    ```python
    >>> from torch.utils.data import DataLoader
    >>> from processing.data.collator import EpmVGDataCollator

    >>> collator = EpmVGDataCollator(processor, return_target_sizes=True)  # doctest: +SKIP
    >>> batch = next(iter(DataLoader(test_dataset, batch_size=8, collate_fn=collator)))  # doctest: +SKIP
    >>> target_sizes = batch.pop("target_sizes")  # doctest: +SKIP
    >>> predictions = processor.post_process_visual_grounding(model(**batch), target_sizes)  # doctest: +SKIP
    ```
    """

    processor: Any
    teacher_processor: Any = None
    dense_labeler: EpmVGDenseLabeler | None = None
    return_target_sizes: bool = False
    text_states: EpmVGTextStateCache | None = None

    @staticmethod
    def _offsets(rows: list[dict]) -> list[tuple[int, int]] | None:
        """The canvas offsets of augmented rows, or None for rows to centre."""
        augmented = ["offset" in row for row in rows]
        if any(augmented) and not all(augmented):
            raise ValueError("Some rows carry an augmentation `offset` and some do not: augment all rows or none.")
        return [tuple(row["offset"]) for row in rows] if all(augmented) else None

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        # any mode: the processor converts it as the pipeline's does, so evaluation sees the pipeline's pixels
        images = [decode_row_image(row) for row in rows]
        texts = [row["expression"] for row in rows]
        boxes = [row.get("bbox") for row in rows]
        boxes = None if any(box is None for box in boxes) else [list(map(float, box)) for box in boxes]
        offsets = self._offsets(rows)
        batch = dict(
            self.processor(
                images=images,
                text=texts,
                boxes=boxes,
                offsets=offsets,
                do_resize=offsets is None,  # augmented images are already resized
                return_tensors="pt",
            )
        )
        if self.dense_labeler is not None:
            if offsets is not None:
                raise ValueError(
                    "Dense labels come from the scene's annotated objects, which augmentation does not move: train "
                    "with the dense auxiliary term on unaugmented images (--augment false), or turn the term off."
                )
            sizes = [(image.height, image.width) for image in images]
            batch["dense_labels"] = self.dense_labeler(rows, sizes, self.processor.image_processor)
        if self.teacher_processor is not None:
            teacher = self.teacher_processor(
                images=[to_rgb_image(image) for image in images],
                text=texts,
                padding=True,
                truncation=True,
                return_tensors="pt",
            )
            # only what the trainer consumes: others (e.g. token_type_ids) would reach the student
            names = {key: key.removeprefix("teacher_") for key in TEACHER_INPUT_KEYS}
            batch.update({key: teacher[name] for key, name in names.items() if name in teacher})
        if self.text_states is not None:
            batch[TEXT_HIDDEN_STATES] = self.text_states(texts, batch["attention_mask"])
        for column in TEACHER_EMBED_KEYS:
            if all(row.get(column) is not None for row in rows):
                batch[column] = torch.as_tensor(np.asarray([row[column] for row in rows], dtype=np.float32))
        if self.return_target_sizes:
            batch["target_sizes"] = torch.tensor([(image.height, image.width) for image in images], dtype=torch.long)
        return batch


@dataclass
class EpmVGSceneCollator:
    r"""
    Batches scenes for [`EpmVGForVisualPretraining`]: `pixel_values`, `pixel_mask` (centred letterbox) and the
    `dense_labels` of each scene's annotated objects.

    Args:
        image_processor ([`EpmVGImageProcessor`]): the student's image processor.
        dense_labeler ([`EpmVGDenseLabeler`]): builds the per-token targets.
    """

    image_processor: Any
    dense_labeler: EpmVGDenseLabeler

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        images = [decode_row_image(row) for row in rows]
        batch = dict(self.image_processor(images, return_tensors="pt"))
        sizes = [(image.height, image.width) for image in images]
        batch["dense_labels"] = self.dense_labeler(rows, sizes, self.image_processor)
        return batch


__all__ = ["EpmVGDataCollator", "EpmVGSceneCollator"]
