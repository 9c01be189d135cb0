# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""The teacher-embedding cache: one teacher forward per distinct image, every row its own image's embedding."""

import numpy as np
import PIL.Image
import torch
from datasets import Dataset, Features, Image, Value
from transformers import CLIPImageProcessorPil, CLIPProcessor

from modeling_epmvg.teacher_epmvg import cache_teacher_embeddings, teacher_embeddings
from processing.data.sources import encode_images

from .conftest import tiny_clip, tiny_tokenizer


def test_the_cache_embeds_each_image_once_and_gives_every_row_its_own_images_embedding():
    teacher, processor = tiny_clip(), CLIPProcessor(
        image_processor=CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
        tokenizer=tiny_tokenizer(),
    )
    images = [PIL.Image.fromarray(np.full((40, 40, 3), value, dtype=np.uint8)) for value in (30, 200)]
    rows = {"image": [images[0], images[0], images[1]], "expression": ["the dog", "the red circle", "the dog"]}
    features = Features({"image": Image(), "expression": Value("string")})
    dataset = encode_images(Dataset.from_dict(rows, features=features))
    calls = []

    def counting_processor(images, **kwargs):
        calls.append(len(images))
        return processor(images=images, **kwargs)

    cached = cache_teacher_embeddings(dataset, teacher, counting_processor, keep_in_memory=True)
    assert calls == [2]  # two distinct images among three rows
    for row, image, text in zip(cached, [images[0], images[0], images[1]], rows["expression"]):
        inputs = processor(images=image, text=text, return_tensors="pt")
        with torch.inference_mode():
            image_embeds, text_embeds = teacher_embeddings(teacher, inputs["pixel_values"], inputs["input_ids"])
        np.testing.assert_allclose(row["teacher_image_embeds"], image_embeds[0].numpy(), atol=1e-5)
        np.testing.assert_allclose(row["teacher_text_embeds"], text_embeds[0].numpy(), atol=1e-5)
