# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""
The frozen CLIP teacher's side of a training batch: the batch keys of its inputs and embeddings, its embeddings, and
the embedding cache (one `datasets.map` pass). Not shipped to the Hub: it needs `datasets`-style rows.
"""

import torch
import torch.nn.functional as F
from transformers import CLIPModel

from processing.data.sources.validation import decode_row_image
from processing.image_processing_epmvg import to_rgb_image


# the batch keys of the teacher's inputs (live distillation) and of its cached embeddings, as the collator writes them
TEACHER_PIXEL_VALUES = "teacher_pixel_values"
TEACHER_INPUT_IDS = "teacher_input_ids"
TEACHER_ATTENTION_MASK = "teacher_attention_mask"
TEACHER_IMAGE_EMBEDS = "teacher_image_embeds"
TEACHER_TEXT_EMBEDS = "teacher_text_embeds"
TEACHER_INPUT_KEYS = (TEACHER_PIXEL_VALUES, TEACHER_INPUT_IDS, TEACHER_ATTENTION_MASK)
TEACHER_EMBED_KEYS = (TEACHER_IMAGE_EMBEDS, TEACHER_TEXT_EMBEDS)


def teacher_embeddings(
    teacher: CLIPModel,
    pixel_values: torch.Tensor | None = None,
    input_ids: torch.Tensor | None = None,
    attention_mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """
    The teacher's projected CLIP image and text embeddings, L2-normalized as CLIP compares them. A modality whose
    inputs are None is skipped (None is returned for it).
    """
    image_embeds = text_embeds = None
    if pixel_values is not None:
        image_embeds = F.normalize(teacher.get_image_features(pixel_values=pixel_values).pooler_output, dim=-1)
    if input_ids is not None:
        text = teacher.get_text_features(input_ids=input_ids, attention_mask=attention_mask)
        text_embeds = F.normalize(text.pooler_output, dim=-1)
    return image_embeds, text_embeds


def _distinct_images(rows: list[dict], column: str) -> tuple[list[int], list[int]]:
    """
    (the index of the first row of each distinct image, each row's position among them). Rows with equal encoded
    images (the same bytes or file) are one image; a decoded image counts as its row's own.
    """
    positions, firsts, gather = {}, [], []
    for index, row in enumerate(rows):
        image = row[column]
        encoded = isinstance(image, dict) and (image.get("bytes") or image.get("path"))
        key = (image.get("bytes"), image.get("path")) if encoded else index
        if key not in positions:
            positions[key] = len(firsts)
            firsts.append(index)
        gather.append(positions[key])
    return firsts, gather


def cache_teacher_embeddings(
    dataset,
    teacher: CLIPModel,
    teacher_processor,
    batch_size: int = 64,
    image_column: str = "image",
    text_column: str = "expression",
    **map_kwargs,
):
    r"""
    Adds `teacher_image_embeds` / `teacher_text_embeds` columns to a `datasets.Dataset` with one batched
    `datasets.map` pass, so distillation costs no teacher forward at training time. `map` caches its result next to
    the dataset's files (or in `cache_file_name`), so an interrupted or repeated call resumes from the cache.

    The image embeddings come from the *unaugmented* image: with random augmentation at training time they are an
    approximation of what the live teacher would see (the text embedding is exact unless the flip swaps
    left/right).

    Args:
        dataset (`datasets.Dataset`): rows in the unified grounding schema.
        teacher ([`CLIPModel`]): the frozen teacher.
        teacher_processor: the teacher's processor (e.g. a `CLIPProcessor`).
        batch_size (`int`): rows per teacher forward.
        map_kwargs: passed to `Dataset.map` (`cache_file_name`, `num_proc`, `desc`, ...).
    """
    teacher = teacher.eval()
    device = next(teacher.parameters()).device

    def embed(batch: dict) -> dict:
        rows = [dict(zip(batch, values)) for values in zip(*batch.values())]
        # the rows of one image (an expression each) share its embedding: each image is decoded and embedded once
        firsts, gather = _distinct_images(rows, image_column)
        images = [to_rgb_image(decode_row_image({**rows[i], "image": rows[i][image_column]})) for i in firsts]
        inputs = teacher_processor(
            images=images, text=batch[text_column], padding=True, truncation=True, return_tensors="pt"
        )
        with torch.inference_mode():
            image_embeds, text_embeds = teacher_embeddings(
                teacher,
                inputs["pixel_values"].to(device),
                inputs["input_ids"].to(device),
                inputs.get("attention_mask").to(device),
            )
        image_embeds = image_embeds[torch.as_tensor(gather, device=image_embeds.device)]
        return dict(zip(TEACHER_EMBED_KEYS, (image_embeds.cpu().numpy(), text_embeds.cpu().numpy())))

    map_kwargs.setdefault("desc", "Caching teacher embeddings")
    return dataset.map(embed, batched=True, batch_size=batch_size, **map_kwargs)


__all__ = [
    "TEACHER_ATTENTION_MASK",
    "TEACHER_EMBED_KEYS",
    "TEACHER_IMAGE_EMBEDS",
    "TEACHER_INPUT_IDS",
    "TEACHER_INPUT_KEYS",
    "TEACHER_PIXEL_VALUES",
    "TEACHER_TEXT_EMBEDS",
    "cache_teacher_embeddings",
    "teacher_embeddings",
]
