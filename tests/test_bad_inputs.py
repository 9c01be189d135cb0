# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Inputs that failed deep inside torch or silently: a too-large tokenizer, normalized boxes, long expressions."""

import PIL.Image
import pytest
from transformers import BertTokenizer, pipeline
from transformers.testing_utils import CaptureLogger
from transformers.utils import logging

from modeling_epmvg import EpmVGForVisualGrounding
from processing import EpmVGImageProcessor, EpmVGProcessor, image_processing_epmvg, processing_epmvg

from .conftest import TINY_VOCAB, tiny_config, tiny_tokenizer


def test_a_tokenizer_larger_than_the_embedding_table_is_refused_naming_both_sizes():
    config = tiny_config()
    words = [f"word{index}" for index in range(10)]
    large = BertTokenizer(vocab={token: index for index, token in enumerate(TINY_VOCAB + words)})
    processor = EpmVGProcessor(EpmVGImageProcessor(size=64), large, max_text_len=config.max_text_len)
    message = (
        f"The tokenizer has {len(TINY_VOCAB) + 10} tokens but the model's text encoder embeds only {len(TINY_VOCAB)}"
    )
    with pytest.raises(ValueError, match=message):
        processor.check_model_config(config)
    with pytest.raises(ValueError, match=message):
        pipeline("visual-grounding", model=EpmVGForVisualGrounding(config), processor=processor)
    EpmVGProcessor.from_model_config(config, tiny_tokenizer()).check_model_config(config)


@pytest.mark.parametrize(
    ("processor_config", "message"),
    [
        ({"image_size": 32}, "The processor's image size is 32 but the model's is 64"),
        ({"max_text_len": 12}, r"The processor's text length \(max_text_len\) is 12 but the model's is 8"),
    ],
)
def test_a_processor_of_another_canvas_or_text_length_is_refused_naming_both_values(processor_config, message):
    config = tiny_config()
    processor = EpmVGProcessor.from_model_config(tiny_config(**processor_config), tiny_tokenizer())
    with pytest.raises(ValueError, match=message + ".*EpmVGProcessor.from_model_config"):
        processor.check_model_config(config)
    with pytest.raises(ValueError, match=message):
        pipeline("visual-grounding", model=EpmVGForVisualGrounding(config), processor=processor)


def test_a_box_that_looks_normalized_gets_a_warning():
    logging.warning_once.cache_clear()
    image = PIL.Image.new("RGB", (64, 48))
    with CaptureLogger(image_processing_epmvg.logger) as captured:
        EpmVGImageProcessor(size=64)(image, boxes=[[2.0, 3.0, 30.0, 40.0]])
    assert captured.out == ""
    with CaptureLogger(image_processing_epmvg.logger) as captured:
        EpmVGImageProcessor(size=64)(image, boxes=[[0.1, 0.2, 0.5, 0.9]])
    assert "every coordinate <= 1" in captured.out and "multiply normalized boxes" in captured.out


def test_an_expression_truncated_to_the_text_slots_is_reported_once():
    processor = EpmVGProcessor(EpmVGImageProcessor(size=64), tiny_tokenizer(), max_text_len=8)
    with CaptureLogger(processing_epmvg.logger) as captured:
        processor(text=["the red circle", "the small red circle left of the big blue square"])
        processor(text=["the big blue star on the left of the red dog"])
    assert captured.out.count("was truncated") == 1
    assert "'the small red circle left of the big blue square'" in captured.out
    fresh = EpmVGProcessor(EpmVGImageProcessor(size=64), tiny_tokenizer(), max_text_len=8)
    with CaptureLogger(processing_epmvg.logger) as captured:
        fresh(text=["the red circle of a dog"])  # 6 words + [CLS] + [SEP] fill the 8 slots exactly
    assert captured.out == ""
    with CaptureLogger(processing_epmvg.logger) as captured:
        fresh(text=["the red circle left of a dog"])  # 7 words + [CLS] + [SEP]: one word lost
    assert "was truncated" in captured.out
