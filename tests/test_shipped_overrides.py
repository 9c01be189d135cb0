# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""
Why the shipped model keeps its four overrides of transformers' hooks. Each test shows what the installed
transformers does for its own DETR (a ResNet backbone in a composite model, as EpmVG's), then what EpmVG does. When a
DETR half fails, transformers has fixed it: remove the override it names.
"""

import pytest
from transformers import AutoModel, BertConfig, BertModel, DetrConfig, DetrModel, PreTrainedConfig

from modeling_epmvg import EpmVGConfig, EpmVGForVisualGrounding

from .conftest import frozen_parameter_names, random_inputs, tiny_config


def tiny_detr() -> DetrModel:
    config = DetrConfig(backbone_config=tiny_config().backbone_config, use_timm_backbone=False, d_model=16,
                        encoder_layers=1, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
                        encoder_ffn_dim=16, decoder_ffn_dim=16, num_queries=2)  # fmt: skip
    return DetrModel(config)


def test_from_pretrained_freezes_again_because_loading_makes_every_parameter_trainable(tmp_path):
    """EpmVGPreTrainedModel.from_pretrained."""
    detr = tiny_detr()
    assert frozen_parameter_names(detr)
    detr.save_pretrained(tmp_path / "detr")
    assert frozen_parameter_names(DetrModel.from_pretrained(tmp_path / "detr")) == set()

    model = EpmVGForVisualGrounding(tiny_config())
    model.save_pretrained(tmp_path / "epmvg")
    assert frozen_parameter_names(EpmVGForVisualGrounding.from_pretrained(tmp_path / "epmvg")) == (
        frozen_parameter_names(model)
    )


def test_the_config_keeps_the_backbone_on_eager_because_a_resnet_backbone_refuses_sdpa(tmp_path):
    """EpmVGConfig._attn_implementation (from_pretrained and config building with attn_implementation=...)."""
    tiny_detr().save_pretrained(tmp_path / "detr")
    with pytest.raises(ValueError, match="ResNetBackbone does not support"):
        DetrModel.from_pretrained(tmp_path / "detr", attn_implementation="sdpa")

    EpmVGForVisualGrounding(tiny_config()).save_pretrained(tmp_path / "epmvg")
    model = AutoModel.from_pretrained(tmp_path / "epmvg", attn_implementation="sdpa")
    assert model.config._attn_implementation == model.config.text_config._attn_implementation == "sdpa"
    assert model.config.backbone_config._attn_implementation == "eager"


def test_set_attn_implementation_keeps_the_backbone_on_eager_because_a_resnet_backbone_refuses_sdpa():
    """EpmVGPreTrainedModel.set_attn_implementation."""
    detr = tiny_detr()
    detr.set_attn_implementation("eager")
    with pytest.raises(ValueError, match="ResNetBackbone does not support"):
        detr.set_attn_implementation("sdpa")

    model = EpmVGForVisualGrounding(tiny_config(attn_implementation="eager")).eval()
    model.set_attn_implementation("sdpa")
    assert model.config._attn_implementation == model.config.text_config._attn_implementation == "sdpa"
    assert model.config.backbone_config._attn_implementation == "eager"
    assert model(**random_inputs(model.config)).pred_boxes.shape == (2, 4)


def test_another_model_type_is_refused_because_transformers_only_warns(tmp_path):
    """EpmVGConfig.get_config_dict (and the commands' loader, through check_model_type)."""
    bert = BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    BertModel(bert).save_pretrained(tmp_path)
    assert isinstance(DetrConfig.from_pretrained(tmp_path), PreTrainedConfig)
    with pytest.raises(ValueError, match="holds a 'bert' checkpoint, not an EpmVG one"):
        EpmVGConfig.from_pretrained(tmp_path)
