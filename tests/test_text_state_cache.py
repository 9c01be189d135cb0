# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""A frozen text encoder's states, cached once per expression, give the same training step as running it."""

import pytest
import torch

from modeling_epmvg import EpmVGForVisualGrounding
from modeling_epmvg.text_cache_epmvg import TEXT_HIDDEN_STATES, EpmVGTextStateCache
from processing import EpmVGProcessor
from processing.data.collator import EpmVGDataCollator
from tests.conftest import tiny_config, tiny_tokenizer
from tests.test_collator import rows


@pytest.fixture
def model_and_processor():
    torch.manual_seed(0)
    config = tiny_config(dropout=0.0)
    config.text_config.hidden_dropout_prob = config.text_config.attention_probs_dropout_prob = 0.0
    model = EpmVGForVisualGrounding(config)
    model.freeze_text_encoder()
    return model, EpmVGProcessor.from_model_config(config, tiny_tokenizer())


def test_given_text_hidden_states_the_model_gives_the_outputs_of_its_own_text_encoder(model_and_processor):
    model, processor = model_and_processor
    batch = EpmVGDataCollator(processor)(rows())
    states = model.model.text_backbone(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    live = model(**batch)
    skipped = model(**batch, text_hidden_states=states.last_hidden_state)
    torch.testing.assert_close(skipped.pred_boxes, live.pred_boxes, rtol=0, atol=1e-6)
    torch.testing.assert_close(skipped.loss, live.loss, rtol=0, atol=1e-6)


def test_a_training_step_from_the_cache_equals_the_step_through_the_frozen_encoder(model_and_processor):
    model, processor = model_and_processor
    examples = rows()
    cache = EpmVGTextStateCache.from_texts([row["expression"] for row in examples * 2], model, processor)
    assert len(cache) == 3  # repeated expressions are encoded once

    live_batch = EpmVGDataCollator(processor)(examples)
    cached_batch = EpmVGDataCollator(processor, text_states=cache)(examples)
    assert cached_batch[TEXT_HIDDEN_STATES].shape == (3, live_batch["input_ids"].shape[1], 16)

    live = model(**live_batch)
    live.loss.backward()
    live_gradients = [p.grad.clone() for p in model.parameters() if p.requires_grad]
    model.zero_grad()
    cached = model(**cached_batch)
    cached.loss.backward()
    torch.testing.assert_close(cached.loss, live.loss, rtol=0, atol=1e-6)
    for cached_gradient, live_gradient in zip((p.grad for p in model.parameters() if p.requires_grad), live_gradients):
        torch.testing.assert_close(cached_gradient, live_gradient, rtol=1e-5, atol=1e-6)


def test_a_trainable_text_encoder_is_neither_cached_nor_skipped_in_training(model_and_processor):
    model, processor = model_and_processor
    model.model.unfreeze_text_encoder()
    with pytest.raises(ValueError, match="text encoder is trainable.*freeze it"):
        EpmVGTextStateCache.from_texts(["red circle"], model, processor)

    batch = EpmVGDataCollator(processor)(rows())
    states = torch.zeros(*batch["input_ids"].shape, 16)
    with pytest.raises(ValueError, match="skips the text encoder, which is training.*freeze_text_encoder"):
        model.train()(**batch, text_hidden_states=states)


def test_states_of_the_wrong_shape_or_an_expression_missing_from_the_cache_are_named(model_and_processor):
    model, processor = model_and_processor
    batch = EpmVGDataCollator(processor)(rows())
    with pytest.raises(ValueError, match=r"`text_hidden_states` has shape \(3, 8, 12\).*need \(3, 8, 16\)"):
        model(**batch, text_hidden_states=torch.zeros(3, 8, 12))

    cache = EpmVGTextStateCache.from_texts(["red circle"], model, processor)
    with pytest.raises(ValueError, match="'the big square on the left' is not in the text-state cache"):
        EpmVGDataCollator(processor, text_states=cache)(rows())


def test_a_cache_made_with_another_max_text_len_is_refused(model_and_processor):
    model, processor = model_and_processor
    short = EpmVGProcessor.from_model_config(tiny_config(max_text_len=4), tiny_tokenizer())
    cache = EpmVGTextStateCache.from_texts(["the big square on the left"], model, short)
    with pytest.raises(ValueError, match="cover 4 tokens but the processor gives it 8.*another tokenizer"):
        EpmVGDataCollator(processor, text_states=cache)([rows()[1]])


def test_a_text_encoder_with_dropout_is_not_cached_since_training_would_apply_it(model_and_processor):
    _, processor = model_and_processor
    model = EpmVGForVisualGrounding(tiny_config())  # BERT's default dropout 0.1
    model.freeze_text_encoder()
    with pytest.raises(ValueError, match="dropout.*set it to 0.*hidden_dropout_prob"):
        EpmVGTextStateCache.from_texts(["red circle"], model, processor)
