# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""EpmVGDataCollator: evaluation batches, augmented batches, teacher inputs and cached teacher embeddings."""

import numpy as np
import PIL.Image
import pytest
import torch
from datasets import Dataset
from transformers import CLIPImageProcessorPil, CLIPProcessor

from processing import EpmVGProcessor
from processing.data.augmentation import EpmVGAugmentation, EpmVGAugmentedDataset
from processing.data.collator import EpmVGDataCollator
from processing.data.schema import GROUNDING_FEATURES
from tests.conftest import tiny_config, tiny_tokenizer


def rows(n=3):
    sizes = [(40, 30), (24, 48), (64, 64)][:n]
    return [
        {
            "image": PIL.Image.new("L" if i == 1 else "RGB", size, 120),  # a grey image too: converted to RGB
            "width": size[0],
            "height": size[1],
            "bbox": [2.0, 3.0, 20.0, 21.0],
            "expression": ["red circle", "the big square on the left", "blue star"][i],
            "image_id": str(i),
            "ref_id": str(i),
            "source": "test",
            "split": "val",
        }
        for i, size in enumerate(sizes)
    ]


@pytest.fixture
def processor():
    return EpmVGProcessor.from_model_config(tiny_config(), tiny_tokenizer())


def test_evaluation_batch_is_centred_and_keeps_original_sizes(processor):
    batch = EpmVGDataCollator(processor, return_target_sizes=True)(rows())
    assert batch["pixel_values"].shape == (3, 3, 64, 64) and batch["pixel_mask"].dtype == torch.long
    assert batch["input_ids"].shape == (3, 8) and batch["labels"].shape == (3, 4)
    assert batch["target_sizes"].tolist() == [[30, 40], [48, 24], [64, 64]]
    reference = processor(
        images=[r["image"] for r in rows()],
        text=[r["expression"] for r in rows()],
        boxes=[r["bbox"] for r in rows()],
        return_tensors="pt",
    )
    for key in ("pixel_values", "pixel_mask", "input_ids", "labels"):
        torch.testing.assert_close(batch[key], reference[key])
    # the labels map back to the original boxes through the post-processor
    back = processor.post_process_visual_grounding(batch["labels"], batch["target_sizes"])
    assert torch.allclose(back[0]["boxes"], torch.tensor([[2.0, 3.0, 20.0, 21.0]]), atol=1e-4)


def test_rows_of_the_augmented_dataset_are_letterboxed_at_their_offset(processor):
    dataset = Dataset.from_list(rows(), features=GROUNDING_FEATURES)
    transformed = EpmVGAugmentedDataset(dataset, EpmVGAugmentation(size=64, seed=0))
    augmented = [transformed[index] for index in range(len(dataset))]
    batch = EpmVGDataCollator(processor)(augmented)
    reference = processor(
        images=[row["image"] for row in augmented],
        text=[row["expression"] for row in augmented],
        boxes=[row["bbox"] for row in augmented],
        offsets=[row["offset"] for row in augmented],
        do_resize=False,
        return_tensors="pt",
    )
    for key in ("pixel_values", "pixel_mask", "input_ids", "labels"):
        torch.testing.assert_close(batch[key], reference[key])
    # the label box lies inside the pasted image
    for labels, mask in zip(batch["labels"], batch["pixel_mask"]):
        cx, cy, w, h = (labels * 64).tolist()
        rows_, cols = np.nonzero(mask.numpy())
        assert cols.min() - 0.5 <= cx - w / 2 and cx + w / 2 <= cols.max() + 1.5
        assert rows_.min() - 0.5 <= cy - h / 2 and cy + h / 2 <= rows_.max() + 1.5


def test_a_batch_mixing_augmented_and_plain_rows_is_refused(processor):
    augmented = dict(rows()[0], offset=[0, 0])
    with pytest.raises(ValueError, match="augment all rows or none"):
        EpmVGDataCollator(processor)([augmented, rows()[1]])


def test_teacher_inputs_and_cached_embeddings(processor):
    teacher = CLIPProcessor(
        image_processor=CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
        tokenizer=tiny_tokenizer(),
    )
    examples = rows()
    for i, row in enumerate(examples):
        row["teacher_image_embeds"], row["teacher_text_embeds"] = [float(i)] * 6, [1.0] * 6
    batch = EpmVGDataCollator(processor, teacher_processor=teacher)(examples)
    assert batch["teacher_pixel_values"].shape == (3, 3, 32, 32)
    assert batch["teacher_input_ids"].shape == batch["teacher_attention_mask"].shape
    assert "teacher_token_type_ids" not in batch  # would be passed on to the student's forward
    assert batch["teacher_image_embeds"].dtype == torch.float32 and batch["teacher_image_embeds"][:, 0].tolist() == [
        0,
        1,
        2,
    ]
    assert "target_sizes" not in batch


def test_clear_errors(processor):
    collator = EpmVGDataCollator(processor)
    bad = rows(2)
    bad[0]["offset"] = [0, 0]
    with pytest.raises(ValueError, match="augment all rows or none"):
        collator(bad)
    bad = rows(1)
    bad[0]["image"] = {"bytes": b"not an image", "path": None}
    with pytest.raises(ValueError, match=r"Row image_id='0', ref_id='0', .*: image \(embedded\) cannot be decoded"):
        collator(bad)
